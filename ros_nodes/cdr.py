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

__all__ = ["CDR_LE", "TrajectoryFastPath", "serialized_string_sequence"]

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
