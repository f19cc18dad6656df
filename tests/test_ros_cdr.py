"""The safety streamer's CDR fast path reads what rclpy's deserializer reads, or declines."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Duration  # noqa: E402
from handx_robot.ros.cdr import TrajectoryFastPath  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

NAMES = [f"rh_{f}J{k}" for f in ("FF", "MF", "RF", "LF", "TH") for k in range(4, 0, -1)] + ["rh_WRJ1", "x"]


def _point(rng: random.Random, n: int) -> JointTrajectoryPoint:
    def seq(m):
        return [rng.uniform(-2, 2) for _ in range(m)]

    pt = JointTrajectoryPoint(positions=seq(n))
    for field in ("velocities", "accelerations", "effort"):
        if rng.random() < 0.4:
            setattr(pt, field, seq(rng.choice([1, 2, n])))
    pt.time_from_start = Duration(sec=rng.randint(0, 3), nanosec=rng.randint(0, 999_999_999))
    return pt


def _names_variant(rng: random.Random) -> list[str]:
    kind = rng.random()
    names = list(NAMES)
    if kind < 0.5:
        return names
    if kind < 0.6:
        rng.shuffle(names)
    elif kind < 0.7:
        names.pop(rng.randrange(len(names)))
    elif kind < 0.8:
        names.append("extra")
    elif kind < 0.9:  # one character changed (same length: only the bytes differ)
        i = rng.randrange(len(names))
        names[i] = names[i][:-1] + ("Z" if names[i][-1] != "Z" else "Y")
    else:  # one name longer (lengths differ)
        i = rng.randrange(len(names))
        names[i] = names[i] + "0"
    return names


def _expected(msg: JointTrajectory, names: list[str]):
    """What the streamer's normal path hands the filter, or None where the fast path must decline."""
    if list(msg.joint_names) != names or not msg.points:
        return None
    pt = msg.points[-1]
    return np.asarray(pt.positions, dtype=np.float64), pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9


def test_fast_path_matches_rclpy_deserialization_on_random_messages():
    rng = random.Random(7)
    fast = TrajectoryFastPath(NAMES)
    hits = declines = 0
    for _ in range(600):
        names = _names_variant(rng)
        n_points = rng.choice([0, 1, 1, 1, 2, 3])
        msg = JointTrajectory(
            header=Header(frame_id="w" * rng.randint(0, 9)),
            joint_names=names,
            points=[_point(rng, rng.choice([len(names), len(names), len(names) - 1])) for _ in range(n_points)],
        )
        msg.header.stamp.sec = rng.randint(0, 2**31 - 1)
        if msg.points and rng.random() < 0.2:
            msg.points[-1].positions[rng.randrange(len(msg.points[-1].positions))] = rng.choice([math.nan, math.inf])
        data = serialize_message(msg)
        back = deserialize_message(data, JointTrajectory)
        want = _expected(back, NAMES)
        got = fast.last_point(data)
        if want is None:
            assert got is None, (names, n_points)
            declines += 1
            continue
        assert got is not None
        np.testing.assert_array_equal(got[0], want[0])  # NaN / inf positions come through as they are
        assert got[1] == pytest.approx(want[1], abs=1e-12)
        hits += 1
    assert hits > 200 and declines > 100


def test_fast_path_declines_what_it_cannot_read():
    fast = TrajectoryFastPath(NAMES)
    msg = JointTrajectory(joint_names=NAMES, points=[JointTrajectoryPoint(positions=[0.1] * len(NAMES))])
    data = serialize_message(msg)
    positions, duration = fast.last_point(data)
    assert positions.shape == (len(NAMES),) and duration == 0.0
    positions[0] = 5.0  # a copy: writing it cannot touch the received buffer
    assert fast.last_point(data)[0][0] == pytest.approx(0.1)
    # serializers may hand over a buffer longer than the message (rclpy's has trailing bytes), so
    # only a cut inside the message can be noticed: in the header, the names, the last positions
    last_positions = data.rfind(np.full(len(NAMES), 0.1).tobytes())
    assert last_positions > 0
    for cut in (2, 10, len(data) // 3, last_positions + 12):
        assert fast.last_point(data[:cut]) is None, cut  # truncated
    assert fast.last_point(b"\x00\x00" + data[2:]) is None  # big-endian CDR: not this path
    assert fast.last_point(b"\x00\x07" + data[2:]) is None  # XCDR2
    assert fast.last_point(b"") is None
    assert TrajectoryFastPath(NAMES[:-1]).last_point(data) is None  # the controller has fewer joints


@pytest.mark.parametrize("interface", ["joint_trajectory", "forward_command"])
def test_serialized_command_deserializes_to_the_message_path_command(interface):
    from handx_robot.ros.cdr import SerializedCommand
    from handx_robot.ros.convert import float64_array, joint_trajectory

    out = SerializedCommand(interface, NAMES)
    rng = np.random.default_rng(3)
    for i in range(300):
        q = rng.uniform(-6.0, 6.0, len(NAMES)) * (10.0 ** rng.integers(-6, 3))
        d = float(rng.choice([0.0, 0.002, 1 / 30, 0.9999999996, 1.0, 61.25])) + (rng.uniform(0, 5) if i % 3 else 0.0)
        want = joint_trajectory(NAMES, q, d) if interface == "joint_trajectory" else float64_array(q)
        got = deserialize_message(out.encode(q, d), out.msg_type)
        assert got == want, i
        np.testing.assert_array_equal(np.asarray(got.points[-1].positions if interface == "joint_trajectory"
                                                 else got.data), q)
    with pytest.raises(ValueError):
        out.encode(np.zeros(len(NAMES) - 1))  # wrong length: never a silent partial command
    if interface == "joint_trajectory":  # what the streamer's own fast path reads back
        data = out.encode(np.full(len(NAMES), 0.25), 0.002)
        positions, duration = TrajectoryFastPath(NAMES).last_point(data)
        assert np.all(positions == 0.25) and duration == pytest.approx(0.002, abs=1e-12)


def test_serialized_command_refuses_what_it_cannot_patch():
    from handx_robot.ros.cdr import SerializedCommand

    with pytest.raises(ValueError, match="unknown interface"):
        SerializedCommand("effort", NAMES)
    with pytest.raises(ValueError, match="no joints"):
        SerializedCommand("forward_command", [])
    out = SerializedCommand("forward_command", NAMES)
    out._positions = np.frombuffer(out._buf, dtype="<f8", count=len(NAMES), offset=8)  # a wrong offset
    with pytest.raises(ValueError, match="do not deserialize"):
        out._self_check()
