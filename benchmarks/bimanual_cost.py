"""Where the bimanual stage's time goes, per robot: MuJoCo's collision passes, the QPs, and the Python around them.

#17's end-to-end target (``benchmarks/bimanual_end_to_end.py``) asks for 10x dex-retargeting's per-hand rate. This
benchmark shows what bounds it: the stage (``solve_bimanual``, one process, one sequence) on ``--frames`` frames of
the contact-rich corpus of ``bimanual_end_to_end.py``, with the two calls that run compiled code timed around them:

* ``TwoHandWorld._collide``: one ``mj_collision`` pass and the copy of its contacts (two per query: the pairs across
  the hands at the margin, those within a hand at the apart distance), with the raw contacts it returns (a box
  against a box gives up to eight) and the geom pairs a query keeps (its deepest point each: the QP's rows);
* ``daqp.solve``: the QP of one SQP iteration;
* the rest: the Python that sets the state, reads the contacts, builds the gradients and the QP (and the shape
  terms' compiled kernel, a few per cent; and the two-hand world's compilation, once per robot, tenths of a
  second).

Prints per robot the stage's frames/s, its solved frames and QPs (one per SQP iteration), the seconds and share of each part,
the stage's frames/s with every part but the collision passes taken away: the most any rewrite of the Python
and the QP could give while the solve queries MuJoCo as it does, and a digest of the stage's output (both hands'
joints and base poses, SHA-1, first 12 hex digits): a change meant to keep the results can be checked against the
code before it. Timing adds a little overhead of its own (two
``perf_counter`` calls per pass and per QP). Run::

    .venv/bin/python benchmarks/bimanual_cost.py [--frames 2000] [--robots allegro leap inspire shadow shadow_builtin]
        [--assets DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bimanual_chunks import contact_corpus, per_hand  # noqa: E402
from handx_robot.retarget.interaction import InteractionOptions, chunks, solve_bimanual  # noqa: E402
from handx_robot.retarget.interaction import world as world_mod  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))


class Timers:
    """Seconds and calls of the wrapped functions, and the collision passes' raw contacts."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seconds = {"collision": 0.0, "qp": 0.0}
        self.calls = {"collision": 0, "qp": 0, "query": 0}
        self.raw = 0
        self.rows = 0


def instrument(timers: Timers) -> None:
    """Wrap ``TwoHandWorld._collide``, ``TwoHandWorld.contacts`` and ``daqp.solve`` with timers (this process only)."""
    import daqp

    cls = world_mod.TwoHandWorld
    collide, contacts, solve = cls._collide, cls.contacts, daqp.solve

    def timed_collide(self, *args):
        t0 = time.perf_counter()
        out = collide(self, *args)
        timers.seconds["collision"] += time.perf_counter() - t0
        timers.calls["collision"] += 1
        timers.raw += len(out[1])
        return out

    def counted_contacts(self, *args, **kwargs):
        c = contacts(self, *args, **kwargs)
        timers.calls["query"] += 1
        timers.rows += len(c.dist)
        return c

    def timed_solve(*args, **kwargs):
        t0 = time.perf_counter()
        out = solve(*args, **kwargs)
        timers.seconds["qp"] += time.perf_counter() - t0
        timers.calls["qp"] += 1
        return out

    cls._collide, cls.contacts, daqp.solve = timed_collide, counted_contacts, timed_solve


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--robots", nargs="+", default=["allegro", "leap", "inspire", "shadow", "shadow_builtin"])
    ap.add_argument("--assets", default=str(SHARED / "assets" / "dex-urdf"))
    args = ap.parse_args()
    world = contact_corpus(args.frames)
    timers = Timers()
    instrument(timers)
    chunks.CHUNK_FRAMES = 10**9  # one sequence on one process: the timers see every pass
    print(f"{world.num_frames} frames of the contact corpus, the bimanual stage on one process")
    print("| robot | stage frames/s | solved frames | QPs | collision passes: s (share), ms / pass, raw "
          "contacts / pass, rows / query | QPs: s (share), ms / QP | the rest: s (share) | frames/s, collision alone | output digest |")
    print("|---|---|---|---|---|---|---|---|---|")
    for robot in args.robots:
        hands = per_hand(world, robot, args.assets)
        if hands is None:
            continue
        timers.reset()
        t0 = time.perf_counter()
        out, sec = solve_bimanual(hands, world.fps, InteractionOptions())
        wall = time.perf_counter() - t0
        digest = hashlib.sha1()
        for side in sorted(out):
            digest.update(np.ascontiguousarray(out[side].result.q).tobytes())
            digest.update(np.ascontiguousarray(out[side].T_world_base).tobytes())
        bf = sec["bimanual_frames"]
        col, qp = timers.seconds["collision"], timers.seconds["qp"]
        rest = wall - col - qp
        n, nq = max(timers.calls["collision"], 1), max(timers.calls["query"], 1)
        print(f"| {robot} | {world.num_frames / wall:.0f} | {bf['count']} ({bf['fraction']:.0%}) | {timers.calls['qp']} | "
              f"{col:.1f} ({col / wall:.0%}), {1e3 * col / n:.3f}, {timers.raw / n:.0f}, {timers.rows / nq:.0f} | "
              f"{qp:.1f} ({qp / wall:.0%}), {1e3 * qp / max(timers.calls['qp'], 1):.3f} | {rest:.1f} ({rest / wall:.0%}) | "
              f"{world.num_frames / max(col, 1e-9):.0f} | {digest.hexdigest()[:12]} |", flush=True)  # fmt: skip
    print("rerun: .venv/bin/python benchmarks/bimanual_cost.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
