"""MuJoCo scenes of one or two robot hands, built with ``MjSpec``, and the :class:`HandScene` wrapper.

A scene holds a floor, lights, preset cameras, an optional table and one robot hand per side
(``left`` / ``right``), each loaded from a URDF or MJCF model (the registry of
:mod:`handx_robot.retarget.robots` or a path). Units: SI (metres, radians, kg, N, s); world frame Z-up;
poses ``[x, y, z, qw, qx, qy, qz]``.

Modules (everything public is importable from here):

==================  =====================================================================================
``config``          :class:`HandModel`, :class:`GainConfig`, :class:`TableConfig`, :class:`SceneConfig`
``loading``         :func:`load_robot_spec`: URDF / MJCF -> ``MjSpec``, with the fixes real models need
``builder``         :func:`build_scene`: floating wrists, finger actuators, couplings, collisions, contacts
``hand_scene``      :class:`HandScene` (the API the replay, RL env and ROS sim node use), :class:`ContactSummary`
``cameras``         :data:`CAMERA_PRESETS`, :func:`camera_pose`, :func:`fit_camera_distance`
==================  =====================================================================================

The design notes (floating wrist, gains, coupled joints, collisions, contacts vs the wrist weld) are in
:mod:`handx_robot.sim.scene.builder`. Rotation maths is :mod:`handx_robot.rotations`; ``quat_mul``,
``quat_rotate``, ``compose_poses`` and ``invert_pose`` stay importable from here as its aliases.
"""

from __future__ import annotations

from handx_robot.rotations import pose_compose as compose_poses
from handx_robot.rotations import pose_inv as invert_pose
from handx_robot.rotations import quat_mul, quat_rotate

from .builder import (
    BIT_ENV,
    BIT_LEFT,
    BIT_RIGHT,
    GROUP_COLLISION_DRAWN,
    GROUP_COLLISION_HIDDEN,
    GROUP_ENV,
    GROUP_VISUAL,
    HOME_POSITIONS,
    build_scene,
)
from .cameras import CAMERA_PRESETS, camera_pose, fit_camera_distance
from .config import GainConfig, HandModel, SceneConfig, TableConfig, fingertips_from_config
from .hand_scene import ContactSummary, HandScene, tip_positions
from .loading import load_robot_spec

__all__ = [
    "HandModel",
    "GainConfig",
    "TableConfig",
    "SceneConfig",
    "HandScene",
    "ContactSummary",
    "build_scene",
    "load_robot_spec",
    "CAMERA_PRESETS",
    "camera_pose",
    "fit_camera_distance",
    "fingertips_from_config",
    "tip_positions",
    "HOME_POSITIONS",
    "BIT_LEFT",
    "BIT_RIGHT",
    "BIT_ENV",
    "GROUP_ENV",
    "GROUP_VISUAL",
    "GROUP_COLLISION_DRAWN",
    "GROUP_COLLISION_HIDDEN",
    "quat_mul",
    "quat_rotate",
    "compose_poses",
    "invert_pose",
]
