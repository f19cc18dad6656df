"""Open-loop PD replay vs a PPO residual policy on held-out clips (``HandXTracking-v0``, CPU).

Clips: synthetic bimanual motions of two built-in Shadow hands (gymnasium-robotics MJCF) at 30 fps:
every actuated joint follows a sinusoid inside its range (0.4-1.6 Hz, random amplitude and phase), each
wrist a smooth path (sums of sinusoids, +-3 cm, +-0.3 rad) while the hands' separation oscillates so
that some clips bring them into contact (hand-hand contact events in the kinematic reference).
Training clips use seeds 0..N-1, held-out clips seeds 1000.. (never seen in training).

Metrics per clip, tracked from frame 0 to the end (or termination): mean fingertip error (m), mean
wrist position error (m), hand-hand contact event F1 vs the kinematic reference
(:func:`handx_robot.metrics.event_f1`, IoU >= 0.5), success (reached the clip's end without the
env's termination: mean fingertip error > 4 cm or wrist error > 5 cm for 0.2 s). Targets: the policy
lowers the mean fingertip error by >= 30 % with >= 90 % success, trained within one CPU hour.

Rerun (one core; ``--minutes`` bounds the training wall time):
``MUJOCO_GL=egl .venv/bin/python benchmarks/tracking_eval.py --minutes 60 --out /tmp/tracking_eval`` (PPO from scratch)
``MUJOCO_GL=egl .venv/bin/python benchmarks/tracking_eval.py --init ilc --train-clips 200 --steps 0 --out /tmp/ilc``
(ILC + linear actor only; add ``--steps N --minutes M`` for PPO fine-tuning after it)
Evaluate an existing policy: ``... benchmarks/tracking_eval.py --policy /tmp/tracking_eval/policy.zip``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from handx_robot.retarget.robot_motion import HandTrajectory, RobotMotion, save_robot_motion  # noqa: E402
from handx_robot.sim.backends.mujoco_backend import MujocoBackend  # noqa: E402
from handx_robot.sim.policy_export import check_compatible, load_policy  # noqa: E402
from handx_robot.sim.scene import HandModel, HandScene  # noqa: E402
from handx_robot.sim.tracking_env import HandXTrackingEnv, TrackingConfig, rollout  # noqa: E402
from handx_robot.sim.training import TrainSettings, train_tracker  # noqa: E402

from handx_robot.rotations import quat_from_rotvec  # noqa: E402

log = logging.getLogger("tracking_eval")
ROBOTS = ("shadow_builtin_left", "shadow_builtin_right")


def synthetic_clip(scene: HandScene, seed: int, seconds: float = 4.0, fps: float = 30.0, backend=None,
                   max_penetration_m: float = 0.004) -> RobotMotion:
    """A smooth bimanual clip within the joint limits (see the module docstring). With ``backend`` (a
    :class:`MujocoBackend` of the same hands) the hands are moved apart until the kinematic reference's
    hand-hand penetration is at most ``max_penetration_m``: touches, not overlaps."""
    extra = 0.0
    for _ in range(40):
        clip = _synthetic_clip(scene, seed, seconds, fps, extra)
        if backend is None:
            return clip
        kin = backend.kinematics(
            {s: h.model_qpos(backend.layout.hands[s].joint_names, backend.layout.hands[s].mimic)
             for s, h in clip.hands.items()}, {s: h.wrist_pose for s, h in clip.hands.items()}
        )
        depth = float(kin.hand_hand_depth.max())
        if depth <= max_penetration_m:
            return clip
        extra += max(0.002, 0.5 * (depth - max_penetration_m))
    raise RuntimeError(f"seed {seed}: could not separate the hands")


def _synthetic_clip(scene: HandScene, seed: int, seconds: float, fps: float, extra_gap: float) -> RobotMotion:
    rng = np.random.default_rng(seed)
    T = int(round(seconds * fps))
    t = np.arange(T) / fps
    sep_f = rng.uniform(0.2, 0.6)
    sep_phase = rng.uniform(0, 2 * np.pi)
    min_gap = rng.uniform(0.0, 0.08)  # closest wrist-wrist half distance, m (before separating)
    half_sep = min_gap + extra_gap + 0.04 * (1 + np.cos(2 * np.pi * sep_f * t + sep_phase))
    hands = {}
    for side in scene.sides:
        names = scene.actuated_joint_names(side)
        limits = scene.joint_limits(side)
        q = np.zeros((T, len(names)))
        for j, n in enumerate(names):
            lo, hi = limits[n]
            if not np.isfinite(lo):
                lo, hi = -0.5, 0.5
            mid, half = (lo + hi) / 2, (hi - lo) / 2
            q[:, j] = mid + rng.uniform(0.3, 0.8) * half * np.sin(2 * np.pi * rng.uniform(0.4, 1.6) * t + rng.uniform(0, 2 * np.pi))
        w = np.zeros((T, 7))
        sign = -1.0 if side == "left" else 1.0
        w[:, 0] = sign * half_sep
        for axis in (1, 2):
            for _ in range(2):
                w[:, axis] += rng.uniform(0.005, 0.015) * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 2 * np.pi))
        w[:, 2] += 0.3
        rv = np.stack([rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t + rng.uniform(0, 2 * np.pi))
                       for _ in range(3)], axis=1)
        w[:, 3:] = quat_from_rotvec(rv)
        hands[side] = HandTrajectory(robot=scene.robot_id(side), joint_names=names, qpos=q, wrist_pose=w,
                                     converged=np.ones(T, bool))
    return RobotMotion(fps=fps, hands=hands, text=f"synthetic clip seed {seed}")


def evaluate(env: HandXTrackingEnv, policy) -> list[dict]:
    return [rollout(env, policy, clip=c, start=0).summary() for c in range(env.bank.num_clips)]


def aggregate(rows: list[dict]) -> dict:
    f1 = [r["contact_f1"]["f1"] for r in rows]
    return {
        "clips": len(rows),
        "mean_tip_error_m": float(np.mean([r["mean_tip_error_m"] for r in rows])),
        "mean_wrist_pos_error_m": float(np.mean([r["mean_wrist_pos_error_m"] for r in rows])),
        "mean_wrist_rot_error_rad": float(np.mean([r["mean_wrist_rot_error_rad"] for r in rows])),
        "contact_f1": float(np.mean(f1)),
        "success_rate": float(np.mean([r["success"] for r in rows])),
        "ref_contact_events": int(sum(r["contact_f1"]["num_ref_events"] for r in rows)),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-clips", type=int, default=16)
    p.add_argument("--test-clips", type=int, default=6)
    p.add_argument("--seconds", type=float, default=4.0, help="clip length, s")
    p.add_argument("--minutes", type=float, default=60.0, help="training wall-time budget")
    p.add_argument("--steps", type=int, default=None, help="PPO step cap (default 5,000,000; with --init ilc 0)")
    p.add_argument("--envs", type=int, default=1, help="env processes for training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", choices=("none", "ilc"), default="none",
                   help="ilc: ILC on the training clips + a ridge-fitted linear actor, then PPO for --steps (0 = none)")
    p.add_argument("--noise-rollouts", type=int, default=5, help="with --init ilc: noisy replays per clip")
    p.add_argument("--policy", type=Path, help="evaluate this policy instead of training one")
    p.add_argument("--out", type=Path, default=Path("/tmp/tracking_eval"), help="policy, logs, clips, results.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    hands = [HandModel.from_registry(r) for r in ROBOTS]
    backend = MujocoBackend(hands)
    scene = backend.scene  # the clips read only joint names and limits from it
    train = [synthetic_clip(scene, s, args.seconds, backend=backend) for s in range(args.train_clips)]
    test = [synthetic_clip(scene, 1000 + s, args.seconds, backend=backend) for s in range(args.test_clips)]
    for i, m in enumerate(test):
        save_robot_motion(m, args.out / f"heldout_{i}.npz")
    config = TrackingConfig()
    t0 = time.perf_counter()
    if args.policy is None:
        settings = TrainSettings(steps=args.steps if args.steps is not None else (0 if args.init == "ilc" else 5_000_000), envs=args.envs, time_limit_s=60 * args.minutes, seed=args.seed,
                                 checkpoint_every=200_000, init=args.init,
                                 ilc_noise_rollouts=args.noise_rollouts)
        result = train_tracker(train, args.out / "policy.zip", config=config, settings=settings)
        policy_path, train_wall, train_steps = result.policy_path, result.wall_s, int(result.model.num_timesteps)
    else:
        policy_path, train_wall, train_steps = args.policy, None, None
    policy = load_policy(policy_path)
    eval_cfg = dataclasses.replace(TrackingConfig.from_dict(policy.meta["tracking_config"]), random_start=False)
    test_env = HandXTrackingEnv(test, config=eval_cfg)
    check_compatible(policy.meta, test_env.signature(), policy_path)
    train_env = HandXTrackingEnv(train, config=eval_cfg)
    res = {
        "setup": {"robots": ROBOTS, "fps": 30, "substeps": eval_cfg.substeps, "clip_seconds": args.seconds,
                  "train_clips": args.train_clips, "test_clips": args.test_clips, "train_wall_s": train_wall,
                  "train_steps": train_steps if train_steps is not None else policy.meta.get("training", {}).get("steps"),
                  "envs": args.envs, "policy": str(policy_path), "init": args.init,
                  "algorithm": policy.meta.get("training", {}).get("algorithm"),
                  "init_report": policy.meta.get("training", {}).get("init")},
        "heldout": {"open_loop": aggregate(evaluate(test_env, None)), "policy": aggregate(evaluate(test_env, policy))},
        "train": {"open_loop": aggregate(evaluate(train_env, None)), "policy": aggregate(evaluate(train_env, policy))},
    }
    ol, pol = res["heldout"]["open_loop"], res["heldout"]["policy"]
    res["heldout"]["tip_error_reduction"] = 1 - pol["mean_tip_error_m"] / ol["mean_tip_error_m"]
    (args.out / "results.json").write_text(json.dumps(res, indent=2))
    print(f"\nHandXTracking-v0, 2 Shadow hands, {args.test_clips} held-out clips x {args.seconds:g} s "
          f"(policy: {res['setup']['algorithm']}, {args.train_clips} training clips, {res['setup']['train_steps']} PPO steps, "
          f"{train_wall or 0:.0f} s training, {args.envs} env process(es))")
    print(f"{'':>22} {'tip err mm':>10} {'wrist mm':>9} {'contact F1':>10} {'success':>8}")
    for split in ("heldout", "train"):
        for name in ("open_loop", "policy"):
            a = res[split][name]
            print(f"{split + ' ' + name:>22} {1000 * a['mean_tip_error_m']:10.2f} {1000 * a['mean_wrist_pos_error_m']:9.2f} "
                  f"{a['contact_f1']:10.2f} {a['success_rate']:8.0%}")
    red = res["heldout"]["tip_error_reduction"]
    print(f"held-out fingertip error reduction: {red:.0%} (target >= 30 %), success {pol['success_rate']:.0%} (target >= 90 %)")
    print(f"total {time.perf_counter() - t0:.0f} s; results: {args.out / 'results.json'}")
    print("rerun: MUJOCO_GL=egl .venv/bin/python benchmarks/tracking_eval.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
