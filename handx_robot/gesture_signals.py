"""Per-frame hand geometry and signal helpers of the gesture observer (:mod:`handx_robot.gestures`):
reach ratios and finger states, hand axes, part points, the palm area, smoothing, runs and the zig-zag
counting of oscillations. Arrays in HandX order, metres; ``(T, 21, 3)`` per hand unless named."""

from __future__ import annotations

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.features import palm_centre, segments_from_mask
from handx_robot.gesture_words import AMBIGUOUS, CURLED, EXTENDED, FINGER_NAMES, HALF, GestureConfig
from handx_robot.keypoints import FINGER_CHAINS, FINGERTIPS, WRIST
from handx_robot.motion import SIDES

# HandX indices
_CHAINS = np.array([FINGER_CHAINS[f] for f in FINGER_NAMES])  # (5, 4) base .. tip
_TIPS = np.array([FINGERTIPS[f] for f in FINGER_NAMES])  # (5,)
_MCPS = np.array([1, 4, 10, 7])  # index, middle, ring, pinky MCP
_INDEX_MCP, _MIDDLE_MCP, _PINKY_MCP, _THUMB_MCP = 1, 4, 7, 14



# -- per-frame geometry ------------------------------------------------------------------------------
def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...d,...d->...", v, v))


def _unit(v: np.ndarray) -> np.ndarray:
    n = _norm(v)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1e-9, v / n, np.nan)


