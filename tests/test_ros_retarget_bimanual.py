"""The ROS retarget node streams the bimanual solve (parameter ``interaction``): on a clap every frame of
both hands is published, the frames where the hands meet go through the solve, and the commands and wrist
poses differ from the per-hand ones there; with one hand, the frames of a fist where its fingers would pass
through each other go through it. Real rclpy, built-in Shadow hands; the solve's own figures are checked in
tests/test_interaction.py."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from handx_robot.ros.common import queue_qos  # noqa: E402
from handx_robot.ros.convert import keypoints_to_pose_array  # noqa: E402
from handx_robot.ros.retarget_node import RetargetNode  # noqa: E402
from ros_harness import RosGraph, wait_for  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from handx_robot.frames import FRAME_WORLD_ZUP  # noqa: E402
from handx_robot.generate import generate  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]


def _stream(interaction: str, kp: np.ndarray, sides=("left", "right")):
    params = {f"{s}_robot": f"shadow_builtin_{s}" for s in sides} | {"interaction": interaction}
    with RosGraph() as g:
        node = g.add(RetargetNode, params)
        probes = {s: (g.probe(JointTrajectory, f"/handx/{s}/command", queue_qos(1000)),
                      g.probe(PoseStamped, f"/handx/{s}/wrist_pose", queue_qos(1000))) for s in sides}
        assert wait_for(lambda: all(c.sub.get_publisher_count() and w.sub.get_publisher_count()
                                    for c, w in probes.values()), 10.0)
        for t in range(kp.shape[0]):  # the node's callback, one frame at a time, as the executor calls it
            node._on_keypoints(keypoints_to_pose_array(kp[t], np.array([True, True]), "world", None))
        n = kp.shape[0]
        assert wait_for(lambda: all(len(c) >= n and len(w) >= n for c, w in probes.values()), 10.0)
        out = {s: (np.array([m.points[0].positions for _, m in c.snapshot()]),
                   np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z] for _, m in w.snapshot()]))
               for s, (c, w) in probes.items()}
        return out, node.bimanual_frames


def test_two_hands_stream_the_bimanual_solve():
    kp = generate("clap twice", seed=0).in_frame(FRAME_WORLD_ZUP).joints
    on, solved = _stream("auto", kp)
    off, none = _stream("off", kp)
    assert none == 0 and solved > 0
    for s in ("left", "right"):
        assert on[s][0].shape == off[s][0].shape == (kp.shape[0], on[s][0].shape[1])
        assert np.all(np.isfinite(on[s][0])) and np.all(np.isfinite(on[s][1]))
    # where the hands meet, the solve moves the wrists apart (bounded) and changes the fingers
    wrist_shift = max(np.abs(on[s][1] - off[s][1]).max() for s in on)
    assert 1e-3 < wrist_shift < 0.1, wrist_shift


def test_one_hand_streams_the_solve_where_its_fingers_would_cross():
    """Right hand only: the fist's frames where the per-hand fingers pass through each other (17 mm deep on
    the built-in Shadow, offline) go through the solve, and their commands differ from the per-hand ones."""
    kp = generate("make a fist with the right hand", seed=0).in_frame(FRAME_WORLD_ZUP).joints
    on, solved = _stream("auto", kp, ("right",))
    off, none = _stream("off", kp, ("right",))
    assert none == 0 and solved > 0
    assert on["right"][0].shape == off["right"][0].shape and np.all(np.isfinite(on["right"][0]))
    assert np.abs(on["right"][0] - off["right"][0]).max() > 0.05  # rad: the fingers moved apart
