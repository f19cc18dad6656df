"""Prompt parser: a sentence -> a :class:`Plan` of timed hand actions.

Grammar (case-insensitive, punctuation-tolerant)::

    prompt  := clause ( ("then" | "and then" | "after that" | "next" | "finally" | ";" | ",") clause )*
    clause  := action ( ("while" | "as" | "and at the same time") action )*

Each action gets a primitive (:data:`PRIMITIVES`), the hands doing it (left / right / both), a number of
repetitions ("twice", "3 times", "three times"), a speed ("slowly", "quickly") and an amplitude
("big", "slightly"), plus details (which finger pinches, which grasp, which number to count to).
Keyword matching is fast and needs no model; a clause with no keyword is matched by sentence embedding
in :mod:`handx_robot.generate.embedding` (only when a matcher is passed).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from handx_robot.errors import ConfigError

__all__ = [
    "PRIMITIVES",
    "BIMANUAL_PRIMITIVES",
    "PRIMITIVE_PHRASES",
    "Action",
    "Step",
    "Plan",
    "parse_prompt",
    "split_clauses",
]

#: Primitive name -> example phrases (also the embedding targets of open-vocabulary matching).
PRIMITIVE_PHRASES: dict[str, tuple[str, ...]] = {
    "open_hand": ("open the hand", "spread the fingers", "stretch the fingers out", "show an open palm"),
    "fist": ("make a fist", "close the hand", "clench the fingers"),
    "point": ("point with the index finger", "point forward"),
    "pinch": ("pinch the thumb and index finger together", "touch the thumb to a finger", "pinch"),
    "grasp": ("grasp an object", "grab a bottle", "hold a ball", "pick up a cup", "power grip"),
    "thumbs_up": ("give a thumbs up", "thumb up, good job"),
    "ok_sign": ("make the OK sign", "okay gesture with a ring of thumb and index"),
    "count": ("count on the fingers", "show three fingers", "count to five"),
    "wave": ("wave hello", "wave goodbye", "greet someone by waving"),
    "piano": ("play the piano", "tap the fingers one after another", "drum the fingers on a table", "type on a keyboard"),
    "rub_fingers": ("rub the thumb against the fingertips", "money gesture", "feel the texture between the fingers"),
    "flip": ("flip the hand over", "turn the palm up and down", "pronate and supinate the forearm"),
    "rotate_wrist": ("rotate the wrist", "twist the wrist", "turn a door knob", "screw in a light bulb"),
    "write": ("write in the air", "draw a circle in the air", "sign a name in the air"),
    "palms_together": ("put the palms together", "pray", "namaste greeting"),
    "clap": ("clap the hands", "applaud", "give a round of applause"),
    "touch_fingertips": ("touch the fingertips of both hands together", "steeple the fingers"),
    "interlock": ("interlock the fingers", "interlace the fingers of both hands", "clasp the hands"),
    "handover": ("hand an object over to the other hand", "pass an object from one hand to the other"),
    "hold_still": ("hold still", "keep the hands still", "rest the hands", "pause and wait"),
}
PRIMITIVES: tuple[str, ...] = tuple(PRIMITIVE_PHRASES)
#: Primitives that always use both hands together.
BIMANUAL_PRIMITIVES = frozenset({"clap", "palms_together", "touch_fingertips", "interlock", "handover"})
#: Default number of repetitions per primitive (an oscillation counts its cycles).
DEFAULT_REPS = {"wave": 3, "piano": 2, "rub_fingers": 3, "flip": 2, "rotate_wrist": 2, "write": 1}

# Keyword rules, first match wins: (regex on the clause, primitive).
_KEYWORDS: tuple[tuple[str, str], ...] = (
    (r"\bthumbs?[- ]?ups?\b|\bthumb up\b|\bgood job\b|\blike sign\b", "thumbs_up"),
    (r"\bok(ay)?\b.*\b(sign|gesture)\b|\bok sign\b|\bokay\b|\b(sign|gesture)\b.*\bok(ay)?\b", "ok_sign"),
    (r"\bhand\b(\s+\w+){0,3}\s+over\b|\bhandover\b|\bpass\b.*\b(to|from|between)\b|"
     r"\btransfer\b|\bgive\b.*\bother hand\b", "handover"),
    (r"\bclap|\bapplau", "clap"),
    (r"\binterlock|\binterlac|\bintertwin|\bclasp", "interlock"),
    (r"\bpalms?\b.*\btogether\b|\bpray|\bnamaste\b|\bpress\b.*\bpalms\b", "palms_together"),
    (r"\b(finger ?tips?|tips)\b.*\b(together|both|each other|touch|meet)\b|\bsteeple|"
     r"\btouch\b.*\bfinger ?tips\b", "touch_fingertips"),
    (r"\brub|\bmoney gesture\b|\bsnap\b", "rub_fingers"),
    (r"\bpinch|\btap\b.*\bthumb\b|\bthumb\b.*\b(touch|tap|meet)|\btouch\b.*\bthumb\b", "pinch"),
    (r"\bpiano\b|\bdrum|\btyp(e|ing)\b|\bfinger[- ]?tapping\b|\btap\b.*\bfingers\b|\btap\b", "piano"),
    (r"\bwav(e|es|ing)\b|\bhello\b|\bgoodbye\b|\bbye\b", "wave"),
    (r"\bcount|\b(show|hold up|raise|put up)\b.*\b(one|two|three|four|five|\d)\b.*\bfingers?\b", "count"),
    (r"\bflip|\bpronat|\bsupinat|\bpalms? (up|down)\b|\bturn\b.*\bpalms?\b|\bturn\b.*\bhands? over\b", "flip"),
    (r"\brotat|\btwist|\bturn\b.*\bwrist|\bwrist\b.*\b(circle|turn)|\bknob\b|\bscrew\b|\bunscrew\b", "rotate_wrist"),
    (r"\bwrit|\bdraw|\bsign\b.*\bname|\btrace\b|\bscribble", "write"),
    (r"\bpoint", "point"),
    (r"\bgrasp|\bgrab|\bgrip|\bhold(ing)? (a|an|the)\b|\bpick\b|\bseize\b|\bcatch\b", "grasp"),
    (r"\bfists?\b|\bclench|\bclose\b.*\bhands?\b|\bball\b.*\bhands?\b.*\bup\b", "fist"),
    (r"\bopen|\bspread|\bstretch|\bextend\b.*\bfingers\b|\brelax|\bunclench|\bflat\b", "open_hand"),
    (r"\bhold still\b|\bstay\b|\bstill\b|\bpause\b|\bwait\b|\brest\b|\bfreeze\b|\bdo nothing\b|\bidle\b", "hold_still"),
)

_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_NUM = r"(\d+|" + "|".join(_NUMBERS) + r")"
_FINGER_WORDS = {
    "index": "index", "pointer": "index", "forefinger": "index", "first": "index",
    "middle": "middle", "second": "middle",
    "ring": "ring", "third": "ring",
    "pinky": "pinky", "little": "pinky", "small": "pinky", "pinkie": "pinky", "fourth": "pinky",
}  # fmt: skip
MAX_REPS = 30


@dataclasses.dataclass(frozen=True)
class Action:
    """One hand action of a plan.

    primitive: one of :data:`PRIMITIVES`.
    sides:     hands doing it, ``('right',)``, ``('left',)`` or ``('left', 'right')``.
    reps:      repetitions (events or oscillation cycles), >= 1.
    speed:     rate multiplier (1 = natural, < 1 slower, > 1 faster).
    amplitude: size multiplier (1 = natural).
    finger:    pinch / rub finger (``index`` ...), or None.
    variant:   primitive detail: grasp type (``cylindrical``/``spherical``/``lateral``), count target
               (``'1'``..``'5'``, ``'show'`` prefix for a static count), write shape (``circle``/``square``/``scribble``).
    text:      the clause this action came from.
    matched_by: ``keyword`` or ``embedding``; ``score`` the embedding similarity (1.0 for keywords).
    """

    primitive: str
    sides: tuple[str, ...]
    reps: int = 1
    speed: float = 1.0
    amplitude: float = 1.0
    finger: str | None = None
    variant: str | None = None
    text: str = ""
    matched_by: str = "keyword"
    score: float = 1.0

    def __post_init__(self) -> None:
        if self.primitive not in PRIMITIVES:
            raise ConfigError(
                f"Action.primitive is {self.primitive!r}; known primitives: {', '.join(PRIMITIVES)}"
            )
        if not self.sides or any(s not in ("left", "right") for s in self.sides):
            raise ConfigError(f"Action.sides is {self.sides!r}; allowed: ('left',), ('right',), ('left', 'right')")
        if not (1 <= int(self.reps) <= MAX_REPS):
            raise ConfigError(f"Action.reps is {self.reps}; allowed 1..{MAX_REPS}: ask for fewer repetitions")
        if not (0.2 <= self.speed <= 4.0) or not (0.2 <= self.amplitude <= 3.0):
            raise ConfigError(
                f"Action speed {self.speed} / amplitude {self.amplitude} out of range (0.2..4 / 0.2..3)"
            )


@dataclasses.dataclass(frozen=True)
class Step:
    """Actions that run at the same time (on different hands)."""

    actions: tuple[Action, ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The parsed prompt: steps run one after another."""

    prompt: str
    steps: tuple[Step, ...]

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for s in self.steps for a in s.actions)


