"""safety_streamer node over real DDS: only safe commands reach the controller topic."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from handx_robot.ros.common import DIAGNOSTICS_QOS, LATCHED_QOS, STREAM_QOS  # noqa: E402
from handx_robot.ros.convert import duration_to_s, joint_state, joint_trajectory  # noqa: E402
from handx_robot.ros.safety_streamer_node import SafetyStreamerNode  # noqa: E402
from ros_harness import RosGraph, wait_for  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from handx_robot.safety.audit import SafetyAudit, read_limits  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]

NAMES = ["j1", "j2", "j3"]
LOWER = np.array([-1.0, 0.0, -0.5])
UPPER = np.array([1.0, 1.5, 0.5])
RATE = 50.0
PERIOD = 1.0 / RATE
URDF = """<robot name="tiny"><link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/>
<joint name="j1" type="revolute"><parent link="base"/><child link="l1"/><axis xyz="0 0 1"/>
  <limit lower="-1.0" upper="1.0" effort="1" velocity="2.0"/></joint>
<joint name="j2" type="revolute"><parent link="l1"/><child link="l2"/><axis xyz="0 0 1"/>
  <limit lower="0.0" upper="1.5" effort="1" velocity="2.0"/></joint>
<joint name="j3" type="revolute"><parent link="l2"/><child link="l3"/><axis xyz="0 0 1"/>
  <limit lower="-0.5" upper="0.5" effort="1" velocity="2.0"/></joint>
