"""Keypoint orders (HandX 21, MediaPipe 21) and converters between them.

HandX order (the canonical order of this toolkit)::

    0 wrist
    1-3  index  MCP, PIP, DIP        4-6  middle MCP, PIP, DIP
    7-9  pinky  MCP, PIP, DIP        10-12 ring  MCP, PIP, DIP
    13-15 thumb CMC, MCP, IP
    16 thumb tip, 17 index tip, 18 middle tip, 19 ring tip, 20 pinky tip

MediaPipe order::

    0 wrist; 1-4 thumb CMC, MCP, IP, tip; 5-8 index MCP, PIP, DIP, tip;
    9-12 middle; 13-16 ring; 17-20 pinky

Mixing the two fails silently (HandX index 4 is the middle MCP, MediaPipe index 4 is the
thumb tip), so every array in this toolkit is in HandX order and converted at the border.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = [
    "KeypointOrder",
    "HANDX_21",
    "MEDIAPIPE_21",
    "HANDX_JOINT_NAMES",
    "MEDIAPIPE_JOINT_NAMES",
    "HANDX_TO_MEDIAPIPE",
    "MEDIAPIPE_TO_HANDX",
    "FINGERS",
    "FINGER_CHAINS",
    "FINGERTIPS",
    "WRIST",
    "convert_order",
    "handx_to_mediapipe",
    "mediapipe_to_handx",
]


class KeypointOrder(str, enum.Enum):
    """Named 21-keypoint orders."""

    HANDX_21 = "handx21"
    MEDIAPIPE_21 = "mediapipe21"


HANDX_21 = KeypointOrder.HANDX_21
MEDIAPIPE_21 = KeypointOrder.MEDIAPIPE_21

HANDX_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "thumb_cmc", "thumb_mcp", "thumb_ip",
    "thumb_tip", "index_tip", "middle_tip", "ring_tip", "pinky_tip",
)  # fmt: skip

MEDIAPIPE_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

#: ``mediapipe = handx[..., HANDX_TO_MEDIAPIPE, :]``: entry i is the HandX index of MediaPipe joint i.
HANDX_TO_MEDIAPIPE = np.array(
    [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20], dtype=np.int64
)
#: ``handx = mediapipe[..., MEDIAPIPE_TO_HANDX, :]``.
MEDIAPIPE_TO_HANDX = np.argsort(HANDX_TO_MEDIAPIPE)

WRIST = 0
FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
#: HandX indices from the wrist-side joint to the tip, per finger (wrist excluded).
FINGER_CHAINS: dict[str, tuple[int, ...]] = {
    "thumb": (13, 14, 15, 16),
    "index": (1, 2, 3, 17),
    "middle": (4, 5, 6, 18),
    "ring": (10, 11, 12, 19),
    "pinky": (7, 8, 9, 20),
}
#: HandX fingertip index per finger.
FINGERTIPS: dict[str, int] = {f: chain[-1] for f, chain in FINGER_CHAINS.items()}

_NAMES = {HANDX_21: HANDX_JOINT_NAMES, MEDIAPIPE_21: MEDIAPIPE_JOINT_NAMES}


def _index_map(src: KeypointOrder, dst: KeypointOrder) -> np.ndarray:
    src_names = _NAMES[KeypointOrder(src)]
    return np.array([src_names.index(n) for n in _NAMES[KeypointOrder(dst)]], dtype=np.int64)


def convert_order(points: np.ndarray, src: KeypointOrder | str, dst: KeypointOrder | str) -> np.ndarray:
    """Reorder keypoints ``(..., 21, D)`` from order ``src`` to order ``dst`` (by joint name)."""
    points = np.asarray(points)
    if points.ndim < 2 or points.shape[-2] != 21:
        raise ValueError(f"keypoints must have shape (..., 21, D), got {points.shape}")
    return points[..., _index_map(KeypointOrder(src), KeypointOrder(dst)), :]


def handx_to_mediapipe(points: np.ndarray) -> np.ndarray:
    """``(..., 21, D)`` HandX order → MediaPipe order."""
    return convert_order(points, HANDX_21, MEDIAPIPE_21)


def mediapipe_to_handx(points: np.ndarray) -> np.ndarray:
    """``(..., 21, D)`` MediaPipe order → HandX order."""
    return convert_order(points, MEDIAPIPE_21, HANDX_21)
