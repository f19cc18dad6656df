"""The compiled scene, :class:`HandScene`: the API the replay, the RL env and the ROS sim node use.

Per side, by the robot's own joint names: ``set_targets`` / ``set_target_array`` (position targets,
optional velocity feed-forward), ``set_wrist_target``, ``step(n)``, ``joint_positions`` /
``joint_velocities`` / ``joint_efforts``, ``wrist_pose``, ``fingertip_positions``, ``contacts``,
``set_joint_positions`` + ``forward`` (kinematic), ``reset``; ``model`` / ``data`` are the MuJoCo objects.
Build one with :func:`handx_robot.sim.scene.build_scene`.

Units: joint positions rad (m for slide joints); positions m, world frame Z-up; poses
``[x, y, z, qw, qx, qy, qz]``. Wrist poses are ``T_world_base`` (the retargeter's base frame); the
floating mount MuJoCo moves is ``T_world_base @ T_base_root`` (:meth:`HandScene.base_to_mount`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import mujoco
import numpy as np

from handx_robot.errors import ConfigError, MotionValueError, UnknownJointError
from handx_robot.motion import SIDES
from handx_robot.rotations import pose_compose, pose_inv

from .cameras import CAMERA_PRESETS, camera_pose, fit_camera_distance
from .config import SceneConfig
from .loading import compile_spec

__all__ = ["HandScene", "ContactSummary", "tip_positions"]


@dataclasses.dataclass(frozen=True)
class ContactSummary:
    """Contacts at one instant. Depths are penetration depths, metres (>= 0; 0 = none).

    hand_hand:       a left-hand geom touches a right-hand geom.
    hand_hand_depth: deepest hand-hand penetration.
    hand_env_depth:  deepest hand-floor/table penetration.
    """

    hand_hand: bool
    hand_hand_depth: float
    hand_env_depth: float


@dataclasses.dataclass
class _Hand:
    """Indices of one hand inside the compiled scene (computed once, by name)."""

    robot_id: str
    side: str
    joint_names: tuple[str, ...]  # every hinge/slide joint, model order
    actuated: tuple[str, ...]  # joints with an actuator (not mimic followers)
    mimic: dict[str, tuple[str, np.ndarray]]  # follower -> (leader, poly coeffs c0..c4)
    qadr: np.ndarray  # (n,) qpos address per joint_names
    vadr: np.ndarray  # (n,) dof address per joint_names
    act_ids: np.ndarray  # (a,) actuator id per actuated
    act_qadr: np.ndarray
    act_vadr: np.ndarray
    kp: np.ndarray
    kv: np.ndarray
    damping: np.ndarray  # (a,) passive joint damping of the actuated joints, N m s/rad
    ctrl_lo: np.ndarray
    ctrl_hi: np.ndarray
    fingertips: tuple[str, ...]
    tip_body_ids: np.ndarray  # (k,) body carrying each fingertip (a body or a site's body)
    tip_offsets: np.ndarray  # (k, 3) fingertip position in that body's frame, m (0 for bodies)
    mount_id: int
    free_qadr: int
    free_vadr: int
    mocap_id: int
    home: np.ndarray  # (n,) home joint positions: 0 clipped into the range
    T_base_root: np.ndarray  # (7,) robot root body in the model frame (see builder._attach_hand)
    fixes: tuple[str, ...] = ()

    def base_to_mount(self, poses: np.ndarray) -> np.ndarray:
        """``T_world_base`` poses (..., 7) -> mount poses ``T_world_base @ T_base_root`` (..., 7)."""
        return pose_compose(poses, self.T_base_root)

    def mount_to_base(self, poses: np.ndarray) -> np.ndarray:
        """Mount poses (..., 7) -> ``T_world_base`` (..., 7)."""
        return pose_compose(poses, pose_inv(self.T_base_root))


class HandScene:
    """A compiled MuJoCo scene with one or two hands; the API the replay, RL env and ROS sim node use.

    Joints are addressed by the robot's own joint names, per side. Arrays: joint positions in rad (m for
    slide joints); wrist poses ``T_world_base`` as ``[x, y, z, qw, qx, qy, qz]`` (m, world Z-up);
    fingertip positions (k, 3) m, world.
    """

    def __init__(self, model: mujoco.MjModel, hands: dict[str, _Hand], config: SceneConfig, spec: mujoco.MjSpec):
        self.model = model
        self.data = mujoco.MjData(model)
        self.config = config
        self.spec = spec
        self._hands = hands
        self._vel_ff = np.zeros(model.nv)
        geom_side = np.full(model.ngeom, -1, dtype=np.int64)  # -1 environment, 0 left, 1 right
        roots = model.body_rootid[model.geom_bodyid]
        for side, h in hands.items():
            geom_side[roots == h.mount_id] = SIDES.index(side)
        self._geom_side = geom_side
        self.reset()

    # ------------------------------------------------------------------ introspection
    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(s for s in SIDES if s in self._hands)

    def _hand(self, side: str) -> _Hand:
        try:
            return self._hands[side]
        except KeyError:
            raise ConfigError(f"the scene has no {side!r} hand; hands: {', '.join(self.sides)}") from None

    def robot_id(self, side: str) -> str:
        return self._hand(side).robot_id

    def joint_names(self, side: str) -> tuple[str, ...]:
        """Every joint of the hand (hinge/slide), model order, robot names."""
        return self._hand(side).joint_names

    def actuated_joint_names(self, side: str) -> tuple[str, ...]:
        """Joints with a position actuator (the others follow through mimic equalities)."""
        return self._hand(side).actuated

    def mimic_joints(self, side: str) -> dict[str, tuple[str, np.ndarray]]:
        """``{follower: (leader, coeffs)}``: ``q_follower = c0 + c1 q + c2 q^2 + ...`` of the leader."""
        return dict(self._hand(side).mimic)

    def fingertip_names(self, side: str) -> tuple[str, ...]:
        return self._hand(side).fingertips

    def gains(self, side: str) -> dict[str, tuple[float, float]]:
        """``{joint: (kp, kv)}`` of the actuated joints."""
        h = self._hand(side)
        return {n: (float(p), float(v)) for n, p, v in zip(h.actuated, h.kp, h.kv)}

    def base_to_mount(self, side: str, poses: np.ndarray) -> np.ndarray:
        """``T_world_base`` poses (..., 7) -> poses of the floating mount (free joint qpos / mocap target),
        ``T_world_base @ T_base_root``. Code that writes the free joint or the mocap body directly must
        convert with this (identity only when the model's root body sits at its model frame origin)."""
        return self._hand(side).base_to_mount(np.asarray(poses, dtype=np.float64))

    def mount_to_base(self, side: str, poses: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`base_to_mount`: mount poses (..., 7) -> ``T_world_base``."""
        return self._hand(side).mount_to_base(np.asarray(poses, dtype=np.float64))

    def T_base_root(self, side: str) -> np.ndarray:
        """(7,) pose of the robot's root body in its model frame (``[x, y, z, qw, qx, qy, qz]``)."""
        return self._hand(side).T_base_root.copy()

    def joint_limits(self, side: str) -> dict[str, tuple[float, float]]:
        h = self._hand(side)
        out = {}
        for name in h.joint_names:
            jid = self.model.joint(f"{side}/{name}").id
            lo, hi = self.model.jnt_range[jid]
            out[name] = (float(lo), float(hi)) if self.model.jnt_limited[jid] else (-math.inf, math.inf)
        return out

    def aim_cameras(self, center: Sequence[float], distance: float) -> None:
        """Point the preset cameras at ``center`` (m, world) from ``distance`` m."""
        if distance <= 0 or len(center) != 3 or not np.all(np.isfinite(center)):
            raise ConfigError(f"aim_cameras: need a finite centre (3,) and distance > 0, got {center}, {distance}")
        for name in CAMERA_PRESETS:
            cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
            if cid >= 0:
                self.model.cam_pos[cid], self.model.cam_quat[cid] = camera_pose(name, center, distance)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def frame_cameras(
        self, lo: Sequence[float], hi: Sequence[float], aspect: float | None = None, margin: float = 1.1
    ) -> dict[str, float]:
        """Aim every preset camera at the centre of the box ``[lo, hi]`` (m, world) from the distance at
        which the whole box fits in its image (:func:`fit_camera_distance`; ``aspect`` = width / height,
        default the offscreen buffer's; ``margin`` >= 1 leaves that much room). Returns the distances, m."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if lo.shape != (3,) or hi.shape != (3,) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ConfigError(f"frame_cameras: need finite lo, hi (3,) in metres, got {lo.tolist()}, {hi.tolist()}")
        if aspect is None:
            aspect = self.model.vis.global_.offwidth / self.model.vis.global_.offheight
        center = (lo + hi) / 2
        out = {}
        for name in CAMERA_PRESETS:
            cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
            if cid < 0:
                continue
            d = fit_camera_distance(name, lo, hi, float(self.model.cam_fovy[cid]), aspect, margin)
            self.model.cam_pos[cid], self.model.cam_quat[cid] = camera_pose(name, center, d)
            out[name] = d
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        return out

    def set_floor_height(self, z: float) -> None:
        """Move the floor plane to height ``z`` (m, world); no-op without a floor. MuJoCo treats world
        geoms as static, so this recompiles the scene (same indices) and resets the state."""
        if not np.isfinite(z):
            raise ConfigError(f"floor height must be finite, got {z!r}")
        try:
            geom = self.spec.geom("handx/floor")
        except Exception:
            geom = None
        if geom is None:
            return
        geom.pos = [geom.pos[0], geom.pos[1], float(z)]
        cams = {n: (self.model.cam_pos[i].copy(), self.model.cam_quat[i].copy()) for i, n in enumerate(self.camera_names)}
        self.model = compile_spec(self.spec, "scene")
        for i, n in enumerate(self.camera_names):
            self.model.cam_pos[i], self.model.cam_quat[i] = cams[n]
        self.data = mujoco.MjData(self.model)
        self._vel_ff = np.zeros(self.model.nv)
        self.reset()

    def robot_extent(self, data: mujoco.MjData | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(lo (3,), hi (3,))`` bounding box of every hand's geoms (their local boxes ``geom_aabb``
        turned into world-axis boxes), m, world."""
        d = self.data if data is None else data
        mounts = [h.mount_id for h in self._hands.values()]
        geoms = np.isin(self.model.body_rootid[self.model.geom_bodyid], mounts)
        aabb = self.model.geom_aabb[geoms]  # (n, 6): centre, half sizes in the geom frame
        R = d.geom_xmat[geoms].reshape(-1, 3, 3)
        c = d.geom_xpos[geoms] + np.einsum("nij,nj->ni", R, aabb[:, :3])
        h = np.einsum("nij,nj->ni", np.abs(R), aabb[:, 3:])
        return (c - h).min(axis=0), (c + h).max(axis=0)

    def hand_geom_positions(self, side: str, data: mujoco.MjData | None = None) -> np.ndarray:
        """(n, 3) centres of the geoms of the ``side`` hand, m, world (of ``data``, default the scene's)."""
        self._hand(side)
        d = self.data if data is None else data
        return d.geom_xpos[self._geom_side == SIDES.index(side)].copy()

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self.model.camera(i).name for i in range(self.model.ncam))

    @property
    def fixes(self) -> dict[str, tuple[str, ...]]:
        """URDF fixes applied per side (also logged)."""
        return {s: h.fixes for s, h in self._hands.items()}

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Zero velocities, joints at home (0 clipped into the joint range), hands at their mount pose."""
        mujoco.mj_resetData(self.model, self.data)
        self._vel_ff[:] = 0.0
        for h in self._hands.values():
            self.data.qpos[h.qadr] = h.home
            self.data.ctrl[h.act_ids] = h.home[[h.joint_names.index(n) for n in h.actuated]]
            pose = np.concatenate([self.model.body_pos[h.mount_id], self.model.body_quat[h.mount_id]])
            self.data.qpos[h.free_qadr : h.free_qadr + 7] = pose
            self.data.mocap_pos[h.mocap_id] = pose[:3]
            self.data.mocap_quat[h.mocap_id] = pose[3:]
        mujoco.mj_forward(self.model, self.data)

    def _names_to_index(self, side: str, names: Sequence[str]) -> list[int]:
        h = self._hand(side)
        lookup = {n: i for i, n in enumerate(h.joint_names)}
        unknown = [n for n in names if n not in lookup]
        if unknown:
            raise UnknownJointError(
                f"robot '{h.robot_id}' ({side}) has no joints {unknown}; its joints: {', '.join(h.joint_names)}"
            )
        return [lookup[n] for n in names]

    def set_joint_positions(self, side: str, qpos: Mapping[str, float], wrist_pose: Sequence[float] | None = None) -> None:
        """Kinematic set: joint positions by name (mimic followers computed from their leaders unless
        given), optional wrist pose ``[x, y, z, qw, qx, qy, qz]``; zeroes velocities. Call
        :meth:`forward` afterwards to update positions and contacts."""
        h = self._hand(side)
        names = list(qpos)
        values = np.array([qpos[n] for n in names], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = [n for n, v in zip(names, values) if not np.isfinite(v)]
            raise MotionValueError(f"{side} hand: joint positions of {bad} are NaN/inf")
        idx = self._names_to_index(side, names)
        self.data.qpos[h.qadr[idx]] = values
        given = set(names)
        for follower, (leader, coef) in h.mimic.items():
            if follower not in given:
                q = self.data.qpos[h.qadr[h.joint_names.index(leader)]]
                self.data.qpos[h.qadr[h.joint_names.index(follower)]] = np.polyval(coef[::-1], q)
        self.data.qvel[h.vadr] = 0.0
        if wrist_pose is not None:
            pose = h.base_to_mount(self._check_pose(side, wrist_pose))
            self.data.qpos[h.free_qadr : h.free_qadr + 7] = pose
            self.data.qvel[h.free_vadr : h.free_vadr + 6] = 0.0
            self.data.mocap_pos[h.mocap_id] = pose[:3]
            self.data.mocap_quat[h.mocap_id] = pose[3:]

    @property
    def time(self) -> float:
        """Simulation time, s."""
        return float(self.data.time)

    def forward(self) -> None:
        """Recompute positions, contacts and forces from the current state (no time step)."""
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, side: str, targets: Mapping[str, float], velocities: Mapping[str, float] | None = None) -> None:
        """Position targets of actuated joints by name (rad / m), clamped to the joint range, and
        optional target velocities (feed-forward ``(kv + joint damping) * qdot_target``, rad/s)."""
        h = self._hand(side)
        lookup = {n: i for i, n in enumerate(h.actuated)}
        unknown = [n for n in targets if n not in lookup]
        if unknown:
            raise UnknownJointError(
                f"robot '{h.robot_id}' ({side}): {unknown} are not actuated joints; "
                f"actuated: {', '.join(h.actuated)}"
                + (f"; mimic followers (driven by their leaders): {', '.join(h.mimic)}" if h.mimic else "")
            )
        idx = np.array([lookup[n] for n in targets], dtype=np.int64)
        values = np.array(list(targets.values()), dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = [n for n, v in zip(targets, values) if not np.isfinite(v)]
            raise MotionValueError(f"{side} hand: targets of {bad} are NaN/inf; refusing to command them")
        self.data.ctrl[h.act_ids[idx]] = np.clip(values, h.ctrl_lo[idx], h.ctrl_hi[idx])
        if velocities is not None:
            vidx = np.array([lookup[n] for n in velocities], dtype=np.int64)
            v = np.array(list(velocities.values()), dtype=np.float64)
            self._vel_ff[h.act_vadr[vidx]] = np.where(np.isfinite(v), (h.kv[vidx] + h.damping[vidx]) * v, 0.0)

    def set_target_array(self, side: str, q: np.ndarray, qdot: np.ndarray | None = None) -> None:
        """Fast path of :meth:`set_targets`: ``q`` (a,) in :meth:`actuated_joint_names` order."""
        h = self._hand(side)
        self.data.ctrl[h.act_ids] = np.clip(q, h.ctrl_lo, h.ctrl_hi)
        if qdot is not None:
            self._vel_ff[h.act_vadr] = (h.kv + h.damping) * qdot

    def _check_pose(self, side: str, pose: Sequence[float]) -> np.ndarray:
        p = np.asarray(pose, dtype=np.float64).reshape(-1)
        if p.shape != (7,) or not np.all(np.isfinite(p)):
            raise MotionValueError(
                f"{side} wrist pose must be 7 finite numbers [x, y, z, qw, qx, qy, qz], got {np.asarray(pose)!r}"
            )
        n = np.linalg.norm(p[3:])
        if n < 1e-9:
            raise MotionValueError(f"{side} wrist quaternion is zero: {p[3:]}")
        p[3:] /= n
        return p

    def set_wrist_target(self, side: str, pose: Sequence[float]) -> None:
        """Wrist target ``T_world_base`` ``[x, y, z, qw, qx, qy, qz]`` (m, world); the weld pulls the hand there."""
        h = self._hand(side)
        p = h.base_to_mount(self._check_pose(side, pose))
        self.data.mocap_pos[h.mocap_id] = p[:3]
        self.data.mocap_quat[h.mocap_id] = p[3:]

    def step(self, n: int = 1) -> None:
        """Advance physics by ``n`` timesteps (targets held). ``data.qfrc_applied`` is overwritten with the
        velocity feed-forward of :meth:`set_targets`."""
        self.data.qfrc_applied[:] = self._vel_ff
        mujoco.mj_step(self.model, self.data, nstep=int(n))

    def joint_positions(self, side: str) -> dict[str, float]:
        h = self._hand(side)
        return dict(zip(h.joint_names, self.data.qpos[h.qadr].tolist()))

    def joint_velocities(self, side: str) -> dict[str, float]:
        h = self._hand(side)
        return dict(zip(h.joint_names, self.data.qvel[h.vadr].tolist()))

    def joint_efforts(self, side: str) -> dict[str, float]:
        """Actuator torque (N m; N for slide joints) of each actuated joint, after the last step."""
        h = self._hand(side)
        return dict(zip(h.actuated, self.data.actuator_force[h.act_ids].tolist()))

    def joint_position_array(self, side: str) -> np.ndarray:
        """(n,) joint positions in :meth:`joint_names` order."""
        h = self._hand(side)
        return self.data.qpos[h.qadr].copy()

    def wrist_pose(self, side: str) -> np.ndarray:
        """(7,) ``T_world_base`` of the simulated hand, [x, y, z, qw, qx, qy, qz]."""
        h = self._hand(side)
        return h.mount_to_base(np.concatenate([self.data.xpos[h.mount_id], self.data.xquat[h.mount_id]]))

    def fingertip_positions(self, side: str) -> dict[str, np.ndarray]:
        """``{link: (3,)}`` fingertip positions, m, world (after a step or :meth:`forward`)."""
        return dict(zip(self._hand(side).fingertips, self.fingertip_array(side)))

    def fingertip_array(self, side: str, data: mujoco.MjData | None = None) -> np.ndarray:
        """(k, 3) fingertip positions in :meth:`fingertip_names` order, m, world (of ``data``, default
        the scene's)."""
        return tip_positions(self._hand(side), self.data if data is None else data)

    def contacts(self) -> ContactSummary:
        """Hand-hand and hand-environment contacts of the current state."""
        d = self.data
        n = d.ncon
        if n == 0:
            return ContactSummary(False, 0.0, 0.0)
        geoms = d.contact.geom[:n]
        dist = d.contact.dist[:n]
        s1, s2 = self._geom_side[geoms[:, 0]], self._geom_side[geoms[:, 1]]
        hh = (s1 >= 0) & (s2 >= 0) & (s1 != s2)
        he = (s1 >= 0) ^ (s2 >= 0)
        depth = np.maximum(-dist, 0.0)
        return ContactSummary(
            hand_hand=bool(hh.any()),
            hand_hand_depth=float(depth[hh].max()) if hh.any() else 0.0,
            hand_env_depth=float(depth[he].max()) if he.any() else 0.0,
        )


def tip_positions(hand: _Hand, data: mujoco.MjData) -> np.ndarray:
    """(k, 3) fingertip positions of ``hand`` in ``data`` (after kinematics), m, world."""
    xmat = data.xmat[hand.tip_body_ids].reshape(-1, 3, 3)
    return data.xpos[hand.tip_body_ids] + np.einsum("kij,kj->ki", xmat, hand.tip_offsets)
