"""The compositional prompt grammar: a sentence -> a :class:`~handx_robot.generate.parser.Plan`, or a refusal.

A prompt is read word by word; every word is either *used* by the plan, a function word (``the``,
``with``, ``of`` ...), or reported as unused. A prompt with an unused content word, a clause with no
action, or an action the hands cannot perform is refused with :class:`PromptRefused`, which names the
words and lists the closest phrasings the grammar can perform; ``lenient=True`` keeps what was
understood instead (the plan's ``unused`` lists the rest).

Grammar (case-insensitive; HandX caption style and imperatives)::

    prompt  := clause (SEQ clause)*         SEQ: then, after that, next, finally, afterwards, ';', '.', ','
    clause  := action (PAR action)*         PAR: while, as, at the same time, meanwhile
    action  := [subject] verb [object] [modifiers]
    subject := hand | part                  "the left hand", "the right index fingertip"
    part    := [side] [finger+] [tip | pad | palm | back of the hand | knuckles | wrist]
    modifiers: count (once, twice, N times, repeatedly), duration (for N seconds), speed (slowly,
               quickly, gently, firmly), size (wide, small, slightly), direction (up, down, to the
               left/right, forward, back, toward the body, away from the body, toward each other,
               apart, in a circle), object (cup, ball, pen, box ...)

What the verbs build (see :data:`VERBS`):

* **shapes**: make / form / show / hold up a fist, an open or flat hand, a peace (V) sign, horns,
  a call-me sign, an L, thumbs up / down, an OK sign, a claw, a cupped hand, a number (one .. five);
  **finger states**: extend / raise / straighten / curl / bend / fold / tuck named fingers; a
  ``keep`` / ``stay`` / ``remain`` clause holds finger states while the other clause runs;
* **contacts** between named parts, within a hand (thumb tip with a fingertip; a fingertip with its
  own palm) or across the hands (any part with any part): tap, touch, press, rub, slide, brush, pinch;
* **hand motion**: move / raise / lower / push / pull / bring in a direction, in a circle; turn the
  palm up / down / forward / toward each other; flip; twist or rotate the wrist; shake; wave;
* **two hands**: clap, palms together, rub the palms, interlock the fingers, fingertips together,
  cross the wrists, hold a big object between both hands, pass an object from one hand to the other;
* **objects** with a size (:data:`OBJECTS`): grasp / grab / hold / pick up / take / squeeze;
* count to N, write or draw in the air, point, hold still.

A hand not named is the right hand (the plan says so in its notes). The words themselves (lexicon,
tokens, clause splitting, suggestions) live in :mod:`handx_robot.generate.lexicon`.
"""

from __future__ import annotations

import dataclasses
import re

from handx_robot.errors import ConfigError, MissingDependencyError
from handx_robot.generate.lexicon import (  # noqa: F401 (re-exported: the grammar's words)
    CANONICAL,
    CONTENT_EXEMPT,
    FINGERS,
    MAX_COUNT,
    NUMBER_SHAPES,
    OBJECTS,
    SHAPES,
    STATE_NAMES,
    VERBS,
    Token,
    normalize,
    split,
    suggestions,
    tokenize,
)

__all__ = [
    "OBJECTS",
    "SHAPES",
    "VERBS",
    "PromptRefused",
    "has_known_verb",
    "Token",
    "parse",
    "suggestions",
    "tokenize",
]


class PromptRefused(ConfigError):
    """The prompt asks for something the grammar cannot perform (or has words it cannot use).

    prompt: the prompt; reasons: why, one per problem; unused: words or phrases not used;
    suggestions: the closest phrasings that can be performed; plan: what was understood, or None.
    """

    def __init__(self, prompt: str, reasons, unused=(), suggestions=(), plan=None) -> None:
        self.prompt = prompt
        self.reasons = tuple(reasons)
        self.unused = tuple(unused)
        self.suggestions = tuple(suggestions)
        self.plan = plan
        msg = f"cannot perform {prompt!r}: " + "; ".join(self.reasons)
        if self.suggestions:
            msg += ". Closest phrasings I can perform: " + " | ".join(repr(s) for s in self.suggestions)
        msg += ". (--lenient generates what was understood)"
        super().__init__(msg)


# -- mentions of hands, fingers and parts ------------------------------------------------------
_MENTION_TAGS = frozenset({"SIDE", "FINGER", "PART", "HAND", "FINGERWORD", "OTHERS"})
_POSSESSIVE = frozenset({"its", "his", "her", "their", "own", "my", "your"})


@dataclasses.dataclass
class Mention:
    """A noun phrase naming a hand, fingers or a part: ``the tip of the left index finger``."""

    side: str | None = None  # left, right, both, other, self (its / own), or None
    fingers: list[str] = dataclasses.field(default_factory=list)
    part: str | None = None  # tip, pad, palm, back, knuckles, wrist
    hand: bool = False
    others: bool = False  # "the other / remaining fingers"
    plural: bool = False
    all_fingers: bool = False  # "the fingers"
    start: int = 0
    end: int = 0
    after_with: bool = False
    tokens: list[Token] = dataclasses.field(default_factory=list)

    def use(self) -> None:
        for t in self.tokens:
            t.used = True


