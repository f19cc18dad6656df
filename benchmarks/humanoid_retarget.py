"""Humanoids (#19): both arms and hands retargeted, per motion and side, with the issue's report.

For each humanoid (default: gr1_inspire, gr1_fourier) and motion (generated two-hand motions, seed 0;
plus the real one-hand DexMV capture of ../shared/data when present), after the automatic workspace
fit: the share of frames whose hand root is within 1 cm and 0.1 rad of its target, position error
p95/max, unreachable frames, the smallest arm-arm, arm-body and hand-body distances over a MuJoCo
kinematic replay of the result (collision geometry; negative = penetration) with the frames deeper than
2 mm, the fastest arm joint as a fraction of its speed limit, and frames/s (arms alone, and the whole
upper body: hands incl. the bimanual interaction solve + arms; one core, the fixed start-up cost of
building models excluded by a warm-up run). Then the streaming rate (HumanoidStream, one frame at a
time, what the ROS retarget node runs): mean frames/s and p95 ms per frame.

Targets (#19): >= 95 % of frames within 1 cm / 0.1 rad; no contact deeper than 2 mm; arm joint speeds
within limits; >= 300 upper-body frames/s offline; streaming >= 100 Hz.

Rerun: ``.venv/bin/python benchmarks/humanoid_retarget.py [--humanoids gr1_inspire ...] [--long-seconds 60]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from handx_robot.retarget.humanoid.retarget import retarget_humanoid
from handx_robot.retarget.humanoid.stream import HumanoidStream

from handx_robot.frames import FRAME_WORLD_ZUP
from handx_robot.generate import generate

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))
PROMPTS = (
    "wave with the right hand, then clap twice",
    "clap three times",
    "pinch with the right thumb and index finger twice, then clap",
    "wave with both hands",
    "make a fist with both hands",
    "touch the fingertips of both hands together",
)


def motions(long_seconds: float) -> list[tuple[str, object]]:
    out = [(p, generate(p, seed=0)) for p in PROMPTS]
    dexmv = SHARED / "data" / "dexmv_relocate_mustard_right.npz"
    if dexmv.is_file():
        from handx_robot.readers import read_motion

        out.append(("real: DexMV relocate (right hand)", read_motion(dexmv, hand="right")))
    if long_seconds > 0:
        out.append((f"long: clap/wave/pinch, {long_seconds:.0f} s",
                    generate("wave with the right hand, then clap twice, then pinch with the right thumb and index "
                             "finger twice, then wave with both hands", seconds=long_seconds, seed=0)))  # fmt: skip
    return out


def row(hid: str, name: str, motion, interaction: str) -> dict:
    t0 = time.perf_counter()
    rm, rep = retarget_humanoid(motion, hid, interaction=interaction)
    wall = time.perf_counter() - t0
    h = rep["humanoid"]
    sides = h["sides"]
    cl = h["clearance"]
    return {
        "humanoid": hid, "motion": name, "frames": rm.num_frames,
        "within": min(v["within_1cm_0.1rad"] for v in sides.values()),
        "p95_mm": max(v["position_error_m"]["p95"] for v in sides.values()) * 1e3,
        "max_mm": max(v["position_error_m"]["max"] for v in sides.values()) * 1e3,
        "rot_p95": max(v["rotation_error_rad"]["p95"] for v in sides.values()),
        "unreachable": sum(v["unreachable_frames"] for v in sides.values()),
        "clear": {k: cl[k]["min_distance_m"] * 1e3 for k in ("arm-arm", "arm-body", "hand-body") if k in cl},
        "deep": sum(c["frames_deeper_than_2mm"] for c in cl.values()),
        "speed": h["joint_speed"]["max_fraction_of_limit"],
        "arms_fps": h["frames_per_second"]["arms"], "body_fps": h["frames_per_second"]["upper_body"],
        "scale": h["workspace"]["scale"], "wall": wall,
        "solved": rep["interaction"]["bimanual_frames"]["count"] if "interaction" in rep else 0,
    }  # fmt: skip


def stream_rate(hid: str, motion) -> tuple[float, float, float]:
    """Streamed (no workspace fit: the YAML's centre): frames/s, p95 ms/frame, and the share of frames whose
    hand roots are within 1 cm / 0.1 rad of their targets on both sides."""
    world = motion.in_frame(FRAME_WORLD_ZUP)
    st = HumanoidStream(hid, world.fps)
    times, within = [], []
    for t in range(world.num_frames):
        kp = {s: world.joints[t, h] for h, s in enumerate(("left", "right")) if world.present[h]}
        f = st.step(kp)
        times.append(f.seconds)
        within.append(all(f.position_error[s] <= 0.01 and f.rotation_error[s] <= 0.1 for s in f.position_error))
    times = np.array(times[1:])
    return 1.0 / times.mean(), float(np.percentile(times, 95) * 1e3), float(np.mean(within))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--humanoids", nargs="+", default=["gr1_inspire", "gr1_fourier"])
    parser.add_argument("--long-seconds", type=float, default=60.0, help="length of the long motion (0 = none)")
    parser.add_argument("--interaction", choices=("auto", "off"), default="auto")
    args = parser.parse_args()
    ms = motions(args.long_seconds)
    print("| humanoid | motion | frames | within 1 cm / 0.1 rad (worst side) | pos err p95 / max mm | rot p95 rad | "
          "unreachable | min dist arm-arm / arm-body / hand-body mm | frames > 2 mm | max speed / limit | "
          "frames/s arms | frames/s upper body | scale | bimanual frames solved |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for hid in args.humanoids:
        retarget_humanoid(ms[0][1], hid, interaction=args.interaction)  # warm-up: models built, caches filled
        for name, motion in ms:
            r = row(hid, name, motion, args.interaction)
            c = r["clear"]
            print(f"| {hid} | {name} | {r['frames']} | {100 * r['within']:.1f} % | {r['p95_mm']:.1f} / {r['max_mm']:.1f} | "
                  f"{r['rot_p95']:.3f} | {r['unreachable']} | {c.get('arm-arm', float('nan')):.1f} / "
                  f"{c.get('arm-body', float('nan')):.1f} / {c.get('hand-body', float('nan')):.1f} | {r['deep']} | "
                  f"{r['speed']:.2f} | {r['arms_fps']:.0f} | {r['body_fps']:.0f} | {r['scale']:.2f} | {r['solved']} |", flush=True)  # fmt: skip
    print("\n| humanoid | streamed motion | frames/s (mean) | p95 ms/frame | within 1 cm / 0.1 rad |")
    print("|---|---|---|---|---|")
    for hid in args.humanoids:
        name, motion = ms[-1] if args.long_seconds > 0 else ms[0]
        hz, p95, within = stream_rate(hid, motion)
        print(f"| {hid} | {name} | {hz:.0f} | {p95:.1f} | {100 * within:.1f} % |", flush=True)
    print(f"\nrerun: .venv/bin/python benchmarks/humanoid_retarget.py --humanoids {' '.join(args.humanoids)} "
          f"--long-seconds {args.long_seconds:g} --interaction {args.interaction}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
