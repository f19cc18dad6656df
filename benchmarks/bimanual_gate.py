"""Why frames go through the bimanual solve: per generated two-hand clip, how many frames the gate
(:meth:`handx_robot.retarget.interaction.refine.BimanualRefiner.needs_solve`) sent to it and why.

Reasons, in the gate's order: the human's hands touch; the robot hands' collision geoms are within the
margin of each other; fingers of one hand penetrate each other; a correction left by earlier frames is
fading out; or none (the per-hand result stands). The end-to-end speed of #17
(``benchmarks/bimanual_end_to_end.py``) depends on how many frames take the solve and at what cost.

Corpora as in ``bimanual_end_to_end.py``: ``mixed`` (``dataset_scale.py``'s ten prompts) and ``contact``
(``bimanual_interaction.py``'s five), seed 0, offline (``retarget_motion``, ``--interaction auto``).

Rerun: ``.venv/bin/python benchmarks/bimanual_gate.py [--robots leap allegro ...] [--corpora mixed contact]
[--assets DIR]``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bimanual_interaction import PROMPTS as CONTACT  # noqa: E402
from dataset_scale import PROMPTS as MIXED  # noqa: E402
from handx_robot.retarget.bimanual import retarget_motion  # noqa: E402
from handx_robot.retarget.interaction.refine import BimanualRefiner  # noqa: E402

from handx_robot.generate import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))
REASONS = ("human touch", "hands within margin", "fingers penetrate", "fading", "none")


def count_reasons() -> dict:
    """Wrap the gate: every later call adds its reason to the returned dict."""
    counts = dict.fromkeys(REASONS, 0)
    gate = BimanualRefiner.needs_solve

    def counted(self, st, touching, corr):
        need, c = gate(self, st, touching, corr)
        w = self.world
        if need == "near":
            cross = w.geom_side[c.geom[:, 0]] != w.geom_side[c.geom[:, 1]] if len(c.dist) else np.zeros(0, bool)
            reason = ("human touch" if (touching & self._inter).any() else
                      "hands within margin" if cross.any() else "fingers penetrate")  # fmt: skip
        else:
            reason = "fading" if need == "fade" else "none"
        counts[reason] += 1
        return need, c

    BimanualRefiner.needs_solve = counted
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robots", nargs="+", default=["leap", "allegro", "shadow_builtin"])
    ap.add_argument("--corpora", nargs="+", default=["mixed", "contact"], choices=("mixed", "contact"))
    ap.add_argument("--assets", default=str(SHARED / "assets" / "dex-urdf"))
    args = ap.parse_args()
    counts = count_reasons()
    print("| robot | corpus | prompt | frames | " + " | ".join(REASONS) + " |")
    print("|---|---|---|---|" + "---|" * len(REASONS))
    for robot in args.robots:
        assets = None if robot.endswith("builtin") else args.assets
        if assets is not None and not Path(assets).is_dir():
            print(f"| {robot} | skipped: no asset directory {assets} |")
            continue
        for corpus in args.corpora:
            total = dict.fromkeys(REASONS, 0)
            for prompt in MIXED if corpus == "mixed" else CONTACT:
                motion = generate(prompt, seed=0)
                if not motion.present.all():
                    continue
                for k in counts:
                    counts[k] = 0
                retarget_motion(motion, f"{robot}_left", f"{robot}_right", assets=assets, interaction="auto")
                for k in REASONS:
                    total[k] += counts[k]
                print(f"| {robot} | {corpus} | {prompt} | {motion.num_frames} | "
                      + " | ".join(str(counts[k]) for k in REASONS) + " |", flush=True)
            n = sum(total.values())
            print(f"| {robot} | {corpus} | **all** | {n} | "
                  + " | ".join(f"{total[k]} ({100 * total[k] / max(n, 1):.0f} %)" for k in REASONS) + " |", flush=True)
    print("rerun: .venv/bin/python benchmarks/bimanual_gate.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