def mentions(tokens: list[Token]) -> list[Mention]:
    """The noun phrases of a clause, in order."""
    out: list[Mention] = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t.tag not in _MENTION_TAGS:
            i += 1
            continue
        m = Mention(start=i)
        if i > 0 and tokens[i - 1].word in _POSSESSIVE:
            m.side = "self"
            m.tokens.append(tokens[i - 1])
        j = i
        while j < n:
            u = tokens[j]
            if u.tag == "SIDE":
                k = j + 1
                while k < n and tokens[k].tag == "NUM":  # "the other three fingers"
                    k += 1
                nxt = tokens[k] if k < n else None
                if u.value == "other" and nxt is not None and nxt.tag in ("FINGERWORD", "FINGER") and not m.fingers:
                    m.others = True
                elif u.value == "both" and m.side in ("left", "right"):
                    pass
                else:
                    m.side = u.value if m.side in (None, "self") or u.value != "other" else m.side
            elif u.tag == "FINGER":
                m.fingers.append(u.value)
                m.plural = m.plural or u.word.endswith("s")
            elif u.tag == "PART":
                m.part = u.value
                m.plural = m.plural or u.word.endswith("s") and u.word not in ("backhand",)
            elif u.tag == "HAND":
                m.hand = True
                m.plural = m.plural or u.word == "hands"
            elif u.tag == "FINGERWORD":
                if not m.fingers:
                    m.all_fingers = True
                m.plural = m.plural or u.word == "fingers"
            elif u.tag == "OTHERS":
                m.others = True
            elif u.word in ("and", ",") and j + 1 < n and tokens[j + 1].tag == "FINGER" and m.fingers:
                pass
            elif u.word == "of" and j + 1 < n and any(
                tokens[k].tag in ("SIDE", "HAND") for k in range(j + 1, min(n, j + 4))
            ) and (m.fingers or m.part or m.all_fingers or m.others):
                pass
            elif u.word in ("the", "each", "his", "her", "its", "their") and j + 1 < n and tokens[j + 1].tag in _MENTION_TAGS and j > i:
                pass
            else:
                break
            m.tokens.append(u)
            j += 1
        m.end = j
        if m.others and m.fingers:
            m.others = False
        m.after_with = i > 0 and tokens[i - 1].word in ("with", "using") or (
            i > 1 and tokens[i - 1].word in ("the", "his", "her", "its", "their") and tokens[i - 2].word in ("with", "using")
        )
        if m.side == "self" and m.plural and not m.fingers and (m.hand or m.part in ("palm", "back", "wrist", "knuckles", "tip")):
            m.side = "both" if (i < 2 or tokens[i - 1].word in ("your", "my", "their")) else m.side
        if m.side == "both" or (m.plural and m.side is None and (m.hand or m.part in ("palm", "back", "wrist", "knuckles"))
                                and not m.fingers):
            m.side = "both"
        out.append(m)
        i = max(j, i + 1)
    return out


# -- the clause interpreter --------------------------------------------------------------------
@dataclasses.dataclass
class _Clause:
    text: str
    tokens: list[Token]
    mentions: list[Mention]
    notes: list[str]
    problems: list[str]
    context: dict = dataclasses.field(default_factory=dict)

    def first(self, tag: str) -> Token | None:
        return next((t for t in self.tokens if t.tag == tag), None)

    def all(self, tag: str) -> list[Token]:
        return [t for t in self.tokens if t.tag == tag]

    def take(self, tag: str):
        t = self.first(tag)
        if t is None:
            return None
        t.used = True
        return t.value

    def word(self, *words: str) -> Token | None:
        return next((t for t in self.tokens if t.word in words), None)

    def take_word(self, *words: str) -> bool:
        t = self.word(*words)
        if t is not None:
            t.used = True
        return t is not None


def has_known_verb(clause: str) -> bool:
    """Whether a (normalized) clause has a verb the grammar knows; only clauses without one may be read
    by the open-vocabulary matcher."""
    toks = tokenize(clause)
    return _verb(_Clause(clause, toks, mentions(toks), [], [])) is not None


def _verb(c: _Clause) -> Token | None:
    verbs = [t for t in c.tokens if t.tag == "VERB"]
    if not verbs and c.tokens and c.tokens[0].word in ("hand", "hands") and (
        c.first("OBJ") is not None or (len(c.tokens) > 1 and c.tokens[1].word in ("it", "them"))
    ):
        c.tokens[0].tag, c.tokens[0].value = "VERB", "pass"  # "hand the cup to the left hand"
        verbs = [c.tokens[0]]
    for i in range(1, len(c.tokens)):
        if not verbs and c.tokens[i].tag == "HAND" and c.tokens[i - 1].tag == "HAND":
            c.tokens[i].tag, c.tokens[i].value = "VERB", "pass"  # "the left hand hands a pen to ..."
            verbs = [c.tokens[i]]
    # a keep-verb is the main verb only when nothing else is
    main = [t for t in verbs if VERBS[t.value] not in ("keep",)] or verbs
    return main[0] if main else None


def _subject_side(c: _Clause, verb: Token | None) -> str | None:
    vi = c.tokens.index(verb) if verb is not None else len(c.tokens)
    for m in c.mentions:
        if m.start < vi and m.side in ("left", "right", "both"):
            return m.side
    for m in c.mentions:
        if m.hand and m.side in ("left", "right", "both"):
            return m.side
    for m in c.mentions:
        if m.side in ("left", "right", "both"):
            return m.side
    return None


