"""A real ``ros2 launch`` of the package, as a ROS 2 user runs it (the tests' and benchmarks' harness,
not product code).

:func:`build_workspace` copies what setup.py packages into ``WS/src/handx_robot`` and runs ``colcon
build`` there with this interpreter's colcon (the README's ROS steps, with this virtual environment
standing in for ``/opt/ros/<distro>``). :func:`launch_once` starts ``ros2 launch handx_robot
text_to_hand.launch.py ...`` cold, in a fresh process group, records what reaches the topics with an
in-process listener, stops it once the motion is done and measures how long the launch takes to exit.
Three ways to stop it (``stop``):

- ``ctrl-c``: SIGINT to the process group once the motion is done, as a terminal's Ctrl-C does
  (``ros2 launch`` gets one SIGINT, each node one from the terminal and one from launch);
- ``timeout``: the launch runs under ``timeout --foreground -s INT T`` and is stopped when it expires
  (timeout signals ``ros2 launch`` once; launch signals the nodes);
- ``timeout-group``: under ``timeout -s INT T``, which signals its child and then the whole group, so
  ``ros2 launch`` gets SIGINT twice. ros2 launch itself (launch 3.7.1, not the nodes) can then hang:
  the second SIGINT raises KeyboardInterrupt inside one of its asyncio tasks (measured in
  benchmarks/RESULTS.md).

Either way a hard bound kills the group if the launch does not exit.

The launch tools are not on PyPI: ``../shared/ros2-launch`` holds wheels of them, which
``scripts/ensure_env.sh`` installs where that folder exists; elsewhere :func:`missing_tools` says what
is absent and the callers skip.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: what setup.py packages (copied, so a build never writes into the source tree)
SOURCES = ("handx_robot", "retarget", "sim", "ros_nodes", "launch", "resource",
           "setup.py", "setup.cfg", "package.xml", "requirements.txt")
LAUNCH_FILE = "text_to_hand.launch.py"
#: how :func:`launch_once` stops a launch (see the module docstring)
STOPS = ("ctrl-c", "timeout", "timeout-group")
#: how the README's ROS steps build the package (run in the workspace, with the virtual environment active)
BUILD_COMMAND = ("colcon", "build", "--packages-select", "handx_robot")

__all__ = ["SOURCES", "STOPS", "BUILD_COMMAND", "LaunchRun", "missing_tools", "colcon_executable", "build_workspace", "launch_env",
           "launch_command", "launch_once"]


def colcon_executable() -> str | None:
    exe = Path(sys.executable).with_name("colcon")
    return str(exe) if exe.is_file() else shutil.which("colcon")


def missing_tools() -> str:
    """'' when colcon and the ROS 2 launch tools are installed, else what is missing (a skip reason)."""
    if colcon_executable() is None:
        return "colcon is not installed (pip install -r requirements-dev.txt)"
    absent = [m for m in ("ros2cli", "ros2launch", "launch_ros") if importlib.util.find_spec(m) is None]
    if absent:
        return (f"the ROS 2 launch tools {absent} are not installed (make env installs them from "
                "../shared/ros2-launch where that folder exists; a ROS 2 install has them)")
    return ""


def build_workspace(ws: Path, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``colcon build`` of this repository's package in workspace ``ws`` (``ws/src/handx_robot``)."""
    src = ws / "src" / "handx_robot"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=ignore)
        else:
            shutil.copy2(p, src / name)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [colcon_executable(), *BUILD_COMMAND[1:], "--event-handlers", "console_direct-"],
        cwd=ws, env=env, capture_output=True, text=True, timeout=timeout,
    )


def launch_env() -> dict[str, str]:
    """The environment of a shell in which ``source install/setup.bash`` then works: this interpreter
    first on PATH, and its prefix on AMENT_PREFIX_PATH where a ROS install's setup.bash would put
    ``/opt/ros/<distro>`` (the rclpy and message wheels register their packages there)."""
    prefix = str(Path(sys.prefix))
    ament = os.environ.get("AMENT_PREFIX_PATH", "")
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                AMENT_PREFIX_PATH=f"{prefix}{os.pathsep}{ament}" if ament else prefix,
                PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")


def launch_command(arguments: dict[str, str], timeout_s: float | None = None, extra: tuple[str, ...] = (),
                   foreground: bool = True) -> str:
    """The shell line: source the workspace, then ``ros2 launch`` (under ``timeout [--foreground] -s INT
    timeout_s`` when given; its exit code is then the launch's, ``--preserve-status``)."""
    import shlex

    args = " ".join(shlex.quote(f"{k}:={v}") for k, v in arguments.items())
    fg = "--foreground " if foreground else ""
    bound = f"timeout {fg}--preserve-status -s INT {timeout_s:g} " if timeout_s else ""
    return f"source install/setup.bash && exec {bound}ros2 launch handx_robot {LAUNCH_FILE} {args} {' '.join(extra)}"


