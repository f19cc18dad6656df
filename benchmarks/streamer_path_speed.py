"""Per-command costs of the safety streamer's hot path, each stage alone in a hot loop.

Stages, for a 24-joint command (the Shadow hand):

1. reading the command: rclpy's ``deserialize_message`` (the reference: what the node's executor
   path does) against :class:`handx_robot.ros.cdr.TrajectoryFastPath` (what the command thread does);
2. :meth:`handx_robot.safety.SafetyFilter.filter` (position streaming, within limits);
3. publishing the forwarded command to one subscriber in another process (Fast DDS): the message path
   (``float64_array`` + ``Publisher.publish``, the reference) against the serialized path
   (:class:`handx_robot.ros.cdr.SerializedCommand` + ``Publisher.publish`` of the bytes, what the node
   does), alternating command by command so both see the same machine;
4. the same for a one-point JointTrajectory (the joint_trajectory controller interface).

These are lower bounds: in the running streamer (woken every 2 ms, caches cold) the same work takes
longer; ``benchmarks/ros_latency.py`` prints what the node measures on itself there
(``command_process_us``). Run:

    .venv/bin/python benchmarks/streamer_path_speed.py [--commands 20000] [--joints 24]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RERUN = ".venv/bin/python benchmarks/streamer_path_speed.py"

SUBSCRIBER = """
import sys, time, rclpy
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory
from handx_robot.ros.common import STREAM_QOS
rclpy.init()
node = rclpy.create_node("path_speed_sink")
count = [0]
node.create_subscription(Float64MultiArray, "/path_speed", lambda m: count.__setitem__(0, count[0] + 1), STREAM_QOS)
node.create_subscription(JointTrajectory, "/path_speed_jt", lambda m: count.__setitem__(0, count[0] + 1), STREAM_QOS)
end = time.monotonic() + float(sys.argv[1])
try:
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
except Exception:  # terminated by the benchmark: rclpy shuts the context down
    pass
"""


def _per_call_us(fn, items, repeats: int = 3) -> float:
    """Median over repeats of the mean time per call (us)."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        runs.append((time.perf_counter() - t0) / len(items) * 1e6)
    return float(np.median(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20000)
    parser.add_argument("--joints", type=int, default=24)
    parser.add_argument("--publishes", type=int, default=4000, help="publishes to the subscriber (every 2 ms)")
    args = parser.parse_args()

    import rclpy
    from handx_robot.ros.cdr import SerializedCommand, TrajectoryFastPath
    from handx_robot.ros.common import STREAM_QOS
    from handx_robot.ros.convert import float64_array, joint_trajectory
    from handx_robot.ros.testing import isolate_ros_env
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    from benchmarks.ros_latency import _tiny_urdf
    from handx_robot.safety import SafetyConfig, SafetyFilter, limits_from_model

    names = [f"j{i}" for i in range(args.joints)]
    rng = np.random.default_rng(0)
    qs = 0.2 * np.sin(np.arange(args.commands)[:, None] * 0.006 + rng.uniform(0, 1, args.joints))
    data = [serialize_message(joint_trajectory(names, q, 0.002)) for q in qs]

    fast = TrajectoryFastPath(names)
    assert all(fast.last_point(d) is not None for d in data[:10])
    t_rclpy = _per_call_us(lambda d: deserialize_message(d, JointTrajectory), data)
    t_fast = _per_call_us(fast.last_point, data)
    print(f"[1] read a {args.joints}-joint command: rclpy deserialize_message {t_rclpy:.1f} us, CDR fast path "
          f"{t_fast:.1f} us -> {t_rclpy / t_fast:.1f}x")

    tmp = Path(tempfile.mkdtemp(prefix="handx_path_speed_"))
    (tmp / "bench.urdf").write_text(_tiny_urdf(args.joints))
    limits = limits_from_model(tmp / "bench.urdf", default_acceleration=1000.0)
    config = SafetyConfig(joint_names=tuple(names), limits=limits, interface="position_stream",
                          control_period_s=0.002, watchdog_periods=10)
    times = iter(np.arange(args.commands * 4) * 0.002)
    safety = SafetyFilter(config)
    safety.set_measured(names, [0.0] * len(names))

    def filter_one(q):
        d = safety.filter(names, q, next(times), duration_s=0.002)
        assert d.sends, d.reason
    t_filter = _per_call_us(filter_one, list(qs))
    print(f"[2] SafetyFilter.filter, {args.joints} joints, within limits: {t_filter:.1f} us")

    isolate_ros_env()
    sink_s = args.publishes * 0.002 + 15.0
    sink = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, str(sink_s)], stdout=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    rclpy.init()
    node = rclpy.create_node("path_speed_source")
    pub = node.create_publisher(Float64MultiArray, "/path_speed", STREAM_QOS)
    pub_jt = node.create_publisher(JointTrajectory, "/path_speed_jt", STREAM_QOS)
    deadline = time.monotonic() + 10.0
    while min(pub.get_subscription_count(), pub_jt.get_subscription_count()) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    matched = min(pub.get_subscription_count(), pub_jt.get_subscription_count())
    if matched < 1:
        print("[3] the subscriber process did not match within 10 s: publish costs not measured")
        return 1
    out = SerializedCommand("forward_command", names)
    out_jt = SerializedCommand("joint_trajectory", names)
    paths = {
        "message": lambda q: pub.publish(float64_array(q)),
        "serialized": lambda q: pub.publish(out.encode(q)),
        "jt message": lambda q: pub_jt.publish(joint_trajectory(names, q, 0.002)),
        "jt serialized": lambda q: pub_jt.publish(out_jt.encode(q, 0.002)),
    }
    keys = list(paths)
    costs = {k: [] for k in paths}
    for i, q in enumerate(qs[: args.publishes]):
        key = keys[i % len(keys)]
        t0 = time.perf_counter()
        paths[key](q)
        costs[key].append(time.perf_counter() - t0)
        time.sleep(0.002)  # a 500 Hz stream: the publishing thread sleeps between commands, as in the node
    node.destroy_node()
    rclpy.shutdown()
    sink.terminate()
    sink.wait(timeout=10)
    pct = {k: np.percentile(np.array(v[25:]) * 1e6, [50, 99]) for k, v in costs.items()}
    print(f"[3] publish a {args.joints}-joint forward command to 1 subscriber in another process, every 2 ms "
          f"({matched} subscriber matched), p50/p99: message path (float64_array + publish) "
          f"{pct['message'][0]:.1f}/{pct['message'][1]:.1f} us, serialized path (SerializedCommand.encode + "
          f"publish of the bytes) {pct['serialized'][0]:.1f}/{pct['serialized'][1]:.1f} us -> "
          f"{pct['message'][0] / pct['serialized'][0]:.2f}x at p50")
    print(f"[4] the same for a JointTrajectory (joint_trajectory controller, one point), p50/p99: message path "
          f"(joint_trajectory + publish) {pct['jt message'][0]:.1f}/{pct['jt message'][1]:.1f} us, serialized path "
          f"{pct['jt serialized'][0]:.1f}/{pct['jt serialized'][1]:.1f} us -> "
          f"{pct['jt message'][0] / pct['jt serialized'][0]:.2f}x at p50")
    print(f"rerun: {RERUN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
