"""Twenty cold ``ros2 launch`` runs in a row, as a ROS 2 user starts the product.

The package is built with colcon in a temporary workspace; each run starts ``ros2 launch handx_robot
text_to_hand.launch.py prompt:="open and close the right hand twice" robot:=shadow_builtin_right
mode:=sim`` as a fresh process tree (under ``timeout -s INT``), waits until the motion is done, sends
SIGINT to the process group (Ctrl-C) and measures how long the launch takes to exit
(tests/ros_launch_harness.py). Per run it prints: when the stream started (every node ready), the
frames delivered at each stage (keypoints, retargeted commands, commands forwarded by the safety
streamer, and how many of the commands are on the controller topic unchanged or as the filter
changed them), the shutdown time and the exit code.

Targets (issue #18): every run delivers every frame; every run shuts down within 2 s with exit code 0.

Rerun: ``.venv/bin/python benchmarks/ros_launch_cold.py [--runs 20] [--stop ctrl-c|timeout|timeout-group]``
(needs colcon and the ROS 2 launch tools: ``make env`` installs them where ../shared/ros2-launch exists)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tests/ros_harness.py, tests/ros_launch_harness.py

PROMPT = "open and close the right hand twice"
ROBOT = "shadow_builtin_right"


def main() -> int:
    from handx_robot.ros.text_to_motion_node import make_motion
    from ros_harness import isolate_ros_env
    from ros_launch_harness import build_workspace, launch_once, missing_tools

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stop", choices=("ctrl-c", "timeout", "timeout-group"), default="ctrl-c",
                        help="ctrl-c: SIGINT to the process group once the motion is done (a terminal's Ctrl-C); "
                        "timeout: the launch runs under 'timeout --foreground -s INT 25' and stops when it expires; "
                        "timeout-group: the same without --foreground (ros2 launch gets SIGINT twice)")
    args = parser.parse_args()
    reason = missing_tools()
    if reason:
        print(f"ros_launch_cold: skipped: {reason}")
        return 0
    frames = make_motion(PROMPT).resample(30.0).num_frames
    isolate_ros_env()
    rows = []
    with tempfile.TemporaryDirectory(prefix="handx_ws_") as tmp:
        ws = Path(tmp)
        t = time.perf_counter()
        built = build_workspace(ws)
        if built.returncode != 0:
            print(built.stdout[-2000:], built.stderr[-2000:])
            return 1
        print(f"colcon build: {time.perf_counter() - t:.1f} s; {args.runs} cold launches of {frames} frames "
              f"(prompt {PROMPT!r}, robot {ROBOT}, mode sim), stopped by {args.stop}")
        print(f"{'run':>3} {'stream at':>9} {'keypoints':>9} {'commands':>8} {'forwarded':>9} {'on ctrl':>7} "
              f"{'changed':>7} {'shutdown':>8} {'rc':>3}")
        for i in range(args.runs):
            run = launch_once(ws, {"prompt": PROMPT, "robot": ROBOT, "mode": "sim"}, stop=args.stop)
            stream_at = next((t for t, s in run.statuses if s.startswith("streaming")), float("nan"))
            c = run.streamer
            changed = c.get("clamped", 0) + c.get("step_limited", 0)
            on_ctrl = len(run.commands) - run.missing_commands()
            ok = (run.frames == frames and len(run.keypoints) == frames and len(run.commands) == frames
                  and c.get("forwarded") == frames and c.get("rejected") == 0 and on_ctrl + changed >= frames
                  and run.shutdown_s is not None and run.shutdown_s <= 2.0 and not run.hung and run.returncode == 0)
            rows.append((stream_at, run.shutdown_s if run.shutdown_s is not None else float("nan"), ok))
            print(f"{i + 1:>3} {stream_at:>8.2f}s {len(run.keypoints):>9} {len(run.commands):>8} "
                  f"{c.get('forwarded', -1):>9} {on_ctrl:>7} {changed:>7} {run.shutdown_s or float('nan'):>7.2f}s "
                  f"{run.returncode:>3}{'' if ok else '  <-- FAILED'}", flush=True)
            if not ok:
                print(run.log[-3000:])
    stream_at = np.array([r[0] for r in rows])
    shutdown = np.array([r[1] for r in rows])
    good = sum(r[2] for r in rows)
    print(f"\n{good}/{len(rows)} runs delivered all {frames} frames and shut down within 2 s with exit code 0")
    print(f"stream started after launch: median {np.median(stream_at):.2f} s, max {np.max(stream_at):.2f} s")
    print(f"shutdown after SIGINT: median {np.median(shutdown):.2f} s, max {np.max(shutdown):.2f} s")
    print(f"rerun: .venv/bin/python benchmarks/ros_launch_cold.py --runs {args.runs} --stop {args.stop}")
    return 0 if good == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
