"""ROS 2 latency benchmark of the text-to-hand graph (loopback, real rclpy over Fast DDS).

Targets (issue 6):

1. prompt -> first safe command on the controller topic: < 1 s (whole graph in one process, sim mode).
2. a 500 Hz command stream through the safety streamer (its own process, the installed node
   executable, ``--controller`` interface, forward_command by default) for ``--duration`` s (default 60): output inter-arrival
   jitter p99 < 1 ms and no dropped messages.
3. latency the streamer adds, p99 < 1 ms (the 0.5 ms of the CDR fast path's time was retired in #16): the driver publishes every command both to the streamer
   and directly to the receiver; per message, (publish -> arrival through the streamer) minus
   (publish -> direct arrival), each from its own publish call.

Arrival is DDS's reception timestamp in the receiver (``MessageInfo.received_timestamp``: when its
DDS reader got the sample, as a C++ controller would), which keeps the receiver's own Python
scheduling out of the streamer's figures; the receiver's Python callback times are printed too. The
receiver takes the two measured topics on threads of their own (``DedicatedSubscription``, as the
streamer does) to load the two CPUs no more than it must.

2 and 3 run three times: the streamer at normal scheduling, then (where this user may) with
``realtime_priority:=50`` (SCHED_FIFO on its threads, as a real deployment runs its control loop),
then the reference: ``command_thread:=false`` (commands taken by the node's rclpy executor, as
before the command thread; ``--no-baseline`` skips it).

Processes: driver (publishes with absolute deadlines), streamer, receiver (this process). Times
are CLOCK_MONOTONIC, comparable across processes. Run:

    .venv/bin/python benchmarks/ros_latency.py [--duration 60] [--rate 500] [--prompt-trials 5] [--load N]

``--load N`` repeats 2 and 3 on a busy machine: N processes spin at normal scheduling while the
stream runs (and, where permitted, the driver and receiver run under SCHED_FIFO 60, as the upstream
node and a ros2_control controller manager would, so the load delays the streamer only).
``--rt-harness`` runs the driver and receiver that way without load too: the one-hop reference then
no longer carries the harness's own scheduling delays.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the ROS test harness (tests/ros_harness.py)
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))
#: target of the latency the streamer adds to a 500 Hz stream, p99 (ms)
ADDED_P99_TARGET_MS = 1.0
RERUN = "MUJOCO_GL=egl .venv/bin/python benchmarks/ros_latency.py --duration 60"

def _deep_qos():
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


#: every queue of the benchmark is 1000 deep (the streamer gets queue_depth:=1000 too): a stall of the
#: benchmark's own receiver must not count as a message the streamer dropped
DEEP_QOS = _deep_qos()
SEQ_STEP = 1e-5  # rad per sequence number on joint 0 (30000 messages = 0.3 rad, inside the limits)
TINY_URDF = """<robot name="bench"><link name="base"/>{links}{joints}</robot>"""


def _tiny_urdf(n: int) -> str:
    links = "".join(f'<link name="l{i}"/>' for i in range(n))
    joints = "".join(
        f'<joint name="j{i}" type="revolute"><parent link="{"base" if i == 0 else f"l{i - 1}"}"/>'
        f'<child link="l{i}"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" velocity="4"/></joint>'
        for i in range(n)
    )
    return TINY_URDF.format(links=links, joints=joints)


# ------------------------------------------------------------------------------------ driver process
def driver_main(cfg: dict) -> None:
    """Publish ``count`` JointTrajectory commands at ``rate`` Hz to every topic in ``topics`` (the
    same message to each, back to back); save the send times (CLOCK_MONOTONIC)."""
    import rclpy
    from handx_robot.ros.common import STATE_QOS
    from handx_robot.ros.convert import joint_state, joint_trajectory
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init()
    if cfg.get("priority"):
        from handx_robot.ros.common import set_realtime_priority

        set_realtime_priority(cfg["priority"])
    node = rclpy.create_node("bench_driver")
    pubs = [node.create_publisher(type(joint_trajectory([], [], 0.0)), t, DEEP_QOS) for t in cfg["topics"]]
    names = cfg["joint_names"]
    state_pub = node.create_publisher(type(joint_state([], [])), cfg["state_topic"], STATE_QOS)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    deadline = time.monotonic() + 10.0
    while any(p.get_subscription_count() < 1 for p in pubs) and time.monotonic() < deadline:
        ex.spin_once(timeout_sec=0.01)
    for _ in range(10):  # measured start state for the streamer (position streaming needs it)
        state_pub.publish(joint_state(names, [0.0] * len(names)))
        time.sleep(0.05)
    period = 1.0 / cfg["rate"]
    n = cfg["count"]
    sent = np.zeros(n)
    pub_wall = np.zeros((len(pubs), n))  # system clock just before each publish call, per topic
    # warm-up messages (not measured, joint 0 = -SEQ_STEP) so both DDS endpoints are matched both ways
    for _ in range(20):
        for p in pubs:
            p.publish(joint_trajectory(names, [-SEQ_STEP] + [0.0] * (len(names) - 1), period))
        time.sleep(period)
    time.sleep(0.2)
    t0 = time.monotonic() + 0.05
    amp = 0.2
    for k in range(n):
        t_k = t0 + k * period
        while True:  # sleep to 0.3 ms before the deadline, then spin (the sleep alone is too coarse)
            rest = t_k - time.monotonic()
            if rest <= 0:
                break
            if rest > 3e-4:
                time.sleep(rest - 3e-4)
        q = amp * np.sin(2 * np.pi * 0.5 * k * period) * np.ones(len(names))
        q[0] = k * SEQ_STEP  # the sequence number, to match each output to its input
        msg = joint_trajectory(names, q, period)
        sent[k] = time.monotonic()
        for i, p in enumerate(pubs):
            pub_wall[i, k] = time.time()
            p.publish(msg)
    time.sleep(0.3)
    np.savez(cfg["out"], sent=sent, pub_wall=pub_wall)
    node.destroy_node()
    rclpy.shutdown()


# ------------------------------------------------------------------------------------ receiver
class Receiver:
    """Records per topic and message: the callback's time (CLOCK_MONOTONIC), DDS's reception
    timestamp (``MessageInfo.received_timestamp``: when the receiver's DDS reader got the sample,
    before any Python runs; system clock) and the sequence number. Spins its own executor thread."""

    def __init__(self, topics: dict, n_expected: int, domain: int, dedicated: tuple[str, ...] = ()) -> None:
        import rclpy
        from handx_robot.ros.common import DedicatedSubscription
        from rclpy.executors import SingleThreadedExecutor

        self.times = {t: np.zeros(n_expected + 1000) for t in topics}
        self.rx = {t: np.zeros(n_expected + 1000) for t in topics}
        self.seq = {t: np.full(n_expected + 1000, -1, dtype=np.int64) for t in topics}
        self.count = dict.fromkeys(topics, 0)
        self.last_diagnostics = None
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("bench_receiver", context=self.context)
        self.dedicated = []
        for topic, msg_type in topics.items():
            if topic in dedicated:  # a thread of its own, as the streamer takes its input: the harness
                # should load the 2 CPUs as little as a C++ controller would
                self.dedicated.append(DedicatedSubscription(
                    self.node, msg_type, topic, DEEP_QOS, lambda m, info, t=topic: self._on_msg(t, m, info),
                    with_info=True).start())
            else:
                self.node.create_subscription(msg_type, topic, lambda m, info, t=topic: self._on_msg(t, m, info),
                                              DEEP_QOS)
        self.ex = SingleThreadedExecutor(context=self.context)
        self.ex.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _on_msg(self, topic: str, msg, info) -> None:
        t = time.monotonic()
        if hasattr(msg, "status"):  # diagnostics: keep the latest
            self.last_diagnostics = msg
            return
        if hasattr(msg, "points") and not msg.points:  # a stop (empty trajectory): not a command
            return
        i = self.count[topic]
        if i < len(self.times[topic]):
            first = msg.data[0] if hasattr(msg, "data") else msg.points[0].positions[0]
            self.times[topic][i] = t
            self.rx[topic][i] = info["received_timestamp"] * 1e-9
            self.seq[topic][i] = int(round(first / SEQ_STEP))
        self.count[topic] = i + 1

    def arrivals(self, topic: str, count: int, dds: bool = False) -> np.ndarray:
        """(count,) first arrival time of each sequence number (NaN = never arrived): the callback's
        monotonic time, or with ``dds`` the DDS reception timestamp (system clock)."""
        n = min(self.count[topic], len(self.times[topic]))
        out = np.full(count, np.nan)
        times = self.rx[topic] if dds else self.times[topic]
        for k, t in zip(self.seq[topic][:n][::-1], times[:n][::-1]):  # earliest written last
            if 0 <= k < count:
                out[k] = t
        return out

    def _spin(self) -> None:
        try:
            self.ex.spin()
        except Exception:  # noqa: BLE001 - shutdown
            pass

    def close(self) -> None:
        import rclpy

        for d in self.dedicated:
            d.close()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=2.0)


def _run_driver(cfg: dict, env: dict) -> tuple[np.ndarray, np.ndarray]:
    code = f"import sys, json; sys.path.insert(0, {str(REPO)!r}); from benchmarks.ros_latency import driver_main; driver_main(json.loads(sys.argv[1]))"
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(cfg)], env=env, capture_output=True, text=True,
                          timeout=cfg["count"] / cfg["rate"] + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"driver failed: {proc.stderr[-2000:]}")
    with np.load(cfg["out"]) as d:
        return d["sent"], d["pub_wall"]


DIRECT = "/bench/direct"


def _set_harness_priority(priority: int) -> None:
    """This process's threads (the receiver) to SCHED_FIFO ``priority`` (the streamer's own
    :func:`handx_robot.ros.common.set_realtime_priority`), or back to normal scheduling with 0."""
    from handx_robot.ros.common import set_realtime_priority

    if priority:
        set_realtime_priority(priority)
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))
        except ProcessLookupError:  # a thread that ended meanwhile
            pass


def _normal_scheduling() -> None:
    """preexec_fn of the streamer and load processes: they must not inherit the harness's SCHED_FIFO."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def stream_through_streamer(args, env, tmp: Path, names: list[str], model: str, rt_priority: int = 0,
                            command_thread: bool = True, harness_priority: int = 0) -> dict:
    """Each command goes both to the streamer and directly to the receiver: paired per-message times.
    With ``args.load`` busy processes (normal scheduling) running meanwhile; ``harness_priority``:
    the driver and this receiver under SCHED_FIFO (0 = normal)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from handx_robot.ros.common import controller_topic
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    count = int(round(args.duration * args.rate))
    CONTROLLER = controller_topic("right", args.controller)  # the streamer's default output topic
    out_type = Float64MultiArray if args.controller == "forward_command" else JointTrajectory
    if harness_priority:
        _set_harness_priority(harness_priority)  # before the receiver: its threads inherit it
    receiver = Receiver({DIRECT: JointTrajectory, CONTROLLER: out_type, "/diagnostics": DiagnosticArray},
                        count, int(env["ROS_DOMAIN_ID"]), dedicated=(DIRECT, CONTROLLER))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=_normal_scheduling)
            for _ in range(args.load)]
    exe = Path(sys.executable).with_name("safety_streamer_node")
    cmd = [str(exe), "--ros-args", "-p", "side:=right", "-p", f"model_path:={model}",
           "-p", f"controller:={args.controller}", "-p", f"control_rate_hz:={float(args.rate)}",
           "-p", "watchdog_periods:=10.0", "-p", "state_topic:=/bench/joint_states",
           "-p", "max_acceleration:=1000.0", "-p", "queue_depth:=1000", "-p", f"realtime_priority:={rt_priority}",
           "-p", f"command_thread:={str(command_thread).lower()}",
           "--log-level", "warn"]
    streamer = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_normal_scheduling)  # its own realtime_priority decides
    try:
        # the driver waits for its own subscribers; the streamer's output must be matched to the
        # receiver too before the stream starts (VOLATILE: a sample sent before the match is never
        # delivered). Without this wait, a late discovery on a busy machine lost the start of the stream.
        deadline = time.monotonic() + 30.0
        while receiver.node.count_publishers(CONTROLLER) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        sent, pub_wall = _run_driver({"topics": ["/handx/right/command", DIRECT], "state_topic": "/bench/joint_states",
                            "joint_names": names, "rate": args.rate, "count": count,
                            "out": str(tmp / "sent.npz"), "priority": harness_priority}, env)
        time.sleep(0.3)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        receiver.close()
        if harness_priority:
            _set_harness_priority(0)
        streamer.send_signal(signal.SIGINT)  # Ctrl-C: the node's clean shutdown path
        try:
            log = streamer.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            streamer.kill()
            log = streamer.communicate()[0]
    problems = [ln for ln in log.splitlines() if "WARN" in ln or "ERROR" in ln]
    period = 1.0 / args.rate
    direct, out = receiver.arrivals(DIRECT, count), receiver.arrivals(CONTROLLER, count)
    both = ~np.isnan(direct) & ~np.isnan(out)
    direct_rx, out_rx = receiver.arrivals(DIRECT, count, dds=True), receiver.arrivals(CONTROLLER, count, dds=True)
    return {
        "count": count,
        "dropped_streamer": int(np.isnan(out).sum()),
        "dropped_direct": int(np.isnan(direct).sum()),
        "latency_direct_ms": np.percentile((direct - sent)[~np.isnan(direct)], [50, 99, 99.9]) * 1e3,
        "latency_streamer_ms": np.percentile((out - sent)[~np.isnan(out)], [50, 99, 99.9]) * 1e3,
        "added_ms": np.percentile((out - direct)[both], [50, 99, 99.9]) * 1e3,
        # per message: (through the streamer) - (direct), each from its own publish call to the DDS
        # reception in the receiver (system clock on both sides of this one host)
        "added_dds_ms": np.percentile(((out_rx - pub_wall[0]) - (direct_rx - pub_wall[1]))[both], [50, 99, 99.9]) * 1e3,
        "hop_dds_ms": np.percentile((direct_rx - pub_wall[1])[~np.isnan(direct_rx)], [50, 99, 99.9]) * 1e3,
        "jitter_out_dds_ms": np.percentile(np.abs(np.diff(out_rx[~np.isnan(out_rx)]) - period), [50, 99]) * 1e3,
        "jitter_direct_dds_ms": np.percentile(np.abs(np.diff(direct_rx[~np.isnan(direct_rx)]) - period), [50, 99]) * 1e3,
        "jitter_out_ms": np.percentile(np.abs(np.diff(out[~np.isnan(out)]) - period), [50, 99]) * 1e3,
        "jitter_direct_ms": np.percentile(np.abs(np.diff(direct[~np.isnan(direct)]) - period), [50, 99]) * 1e3,
        "jitter_send_ms": np.percentile(np.abs(np.diff(sent) - period), [50, 99]) * 1e3,
        "streamer_warnings": problems,
        "diagnostics": {kv.key: kv.value for st in (receiver.last_diagnostics.status if receiver.last_diagnostics
                                                    else []) for kv in st.values},
        "streamer_exit": streamer.returncode,
    }


# ------------------------------------------------------------------------------------ prompt latency
def prompt_latency(trials: int, motion_file: str, assets: str, domain: int, robot: str = "shadow_right") -> list[float]:
    from handx_robot.ros.common import LATCHED_QOS, STREAM_QOS
    from handx_robot.ros.graph import GraphConfig, build_graph
    from ros_harness import RosGraph, wait_for
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    cfg = GraphConfig(robot=robot, mode="sim", motion_file=motion_file, assets=assets)
    out = []
    with RosGraph(domain_id=domain) as g:
        nodes = {}
        for spec in reversed(build_graph(cfg)):
            nodes[spec.name] = g.add(spec.load_factory(), dict(spec.parameters), name=spec.name)
        probe = g.probe(JointTrajectory, "/right_hand_controller/joint_trajectory", STREAM_QOS)
        pub = g.node("bench_user").create_publisher(String, "/handx/prompt", LATCHED_QOS)
        time.sleep(1.0)
        for k in range(trials):
            probe.clear()
            t0 = time.monotonic()
            prompts = ("clap twice", "pinch with the right thumb and index finger twice, then clap", "wave the right hand")
            pub.publish(String(data=prompts[k % len(prompts)]))  # every message restarts the motion
            msgs = probe.wait(1, timeout=10.0)
            out.append(msgs[0][0] - t0 if msgs else float("nan"))
            wait_for(lambda: nodes["text_to_motion"].status.startswith("done"), 30.0)
            time.sleep(0.8)  # watchdog hold + stop
    return out


def _bench_motion(tmp: Path) -> tuple[str, str]:
    """A motion file (the DexMV real right hand, 1 s) and the asset dir; ('', '') when absent."""
    from ros_harness import dexmv_motion_file

    npz = SHARED / "data" / "dexmv_relocate_mustard_right.npz"
    assets = SHARED / "assets" / "dex-urdf"
    if not npz.is_file() or not assets.is_dir():
        return "", ""
    return dexmv_motion_file(npz, tmp / "motion.npz", 30), str(assets)


def _fmt(p) -> str:
    return "/".join(f"{v:.3f}" for v in p)


def _may_use_sched_fifo() -> bool:
    """Whether this user may put a process under SCHED_FIFO (tried on a short-lived child)."""
    code = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))"
    return hasattr(os, "SCHED_FIFO") and subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def _report_stream(args, r: dict, label: str) -> None:
    jd, jc = r["jitter_out_dds_ms"], r["jitter_out_ms"]
    ok2 = jd[1] < 1.0 and r["dropped_streamer"] == 0
    print(f"[2] {args.duration:g} s at {args.rate:g} Hz, {args.joints} joints, safety_streamer_node in its own process "
          f"({args.controller}, {label}): {r['count']} sent, dropped {r['dropped_streamer']} (direct path: "
          f"{r['dropped_direct']}); output inter-arrival jitter p50/p99 at the receiver's DDS reader "
          f"{jd[0]:.3f}/{jd[1]:.3f} ms (direct path {r['jitter_direct_dds_ms'][1]:.3f} ms, driver send "
          f"{r['jitter_send_ms'][1]:.3f} ms p99) -> {'PASS' if ok2 else 'FAIL'} (p99 < 1 ms, no drops); at the "
          f"receiver's Python callback {jc[0]:.3f}/{jc[1]:.3f} ms (direct path {r['jitter_direct_ms'][1]:.3f} ms)")
    a, ad = r["added_ms"], r["added_dds_ms"]
    print(f"[3] ({label}) added by the streamer, per message (through-streamer latency minus direct latency, each "
          f"from its publish call to DDS reception in the receiver) p50/p99/p99.9 {_fmt(ad)} ms -> "
          f"{'PASS' if ad[1] < ADDED_P99_TARGET_MS else 'FAIL'} (p99 < {ADDED_P99_TARGET_MS:g} ms); one direct DDS hop {_fmt(r['hop_dds_ms'])} ms. "
          f"At the receiver's Python callbacks: direct {_fmt(r['latency_direct_ms'])} ms, through the streamer "
          f"{_fmt(r['latency_streamer_ms'])} ms, difference per message {_fmt(a)} ms")
    if r["streamer_warnings"]:
        print(f"    streamer log: {len(r['streamer_warnings'])} warnings, first: {r['streamer_warnings'][0]}")
    diag = r["diagnostics"]
    if diag:
        print(f"    streamer's own command callback (filter + publish), last 1000 commands: p50 "
              f"{diag.get('command_process_us_p50')} us, p99 {diag.get('command_process_us_p99')} us; counters in its last diagnostics (published every 1 s): "
              f"forwarded {diag.get('forwarded')}, rejected {diag.get('rejected')}, held {diag.get('held')}")
    print(f"    streamer exit code after Ctrl-C: {r['streamer_exit']}; load average {open('/proc/loadavg').read().split()[:3]} "
          f"on {os.cpu_count()} CPUs")


def main() -> int:
    from handx_robot.ros.common import CONTROLLER_TOPICS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the 500 Hz stream (default 60)")
    parser.add_argument("--rate", type=float, default=500.0, help="command rate, Hz")
    parser.add_argument("--prompt-trials", type=int, default=5)
    parser.add_argument("--joints", type=int, default=24, help="joints per command (Shadow hand: 24)")
    parser.add_argument("--controller", default="forward_command", choices=tuple(CONTROLLER_TOPICS),
                        help="streamer output interface: forward_command (Float64MultiArray, high-rate teleop) or "
                        "joint_trajectory (JointTrajectory, the launch file's default)")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="run N busy processes (normal scheduling) during the streams: the streamer on a busy "
                        "machine. Where SCHED_FIFO is permitted, the driver and receiver then run under SCHED_FIFO "
                        "60 (as the upstream node and ros2_control would), so the load delays only the streamer")
    parser.add_argument("--rt-harness", action="store_true",
                        help="run the driver and receiver under SCHED_FIFO 60 (where permitted) also without --load: "
                        "takes the harness's own scheduling out of the figures")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the reference run with commands on the node's executor (command_thread:=false)")
    args = parser.parse_args()

    from ros_harness import isolate_ros_env

    domain = isolate_ros_env()
    env = dict(os.environ)
    tmp = Path(tempfile.mkdtemp(prefix="handx_ros_bench_"))
    print(f"ROS_DOMAIN_ID={domain}; rerun: {RERUN}")
    results = {}

    motion_file, assets = _bench_motion(tmp)
    if motion_file and args.prompt_trials > 0:
        lat = prompt_latency(args.prompt_trials, motion_file, assets, domain)
        results["prompt"] = lat
        print(f"[1] prompt -> first safe command (graph in one process, sim mode, shadow_right, motion file): "
              f"median {np.nanmedian(lat) * 1e3:.0f} ms, max {np.nanmax(lat) * 1e3:.0f} ms over {len(lat)} prompts "
              f"-> {'PASS' if np.nanmax(lat) < 1.0 else 'FAIL'} (< 1 s)")
    else:
        print(f"[1] prompt latency with a motion file skipped ({SHARED}/data or assets missing, or --prompt-trials 0)")
    if args.prompt_trials > 0:
        lat = prompt_latency(args.prompt_trials, "", "", domain, robot="shadow_builtin_right")
        print(f"[1'] prompt -> first safe command with the text-to-motion generator (composer), built-in Shadow "
              f"hand: median {np.nanmedian(lat) * 1e3:.0f} ms, max {np.nanmax(lat) * 1e3:.0f} ms over {len(lat)} "
              f"prompts -> {'PASS' if np.nanmax(lat) < 1.0 else 'FAIL'} (< 1 s)")

    names = [f"j{i}" for i in range(args.joints)]
    model = tmp / "bench.urdf"
    model.write_text(_tiny_urdf(args.joints))
    rt = 50 if _may_use_sched_fifo() else 0
    runs = [(0, True, "normal scheduling")] + ([(rt, True, f"realtime_priority:={rt} (SCHED_FIFO)")] if rt else [])
    if not args.no_baseline:
        runs.append((0, False, "reference: command_thread:=false, commands on the executor, normal scheduling"))
    harness = 60 if (args.load or args.rt_harness) and rt else 0
    suffix = (f", {args.load} busy processes" if args.load else "") + (", driver and receiver SCHED_FIFO 60" if harness else "")
    runs = [(p, t, label + suffix) for p, t, label in runs]
    for prio, thread, label in runs:
        r = stream_through_streamer(args, env, tmp, names, str(model), rt_priority=prio, command_thread=thread,
                                    harness_priority=harness)
        _report_stream(args, r, label)
    if not rt:
        print("    (SCHED_FIFO not permitted for this user: the realtime_priority run was skipped)")
    print(f"rerun: {RERUN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
