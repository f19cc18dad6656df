"""MuJoCo CPU backend: ``num_envs`` ``MjData`` of one :class:`handx_robot.sim.scene.HandScene` model, stepped in turn.

The scene (floating wrists welded to mocap targets, one position actuator per actuated joint) is built
by :func:`handx_robot.sim.scene.build_scene`; this module only adds batching, velocity feed-forward per env,
instability flags and reference kinematics. Units: see :mod:`handx_robot.sim.backends.base`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
from handx_robot.sim.backends.base import (
    BackendLayout,
    HandLayout,
    KinematicsResult,
    SimBackend,
    SimState,
    check_config,
)
from handx_robot.sim.scene import GainConfig, HandModel, HandScene, SceneConfig, build_scene

from handx_robot.errors import ConfigError, MotionValueError

if TYPE_CHECKING:
    from handx_robot.sim.tracking.config import TrackingConfig

__all__ = ["MujocoBackend", "MujocoBackendConfig"]

log = logging.getLogger(__name__)

_BADQACC = int(mujoco.mjtWarning.mjWARN_BADQACC)


@dataclasses.dataclass(frozen=True)
class MujocoBackendConfig:
    """control_dt: env step, s (one motion frame, ``1 / fps``); substeps: physics steps per env step
    (``physics_dt = control_dt / substeps`` must be <= 0.01 s and keep ``2 pi bandwidth_hz physics_dt < 0.5``);
    bandwidth_hz: finger PD bandwidth (:class:`handx_robot.sim.scene.GainConfig`); wrist_timeconst: weld time constant, s
    (0 = ``max(0.01, 2 physics_dt)``); floor_height: m or None (no floor); view_center / view_distance:
    preset cameras (m, world)."""

    control_dt: float = 1.0 / 30.0
    substeps: int = 6
    bandwidth_hz: float = 10.0
    wrist_timeconst: float = 0.0
    floor_height: float | None = None
    view_center: tuple[float, float, float] = (0.0, 0.0, 0.3)
    view_distance: float = 0.7

    def __post_init__(self) -> None:
        if not (np.isfinite(self.control_dt) and self.control_dt > 0):
            raise ConfigError(f"MujocoBackendConfig.control_dt must be > 0 s, got {self.control_dt!r}")
        if int(self.substeps) < 1:
            raise ConfigError(f"MujocoBackendConfig.substeps must be >= 1, got {self.substeps!r}")
        dt = self.control_dt / self.substeps
        if dt > 0.01:
            raise ConfigError(
                f"MujocoBackendConfig: physics_dt = control_dt / substeps = {dt:.4f} s > 0.01 s; "
                f"use substeps >= {math.ceil(self.control_dt / 0.01)}"
            )
        if 2 * math.pi * self.bandwidth_hz * dt >= 0.5:
            raise ConfigError(
                f"MujocoBackendConfig: bandwidth_hz={self.bandwidth_hz} is too stiff for physics_dt={dt:.4f} s "
                f"(2 pi f dt = {2 * math.pi * self.bandwidth_hz * dt:.2f} >= 0.5); raise substeps or lower the bandwidth"
            )

    @classmethod
    def from_tracking(cls, tracking: TrackingConfig, *, control_dt: float,
                      view_center: tuple[float, float, float] = (0.0, 0.0, 0.3), view_distance: float = 0.7,
                      **overrides: Any) -> MujocoBackendConfig:
        """The config of the tracking env's backend: ``substeps``, ``bandwidth_hz``, ``floor_height`` from
        ``tracking``, the step ``control_dt`` (s, one motion frame), preset cameras; ``overrides``: other
        fields (``wrist_timeconst``)."""
        return cls(control_dt=control_dt, substeps=tracking.substeps, bandwidth_hz=tracking.bandwidth_hz,
                   floor_height=tracking.floor_height, view_center=tuple(view_center), view_distance=view_distance,
                   **overrides)

    def scene_config(self) -> SceneConfig:
        dt = self.control_dt / self.substeps
        return SceneConfig(
            timestep=dt,
            gains=GainConfig(bandwidth_hz=self.bandwidth_hz),
            wrist_timeconst=self.wrist_timeconst or max(0.01, 2 * dt),
            floor_height=self.floor_height,
            view_center=self.view_center,
            view_distance=self.view_distance,
            width=640,
            height=480,
        )


class MujocoBackend(SimBackend):
    """The CPU backend. ``hands``: :class:`handx_robot.sim.scene.HandModel` per side (``{side: model}`` or a list);
    ``config``: a :class:`MujocoBackendConfig` (None: defaults)."""

    config_class = MujocoBackendConfig

    def __init__(
        self,
        hands: Mapping[str, HandModel] | Sequence[HandModel],
        num_envs: int = 1,
        config: MujocoBackendConfig | None = None,
    ):
        if int(num_envs) < 1:
            raise ConfigError(f"MujocoBackend: num_envs must be >= 1, got {num_envs}")
        self.config = check_config(type(self).__name__, config, MujocoBackendConfig)
        self.scene: HandScene = build_scene(hands, self.config.scene_config())
        self.model = self.scene.model
        self.num_envs = int(num_envs)
        self.datas = [self.scene.data] + [mujoco.MjData(self.model) for _ in range(self.num_envs - 1)]
        m = self.model
        # the scene's per-hand index tables (addresses, actuators, gains, fingertip frames, home)
        self._idx = {side: self.scene._hand(side) for side in self.scene.sides}
        self._ff_gain = {side: h.kv + h.damping for side, h in self._idx.items()}  # (a,) N m s/rad
        # hands whose robot root is not at the mount (the dex-urdf Shadow is turned 90 deg): the
        # interface's wrist poses are T_world_base, MuJoCo moves the mount (T_world_base @ T_base_root)
        identity = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
        self._offset_root = {side for side, h in self._idx.items() if not np.allclose(h.T_base_root, identity)}
        layouts = {
            side: HandLayout(
                side=side, robot_id=h.robot_id, joint_names=list(h.joint_names), actuated=list(h.actuated),
                mimic=self.scene.mimic_joints(side), fingertips=list(h.fingertips),
                ctrl_lo=m.actuator_ctrlrange[h.act_ids, 0], ctrl_hi=m.actuator_ctrlrange[h.act_ids, 1],
            )
            for side, h in self._idx.items()
        }
        self.layout = BackendLayout(hands=layouts, control_dt=self.config.control_dt, substeps=int(self.config.substeps))
        roots = m.body_rootid[m.geom_bodyid]
        self._geom_side = np.full(m.ngeom, -1, dtype=np.int64)
        for k, side in enumerate(self.layout.sides):
            self._geom_side[roots == self._idx[side].mount_id] = k
        self._ff = np.zeros((self.num_envs, m.nv))
        self._bad0 = np.zeros(self.num_envs, dtype=np.int64)
        self._unstable = np.zeros(self.num_envs, dtype=bool)
        self._tip_body, self._tip_off, self._tip_slice = self._fingertip_frames()
        self._kin = mujoco.MjData(m)
        self._renderer: mujoco.Renderer | None = None
        self.reset()

    # ------------------------------------------------------------------ helpers
    def _fingertip_frames(self) -> tuple[np.ndarray, np.ndarray, dict[str, slice]]:
        """Body id and offset (m, body frame) of every fingertip, all hands concatenated (the scene's)."""
        hands = [self._idx[side] for side in self.layout.sides]
        bounds = np.cumsum([0] + [len(h.tip_body_ids) for h in hands])
        slices = {side: slice(int(a), int(b)) for side, a, b in zip(self.layout.sides, bounds[:-1], bounds[1:])}
        return (np.concatenate([h.tip_body_ids for h in hands]).astype(np.int64),
                np.concatenate([h.tip_offsets for h in hands]), slices)

    def _tips(self, d: mujoco.MjData) -> np.ndarray:
        """(Ktot, 3) fingertips of all hands, m, world."""
        xmat = d.xmat[self._tip_body].reshape(-1, 3, 3)
        return d.xpos[self._tip_body] + (xmat @ self._tip_off[:, :, None])[:, :, 0]

    def _to_mount(self, side: str, pose: np.ndarray, vel: np.ndarray | None = None):
        """``T_world_base`` (..., 7) and its world twist (..., 6) or None -> the mount body's (what
        MuJoCo moves): pose ``T_world_base @ T_base_root``, linear velocity of the mount's origin."""
        if side not in self._offset_root:
            return pose, vel
        mount = self._idx[side].base_to_mount(pose)
        if vel is not None:
            vel = np.array(vel, dtype=np.float64)
            vel[..., :3] += np.cross(vel[..., 3:], mount[..., :3] - np.asarray(pose)[..., :3])
        return mount, vel

    def _to_base(self, side: str, mount: np.ndarray, vel: np.ndarray):
        """Inverse of :meth:`_to_mount` (mount pose (..., 7) and twist (..., 6) -> ``T_world_base``'s)."""
        if side not in self._offset_root:
            return mount, vel
        base = self._idx[side].mount_to_base(mount)
        vel = np.array(vel, dtype=np.float64)
        vel[..., :3] -= np.cross(vel[..., 3:], mount[..., :3] - base[..., :3])
        return base, vel

    def _ids(self, env_ids: Sequence[int] | None) -> list[int]:
        if env_ids is None:
            return list(range(self.num_envs))
        ids = [int(i) for i in env_ids]
        bad = [i for i in ids if not 0 <= i < self.num_envs]
        if bad:
            raise ConfigError(f"env ids {bad} out of range [0, {self.num_envs})")
        return ids

    def _hand_contact(self, d: mujoco.MjData) -> tuple[bool, float]:
        n = d.ncon
        if n == 0:
            return False, 0.0
        g = d.contact.geom[:n]
        s1, s2 = self._geom_side[g[:, 0]], self._geom_side[g[:, 1]]
        hh = (s1 >= 0) & (s2 >= 0) & (s1 != s2)
        if not hh.any():
            return False, 0.0
        return True, float(np.maximum(-d.contact.dist[:n][hh], 0.0).max())

    # ------------------------------------------------------------------ SimBackend
    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        for b in self._ids(env_ids):
            d = self.datas[b]
            mujoco.mj_resetData(self.model, d)
            for side, ix in self._idx.items():
                d.qpos[ix.qadr] = ix.home
                d.ctrl[ix.act_ids] = ix.home[self.layout.hands[side].actuated_index]
                pose = np.concatenate([self.model.body_pos[ix.mount_id], self.model.body_quat[ix.mount_id]])
                d.qpos[ix.free_qadr : ix.free_qadr + 7] = pose
                d.mocap_pos[ix.mocap_id] = pose[:3]
                d.mocap_quat[ix.mocap_id] = pose[3:]
            self._ff[b] = 0.0
            self._bad0[b] = d.warning[_BADQACC].number
            self._unstable[b] = False
            mujoco.mj_forward(self.model, d)

    def set_state(self, env_ids, qpos, qvel, wrist_pose, wrist_vel=None) -> None:
        ids = self._ids(env_ids)
        for r, b in enumerate(ids):
            d = self.datas[b]
            mujoco.mj_resetData(self.model, d)  # no warm start or time carried over: reset(seed) is reproducible
            for side, ix in self._idx.items():
                q = np.asarray(qpos[side][r], dtype=np.float64)
                pose = np.asarray(wrist_pose[side][r], dtype=np.float64)
                if not (np.all(np.isfinite(q)) and np.all(np.isfinite(pose))):
                    raise MotionValueError(f"set_state: {side} joint positions or wrist pose are NaN/inf")
                d.qpos[ix.qadr] = q
                d.qvel[ix.vadr] = qvel[side][r]
                pose = np.concatenate([pose[:3], pose[3:] / np.linalg.norm(pose[3:])])
                pose, v = self._to_mount(side, pose, None if wrist_vel is None else wrist_vel[side][r])
                d.qpos[ix.free_qadr : ix.free_qadr + 3] = pose[:3]
                d.qpos[ix.free_qadr + 3 : ix.free_qadr + 7] = pose[3:]
                if v is None:
                    d.qvel[ix.free_vadr : ix.free_vadr + 6] = 0.0
                else:
                    v = np.asarray(v, dtype=np.float64)
                    quat = d.qpos[ix.free_qadr + 3 : ix.free_qadr + 7]
                    rot = np.empty(9)
                    mujoco.mju_quat2Mat(rot, quat)
                    d.qvel[ix.free_vadr : ix.free_vadr + 3] = v[:3]
                    d.qvel[ix.free_vadr + 3 : ix.free_vadr + 6] = rot.reshape(3, 3).T @ v[3:]  # world -> body
                d.ctrl[ix.act_ids] = np.clip(
                    q[self.layout.hands[side].actuated_index], self.layout.hands[side].ctrl_lo, self.layout.hands[side].ctrl_hi
                )
                d.mocap_pos[ix.mocap_id] = pose[:3]
                d.mocap_quat[ix.mocap_id] = d.qpos[ix.free_qadr + 3 : ix.free_qadr + 7]
            self._ff[b] = 0.0
            self._bad0[b] = d.warning[_BADQACC].number
            self._unstable[b] = False
            mujoco.mj_forward(self.model, d)

    def set_targets(self, targets, wrist_targets, target_velocities=None) -> None:
        wrist_targets = {side: self._to_mount(side, wrist_targets[side])[0] for side in self._idx}
        for b, d in enumerate(self.datas):
            for side, ix in self._idx.items():
                h = self.layout.hands[side]
                d.ctrl[ix.act_ids] = targets[side][b].clip(h.ctrl_lo, h.ctrl_hi)
                w = wrist_targets[side][b]
                d.mocap_pos[ix.mocap_id] = w[:3]
                d.mocap_quat[ix.mocap_id] = w[3:]
                if target_velocities is not None:
                    self._ff[b, ix.act_vadr] = self._ff_gain[side] * target_velocities[side][b]

    def step(self) -> None:
        m, n = self.model, self.layout.substeps
        for b, d in enumerate(self.datas):
            d.qfrc_applied[:] = self._ff[b]
            mujoco.mj_step(m, d, nstep=n)
            mujoco.mj_kinematics(m, d)  # positions at the end of the step (mj_step leaves them one step old)
            mujoco.mj_collision(m, d)
            if d.warning[_BADQACC].number > self._bad0[b] or not np.isfinite(d.qpos).all():
                if not self._unstable[b]:
                    log.warning("env %d: the physics diverged (bad acceleration); the episode ends", b)
                self._unstable[b] = True

    def read_state(self) -> SimState:
        B = self.num_envs
        qpos, qvel, wpose, wvel, tips = {}, {}, {}, {}, {}
        for side, ix in self._idx.items():
            n, k = len(ix.qadr), len(self.layout.hands[side].fingertips)
            qpos[side], qvel[side] = np.empty((B, n)), np.empty((B, n))
            wpose[side], wvel[side], tips[side] = np.empty((B, 7)), np.empty((B, 6)), np.empty((B, k, 3))
            for b, d in enumerate(self.datas):
                qpos[side][b] = d.qpos[ix.qadr]
                qvel[side][b] = d.qvel[ix.vadr]
                wpose[side][b, :3] = d.xpos[ix.mount_id]
                wpose[side][b, 3:] = d.xquat[ix.mount_id]
                wvel[side][b, :3] = d.qvel[ix.free_vadr : ix.free_vadr + 3]
                wvel[side][b, 3:] = d.xmat[ix.mount_id].reshape(3, 3) @ d.qvel[ix.free_vadr + 3 : ix.free_vadr + 6]
        for side in self._idx:
            wpose[side], wvel[side] = self._to_base(side, wpose[side], wvel[side])
        contact, depth = np.zeros(B, dtype=bool), np.zeros(B)
        for b, d in enumerate(self.datas):
            contact[b], depth[b] = self._hand_contact(d)
            all_tips = self._tips(d)
            for side, sl in self._tip_slice.items():
                tips[side][b] = all_tips[sl]
        return SimState(qpos, qvel, wpose, wvel, tips, contact, depth, self._unstable.copy())

    def kinematics(self, qpos, wrist_pose) -> KinematicsResult:
        m, d = self.model, self._kin
        sides = self.layout.sides
        T = int(np.asarray(qpos[sides[0]]).shape[0])
        tips = {s: np.zeros((T, len(self.layout.hands[s].fingertips), 3)) for s in sides}
        contact, depth = np.zeros(T, dtype=bool), np.zeros(T)
        mujoco.mj_resetData(m, d)
        for t in range(T):
            for s in sides:
                ix = self._idx[s]
                d.qpos[ix.qadr] = qpos[s][t]
                pose = np.asarray(wrist_pose[s][t], dtype=np.float64)
                pose = self._to_mount(s, np.concatenate([pose[:3], pose[3:] / np.linalg.norm(pose[3:])]))[0]
                d.qpos[ix.free_qadr : ix.free_qadr + 3] = pose[:3]
                d.qpos[ix.free_qadr + 3 : ix.free_qadr + 7] = pose[3:]
            mujoco.mj_kinematics(m, d)
            mujoco.mj_collision(m, d)
            all_tips = self._tips(d)
            for s in sides:
                tips[s][t] = all_tips[self._tip_slice[s]]
            contact[t], depth[t] = self._hand_contact(d)
        return KinematicsResult(tips, contact, depth)

    def render(self, env_id: int = 0, camera: str | None = None, width: int = 640, height: int = 480) -> np.ndarray:
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (width, height):
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = mujoco.Renderer(self.model, height=height, width=width)
        cams = self.scene.camera_names
        cam = camera or ("front" if "front" in cams else -1)
        if camera is not None and camera not in cams:
            raise ConfigError(f"camera {camera!r} is not in the scene; cameras: {', '.join(cams)}")
        d = self.datas[self._ids([env_id])[0]]
        self._renderer.update_scene(d, camera=cam)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
