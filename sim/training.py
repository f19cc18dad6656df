"""Residual tracking policies: train them (PPO, optionally initialised by ILC) and track motions with them.

Public API (the ``handx-robot train-tracker`` / ``track`` commands of :mod:`handx_robot.sim.cli_tracking`
are argparse around it):

================================ ===========================================================================
name                             what it does
================================ ===========================================================================
:class:`TrainSettings`           PPO and ILC-initialisation settings (frozen, validated)
:func:`train_tracker`            train on robot motions, save a policy ``.zip`` (:mod:`handx_robot.sim.policy_export`)
:class:`TrainResult`             the saved policy, the log folder, the per-iteration history, wall time
:func:`track_motion`             track one motion with a policy and/or open-loop PD: summaries, optional video
================================ ===========================================================================

Training: PPO (stable-baselines3) on ``HandXTracking-v0`` with observation/reward normalization
(``VecNormalize``; its statistics are stored in the policy), ``envs`` parallel processes, policy
checkpoints (loadable by :func:`track_motion`), CSV logs (and TensorBoard when the ``tensorboard``
package is installed) and progress lines. With ``init="ilc"`` iterative learning control
(:mod:`handx_robot.sim.ilc`) first fits a linear actor that PPO then fine-tunes (or that is saved as it
is with ``steps=0``). Units: m, rad, s.

Module-level imports stay light (the CLI's ``--help`` is fast); torch / SB3 / MuJoCo load inside the functions.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from handx_robot.errors import ConfigError

__all__ = ["TrainSettings", "TrainResult", "train_tracker", "track_motion"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ settings
@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """PPO settings. steps: total env steps; envs: parallel env processes (1 = in-process);
    n_steps: rollout length per env; batch_size, epochs, learning_rate, gamma, gae_lambda, clip_range,
    ent_coef: PPO; net_arch: hidden sizes of actor and critic; log_std_init: initial log std of the
    Gaussian policy (small: residuals start near 0); target_kl: stop an update's epochs when the
    approximate KL exceeds it (essential with a small std, where tiny mean shifts are large KL steps;
    None = off); checkpoint_every: env steps between checkpoints
    (0 = none); time_limit_s: stop training after this wall time (None = run all steps); seed.

    init: ``none`` (PPO from a zero-mean policy) or ``ilc``: first iterative learning control on every
    training clip, then a linear actor fitted to its residuals by ridge regression (:mod:`handx_robot.sim.ilc`,
    ``ilc_iterations``, ``ilc_gain``, ``ilc_noise_rollouts``, ``ridge``); PPO then fine-tunes that
    actor for ``steps`` (0 = keep the fitted actor). With ``ilc`` the actor is linear (``net_arch`` is
    the critic's). How the fitted actor and PPO fine-tuning compare with open-loop PD on held-out
    clips: see benchmarks/RESULTS.md (benchmarks/tracking_eval.py)."""

    steps: int = 300_000
    envs: int = 1
    n_steps: int = 1024
    batch_size: int = 256
    epochs: int = 5
    learning_rate: float = 1e-4
    gamma: float = 0.95
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    net_arch: tuple[int, ...] = (256, 256)
    log_std_init: float = -2.0
    target_kl: float | None = 0.03
    checkpoint_every: int = 50_000
    time_limit_s: float | None = None
    seed: int = 0
    init: str = "none"
    ilc_iterations: int = 6
    ilc_gain: float = 0.7
    ilc_noise_rollouts: int = 5
    ridge: float = 0.01

    def __post_init__(self) -> None:
        if self.init not in ("none", "ilc"):
            raise ConfigError(f"TrainSettings.init is {self.init!r}; allowed: none, ilc")
        if self.init == "ilc":
            if int(self.ilc_iterations) < 1 or int(self.ilc_noise_rollouts) < 0:
                raise ConfigError("TrainSettings: ilc_iterations must be >= 1 and ilc_noise_rollouts >= 0")
            if not (0 < self.ilc_gain <= 1.5 and self.ridge >= 0):
                raise ConfigError("TrainSettings: ilc_gain must be in (0, 1.5] and ridge >= 0")
        if int(self.steps) < (0 if self.init == "ilc" else 1):
            raise ConfigError(f"TrainSettings.steps must be >= 1 (>= 0 with init='ilc'), got {self.steps!r}")
        for name in ("envs", "n_steps", "batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"TrainSettings.{name} must be >= 1, got {getattr(self, name)!r}")
        if (self.n_steps * self.envs) < self.batch_size:
            raise ConfigError(
                f"TrainSettings: n_steps * envs = {self.n_steps * self.envs} < batch_size {self.batch_size}; "
                "lower --batch-size or raise --n-steps"
            )
        if not self.net_arch or any(int(n) < 1 for n in self.net_arch):
            raise ConfigError(f"TrainSettings.net_arch must be positive layer sizes, got {self.net_arch!r}")
        for name in ("learning_rate", "clip_range"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"TrainSettings.{name} must be > 0, got {getattr(self, name)!r}")
        if not (0 < self.gamma <= 1 and 0 < self.gae_lambda <= 1):
            raise ConfigError("TrainSettings: gamma and gae_lambda must be in (0, 1]")
        if self.time_limit_s is not None and not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise ConfigError(f"TrainSettings.time_limit_s must be > 0 s or None, got {self.time_limit_s!r}")


@dataclasses.dataclass
class TrainResult:
    """policy_path: the saved policy; log_dir: CSV (``progress.csv``) / TensorBoard logs and checkpoints;
    history: one dict per PPO iteration (the CSV rows); wall_s: training time, s; model: the SB3 PPO."""

    policy_path: Path
    log_dir: Path
    history: list[dict]
    wall_s: float
    model: Any = None


# ------------------------------------------------------------------------------------------------ helpers
def _make_env_fn(motions, robots, config, seed: int) -> Callable[[], Any]:
    def make():
        from handx_robot.sim.tracking_env import HandXTrackingEnv
        from stable_baselines3.common.monitor import Monitor

        env = HandXTrackingEnv(motions, robots=robots, config=config)
        env.reset(seed=seed)
        return Monitor(env)

    return make


def _ridge_label(ridge: float | None) -> str:
    return "open loop" if ridge is None else f"ridge {ridge:g}"


def _read_csv(path: Path) -> list[dict]:
    import csv

    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()} for row in csv.DictReader(f)]


def _make_venv(motions: list, robots: Mapping[str, str], config, settings: TrainSettings):
    """The normalized training VecEnv: ``settings.envs`` envs in subprocesses (1: in this process)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    fns = [_make_env_fn(motions, robots, config, settings.seed + i) for i in range(settings.envs)]
    venv = SubprocVecEnv(fns) if settings.envs > 1 else DummyVecEnv(fns)
    venv = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, gamma=settings.gamma)
    venv.seed(settings.seed)
    return venv


