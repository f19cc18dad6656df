"""Wrist frames estimated from 21 HandX keypoints.

One convention for both hands (the left is the mirror image of the right)::

    origin  the wrist keypoint
    z       wrist -> middle MCP, projected into the palm plane ("forward", toward the fingers)
    x       palm normal, pointing out of the palm (the side that grasps)
    y       z × x: toward the thumb/index side on a right hand, toward the pinky side on a left hand

The palm normal is ``(index_mcp - wrist) × (pinky_mcp - wrist)`` for a right hand and the reverse
cross product for a left hand, so a correctly labelled hand always gets ``x`` out of its palm.
``T_frame_wrist`` maps points from the wrist frame into the motion's frame.
"""

from __future__ import annotations

import numpy as np

from handx_robot.errors import MotionValueError

__all__ = ["wrist_rotation", "wrist_transform", "palm_normal", "to_wrist_frame"]

_WRIST, _INDEX_MCP, _MIDDLE_MCP, _PINKY_MCP = 0, 1, 4, 7
_EPS = 1e-9


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(n < _EPS):
        raise MotionValueError("degenerate hand: palm keypoints coincide, cannot estimate a wrist frame")
    return v / n


def palm_normal(joints: np.ndarray, side: str) -> np.ndarray:
    """Unit palm normal ``(..., 3)`` (out of the palm) from keypoints ``(..., 21, 3)`` in HandX order."""
    joints = np.asarray(joints, dtype=np.float64)
    a = joints[..., _INDEX_MCP, :] - joints[..., _WRIST, :]
    b = joints[..., _PINKY_MCP, :] - joints[..., _WRIST, :]
    if side == "right":
        n = np.cross(a, b)
    elif side == "left":
        n = np.cross(b, a)
    else:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return _unit(n)


def wrist_rotation(joints: np.ndarray, side: str) -> np.ndarray:
    """``R_frame_wrist`` ``(..., 3, 3)``: columns are the wrist frame's x, y, z axes in the motion frame.

    joints: (..., 21, 3) HandX order, any frame, metres.
    """
    joints = np.asarray(joints, dtype=np.float64)
    x = palm_normal(joints, side)
    fwd = joints[..., _MIDDLE_MCP, :] - joints[..., _WRIST, :]
    z = _unit(fwd - np.sum(fwd * x, axis=-1, keepdims=True) * x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def wrist_transform(joints: np.ndarray, side: str) -> np.ndarray:
    """``T_frame_wrist`` ``(..., 4, 4)`` homogeneous transforms (metres) from keypoints ``(..., 21, 3)``."""
    joints = np.asarray(joints, dtype=np.float64)
    T = np.zeros(joints.shape[:-2] + (4, 4))
    T[..., :3, :3] = wrist_rotation(joints, side)
    T[..., :3, 3] = joints[..., _WRIST, :]
    T[..., 3, 3] = 1.0
    return T


def to_wrist_frame(joints: np.ndarray, side: str) -> np.ndarray:
    """Keypoints ``(..., 21, 3)`` expressed in their own wrist frame (wrist at the origin)."""
    joints = np.asarray(joints, dtype=np.float64)
    R = wrist_rotation(joints, side)
    local = joints - joints[..., _WRIST : _WRIST + 1, :]
    return np.einsum("...ji,...kj->...ki", R, local)
