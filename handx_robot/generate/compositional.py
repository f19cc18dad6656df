"""Primitives of the compositional grammar (:mod:`handx_robot.generate.grammar`): shapes from finger
states, contacts between any two named parts, hand motion in a direction, palm turns, shakes, objects.

Frames and units as in :mod:`handx_robot.generate.composer`: a hand's track lives in its *side frame*
(the world for the right hand, mirrored x -> -x for the left); metres, seconds, radians. Contacts are
placed in the world: the target hand presents its part with the part's outward normal up, the acting
hand comes down onto it, and the capsule model of :mod:`handx_robot.generate.geometry` keeps the two
hands from passing through each other (at most :data:`MAX_OVERLAP_M`).
"""

from __future__ import annotations

import functools

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.generate.context import ComposeContext, go, hold_seconds, rest_pos, transition_seconds
from handx_robot.generate.events import ExpectedEvent
from handx_robot.generate.geometry import hand_clearance
from handx_robot.generate.handmodel import LONG_FINGERS, clip_angles, forward_kinematics
from handx_robot.generate.keyframes import Track, mirror_x
from handx_robot.generate.parser import Action
from handx_robot.generate.placement import ORIENT, REST_WRIST_POS, orientation, place_lateral, pose_points
from handx_robot.generate.shapes import hand_shape

__all__ = [
    "COMPOSITIONAL",
    "FINGER_STATE_DEG",
    "MAX_OVERLAP_M",
    "aperture_angles",
    "shape_from_states",
    "state_angles",
]

#: Per-finger joint angles of a state, degrees: long fingers (abd, mcp, pip, dip), thumb (opp, abd, mcp, ip).
FINGER_STATE_DEG = {
    "extended": (0.0, 0.0, 2.0, 2.0),
    "half": (0.0, 45.0, 45.0, 25.0),
    "curled": (0.0, 85.0, 100.0, 55.0),
    "thumb_extended": (-5.0, 15.0, 0.0, 0.0),
    "thumb_half": (20.0, 25.0, 25.0, 20.0),
    "thumb_curled": (30.0, 0.0, 50.0, 55.0),
}
_CLAW_DEG = (0.0, 5.0, 75.0, 50.0)
_SPREAD_DEG = {"index": 8.0, "middle": 0.0, "ring": -8.0, "pinky": -14.0}
#: Contacts may squeeze the hands' capsules into each other by at most this much, metres.
MAX_OVERLAP_M = 0.004
#: Capsule radius of each part around its keypoint (from :mod:`handx_robot.generate.geometry`), metres.
PART_RADIUS_M = {"tip": 0.0065, "pad": 0.0065, "palm": 0.0105, "back": 0.0105, "knuckles": 0.0105, "wrist": 0.0105}
#: A fingertip on its own palm: keypoint to the palm area at most, metres (the observer's threshold: 2.5 cm).
OWN_PALM_MAX_M = 0.0235
#: Contact: the two keypoints are this much closer than touching capsules (a light squeeze), metres.
CONTACT_SQUEEZE_M = 0.001
#: Where the target part of a cross-hand contact sits (world; x toward the target hand's side), metres.
TARGET_POINT_M = (0.05, -0.02, -0.32)
APPROACH_M = 0.05  # the acting part waits this far above the target
TAP_IN_S, TAP_HOLD_S, TAP_OUT_S, TAP_UP_M = 0.2, 0.12, 0.2, 0.035
TOUCH_IN_S, TOUCH_HOLD_S = 0.35, 0.45
PRESS_HOLD_S = 1.0
RUB_STROKE_M, RUB_STROKE_S = 0.014, 0.28
SLIDE_M, SLIDE_S = 0.03, 0.8
SHOW_WRIST_M = (0.05, 0.17, 0.03)
SHAPE_HOLD_S = 1.0
MOVE_M = 0.12
MOVE_S = 0.7
MOVE_PAUSE_S = 0.2
MOVE_LIMIT_M = 0.22  # farthest a wrist goes from its rest position along any axis
CIRCLE_RADIUS_M = 0.05
CIRCLE_S = 1.4
SHAKE_M, SHAKE_S, SHAKE_MIN_S = 0.03, 0.17, 0.13  # each way; a faster shake blurs at 30 fps
TURN_HOLD_S = 0.6


