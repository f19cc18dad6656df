"""Keyframe tracks of one hand and their minimum-jerk sampling (part of the composer).

A :class:`Track` holds the keyframes of one hand in its *side frame* (the world for the right hand, the
world mirrored x -> -x for the left hand; see :mod:`handx_robot.generate.composer`). Units: seconds,
metres, radians. Keyframes are joined by minimum-jerk segments (zero velocity and acceleration at every
keyframe); a continuous path (writing) rides on top of a segment as offsets.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx_robot.generate.handmodel import HandShape, clip_angles, forward_kinematics
from handx_robot.rotations import matrix_to_rotvec, rot_y, rot_z, rotvec_to_matrix

__all__ = ["MIN_KEY_GAP_S", "Key", "Track", "min_jerk", "mirror_x", "sample_track"]

#: Shortest time between two keyframes of a track, seconds.
MIN_KEY_GAP_S = 1e-3


def min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile ``10τ³ − 15τ⁴ + 6τ⁵`` on ``τ ∈ [0, 1]`` (0 -> 0, 1 -> 1, zero vel/acc at both ends)."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)


def mirror_x(points: np.ndarray) -> np.ndarray:
    """A copy of ``points (..., 3)`` with x negated: side frame <-> world for the left hand."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] *= -1.0
    return out


@dataclasses.dataclass
class Key:
    """One keyframe of a hand, side frame.

    t:      time, seconds.
    angles: (20,) joint angles, radians (:data:`~handx_robot.generate.handmodel.ANGLE_NAMES` order).
    pos:    (3,) wrist position, metres.
    R:      (3, 3) base orientation ``R_side_hand``.
    roll:   forearm roll about the hand's distal axis, radians (+ = supination).
    dev:    wrist deviation about the palm normal, radians.
    path:   (N, 3) offsets, metres, along the segment that ends at this key (0 at both ends), or None.
    """

    t: float
    angles: np.ndarray
    pos: np.ndarray
    R: np.ndarray
    roll: float = 0.0
    dev: float = 0.0
    path: np.ndarray | None = None


class Track:
    """Keyframes of one hand in its side frame; each method appends keys and returns the track."""

    def __init__(self, key: Key) -> None:
        self.keys = [key]

    @property
    def last(self) -> Key:
        return self.keys[-1]

    @property
    def end(self) -> float:
        """Time of the last key, seconds."""
        return self.last.t

    def to(self, dt: float, *, angles=None, pos=None, R=None, roll=None, dev=None, path=None) -> Track:
        """Move to a new key ``dt`` seconds after the last; a field left None keeps its last value."""
        k = self.last
        self.keys.append(
            Key(
                t=k.t + max(float(dt), MIN_KEY_GAP_S),
                angles=k.angles if angles is None else clip_angles(np.asarray(angles, dtype=np.float64)),
                pos=k.pos if pos is None else np.asarray(pos, dtype=np.float64),
                R=k.R if R is None else R,
                roll=k.roll if roll is None else float(roll),
                dev=k.dev if dev is None else float(dev),
                path=path,
            )
        )
        return self

    def hold(self, dt: float) -> Track:
        """Keep the last pose for ``dt`` seconds (nothing for ``dt <= 1 µs``)."""
        return self.to(dt) if dt > 1e-6 else self

    def wait_until(self, t: float) -> Track:
        """Keep the last pose until time ``t`` (seconds), if it is later than the track's end."""
        return self.hold(t - self.end)


def sample_track(tr: Track, times: np.ndarray, shape: HandShape) -> np.ndarray:
    """(T, 21, 3) side-frame keypoints, metres, of a track sampled at ``times (T,)`` seconds.

    Angles, wrist position, roll and deviation follow the minimum-jerk profile of their segment; the
    base orientation turns about the segment's fixed axis (geodesic) with the same profile.
    """
    keys = tr.keys
    kt = np.array([k.t for k in keys])
    seg = np.clip(np.searchsorted(kt, times, side="right") - 1, 0, len(keys) - 2)
    span = np.maximum(kt[seg + 1] - kt[seg], 1e-9)
    s = min_jerk((times - kt[seg]) / span)[:, None]
    A = np.stack([k.angles for k in keys])
    P = np.stack([k.pos for k in keys])
    sc = np.array([[k.roll, k.dev] for k in keys])
    angles = A[seg] + s * (A[seg + 1] - A[seg])
    pos = P[seg] + s * (P[seg + 1] - P[seg])
    roll_dev = sc[seg] + s * (sc[seg + 1] - sc[seg])
    for j in np.unique(seg):
        path = keys[j + 1].path
        if path is not None:
            m = seg == j
            u = s[m, 0] * (len(path) - 1)
            i0 = np.clip(np.floor(u).astype(int), 0, len(path) - 2)
            w = (u - i0)[:, None]
            pos[m] += (1 - w) * path[i0] + w * path[i0 + 1]
    Rk = np.stack([k.R for k in keys])
    rel = matrix_to_rotvec(np.swapaxes(Rk[:-1], -1, -2) @ Rk[1:])  # (K-1, 3) segment rotations, start key's frame
    R_base = Rk[seg] @ rotvec_to_matrix(rel[seg] * s)
    R = R_base @ rot_y(roll_dev[:, 0]) @ rot_z(roll_dev[:, 1])
    local = forward_kinematics(angles, shape)
    return pos[:, None, :] + np.einsum("tij,tkj->tki", R, local)
