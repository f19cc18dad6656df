"""Why frames leave the per-hand result: per generated two-hand clip, how many frames the gate
(:meth:`handx_robot.retarget.interaction.refine.BimanualRefiner.needs_solve`) sent to the bimanual solve and
why, how many kept a fading correction without a solve, and how many kept the per-hand result.

Reasons, from the report's ``interaction.bimanual_frames.by_reason``: the human's hands touch; the robot
hands' collision geoms are nearer than ``apart_m``; fingers of one hand penetrate each other. ``fading``: a
correction left by solved frames shrinks (``refine.fade``) and one collision query found nothing near.
The end-to-end speed of #17 (``benchmarks/bimanual_end_to_end.py``) depends on how many frames take the
solve and at what cost.

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bimanual_interaction import PROMPTS as CONTACT  # noqa: E402
from dataset_scale import PROMPTS as MIXED  # noqa: E402
from handx_robot.retarget.bimanual import retarget_motion  # noqa: E402
from handx_robot.retarget.interaction import GATE_REASONS  # noqa: E402

from handx_robot.generate import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))
REASONS = (*GATE_REASONS, "fading", "none")


def reasons(report: dict) -> dict:
    """The frames per reason of one retarget report."""
    bf = report["interaction"]["bimanual_frames"]
    out = dict(bf["by_reason"])
    out["fading"] = bf["faded"]
    out["none"] = report["num_frames"] - sum(out.values())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robots", nargs="+", default=["leap", "allegro", "shadow_builtin"])
    ap.add_argument("--corpora", nargs="+", default=["mixed", "contact"], choices=("mixed", "contact"))
    ap.add_argument("--assets", default=str(SHARED / "assets" / "dex-urdf"))
    args = ap.parse_args()
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
                _, report = retarget_motion(motion, f"{robot}_left", f"{robot}_right", assets=assets, interaction="auto")
                counts = reasons(report)
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