def _hand_sides(c: _Clause, verb: Token | None, default_note: str) -> tuple[str, ...]:
    side = _subject_side(c, verb)
    for m in c.mentions:
        if m.side in ("left", "right", "both") and (m.hand or m.side == side or m.part or m.fingers or m.all_fingers):
            for t in m.tokens:
                if t.tag in ("SIDE", "HAND"):
                    t.used = True
    for t in c.tokens:
        if t.tag == "HAND":
            t.used = True
    if side == "both":
        return ("left", "right")
    if side in ("left", "right"):
        return (side,)
    if any(m.plural and (m.hand or m.part) for m in c.mentions):
        return ("left", "right")
    if default_note != "keep":  # a keep clause takes the hand of the clause it runs with
        c.notes.append(f"{default_note}: no hand named, the right hand does it")
    return ("right",)


def _modifiers(c: _Clause) -> dict:
    speed, amp = 1.0, 1.0
    for t in c.all("SPEED"):
        speed *= t.value
        t.used = True
    very = c.word("very", "really", "extremely")
    if very is not None and speed != 1.0:
        speed = speed * speed
        very.used = True
    for t in c.all("SIZE"):
        amp *= t.value
        t.used = True
    dur = c.take("DUR")
    return {"speed": float(min(max(speed, 0.3), 3.0)), "amplitude": float(min(max(amp, 0.3), 2.5)), "hold_s": dur}


def _count(c: _Clause, default: int = 1) -> int:
    v = c.take("COUNT")
    if v is None:
        return default
    if not 1 <= int(v) <= MAX_COUNT:
        c.problems.append(f"{int(v)} repetitions: allowed 1..{MAX_COUNT}")
        return default
    return int(v)


def _finger_states(c: _Clause, state: str | None) -> tuple[tuple[str, str], ...]:
    """Finger states named in the clause: each finger mention gets the nearest state word after it."""
    out: dict[str, str] = {}
    st_tokens = c.all("STATE")
    for m in c.mentions:
        fingers = list(m.fingers)
        if m.all_fingers and not fingers:
            fingers = ["index", "middle", "ring", "pinky"]
        if m.others:
            fingers = [f for f in FINGERS if f not in out]
        if not fingers or m.part in ("palm", "back", "knuckles", "wrist"):
            continue
        s = state
        later = [t for t in st_tokens if c.tokens.index(t) >= m.end] or st_tokens
        if later:
            s = STATE_NAMES[later[0].value]
            later[0].used = True
        elif s is None:
            d = next((t for t in c.tokens[m.end :] if t.tag == "DIR" and t.value in ("up", "down", "forward")), None)
            if d is not None:
                s = "curled" if d.value == "down" else "extended"
                d.used = True
        for t in c.tokens[max(0, m.start - 1) : m.end]:
            if t.tag == "NUM":
                t.used = True
        if s is None:
            continue
        m.use()
        for f in fingers:
            out[f] = s
    return tuple((f, out[f]) for f in FINGERS if f in out)


def _action(primitive: str, sides, c: _Clause, **kw):
    from handx_robot.generate.parser import Action

    mods = _modifiers(c)
    mods.update({k: kw.pop(k) for k in list(kw) if k in ("speed", "amplitude", "hold_s")})
    return Action(primitive=primitive, sides=tuple(sides), text=c.text, **mods, **kw)


