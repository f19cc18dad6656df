"""Action builders of the prompt grammar (:mod:`handx_robot.generate.grammar`): one function per kind of
clause (a shape, finger states, a contact between two named parts, a move, a turn, an object ...), each
reading a :class:`~handx_robot.generate.clause.Clause` into :class:`~handx_robot.generate.parser.Action` s
and marking the words it used; a clause it cannot perform gets a reason in ``c.problems``."""

from __future__ import annotations

from handx_robot.generate.clause import (
    OTHER_SIDE,
    Clause,
    finger_states,
    hand_sides,
    make_action,
    resolve_part,
    states_tuple,
    subject_side,
    take_count,
    use_both,
)
from handx_robot.generate.lexicon import FINGERS, NUMBER_SHAPES, OBJECTS, SHAPES, Token

_SHAPE_PRIMITIVE = {"fist": "fist", "open": "open_hand", "thumbs_up": "thumbs_up", "ok": "ok_sign", "point": "point"}


def shape(c: Clause, verb: Token | None, shape_tok: Token):
    shape_tok.used = True
    name = shape_tok.value
    sides = hand_sides(c, verb, "shape")
    keep = finger_states(c, None)
    reps = take_count(c)
    prim = _SHAPE_PRIMITIVE.get(name)
    if prim is not None and not keep:
        return [make_action(prim, sides, c, reps=reps, fingers=states_tuple(SHAPES[name]), variant=name)]
    states = dict(states_tuple(SHAPES[name]))
    states.update(dict(keep))
    return [make_action("shape", sides, c, reps=reps, variant=name,
                    fingers=tuple((f, states[f]) for f in FINGERS if f in states))]  # fmt: skip


def number(c: Clause, verb: Token | None, sides=None):
    num = c.first("NUM")
    if num is None and c.word("one") is not None:
        num = c.word("one")
        num.tag, num.value = "NUM", 1
    c.take_word("number", "numbers")
    if num is None:
        c.problems.append("which number? (one to five)")
        return []
    num.used = True
    for m in c.mentions:
        if m.all_fingers or m.fingers == []:
            for t in m.tokens:
                if t.tag == "FINGERWORD":
                    t.used = True
    if not 1 <= num.value <= 5:
        c.problems.append(f"a hand shows 1 to 5 fingers, not {num.value}")
        return []
    name = NUMBER_SHAPES[int(num.value)]
    sides = sides or hand_sides(c, verb, "number")
    return [make_action("shape", sides, c, variant=name, fingers=states_tuple(SHAPES[name]))]


def keep(c: Clause, verb: Token | None, standalone: bool = False):
    sides = hand_sides(c, verb, "keep")
    states = finger_states(c, None)
    if not states:
        c.problems.append(f"{c.text!r}: which fingers, in which state?")
        return []
    prim = "fingers" if standalone else "keep"
    others = "others" if any(m.others for m in c.mentions) else None
    return [make_action(prim, sides, c, fingers=states, variant=others)]


def fingers(c: Clause, verb: Token | None, state: str | None):
    sides = hand_sides(c, verb, "fingers")
    states = finger_states(c, state)
    if not states:
        c.problems.append(f"{c.text!r}: which fingers?")
        return []
    return [make_action("fingers", sides, c, fingers=states, reps=take_count(c))]


_STYLE = {"tap": "tap", "touch": "touch", "press": "press", "push": "press", "put": "press", "rub": "rub",
          "slide": "slide", "pinch": "pinch"}  # fmt: skip


