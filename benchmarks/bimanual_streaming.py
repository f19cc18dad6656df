"""The bimanual solve streamed one frame at a time, as the ROS ``retarget`` node runs it with two hands
(:class:`handx_robot.retarget.interaction.BimanualStream`): per-hand streaming retargeters, then the
bimanual step with the human's contacts tracked frame by frame.

Motions: the contact-rich set of ``benchmarks/bimanual_interaction.py`` (generated, seed 0). Per robot
it prints: the deepest hand-hand penetration per hand and streamed, streamed frames over 2 mm, the
deepest finger-finger penetration streamed (MuJoCo's distances on the collision geometry), the share
of frames the gate sent to the bimanual step, and the streaming rate of both hands (per-hand solves +
bimanual step; issue #17's target: >= 200 frames/s) with the p95 and the longest time of one frame and the
frames over 33 ms (a 30 Hz stream's period).

The heap is frozen out of the cyclic garbage collector's reach before each robot's run, as the ROS nodes
freeze theirs once their graph is built (``ros_nodes/common.py``, ``freeze_gc``): without it, a full
collection of this process's growing heap (13-36 ms, measured with ``gc.callbacks``) lands in one frame's
time now and then (an Inspire frame of 38-50 ms when it runs after the other hands). ``--no-freeze``
leaves it; the line after the table gives the longest full collection during the runs either way.

``--seeds N``: each prompt with seeds 0..N-1 (default 1). ``--budget-ms B``: the bimanual step's time budget
per frame (``InteractionOptions.stream_budget_s``; the ROS node sets half its input period, 16.7 ms at 30 Hz;
default: none).

Rerun: ``.venv/bin/python benchmarks/bimanual_streaming.py [--assets DIR] [--robots shadow_builtin allegro ...]
[--seeds N] [--budget-ms B] [--no-freeze]``
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bimanual_interaction import PROMPTS  # noqa: E402
from handx_robot.retarget.interaction import BimanualStream, InteractionOptions, measure_frames  # noqa: E402
from handx_robot.retarget.robots import get_robot  # noqa: E402
from handx_robot.retarget.solver import HandProblem  # noqa: E402

from handx_robot.frames import FRAME_WORLD_ZUP  # noqa: E402
from handx_robot.generate import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))


def measure(stream, frames, per_hand: bool) -> dict:
    """MuJoCo's penetration per frame (:func:`measure_frames`) of the per-hand or the streamed result."""
    sides = stream.refiner.world.sides
    T = {s: np.array([(f.per_hand_T if per_hand else f.T)[s] for f in frames]) for s in sides}
    q = {s: np.array([(f.per_hand_q if per_hand else f.q)[s] for f in frames]) for s in sides}
    return measure_frames(stream.refiner, T, q)


def both_hands(robot: str, assets_dir: str) -> dict | None:
    """``{side: HandProblem}`` of ``{robot}_left`` / ``_right`` (the built-in ones without assets); None, with a
    table row saying why, where the asset directory is missing."""
    assets = None if robot.endswith("builtin") else assets_dir
    if assets is not None and not Path(assets).is_dir():
        print(f"| {robot} | skipped: no asset directory {assets} |")
        return None
    return {s: HandProblem(get_robot(f"{robot}_{s}", assets)) for s in ("left", "right")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=str(SHARED / "assets" / "dex-urdf"))
    parser.add_argument("--robots", nargs="+", default=["shadow_builtin", "allegro", "leap", "inspire", "shadow"])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--budget-ms", type=float, default=None)
    parser.add_argument("--no-freeze", action="store_true", help="leave the heap to the garbage collector")
    args = parser.parse_args()
    full, started = [], []  # durations of the full (generation 2) collections

    def timed(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started.append(time.perf_counter())
            else:
                full.append(time.perf_counter() - started.pop())

    gc.callbacks.append(timed)
    options = InteractionOptions(stream_budget_s=None if args.budget_ms is None else args.budget_ms / 1e3)
    motions = [generate(p, seed=k).in_frame(FRAME_WORLD_ZUP).joints for k in range(args.seeds) for p in PROMPTS]
    print(f"{len(motions)} motions ({sum(m.shape[0] for m in motions)} frames): {', '.join(PROMPTS)}, seeds "
          f"0..{args.seeds - 1}; time budget per frame: {'none' if args.budget_ms is None else f'{args.budget_ms} ms'}")
    print("| robot | per-hand max mm | streamed max mm | streamed frames > 2 mm | finger-finger max mm | "
          "bimanual frames | frames/s (both hands) | p95 ms/frame | max ms/frame | frames > 33 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for robot in args.robots:
        problems = both_hands(robot, args.assets)
        if problems is None:
            continue
        if not args.no_freeze:
            gc.freeze()
        per_hand, streamed, self_pen, solved, seconds = [], [], [], [], []
        for kp in motions:
            stream = BimanualStream(problems, options)
            frames = [stream.step({"left": kp[t, 0], "right": kp[t, 1]}) for t in range(kp.shape[0])]
            seconds += [f.seconds for f in frames]
            solved += [f.solved for f in frames]

            before, after = measure(stream, frames, per_hand=True), measure(stream, frames, per_hand=False)
            per_hand += list(before["hand_hand"])
            streamed += list(after["hand_hand"])
            self_pen += list(after["self"])
        streamed_a = np.array(streamed)
        print(f"| {robot} | {max(per_hand) * 1e3:.1f} | {streamed_a.max() * 1e3:.1f} | {(streamed_a > 0.002).sum()} | "
              f"{max(self_pen) * 1e3:.1f} | {np.mean(solved) * 100:.0f} % | {len(seconds) / sum(seconds):.0f} | "
              f"{np.percentile(seconds, 95) * 1e3:.0f} | {max(seconds) * 1e3:.0f} | "
              f"{sum(x > 1 / 30 for x in seconds)} |", flush=True)
    print(f"full garbage collections during the runs: {len(full)}, longest {max(full, default=0.0) * 1e3:.0f} ms "
          f"({'heap left to the collector' if args.no_freeze else 'heap frozen before each robot'})")
    print("rerun: .venv/bin/python benchmarks/bimanual_streaming.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
