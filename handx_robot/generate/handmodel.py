"""A parametric human hand in HandX's 21-keypoint layout, with forward kinematics.

Units: metres and radians. The model is built for a right hand; the left hand is its mirror image
(x -> -x in the hand frame and in the side frame, see :mod:`handx_robot.generate.composer`).

Hand frame ``h`` (right hand), origin at the wrist keypoint::

    x  radial   (toward the thumb)
    y  distal   (wrist -> middle MCP, toward the fingers)
    z  palmar   (out of the palm, the side that grasps)

This agrees with :func:`handx_robot.handframe.wrist_rotation`: its ``x`` (palm normal) is our ``z``,
its ``z`` (forward) is our ``y``.

Joint angles of one hand, ``angles: (..., 20) float``, radians, in :data:`ANGLE_NAMES` order:

* per long finger (index, middle, ring, pinky): ``abd`` (+ = toward the thumb side, in the palm plane),
  ``mcp``, ``pip``, ``dip`` flexion (+ = toward the palm);
* thumb: ``cmc_opp`` (swing across the palm toward the little finger, about the palm normal),
  ``cmc_abd`` (palmar abduction, out of the palm plane), ``mcp`` and ``ip`` flexion.

Bone lengths follow adult anthropometry (a 50th-percentile adult hand: wrist to middle fingertip
0.185 m, hand breadth at the knuckles 0.082 m); :class:`HandShape` scales them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.rotations import rot_x, rot_y, rot_z

__all__ = [
    "ANGLE_NAMES",
    "NUM_ANGLES",
    "LONG_FINGERS",
    "ANGLE_LIMITS",
    "HandShape",
    "angle_index",
    "clip_angles",
    "forward_kinematics",
    "rot_x",
    "rot_y",
    "rot_z",
]

LONG_FINGERS: tuple[str, ...] = ("index", "middle", "ring", "pinky")
_FINGER_DOFS = ("abd", "mcp", "pip", "dip")
_THUMB_DOFS = ("cmc_opp", "cmc_abd", "mcp", "ip")

ANGLE_NAMES: tuple[str, ...] = tuple(
    [f"{f}_{d}" for f in LONG_FINGERS for d in _FINGER_DOFS] + [f"thumb_{d}" for d in _THUMB_DOFS]
)
NUM_ANGLES = len(ANGLE_NAMES)

_D = np.deg2rad
#: Per-angle (low, high) limits, radians; anatomical ranges of motion of an adult hand.
ANGLE_LIMITS: dict[str, tuple[float, float]] = {
    **{f"{f}_abd": (_D(-20.0), _D(20.0)) for f in LONG_FINGERS},
    **{f"{f}_mcp": (_D(-20.0), _D(95.0)) for f in LONG_FINGERS},
    **{f"{f}_pip": (_D(0.0), _D(110.0)) for f in LONG_FINGERS},
    **{f"{f}_dip": (_D(0.0), _D(80.0)) for f in LONG_FINGERS},
    "thumb_cmc_opp": (_D(-15.0), _D(70.0)),
    "thumb_cmc_abd": (_D(-10.0), _D(70.0)),
    "thumb_mcp": (_D(-10.0), _D(70.0)),
    "thumb_ip": (_D(-15.0), _D(85.0)),
}
LIMITS_LOW = np.array([ANGLE_LIMITS[n][0] for n in ANGLE_NAMES])
LIMITS_HIGH = np.array([ANGLE_LIMITS[n][1] for n in ANGLE_NAMES])

# HandX keypoint indices of each chain (base joint .. tip).
_CHAIN_IDX = {
    "index": (1, 2, 3, 17),
    "middle": (4, 5, 6, 18),
    "ring": (10, 11, 12, 19),
    "pinky": (7, 8, 9, 20),
    "thumb": (13, 14, 15, 16),
}

# Right hand, hand frame, metres. MCP (knuckle) positions; fingers at rest continue the metacarpal
# line splayed by half its angle. Phalanx lengths (proximal, middle, distal incl. the pad).
_MCP_POS = {
    "index": (0.025, 0.082, 0.000),
    "middle": (0.004, 0.088, 0.000),
    "ring": (-0.015, 0.082, 0.001),
    "pinky": (-0.032, 0.072, 0.002),
}
_PHALANX = {
    "index": (0.040, 0.024, 0.022),
    "middle": (0.045, 0.028, 0.024),
    "ring": (0.042, 0.027, 0.023),
    "pinky": (0.033, 0.019, 0.020),
}
_THUMB_CMC = (0.022, 0.026, 0.0)
_THUMB_BONES = (0.045, 0.032, 0.028)  # CMC->MCP (metacarpal), MCP->IP, IP->tip


def angle_index(name: str) -> int:
    """Position of angle ``name`` in :data:`ANGLE_NAMES`."""
    try:
        return ANGLE_NAMES.index(name)
    except ValueError:
        raise ConfigError(f"unknown hand angle {name!r}; known angles: {', '.join(ANGLE_NAMES)}") from None


def clip_angles(angles: np.ndarray) -> np.ndarray:
    """Clip ``(..., 20)`` angles to :data:`ANGLE_LIMITS`."""
    return np.clip(angles, LIMITS_LOW, LIMITS_HIGH)


@dataclasses.dataclass(frozen=True)
class HandShape:
    """Size of the hand: ``scale`` multiplies every bone length (1.0 = 50th-percentile adult)."""

    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (0.7 <= float(self.scale) <= 1.3):
            raise ConfigError(
                f"HandShape.scale is {self.scale}; allowed 0.7..1.3 (children to large adults); "
                "pass a value in that range"
            )

    @property
    def hand_length(self) -> float:
        """Wrist to middle fingertip with the hand flat, metres (along the finger; the splay makes the
        straight-line distance 0.01 mm shorter)."""
        mcp = np.linalg.norm(_MCP_POS["middle"])
        return float(self.scale * (mcp + sum(_PHALANX["middle"])))


def _thumb_rest_rotation() -> np.ndarray:
    """``R_h_thumb`` at zero angles: thumb frame y along the thumb, z its flexion direction."""
    y = np.array([0.70, 0.68, 0.10])
    y /= np.linalg.norm(y)
    # Flexion moves the thumb across the palm (ulnar) and toward the palm (palmar).
    z0 = np.array([-0.80, 0.20, 0.55])
    z = z0 - (z0 @ y) * y
    z /= np.linalg.norm(z)
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=-1)


_R_THUMB0 = _thumb_rest_rotation()


def forward_kinematics(angles: np.ndarray, shape: HandShape | None = None) -> np.ndarray:
    """Keypoints of a right hand in its hand frame.

    angles: (..., 20) radians, :data:`ANGLE_NAMES` order (not clipped here).
    Returns (..., 21, 3) float64 metres, hand frame ``h`` (x radial, y distal, z palmar), HandX order.
    """
    shape = shape or HandShape()
    s = float(shape.scale)
    angles = np.asarray(angles, dtype=np.float64)
    batch = angles.shape[:-1]
    out = np.zeros(batch + (21, 3))
    y_axis = np.array([0.0, 1.0, 0.0])
    for k, finger in enumerate(LONG_FINGERS):
        abd, mcp, pip, dip = (angles[..., 4 * k + j] for j in range(4))
        base = s * np.asarray(_MCP_POS[finger])
        splay = 0.5 * np.arctan2(-base[0], base[1])  # half the metacarpal angle, + = toward ulnar
        # rot_z(+a) turns +y toward -x (ulnar); abduction + is toward the thumb (radial).
        R = rot_z(np.full(batch, splay) - abd) @ rot_x(mcp)
        idx = _CHAIN_IDX[finger]
        out[..., idx[0], :] = base
        p = np.broadcast_to(base, batch + (3,))
        for j, (length, flex) in enumerate(zip(_PHALANX[finger], (None, pip, dip))):
            if flex is not None:
                R = R @ rot_x(flex)
            p = p + s * length * (R @ y_axis)
            out[..., idx[j + 1], :] = p
    opp, cabd, tmcp, tip = (angles[..., 16 + j] for j in range(4))
    # Opposition swings the thumb about the palm normal toward the ulnar side; palmar abduction lifts
    # it out of the palm plane (about the thumb frame's x axis).
    R = rot_z(opp) @ _R_THUMB0 @ rot_x(cabd)
    base = s * np.asarray(_THUMB_CMC)
    idx = _CHAIN_IDX["thumb"]
    out[..., idx[0], :] = base
    p = np.broadcast_to(base, batch + (3,))
    for j, (length, flex) in enumerate(zip(_THUMB_BONES, (None, tmcp, tip))):
        if flex is not None:
            R = R @ rot_x(flex)
        p = p + s * length * (R @ y_axis)
        out[..., idx[j + 1], :] = p
    return out
