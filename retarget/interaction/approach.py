"""Offline, a contact seen coming (:class:`Approach`, a part of :class:`.refine.BimanualRefiner`): the gaps that pull a
pair of parts closer over the ``approach_s`` before its human contact begins (the approach term of the solve,
:mod:`.refine`). Units: metres.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["Approach", "NEAR_FACTOR", "HELD_FACTOR"]

#: offline, a pair whose contact is ahead is approached where the per-hand solution leaves it farther than
#: ``NEAR_FACTOR * apart_m`` at the contact's first frame (:meth:`.refine.BimanualRefiner.refine_sequence`)
NEAR_FACTOR = 2.0
#: offline, a pair without an approach gets one later in its window where the previous result holds it at least
#: ``NEAR_FACTOR * apart_m`` apart, ``HELD_FACTOR * apart_m`` farther than the per-hand solution, while other parts of the
#: hands are within ``apart_m`` of each other (:meth:`Approach._approach_gaps`)
HELD_FACTOR = 1.0


class Approach:
    """The approach gaps of :class:`.refine.BimanualRefiner` (its ``world``, ``options``, ``pairs`` and
    ``_far_pair``)."""

    def _approach_gaps(self, t: int, ahead: np.ndarray, window: int, start: np.ndarray, T_out: dict, q_out: dict,
                       T_free: Mapping, q_free: Mapping, closest: float) -> np.ndarray:
        """(P,) frame ``t``'s approach gaps (:attr:`approach`; ``ahead``: :func:`.pairs.frames_to_onset`'s). ``start``
        (P, 2), updated in place: per pair the gap its approach ramps from and the frames to its contact there (NaN:
        no approach). Where a pair's window begins, its gap at the previous result, or NaN where the per-hand solution
        (``T_out``, ``q_out`` beyond ``t``; ``T_free``, ``q_free`` everywhere) leaves it near at the contact's first
        frame (a clap's hands close in by themselves: no approach). Later in the window, a pair without an approach
        gets one from the previous result where the solve holds it back there: other parts of the two hands are
        within ``apart_m`` of each other (``closest``: the previous result's smallest distance across the hands), and
        the pair is farther than ``NEAR_FACTOR * apart_m``, ``HELD_FACTOR * apart_m`` farther than in the per-hand
        solution (the dex-urdf Shadow's palms pressed together: other parts in the way stop them while the per-hand
        palms close in, and without it the contact's first frame swings a forearm within one frame;
        ``benchmarks/bimanual_interaction.py --per-motion``'s base speed, ``benchmarks/RESULTS.md``). The gap ramps
        from there down to ``apart_m`` (a smoothstep) by the contact's first frame."""
        w, near = self.world, NEAR_FACTOR * self.options.apart_m

        def gap(Ts, qs, k, i):
            w.set_state({s: Ts[s][k] for s in w.sides}, {s: qs[s][k] for s in w.sides})
            return self._far_pair(i)[0]

        gaps = np.full(len(self.pairs), np.nan)
        for i in np.flatnonzero(ahead[t]) if t else ():
            if not ahead[t - 1, i]:  # the window begins
                start[i] = np.nan, window
                if gap(T_out, q_out, t + ahead[t, i], i) >= near:
                    start[i, 0] = gap(T_out, q_out, t - 1, i)
            elif np.isnan(start[i, 0]) and closest < self.options.apart_m:  # is the solve holding the pair back?
                held = gap(T_out, q_out, t - 1, i)
                if near <= held < np.inf and held - gap(T_free, q_free, t - 1, i) >= HELD_FACTOR * self.options.apart_m:
                    start[i] = held, ahead[t, i]
            d0, n0 = start[i]
            if near <= d0 < np.inf:  # NaN: no approach
                x = ahead[t, i] / (n0 + 1.0)
                gaps[i] = self.options.apart_m + (d0 - self.options.apart_m) * x * x * (3.0 - 2.0 * x)
        return gaps