def _ilc_init(demo_env, venv, settings: TrainSettings, progress: bool):
    """ILC demonstrations on every clip of ``demo_env`` (built with ``random_start=False``, closed here),
    the best ridge-fitted linear actor and its report; sets ``venv``'s observation statistics to the
    fit's so the saved policy normalizes as the actor was fitted."""
    import numpy as np
    from handx_robot.sim.ilc import collect_demonstrations, select_linear_policy

    t0 = time.perf_counter()
    X, Y, report = collect_demonstrations(
        demo_env, settings.ilc_iterations, settings.ilc_gain, settings.ilc_noise_rollouts, seed=settings.seed,
        progress=progress)
    ridges = tuple(settings.ridge * 10.0**k for k in range(4))
    linear, chosen, table = select_linear_policy(demo_env, X, Y, ridges, clip_obs=venv.clip_obs)
    demo_env.close()
    report["ridge_selection"], report["ridge"] = table, chosen
    if chosen is None:
        log.warning("no fitted linear actor tracked the training clips better than open-loop PD (closed loop, see "
                    "the table in the policy metadata); the saved actor is the zero residual. More and more varied "
                    "clips help the fit")
    venv.obs_rms.mean, venv.obs_rms.var, venv.obs_rms.count = linear.mean.copy(), linear.var.copy(), float(len(X))
    report["fit_rmse"] = float(np.sqrt(np.mean((linear(X) - np.clip(Y, -1, 1)) ** 2)))
    report["seconds"] = round(time.perf_counter() - t0, 1)
    log.info("ILC on %d clips: fingertip error %.2f -> %.2f mm; linear actor fitted to %d samples (ridge %s, "
             "rmse %.3f); closed loop on the training clips: %s; %.0f s",
             report["clips"], 1e3 * report["open_loop_tip_error_m"], 1e3 * report["ilc_tip_error_m"],
             report["samples"], chosen, report["fit_rmse"],
             ", ".join(f"{_ridge_label(r['ridge'])} {1e3 * r['tip_error_m']:.2f} mm" for r in table), report["seconds"])
    return linear, report


