"""The per-frame LM step of the uncoupled solves, compiled with numba (:func:`newton_kernel`), and
the small dense solvers it uses. Same step as :func:`handx_robot.retarget.solver.newton.newton_step_numpy`
(tests compare them); None without numba (or with ``HANDX_NUMBA=0``): the numpy step is used."""

from __future__ import annotations

import numpy as np
from handx_robot.retarget.kinematics import HAVE_FUSED

__all__ = ["newton_kernel", "MAX_STEP"]

#: Largest joint change per LM iteration (rad or m).
MAX_STEP = 0.5


def _chol(M: np.ndarray, Lo: np.ndarray) -> bool:
    """Cholesky ``M = Lo Lo^T`` (m, m) into ``Lo``; False where ``M`` is not positive definite."""
    m = M.shape[0]
    for j in range(m):
        s = M[j, j]
        for k in range(j):
            s -= Lo[j, k] * Lo[j, k]
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        Lo[j, j] = d
        for i in range(j + 1, m):
            t = M[i, j]
            for k in range(j):
                t -= Lo[i, k] * Lo[j, k]
            Lo[i, j] = t / d
    return True


def _chol_solve(Lo: np.ndarray, rhs: np.ndarray, out: np.ndarray) -> None:
    """``out = (Lo Lo^T)^-1 rhs``."""
    m = Lo.shape[0]
    for i in range(m):
        t = rhs[i]
        for k in range(i):
            t -= Lo[i, k] * out[k]
        out[i] = t / Lo[i, i]
    for i in range(m - 1, -1, -1):
        t = out[i]
        for k in range(i + 1, m):
            t -= Lo[k, i] * out[k]
        out[i] = t / Lo[i, i]


def _lu_solve(M: np.ndarray, rhs: np.ndarray, W: np.ndarray, out: np.ndarray) -> None:
    """``out = M^-1 rhs`` by Gaussian elimination with partial pivoting (``W`` (m, m) scratch);
    a singular ``M`` gives a non-finite ``out`` (the caller rejects that step)."""
    m = M.shape[0]
    for i in range(m):
        out[i] = rhs[i]
        for j in range(m):
            W[i, j] = M[i, j]
    for k in range(m):
        piv = k
        for i in range(k + 1, m):
            if abs(W[i, k]) > abs(W[piv, k]):
                piv = i
        if piv != k:
            for j in range(m):
                W[k, j], W[piv, j] = W[piv, j], W[k, j]
            out[k], out[piv] = out[piv], out[k]
        d = W[k, k]
        for i in range(k + 1, m):
            f = W[i, k] / d
            for j in range(k, m):
                W[i, j] -= f * W[k, j]
            out[i] -= f * out[k]
    for i in range(m - 1, -1, -1):
        t = out[i]
        for j in range(i + 1, m):
            t -= W[i, j] * out[j]
        out[i] = t / W[i, i]


def _solve_spd(M: np.ndarray, rhs: np.ndarray, Lo: np.ndarray, out: np.ndarray) -> None:
    """``out = M^-1 rhs``: Cholesky, LU where ``M`` is not positive definite (``Lo`` scratch)."""
    if _chol(M, Lo):
        _chol_solve(Lo, rhs, out)
    else:
        _lu_solve(M, rhs, Lo, out)


