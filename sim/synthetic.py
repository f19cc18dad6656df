"""Synthetic robot motions for a scene's hands: smooth sinusoids within the joint ranges.

Product code, not a test fixture: the benchmarks (``benchmarks/sim_speed.py``,
``benchmarks/tracking_env_speed.py``, ``benchmarks/tracking_vec_reset.py``) drive the simulator with these
motions, as the tests do. Nothing here needs a human motion or a retargeter.

Units: joint positions rad (m for slide joints), positions m, world frame Z-up, poses
``[x, y, z, qw, qx, qy, qz]`` (``T_world_base``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from handx_robot.retarget.robot_motion import HandTrajectory, RobotMotion
from handx_robot.sim.scene import HandScene

from handx_robot.errors import ConfigError
from handx_robot.rotations import pose_compose, pose_inv, quat_from_axis_angle, quat_mul, quat_normalize

__all__ = ["sinusoid_motion", "root_poses"]

#: wrist position of each hand when ``sinusoid_motion`` is not given one (m, world)
DEFAULT_WRIST_POSITIONS = {"left": (-0.15, 0.0, 0.3), "right": (0.15, 0.0, 0.3)}
#: range assumed for an unlimited joint, rad
_UNLIMITED_RANGE = (-0.5, 0.5)


def sinusoid_motion(
    scene: HandScene,
    seconds: float = 2.0,
    fps: float = 30.0,
    amplitude: float = 0.35,
    frequency_hz: float = 0.5,
    wrist_poses: Mapping[str, Sequence[float]] | None = None,
    wrist_radius_m: float = 0.02,
    wrist_yaw_rad: float = 0.2,
    seed: int = 0,
) -> RobotMotion:
    """A smooth test motion for the scene's hands, ``round(seconds * fps)`` frames (at least 2).

    Each actuated joint follows ``mid + amplitude * half_range * sin(2 pi f t + phase)`` (random phases,
    ``seed``; an unlimited joint uses the range +-0.5 rad). Each wrist (``T_world_base``) circles with
    radius ``wrist_radius_m`` in the world xy plane around ``wrist_poses[side]`` (3 numbers: position,
    identity orientation; or 7: a full pose; default :data:`DEFAULT_WRIST_POSITIONS`) while yawing by
    ``wrist_yaw_rad * sin(2 pi f t)`` about world z."""
    if not (0 < amplitude <= 1):
        raise ConfigError(f"sinusoid_motion: amplitude must be in (0, 1], got {amplitude}")
    rng = np.random.default_rng(seed)
    T = max(2, int(round(seconds * fps)))
    t = np.arange(T) / fps
    hands = {}
    for i, side in enumerate(scene.sides):
        limits = scene.joint_limits(side)
        names = scene.actuated_joint_names(side)
        q = np.zeros((T, len(names)))
        for j, n in enumerate(names):
            lo, hi = limits[n]
            if not np.isfinite(lo):
                lo, hi = _UNLIMITED_RANGE
            mid, half = (lo + hi) / 2, (hi - lo) / 2
            q[:, j] = mid + amplitude * half * np.sin(2 * np.pi * frequency_hz * t + rng.uniform(0, 2 * np.pi))
        given = np.asarray((wrist_poses or {}).get(side, DEFAULT_WRIST_POSITIONS[side]), dtype=np.float64)
        if given.shape not in ((3,), (7,)):
            raise ConfigError(f"sinusoid_motion: wrist_poses[{side!r}] must have 3 or 7 numbers, got {given.shape}")
        q0 = given[3:] / np.linalg.norm(given[3:]) if given.shape == (7,) else np.array([1.0, 0, 0, 0])
        w = np.zeros((T, 7))
        ang = 2 * np.pi * frequency_hz * t + i * np.pi
        w[:, 0] = given[0] + wrist_radius_m * np.cos(ang)
        w[:, 1] = given[1] + wrist_radius_m * np.sin(ang)
        w[:, 2] = given[2]
        yaw = wrist_yaw_rad * np.sin(2 * np.pi * frequency_hz * t)
        w[:, 3:] = quat_mul(quat_from_axis_angle([0.0, 0.0, 1.0], yaw), q0)
        hands[side] = HandTrajectory(
            robot=scene.robot_id(side), joint_names=names, qpos=q, wrist_pose=w, converged=np.ones(T, bool)
        )
    return RobotMotion(fps=fps, hands=hands, text="sinusoid test motion")


def root_poses(scene: HandScene, roots: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """``T_world_base`` (7,) per side that puts each hand's root body at ``roots[side]`` (3 numbers: a
    position, identity orientation; or 7: a pose, normalised) (the built-in Shadow's model frame is far
    from its hand: place the hand, not the frame)."""
    out = {}
    for side, r in roots.items():
        r = np.asarray(r, dtype=np.float64)
        pose = np.concatenate([r, [1.0, 0, 0, 0]]) if r.shape == (3,) else r
        pose = np.concatenate([pose[:3], quat_normalize(pose[3:])])
        out[side] = pose_compose(pose, pose_inv(scene.T_base_root(side)))
    return out