def contact(c: Clause, verb: Token, cat: str):
    style = _STYLE.get(cat, "touch")
    c.take_word("together")
    if style == "rub":
        for t in c.tokens:
            if t.tag == "DIR" and t.value == "circle" or t.word in ("circle", "circles"):
                t.used = True
    ms = [m for m in c.mentions if m.part is not None or m.fingers or m.hand or m.all_fingers]
    reps = take_count(c, 3 if style == "rub" else 1)
    vi = c.tokens.index(verb)
    subject = next((m for m in ms if m.start < vi), None)
    subj_side = subject.side if subject is not None and subject.side in ("left", "right", "both") else None
    # two hands' same parts together: palms, fingertips, wrists
    both = [] if style == "pinch" else [m for m in ms if m.side == "both" or (m.plural and m.side is None and not m.fingers and m.part)]
    if both or (len(ms) == 1 and ms[0].plural and ms[0].side is None and ms[0].part in ("palm", "tip")):
        m = (both or ms)[0]
        if m.part is None:
            m = next((mm for mm in ms if mm.part is not None), m)
        for mm in ms:
            if mm.part in (None, m.part) and (not mm.fingers or mm is m):
                mm.use()
        use_both(c)
        if m.part == "palm" or (m.hand and m.part is None):
            prim = {"rub": "rub_palms", "tap": "clap"}.get(style, "palms_together")
            return [make_action(prim, ("left", "right"), c, reps=reps)]
        if m.part in ("tip", "pad"):
            if len(m.fingers) == 1:
                f = m.fingers[0]
                return [make_action("touch", ("left", "right"), c, reps=reps, style=style,
                                parts=(f"right_{f}_tip", f"left_{f}_tip"))]  # fmt: skip
            return [make_action("touch_fingertips", ("left", "right"), c, reps=reps)]
        if m.part == "wrist":
            return [make_action("cross_wrists", ("left", "right"), c)]
        if m.part in ("back", "knuckles"):
            return [make_action("touch", ("left", "right"), c, reps=reps, style=style,
                            parts=(f"right_{m.part}", f"left_{m.part}"))]  # fmt: skip
    # the thumb rubbing the fingertips of its own hand ("rub the fingers", "rub the thumb against the fingertips")
    if style == "rub" and ms and all((m.all_fingers or m.fingers == ["thumb"]) and m.part in (None, "tip") for m in ms) and (
        len({m.side for m in ms if m.side in ("left", "right")}) <= 1
    ):
        for m in ms:
            m.use()
        return [make_action("rub_fingers", hand_sides(c, verb, "rub"), c, reps=reps)]
    # pinch: thumb and a finger of one hand
    if style == "pinch" or (len(ms) >= 1 and "thumb" in ms[0].fingers and len(ms[0].fingers) == 2 and len(ms) == 1):
        m = next((m for m in ms if m.fingers), None)
        fingers = [f for mm in ms for f in mm.fingers]
        side = next((mm.side for mm in ms if mm.side in ("left", "right", "both")), None)
        if side is None:
            side = "both" if hand_sides(c, verb, "pinch") == ("left", "right") else hand_sides(c, verb, "pinch")[0]
        pinch_sides = ("left", "right") if side == "both" else (side,)
        others = [f for f in fingers if f != "thumb"]
        if m is None or not others:
            others = ["index"]
        if len(set(others)) > 1:
            c.problems.append("a pinch joins the thumb with one finger at a time")
            return []
        for mm in ms:
            mm.use()
        c.take_word("hand", "hands")
        if style == "pinch" or side == "both":
            return [make_action("pinch", pinch_sides, c, reps=reps, finger=others[0])]
        return [make_action("touch", (side,), c, reps=reps, style="touch",
                        parts=(f"{side}_thumb_tip", f"{side}_{others[0]}_tip"))]  # fmt: skip
    # actor and target
    actor = next((m for m in ms if m.after_with), None)
    rest = [m for m in ms if m is not actor]
    if actor is None:
        if subject is not None:
            actor = subject
        elif rest:
            actor = rest[0]
        rest = [m for m in ms if m is not actor]
    if subject is not None and subject.hand and subject.part is None and not subject.fingers and actor is not subject:
        subject.use()  # "the right hand taps the left palm with its index finger"
        rest = [m for m in rest if m is not subject]
        if actor is not None and actor.side in (None, "self"):
            actor.side = subject.side
    target = rest[0] if rest else None
    if actor is None or target is None:
        c.problems.append(f"{verb.word!r}: name both parts that touch (e.g. 'the right index fingertip taps the left palm')")
        return []
    if len(rest) > 1 and any(r.part or r.fingers for r in rest[1:]):
        c.problems.append("one contact per clause: join more with 'then' or 'while'")
        return []
    a_side, a_fingers, a_part = resolve_part(actor, subj_side)
    b_side, b_fingers, b_part = resolve_part(target, a_side)
    if a_part == "hand":
        a_part = "palm" if style in ("press", "rub", "slide") else "tip"
        a_fingers = ["index"] if a_part == "tip" else []
    if b_part == "hand":
        b_part = "back" if style in ("tap", "touch", "press", "rub", "slide") else "palm"
    if (len(a_fingers) > 1 or len(b_fingers) > 1) and not ("thumb" in a_fingers and len(a_fingers) == 2):
        c.problems.append("one finger per part in a contact (say which finger)")
        return []
    if a_side == "both" or b_side == "both":
        c.problems.append("a contact between named parts uses one part of each hand")
        return []
    within_ok = (a_part in ("tip", "pad") and b_part in ("tip", "pad") and "thumb" in (a_fingers + b_fingers)
                 and a_fingers != b_fingers) or (a_part in ("tip", "pad") and b_part == "palm") or (
                 b_part in ("tip", "pad") and a_part == "palm")  # fmt: skip
    if a_side == "other":
        a_side = OTHER_SIDE.get(b_side or "", None)
    if b_side == "other":
        b_side = OTHER_SIDE.get(a_side or "right", "left")
    if a_side is None and b_side is None:
        a_side = "right"
        c.notes.append("contact: no hand named, the right hand acts")
    if a_side is None:
        a_side = b_side if (within_ok and target.side != "self" and "thumb" in a_fingers + b_fingers) else OTHER_SIDE[b_side]
    if b_side is None:
        own = target.side == "self" or c.take_word("own")
        b_side = a_side if (within_ok and (own or ("thumb" in a_fingers + b_fingers and b_part != "palm"))) else OTHER_SIDE[a_side]
    if a_side == b_side and not within_ok:
        a_name = " ".join(x for x in (a_side, *a_fingers, a_part) if x)
        b_name = " ".join(x for x in (b_side, *b_fingers, b_part) if x)
        c.problems.append(f"the {a_name} cannot touch the {b_name} of the same hand")
        return []
    actor.use()
    target.use()
    c.take_word("own")

    def name(side, fingers, part):
        return f"{side}_{fingers[0]}_{'tip' if part == 'tip' else 'pad'}" if part in ("tip", "pad") else f"{side}_{part}"

    pa, pb = name(a_side, a_fingers, a_part), name(b_side, b_fingers, b_part)
    if a_side == b_side and a_part in ("tip", "pad") and b_part in ("tip", "pad") and style in ("tap", "touch", "press", "pinch"):
        finger = (b_fingers if a_fingers == ["thumb"] else a_fingers)[0]
        if style in ("tap", "pinch"):
            return [make_action("pinch", (a_side,), c, reps=reps, finger=finger)]
    sides = (a_side,) if a_side == b_side else (a_side, b_side)
    return [make_action("touch", sides, c, reps=reps, style=style, parts=(pa, pb))]


