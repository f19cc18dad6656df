"""One-handed primitives of the composer: a table from primitive name to the function that animates it.

Each primitive appends keyframes to the :class:`~handx_robot.generate.keyframes.Track` of one hand (side
frame, see :mod:`handx_robot.generate.composer`) and returns the events it promises. Durations are
named ``*_S`` (seconds at speed 1, before the seeded jitter of
:meth:`~handx_robot.generate.context.ComposeContext.dur`), wrist offsets from the rest position
``*_WRIST_M`` (dx lateral, dy up, dz back; metres), amplitudes ``*_M`` / ``*_RAD`` at amplitude 1.

Random draws happen in a fixed order per primitive; reordering the calls changes every seeded motion.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.generate.context import ComposeContext, go, hold_seconds, rest_pos
from handx_robot.generate.events import ExpectedEvent
from handx_robot.generate.handmodel import angle_index
from handx_robot.generate.keyframes import Track
from handx_robot.generate.parser import Action
from handx_robot.generate.placement import ORIENT, orientation
from handx_robot.generate.shapes import hand_shape

__all__ = ["AMPLITUDE_JITTER", "ONE_HANDED", "OneHanded", "one_handed", "write_path"]

#: Relative amplitude jitter of an action, at variation 1 (uniform ±).
AMPLITUDE_JITTER = 0.1

#: ``fn(ctx, action, side, track, amp) -> promised events``; ``amp`` is the jittered amplitude.
OneHanded = Callable[[ComposeContext, Action, str, Track, float], list[ExpectedEvent]]


def _contact(a: Action, side: str, finger: str, count: int, t0: float, tr: Track) -> ExpectedEvent:
    """A promised thumb-tip contact with ``finger``'s tip of the same hand, between ``t0`` and now."""
    return ExpectedEvent("contact", (f"{side}_thumb_tip", f"{side}_{finger}_tip"), count=count,
                         start_s=t0, end_s=tr.end, action=a.text)  # fmt: skip


# -- pinch ------------------------------------------------------------------------------------
PINCH_WRIST_M = (0.0, 0.03, 0.0)
PINCH_CLOSE_S = 0.32
PINCH_HOLD_S = 0.2
PINCH_OPEN_S = 0.32
PINCH_PAUSE_S = 0.12
#: Joint jitter of the open pinch shape, degrees (small: the gap must stay open).
PINCH_OPEN_JITTER_DEG = 1.0


