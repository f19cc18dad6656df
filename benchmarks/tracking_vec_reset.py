"""What an autoreset costs a step of the batched tracking env (``HandXTrackingVecEnv``).

On a step where any env's episode ends, the vector env resets those envs and then reads the state
and builds the observation of *every* env again (not only the reset rows). This measures whether
that matters: the median step time with and without a reset in it, and, separately, the cost of
one ``read_state`` + ``observe`` of all envs (what observing only the reset rows could save at most)
and of resetting two envs. Two built-in Shadow hands (MuJoCo CPU backend), sinusoid clips, short
episodes (``--episode-frames``) so that many steps contain a reset.

Rerun: ``.venv/bin/python benchmarks/tracking_vec_reset.py [--envs 16] [--steps 200] [--episode-frames 20]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handx_robot.sim.scene import HandModel, build_scene  # noqa: E402
from handx_robot.sim.synthetic import sinusoid_motion  # noqa: E402
from handx_robot.sim.tracking_env import HandXTrackingVecEnv, TrackingConfig  # noqa: E402

ROBOTS = ("shadow_builtin_left", "shadow_builtin_right")
RERUN = ".venv/bin/python benchmarks/tracking_vec_reset.py"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--episode-frames", type=int, default=20)
    args = p.parse_args(argv)

    scene = build_scene([HandModel.from_registry(r) for r in ROBOTS])
    clips = [sinusoid_motion(scene, seconds=2.0, seed=s) for s in range(4)]
    venv = HandXTrackingVecEnv(clips, num_envs=args.envs, config=TrackingConfig(episode_frames=args.episode_frames))
    venv.reset(seed=0)
    zero = np.zeros((args.envs, venv.single_action_space.shape[0]), np.float32)
    plain, with_reset = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        _, _, _, _, info = venv.step(zero)
        (with_reset if "final_obs" in info else plain).append(time.perf_counter() - t0)
    task, reps = venv.task, 50
    t0 = time.perf_counter()
    for _ in range(reps):
        task.observe(venv.backend.read_state())
    observe_all = (time.perf_counter() - t0) / reps
    ids = np.arange(min(2, args.envs))
    t0 = time.perf_counter()
    for _ in range(reps):
        task.reset_envs(ids, np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=np.int64))
    reset_two = (time.perf_counter() - t0) / reps
    venv.close()

    def med(v: list) -> str:
        return f"{1e3 * np.median(v):.2f} ms" if v else "n/a"

    print(f"[1] {args.envs} envs, two built-in Shadow hands, episodes of {args.episode_frames} frames: median step "
          f"{med(plain)} without a reset ({len(plain)} steps), {med(with_reset)} with one ({len(with_reset)} steps)")
    print(f"[2] read_state + observe of all {args.envs} envs: {1e3 * observe_all:.2f} ms (the most that observing only "
          f"the reset rows could save per step with a reset); reset_envs of {len(ids)} envs: {1e3 * reset_two:.2f} ms")
    print(f"rerun: {RERUN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
