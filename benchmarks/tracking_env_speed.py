"""Throughput of ``HandXTracking-v0`` on the MuJoCo CPU backend (one process = one core).

Two built-in Shadow hands (gymnasium-robotics MJCF), 30 Hz control, a smooth sinusoid clip within the
joint limits. Reports env steps/s with zero actions (open-loop PD) and random actions, and how much of
a step is physics (``mj_step``). Target: >= 1,000 env steps/s per core.

With ``--vec-envs B`` it also times :class:`HandXTrackingVecEnv` (B envs on one batched backend) on the
MuJoCo CPU backend and on MJX (jit-compiled and vmapped; JAX's default device: the CPU here, a GPU
where JAX has one), with MJX's one-off compile time reported apart.

Rerun: ``MUJOCO_GL=egl .venv/bin/python benchmarks/tracking_env_speed.py [--steps 3000] [--substeps 6] [--vec-envs 16]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import mujoco
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from handx_robot.sim.scene import HandModel, build_scene  # noqa: E402
from handx_robot.sim.synthetic import sinusoid_motion  # noqa: E402
from handx_robot.sim.tracking_env import HandXTrackingEnv, HandXTrackingVecEnv, TrackingConfig  # noqa: E402


def measure_vec(clip, cfg: TrackingConfig, backend: str, num_envs: int, calls: int) -> dict:
    """Env steps/s of ``num_envs`` envs on one batched backend, random actions, autoreset on."""
    t0 = time.perf_counter()
    venv = HandXTrackingVecEnv([clip], num_envs=num_envs, config=cfg, backend=backend)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    act = lambda: rng.uniform(-1, 1, venv.action_space.shape).astype(np.float32)  # noqa: E731
    venv.step(act())  # MJX compiles here
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(calls):
        venv.step(act())
    wall = time.perf_counter() - t0
    device = str(getattr(venv.backend, "device", "cpu (MuJoCo C)"))
    venv.close()
    return {"backend": backend, "device": device, "num_envs": num_envs, "calls": calls, "setup_and_compile_s": setup,
            "env_steps_per_s": calls * num_envs / wall, "ms_per_batched_step": 1e3 * wall / calls}


def measure(env: HandXTrackingEnv, steps: int, random: bool, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    resets = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) if random else zero
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
            resets += 1
    wall = time.perf_counter() - t0
    return {"steps": steps, "wall_s": wall, "steps_per_s": steps / wall, "resets": resets}


def physics_only(env: HandXTrackingEnv, steps: int) -> float:
    """Env steps/s of the bare physics (substeps x mj_step), same scene and state."""
    b = env.unwrapped.backend
    m, d = b.model, b.datas[0]
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(m, d, nstep=b.layout.substeps)
    return steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--substeps", type=int, default=TrackingConfig.substeps)
    p.add_argument("--seconds", type=float, default=10.0, help="clip length, s")
    p.add_argument("--repeats", type=int, default=3, help="repeat each measurement, report the median and best")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--vec-envs", type=int, default=0, help="also time the batched vector env with this many envs "
                   "on the mujoco and mjx backends (0: skip)")
    p.add_argument("--vec-calls", type=int, default=50, help="batched steps per vector-env measurement")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    scene = build_scene([HandModel.from_registry("shadow_builtin_left"), HandModel.from_registry("shadow_builtin_right")])
    clip = sinusoid_motion(scene, seconds=args.seconds, fps=30.0, seed=0)
    cfg = dataclasses.replace(TrackingConfig(), substeps=args.substeps)
    env = HandXTrackingEnv([clip], config=cfg)
    measure(env, 100, False)  # warm-up
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}",
        "mujoco": mujoco.__version__,
        "config": {"hands": "shadow_builtin_left + shadow_builtin_right", "control_hz": 30, "substeps": args.substeps,
                   "physics_dt_s": 1 / 30 / args.substeps, "obs_dim": env.observation_space.shape[0],
                   "act_dim": env.action_space.shape[0]},
        "zero_action": [measure(env, args.steps, False) for _ in range(args.repeats)],
        "random_action": [measure(env, args.steps, True, seed=k) for k in range(args.repeats)],
        "physics_only_steps_per_s": [physics_only(env, args.steps) for _ in range(args.repeats)],
    }
    med = {k: float(np.median([m["steps_per_s"] for m in out[k]])) for k in ("zero_action", "random_action")}
    best = {k: float(np.max([m["steps_per_s"] for m in out[k]])) for k in ("zero_action", "random_action")}
    phys = float(np.median(out["physics_only_steps_per_s"]))
    out["median"], out["best"] = med, best
    z, r = med["zero_action"], med["random_action"]
    print(f"HandXTracking-v0, 2 Shadow hands, 30 Hz, {args.substeps} substeps ({1000 / 30 / args.substeps:.2f} ms), "
          f"{args.steps} steps, one process")
    print(f"  (median / best of {args.repeats}; the machine's load: {os.getloadavg()[0]:.2f})")
    print(f"  zero action (open-loop PD): {z:8.0f} / {best['zero_action']:.0f} env steps/s")
    print(f"  random action:              {r:8.0f} / {best['random_action']:.0f} env steps/s  (incl. resets)")
    print(f"  physics only (mj_step):     {phys:8.0f} env steps/s")
    print(f"  target >= 1000 env steps/s per core (median): {'met' if min(z, r) >= 1000 else 'NOT met'}")
    if args.vec_envs > 0:
        out["vector"] = []
        for backend in ("mujoco", "mjx"):
            v = measure_vec(clip, cfg, backend, args.vec_envs, args.vec_calls)
            out["vector"].append(v)
            print(f"  vector env, {v['num_envs']} envs on {backend} ({v['device']}): {v['env_steps_per_s']:8.0f} env steps/s, "
                  f"{v['ms_per_batched_step']:.1f} ms per batched step, setup+compile {v['setup_and_compile_s']:.1f} s")
    print("rerun: MUJOCO_GL=egl .venv/bin/python benchmarks/tracking_env_speed.py " + " ".join(argv or sys.argv[1:]))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
