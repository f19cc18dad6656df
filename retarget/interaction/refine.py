"""The bimanual solve: both hands, wrists included, one small problem per frame where the hands interact.

The per-hand solver (:mod:`handx_robot.retarget.solver`) runs first, batched over frames, as before. A
frame is then solved again *bimanually* (the gate, :meth:`BimanualRefiner.needs_solve`) when the human's
hands touch, when the two robot hands are close (where the non-penetration constraint or the apart term
acts), when a hand's fingers interpenetrate, or when a pair within a hand (a pinch, a fingertip on the
palm) is in contact on the robot but not on the human or the other way round. The same solve runs on one
hand alone: its fingers and its own contacts. Otherwise the frame keeps the per-hand result or, while a
correction left by solved frames fades out (:meth:`.fading.Fading._fade_frame`), the per-hand result with
the faded correction: one collision query checks it, and the frame is solved where it finds the hands close
(one SQP step where only the faded fingers would pass through each other).

Variables per frame (:class:`~handx_robot.retarget.interaction.world.TwoHandWorld` layout): for each
hand the base pose ``T_world_base`` (6: translation in the world frame, rotation in the base frame)
and the hand's solved dofs; a hand whose palm moves on wrist joints turns its base about the palm (its QP
variables are the palm origin's step and the base's turn, :meth:`.palm.WristJoints.base_step`). One
sequential quadratic program per iteration (DAQP), warm-started from the previous frame's correction:

    minimise   sum_hands  shape objective (dex-retargeting's, Gauss-Newton model, as the per-hand solve)
             + w_wrist   |wrist deviation from the scaled human wrist|^2        (bounded adaptation)
             (for a hand whose palm moves on wrist joints, the dex-urdf Shadow: the shape in the palm frame, the
             palm's deviation, and the base's at BASE_WEIGHT of it; :mod:`.palm`)
             + w_smooth  |change of the correction since the previous frame|^2  (wrists and fingers)
             + w_contact (d_ab - touch)^2    for part pairs the human is touching (contact term)
             + w_apart   max(0, apart - d_ab)^2  for part pairs the human is not touching (a slack per pair)
             + w_contact max(0, d_ab - gap_ab)^2  offline, for pairs whose human contact begins within
                                   ``approach_s`` (the approach: :meth:`BimanualRefiner.refine_sequence`)
    subject to d_g + grad d_g . x >= clearance  for every pair of collision geoms closer than the margin
               (hand-hand and finger-finger: the non-penetration constraint, hard)
               joint limits; a trust region per iteration, halved for a variable whose step reverses
               the previous one (the linear model was wrong over that step; without it the SQP can jump
               between two penetrations until the iterations run out)

The non-penetration guarantee (tests/test_interaction_properties.py): a solve never returns a state that
penetrates deeper than the one it started from, beyond half the clearance (where its last iterate does,
the latest iterate that did not is the result); a frame whose solve from the warm start ends deeper than
the previous frame's result is solved again from that result. So once a result is free of penetration,
every later one is, offline (a long motion's chunks too, :mod:`.chunks`) and streamed, whatever the input. (Offline, a frame that ends with pairs across
the hands the human touches still apart is solved once more from the per-hand solution, a second start out of
a local minimum; that result is kept only where it is no deeper in penetration than the first. Where that happens,
the few frames before it are then solved again from it; where the joints of a frame that left the per-hand result
step far from the previous frame's, those of the few frames before that leave the human's touches apart are solved
again from it, then take a ramp into the step, kept only where no frame of it penetrates deeper, none where it had
none. So the joints get there over those frames, not within one: :mod:`.pullback`.)

``d`` are signed distances between the robots' collision geoms as MuJoCo computes them; part pairs
(fingertip, palm; :mod:`~handx_robot.retarget.interaction.world`) follow the human contact
pairs of :mod:`handx_robot.features` and their events (hysteresis, gaps, minimum duration), so the
robot is asked to touch exactly where and when the human contact events are.
Units: metres, radians.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

import numpy as np

from handx_robot.features import ContactConfig
from handx_robot.rotations import matrix_to_rotvec, rotvec_to_matrix

from .approach import Approach
from .fading import Fading
from .gate import GATE_REASONS, Gate
from .options import INTERACTION_MODES, InteractionOptions
from .pairs import (
    HumanContactTracker,
    PairDistances,
    PartPair,
    frames_to_onset,
    human_contact_mask,
    monitored_pairs,
)
from .palm import BASE_WEIGHT, WristJoints
from .pullback import PullBack
from .state import FADE, FADE_END, Carry, FrameState, deepens, fade, min_distance
from .world import TwoHandWorld

__all__ = ["InteractionOptions", "GATE_REASONS", "fade", "FADE", "FADE_END", "FrameState", "Carry", "PartPair",
           "monitored_pairs", "human_contact_mask", "HumanContactTracker", "BimanualRefiner", "INTERACTION_MODES"]  # fmt: skip

log = logging.getLogger(__name__)


def _diagonal(H: np.ndarray) -> np.ndarray:
    """The diagonal of a square C-contiguous matrix as a writable view (``_diagonal(H)[i:j] += k``: np.eye without
    the matrix, and a slice instead of fancy indexing)."""
    return H.reshape(-1)[:: H.shape[0] + 1]


class BimanualRefiner(Gate, Fading, PairDistances, PullBack, Approach):
    """The per-frame bimanual solve over a :class:`TwoHandWorld`; see the module docstring.

    ``problems``: ``{side: HandProblem}`` (both hands). Offline: :meth:`refine_sequence`; streaming, one
    frame at a time: :meth:`step` (the ROS ``retarget`` node), with :class:`HumanContactTracker`.
    """

    def __init__(self, problems: Mapping, options: InteractionOptions | None = None,
                 contact_config: ContactConfig | None = None, world: TwoHandWorld | None = None) -> None:
        self.options = options or InteractionOptions()
        self.problems = dict(problems)
        self.world = world or TwoHandWorld(self.problems, margin=self.options.margin_m)
        self.pairs = monitored_pairs(self.world, contact_config)
        self.contact_config = contact_config
        w = self.world
        self._pair_parts = np.array([[w.sides.index(p.side_a) * 6 + p.part_a, w.sides.index(p.side_b) * 6 + p.part_b]
                                     for p in self.pairs], dtype=np.int64).reshape(-1, 2)  # fmt: skip
        self._part_geoms = {(p.side_a, p.part_a): w.part_geoms(p.side_a, p.part_a) for p in self.pairs}
        self._part_geoms.update({(p.side_b, p.part_b): w.part_geoms(p.side_b, p.part_b) for p in self.pairs})
        # per side, where the solved dofs sit among the problem's free ones: (pos, np.ix_(pos, pos)), None where they are
        # all of them in order (the shape terms then need no indexing)
        self._free_pos = {}
        for s in w.sides:
            free = list(self.problems[s].free)
            pos = np.array([free.index(d) for d in w.dofs[s]], dtype=np.int64)
            self._free_pos[s] = None if np.array_equal(pos, np.arange(len(free))) else (pos, np.ix_(pos, pos))
        self._inter = np.array([p.side_a != p.side_b for p in self.pairs], dtype=bool)
        # hands whose palm moves on wrist joints: their palm is anchored, not their base (:mod:`.palm`)
        self._wrist = {s: WristJoints.of(self.problems[s], w.dofs[s]) for s in w.sides}
        # (part, part) -> monitored pair, -1 none; a 13th row and column of -1 for a geom of no part (geom_part -1)
        self._pair_lookup = np.full((13, 13), -1, dtype=np.int64)
        for i, (a, b) in enumerate(self._pair_parts):
            self._pair_lookup[a, b] = self._pair_lookup[b, a] = i
        #: (P,) this frame's approach gaps (metres) of the pairs whose human contact begins within the approach window
        #: (:meth:`refine_sequence` sets them frame by frame; NaN: none, always when streaming: no look-ahead)
        self.approach = np.full(len(self.pairs), np.nan)

    # -- one frame -------------------------------------------------------------------
    def solve_frame(self, start: FrameState, anchor: FrameState, shape_terms: Callable, prev_corr: dict | None,
                    touching: np.ndarray, iterations: int, contacts=None, reach: bool = True,
                    deadline: float | None = None) -> tuple[FrameState, dict]:
        """Solve one frame from ``start``. ``anchor``: the per-hand solution (scaled human wrist);
        ``shape_terms(side, q) -> (g, H)`` over the side's solved dofs; ``prev_corr``: the previous
        frame's correction ``{side: (dp (3,), drot (3,), dq (n,))}``; ``touching`` (P,) the human's
        contacts this frame; ``contacts``: those of ``start`` when the world is already set to it (the
        gate's); ``reach``: iterate past the budget while a touching pair across the hands is not in contact
        (not within a hand: a pinch the hand cannot close, as in a Fourier hand's fist, cost 3x); ``deadline``
        (``time.perf_counter()`` seconds): stop iterating there. Returns the
        state and stats (iterations, min distance, converged, and ``contacts`` of the returned state when
        they were computed)."""
        import daqp

        o, w = self.options, self.world
        st = start.copy()
        nx = w.nx
        stats = {"iterations": 0, "min_distance": np.inf, "converged": False, "fell_back": False, "late": False}
        trust = np.full(nx, np.inf)  # per-variable step bound, halved where steps reverse
        x_prev = None
        kept = None  # the latest iterate no deeper in penetration than the start: (state, contacts, smallest distance)
        palm_anchor = {s: wj.anchor_pose(anchor.T[s], anchor.q[s]) for s, wj in self._wrist.items() if wj}
        it = -1
        while True:
            it += 1
            if it == 0 and contacts is not None:
                c = contacts
            else:
                w.set_state(st.T, st.q)
                c = w.contacts(self.intra_margin_m, self.finger_margin_m)
            dmin = min_distance(c)
            if it == 0:
                start_dmin = dmin
            if not deepens(dmin, start_dmin, o.clearance_m):
                kept = (st.copy(), c, dmin)
            stats["min_distance"] = dmin
            rows, pd = self._pair_rows(c)
            stats["missed"] = self._missed(pd, touching)  # touched across, apart
            if stats["converged"]:
                stats["contacts"] = c
                break
            # past the budget, iterate on while the geoms still penetrate or a pair across the hands the human
            # touches is not in contact (at most 3x the budget): a contact must not hang on the warm start
            reached = not reach or not stats["missed"]
            late = deadline is not None and time.perf_counter() >= deadline
            stats["late"] = late
            if late or (it >= iterations and ((dmin >= -0.5 * o.clearance_m and reached) or it >= 3 * iterations)):
                stats["contacts"] = c  # those of the returned state
                break
            G = w.distance_gradient(c)
            # the pairs the apart term and the approach act on (below), so the QP's size is known: nx variables, then
            # one slack per such pair
            ahead = np.isfinite(self.approach) & ~touching
            apart = np.flatnonzero(~touching & (rows >= 0))
            pull = [(i, *self._pair_term(i, rows, pd, G)) for i in np.flatnonzero(ahead)]
            pull = [(i, d, gi) for i, d, gi in pull if np.isfinite(d)]
            ma, m = len(apart), len(apart) + len(pull)
            n_all = nx + m
            H_all = np.zeros((n_all, n_all))
            f_all = np.zeros(n_all)
            H, f = H_all[:nx, :nx], f_all[:nx]  # views
            Hd = _diagonal(H_all)  # a view: its first nx entries are H's diagonal
            lo = np.empty(nx)
            hi = np.empty(nx)
            for s in w.sides:
                sl = w.x_slices[s]
                i0 = sl.start
                prob = self.problems[s]
                dofs = w.dofs[s]
                pos_, rot_, joints = slice(i0, i0 + 3), slice(i0 + 3, i0 + 6), slice(i0 + 6, sl.stop)
                # wrist: deviation from the anchor (budget) and change of the correction (smooth); the base's,
                # or the palm's for a hand with wrist joints (its base held by BASE_WEIGHT of the term)
                dp = st.T[s][:3, 3] - anchor.T[s][:3, 3]
                dr = matrix_to_rotvec(anchor.T[s][:3, :3].T @ st.T[s][:3, :3])
                kp0, kr0 = o.w_wrist / o.wrist_budget_m**2, o.w_wrist / o.wrist_budget_rad**2
                wj = self._wrist[s]
                if wj is None:
                    ep, er = dp, dr
                else:
                    ep, er, Jp, Jr = wj.deviation(st.T[s], st.q[s], palm_anchor[s])
                    Hd[pos_] += 2 * BASE_WEIGHT * kp0
                    f[pos_] += 2 * BASE_WEIGHT * kp0 * dp
                    Hd[rot_] += 2 * BASE_WEIGHT * kr0
                    f[rot_] += 2 * BASE_WEIGHT * kr0 * dr
                kp = kp0 * (10.0 if math.sqrt(ep.dot(ep)) > o.wrist_budget_m else 1.0)  # np.linalg.norm's arithmetic
                kr = kr0 * (10.0 if math.sqrt(er.dot(er)) > o.wrist_budget_rad else 1.0)
                if wj is None:  # Jp, Jr: the identity on the base's translation, rotation
                    Hd[pos_] += 2 * kp
                    f[pos_] += 2 * kp * ep
                    Hd[rot_] += 2 * kr
                    f[rot_] += 2 * kr * er
                else:
                    H[sl, sl] += 2 * kp * Jp.T @ Jp + 2 * kr * Jr.T @ Jr
                    f[sl] += 2 * kp * Jp.T @ ep + 2 * kr * Jr.T @ er
                dq = st.q[s][dofs] - anchor.q[s][dofs]
                if prev_corr is not None:
                    pp, pr, pq = prev_corr[s]
                    ks = self._wrist_smoothness
                    Hd[pos_] += 2 * ks
                    f[pos_] += 2 * ks * (dp - pp)
                    Hd[rot_] += 2 * ks
                    f[rot_] += 2 * ks * (dr - pr)
                    kq = self._joint_smoothness
                    Hd[joints] += 2 * kq
                    f[joints] += 2 * kq * (dq - pq)
                else:  # the same curvature on the joints' step, which moves no solution: where a straight finger's
                    # J2 and J1 move its tip alike, the shape term has none, and DAQP took 34 ms over such a QP
                    Hd[joints] += 2 * self._joint_smoothness
                g, Hs = shape_terms(s, st.q[s])
                H[joints, joints] += o.w_shape * Hs
                f[joints] += o.w_shape * g
                # bounds: trust region and joint limits
                lo[pos_], hi[pos_] = -o.trust_m, o.trust_m
                lo[rot_], hi[rot_] = -o.trust_rad, o.trust_rad
                qd = st.q[s][dofs]
                lo[joints] = np.maximum(prob.lower[dofs] - qd, -0.3)
                hi[joints] = np.minimum(prob.upper[dofs] - qd, 0.3)
            lo, hi = np.maximum(lo, -trust), np.minimum(hi, trust)
            # contact term over the pairs the human touches
            kc = o.w_contact / 1e-4  # 1 cm of contact error ~ w_contact
            kc_palm = o.w_contact_palm / 1e-4
            for i in np.flatnonzero(touching):
                d, gi = self._pair_term(i, rows, pd, G)
                if np.isfinite(d):
                    k = kc_palm if self.pairs[i].kind == "palm_palm" else kc
                    H += 2 * k * np.outer(gi, gi)
                    f += 2 * k * (d - o.touch_m) * gi
            # apart term: a one-sided penalty ka * max(0, apart - d)^2 on every listed pair the human does
            # not touch, modelled exactly with a slack s >= 0 per pair (d + g.x + s >= apart; cost ka s^2).
            # A penalty that is only added while d < apart makes the SQP cycle: one step pushes the pair
            # just past ``apart``, where the term vanishes and the next step pulls it back to the clearance.
            # A pair whose contact is ahead (offline) is also pulled within its approach gap by the same kind of slack
            # (d + g.x - s <= gap; cost at the contact term's weight): one-sided, a pair closing in faster is not held
            H = H_all
            f = f_all
            Hd[nx : nx + ma] += 2 * (o.w_apart / 1e-4)
            for j, (i, _, _) in enumerate(pull):
                H[nx + ma + j, nx + ma + j] += 2 * (kc_palm if self.pairs[i].kind == "palm_palm" else kc)
            Hd += 1e-9
            nc = len(c.dist)
            A = np.zeros((nc + m, n_all))
            A[:nc, :nx] = G
            A[nc : nc + ma, :nx] = G[rows[apart]]
            A[np.arange(nc, nc + m), np.arange(nx, n_all)] = 1.0  # the slacks
            A[nc + ma :, nx + ma :] *= -1.0
            for j, (_, _, gi) in enumerate(pull):
                A[len(c.dist) + ma + j, :nx] = gi
            need = np.minimum(o.clearance_m - c.dist, 0.01)  # at most 1 cm of recovery per iteration
            pull_gap = np.array([self.approach[i] - d for i, d, _ in pull])
            bl = np.concatenate([lo, np.zeros(m), need, o.apart_m - pd[apart], np.full(len(pull), -1e30)])
            bu = np.concatenate([hi, np.full(m + len(c.dist) + ma, 1e30), pull_gap])
            # a hand with wrist joints turns its base about its palm: the QP's variables for it are the palm
            # origin's step and the base's turn (:meth:`WristJoints.base_step`). Turned about its own origin, at the
            # forearm's far end 25 cm away, the 1 cm trust region let the forearm swing 0.04 rad per iteration
            M = self._pivot_map(st)
            if M is not None:
                H[:nx, :nx] = M.T @ H[:nx, :nx] @ M
                f[:nx] = M.T @ f[:nx]
                A[:, :nx] = A[:, :nx] @ M
            x, _, flag, _ = daqp.solve(H, f, A, bu, bl)
            feasible = flag >= 1
            if not feasible:  # infeasible within the trust region: the constraints soft, then the cost alone
                sense = np.zeros(len(bl), dtype=np.int32)
                sense[n_all : n_all + len(c.dist)] = 8
                x, _, flag, _ = daqp.solve(H, f, A, bu, bl, sense)
                if flag < 1:
                    x = np.clip(np.linalg.solve(H[:nx, :nx] + 1e-6 * np.eye(nx), -f[:nx]), lo, hi)
            x = np.asarray(x, dtype=np.float64)[:nx]
            # a variable whose step reverses the previous one gets half the room next time: the linear
            # model was wrong over that step (the SQP would otherwise jump between two penetrations).
            # Not after an infeasible step: there the room is what recovery needs.
            if x_prev is not None and feasible:
                rev = x * x_prev < 0
                trust[rev] = 0.5 * np.minimum(trust[rev], np.abs(x[rev]))
            stats["iterations"] = it + 1
            x_prev = x
            self._apply(st, x if M is None else self._from_pivot(st, x))
            if np.abs(x).max() < 2e-4 and dmin >= -2e-4:  # converged: this last small step is checked, then kept
                stats["converged"] = True
        if deepens(stats["min_distance"], start_dmin, o.clearance_m):
            # the iterations ended deeper in penetration than the start (a step past a pair beyond the margin,
            # or over which the linear model was wrong, that they did not recover from): the latest iterate
            # that was not is the result
            st, stats["contacts"], stats["min_distance"] = kept
            stats["missed"] = self._missed(self._pair_rows(kept[1])[1], touching)
            stats["fell_back"] = True
        return st, stats

    def _pivot_map(self, st: FrameState) -> np.ndarray | None:
        """(nx, nx) ``M``, the solve's variables ``x = M y`` of variables ``y`` in which a hand with wrist joints
        turns its base about its palm (:meth:`WristJoints.pivot`); None when no hand has wrist joints."""
        w = self.world
        if not any(self._wrist.values()):
            return None
        M = np.eye(w.nx)
        for s, wj in self._wrist.items():
            if wj is not None:
                i0 = w.x_slices[s].start
                M[i0 : i0 + 3, i0 + 3 : i0 + 6] = wj.pivot(st.T[s], st.q[s])
        return M

    def _from_pivot(self, st: FrameState, y: np.ndarray) -> np.ndarray:
        """The step ``y`` in :meth:`_pivot_map`'s variables -> the solve's variables, the turn about the
        palm exact (:meth:`WristJoints.base_step`)."""
        x = y.copy()
        for s, wj in self._wrist.items():
            if wj is not None:
                i0 = self.world.x_slices[s].start
                x[i0 : i0 + 6] = wj.base_step(st.T[s], st.q[s], y[i0 : i0 + 6])
        return x

    def _apply(self, st: FrameState, x: np.ndarray) -> None:
        w = self.world
        for s in w.sides:
            v = x[w.x_slices[s]]
            T = st.T[s].copy()
            T[:3, 3] += v[:3]
            T[:3, :3] = T[:3, :3] @ rotvec_to_matrix(v[3:6])
            st.T[s] = T
            prob = self.problems[s]
            dofs = w.dofs[s]
            st.q[s][dofs] = np.clip(st.q[s][dofs] + v[6:], prob.lower[dofs], prob.upper[dofs])

    @staticmethod
    def correction(st: FrameState, anchor: FrameState, dofs: Mapping) -> dict:
        out = {}
        for s in st.T:
            dp = st.T[s][:3, 3] - anchor.T[s][:3, 3]
            dr = matrix_to_rotvec(anchor.T[s][:3, :3].T @ st.T[s][:3, :3])
            out[s] = (dp, dr, st.q[s][dofs[s]] - anchor.q[s][dofs[s]])
        return out

    @property
    def _wrist_smoothness(self) -> float:
        """The smoothness term's weight on a wrist's change of correction per frame, per metre (translation) or radian
        (rotation) squared: 1 cm of it costs ``w_smooth``."""
        return self.options.w_smooth / 1e-4

    @property
    def _joint_smoothness(self) -> float:
        """The smoothness term's weight per joint: 0.1 rad of a joint's change of correction per frame costs what 1 mm
        of a wrist's does, and a step of 0.3 rad what about 1 mm of a touching pair's contact error does. At a tenth of
        that (before 2026-12-05) the joints stepped where a contact began, for a third of a millimetre of it
        (``benchmarks/bimanual_interaction.py``'s joint acceleration; ``benchmarks/RESULTS.md``)."""
        return self.options.w_smooth / 1e-2 * 1e-2

    @property
    def intra_margin_m(self) -> float:
        """Pairs within one hand are listed below this distance (the apart term's, above the robot
        contact distance's exit threshold), in the solve, the gate and the measurements alike."""
        return self.options.apart_m

    @property
    def finger_margin_m(self) -> float:
        """Pairs within one hand of which neither geom is a part's (a fingertip, the palm) are listed below this
        distance (:meth:`.world.TwoHandWorld.contacts`): no term but the non-penetration constraint acts on them."""
        return self.options.finger_margin_m

    def record(self, c, t: int, out: dict) -> float:
        """Store frame ``t``'s measurements from contacts ``c`` into ``out`` (see :mod:`.measure`). Returns the
        smallest distance across the hands in ``c`` (metres; inf where none is within the margin)."""
        w = self.world
        if len(c.dist) == 0:
            return np.inf
        _, out["pair_distance"][t] = self._pair_rows(c)
        cross = w.geom_side[c.geom[:, 0]] != w.geom_side[c.geom[:, 1]]
        closest = float(c.dist[cross].min()) if cross.any() else np.inf
        out["hand_hand"][t] = max(0.0, -closest)
        if (~cross).any():
            out["self"][t] = max(0.0, -float(c.dist[~cross].min()))
        return closest

    # -- one frame, offline and streaming -------------------------------------------------
    def _shape_terms(self, s: str, qs: np.ndarray, ref: np.ndarray, weights: np.ndarray | None, q_anchor: np.ndarray):
        """The side's shape objective's gradient and Gauss-Newton Hessian over its solved dofs at ``qs``; in
        the palm frame for a hand with wrist joints (:mod:`.palm`; ``q_anchor``: the per-hand solution)."""
        wj = self._wrist[s]
        if wj is not None:
            ref = wj.shape_reference(qs, q_anchor, ref)
        _, g, Hgn, _ = self.problems[s].data_terms(qs[None], ref, weights)
        sel = self._free_pos[s]
        g, Hgn = (g[0], Hgn[0]) if sel is None else (g[0][sel[0]], Hgn[0][sel[1]])
        if wj is not None:
            wj.drop(g, Hgn)
        return g, Hgn

    def _gated(self, anchor: FrameState, corr: dict | None, touching: np.ndarray):
        """``anchor`` with correction ``corr`` (None: none) applied, and the gate's answer there: (state,
        :meth:`needs_solve`'s reason or None, contacts)."""
        st = anchor.copy()
        if corr is not None:
            self._apply(st, np.concatenate([np.concatenate(corr[s]) for s in self.world.sides]))
        need, c = self.needs_solve(st, touching)
        return st, need, c

    def _refine_frame(self, anchor: FrameState, shape_terms: Callable, touching: np.ndarray, carry: Carry | None,
                      iterations: int, want_contacts: bool = True, reach: bool = True, deadline: float | None = None):
        """One frame from the per-hand solution ``anchor``, warm-started with the previous frame's
        correction (``carry``), solved again from the previous result where that ends deeper in penetration
        (the module docstring's guarantee). Returns (state, stats or None when the gate skipped the frame,
        the :class:`Carry` for the next frame, the contacts at the returned state, None when not
        ``want_contacts`` and not at hand). Past ``deadline`` (``time.perf_counter()`` seconds) the solve
        stops, and instead of solving again the previous result is the result."""
        w = self.world
        corr = carry.correction if carry is not None else None
        untangle = False
        if corr is not None and not (touching & self._inter).any():
            start, faded, need, c, untangle = self._fade_frame(anchor, corr, touching, shape_terms)
            if untangle:  # one SQP step a frame, from the wrists' fade: the fade goes on from where it leads
                budget, iterations, corr = iterations, 1, faded
            if need is None:
                stats = None if faded is None else {"iterations": 0, "min_distance": min_distance(c), "converged": True,
                                                    "fell_back": False, "late": False, "gate": "fade"}  # fmt: skip
                return start, stats, Carry(faded, start, min_distance(c)), c
        else:
            start, need, c = self._gated(anchor, corr, touching)  # warm start: the previous frame's correction
            if need is None:
                return anchor, None, Carry(None, anchor, min_distance(c)), c
        st, stats = self.solve_frame(start, anchor, shape_terms, corr, touching, iterations, c, reach, deadline)
        if untangle and self._false_touch(stats.get("contacts"), touching):
            # the one step left a pair within a hand in contact where the human's is apart (LEAP's thumb and index
            # tips, one frame at a time, as interlocked fingers part: a robot contact event of its own): the frame
            # takes the whole solve from there
            spent = stats["iterations"]
            st, stats = self.solve_frame(st, anchor, shape_terms, corr, touching, budget, None, reach, deadline)
            stats["iterations"] += spent
        if carry is not None and deepens(stats["min_distance"], carry.min_distance, self.options.clearance_m):
            # the warm start led somewhere deeper than the previous result: solve again from that result, or out
            # of time, keep it
            spent = stats["iterations"]
            if deadline is not None and time.perf_counter() >= deadline:
                st, stats = carry.result.copy(), {**stats, "min_distance": carry.min_distance, "contacts": None}
            else:
                st, stats = self.solve_frame(carry.result.copy(), anchor, shape_terms, corr, touching, iterations,
                                             None, reach, deadline)
            stats["iterations"] += spent
            stats["restarted"] = True
        if reach and corr is not None and stats["missed"]:
            # pairs the human touches are still apart: the warm start can lead into a local minimum (the two hands'
            # fingers jammed side by side, the palms 1 cm apart). Solved again from the per-hand solution, the
            # result is kept where it brings more of those pairs into contact and is no deeper in penetration
            spent = stats["iterations"]
            st2, stats2 = self.solve_frame(anchor.copy(), anchor, shape_terms, corr, touching, iterations, None, reach,
                                           deadline)  # fmt: skip
            if stats2["missed"] < stats["missed"] and not deepens(stats2["min_distance"], stats["min_distance"],
                                                                   self.options.clearance_m):  # fmt: skip
                st, stats = st2, {**stats2, "cold": True}
            stats["iterations"] = spent + stats2["iterations"]
        stats["gate"] = need
        stats["untangle"] = untangle
        c = stats.pop("contacts", None)
        if c is None and want_contacts:
            w.set_state(st.T, st.q)
            c = w.contacts(self.intra_margin_m, self.finger_margin_m)
        return st, stats, Carry(self.correction(st, anchor, w.dofs), st, stats["min_distance"]), c

    def step(self, T_world_base: Mapping[str, np.ndarray], q: Mapping[str, np.ndarray], ref: Mapping,
             touching: np.ndarray) -> tuple[dict, dict, dict | None]:
        """Streaming: one frame, warm-started from the previous call's correction (:meth:`reset_stream`
        forgets it). ``T_world_base``: ``{side: (4, 4)}`` and ``q``: ``{side: (D,)}`` the per-hand
        solution of this frame; ``ref``: ``{side: (ref (1, K, 3), weights (1, K) or None)}``; ``touching``
        (P,) the human's contacts now (:class:`HumanContactTracker`). Returns the new poses and dofs, and
        the solve's stats (None when the gate kept the per-hand solution)."""
        budget, carry = self.options.stream_budget_s, getattr(self, "_stream_carry", None)
        # no limit without a previous result to fall back on (the stream's first frame)
        deadline = None if budget is None or carry is None else time.perf_counter() + budget
        anchor = FrameState({s: np.asarray(T_world_base[s], dtype=np.float64) for s in self.world.sides},
                            {s: np.asarray(q[s], dtype=np.float64).copy() for s in self.world.sides})

        def shape_terms(s, qs):
            return self._shape_terms(s, qs, ref[s][0], ref[s][1], anchor.q[s])

        st, stats, self._stream_carry, _ = self._refine_frame(anchor, shape_terms, np.asarray(touching, dtype=bool), carry,
                                                               self.options.stream_iterations, want_contacts=False,
                                                               reach=False, deadline=deadline)
        return st.T, st.q, stats

    def reset_stream(self) -> None:
        """Forget the streaming warm start (a new motion begins)."""
        self._stream_carry = None

    # -- offline -------------------------------------------------------------------------
    def refine_sequence(self, T_world_base: Mapping[str, np.ndarray], q: Mapping[str, np.ndarray],
                        ref: Mapping, touching: np.ndarray, progress: Callable[[int], None] | None = None,
                        fps: float | None = None, start: Carry | None = None) -> tuple[dict, dict, dict]:
        """Refine a whole sequence in time order (warm start: the previous frame's correction).

        T_world_base: ``{side: (T, 4, 4)}``, q: ``{side: (T, D)}`` the per-hand solution; ref: ``{side:
        (ref (T, K, 3), weights (T, K) or None)}`` the per-hand objective's references; touching (T, P).
        With ``fps``, the approach (the look-ahead offline has): where the per-hand solution leaves a pair apart
        (:data:`.approach.NEAR_FACTOR` ``* apart_m``) at the first frame of its human contact, the ``approach_s`` before it pull the
        pair within a gap that ramps (a smoothstep) from its gap at the window's start down to ``apart_m``, where the
        apart term holds it until the contact begins (a one-sided pull: a pair closing in faster is not held
        back). Without it the contact term switches on at that frame and the joints step shut there (Allegro
        pinch: ``tests/test_interaction.py::test_a_pinch_is_approached_before_it_begins``). A pair that other parts
        of the hands hold back later in its window gets its approach from there (:meth:`_approach_gaps`).
        Returns new poses, new dofs, and per-frame stats (``solved``: the bimanual solve ran, ``gate``: why
        the frame left the per-hand result (:meth:`needs_solve`'s reasons, ``'fade'``, or ``''`` where it did
        not), ``iterations``, ``converged``, ``second_start``: the result is the second start's, from the
        per-hand solution (:meth:`_refine_frame`), ``untangled``: a fading frame's one SQP step for fingers that
        would pass through each other (:meth:`_fade_frame`), ``seconds``, and ``measured``: the measurements of
        :func:`.measure.measure_frames` at the result, taken in the same pass). ``start``: what the frame before the
        first left (:class:`Carry`; None: the sequence starts there).
        """
        w = self.world
        T = next(iter(q.values())).shape[0]
        out_T = {s: np.array(v, dtype=np.float64, copy=True) for s, v in T_world_base.items()}
        out_q = {s: np.array(v, dtype=np.float64, copy=True) for s, v in q.items()}
        solved = np.zeros(T, dtype=bool)
        iters = np.zeros(T, dtype=np.int32)
        conv = np.ones(T, dtype=bool)
        gate = np.full(T, "", dtype=object)
        second = np.zeros(T, dtype=bool)
        untangled = np.zeros(T, dtype=bool)
        pulled = np.zeros(T, dtype=bool)
        steps: list[int] = []  # frames whose joints stepped: second starts, and frames that left the per-hand result
        carry = start  # what the frame before the first left (a chunk continued from another: .chunks)
        measured = {"pair_distance": np.full((T, len(self.pairs)), np.inf), "hand_hand": np.zeros(T), "self": np.zeros(T)}
        window = int(round(self.options.approach_s * fps)) if fps else 0
        ahead = frames_to_onset(touching, window)
        approach = np.full((len(self.pairs), 2), np.nan)  # per pair: the gap its approach ramps from, frames to go there
        closest = np.inf  # the previous result's smallest distance across the hands (record's)
        t0 = time.perf_counter()

        for t in range(T):
            anchor = FrameState({s: out_T[s][t] for s in w.sides}, {s: out_q[s][t] for s in w.sides})
            self.approach = self._approach_gaps(t, ahead, window, approach, out_T, out_q, T_world_base, q, closest)

            def shape_terms(s, qs, t=t, anchor=anchor):
                return self._shape_terms(s, qs, ref[s][0][t : t + 1], None if ref[s][1] is None else ref[s][1][t : t + 1],
                                         anchor.q[s])  # fmt: skip

            st, stats, carry, c = self._refine_frame(anchor, shape_terms, touching[t], carry, self.options.max_iterations)
            if stats is not None:
                gate[t] = stats["gate"]
                solved[t], iters[t], conv[t] = gate[t] != "fade", stats["iterations"], stats["converged"]
                second[t] = stats.get("cold", False)
                untangled[t] = stats.get("untangle", False)
                for s in w.sides:
                    out_T[s][t], out_q[s][t] = st.T[s], st.q[s]
                if second[t] or self.stepped(out_q, t):
                    steps.append(t)
            closest = self.record(c, t, measured)  # across the hands, for the next frame's approach
            if progress:
                progress(1)
        self.approach = np.full(len(self.pairs), np.nan)
        for t in steps:  # once every frame is solved (no later frame depends on the ones before a step: its warm start is the step's)
            pulled[self._pull_back(t, T_world_base, q, ref, touching, out_T, out_q, measured, bool(second[t]))] = True
            if not second[t]:
                pulled[self._ramp_into(t, q, touching, out_T, out_q, measured)] = True
        info = {"solved": solved, "gate": gate, "iterations": iters, "converged": conv, "second_start": second,
                "untangled": untangled, "pulled_back": pulled,
                "seconds": time.perf_counter() - t0, "measured": measured}
        return out_T, out_q, info
