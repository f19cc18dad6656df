"""Two-handed primitives of the composer: a table from primitive name to the function that animates it.

Both hands move mirror-symmetrically about the body midline (the same keys in their side frames,
see :mod:`handx_robot.generate.composer`); contacts are placed with the capsule model of
:mod:`handx_robot.generate.geometry`. Durations are named ``*_S`` (seconds at speed 1, before the seeded
jitter), distances ``*_M`` (metres, side frame). Random draws happen in a fixed order per primitive;
reordering the calls changes every seeded motion.

Known limit: ``interlock`` offsets the hands by half a finger spacing and brings them together until
the capsules touch, which stops at the fingertips; fully interleaved fingers would need the soft tissue
between the fingers to compress by more than the 5 mm interpenetration the composer allows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.generate.context import ComposeContext, go, hold_seconds, transition_seconds
from handx_robot.generate.events import ExpectedEvent
from handx_robot.generate.geometry import hand_clearance
from handx_robot.generate.keyframes import Track, mirror_x
from handx_robot.generate.parser import Action
from handx_robot.generate.placement import ORIENT, REST_WRIST_POS, place_lateral, pose_points
from handx_robot.generate.primitives import AMPLITUDE_JITTER

__all__ = ["BIMANUAL", "CLAP_OPEN_M", "Bimanual", "bimanual"]

#: ``fn(ctx, action, tracks, amp) -> promised events``; ``tracks`` keyed ``left`` / ``right``.
Bimanual = Callable[[ComposeContext, Action, dict[str, Track], float], list[ExpectedEvent]]


def _both_to(tracks: dict[str, Track], dt: float, **key) -> None:
    """The same move for both hands (side frames), left first."""
    tracks["left"].to(dt, **key)
    tracks["right"].to(dt, **key)


def _both_hold(tracks: dict[str, Track], dt: float) -> None:
    tracks["left"].hold(dt)
    tracks["right"].hold(dt)


def _meet(ctx: ComposeContext, a: Action, tracks: dict[str, Track], q, R, opened) -> float:
    """Both hands to pose ``q``, ``R`` at ``opened`` in the slower hand's transition; returns the arrival time."""
    L, Rt = tracks["left"], tracks["right"]
    dt = max(transition_seconds(ctx, L, a, q, opened, R), transition_seconds(ctx, Rt, a, q, opened, R))
    _both_to(tracks, dt, angles=q, pos=opened, R=R, roll=0.0, dev=0.0)
    return L.end


def _palm_contact(a: Action, tracks: dict[str, Track], count: int, t_first: float) -> ExpectedEvent:
    return ExpectedEvent("contact", ("left_palm", "right_palm"), count=count, start_s=t_first,
                         end_s=tracks["left"].end, action=a.text)  # fmt: skip


# -- clap, palms together -----------------------------------------------------------------------
#: A clap opens the palms this far apart (each hand moves half), metres, at amplitude 1.
CLAP_OPEN_M = 0.22
#: Flat-hand joint jitter of palm contacts, degrees.
PALMS_JITTER_DEG = 1.0
PALMS_Y_M = -0.02  # palm contact height (side frame y), metres
PALMS_Z_M = -0.32  # palm contact depth (side frame z), metres
PRAY_RAISE_M = 0.06  # palms together sit this much higher than a clap
CLAP_CLOSE_S = 0.2
CLAP_CONTACT_S = 0.1  # not scaled by speed or jitter
CLAP_OPEN_S = 0.26
CLAP_PAUSE_S = 0.06
PRAY_CLOSE_S = 0.5
PRAY_HOLD_S = 1.2  # per repetition
PRAY_MIN_HOLD_S = 0.3
PRAY_OPEN_S = 0.4


def _palm_placement(ctx: ComposeContext, raise_m: float, R: np.ndarray, amp: float):
    """(q, closed, opened): flat hands whose palms meet at ``closed``; ``opened`` is a clap apart."""
    q = ctx.shape_angles("flat", PALMS_JITTER_DEG)
    y, z = PALMS_Y_M + ctx.pos_jitter()[1], PALMS_Z_M + ctx.pos_jitter()[2]
    if raise_m:
        y += raise_m
    x_c = place_lateral(ctx.shape, q, R, np.array([0.0, y, z]))
    closed = np.array([x_c, y, z])
    opened = closed + [0.5 * CLAP_OPEN_M * amp, 0.0, 0.0]
    return q, closed, opened


