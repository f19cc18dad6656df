"""Fast read of the one thing the safety streamer needs from a serialized JointTrajectory.

rclpy turns every received JointTrajectory into Python objects (a header, one string per joint
name, a point with four arrays, ...): 13-14 us per 24-joint command in a hot loop against 3-4 us for
the fast path below (``benchmarks/streamer_path_speed.py``), more in the running streamer, whose
caches are cold every 2 ms. The streamer therefore takes its
input serialized, as DDS carries it (plain little-endian CDR), and :class:`TrajectoryFastPath`
reads only what the filter needs:

* it checks that the ``joint_names`` section is, byte for byte (padding aside), the controller's
  joint names in the controller's order: the count, every length and every character, so the names
  are exactly those and nothing is parsed from them;
* it walks the points and returns the last point's ``positions`` (float64, a copy) and
  ``time_from_start`` in seconds.

Anything else returns ``None``: other names or another order, no points, another encoding
(big-endian, XCDR2), a message it cannot walk to its end. The caller then deserializes the
message with rclpy and takes the normal path. The fast path never decides what is safe; the
:class:`handx_robot.safety.SafetyFilter` sees the same names, positions (NaN included) and duration
either way (``tests/test_ros_cdr.py`` compares both on many messages).

Layout (OMG CDR, XCDR1; offsets relative to the byte after the 4-byte encapsulation header;
``uint32`` sequence lengths aligned to 4, doubles aligned to 8 when the sequence is not empty)::

    header      int32 sec, uint32 nanosec, string frame_id (uint32 length incl. NUL, bytes)
    joint_names uint32 count, count x string
    points      uint32 count, count x (positions, velocities, accelerations, effort:
                uint32 n + n x float64; time_from_start: int32 sec, uint32 nanosec)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

__all__ = ["CDR_LE", "TrajectoryFastPath", "SerializedCommand", "serialized_string_sequence"]

#: encapsulation identifier of plain little-endian CDR (what rmw_fastrtps writes on x86 and ARM)
CDR_LE = b"\x00\x01"
_U32 = struct.Struct("<I")
_DURATION = struct.Struct("<iI")
_SEQUENCES_PER_POINT = 4  # positions, velocities, accelerations, effort


def serialized_string_sequence(strings: Sequence[str]) -> tuple[bytes, bytes]:
    """CDR of ``sequence<string>`` as written at a 4-aligned offset, and its mask: (bytes with zero
    padding, mask with 0xFF on every meaningful byte and 0 on padding). Serializers leave padding
    bytes uninitialized (Fast CDR does), so only the masked bytes can be compared."""
    out, mask = bytearray(_U32.pack(len(strings))), bytearray(b"\xff" * 4)
    for s in strings:
        pad = (-len(out)) % 4
        out += b"\0" * pad
        mask += b"\0" * pad
        raw = s.encode("utf-8") + b"\0"
        out += _U32.pack(len(raw)) + raw
        mask += b"\xff" * (4 + len(raw))
    return bytes(out), bytes(mask)


class TrajectoryFastPath:
    """Reads the last point of a serialized JointTrajectory naming exactly ``joint_names`` in order.

    joint_names: the controller's joints, in its order (``names`` keeps them as a list, for the
    filter's in-order fast path).
    """

    def __init__(self, joint_names: Sequence[str]) -> None:
        self.names = list(joint_names)
        names_cdr, mask = serialized_string_sequence(self.names)
        self._names_cdr = names_cdr
        self._names_mask = np.frombuffer(mask, dtype=np.uint8)

    def last_point(self, data: bytes) -> tuple[np.ndarray, float] | None:
        """(positions (m,) float64, time_from_start s) of the last point, or None (take the slow path).

        ``m`` is whatever the message carries (the filter rejects a count that does not match).
        """
        if len(data) < 16 or data[:2] != CDR_LE:
            return None
        buf = memoryview(data)[4:]
        size = len(buf)
        try:
            off = 8  # header.stamp
            (n,) = _U32.unpack_from(buf, off)
            off += 4 + n  # header.frame_id
            off += (-off) % 4
            names = self._names_cdr
            end = off + len(names)
            if end > size:
                return None
            section = np.frombuffer(buf, dtype=np.uint8, count=end - off, offset=off) & self._names_mask
            if section.tobytes() != names:
                return None
            off = end + (-end) % 4
            (points,) = _U32.unpack_from(buf, off)
            off += 4
            if points == 0:
                return None
            pos_off = pos_n = 0
            sec = nanosec = 0
            for _ in range(points):
                for k in range(_SEQUENCES_PER_POINT):
                    off += (-off) % 4
                    (n,) = _U32.unpack_from(buf, off)
                    off += 4
                    if n:
                        off += (-off) % 8
                    if k == 0:
                        pos_off, pos_n = off, n
                    off += 8 * n
                    if off > size:
                        return None
                off += (-off) % 4
                sec, nanosec = _DURATION.unpack_from(buf, off)
                off += 8
        except struct.error:  # ran off the end: not a message this path can read
            return None
        if off > size:
            return None
        positions = np.frombuffer(buf, dtype="<f8", count=pos_n, offset=pos_off).astype(np.float64)
        return positions, sec + nanosec * 1e-9


class SerializedCommand:
    """The streamer's forwarded command as rclpy serializes it, with only the numbers rewritten.

    Building a message object and having rclpy convert it costs a publish more than the DDS write
    (``benchmarks/streamer_path_speed.py``, line [3]). The commands the streamer forwards differ only
    in their numbers, so this class serializes one command with rclpy (:func:`handx_robot.ros.convert.joint_trajectory`
    or :func:`~handx_robot.ros.convert.float64_array`, the same as the message path), finds where the
    positions (and the trajectory's ``time_from_start``) sit in those bytes by writing distinct
    sentinel values, and from then on writes the new numbers there and hands the bytes to
    ``Publisher.publish``. Every other byte is rclpy's own.

    The constructor checks itself: commands with random positions and durations written this way
    must deserialize (rclpy) to exactly the message the message path builds; otherwise it raises
    ``ValueError`` and the caller keeps the message path.

    interface: ``joint_trajectory`` (one point, positions only, ``time_from_start``) or
    ``forward_command`` (Float64MultiArray, empty layout). joint_names: (n,) the controller's joints.
    One buffer is rewritten per call: one caller at a time (the streamer encodes under its lock).
    """

    def __init__(self, interface: str, joint_names: Sequence[str]) -> None:
        from handx_robot.ros.convert import float64_array, joint_trajectory
        from rclpy.serialization import serialize_message

        self.interface = interface
        self.n = n = len(joint_names)
        if n == 0:
            raise ValueError("no joints")
        sentinel = 1234.5 + 1.0625 * np.arange(n)  # exact in binary, no value repeats
        sec, nanosec = 0x0A1B2C, 0x1F2E3D4C  # a duration no command has (exact through float s)
        if interface == "joint_trajectory":
            self._build = lambda q, d: joint_trajectory(joint_names, q, d)
            self.msg_type = type(self._build([0.0] * n, 0.0))
            data = serialize_message(self._build(sentinel, sec + nanosec * 1e-9))
            self._duration_off = _find_once(data, _DURATION.pack(sec, nanosec), "time_from_start")
        elif interface == "forward_command":
            self._build = lambda q, d: float64_array(q)
            self.msg_type = type(self._build([0.0] * n, 0.0))
            data = serialize_message(self._build(sentinel, 0.0))
            self._duration_off = None
        else:
            raise ValueError(f"unknown interface {interface!r}")
        if data[:2] != CDR_LE:
            raise ValueError(f"rclpy serialized with encapsulation {data[:2]!r}, not little-endian CDR")
        self._buf = bytearray(data)
        pos_off = _find_once(data, sentinel.astype("<f8").tobytes(), "positions")
        self._positions = np.frombuffer(self._buf, dtype="<f8", count=n, offset=pos_off)
        self._self_check()

    def encode(self, positions: np.ndarray, duration_s: float = 0.0) -> bytes:
        """Serialized command: ``positions`` (n,) float64 (hardware units, controller order);
        ``duration_s`` is the trajectory's ``time_from_start`` (ignored for forward_command)."""
        self._positions[:] = positions  # a shape other than (n,) raises: the caller checks n
        if self._duration_off is not None:
            ns = int(round(max(0.0, float(duration_s)) * 1e9))  # as handx_robot.ros.convert.duration_msg
            _DURATION.pack_into(self._buf, self._duration_off, ns // 1_000_000_000, ns % 1_000_000_000)
        return bytes(self._buf)

    def _self_check(self) -> None:
        from rclpy.serialization import deserialize_message

        rng = np.random.default_rng(0)
        for i in range(8):
            q = rng.uniform(-4.0, 4.0, self.n)
            d = [0.0, 0.002, 0.0333, 1.5, 2.999999999, 7.25][i % 6] + (rng.uniform(0, 1e-3) if i > 5 else 0.0)
            try:
                got = deserialize_message(self.encode(q, d), self.msg_type)
            except Exception as exc:  # rclpy raises RMWError on bytes it cannot read
                raise ValueError(f"{self.interface}: patched bytes do not deserialize ({exc})") from exc
            if got != self._build(q, d):
                raise ValueError(f"{self.interface}: patched bytes do not deserialize to the command")
        self._positions[:] = 0.0


def _find_once(data: bytes, needle: bytes, what: str) -> int:
    at = data.find(needle)
    if at < 0 or data.find(needle, at + 1) >= 0:
        raise ValueError(f"cannot locate the {what} in rclpy's serialization")
    return at
