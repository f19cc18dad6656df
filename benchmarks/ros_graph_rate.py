"""Sim /joint_states rate and retargeting solve time of the in-process text-to-hand graph, per executor.

The whole graph (text_to_motion with a motion file, retarget, safety streamer, sim: dex-urdf Shadow
right hand, DexMV keypoints) runs on one rclpy executor in this process, chosen by
``$HANDX_ROS_EXECUTOR`` (``single``: one SingleThreadedExecutor, the default; ``multi``: a 4-thread
MultiThreadedExecutor). Reports, for 2 s idle and for 2 s of streaming: the /joint_states rate seen
by a subscriber and published by the sim node (target 100 Hz), the sim tick's duration, and the
retarget node's per-frame solve time.

Rerun: ``.venv/bin/python benchmarks/ros_graph_rate.py`` (both executors, one after the other)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the ROS test harness (tests/ros_harness.py)
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))
FRAMES = 45


def run_once() -> None:
    from handx_robot.ros.common import LATCHED_QOS, STATE_QOS
    from handx_robot.ros.graph import GraphConfig, build_graph
    from ros_harness import RosGraph, dexmv_motion_file, wait_for
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    motion = dexmv_motion_file(SHARED / "data" / "dexmv_relocate_mustard_right.npz",
                               Path(tempfile.mkdtemp()) / "dexmv.npz", FRAMES)
    cfg = GraphConfig(robot="shadow_right", mode="sim", motion_file=motion, assets=str(SHARED / "assets" / "dex-urdf"))
    with RosGraph() as g:
        nodes = {spec.name: g.add(spec.load_factory(), dict(spec.parameters), name=spec.name)
                 for spec in reversed(build_graph(cfg))}
        states = g.probe(JointState, "/joint_states", STATE_QOS)
        sim = nodes["sim"]
        ticks: list[float] = []
        tick = sim._on_tick  # noqa: SLF001 - timed in place

        def timed() -> None:
            t = time.perf_counter()
            tick()
            ticks.append(time.perf_counter() - t)

        sim._on_tick = timed  # noqa: SLF001
        wait_for(lambda: len(states) > 0, 10.0)
        time.sleep(1.0)
        for phase in ("idle", "streaming"):
            ticks.clear()
            n0, p0 = len(states), sim.states_published
            if phase == "streaming":
                g.node("bench_user").create_publisher(String, "/handx/prompt", LATCHED_QOS).publish(String(data="go"))
            time.sleep(2.0)
            print(f"  {phase:9s}: /joint_states received {(len(states) - n0) / 2:.0f} Hz, published "
                  f"{(sim.states_published - p0) / 2:.0f} Hz; sim tick p50/p99/max "
                  f"{1e3 * np.median(ticks):.2f}/{1e3 * np.percentile(ticks, 99):.2f}/{1e3 * max(ticks):.2f} ms")
        solve = 1e3 * np.array(nodes["retarget"].solve_seconds)
        print(f"  retarget solve per frame: median {np.median(solve):.2f} ms, max {solve.max():.2f} ms over {len(solve)} frames")


def main() -> int:
    if not (SHARED / "data" / "dexmv_relocate_mustard_right.npz").is_file():
        print(f"needs {SHARED}/data and {SHARED}/assets/dex-urdf")
        return 1
    if os.environ.get("_HANDX_BENCH_CHILD"):
        run_once()
        return 0
    for executor in ("single", "multi"):
        print(f"HANDX_ROS_EXECUTOR={executor}", flush=True)
        env = dict(os.environ, HANDX_ROS_EXECUTOR=executor, _HANDX_BENCH_CHILD="1")
        out = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True)
        print("\n".join(ln for ln in out.stdout.splitlines() if ln.startswith("  ")), flush=True)
    print("rerun: .venv/bin/python benchmarks/ros_graph_rate.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
