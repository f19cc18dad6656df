"""The plan of a prompt: :class:`Action`, :class:`Step`, :class:`Plan`, and the primitives they name.

The sentence is read by the compositional grammar of :mod:`handx_robot.generate.grammar`
(:func:`parse_prompt` delegates to it); a clause with no verb the grammar knows can be matched by
sentence embedding (:mod:`handx_robot.generate.embedding`) when a matcher is passed.
"""

from __future__ import annotations

import dataclasses
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
    "shape": ("show a peace sign", "make horns with the hand", "make an L shape", "show the call-me sign",
              "give a thumbs down", "make a claw", "show a cupped hand", "show three fingers"),
    "fingers": ("extend the index and middle fingers", "curl the pinky", "raise the thumb", "fold the ring finger"),
    "keep": ("the thumb stays extended", "keeping the other fingers curled"),
    "touch": ("tap the left palm with the right index fingertip", "press the palm on the back of the other hand",
              "rub the thumb on the knuckles", "touch the wrist with a fingertip"),
    "move": ("move the hand up", "raise the hand", "push the hand forward", "pull the hand toward the body",
             "move the hand to the left"),
    "circle": ("move the hand in a circle", "draw a circle with the hand"),
    "turn": ("turn the palm up", "turn the palms toward each other", "rotate the palm down"),
    "shake": ("shake the hand", "shake both hands loosely"),
    "hold_object": ("hold a box with both hands", "hold a big ball between the palms"),
    "rub_palms": ("rub the palms together", "rub the hands together"),
    "cross_wrists": ("cross the wrists", "cross the hands at the wrists"),
}
PRIMITIVES: tuple[str, ...] = tuple(PRIMITIVE_PHRASES)
#: Primitives that always use both hands together.
BIMANUAL_PRIMITIVES = frozenset(
    {"clap", "palms_together", "touch_fingertips", "interlock", "handover", "hold_object", "rub_palms", "cross_wrists"}
)
#: Default number of repetitions per primitive (an oscillation counts its cycles).
DEFAULT_REPS = {"wave": 3, "piano": 2, "rub_fingers": 3, "flip": 2, "rotate_wrist": 2, "write": 1}

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
    matched_by: ``keyword`` (the grammar) or ``embedding``; ``score`` the embedding similarity (1.0 for keywords).
    parts:     contact parts (primitive ``touch``): ``{side}_{finger}_tip`` / ``_pad``, ``{side}_palm``,
               ``{side}_back``, ``{side}_knuckles``, ``{side}_wrist``; the acting part first.
    fingers:   finger states ``((finger, 'extended' | 'half' | 'curled'), ...)`` (``shape``, ``fingers``, ``keep``).
    direction: ``move``: up, down, left, right (the subject's), forward, back, inward, outward;
               ``turn``: the way the palm faces (up, down, forward, back, inward); ``point``: where it points.
    hold_s:    a stated duration, seconds ("for two seconds"), or None.
    obj:       an imagined object (:data:`handx_robot.generate.grammar.OBJECTS`), or None.
    style:     contact style of ``touch``: tap, touch, press, rub, slide.
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
    parts: tuple[str, ...] = ()
    fingers: tuple[tuple[str, str], ...] = ()
    direction: str | None = None
    hold_s: float | None = None
    obj: str | None = None
    style: str | None = None

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
    unused: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for s in self.steps for a in s.actions)


#: ``clause -> (primitive, similarity)``; raises ConfigError when nothing is close enough.
Matcher = Callable[[str], tuple[str, float]]


def split_clauses(prompt: str) -> list[list[str]]:
    """Split ``prompt`` into sequential steps of parallel clause strings (normalized, lower case)."""
    from handx_robot.generate.grammar import normalize, split

    return split(normalize(prompt))


def parse_prompt(prompt: str, matcher: Matcher | None = None, lenient: bool = False) -> Plan:
    """Parse ``prompt`` into a :class:`Plan` with the compositional grammar (:mod:`handx_robot.generate.grammar`).

    Raises :class:`~handx_robot.generate.grammar.PromptRefused` (a :class:`ConfigError`) for a prompt it
    cannot perform; ``matcher`` optionally reads clauses with no known verb (open vocabulary).
    """
    from handx_robot.generate.grammar import parse

    return parse(prompt, lenient=lenient, matcher=matcher)