</robot>"""


@pytest.fixture
def tiny_urdf(tmp_path):
    p = tmp_path / "tiny.urdf"
    p.write_text(URDF)
    return str(p)


def _params(urdf: str, **kw) -> dict:
    params = {
        "side": "right",
        "model_path": urdf,
        "control_rate_hz": RATE,
        "watchdog_periods": 1.5,
        "watchdog_stop_s": 0.2,
        "max_acceleration": 1e4,
        "state_topic": "/test/joint_states",
        "diagnostics_period_s": 0.1,
    }
    params.update(kw)
    return params


def _seed(g: RosGraph, pub_node) -> None:
    """Publish a measured state so the streamer knows the start position."""
    pub = pub_node.create_publisher(type(joint_state([], [])), "/test/joint_states", STREAM_QOS)
    for _ in range(200):
        if pub.get_subscription_count() > 0:
            break
        time.sleep(0.01)
    pub.publish(joint_state(NAMES, [0.0, 0.0, 0.0]))


def _connect(pub, timeout=5.0):
    assert wait_for(lambda: pub.get_subscription_count() > 0, timeout), f"no subscriber on {pub.topic_name}"


def _positions(msgs, forwarded: int | None = None):
    """Positions of the messages with a point (stops have none): all of them, or only the first
    ``forwarded`` (the forwarded commands; watchdog holds come after them)."""
    with_points = [list(m.points[0].positions) for _, m in msgs if m.points]
    return with_points if forwarded is None else with_points[:forwarded]


@pytest.mark.parametrize("position_mode", ["clamp", "reject"])
def test_unsafe_commands_never_reach_controller(tiny_urdf, position_mode):
    with RosGraph() as g:
        streamer = g.add(SafetyStreamerNode, _params(tiny_urdf, position_mode=position_mode))
        out = g.probe(JointTrajectory, "/right_hand_controller/joint_trajectory", STREAM_QOS)
        drv = g.node("driver")
        _seed(g, drv)
        pub = drv.create_publisher(JointTrajectory, "/handx/right/command", STREAM_QOS)
        _connect(pub)
        wait_for(lambda: streamer.filter.last_safe_position is not None, 3.0)
        sent = [
            (NAMES, [0.01, 0.01, 0.0]),  # ok
            (NAMES, [0.02, 2.0, 0.0]),  # above j2's limit
            (NAMES, [0.02, 0.02, math.nan]),  # NaN
            (NAMES, [math.inf, 0.02, 0.0]),  # inf
            (["j1", "j2", "wrist"], [0.02, 0.02, 0.0]),  # wrong joint
            (["j1", "j2"], [0.02, 0.02]),  # missing joint
            (NAMES, [0.03, 0.03, 0.0]),  # ok
        ]
        for names, q in sent:
            pub.publish(joint_trajectory(names, q, PERIOD))
            time.sleep(0.005)
        wait_for(lambda: streamer.filter.counters["received"] >= len(sent), 5.0)
        time.sleep(0.1)
        got = _positions(out.snapshot(), streamer.filter.counters["forwarded"])
        every = np.array(_positions(out.snapshot()))
        assert np.all(np.isfinite(every)) and np.all(every >= LOWER - 1e-9) and np.all(every <= UPPER + 1e-9)
        assert streamer.filter.counters["received"] == len(sent)
        assert got, "no command reached the controller topic"
        arr = np.array(got)
        assert np.all(np.isfinite(arr))
        assert np.all(arr >= LOWER - 1e-9) and np.all(arr <= UPPER + 1e-9)
        for _, m in out.snapshot():
            assert list(m.joint_names) == NAMES
        c = streamer.filter.counters
        assert c["rejected_nonfinite"] == 2 and c["rejected_joint_names"] == 2
        if position_mode == "reject":
            assert c["rejected_position"] == 1 and len(got) == 2
        else:
            assert c["clamped"] == 1 and len(got) == 3
            assert got[1][1] == pytest.approx(1.5)  # clamped to j2's upper limit
            # and time-scaled: 1.49 rad at 2 rad/s takes >= 0.745 s, not one 20 ms period
            forwards = [m for _, m in out.snapshot() if m.points]
            t_from_start = forwards[1].points[0].time_from_start
            assert t_from_start.sec + t_from_start.nanosec * 1e-9 >= 0.74


@pytest.mark.parametrize("command_thread", [True, False], ids=["command_thread", "executor"])
def test_watchdog_holds_within_two_periods_then_stops(tiny_urdf, command_thread):
    with RosGraph() as g:
        # 20 Hz stream, watchdog after 1.5 periods: a command 25 ms late is still in time (no hold in
        # the middle of the stream on a loaded machine), and the hold must come within 2 periods
        # (100 ms) of the last one, which leaves 25 ms for scheduling
        period = 0.05
        streamer = g.add(SafetyStreamerNode, _params(tiny_urdf, control_rate_hz=1 / period, watchdog_periods=1.5,
                                                     command_thread=command_thread))
        assert (streamer._command_sub is not None) == command_thread
        out = g.probe(JointTrajectory, "/right_hand_controller/joint_trajectory", STREAM_QOS)
        drv = g.node("driver")
        _seed(g, drv)
        pub = drv.create_publisher(JointTrajectory, "/handx/right/command", STREAM_QOS)
        _connect(pub)
        wait_for(lambda: streamer.filter.last_safe_position is not None, 3.0)
        # the first sample proves the DDS pipe is matched both ways (no late redelivery later)
        pub.publish(joint_trajectory(NAMES, [0.0, 0.0, 0.0], period))
        assert wait_for(lambda: streamer.filter.counters["forwarded"] == 1, 3.0, period=0.001)
        t0 = time.monotonic()
        for k in range(1, 10):
            pub.publish(joint_trajectory(NAMES, [0.01 * k, 0.0, 0.0], period))
            time.sleep(max(0.0, t0 + k * period - time.monotonic()))
        msgs = out.wait(count=12, timeout=3.0)
        assert streamer.filter.counters["held"] == 1, "the watchdog held in the middle of the stream"
        with_points = [(t, m) for t, m in msgs if m.points]
        forwards, holds = with_points[:10], with_points[10:]  # the watchdog's hold comes after the stream
        stops = [(t, m) for t, m in msgs if not m.points]
        assert streamer.filter.counters["forwarded"] == 10
        assert len(holds) == 1 and len(stops) == 1, [len(m.points) for _, m in msgs]
        t_last = forwards[-1][0]
        dt_hold = holds[0][0] - t_last
        assert dt_hold <= 2 * period, f"hold came {dt_hold * 1e3:.1f} ms after the last command (period {period * 1e3} ms)"
        # not premature (the bound is loose: the probe's arrival time of the last command can be late)
        assert dt_hold >= 0.5 * period
        np.testing.assert_allclose(holds[0][1].points[0].positions, [0.09, 0.0, 0.0], atol=1e-9)
        assert stops[0][0] > holds[0][0]
        assert streamer.filter.counters["held"] == 1 and streamer.filter.counters["stopped"] == 1


def test_estop_latches_and_blocks_until_reset(tiny_urdf):
    with RosGraph() as g:
        streamer = g.add(SafetyStreamerNode, _params(tiny_urdf, watchdog_stop_s=10.0, watchdog_periods=50.0))
        out = g.probe(JointTrajectory, "/right_hand_controller/joint_trajectory", STREAM_QOS)
        diag = g.probe(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)
        drv = g.node("driver")
        _seed(g, drv)
        pub = drv.create_publisher(JointTrajectory, "/handx/right/command", STREAM_QOS)
        estop = drv.create_publisher(Bool, "/handx/estop", LATCHED_QOS)
        client = drv.create_client(Trigger, "/handx/right/estop_reset")
        _connect(pub)
        _connect(estop)
        assert client.wait_for_service(timeout_sec=5.0)
        wait_for(lambda: streamer.filter.last_safe_position is not None, 3.0)

        def call_reset():
            fut = client.call_async(Trigger.Request())
            assert wait_for(fut.done, 5.0)
            return fut.result()

        pub.publish(joint_trajectory(NAMES, [0.01, 0.0, 0.0], PERIOD))
        out.wait(1)
        estop.publish(Bool(data=True))
        msgs = out.wait(3)  # forward, hold, stop
        assert [len(m.points) for _, m in msgs] == [1, 1, 0]
        n_out = len(out)
        for _ in range(5):
            pub.publish(joint_trajectory(NAMES, [0.01, 0.0, 0.0], PERIOD))
            time.sleep(0.01)
        estop.publish(Bool(data=False))  # releasing does not unlatch
        time.sleep(0.05)
        pub.publish(joint_trajectory(NAMES, [0.01, 0.0, 0.0], PERIOD))
        assert wait_for(lambda: streamer.filter.counters["blocked_estop"] >= 6, 3.0)
        assert len(out) == n_out, "a command got through while the e-stop was latched"
        assert wait_for(lambda: any(s.level == s.ERROR for _, m in diag.snapshot() for s in m.status), 3.0)

        estop.publish(Bool(data=True))
        time.sleep(0.05)
        res = call_reset()
        assert not res.success and "still engaged" in res.message
        estop.publish(Bool(data=False))
        time.sleep(0.05)
        res = call_reset()
        assert res.success, res.message
        pub.publish(joint_trajectory(NAMES, [0.012, 0.0, 0.0], PERIOD))
        assert wait_for(lambda: len(out) > n_out, 3.0)
        np.testing.assert_allclose(out.snapshot()[-1][1].points[0].positions, [0.012, 0.0, 0.0])
        counts = {kv.key: kv.value for _, m in diag.wait(1) for s in m.status for kv in s.values}
        assert "blocked_estop" in counts and "clamped" in counts and "held" in counts


def _audited(streamer, tiny_urdf: str, max_acceleration: float) -> SafetyAudit:
    """An independent audit of everything the node's filter decides, at the node's own times."""
    cfg = streamer.config
    lower, upper, vmax, amax = read_limits(tiny_urdf, NAMES, 2.0, max_acceleration)
    audit = SafetyAudit(NAMES, lower, upper, vmax, amax, interface=cfg.interface,
                        control_period_s=cfg.control_period_s, watchdog_timeout_s=cfg.watchdog_timeout_s,
                        watchdog_stop_s=cfg.watchdog_stop_s)
    flt = streamer.filter
    filter_, tick, set_measured = flt.filter, flt.tick, flt.set_measured

    def audited_filter(names, positions, t, duration_s=None):
        d = filter_(names, positions, t, duration_s=duration_s)
        audit.command(t, names, positions, duration_s, d)
        return d

    def audited_tick(t):
        d = tick(t)
        audit.tick(t, d)
        return d

    def audited_measured(names, positions, hardware_units=False):
        used = set_measured(names, positions, hardware_units)
        audit.measured(names, positions, used)
        return used

    flt.filter, flt.tick, flt.set_measured = audited_filter, audited_tick, audited_measured
    return audit


def test_the_three_once_broken_guarantees_over_dds(tiny_urdf):
    """What reaches the controller topics when the node gets (1) a full-range trajectory move asked
    in 1 ns, (2) a 50 Hz position stream with timing jitter pushing past a limit, (3) position-stream
    commands saying "10 s from now". An independent audit checks every decision at the node's times."""
    rng = np.random.default_rng(0)
    vmax = 2.0
    with RosGraph() as g:  # (1) joint_trajectory, velocities 'scale'
        streamer = g.add(SafetyStreamerNode, _params(tiny_urdf, max_acceleration=50.0, watchdog_periods=100.0))
        audit = _audited(streamer, tiny_urdf, 50.0)
        out = g.probe(JointTrajectory, "/right_hand_controller/joint_trajectory", STREAM_QOS)
        drv = g.node("driver")
        _seed(g, drv)
        assert wait_for(lambda: streamer.filter.last_safe_position is not None, 3.0)
        pub = drv.create_publisher(JointTrajectory, "/handx/right/command", STREAM_QOS)
        _connect(pub)
        pub.publish(joint_trajectory(NAMES, UPPER, 1e-9))
        (_, msg), = out.wait(1)
        took = duration_to_s(msg.points[0].time_from_start)
        np.testing.assert_allclose(msg.points[0].positions, UPPER)
        assert took >= 1.5 / vmax - 1e-9, f"a 1.5 rad move went out in {took} s"  # j2: 0 -> 1.5 at 2 rad/s
        assert audit.total == 0, audit.examples

    for case in ("jitter near a limit", "10 s from now"):  # (2) and (3): forward_command
        with RosGraph() as g:
            streamer = g.add(SafetyStreamerNode, _params(tiny_urdf, controller="forward_command",
                                                         max_acceleration=20.0, watchdog_periods=3.0))
            audit = _audited(streamer, tiny_urdf, 20.0)
            out = g.probe(Float64MultiArray, "/right_hand_controller/commands", STREAM_QOS)
            drv = g.node("driver")
            _seed(g, drv)
            assert wait_for(lambda streamer=streamer: streamer.filter.last_safe_position is not None, 3.0)
            pub = drv.create_publisher(JointTrajectory, "/handx/right/command", STREAM_QOS)
            _connect(pub)
            t_next = time.monotonic()
            for k in range(40):
                if case == "jitter near a limit":
                    q, duration = (UPPER + 0.2 if k < 30 else LOWER), PERIOD  # past the limit, then back
                else:
                    q, duration = (UPPER if k % 2 == 0 else LOWER), 10.0
                pub.publish(joint_trajectory(NAMES, q, duration))
                t_next += PERIOD * (1.0 + rng.normal(0.0, 0.02))
                time.sleep(max(0.0, t_next - time.monotonic()))
            assert wait_for(lambda streamer=streamer: streamer.filter.counters["received"] >= 40, 5.0)
            time.sleep(0.05)
            sent = np.array([m.data for _, m in out.snapshot()])
            assert len(sent) >= 35, streamer.filter.counters
            assert np.all(sent >= LOWER - 1e-9) and np.all(sent <= UPPER + 1e-9), case
            steps = np.abs(np.diff(np.vstack([np.zeros(3), sent]), axis=0))
            assert np.all(steps <= vmax * PERIOD * (1 + 1e-9)), f"{case}: a step of {steps.max()} rad"
            assert streamer.filter.counters["step_limited"] > 0
            assert audit.total == 0, (case, audit.examples)


