"""``handx-robot train-tracker`` / ``handx-robot track``: argparse around :mod:`handx_robot.sim.training`.

train-tracker: PPO residual tracking policies on the CPU (:func:`handx_robot.sim.training.train_tracker`),
optional TorchScript / ONNX export. track: runs a policy (and open-loop PD for comparison) on a robot
motion from its first frame (:func:`handx_robot.sim.training.track_motion`); writes metrics JSON and an
optional video.

Module-level imports stay light (``--help`` is fast); torch / SB3 / MuJoCo load inside the functions.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from handx_robot.sim.training import TrainSettings, track_motion, train_tracker

from handx_robot.errors import ConfigError

__all__ = [
    "add_arguments_train_tracker",
    "run_train_tracker",
    "add_arguments_track",
    "run_track",
]


def _robots_arg(args) -> dict[str, str] | None:
    if not args.robot:
        return None
    from handx_robot.retarget.robots import resolve_robot_ids

    from handx_robot.motion import SIDES

    out: dict[str, str] = {}
    for item in ",".join(args.robot).split(","):
        if item.strip():
            out.update(resolve_robot_ids(item.strip(), None, None, assets=args.assets, present=SIDES))
    return out


def _only_motion_sides(robots: dict[str, str] | None, motions) -> dict[str, str] | None:
    """Keep the robots of the sides the motions have (a family shorthand names both)."""
    if robots is None:
        return None
    from handx_robot.sim.tracking_env import load_motions

    sides = set(load_motions(list(motions)[:1])[0][1].sides)  # the first file (train_tracker loads them all)
    return {s: r for s, r in robots.items() if s in sides}


def add_arguments_train_tracker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--motions", nargs="+", required=True, metavar="FILE", help="robot motion .npz files (training clips)")
    p.add_argument("--robot", action="append", metavar="ID",
                   help="robot id(s) or family (shadow, shadow_builtin); must match the motions (default: the motions' robots)")
    p.add_argument("--assets", help="robot asset directory (dex-urdf layout)")
    p.add_argument("-o", "--output", required=True, help="policy .zip to write")
    p.add_argument("--steps", type=int, default=None,
                   help=f"PPO env steps (default {TrainSettings.steps}; with --init ilc 0, i.e. keep the fitted actor: "
                        "what fine-tuning does, see benchmarks/RESULTS.md (benchmarks/tracking_eval.py))")
    p.add_argument("--envs", type=int, default=1, help="parallel env processes (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--horizon", type=int, default=3, help="reference frames ahead in the observation (K)")
    p.add_argument("--n-steps", type=int, default=TrainSettings.n_steps, help="PPO rollout length per env")
    p.add_argument("--batch-size", type=int, default=TrainSettings.batch_size)
    p.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    p.add_argument("--lr", type=float, default=TrainSettings.learning_rate)
    p.add_argument("--net", default="256,256", help="hidden layer sizes, comma-separated")
    p.add_argument("--episode-frames", type=int, help="max frames per training episode (default: to the clip end)")
    p.add_argument("--time-limit", type=float, metavar="S", help="stop training after S seconds of wall time")
    p.add_argument("--checkpoint-every", type=int, default=TrainSettings.checkpoint_every, help="env steps; 0 = none")
    p.add_argument("--log-dir", help="CSV/TensorBoard logs and checkpoints (default: OUTPUT_logs/)")
    p.add_argument("--torchscript", metavar="FILE", help="also export the policy to TorchScript (.pt)")
    p.add_argument("--onnx", metavar="FILE", help="also export the policy to ONNX (.onnx)")
    p.add_argument("--init", choices=("none", "ilc"), default="none",
                   help="ilc: fit a linear actor to iterative-learning-control residuals of the clips first, "
                        "then PPO fine-tunes it for --steps (0 = keep the fitted actor)")
    p.add_argument("--ilc-iterations", type=int, default=TrainSettings.ilc_iterations)
    p.add_argument("--ridge", type=float, default=TrainSettings.ridge, help="ridge penalty of the linear fit, per sample")


def run_train_tracker(args) -> int:
    from handx_robot.sim.tracking_env import TrackingConfig

    try:
        net = tuple(int(v) for v in str(args.net).split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--net {args.net!r}: give comma-separated layer sizes, e.g. 256,256") from None
    settings = TrainSettings(
        steps=args.steps if args.steps is not None else (0 if args.init == "ilc" else TrainSettings.steps), envs=args.envs, n_steps=args.n_steps, batch_size=args.batch_size, epochs=args.epochs,
        learning_rate=args.lr, net_arch=net, checkpoint_every=args.checkpoint_every, seed=args.seed,
        time_limit_s=args.time_limit, init=args.init, ilc_iterations=args.ilc_iterations, ridge=args.ridge,
    )
    config = TrackingConfig(horizon=args.horizon, episode_frames=args.episode_frames)
    robots = _only_motion_sides(_robots_arg(args), args.motions)
    result = train_tracker(args.motions, args.output, robots=robots, config=config, settings=settings, log_dir=args.log_dir)
    print(f"policy: {result.policy_path}  ({result.wall_s:.0f} s; logs: {result.log_dir})")
    if args.torchscript:
        from handx_robot.sim.policy_export import export_torchscript, load_policy

        out = export_torchscript(load_policy(result.policy_path), args.torchscript)
        print(f"torchscript: {out} (+ {out.name}.json)")
    if args.onnx:
        from handx_robot.sim.policy_export import export_onnx, load_policy

        out = export_onnx(load_policy(result.policy_path), args.onnx)
        print(f"onnx: {out} (+ {out.name}.json)")
    return 0


# ------------------------------------------------------------------------------------------------ track
def add_arguments_track(p: argparse.ArgumentParser) -> None:
    p.add_argument("motion", help="robot motion .npz (from `handx-robot retarget`)")
    p.add_argument("--policy", help="policy .zip from `handx-robot train-tracker` (omit: open-loop PD only)")
    p.add_argument("--video", help="write an .mp4 of the tracked motion")
    p.add_argument("--metrics", help="write metrics JSON (policy and open-loop PD)")
    p.add_argument("--start", type=int, default=0, help="first motion frame (default 0)")
    p.add_argument("--camera", help="scene camera for the video (front, back, left, right, top, closeup)")
    p.add_argument("--size", default="640x480", help="video size WxH (default %(default)s)")
    p.add_argument("--assets", help="robot asset directory (dex-urdf layout)")
    p.add_argument("--no-open-loop", action="store_true", help="skip the open-loop PD comparison")


def run_track(args) -> int:
    if args.video and not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before mujoco is imported
    try:
        w, h = (int(v) for v in str(args.size).lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {args.size!r}: give WxH, e.g. 640x480") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise ConfigError(f"--size {args.size}: width and height must be in [16, 4096]")
    out = track_motion(args.motion, args.policy, assets=args.assets, start=args.start, video=args.video,
                       camera=args.camera, size=(w, h), open_loop=not args.no_open_loop)
    for key in ("policy", "open_loop"):
        if key in out:
            s = out[key]
            f1 = s["contact_f1"]["f1"]
            print(f"{key:>9}: {s['steps']}/{s['clip_frames'] - 1} steps, success {s['success']}, "
                  f"tip error {1000 * s['mean_tip_error_m']:.1f} mm, wrist error {1000 * s['mean_wrist_pos_error_m']:.1f} mm, "
                  f"contact F1 {f1:.2f}")
    if args.metrics:
        from handx_robot.motion import atomic_write

        atomic_write(Path(args.metrics), lambda tmp: Path(tmp).write_text(json.dumps(out, indent=2)))
        print(f"metrics: {args.metrics}")
    if args.video:
        print(f"video: {args.video}")
    return 0
