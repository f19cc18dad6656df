"""EXPERIMENTAL: an Isaac Gym (PhysX, GPU tensor API) backend for batched tracking envs.

Isaac Gym (Preview 4) is not on PyPI and needs an NVIDIA GPU, so this module has not been run here.
It is written against Isaac Gym's documented tensor API (``gymapi`` / ``gymtorch``) and statically
checked against the ``isaacgym-stubs`` package by ``scripts/typecheck_isaacgym.sh`` (method names,
argument counts, attribute names of ``gymapi``; ``gymtorch`` has no stub and is unchecked). ``isaacgym``
is imported only when the class is instantiated; :class:`IsaacGymConfig` and its validation need
nothing but MuJoCo and are tested. Everything above the backend
(:class:`handx_robot.sim.tracking.task.TrackingTask`) is backend-independent and tested on MuJoCo.

Model: one actor per hand per env, loaded from the hand's URDF (``HandModel.model_path``), free base.
The actor's root is the URDF root link, which is the base of
:class:`handx_robot.retarget.robot_motion.HandTrajectory` (``T_world_base``), so wrist poses go to and
come from the root state as they are; the MuJoCo backend's ``T_base_root`` offset comes from MuJoCo
merging a root link named ``world`` into its world body and has no counterpart here.
Fingers: PhysX position drives (``DOF_MODE_POS``) with the stiffness/damping of the MuJoCo scene's
gains at ``bandwidth_hz``. Wrist: a PD wrench on the base body toward the wrist target (gains
``wrist_kp`` / ``wrist_kd`` per unit mass) plus gravity compensation, standing in for MuJoCo's weld to
a mocap body. Floor: a ground plane at ``floor_height`` (none when None), like the MuJoCo scene's.

Collisions, as in the MuJoCo scene: each env is its own collision group; each hand's shapes carry
its own filter bit (:data:`COLLISION_FILTER`; PhysX skips pairs whose filters share a bit), so a hand
never collides with itself and the two hands collide with each other and with the floor.

Hand-hand contact and penetration depth (:attr:`SimState.hand_contact`, ``hand_hand_depth``) are
MuJoCo's answer on the PhysX state: Isaac Gym's tensor API has net contact forces per body but no
pairwise contact list, so envs where *both* hands feel a net contact force above
``contact_force_threshold`` N (necessary for a PhysX hand-hand touch: self-contacts are filtered
out, and only the floor could also push) are handed to the CPU MuJoCo twin's :meth:`kinematics`,
which finds hand-hand geom pairs and the deepest penetration exactly as the MuJoCo backend does
(negative contact distance, pairs of geoms of different hands). Other envs report no contact, depth 0.
The twin's geometry is MuJoCo's reading of the same URDFs, so a touch PhysX resolves within its
contact offset may be reported without penetration (depth 0, contact True) or, rarely, missed.

Other differences from the MuJoCo backend: reference kinematics (:meth:`kinematics`) run on the
twin; velocity feed-forward is not applied (PhysX drives take no feed-forward term); no rendering.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from handx_robot.sim.backends.base import BackendLayout, KinematicsResult, SimBackend, SimState, check_config
from handx_robot.sim.backends.mujoco_backend import MujocoBackend, MujocoBackendConfig

from handx_robot.errors import ConfigError, MissingDependencyError
from handx_robot.rotations import wxyz_to_xyzw, xyzw_to_wxyz

if TYPE_CHECKING:  # bound at run time by _import_isaacgym() (isaacgym must be imported before torch)
    import torch
    from handx_robot.sim.tracking.config import TrackingConfig
    from isaacgym import gymapi, gymtorch

__all__ = ["IsaacGymBackend", "IsaacGymConfig", "COLLISION_FILTER", "ground_plane_distance"]

log = logging.getLogger(__name__)

#: PhysX collision filter bits per hand (shapes whose filters share a bit do not collide): no
#: self-collision, the hands collide with each other; the MuJoCo scene's contype / conaffinity bits.
COLLISION_FILTER = {"left": 0b01, "right": 0b10}
#: standard gravity, m/s^2 (the wrist wrench compensates it)
GRAVITY = 9.81
#: squared radius of gyration of the hand base about its centre of mass, m^2 (wrist torque gains per unit mass)
BASE_GYRATION_SQ = 0.01


def _import_isaacgym() -> None:
    """Bind ``gymapi``, ``gymtorch`` and ``torch`` in this module (isaacgym first, as it requires)."""
    global gymapi, gymtorch, torch
    try:
        from isaacgym import gymapi, gymtorch  # noqa: I001  (isaacgym must be imported before torch)
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            f"the isaacgym backend needs NVIDIA Isaac Gym Preview 4 (not on PyPI) and a CUDA GPU ({exc}); "
            "use the 'mujoco' backend on the CPU"
        ) from exc


def ground_plane_distance(floor_height: float) -> float:
    """``PlaneParams.distance`` of a floor at ``floor_height`` (m, world z) with normal +z: PhysX planes
    are ``n . p + d = 0``, so ``d = -floor_height``."""
    return -float(floor_height)


@dataclasses.dataclass(frozen=True)
class IsaacGymConfig:
    """control_dt: env step, s; substeps: PhysX steps per env step (``physics_dt = control_dt / substeps``,
    the same limits as :class:`MujocoBackendConfig`: <= 0.01 s and ``2 pi bandwidth_hz physics_dt < 0.5``);
    bandwidth_hz: finger PD bandwidth (the MuJoCo scene's gains); floor_height: m or None (no ground
    plane); device: ``cuda:N`` (GPU pipeline) or ``cpu``; wrist_kp (1/s^2), wrist_kd (1/s): wrist PD
    gains per unit mass; spacing: m between envs; contact_force_threshold: N, net contact force that
    counts as touching (see the module docstring)."""

    control_dt: float = 1.0 / 30.0
    substeps: int = 6
    bandwidth_hz: float = 10.0
    floor_height: float | None = None
    device: str = "cuda:0"
    wrist_kp: float = 2000.0
    wrist_kd: float = 90.0
    spacing: float = 1.0
    contact_force_threshold: float = 0.05

    def __post_init__(self) -> None:
        for name in ("wrist_kp", "wrist_kd", "spacing", "contact_force_threshold"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"IsaacGymConfig.{name} must be a finite number > 0, got {v!r}")
        platform, _, index = str(self.device).partition(":")
        if platform not in ("cuda", "cpu") or (index and not index.isdigit()):
            raise ConfigError(f"IsaacGymConfig.device must be 'cuda', 'cuda:N' or 'cpu', got {self.device!r}")
        try:
            self.mujoco_twin()
        except ConfigError as exc:  # the same step limits as the MuJoCo scene the gains come from
            raise ConfigError(f"IsaacGymConfig: {exc}") from exc

    @classmethod
    def from_tracking(cls, tracking: TrackingConfig, *, control_dt: float,
                      view_center: tuple[float, float, float] | None = None, view_distance: float | None = None,
                      **overrides: Any) -> IsaacGymConfig:
        """The config of the tracking env's backend: ``substeps``, ``bandwidth_hz``, ``floor_height`` from
        ``tracking``, the step ``control_dt`` (s); ``overrides``: the other fields (``device``,
        ``wrist_kp`` ...). ``view_center`` / ``view_distance`` are accepted and unused (no renderer)."""
        return cls(control_dt=control_dt, substeps=tracking.substeps, bandwidth_hz=tracking.bandwidth_hz,
                   floor_height=tracking.floor_height, **overrides)

    @property
    def gpu_index(self) -> int:
        """CUDA device index (0 for ``cuda`` and ``cpu``)."""
        _, _, index = self.device.partition(":")
        return int(index or 0)

    def mujoco_twin(self) -> MujocoBackendConfig:
        """The CPU MuJoCo twin's config (names, limits, gains at ``bandwidth_hz``, home pose, reference
        kinematics and hand-hand depth): the same step, substeps, bandwidth and floor."""
        return MujocoBackendConfig(control_dt=self.control_dt, substeps=self.substeps, bandwidth_hz=self.bandwidth_hz,
                                   floor_height=self.floor_height)


class IsaacGymBackend(SimBackend):
    """``num_envs`` envs in one PhysX simulation (GPU pipeline on ``cuda``). EXPERIMENTAL, see the module
    docstring. ``config``: an :class:`IsaacGymConfig` (None: defaults; another type raises ConfigError)."""

    config_class = IsaacGymConfig

    def __init__(self, hands: Mapping[str, Any] | Sequence[Any], num_envs: int = 1024, config: IsaacGymConfig | None = None):
        self.config = cfg = check_config(type(self).__name__, config, IsaacGymConfig)
        if int(num_envs) < 1:
            raise ConfigError(f"IsaacGymBackend: num_envs must be >= 1, got {num_envs}")
        _import_isaacgym()
        hand_list = list(hands.values()) if isinstance(hands, Mapping) else list(hands)
        bad = [h.robot_id for h in hand_list if h.model_format != "urdf"]
        if bad:
            raise ConfigError(f"the isaacgym backend loads URDF hands only; {bad} are MJCF")
        # CPU MuJoCo twin: names, limits, gains, fingertips, home, reference kinematics, hand-hand depth
        self._cpu = MujocoBackend(hand_list, 1, cfg.mujoco_twin())
        self.layout = BackendLayout(self._cpu.layout.hands, cfg.control_dt, cfg.substeps)
        self.num_envs = int(num_envs)
        self._dev = torch.device(cfg.device)
        self.gym: gymapi.Gym = gymapi.acquire_gym()
        self.sim: gymapi.Sim = self._create_sim()
        if cfg.floor_height is not None:
            plane = gymapi.PlaneParams()
            plane.normal = gymapi.Vec3(0.0, 0.0, 1.0)
            plane.distance = ground_plane_distance(cfg.floor_height)
            self.gym.add_ground(self.sim, plane)
        self._create_envs(hand_list)
        self.gym.prepare_sim(self.sim)
        self._acquire_tensors()
        self._index_hands()
        log.warning("IsaacGymBackend is EXPERIMENTAL and has not been run; check tracking against the MuJoCo backend")

    # ------------------------------------------------------------------ construction
    def _create_sim(self) -> gymapi.Sim:
        cfg = self.config
        sp = gymapi.SimParams()
        sp.dt = cfg.control_dt / cfg.substeps
        sp.substeps = 1
        sp.up_axis = gymapi.UP_AXIS_Z
        sp.gravity = gymapi.Vec3(0.0, 0.0, -GRAVITY)
        sp.use_gpu_pipeline = cfg.device.startswith("cuda")
        sp.physx.use_gpu = sp.use_gpu_pipeline
        sp.physx.num_position_iterations = 8
        sp.physx.num_velocity_iterations = 0
        sim = self.gym.create_sim(cfg.gpu_index, -1, gymapi.SIM_PHYSX, sp)
        if sim is None:
            raise MissingDependencyError("Isaac Gym could not create a PhysX simulation on " + cfg.device)
        return sim

    def _load_hand(self, hand: Any) -> tuple[gymapi.Asset, np.ndarray]:
        """The hand's URDF asset and its DOF properties with the twin's PD gains."""
        opt = gymapi.AssetOptions()
        opt.fix_base_link = False
        opt.disable_gravity = False
        opt.default_dof_drive_mode = int(gymapi.DOF_MODE_POS)  # the property is an int
        asset = self.gym.load_asset(self.sim, str(hand.model_path.parent), hand.model_path.name, opt)
        gains = self._cpu.scene.gains(hand.side)
        props = self.gym.get_asset_dof_properties(asset)
        for i, name in enumerate(self.gym.get_asset_dof_names(asset)):
            if name in gains:
                props["stiffness"][i], props["damping"][i] = gains[name]
        return asset, props

    def _create_envs(self, hand_list: Sequence[Any]) -> None:
        """One env per batch row (its own collision group), one actor per hand with its filter bit."""
        cfg, sides = self.config, self.layout.sides
        loaded = {h.side: self._load_hand(h) for h in hand_list}
        self._actor_ids: dict[str, list[int]] = {s: [] for s in sides}
        lower = gymapi.Vec3(-cfg.spacing, -cfg.spacing, 0.0)
        upper = gymapi.Vec3(cfg.spacing, cfg.spacing, cfg.spacing)
        per_row = int(np.sqrt(self.num_envs)) or 1
        self.envs: list[gymapi.Env] = []
        for e in range(self.num_envs):
            env = self.gym.create_env(self.sim, lower, upper, per_row)
            self.envs.append(env)
            for s in sides:
                asset, props = loaded[s]
                actor = self.gym.create_actor(env, asset, gymapi.Transform(), f"{s}_hand", e, COLLISION_FILTER[s])
                self.gym.set_actor_dof_properties(env, actor, props)
                self._actor_ids[s].append(self.gym.get_actor_index(env, actor, gymapi.DOMAIN_SIM))

    def _acquire_tensors(self) -> None:
        g, sim, B = self.gym, self.sim, self.num_envs
        self._root = gymtorch.wrap_tensor(g.acquire_actor_root_state_tensor(sim))  # (actors, 13) xyz, quat xyzw, v, w
        self._dof = gymtorch.wrap_tensor(g.acquire_dof_state_tensor(sim)).view(B, -1, 2)
        self._rb = gymtorch.wrap_tensor(g.acquire_rigid_body_state_tensor(sim)).view(B, -1, 13)
        self._force = gymtorch.wrap_tensor(g.acquire_net_contact_force_tensor(sim)).view(B, -1, 3)
        self._targets = torch.zeros(B, self._dof.shape[1], device=self._dev)
        self._wrist_target = {s: torch.zeros(B, 7, device=self._dev) for s in self.layout.sides}
        self._unstable = torch.zeros(B, dtype=torch.bool, device=self._dev)

    def _index_hands(self) -> None:
        """Per side, by name: DOF columns and rigid-body rows within an env, and the hand's mass (kg)."""
        g, env0, dev = self.gym, self.envs[0], self._dev
        self._dof_cols: dict[str, torch.Tensor] = {}
        self._tip_rb: dict[str, torch.Tensor] = {}
        self._hand_rbs: dict[str, torch.Tensor] = {}
        self._base_rb: dict[str, int] = {}
        self._mass: dict[str, float] = {}
        for s in self.layout.sides:
            h = self.layout.hands[s]
            actor = g.find_actor_handle(env0, f"{s}_hand")
            dof_dict = g.get_actor_dof_dict(env0, actor)
            missing = [n for n in h.joint_names if n not in dof_dict]
            if missing:
                raise ConfigError(f"isaacgym: {s} hand URDF lacks joints {missing} of the MuJoCo model")
            self._dof_cols[s] = torch.as_tensor(
                [g.find_actor_dof_index(env0, actor, n, gymapi.DOMAIN_ENV) for n in h.joint_names], device=dev)
            self._tip_rb[s] = torch.as_tensor(
                [g.find_actor_rigid_body_index(env0, actor, n, gymapi.DOMAIN_ENV) for n in h.fingertips], device=dev)
            root_link = g.get_actor_rigid_body_names(env0, actor)[0]
            self._base_rb[s] = g.find_actor_rigid_body_index(env0, actor, root_link, gymapi.DOMAIN_ENV)
            n_rb = g.get_actor_rigid_body_count(env0, actor)
            self._hand_rbs[s] = torch.arange(self._base_rb[s], self._base_rb[s] + n_rb, device=dev)
            self._mass[s] = float(sum(p.mass for p in g.get_actor_rigid_body_properties(env0, actor)))

    # ------------------------------------------------------------------ helpers
    def _t(self, x: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self._dev)

    def _ids(self, env_ids: Sequence[int] | None) -> list[int]:
        ids = list(range(self.num_envs)) if env_ids is None else [int(i) for i in env_ids]
        bad = [i for i in ids if not 0 <= i < self.num_envs]
        if bad:
            raise ConfigError(f"env ids {bad} out of range [0, {self.num_envs})")
        return ids

    def _push_roots(self, ids: list[int]) -> None:
        actor_ids = torch.as_tensor([self._actor_ids[s][e] for s in self.layout.sides for e in ids],
                                    dtype=torch.int32, device=self._dev)
        index = gymtorch.unwrap_tensor(actor_ids)
        self.gym.set_actor_root_state_tensor_indexed(self.sim, gymtorch.unwrap_tensor(self._root), index, len(actor_ids))
        self.gym.set_dof_state_tensor_indexed(self.sim, gymtorch.unwrap_tensor(self._dof.view(-1, 2)), index, len(actor_ids))

    # ------------------------------------------------------------------ SimBackend
    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        # the home state of the CPU MuJoCo twin (tested there): joints at 0 clipped into their range,
        # each hand at its scene home (handx_robot.sim.scene.HOME_POSITIONS), as T_world_base
        ids = self._ids(env_ids)
        self._cpu.reset()
        home = self._cpu.read_state()
        sides = self.layout.sides
        self.set_state(ids, {s: np.repeat(home.qpos[s], len(ids), axis=0) for s in sides},
                       {s: np.zeros((len(ids), home.qpos[s].shape[1])) for s in sides},
                       {s: np.repeat(home.wrist_pose[s], len(ids), axis=0) for s in sides})

    def set_state(self, env_ids, qpos, qvel, wrist_pose, wrist_vel=None) -> None:
        ids = self._ids(env_ids)
        idx = torch.as_tensor(ids, device=self._dev)
        for s in self.layout.sides:
            cols = self._dof_cols[s]
            self._dof[idx[:, None], cols[None], 0] = self._t(qpos[s])
            self._dof[idx[:, None], cols[None], 1] = self._t(qvel[s])
            pose = self._t(wrist_pose[s])
            actors = torch.as_tensor([self._actor_ids[s][e] for e in ids], device=self._dev)
            self._root[actors, 0:3] = pose[:, :3]
            self._root[actors, 3:7] = wxyz_to_xyzw(pose[:, 3:])
            self._root[actors, 7:13] = 0.0 if wrist_vel is None else self._t(wrist_vel[s])
            self._wrist_target[s][idx] = pose
            self._targets[idx[:, None], cols[None]] = self._t(qpos[s])
        self._unstable[idx] = False
        self._push_roots(ids)

    def set_targets(self, targets, wrist_targets, target_velocities=None) -> None:
        for s in self.layout.sides:
            h = self.layout.hands[s]
            act_cols = self._dof_cols[s][torch.as_tensor(h.actuated_index, device=self._dev)]
            self._targets[:, act_cols] = self._t(np.clip(targets[s], h.ctrl_lo, h.ctrl_hi))
            self._wrist_target[s] = self._t(wrist_targets[s])
        self.gym.set_dof_position_target_tensor(self.sim, gymtorch.unwrap_tensor(self._targets))

    def _wrist_wrench(self) -> None:
        """PD force and torque on each hand's base toward its wrist target, plus gravity compensation."""
        forces = torch.zeros(self._rb.shape[0], self._rb.shape[1], 3, device=self._dev)
        torques = torch.zeros_like(forces)
        cfg = self.config
        for s in self.layout.sides:
            b, m = self._base_rb[s], self._mass[s]
            st, tgt = self._rb[:, b], self._wrist_target[s]
            forces[:, b] = m * (cfg.wrist_kp * (tgt[:, :3] - st[:, :3]) - cfg.wrist_kd * st[:, 7:10])
            forces[:, b, 2] += m * GRAVITY
            # orientation error: vector part of q_target * conj(q) (xyzw), sign-fixed to the short arc
            x1, y1, z1, w1 = wxyz_to_xyzw(tgt[:, 3:]).unbind(-1)
            q = st[:, 3:7]
            x2, y2, z2, w2 = -q[:, 0], -q[:, 1], -q[:, 2], q[:, 3]
            ex = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
            ey = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
            ez = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
            ew = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
            sign = torch.where(ew < 0, -1.0, 1.0)
            err = 2.0 * torch.stack([ex, ey, ez], -1) * sign[:, None]
            torques[:, b] = m * BASE_GYRATION_SQ * (cfg.wrist_kp * err - cfg.wrist_kd * st[:, 10:13])
        self.gym.apply_rigid_body_force_tensors(
            self.sim, gymtorch.unwrap_tensor(forces.view(-1, 3)), gymtorch.unwrap_tensor(torques.view(-1, 3)),
            gymapi.ENV_SPACE,
        )

    def step(self) -> None:
        g = self.gym
        for _ in range(self.layout.substeps):
            g.refresh_rigid_body_state_tensor(self.sim)
            self._wrist_wrench()
            g.simulate(self.sim)
            g.fetch_results(self.sim, True)
        g.refresh_dof_state_tensor(self.sim)
        g.refresh_actor_root_state_tensor(self.sim)
        g.refresh_rigid_body_state_tensor(self.sim)
        g.refresh_net_contact_force_tensor(self.sim)
        self._unstable |= ~torch.isfinite(self._dof).reshape(self.num_envs, -1).all(dim=1)

    def _hand_contact(self, qpos: Mapping[str, np.ndarray], wpose: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(B,) hand-hand contact and deepest penetration (m): the twin's MuJoCo collision on the envs
        where both hands feel a net contact force (see the module docstring)."""
        contact, depth = np.zeros(self.num_envs, dtype=bool), np.zeros(self.num_envs)
        if len(self.layout.sides) < 2:
            return contact, depth
        thr = self.config.contact_force_threshold
        pushed = [self._force[:, self._hand_rbs[s]].norm(dim=-1).amax(dim=1) > thr for s in self.layout.sides]
        flagged = np.flatnonzero((pushed[0] & pushed[1]).cpu().numpy())
        if len(flagged):
            kin = self._cpu.kinematics({s: qpos[s][flagged] for s in qpos}, {s: wpose[s][flagged] for s in wpose})
            contact[flagged], depth[flagged] = kin.hand_contact, kin.hand_hand_depth
        return contact, depth

    def read_state(self) -> SimState:
        def np_(x: torch.Tensor) -> np.ndarray:
            return x.detach().cpu().numpy().astype(np.float64)

        qpos, qvel, wpose, wvel, tips = {}, {}, {}, {}, {}
        for s in self.layout.sides:
            cols = self._dof_cols[s]
            qpos[s], qvel[s] = np_(self._dof[:, cols, 0]), np_(self._dof[:, cols, 1])
            base = np_(self._rb[:, self._base_rb[s]])
            wpose[s] = np.concatenate([base[:, :3], xyzw_to_wxyz(base[:, 3:7])], axis=1)
            wvel[s] = base[:, 7:13]
            tips[s] = np_(self._rb[:, self._tip_rb[s], :3])
        contact, depth = self._hand_contact(qpos, wpose)
        return SimState(qpos, qvel, wpose, wvel, tips, contact, depth, self._unstable.cpu().numpy().astype(bool))

    def kinematics(self, qpos, wrist_pose) -> KinematicsResult:
        return self._cpu.kinematics(qpos, wrist_pose)

    def close(self) -> None:
        self.gym.destroy_sim(self.sim)
        self._cpu.close()