def interpret(c: _Clause):
    """The actions of one clause (a list; empty when nothing is understood, with ``c.problems`` saying why)."""
    verb = _verb(c)
    cat = VERBS[verb.value] if verb is not None else None
    shape = c.first("SHAPE")
    obj = c.first("OBJ")
    if verb is not None:
        verb.used = True
    # -- clauses with no verb: "with the thumb extended", "a peace sign with the left hand"
    if cat is None:
        last = c.context.get("last")
        if shape is not None:
            return _shape(c, None, shape)
        if c.word("number") is not None and last is not None:
            return _number(c, None, sides=last.sides)
        if last is not None and last.primitive == "move" and c.first("DIR") is not None:
            return _move(c, None, "move", sides=last.sides)
        if last is not None and last.primitive in ("touch", "pinch") and _contact_mentions(c) and c.context.get("prefix"):
            return _reinterpret(c, c.context["prefix"] + " " + c.text)
        if c.first("STATE") is not None:
            return _keep(c, None)
        if c.first("DIR") is not None and c.word("palm", "palms") is not None:
            return _turn(c, None)
        c.problems.append(f"no action I know in {c.text!r}")
        return []
    if cat == "keep":
        if c.first("STATE") is not None or c.first("SHAPE") is not None or (
            _finger_mentions(c) and any(t.tag == "DIR" and t.value in ("up", "down") for t in c.tokens)
        ):
            return _keep(c, verb) if shape is None else _shape(c, verb, shape)
        if c.first("DIR") is not None and c.word("palm", "palms") is not None:
            return _turn(c, verb)
        c.problems.append(f"{verb.word!r} needs a finger state (extended, curled, half bent) or a shape")
        return []
    if cat == "hold":
        if obj is not None:
            return _grasp(c, verb, obj)
        if shape is not None:
            return _shape(c, verb, shape)
        if c.first("STATE") is not None:
            return _keep(c, verb, standalone=True)
        if c.word("palm", "palms") is not None and c.first("DIR") is not None:
            return _turn(c, verb)
        if _contact_mentions(c):
            return _contact(c, verb, "press")
        return [_action("hold_still", _hand_sides(c, verb, "hold"), c)]
    if cat == "give" and (obj is not None or (c.word("it", "them") is not None and c.context.get("object"))):
        return _pass(c, verb, obj)
    if cat in ("shape", "give", "raise", "open", "close", "spread", "state_e", "state_c", "lower") and shape is not None:
        return _shape(c, verb, shape)
    if cat in ("shape", "raise", "give") and (c.first("NUM") is not None or c.word("number")) and c.first("OBJ") is None:
        return _number(c, verb)
    if cat == "shape":
        if c.word("palm", "palms") is not None and c.first("DIR") is not None:
            return _turn(c, verb)
        if any(m.fingers or m.all_fingers for m in c.mentions) and c.first("STATE") is not None:
            return _fingers(c, verb, None)
        c.problems.append(f"{verb.word!r}: show what? (a shape such as a fist, a peace sign, horns, or a number)")
        return []
    if cat in ("state_e", "state_c", "raise", "lower", "open", "close", "spread") and _finger_mentions(c):
        state = {"state_e": "extended", "raise": "extended", "open": "extended", "spread": "extended",
                 "state_c": "curled", "lower": "curled", "close": "curled"}[cat]  # fmt: skip
        if c.first("STATE") is not None and c.first("STATE").value == "H":
            state = "half"
        return _fingers(c, verb, state)
    if cat in ("open", "spread"):
        return [_action("open_hand", _hand_sides(c, verb, "open"), c, reps=_count(c))]
    if cat == "close" or (cat == "state_c" and not _finger_mentions(c)):
        return [_action("fist", _hand_sides(c, verb, "close"), c, reps=_count(c))]
    if cat in ("rub", "press") and not _contact_mentions(c) and c.word("them", "it") is not None and (
        c.context.get("last") is not None and c.context["last"].primitive in ("palms_together", "clap", "rub_palms")
    ):
        c.take_word("them", "it")
        return [_action("rub_palms" if cat == "rub" else "palms_together", ("left", "right"), c, reps=_count(c, 3))]
    if cat == "draw" and c.word("circle", "circles") is not None and len(_contact_mentions(c)) >= 2:
        c.take_word("circle", "circles")
        return _contact(c, verb, "rub")
    if cat in ("tap", "touch", "press", "rub", "slide", "pinch", "push", "put") and (
        cat != "push" or _contact_mentions(c) or c.word("against", "into", "on", "onto")
    ) and (cat != "put" or _contact_mentions(c) or c.first("DIR") is not None):
        return _contact(c, verb, cat)
    if cat == "join":
        return _contact(c, verb, "touch")
    if cat in ("move", "raise", "lower", "push", "state_e"):
        return _move(c, verb, cat)
    if cat in ("circle", "draw") and (c.word("circle", "circles") is not None or cat == "circle"):
        return _circle(c, verb)
    if cat in ("draw", "write"):
        return _write(c, verb)
    if cat in ("turn", "rotate", "twist", "flip"):
        return _rotate(c, verb, cat)
    if cat == "wave":
        c.take_word("hello", "goodbye", "bye", "hi")
        return [_action("wave", _hand_sides(c, verb, "wave"), c, reps=_count(c, 3))]
    if cat == "shake":
        return [_action("shake", _hand_sides(c, verb, "shake"), c, reps=_count(c, 4))]
    if cat == "point":
        return _point(c, verb)
    if cat == "count":
        return _count_action(c, verb)
    if cat == "clap":
        c.take_word("hands")
        return [_action("clap", ("left", "right"), c, reps=_count(c))]
    if cat == "interlock":
        _use_both(c)
        return [_action("interlock", ("left", "right"), c)]
    if cat == "steeple":
        _use_both(c)
        return [_action("touch_fingertips", ("left", "right"), c, reps=_count(c))]
    if cat == "cross":
        if c.word("wrist", "wrists") is not None or c.word("hands", "forearms", "arms") is not None:
            _use_both(c)
            for m in c.mentions:
                m.use()
            c.take_word("over")
            c.take_word("forearms", "arms")
            return [_action("cross_wrists", ("left", "right"), c)]
        c.problems.append("only the wrists can be crossed (crossing fingers is not an action I can perform)")
        return []
    if cat in ("grasp",):
        if obj is None:
            c.problems.append(f"{verb.word!r} what? name an object (cup, ball, pen, box ...)")
            return []
        return _grasp(c, verb, obj)
    if cat == "pass":
        return _pass(c, verb, obj)
    if cat == "play":
        if c.take_word("piano", "keyboard", "keys") or verb.value == "drum":
            for m in c.mentions:
                if m.all_fingers or m.hand:
                    m.use()
            return [_action("piano", _hand_sides(c, verb, "piano"), c, reps=_count(c, 2))]
        c.problems.append(f"{verb.word!r}: play what? (the piano)")
        return []
    if cat == "still":
        return [_action("hold_still", _hand_sides(c, verb, "hold still"), c)]
    if cat == "give":
        c.problems.append(f"{verb.word!r} what? (a thumbs up, or an object to the other hand)")
        return []
    c.problems.append(f"I do not know how to perform {verb.word!r} here")
    return []