def _make_ppo(venv, settings: TrainSettings, linear, log_dir: Path):
    """SB3 PPO on ``venv`` (CSV and, when installed, TensorBoard logs in ``log_dir``); with a fitted
    ``linear`` actor the policy's action net is that map (no hidden actor layers)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    model = PPO(
        "MlpPolicy", venv, n_steps=settings.n_steps, batch_size=settings.batch_size, n_epochs=settings.epochs,
        learning_rate=settings.learning_rate, gamma=settings.gamma, gae_lambda=settings.gae_lambda,
        clip_range=settings.clip_range, ent_coef=settings.ent_coef, target_kl=settings.target_kl, seed=settings.seed,
        device="cpu", verbose=0,
        policy_kwargs={"net_arch": {"pi": [] if linear is not None else list(settings.net_arch), "vf": list(settings.net_arch)},
                       "log_std_init": settings.log_std_init, "activation_fn": torch.nn.Tanh},
    )
    if linear is not None:
        with torch.no_grad():
            model.policy.action_net.weight.copy_(torch.as_tensor(linear.W.T, dtype=torch.float32))
            model.policy.action_net.bias.copy_(torch.as_tensor(linear.bias, dtype=torch.float32))
    formats = ["csv"]
    try:
        import tensorboard  # noqa: F401

        formats.append("tensorboard")
    except ImportError:
        log.info("tensorboard is not installed: CSV logs only (pip install tensorboard for TensorBoard logs)")
    model.set_logger(configure(str(log_dir), formats))
    return model


def _progress_callback(settings: TrainSettings, save: Callable[[Path, int], Path], log_dir: Path, t0: float,
                       progress: bool):
    """An SB3 callback: checkpoints every ``checkpoint_every`` steps, the time limit, and per rollout the
    mean step reward and fingertip error (logged as ``tracking/step_reward``, ``tracking/tip_error_m``)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def __init__(self):
            super().__init__()
            self.rewards: list[float] = []
            self.tips: list[float] = []
            self.next_ckpt = settings.checkpoint_every

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "tip_error" in info and "reward_tip" in info:
                    self.rewards.append(sum(v for k, v in info.items() if k.startswith("reward_")))
                    self.tips.append(info["tip_error"])
            if settings.checkpoint_every and self.num_timesteps >= self.next_ckpt:
                p = save(log_dir / "checkpoints" / f"policy_{self.num_timesteps}.zip", self.num_timesteps)
                log.info("checkpoint %s", p)
                self.next_ckpt += settings.checkpoint_every
            if settings.time_limit_s is not None and time.perf_counter() - t0 > settings.time_limit_s:
                log.info("time limit of %.0f s reached at %d steps; stopping", settings.time_limit_s, self.num_timesteps)
                return False
            return True

        def _on_rollout_end(self) -> None:
            if not self.rewards:
                return
            r, tip = float(sum(self.rewards) / len(self.rewards)), float(sum(self.tips) / len(self.tips))
            self.logger.record("tracking/step_reward", r)
            self.logger.record("tracking/tip_error_m", tip)
            fps = self.num_timesteps / max(time.perf_counter() - t0, 1e-9)
            if progress:
                log.info(
                    "steps %d/%d  %.0f steps/s  step reward %.3f  tip error %.1f mm  ETA %.0f s",
                    self.num_timesteps, settings.steps, fps, r, 1000 * tip, (settings.steps - self.num_timesteps) / max(fps, 1e-9),
                )
            self.rewards.clear()
            self.tips.clear()

    return Progress()


