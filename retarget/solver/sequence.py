"""Offline: a whole sequence of frames in chunks (:func:`solve_sequence`), the convergence test of a
given solution (:func:`check_convergence`) and dex-retargeting's low-pass filter (:func:`low_pass`).

Human keypoints: (T, 21, 3) HandX order, metres, human wrist frame. Dofs: radians / metres.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from handx_robot.retarget.solver.newton import lm
from handx_robot.retarget.solver.options import SolveResult, SolverOptions
from handx_robot.retarget.solver.problem import HandProblem
from handx_robot.retarget.solver.walk import walk

from handx_robot.errors import MotionValueError

__all__ = ["solve_sequence", "check_convergence", "low_pass"]


def solve_sequence(
    prob: HandProblem,
    kp_wrist: np.ndarray,
    options: SolverOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> SolveResult:
    """Offline: retarget a whole sequence ``(T, 21, 3)`` (HandX order, human wrist frame) in chunks.

    Method 'sequential' (default): the frames one after the other, each from its predecessor's solution
    (:func:`.walk.walk`). Method 'coupled', per chunk: (1) coarse pass on every ``_COARSE_STRIDE``-th frame
    from dex-retargeting's start (mid-range), (2) all frames initialised by interpolating the coarse
    solution, solved together with the exact temporal coupling, (3) frames not yet converged polished
    with their neighbours held fixed (only those frames are evaluated).
    """
    opts = options or SolverOptions()
    kp = np.asarray(kp_wrist, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (21, 3):
        raise MotionValueError(f"keypoints must have shape (T, 21, 3), got {kp.shape}")
    if not np.all(np.isfinite(kp)):
        raise MotionValueError(f"keypoints have NaN/inf at frame {int(np.argwhere(~np.isfinite(kp))[0, 0])}")
    lam = prob.normal_delta if opts.temporal_weight is None else float(opts.temporal_weight)
    T = kp.shape[0]
    qs, conv, objs, its = [], [], [], []
    prev = None
    proj_state = None
    for s in range(0, T, opts.chunk_size):
        chunk = kp[s : s + opts.chunk_size]
        ref, w, proj_state = prob.reference(chunk, proj_state)
        solve = _solve_chunk_walk if opts.method == "sequential" else _solve_chunk
        q, c, it = solve(prob, ref, w, lam, opts, prev)
        objs.append(prob.data_terms(q, ref, w, need_grad=False)[0])
        qs.append(q)
        conv.append(c)
        its.append(it)
        prev = q[-1]
        if progress is not None:
            progress(len(chunk))
    q = np.concatenate(qs)
    return SolveResult(q, prob.model_qpos(q), np.concatenate(conv), np.concatenate(objs), np.concatenate(its))


#: Coarse pass stride and the iteration budget of the coupled fine pass.
_COARSE_STRIDE = 8
_FINE_ITERATIONS = 34


def _neighbours(q: np.ndarray, idx: np.ndarray, prev: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Fixed neighbours (before, after) of frames ``idx`` of ``q`` (NaN rows where there is none)."""
    N, n = q.shape
    before = np.full((len(idx), n), np.nan)
    after = np.full((len(idx), n), np.nan)
    has_b = idx > 0
    before[has_b] = q[idx[has_b] - 1]
    if prev is not None:
        before[~has_b] = prev
    has_a = idx < N - 1
    after[has_a] = q[idx[has_a] + 1]
    return before, after


def _solve_chunk_walk(prob, ref, w, lam, opts, prev):
    """Method 'sequential': the chunk's frames one after the other (:func:`.walk.walk`), from dex-retargeting's
    start (mid-range) for a clip's first frame, else from the previous chunk's last frame."""
    return walk(prob, ref, w, lam, opts, prob.initial_q(1)[0] if prev is None else prev)[:3]


def _solve_chunk(prob, ref, w, lam, opts, prev):
    """Coarse-to-fine LM on one chunk: every ``_COARSE_STRIDE``-th frame first, then all frames
    from the interpolated coarse solution, the temporal term coupling them exactly."""
    N = ref.shape[0]
    its = np.zeros(N, dtype=np.int64)
    sub = lambda a, i: None if a is None else a[i]  # noqa: E731
    if prev is None and N >= 4 * _COARSE_STRIDE:
        idx = np.unique(np.r_[np.arange(0, N, _COARSE_STRIDE), N - 1])
        qc, _, _, itc = lm(prob, prob.initial_q(len(idx)), ref[idx], sub(w, idx), lam, opts.max_iterations,
                           opts, None, None, True)  # fmt: skip
        q = np.empty((N, prob.tree.num_dof))
        t = np.arange(N)
        for k in range(q.shape[1]):
            q[:, k] = np.interp(t, idx, qc[:, k])
        its += int(itc.max())
    elif prev is not None:
        q = np.tile(prev, (N, 1))
    else:
        q = prob.initial_q(N)
    fine = min(_FINE_ITERATIONS, opts.max_iterations)
    q, _, conv, it = lm(prob, q, ref, w, lam, fine, opts, prev, None, True)
    its += it
    budget = opts.max_iterations - fine
    for _ in range(2):  # polish the few stragglers with their neighbours held fixed
        bad = np.flatnonzero(~conv)
        if len(bad) == 0 or budget <= 0:
            break
        before, after = _neighbours(q, bad, prev)
        k = max(budget // 2, 1)
        qb, _, _, itb = lm(prob, q[bad], ref[bad], sub(w, bad), lam, k, opts, before, after, False)
        q[bad] = qb
        its[bad] += itb
        budget -= k
        conv = lm(prob, q, ref, w, lam, 0, opts, prev, None, True)[2]
    return q, conv, its


def check_convergence(
    prob: HandProblem, q: np.ndarray, kp_wrist: np.ndarray, options: SolverOptions | None = None
) -> np.ndarray:
    """(N,) bool: is each frame of a solution ``q`` (N, n) a stationary point of our objective (the
    same test the solver applies)? Used to grade other solvers' output (dex-retargeting)."""
    opts = options or SolverOptions()
    lam = prob.normal_delta if opts.temporal_weight is None else float(opts.temporal_weight)
    ref, w, _ = prob.reference(np.asarray(kp_wrist, dtype=np.float64))
    q = np.clip(np.asarray(q, dtype=np.float64), prob.lower, prob.upper)
    before = np.concatenate([prob.initial_q(1), q[:-1]])  # dex-retargeting's one-sided temporal term
    return lm(prob, q, ref, w, lam, 0, opts, before, None, False)[2]


def low_pass(qpos: np.ndarray, alpha: float, y0: np.ndarray | None = None) -> np.ndarray:
    """dex-retargeting's LPFilter: ``y_t = y_{t-1} + alpha (x_t - y_{t-1})``, ``y_0 = x_0``; (T, J)."""
    if not 0 <= alpha < 1:
        return qpos
    out = np.empty_like(qpos)
    y = qpos[0] if y0 is None else y0
    for t in range(qpos.shape[0]):
        y = y + alpha * (qpos[t] - y) if (t > 0 or y0 is not None) else qpos[0]
        out[t] = y
    return out

