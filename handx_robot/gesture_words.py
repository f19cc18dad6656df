"""The words of the gesture observer (:mod:`handx_robot.gestures`): the finger, state and part names,
the named shape patterns, :class:`Observation` (what was seen, and its text in the grammar's words) and
:class:`GestureConfig` (every threshold, with where it comes from)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from handx_robot.errors import ConfigError
from handx_robot.features import ContactConfig
from handx_robot.motion import SIDES

__all__ = ["AMBIGUOUS", "CURLED", "STATE_NAME", "EXTENDED", "FINGER_NAMES", "FINGER_STATES", "HALF", "OBSERVATION_KINDS",
           "PART_KINDS", "SHAPE_PATTERNS", "GestureConfig", "Observation", "observation_lines"]  # fmt: skip

FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
FINGER_STATES: tuple[str, ...] = ("extended", "half", "curled")
PART_KINDS: tuple[str, ...] = ("tip", "palm", "back", "knuckles", "wrist")
OBSERVATION_KINDS: tuple[str, ...] = (
    "shape", "contact", "move", "circle", "wave", "shake", "twist", "flip", "palm", "grip", "spacing",
)  # fmt: skip

#: Codes of :func:`finger_states`.
EXTENDED, HALF, CURLED, AMBIGUOUS = 2, 1, 0, -1
STATE_NAME = {EXTENDED: "extended", HALF: "half", CURLED: "curled", AMBIGUOUS: "ambiguous"}
_LETTER = {"E": "extended", "H": "half", "C": "curled", "*": "any"}


def _pattern(letters: str) -> tuple[str, ...]:
    return tuple(_LETTER[c] for c in letters)


#: Named shapes: states of (thumb, index, middle, ring, pinky); ``"any"`` matches every state.
#: thumbs_up / thumbs_down / thumb_out share a pattern and differ by the thumb's direction in the world;
#: "ok" also needs the thumb and index tips within ``ok_gap_m`` (its thumb and index may be any state).
SHAPE_PATTERNS: dict[str, tuple[str, ...]] = {
    "fist": _pattern("CCCCC"),
    "open": _pattern("EEEEE"),
    "point": _pattern("CECCC"),
    "peace": _pattern("CEECC"),
    "three": _pattern("CEEEC"),
    "four": _pattern("CEEEE"),
    "horns": _pattern("CECCE"),
    "call_me": _pattern("ECCCE"),
    "L": _pattern("EECCC"),
    "thumbs_up": _pattern("ECCCC"),
    "thumbs_down": _pattern("ECCCC"),
    "thumb_out": _pattern("ECCCC"),
    "half_curled": _pattern("*HHHH"),
    "ok": _pattern("**EEE"),
}



# -- observations ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Observation:
    """One thing the motion shows, over ``[start, end)`` seconds.

    kind:    one of :data:`OBSERVATION_KINDS`.
    side:    ``left`` / ``right`` for a one-hand observation (a contact within one hand included);
             None for a contact between the hands and for ``spacing``.
    detail:  shape name (``""`` when unnamed), move direction (up, down, left, right, forward, back;
             ``""`` when no axis dominates), palm facing (up, down, forward, back, in, out), contact style
             (tap, press, rub), shake axis (up-down, left-right, forward-back).
    parts:   contact: the two part names, e.g. ``("right_index_tip", "left_palm")``; a fingertip comes
             first, then knuckles, wrist, palm/back; two parts of one kind are ordered left, right.
    count:   cycles of a wave / shake / twist, reversals of a flip, turns of a circle; else 1.
    fingers: shape: ``((finger, state), ...)`` in :data:`FINGER_NAMES` order (the most frequent state
             over the run; ``ambiguous`` is possible for the thumb and index of an ``ok``).
    value:   move: net displacement, m; circle: radius, m; spacing: palm-centre distance, m; contact:
             closest distance, m; wave / twist: median swing amplitude, deg; shake: amplitude, m;
             grip: aperture, the mean thumb tip to index and middle tip keypoint distance, m (keypoints lie
             ~0.8 cm inside the pads, which are not subtracted: a generator that grips a D-metre object by
             placing those keypoints D apart reads D); NaN otherwise.
    slide_m: contact: tangential travel of one part relative to the other during the contact, m.
    """

    kind: str
    side: str | None
    start: float
    end: float
    detail: str = ""
    parts: tuple[str, ...] = ()
    count: int = 1
    fingers: tuple[tuple[str, str], ...] = ()
    value: float = float("nan")
    slide_m: float = float("nan")

    def __post_init__(self) -> None:
        if self.kind not in OBSERVATION_KINDS:
            raise ConfigError(f"Observation.kind is {self.kind!r}; allowed: {', '.join(OBSERVATION_KINDS)}")
        if self.side not in (*SIDES, None):
            raise ConfigError(f"Observation.side is {self.side!r}; allowed: left, right, None")
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end < self.start:
            raise ConfigError(f"Observation {self.kind}: needs start <= end, got {self.start}, {self.end}")
        for name in ("start", "end", "value", "slide_m"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "count", int(self.count))
        object.__setattr__(self, "parts", tuple(self.parts))
        object.__setattr__(self, "fingers", tuple(tuple(f) for f in self.fingers))

    @property
    def duration(self) -> float:
        return self.end - self.start

    def text(self) -> str:
        """One line, e.g. ``0.40–1.30 s  right hand: peace (thumb curled, index extended, ...)``."""
        return f"{self.start:.2f}–{self.end:.2f} s  {_TEXT[self.kind](self)}"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "side": self.side,
            "start": round(self.start, 4),
            "end": round(self.end, 4),
            "detail": self.detail,
            "parts": list(self.parts),
            "count": self.count,
            "fingers": dict(self.fingers),
            "value": _json_float(self.value),
            "slide_m": _json_float(self.slide_m),
            "text": self.text(),
        }


def _json_float(v: float) -> float | None:
    return round(float(v), 5) if math.isfinite(v) else None


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _cm(v: float) -> str:
    return f"{v * 100:.0f} cm"


def _part_phrase(name: str, subject: bool) -> str:
    side, _, rest = name.partition("_")
    if rest.endswith("_tip"):
        finger = rest[: -len("_tip")]
        return f"{side} thumb tip" if finger == "thumb" else f"{side} {finger} fingertip"
    phrase = {
        "palm": f"the {side} palm", "back": f"the back of the {side} hand",
        "knuckles": f"the {side} knuckles", "wrist": f"the {side} wrist",
    }.get(rest, name)  # fmt: skip
    return phrase.removeprefix("the ") if subject else phrase


def _shape_text(o: Observation) -> str:
    states = ", ".join(f"{f} {s}" for f, s in o.fingers)
    return f"{o.side} hand: {o.detail} ({states})" if o.detail else f"{o.side} hand: {states}"


def _contact_text(o: Observation) -> str:
    verb = {"tap": "taps", "press": "presses", "rub": "rubs"}.get(o.detail, "touches")
    a, b = o.parts
    return f"{_part_phrase(a, True)} {verb} {_part_phrase(b, False)}"


def _move_text(o: Observation) -> str:
    return f"{o.side} hand moves {o.detail + ' ' if o.detail else ''}{_cm(o.value)}"


_TEXT = {
    "shape": _shape_text,
    "contact": _contact_text,
    "move": _move_text,
    "circle": lambda o: f"{o.side} hand circles {_times(o.count)} (radius {_cm(o.value)})",
    "wave": lambda o: f"{o.side} hand waves {_times(o.count)}",
    "shake": lambda o: f"{o.side} hand shakes {o.detail} {_times(o.count)}",
    "twist": lambda o: f"{o.side} hand twists {_times(o.count)}",
    "flip": lambda o: f"{o.side} hand flips {_times(o.count)}",
    "palm": lambda o: f"{o.side} palm faces {o.detail}",
    "grip": lambda o: f"{o.side} hand grips a {_cm(o.value)} object",
    "spacing": lambda o: f"the palms face each other {_cm(o.value)} apart",
}


def observation_lines(observations: Iterable[Observation]) -> list[str]:
    """``Observation.text()`` of each observation, in the given order."""
    return [o.text() for o in observations]


# -- configuration -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class GestureConfig:
    """Every threshold of the observer (metres, seconds, degrees, m/s); calibration in the module docstring.

    Finger states (reach ratio ``|tip - base| / chain length``):
      long_curled_max, long_half_min, long_half_max, long_extended_min: classes of the index..pinky;
      thumb_curled_max, thumb_half_min, thumb_half_max, thumb_extended_min: classes of the thumb;
      extended_max_mcp_deg: a long finger bent more than this at the MCP (angle between wrist -> MCP and
      MCP -> PIP) is not extended (the reach ratio cannot see the MCP).
    Shapes:
      min_shape_s: shortest held shape; shape_max_rate: a shape is held only while every reach ratio
      changes slower than this (per second, central difference over 2 * smooth_s), so a hand passing
      through half-curled on its way into a fist shows no "half_curled"; shape_bridge_s: ambiguous or
      moving blips up to this long inside a run are bridged; ok_gap_m: thumb-index tip distance of an OK sign; thumb_vertical_cos: the thumb (MCP -> tip)
      of an ECCCC hand points up (thumbs_up) / down (thumbs_down) when its direction . y is beyond +- this,
      else it is a thumb_out.
    Contacts (keypoint distances, see the module docstring):
      tip_tip_m (also a pinch within a hand), tip_palm_m (fingertip to the other hand's palm centre, palm
      or back side), tip_own_palm_m (fingertip to its own palm centre, palmar side only; the curled middle
      tip of the composer's fist lies 2.5 cm from it, so a fist may show that contact),
      tip_knuckles_m, tip_wrist_m, palm_palm_m (palm centres), knuckles_palm_m (any MCP to the other palm
      centre), wrist_wrist_m, palm_wrist_m (palm centre to the other wrist: the wrist keypoint sits ~2 cm
      inside the wrist), knuckles_wrist_m, knuckles_knuckles_m (closest MCP pair); contact_exit_ratio, contact_min_s, contact_max_gap_s: hysteresis and noise
      filtering as :class:`handx_robot.features.ContactConfig`; tap_max_s, tap_max_slide_m: a contact shorter
      than this that slides less is a tap; rub_min_slide_m: a contact that slides at least this is a rub;
      any other is a press.
    Wrist motion (wrist keypoint, smoothed over smooth_s):
      move_speed: a move starts above this speed and lasts while the speed stays above
      move_speed / move_exit_ratio (pauses up to move_max_gap_s are bridged); move_min_m: shortest net
      displacement of a move; move_axis_ratio: the direction is named when one axis carries at least this
      fraction of the displacement.
      circle_min_deg: total turning of the wrist's velocity (in the plane of its rotation) of a circle;
      circle_min_radius_m: smallest mean radius of curvature; circle_max_step_deg: a turn larger than this
      between two frames is a reversal or a corner, not part of a circle.
      wave_min_deg: wrist deviation (rotation about the palm normal) each way of a wave; twist_min_deg:
      forearm roll (rotation about the distal axis) each way of a twist; shake_min_m: wrist translation
      each way along one world axis of a shake; shake_min_linearity: that axis carries at least this
      fraction of the wrist's position variance over the shake (a circle carries 0.5 per axis);
      shake_min_cycles: fewest cycles of a shake (waves and twists need 1); osc_max_swing_s: a swing (extremum to extremum) longer than this ends an oscillation.
      flip_min_deg: change of the palm normal between two holds that counts as a reversal; flip_hold_speed:
      the palm normal turns slower than this (rad/s) in a hold; flip_hold_s: shortest hold.
      palm_enter_cos, palm_stay_cos: the palm faces a direction when normal . direction exceeds the first,
      and keeps facing it while it exceeds the second; palm_min_s: shortest palm-facing run.
    Grip and spacing:
      grip_min_s: shortest grip. A grip holds the index and middle bent but not curled (long_curled_max <
      reach < long_extended_min), ring and pinky not extended, the index and middle tips at least
      grip_tip_palmar and the thumb tip at least grip_thumb_palmar palm lengths (wrist to middle MCP) on
      the palmar side of the palm centre (thumb opposed), and every fingertip at least grip_min_gap_m from
      the thumb tip (closer is a pinch). Calibration (palm lengths in front of the palm centre, thumb /
      index / middle tip): relaxed 0.38 / 0.61 / 0.67 (the rest pose: no grip), piano 0.35,
      pinch_open_* 0.33-0.37; grasp_cylindrical 0.58 / 0.81 / 0.91, grasp_spherical 0.51 / 0.80 / 0.89,
      grasp_lateral 0.52 / 0.65 / 0.62, a 7 cm ball (tests) 0.60 / 0.67 / 0.74. 2 mm keypoint noise moves
      the thumb value by ~0.05 per frame, hence 0.45 and the smoothing;
      spacing_facing_cos: the palms face each other when left n . x and right n . (-x) exceed this (0.7,
      not 0.6: the composer's rest pose turns the palms down and inward with |n . x| = 0.60) and each palm
      centre lies on the palmar side of the other hand;
      spacing_min_m: smallest palm-centre distance of a spacing; spacing_min_s: shortest spacing.
    """

    long_curled_max: float = 0.52
    long_half_min: float = 0.58
    long_half_max: float = 0.92
    long_extended_min: float = 0.97
    thumb_curled_max: float = 0.90
    thumb_half_min: float = 0.915
    thumb_half_max: float = 0.95
    thumb_extended_min: float = 0.965
    extended_max_mcp_deg: float = 60.0

    min_shape_s: float = 0.3
    shape_max_rate: float = 1.0
    shape_bridge_s: float = 0.1
    ok_gap_m: float = 0.02
    thumb_vertical_cos: float = 0.5

    tip_tip_m: float = 0.020
    tip_palm_m: float = 0.025
    tip_own_palm_m: float = 0.025
    tip_knuckles_m: float = 0.020
    tip_wrist_m: float = 0.025
    palm_palm_m: float = 0.040
    knuckles_palm_m: float = 0.025
    wrist_wrist_m: float = 0.040
    palm_wrist_m: float = 0.035
    knuckles_wrist_m: float = 0.030
    knuckles_knuckles_m: float = 0.025
    contact_exit_ratio: float = 1.2
    contact_min_s: float = 0.1
    contact_max_gap_s: float = 0.1
    tap_max_s: float = 0.45
    tap_max_slide_m: float = 0.015
    rub_min_slide_m: float = 0.03

    smooth_s: float = 0.1
    move_speed: float = 0.05
    move_exit_ratio: float = 2.0
    move_max_gap_s: float = 0.1
    move_min_m: float = 0.05
    move_axis_ratio: float = 0.6
    circle_min_deg: float = 300.0
    circle_min_radius_m: float = 0.02
    circle_max_step_deg: float = 60.0
    wave_min_deg: float = 15.0
    twist_min_deg: float = 30.0
    shake_min_m: float = 0.015
    shake_min_linearity: float = 0.7
    shake_min_cycles: int = 2
    osc_max_swing_s: float = 1.0
    flip_min_deg: float = 150.0
    flip_hold_speed: float = 1.0
    flip_hold_s: float = 0.1
    palm_enter_cos: float = 0.7
    palm_stay_cos: float = 0.6
    palm_min_s: float = 0.3

    grip_min_s: float = 0.3
    grip_tip_palmar: float = 0.3
    grip_thumb_palmar: float = 0.45
    grip_min_gap_m: float = 0.015
    spacing_facing_cos: float = 0.7
    spacing_min_m: float = 0.08
    spacing_min_s: float = 0.3

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"GestureConfig.{f.name} must be a finite number, got {v!r}")
            if v < 0:
                raise ConfigError(f"GestureConfig.{f.name} must be >= 0, got {v}")
        for prefix in ("long", "thumb"):
            chain = [
                getattr(self, f"{prefix}_{n}") for n in ("curled_max", "half_min", "half_max", "extended_min")
            ]
            if not (0 < chain[0] < chain[1] <= chain[2] < chain[3] <= 1):
                raise ConfigError(
                    f"GestureConfig: {prefix} finger classes need 0 < curled_max < half_min <= half_max < "
                    f"extended_min <= 1, got {chain}"
                )
        positive = [f.name for f in dataclasses.fields(self) if f.name.endswith(("_m", "_deg", "speed"))]
        positive += [
            "min_shape_s",
            "shape_max_rate",
            "palm_min_s",
            "grip_min_s",
            "spacing_min_s",
            "tap_max_s",
            "osc_max_swing_s",
        ]
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"GestureConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.contact_exit_ratio < 1 or self.move_exit_ratio < 1:
            raise ConfigError("GestureConfig.contact_exit_ratio and move_exit_ratio must be >= 1")
        for name in ("palm_enter_cos", "palm_stay_cos", "spacing_facing_cos", "thumb_vertical_cos"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"GestureConfig.{name} must be in (0, 1], got {getattr(self, name)}")
        if self.palm_stay_cos > self.palm_enter_cos:
            raise ConfigError("GestureConfig.palm_stay_cos must be <= palm_enter_cos")
        if self.rub_min_slide_m < self.tap_max_slide_m:
            raise ConfigError("GestureConfig.rub_min_slide_m must be >= tap_max_slide_m")
        if int(self.shake_min_cycles) != self.shake_min_cycles or self.shake_min_cycles < 1:
            raise ConfigError(
                f"GestureConfig.shake_min_cycles must be an integer >= 1, got {self.shake_min_cycles}"
            )

    def contact_config(self) -> ContactConfig:
        return ContactConfig(exit_ratio=self.contact_exit_ratio, min_duration=self.contact_min_s,
                             max_gap=self.contact_max_gap_s)  # fmt: skip
