"""Offline, a change of basin spread over the frames before it (:class:`PullBack`, a part of
:class:`.refine.BimanualRefiner`): where a frame's result came from the second start (another basin of the solve than
the warm start's), the few frames before are solved again from it. Units: metres, radians.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .state import FrameState, deepens, min_distance

__all__ = ["PullBack", "PULL_BACK_FRAMES"]

#: offline, where a frame's result comes from the second start, at most this many frames before it are solved again
#: from it (:meth:`PullBack._pull_back`)
PULL_BACK_FRAMES = 5


class PullBack:
    """The pull-back of :class:`.refine.BimanualRefiner` (its ``options``, ``world``, ``pairs``, ``approach``,
    ``intra_margin_m``, ``_pair_rows``, ``_missed``, ``_apply``, ``correction``, ``_shape_terms``, ``solve_frame`` and
    ``record``)."""

    def _joint_step(self, a: Mapping, b: Mapping) -> float:
        """The largest change of a solved joint between dofs ``a`` and ``b`` (``{side: (D,)}``)."""
        w = self.world
        return max(float(np.abs(a[s][w.dofs[s]] - b[s][w.dofs[s]]).max(initial=0.0)) for s in w.sides)

    def _pull_back(self, t: int, T0: Mapping, q0: Mapping, ref: Mapping, touching: np.ndarray, out_T: dict, out_q: dict,
                   measured: dict) -> list[int]:
        """Frame ``t``'s result came from the second start: another basin of the solve than the warm start's, so the
        joints change basin between frames ``t - 1`` and ``t``, within one frame (the dex-urdf Shadow's claps:
        ``benchmarks/bimanual_interaction.py --per-motion``, ``benchmarks/RESULTS.md``). Frames ``t - 1``, ``t - 2``,
        ... (at most :data:`PULL_BACK_FRAMES`) are solved again, each warm-started from the next frame's correction and
        smoothed toward it. A frame takes the new result where it is no deeper in penetration than its old one (the
        guarantee's comparison), leaves no more of the human's touches across the hands apart, and its joints are
        nearer the next frame's; the first frame that is not, or that the new result moves by under 0.01 rad (the
        basins agree there), ends the pull. ``T0``, ``q0``: the per-hand solution; ``out_T``, ``out_q`` and
        ``measured`` (:meth:`refine_sequence`'s) are updated in place. Returns the frames changed."""
        w, o = self.world, self.options
        saved, self.approach = self.approach, np.full(len(self.pairs), np.nan)
        changed = []

        def state(Ts, qs, k):
            return FrameState({s: np.array(Ts[s][k], dtype=np.float64) for s in w.sides},
                              {s: np.array(qs[s][k], dtype=np.float64) for s in w.sides})  # fmt: skip

        try:
            for f in range(t - 1, max(-1, t - 1 - PULL_BACK_FRAMES), -1):
                anchor, old, nxt = state(T0, q0, f), state(out_T, out_q, f), state(out_T, out_q, f + 1)
                corr = self.correction(nxt, state(T0, q0, f + 1), w.dofs)
                start = anchor.copy()
                self._apply(start, np.concatenate([np.concatenate(corr[s]) for s in w.sides]))
                # the old result's measurements (:meth:`record`'s): its deepest penetration is all :func:`deepens` needs
                # of its smallest distance (one at or above 0 compares as 0), its pairs' distances its missed touches
                old_min = -max(measured["hand_hand"][f], measured["self"][f])
                old_missed = self._missed(measured["pair_distance"][f], touching[f])

                def shape_terms(s, qs, f=f, anchor=anchor):
                    return self._shape_terms(s, qs, ref[s][0][f : f + 1],
                                             None if ref[s][1] is None else ref[s][1][f : f + 1], anchor.q[s])  # fmt: skip

                st, stats = self.solve_frame(start, anchor, shape_terms, corr, touching[f], o.max_iterations)
                c = stats.get("contacts")
                if c is None:
                    w.set_state(st.T, st.q)
                    c = w.contacts(intra_margin=self.intra_margin_m)
                if (deepens(min_distance(c), old_min, o.clearance_m) or self._missed(self._pair_rows(c)[1], touching[f]) > old_missed
                        or self._joint_step(st.q, nxt.q) >= self._joint_step(old.q, nxt.q)):
                    break
                for s in w.sides:
                    out_T[s][f], out_q[s][f] = st.T[s], st.q[s]
                measured["pair_distance"][f], measured["hand_hand"][f], measured["self"][f] = np.inf, 0.0, 0.0
                self.record(c, f, measured)
                changed.append(f)
                if self._joint_step(st.q, old.q) < 0.01:
                    break
        finally:
            self.approach = saved
        return changed
