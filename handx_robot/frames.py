"""Named coordinate frames and the transforms between them.

Frames:

* ``handx_yup`` — HandX canonical frame: metres, Y up.
* ``world_zup`` — robot world frame: metres, Z up (ROS REP-103).

``T_zup_yup`` maps points from the HandX Y-up frame to the Z-up world:
``(x, y, z) -> (x, -z, y)`` (a +90° rotation about X).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FRAME_HANDX_YUP",
    "FRAME_WORLD_ZUP",
    "KNOWN_FRAMES",
    "R_zup_yup",
    "R_yup_zup",
    "transform_points",
    "change_frame",
]

FRAME_HANDX_YUP = "handx_yup"
FRAME_WORLD_ZUP = "world_zup"
KNOWN_FRAMES = (FRAME_HANDX_YUP, FRAME_WORLD_ZUP)

#: Rotation taking Y-up coordinates to Z-up coordinates: (x, y, z) -> (x, -z, y).
R_zup_yup = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
R_yup_zup = R_zup_yup.T

_ROTATIONS = {
    (FRAME_HANDX_YUP, FRAME_WORLD_ZUP): R_zup_yup,
    (FRAME_WORLD_ZUP, FRAME_HANDX_YUP): R_yup_zup,
}


def transform_points(R_dst_src: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a rotation ``(3, 3)`` to points ``(..., 3)``; dtype preserved."""
    points = np.asarray(points)
    return (points @ np.asarray(R_dst_src, dtype=np.float64).T).astype(points.dtype, copy=False)


def change_frame(points: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Express points ``(..., 3)`` given in frame ``src`` in frame ``dst`` (names in ``KNOWN_FRAMES``)."""
    for name in (src, dst):
        if name not in KNOWN_FRAMES:
            raise ValueError(f"unknown frame {name!r}; known frames: {', '.join(KNOWN_FRAMES)}")
    if src == dst:
        return np.asarray(points).copy()
    return transform_points(_ROTATIONS[(src, dst)], points)
