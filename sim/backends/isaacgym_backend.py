"""EXPERIMENTAL, UNTESTED: an Isaac Gym (PhysX, GPU tensor API) backend for batched tracking envs.

Isaac Gym (Preview 4) is not on PyPI and needs an NVIDIA GPU, so this module was written against its
documented tensor API (``gymapi`` / ``gymtorch``: ``acquire_*_tensor``, ``refresh_*_tensor``,
``set_dof_position_target_tensor``, ``set_*_tensor_indexed``, ``apply_rigid_body_force_tensors``) and
has never been run. ``isaacgym`` is imported only when the class is instantiated; everything the env
does above the backend (:class:`handx_robot.sim.tracking_env.TrackingTask`) is backend-independent and tested on
the MuJoCo backend.

Model: one actor per hand per env, loaded from the hand's URDF (``HandModel.model_path``), free base.
The actor's root is the URDF root link, which is the base of :class:`handx_robot.retarget.robot_motion.HandTrajectory`
(``T_world_base``), so wrist poses go to and come from the root state as they are; the MuJoCo
backend's ``T_base_root`` offset comes from MuJoCo merging a root link named ``world`` into its world
body and has no counterpart here.
Fingers: PhysX position drives (``DOF_MODE_POS``) with the stiffness/damping of the MuJoCo scene's
gains. Wrist: a PD wrench on the base body toward the wrist target (gains ``wrist_kp`` / ``wrist_kd``
per unit mass) plus gravity compensation, standing in for MuJoCo's weld to a mocap body.
Differences from the MuJoCo backend (documented, not hidden): hand-hand contact is approximated by
"a body of each hand feels a net contact force above ``contact_force_threshold`` N and the two hands'
bounding spheres overlap" (Isaac Gym's tensor API has no pairwise contact list); penetration depth is
not available (reported 0); reference kinematics (:meth:`kinematics`) run on a CPU MuJoCo model of the
same hands. Velocity feed-forward is not applied (PhysX drives take no feed-forward term).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import numpy as np
from handx_robot.sim.backends.base import BackendLayout, KinematicsResult, SimBackend, SimState

from handx_robot.errors import ConfigError, MissingDependencyError

__all__ = ["IsaacGymBackend", "IsaacGymConfig"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class IsaacGymConfig:
    """control_dt (s), substeps (PhysX steps per env step), device (``cuda:0``), wrist_kp (1/s^2),
    wrist_kd (1/s), spacing (m between envs), contact_force_threshold (N)."""

    control_dt: float = 1.0 / 30.0
    substeps: int = 4
    device: str = "cuda:0"
    wrist_kp: float = 2000.0
    wrist_kd: float = 90.0
    spacing: float = 1.0
    contact_force_threshold: float = 0.05

    def __post_init__(self) -> None:
        if self.control_dt <= 0 or self.substeps < 1:
            raise ConfigError("IsaacGymConfig: control_dt must be > 0 and substeps >= 1")


class IsaacGymBackend(SimBackend):
    """``num_envs`` envs in one PhysX GPU simulation. EXPERIMENTAL and untested (see the module docstring)."""

    def __init__(self, hands: Mapping[str, object] | Sequence[object], num_envs: int = 1024, config: IsaacGymConfig | None = None):
        try:
            from isaacgym import gymapi, gymtorch  # noqa: I001  (isaacgym must be imported before torch)
            import torch
        except ImportError as exc:
            raise MissingDependencyError(
                f"the isaacgym backend needs NVIDIA Isaac Gym Preview 4 (not on PyPI) and a CUDA GPU ({exc}); "
                "use the 'mujoco' backend on the CPU"
            ) from exc
        from handx_robot.sim.backends.mujoco_backend import MujocoBackend, MujocoBackendConfig

        self.config = cfg = config or IsaacGymConfig()
        hand_list = list(hands.values()) if isinstance(hands, Mapping) else list(hands)
        bad = [h.robot_id for h in hand_list if h.model_format != "urdf"]
        if bad:
            raise ConfigError(f"the isaacgym backend loads URDF hands only; {bad} are MJCF")
        # CPU MuJoCo twin: names, limits, gains, fingertips and reference kinematics
        self._cpu = MujocoBackend(hand_list, 1, MujocoBackendConfig(control_dt=cfg.control_dt, substeps=max(cfg.substeps, 4)))
        self.layout = BackendLayout(self._cpu.layout.hands, cfg.control_dt, cfg.substeps)
        self.num_envs = int(num_envs)
        self._torch, self._gymapi, self._gymtorch = torch, gymapi, gymtorch
        gym = self.gym = gymapi.acquire_gym()
        sp = gymapi.SimParams()
        sp.dt = cfg.control_dt / cfg.substeps
        sp.substeps = 1
        sp.up_axis = gymapi.UP_AXIS_Z
        sp.gravity = gymapi.Vec3(0.0, 0.0, -9.81)
        sp.use_gpu_pipeline = cfg.device.startswith("cuda")
        sp.physx.use_gpu = sp.use_gpu_pipeline
        sp.physx.num_position_iterations = 8
        sp.physx.num_velocity_iterations = 0
        dev = int(cfg.device.split(":")[1]) if ":" in cfg.device else 0
        self.sim = gym.create_sim(dev, -1, gymapi.SIM_PHYSX, sp)
        if self.sim is None:
            raise MissingDependencyError("Isaac Gym could not create a PhysX simulation on " + cfg.device)
        assets, dof_props = {}, {}
        for h in hand_list:
            opt = gymapi.AssetOptions()
            opt.fix_base_link = False
            opt.disable_gravity = False
            opt.default_dof_drive_mode = gymapi.DOF_MODE_POS
            assets[h.side] = gym.load_asset(self.sim, str(h.model_path.parent), h.model_path.name, opt)
            gains = self._cpu.scene.gains(h.side)
            props = gym.get_asset_dof_properties(assets[h.side])
            names = gym.get_asset_dof_names(assets[h.side])
            for i, n in enumerate(names):
                if n in gains:
                    props["stiffness"][i], props["damping"][i] = gains[n]
            dof_props[h.side] = props
        sides = self.layout.sides
        self._actor_ids = {s: [] for s in sides}
        lower, upper = gymapi.Vec3(-cfg.spacing, -cfg.spacing, 0.0), gymapi.Vec3(cfg.spacing, cfg.spacing, cfg.spacing)
        per_row = int(np.sqrt(self.num_envs)) or 1
        self.envs = []
        for e in range(self.num_envs):
            env = gym.create_env(self.sim, lower, upper, per_row)
            self.envs.append(env)
            for s in sides:
                actor = gym.create_actor(env, assets[s], gymapi.Transform(), f"{s}_hand", e, 0)
                gym.set_actor_dof_properties(env, actor, dof_props[s])
                self._actor_ids[s].append(gym.get_actor_index(env, actor, gymapi.DOMAIN_SIM))
        gym.prepare_sim(self.sim)
        dev_t = torch.device(cfg.device)
        self._dev = dev_t
        self._root = gymtorch.wrap_tensor(gym.acquire_actor_root_state_tensor(self.sim))  # (actors, 13) xyz, quat xyzw, v, w
        self._dof = gymtorch.wrap_tensor(gym.acquire_dof_state_tensor(self.sim)).view(self.num_envs, -1, 2)
        self._rb = gymtorch.wrap_tensor(gym.acquire_rigid_body_state_tensor(self.sim)).view(self.num_envs, -1, 13)
        self._force = gymtorch.wrap_tensor(gym.acquire_net_contact_force_tensor(self.sim)).view(self.num_envs, -1, 3)
        # column maps by name, per side: dof index within an env, rigid body index within an env
        env0 = self.envs[0]
        self._dof_cols, self._tip_rb, self._base_rb, self._hand_rbs = {}, {}, {}, {}
        for s in sides:
            h = self.layout.hands[s]
            actor = gym.find_actor_handle(env0, f"{s}_hand")
            dof_dict = gym.get_actor_dof_dict(env0, actor)
            missing = [n for n in h.joint_names if n not in dof_dict]
            if missing:
                raise ConfigError(f"isaacgym: {s} hand URDF lacks joints {missing} of the MuJoCo model")
            self._dof_cols[s] = torch.as_tensor(
                [gym.find_actor_dof_index(env0, actor, n, gymapi.DOMAIN_ENV) for n in h.joint_names], device=dev_t
            )
            self._tip_rb[s] = torch.as_tensor(
                [gym.find_actor_rigid_body_index(env0, actor, n, gymapi.DOMAIN_ENV) for n in h.fingertips], device=dev_t
            )
            self._base_rb[s] = gym.find_actor_rigid_body_index(env0, actor, gym.get_actor_rigid_body_names(env0, actor)[0], gymapi.DOMAIN_ENV)
            n_rb = gym.get_actor_rigid_body_count(env0, actor)
            self._hand_rbs[s] = torch.arange(self._base_rb[s], self._base_rb[s] + n_rb, device=dev_t)
        self._targets = torch.zeros(self.num_envs, self._dof.shape[1], device=dev_t)
        self._wrist_target = {s: torch.zeros(self.num_envs, 7, device=dev_t) for s in sides}
        self._unstable = torch.zeros(self.num_envs, dtype=torch.bool, device=dev_t)
        masses = {s: sum(p.mass for p in gym.get_actor_rigid_body_properties(env0, gym.find_actor_handle(env0, f"{s}_hand")))
                  for s in sides}
        self._mass = masses
        log.warning("IsaacGymBackend is EXPERIMENTAL and untested; check tracking against the MuJoCo backend")

    # ------------------------------------------------------------------ helpers
    def _t(self, x) -> object:
        return self._torch.as_tensor(np.asarray(x), dtype=self._torch.float32, device=self._dev)

    @staticmethod
    def _wxyz_to_xyzw(q):
        return q[..., [1, 2, 3, 0]]

    def _ids(self, env_ids):
        return list(range(self.num_envs)) if env_ids is None else [int(i) for i in env_ids]

    def _push_roots(self, ids) -> None:
        actor_ids = self._torch.as_tensor([self._actor_ids[s][e] for s in self.layout.sides for e in ids],
                                          dtype=self._torch.int32, device=self._dev)
        self.gym.set_actor_root_state_tensor_indexed(
            self.sim, self._gymtorch.unwrap_tensor(self._root), self._gymtorch.unwrap_tensor(actor_ids), len(actor_ids)
        )
        self.gym.set_dof_state_tensor_indexed(
            self.sim, self._gymtorch.unwrap_tensor(self._dof.view(-1, 2)), self._gymtorch.unwrap_tensor(actor_ids), len(actor_ids)
        )

    # ------------------------------------------------------------------ SimBackend
    def reset(self, env_ids=None) -> None:
        # the home state of the CPU MuJoCo twin (tested there): joints at 0 clipped into their range,
        # each hand at its scene home (two hands 30 cm apart, handx_robot.sim.scene.HOME_POSITIONS), as T_world_base
        ids = self._ids(env_ids)
        self._cpu.reset()
        home = self._cpu.read_state()
        sides = self.layout.sides
        self.set_state(ids, {s: np.repeat(home.qpos[s], len(ids), axis=0) for s in sides},
                       {s: np.zeros((len(ids), home.qpos[s].shape[1])) for s in sides},
                       {s: np.repeat(home.wrist_pose[s], len(ids), axis=0) for s in sides})

    def set_state(self, env_ids, qpos, qvel, wrist_pose, wrist_vel=None) -> None:
        torch = self._torch
        ids = self._ids(env_ids)
        idx = torch.as_tensor(ids, device=self._dev)
        for s in self.layout.sides:
            cols = self._dof_cols[s]
            self._dof[idx[:, None], cols[None], 0] = self._t(qpos[s])
            self._dof[idx[:, None], cols[None], 1] = self._t(qvel[s])
            pose = self._t(wrist_pose[s])
            actors = torch.as_tensor([self._actor_ids[s][e] for e in ids], device=self._dev)
            self._root[actors, 0:3] = pose[:, :3]
            self._root[actors, 3:7] = self._wxyz_to_xyzw(pose[:, 3:])
            self._root[actors, 7:13] = 0.0 if wrist_vel is None else self._t(wrist_vel[s])
            self._wrist_target[s][idx] = pose
            self._targets[idx[:, None], cols[None]] = self._t(qpos[s])
        self._unstable[idx] = False
        self._push_roots(ids)

    def set_targets(self, targets, wrist_targets, target_velocities=None) -> None:
        for s in self.layout.sides:
            h = self.layout.hands[s]
            act_cols = self._dof_cols[s][self._torch.as_tensor(h.actuated_index, device=self._dev)]
            self._targets[:, act_cols] = self._t(np.clip(targets[s], h.ctrl_lo, h.ctrl_hi))
            self._wrist_target[s] = self._t(wrist_targets[s])
        self.gym.set_dof_position_target_tensor(self.sim, self._gymtorch.unwrap_tensor(self._targets))

    def _wrist_wrench(self) -> None:
        torch = self._torch
        forces = torch.zeros(self._rb.shape[0], self._rb.shape[1], 3, device=self._dev)
        torques = torch.zeros_like(forces)
        cfg = self.config
        for s in self.layout.sides:
            b = self._base_rb[s]
            st = self._rb[:, b]
            tgt = self._wrist_target[s]
            m = self._mass[s]
            forces[:, b] = m * (cfg.wrist_kp * (tgt[:, :3] - st[:, :3]) - cfg.wrist_kd * st[:, 7:10])
            forces[:, b, 2] += m * 9.81
            q_xyzw = st[:, 3:7]
            q_t = self._wxyz_to_xyzw(tgt[:, 3:])
            # orientation error as the vector part of q_t * conj(q) (xyzw), sign-fixed
            x1, y1, z1, w1 = q_t.unbind(-1)
            x2, y2, z2, w2 = (-q_xyzw[:, 0], -q_xyzw[:, 1], -q_xyzw[:, 2], q_xyzw[:, 3])
            ex = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
            ey = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
            ez = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
            ew = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
            sign = torch.where(ew < 0, -1.0, 1.0)
            err = 2.0 * torch.stack([ex, ey, ez], -1) * sign[:, None]
            torques[:, b] = m * 0.01 * (cfg.wrist_kp * err - cfg.wrist_kd * st[:, 10:13])  # ~ 0.01 m^2 radius of gyration
        self.gym.apply_rigid_body_force_tensors(
            self.sim, self._gymtorch.unwrap_tensor(forces.view(-1, 3)), self._gymtorch.unwrap_tensor(torques.view(-1, 3)),
            self._gymapi.ENV_SPACE,
        )

    def step(self) -> None:
        for _ in range(self.layout.substeps):
            self.gym.refresh_rigid_body_state_tensor(self.sim)
            self._wrist_wrench()
            self.gym.simulate(self.sim)
            self.gym.fetch_results(self.sim, True)
        for fn in (self.gym.refresh_dof_state_tensor, self.gym.refresh_actor_root_state_tensor,
                   self.gym.refresh_rigid_body_state_tensor, self.gym.refresh_net_contact_force_tensor):
            fn(self.sim)
        self._unstable |= ~self._torch.isfinite(self._dof).all(dim=(1, 2))

    def read_state(self) -> SimState:
        def np_(x):
            return x.detach().cpu().numpy().astype(np.float64)

        qpos, qvel, wpose, wvel, tips = {}, {}, {}, {}, {}
        touching = []
        for s in self.layout.sides:
            cols = self._dof_cols[s]
            qpos[s], qvel[s] = np_(self._dof[:, cols, 0]), np_(self._dof[:, cols, 1])
            base = self._rb[:, self._base_rb[s]]
            pose = np_(base[:, :7])
            wpose[s] = np.concatenate([pose[:, :3], pose[:, [6, 3, 4, 5]]], axis=1)
            wvel[s] = np_(base[:, 7:13])
            tips[s] = np_(self._rb[:, self._tip_rb[s], :3])
            touching.append(np_(self._force[:, self._hand_rbs[s]].norm(dim=-1).max(dim=1).values) > self.config.contact_force_threshold)
        contact = np.zeros(self.num_envs, dtype=bool)
        if len(touching) == 2:
            centre = {s: tips[s].mean(axis=1) for s in self.layout.sides}
            near = np.linalg.norm(centre["left"] - centre["right"], axis=1) < 0.25
            contact = touching[0] & touching[1] & near
        return SimState(qpos, qvel, wpose, wvel, tips, contact, np.zeros(self.num_envs), np_(self._unstable).astype(bool))

    def kinematics(self, qpos, wrist_pose) -> KinematicsResult:
        return self._cpu.kinematics(qpos, wrist_pose)

    def close(self) -> None:
        self.gym.destroy_sim(self.sim)
        self._cpu.close()
