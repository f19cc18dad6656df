"""No lost start, over real DDS in one process: the text-to-motion node streams a prompt only once
every node it waits for says ``ready`` on /handx/ready, then every frame in order; it drops the
motion with an error when one of them stops mid-stream, and names the nodes it waited for in vain.
(The same with a real ``ros2 launch``: tests/test_ros2_launch.py.)"""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseArray  # noqa: E402
from handx_robot.ros.common import LATCHED_QOS, STREAM_QOS  # noqa: E402
from handx_robot.ros.graph import GraphConfig, build_graph  # noqa: E402
from handx_robot.ros.readiness import READY_READER_QOS, TOPIC_READY  # noqa: E402
from handx_robot.ros.text_to_motion_node import TOPIC_STATUS, make_motion  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_harness import RosGraph, wait_for  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

PROMPT = "make a fist with the right hand"
DEEP = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2000, reliability=ReliabilityPolicy.RELIABLE,
                  durability=DurabilityPolicy.VOLATILE)


def _specs():
    cfg = GraphConfig(robot="shadow_builtin_right", mode="sim", prompt=PROMPT)
    return {s.name: s for s in build_graph(cfg)}


def _add(g, spec, **params):
    return g.add(spec.load_factory(), {**spec.parameters, **params}, name=spec.name)


def test_the_graph_waits_for_its_nodes():
    specs = _specs()
    assert specs["text_to_motion"].parameters["wait_for"] == "retarget,safety_streamer_right,sim"


def test_a_prompt_waits_for_late_nodes_then_streams_every_frame():
    specs = _specs()
    frames = make_motion(PROMPT).resample(30.0).num_frames
    with RosGraph() as g:
        status = g.probe(String, TOPIC_STATUS, LATCHED_QOS)
        ready = g.probe(String, TOPIC_READY, READY_READER_QOS)
        keypoints = g.probe(PoseArray, "/handx/keypoints", DEEP)
        commands = g.probe(JointTrajectory, "/handx/right/command", DEEP)
        t2m = _add(g, specs["text_to_motion"])  # the prompt is given, the rest of the graph is not there yet
        assert wait_for(lambda: t2m.status.startswith("waiting for"), 20.0), t2m.status
        assert "retarget (not running)" in t2m.status and "sim (not running)" in t2m.status, t2m.status
        assert len(keypoints) == 0, "keypoints streamed before the graph was ready"
        for name in ("sim", "safety_streamer_right", "retarget"):  # they come up late (or restart)
            _add(g, specs[name])
        assert wait_for(lambda: t2m.status.startswith("done"), 30.0), [m.data for _, m in status.snapshot()]
        assert wait_for(lambda: len(commands) >= frames, 2.0)
        said = [m.data for _, m in ready.snapshot()]
        for name in ("text_to_motion", "retarget", "safety_streamer_right", "sim"):
            assert f"{name} starting" in said and f"{name} ready" in said, said
        assert len(keypoints) == frames and t2m.frames_skipped == 0
        assert len(commands) == frames, f"{len(commands)} of {frames} frames retargeted"
        stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for _, m in keypoints.snapshot()]
        assert stamps == sorted(stamps), "keypoint frames out of order"


def test_a_node_that_stops_mid_motion_stops_the_stream():
    specs = _specs()
    with RosGraph() as g:
        status = g.probe(String, TOPIC_STATUS, LATCHED_QOS)
        keypoints = g.probe(PoseArray, "/handx/keypoints", DEEP)
        for name in ("sim", "safety_streamer_right"):
            _add(g, specs[name])
        with RosGraph(domain_id=g.domain_id) as other:  # the retargeter in a context of its own: it stops
            _add(other, specs["retarget"])
            t2m = _add(g, specs["text_to_motion"], loop=True)
            assert wait_for(lambda: t2m.status.startswith("streaming"), 30.0), t2m.status
            assert wait_for(lambda: len(keypoints) >= 10, 5.0)
        assert wait_for(lambda: t2m.status.startswith("error"), 5.0), t2m.status
        assert "motion stopped at frame" in t2m.status and "retarget" in t2m.status, t2m.status
        n = len(keypoints)
        assert wait_for(lambda: len(keypoints) > n, 0.5) is False, "it kept streaming into a broken graph"
        assert any(m.data.startswith("error") for _, m in status.snapshot())


def test_nodes_that_never_come_are_named():
    specs = _specs()
    with RosGraph() as g:
        t2m = _add(g, specs["text_to_motion"], wait_for="retarget,no_such_node", ready_timeout_s=1.0)
        assert wait_for(lambda: t2m.status.startswith("error"), 15.0), t2m.status
        assert "no_such_node (not running)" in t2m.status and "send the prompt again" in t2m.status


def test_a_streamer_is_ready_only_with_a_controller():
    specs = _specs()
    with RosGraph() as g:
        streamer = _add(g, specs["safety_streamer_right"])
        assert wait_for(lambda: streamer.readiness.state.startswith("waiting"), 10.0), streamer.readiness.state
        assert "a subscriber on /right_hand_controller/joint_trajectory" in streamer.readiness.state
        g.probe(JointTrajectory, "/right_hand_controller/joint_trajectory", STREAM_QOS)  # a controller appears
        assert wait_for(lambda: streamer.readiness.ready, 10.0), streamer.readiness.state
