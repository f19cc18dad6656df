"""NumPy <-> ROS 2 message conversions (standard messages only).

Keypoint stream (``/handx/keypoints``, geometry_msgs/PoseArray):
    42 poses, left hand's 21 keypoints then the right hand's 21, HandX order
    (:data:`handx_robot.keypoints.HANDX_JOINT_NAMES`); ``position`` in metres in ``header.frame_id``
    (``world``: the robot world frame, Z-up, :data:`handx_robot.frames.FRAME_WORLD_ZUP`);
    ``orientation`` is identity (unused). A hand that is absent has all 21 orientations zero
    (``w = 0``, an invalid quaternion marks "no data") and positions zero.

Joint commands (trajectory_msgs/JointTrajectory): joint names from the robot model, one point,
positions in robot units (rad / m), ``time_from_start`` = time to reach the point.
Wrist pose (geometry_msgs/PoseStamped): ``T_world_base`` as position + quaternion (wxyz internally).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose, PoseArray, PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, Float64MultiArray, Header, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from handx_robot.errors import MotionFormatError
from handx_robot.keypoints import FINGER_CHAINS, WRIST

__all__ = [
    "NUM_KEYPOINTS",
    "duration_msg",
    "duration_to_s",
    "time_to_s",
    "keypoints_to_pose_array",
    "pose_array_to_keypoints",
    "keypoints_to_markers",
    "joint_trajectory",
    "trajectory_point",
    "empty_trajectory",
    "joint_state",
    "joint_state_to_dict",
    "float64_array",
    "wrist_pose_stamped",
]

NUM_KEYPOINTS = 42  # 2 hands x 21 HandX keypoints
_BONES = [(WRIST, chain[0]) for chain in FINGER_CHAINS.values()] + [
    (a, b) for chain in FINGER_CHAINS.values() for a, b in zip(chain[:-1], chain[1:])
]
_HAND_COLORS = {"left": (0.2, 0.5, 1.0), "right": (1.0, 0.4, 0.2)}


def duration_msg(seconds: float) -> Duration:
    """Seconds (>= 0) -> builtin_interfaces/Duration."""
    ns = int(round(max(0.0, float(seconds)) * 1e9))
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def duration_to_s(d: Duration) -> float:
    return d.sec + d.nanosec * 1e-9


def time_to_s(t: Time) -> float:
    return t.sec + t.nanosec * 1e-9


def keypoints_to_pose_array(
    joints: np.ndarray, present: Sequence[bool] = (True, True), frame_id: str = "world", stamp: Time | None = None
) -> PoseArray:
    """(2, 21, 3) keypoints, metres, frame ``frame_id`` (Z-up world) -> PoseArray of 42 poses."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (2, 21, 3):
        raise MotionFormatError(f"keypoints must have shape (2, 21, 3) (left/right, HandX 21, xyz), got {joints.shape}")
    msg = PoseArray(header=Header(frame_id=frame_id, stamp=stamp or Time()))
    poses = []
    for h in range(2):
        w = 1.0 if present[h] else 0.0
        for k in range(21):
            p = Pose()
            p.position.x, p.position.y, p.position.z = (float(v) for v in joints[h, k])
            p.orientation.w = w
            poses.append(p)
    msg.poses = poses
    return msg


def pose_array_to_keypoints(msg: PoseArray) -> tuple[np.ndarray, np.ndarray]:
    """PoseArray of 42 poses -> ((2, 21, 3) float64 metres, (2,) bool present)."""
    if len(msg.poses) != NUM_KEYPOINTS:
        raise MotionFormatError(
            f"keypoint PoseArray has {len(msg.poses)} poses; expected {NUM_KEYPOINTS} "
            "(left 21 then right 21, HandX order)"
        )
    pts = np.array([(p.position.x, p.position.y, p.position.z) for p in msg.poses], dtype=np.float64)
    w = np.array([p.orientation.w for p in msg.poses]).reshape(2, 21)
    present = np.any(w != 0.0, axis=1)
    return pts.reshape(2, 21, 3), present


