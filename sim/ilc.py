"""Iterative learning control (ILC) on tracking clips, and a linear residual policy fitted to it.

ILC replays one clip with a residual action sequence ``U`` (T-1, act_dim) of ``HandXTracking-v0``,
measures per frame the actuated-joint error (rad), the wrist position error (m) and the wrist
rotation error (rotation vector, rad, world), adds ``gain x error`` in action units to ``U`` and
replays again. It sees the whole clip (not causal): what it reaches bounds what a causal residual
policy can reach on that clip (``benchmarks/tracking_bound.py``), and its residuals are
demonstrations for one (:func:`collect_demonstrations`).

:func:`fit_linear_policy` regresses the residual on the normalized observation (ridge); how much it
lowers the fingertip error on held-out clips: see benchmarks/RESULTS.md (benchmarks/tracking_eval.py).
:func:`handx_robot.sim.training.train_tracker` with ``TrainSettings(init="ilc")`` puts it into a PPO policy
(linear actor) that PPO can then fine-tune, and saves it like any other tracking policy.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from handx_robot.sim.tracking_env import HandXTrackingEnv, rollout

from handx_robot.rotations import quat_conj, quat_mul, quat_to_rotvec

__all__ = [
    "ClipReplay", "replay_clip", "ilc_clip", "collect_demonstrations", "fit_linear_policy", "select_linear_policy",
    "LinearPolicy",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ClipReplay:
    """One replay from frame 0. Per step (N,): ``tip`` mean fingertip error (m); (N, a) ``joint``
    actuated-joint error (rad, reference - sim, both hands); (N, S, 3) ``wrist_pos`` (m) and
    ``wrist_rot`` (rad) errors, world; (N, obs_dim) ``obs`` the observation the action was taken on;
    ``terminated``."""

    tip: np.ndarray
    joint: np.ndarray
    wrist_pos: np.ndarray
    wrist_rot: np.ndarray
    obs: np.ndarray
    terminated: bool


def replay_clip(env: HandXTrackingEnv, clip: int, actions: np.ndarray) -> ClipReplay:
    """Track clip ``clip`` of ``env`` from frame 0 applying ``actions[k]`` at step ``k``
    (:func:`handx_robot.sim.tracking_env.rollout`, recording the errors ILC feeds back)."""
    env = env.unwrapped
    b, lay = env.bank, env.backend.layout
    cols = b.act_in_joint  # actuated columns of the joint vector, both hands
    seen: list[np.ndarray] = []
    rec: dict[str, list] = {"joint": [], "wrist_pos": [], "wrist_rot": []}

    def act(obs: np.ndarray) -> np.ndarray:
        seen.append(obs)
        return actions[len(seen) - 1]

    def record(e: HandXTrackingEnv) -> None:
        if len(rec["joint"]) == len(seen):  # the call right after the reset
            return
        st, f = e._state, int(e.task.frame[0])  # noqa: SLF001 - the state the step just read
        q = np.concatenate([st.qpos[s][0] for s in lay.sides])
        ref_w = b.wrist[clip, f]  # (S, 7) T_world_base per hand
        sim_w = np.stack([st.wrist_pose[s][0] for s in lay.sides])  # (S, 7)
        rec["joint"].append((b.q[clip, f] - q)[cols])
        rec["wrist_pos"].append(ref_w[:, :3] - sim_w[:, :3])
        rec["wrist_rot"].append(quat_to_rotvec(quat_mul(ref_w[:, 3:], quat_conj(sim_w[:, 3:]))))  # world, rad

    r = rollout(env, act, clip=clip, on_step=record)
    return ClipReplay(tip=r.tip_error, joint=np.asarray(rec["joint"]), wrist_pos=np.asarray(rec["wrist_pos"]),
                      wrist_rot=np.asarray(rec["wrist_rot"]), obs=np.asarray(seen),
                      terminated=r.terminated)


def ilc_clip(env: HandXTrackingEnv, clip: int, iterations: int = 6, gain: float = 0.7) -> tuple[np.ndarray, list[float]]:
    """ILC on one clip: ``(U (T-1, act_dim) in [-1, 1], mean fingertip error (m) of every replay)``;
    ``U`` is the residual of the best replay (the errors of ILC iterates need not fall monotonically)."""
    env = env.unwrapped
    cfg, g = env.config, env.task._groups_act  # noqa: SLF001 - the action layout's groups
    T = int(env.bank.lengths[clip])
    U = np.zeros((T - 1, env.task.act_dim), np.float32)
    best, best_U, errors = np.inf, U.copy(), []
    for it in range(iterations + 1):
        r = replay_clip(env, clip, U)
        err = float(r.tip.mean())
        errors.append(err)
        if err < best and not r.terminated:
            best, best_U = err, U.copy()
        if it == iterations:
            break
        n = len(r.tip)
        U[:n, g["dq"]] += gain * r.joint / cfg.finger_action_scale
        U[:n, g["dpos"]] += gain * r.wrist_pos.reshape(n, -1) / cfg.wrist_pos_action_scale
        U[:n, g["drot"]] += gain * r.wrist_rot.reshape(n, -1) / cfg.wrist_rot_action_scale
        np.clip(U, -1.0, 1.0, out=U)
    return best_U, errors


def collect_demonstrations(
    env: HandXTrackingEnv, iterations: int = 6, gain: float = 0.7, noise_rollouts: int = 5, noise_std: float = 0.3,
    seed: int = 0, progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """ILC on every clip of ``env`` (built with ``random_start=False``); returns ``(X (N, obs_dim)
    observations, Y (N, act_dim) ILC residuals, report)``. Besides the clean ILC replay, each clip is
    replayed ``noise_rollouts`` times with Gaussian noise on the actions (std ``noise_std``), labelled
    with the clean residual, so the data also covers states a little off the ILC path."""
    from tqdm import tqdm

    env = env.unwrapped
    rng = np.random.default_rng(seed)
    X, Y, before, after = [], [], [], []
    for c in tqdm(range(env.bank.num_clips), desc="ILC demonstrations", unit="clip", disable=not progress):
        U, errors = ilc_clip(env, c, iterations, gain)
        before.append(errors[0])
        after.append(min(errors[1:]) if len(errors) > 1 else errors[0])
        for rep in range(noise_rollouts + 1):
            noisy = U if rep == 0 else np.clip(U + rng.normal(0.0, noise_std, U.shape), -1, 1).astype(np.float32)
            r = replay_clip(env, c, noisy)
            X.append(r.obs)
            Y.append(U[: len(r.obs)])
    report = {"clips": int(env.bank.num_clips), "samples": int(sum(len(x) for x in X)), "iterations": iterations,
              "gain": gain, "open_loop_tip_error_m": float(np.mean(before)), "ilc_tip_error_m": float(np.mean(after))}
    return np.concatenate(X).astype(np.float64), np.concatenate(Y).astype(np.float64), report


@dataclasses.dataclass(frozen=True)
class LinearPolicy:
    """``action = clip(W^T clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs) + bias, -1, 1)``.
    mean, var (obs_dim,); W (obs_dim, act_dim); bias (act_dim,). The normalization is VecNormalize's."""

    mean: np.ndarray
    var: np.ndarray
    W: np.ndarray
    bias: np.ndarray
    clip_obs: float = 10.0
    epsilon: float = 1e-8

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -self.clip_obs, self.clip_obs)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip(self.normalize(np.asarray(obs, np.float64)) @ self.W + self.bias, -1.0, 1.0).astype(np.float32)