# -- shapes --------------------------------------------------------------------------------------
def state_angles(finger: str, state: str, variant: str | None = None) -> np.ndarray:
    """(4,) radians of one finger in a state (``claw`` variant: straight MCP, bent PIP and DIP)."""
    if finger == "thumb":
        return np.deg2rad(FINGER_STATE_DEG[f"thumb_{state}"])
    deg = list(_CLAW_DEG if (variant == "claw" and state == "half") else FINGER_STATE_DEG[state])
    if state == "extended":
        deg[0] = _SPREAD_DEG[finger]
    return np.deg2rad(deg)


def shape_from_states(states, base: np.ndarray | None = None, variant: str | None = None) -> np.ndarray:
    """(20,) angles: ``base`` (default relaxed) with each named finger set to its state."""
    q = hand_shape("relaxed") if base is None else np.array(base, dtype=np.float64)
    for finger, state in states:
        i = 16 if finger == "thumb" else 4 * LONG_FINGERS.index(finger)
        q[i : i + 4] = state_angles(finger, state, variant)
    return clip_angles(q)


def _states_events(a: Action, side: str, states, t0: float, t1: float, detail: str = "") -> ExpectedEvent:
    return ExpectedEvent("shape", side=side, fingers=tuple(states), start_s=t0, end_s=t1, detail=detail, action=a.text)


