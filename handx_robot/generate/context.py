"""Per-generation state of the composer and the moves every primitive is built from.

Units: seconds, metres, radians; positions in a hand's side frame (see
:mod:`handx_robot.generate.composer`). Every random draw of a generation goes through one seeded
:class:`ComposeContext`, in a fixed order, so a seed always gives the same motion.
"""

from __future__ import annotations

import re

import numpy as np

from handx_robot.generate.handmodel import HandShape, clip_angles, forward_kinematics
from handx_robot.generate.keyframes import Track
from handx_robot.generate.parser import Action
from handx_robot.generate.placement import REST_WRIST_POS
from handx_robot.generate.shapes import hand_shape
from handx_robot.rotations import matrix_angle

__all__ = [
    "ComposeContext",
    "TIMING_JITTER",
    "go",
    "hold_seconds",
    "rest_pos",
    "transition_seconds",
]

#: Relative timing jitter of every duration, at variation 1 (uniform ±).
TIMING_JITTER = 0.08
#: Joint-angle jitter of a named shape at variation 1, degrees (standard deviation).
SHAPE_JITTER_DEG = 2.0
#: Wrist position jitter at variation 1, metres (uniform ± per axis).
POSITION_JITTER_M = 0.008

#: Transition duration (before speed and jitter): ``base + per_m * distance + per_rad * largest joint
#: change + per_rad_R * base-orientation change``, clipped to [min, max] seconds.
TRANSITION_BASE_S = 0.35
TRANSITION_S_PER_M = 1.8
TRANSITION_S_PER_JOINT_RAD = 0.18
TRANSITION_S_PER_ORIENT_RAD = 0.15
TRANSITION_MIN_S = 0.35
TRANSITION_MAX_S = 1.1

_HOLD_WORDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s|sec|secs|second|seconds)\b")


class ComposeContext:
    """Per-generation state: the seeded random generator, the hand size and the planned contact times.

    variation: size of the seeded variation (0 = none, 1 = natural).
    hand_scale: bone length multiplier (:class:`~handx_robot.generate.handmodel.HandShape`).
    contact_times: when each planned contact closes, seconds (appended by the primitives).
    """

    def __init__(self, variation: float, hand_scale: float, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.var = float(variation)
        self.shape = HandShape(hand_scale)
        self.contact_times: list[float] = []

    def jit(self, scale: float) -> float:
        """A multiplicative jitter ``1 ± scale`` (uniform), scaled by the variation setting."""
        return float(1.0 + self.var * scale * self.rng.uniform(-1.0, 1.0))

    def dur(self, seconds: float, action: Action) -> float:
        """A duration of ``seconds`` at the action's speed, jittered."""
        return seconds / action.speed * self.jit(TIMING_JITTER)

    def shape_angles(self, name: str, jitter_deg: float = SHAPE_JITTER_DEG) -> np.ndarray:
        """(20,) angles, radians, of the named shape with a seeded jitter of ``jitter_deg``, clipped."""
        q = hand_shape(name)
        if jitter_deg > 0 and self.var > 0:
            q = q + np.deg2rad(self.var * jitter_deg) * self.rng.standard_normal(q.shape)
        return clip_angles(q)

    def pos_jitter(self, scale: float = POSITION_JITTER_M) -> np.ndarray:
        """(3,) uniform position jitter, metres."""
        return self.var * scale * self.rng.uniform(-1.0, 1.0, 3)

    def fk(self, angles: np.ndarray) -> np.ndarray:
        """Hand-frame keypoints of ``angles`` for this hand size (see :func:`forward_kinematics`)."""
        return forward_kinematics(angles, self.shape)


def transition_seconds(ctx: ComposeContext, tr: Track, action: Action, angles=None, pos=None, R=None) -> float:
    """Duration of a move from the track's last pose to a new one (longer for bigger moves)."""
    k = tr.last
    dp = 0.0 if pos is None else float(np.linalg.norm(np.asarray(pos) - k.pos))
    da = 0.0 if angles is None else float(np.abs(np.asarray(angles) - k.angles).max())
    dr = 0.0 if R is None else float(matrix_angle(k.R, R))
    raw = (
        TRANSITION_BASE_S
        + TRANSITION_S_PER_M * dp
        + TRANSITION_S_PER_JOINT_RAD * da
        + TRANSITION_S_PER_ORIENT_RAD * dr
    )
    return ctx.dur(float(np.clip(raw, TRANSITION_MIN_S, TRANSITION_MAX_S)), action)


def go(ctx: ComposeContext, tr: Track, action: Action, angles=None, pos=None, R=None, roll=0.0, dev=0.0) -> None:
    """Move to a new pose (roll and deviation back to 0 unless given) in :func:`transition_seconds`."""
    tr.to(transition_seconds(ctx, tr, action, angles, pos, R), angles=angles, pos=pos, R=R, roll=roll, dev=dev)


def rest_pos(ctx: ComposeContext, offset_m=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(3,) wrist position, side frame, metres: the rest position + ``offset_m`` (dx, dy, dz) + jitter."""
    return REST_WRIST_POS + np.array(offset_m) + ctx.pos_jitter()


def hold_seconds(a: Action, default: float | None = None) -> float:
    """'for 3 seconds' in the clause, else ``default`` (else one second per repetition)."""
    m = _HOLD_WORDS.search(a.text)
    if m:
        return float(m.group(1))
    return 1.0 * a.reps if default is None else default