def fit_linear_policy(X: np.ndarray, Y: np.ndarray, ridge: float = 0.01, clip_obs: float = 10.0,
                      min_std: float = 1e-3) -> LinearPolicy:
    """Ridge regression of ``Y`` on the normalized ``X`` (an unpenalized bias); the penalty is
    ``ridge x N`` for N samples (which penalties work: see benchmarks/RESULTS.md
    (benchmarks/tracking_eval.py)). ``min_std`` is added to each observation's standard deviation
    (constant entries are not blown up)."""
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y) or len(X) == 0:
        raise ValueError(f"fit_linear_policy: X (N, obs_dim) and Y (N, act_dim), got {X.shape} and {Y.shape}")
    mean = X.mean(axis=0)
    var = (X.std(axis=0) + min_std) ** 2 - 1e-8
    pol = LinearPolicy(mean, var, np.zeros((X.shape[1], Y.shape[1])), np.zeros(Y.shape[1]), clip_obs)
    Xn = pol.normalize(X)
    xm, ym = Xn.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = Xn - xm, Y - ym
    W = np.linalg.solve(Xc.T @ Xc + ridge * len(X) * np.eye(X.shape[1]), Xc.T @ Yc)
    return dataclasses.replace(pol, W=W, bias=ym - xm @ W)


def select_linear_policy(
    env: HandXTrackingEnv, X: np.ndarray, Y: np.ndarray, ridges: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
    max_clips: int = 20, clip_obs: float = 10.0,
) -> tuple[LinearPolicy, float | None, list[dict]]:
    """Fit one linear actor per ridge penalty and keep the one that tracks best in closed loop.

    Each candidate (and the zero residual, i.e. open-loop PD) tracks up to ``max_clips`` clips of
    ``env`` (built with ``random_start=False``) from frame 0; the lowest mean fingertip error among
    runs that all succeed wins. A fit can look good on the demonstrations and still drift away from
    them in closed loop (few clips, contacts): then a stronger penalty or the zero residual is kept,
    so the result never tracks the training clips worse than open-loop PD.
    Returns ``(policy, its ridge or None for the zero residual, table)``, the table with one row per
    candidate: ridge (None = zero residual), tip error (m), success rate.
    """
    env = env.unwrapped
    clips = range(min(max_clips, env.bank.num_clips))

    def score(pol) -> tuple[float, float]:
        runs = [rollout(env, pol, clip=c) for c in clips]
        return float(np.mean([r.tip_error.mean() for r in runs])), float(np.mean([r.success for r in runs]))

    fitted = [fit_linear_policy(X, Y, r, clip_obs=clip_obs) for r in ridges]
    zero = dataclasses.replace(fitted[0], W=np.zeros_like(fitted[0].W), bias=np.zeros_like(fitted[0].bias))
    table, best, best_ridge, best_key = [], zero, None, None
    for ridge, pol in [(None, zero), *zip(ridges, fitted)]:
        tip, success = score(pol)
        table.append({"ridge": ridge, "tip_error_m": tip, "success_rate": success})
        if best_key is None or (success, -tip) > best_key:
            best, best_ridge, best_key = pol, ridge, (success, -tip)
    return best, best_ridge, table