_MOVE_DEFAULT = {"raise": "up", "lower": "down", "push": "forward", "state_e": "forward"}


def move(c: Clause, verb: Token | None, cat: str, sides=None):
    dirs = [t for t in c.tokens if t.tag == "DIR" and t.value not in ("over",)]
    last = c.context.get("last")
    if sides is None and subject_side(c, verb) is None and c.word("it", "them") is not None and last is not None and (
        last.primitive == "hold_object"
    ):
        sides = ("left", "right")  # "hold a box with both hands, then lift it up": the hands carry it
        c.notes.append(f"{c.text!r}: both hands, which hold the {last.obj}")
    sides = sides or hand_sides(c, verb, "move")
    for t in c.all("OBJ"):  # "lift the cup up": the hand carries what it holds
        t.used = True
    c.take_word("it", "them")
    if c.word("circle", "circles") is not None:
        return circle(c, verb)
    out = []
    named = [t for t in dirs if t.value not in ("together", "circle")]
    if not named:
        d = _MOVE_DEFAULT.get(cat, "back" if verb is not None and verb.value == "pull" else None)
        if d is None and any(t.value == "together" for t in dirs):
            d = "inward"
            next(t for t in dirs if t.value == "together").used = True
        if d is None:
            c.problems.append(f"{c.text!r}: in which direction? (up, down, to the left, forward, toward the body ...)")
            return []
        named_dirs = [d]
    else:
        named_dirs = []
        for t in named:
            t.used = True
            if t.value not in named_dirs:
                named_dirs.append(t.value)
        if c.word("side") is not None and c.take_word("side"):
            named_dirs = ["left", "right"]
    reps = take_count(c)
    for _ in range(reps):
        for d in named_dirs:
            out.append(make_action("move", sides, c, direction=d))
    return out


def circle(c: Clause, verb: Token):
    c.take_word("circle", "circles")
    for t in c.tokens:
        if t.tag == "DIR" and t.value == "circle":
            t.used = True
    sides = hand_sides(c, verb, "circle")
    c.take_word("air")
    return [make_action("circle", sides, c, reps=take_count(c))]


def write(c: Clause, verb: Token):
    variant = "scribble"
    if c.take_word("square", "box", "rectangle"):
        variant = "square"
    c.take_word("air", "name", "signature", "letters", "word", "words", "something")
    sides = hand_sides(c, verb, "write")
    return [make_action("write", sides, c, reps=take_count(c), variant=variant)]


def rotate(c: Clause, verb: Token, cat: str):
    over = c.word("over")
    palm = c.word("palm", "palms")
    dirs = [t for t in c.tokens if t.tag == "DIR" and t.value not in ("over", "together", "circle")]
    if cat == "flip" or over is not None:
        if over is not None:
            over.used = True
        sides = hand_sides(c, verb, "flip")
        if palm is not None:
            for m in c.mentions:
                m.use()
        return [make_action("flip", sides, c, reps=take_count(c, 1))]
    if palm is not None and (dirs or c.first("EACHOTHER")):
        return turn(c, verb)
    if c.word("circle", "circles") is not None or any(t.value == "circle" for t in c.tokens if t.tag == "DIR"):
        return circle(c, verb)
    # twist / rotate the wrist (or the hand): forearm roll back and forth
    for m in c.mentions:
        if m.part == "wrist" or m.hand:
            m.use()
    sides = hand_sides(c, verb, "twist")
    return [make_action("rotate_wrist", sides, c, reps=take_count(c, 2))]