def test_forward_command_interface_inspire_units(dex_urdf_dir):
    """Float64MultiArray output in hardware units (Inspire: [0, 1], 1 = open); dry run publishes nothing."""
    urdf = str(dex_urdf_dir / "inspire_hand" / "inspire_hand_right.urdf")
    with RosGraph() as g:
        streamer = g.add(
            SafetyStreamerNode,
            _params(urdf, controller="forward_command", unit_mapping="inspire", state_in_hardware_units=True,
                    max_acceleration=1e6),
        )
        names = list(streamer.config.joint_names)
        assert len(names) == 6
        out = g.probe(Float64MultiArray, "/right_hand_controller/commands", STREAM_QOS)
        drv = g.node("driver")
        state_pub = drv.create_publisher(type(joint_state([], [])), "/test/joint_states", STREAM_QOS)
        _connect(state_pub)
        state_pub.publish(joint_state(names, [1.0] * 6))  # fully open, hardware units
        assert wait_for(lambda: streamer.filter.last_safe_position is not None, 3.0)
        np.testing.assert_allclose(streamer.filter.last_safe_position, [lim.lower for lim in streamer.config.limits])
        pub = drv.create_publisher(JointTrajectory, "/handx/right/command", STREAM_QOS)
        _connect(pub)
        q = [lim.lower for lim in streamer.config.limits]
        pub.publish(joint_trajectory(names, q, PERIOD))
        (t, msg), = out.wait(1)
        np.testing.assert_allclose(msg.data, [1.0] * 6, atol=1e-9)

    with RosGraph() as g:
        streamer = g.add(SafetyStreamerNode, _params(urdf, controller="forward_command", dry_run=True))
        out = g.probe(Float64MultiArray, "/right_hand_controller/commands", STREAM_QOS)
        drv = g.node("driver")
        _seed_names = streamer.config.joint_names
        state_pub = drv.create_publisher(type(joint_state([], [])), "/test/joint_states", STREAM_QOS)
        _connect(state_pub)
        state_pub.publish(joint_state(_seed_names, [0.0] * 6))
        assert wait_for(lambda: streamer.filter.last_safe_position is not None, 3.0)
        pub = drv.create_publisher(JointTrajectory, "/handx/right/command", STREAM_QOS)
        _connect(pub)
        pub.publish(joint_trajectory(_seed_names, [0.01] * 6, PERIOD))
        assert wait_for(lambda: streamer.filter.counters["forwarded"] == 1, 3.0)
        time.sleep(0.1)
        assert len(out) == 0


