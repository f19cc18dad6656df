"""Hand volume as capsules around the 21 keypoints: clearance between the two hands.

Used to place hands so that contacts are real (palms meet for a clap, fingertips meet for a touch)
without the hands passing through each other. Keypoints are bone centres, so each bone is a capsule
whose radius is half the thickness of that part of an adult hand. This is geometry for placement
and for checking interpenetration, not an event detector (that is :mod:`handx_robot.features`).

Units: metres. Keypoint arrays in HandX order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CAPSULES", "CAPSULE_RADII", "segment_distances", "hand_clearance", "interpenetration"]

#: Capsules as (keypoint a, keypoint b, radius m): palm (wrist to knuckles, across the knuckles),
#: thumb and finger phalanges.
_CAPS: tuple[tuple[int, int, float], ...] = (
    (0, 1, 0.0105), (0, 4, 0.0105), (0, 10, 0.0105), (0, 7, 0.0105), (0, 13, 0.0105),
    (1, 4, 0.0105), (4, 10, 0.0105), (10, 7, 0.0105),
    (13, 14, 0.0095), (14, 15, 0.009), (15, 16, 0.0085),
    (1, 2, 0.0090), (2, 3, 0.0075), (3, 17, 0.0065),
    (4, 5, 0.0090), (5, 6, 0.0075), (6, 18, 0.0065),
    (10, 11, 0.0085), (11, 12, 0.0072), (12, 19, 0.0063),
    (7, 8, 0.0080), (8, 9, 0.0068), (9, 20, 0.0060),
)  # fmt: skip
CAPSULES = np.array([(a, b) for a, b, _ in _CAPS], dtype=np.int64)
CAPSULE_RADII = np.array([r for _, _, r in _CAPS])


def segment_distances(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Closest distance between segments ``[p0, p1]`` and ``[q0, q1]``, all ``(..., 3)`` broadcast; metres."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.sum(d1 * d1, -1)
    e = np.sum(d2 * d2, -1)
    f = np.sum(d2 * r, -1)
    c = np.sum(d1 * r, -1)
    b = np.sum(d1 * d2, -1)
    eps = 1e-12
    denom = a * e - b * b
    s = np.where(denom > eps, np.clip((b * f - c * e) / np.maximum(denom, eps), 0.0, 1.0), 0.0)
    t = (b * s + f) / np.maximum(e, eps)
    t_c = np.clip(t, 0.0, 1.0)
    s = np.where(t < 0.0, np.clip(-c / np.maximum(a, eps), 0.0, 1.0), s)
    s = np.where(t > 1.0, np.clip((b - c) / np.maximum(a, eps), 0.0, 1.0), s)
    cp = p0 + d1 * s[..., None]
    cq = q0 + d2 * t_c[..., None]
    return np.linalg.norm(cp - cq, axis=-1)


def hand_clearance(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Signed clearance between two hands, ``(...)`` metres: < 0 means the volumes overlap by that much.

    left, right: (..., 21, 3) keypoints of the two hands (any frame, metres).
    """
    la, lb = left[..., CAPSULES[:, 0], :], left[..., CAPSULES[:, 1], :]
    ra, rb = right[..., CAPSULES[:, 0], :], right[..., CAPSULES[:, 1], :]
    d = segment_distances(la[..., :, None, :], lb[..., :, None, :], ra[..., None, :, :], rb[..., None, :, :])
    gap = d - (CAPSULE_RADII[:, None] + CAPSULE_RADII[None, :])
    return gap.min(axis=(-2, -1))


def interpenetration(joints: np.ndarray) -> np.ndarray:
    """Depth by which the two hands overlap per frame, ``(T,)`` metres (0 when apart).

    joints: (T, 2, 21, 3), axis 1 = (left, right).
    """
    joints = np.asarray(joints, dtype=np.float64)
    return np.maximum(0.0, -hand_clearance(joints[:, 0], joints[:, 1]))
