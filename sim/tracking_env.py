"""``HandXTracking-v0``: physics tracking of robot hand motions with residual PD targets (Gymnasium).

``import handx_robot`` registers ``HandXTracking-v0`` (entry point ``handx_robot.sim.tracking_env:HandXTrackingEnv``)::

    import gymnasium as gym
    import handx_robot  # noqa: F401  (registers the id)
    env = gym.make("HandXTracking-v0", motions=["clap.npz", "pinch.npz"])

The env logic is written once, batched over ``B`` envs, in :class:`TrackingTask` (reference bank,
observations, residual targets, rewards, termination) on top of a :class:`handx_robot.sim.backends.SimBackend`;
:class:`HandXTrackingEnv` is its single-env Gymnasium face, :class:`HandXTrackingVecEnv` the batched one
(``num_envs`` envs on one backend: MuJoCo on the CPU, or MJX, jit-compiled and vmapped).

Units: rad (m for slide joints), m, s, world frame Z-up; quaternions ``wxyz``. ``T_world_base`` is the
pose of a hand's model root (the "wrist" of :class:`handx_robot.retarget.robot_motion.HandTrajectory`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from handx_robot.retarget.robot_motion import RobotMotion, load_robot_motion
from handx_robot.sim.backends.base import BackendLayout, SimBackend, SimState
from handx_robot.sim.metrics import quat_angle
from handx_robot.sim.scene import quat_mul

from handx_robot import TRACKING_ENV_ID
from handx_robot.errors import ConfigError, MotionFormatError, MotionValueError

__all__ = [
    "ENV_ID",
    "TrackingConfig",
    "TrackingTask",
    "ReferenceBank",
    "HandXTrackingEnv",
    "HandXTrackingVecEnv",
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

log = logging.getLogger(__name__)

ENV_ID = TRACKING_ENV_ID
#: version of the observation / action layout; stored with policies
LAYOUT_VERSION = 1


class RobotMismatchError(ConfigError):
    """A motion, policy or backend was made for other robots, sides or layout than the env's."""


