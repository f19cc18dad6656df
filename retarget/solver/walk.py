"""The offline solver's default method (:func:`walk`): the frames of a clip solved one after the other, each
warm-started from and regularised toward its predecessor's solution (``lambda |q_t - q_{t-1}|^2``, the first
frame toward its start). That is dex-retargeting's objective and the streaming solver's, exactly, with no
segment boundary where the joints could jump.

One frame at a time is fast only compiled: :func:`_walk_kernel_py` runs :func:`~.newton.lm`'s iteration for one
frame (the compiled objective pass :func:`handx_robot.retarget.kinematics.fused.fused_terms` and step
:func:`.step_kernel.newton_kernel`) over all the frames in one call. Without numba (or with ``HANDX_NUMBA=0``) the
same walk calls :func:`~.newton.lm` frame by frame, the reference the tests compare the kernel to (same iterates).

numba's cache does not see changes to the kernels this one calls: after editing ``fused.py`` or
``step_kernel.py``, touch this file (or clear ``__pycache__``) so that the walk is compiled again.

Units: radians / metres. ``ref``: (N, K, 3) the problem's reference; ``w``: (N, K) DexPilot weights or None.
"""

from __future__ import annotations

import numpy as np
from handx_robot.retarget.kinematics.fused import HAVE_FUSED, _fused_kernel
from handx_robot.retarget.solver.newton import lm
from handx_robot.retarget.solver.options import SolverOptions
from handx_robot.retarget.solver.problem import HandProblem
from handx_robot.retarget.solver.step_kernel import MAX_STEP, newton_kernel

__all__ = ["walk"]


def walk(
    prob: HandProblem, ref: np.ndarray, w: np.ndarray | None, lam: float, opts: SolverOptions, start: np.ndarray,
    iters: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve N frames in order: frame t from frame t-1's solution, its temporal term toward it; frame 0 from
    ``start`` (n,), toward it (dex-retargeting's start for a clip's first frame, the previous chunk's last
    frame after, the previous frame's solution when streaming). At most ``iters`` LM iterations per frame
    (default ``opts.max_iterations``). Returns q (N, n), converged (N,), iterations (N,), data objective (N,)."""
    start = np.asarray(start, dtype=np.float64)
    iters = opts.max_iterations if iters is None else int(iters)
    if prob._fplan is not None and newton_kernel is not None:
        wk = prob.term_weights(ref.shape[0], w)
        free = prob.free.astype(np.int64)
        return _walk_kernel(
            np.ascontiguousarray(start), np.ascontiguousarray(ref, dtype=np.float64), np.ascontiguousarray(wk),
            float(prob.huber_delta), prob.type == "position", prob._fpos_t, prob._fpos_o, prob._fplan,
            np.ascontiguousarray(free), np.ascontiguousarray(prob.lower[free]), np.ascontiguousarray(prob.upper[free]),
            float(lam), iters, float(opts.ftol), float(opts.damping), MAX_STEP,
        )  # fmt: skip
    N = ref.shape[0]
    q = np.empty((N, start.shape[0]))
    conv = np.zeros(N, dtype=bool)
    its = np.zeros(N, dtype=np.int64)
    cost = np.empty(N)
    cur = start[None]
    for t in range(N):
        cur, c_d, c, it = lm(prob, cur, ref[t : t + 1], None if w is None else w[t : t + 1], lam, iters, opts,
                             cur[0].copy(), None, False)  # fmt: skip
        q[t], conv[t], its[t], cost[t] = cur[0], c[0], it[0], c_d[0]
    return q, conv, its, cost


def _walk_kernel_py(start, ref, wk, beta, elementwise, pos_t, pos_o, plan, free, lo, hi, lam, iters, ftol, damping,
                    max_step):  # fmt: skip
    """:func:`walk`, compiled: per frame, :func:`~.newton.lm`'s loop for a batch of one with the temporal term
    toward the previous frame (``lo``/``hi``: the limits of the solved dofs ``free``). One function so that
    numba compiles the walk into one loop; see :func:`~.newton.lm` for the steps."""
    N = ref.shape[0]
    n = start.shape[0]
    m = free.shape[0]
    q_out = np.empty((N, n))
    cost_out = np.empty(N)
    conv = np.zeros(N, dtype=np.bool_)
    its = np.zeros(N, dtype=np.int64)
    q = np.empty((1, n))
    q[0] = start
    q_try = np.empty((1, n))
    prev = np.empty(m)
    for i in range(m):
        prev[i] = start[free[i]]
    qf = np.empty((1, m))
    g = np.empty((1, m))
    h_t = np.full(1, 2.0 * lam)
    mu = np.empty(1)
    for t in range(N):
        cost, g_d, H_d, T_d = _fused_kernel(q, ref[t : t + 1], wk[t : t + 1], beta, elementwise, pos_t, pos_o, *plan,
                                            True)  # fmt: skip
        mu[0] = damping
        pred = np.inf
        n_it = 0
        for it in range(iters + 1):
            c_t = 0.0
            for i in range(m):
                qf[0, i] = q[0, free[i]]
                d = qf[0, i] - prev[i]
                c_t += lam * d * d
                g[0, i] = g_d[0, i] + 2.0 * lam * d
            step, pr, bad = newton_kernel(H_d, T_d, h_t, g, qf, lo, hi, mu, max_step)
            pred = pr[0]
            if (0.0 <= pred < ftol) or it == iters:
                break
            q_try[0] = q[0]
            for i in range(m):
                q_try[0, free[i]] = min(max(qf[0, i] + step[0, i], lo[i]), hi[i])
            c2, g2, H2, T2 = _fused_kernel(q_try, ref[t : t + 1], wk[t : t + 1], beta, elementwise, pos_t, pos_o,
                                           *plan, True)  # fmt: skip
            ct2 = 0.0
            for i in range(m):
                d = q_try[0, free[i]] - prev[i]
                ct2 += lam * d * d
            accept = np.isfinite(c2[0]) and c2[0] + ct2 <= cost[0] + c_t + 1e-15
            if accept:
                q[0] = q_try[0]
                cost, g_d, H_d, T_d = c2, g2, H2, T2
            if accept and not bad[0]:
                mu[0] = max(mu[0] * 0.3, 1e-7)
            else:
                mu[0] = min(mu[0] * 10.0, 1e6)
            n_it += 1
        conv[t] = 0.0 <= pred < ftol and np.isfinite(cost[0])
        q_out[t] = q[0]
        cost_out[t] = cost[0]
        its[t] = n_it
        for i in range(m):
            prev[i] = q[0, free[i]]
    return q_out, conv, its, cost_out


if HAVE_FUSED and newton_kernel is not None:
    import numba as _numba

    _walk_kernel = _numba.njit(cache=True, nogil=True)(_walk_kernel_py)
else:  # pragma: no cover - numba missing: walk() calls lm frame by frame
    _walk_kernel = None
