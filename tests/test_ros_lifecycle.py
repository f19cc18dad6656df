"""A node process's shutdown (handx_robot.ros.common.run_node): SIGINT, then SIGINT again while it
cleans up (a terminal's Ctrl-C plus the one ros2 launch forwards) ends it with exit code 0; a clean-up
that overruns SHUTDOWN_BUDGET_S is ended by the exit guard (exit code 3); a node that cannot start
exits 1 with its message. Real processes, real rclpy."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("rclpy")

from handx_robot.ros.common import EXIT_SHUTDOWN_OVERRAN, HARD_STOP_AFTER_S, SHUTDOWN_BUDGET_S  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

NODE = """
import sys, time
from rclpy.node import Node
from handx_robot.errors import ConfigError
from handx_robot.ros.common import run_node
from handx_robot.ros.readiness import Readiness

class Demo(Node):
    def __init__(self):
        super().__init__("lifecycle_demo")
        if sys.argv[1] == "fail":
            raise ConfigError("node 'lifecycle_demo': parameter 'robot' is 'nope'; give a robot id")
        self.readiness = Readiness(self)
        self._said = False
        self.create_timer(0.01, self._tick)

    def _tick(self):  # READY once the node spins: a signal now reaches a built node
        if not self._said:
            self._said = True
            print("READY", flush=True)

    def close(self):
        self.readiness.close()
        if sys.argv[1] == "deadlock":  # stuck in C while holding the GIL: no Python thread can run
            import ctypes
            ctypes.PyDLL(None).sleep(int(sys.argv[2]))
        time.sleep(float(sys.argv[2]))  # clean-up work

sys.exit(run_node(Demo))
"""


def _start(tmp_path, mode: str, close_s: float) -> subprocess.Popen:
    script = tmp_path / "demo_node.py"
    script.write_text(NODE)
    proc = subprocess.Popen([sys.executable, str(script), mode, str(close_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if mode != "fail":
        assert proc.stdout.readline().strip() == "READY"
    return proc


@pytest.mark.parametrize("second_after_s", [None, 0.0, 0.05, 0.3])
def test_sigint_twice_exits_zero_within_budget(tmp_path, second_after_s):
    proc = _start(tmp_path, "ok", 0.2)
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    if second_after_s is not None:
        time.sleep(second_after_s)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=10)
    took = time.monotonic() - t
    out = proc.stdout.read()
    assert rc == 0, out
    assert took < 2.0, f"exit took {took:.2f} s"
    assert "Traceback" not in out, out


def test_sigterm_exits_zero(tmp_path):
    proc = _start(tmp_path, "ok", 0.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_a_hanging_cleanup_is_ended_by_the_guard(tmp_path):
    proc = _start(tmp_path, "ok", 30.0)
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=10)
    took = time.monotonic() - t
    out = proc.stdout.read()
    assert rc == EXIT_SHUTDOWN_OVERRAN, out
    assert SHUTDOWN_BUDGET_S <= took < SHUTDOWN_BUDGET_S + 1.0, took
    assert "shutdown took longer than" in out and "exiting now" in out, out


def test_a_cleanup_deadlocked_with_the_gil_is_ended_by_the_kernel(tmp_path):
    """The guard thread needs the GIL; when clean-up holds it forever, SIGALRM (armed with the first
    signal) ends the process just after the budget anyway."""
    proc = _start(tmp_path, "deadlock", 30)
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=10)
    took = time.monotonic() - t
    assert rc == -signal.SIGALRM, rc
    assert took < SHUTDOWN_BUDGET_S + HARD_STOP_AFTER_S + 0.5, took


def test_a_node_that_cannot_start_exits_one_with_its_message(tmp_path):
    proc = _start(tmp_path, "fail", 0.0)
    rc = proc.wait(timeout=30)
    out = proc.stdout.read()
    assert rc == 1
    assert "parameter 'robot' is 'nope'; give a robot id" in out, out


def test_ros_run_survives_a_second_ctrl_c_and_prints_its_summary(repo_dir):
    """``handx-robot ros-run`` (every node in one process): Ctrl-C twice ends it with exit code 0 and the
    whole summary; the second SIGINT used to kill it halfway through its clean-up (exit -2)."""
    exe = [sys.executable, "-m", "handx_robot.app.cli", "ros-run", "--prompt", "make a fist with the right hand",
           "--robot", "shadow_builtin_right", "--mode", "sim", "--duration", "120"]
    proc = subprocess.Popen(exe, cwd=repo_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in proc.stdout:  # wait until the graph streams
        lines.append(line)
        if "streaming" in line:
            break
    assert proc.poll() is None, "".join(lines)
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=30)
    out = "".join(lines) + proc.stdout.read()
    assert rc == 0, out[-3000:]
    assert time.monotonic() - t < 2.0
    assert "ros-run summary" in out and "  sim:" in out and "safety_streamer_right:" in out, out[-3000:]
