"""Preset cameras of a hand scene: where they sit relative to a view centre, and how far back they must
be for a box to fit their image.

Presets :data:`CAMERA_PRESETS` look at a view centre (``SceneConfig.view_center``); ``front`` looks along
+y from -y (from behind the operator's hands when the human reaches along +y, as the generated HandX
motions do in the world frame; the left hand is then on the image's left), ``back`` the opposite way.
:meth:`handx_robot.sim.scene.HandScene.frame_cameras` re-aims them all at a bounding box from the distance
at which it fits the image (:func:`fit_camera_distance`); :func:`handx_robot.sim.replay.scene_for_motion`
does so with the box of the hands over the whole motion. Positions m, world frame Z-up; quaternions wxyz.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mujoco
import numpy as np

from handx_robot.errors import ConfigError

__all__ = ["CAMERA_PRESETS", "camera_pose", "fit_camera_distance"]

CAMERA_PRESETS: tuple[str, ...] = ("front", "back", "left", "right", "top", "closeup")
#: preset camera direction from the view centre (unit-free, scaled by the view distance)
_CAMERA_OFFSETS = {
    "front": (0.0, -1.0, 0.35),
    "back": (0.0, 1.0, 0.35),
    "left": (-1.0, 0.0, 0.35),
    "right": (1.0, 0.0, 0.35),
    "top": (0.0, -0.05, 1.0),
    "closeup": (0.0, -0.5, 0.25),
}


def camera_pose(name: str, center: Sequence[float], distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) and orientation quaternion wxyz (4,) of preset camera ``name`` looking at ``center``
    from ``distance`` m (MuJoCo cameras look along their -z axis, y up)."""
    center = np.asarray(center, dtype=np.float64)
    pos = center + distance * np.asarray(_CAMERA_OFFSETS[name])
    fwd = center - pos
    fwd /= np.linalg.norm(fwd)
    up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
    x = np.cross(fwd, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, fwd)
    R_world_cam = np.stack([x, y, -fwd], axis=1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, R_world_cam.reshape(-1))
    return pos, quat


def fit_camera_distance(
    name: str,
    lo: Sequence[float],
    hi: Sequence[float],
    fovy_deg: float = 45.0,
    aspect: float = 4 / 3,
    margin: float = 1.1,
    min_distance: float = 0.15,
) -> float:
    """The ``distance`` argument of :func:`camera_pose` at which preset ``name``, aimed at the centre
    of the box ``[lo, hi]`` (m, world), sees all 8 corners of the box inside its image (pinhole,
    vertical field of view ``fovy_deg``, ``aspect`` = width / height) with ``margin`` (>= 1) to spare.

    A corner ``c`` (relative to the centre) at camera coordinates ``(X, Y)`` and depth ``d - c . o``
    (``o``: unit direction centre -> camera) is inside when ``margin * |X| <= tan_h * depth`` and
    ``margin * |Y| <= tan_v * depth``; the smallest such ``d`` is closed-form.
    """
    if name not in _CAMERA_OFFSETS:
        raise ConfigError(f"unknown camera preset {name!r}; presets: {', '.join(CAMERA_PRESETS)}")
    if not (0 < fovy_deg < 180 and aspect > 0 and margin >= 1):
        raise ConfigError(f"fit_camera_distance: need 0 < fovy < 180, aspect > 0, margin >= 1; got "
                          f"{fovy_deg}, {aspect}, {margin}")  # fmt: skip
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    center = (lo + hi) / 2
    offset = np.asarray(_CAMERA_OFFSETS[name], dtype=np.float64)
    scale = float(np.linalg.norm(offset))
    _, quat = camera_pose(name, center, 1.0)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, quat)
    R = R.reshape(3, 3)  # columns: camera x (right), y (up), z (backward = toward the camera)
    half = (hi - lo) / 2
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    cam = corners @ R  # (8, 3): X, Y, and the component toward the camera
    tan_v = math.tan(math.radians(fovy_deg) / 2)
    tan_h = tan_v * aspect
    need = cam[:, 2] + margin * np.maximum(np.abs(cam[:, 0]) / tan_h, np.abs(cam[:, 1]) / tan_v)
    return max(float(need.max()), min_distance) / scale