def reach_ratios(joints: np.ndarray) -> np.ndarray:
    """Reach ratio ``(..., 5)`` per finger (:data:`FINGER_NAMES`): ``|tip - base| / chain length``, base =
    MCP (thumb: CMC), from ``joints (..., 21, 3)``; 1 = straight; NaN for a degenerate finger."""
    pts = np.asarray(joints, dtype=np.float64)[..., _CHAINS, :]  # (..., 5, 4, 3)
    length = _norm(np.diff(pts, axis=-2)).sum(axis=-1)
    reach = _norm(pts[..., -1, :] - pts[..., 0, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(length > 1e-6, reach / length, np.nan)


def _mcp_bend_deg(joints: np.ndarray) -> np.ndarray:
    """Bend ``(..., 4)`` degrees at the index..pinky MCP: angle between wrist -> MCP and MCP -> PIP."""
    J = np.asarray(joints, dtype=np.float64)
    mcp = J[..., _CHAINS[1:, 0], :]
    a = _unit(mcp - J[..., WRIST : WRIST + 1, :])
    b = _unit(J[..., _CHAINS[1:, 1], :] - mcp)
    return np.degrees(np.arccos(np.clip(np.einsum("...d,...d->...", a, b), -1.0, 1.0)))


def finger_states(joints: np.ndarray, config: GestureConfig | None = None) -> np.ndarray:
    """``(..., 5)`` int8 per finger in :data:`FINGER_NAMES` order: 2 extended, 1 half, 0 curled,
    -1 in between (ambiguous, also NaN), from ``joints (..., 21, 3)``; thresholds of ``config``."""
    cfg = config or GestureConfig()
    r = reach_ratios(joints)
    lo = np.array([cfg.thumb_curled_max] + [cfg.long_curled_max] * 4)
    h0 = np.array([cfg.thumb_half_min] + [cfg.long_half_min] * 4)
    h1 = np.array([cfg.thumb_half_max] + [cfg.long_half_max] * 4)
    hi = np.array([cfg.thumb_extended_min] + [cfg.long_extended_min] * 4)
    out = np.full(r.shape, AMBIGUOUS, dtype=np.int8)
    out[r <= lo] = CURLED
    out[(r >= h0) & (r <= h1)] = HALF
    ext = r >= hi
    ext[..., 1:] &= _mcp_bend_deg(joints) <= cfg.extended_max_mcp_deg
    out[ext] = EXTENDED
    return out


def _frame_axes(joints: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radial (made right-handed: negated for a left hand), distal and palmar unit axes ``(..., 3)``."""
    if side not in SIDES:
        raise ConfigError(f"side must be 'left' or 'right', got {side!r}")
    J = np.asarray(joints, dtype=np.float64)
    d = _unit(J[..., _MIDDLE_MCP, :] - J[..., WRIST, :])
    r = J[..., _INDEX_MCP, :] - J[..., _PINKY_MCP, :]
    r = _unit(r - np.einsum("...d,...d->...", r, d)[..., None] * d)
    n = np.cross(r, d)
    if side == "left":
        n, r = -n, -r
    return r, d, n


def hand_axes(joints: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Palmar normal and distal axis ``(..., 3)`` (unit; NaN when degenerate) of ONE hand's
    ``joints (..., 21, 3)``; ``side`` is ``left`` or ``right`` (a left hand's normal is mirrored)."""
    _, d, n = _frame_axes(joints, side)
    return n, d


def part_points(joints_hand: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """Named part points of one hand ``joints_hand (T, 21, 3)``: ``{side}_{finger}_tip`` (T, 3),
    ``{side}_palm`` (palm centre, T, 3), ``{side}_knuckles`` (the MCPs of index, middle, ring, pinky,
    T, 4, 3), ``{side}_wrist`` (T, 3)."""
    if side not in SIDES:
        raise ConfigError(f"side must be 'left' or 'right', got {side!r}")
    J = np.asarray(joints_hand)
    out = {f"{side}_{f}_tip": J[..., FINGERTIPS[f], :] for f in FINGER_NAMES}
    out[f"{side}_palm"] = palm_centre(J)
    out[f"{side}_knuckles"] = J[..., _MCPS, :]
    out[f"{side}_wrist"] = J[..., WRIST, :]
    return out


# -- helpers --------------------------------------------------------------------------------------
def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` frames along axis 0 (edges repeat the end values)."""
    if width <= 1 or len(x) < 2:
        return x
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(x, size=width, axis=0, mode="nearest")


def _runs(mask: np.ndarray, fps: float, min_s: float = 0.0, max_gap_s: float = 0.0) -> list[tuple[int, int]]:
    """Frame runs ``[(start, end_exclusive)]`` of ``mask``, gaps <= max_gap_s closed, runs < min_s dropped."""
    segs = segments_from_mask(np.asarray(mask, dtype=bool), fps, min_s, max_gap_s)
    return [(int(round(a * fps)), int(round(b * fps))) for a, b in segs]


def _const_runs(code: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, exclusive ends and values of the runs of equal values of ``code (T,)``."""
    change = np.flatnonzero(code[1:] != code[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(code)]])
    return starts, ends, code[starts]


def _bridge(code: np.ndarray, gap_value: int, max_len: int) -> np.ndarray:
    """``code`` with runs of ``gap_value`` no longer than ``max_len`` frames filled when both neighbours
    carry the same value."""
    if max_len <= 0:
        return code
    starts, ends, vals = _const_runs(code)
    out = code.copy()
    for i in range(1, len(vals) - 1):
        if vals[i] == gap_value and ends[i] - starts[i] <= max_len and vals[i - 1] == vals[i + 1]:
            out[starts[i] : ends[i]] = vals[i - 1]
    return out


def _fill_invalid(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``x (T, ...)`` with the frames where ``valid`` is False linearly interpolated from valid ones."""
    if valid.all():
        return x
    t = np.arange(len(x))
    flat = x.reshape(len(x), -1)
    out = np.empty_like(flat)
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(t, t[valid], flat[valid, k])
    return out.reshape(x.shape)


def _zigzag(x: np.ndarray, h: float) -> list[int]:
    """Indices of the confirmed turning points of ``x (T,)``: extrema each followed by a retrace >= h
    (the first is preceded by a rise or fall >= h from the lowest / highest earlier value)."""
    if len(x) < 3:
        return []
    s = np.sign(np.diff(x))
    nz = np.flatnonzero(s)
    if not len(nz):
        return []
    fill = np.maximum.accumulate(np.where(s != 0, np.arange(len(s)), nz[0]))
    s = s[fill]
    pts = np.concatenate([[0], np.flatnonzero(s[1:] != s[:-1]) + 1, [len(x) - 1]])
    vals = x[pts].tolist()
    pivots: list[int] = []
    trend, i_lo, i_hi, cur = 0, 0, 0, 0
    for k in range(1, len(vals)):
        v = vals[k]
        if trend == 0:
            i_lo = k if v < vals[i_lo] else i_lo
            i_hi = k if v > vals[i_hi] else i_hi
            if vals[i_hi] - vals[i_lo] >= h:
                trend, cur = (1, i_hi) if i_hi > i_lo else (-1, i_lo)
        elif (v - vals[cur]) * trend > 0:
            cur = k
        elif (vals[cur] - v) * trend >= h:
            pivots.append(int(pts[cur]))
            trend, cur = -trend, k
    return pivots


def _oscillations(x: np.ndarray, h: float, fps: float, max_swing_s: float, min_cycles: int):
    """``[(start_frame, end_frame, cycles, amplitude)]`` of back-and-forth bouts of ``x`` with swings of at
    least ``h`` each way (amplitude = median extremum-to-extremum distance / 2 >= h)."""
    piv = np.asarray(_zigzag(x, h), dtype=np.int64)
    if len(piv) < 2:
        return []
    breaks = np.flatnonzero(np.diff(piv) > max_swing_s * fps) + 1
    out = []
    for bout in np.split(piv, breaks):
        cycles = len(bout) // 2
        if cycles < min_cycles:
            continue
        amp = float(np.median(np.abs(np.diff(x[bout])))) / 2.0
        if amp < h:
            continue
        leg = int(np.median(np.diff(bout)))
        out.append((max(0, int(bout[0]) - leg), min(len(x), int(bout[-1]) + leg + 1), cycles, amp))
    return out


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))
