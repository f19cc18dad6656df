"""A long motion's bimanual stage in chunks (``retarget/interaction/chunks.py``) against the same motion solved as one
sequence: what the splices cost and what the processes gain.

Motion: ``--frames`` frames of the contact-rich corpus of ``benchmarks/bimanual_end_to_end.py`` (the ten prompts of
``bimanual_interaction.py``, seeds 0-4, concatenated). Per robot, the per-hand solution once, then the bimanual stage
(``solve_bimanual``) three times: in chunks on 1 process, in chunks on ``--workers`` processes, and as one sequence
(the chunk length raised past the motion). Prints per run: wall seconds of the stage, inter-hand contact F1 and
recall, the deepest hand-hand and finger-finger penetration, the joints' acceleration RMS, the largest joint step
at a splice (rad, frame to frame) against the 99th percentile of the steps elsewhere, whether the 1- and
N-process outputs are the same to the bit; and the stage's non-converged share of its solved frames. ``--save
PATH`` also writes the motion (our .npz), for ``handx-robot retarget PATH ...`` by hand.

Run::

    .venv/bin/python benchmarks/bimanual_chunks.py [--frames 3000] [--robots allegro leap shadow] [--workers 2]
        [--assets DIR] [--save PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bimanual_end_to_end import build  # noqa: E402
from bimanual_interaction import joint_accel  # noqa: E402
from handx_robot.retarget.bimanual import retarget_hand  # noqa: E402
from handx_robot.retarget.interaction import InteractionOptions, chunks, solve_bimanual  # noqa: E402
from handx_robot.retarget.solver import SolverOptions  # noqa: E402

from handx_robot.frames import FRAME_WORLD_ZUP  # noqa: E402
from handx_robot.motion import load_motion  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))


def run(hands, fps: float, workers: int, one_sequence: bool = False):
    saved = chunks.CHUNK_FRAMES
    if one_sequence:
        chunks.CHUNK_FRAMES = 10**9
    try:
        t0 = time.perf_counter()
        new, sec = solve_bimanual(hands, fps, InteractionOptions(workers=workers))
        return new, sec, time.perf_counter() - t0
    finally:
        chunks.CHUNK_FRAMES = saved


def splice_steps(new, splices) -> tuple[float, float]:
    """(largest joint step at a splice, 99th percentile of the steps elsewhere), radians, both hands."""
    at, rest = [], []
    for hr in new.values():
        step = np.abs(np.diff(hr.result.q, axis=0)).max(axis=1)  # step[t]: frame t -> t + 1
        idx = np.asarray(splices, dtype=int) - 1
        at.append(step[idx] if len(idx) else np.zeros(0))
        rest.append(np.delete(step, idx))
    at = np.concatenate(at)
    return (float(at.max()) if len(at) else float("nan")), float(np.percentile(np.concatenate(rest), 99))


def contact_corpus(frames: int, save: Path | None = None):
    """``frames`` frames of the contact corpus (:func:`bimanual_end_to_end.build`) in the world frame; also written to
    ``save`` when given (our .npz)."""
    path = save or Path(os.environ.get("TMPDIR", "/tmp")) / f"handx_contact_corpus_{os.getpid()}.npz"
    build("contact", frames, {path: frames})
    world = load_motion(path).in_frame(FRAME_WORLD_ZUP)
    if save is None:
        path.unlink()
    return world


def per_hand(world, robot: str, assets: str):
    """Both hands' per-hand solutions of ``world`` on ``robot`` (``*_builtin``: no assets), or None after printing a
    table row that says why, where ``assets`` is not a directory."""
    builtin = robot.endswith("_builtin")
    if not builtin and not Path(assets).is_dir():
        print(f"| {robot} | skipped: no asset directory {assets} |")
        return None
    return {s: retarget_hand(world.joints[:, h], s, f"{robot}_{s}", assets=None if builtin else assets,
                             options=SolverOptions(low_pass=False))
            for h, s in enumerate(("left", "right"))}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--robots", nargs="+", default=["allegro", "leap", "shadow"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--assets", default=str(SHARED / "assets" / "dex-urdf"))
    ap.add_argument("--save", metavar="PATH", help="also write the motion here (our .npz)")
    args = ap.parse_args()
    world = contact_corpus(args.frames, Path(args.save) if args.save else None)
    print(f"{world.num_frames} frames of the contact corpus; chunks of {chunks.CHUNK_FRAMES}, warm-up "
          f"{chunks.WARMUP_FRAMES}, lead {chunks.LEAD_FRAMES}")
    print("| robot | run | stage s | inter-hand F1 / recall | pen. max mm hand-hand / finger-finger | joint accel. RMS "
          "rad/s^2 | splice step max rad (p99 elsewhere) | non-converged of solved |")
    print("|---|---|---|---|---|---|---|---|")
    for robot in args.robots:
        hands = per_hand(world, robot, args.assets)
        if hands is None:
            continue
        outs = {}
        for label, workers, whole in (("chunks, 1 process", 1, False), (f"chunks, {args.workers} processes", args.workers, False),
                                      ("one sequence", 1, True)):  # fmt: skip
            new, sec, wall = run(hands, world.fps, workers, whole)
            outs[label] = new
            f = sec["contact_f1"]["inter_hand"]
            bf = sec["bimanual_frames"]
            at, p99 = splice_steps(new, sec["chunks"]["splices"])
            print(f"| {robot} | {label} | {wall:.1f} | {f['f1']:.2f} / {f['recall']:.2f} | "
                  f"{sec['hand_hand_penetration_m']['max'] * 1e3:.1f} / {sec['self_penetration_m']['max'] * 1e3:.1f} | "
                  f"{joint_accel(new, world.fps):.2f} | {at:.3f} ({p99:.3f}) | {bf['non_converged']} / {bf['count']} |",
                  flush=True)  # fmt: skip
        a, b = outs["chunks, 1 process"], outs[f"chunks, {args.workers} processes"]
        same = all(np.array_equal(a[s].result.q, b[s].result.q) and np.array_equal(a[s].T_world_base, b[s].T_world_base)
                   for s in a)  # fmt: skip
        print(f"  {robot}: 1 and {args.workers} processes give the same joints and wrists to the bit: {same}")
    print("rerun: .venv/bin/python benchmarks/bimanual_chunks.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