def _newton_kernel_py(H_d, T_d, h_t, g, qf, lo, hi, mu, max_step):
    """Per-frame version of :func:`~handx_robot.retarget.solver.newton.newton_step_numpy` (uncoupled
    frames), compiled with numba. Returns step (N, m), predicted decrease (N,), non-finite steps (N,).

    One long function on purpose: the phases of a frame's step (active set, Newton or Gauss-Newton
    block, damped solve, projected second phase, trust region) share scratch arrays allocated once
    for all frames, and numba compiles them into one loop; the comments mark the phases.
    """
    N, m = qf.shape
    step = np.zeros((N, m))
    pred = np.full(N, np.inf)
    bad = np.zeros(N, dtype=np.bool_)
    Hn = np.empty((m, m))
    Ha = np.empty((m, m))
    A = np.empty((m, m))
    Lo = np.zeros((m, m))
    ga = np.empty(m)
    x = np.empty(m)
    keep = np.empty(m, dtype=np.bool_)
    over = np.empty(m, dtype=np.bool_)
    fixed = np.empty(m)
    g2 = np.empty(m)
    for f in range(N):
        for i in range(m):
            act = (qf[f, i] <= lo[i] + 1e-10 and g[f, i] > 0) or (qf[f, i] >= hi[i] - 1e-10 and g[f, i] < 0)
            keep[i] = not act
            ga[i] = 0.0 if act else g[f, i]
        # exact Newton where its (active-set reduced) Hessian is positive definite, else Gauss-Newton
        for i in range(m):
            for j in range(m):
                if keep[i] and keep[j]:
                    Hn[i, j] = H_d[f, i, j] + T_d[f, i, j] + (h_t[f] if i == j else 0.0)
                else:
                    Hn[i, j] = 1.0 if i == j else 0.0
        newton_ok = _chol(Hn, Lo)
        if newton_ok:
            # convergence test: decrease of a Newton step on the frame's own block, 0.5 g^T H^-1 g
            _chol_solve(Lo, ga, x)
            pr = 0.0
            for i in range(m):
                pr += ga[i] * x[i]
            pred[f] = 0.5 * pr if np.isfinite(pr) else np.inf
        for i in range(m):
            for j in range(m):
                if keep[i] and keep[j]:
                    Ha[i, j] = H_d[f, i, j] + (h_t[f] if i == j else 0.0) + (T_d[f, i, j] if newton_ok else 0.0)
                else:
                    Ha[i, j] = 1.0 if i == j else 0.0
                A[i, j] = Ha[i, j]
            A[i, i] += mu[f] * (Ha[i, i] + 1e-9)
        _solve_spd(A, ga, Lo, x)
        finite = True
        for i in range(m):
            if not np.isfinite(x[i]):
                finite = False
        if not finite:
            bad[f] = True
            continue  # step 0
        any_over = False
        for i in range(m):
            s_ = -x[i]
            over[i] = qf[f, i] + s_ < lo[i] - 1e-12 or qf[f, i] + s_ > hi[i] + 1e-12
            if over[i]:
                any_over = True
                fixed[i] = lo[i] - qf[f, i] if qf[f, i] + s_ < lo[i] else hi[i] - qf[f, i]
            else:
                fixed[i] = 0.0
            step[f, i] = s_
        if any_over:
            # joints the step pushes through a limit are held there and the others re-solved
            for i in range(m):
                fr = keep[i] and not over[i]
                t = 0.0
                if fr:
                    t = ga[i]
                    for j in range(m):
                        t += Ha[i, j] * fixed[j]
                g2[i] = t
                for j in range(m):
                    if fr and keep[j] and not over[j]:
                        Hn[i, j] = A[i, j]
                    else:
                        Hn[i, j] = 1.0 if i == j else 0.0
            _solve_spd(Hn, g2, Lo, x)
            for i in range(m):
                step[f, i] = -x[i] if (keep[i] and not over[i]) else fixed[i]
        big = 0.0
        for i in range(m):
            big = max(big, abs(step[f, i]))
        if big > max_step:
            sc = max_step / big
            for i in range(m):
                step[f, i] *= sc
    return step, pred, bad


if HAVE_FUSED:
    import numba as _numba

    _chol = _numba.njit(cache=True, nogil=True)(_chol)
    _chol_solve = _numba.njit(cache=True, nogil=True)(_chol_solve)
    _lu_solve = _numba.njit(cache=True, nogil=True)(_lu_solve)
    _solve_spd = _numba.njit(cache=True, nogil=True)(_solve_spd)
    newton_kernel = _numba.njit(cache=True, nogil=True)(_newton_kernel_py)
else:  # pragma: no cover - numba missing: the batched numpy step
    newton_kernel = None
