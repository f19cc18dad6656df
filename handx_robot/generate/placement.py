"""Where the composer puts a hand: the rest pose, named base orientations and contact placement.

Frame: a hand's *side frame* (see :mod:`handx_robot.generate.composer`): ``+x`` lateral (away from the
body midline), ``+y`` up, ``-z`` forward; metres. Orientations are ``R_side_hand`` (3, 3) whose columns
are the hand axes (radial, distal, palmar) of :mod:`handx_robot.generate.handmodel`.
"""

from __future__ import annotations

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.generate.geometry import hand_clearance
from handx_robot.generate.handmodel import HandShape, forward_kinematics
from handx_robot.generate.keyframes import mirror_x
from handx_robot.rotations import rot_y, rot_z

__all__ = [
    "CONTACT_SQUEEZE_M",
    "ORIENT",
    "REST_WRIST_POS",
    "orientation",
    "place_lateral",
    "pose_points",
]

#: Right wrist at rest, side frame = world (the left wrist mirrors it), metres.
REST_WRIST_POS = np.array([0.13, -0.08, -0.30])
#: Squeeze of a planned contact: hand volumes overlap this much (well under the 5 mm limit), metres.
CONTACT_SQUEEZE_M = 0.001
#: Lateral wrist positions searched by :func:`place_lateral` (side frame x, metres), and its samples.
_LATERAL_RANGE_M = (-0.10, 0.40)
_LATERAL_SAMPLES = 101
#: Bisection steps of :func:`place_lateral` (0.5 m / 100 / 2**16: well under 0.1 mm).
_LATERAL_BISECTIONS = 16


def orientation(distal, palmar) -> np.ndarray:
    """``R_side_hand`` (3, 3) whose hand axes are (radial, distal, palmar), from distal and palmar directions."""
    d = np.asarray(distal, dtype=np.float64)
    d = d / np.linalg.norm(d)
    p = np.asarray(palmar, dtype=np.float64)
    p = p - (p @ d) * d
    p = p / np.linalg.norm(p)
    return np.stack([np.cross(d, p), d, p], axis=-1)


#: Named base orientations in the side frame (x lateral, y up, -z forward).
ORIENT: dict[str, np.ndarray] = {
    "neutral": orientation((-0.30, 0.20, -1.0), (-0.60, -0.80, 0.0)),
    "palm_down": orientation((-0.15, 0.05, -1.0), (0.0, -1.0, 0.0)),
    "palm_medial": orientation((0.0, 0.35, -1.0), (-1.0, 0.0, 0.0)),
    "steeple": orientation((-0.20, 0.60, -1.0), (-1.0, 0.0, 0.0)),
    "pray": orientation((0.0, 1.0, -0.35), (-1.0, 0.0, 0.0)),
    "show": orientation((-0.10, 1.0, 0.10), (0.0, 0.0, -1.0)),
    "thumb_up": orientation((-0.05, 0.70, -0.70), (-1.0, 0.0, 0.0)),  # fist forward-up: thumb vertical
    "point": orientation((-0.20, 0.15, -1.0), (-0.30, -1.0, 0.0)),
    "grasp_side": orientation((-0.15, 0.05, -1.0), (-1.0, -0.25, 0.0)),
    "rub": orientation((-0.3, 0.3, -1), (-0.8, 0.3, 0)),  # thumb pad up against the fingertips
}


def pose_points(shape: HandShape, angles, pos, R, roll=0.0, dev=0.0) -> np.ndarray:
    """(21, 3) keypoints, side frame, metres, of a hand with wrist at ``pos`` and base orientation ``R``
    turned by forearm ``roll`` and wrist deviation ``dev`` (radians)."""
    Rf = R @ rot_y(roll) @ rot_z(dev)
    return pos + forward_kinematics(angles, shape) @ Rf.T


def place_lateral(shape: HandShape, angles, R, pos, roll=0.0, dev=0.0, target=-CONTACT_SQUEEZE_M,
                  offset_right=None) -> float:  # fmt: skip
    """Lateral wrist coordinate x (side frame, same for both hands) at which the mirrored hands touch.

    Both hands take the same pose with the wrist at ``(x, pos[1], pos[2])`` (+ ``offset_right`` for the
    right hand and minus it for the left, in the world); returns the smallest x whose clearance is
    ``target`` metres (negative = overlap), so palms / fingertips meet without passing through each other.
    Raises :class:`ConfigError` when no x in the searched range brings the hands into contact.
    """
    local = pose_points(shape, angles, np.zeros(3), R, roll, dev)
    xs = np.linspace(*_LATERAL_RANGE_M, _LATERAL_SAMPLES)
    off = np.zeros(3) if offset_right is None else np.asarray(offset_right, dtype=np.float64)
    right = local[None] + np.stack([xs, np.full_like(xs, pos[1]), np.full_like(xs, pos[2])], -1)[:, None, :]
    right = right + off
    left = mirror_x(right - 2 * off)  # the left hand mirrors the right, offset the other way
    clear = hand_clearance(left, right)
    ok = clear >= target
    if ok.all() or not ok[-1]:
        raise ConfigError("bimanual placement failed: the hands cannot be brought into contact in this pose")
    i = int(np.nonzero(~ok)[0][-1])  # last overlapping sample; the next one is clear
    x0, x1 = xs[i], xs[i + 1]
    for _ in range(_LATERAL_BISECTIONS):
        xm = 0.5 * (x0 + x1)
        rm = local + np.array([xm, pos[1], pos[2]]) + off
        cm = float(hand_clearance(mirror_x(rm - 2 * off), rm))
        if cm >= target:
            x1 = xm
        else:
            x0 = xm
    return float(x1)