def _use_both(c: _Clause) -> None:
    for m in c.mentions:
        if m.side in ("both", None) or m.hand:
            m.use()
    for t in c.tokens:
        if t.tag == "DIR" and t.value == "together" or t.tag == "EACHOTHER":
            t.used = True
        if t.tag == "FINGERWORD" or t.tag == "HAND":
            t.used = True


def _finger_mentions(c: _Clause) -> list[Mention]:
    return [m for m in c.mentions if (m.fingers or m.all_fingers or m.others) and m.part is None]


def _contact_mentions(c: _Clause) -> list[Mention]:
    return [m for m in c.mentions if m.part is not None or m.fingers]


def _states_tuple(pattern: str) -> tuple[tuple[str, str], ...]:
    return tuple((f, STATE_NAMES[s]) for f, s in zip(FINGERS, pattern) if s in STATE_NAMES)


_SHAPE_PRIMITIVE = {"fist": "fist", "open": "open_hand", "thumbs_up": "thumbs_up", "ok": "ok_sign", "point": "point"}


def _shape(c: _Clause, verb: Token | None, shape_tok: Token):
    shape_tok.used = True
    name = shape_tok.value
    sides = _hand_sides(c, verb, "shape")
    keep = _finger_states(c, None)
    reps = _count(c)
    prim = _SHAPE_PRIMITIVE.get(name)
    if prim is not None and not keep:
        return [_action(prim, sides, c, reps=reps, fingers=_states_tuple(SHAPES[name]), variant=name)]
    states = dict(_states_tuple(SHAPES[name]))
    states.update(dict(keep))
    return [_action("shape", sides, c, reps=reps, variant=name,
                    fingers=tuple((f, states[f]) for f in FINGERS if f in states))]  # fmt: skip


def _number(c: _Clause, verb: Token | None, sides=None):
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
    sides = sides or _hand_sides(c, verb, "number")
    return [_action("shape", sides, c, variant=name, fingers=_states_tuple(SHAPES[name]))]


def _keep(c: _Clause, verb: Token | None, standalone: bool = False):
    sides = _hand_sides(c, verb, "keep")
    states = _finger_states(c, None)
    if not states:
        c.problems.append(f"{c.text!r}: which fingers, in which state?")
        return []
    prim = "fingers" if standalone else "keep"
    others = "others" if any(m.others for m in c.mentions) else None
    return [_action(prim, sides, c, fingers=states, variant=others)]


def _fingers(c: _Clause, verb: Token | None, state: str | None):
    sides = _hand_sides(c, verb, "fingers")
    states = _finger_states(c, state)
    if not states:
        c.problems.append(f"{c.text!r}: which fingers?")
        return []
    return [_action("fingers", sides, c, fingers=states, reps=_count(c))]


def _resolve(m: Mention, subject: str | None) -> tuple[str | None, list[str], str | None]:
    side = m.side
    if side == "self":
        side = subject
    part = m.part
    fingers = list(m.fingers)
    if m.all_fingers and not fingers:
        fingers = []
        part = part or "tip"
    if fingers and part is None:
        part = "tip"
    if not fingers and part in ("tip", "pad"):
        fingers = ["index"]  # "a fingertip": the index
    if part is None and m.hand:
        part = "hand"
    return side, fingers, part


_OTHER = {"left": "right", "right": "left"}
_STYLE = {"tap": "tap", "touch": "touch", "press": "press", "push": "press", "put": "press", "rub": "rub",
          "slide": "slide", "pinch": "pinch"}  # fmt: skip


def _reinterpret(c: _Clause, text: str):
    """An elliptical clause ("..., then the middle fingertip") read with the previous clause's subject and verb."""
    toks = tokenize(text)
    inner = _Clause(text, toks, mentions(toks), c.notes, c.problems, c.context)
    acts = interpret(inner)
    for t in c.tokens:
        t.used = t.used or any(u.used and u.word == t.word for u in toks)
    return acts


