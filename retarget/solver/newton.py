"""The Newton / Levenberg-Marquardt iteration of the offline solver (:func:`lm`) on a batch of frames,
and its step: batched numpy (:func:`newton_step_numpy`, also the coupled method's block-tridiagonal
solve) or compiled per frame (:mod:`.step_kernel`). Units: radians / metres."""

from __future__ import annotations

import numpy as np
from handx_robot.retarget.solver.options import SolverOptions
from handx_robot.retarget.solver.problem import HandProblem
from handx_robot.retarget.solver.step_kernel import MAX_STEP, newton_kernel

__all__ = ["lm", "newton_step_numpy", "MAX_STEP"]


def lm(
    prob: HandProblem,
    q: np.ndarray,
    ref: np.ndarray,
    weight: np.ndarray | None,
    lam: float,
    iters: int,
    opts: SolverOptions,
    prev: np.ndarray | None,
    nxt: np.ndarray | None,
    sequence: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Projected LM on a batch. ``sequence``: frames are consecutive (the temporal term couples them,
    ``prev``/``nxt`` (n,) are the fixed frames before/after the batch); otherwise each frame is
    regularised toward fixed neighbours ``prev`` and ``nxt`` ((n,) or (N, n), NaN rows = none).
    Returns q, data cost, converged, iterations.
    """
    N, n = q.shape
    free = prob.free
    lo, hi = prob.lower[free], prob.upper[free]
    coupled = sequence and lam > 0 and N > 1
    cost_d, g_d, H_d, T_d = prob.data_terms(q, ref, weight)
    mu = np.full(N, opts.damping)
    done = np.zeros(N, dtype=bool)
    it_count = np.zeros(N, dtype=np.int64)
    pred = np.full(N, np.inf)
    for it in range(iters + 1):
        qf = q[:, free]
        c_t, g_t, h_t = _temporal(qf, free, lam, prev, nxt, sequence)
        g = g_d + g_t
        if newton_kernel is not None and not coupled and T_d is not None:
            # newton_step_numpy's per-frame step (active set, Newton / Gauss-Newton choice, LM damping,
            # projected second phase, trust region), compiled: one pass instead of many batched calls
            step, pred, bad_step = newton_kernel(H_d, T_d, h_t, g, qf, lo, hi, mu, MAX_STEP)
        else:
            step, pred, bad_step = newton_step_numpy(H_d, T_d, h_t, g, qf, lo, hi, mu, lam, coupled)
        done = (pred < opts.ftol) & (pred >= 0)
        if done.all() or it == iters:
            break
        q_try = q.copy()
        q_try[:, free] = np.clip(qf + step, lo, hi)
        q_try, (cd_try, gd_try, Hd_try, Td_try) = _trial_terms(
            prob, q, q_try, ref, weight, done, coupled, (cost_d, g_d, H_d, T_d)
        )
        ct_try, _, _ = _temporal(q_try[:, free], free, lam, prev, nxt, sequence)
        accept = (cd_try + ct_try <= cost_d + c_t + 1e-15) & np.isfinite(cd_try)
        if coupled:  # one step for the whole coupled system
            ok_all = bool(np.all(np.isfinite(cd_try))) and (cd_try + ct_try).sum() <= (cost_d + c_t).sum() + 1e-15
            accept = np.full(N, ok_all)
            mu = np.full(N, mu.max() if not ok_all else mu.min())
        q = np.where(accept[:, None], q_try, q)
        cost_d = np.where(accept, cd_try, cost_d)
        g_d = np.where(accept[:, None], gd_try, g_d)
        H_d = np.where(accept[:, None, None], Hd_try, H_d)
        if T_d is not None:
            T_d = np.where(accept[:, None, None], Td_try, T_d)
        accept &= ~bad_step
        mu = np.where(accept, np.maximum(mu * 0.3, 1e-7), np.minimum(mu * 10.0, 1e6))
        it_count += ~done
    converged = (pred < opts.ftol) & (pred >= 0) & np.isfinite(cost_d)
    return q, cost_d, converged, it_count


def _temporal(qf: np.ndarray, free: np.ndarray, lam: float, prev, nxt, sequence: bool):
    """:func:`lm`'s temporal term at the solved dofs ``qf`` (N, m): cost (N,), gradient (N, m) and
    the diagonal of its Hessian (N,) (see :func:`lm` for ``prev``, ``nxt``, ``sequence``)."""
    N = qf.shape[0]
    g = np.zeros_like(qf)
    c = np.zeros(N)
    cnt = np.zeros(N)
    if sequence:
        left = np.concatenate([prev[None, free] if prev is not None else qf[:1], qf[:-1]])
        has_left = np.ones(N, dtype=bool)
        has_left[0] = prev is not None
        right = np.concatenate([qf[1:], nxt[None, free] if nxt is not None else qf[-1:]])
        has_right = np.ones(N, dtype=bool)
        has_right[-1] = nxt is not None
        for nb, has in ((left, has_left), (right, has_right)):
            dq = (qf - nb) * has[:, None]
            c += lam * (dq * dq).sum(1)
            g += 2 * lam * dq
            cnt += has
    elif nxt is None and prev is not None and prev.ndim == 1:  # streaming: the previous frame
        dq = qf - prev[free]
        c += lam * (dq * dq).sum(1)
        g += 2 * lam * dq
        cnt += 1
    else:  # fixed neighbours: (n,) for all frames or (N, n) per frame, NaN rows = none
        for nb in (prev, nxt):
            if nb is None:
                continue
            nbf = np.broadcast_to(nb[..., free], qf.shape)
            has = np.isfinite(nbf[:, 0])
            dq = np.where(has[:, None], qf - np.nan_to_num(nbf), 0.0)
            c += lam * (dq * dq).sum(1)
            g += 2 * lam * dq
            cnt += has
    return c, g, 2 * lam * cnt


def _trial_terms(prob: HandProblem, q, q_try, ref, weight, done, coupled: bool, terms: tuple):
    """Data terms (cost, gradient, Gauss-Newton, second-order) at the trial point ``q_try``.

    Uncoupled frames exit early: converged frames (``done``) keep their solution and ``terms``, and
    only the others are evaluated. Returns the trial point (converged rows reset) and its terms.
    """
    if coupled or not done.any():
        return q_try, prob.data_terms(q_try, ref, weight)
    cost_d, g_d, H_d, T_d = terms
    q_try[done] = q[done]
    sel = np.flatnonzero(~done)
    cd_s, gd_s, Hd_s, Td_s = prob.data_terms(q_try[sel], ref[sel], None if weight is None else weight[sel])
    cd_try, gd_try, Hd_try = cost_d.copy(), g_d.copy(), H_d.copy()
    cd_try[sel], gd_try[sel], Hd_try[sel] = cd_s, gd_s, Hd_s
    Td_try = None
    if T_d is not None:
        Td_try = T_d.copy()
        Td_try[sel] = Td_s
    return q_try, (cd_try, gd_try, Hd_try, Td_try)


def newton_step_numpy(H_d, T_d, h_t, g, qf, lo, hi, mu, lam, coupled):
    """One LM step of :func:`lm` for a batch (batched numpy; the coupled method's block-tridiagonal
    solve). Returns step (N, m), predicted decrease of a Newton step on each frame's own block (N,)
    (inf where the Newton block is not positive definite) and the frames whose step was not finite."""
    N, m = qf.shape
    eye = np.eye(m)
    H_gn = H_d + h_t[:, None, None] * eye
    # active set: at a limit with the gradient pushing outward -> frozen for this step
    act = ((qf <= lo + 1e-10) & (g > 0)) | ((qf >= hi - 1e-10) & (g < 0))
    g_a = np.where(act, 0.0, g)
    keep = ~act
    kk = keep[:, :, None] & keep[:, None, :]
    newton_ok = np.ones(N, dtype=bool)
    H = H_gn
    if T_d is not None:
        # exact Newton where its Hessian is positive definite (near a minimum), Gauss-Newton elsewhere
        Hn = (H_gn + T_d) * kk + act[:, :, None] * eye
        try:  # all positive definite (the common case near convergence): one batched Cholesky
            np.linalg.cholesky(Hn)
        except np.linalg.LinAlgError:
            newton_ok = np.linalg.eigvalsh(Hn)[:, 0] > 1e-10
        H = np.where(newton_ok[:, None, None], H_gn + T_d, H_gn)
    Ha = H * kk + act[:, :, None] * eye
    diag = np.einsum("nii->ni", Ha)
    A = Ha + (mu[:, None] * (diag + 1e-9))[:, :, None] * eye
    off = (keep[:-1] & keep[1:]) * (2 * lam) if coupled else None  # (N-1, m) coupling weights
    step = _step(A, off, g_a)
    # convergence, per frame with its neighbours held fixed: the decrease a Newton step on the
    # frame's own block would bring, 0.5 g^T H_t^-1 g (needs a positive definite Newton block)
    own = -np.linalg.solve(Ha + 1e-12 * eye, g_a[..., None])[..., 0]
    pred = 0.5 * np.einsum("ni,ni->n", g_a, -own)
    pred = np.where(np.isfinite(pred) & newton_ok, pred, np.inf)
    bad_step = ~np.all(np.isfinite(step), axis=1)
    step = np.where(bad_step[:, None], 0.0, step)
    # second phase: joints the step would push through a limit are held at the limit and the
    # others re-solved (projected Newton), instead of clamping a direction computed without them
    over = (qf + step < lo - 1e-12) | (qf + step > hi + 1e-12)
    if over.any():
        fixed = np.where(qf + step < lo, lo - qf, hi - qf) * over
        free2 = ~over & keep
        g2 = np.where(free2, g_a + (Ha @ fixed[..., None])[..., 0], 0.0)
        A2 = A * (free2[:, :, None] & free2[:, None, :]) + (~free2)[:, :, None] * eye
        off2 = off * (free2[:-1] & free2[1:]) if coupled else None
        step = np.where(free2, _step(A2, off2, g2), fixed)
    # trust region in joint space: at most MAX_STEP rad (or m) per joint and iteration
    big = np.abs(step).max(1, initial=0.0)
    if coupled:
        big = np.full(N, big.max(initial=0.0))
    step = step * np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-12))[:, None]
    return step, pred, bad_step




def _step(A: np.ndarray, off: np.ndarray | None, g: np.ndarray) -> np.ndarray:
    """LM step ``-A^-1 g``; with ``off`` the frames are coupled (block-tridiagonal system)."""
    if off is None:
        return -np.linalg.solve(A, g[..., None])[..., 0]
    return _banded_solve(A, off, -g)


_TPC = None


def blas_single_thread():
    """A context in which numpy's BLAS runs on one thread (threadpoolctl). The solvers' matrices are small: more
    threads only spin (the bimanual solve of the dex-urdf Shadow kept a second core busy for nothing, and left it to
    no second process: benchmarks/RESULTS.md, the end-to-end section)."""
    global _TPC
    if _TPC is None:
        from threadpoolctl import ThreadpoolController

        _TPC = ThreadpoolController()
    return _TPC.limit(limits=1, user_api="blas")


def _banded_solve(A: np.ndarray, off: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the SPD block-tridiagonal system with diagonal blocks ``A`` (N, m, m), off-diagonal
    blocks ``-diag(off[t])`` (N-1, m) between frames t and t+1, right-hand side (N, m)."""
    from scipy.linalg import solveh_banded

    N, m = rhs.shape
    I, Jj = np.triu_indices(m)
    ab = np.zeros((m + 1, N * m))
    cols = np.arange(N)[:, None] * m + Jj[None]
    ab[np.broadcast_to(m + I - Jj, cols.shape), cols] = A[:, I, Jj]
    ab[0, m:] = -off.reshape(-1)
    try:
        # one BLAS thread: LAPACK's banded Cholesky of these narrow bands can be much slower with several
        # (benchmarks/retarget_speed.py --coupled compares both; figures: benchmarks/RESULTS.md)
        with blas_single_thread():
            return solveh_banded(ab, rhs.reshape(-1), lower=False, check_finite=False).reshape(N, m)
    except np.linalg.LinAlgError:  # not positive definite (degenerate input): per-frame fallback
        return np.linalg.solve(A, rhs[..., None])[..., 0]

