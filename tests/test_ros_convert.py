"""NumPy <-> message conversions of handx_robot.ros.convert (no DDS needed)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from handx_robot.ros.convert import (  # noqa: E402
    duration_msg,
    duration_to_s,
    float64_array,
    joint_trajectory,
    keypoints_to_markers,
    keypoints_to_pose_array,
    pose_array_to_keypoints,
    wrist_pose_stamped,
)
from visualization_msgs.msg import Marker  # noqa: E402

from handx_robot.errors import MotionFormatError  # noqa: E402


def test_keypoints_round_trip_left_then_right_handx_order():
    rng = np.random.default_rng(0)
    kp = rng.uniform(-0.1, 0.1, (2, 21, 3))
    msg = keypoints_to_pose_array(kp, present=(True, True), frame_id="world")
    assert len(msg.poses) == 42 and msg.header.frame_id == "world"
    assert msg.poses[21].position.x == pytest.approx(kp[1, 0, 0])  # right wrist follows the 21 left points
    back, present = pose_array_to_keypoints(msg)
    np.testing.assert_allclose(back, kp, atol=1e-12)
    assert present.tolist() == [True, True]


def test_absent_hand_is_marked_and_deleted_in_markers():
    kp = np.zeros((2, 21, 3))
    kp[1] = 0.05
    _, present = pose_array_to_keypoints(keypoints_to_pose_array(kp, present=(False, True)))
    assert present.tolist() == [False, True]
    markers = keypoints_to_markers(kp, present=(False, True)).markers
    assert [m.action for m in markers[:2]] == [Marker.DELETE, Marker.DELETE]
    spheres, lines = markers[2], markers[3]
    assert spheres.type == Marker.SPHERE_LIST and len(spheres.points) == 21
    assert lines.type == Marker.LINE_LIST and len(lines.points) == 2 * 20  # 20 bones of a hand


def test_bad_shapes_are_errors():
    with pytest.raises(MotionFormatError, match=r"\(2, 21, 3\)"):
        keypoints_to_pose_array(np.zeros((21, 3)))
    msg = keypoints_to_pose_array(np.zeros((2, 21, 3)))
    msg.poses = msg.poses[:40]
    with pytest.raises(MotionFormatError, match="expected 42"):
        pose_array_to_keypoints(msg)
    with pytest.raises(MotionFormatError, match="qw"):
        wrist_pose_stamped([0.0] * 6)


def test_durations_trajectories_arrays():
    assert duration_to_s(duration_msg(1.25)) == pytest.approx(1.25)
    assert duration_msg(2.5e-3).nanosec == 2_500_000
    traj = joint_trajectory(["a", "b"], [0.1, 0.2], 0.05, velocities=[0.0, 0.0])
    assert list(traj.joint_names) == ["a", "b"] and len(traj.points) == 1
    assert duration_to_s(traj.points[0].time_from_start) == pytest.approx(0.05)
    np.testing.assert_allclose(float64_array(np.array([1.0, 2.0])).data, [1.0, 2.0])
    pose = wrist_pose_stamped([1, 2, 3, 1, 0, 0, 0])
    assert (pose.pose.position.z, pose.pose.orientation.w) == (3.0, 1.0)
