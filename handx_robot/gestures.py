"""Gesture observer: what a bimanual hand motion shows, named in the vocabulary of the text grammar.

:func:`observe` reads any motion (generated or captured) from its keypoint geometry alone and returns
:class:`Observation` s: held hand shapes ("peace"), contacts between named hand parts
("right_index_tip" taps "left_palm"), wrist moves ("up 12 cm"), circles, waves, shakes, twists, flips,
palm facing, grips and the spacing of two facing palms. Generate -> observe -> compare is then a test
of a text-to-motion generator. Units: metres, seconds, degrees where named ``*_deg``. The motion is put
in frame ``handx_yup`` first (+y up, +x the subject's right, -z forward); directions are the subject's.
The names, :class:`Observation` and :class:`GestureConfig` live in :mod:`handx_robot.gesture_words`; the
per-frame geometry and signal helpers in :mod:`handx_robot.gesture_signals`.

Hand axes (:func:`hand_axes`): distal ``d`` = wrist -> middle MCP; radial ``r`` = pinky MCP -> index MCP
made orthogonal to ``d``; palmar normal ``n = r x d`` for a right hand and ``-(r x d)`` for a left hand
(a left hand is the mirror image of a right one, which flips the cross product).

Finger states (:func:`finger_states`) come from the scale-free **reach ratio**
``r = |tip - base| / (sum of the finger's bone lengths base -> tip)`` (base = MCP, thumb: CMC), with dead
bands between the classes (a ratio in a dead band is ambiguous, -1). The reach ratio does not see the MCP
joint of a long finger (its first bone starts there), so a long finger that reads extended but is bent
more than ``extended_max_mcp_deg`` at the MCP is ambiguous too. Calibration on the composer's hand model
(``forward_kinematics(hand_shape(name))``; claw = MCP 0, PIP 70, DIP 45 deg, cupped = 45, 40, 20 deg)::

    shape               thumb  index  middle ring   pinky    -> states (thumb..pinky)
    open / count_5      1.000  1.000  1.000  1.000  1.000    E E E E E
    flat                0.990  1.000  1.000  1.000  1.000    E E E E E
    point / count_1     0.741  0.999  0.433  0.433  0.410    C E C C C
    count_2 (peace)     0.860  1.000  1.000  0.433  0.410    C E E C C
    count_3 (three)     0.860  1.000  1.000  1.000  0.410    C E E E C
    count_4 (four)      0.860  1.000  1.000  1.000  1.000    C E E E E
    fist                0.741  0.425  0.433  0.433  0.410    C C C C C
    thumbs_up           1.000  0.425  0.433  0.433  0.410    E C C C C
    claw                1.000  0.670  0.675  0.675  0.660    E H H H H
    cupped              1.000  0.901  0.902  0.902  0.898    E H H H H
    grasp_cylindrical   0.997  0.847  0.849  0.849  0.843    E H H H H
    grasp_spherical     1.000  0.880  0.882  0.882  0.877    E H H H H
    grasp_lateral       0.935  0.671  0.633  0.634  0.620    H H H H H
    ok                  0.996  0.818  0.998  0.998  0.998    E H E E E  (named "ok" by the tip gap)
    relaxed (rest)      0.997  0.954  0.955  0.955  0.953    E ? ? ? ?  (no shape at rest)
    piano               0.997  0.929  0.930  0.930  0.928    E ? ? ? ?

Long fingers: curled <= 0.52 < dead band < 0.58 <= half <= 0.92 < dead band < 0.97 <= extended.
Thumb: curled <= 0.90 < 0.915 <= half <= 0.95 < 0.965 <= extended. A uniform bend of PIP = a,
DIP = 0.7 a reads: a = 20 deg -> 0.97, 30 -> 0.93, 50 -> 0.82, 70 -> 0.66, 80 -> 0.57 (long fingers).
``tests/test_gestures.py`` recomputes this table.

Contacts use the keypoints, which lie inside the hand (fingertip keypoints ~0.8 cm under the pad, the
palm centre ~1.5 cm under the palm skin), so the thresholds (HandX's) are near-contact distances between
keypoints. Part points per hand: 5 fingertips, the palm centre (:func:`handx_robot.features.palm_centre`),
the knuckles (4 MCPs, the distance is the minimum over them) and the wrist (keypoint 0). A point on the
palmar side of a hand (``(p - palm_centre) . n > 0``) touches its ``palm``, otherwise its ``back``.
Hysteresis, gap closing and the minimum duration are those of :mod:`handx_robot.features`. A fingertip
on the back of the hand near the knuckles may be reported twice (``*_back`` and ``*_knuckles``); the
tips of a tight fist lie 2.5-3.3 cm from the palm centre, so a fist may show a fingertip-palm contact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from handx_robot.features import contact_mask_with_hysteresis as _hysteresis
from handx_robot.features import events_from_distances, palm_centre
from handx_robot.frames import FRAME_HANDX_YUP
from handx_robot.gesture_signals import (
    _MCPS,
    _MIDDLE_MCP,
    _THUMB_MCP,
    _TIPS,
    _bridge,
    _const_runs,
    _fill_invalid,
    _frame_axes,
    _norm,
    _oscillations,
    _overlap,
    _runs,
    _smooth,
    _unit,
    finger_states,
    hand_axes,
    part_points,
    reach_ratios,
)
from handx_robot.gesture_words import (  # noqa: F401 (re-exported)
    AMBIGUOUS,
    CURLED,
    EXTENDED,
    FINGER_NAMES,
    FINGER_STATES,
    HALF,
    OBSERVATION_KINDS,
    PART_KINDS,
    SHAPE_PATTERNS,
    STATE_NAME,
    GestureConfig,
    Observation,
    observation_lines,
)
from handx_robot.keypoints import FINGERTIPS, WRIST
from handx_robot.motion import SIDES, BimanualMotion
from handx_robot.rotations import matrix_to_rotvec

__all__ = [
    "FINGER_NAMES",
    "FINGER_STATES",
    "PART_KINDS",
    "OBSERVATION_KINDS",
    "SHAPE_PATTERNS",
    "Observation",
    "GestureConfig",
    "reach_ratios",
    "finger_states",
    "hand_axes",
    "palm_area_points",
    "part_points",
    "observe",
    "observation_lines",
]

# -- one hand -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Hand:
    """Per-frame quantities of one present hand (T frames); invalid frames hold NaN / -1.

    ``J`` is lightly smoothed in time (shapes, axes, grips, palm facing); contacts use ``raw``."""

    side: str
    raw: np.ndarray  # (T, 21, 3) float64 as given, NaN where invalid
    J: np.ndarray  # (T, 21, 3) smoothed over smooth_s, NaN where invalid
    valid: np.ndarray  # (T,) bool
    states: np.ndarray  # (T, 5) int8
    r: np.ndarray  # (T, 3) radial (right-handed frame)
    d: np.ndarray  # (T, 3) distal
    n: np.ndarray  # (T, 3) palmar normal
    centre: np.ndarray  # (T, 3) palm centre (of J)
    raw_centre: np.ndarray  # (T, 3) palm centre of raw
    palm_len: np.ndarray  # (T,) wrist to middle MCP, m


def _hand(joints: np.ndarray, side: str, width: int, cfg: GestureConfig) -> _Hand | None:
    raw = np.asarray(joints, dtype=np.float64)
    palm_len = _norm(raw[:, _MIDDLE_MCP] - raw[:, WRIST])
    valid = np.isfinite(raw).all(axis=(1, 2)) & (palm_len > 0.01)
    if valid.sum() < 2:
        return None
    nan = ~valid[:, None, None]
    J = np.where(nan, np.nan, _smooth(_fill_invalid(raw, valid), width))
    raw = np.where(nan, np.nan, raw)
    r, d, n = _frame_axes(J, side)
    palm_len = _norm(J[:, _MIDDLE_MCP] - J[:, WRIST])
    return _Hand(
        side, raw, J, valid, finger_states(J, cfg), r, d, n, palm_centre(J), palm_centre(raw), palm_len
    )


def _shape_code(h: _Hand, cfg: GestureConfig) -> np.ndarray:
    """Per-frame shape code: base-3 pattern of the 5 states (0..242), -1 if any is ambiguous; ECCCC split
    by the thumb direction (1000 up, 1001 down, 1002 out); 2000 = OK sign."""
    st = h.states.astype(np.int64)
    code = np.where((st >= 0).all(axis=1), (st * 3 ** np.arange(5)).sum(axis=1), -1)
    ecccc = int((np.array([EXTENDED, CURLED, CURLED, CURLED, CURLED]) * 3 ** np.arange(5)).sum())
    up = _unit(h.J[:, FINGERTIPS["thumb"]] - h.J[:, _THUMB_MCP])[:, 1]
    thumb = np.where(up > cfg.thumb_vertical_cos, 1000, np.where(up < -cfg.thumb_vertical_cos, 1001, 1002))
    code = np.where(code == ecccc, thumb, code)
    gap = _norm(h.J[:, FINGERTIPS["thumb"]] - h.J[:, FINGERTIPS["index"]])
    ok = (gap < cfg.ok_gap_m) & (h.states[:, 2:] == EXTENDED).all(axis=1)
    return np.where(ok, 2000, code)


_CODE_NAMES = {1000: "thumbs_up", 1001: "thumbs_down", 1002: "thumb_out", 2000: "ok"}


def _shape_name(code: int, fingers: tuple[str, ...]) -> str:
    if code in _CODE_NAMES:
        return _CODE_NAMES[code]
    for name, pattern in SHAPE_PATTERNS.items():
        if name not in _CODE_NAMES.values() and all(p in ("any", s) for p, s in zip(pattern, fingers)):
            return name
    return ""


def _steady(h: _Hand, fps: float, cfg: GestureConfig) -> np.ndarray:
    """(T,) True where every reach ratio changes slower than ``shape_max_rate`` per second."""
    r = reach_ratios(h.J)
    k = max(1, int(round(cfg.smooth_s * fps)))
    if len(r) <= 2 * k:
        return np.isfinite(r).all(axis=1)
    ahead = np.concatenate([r[k:], np.repeat(r[-1:], k, axis=0)])
    behind = np.concatenate([np.repeat(r[:1], k, axis=0), r[:-k]])
    with np.errstate(invalid="ignore"):
        return (np.abs(ahead - behind) * fps / (2 * k) <= cfg.shape_max_rate).all(axis=1)


def _shapes(h: _Hand, fps: float, cfg: GestureConfig) -> list[Observation]:
    code = np.where(_steady(h, fps, cfg), _shape_code(h, cfg), -1)
    code = _bridge(code, -1, int(round(cfg.shape_bridge_s * fps)))
    starts, ends, vals = _const_runs(code)
    out = []
    for s, e, c in zip(starts, ends, vals):
        if c < 0 or (e - s) < cfg.min_shape_s * fps - 1e-9:
            continue
        fingers = []
        for k, f in enumerate(FINGER_NAMES):
            col = h.states[s:e, k]
            vals_k, counts = np.unique(col, return_counts=True)
            fingers.append((f, STATE_NAME[int(vals_k[np.argmax(counts)])]))
        name = _shape_name(int(c), tuple(st for _, st in fingers))
        out.append(Observation("shape", h.side, s / fps, e / fps, detail=name, fingers=tuple(fingers)))
    return out


_DIRECTIONS = (("right", "left"), ("up", "down"), ("back", "forward"))  # +/- x, y, z of handx_yup


def _moves(
    h: _Hand, wrist: np.ndarray, speed: np.ndarray, runs, fps: float, cfg: GestureConfig
) -> list[Observation]:
    out = []
    for s, e in runs:
        disp = wrist[e - 1] - wrist[s]
        dist = float(_norm(disp))
        if dist < cfg.move_min_m:
            continue
        axis = int(np.argmax(np.abs(disp)))
        detail = ""
        if abs(disp[axis]) >= cfg.move_axis_ratio * dist:
            detail = _DIRECTIONS[axis][0 if disp[axis] > 0 else 1]
        out.append(Observation("move", h.side, s / fps, e / fps, detail=detail, value=dist))
    return out


def _circles(
    h: _Hand, vel: np.ndarray, speed: np.ndarray, runs, fps: float, cfg: GestureConfig
) -> list[Observation]:
    """Circles: the wrist velocity turns >= circle_min_deg in one rotation sense within a motion run."""
    out = []
    max_step = np.radians(cfg.circle_max_step_deg)
    for s, e in runs:
        v = vel[s:e]
        fast = speed[s:e] > cfg.move_speed / cfg.move_exit_ratio
        pair = fast[:-1] & fast[1:]
        if pair.sum() < 3:
            continue
        cross = np.cross(v[:-1], v[1:])
        axis = _unit(cross[pair].sum(axis=0))
        if not np.isfinite(axis).all():
            continue
        vp = v - np.outer(v @ axis, axis)
        step = np.arctan2(np.cross(vp[:-1], vp[1:]) @ axis, np.einsum("td,td->t", vp[:-1], vp[1:]))
        step = np.where(pair & (np.abs(step) <= max_step), step, 0.0)
        total = float(abs(step.sum()))
        if np.degrees(total) < cfg.circle_min_deg:
            continue
        arc = float((_norm(vp[1:]) / fps)[step != 0].sum())
        radius = arc / total
        if radius < cfg.circle_min_radius_m:
            continue
        cum = np.abs(np.cumsum(step))
        eps = np.radians(10.0)
        i0 = int(np.argmax(cum > eps))
        i1 = int(np.flatnonzero(cum < total - eps)[-1]) + 2
        turns = int((np.degrees(total) + 360.0 - cfg.circle_min_deg) // 360.0)
        out.append(Observation("circle", h.side, (s + i0) / fps, (s + min(i1, e - s)) / fps,
                               count=max(1, turns), value=radius))  # fmt: skip
    return out


def _wrist_angles(h: _Hand, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Integrated forearm roll (about the distal axis) and wrist deviation (about the palm normal), rad."""
    R = np.stack([h.r, h.d, h.n], axis=-1)  # (T, 3, 3) columns = hand axes
    R = _fill_invalid(R, h.valid)
    dR = np.swapaxes(R[:-1], -1, -2) @ R[1:]
    w = matrix_to_rotvec(dR)  # body-frame increments (radial, distal, palmar)
    w = np.where(np.isfinite(w), w, 0.0)
    ang = np.concatenate([np.zeros((1, 3)), np.cumsum(w, axis=0)])
    ang = _smooth(ang, width)
    return ang[:, 1], ang[:, 2]


