"""How a correction left by the bimanual solve fades out while the human's hands are apart (:class:`Fading`, a part
of :class:`.refine.BimanualRefiner`): the wrists by :func:`.state.fade`, the fingers by one step of the solve's shape
and smoothness terms, and one SQP step where the straight way back would pass a finger through another. Units:
metres, radians."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .state import FADE_END, FrameState, fade

__all__ = ["Fading"]


class Fading:
    """The fade of :class:`.refine.BimanualRefiner` (its ``options``, ``world``, ``problems``, ``_gated`` and
    ``_joint_smoothness``)."""

    def _fingers_fade(self, anchor: FrameState, corr: dict, faded: dict, shape_terms: Callable) -> dict:
        """The fingers' part of a fading frame while a wrist is still corrected: one Gauss-Newton step of the
        solve's shape and smoothness terms from the correction ``corr`` toward ``faded``, within the joint
        limits and the solve's step bound; what the solve's one step did on such a frame before fading frames
        went without it. Scaled like the wrists instead, the fingers kept a pose the shape term would have
        left, and the next contact's solve started from it (a dex-urdf Shadow palm press then missed every
        event: ``benchmarks/bimanual_interaction.py``). Returns ``faded`` with the fingers' part so stepped."""
        o, w = self.options, self.world
        kq = self._joint_smoothness
        out = {}
        for s in w.sides:
            dofs, prob = w.dofs[s], self.problems[s]
            q = anchor.q[s].copy()
            q[dofs] = np.clip(q[dofs] + corr[s][2], prob.lower[dofs], prob.upper[dofs])
            g, Hs = shape_terms(s, q)
            dq = q[dofs] - anchor.q[s][dofs]
            x = -np.linalg.solve(o.w_shape * Hs + 2 * kq * np.eye(len(dofs)), o.w_shape * g + 2 * kq * (dq - faded[s][2]))
            x = np.clip(x, np.maximum(prob.lower[dofs] - q[dofs], -0.3), np.minimum(prob.upper[dofs] - q[dofs], 0.3))
            out[s] = (faded[s][0], faded[s][1], dq + x)
        return out

    def _fade_frame(self, anchor: FrameState, corr: dict, touching: np.ndarray, shape_terms: Callable):
        """A frame with a correction ``corr`` left by earlier frames, the human's hands apart: the correction
        faded (:func:`fade`; the fingers by :meth:`_fingers_fade` while a wrist is still corrected, then
        scaled like the wrists, so the fade ends). Where that state's fingers penetrate (the straight way back
        to the per-hand pose passes a finger through another), the wrists faded and the fingers held, and
        ``untangle``: the frame takes one SQP step from there, so the fingers go around and the fade goes on.
        Where a state still needs a solve, the correction held as it was (the warm start). Returns (state, its
        correction, the gate's reason or None, contacts, untangle): the first state that needs no solve, with
        the faded state's reason when ``untangle``. Holding the fingers as they were without the step (the code
        before) froze them: the Allegro's interlocked fingers stayed 1.07 rad off the per-hand pose for as long
        as the hands stayed apart (``tests/test_interaction.py``)."""
        faded = fade(corr)
        if faded is not None and any(np.abs(v).max() >= end for parts in faded.values()
                                     for v, end in zip(parts[:2], FADE_END[:2], strict=True)):  # fmt: skip
            faded = self._fingers_fade(anchor, corr, faded, shape_terms)  # while a wrist is still corrected
        st, need, c = self._gated(anchor, faded, touching)
        if need == "fingers penetrate" and faded is not None:
            kept = {s: (faded[s][0], faded[s][1], corr[s][2]) for s in corr}  # the wrists faded, the fingers held
            st2, need2, c2 = self._gated(anchor, kept, touching)
            if need2 is None:
                return st2, kept, need, c2, True
        if need is not None:
            faded = corr
            st, need, c = self._gated(anchor, corr, touching)
        return st, faded, need, c, False