_PALM_DIRS = {"up": "up", "down": "down", "forward": "forward", "back": "back", "inward": "inward",
              "outward": "outward"}  # fmt: skip


def turn(c: Clause, verb: Token | None):
    d = next((t for t in c.tokens if t.tag == "DIR" and t.value in _PALM_DIRS), None)
    if d is None and c.first("EACHOTHER") is not None:
        c.take("EACHOTHER")
        direction = "inward"
    elif d is None:
        c.problems.append("turn the palm which way? (up, down, forward, toward each other)")
        return []
    else:
        d.used = True
        direction = _PALM_DIRS[d.value]
    for m in c.mentions:
        if m.part == "palm" or m.hand:
            m.use()
    sides = hand_sides(c, verb, "turn")
    return [make_action("turn", sides, c, direction=direction)]


def point(c: Clause, verb: Token):
    for m in c.mentions:
        if m.fingers in (["index"], []) and m.part in (None, "tip"):
            m.use()
    d = next((t for t in c.tokens if t.tag == "DIR" and t.value in ("up", "down", "forward", "left", "right")), None)
    if d is not None:
        d.used = True
    sides = hand_sides(c, verb, "point")
    return [make_action("point", sides, c, direction=d.value if d is not None else "forward",
                    fingers=states_tuple(SHAPES["point"]))]  # fmt: skip


def count_to(c: Clause, verb: Token):
    nums = [t for t in c.tokens if t.tag == "NUM"]
    for t in nums:
        t.used = True
    c.take_word("to", "from", "until")
    c.take_word("on")
    for m in c.mentions:
        if m.all_fingers:
            m.use()
    target = nums[-1].value if nums else 5
    if not 1 <= target <= 5:
        c.problems.append(f"one hand counts to at most five, not {target}")
        return []
    sides = hand_sides(c, verb, "count")
    return [make_action("count", sides, c, variant=str(int(target)))]


def grasp(c: Clause, verb: Token, obj: Token):
    obj.used = True
    size, grip = OBJECTS[obj.value]
    sides = hand_sides(c, verb, "grasp")
    big = c.word("big", "large")
    if grip == "two_hands" or (len(sides) == 2 and size >= 0.1):
        return [make_action("hold_object", ("left", "right"), c, obj=obj.value)]
    if big is not None and obj.value == "ball":
        big.used = True
        return [make_action("hold_object", ("left", "right"), c, obj="bigball")]
    return [make_action("grasp", sides, c, obj=obj.value, reps=take_count(c),
                    variant="pinch" if grip == "pinch" else ("spherical" if obj.value in ("ball", "tennisball", "apple", "orange", "egg") else "cylindrical"))]  # fmt: skip


def pass_object(c: Clause, verb: Token, obj: Token | None):
    if obj is not None:
        obj.used = True
    src = dst = None
    toks = c.tokens
    for i, t in enumerate(toks):
        if t.tag == "DIR" and t.value in ("left", "right") and i > 0 and toks[i - 1].word in ("leftward", "rightward") or (
            t.tag == "DIR" and t.word in ("leftward", "rightward")
        ):
            dst = t.value  # "... to the right"
            t.used = True
        elif t.tag == "SIDE" and t.value in ("left", "right", "other"):
            prev = [u.word for u in toks[max(0, i - 3) : i]]
            if "from" in prev:
                src = t.value
            elif "to" in prev or "into" in prev:
                dst = t.value
    subj = subject_side(c, verb)
    if src is None and subj in ("left", "right") and dst != subj:
        src = subj
    if dst == "other" or dst is None:
        dst = OTHER_SIDE.get(src or "", None)
    if src is None or src == "other":
        src = OTHER_SIDE.get(dst or "", "right")
    if dst is None:
        dst = OTHER_SIDE[src]
    if src == dst:
        c.problems.append("an object passes from one hand to the other")
        return []
    for m in c.mentions:
        m.use()
    c.take_word("hand", "hands")
    name = obj.value if obj is not None else c.context.get("object") or "ball"
    if obj is None:
        c.take_word("it", "them")
        c.notes.append(f"pass: the object is the {name}" if c.context.get("object") else "pass: no object named, a 7 cm ball")
    if OBJECTS[name][1] == "two_hands":
        c.problems.append(f"a {name} is held with both hands; it cannot be passed from one hand to the other")
        return []
    return [make_action("handover", (src, dst), c, obj=name)]