def test_invalid_parameter_is_a_clear_error(tiny_urdf):
    from handx_robot.errors import ConfigError, ModelLoadError

    with RosGraph() as g:
        with pytest.raises(ConfigError, match="position_mode"):
            g.add(SafetyStreamerNode, _params(tiny_urdf, position_mode="yolo"))
        with pytest.raises(ModelLoadError, match="model_path"):
            g.add(SafetyStreamerNode, {"model_path": "/nonexistent.urdf"}, name="s2")
        with pytest.raises(ConfigError, match="realtime_priority"):
            g.add(SafetyStreamerNode, _params(tiny_urdf, realtime_priority=120), name="s3")


def test_realtime_priority_puts_every_thread_under_sched_fifo():
    """In a child process (SCHED_FIFO must not leak into the test runner): every thread of the
    process, DDS threads included, ends up SCHED_FIFO at the priority; 0 changes nothing; where the
    user may not, the error says how to allow it."""
    import os
    import subprocess
    import sys

    if not hasattr(os, "SCHED_FIFO"):
        pytest.skip("no SCHED_FIFO on this OS")
    code = """
import os, threading, rclpy
from handx_robot.errors import ConfigError
from handx_robot.ros.common import set_realtime_priority
rclpy.init()
node = rclpy.create_node("rt_probe")  # DDS threads exist by now
assert "normal" in set_realtime_priority(0) and os.sched_getscheduler(0) == os.SCHED_OTHER
try:
    msg = set_realtime_priority(10)
except ConfigError as exc:
    print("DENIED", exc)
else:
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    assert len(tids) > 1, tids
    assert all(os.sched_getscheduler(t) == os.SCHED_FIFO for t in tids)
    assert all(os.sched_getparam(t).sched_priority == 10 for t in tids)
    print("OK", msg)
node.destroy_node()
rclpy.shutdown()
"""
    # whether this machine lets a process take SCHED_FIFO decides which answer is right
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))"
    allowed = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30).returncode == 0
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    if allowed:
        assert r.stdout.startswith("OK SCHED_FIFO priority 10 on"), r.stdout
    else:
        assert r.stdout.startswith("DENIED"), r.stdout
        assert "limits.conf" in r.stdout and "realtime_priority:=0" in r.stdout


