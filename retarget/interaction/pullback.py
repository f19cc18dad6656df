"""Offline, a step of the joints spread over the frames before it (:class:`PullBack`, a part of
:class:`.refine.BimanualRefiner`): where a frame's result came from the second start (another basin of the solve than
the warm start's), or where the joints of a frame of the human's touch across the hands step far from the previous
frame's (a clap's first contacts, which the solve reaches within their first frame), the few frames before are solved
again from it. Units: metres, radians.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .state import FrameState, deepens, min_distance

__all__ = ["PullBack", "PULL_BACK_FRAMES", "PULL_STEP", "PULL_RAMP"]

#: offline, where a frame's result comes from the second start, or a frame solved for the human's touch across the hands
#: steps by more than :data:`PULL_STEP`, at most this many frames before it are solved again from it
#: (:meth:`PullBack._pull_back`)
PULL_BACK_FRAMES = 5
#: a solved joint's change from the previous frame (radians; metres for a prismatic joint) past which a frame of the
#: human's touch across the hands is reached over the frames before it (:meth:`PullBack.stepped`)
PULL_STEP = 0.25
#: before a second start, the frames pulled start from, and are smoothed toward, a ramp from their old correction to the
#: second start's (:meth:`PullBack._pull_back`); False: each from the next frame's result, as before 2026-12-05
PULL_RAMP = True
#: a frame solved again before a step may leave the hands' bases this much farther apart than before, no more (metres)
WRISTS_APART_TOL_M = 1e-4


class PullBack:
    """The pull-back of :class:`.refine.BimanualRefiner` (its ``options``, ``world``, ``pairs``, ``approach``,
    ``intra_margin_m``, ``_pair_rows``, ``_missed``, ``_apply``, ``correction``, ``_shape_terms``, ``solve_frame``,
    ``record`` and its smoothness weights ``_joint_smoothness``, ``_wrist_smoothness``)."""

    def _joint_step(self, a: Mapping, b: Mapping) -> float:
        """The largest change of a solved joint between dofs ``a`` and ``b`` (``{side: (D,)}``)."""
        w = self.world
        return max(float(np.abs(a[s][w.dofs[s]] - b[s][w.dofs[s]]).max(initial=0.0)) for s in w.sides)

    def stepped(self, out_q: Mapping, t: int) -> bool:
        """Whether a solved joint changes by more than :data:`PULL_STEP` between frames ``t - 1`` and ``t`` of ``out_q``
        (``{side: (T, D)}``)."""
        return t > 0 and self._joint_step({s: out_q[s][t] for s in out_q}, {s: out_q[s][t - 1] for s in out_q}) > PULL_STEP

    def _jerk(self, out_T: Mapping, out_q: Mapping, f: int, T_f: Mapping, q_f: Mapping) -> float:
        """What frame ``f``'s result adds to the motion's acceleration: the squared second differences at frames
        ``f - 1``, ``f``, ``f + 1`` of ``out_T``, ``out_q`` (``{side: (T, 4, 4)}``, ``{side: (T, D)}``, every frame
        final) with ``T_f``, ``q_f`` at frame ``f`` (frames outside the sequence left out), of the solved joints and the
        wrists (the base poses' translation, and their rotation as half the squared matrix entries: the angle's square
        for small turns), weighted as the solve's smoothness term weighs their change (1 cm of a wrist as 1 rad of a
        joint): an arm carries the wrist."""
        w = self.world
        n = len(out_q[w.sides[0]])
        near = range(max(0, f - 2), min(n, f + 3))
        joints = wrists = 0.0
        for s in w.sides:
            q = {k: (q_f[s] if k == f else out_q[s][k])[w.dofs[s]] for k in near}
            B = {k: (T_f[s] if k == f else out_T[s][k])[:3] for k in near}
            for k in (f - 1, f, f + 1):
                if k - 1 in q and k + 1 in q:
                    joints += float(((q[k + 1] - 2.0 * q[k] + q[k - 1]) ** 2).sum())
                    a = B[k + 1] - 2.0 * B[k] + B[k - 1]
                    wrists += float((a[:, 3] ** 2).sum() + 0.5 * (a[:, :3] ** 2).sum())
        return self._joint_smoothness * joints + self._wrist_smoothness * wrists

    def _wrists_apart(self, T: Mapping) -> float:
        """The distance between the two hands' bases (metres; 0 with one hand), ``T``: ``{side: (4, 4)}``. A frame
        before a clap's contact that takes the contact's correction (the wrists moved apart: robot hands are larger)
        is smoother by :meth:`_jerk`, but holds the hands apart one frame longer, so they meet faster: on the GR1,
        whose arms carry the wrists, the physics replay of "clap three times" then held the palms pressed into each
        other and the fingers lagged their targets (``benchmarks/humanoid_replay.py``, ``benchmarks/RESULTS.md``)."""
        w = self.world
        if len(w.sides) < 2:
            return 0.0
        return float(np.linalg.norm(T[w.sides[0]][:3, 3] - T[w.sides[1]][:3, 3]))

    def _pull_back(self, t: int, T0: Mapping, q0: Mapping, ref: Mapping, touching: np.ndarray, out_T: dict, out_q: dict,
                   measured: dict, second: bool = False) -> list[int]:
        """Frame ``t``'s joints stepped within one frame: into another basin of the solve (its result came from the
        second start; the dex-urdf Shadow's claps), or by more than :data:`PULL_STEP` where the human's hands touch
        (:meth:`stepped`: a clap's contacts, which the solve reaches on their first frame; the Inspire's claps).
        Frames ``t - 1``, ``t - 2``, ... (at most :data:`PULL_BACK_FRAMES`, ``K``) are solved again, each warm-started
        from the next frame's correction and smoothed toward it, so that the step is spread over them; before a second
        start, from a ramp instead: frame ``t - j`` from ``(K + 1 - j) / (K + 1)`` of the way from its old correction to
        frame ``t``'s. From the next frame's, each frame settled where frame ``t``'s result is, and the whole step was
        taken into the first frame pulled: the dex-urdf Shadow's forearm, turned about the palm, swung into it within a
        frame there (``benchmarks/bimanual_interaction.py --per-motion``'s base speed, ``benchmarks/RESULTS.md``). A frame takes the
        new result where it is no deeper in penetration than its old result (the guarantee's comparison) and leaves
        fewer of the human's touches across the hands apart, or as many and is smoother: before a second start
        (``second``), its joints nearer the next frame's; before a step, less added to the motion's acceleration
        (:meth:`_jerk`: joints and wrists) without the hands' bases farther apart (:meth:`_wrists_apart`). The first
        frame that does not, or that the new result moves by under 0.01 rad (the two agree there), ends the pull
        (``benchmarks/bimanual_interaction.py --per-motion``, ``benchmarks/RESULTS.md``). ``T0``, ``q0``: the per-hand solution; ``out_T``, ``out_q`` and ``measured``
        (:meth:`refine_sequence`'s, once every frame is solved: a frame's acceleration needs the next) are updated in
        place. Returns the frames changed."""
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
                if second and PULL_RAMP:  # frame t - j takes (K + 1 - j) / (K + 1) of the way from its old correction to t's
                    if f == t - 1:
                        corr_t = corr
                    r = (PULL_BACK_FRAMES + 1 - (t - f)) / (PULL_BACK_FRAMES + 1)
                    was = self.correction(old, anchor, w.dofs)
                    corr = {s: tuple(a + r * (b - a) for a, b in zip(was[s], corr_t[s], strict=True)) for s in w.sides}
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
                    c = w.contacts(self.intra_margin_m, self.finger_margin_m)
                missed = self._missed(self._pair_rows(c)[1], touching[f])
                if second:  # the step into the next frame, as before the step trigger
                    smoother = self._joint_step(st.q, nxt.q) < self._joint_step(old.q, nxt.q)
                else:
                    smoother = (self._jerk(out_T, out_q, f, st.T, st.q) < self._jerk(out_T, out_q, f, old.T, old.q)
                                and self._wrists_apart(st.T) <= self._wrists_apart(old.T) + WRISTS_APART_TOL_M)
                better = missed < old_missed or (missed == old_missed and smoother)
                if deepens(min_distance(c), old_min, o.clearance_m) or not better:
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