# ------------------------------------------------------------------------------------------------ train
def train_tracker(
    motions: Sequence,
    output: str | os.PathLike,
    robots: Mapping[str, str] | None = None,
    config=None,
    settings: TrainSettings | None = None,
    log_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a residual tracking policy with PPO and save it (with metadata) to ``output`` (``.zip``).

    motions:  RobotMotion objects or robot-motion ``.npz`` paths (the training clips).
    robots:   ``{side: robot id}`` (default: the motions').
    config:   :class:`handx_robot.sim.tracking_env.TrackingConfig` (default settings if None).
    settings: :class:`TrainSettings` (default settings if None).
    log_dir:  logs and checkpoints (default: ``<output stem>_logs`` beside ``output``).
    Raises :class:`handx_robot.errors.ConfigError` (bad output name, settings) and the env's errors
    (missing motion files, robot mismatches) before any process starts.
    """
    import torch
    from handx_robot.sim.policy_export import save_policy
    from handx_robot.sim.tracking_env import HandXTrackingEnv, TrackingConfig, load_motions

    settings = settings or TrainSettings()
    config = config or TrackingConfig()
    output = Path(output)
    if output.suffix != ".zip":
        raise ConfigError(f"-o {output}: a policy file must end in .zip")
    clips = load_motions(motions)  # errors for missing files before any process starts
    # one env in this process: the policy's signature (random_start does not enter it) and, with
    # init="ilc", the clean replays ILC runs from frame 0
    local_env = HandXTrackingEnv([m for _, m in clips], robots=robots, config=dataclasses.replace(config, random_start=False))
    signature, robots = local_env.signature(), dict(local_env.robots)
    if settings.init != "ilc":
        local_env.close()
    log_dir = Path(log_dir) if log_dir is not None else output.with_name(output.stem + "_logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    venv = _make_venv([m for _, m in clips], robots, config, settings)
    t_init = time.perf_counter()
    linear, init_report = _ilc_init(local_env, venv, settings, progress) if settings.init == "ilc" else (None, None)
    model = _make_ppo(venv, settings, linear, log_dir)
    training_meta = {
        "motions": [n for n, _ in clips],
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(settings).items()},
        "algorithm": "PPO (stable-baselines3)" if linear is None else
                     ("ILC + ridge linear actor" + (", PPO fine-tuned" if settings.steps else "")),
        "init": init_report,
    }
    t0 = time.perf_counter()

    def save(path: Path, steps: int) -> Path:
        meta = dict(training_meta, steps=int(steps), wall_s=round(time.perf_counter() - t0, 1))
        return save_policy(model, path, signature, config.to_dict(), obs_rms=venv.obs_rms, clip_obs=venv.clip_obs,
                           epsilon=venv.epsilon, training=meta)

    try:
        if settings.steps > 0:
            model.learn(total_timesteps=settings.steps, callback=_progress_callback(settings, save, log_dir, t0, progress),
                        log_interval=1)
        wall = time.perf_counter() - t_init
        path = save(output, model.num_timesteps)
    finally:
        venv.close()
    log.info("saved %s (%d steps, %.0f s); logs in %s", path, model.num_timesteps, wall, log_dir)
    return TrainResult(policy_path=path, log_dir=log_dir, history=_read_csv(log_dir / "progress.csv"), wall_s=wall, model=model)


# ------------------------------------------------------------------------------------------------ track
def track_motion(motion, policy_path: str | os.PathLike | None, *, assets=None, start: int = 0,
                 video: str | os.PathLike | None = None, camera: str | None = None, size=(640, 480),
                 open_loop: bool = True) -> dict:
    """Track ``motion`` (RobotMotion or .npz path) from frame ``start`` with a policy and/or open-loop PD.

    Returns ``{"motion": name, "policy_file": path or None, "policy": summary, "open_loop": summary}``
    (summaries of :class:`handx_robot.sim.tracking_env.Rollout`; ``"video": path`` when written); the
    video (``size`` = (width, height) px) shows the policy rollout (open-loop without a policy).
    """
    from handx_robot.sim.policy_export import check_compatible, load_policy
    from handx_robot.sim.tracking_env import HandXTrackingEnv, TrackingConfig, load_motions, rollout

    clips = load_motions(motion)
    policy = load_policy(policy_path) if policy_path is not None else None
    if policy is not None:
        cfg = TrackingConfig.from_dict(policy.meta["tracking_config"])
        cfg = dataclasses.replace(cfg, random_start=False, episode_frames=None)
    else:
        cfg = TrackingConfig(random_start=False)
    env = HandXTrackingEnv([m for _, m in clips], config=cfg, assets=assets, camera=camera,
                           render_mode="rgb_array" if video else None, render_size=tuple(size))
    if policy is not None:
        check_compatible(policy.meta, env.signature(), policy_path)
    T = int(env.bank.lengths[0])
    if not 0 <= start <= T - 2:
        raise ConfigError(f"--start {start}: the motion has {T} frames; allowed 0..{T - 2}")
    out: dict[str, Any] = {"motion": clips[0][0], "policy_file": None if policy_path is None else str(policy_path)}

    def run(grab) -> None:
        if policy is not None:
            out["policy"] = rollout(env, policy, 0, start, on_step=grab).summary()
        if open_loop or policy is None:
            out["open_loop"] = rollout(env, None, 0, start, on_step=grab if policy is None else None).summary()

    if video:  # frames stream into the file as they are rendered (a failed run leaves no file)
        from handx_robot.sim.render import VideoWriter

        from handx_robot.motion import atomic_write

        def write(tmp: str) -> None:
            writer = VideoWriter(tmp, fps=1.0 / env.backend.layout.control_dt)
            try:
                run(lambda e: writer.append(e.render()))
            finally:
                writer.close()

        atomic_write(Path(video), write)
        out["video"] = str(video)
    else:
        run(None)
    env.close()
    return out