def _contact(c: _Clause, verb: Token, cat: str):
    style = _STYLE.get(cat, "touch")
    c.take_word("together")
    if style == "rub":
        for t in c.tokens:
            if t.tag == "DIR" and t.value == "circle" or t.word in ("circle", "circles"):
                t.used = True
    ms = [m for m in c.mentions if m.part is not None or m.fingers or m.hand or m.all_fingers]
    reps = _count(c, 3 if style == "rub" else 1)
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
        _use_both(c)
        if m.part == "palm" or (m.hand and m.part is None):
            prim = {"rub": "rub_palms", "tap": "clap"}.get(style, "palms_together")
            return [_action(prim, ("left", "right"), c, reps=reps)]
        if m.part in ("tip", "pad"):
            if len(m.fingers) == 1:
                f = m.fingers[0]
                return [_action("touch", ("left", "right"), c, reps=reps, style=style,
                                parts=(f"right_{f}_tip", f"left_{f}_tip"))]  # fmt: skip
            return [_action("touch_fingertips", ("left", "right"), c, reps=reps)]
        if m.part == "wrist":
            return [_action("cross_wrists", ("left", "right"), c)]
        if m.part in ("back", "knuckles"):
            return [_action("touch", ("left", "right"), c, reps=reps, style=style,
                            parts=(f"right_{m.part}", f"left_{m.part}"))]  # fmt: skip
    # the thumb rubbing the fingertips of its own hand ("rub the fingers", "rub the thumb against the fingertips")
    if style == "rub" and ms and all((m.all_fingers or m.fingers == ["thumb"]) and m.part in (None, "tip") for m in ms) and (
        len({m.side for m in ms if m.side in ("left", "right")}) <= 1
    ):
        for m in ms:
            m.use()
        return [_action("rub_fingers", _hand_sides(c, verb, "rub"), c, reps=reps)]
    # pinch: thumb and a finger of one hand
    if style == "pinch" or (len(ms) >= 1 and "thumb" in ms[0].fingers and len(ms[0].fingers) == 2 and len(ms) == 1):
        m = next((m for m in ms if m.fingers), None)
        fingers = [f for mm in ms for f in mm.fingers]
        side = next((mm.side for mm in ms if mm.side in ("left", "right", "both")), None)
        if side is None:
            side = "both" if _hand_sides(c, verb, "pinch") == ("left", "right") else _hand_sides(c, verb, "pinch")[0]
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
            return [_action("pinch", pinch_sides, c, reps=reps, finger=others[0])]
        return [_action("touch", (side,), c, reps=reps, style="touch",
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
    a_side, a_fingers, a_part = _resolve(actor, subj_side)
    b_side, b_fingers, b_part = _resolve(target, a_side)
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
        a_side = _OTHER.get(b_side or "", None)
    if b_side == "other":
        b_side = _OTHER.get(a_side or "right", "left")
    if a_side is None and b_side is None:
        a_side = "right"
        c.notes.append("contact: no hand named, the right hand acts")
    if a_side is None:
        a_side = b_side if (within_ok and target.side != "self" and "thumb" in a_fingers + b_fingers) else _OTHER[b_side]
    if b_side is None:
        own = target.side == "self" or c.take_word("own")
        b_side = a_side if (within_ok and (own or ("thumb" in a_fingers + b_fingers and b_part != "palm"))) else _OTHER[a_side]
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
            return [_action("pinch", (a_side,), c, reps=reps, finger=finger)]
    sides = (a_side,) if a_side == b_side else (a_side, b_side)
    return [_action("touch", sides, c, reps=reps, style=style, parts=(pa, pb))]


_MOVE_DEFAULT = {"raise": "up", "lower": "down", "push": "forward", "state_e": "forward"}


def _move(c: _Clause, verb: Token | None, cat: str, sides=None):
    dirs = [t for t in c.tokens if t.tag == "DIR" and t.value not in ("over",)]
    last = c.context.get("last")
    if sides is None and _subject_side(c, verb) is None and c.word("it", "them") is not None and last is not None and (
        last.primitive == "hold_object"
    ):
        sides = ("left", "right")  # "hold a box with both hands, then lift it up": the hands carry it
        c.notes.append(f"{c.text!r}: both hands, which hold the {last.obj}")
    sides = sides or _hand_sides(c, verb, "move")
    for t in c.all("OBJ"):  # "lift the cup up": the hand carries what it holds
        t.used = True
    c.take_word("it", "them")
    if c.word("circle", "circles") is not None:
        return _circle(c, verb)
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
    reps = _count(c)
    for _ in range(reps):
        for d in named_dirs:
            out.append(_action("move", sides, c, direction=d))
    return out


def _circle(c: _Clause, verb: Token):
    c.take_word("circle", "circles")
    for t in c.tokens:
        if t.tag == "DIR" and t.value == "circle":
            t.used = True
    sides = _hand_sides(c, verb, "circle")
    c.take_word("air")
    return [_action("circle", sides, c, reps=_count(c))]


def _write(c: _Clause, verb: Token):
    variant = "scribble"
    if c.take_word("square", "box", "rectangle"):
        variant = "square"
    c.take_word("air", "name", "signature", "letters", "word", "words", "something")
    sides = _hand_sides(c, verb, "write")
    return [_action("write", sides, c, reps=_count(c), variant=variant)]


def _rotate(c: _Clause, verb: Token, cat: str):
    over = c.word("over")
    palm = c.word("palm", "palms")
    dirs = [t for t in c.tokens if t.tag == "DIR" and t.value not in ("over", "together", "circle")]
    if cat == "flip" or over is not None:
        if over is not None:
            over.used = True
        sides = _hand_sides(c, verb, "flip")
        if palm is not None:
            for m in c.mentions:
                m.use()
        return [_action("flip", sides, c, reps=_count(c, 1))]
    if palm is not None and (dirs or c.first("EACHOTHER")):
        return _turn(c, verb)
    if c.word("circle", "circles") is not None or any(t.value == "circle" for t in c.tokens if t.tag == "DIR"):
        return _circle(c, verb)
    # twist / rotate the wrist (or the hand): forearm roll back and forth
    for m in c.mentions:
        if m.part == "wrist" or m.hand:
            m.use()
    sides = _hand_sides(c, verb, "twist")
    return [_action("rotate_wrist", sides, c, reps=_count(c, 2))]


_PALM_DIRS = {"up": "up", "down": "down", "forward": "forward", "back": "back", "inward": "inward",
              "outward": "outward"}  # fmt: skip


def _turn(c: _Clause, verb: Token | None):
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
    sides = _hand_sides(c, verb, "turn")
    return [_action("turn", sides, c, direction=direction)]


def _point(c: _Clause, verb: Token):
    for m in c.mentions:
        if m.fingers in (["index"], []) and m.part in (None, "tip"):
            m.use()
    d = next((t for t in c.tokens if t.tag == "DIR" and t.value in ("up", "down", "forward", "left", "right")), None)
    if d is not None:
        d.used = True
    sides = _hand_sides(c, verb, "point")
    return [_action("point", sides, c, direction=d.value if d is not None else "forward",
                    fingers=_states_tuple(SHAPES["point"]))]  # fmt: skip


def _count_action(c: _Clause, verb: Token):
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
    sides = _hand_sides(c, verb, "count")
    return [_action("count", sides, c, variant=str(int(target)))]


def _grasp(c: _Clause, verb: Token, obj: Token):
    obj.used = True
    size, grip = OBJECTS[obj.value]
    sides = _hand_sides(c, verb, "grasp")
    big = c.word("big", "large")
    if grip == "two_hands" or (len(sides) == 2 and size >= 0.1):
        return [_action("hold_object", ("left", "right"), c, obj=obj.value)]
    if big is not None and obj.value == "ball":
        big.used = True
        return [_action("hold_object", ("left", "right"), c, obj="bigball")]
    return [_action("grasp", sides, c, obj=obj.value, reps=_count(c),
                    variant="pinch" if grip == "pinch" else ("spherical" if obj.value in ("ball", "tennisball", "apple", "orange", "egg") else "cylindrical"))]  # fmt: skip


def _pass(c: _Clause, verb: Token, obj: Token | None):
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
    subj = _subject_side(c, verb)
    if src is None and subj in ("left", "right") and dst != subj:
        src = subj
    if dst == "other" or dst is None:
        dst = _OTHER.get(src or "", None)
    if src is None or src == "other":
        src = _OTHER.get(dst or "", "right")
    if dst is None:
        dst = _OTHER[src]
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
    return [_action("handover", (src, dst), c, obj=name)]


# -- the prompt --------------------------------------------------------------------------------
def _unused(tokens: list[Token]) -> list[str]:
    out = []
    for t in tokens:
        if t.used or t.tag == "STOP" or t.word in CONTENT_EXEMPT or t.tag in ("HAND", "FINGERWORD"):
            continue
        if t.tag == "SIDE" and t.value in ("both", "other"):
            continue
        out.append(t.word)
    return out


def parse(prompt: str, lenient: bool = False, matcher=None):
    """Parse ``prompt`` into a :class:`~handx_robot.generate.parser.Plan`.

    Raises :class:`PromptRefused` when a word is unused, a clause has no action or an action cannot be
    performed; with ``lenient`` the plan keeps what was understood (``plan.unused`` lists the rest) and
    only a prompt with nothing understood is refused. ``matcher`` (optional, ``clause -> (primitive,
    score)``, raising ``ConfigError`` below its calibrated threshold) reads a clause that has no verb
    the grammar knows; its matches are named in ``plan.notes``.
    """
    from handx_robot.generate.parser import BIMANUAL_PRIMITIVES, Action, Plan, Step

    if prompt is None or not str(prompt).strip():
        raise PromptRefused(str(prompt or ""), ["the prompt is empty; describe what the hands do"],
                            suggestions=CANONICAL[:3])  # fmt: skip
    steps: list[Step] = []
    unused: list[str] = []
    notes: list[str] = []
    problems: list[str] = []
    last_sides: tuple[str, ...] | None = None
    context: dict = {}
    for clauses in _split_and(split(normalize(prompt))):
        actions: list[Action] = []
        for text in clauses:
            toks = tokenize(text)
            c = _Clause(text, toks, mentions(toks), [], [], context)
            acts = interpret(c)
            for a in acts:
                if a.primitive != "keep":
                    context["last"] = a
                if a.obj is not None:
                    context["object"] = a.obj
                if a.primitive in ("touch", "pinch"):
                    verb = _verb(c)
                    if verb is not None:
                        context["prefix"] = " ".join(t.word for t in toks[: toks.index(verb) + 1] if t.tag not in ("COUNT", "DUR"))
            if not acts and matcher is not None and not c.problems[1:] and not has_known_verb(text):
                try:
                    prim, score = matcher(text)
                except ConfigError:
                    prim = None
                except MissingDependencyError as exc:  # no embedding model installed: refuse, say why
                    prim = None
                    c.notes.append(f"open vocabulary unavailable ({exc})")
                if prim is not None:
                    acts = [Action(prim, ("right",) if prim not in BIMANUAL_PRIMITIVES else ("left", "right"),
                                   text=text, matched_by="embedding", score=score)]  # fmt: skip
                    for t in toks:
                        t.used = True
                    c.problems.clear()
                    c.notes.append(f"{text!r} read as {prim} by sentence similarity {score:.2f}")
            words = _unused(toks)
            if words:
                unused.extend(words)
                problems.append(f"not understood in {text!r}: {', '.join(repr(w) for w in words)}")
            problems.extend(c.problems)
            notes.extend(c.notes)
            actions.extend(acts)
        if not actions:
            continue
        # a clause naming no hand continues with the hand of the previous step
        if len(actions) == 1 and last_sides is not None:
            a = actions[0]
            if a.primitive not in BIMANUAL_PRIMITIVES and a.primitive != "touch" and any(
                n.startswith("hand not named") or "no hand named" in n for n in notes[-1:]
            ) and a.sides != last_sides:
                actions = [dataclasses.replace(a, sides=last_sides)]
                notes[-1] = f"{a.text!r}: no hand named, the {' and '.join(last_sides)} hand{'s' if len(last_sides) > 1 else ''} as before"
        try:
            actions = _parallel(actions)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        main = [a for a in actions if a.primitive != "keep"]
        if len(main) == 1 and main[0].primitive not in BIMANUAL_PRIMITIVES and main[0].primitive != "touch":
            last_sides = main[0].sides
        # several moves of one clause ("up and down") are steps of their own
        if len(main) > 1 and all(a.primitive == "move" and a.text == main[0].text for a in main):
            steps.extend(Step((a,)) for a in main)
            continue
        steps.append(Step(tuple(actions)))
    plan = Plan(prompt=str(prompt), steps=tuple(steps), unused=tuple(unused), notes=tuple(notes))
    if problems and (not lenient or not steps):
        raise PromptRefused(str(prompt), problems, unused, suggestions(str(prompt)), plan if steps else None)
    if problems:
        plan = dataclasses.replace(plan, notes=plan.notes + tuple(f"not performed: {p}" for p in problems))
    return plan


def _split_and(steps: list[list[str]]) -> list[list[str]]:
    """'clap twice and wave' is two steps; 'pinch the thumb and index finger' is one clause."""
    out: list[list[str]] = []
    for clauses in steps:
        new: list[str] = []
        for cl in clauses:
            parts = [p.strip() for p in re.split(r"\band\b", cl) if p.strip()]
            if len(parts) > 1 and all(_verb_in(p) for p in parts):
                m = re.search(r"\b(?:the |his |her |its )?(?:left|right|both)\b(?: hands?)?", parts[-1])
                if m and not re.search(r"\b(?:left|right|both)\b", parts[0]):
                    parts = [p if re.search(r"\b(?:left|right|both)\b", p) else f"{p} {m.group(0)}" for p in parts]
                if len(clauses) == 1:
                    out.extend([p] for p in parts)
                    new = []
                    break
            new.append(cl)
        if new:
            out.append(new)
    return out


def _verb_in(text: str) -> bool:
    return any(t.tag == "VERB" for t in tokenize(text))


def _parallel(actions: list) -> list:
    """Simultaneous actions use different hands; ``keep`` constraints ride on the hand they name."""
    keeps = [a for a in actions if a.primitive == "keep"]
    main = [a for a in actions if a.primitive != "keep"]
    if len(main) == 1 and len(main[0].sides) == 1:
        m = main[0]
        fixed = []
        for k in keeps:
            if not re.search(r"\b(left|right|both)\b", k.text):
                k = dataclasses.replace(k, sides=m.sides)
            if k.variant == "others" and k.sides == m.sides:
                state = k.fingers[0][1] if k.fingers else "curled"
                main_states = dict(m.fingers)
                if main_states and m.primitive != "fingers":
                    # a shape: "the other fingers" are its fingers already in that state
                    others = [f for f in FINGERS if main_states.get(f) == state]
                else:
                    named = set(main_states) | ({m.finger} if m.finger else set())
                    if m.primitive == "touch":
                        named |= {p.split("_")[1] for p in m.parts if p.startswith(m.sides[0]) and p.split("_")[1] in FINGERS}
                    if m.primitive == "pinch":
                        named |= {"thumb", m.finger or "index"}
                    others = [f for f in FINGERS if f not in named]
                k = dataclasses.replace(k, fingers=tuple((f, state) for f in others))
            fixed.append(k)
        keeps = fixed
    if not main:
        # "the thumb stays up while the other fingers are closed": one held finger state per hand
        merged: dict[tuple[str, ...], dict[str, str]] = {}
        firsts: dict[tuple[str, ...], object] = {}
        for k in sorted(keeps, key=lambda k: k.variant == "others"):
            sides = k.sides
            if k.variant == "others" and not re.search(r"\b(left|right|both)\b", k.text) and len(firsts) == 1:
                sides = next(iter(firsts))
            states = merged.setdefault(sides, {})
            firsts.setdefault(sides, k)
            for f, st in k.fingers:
                if k.variant != "others" or f not in states:
                    states[f] = st
        return [dataclasses.replace(firsts[sd], primitive="fingers", sides=sd, variant=None,
                                    fingers=tuple((f, st[f]) for f in FINGERS if f in st))
                for sd, st in merged.items()]  # fmt: skip
    if len(main) > 2:
        raise ConfigError(f"at most two actions at the same time (one per hand): {[a.text for a in main]}")
    if len(main) == 2:
        a, b = main
        used_a, used_b = set(a.sides), set(b.sides)
        if a.primitive == "move" and b.primitive == "move" and a.text == b.text:
            return main + keeps
        if used_a & used_b:
            if len(used_a) == 1 and len(used_b) == 1 and "no hand named" not in " ".join([]):
                other = _OTHER[a.sides[0]]
                if not re.search(r"\b(left|right|both)\b", b.text):
                    b = dataclasses.replace(b, sides=(other,))
                elif not re.search(r"\b(left|right|both)\b", a.text):
                    a = dataclasses.replace(a, sides=(_OTHER[b.sides[0]],))
                else:
                    raise ConfigError(f"{a.text!r} and {b.text!r} both use the {a.sides[0]} hand at the same time")
            else:
                raise ConfigError(f"{a.text!r} and {b.text!r} need the same hand at the same time (one per hand); use 'then'")
        main = [a, b]
    return main + keeps