def _flips(h: _Hand, n: np.ndarray, fps: float, cfg: GestureConfig) -> list[Observation]:
    """Reversals of the palm normal (>= flip_min_deg) between consecutive holds."""
    turn = np.arccos(np.clip(np.einsum("td,td->t", n[:-1], n[1:]), -1.0, 1.0)) * fps
    hold = np.concatenate([turn, turn[-1:]]) < cfg.flip_hold_speed
    holds = _runs(hold, fps, cfg.flip_hold_s)
    means = [_unit(n[s:e].mean(axis=0)) for s, e in holds]
    cos_min = np.cos(np.radians(cfg.flip_min_deg))
    rev = [float(means[i] @ means[i + 1]) <= cos_min for i in range(len(holds) - 1)]
    out = []
    i = 0
    while i < len(rev):
        if not rev[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(rev) and rev[j + 1]:
            j += 1
        start, end = holds[i][1], holds[j + 1][0]
        out.append(Observation("flip", h.side, start / fps, end / fps, count=j - i + 1))
        i = j + 1
    return out


def _palm_facing(h: _Hand, n: np.ndarray, fps: float, cfg: GestureConfig) -> list[Observation]:
    inward = -1.0 if h.side == "right" else 1.0  # toward the body midline along x
    dirs = {"up": (0, 1, 0), "down": (0, -1, 0), "forward": (0, 0, -1), "back": (0, 0, 1),
            "in": (inward, 0, 0), "out": (-inward, 0, 0)}  # fmt: skip
    comp = n @ np.array(list(dirs.values()), dtype=np.float64).T  # (T, 6)
    miss = 1.0 - np.where(np.isfinite(comp), comp, -1.0)
    enter = 1.0 - cfg.palm_enter_cos
    mask = _hysteresis(miss / enter, 1.0, (1.0 - cfg.palm_stay_cos) / enter)
    out = []
    for k, name in enumerate(dirs):
        for s, e in _runs(mask[:, k], fps, cfg.palm_min_s, cfg.contact_max_gap_s):
            out.append(Observation("palm", h.side, s / fps, e / fps, detail=name))
    return out


def _grips(h: _Hand, fps: float, cfg: GestureConfig) -> list[Observation]:
    """Grip frames: index and middle bent but not curled (curled_max < reach < extended_min: a 7 cm ball
    is held with PIP ~30 deg, reach ~0.95, in the dead band above "half"), ring and pinky not extended,
    index and middle tips and the thumb tip in front of the palm, no fingertip touching the thumb."""
    reach = reach_ratios(h.J)
    tips = h.J[:, _TIPS]  # (T, 5, 3)
    palmar = np.einsum("tkd,td->tk", tips - h.centre[:, None], h.n) / h.palm_len[:, None]
    gaps = _norm(tips[:, 1:] - tips[:, :1])  # thumb to index..pinky tips
    with np.errstate(invalid="ignore"):
        mask = (
            (reach[:, 1:3] > cfg.long_curled_max).all(axis=1)
            & (reach[:, 1:] < cfg.long_extended_min).all(axis=1)
            & (palmar[:, 1:3] >= cfg.grip_tip_palmar).all(axis=1)
            & (palmar[:, 0] >= cfg.grip_thumb_palmar)
            & (gaps >= cfg.grip_min_gap_m).all(axis=1)
        )
    aperture = gaps[:, :2].mean(axis=1)
    return [
        Observation("grip", h.side, s / fps, e / fps, value=float(np.nanmedian(aperture[s:e])))
        for s, e in _runs(mask, fps, cfg.grip_min_s, cfg.shape_bridge_s)
    ]


def _width(fps: float, cfg: GestureConfig) -> int:
    """Odd number of frames of the smoothing window (smooth_s)."""
    return max(1, int(round(cfg.smooth_s * fps)) | 1)


def _one_hand(h: _Hand, fps: float, cfg: GestureConfig) -> list[Observation]:
    width = _width(fps, cfg)
    wrist = _smooth(_fill_invalid(h.raw[:, WRIST], h.valid), width)
    vel = np.gradient(wrist, axis=0) * fps
    speed = _norm(vel)
    with np.errstate(divide="ignore"):
        mask = _hysteresis(cfg.move_speed / np.maximum(speed, 1e-12), 1.0, cfg.move_exit_ratio)
    runs = _runs(mask, fps, 0.0, cfg.move_max_gap_s)
    n = _unit(_smooth(_fill_invalid(h.n, h.valid), width))
    out = _shapes(h, fps, cfg) + _palm_facing(h, n, fps, cfg) + _grips(h, fps, cfg)
    circles = _circles(h, vel, speed, runs, fps, cfg)
    shakes = []
    for axis, name in enumerate(("left-right", "up-down", "forward-back")):
        for s, e, cycles, amp in _oscillations(wrist[:, axis], cfg.shake_min_m, fps, cfg.osc_max_swing_s,
                                               int(cfg.shake_min_cycles)):  # fmt: skip
            var = wrist[s:e].var(axis=0)
            if var[axis] < cfg.shake_min_linearity * var.sum():
                continue  # not along one axis (a circle, a figure of eight)
            shakes.append(
                Observation("shake", h.side, s / fps, e / fps, detail=name, count=cycles, value=amp)
            )
    shakes = _best_of_overlapping(shakes)
    busy = circles + shakes
    for m in _moves(h, wrist, speed, runs, fps, cfg):
        if not any(_overlap(m.start, m.end, b.start, b.end) > 0.5 * m.duration for b in busy):
            out.append(m)
    roll, dev = _wrist_angles(h, width)
    flips = _flips(h, n, fps, cfg)
    for kind, signal, h_deg in (("wave", dev, cfg.wave_min_deg), ("twist", roll, cfg.twist_min_deg)):
        for s, e, cycles, amp in _oscillations(signal, np.radians(h_deg), fps, cfg.osc_max_swing_s, 1):
            o = Observation(kind, h.side, s / fps, e / fps, count=cycles, value=float(np.degrees(amp)))
            if not any(_overlap(o.start, o.end, f.start, f.end) > 0.5 * o.duration for f in flips):
                out.append(o)
    return out + circles + shakes + flips


def _best_of_overlapping(obs: list[Observation]) -> list[Observation]:
    """Of observations overlapping in time keep the one with the largest value (e.g. the shake axis)."""
    kept: list[Observation] = []
    for o in sorted(obs, key=lambda o: -o.value):
        if not any(_overlap(o.start, o.end, k.start, k.end) > 0 for k in kept):
            kept.append(o)
    return kept


# -- contacts ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Pair:
    """A monitored part pair: distance (T,), threshold, the moving points for the slide and how to name
    the palm side. mode: 'plain' | 'tip_palm' (b = palm/back of hand hb) | 'palm_palm' |
    'knuckles_palm' | 'knuckles' (b = knuckles of hb)."""

    a: str
    b: str
    dist: np.ndarray
    thr: float
    pa: np.ndarray  # (T, 3) or (T, 4, 3) for knuckles as part a
    pb: np.ndarray  # (T, 3) or (T, 4, 3) for knuckles as part b
    mode: str = "plain"
    ha: _Hand | None = None
    hb: _Hand | None = None


def palm_area_points(joints: np.ndarray) -> np.ndarray:
    """(..., 6, 3) points spread over the palm of ``joints (..., 21, 3)``: the palm centre, and halfway
    from it to the wrist and to each finger's MCP. A hand's own fingertips touch its palm anywhere on
    this area (the index tip lands below the index MCP, not at the centre)."""
    j = np.asarray(joints, dtype=np.float64)
    c = j[..., [0, 1, 4, 10, 7], :].mean(axis=-2)
    ends = j[..., [0, 1, 4, 10, 7], :]
    return np.concatenate([c[..., None, :], 0.5 * (c[..., None, :] + ends)], axis=-2)


def _min_over(points: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Distance (T,) from ``p (T, 3)`` to the nearest of ``points (T, K, 3)``."""
    return np.min(_norm(points - p[:, None]), axis=1)


def _pairs(hands: dict[str, _Hand], cfg: GestureConfig) -> list[_Pair]:
    pairs: list[_Pair] = []
    tips = {s: {f: h.raw[:, FINGERTIPS[f]] for f in FINGER_NAMES} for s, h in hands.items()}
    for s, h in hands.items():
        for f in FINGER_NAMES[1:]:
            t, u = tips[s]["thumb"], tips[s][f]
            pairs.append(_Pair(f"{s}_thumb_tip", f"{s}_{f}_tip", _norm(t - u), cfg.tip_tip_m, t, u))
        area = palm_area_points(h.raw)  # (T, 6, 3): a fingertip lands anywhere on its own palm
        for f in FINGER_NAMES:
            t = tips[s][f]
            d = np.min(_norm(area - t[:, None]), axis=1)
            with np.errstate(invalid="ignore"):
                d = np.where(np.einsum("td,td->t", t - h.raw_centre, h.n) > 0, d, np.nan)  # palmar side only
            pairs.append(
                _Pair(f"{s}_{f}_tip", f"{s}_palm", d, cfg.tip_own_palm_m, t, h.raw_centre, "tip_palm", h, h)
            )
    if len(hands) < 2:
        return pairs
    L, R = hands["left"], hands["right"]
    for f in FINGER_NAMES:
        for g in FINGER_NAMES:
            a, b = tips["left"][f], tips["right"][g]
            pairs.append(_Pair(f"left_{f}_tip", f"right_{g}_tip", _norm(a - b), cfg.tip_tip_m, a, b))
    for ha, hb in ((L, R), (R, L)):
        sa, sb = ha.side, hb.side
        knuckles, wrist = hb.raw[:, _MCPS], hb.raw[:, WRIST]
        for f in FINGER_NAMES:
            t = tips[sa][f]
            name = f"{sa}_{f}_tip"
            pairs += [
                _Pair(
                    name,
                    f"{sb}_palm",
                    _norm(t - hb.raw_centre),
                    cfg.tip_palm_m,
                    t,
                    hb.raw_centre,
                    "tip_palm",
                    ha,
                    hb,
                ),
                _Pair(
                    name,
                    f"{sb}_knuckles",
                    _min_over(knuckles, t),
                    cfg.tip_knuckles_m,
                    t,
                    knuckles,
                    "knuckles",
                ),
                _Pair(name, f"{sb}_wrist", _norm(t - wrist), cfg.tip_wrist_m, t, wrist),
            ]
        # the palm or back of one hand on the other's wrist or knuckles
        pairs.append(_Pair(f"{sa}_palm", f"{sb}_wrist", _norm(ha.raw_centre - wrist), cfg.palm_wrist_m,
                           ha.raw_centre, wrist, "palm_x", ha, hb))  # fmt: skip
        pairs.append(_Pair(f"{sa}_knuckles", f"{sb}_wrist", _min_over(ha.raw[:, _MCPS], wrist), cfg.knuckles_wrist_m,
                           ha.raw[:, _MCPS], wrist))  # fmt: skip
        dk = np.min(_norm(ha.raw[:, _MCPS] - hb.raw_centre[:, None]), axis=1)
        pairs.append(_Pair(f"{sa}_knuckles", f"{sb}_palm", dk, cfg.knuckles_palm_m, ha.raw[:, _MCPS], hb.raw_centre,
                           "knuckles_palm", ha, hb))  # fmt: skip
    pairs.append(_Pair("left_palm", "right_palm", _norm(L.raw_centre - R.raw_centre), cfg.palm_palm_m, L.raw_centre, R.raw_centre,
                       "palm_palm", L, R))  # fmt: skip
    kl, kr = L.raw[:, _MCPS], R.raw[:, _MCPS]
    dkk = np.min(_norm(kl[:, :, None] - kr[:, None, :]).reshape(len(kl), -1), axis=1)
    pairs.append(_Pair("left_knuckles", "right_knuckles", dkk, cfg.knuckles_knuckles_m, kl, kr))
    wl, wr = L.raw[:, WRIST], R.raw[:, WRIST]
    pairs.append(_Pair("left_wrist", "right_wrist", _norm(wl - wr), cfg.wrist_wrist_m, wl, wr))
    return pairs


def _palm_or_back(h: _Hand, p: np.ndarray, s: int, e: int) -> str:
    off = np.einsum("td,td->t", p[s:e] - h.raw_centre[s:e], h.n[s:e])
    return f"{h.side}_palm" if np.nanmean(off) >= 0 else f"{h.side}_back"


def _resolve(p: _Pair, s: int, e: int) -> tuple[str, str, np.ndarray, np.ndarray, np.ndarray | None]:
    """Final part names, the two point tracks over the event and the surface normal of part b (or None)."""
    k = s + int(np.nanargmin(p.dist[s:e]))
    pa, pb = p.pa, p.pb
    if pa.ndim == 3:  # knuckles as part a: the MCP closest at the closest frame
        pa = pa[:, int(np.argmin(_norm(pa[k] - pb[k])))]
    if pb.ndim == 3:
        pb = pb[:, int(np.argmin(_norm(pb[k] - pa[k])))]
    a, b, normal = p.a, p.b, None
    if p.mode in ("tip_palm", "knuckles_palm", "palm_palm"):
        b = _palm_or_back(p.hb, pa, s, e)
        normal = p.hb.n[s:e]
    if p.mode in ("palm_palm", "palm_x"):
        a = _palm_or_back(p.ha, pb, s, e)
    return a, b, pa[s:e], pb[s:e], normal


def _slide(pa: np.ndarray, pb: np.ndarray, normal: np.ndarray | None) -> float:
    """Travel (m) of ``pa`` relative to ``pb`` over the event, tangential to ``normal`` when given."""
    rel = _smooth(pa - pb, 3)
    step = np.diff(rel, axis=0)
    if normal is not None:
        nn = normal[1:]
        step = step - np.einsum("td,td->t", step, nn)[:, None] * nn
    return float(np.nansum(_norm(step)))


def _contacts(hands: dict[str, _Hand], fps: float, cfg: GestureConfig) -> list[Observation]:
    pairs = _pairs(hands, cfg)
    items = [(str(i), p.a, p.b, p.dist, p.thr) for i, p in enumerate(pairs)]
    out = []
    for ev in events_from_distances(items, fps, cfg.contact_config()):
        p = pairs[int(ev.kind)]
        s, e = int(round(ev.start * fps)), int(round(ev.end * fps))
        a, b, pa, pb, normal = _resolve(p, s, e)
        slide = _slide(pa, pb, normal)
        if slide >= cfg.rub_min_slide_m:
            style = "rub"
        elif ev.duration < cfg.tap_max_s and slide < cfg.tap_max_slide_m:
            style = "tap"
        else:
            style = "press"
        side = a.split("_")[0] if a.split("_")[0] == b.split("_")[0] else None
        out.append(Observation("contact", side, ev.start, ev.end, detail=style, parts=(a, b),
                               value=float(ev.min_distance), slide_m=slide))  # fmt: skip
    return out


def _spacing(hands: dict[str, _Hand], fps: float, cfg: GestureConfig) -> list[Observation]:
    L, R = hands["left"], hands["right"]
    dist = _norm(L.centre - R.centre)
    with np.errstate(invalid="ignore"):
        mask = (L.n[:, 0] > cfg.spacing_facing_cos) & (R.n[:, 0] < -cfg.spacing_facing_cos)
        mask &= (np.einsum("td,td->t", R.centre - L.centre, L.n) > 0) & (
            np.einsum("td,td->t", L.centre - R.centre, R.n) > 0
        )
        mask &= dist >= cfg.spacing_min_m
    return [
        Observation("spacing", None, s / fps, e / fps, value=float(np.nanmedian(dist[s:e])))
        for s, e in _runs(mask, fps, cfg.spacing_min_s, cfg.shape_bridge_s)
    ]


def _tapping(shake: Observation, contacts: Sequence[Observation]) -> bool:
    """True when at least two contacts of the shaking hand start inside the shake (it is tapping)."""
    mine = [c for c in contacts if any(p.startswith(shake.side + "_") for p in c.parts)]
    return sum(shake.start <= c.start <= shake.end for c in mine) >= 2


def observe(motion: BimanualMotion, config: GestureConfig | None = None) -> tuple[Observation, ...]:
    """All observations of ``motion``, sorted by (start, kind, side).

    The motion is first put in frame ``handx_yup`` (:meth:`BimanualMotion.in_frame`); an absent hand (or
    one without two valid frames) gives no observation. A shake that coincides with two or more contacts
    of the same hand is tapping and is not reported; a move mostly inside a circle or a shake, and a twist
    mostly inside a flip, of the same hand are not reported either.
    """
    cfg = config or GestureConfig()
    m = motion.in_frame(FRAME_HANDX_YUP)
    fps = float(m.fps)
    hands: dict[str, _Hand] = {}
    for k, side in enumerate(SIDES):
        if m.present[k]:
            h = _hand(m.joints[:, k], side, _width(fps, cfg), cfg)
            if h is not None:
                hands[side] = h
    contacts = _contacts(hands, fps, cfg) if hands else []
    obs: list[Observation] = list(contacts)
    for h in hands.values():
        obs += [o for o in _one_hand(h, fps, cfg) if o.kind != "shake" or not _tapping(o, contacts)]
    if len(hands) == 2:
        obs += _spacing(hands, fps, cfg)
    return tuple(sorted(obs, key=lambda o: (o.start, o.kind, o.side or "", o.parts, o.detail)))