def keypoints_to_markers(
    joints: np.ndarray,
    present: Sequence[bool] = (True, True),
    frame_id: str = "world",
    stamp: Time | None = None,
    ns: str = "handx_human",
) -> MarkerArray:
    """(2, 21, 3) keypoints -> RViz markers: per hand a SPHERE_LIST (joints) and a LINE_LIST (bones).

    Absent hands get DELETE markers so stale skeletons disappear.
    """
    joints = np.asarray(joints, dtype=np.float64)
    header = Header(frame_id=frame_id, stamp=stamp or Time())
    markers = []
    for h, side in enumerate(("left", "right")):
        r, g, b = _HAND_COLORS[side]
        for mid, mtype in ((2 * h, Marker.SPHERE_LIST), (2 * h + 1, Marker.LINE_LIST)):
            m = Marker(header=header, ns=f"{ns}/{side}", id=mid, type=mtype)
            if not present[h]:
                m.action = Marker.DELETE
                markers.append(m)
                continue
            m.action = Marker.ADD
            m.pose.orientation.w = 1.0
            m.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
            if mtype == Marker.SPHERE_LIST:
                m.scale.x = m.scale.y = m.scale.z = 0.008
                idx = range(21)
            else:
                m.scale.x = 0.003
                idx = [i for bone in _BONES for i in bone]
            m.points = [Point(x=float(joints[h, i, 0]), y=float(joints[h, i, 1]), z=float(joints[h, i, 2])) for i in idx]
            markers.append(m)
    return MarkerArray(markers=markers)


def trajectory_point(positions: Sequence[float], duration_s: float, velocities: Sequence[float] | None = None):
    pt = JointTrajectoryPoint(positions=[float(v) for v in positions], time_from_start=duration_msg(duration_s))
    if velocities is not None:
        pt.velocities = [float(v) for v in velocities]
    return pt


def joint_trajectory(
    joint_names: Sequence[str],
    positions: Sequence[float],
    duration_s: float,
    velocities: Sequence[float] | None = None,
    stamp: Time | None = None,
    frame_id: str = "",
) -> JointTrajectory:
    """One-point JointTrajectory; ``stamp`` zero = start now (ros2_control semantics)."""
    return JointTrajectory(
        header=Header(frame_id=frame_id, stamp=stamp or Time()),
        joint_names=list(joint_names),
        points=[trajectory_point(positions, duration_s, velocities)],
    )


def empty_trajectory(joint_names: Sequence[str]) -> JointTrajectory:
    """An empty JointTrajectory: ros2_control's JointTrajectoryController stops and holds on it."""
    return JointTrajectory(joint_names=list(joint_names), points=[])


def joint_state(names: Sequence[str], positions: Sequence[float], velocities=None, stamp: Time | None = None) -> JointState:
    msg = JointState(header=Header(stamp=stamp or Time()), name=list(names), position=[float(v) for v in positions])
    if velocities is not None:
        msg.velocity = [float(v) for v in velocities]
    return msg


def joint_state_to_dict(msg: JointState) -> dict[str, float]:
    return {n: float(p) for n, p in zip(msg.name, msg.position)}


def float64_array(values: Sequence[float], label: str = "") -> Float64MultiArray:
    """Float64MultiArray for forward_command_controller (values in the controller's joint order).

    The layout is left empty (what forward_command_controller expects) unless ``label`` is given.
    """
    msg = Float64MultiArray(data=array("d", np.asarray(values, dtype=np.float64).tobytes()))
    if label:
        msg.layout.dim = [MultiArrayDimension(label=label, size=len(msg.data), stride=len(msg.data))]
    return msg


def wrist_pose_stamped(pose_xyz_wxyz: Sequence[float], frame_id: str = "world", stamp: Time | None = None) -> PoseStamped:
    """[x, y, z, qw, qx, qy, qz] (metres, ``T_world_base``) -> PoseStamped."""
    v = [float(x) for x in pose_xyz_wxyz]
    if len(v) != 7:
        raise MotionFormatError(f"wrist pose must be [x, y, z, qw, qx, qy, qz], got {len(v)} values")
    msg = PoseStamped(header=Header(frame_id=frame_id, stamp=stamp or Time()))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = v[:3]
    msg.pose.orientation.w, msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z = v[3:]
    return msg
