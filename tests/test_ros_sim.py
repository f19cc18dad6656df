"""The sim node (MuJoCo hand standing in for hardware) over real DDS, and its trajectory follower."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from handx_robot.ros.common import STATE_QOS, STREAM_QOS  # noqa: E402
from handx_robot.ros.convert import float64_array  # noqa: E402
from handx_robot.ros.sim_node import SimNode, TrajectoryFollower  # noqa: E402
from ros_harness import RosGraph, wait_for  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]


def test_trajectory_follower_interpolates_and_holds():
    f = TrajectoryFollower(np.zeros(2))
    f.set(10.0, np.zeros(2), [0.5, 1.0], [np.array([1.0, -1.0]), np.array([1.0, 1.0])])
    np.testing.assert_allclose(f.sample(10.0), [0.0, 0.0])
    np.testing.assert_allclose(f.sample(10.25), [0.5, -0.5])
    np.testing.assert_allclose(f.sample(10.75), [1.0, 0.0])
    np.testing.assert_allclose(f.sample(99.0), [1.0, 1.0])  # holds the last point
    f.hold(10.25)
    np.testing.assert_allclose(f.sample(11.0), [0.5, -0.5])


@pytest.mark.assets
def test_sim_follows_forward_commands_in_hardware_units(dex_urdf_dir):
    """Inspire hand, forward_command controller taking [0, 1] (1 = open): the joints go where the
    mapped command says, and /joint_states comes at >= 100 Hz."""
    with RosGraph() as g:
        sim = g.add(SimNode, {"right_robot": "inspire_right", "assets": str(dex_urdf_dir),
                              "controller": "forward_command", "unit_mapping": "inspire"})
        hand = sim.hands["right"]
        states = g.probe(JointState, "/handx/right/joint_states", STATE_QOS)
        pub = g.node("driver").create_publisher(Float64MultiArray, "/right_hand_controller/commands", STREAM_QOS)
        assert wait_for(lambda: pub.get_subscription_count() > 0, 5.0)
        assert wait_for(lambda: len(states) > 5, 5.0)
        hw = np.full(len(hand.joint_names), 0.5)  # half closed
        pub.publish(float64_array(hw))
        assert wait_for(lambda: hand.commands >= 1, 3.0)
        t0 = time.monotonic()
        time.sleep(1.0)
        limits = sim.scene.joint_limits("right")
        expected = {n: 0.5 * (limits[n][0] + limits[n][1]) for n in hand.joint_names}
        _, js = states.snapshot()[-1]
        measured = dict(zip(js.name, js.position))
        err = np.array([abs(measured[n] - q) for n, q in expected.items()])
        assert np.max(err) < 0.05, dict(zip(expected, np.round(err, 3)))
        times = np.array([t for t, _ in states.snapshot() if t >= t0])
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert rate >= 95.0, f"/handx/right/joint_states at {rate:.1f} Hz"
        # a wrong-size command is refused, the hand stays
        pub.publish(float64_array([0.0, 0.0]))
        time.sleep(0.2)
        assert hand.commands == 1