@dataclasses.dataclass
class LaunchRun:
    """What one launch did. Times in seconds from the start of ``ros2 launch``.

    statuses:    ``/handx/status`` values in order (time, text).
    keypoints:   arrival times of ``/handx/keypoints`` messages.
    commands:    (time, positions) of ``/handx/<side>/command`` (the retargeter's output).
    controller:  (time, positions or None for a stop) of the controller topic (the safety streamer's output).
    streamer:    the safety streamer's last counters on /diagnostics (name -> int; published each second).
    frames:      the frame count the node announced (``streaming N frames``), or None.
    shutdown_s:  the first SIGINT -> ``ros2 launch`` exited (None: it was not stopped, it ended by itself).
    hung:        the launch did not exit within the bound after SIGINT and was killed.
    returncode:  ``ros2 launch``'s exit code (through ``timeout --preserve-status``).
    log:         its combined output.
    """

    statuses: list[tuple[float, str]]
    keypoints: list[float]
    commands: list[tuple[float, tuple[float, ...]]]
    controller: list[tuple[float, tuple[float, ...] | None]]
    streamer: dict[str, int]
    frames: int | None
    shutdown_s: float | None
    hung: bool
    returncode: int
    log: str

    def missing_commands(self, tol: float = 1e-6) -> int:
        """How many of the retargeter's commands are not on the controller topic, in order, with the
        same positions (the safety streamer forwards each one as it came unless it clamped it into the
        position limits or step-limited it to the velocity/acceleration limits: its counters say how
        many it changed)."""
        out = [np.asarray(q) for _, q in self.controller if q is not None]
        i = 0
        missing = 0
        for _, q in self.commands:
            q = np.asarray(q)
            j = i
            while j < len(out) and not (out[j].shape == q.shape and np.max(np.abs(out[j] - q)) <= tol):
                j += 1
            if j == len(out):
                missing += 1
            else:
                i = j + 1
        return missing


def launch_once(ws: Path, arguments: dict[str, str], side: str = "right", stop: str = "ctrl-c",
                timeout_s: float = 25.0, bound_s: float = 30.0, done_timeout_s: float = 80.0, settle_s: float = 1.2,
                env: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> LaunchRun:
    """Run one cold launch in workspace ``ws`` and record it (see the module docstring). The listener
    runs on this process's ROS domain (set one with ``ros_harness.isolate_ros_env`` first).
    ``timeout_s``: the ``timeout`` of ``stop='timeout'`` (it must outlast the motion); ``bound_s``: how
    long the launch may take to exit after the first SIGINT before it is killed."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseArray
    from handx_robot.ros.common import LATCHED_QOS
    from handx_robot.ros.text_to_motion_node import TOPIC_STATUS
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from ros_harness import RosGraph, wait_for
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    if stop not in STOPS:
        raise ValueError(f"stop is {stop!r}; allowed: {', '.join(STOPS)}")
    deep = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5000, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
    with RosGraph(domain_id=int(os.environ["ROS_DOMAIN_ID"]) if "ROS_DOMAIN_ID" in os.environ else None) as g:
        status = g.probe(String, TOPIC_STATUS, LATCHED_QOS)
        keypoints = g.probe(PoseArray, "/handx/keypoints", deep)
        commands = g.probe(JointTrajectory, f"/handx/{side}/command", deep)
        controller = g.probe(JointTrajectory, f"/{side}_hand_controller/joint_trajectory", deep)
        diagnostics = g.probe(DiagnosticArray, "/diagnostics", deep)
        time.sleep(0.5)  # the listener's own discovery
        t0 = time.monotonic()
        proc = None

        def finished() -> bool:
            last = status.snapshot()[-1:] if len(status) else []
            return proc.poll() is not None or bool(last and last[0][1].data.startswith(("done", "error")))

        bound = None if stop == "ctrl-c" else timeout_s
        proc = subprocess.Popen(["bash", "-c", launch_command(arguments, bound, extra, stop == "timeout")], cwd=ws,
                                env=env or launch_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        chunks: list[str] = []
        reader = threading.Thread(target=lambda: chunks.extend(proc.stdout), daemon=True)
        reader.start()
        wait_for(finished, done_timeout_s, period=0.05)
        shutdown_s = None
        hung = False
        if proc.poll() is None:
            time.sleep(settle_s)  # the streamer's last hold and its next diagnostics
            if stop == "ctrl-c":
                t_int = time.monotonic()
                os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: every process of the group gets it
            else:  # let timeout expire
                t_int = t0 + timeout_s
            try:
                proc.wait(timeout=max(0.0, t_int + bound_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                hung = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            shutdown_s = time.monotonic() - t_int
        reader.join(timeout=5.0)

        def rel(t: float) -> float:
            return t - t0

        statuses = [(rel(t), m.data) for t, m in status.snapshot()]
        frames = None
        for _, text in statuses:
            if text.startswith("streaming ") and text.endswith(" frames"):
                frames = int(text.split()[1])
        streamer: dict[str, int] = {}
        for _, msg in diagnostics.snapshot():
            for st in msg.status:
                if st.name == f"handx_robot/safety_streamer/{side}":
                    streamer = {kv.key: int(kv.value) for kv in st.values if kv.value.isdigit()}
        return LaunchRun(
            statuses=statuses,
            keypoints=[rel(t) for t, _ in keypoints.snapshot()],
            commands=[(rel(t), tuple(m.points[-1].positions)) for t, m in commands.snapshot() if m.points],
            controller=[(rel(t), tuple(m.points[-1].positions) if m.points else None)
                        for t, m in controller.snapshot()],
            streamer=streamer,
            frames=frames,
            shutdown_s=shutdown_s,
            hung=hung,
            returncode=proc.returncode,
            log="".join(chunks),
        )