def pinch(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Thumb tip to ``a.finger``'s tip (index by default), ``a.reps`` times; each closing is a contact."""
    t0 = tr.end
    finger = a.finger or "index"
    q_open = ctx.shape_angles(f"pinch_open_{finger}", PINCH_OPEN_JITTER_DEG)
    q_closed = hand_shape(f"pinch_{finger}")
    go(ctx, tr, a, q_open, rest_pos(ctx, PINCH_WRIST_M), ORIENT["neutral"])
    for _ in range(a.reps):
        tr.to(ctx.dur(PINCH_CLOSE_S, a), angles=q_closed)
        ctx.contact_times.append(tr.end)
        tr.hold(ctx.dur(PINCH_HOLD_S, a))
        tr.to(ctx.dur(PINCH_OPEN_S, a), angles=q_open).hold(ctx.dur(PINCH_PAUSE_S, a))
    return [_contact(a, side, finger, a.reps, t0, tr)]


# -- fist / open hand ---------------------------------------------------------------------------
GRIP_WRIST_M = (0.0, 0.03, 0.0)
GRIP_HOLD_S = 0.25  # before switching to the other shape
GRIP_SWITCH_S = 0.45
GRIP_BACK_HOLD_S = 0.2
GRIP_FINAL_HOLD_S = 0.6


def _shape_then_hold(shape: str, other: str, event: str) -> OneHanded:
    """A primitive that takes ``shape`` (alternating with ``other`` for repetitions) and holds it."""

    def primitive(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
        go(ctx, tr, a, ctx.shape_angles(shape), rest_pos(ctx, GRIP_WRIST_M), ORIENT["neutral"])
        for _ in range(a.reps - 1):
            tr.hold(ctx.dur(GRIP_HOLD_S, a)).to(ctx.dur(GRIP_SWITCH_S, a), angles=ctx.shape_angles(other))
            tr.hold(ctx.dur(GRIP_BACK_HOLD_S, a)).to(ctx.dur(GRIP_SWITCH_S, a), angles=ctx.shape_angles(shape))
        tr.hold(hold_seconds(a, ctx.dur(GRIP_FINAL_HOLD_S, a)))
        return [ExpectedEvent(event, side=side, start_s=tr.end, end_s=tr.end, action=a.text)]

    primitive.__name__ = primitive.__qualname__ = shape
    primitive.__doc__ = f"Take the {shape!r} shape (alternating with {other!r} per repetition) and hold it."
    return primitive


fist = _shape_then_hold("fist", "open", "flexed")
open_hand = _shape_then_hold("open", "fist", "extended")


# -- point, thumbs up, OK sign ------------------------------------------------------------------
POINT_WRIST_M = (0.0, 0.06, -0.08)
POINT_HOLD_S = 0.8  # per repetition
THUMBS_UP_WRIST_M = (0.0, 0.06, -0.03)
THUMBS_UP_PUMP_M = 0.03
THUMBS_UP_PUMP_S = 0.25  # each way
THUMBS_UP_HOLD_S = 0.8
OK_WRIST_M = (0.05, 0.17, 0.03)
OK_HOLD_S = 0.9  # per repetition


#: Base orientation of a pointing hand per direction (side frame; left/right are the subject's).
_POINT_ORIENT = {
    "forward": lambda side: ORIENT["point"],
    "up": lambda side: orientation((-0.1, 1.0, -0.15), (0.0, 0.0, -1.0)),
    "down": lambda side: orientation((-0.1, -1.0, -0.3), (0.0, 0.0, 1.0)),
    "right": lambda side: orientation((1.0 if side == "right" else -1.0, 0.1, -0.3), (0.0, -1.0, 0.0)),
    "left": lambda side: orientation((-1.0 if side == "right" else 1.0, 0.1, -0.3), (0.0, -1.0, 0.0)),
}
_STATE_LETTERS = {"E": "extended", "H": "half", "C": "curled"}


def _shape_event(a: Action, side: str, pattern: str, t0: float, tr: Track, detail: str = "") -> ExpectedEvent:
    """A promised shape: finger states ``pattern`` (thumb .. pinky, E / H / C, ``?`` any) from ``t0`` to now."""
    fingers = tuple((f, _STATE_LETTERS[c]) for f, c in zip(("thumb", "index", "middle", "ring", "pinky"), pattern)
                    if c in _STATE_LETTERS)  # fmt: skip
    return ExpectedEvent("shape", side=side, fingers=fingers, start_s=t0, end_s=tr.end, detail=detail, action=a.text)


def _motion_event(a: Action, side: str, detail: str, count: int, t0: float, tr: Track) -> ExpectedEvent:
    return ExpectedEvent("motion", side=side, detail=detail, count=count, start_s=t0, end_s=tr.end, action=a.text)


def point(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Point with the index finger (forward, or ``a.direction``: up, down, left, right) and hold."""
    direction = a.direction or "forward"
    go(ctx, tr, a, ctx.shape_angles("point"), rest_pos(ctx, POINT_WRIST_M), _POINT_ORIENT[direction](side))
    t0 = tr.end
    tr.hold(hold_seconds(a, ctx.dur(POINT_HOLD_S, a) * a.reps))
    return [_shape_event(a, side, "CECCC", t0, tr, f"point_{direction}")]


def thumbs_up(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Fist with the thumb up; each extra repetition is a small upward pump.

    Known quirk, kept as is: the second move of a pump reads ``tr.last.pos`` after the first move, so
    the hand stays at the raised height (each pump raises it by :data:`THUMBS_UP_PUMP_M`).
    """
    go(ctx, tr, a, ctx.shape_angles("thumbs_up"), rest_pos(ctx, THUMBS_UP_WRIST_M), ORIENT["thumb_up"])
    t0 = tr.end
    for _ in range(a.reps - 1):
        lift = [0, THUMBS_UP_PUMP_M * amp, 0]
        tr.to(ctx.dur(THUMBS_UP_PUMP_S, a), pos=tr.last.pos + lift).to(ctx.dur(THUMBS_UP_PUMP_S, a), pos=tr.last.pos)
    tr.hold(hold_seconds(a, ctx.dur(THUMBS_UP_HOLD_S, a)))
    return [_shape_event(a, side, "ECCCC", t0, tr, "thumbs_up")]


def ok_sign(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Thumb and index tips in a ring, shown at shoulder height; one thumb-index contact."""
    t0 = tr.end
    go(ctx, tr, a, hand_shape("ok"), rest_pos(ctx, OK_WRIST_M), ORIENT["show"])
    tr.hold(hold_seconds(a, ctx.dur(OK_HOLD_S, a) * a.reps))
    return [_contact(a, side, "index", 1, t0, tr)]


# -- count, wave --------------------------------------------------------------------------------
COUNT_WRIST_M = (0.05, 0.17, 0.03)
COUNT_SHOW_HOLD_S = 1.0
COUNT_STEP_S = 0.35  # raise one more finger
COUNT_STEP_HOLD_S = 0.35
WAVE_WRIST_M = (0.07, 0.20, 0.04)
WAVE_SWING_RAD = np.deg2rad(22.0)  # wrist deviation each way
WAVE_SWING_S = 0.28  # each way
WAVE_SETTLE_S = 0.2


_COUNT_PATTERN = {1: "CECCC", 2: "CEECC", 3: "CEEEC", 4: "CEEEE", 5: "EEEEE"}


def count(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Count up from a fist to ``a.variant`` fingers (``'1'``..``'5'``), or show ``'showN'`` fingers."""
    pos = rest_pos(ctx, COUNT_WRIST_M)
    variant = a.variant or "5"
    n = int(variant.removeprefix("show"))
    if variant.startswith("show"):
        go(ctx, tr, a, ctx.shape_angles(f"count_{n}"), pos, ORIENT["show"])
        t0 = tr.end
        tr.hold(hold_seconds(a, ctx.dur(COUNT_SHOW_HOLD_S, a)))
    else:
        go(ctx, tr, a, ctx.shape_angles("fist"), pos, ORIENT["show"])
        for k in range(1, n + 1):
            tr.to(ctx.dur(COUNT_STEP_S, a), angles=ctx.shape_angles(f"count_{k}"))
            t0 = tr.end
            tr.hold(ctx.dur(COUNT_STEP_HOLD_S, a) * (1.0 if k < n else 2.0))
    return [_shape_event(a, side, _COUNT_PATTERN[n], t0, tr)]


def wave(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Open hand raised, palm forward, swung side to side ``a.reps`` times by wrist deviation."""
    pos = rest_pos(ctx, WAVE_WRIST_M)
    go(ctx, tr, a, ctx.shape_angles("open"), pos, ORIENT["show"])
    swing = WAVE_SWING_RAD * amp
    t0 = tr.end
    for _ in range(a.reps):
        tr.to(ctx.dur(WAVE_SWING_S, a), dev=swing).to(ctx.dur(WAVE_SWING_S, a), dev=-swing)
    tr.to(ctx.dur(WAVE_SETTLE_S, a), dev=0.0)
    return [_motion_event(a, side, "wave", a.reps, t0, tr)]


# -- piano, rub fingers -------------------------------------------------------------------------
PIANO_WRIST_M = (0.0, -0.05, -0.04)
PIANO_KEY_MCP_RAD = np.deg2rad(28.0)  # extra MCP flexion of a pressed key
PIANO_KEY_PIP_RAD = np.deg2rad(8.0)
PIANO_KEY_S = 0.13  # down, and again up
RUB_WRIST_M = (0.0, 0.02, 0.0)
RUB_SLIDE_S = 0.3  # index -> middle, and back


def piano(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Fingers press one after another (index to pinky, then back), palm down."""
    base = ctx.shape_angles("piano")
    go(ctx, tr, a, base, rest_pos(ctx, PIANO_WRIST_M), ORIENT["palm_down"])
    fingers = ["index", "middle", "ring", "pinky"]
    for r in range(a.reps):
        for f in fingers if r % 2 == 0 else fingers[::-1]:
            down = base.copy()
            down[angle_index(f"{f}_mcp")] += PIANO_KEY_MCP_RAD * amp
            down[angle_index(f"{f}_pip")] += PIANO_KEY_PIP_RAD * amp
            tr.to(ctx.dur(PIANO_KEY_S, a), angles=down).to(ctx.dur(PIANO_KEY_S, a), angles=base)
    return []


def rub_fingers(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """The thumb slides index -> middle -> index ``a.reps`` times: reps + 1 index and reps middle contacts."""
    t0 = tr.end
    go(ctx, tr, a, hand_shape("rub_index"), rest_pos(ctx, RUB_WRIST_M), ORIENT["rub"])
    for _ in range(a.reps):
        tr.to(ctx.dur(RUB_SLIDE_S, a), angles=hand_shape("rub_middle"))
        tr.to(ctx.dur(RUB_SLIDE_S, a), angles=hand_shape("rub_index"))
    return [_contact(a, side, "index", a.reps + 1, t0, tr), _contact(a, side, "middle", a.reps, t0, tr)]


# -- flip, rotate wrist -------------------------------------------------------------------------
FLIP_WRIST_M = (0.0, 0.03, 0.0)
FLIP_UP_S = 0.7  # palm down -> up, once ("turn the palms up")
FLIP_UP_HOLD_S = 0.4
FLIP_TURN_S = 0.65  # each half turn
FLIP_TURN_HOLD_S = 0.15
ROTATE_WRIST_M = (0.0, 0.03, 0.0)
ROTATE_SWING_RAD = np.deg2rad(55.0)  # forearm roll each way
ROTATE_SWING_S = 0.45  # each way
ROTATE_SETTLE_S = 0.35


def flip(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Palm down, then turned up by a half turn of the forearm (``'up'``) or flipped ``a.reps`` times."""
    go(ctx, tr, a, ctx.shape_angles("relaxed"), rest_pos(ctx, FLIP_WRIST_M), ORIENT["palm_down"])
    t0 = tr.end
    if a.variant == "up":
        tr.to(ctx.dur(FLIP_UP_S, a), roll=np.pi).hold(ctx.dur(FLIP_UP_HOLD_S, a))
        return [_motion_event(a, side, "flip", 1, t0, tr)]
    for r in range(a.reps):
        tr.to(ctx.dur(FLIP_TURN_S, a), roll=np.pi if r % 2 == 0 else 0.0).hold(ctx.dur(FLIP_TURN_HOLD_S, a))
    return [_motion_event(a, side, "flip", a.reps, t0, tr)]


def rotate_wrist(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Forearm roll back and forth ``a.reps`` times, then back to neutral."""
    go(ctx, tr, a, ctx.shape_angles("relaxed"), rest_pos(ctx, ROTATE_WRIST_M), ORIENT["neutral"])
    swing = ROTATE_SWING_RAD * amp
    t0 = tr.end
    for _ in range(a.reps):
        tr.to(ctx.dur(ROTATE_SWING_S, a), roll=swing).to(ctx.dur(ROTATE_SWING_S, a), roll=-swing)
    tr.to(ctx.dur(ROTATE_SETTLE_S, a), roll=0.0)
    return [_motion_event(a, side, "twist", a.reps, t0, tr)]


# -- write --------------------------------------------------------------------------------------
WRITE_WRIST_M = (0.0, 0.08, -0.06)
WRITE_SIZE_M = 0.05  # radius of a circle, half the side of a square
WRITE_CIRCLE_S = 1.6
WRITE_STROKE_S = 2.2  # a square or a scribble
WRITE_END_HOLD_S = 0.2
#: Samples of a written path.
_PATH_SAMPLES = 97


def write(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Write in the air: a circle, a square or a seeded scribble (``a.variant``), ``a.reps`` times."""
    pos = rest_pos(ctx, WRITE_WRIST_M)
    go(ctx, tr, a, ctx.shape_angles("write"), pos, ORIENT["point"])
    size = WRITE_SIZE_M * amp
    for _ in range(a.reps):
        path = write_path(a.variant or "scribble", size, ctx)
        tr.to(ctx.dur(WRITE_STROKE_S, a) if a.variant != "circle" else ctx.dur(WRITE_CIRCLE_S, a), path=path)
    tr.hold(ctx.dur(WRITE_END_HOLD_S, a))
    return []


def write_path(kind: str, size: float, ctx: ComposeContext) -> np.ndarray:
    """(N, 3) closed path offsets, metres, in the frontal plane (x lateral, y up), 0 at both ends."""
    s = np.linspace(0.0, 1.0, _PATH_SAMPLES)
    if kind == "circle":
        ang = 2 * np.pi * s
        xy = np.stack([size * (np.cos(ang) - 1.0), size * np.sin(ang)], -1)
    elif kind == "square":
        corners = size * np.array([[0, 0], [-2, 0], [-2, 2], [0, 2], [0, 0]], dtype=np.float64)
        u = s * 4
        i = np.minimum(u.astype(int), 3)
        w = (u - i)[:, None]
        xy = (1 - w) * corners[i] + w * corners[i + 1]
    else:  # scribble: a smooth cursive-like stroke, seeded
        freqs = np.array([1.0, 2.0, 3.0, 5.0])
        ph = ctx.rng.uniform(0, 2 * np.pi, (2, 4))
        amps = size * np.array([[0.9, 0.45, 0.3, 0.15], [0.5, 0.6, 0.3, 0.2]])
        xy = np.stack(
            [np.sum(amps[j] * np.sin(2 * np.pi * freqs * s[:, None] + ph[j]), -1) for j in range(2)], -1
        )
        xy[:, 0] -= 2.2 * size * s  # writing moves across, toward the body midline
        xy = xy - xy[0] - s[:, None] * (xy[-1] - xy[0])  # closed: 0 at both ends
    return np.concatenate([xy, np.zeros((len(s), 1))], -1)


# -- grasp, hold still --------------------------------------------------------------------------
GRASP_WRIST_M = (-0.02, -0.04, -0.08)  # the object
GRASP_APPROACH_M = (0.0, 0.05, 0.04)  # open hand above and behind the object
GRASP_LIFT_M = 0.07
GRASP_REACH_S = 0.5
GRASP_CLOSE_S = 0.45
GRASP_LIFT_S = 0.55
GRASP_LIFT_HOLD_S = 0.3
GRASP_PUT_DOWN_S = 0.5
GRASP_RELEASE_S = 0.35
#: Joint jitter of a grasp shape, degrees.
GRASP_JITTER_DEG = 1.0
_GRASP_ORIENT = {"cylindrical": "grasp_side", "spherical": "palm_down", "lateral": "grasp_side"}


def grasp(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Reach, close on an object (``a.variant`` grip), lift it; put it down again between repetitions."""
    variant = a.variant or "cylindrical"
    R = ORIENT[_GRASP_ORIENT.get(variant, "grasp_side")]
    q_grip, event = ctx.shape_angles(f"grasp_{variant}", GRASP_JITTER_DEG) if variant != "pinch" else None, None
    if a.obj is not None:
        q_grip, gap = object_grip(ctx, a.obj, variant)
    reach = rest_pos(ctx, GRASP_WRIST_M)
    go(ctx, tr, a, ctx.shape_angles("open"), reach + list(GRASP_APPROACH_M), R)
    t_first = None
    for r in range(a.reps):
        tr.to(ctx.dur(GRASP_REACH_S, a), pos=reach)
        tr.to(ctx.dur(GRASP_CLOSE_S, a), angles=q_grip)
        t_first = tr.end if t_first is None else t_first
        ctx.contact_times.append(tr.end)
        tr.to(ctx.dur(GRASP_LIFT_S, a), pos=reach + [0, GRASP_LIFT_M * amp, 0]).hold(
            hold_seconds(a, ctx.dur(GRASP_LIFT_HOLD_S, a)) if r == a.reps - 1 else ctx.dur(GRASP_LIFT_HOLD_S, a))
        if r < a.reps - 1:
            tr.to(ctx.dur(GRASP_PUT_DOWN_S, a), pos=reach).to(ctx.dur(GRASP_RELEASE_S, a), angles=ctx.shape_angles("open"))
    if a.obj is None:
        return []
    if variant == "pinch":
        event = ExpectedEvent("contact", (f"{side}_thumb_tip", f"{side}_index_tip"), count=a.reps, start_s=t_first - 0.3,
                              end_s=tr.end, action=a.text, style="touch")  # fmt: skip
    else:
        event = ExpectedEvent("grip", side=side, value=gap, start_s=t_first, end_s=tr.end, action=a.text)
    return [event]


#: A precision pinch closes the finger pads on a thin object: keypoints this much farther apart, capped
#: so that the pads stay in contact (HandX's 2 cm fingertip threshold), metres.
PINCH_OBJECT_PAD_M = 0.009
PINCH_OBJECT_MAX_GAP_M = 0.018


def object_grip(ctx: ComposeContext, obj: str, variant: str) -> tuple[np.ndarray, float]:
    """(angles, keypoint gap) of a hand holding ``obj``: a power grasp whose thumb-to-index/middle tip
    distance is the object's size, or a thumb-index pinch on a thin object."""
    from handx_robot.generate.compositional import aperture_angles, object_size, power_grip

    size = object_size(obj)
    if variant == "pinch":
        gap = min(size + PINCH_OBJECT_PAD_M, PINCH_OBJECT_MAX_GAP_M)
        return aperture_angles(gap, hand_shape("pinch_index"), hand_shape("pinch_open_index"), ctx.shape.scale,
                               tips=(16, 17)), gap  # fmt: skip
    return np.array(power_grip(round(size, 4), ctx.shape.scale)), size


def hold_still(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Keep the last pose (for the seconds in the clause, else one second per repetition)."""
    tr.hold(hold_seconds(a))
    return []


#: Primitive name -> the function that animates it on one hand.
ONE_HANDED: dict[str, OneHanded] = {
    "pinch": pinch,
    "fist": fist,
    "open_hand": open_hand,
    "point": point,
    "thumbs_up": thumbs_up,
    "ok_sign": ok_sign,
    "count": count,
    "wave": wave,
    "piano": piano,
    "rub_fingers": rub_fingers,
    "flip": flip,
    "rotate_wrist": rotate_wrist,
    "write": write,
    "grasp": grasp,
    "hold_still": hold_still,
}


def one_handed(ctx: ComposeContext, a: Action, side: str, tr: Track) -> list[ExpectedEvent]:
    """Animate ``a`` on the ``side`` hand's track; returns the events it promises."""
    amp = a.amplitude * ctx.jit(AMPLITUDE_JITTER)  # drawn first, for every primitive
    try:
        primitive = ONE_HANDED[a.primitive]
    except KeyError:
        raise ConfigError(
            f"primitive {a.primitive!r} is not one-handed; one-handed primitives: {', '.join(ONE_HANDED)}"
        ) from None
    return primitive(ctx, a, side, tr, amp)