_SEQ_SPLIT = re.compile(
    r"\s*(?:;|\.(?!\d)|,?\s*\band then\b|,?\s*\bthen\b|,?\s*\bafter that\b|,?\s*\bafterwards\b|"
    r",?\s*\bnext\b|,?\s*\bfinally\b|,?\s*\band finally\b|,\s*(?:and\s+)?)\s*"
)
_PAR_SPLIT = re.compile(r"\s*(?:\bwhile\b|\band at the same time\b|\bat the same time as\b|\bmeanwhile\b)\s*")
# Words that only modify an action; a comma-separated piece made of these alone belongs to its neighbour.
_MODIFIER_ONLY = re.compile(
    r"^(?:\b(?:with|using|the|a|an|my|your|his|her|their|left|right|both|hand|hands|each|two|once|twice|thrice|"
    r"again|please|slowly|slow|quickly|fast|gently|very|and|in|air|times?|\d+|one|three|four|five|six|seven|"
    r"eight|nine|ten)\b[\s,]*)+$"
)


def split_clauses(prompt: str) -> list[list[str]]:
    """Split ``prompt`` into sequential steps of parallel clause strings (lower case)."""
    text = re.sub(r"\s+", " ", prompt.lower().replace("’", "'")).strip()
    steps = []
    parts: list[str] = []
    pending = ""
    for part in _SEQ_SPLIT.split(text):
        part = part.strip(" ,.!?")
        if not part:
            continue
        if _MODIFIER_ONLY.match(part):
            if parts:
                parts[-1] = f"{parts[-1]} {part}"
            else:
                pending = f"{pending} {part}".strip()
        else:
            parts.append(f"{pending} {part}".strip())
            pending = ""
    if pending and parts:
        parts[-1] = f"{parts[-1]} {pending}"
    for part in parts:
        pars = [p.strip(" ,.!?") for p in _PAR_SPLIT.split(part)]
        pars = [p for p in pars if p]
        if pars:
            steps.append(pars)
    return steps


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word]


