"""Is a hand labelled left really a left hand? A mirror image of a hand is a hand of the other side
with its fingers curling toward the back of the palm; this tells them apart (HandX order, metres)."""

from __future__ import annotations

import logging

import numpy as np

from handx_robot.errors import MotionValueError
from handx_robot.handframe import palm_normal
from handx_robot.motion import BimanualMotion

__all__ = ["handedness_score", "check_handedness"]

log = logging.getLogger(__name__)

_CURL_POINTS = (2, 3, 17, 5, 6, 18, 8, 9, 20, 11, 12, 19, 14, 15, 16)  # PIP, DIP, tips, thumb MCP/IP/tip
_PALM_POINTS = (0, 1, 4, 10, 7)


def handedness_score(joints: np.ndarray, side: str, min_offset: float = 0.003) -> tuple[float, int]:
    """How well ``joints (T, 21, 3)`` (HandX order) fit a ``side`` hand: ``(score, informative_frames)``.

    Per frame, the mean signed offset of the finger joints (PIP, DIP, tips, thumb MCP/IP/tip) from
    the palm centre along the ``side`` palm normal. Fingers curl toward the palm, so on a correctly
    labelled hand the offset is positive; on a mirror image (a left hand labelled right) the palm
    normal flips and it is negative. Frames with ``|offset| < min_offset`` m (flat hand) are not
    informative. ``score`` in [-1, 1] = (positive - negative) / informative frames (0 if none).
    """
    J = np.asarray(joints, dtype=np.float64)
    step = max(1, J.shape[0] // 512)
    J = J[::step]
    try:
        n = palm_normal(J, side)
    except MotionValueError:
        return 0.0, 0
    centre = J[:, _PALM_POINTS].mean(axis=1)
    off = np.einsum("tkd,td->tk", J[:, _CURL_POINTS] - centre[:, None], n).mean(axis=1)
    informative = np.abs(off) >= min_offset
    k = int(informative.sum())
    if k == 0:
        return 0.0, 0
    return float(np.sign(off[informative]).sum() / k), k


def check_handedness(motion: BimanualMotion, threshold: float = -0.6, min_frames: int = 5) -> None:
    """Raise :class:`MotionValueError` when a present hand looks like the other side's mirror image."""
    bad = []
    for side in motion.present_sides:
        score, k = handedness_score(motion.hand(side), side)
        log.debug("%s: handedness score of the %s hand %.2f over %d frames", motion.source, side, score, k)
        if k >= min_frames and score <= threshold:
            bad.append((side, score))
    if not bad:
        return
    if len(bad) == 2:
        raise MotionValueError(
            f"{motion.source}: both hands look mirrored (left/right swapped? scores "
            f"{bad[0][1]:.2f}, {bad[1][1]:.2f}: the fingers curl toward the back of the palm as labelled); "
            "HandX files put the left hand at index 0. Pass --swap-hands, or --no-handedness-check if the data is "
            "unusual (hyperextended fingers)"
        )
    side, score = bad[0]
    other = "left" if side == "right" else "right"
    raise MotionValueError(
        f"{motion.source}: the hand labelled '{side}' looks like a {other} hand (handedness score {score:.2f}: its "
        f"fingers curl toward the back of a {side} palm). Pass --hand {other}"
        f"{' or --swap-hands' if len(motion.present_sides) == 2 else ''}, or check the frame/axis order "
        "(a reflected axis mirrors the hand); --no-handedness-check skips this test"
    )
