"""The tracking task, batched over a backend's ``B`` envs: residual targets, rewards, termination, observations.

Written once for every simulator: it talks only to :class:`handx_robot.sim.backends.base.SimBackend`.
Units: rad (m for slide joints), m, s, world frame Z-up; quaternions ``wxyz``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from handx_robot.sim.backends.base import BackendLayout, SimBackend, SimState
from handx_robot.sim.tracking.config import TrackingConfig
from handx_robot.sim.tracking.layout import build_layouts, group_slices, layout_signature, layout_table
from handx_robot.sim.tracking.reference import ReferenceBank

from handx_robot.errors import MotionValueError
from handx_robot.rotations import (
    quat_angle,
    quat_canonical,
    quat_conj,
    quat_from_rotvec,
    quat_mul,
    quat_to_rotvec,
)

__all__ = ["TrackingTask"]

#: (q (B, N), qd (B, N), wrist (B, S, 7), wrist_vel (B, S, 6), tips (B, Ktot, 3)) of a state
Flat = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class TrackingTask:
    """Backend-independent tracking logic, batched over the backend's ``B`` envs.

    Per-env episode state: ``clip`` (B,), ``frame`` (B,) (the reference frame the state should match),
    ``steps`` (B,), ``lost`` (B,) consecutive "lost" frames, ``prev_action`` (B, act_dim).
    Observation and action vectors are grouped by quantity, each group by hand (``left`` then ``right``)
    (:mod:`handx_robot.sim.tracking.layout`); the reward and termination are documented on
    :class:`handx_robot.sim.tracking_env.HandXTrackingEnv`.
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
        self.obs_fields, self.act_fields = build_layouts(self.layout, config)
        self.obs_dim = self.obs_fields[-1].stop
        self.act_dim = self.act_fields[-1].stop
        self.prev_action = np.zeros((B, self.act_dim))
        self._sustain = max(1, int(round(config.terminate_after_s / self.layout.control_dt)))
        self._groups_obs = group_slices(self.obs_fields, self.sides)
        self._groups_act = group_slices(self.act_fields, self.sides)
        self._kk = np.arange(1, config.horizon + 1)[None]
        self._hand_of_tip = np.concatenate(
            [np.full(bank.tip_slice[s].stop - bank.tip_slice[s].start, i) for i, s in enumerate(self.sides)]
        )

    # ---------------------------------------------------------------- layouts
    def signature(self) -> dict:
        """What a policy depends on: robots per side, K, control rate, observation/action layouts."""
        return layout_signature(self.layout, self.config, self.obs_fields, self.act_fields)

    def table(self, which: str = "obs") -> str:
        """The observation (``obs``) or action (``act``) layout: index range, name, unit, meaning."""
        return layout_table(self.obs_fields if which == "obs" else self.act_fields)

    # ---------------------------------------------------------------- state helpers
    def _flat(self, st: SimState) -> Flat:
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

    def errors(self, st: SimState, flat: Flat | None = None) -> dict[str, np.ndarray]:
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

    def reward(self, st: SimState, action: np.ndarray, flat: Flat | None = None):
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

    def observe(self, st: SimState, flat: Flat | None = None) -> np.ndarray:
        """(B, obs_dim) float32 observation (layout: :attr:`obs_fields`); non-finite values become 0."""
        b, c, g = self.bank, self.clip, self._groups_obs
        q, qd, w, wv, tips = flat or self._flat(st)
        B = len(c)
        last = b.lengths[c] - 1
        out = np.empty((B, self.obs_dim))
        out[:, g["q"]] = q
        out[:, g["qd"]] = qd
        out[:, g["wrist_pos"]] = w[..., :3].reshape(B, -1)
        out[:, g["wrist_quat"]] = quat_canonical(w[..., 3:]).reshape(B, -1)
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