def _reps(clause: str) -> int | None:
    if re.search(r"\bonce\b", clause):
        return 1
    if re.search(r"\btwice\b", clause):
        return 2
    if re.search(r"\bthrice\b", clause):
        return 3
    m = re.search(_NUM + r"\s*(times|x)\b", clause) or re.search(r"\bx\s*(\d+)\b", clause)
    if m:
        n = _number(m.group(1))
        if not 1 <= n <= MAX_REPS:
            raise ConfigError(f"prompt asks for {n} repetitions in {clause!r}; allowed 1..{MAX_REPS}")
        return n
    return None


def _sides(clause: str) -> tuple[str, ...] | None:
    left = re.search(r"\bleft\b", clause) is not None
    right = re.search(r"\bright\b", clause) is not None
    if re.search(r"\bboth\b|\beach hand\b|\btwo hands\b|\bhands\b|\bfists\b|\bpalms\b|\bevery hand\b", clause):
        if left != right:  # "the hands ... left" is still one side
            return ("left",) if left else ("right",)
        return ("left", "right")
    if left and right:
        return ("left", "right")
    if left:
        return ("left",)
    if right:
        return ("right",)
    return None


def _speed(clause: str) -> float:
    v = 1.0
    if re.search(r"\bslow(ly)?\b|\bgently\b|\bcalmly\b|\bleisurely\b", clause):
        v = 0.6
    if re.search(r"\bquick(ly)?\b|\bfast\b|\brapid(ly)?\b|\bbriskly\b|\bhurriedly\b", clause):
        v = 1.6
    if re.search(r"\bvery\b|\breally\b|\bextremely\b", clause) and v != 1.0:
        v = v * v
    return v


