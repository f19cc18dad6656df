"""Offline, a step of the joints within one frame spread over the frames before it (:class:`PullBack`, a part of
:class:`.refine.BimanualRefiner`): where a frame's result came from the second start (another basin of the solve),
or where the human's hands touch and the joints step far (a clap's first contact frames, which the solve reaches
within one frame), the few frames before are solved again from it. Units: metres, radians.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .state import FrameState, deepens, min_distance

__all__ = ["PullBack", "PULL_STEP", "PULL_BACK_FRAMES"]

#: offline, where the joints of a frame solved for the human's touch across the hands step from the previous frame's by
#: more than this (radians; or metres of a prismatic joint), or a frame's result comes from the second start (another
#: basin of the solve), at most :data:`PULL_BACK_FRAMES` frames before it are solved again from it
#: (:meth:`PullBack._pull_back`)
PULL_STEP = 0.25
PULL_BACK_FRAMES = 5


class PullBack:
    """The pull-back of :class:`.refine.BimanualRefiner` (its ``options``, ``world``, ``pairs``, ``approach``,
    ``_inter``, ``intra_margin_m``, ``_pair_rows``, ``_apply``, ``correction``, ``_shape_terms``, ``solve_frame`` and
    ``record``)."""

    def _missed(self, c, touching: np.ndarray) -> int:
        """How many pairs across the hands the human touches (``touching`` (P,)) contacts ``c`` leave apart."""
        pd = self._pair_rows(c)[1]
        return int((touching & self._inter & (pd >= self.options.robot_contact_m)).sum())

    def _joint_step(self, a: Mapping, b: Mapping) -> float:
        """The largest change of a solved joint between dofs ``a`` and ``b`` (``{side: (D,)}``)."""
        w = self.world
        return max(float(np.abs(a[s][w.dofs[s]] - b[s][w.dofs[s]]).max(initial=0.0)) for s in w.sides)

    def _jerk(self, out_q: dict, f: int, q_f: Mapping) -> float:
        """The squared second differences of the solved joints at frames ``f - 1``, ``f``, ``f + 1`` of ``out_q``
        (``{side: (T, D)}``) with ``q_f`` (``{side: (D,)}``) at frame ``f``: what frame ``f``'s result adds to the
        joints' acceleration (the frames outside the sequence left out)."""
        w = self.world
        T = len(out_q[w.sides[0]])
        total = 0.0
        for s in w.sides:
            d = w.dofs[s]
            q = {k: (q_f[s] if k == f else out_q[s][k])[d] for k in range(max(0, f - 2), min(T, f + 3))}
            for k in (f - 1, f, f + 1):
                if k - 1 in q and k + 1 in q:
                    total += float(((q[k + 1] - 2.0 * q[k] + q[k - 1]) ** 2).sum())
        return total

    def _pull_back(self, t: int, T0: Mapping, q0: Mapping, ref: Mapping, touching: np.ndarray, out_T: dict, out_q: dict,
                   measured: dict) -> list[int]:
        """Frame ``t``'s joints stepped within one frame: by more than :data:`PULL_STEP` from frame ``t - 1``'s where the
        human's hands touch (the contacts of a clap, which the solve reaches on their first frame), or into another basin
        of the solve (the second start's result). Frames ``t - 1``, ``t - 2``, ... (at most :data:`PULL_BACK_FRAMES`) are solved again,
        each warm-started from the next frame's correction and smoothed toward it, so that the step is spread over them.
        A frame takes the new result where that lowers the joints' squared second differences around it
        (:meth:`_jerk`), is no deeper in penetration than its old result (the guarantee's comparison) and leaves no more
        of the human's touches across the hands apart; the first frame that does not, or that the new result moves by
        under 0.01 rad, ends the pull (``benchmarks/bimanual_interaction.py --per-motion``,
        ``benchmarks/RESULTS.md``). ``T0``, ``q0``: the per-hand solution; ``out_T``, ``out_q`` and ``measured``
        (:meth:`refine_sequence`'s) are updated in place. Returns the frames changed."""
        w, o = self.world, self.options
        saved, self.approach = self.approach, np.full(len(self.pairs), np.nan)
        changed = []

        def state(Ts, qs, k):
            return FrameState({s: np.array(Ts[s][k], dtype=np.float64) for s in w.sides},
                              {s: np.array(qs[s][k], dtype=np.float64) for s in w.sides})  # fmt: skip

        try:
            for f in range(t - 1, max(-1, t - 1 - PULL_BACK_FRAMES), -1):
                anchor, old = state(T0, q0, f), state(out_T, out_q, f)
                corr = self.correction(state(out_T, out_q, f + 1), state(T0, q0, f + 1), w.dofs)
                start = anchor.copy()
                self._apply(start, np.concatenate([np.concatenate(corr[s]) for s in w.sides]))
                # the old result's measurements (:meth:`record`'s): its deepest penetration is all :func:`deepens` needs
                # of its smallest distance (one at or above 0 compares as 0), its pairs' distances its missed touches
                old_min = -max(measured["hand_hand"][f], measured["self"][f])
                old_missed = int((touching[f] & self._inter & (measured["pair_distance"][f] >= o.robot_contact_m)).sum())

                def shape_terms(s, qs, f=f, anchor=anchor):
                    return self._shape_terms(s, qs, ref[s][0][f : f + 1],
                                             None if ref[s][1] is None else ref[s][1][f : f + 1], anchor.q[s])  # fmt: skip

                st, stats = self.solve_frame(start, anchor, shape_terms, corr, touching[f], o.max_iterations)
                c = stats.get("contacts")
                if c is None:
                    w.set_state(st.T, st.q)
                    c = w.contacts(intra_margin=self.intra_margin_m)
                if (self._jerk(out_q, f, st.q) >= self._jerk(out_q, f, old.q)
                        or deepens(min_distance(c), old_min, o.clearance_m) or self._missed(c, touching[f]) > old_missed):
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
