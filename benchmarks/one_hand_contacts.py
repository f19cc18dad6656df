"""One hand alone: its fingers must not pass through each other, and it touches itself where the human's hand
did (a pinch, the thumb on a fingertip). The per-hand solver vs the same solve the two-hand motions take
(:mod:`handx_robot.retarget.interaction`, run on one hand), every shipped hand.

Motions: the right hand of the embedded composer's one-hand prompts (:data:`PROMPTS`, seeds 0..``--seeds``-1;
the idle left hand dropped) and, where ``../shared`` is present, the real DexMV capture (one right hand, camera
frame). For each robot and solver, measured with MuJoCo on the robot's collision geometry
(:mod:`handx_robot.retarget.interaction.measure`): the deepest finger-finger penetration and the frames over
2 mm, the contacts within the hand (recall / precision pooled over the motions, with the human's and the
robot's event counts), the report's fingertip shape error, the joints' acceleration RMS (rad/s^2, second
differences of the joint positions) and frames/s (the whole ``retarget_motion`` call).
Prints one row per (robot, solver) and the command to rerun::

    .venv/bin/python benchmarks/one_hand_contacts.py [--assets DIR] [--robots allegro leap ...] [--seeds N] [--approach S]
        [--per-motion]

``--per-motion`` also prints a line per motion: frames, and the tip shape error of both solvers.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bimanual_interaction import intra  # noqa: E402  (the within-hand column, pooled the same way)
from handx_robot.retarget.bimanual import retarget_hand, retarget_motion  # noqa: E402
from handx_robot.retarget.interaction import (  # noqa: E402
    BimanualRefiner,
    human_contact_mask,
    interaction_report,
    measure_frames,
)
from handx_robot.retarget.report import fidelity_report  # noqa: E402
from handx_robot.retarget.solver import SolverOptions  # noqa: E402

from handx_robot.frames import FRAME_WORLD_ZUP  # noqa: E402
from handx_robot.generate import generate  # noqa: E402
from handx_robot.readers import read_motion  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))
PROMPTS = ("make a fist with the right hand", "point with the right index finger",
           "pinch with the right thumb and index finger", "make an ok sign with the right hand",
           "touch the right thumb to each fingertip")  # fmt: skip


def right_only(motion):
    j = motion.joints.copy()
    j[:, 0] = 0.0
    return dataclasses.replace(motion, joints=j, present=np.array([False, True]))


def per_hand(motion, robot: str, assets) -> dict:
    """The per-hand solver's result measured as the solve's report measures it."""
    world = motion.in_frame(FRAME_WORLD_ZUP)
    t0 = time.perf_counter()
    hr = retarget_hand(world.joints[:, 1], "right", f"{robot}_right", assets=assets, options=SolverOptions(low_pass=False))
    seconds = time.perf_counter() - t0
    ref = BimanualRefiner({"right": hr.problem})
    _, events = human_contact_mask({"right": hr.kp_world}, ref.pairs, world.fps)
    sec = interaction_report(ref, measure_frames(ref, {"right": hr.T_world_base}, {"right": hr.result.q}), events, world.fps)
    tip = fidelity_report({"right": hr}, world.fps)["hands"]["right"]["fingertip_shape_error_m"]["mean"]
    return {**sec, "fps": world.num_frames / seconds, "tip_shape_m": tip, "accel": accel(hr.result.qpos, world.fps)}


def accel(qpos: np.ndarray, fps: float) -> float:
    """RMS of the joints' frame-to-frame acceleration (rad/s^2): qpos (T, J)."""
    return float(np.sqrt(np.mean((np.diff(qpos, 2, axis=0) * fps**2) ** 2)))


def solved(motion, robot: str, assets, approach_s: float | None = None) -> dict:
    from handx_robot.retarget.interaction import InteractionOptions

    opts = InteractionOptions() if approach_s is None else InteractionOptions(approach_s=approach_s)
    t0 = time.perf_counter()
    rm, rep = retarget_motion(motion, None, f"{robot}_right", assets=assets, interaction=opts)
    return {**rep["interaction"], "fps": motion.num_frames / (time.perf_counter() - t0),
            "tip_shape_m": rep["hands"]["right"]["fingertip_shape_error_m"]["mean"],
            "accel": accel(rm.hands["right"].qpos, motion.fps)}  # fmt: skip


def row(robot: str, name: str, reps: list[dict]) -> str:
    sp = max(r["self_penetration_m"]["max"] for r in reps) * 1e3
    over = sum(r["self_penetration_m"]["frames_over_2mm"] for r in reps)
    tip = np.mean([r["tip_shape_m"] for r in reps]) * 1e3
    fps = np.mean([r["fps"] for r in reps])
    acc = np.mean([r["accel"] for r in reps])
    return f"| {robot} | {name} | {sp:.1f} | {over} | {intra(reps)} | {tip:.1f} | {acc:.1f} | {fps:.0f} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", default=str(SHARED / "assets" / "dex-urdf"))
    ap.add_argument("--robots", nargs="+", default=["allegro", "leap", "inspire", "shadow", "shadow_builtin"])
    ap.add_argument("--seeds", type=int, default=2, help="each prompt with seeds 0..N-1 (default 2)")
    ap.add_argument("--approach", type=float, default=None, metavar="S",
                    help="the solve's InteractionOptions.approach_s (default: its default; 0: no look-ahead)")
    ap.add_argument("--per-motion", action="store_true", help="also a line per motion: the tip shape error of both solvers")
    args = ap.parse_args()
    motions = [right_only(generate(p, seed=k)) for k in range(args.seeds) for p in PROMPTS]
    names = [f"{p!r} seed {k}" for k in range(args.seeds) for p in PROMPTS]
    dexmv = SHARED / "data" / "dexmv_relocate_mustard_right.npz"
    if dexmv.is_file():
        motions.append(read_motion(dexmv, hand="right", frame="camera"))
        names.append("DexMV capture")
    print(f"{len(motions)} one-hand motions ({sum(m.num_frames for m in motions)} frames){', with the DexMV capture' if dexmv.is_file() else ''}")
    print("| robot | solver | finger-finger pen. max (mm) | frames > 2 mm | within the hand: recall / precision (events) "
          "| tip shape err (mm) | joint accel. RMS (rad/s^2) | frames/s |")
    print("|---|---|---|---|---|---|---|---|")
    for robot in args.robots:
        assets = None if robot.endswith("builtin") else args.assets
        if assets is not None and not Path(assets).is_dir():
            print(f"| {robot} | skipped: no asset directory {assets} |")
            continue
        ph, so = [], []
        for name, m in zip(names, motions, strict=True):
            ph.append(per_hand(m, robot, assets))
            so.append(solved(m, robot, assets, args.approach))
            if args.per_motion:
                print(f"  {robot} {name}: {m.num_frames} frames, tip shape error per-hand {ph[-1]['tip_shape_m'] * 1e3:.1f} mm, "
                      f"with the solve {so[-1]['tip_shape_m'] * 1e3:.1f} mm", flush=True)  # fmt: skip
        print(row(robot, "per-hand", ph), flush=True)
        print(row(robot, "with the solve", so), flush=True)
    print(f"\nrerun: .venv/bin/python benchmarks/one_hand_contacts.py {' '.join(sys.argv[1:])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
