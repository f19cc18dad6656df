"""One frame's state in the bimanual solve, what it leaves the next frame, and the fade of a correction
(:mod:`.refine` uses them): :class:`FrameState`, :class:`Carry`, :func:`fade`, and the two comparisons the
non-penetration guarantee rests on (:func:`min_distance`, :func:`deepens`). Units: metres, radians.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .world import Contacts

__all__ = ["FADE", "FADE_END", "FrameState", "Carry", "fade", "min_distance", "deepens"]

#: while nothing is near, a correction left by solved frames shrinks by this factor per frame, so it fades
#: out and the per-hand solution takes over again (held as it was, it would keep every later frame off the
#: per-hand result). A faster fade (by a fixed step per frame as well) lost dex-urdf Shadow claps: the next
#: clap then starts without the previous one's wrist correction, and its iterations do not reach the contact
FADE = 0.95
#: a correction part below this is zero: (metres of wrist translation, radians of wrist rotation, radians
#: or metres of a joint). A correction all of whose parts are is dropped: from the wrist budget (4 cm) a
#: fade ends within 104 frames
FADE_END = (2e-4, 2e-3, 2e-3)


@dataclasses.dataclass
class FrameState:
    """One frame of both hands: ``T[side]`` (4, 4) T_world_base, ``q[side]`` (D,) the tree's dofs."""

    T: dict
    q: dict

    def copy(self) -> FrameState:
        return FrameState({s: v.copy() for s, v in self.T.items()}, {s: v.copy() for s, v in self.q.items()})


@dataclasses.dataclass
class Carry:
    """What one frame leaves the next: the correction of its result from the per-hand solution (``{side:
    (dp (3,), drot (3,), dq (n,))}``, None when the gate kept the per-hand solution), the result and its
    smallest geom distance (metres; inf when nothing is within the margin)."""

    correction: dict | None
    result: FrameState
    min_distance: float


def min_distance(c: Contacts) -> float:
    """The smallest geom distance of contacts ``c`` (metres), inf when nothing is within the margin."""
    return float(c.dist.min()) if len(c.dist) else np.inf


def deepens(dmin: float, other_dmin: float, clearance: float) -> bool:
    """A state's smallest geom distance ``dmin`` is below another state's and below the tolerance (minus
    half the clearance): it penetrates deeper than that state."""
    return dmin < min(other_dmin, -0.5 * clearance)


def fade(corr: dict) -> dict | None:
    """One frame's fade of a correction ``{side: (dp (3,), drot (3,), dq (n,))}``: ``FADE`` times it, or
    None (no correction) when every part is below :data:`FADE_END`."""
    if all(np.abs(v).max(initial=0.0) < end for parts in corr.values() for v, end in zip(parts, FADE_END, strict=True)):
        return None
    return {s: tuple(FADE * v for v in parts) for s, parts in corr.items()}