def test_dedicated_subscription_serves_on_its_own_thread_and_survives_errors():
    """Messages reach the callback on the dedicated thread (no executor runs it), in order; an
    exception in the callback is counted and logged and the loop goes on; the deadline callback
    fires once its time comes; close() stops the thread."""
    import threading

    from handx_robot.ros.common import DedicatedSubscription
    from std_msgs.msg import Int32

    with RosGraph() as g:
        node = g.node("dedicated")
        got, threads, fired = [], set(), []
        deadline = [time.monotonic() + 0.3]

        def on_msg(msg):
            threads.add(threading.current_thread().name)
            if msg.data == 3:
                raise ValueError("bad message 3")
            got.append(msg.data)

        def on_deadline():
            fired.append(time.monotonic())
            deadline[0] = None

        sub = DedicatedSubscription(node, Int32, "/test/dedicated", STREAM_QOS, on_msg,
                                    next_deadline=lambda: deadline[0], on_deadline=on_deadline,
                                    thread_name="dedicated-test").start()
        t_deadline = deadline[0]
        pub = g.node("pub").create_publisher(Int32, "/test/dedicated", STREAM_QOS)
        _connect(pub)
        for k in range(6):
            pub.publish(Int32(data=k))
        assert wait_for(lambda: len(got) == 5, 5.0), got
        assert got == [0, 1, 2, 4, 5] and sub.errors == 1
        assert threads == {"dedicated-test"}
        assert wait_for(lambda: fired, 3.0)
        assert fired[0] >= t_deadline and len(fired) == 1
        sub.close()
        assert not sub.alive and sub.subscription is None
        pub.publish(Int32(data=9))
        time.sleep(0.1)
        assert got == [0, 1, 2, 4, 5]
