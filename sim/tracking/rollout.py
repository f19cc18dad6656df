"""Tracking one clip to its end with a policy (or open-loop PD) and the per-step record (:class:`Rollout`).

Units: m, rad, s; one entry per env step (one motion frame).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from handx_robot.sim.tracking.envs import HandXTrackingEnv

__all__ = ["Rollout", "rollout"]


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


def rollout(env: HandXTrackingEnv, act_fn: Callable[[np.ndarray], np.ndarray] | None, clip: int = 0, start: int = 0,
            on_step: Callable[[HandXTrackingEnv], object] | None = None) -> Rollout:
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
