"""Offline, a step of the joints spread over the frames before it (:class:`PullBack`, a part of
:class:`.refine.BimanualRefiner`): where a frame's result came from the second start (another basin of the solve than
the warm start's), the few frames before are solved again from it (:meth:`PullBack._pull_back`); where a frame that left
the per-hand result steps far from the previous frame's (a clap's first contacts, which the solve reaches within
their first frame), those of the few frames before that leave the human's touches apart are solved again from it, then
its joints' step is spread over them (:meth:`PullBack._ramp_into`). Units: metres, radians.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .state import FrameState, deepens, min_distance

__all__ = ["PullBack", "PULL_BACK_FRAMES", "PULL_STEP", "PULL_RAMP"]

#: offline, where a frame's result comes from the second start, or a frame that left the per-hand result steps by more
#: than :data:`PULL_STEP`, at most this many frames before it are solved again from it or take its step
#: (:meth:`PullBack._pull_back`, :meth:`PullBack._ramp_into`)
PULL_BACK_FRAMES = 5
#: a solved joint's change from the previous frame (radians; metres for a prismatic joint) past which a frame that left
#: the per-hand result is reached over the frames before it (:meth:`PullBack.stepped`): 0.1 rad in a frame is 3 rad/s
#: at 30 fps, a step of it 90 rad/s^2
PULL_STEP = 0.1
#: before a second start, the frames pulled start from, and are smoothed toward, a ramp from their old correction to the
#: second start's (:meth:`PullBack._pull_back`); False: each from the next frame's result, as before 2026-12-05
PULL_RAMP = True


class PullBack:
    """The pull-back of :class:`.refine.BimanualRefiner` (its ``options``, ``world``, ``pairs``, ``approach``,
    ``problems``, ``intra_margin_m``, ``finger_margin_m``, ``_pair_rows``, ``_missed``, ``_apply``, ``correction``,
    ``_shape_terms``, ``solve_frame`` and ``record``)."""

    def _joint_step(self, a: Mapping, b: Mapping) -> float:
        """The largest change of a solved joint between dofs ``a`` and ``b`` (``{side: (D,)}``)."""
        w = self.world
        return max(float(np.abs(a[s][w.dofs[s]] - b[s][w.dofs[s]]).max(initial=0.0)) for s in w.sides)

    def stepped(self, out_q: Mapping, t: int) -> bool:
        """Whether a solved joint changes by more than :data:`PULL_STEP` between frames ``t - 1`` and ``t`` of ``out_q``
        (``{side: (T, D)}``)."""
        return t > 0 and self._joint_step({s: out_q[s][t] for s in out_q}, {s: out_q[s][t - 1] for s in out_q}) > PULL_STEP

    def _extra_touches(self, pair_distance: np.ndarray, touching: np.ndarray) -> int:
        """How many monitored pairs, across the hands or within one, the human does not touch (``touching`` (P,)) and
        the robot does at ``pair_distance`` (P,) (metres; :meth:`_pair_rows`'): contacts of its own."""
        return int((~touching & (pair_distance < self.options.robot_contact_m)).sum())

    def _no_worse(self, c, f: int, touching: np.ndarray, measured: Mapping) -> bool:
        """Whether contacts ``c`` of a new state of frame ``f`` keep what its old state had (``measured``,
        :meth:`record`'s): no deeper penetration (none where it had none), no more of the human's touches across the
        hands left apart (``touching`` (P,): the human's at frame ``f``), and no more contacts of the robot's own
        (:meth:`_extra_touches`; ``touching`` also counts the pairs the human touches where the step lands, which a
        ramp into a touch reaches a frame or two early)."""
        pd, old_pd = self._pair_rows(c)[1], measured["pair_distance"][f]
        old_min = -max(measured["hand_hand"][f], measured["self"][f])  # all deepens needs of the old smallest distance
        return not (deepens(min_distance(c), old_min, 0.0) or self._missed(pd, touching) > self._missed(old_pd, touching)
                    or self._extra_touches(pd, touching) > self._extra_touches(old_pd, touching))

    def _record_anew(self, c, f: int, measured: dict) -> None:
        """Frame ``f``'s measurements in ``measured`` replaced by those of its new state's contacts ``c``
        (:meth:`record` writes only what ``c`` lists)."""
        measured["pair_distance"][f], measured["hand_hand"][f], measured["self"][f] = np.inf, 0.0, 0.0
        self.record(c, f, measured)

    def _ramp_into(self, t: int, q0: Mapping, touching: np.ndarray, out_T: Mapping, out_q: dict, measured: dict) -> list[int]:
        """Frame ``t``, which left the per-hand result, has joints that stepped by more than :data:`PULL_STEP`
        (:meth:`stepped`: a clap's contacts, which the solve reaches within their first frame, or a correction that
        lets go). The step is spread over the ``K`` frames before it (at most :data:`PULL_BACK_FRAMES`): frame
        ``t - j``'s joints take ``(K + 1 - j) / (K + 1)`` of the way from their correction to frame ``t``'s (within the
        joints' limits); the bases stay where they are, so an arm carrying a hand moves as before. A ramp is kept
        where the joints' squared second differences over it fall and every frame of it is no worse
        (:meth:`_no_worse`, one collision pass each); else the next shorter one is tried. (Solving those frames again instead,
        3e198ba, let them settle where frame ``t``'s result is, so the step only moved a frame earlier, or take the
        contact's correction of the wrists too, which held a clap's hands apart a frame longer: in the GR1's physics
        replay they then met faster and stayed pressed into each other, ``benchmarks/humanoid_replay.py``.)
        ``q0``: the per-hand solution; ``out_q`` and ``measured`` are updated in place. Returns the frames changed."""
        w, dofs = self.world, self.world.dofs
        a, b = max(0, t - PULL_BACK_FRAMES - 2), min(len(out_q[w.sides[0]]), t + 2)  # the frames a ramp's acceleration sees
        old = {s: out_q[s][a:b, dofs[s]] for s in w.sides}  # (n, D) the solved joints there; frame t is old[s][t - a]
        corr = {s: old[s] - q0[s][a:b, dofs[s]] for s in w.sides}  # their corrections

        def acceleration(qs, k0):  # the joints' squared second differences at frames k0 - 1 .. t
            return sum(float((np.diff(qs[s][max(0, k0 - 2 - a) :], 2, axis=0) ** 2).sum()) for s in w.sides)

        K = min(PULL_BACK_FRAMES, t)
        while K > 0:
            ramp = {s: v.copy() for s, v in old.items()}
            for s in w.sides:
                f = np.arange(t - K, t)  # frame t - j takes r = (K + 1 - j) / (K + 1)
                r = ((f - (t - K - 1)) / (K + 1))[:, None]
                c0 = corr[s][f - a]
                ramp[s][f - a] = np.clip(q0[s][f][:, dofs[s]] + c0 + r * (corr[s][t - a] - c0),
                                         self.problems[s].lower[dofs[s]], self.problems[s].upper[dofs[s]])  # fmt: skip
            if acceleration(ramp, t - K) >= acceleration(old, t - K):
                K -= 1
                continue
            kept = []
            for j in range(1, K + 1):
                f = t - j
                q = {s: out_q[s][f].copy() for s in w.sides}
                for s in w.sides:
                    q[s][dofs[s]] = ramp[s][f - a]
                w.set_state({s: out_T[s][f] for s in w.sides}, q)
                c = w.contacts(self.intra_margin_m, self.finger_margin_m)
                if not self._no_worse(c, f, touching[f] | touching[t], measured):
                    break
                kept.append((f, q, c))
            else:
                for f, q, c in kept:
                    for s in w.sides:
                        out_q[s][f] = q[s]
                    self._record_anew(c, f, measured)
                return [f for f, _, _ in kept]
            K -= 1
        return []

    def _pull_back(self, t: int, T0: Mapping, q0: Mapping, ref: Mapping, touching: np.ndarray, out_T: dict, out_q: dict,
                   measured: dict, second: bool) -> list[int]:
        """Frame ``t``'s joints stepped within one frame: into another basin of the solve (``second``: its result came
        from the second start; the dex-urdf Shadow's claps), or by more than :data:`PULL_STEP` (:meth:`stepped`).
        Frames ``t - 1``, ``t - 2``, ... (at most :data:`PULL_BACK_FRAMES`, ``K``) are solved again, frame ``t - j``
        warm-started from, and smoothed toward, ``(K + 1 - j) / (K + 1)`` of the way from its old correction to frame
        ``t``'s (:data:`PULL_RAMP`; else from the next frame's correction: each frame then settled where frame ``t``'s
        result is, and the whole step, the dex-urdf Shadow's forearm turned about the palm, went into the first frame
        pulled, ``benchmarks/bimanual_interaction.py --per-motion``'s base speed, ``benchmarks/RESULTS.md``). A frame
        takes the new result where it is no deeper in penetration than its old result (the guarantee's comparison) and
        leaves fewer of the human's touches across the hands apart, or, before a second start, as many with its joints
        nearer the next frame's. Before a step, a frame that leaves none of them apart is not solved again: the
        palms a step reaches were missed by the frames before it on the long contact corpus
        (``benchmarks/bimanual_end_to_end.py``'s recall), and :meth:`_ramp_into` smooths the step itself. The first
        frame that does not, or that the new result moves by under 0.01 rad (the two agree there), ends the pull.
        ``T0``, ``q0``: the per-hand solution; ``out_T``, ``out_q`` and ``measured`` (:meth:`refine_sequence`'s, once
        every frame is solved) are updated in place. Returns the frames changed."""
        w, o = self.world, self.options
        saved, self.approach = self.approach, np.full(len(self.pairs), np.nan)
        changed = []

        def state(Ts, qs, k):
            return FrameState({s: np.array(Ts[s][k], dtype=np.float64) for s in w.sides},
                              {s: np.array(qs[s][k], dtype=np.float64) for s in w.sides})  # fmt: skip

        try:
            for f in range(t - 1, max(-1, t - 1 - PULL_BACK_FRAMES), -1):
                # the old result's measurements (:meth:`record`'s): its deepest penetration is all :func:`deepens` needs
                # of its smallest distance (one at or above 0 compares as 0), its pairs' distances its missed touches
                old_min = -max(measured["hand_hand"][f], measured["self"][f])
                old_missed = self._missed(measured["pair_distance"][f], touching[f])
                if not (second or old_missed):
                    break
                anchor, old, nxt = state(T0, q0, f), state(out_T, out_q, f), state(out_T, out_q, f + 1)
                corr = self.correction(nxt, state(T0, q0, f + 1), w.dofs)
                if PULL_RAMP:  # frame t - j takes (K + 1 - j) / (K + 1) of the way from its old correction to t's
                    if f == t - 1:
                        corr_t = corr
                    r = (PULL_BACK_FRAMES + 1 - (t - f)) / (PULL_BACK_FRAMES + 1)
                    was = self.correction(old, anchor, w.dofs)
                    corr = {s: tuple(a + r * (b - a) for a, b in zip(was[s], corr_t[s], strict=True)) for s in w.sides}
                start = anchor.copy()
                self._apply(start, np.concatenate([np.concatenate(corr[s]) for s in w.sides]))

                def shape_terms(s, qs, f=f, anchor=anchor):
                    return self._shape_terms(s, qs, ref[s][0][f : f + 1],
                                             None if ref[s][1] is None else ref[s][1][f : f + 1], anchor.q[s])  # fmt: skip

                st, stats = self.solve_frame(start, anchor, shape_terms, corr, touching[f], o.max_iterations)
                c = stats.get("contacts")
                if c is None:
                    w.set_state(st.T, st.q)
                    c = w.contacts(self.intra_margin_m, self.finger_margin_m)
                missed = self._missed(self._pair_rows(c)[1], touching[f])
                smoother = second and self._joint_step(st.q, nxt.q) < self._joint_step(old.q, nxt.q)
                better = missed < old_missed or (missed == old_missed and smoother)
                if deepens(min_distance(c), old_min, o.clearance_m) or not better:
                    break
                for s in w.sides:
                    out_T[s][f], out_q[s][f] = st.T[s], st.q[s]
                self._record_anew(c, f, measured)
                changed.append(f)
                if self._joint_step(st.q, old.q) < 0.01:
                    break
        finally:
            self.approach = saved
        return changed