def clap(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """Palms facing each other meet ``a.reps`` times; each meeting is a palm contact."""
    R = ORIENT["palm_medial"]
    q, closed, opened = _palm_placement(ctx, 0.0, R, amp)
    t_first = _meet(ctx, a, tracks, q, R, opened)
    for _ in range(a.reps):
        _both_to(tracks, ctx.dur(CLAP_CLOSE_S, a), pos=closed)
        ctx.contact_times.append(tracks["left"].end)
        _both_hold(tracks, CLAP_CONTACT_S)
        _both_to(tracks, ctx.dur(CLAP_OPEN_S, a), pos=opened)
        _both_hold(tracks, ctx.dur(CLAP_PAUSE_S, a))
    return [_palm_contact(a, tracks, a.reps, t_first)]


def palms_together(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """Palms pressed together, fingers up (prayer), held; one palm contact."""
    R = ORIENT["pray"]
    q, closed, opened = _palm_placement(ctx, PRAY_RAISE_M, R, amp)
    t_first = _meet(ctx, a, tracks, q, R, opened)
    _both_to(tracks, ctx.dur(PRAY_CLOSE_S, a), pos=closed)
    _both_hold(tracks, hold_seconds(a, max(ctx.dur(PRAY_HOLD_S, a), PRAY_MIN_HOLD_S) * a.reps))
    _both_to(tracks, ctx.dur(PRAY_OPEN_S, a), pos=opened)
    return [_palm_contact(a, tracks, 1, t_first)]


# -- touch fingertips, interlock ----------------------------------------------------------------
#: Joint jitter of the steeple / interlock shapes, degrees.
TIPS_JITTER_DEG = 1.0
TIPS_Y_M = 0.0  # contact height (side frame y), metres
TIPS_Z_M = -0.30  # contact depth (side frame z), metres
TIPS_OPEN_M = 0.06  # lateral opening of each hand at amplitude 1
INTERLOCK_OPEN_M = 0.10  # not scaled by amplitude
#: Interlocked fingers sit between each other: the right hand is shifted by half a finger spacing
#: (the left hand by the mirror of minus that), metres, world.
INTERLOCK_OFFSET_RIGHT_M = (0.0, 0.0095, 0.0)
TIPS_CLOSE_S = 0.45
TIPS_HOLD_S = 0.6
INTERLOCK_HOLD_S = 1.2
TIPS_OPEN_S = 0.4


def _fingers_meet(ctx: ComposeContext, a: Action, tracks: dict[str, Track], shape: str, offset_right,
                  open_m: float, hold_s: float, reps: int) -> float:  # fmt: skip
    """Steepled hands (``shape``) meet at the fingertips ``reps`` times; returns the first arrival time.

    ``offset_right``: world offset of the right hand (the left gets its mirror image of minus it), or None.
    Each hand draws its own close and open duration (left first), so the hands are not exactly in step.
    """
    R = ORIENT["steeple"]
    q = ctx.shape_angles(shape, TIPS_JITTER_DEG)
    y, z = TIPS_Y_M + ctx.pos_jitter()[1], TIPS_Z_M + ctx.pos_jitter()[2]
    off = None if offset_right is None else np.array(offset_right)
    x_c = place_lateral(ctx.shape, q, R, np.array([0.0, y, z]), offset_right=off)
    closed = np.array([x_c, y, z])
    opened = closed + [open_m, 0.0, 0.0]
    offs = {"left": np.zeros(3), "right": np.zeros(3)}
    if off is not None:
        offs = {"left": mirror_x(-off), "right": off}
    L, Rt = tracks["left"], tracks["right"]
    dt = max(transition_seconds(ctx, L, a, q, opened, R), transition_seconds(ctx, Rt, a, q, opened, R))
    for s, tr in tracks.items():
        tr.to(dt, angles=q, pos=opened + offs[s], R=R, roll=0.0, dev=0.0)
    t_first = L.end
    for _ in range(reps):
        for s, tr in tracks.items():
            tr.to(ctx.dur(TIPS_CLOSE_S, a), pos=closed + offs[s])
        ctx.contact_times.append(L.end)
        _both_hold(tracks, ctx.dur(hold_s, a))
        for s, tr in tracks.items():
            tr.to(ctx.dur(TIPS_OPEN_S, a), pos=opened + offs[s])
    return t_first


def touch_fingertips(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """The fingertips of both hands meet ``a.reps`` times (steeple); each meeting is a contact."""
    t_first = _fingers_meet(ctx, a, tracks, "steeple", None, TIPS_OPEN_M * amp, TIPS_HOLD_S, a.reps)
    return [ExpectedEvent("contact", ("left_any_tip", "right_any_tip"), count=a.reps, start_s=t_first,
                          end_s=tracks["left"].end, action=a.text)]  # fmt: skip


def interlock(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """Fingers interlaced (see the module's known limit), once; promises no event."""
    _fingers_meet(ctx, a, tracks, "interlock", INTERLOCK_OFFSET_RIGHT_M, INTERLOCK_OPEN_M, INTERLOCK_HOLD_S, 1)
    return []


# -- handover -----------------------------------------------------------------------------------
#: Joint jitter of the cylindrical grip, degrees.
HANDOVER_GRIP_JITTER_DEG = 1.0
#: Object centre at the midline (side frame y, z), metres; the giver grips 4 cm above it.
HANDOVER_OBJECT_YZ_M = (-0.03, -0.36)
HANDOVER_GIVER_ABOVE_M = 0.04
#: The taker's grip is lowered from the giver's in these steps until the hands clear by 3 mm, metres.
HANDOVER_DROPS_M = np.linspace(0.04, 0.20, 41)
HANDOVER_CLEARANCE_M = 0.003
HANDOVER_OPEN_APPROACH_M = 0.05  # the taker's open hand comes in from this far out
HANDOVER_START_M = (0.14, 0.0, 0.03)  # the giver starts this far from the midline pose
HANDOVER_TAKER_END_M = (0.12, 0.0, 0.03)  # the taker carries the object this far away
HANDOVER_START_HOLD_S = 0.3
HANDOVER_CARRY_S = 0.8
HANDOVER_TAKE_S = 0.4  # approach, close, release, each
HANDOVER_AWAY_S = 0.6


def _handover_grips(ctx: ComposeContext, giver: str, taker: str, q_grasp, q_open, R) -> dict[str, np.ndarray]:
    """Wrist positions (side frames) of giver and taker at the midline: the taker as high as clearance allows."""
    k = ctx.fk(q_grasp)
    centre_h = np.mean(k[[2, 5, 11, 16]], axis=0)  # inside the grip, hand frame
    centre_side = R @ centre_h
    obj_y, obj_z = HANDOVER_OBJECT_YZ_M
    # giver holds the upper part of the object; the taker grips below it, as close as the hands allow
    at_mid = {giver: np.array([-centre_side[0], obj_y + HANDOVER_GIVER_ABOVE_M - centre_side[1], obj_z - centre_side[2]])}
    g_world = pose_points(ctx.shape, q_grasp, at_mid[giver], R)
    if giver == "left":
        g_world = mirror_x(g_world)
    drops = HANDOVER_DROPS_M
    drop = 0.0
    for q, dx in ((q_grasp, 0.0), (q_open, 0.0), (q_open, HANDOVER_OPEN_APPROACH_M)):  # gripping, and opened on the way in
        t_side = pose_points(ctx.shape, q, at_mid[giver] + [dx, 0.0, 0.0], R)[None] - np.stack(
            [np.zeros_like(drops), drops, np.zeros_like(drops)], -1
        )[:, None, :]
        t_world = mirror_x(t_side) if taker == "left" else t_side
        ok = hand_clearance(np.broadcast_to(g_world, t_world.shape), t_world) >= HANDOVER_CLEARANCE_M
        drop = max(drop, float(drops[np.argmax(ok)]) if ok.any() else float(drops[-1]))
    at_mid[taker] = at_mid[giver] - np.array([0.0, drop, 0.0])
    return at_mid


def handover(ctx: ComposeContext, a: Action, tracks: dict[str, Track], amp: float) -> list[ExpectedEvent]:
    """The first side of ``a.sides`` carries an object to the body midline and the other side takes it."""
    giver, taker = a.sides
    G, T = tracks[giver], tracks[taker]
    R = ORIENT["grasp_side"]
    q_grasp = ctx.shape_angles("grasp_cylindrical", HANDOVER_GRIP_JITTER_DEG)
    size = None
    if a.obj is not None:
        from handx_robot.generate.primitives import object_grip

        q_grasp, size = object_grip(ctx, a.obj, "pinch" if _is_pinch_object(a.obj) else "cylindrical")
    q_open = ctx.shape_angles("open")
    at_mid = _handover_grips(ctx, giver, taker, q_grasp, q_open, R)
    start = at_mid[giver] + list(HANDOVER_START_M)
    go(ctx, G, a, q_grasp, start, R)
    t_give = G.end
    G.hold(ctx.dur(HANDOVER_START_HOLD_S, a))
    T.wait_until(G.end)
    G.to(ctx.dur(HANDOVER_CARRY_S, a), pos=at_mid[giver])
    T.to(ctx.dur(HANDOVER_CARRY_S, a), angles=q_open, pos=at_mid[taker] + [HANDOVER_OPEN_APPROACH_M, 0.0, 0.0],
         R=R, roll=0.0, dev=0.0)  # fmt: skip
    T.to(ctx.dur(HANDOVER_TAKE_S, a), pos=at_mid[taker]).to(ctx.dur(HANDOVER_TAKE_S, a), angles=q_grasp)
    G.wait_until(T.end)
    G.to(ctx.dur(HANDOVER_TAKE_S, a), angles=ctx.shape_angles("open"))
    T.hold(ctx.dur(HANDOVER_TAKE_S, a))
    G.to(ctx.dur(HANDOVER_AWAY_S, a), pos=REST_WRIST_POS + ctx.pos_jitter(), angles=ctx.shape_angles("relaxed"),
         R=ORIENT["neutral"])  # fmt: skip
    T.to(ctx.dur(HANDOVER_AWAY_S, a), pos=at_mid[taker] + list(HANDOVER_TAKER_END_M))
    t_take = T.end
    T.hold(ctx.dur(HANDOVER_START_HOLD_S, a))
    if size is None:
        return []
    if _is_pinch_object(a.obj):
        # the giver's pinch may have closed before (it picked the object up): held, not necessarily new
        return [ExpectedEvent("contact", (f"{s}_thumb_tip", f"{s}_index_tip"), start_s=t0, end_s=t1, style=style,
                              action=a.text)
                for s, t0, t1, style in ((giver, t_give, t_give + 0.3, "hold"), (taker, t_take - 1.0, T.end, "touch"))]  # fmt: skip
    return [ExpectedEvent("grip", side=giver, value=size, start_s=t_give, end_s=t_give + 0.3, action=a.text),
            ExpectedEvent("grip", side=taker, value=size, start_s=t_take - 0.6, end_s=T.end, action=a.text)]  # fmt: skip


def _is_pinch_object(name: str) -> bool:
    from handx_robot.generate.lexicon import OBJECTS

    return OBJECTS[name][1] == "pinch"


#: Primitive name -> the function that animates it on both hands.
BIMANUAL: dict[str, Bimanual] = {
    "clap": clap,
    "palms_together": palms_together,
    "touch_fingertips": touch_fingertips,
    "interlock": interlock,
    "handover": handover,
}


def bimanual(ctx: ComposeContext, a: Action, tracks: dict[str, Track]) -> list[ExpectedEvent]:
    """Animate the two-handed ``a`` on both tracks; returns the events it promises."""
    amp = a.amplitude * ctx.jit(AMPLITUDE_JITTER)  # drawn first, for every primitive
    try:
        primitive = BIMANUAL[a.primitive]
    except KeyError:
        raise ConfigError(
            f"primitive {a.primitive!r} is not bimanual; bimanual primitives: {', '.join(BIMANUAL)}"
        ) from None
    return primitive(ctx, a, tracks, amp)