def _amplitude(clause: str) -> float:
    if re.search(r"\bbig\b|\bwide(ly)?\b|\blarge\b|\bhuge\b|\bbroad(ly)?\b|\benthusiastic", clause):
        return 1.4
    if re.search(r"\bsmall\b|\bslight(ly)?\b|\btiny\b|\blittle\b(?! finger)|\bsubtle\b|\bsoft(ly)?\b", clause):
        return 0.6
    return 1.0


def _finger(clause: str) -> str | None:
    for word, finger in _FINGER_WORDS.items():
        if re.search(rf"\b{word}\b(\s+finger)?", clause) and word not in ("first", "second", "third", "fourth", "small", "little"):
            return finger
        if word in ("little", "small") and re.search(rf"\b{word} finger\b", clause):
            return finger
    return None


def _variant(primitive: str, clause: str) -> str | None:
    if primitive == "grasp":
        if re.search(r"\blateral\b|\bkey\b|\bcard\b|\bside\b|\bpaper\b|\bcoin\b", clause):
            return "lateral"
        if re.search(r"\bspher|\bball\b|\bapple\b|\borange\b|\bglobe\b|\bbulb\b|\begg\b", clause):
            return "spherical"
        return "cylindrical"
    if primitive == "count":
        m = re.search(r"\b(?:to|until|up to)\s+" + _NUM + r"\b", clause)
        if m:
            n = _number(m.group(1))
            return str(max(1, min(n, 5))) if n <= 5 else "5"
        m = re.search(_NUM + r"\s+fingers?\b", clause) or re.search(r"\bnumber\s+" + _NUM + r"\b", clause)
        if m:
            return "show" + str(max(1, min(_number(m.group(1)), 5)))
        return "5"
    if primitive == "write":
        if re.search(r"\bcircle|\bround\b|\bo\b", clause):
            return "circle"
        if re.search(r"\bsquare|\bbox\b|\brectangle", clause):
            return "square"
        return "scribble"
    if primitive == "flip" and re.search(r"\bpalms? up\b", clause) and not re.search(r"\bdown\b", clause):
        return "up"
    return None


def _keyword_primitive(clause: str) -> str | None:
    for pattern, primitive in _KEYWORDS:
        if re.search(pattern, clause):
            return primitive
    return None


Matcher = Callable[[str], tuple[str, float]]


def _action(clause: str, matcher: Matcher | None, prompt: str) -> Action:
    primitive = _keyword_primitive(clause)
    matched_by, score = "keyword", 1.0
    if primitive is None:
        if matcher is None:
            raise ConfigError(
                f"prompt {prompt!r}: no supported action recognised in {clause!r}; supported actions: "
                f"{', '.join(PRIMITIVES)} (open-vocabulary matching is off)"
            )
        primitive, score = matcher(clause)
        matched_by = "embedding"
    sides = _sides(clause)
    if primitive in BIMANUAL_PRIMITIVES:
        if primitive == "handover":
            # the giving hand comes first: "from the left hand", "left hand passes"
            giver = "left" if re.search(r"\bfrom the left\b|\bleft hand (gives|passes|hands)\b|\bleft to right\b", clause) else "right"
            sides = (giver, "left" if giver == "right" else "right")
        else:
            sides = ("left", "right")
    elif sides is None:
        sides = ("right",)
    reps = _reps(clause)
    if reps is None:
        reps = 1 if primitive != "count" else 1
        reps = DEFAULT_REPS.get(primitive, reps)
    return Action(
        primitive=primitive,
        sides=sides,
        reps=reps,
        speed=_speed(clause),
        amplitude=_amplitude(clause),
        finger=_finger(clause) if primitive in ("pinch", "rub_fingers", "point") else None,
        variant=_variant(primitive, clause),
        text=clause,
        matched_by=matched_by,
        score=score,
    )