# ----------------------------------------------------------------------------------------- quaternions
def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (inverse of a unit quaternion), ``(..., 4)`` wxyz."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_from_rotvec(v: np.ndarray) -> np.ndarray:
    """``(..., 3)`` rotation vectors (rad) -> ``(..., 4)`` unit quaternions wxyz."""
    v = np.asarray(v, dtype=np.float64)
    th = np.sqrt((v * v).sum(axis=-1))
    out = np.empty(v.shape[:-1] + (4,))
    out[..., 0] = np.cos(0.5 * th)
    small = th < 1e-6
    k = np.sin(0.5 * th) / np.where(small, 1.0, th)
    out[..., 1:] = v * np.where(small, 0.5, k)[..., None]
    return out


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` unit quaternions wxyz -> ``(..., 3)`` rotation vectors (rad, angle in [0, pi])."""
    q = np.asarray(q, dtype=np.float64)
    w = np.abs(q[..., 0])
    xyz = q[..., 1:] * np.where(q[..., 0] < 0, -1.0, 1.0)[..., None]
    s = np.sqrt((xyz * xyz).sum(axis=-1))
    small = s < 1e-9
    k = np.where(small, 2.0, 2.0 * np.arctan2(s, w) / np.where(small, 1.0, s))
    return xyz * k[..., None]


# --------------------------------------------------------------------------------------------- config
@dataclasses.dataclass(frozen=True)
class TrackingConfig:
    """Options of the tracking task (SI units). Override with ``dataclasses.replace``.

    horizon:                   K, reference frames ahead in the observation (>= 1).
    finger_action_scale:       rad per unit action on each actuated joint target.
    wrist_pos_action_scale:    m per unit action on each wrist-target axis.
    wrist_rot_action_scale:    rad per unit action on each wrist-target rotation-vector axis (world).
    sigma_joint, sigma_tip, sigma_wrist_pos, sigma_wrist_rot: widths of the exponential kernels
                               (rad, m, m, rad).
    w_joint, w_tip, w_wrist, w_contact, w_smooth: reward weights.
    terminate_tip_error:       m, mean fingertip error that counts as "lost".
    terminate_wrist_error:     m, mean wrist position error that counts as "lost".
    terminate_after_s:         s, how long "lost" must last to end the episode.
    random_start:              start episodes at a uniformly random frame (else frame 0).
    episode_frames:            at most this many steps per episode (None: until the clip ends).
    velocity_feedforward:      feed the reference joint velocity forward (``(kv + damping) qdot_ref``).
    substeps, bandwidth_hz, floor_height: MuJoCo backend options (:class:`MujocoBackendConfig`).
    """

    horizon: int = 3
    finger_action_scale: float = 0.2
    wrist_pos_action_scale: float = 0.01
    wrist_rot_action_scale: float = 0.1
    sigma_joint: float = 0.15
    sigma_tip: float = 0.015
    sigma_wrist_pos: float = 0.015
    sigma_wrist_rot: float = 0.15
    w_joint: float = 0.2
    w_tip: float = 0.4
    w_wrist: float = 0.2
    w_contact: float = 0.1
    w_smooth: float = 0.1
    terminate_tip_error: float = 0.04
    terminate_wrist_error: float = 0.05
    terminate_after_s: float = 0.2
    random_start: bool = True
    episode_frames: int | None = None
    velocity_feedforward: bool = True
    substeps: int = 6
    bandwidth_hz: float = 10.0
    floor_height: float | None = None

    def __post_init__(self) -> None:
        if int(self.horizon) < 1:
            raise ConfigError(f"TrackingConfig.horizon must be >= 1, got {self.horizon!r}")
        positive = (
            "finger_action_scale", "wrist_pos_action_scale", "wrist_rot_action_scale", "sigma_joint", "sigma_tip",
            "sigma_wrist_pos", "sigma_wrist_rot", "terminate_tip_error", "terminate_wrist_error", "terminate_after_s",
        )
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"TrackingConfig.{name} must be a finite number > 0, got {v!r}")
        for name in ("w_joint", "w_tip", "w_wrist", "w_contact", "w_smooth"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"TrackingConfig.{name} must be a finite number >= 0, got {v!r}")
        if self.episode_frames is not None and int(self.episode_frames) < 1:
            raise ConfigError(f"TrackingConfig.episode_frames must be >= 1 or None, got {self.episode_frames!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackingConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"TrackingConfig: unknown fields {unknown}; fields: {sorted(names)}")
        return cls(**dict(data))


# --------------------------------------------------------------------------------------------- motions
def load_motions(motions: RobotMotion | str | os.PathLike | Sequence[RobotMotion | str | os.PathLike]) -> list[tuple[str, RobotMotion]]:
    """``[(name, motion)]`` from motions and/or robot-motion ``.npz`` paths; errors name the missing file."""
    if isinstance(motions, (RobotMotion, str, os.PathLike)):
        motions = [motions]
    out = []
    for i, item in enumerate(motions):
        if isinstance(item, RobotMotion):
            out.append((f"motion{i}", item))
            continue
        path = Path(item)
        if not path.is_file():
            raise MotionFormatError(
                f"{path}: robot motion file not found (motions[{i}]); give .npz files written by "
                "`handx-robot retarget`"
            )
        out.append((str(path), load_robot_motion(path)))
    if not out:
        raise ConfigError("the tracking env needs at least one robot motion (--motions FILE ...)")
    return out


@dataclasses.dataclass(frozen=True)
class Field:
    """One named block of a flat vector: ``vec[start : start + size]``."""

    name: str
    start: int
    size: int
    unit: str
    description: str

    @property
    def stop(self) -> int:
        return self.start + self.size


class ReferenceBank:
    """The reference clips, padded to ``(C, T_max, ...)`` arrays so batched envs index them by
    ``(clip, frame)``; hands concatenated in :attr:`sides` order (columns of each hand: :attr:`joint_slice`,
    :attr:`act_slice`, :attr:`tip_slice`).

    q, qd:             (C, T, N) all joints, rad / rad/s (finite differences).
    target, target_vel: (C, T, A) actuated joints, clipped into the joint range / rad/s.
    wrist:             (C, T, S, 7) ``T_world_base`` per hand; wrist_vel (C, T, S, 6) m/s, rad/s world.
    tips:              (C, T, Ktot, 3) kinematic fingertips, m world.
    contact:           (C, T) bool hand-hand contact of the kinematic reference.
    lengths:           (C,) frames per clip; frames past a clip's end repeat its last frame.
    """

    def __init__(self, motions: Sequence[tuple[str, RobotMotion]], backend: SimBackend):
        layout = backend.layout
        self.sides = layout.sides
        self.names = [n for n, _ in motions]
        self.lengths = np.array([m.num_frames for _, m in motions], dtype=np.int64)
        if np.any(self.lengths < 2):
            bad = [n for (n, _), L in zip(motions, self.lengths) if L < 2]
            raise MotionValueError(f"{bad}: a tracked motion needs at least 2 frames")
        control_fps = 1.0 / layout.control_dt
        off = {n: m.fps for n, m in motions if abs(m.fps - control_fps) > 1e-6 * control_fps}
        if off:
            raise ConfigError(
                f"motions {sorted(off)} have fps {sorted(set(off.values()))}, the env steps at {control_fps:g} fps; "
                "use motions of one frame rate (resample them) or build the env at their fps"
            )
        self.joint_slice, self.act_slice, self.tip_slice = {}, {}, {}
        act_in_joint, lo, hi = [], [], []
        nj = na = nk = 0
        for s in self.sides:
            h = layout.hands[s]
            n, a, k = len(h.joint_names), len(h.actuated), len(h.fingertips)
            self.joint_slice[s], self.act_slice[s], self.tip_slice[s] = slice(nj, nj + n), slice(na, na + a), slice(nk, nk + k)
            act_in_joint.append(nj + h.actuated_index)
            lo.append(h.ctrl_lo)
            hi.append(h.ctrl_hi)
            nj, na, nk = nj + n, na + a, nk + k
        self.act_in_joint = np.concatenate(act_in_joint)
        self.ctrl_lo, self.ctrl_hi = np.concatenate(lo), np.concatenate(hi)
        C, Tm, S = len(motions), int(self.lengths.max()), len(self.sides)
        self.q, self.qd = np.zeros((C, Tm, nj)), np.zeros((C, Tm, nj))
        self.target, self.target_vel = np.zeros((C, Tm, na)), np.zeros((C, Tm, na))
        self.wrist, self.wrist_vel = np.zeros((C, Tm, S, 7)), np.zeros((C, Tm, S, 6))
        self.tips = np.zeros((C, Tm, nk, 3))
        self.contact = np.zeros((C, Tm), dtype=bool)
        dt = layout.control_dt
        for c, (name, motion) in enumerate(motions):
            T = motion.num_frames
            q_side, w_side = {}, {}
            for i, s in enumerate(self.sides):
                q = _model_columns(name, motion, s, layout.hands[s])
                w = motion.hands[s].wrist_pose.copy()
                norm = np.linalg.norm(w[:, 3:], axis=1, keepdims=True)
                if np.any(norm < 1e-6):
                    raise MotionValueError(f"{name}: {s} wrist quaternion is zero at frame {int(np.argmin(norm))}")
                w[:, 3:] /= norm
                for t in range(1, T):  # one hemisphere, so differences are short arcs
                    if w[t, 3:] @ w[t - 1, 3:] < 0:
                        w[t, 3:] *= -1
                wv = np.zeros((T, 6))
                wv[:, :3] = np.gradient(w[:, :3], dt, axis=0)
                ang = quat_to_rotvec(quat_mul(w[1:, 3:], quat_conj(w[:-1, 3:]))) / dt
                wv[1:, 3:], wv[0, 3:] = ang, ang[0]
                self.q[c, :T, self.joint_slice[s]] = q
                self.qd[c, :T, self.joint_slice[s]] = np.gradient(q, dt, axis=0)
                self.wrist[c, :T, i], self.wrist_vel[c, :T, i] = w, wv
                q_side[s], w_side[s] = q, w
            self.target[c, :T] = np.clip(self.q[c, :T][:, self.act_in_joint], self.ctrl_lo, self.ctrl_hi)
            self.target_vel[c, :T] = self.qd[c, :T][:, self.act_in_joint]
            out = (self.q[c, :T][:, self.act_in_joint] < self.ctrl_lo - 1e-3) | (self.q[c, :T][:, self.act_in_joint] > self.ctrl_hi + 1e-3)
            if out.any():
                log.warning("%s: reference joints outside the joint range in %d frames (targets clipped)", name, int(out.any(axis=1).sum()))
            kin = backend.kinematics(q_side, w_side)
            for s in self.sides:
                self.tips[c, :T, self.tip_slice[s]] = kin.fingertips[s]
            self.contact[c, :T] = kin.hand_contact
            for arr in (self.q, self.qd, self.target, self.target_vel, self.wrist, self.wrist_vel, self.tips, self.contact):
                arr[c, T:] = arr[c, T - 1]

    @property
    def num_clips(self) -> int:
        return len(self.names)


def _model_columns(name: str, motion: RobotMotion, side: str, hand) -> np.ndarray:
    """(T, n) the motion's joints in the model's order, mimic followers filled from their leaders."""
    traj = motion.hands[side]
    missing = [n for n in hand.joint_names if n not in traj.joint_names and n not in hand.mimic]
    extra = [n for n in traj.joint_names if n not in hand.joint_names]
    if missing or extra:
        raise RobotMismatchError(
            f"{name}: the {side} hand's joints do not match robot '{hand.robot_id}': model joints missing "
            f"from the motion: {missing}; motion joints the model lacks: {extra}. Retarget the motion for "
            f"'{hand.robot_id}' or build the env for '{traj.robot}'."
        )
    return traj.model_qpos(hand.joint_names, hand.mimic)


# ----------------------------------------------------------------------------------------------- task
class TrackingTask:
    """Backend-independent tracking logic, batched over the backend's ``B`` envs.

    Per-env episode state: ``clip`` (B,), ``frame`` (B,) (the reference frame the state should match),
    ``steps`` (B,), ``lost`` (B,) consecutive "lost" frames, ``prev_action`` (B, act_dim).
    Observation and action vectors are grouped by quantity, each group by hand (``left`` then ``right``).
    """

    def __init__(self, backend: SimBackend, bank: ReferenceBank, config: TrackingConfig):
        self.backend, self.bank, self.config = backend, bank, config
        self.layout: BackendLayout = backend.layout
        self.sides = self.layout.sides
        B = backend.num_envs
        self.clip = np.zeros(B, dtype=np.int64)
        self.frame = np.zeros(B, dtype=np.int64)
        self.steps = np.zeros(B, dtype=np.int64)
        self.lost = np.zeros(B, dtype=np.int64)
        self.obs_fields, self.act_fields = self._build_layouts()
        self.obs_dim = self.obs_fields[-1].stop
        self.act_dim = self.act_fields[-1].stop
        self.prev_action = np.zeros((B, self.act_dim))
        self._sustain = max(1, int(round(config.terminate_after_s / self.layout.control_dt)))
        self._groups_obs = self._group_slices(self.obs_fields)
        self._groups_act = self._group_slices(self.act_fields)
        self._kk = np.arange(1, config.horizon + 1)[None]
        self._hand_of_tip = np.concatenate(
            [np.full(bank.tip_slice[s].stop - bank.tip_slice[s].start, i) for i, s in enumerate(self.sides)]
        )

    # ---------------------------------------------------------------- layouts
    def _build_layouts(self) -> tuple[tuple[Field, ...], tuple[Field, ...]]:
        K, S = self.config.horizon, self.sides
        H = {s: self.layout.hands[s] for s in S}
        n = {s: len(H[s].joint_names) for s in S}
        a = {s: len(H[s].actuated) for s in S}
        k = {s: len(H[s].fingertips) for s in S}
        obs = [
            *[(f"{s}_q", n[s], "rad", f"joint positions ({', '.join(H[s].joint_names)})") for s in S],
            *[(f"{s}_qd", n[s], "rad/s", "joint velocities") for s in S],
            *[(f"{s}_wrist_pos", 3, "m", "wrist position (T_world_base), world") for s in S],
            *[(f"{s}_wrist_quat", 4, "1", "wrist orientation wxyz (w >= 0), world") for s in S],
            *[(f"{s}_wrist_vel", 6, "m/s, rad/s", "wrist linear and angular velocity, world") for s in S],
            *[(f"{s}_tips", 3 * k[s], "m", f"fingertips minus wrist position, world axes ({', '.join(H[s].fingertips)})") for s in S],
            *[(f"{s}_tip_err", 3 * k[s], "m", "reference fingertips (frame t) minus simulated, world") for s in S],
            *[(f"ref{j}_{s}_dq", a[s], "rad", f"reference actuated joints at t+{j} minus current") for j in range(1, K + 1) for s in S],
            *[(f"ref{j}_{s}_dpos", 3, "m", f"reference wrist position at t+{j} minus current, world") for j in range(1, K + 1) for s in S],
            *[(f"ref{j}_{s}_drot", 3, "rad", f"rotation vector current -> reference wrist at t+{j}, world") for j in range(1, K + 1) for s in S],
            ("contact", 1, "0/1", "simulated hand-hand contact"),
            ("ref_contact", K, "0/1", "reference hand-hand contact at t+1..t+K"),
            ("phase", 1, "1", "frame / (clip frames - 1)"),
        ]
        cfg = self.config
        act = [
            *[(f"{s}_dq", a[s], f"x{cfg.finger_action_scale:g} rad", "residual on each actuated joint target") for s in S],
            *[(f"{s}_dpos", 3, f"x{cfg.wrist_pos_action_scale:g} m", "residual on the wrist target position, world") for s in S],
            *[(f"{s}_drot", 3, f"x{cfg.wrist_rot_action_scale:g} rad", "residual wrist rotation vector, world") for s in S],
        ]

        def fields(items):
            out, i = [], 0
            for name, size, unit, desc in items:
                out.append(Field(name, i, size, unit, desc))
                i += size
            return tuple(out)

        return fields(obs), fields(act)

    def _group_slices(self, fields: Sequence[Field]) -> dict[str, slice]:
        """Contiguous slice of each quantity over all hands (and horizon steps): ``q``, ``dq``, ``drot``..."""
        groups: dict[str, list[Field]] = {}
        for f in fields:
            parts = f.name.split("_")
            if parts[0].startswith("ref") and parts[0][3:].isdigit():
                key = "ref_" + "_".join(parts[2:])
            elif parts[0] in self.sides:
                key = "_".join(parts[1:])
            else:
                key = f.name
            groups.setdefault(key, []).append(f)
        out = {}
        for key, fs in groups.items():
            if any(fs[i].stop != fs[i + 1].start for i in range(len(fs) - 1)):
                raise AssertionError(f"layout group {key} is not contiguous")
            out[key] = slice(fs[0].start, fs[-1].stop)
        return out

    def signature(self) -> dict:
        """What a policy depends on: robots per side, K, control rate, observation/action layouts."""
        return {
            "layout_version": LAYOUT_VERSION,
            "robots": {s: self.layout.hands[s].robot_id for s in self.sides},
            "horizon": int(self.config.horizon),
            "control_dt": float(self.layout.control_dt),
            "obs_fields": [[f.name, f.size] for f in self.obs_fields],
            "act_fields": [[f.name, f.size] for f in self.act_fields],
            "action_scales": [
                self.config.finger_action_scale, self.config.wrist_pos_action_scale, self.config.wrist_rot_action_scale
            ],
        }

    def table(self, which: str = "obs") -> str:
        """The observation (``obs``) or action (``act``) layout: index range, name, unit, meaning."""
        rows = self.obs_fields if which == "obs" else self.act_fields
        lines = [f"{'index':>9}  {'name':<18} {'unit':<14} meaning"]
        for f in rows:
            lines.append(f"{f.start:>4}-{f.stop - 1:<4}  {f.name:<18} {f.unit:<14} {f.description}")
        return "\n".join(lines)

    # ---------------------------------------------------------------- state helpers
    def _flat(self, st: SimState) -> tuple[np.ndarray, ...]:
        """(q (B, N), qd (B, N), wrist (B, S, 7), wrist_vel (B, S, 6), tips (B, Ktot, 3)) of a state."""
        S = self.sides
        if len(S) == 1:
            s = S[0]
            return st.qpos[s], st.qvel[s], st.wrist_pose[s][:, None], st.wrist_vel[s][:, None], st.fingertips[s]
        return (
            np.concatenate([st.qpos[s] for s in S], axis=1),
            np.concatenate([st.qvel[s] for s in S], axis=1),
            np.stack([st.wrist_pose[s] for s in S], axis=1),
            np.stack([st.wrist_vel[s] for s in S], axis=1),
            np.concatenate([st.fingertips[s] for s in S], axis=1),
        )

    # ---------------------------------------------------------------- episodes
    def reset_envs(self, env_ids: np.ndarray, clips: np.ndarray, starts: np.ndarray) -> SimState:
        """Teleport envs to their clip's reference at ``starts`` (with reference velocities)."""
        b = self.bank
        self.clip[env_ids], self.frame[env_ids] = clips, starts
        self.steps[env_ids] = 0
        self.lost[env_ids] = 0
        self.prev_action[env_ids] = 0.0
        q, qd, w, wv = b.q[clips, starts], b.qd[clips, starts], b.wrist[clips, starts], b.wrist_vel[clips, starts]
        self.backend.set_state(
            env_ids,
            {s: q[:, b.joint_slice[s]] for s in self.sides},
            {s: qd[:, b.joint_slice[s]] for s in self.sides},
            {s: w[:, i] for i, s in enumerate(self.sides)},
            {s: wv[:, i] for i, s in enumerate(self.sides)},
        )
        return self.backend.read_state()

    def apply_action(self, action: np.ndarray) -> np.ndarray:
        """Set the backend's targets for frame ``frame + 1``: reference + scaled, clipped residual.
        ``action`` (B, act_dim) in [-1, 1] (finite); returns the clipped action."""
        cfg, b, g = self.config, self.bank, self._groups_act
        act = np.asarray(action, dtype=np.float64).reshape(-1, self.act_dim)
        if not np.isfinite(act).all():
            raise MotionValueError(f"the action has NaN/inf at indices {np.argwhere(~np.isfinite(act))[:, 1].tolist()}")
        act = act.clip(-1.0, 1.0)
        B, S = act.shape[0], len(self.sides)
        c = self.clip
        f = np.minimum(self.frame + 1, b.lengths[c] - 1)
        targets = (b.target[c, f] + cfg.finger_action_scale * act[:, g["dq"]]).clip(b.ctrl_lo, b.ctrl_hi)
        w = b.wrist[c, f].copy()  # (B, S, 7)
        w[..., :3] += cfg.wrist_pos_action_scale * act[:, g["dpos"]].reshape(B, S, 3)
        w[..., 3:] = quat_mul(quat_from_rotvec(cfg.wrist_rot_action_scale * act[:, g["drot"]].reshape(B, S, 3)), w[..., 3:])
        vel = b.target_vel[c, f] if cfg.velocity_feedforward else None
        self.backend.set_targets(
            {s: targets[:, b.act_slice[s]] for s in self.sides},
            {s: w[:, i] for i, s in enumerate(self.sides)},
            None if vel is None else {s: vel[:, b.act_slice[s]] for s in self.sides},
        )
        return act

    def advance(self) -> None:
        """After ``backend.step()``: the state now belongs to the next reference frame."""
        self.frame = np.minimum(self.frame + 1, self.bank.lengths[self.clip] - 1)
        self.steps = self.steps + 1

    def errors(self, st: SimState, flat: tuple | None = None) -> dict[str, np.ndarray]:
        """(B,) tracking errors against the reference at ``frame``: joint (rad, mean |dq| over all joints),
        joint_sq (rad^2), tip (m, mean fingertip distance over all fingertips), wrist_pos (m) and wrist_rot
        (rad) means over hands; contact / ref_contact (bool)."""
        b, c, f = self.bank, self.clip, self.frame
        q, _, w, _, tips = flat or self._flat(st)
        dq = q - b.q[c, f]
        wr = b.wrist[c, f]
        dt = tips - b.tips[c, f]
        dw = w[..., :3] - wr[..., :3]
        inv_n, inv_k, inv_s = 1.0 / dq.shape[1], 1.0 / dt.shape[1], 1.0 / w.shape[1]
        return {
            "joint": np.abs(dq).sum(axis=1) * inv_n,
            "joint_sq": (dq * dq).sum(axis=1) * inv_n,
            "tip": np.sqrt((dt * dt).sum(axis=-1)).sum(axis=1) * inv_k,
            "wrist_pos": np.sqrt((dw * dw).sum(axis=-1)).sum(axis=1) * inv_s,
            "wrist_rot": quat_angle(w[..., 3:], wr[..., 3:]).sum(axis=1) * inv_s,
            "contact": st.hand_contact.copy(),
            "ref_contact": b.contact[c, f],
        }

    def reward(self, st: SimState, action: np.ndarray, flat: tuple | None = None):
        """``(reward (B,), terms, errors)``: the weighted terms sum to the reward (see :class:`HandXTrackingEnv`)."""
        cfg = self.config
        e = self.errors(st, flat)
        for k in ("joint_sq", "tip", "wrist_pos", "wrist_rot"):
            if not np.isfinite(e[k]).all():
                e[k] = np.nan_to_num(e[k], nan=1e3, posinf=1e3)
        terms = {
            "reward_joint": cfg.w_joint * np.exp(-e["joint_sq"] / cfg.sigma_joint**2),
            "reward_tip": cfg.w_tip * np.exp(-((e["tip"] / cfg.sigma_tip) ** 2)),
            "reward_wrist": cfg.w_wrist * np.exp(
                -((e["wrist_pos"] / cfg.sigma_wrist_pos) ** 2) - (e["wrist_rot"] / cfg.sigma_wrist_rot) ** 2
            ),
            "reward_contact": cfg.w_contact * (e["contact"] == e["ref_contact"]),
            "reward_smooth": -cfg.w_smooth / self.act_dim * ((action - self.prev_action) ** 2).sum(axis=1),
        }
        self.prev_action = action.copy()
        return sum(terms.values()), terms, e

    def done(self, st: SimState, e: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(terminated, truncated) (B,) bool: lost for ``terminate_after_s`` or unstable; clip end or
        ``episode_frames``."""
        cfg = self.config
        bad = (e["tip"] > cfg.terminate_tip_error) | (e["wrist_pos"] > cfg.terminate_wrist_error)
        self.lost = np.where(bad, self.lost + 1, 0)
        terminated = (self.lost >= self._sustain) | st.unstable
        truncated = self.frame >= self.bank.lengths[self.clip] - 1
        if cfg.episode_frames is not None:
            truncated |= self.steps >= int(cfg.episode_frames)
        return terminated, truncated & ~terminated

    def step(self, action: np.ndarray) -> tuple[SimState, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """One control step of every env: residual ``action`` (B, act_dim) -> targets, physics, next
        reference frame. Returns ``(state, obs (B, obs_dim), reward (B,), terminated (B,), truncated (B,),
        info)``, ``info`` holding (B,) arrays: every reward term, ``tip_error``, ``wrist_pos_error``,
        ``wrist_rot_error``, ``joint_error``, ``contact``, ``ref_contact``, ``clip``, ``frame``, ``unstable``."""
        act = self.apply_action(action)
        self.backend.step()
        self.advance()
        st = self.backend.read_state()
        flat = self._flat(st)  # computed once per step
        reward, terms, e = self.reward(st, act, flat)
        terminated, truncated = self.done(st, e)
        info: dict[str, Any] = dict(terms)
        info.update(
            tip_error=e["tip"], wrist_pos_error=e["wrist_pos"], wrist_rot_error=e["wrist_rot"], joint_error=e["joint"],
            contact=e["contact"], ref_contact=e["ref_contact"], clip=self.clip.copy(), frame=self.frame.copy(),
            unstable=st.unstable.copy(),
        )
        return st, self.observe(st, flat), reward, terminated, truncated, info

    def observe(self, st: SimState, flat: tuple | None = None) -> np.ndarray:
        """(B, obs_dim) float32 observation (layout: :attr:`obs_fields`); non-finite values become 0."""
        b, c, g = self.bank, self.clip, self._groups_obs
        q, qd, w, wv, tips = flat or self._flat(st)
        B = len(c)
        last = b.lengths[c] - 1
        out = np.empty((B, self.obs_dim))
        out[:, g["q"]] = q
        out[:, g["qd"]] = qd
        out[:, g["wrist_pos"]] = w[..., :3].reshape(B, -1)
        out[:, g["wrist_quat"]] = np.where(w[..., :1] < 0, -w[..., 3:], w[..., 3:]).reshape(B, -1)
        out[:, g["wrist_vel"]] = wv.reshape(B, -1)
        out[:, g["tips"]] = (tips - w[:, self._hand_of_tip, :3]).reshape(B, -1)  # relative to its own wrist
        out[:, g["tip_err"]] = (b.tips[c, self.frame] - tips).reshape(B, -1)
        fk = np.minimum(self.frame[:, None] + self._kk, last[:, None])  # (B, K)
        ck = c[:, None]
        out[:, g["ref_dq"]] = (b.target[ck, fk] - q[:, None, b.act_in_joint]).reshape(B, -1)
        wk = b.wrist[ck, fk]  # (B, K, S, 7)
        out[:, g["ref_dpos"]] = (wk[..., :3] - w[:, None, :, :3]).reshape(B, -1)
        out[:, g["ref_drot"]] = quat_to_rotvec(quat_mul(wk[..., 3:], quat_conj(w[:, None, :, 3:]))).reshape(B, -1)
        out[:, g["contact"]] = st.hand_contact[:, None]
        out[:, g["ref_contact"]] = b.contact[ck, fk]
        out[:, g["phase"]] = (self.frame / np.maximum(last, 1))[:, None]
        if not np.isfinite(out).all():
            out[~np.isfinite(out)] = 0.0
        return out.astype(np.float32)


# ------------------------------------------------------------------------------------------------- env
def _robots_for(motions: Sequence[tuple[str, RobotMotion]], robots: Mapping[str, str] | None) -> dict[str, str]:
    """Robot id per side; every motion must have the same sides and robots as the env."""
    first_name, first = motions[0]
    if robots is None:
        robots = {s: h.robot for s, h in first.hands.items()}
    robots = dict(robots)
    problems = []
    for name, m in motions:
        if set(m.sides) != set(robots):
            problems.append(f"{name} has hands {list(m.sides)}, the env has {sorted(robots)}")
            continue
        for s, h in m.hands.items():
            if h.robot != robots[s]:
                problems.append(f"{name}: the {s} hand was retargeted for '{h.robot}', the env's {s} robot is '{robots[s]}'")
    if problems:
        raise RobotMismatchError(
            "motions do not match the env's robots: " + "; ".join(problems)
            + ". Retarget every motion for the same robots (`handx-robot retarget --robot ...`) or pass the "
            "robot the motions were retargeted for (--robot)."
        )
    return robots


def _build_task(motions, robots, config: TrackingConfig, assets, backend: str, num_envs: int):
    """(robots, backend, bank, task, fps) for ``num_envs`` envs of simulator ``backend``."""
    from handx_robot.sim.backends import make_backend
    from handx_robot.sim.backends.mujoco_backend import MujocoBackendConfig
    from handx_robot.sim.scene import HandModel

    clips = load_motions(motions)
    robots = _robots_for(clips, robots)
    fps = clips[0][1].fps
    lo = np.min([h.wrist_pose[:, :3].min(axis=0) for _, m in clips for h in m.hands.values()], axis=0)
    hi = np.max([h.wrist_pose[:, :3].max(axis=0) for _, m in clips for h in m.hands.values()], axis=0)
    bcfg = MujocoBackendConfig(
        control_dt=1.0 / fps, substeps=config.substeps, bandwidth_hz=config.bandwidth_hz,
        floor_height=config.floor_height, view_center=tuple(((lo + hi) / 2).tolist()),
        view_distance=max(0.5, 1.6 * float(np.max(hi - lo)) + 0.4),
    )
    hands = [HandModel.from_registry(rid, assets=assets, side=side) for side, rid in robots.items()]
    sim = make_backend(backend, hands, num_envs=num_envs, config=bcfg)
    bank = ReferenceBank(clips, sim)
    return robots, sim, bank, TrackingTask(sim, bank, config), fps


class HandXTrackingEnv(gym.Env):
    """Track robot hand motions in MuJoCo physics with residual PD targets (``HandXTracking-v0``).

    Each step is one motion frame (``1 / fps`` s, ``substeps`` physics steps). The PD targets of the
    fingers and the wrist targets (a weld pulls each floating hand onto its target, like a stiff arm)
    are the reference's next frame plus the policy's residual; reference joint velocities are fed
    forward. Action 0 everywhere is open-loop PD replay.

    **Observation** (``Box``, float32). Grouped by quantity, each group ``left`` then ``right`` hand
    (``n`` joints, ``a`` actuated joints, ``k`` fingertips per hand; ``env.unwrapped.observation_table()``
    prints the exact rows for any robots). Indices below: two built-in Shadow hands (n = 24, a = 20,
    k = 5), K = 3, 343 values:

    ========= ====================== ========== ================================================================
    index     name                   unit       meaning
    ========= ====================== ========== ================================================================
    0-47      {left,right}_q         rad        joint positions, model joint order (n per hand)
    48-95     {side}_qd              rad/s      joint velocities
    96-101    {side}_wrist_pos       m          wrist (``T_world_base``) position, world
    102-109   {side}_wrist_quat      1          wrist orientation wxyz, world, w >= 0
    110-121   {side}_wrist_vel       m/s, rad/s wrist linear and angular velocity, world
    122-151   {side}_tips            m          fingertips minus their wrist position, world axes (3k per hand)
    152-181   {side}_tip_err         m          reference fingertips at frame t minus simulated (3k per hand)
    182-301   ref{j}_{side}_dq       rad        reference actuated targets at t+j minus current, j = 1..K (a each)
    302-319   ref{j}_{side}_dpos     m          reference wrist position at t+j minus current, world
    320-337   ref{j}_{side}_drot     rad        rotation vector from current to reference wrist at t+j, world
    338       contact                0/1        simulated hand-hand contact
    339-341   ref_contact            0/1        reference hand-hand contact at t+1..t+K
    342       phase                  1          frame / (clip frames - 1)
    ========= ====================== ========== ================================================================

    **Action** (``Box(-1, 1)``; Shadow pair: 52 values): ``{side}_dq`` (a per hand, indices 0-39)
    x ``finger_action_scale`` rad added to the reference joint targets (then clipped to the joint
    range); ``{side}_dpos`` (3, 40-45) x ``wrist_pos_action_scale`` m added to the wrist target;
    ``{side}_drot`` (3, 46-51) x ``wrist_rot_action_scale`` rad, a world rotation vector applied to the
    wrist target orientation. ``env.unwrapped.action_table()`` lists the rows for any robots.

    **Reward** (every term in ``info``, their sum is the reward)::

        reward_joint   = w_joint   * exp(-mean_j (q - q_ref)^2 / sigma_joint^2)
        reward_tip     = w_tip     * exp(-(mean_i |p_tip - p_tip_ref| / sigma_tip)^2)
        reward_wrist   = w_wrist   * exp(-(|p_w - p_w_ref| / sigma_wrist_pos)^2 - (angle / sigma_wrist_rot)^2)
        reward_contact = w_contact * [hand-hand contact == reference hand-hand contact]
        reward_smooth  = -w_smooth * mean((a_t - a_{t-1})^2)

    (means over both hands; the reference contact is the geometric hand-hand contact of the kinematic
    reference.) ``info`` also has ``tip_error`` (m), ``wrist_pos_error`` (m), ``wrist_rot_error`` (rad),
    ``joint_error`` (rad), ``contact``, ``ref_contact``, ``clip``, ``frame``, ``unstable``.

    **Episodes**: ``reset`` picks a clip uniformly and (``random_start``) a start frame uniformly in
    ``[0, T - 2]``, teleports the hands to the reference there (``options={"clip": i, "start": f}``
    overrides). Terminated when the mean fingertip error exceeds ``terminate_tip_error`` or the wrist
    error ``terminate_wrist_error`` for ``terminate_after_s``, or the physics diverges; truncated at the
    clip's end or after ``episode_frames`` steps.

    Args: ``motions`` (RobotMotion, ``.npz`` path, or a list), ``robots`` ``{side: robot id}`` (default:
    the first motion's; every motion must match), ``config`` :class:`TrackingConfig`, ``render_mode``
    (``rgb_array``), ``assets`` (robot asset directory), ``camera`` (scene camera for rendering),
    ``backend`` (simulator, :data:`handx_robot.sim.backends.BACKENDS`; many envs on one batched backend:
    :class:`HandXTrackingVecEnv`).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        motions: Any,
        robots: Mapping[str, str] | None = None,
        config: TrackingConfig | None = None,
        render_mode: str | None = None,
        assets: str | os.PathLike | None = None,
        camera: str | None = None,
        render_size: tuple[int, int] = (640, 480),
        backend: str = "mujoco",
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode {render_mode!r}; allowed: {self.metadata['render_modes']} or None")
        self.config = config or TrackingConfig()
        self.robots, self.backend, self.bank, self.task, fps = _build_task(motions, robots, self.config, assets, backend, 1)
        self.metadata = {**self.metadata, "render_fps": int(round(fps))}
        self.render_mode = render_mode
        self.camera = camera
        self.render_size = render_size
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.task.obs_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.task.act_dim,), dtype=np.float32)
        self._state: SimState | None = None
        self._env0 = np.zeros(1, dtype=np.int64)

    # ---------------------------------------------------------------- docs
    def observation_table(self) -> str:
        return self.task.table("obs")

    def action_table(self) -> str:
        return self.task.table("act")

    def signature(self) -> dict:
        return self.task.signature()

    # ---------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        C = self.bank.num_clips
        clip = options.get("clip")
        if clip is None:
            clip = int(self.np_random.integers(C))
        if not 0 <= int(clip) < C:
            raise ConfigError(f"reset option clip={clip}; the env has clips 0..{C - 1}")
        T = int(self.bank.lengths[clip])
        start = options.get("start")
        if start is None:
            start = int(self.np_random.integers(T - 1)) if self.config.random_start else 0
        if not 0 <= int(start) <= T - 2:
            raise ConfigError(f"reset option start={start}; clip {clip} allows 0..{T - 2}")
        self._state = self.task.reset_envs(self._env0, np.array([clip]), np.array([start]))
        e = self.task.errors(self._state)
        info = {"clip": int(clip), "frame": int(start), "tip_error": float(e["tip"][0]), "clip_name": self.bank.names[clip]}
        return self.task.observe(self._state)[0], info

    def step(self, action):
        if self._state is None:
            raise ConfigError("call reset() before step()")
        st, obs, reward, terminated, truncated, arrays = self.task.step(np.asarray(action)[None])
        self._state = st
        info = {k: v[0].item() for k, v in arrays.items()}
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        w, h = self.render_size
        return self.backend.render(0, self.camera, width=w, height=h)

    def close(self):
        self.backend.close()


class HandXTrackingVecEnv(gym.vector.VectorEnv):
    """``num_envs`` tracking envs on ONE batched simulator backend: the observation, action and reward
    of :class:`HandXTrackingEnv`, computed for all envs at once by :class:`TrackingTask`.

    ``backend="mjx"`` steps every env in one jit-compiled MJX call (a GPU where JAX has one);
    ``"mujoco"`` steps CPU MjData in turn. Also reachable as
    ``gym.make_vec("HandXTracking-v0", num_envs=N, vectorization_mode="vector_entry_point", motions=..., backend="mjx")``.

    Autoreset: same step. An env whose episode ends is reset (new clip and start frame) inside that
    ``step``; the returned observation is the new episode's first, the last one is in
    ``infos["final_obs"]`` (rows where ``infos["_final_obs"]``). ``infos`` holds (num_envs,) arrays:
    every reward term, ``tip_error``, ``wrist_pos_error``, ``wrist_rot_error``, ``joint_error``,
    ``contact``, ``ref_contact``, ``clip``, ``frame``, ``unstable``.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        motions: Any,
        num_envs: int = 8,
        robots: Mapping[str, str] | None = None,
        config: TrackingConfig | None = None,
        assets: str | os.PathLike | None = None,
        backend: str = "mujoco",
        **backend_kwargs: Any,
    ):
        if int(num_envs) < 1:
            raise ConfigError(f"HandXTrackingVecEnv: num_envs must be >= 1, got {num_envs!r}")
        self.config = config or TrackingConfig()
        self.num_envs = int(num_envs)
        self.robots, self.backend, self.bank, self.task, _ = _build_task(
            motions, robots, self.config, assets, backend, self.num_envs
        )
        self.render_mode = None
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.task.obs_dim,), dtype=np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.task.act_dim,), dtype=np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._all = np.arange(self.num_envs)
        self._started = False

    def _sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        clips = self.np_random.integers(self.bank.num_clips, size=n)
        if not self.config.random_start:
            return clips, np.zeros(n, dtype=np.int64)
        return clips, np.array([self.np_random.integers(int(self.bank.lengths[c]) - 1) for c in clips], dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        clips, starts = self._sample(self.num_envs)
        st = self.task.reset_envs(self._all, clips, starts)
        self._started = True
        return self.task.observe(st), {"clip": clips, "frame": starts}

    def step(self, actions):
        if not self._started:
            raise ConfigError("call reset() before step()")
        _, obs, reward, terminated, truncated, infos = self.task.step(np.asarray(actions))
        done = terminated | truncated
        if done.any():
            ids = np.flatnonzero(done)
            infos["final_obs"], infos["_final_obs"] = obs.copy(), done.copy()
            clips, starts = self._sample(len(ids))
            obs = self.task.observe(self.task.reset_envs(ids, clips, starts))
        return obs, reward.astype(np.float64), terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        self.backend.close()


# --------------------------------------------------------------------------------------------- rollouts
@dataclasses.dataclass(frozen=True)
class Rollout:
    """One clip tracked from frame ``start`` to its end (or termination), one entry per step.

    tip_error, wrist_pos_error (m), wrist_rot_error, joint_error (rad): (N,) per step, means over hands;
    contact, ref_contact: (N,) bool hand-hand contact (simulated / kinematic reference);
    reward: (N,); terminated: the episode ended early (tracking lost or physics diverged);
    frames: (N,) reference frame of each step.
    """

    clip: str
    fps: float
    frames: np.ndarray
    tip_error: np.ndarray
    wrist_pos_error: np.ndarray
    wrist_rot_error: np.ndarray
    joint_error: np.ndarray
    contact: np.ndarray
    ref_contact: np.ndarray
    reward: np.ndarray
    terminated: bool
    clip_frames: int

    @property
    def success(self) -> bool:
        """Tracked to the clip's end without termination."""
        return not self.terminated

    def contact_f1(self) -> dict:
        """Event F1 (:func:`handx_robot.metrics.event_f1`, IoU >= 0.5) of simulated vs reference
        hand-hand contact segments over the tracked frames."""
        from handx_robot.features import ContactEvent, segments_from_mask
        from handx_robot.metrics import event_f1

        def events(mask):
            return [ContactEvent("hand_hand", "left_hand", "right_hand", s, e) for s, e in segments_from_mask(mask, self.fps)]

        out = event_f1(events(self.contact), events(self.ref_contact))
        out.pop("matches", None)
        out["num_ref_events"] = out["tp"] + out["fn"]
        return out

    def summary(self) -> dict:
        return {
            "clip": self.clip,
            "steps": int(len(self.frames)),
            "clip_frames": int(self.clip_frames),
            "success": self.success,
            "mean_tip_error_m": float(np.mean(self.tip_error)) if len(self.frames) else None,
            "max_tip_error_m": float(np.max(self.tip_error)) if len(self.frames) else None,
            "mean_wrist_pos_error_m": float(np.mean(self.wrist_pos_error)) if len(self.frames) else None,
            "mean_wrist_rot_error_rad": float(np.mean(self.wrist_rot_error)) if len(self.frames) else None,
            "mean_joint_error_rad": float(np.mean(self.joint_error)) if len(self.frames) else None,
            "mean_reward": float(np.mean(self.reward)) if len(self.frames) else None,
            "contact_f1": self.contact_f1(),
        }


def rollout(env: HandXTrackingEnv, act_fn, clip: int = 0, start: int = 0, on_step=None) -> Rollout:
    """Track clip ``clip`` from ``start`` with ``act_fn(obs (obs_dim,) float32) -> action (act_dim,)``
    (``None``: zero residual = open-loop PD replay). ``on_step(env)`` is called after the reset and each step."""
    env = env.unwrapped
    obs, _ = env.reset(options={"clip": clip, "start": start})
    if on_step is not None:
        on_step(env)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    rec: dict[str, list] = {k: [] for k in ("frame", "tip_error", "wrist_pos_error", "wrist_rot_error", "joint_error", "contact", "ref_contact", "reward")}
    terminated = truncated = False
    while not (terminated or truncated):
        action = zero if act_fn is None else act_fn(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        for k in rec:
            rec[k].append(reward if k == "reward" else info[k])
        if on_step is not None:
            on_step(env)
    arr = {k: np.asarray(v) for k, v in rec.items()}
    return Rollout(
        clip=env.bank.names[clip], fps=1.0 / env.backend.layout.control_dt, frames=arr["frame"].astype(np.int64),
        tip_error=arr["tip_error"], wrist_pos_error=arr["wrist_pos_error"], wrist_rot_error=arr["wrist_rot_error"],
        joint_error=arr["joint_error"], contact=arr["contact"].astype(bool), ref_contact=arr["ref_contact"].astype(bool),
        reward=arr["reward"], terminated=bool(terminated), clip_frames=int(env.bank.lengths[clip]),
    )
