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

A hand not named is the right hand (the plan says so in its notes). Module map: the words (lexicon, tokens,
clause splitting, suggestions) in :mod:`handx_robot.generate.lexicon`; the noun phrases and the clause
being read in :mod:`handx_robot.generate.clause`; one builder per kind of action in
:mod:`handx_robot.generate.actions`; this module dispatches a clause to its builder
(:func:`interpret`) and assembles, checks and refuses the plan (:func:`parse`).
"""

from __future__ import annotations

import dataclasses
import re

from handx_robot.errors import ConfigError, MissingDependencyError
from handx_robot.generate import actions as act
from handx_robot.generate.clause import (
    OTHER_SIDE,
    Clause,
    contact_mentions,
    finger_mentions,
    hand_sides,
    has_known_verb,
    make_action,
    mentions,
    take_count,
    use_both,
    verb_of,
)
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


def interpret(c: Clause):
    """The actions of one clause (a list; empty when nothing is understood, with ``c.problems`` saying why)."""
    verb = verb_of(c)
    cat = VERBS[verb.value] if verb is not None else None
    shape = c.first("SHAPE")
    obj = c.first("OBJ")
    if verb is not None:
        verb.used = True
    # -- clauses with no verb: "with the thumb extended", "a peace sign with the left hand"
    if cat is None:
        last = c.context.get("last")
        if shape is not None:
            return act.shape(c, None, shape)
        if c.word("number") is not None and last is not None:
            return act.number(c, None, sides=last.sides)
        if last is not None and last.primitive == "move" and c.first("DIR") is not None:
            return act.move(c, None, "move", sides=last.sides)
        if last is not None and last.primitive in ("touch", "pinch") and contact_mentions(c) and c.context.get("prefix"):
            return _reinterpret(c, c.context["prefix"] + " " + c.text)
        if c.first("STATE") is not None:
            return act.keep(c, None)
        if c.first("DIR") is not None and c.word("palm", "palms") is not None:
            return act.turn(c, None)
        c.problems.append(f"no action I know in {c.text!r}")
        return []
    if cat == "keep":
        if c.first("STATE") is not None or c.first("SHAPE") is not None or (
            finger_mentions(c) and any(t.tag == "DIR" and t.value in ("up", "down") for t in c.tokens)
        ):
            return act.keep(c, verb) if shape is None else act.shape(c, verb, shape)
        if c.first("DIR") is not None and c.word("palm", "palms") is not None:
            return act.turn(c, verb)
        c.problems.append(f"{verb.word!r} needs a finger state (extended, curled, half bent) or a shape")
        return []
    if cat == "hold":
        if obj is not None:
            return act.grasp(c, verb, obj)
        if shape is not None:
            return act.shape(c, verb, shape)
        if c.first("STATE") is not None:
            return act.keep(c, verb, standalone=True)
        if c.word("palm", "palms") is not None and c.first("DIR") is not None:
            return act.turn(c, verb)
        if contact_mentions(c):
            return act.contact(c, verb, "press")
        return [make_action("hold_still", hand_sides(c, verb, "hold"), c)]
    if cat == "give" and (obj is not None or (c.word("it", "them") is not None and c.context.get("object"))):
        return act.pass_object(c, verb, obj)
    if cat in ("shape", "give", "raise", "open", "close", "spread", "state_e", "state_c", "lower") and shape is not None:
        return act.shape(c, verb, shape)
    if cat in ("shape", "raise", "give") and (c.first("NUM") is not None or c.word("number")) and c.first("OBJ") is None:
        return act.number(c, verb)
    if cat == "shape":
        if c.word("palm", "palms") is not None and c.first("DIR") is not None:
            return act.turn(c, verb)
        if any(m.fingers or m.all_fingers for m in c.mentions) and c.first("STATE") is not None:
            return act.fingers(c, verb, None)
        c.problems.append(f"{verb.word!r}: show what? (a shape such as a fist, a peace sign, horns, or a number)")
        return []
    if cat in ("state_e", "state_c", "raise", "lower", "open", "close", "spread") and finger_mentions(c):
        state = {"state_e": "extended", "raise": "extended", "open": "extended", "spread": "extended",
                 "state_c": "curled", "lower": "curled", "close": "curled"}[cat]  # fmt: skip
        if c.first("STATE") is not None and c.first("STATE").value == "H":
            state = "half"
        return act.fingers(c, verb, state)
    if cat in ("open", "spread"):
        return [make_action("open_hand", hand_sides(c, verb, "open"), c, reps=take_count(c))]
    if cat == "close" or (cat == "state_c" and not finger_mentions(c)):
        return [make_action("fist", hand_sides(c, verb, "close"), c, reps=take_count(c))]
    if cat in ("rub", "press") and not contact_mentions(c) and c.word("them", "it") is not None and (
        c.context.get("last") is not None and c.context["last"].primitive in ("palms_together", "clap", "rub_palms")
    ):
        c.take_word("them", "it")
        return [make_action("rub_palms" if cat == "rub" else "palms_together", ("left", "right"), c, reps=take_count(c, 3))]
    if cat == "draw" and c.word("circle", "circles") is not None and len(contact_mentions(c)) >= 2:
        c.take_word("circle", "circles")
        return act.contact(c, verb, "rub")
    if cat in ("tap", "touch", "press", "rub", "slide", "pinch", "push", "put") and (
        cat != "push" or contact_mentions(c) or c.word("against", "into", "on", "onto")
    ) and (cat != "put" or contact_mentions(c) or c.first("DIR") is not None):
        return act.contact(c, verb, cat)
    if cat == "join":
        return act.contact(c, verb, "touch")
    if cat in ("move", "raise", "lower", "push", "state_e"):
        return act.move(c, verb, cat)
    if cat in ("circle", "draw") and (c.word("circle", "circles") is not None or cat == "circle"):
        return act.circle(c, verb)
    if cat in ("draw", "write"):
        return act.write(c, verb)
    if cat in ("turn", "rotate", "twist", "flip"):
        return act.rotate(c, verb, cat)
    if cat == "wave":
        c.take_word("hello", "goodbye", "bye", "hi")
        return [make_action("wave", hand_sides(c, verb, "wave"), c, reps=take_count(c, 3))]
    if cat == "shake":
        return [make_action("shake", hand_sides(c, verb, "shake"), c, reps=take_count(c, 4))]
    if cat == "point":
        return act.point(c, verb)
    if cat == "count":
        return act.count_to(c, verb)
    if cat == "clap":
        c.take_word("hands")
        return [make_action("clap", ("left", "right"), c, reps=take_count(c))]
    if cat == "interlock":
        use_both(c)
        return [make_action("interlock", ("left", "right"), c)]
    if cat == "steeple":
        use_both(c)
        return [make_action("touch_fingertips", ("left", "right"), c, reps=take_count(c))]
    if cat == "cross":
        if c.word("wrist", "wrists") is not None or c.word("hands", "forearms", "arms") is not None:
            use_both(c)
            for m in c.mentions:
                m.use()
            c.take_word("over")
            c.take_word("forearms", "arms")
            return [make_action("cross_wrists", ("left", "right"), c)]
        c.problems.append("only the wrists can be crossed (crossing fingers is not an action I can perform)")
        return []
    if cat in ("grasp",):
        if obj is None:
            c.problems.append(f"{verb.word!r} what? name an object (cup, ball, pen, box ...)")
            return []
        return act.grasp(c, verb, obj)
    if cat == "pass":
        return act.pass_object(c, verb, obj)
    if cat == "play":
        if c.take_word("piano", "keyboard", "keys") or verb.value == "drum":
            for m in c.mentions:
                if m.all_fingers or m.hand:
                    m.use()
            return [make_action("piano", hand_sides(c, verb, "piano"), c, reps=take_count(c, 2))]
        c.problems.append(f"{verb.word!r}: play what? (the piano)")
        return []
    if cat == "still":
        return [make_action("hold_still", hand_sides(c, verb, "hold still"), c)]
    if cat == "give":
        c.problems.append(f"{verb.word!r} what? (a thumbs up, or an object to the other hand)")
        return []
    c.problems.append(f"I do not know how to perform {verb.word!r} here")
    return []


def _reinterpret(c: Clause, text: str):
    """An elliptical clause ("..., then the middle fingertip") read with the previous clause's subject and verb."""
    toks = tokenize(text)
    inner = Clause(text, toks, mentions(toks), c.notes, c.problems, c.context)
    acts = interpret(inner)
    for t in c.tokens:
        t.used = t.used or any(u.used and u.word == t.word for u in toks)
    return acts



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
            c = Clause(text, toks, mentions(toks), [], [], context)
            acts = interpret(c)
            for a in acts:
                if a.primitive != "keep":
                    context["last"] = a
                if a.obj is not None:
                    context["object"] = a.obj
                if a.primitive in ("touch", "pinch"):
                    verb = verb_of(c)
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
                other = OTHER_SIDE[a.sides[0]]
                if not re.search(r"\b(left|right|both)\b", b.text):
                    b = dataclasses.replace(b, sides=(other,))
                elif not re.search(r"\b(left|right|both)\b", a.text):
                    a = dataclasses.replace(a, sides=(OTHER_SIDE[b.sides[0]],))
                else:
                    raise ConfigError(f"{a.text!r} and {b.text!r} both use the {a.sides[0]} hand at the same time")
            else:
                raise ConfigError(f"{a.text!r} and {b.text!r} need the same hand at the same time (one per hand); use 'then'")
        main = [a, b]
    return main + keeps
