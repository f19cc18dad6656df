"""The RL tracking task ``HandXTracking-v0``, one idea per module.

============== ==========================================================================================
module         what it holds
============== ==========================================================================================
``config``     :class:`TrackingConfig` (task options), :data:`LAYOUT_VERSION`, :class:`RobotMismatchError`
``layout``     :class:`Field` and the observation / action layouts (names, sizes, units), policy signature
``reference``  :func:`load_motions`, robot checks, :class:`ReferenceBank` (padded reference clips)
``task``       :class:`TrackingTask`: residual targets, rewards, termination, observations, batched over B
``envs``       :class:`HandXTrackingEnv` (Gymnasium env), :class:`HandXTrackingVecEnv`, :func:`build_task`
``rollout``    :func:`rollout` of one clip and its record :class:`Rollout`
============== ==========================================================================================

The Gymnasium id's entry points are :mod:`handx_robot.sim.tracking_env`, which re-exports these names.
"""

from handx_robot.sim.tracking.config import LAYOUT_VERSION, RobotMismatchError, TrackingConfig
from handx_robot.sim.tracking.envs import BuiltTask, HandXTrackingEnv, HandXTrackingVecEnv, build_task
from handx_robot.sim.tracking.layout import Field
from handx_robot.sim.tracking.reference import ReferenceBank, load_motions
from handx_robot.sim.tracking.rollout import Rollout, rollout
from handx_robot.sim.tracking.task import TrackingTask

__all__ = [
    "LAYOUT_VERSION",
    "TrackingConfig",
    "RobotMismatchError",
    "Field",
    "ReferenceBank",
    "load_motions",
    "TrackingTask",
    "BuiltTask",
    "build_task",
    "HandXTrackingEnv",
    "HandXTrackingVecEnv",
    "Rollout",
    "rollout",
]