def parse_prompt(prompt: str, matcher: Matcher | None = None) -> Plan:
    """Parse ``prompt`` into a :class:`Plan`.

    matcher: optional open-vocabulary fallback ``clause -> (primitive, score)`` for clauses with no
    keyword; it raises :class:`ConfigError` itself when nothing is close enough.
    """
    if prompt is None or not str(prompt).strip():
        raise ConfigError(
            "prompt is empty; describe a hand action, e.g. 'pinch with the right thumb and index finger "
            f"twice, then clap'. Supported actions: {', '.join(PRIMITIVES)}"
        )
    steps = []
    last_sides: tuple[str, ...] | None = None
    for clauses in _split_and(split_clauses(str(prompt))):
        actions = [_action(c, matcher, prompt) for c in clauses]
        if len(actions) == 1 and last_sides is not None:
            a = actions[0]
            # "... with the left hand, then make a fist (with it)": a clause naming no hand keeps the last one
            if a.primitive not in BIMANUAL_PRIMITIVES and _sides(a.text) is None and a.sides != last_sides:
                actions = [dataclasses.replace(a, sides=last_sides)]
        actions = _assign_parallel_sides(actions)
        if len(actions) == 1 and actions[0].primitive not in BIMANUAL_PRIMITIVES:
            last_sides = actions[0].sides
        steps.append(Step(tuple(actions)))
    if not steps:
        raise ConfigError(f"prompt {prompt!r} has no words; supported actions: {', '.join(PRIMITIVES)}")
    return Plan(prompt=str(prompt), steps=tuple(steps))


def _split_and(steps: list[list[str]]) -> list[list[str]]:
    """'clap and wave' is two steps; 'pinch the thumb and index finger' is one (only one part is an action)."""
    out: list[list[str]] = []
    for clauses in steps:
        if len(clauses) == 1:
            parts = [p.strip() for p in re.split(r"\band\b", clauses[0]) if p.strip()]
            if len(parts) > 1 and all(_keyword_primitive(p) for p in parts):
                # "open and close the left hand": a hand named at the end belongs to every part
                m = re.search(r"\b(?:the |my |your |his |her )?(?:left|right|both)\b(?: hands?)?", parts[-1])
                if m:
                    parts = [p if _sides(p) is not None else f"{p} {m.group(0)}" for p in parts]
                out.extend([p] for p in parts)
                continue
        out.append(clauses)
    return out


def _assign_parallel_sides(actions: list[Action]) -> list[Action]:
    """Parallel actions must use different hands: a clause with no explicit side takes the free hand."""
    if len(actions) == 1:
        return actions
    if len(actions) > 2 or any(a.primitive in BIMANUAL_PRIMITIVES for a in actions):
        raise ConfigError(
            f"simultaneous actions {[a.text for a in actions]}: only two one-handed actions can run at the "
            "same time (one per hand); use 'then' to sequence the others"
        )
    a, b = actions
    a_explicit, b_explicit = _sides(a.text) is not None, _sides(b.text) is not None
    if len(a.sides) == 2 or len(b.sides) == 2:
        raise ConfigError(
            f"simultaneous actions {a.text!r} and {b.text!r} both need hands; give each its own hand "
            "('... with the left hand while ... with the right hand')"
        )
    if a.sides == b.sides:
        other = ("left",) if a.sides == ("right",) else ("right",)
        if b_explicit and not a_explicit:
            a = dataclasses.replace(a, sides=other)
        elif a_explicit and b_explicit:
            raise ConfigError(
                f"simultaneous actions {a.text!r} and {b.text!r} both use the {a.sides[0]} hand; "
                "give them different hands or use 'then'"
            )
        else:
            b = dataclasses.replace(b, sides=other)
    return [a, b]