def shape(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """A named shape (or finger states) shown raised, palm forward, held (``a.hold_s`` or 1 s per repetition)."""
    q = shape_from_states(a.fingers, base=hand_shape("relaxed"), variant=a.variant)
    q = q + np.deg2rad(ctx.var * 1.0) * ctx.rng.standard_normal(q.shape)
    R = ORIENT["show"]
    if a.variant == "thumbs_down":
        R = orientation((0.05, -0.70, -0.70), (1.0, 0.0, 0.0))
    elif a.variant == "thumbs_up":
        R = ORIENT["thumb_up"]
    go(ctx, tr, a, q, rest_pos(ctx, SHOW_WRIST_M), R)
    t0 = tr.end
    tr.hold(hold_seconds(a, ctx.dur(SHAPE_HOLD_S, a) * a.reps))
    return [_states_events(a, side, a.fingers, t0, tr.end, a.variant or "")]


def fingers(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """The named fingers take their states (the others keep theirs) where the hand is, and hold."""
    q = shape_from_states(a.fingers, base=tr.last.angles)
    tr.to(transition_seconds(ctx, tr, a, angles=q), angles=q)
    t0 = tr.end
    tr.hold(hold_seconds(a, ctx.dur(SHAPE_HOLD_S, a)))
    return [_states_events(a, side, a.fingers, t0, tr.end)]


def apply_keep(a: Action, side: str, tr: Track, first_key: int) -> list[ExpectedEvent]:
    """Hold ``a.fingers`` on the keys added since ``first_key`` (a ``keep`` clause running alongside)."""
    keys = tr.keys[first_key:]
    if not keys:
        return []
    for k in keys:
        k.angles = shape_from_states(a.fingers, base=k.angles)
    return [_states_events(a, side, a.fingers, keys[0].t, keys[-1].t)]


# -- contacts -----------------------------------------------------------------------------------
def _split_part(name: str) -> tuple[str, str | None, str]:
    bits = name.split("_")
    side = bits[0]
    if bits[-1] in ("tip", "pad"):
        return side, bits[1], bits[-1]
    return side, None, bits[1]


def _palm_centre(k: np.ndarray) -> np.ndarray:
    return k[[0, 1, 4, 10, 7]].mean(axis=0)


def part_point(points: np.ndarray, finger: str | None, part: str) -> np.ndarray:
    """(3,) keypoint of a part of one hand's ``points (21, 3)``."""
    if part in ("tip", "pad"):
        return points[{"thumb": 16, "index": 17, "middle": 18, "ring": 19, "pinky": 20}[finger]]
    if part in ("palm", "back"):
        return _palm_centre(points)
    if part == "knuckles":
        return points[[1, 4, 10, 7]].mean(axis=0)
    return points[0]


def _world(side: str, pts: np.ndarray) -> np.ndarray:
    return mirror_x(pts) if side == "left" else pts


def _to_side(side: str, v) -> np.ndarray:
    v = np.array(v, dtype=np.float64)
    if side == "left":
        v[..., 0] *= -1.0
    return v


def _target_pose(ctx, side: str, finger: str | None, part: str, base_q):
    """(q, R, pos) of the hand presenting ``part`` with its outward normal up at :data:`TARGET_POINT_M`."""
    if part == "palm" or part == "pad":
        q = shape_from_states((("index", "extended"), ("middle", "extended"), ("ring", "extended"),
                               ("pinky", "extended")), base=base_q)  # fmt: skip
        R = orientation((-0.35, 0.05, -1.0), (0.0, 1.0, 0.0))
    elif part == "tip":
        q = shape_from_states(((finger, "extended"),), base=hand_shape("fist"))
        R = orientation((-0.35, 0.05, -1.0), (0.0, -1.0, 0.0))
    elif part == "knuckles":
        q = hand_shape("fist")
        R = orientation((-0.35, 0.05, -1.0), (0.0, -1.0, 0.0))
    else:  # back, wrist
        q = shape_from_states((("index", "extended"), ("middle", "extended"), ("ring", "extended"),
                               ("pinky", "extended")), base=base_q)  # fmt: skip
        R = orientation((-0.35, 0.05, -1.0), (0.0, -1.0, 0.0))
    local = pose_points(ctx.shape, q, np.zeros(3), R)
    point = part_point(local, finger, part)
    target = np.array(TARGET_POINT_M) + ctx.pos_jitter(0.004)
    return q, R, target - point


def _actor_pose(finger: str | None, part: str, base_q):
    """(q, R) of the acting hand (side frame) with its part facing down, approaching from its own side."""
    if part in ("tip", "pad"):
        if finger == "thumb":
            q = shape_from_states((("thumb", "extended"),), base=hand_shape("fist"))
            k = forward_kinematics(q)
            return q, _align(k[16] - k[13], np.array([0.0, 0.0, 1.0]), (-0.5, -1.0, -0.3), (-0.2, 0.0, -1.0))
        q = shape_from_states(((finger, "extended"), ("thumb", "curled")), base=hand_shape("fist"))
        R = orientation((-0.55, -0.65, -0.5), (-0.2, -0.3, 0.6))
        return q, R
    if part == "palm":
        return shape_from_states((("index", "extended"), ("middle", "extended"), ("ring", "extended"),
                                  ("pinky", "extended")), base=base_q), orientation((-0.3, 0.0, -1.0), (0.0, -1.0, 0.0))  # fmt: skip
    if part == "back":
        return hand_shape("relaxed"), orientation((-0.3, 0.0, -1.0), (0.0, 1.0, 0.0))
    if part == "knuckles":
        return hand_shape("fist"), orientation((-0.3, -0.8, -0.5), (0.0, 0.5, -0.8))
    return hand_shape("relaxed"), orientation((-0.3, 0.5, -1.0), (0.0, -1.0, 0.0))  # wrist


def _align(v_hand, u_hand, v_side, u_side) -> np.ndarray:
    """``R_side_hand`` turning hand-frame direction ``v_hand`` onto ``v_side`` (and ``u_hand`` as close
    to ``u_side`` as that allows)."""

    def frame(v, u):
        v = np.asarray(v, dtype=np.float64)
        v = v / np.linalg.norm(v)
        u = np.asarray(u, dtype=np.float64)
        u = u - (u @ v) * v
        u = u / np.linalg.norm(u)
        return np.stack([v, u, np.cross(v, u)], axis=-1)

    return frame(v_side, u_side) @ frame(v_hand, u_hand).T


def _place_actor(ctx, a_side, qa, Ra, a_finger, a_part, b_world, b_point, b_normal, target_d) -> np.ndarray:
    """Actor wrist (side frame) putting its part ``target_d`` from ``b_point`` along ``b_normal``, backed
    off along the normal until the hands overlap by at most :data:`MAX_OVERLAP_M`."""
    local = pose_points(ctx.shape, qa, np.zeros(3), Ra)
    p_local = part_point(local, a_finger, a_part)

    def at(s: float) -> np.ndarray:
        p_world = b_point + b_normal * s
        return _to_side(a_side, p_world) - p_local

    def clearance(s: float) -> float:
        pts = _world(a_side, pose_points(ctx.shape, qa, at(s), Ra))
        return float(hand_clearance(pts, b_world))

    s = target_d
    if clearance(s) < -MAX_OVERLAP_M:
        lo, hi = s, s + 0.08
        if clearance(hi) < -MAX_OVERLAP_M:
            raise ConfigError("contact placement failed: the hands cannot touch there without passing through each other")
        for _ in range(20):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if clearance(mid) < -MAX_OVERLAP_M else (lo, mid)
        s = hi
    return at(s)


def touch(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """Contact between ``a.parts`` (the acting part first) in ``a.style``: tap, touch, press, rub or slide."""
    (sa, fa, pa), (sb, fb, pb) = (_split_part(p) for p in a.parts)
    if sa == sb:
        return _touch_within(ctx, a, tracks[sa], sa, fa, pa, fb, pb)
    A, B = tracks[sa], tracks[sb]
    qb, Rb, pos_b_side = _target_pose(ctx, sb, fb, pb, B.last.angles)
    b_world = _world(sb, pose_points(ctx.shape, qb, pos_b_side, Rb))
    b_point = part_point(b_world, fb, pb)
    b_normal = np.array([0.0, 1.0, 0.0])
    qa, Ra = _actor_pose(fa, pa, A.last.angles)
    target_d = PART_RADIUS_M[pa] + PART_RADIUS_M[pb] - CONTACT_SQUEEZE_M
    contact = _place_actor(ctx, sa, qa, Ra, fa, pa, b_world, b_point, b_normal, target_d)
    above = contact + np.array([0.0, APPROACH_M, 0.0])
    dt = max(transition_seconds(ctx, A, a, qa, above, Ra), transition_seconds(ctx, B, a, qb, pos_b_side, Rb))
    B.to(dt, angles=qb, pos=pos_b_side, R=Rb, roll=0.0, dev=0.0)
    A.to(dt, angles=qa, pos=above, R=Ra, roll=0.0, dev=0.0)
    t0 = A.end
    tangent = np.array([1.0, 0.0, 0.0])  # across the target hand (along its knuckles), side frame
    min_hold = 0.0
    if a.style in ("rub", "slide"):
        A.to(ctx.dur(TOUCH_IN_S, a), pos=contact)
        ctx.contact_times.append(A.end)
        if a.style == "rub":
            for _ in range(a.reps):
                A.to(ctx.dur(RUB_STROKE_S, a), pos=contact + tangent * RUB_STROKE_M * amp)
                A.to(ctx.dur(RUB_STROKE_S, a), pos=contact - tangent * RUB_STROKE_M * amp)
            A.to(ctx.dur(RUB_STROKE_S, a) * 0.5, pos=contact)
        else:
            A.to(ctx.dur(SLIDE_S, a), pos=contact + tangent * SLIDE_M * amp)
        A.to(ctx.dur(TOUCH_IN_S, a), pos=A.last.pos + [0.0, APPROACH_M, 0.0])
        count = 1
    else:
        hold = {"tap": TAP_HOLD_S, "touch": TOUCH_HOLD_S, "press": PRESS_HOLD_S}[a.style or "touch"]
        if a.style == "press" or (a.style == "touch" and a.hold_s):
            hold = a.hold_s or hold
            min_hold = 0.7 * hold
        for r in range(a.reps):
            A.to(ctx.dur(TAP_IN_S if a.style == "tap" else TOUCH_IN_S, a), pos=contact)
            ctx.contact_times.append(A.end)
            A.hold(hold if a.style != "tap" else ctx.dur(hold, a))
            up = TAP_UP_M if (a.style == "tap" and r < a.reps - 1) else APPROACH_M
            A.to(ctx.dur(TAP_OUT_S if a.style == "tap" else TOUCH_IN_S, a), pos=contact + [0.0, up, 0.0])
        count = a.reps
    B.wait_until(A.end)
    parts = tuple(p.replace("_pad", "_tip") for p in a.parts)
    return [ExpectedEvent("contact", parts, count=count, start_s=t0, end_s=A.end, action=a.text,
                          style=a.style or "touch", min_hold_s=min_hold,
                          slide_m=(RUB_STROKE_M * amp * 2 * a.reps * 0.8 if a.style == "rub" else
                                   (SLIDE_M * amp * 0.7 if a.style == "slide" else 0.0)))]  # fmt: skip


@functools.cache
def _within_shape(finger_a: str, finger_b: str | None, part_b: str) -> tuple[float, ...]:
    """Angles (degrees) of one hand whose ``finger_a`` tip touches ``finger_b``'s tip or its own palm.

    Palm: the finger's joints (the thumb's four) bring its tip as close to the palm area
    (:func:`handx_robot.gestures.palm_area_points`) as they can, on the palmar side (a grid search).
    Raises :class:`ConfigError` if the tip stays farther than :data:`OWN_PALM_MAX_M`.
    """
    from handx_robot.generate.handmodel import LIMITS_HIGH, LIMITS_LOW

    if part_b != "palm":
        other = finger_b if finger_a == "thumb" else finger_a
        return tuple(np.rad2deg(hand_shape(f"pinch_{other}")))
    base = hand_shape("relaxed")
    if finger_a == "thumb":
        idx, n = np.array([16, 17, 18, 19]), 9
    else:
        i = 4 * LONG_FINGERS.index(finger_a)
        idx, n = np.array([i + 1, i + 2, i + 3]), 16
    tip = {"thumb": 16, "index": 17, "middle": 18, "ring": 19, "pinky": 20}[finger_a]
    axes = [np.linspace(LIMITS_LOW[j], LIMITS_HIGH[j], n) for j in idx]
    X = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=-1)
    Q = np.repeat(base[None], len(X), axis=0)
    Q[:, idx] = X
    K = forward_kinematics(Q)
    from handx_robot.gestures import palm_area_points

    C = K[:, [0, 1, 4, 10, 7]].mean(axis=1)
    palmar = K[:, tip, 2] - C[:, 2] > 0.012
    reach = np.min(np.linalg.norm(palm_area_points(K) - K[:, tip, None], axis=-1), axis=1)
    q = Q[int(np.argmin(reach + np.where(palmar, 0.0, 1.0)))]
    k = forward_kinematics(q)
    d = float(np.min(np.linalg.norm(palm_area_points(k) - k[tip], axis=-1)))
    if d > OWN_PALM_MAX_M:
        raise ConfigError(f"the {finger_a} fingertip reaches only {d * 100:.1f} cm from its own palm; "
                          "ask for another finger or the other hand's palm")  # fmt: skip
    return tuple(np.rad2deg(q))


def _touch_within(ctx, a: Action, tr: Track, side: str, fa, pa, fb, pb) -> list[ExpectedEvent]:
    """A fingertip on its own palm, or the thumb tip on a fingertip of the same hand."""
    if pa == "palm":
        fa, pa, fb, pb = fb, pb, fa, pa
    if pb == "palm":
        q_closed = np.deg2rad(_within_shape(fa, None, "palm"))
    elif "thumb" in (fa, fb):
        q_closed = np.deg2rad(_within_shape("thumb", fb if fa == "thumb" else fa, "tip"))
    else:
        raise ConfigError(f"{a.text!r}: within one hand only the thumb meets another fingertip")
    q_open = hand_shape("relaxed")
    go(ctx, tr, a, q_open, rest_pos(ctx, (0.0, 0.03, 0.0)), ORIENT["neutral"])
    t0 = tr.end
    hold = {"tap": TAP_HOLD_S, "touch": TOUCH_HOLD_S, "press": a.hold_s or PRESS_HOLD_S}.get(a.style or "touch", TOUCH_HOLD_S)
    for _ in range(a.reps):
        tr.to(ctx.dur(TOUCH_IN_S, a), angles=q_closed)
        ctx.contact_times.append(tr.end)
        tr.hold(hold)
        tr.to(ctx.dur(TOUCH_IN_S, a), angles=q_open)
    parts = tuple(p.replace("_pad", "_tip") for p in a.parts)
    return [ExpectedEvent("contact", parts, count=a.reps, start_s=t0, end_s=tr.end, action=a.text,
                          style=a.style or "touch", min_hold_s=0.7 * hold if a.style == "press" else 0.0)]  # fmt: skip


# -- hand motion -----------------------------------------------------------------------------------
_WORLD_DIR = {"up": (0, 1, 0), "down": (0, -1, 0), "right": (1, 0, 0), "left": (-1, 0, 0), "forward": (0, 0, -1),
              "back": (0, 0, 1)}  # fmt: skip


def _side_dir(side: str, direction: str) -> np.ndarray:
    if direction == "inward":
        return np.array([-1.0, 0.0, 0.0])
    if direction == "outward":
        return np.array([1.0, 0.0, 0.0])
    return _to_side(side, np.array(_WORLD_DIR[direction], dtype=np.float64))


def move(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """The wrist moves :data:`MOVE_M` (times the amplitude) in ``a.direction``; it first comes back toward
    its rest position when the move would take it farther than :data:`MOVE_LIMIT_M` from it."""
    d = _side_dir(side, a.direction)
    dist = MOVE_M * amp
    start = tr.last.pos
    off = start - REST_WRIST_POS
    if np.any(np.abs(off + d * dist) > MOVE_LIMIT_M):
        start = REST_WRIST_POS + off - d * (d @ off) - d * dist / 2  # recentre along the move's axis
        go(ctx, tr, a, pos=start)
    tr.hold(ctx.dur(MOVE_PAUSE_S, a))  # a move starts from rest: it reads as its own movement
    t0 = tr.end
    tr.to(ctx.dur(MOVE_S, a) * (0.8 + dist * 2.0), pos=start + d * dist)
    tr.hold(ctx.dur(0.15, a))
    world = {"inward": "right" if side == "left" else "left", "outward": "left" if side == "left" else "right"}
    return [ExpectedEvent("motion", side=side, detail=world.get(a.direction, a.direction), start_s=t0,
                          end_s=tr.end, value=0.6 * dist, action=a.text)]  # fmt: skip


def circle(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """The wrist draws ``a.reps`` circles in the frontal plane."""
    from handx_robot.generate.primitives import write_path

    go(ctx, tr, a, pos=rest_pos(ctx, (0.0, 0.08, -0.04)))
    t0 = tr.end
    for _ in range(a.reps):
        tr.to(ctx.dur(CIRCLE_S, a), path=write_path("circle", CIRCLE_RADIUS_M * amp, ctx))
    tr.hold(ctx.dur(0.15, a))
    return [ExpectedEvent("motion", side=side, detail="circle", count=a.reps, start_s=t0, end_s=tr.end, action=a.text)]


#: Palm facing -> (distal, palmar) in the side frame.
PALM_FACING = {
    "up": ((-0.15, 0.05, -1.0), (0.0, 1.0, 0.0)),
    "down": ((-0.15, 0.05, -1.0), (0.0, -1.0, 0.0)),
    "forward": ((-0.10, 1.0, 0.10), (0.0, 0.0, -1.0)),
    "back": ((-0.10, 1.0, -0.10), (0.0, 0.0, 1.0)),
    "inward": ((0.0, 0.35, -1.0), (-1.0, 0.0, 0.0)),
    "outward": ((0.0, 0.35, -1.0), (1.0, 0.0, 0.0)),
}


def turn(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """The palm turns to face ``a.direction`` and holds."""
    R = orientation(*PALM_FACING[a.direction])
    go(ctx, tr, a, R=R, roll=0.0, dev=0.0)
    t0 = tr.end
    tr.hold(hold_seconds(a, ctx.dur(TURN_HOLD_S, a)))
    detail = {"inward": "in", "outward": "out"}.get(a.direction, a.direction)
    return [ExpectedEvent("palm", side=side, detail=detail, start_s=t0, end_s=tr.end, action=a.text)]


def shake(ctx: ComposeContext, a: Action, side: str, tr: Track, amp: float) -> list[ExpectedEvent]:
    """Quick vertical shakes of the relaxed hand, ``a.reps`` cycles."""
    go(ctx, tr, a, ctx.shape_angles("relaxed"), rest_pos(ctx, (0.0, 0.04, 0.0)), ORIENT["palm_down"])
    t0 = tr.end
    p = tr.last.pos
    half = max(ctx.dur(SHAKE_S, a), SHAKE_MIN_S)
    for _ in range(a.reps):
        tr.to(half, pos=p + [0.0, SHAKE_M * amp, 0.0]).to(half, pos=p - [0.0, SHAKE_M * amp, 0.0])
    tr.to(half, pos=p)
    return [ExpectedEvent("motion", side=side, detail="shake", count=a.reps, start_s=t0, end_s=tr.end, action=a.text)]


# -- objects ----------------------------------------------------------------------------------------
def aperture_angles(size_m: float, closed: np.ndarray, opened: np.ndarray, shape_scale: float = 1.0,
                    tips: tuple[int, ...] = (16, 17, 18)) -> np.ndarray:  # fmt: skip
    """Angles between ``opened`` and ``closed`` whose aperture is ``size_m``: the mean distance from the
    thumb tip (``tips[0]``) to the other ``tips`` (the gesture observer's grip aperture)."""
    from handx_robot.generate.handmodel import HandShape

    shp = HandShape(shape_scale)
    s = np.linspace(0.0, 1.0, 81)
    Q = opened[None] + s[:, None] * (closed - opened)[None]
    K = forward_kinematics(Q, shp)
    d = np.mean([np.linalg.norm(K[:, tips[0]] - K[:, t], axis=-1) for t in tips[1:]], axis=0)
    i = int(np.argmin(np.abs(d - size_m)))
    return Q[i]


@functools.cache
def power_grip(size_m: float, scale: float = 1.0) -> tuple[float, ...]:
    """Angles (radians) of a power grasp around an object ``size_m`` across: the thumb-tip to index/middle
    tip aperture is the size, the fingers bent around it (half) and the thumb tip in front of the palm.

    A grid over finger flexion (a factor on ``grasp_cylindrical``) and the thumb's opposition and
    abduction, evaluated in one batched forward kinematics; the closest aperture wins.
    """
    from handx_robot.generate.handmodel import HandShape

    base = hand_shape("grasp_cylindrical")
    flex = np.linspace(0.35, 1.1, 16)
    opp = np.deg2rad(np.linspace(-10.0, 60.0, 15))
    abd = np.deg2rad(np.linspace(20.0, 70.0, 11))
    F, O, A = (x.ravel() for x in np.meshgrid(flex, opp, abd, indexing="ij"))
    Q = np.repeat(base[None], len(F), axis=0)
    for i in range(4):
        Q[:, 4 * i + 1 : 4 * i + 4] = base[4 * i + 1 : 4 * i + 4] * F[:, None]
    Q[:, 16], Q[:, 17], Q[:, 18], Q[:, 19] = O, A, 0.1, 0.1
    Q = clip_angles(Q)
    K = forward_kinematics(Q, HandShape(scale))
    ap = 0.5 * (np.linalg.norm(K[:, 16] - K[:, 17], axis=-1) + np.linalg.norm(K[:, 16] - K[:, 18], axis=-1))
    palm = np.linalg.norm(K[:, 4], axis=-1)
    chain = {1: (1, 2, 3, 17), 4: (4, 5, 6, 18)}
    ok = (K[:, 16, 2] >= 0.5 * palm) & (K[:, [17, 18], 2] >= 0.35 * palm[:, None]).all(axis=1)
    ok &= (np.linalg.norm(K[:, 17:21] - K[:, 16:17], axis=-1) >= 0.02).all(axis=1)
    for c in chain.values():
        length = sum(np.linalg.norm(K[:, c[j + 1]] - K[:, c[j]], axis=-1) for j in range(3))
        r = np.linalg.norm(K[:, c[3]] - K[:, c[0]], axis=-1) / length
        ok &= (r > 0.62) & (r < 0.93)
    cost = np.abs(ap - size_m) + np.where(ok, 0.0, 1.0)
    return tuple(Q[int(np.argmin(cost))])


def object_size(name: str) -> float:
    from handx_robot.generate.lexicon import OBJECTS

    return OBJECTS[name][0]


def hold_object(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """A big object held between both palms (their centres its width apart), lifted and held (the hands
    keep it: a following move carries it)."""
    width = object_size(a.obj or "box")
    R = ORIENT["palm_medial"]
    q = shape_from_states((("index", "extended"), ("middle", "extended"), ("ring", "extended"), ("pinky", "extended"),
                           ("thumb", "extended")))  # fmt: skip
    local = pose_points(ctx.shape, q, np.zeros(3), R)
    centre = _palm_centre(local)
    half = 0.5 * width + PART_RADIUS_M["palm"]
    y, z = -0.02, -0.33
    pos = np.array([half - centre[0], y - centre[1], z - centre[2]])
    open_pos = pos + [0.06, 0.0, 0.0]
    for tr in tracks.values():
        go(ctx, tr, a, q, open_pos, R)
    t_arrive = max(tr.end for tr in tracks.values())
    for tr in tracks.values():
        tr.wait_until(t_arrive)
        tr.to(ctx.dur(0.4, a), pos=pos)
    t0 = tracks["left"].end
    for tr in tracks.values():
        tr.to(ctx.dur(0.6, a), pos=pos + [0.0, 0.06 * amp, 0.0]).hold(hold_seconds(a, ctx.dur(0.8, a)))
    t1 = tracks["left"].end  # the hands keep holding it: "..., then lift it up" carries it on
    return [ExpectedEvent("spacing", start_s=t0, end_s=t1, value=width + 2 * PART_RADIUS_M["palm"], action=a.text)]


def rub_palms(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """Palms together, the hands sliding against each other up and down ``a.reps`` times."""
    R = ORIENT["pray"]
    q = ctx.shape_angles("flat", 1.0)
    y, z = -0.02 + 0.06, -0.32
    x = place_lateral(ctx.shape, q, R, np.array([0.0, y, z]))
    closed = np.array([x, y, z])
    for tr in tracks.values():
        go(ctx, tr, a, q, closed + [0.06, 0.0, 0.0], R)
    t = max(tr.end for tr in tracks.values())
    for tr in tracks.values():
        tr.wait_until(t)
        tr.to(ctx.dur(0.4, a), pos=closed)
    t0 = tracks["left"].end
    ctx.contact_times.append(t0)
    stroke = 0.012 * amp
    for _ in range(a.reps):
        for sign in (1.0, -1.0):
            dt = ctx.dur(RUB_STROKE_S, a)
            tracks["left"].to(dt, pos=closed + [0.0, sign * stroke, 0.0])
            tracks["right"].to(dt, pos=closed - [0.0, sign * stroke, 0.0])
    for tr in tracks.values():
        tr.to(ctx.dur(0.15, a), pos=closed)
    t1 = tracks["left"].end
    for tr in tracks.values():
        tr.to(ctx.dur(0.4, a), pos=closed + [0.06, 0.0, 0.0])
    return [ExpectedEvent("contact", ("left_palm", "right_palm"), count=1, start_s=t0, end_s=t1, action=a.text,
                          style="rub", slide_m=2.0 * stroke * 2 * a.reps * 0.7)]  # fmt: skip


def cross_wrists(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """The wrists cross in front of the body (the right one above the left), held."""
    L, Rt = tracks["left"], tracks["right"]
    qL = qR = ctx.shape_angles("relaxed")
    R_side = orientation((0.55, 0.1, -1.0), (0.0, -1.0, 0.0))  # fingers toward the other side
    centre = np.array([0.0, -0.03, -0.30])
    pos_l = centre.copy()
    left_world = mirror_x(pose_points(ctx.shape, qL, pos_l, R_side))
    lo, hi = 0.0, 0.08
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        right_world = pose_points(ctx.shape, qR, centre + [0.0, mid, 0.0], R_side)
        lo, hi = (mid, hi) if hand_clearance(left_world, right_world) < -CONTACT_SQUEEZE_M else (lo, mid)
    pos_r = centre + [0.0, hi, 0.0]
    dt = max(transition_seconds(ctx, L, a, qL, pos_l, R_side), transition_seconds(ctx, Rt, a, qR, pos_r, R_side))
    L.to(dt, angles=qL, pos=pos_l, R=R_side, roll=0.0, dev=0.0)
    Rt.to(dt + 0.15, angles=qR, pos=pos_r, R=R_side, roll=0.0, dev=0.0)
    t0 = Rt.end
    ctx.contact_times.append(t0)
    for tr in (L, Rt):
        tr.wait_until(t0)
        tr.hold(hold_seconds(a, ctx.dur(1.0, a)))
    t1 = Rt.end
    L.to(ctx.dur(0.5, a), pos=pos_l + [0.08, 0.0, 0.0])
    Rt.to(ctx.dur(0.5, a), pos=pos_r + [0.08, 0.0, 0.0])
    return [ExpectedEvent("contact", ("left_wrist", "right_wrist"), count=1, start_s=t0 - 0.2, end_s=t1, action=a.text)]


#: Primitives of this module: name -> (kind, function); kind ``one`` (per hand) or ``two`` (both tracks).
COMPOSITIONAL = {
    "shape": ("one", shape),
    "fingers": ("one", fingers),
    "move": ("one", move),
    "circle": ("one", circle),
    "turn": ("one", turn),
    "shake": ("one", shake),
    "touch": ("two", touch),
    "hold_object": ("two", hold_object),
    "rub_palms": ("two", rub_palms),
    "cross_wrists": ("two", cross_wrists),
}
