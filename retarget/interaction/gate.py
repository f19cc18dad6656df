"""The gate of the bimanual solve (:class:`Gate`, a part of :class:`.refine.BimanualRefiner`): why a frame leaves
the per-hand result for the solve (:data:`GATE_REASONS`), and whether a solved frame touches within a hand where
the human's hand does not. Units: metres."""

from __future__ import annotations

import numpy as np

from .state import FrameState
from .world import Contacts

__all__ = ["Gate", "GATE_REASONS", "APPROACH_TOL"]

#: why the gate (:meth:`Gate.needs_solve`) sends a frame to the bimanual solve
GATE_REASONS = ("human touch", "hands near", "fingers penetrate", "touch within a hand", "contact ahead")
#: offline, the gate sends a frame to the solve where a pair whose contact is ahead is farther than this beyond its
#: approach gap (metres; :meth:`.refine.BimanualRefiner.refine_sequence`)
APPROACH_TOL = 1e-3


class Gate:
    """The gate of :class:`.refine.BimanualRefiner` (its ``options``, ``world``, ``approach``, ``_inter``,
    ``intra_margin_m`` and ``_pair_rows``)."""

    def _false_touch(self, c: Contacts | None, touching: np.ndarray) -> bool:
        """A pair within a hand is in contact in contacts ``c`` (nearer than ``robot_contact_m``) where the human's
        is not (``touching`` (P,)); False without contacts."""
        if c is None:
            return False
        pd = self._pair_rows(c)[1]
        return bool((~self._inter & ~touching & (pd < self.options.robot_contact_m)).any())

    def needs_solve(self, st: FrameState, touching: np.ndarray) -> tuple[str | None, Contacts]:
        """The gate: why frame state ``st`` needs the bimanual solve, or None. ``'human touch'``: the
        human's hands touch each other (``touching`` (P,), the monitored pairs); ``'hands near'``: a pair of
        collision geoms across the hands is nearer than ``clearance_m`` (the non-penetration constraint's
        bound) or a monitored part pair across them (fingertips, palms) nearer than ``apart_m`` (the apart
        term's): otherwise no term of the solve acts across the hands; ``'fingers penetrate'``: a pair within
        a hand penetrates; ``'touch within a hand'``: a monitored pair within a hand (a pinch, a fingertip on
        the palm) is in contact on the robot (nearer than ``robot_contact_m``) where the human's is not, or the
        other way round. Without that reason, a pinch the per-hand solution leaves apart stayed apart
        wherever nothing else sent the frame to the solve (the within-hand column of
        ``benchmarks/bimanual_interaction.py``). ``'contact ahead'`` (offline): a pair whose human contact begins
        within the approach window is off its approach gap (:attr:`approach`). Returns (that, the contacts of ``st``)."""
        o, w = self.options, self.world
        w.set_state(st.T, st.q)
        c = w.contacts(self.intra_margin_m, self.finger_margin_m)
        if (touching & self._inter).any():
            return "human touch", c
        pd = self._pair_rows(c)[1]
        if len(c.dist):
            cross = w.geom_side[c.geom[:, 0]] != w.geom_side[c.geom[:, 1]]
            if (c.dist[cross] < o.clearance_m).any() or (pd[self._inter] < o.apart_m).any():
                return "hands near", c
            if (c.dist[~cross] < 0.0).any():
                return "fingers penetrate", c
        if (~self._inter & (touching != (pd < o.robot_contact_m))).any():
            return "touch within a hand", c
        if (pd > self.approach + APPROACH_TOL).any():  # NaN (no approach) compares False
            return "contact ahead", c
        return None, c
