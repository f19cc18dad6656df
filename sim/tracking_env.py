"""``HandXTracking-v0``: physics tracking of robot hand motions with residual PD targets (Gymnasium).

``import handx_robot`` registers ``HandXTracking-v0`` (entry point ``handx_robot.sim.tracking_env:HandXTrackingEnv``)::

    import gymnasium as gym
    import handx_robot  # noqa: F401  (registers the id)
    env = gym.make("HandXTracking-v0", motions=["clap.npz", "pinch.npz"])

The env logic is written once, batched over ``B`` envs, in :class:`TrackingTask` (reference bank,
observations, residual targets, rewards, termination) on top of a :class:`handx_robot.sim.backends.SimBackend`;
:class:`HandXTrackingEnv` is its single-env Gymnasium face, :class:`HandXTrackingVecEnv` the batched one
(``num_envs`` envs on one backend: MuJoCo on the CPU, or MJX, jit-compiled and vmapped).

This module is the stable import path (and the Gymnasium entry points); the code lives in the
package :mod:`handx_robot.sim.tracking` (config, layout, reference, task, envs, rollout). The quaternion
helpers are re-exported from :mod:`handx_robot.rotations` for older imports.

Units: rad (m for slide joints), m, s, world frame Z-up; quaternions ``wxyz``. ``T_world_base`` is the
pose of a hand's model root (the "wrist" of :class:`handx_robot.retarget.robot_motion.HandTrajectory`).
"""

from __future__ import annotations

from handx_robot.sim.tracking.config import LAYOUT_VERSION, RobotMismatchError, TrackingConfig
from handx_robot.sim.tracking.envs import BuiltTask, HandXTrackingEnv, HandXTrackingVecEnv, build_task
from handx_robot.sim.tracking.layout import Field
from handx_robot.sim.tracking.reference import ReferenceBank, load_motions
from handx_robot.sim.tracking.rollout import Rollout, rollout
from handx_robot.sim.tracking.task import TrackingTask

from handx_robot import TRACKING_ENV_ID
from handx_robot.rotations import quat_conj, quat_from_rotvec, quat_mul, quat_to_rotvec

__all__ = [
    "ENV_ID",
    "LAYOUT_VERSION",
    "TrackingConfig",
    "TrackingTask",
    "ReferenceBank",
    "HandXTrackingEnv",
    "HandXTrackingVecEnv",
    "BuiltTask",
    "build_task",
    "RobotMismatchError",
    "Field",
    "load_motions",
    "Rollout",
    "rollout",
    "quat_mul",
    "quat_conj",
    "quat_from_rotvec",
    "quat_to_rotvec",
]

ENV_ID = TRACKING_ENV_ID
