"""The compiled (numba) objective pass of retargeting: FK, point Jacobians, the objective's value,
gradient, Gauss-Newton Hessian and second-order kinematic term of N frames, one pass per frame.

Same mathematics as :meth:`KinematicTree.forward` + :meth:`~KinematicTree.point_jacobian` +
:meth:`~KinematicTree.hessian_term` + :meth:`handx_robot.retarget.solver.HandProblem.data_terms`
(tests compare them to 1e-9). The batched numpy path stays the fallback when numba is not installed
or the environment sets ``HANDX_NUMBA=0``; how much faster the compiled pass is:
``benchmarks/RESULTS.md`` (``benchmarks/retarget_speed.py``). Compiled once per machine, cached in
``__pycache__``. Units: metres, radians.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from handx_robot.retarget.kinematics.tree import REVOLUTE, KinematicTree

__all__ = ["HAVE_FUSED", "fused_plan", "fused_terms"]

log = logging.getLogger(__name__)

try:  # pragma: no cover - exercised through HandProblem
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None

#: True when the compiled kernels are used (numba importable and HANDX_NUMBA is not "0").
HAVE_FUSED = _numba is not None and os.environ.get("HANDX_NUMBA", "1") != "0"
if _numba is None:
    log.warning("numba is not installed: retargeting uses the slower batched numpy path; pip install numba")
elif not HAVE_FUSED:
    log.info("HANDX_NUMBA=0: retargeting uses the batched numpy path")


def fused_plan(tree: KinematicTree, points: np.ndarray, free: np.ndarray) -> tuple:
    """Constant arrays for :func:`fused_terms` (built once per problem).

    points: (P,) frame indices of the objective's points; free: (m,) solved dof indices.
    """
    points = np.asarray(points, dtype=np.int64)
    Af = np.asarray(tree.A, dtype=np.float64)[:, free]
    J = Af.shape[0]
    ptr = np.zeros(J + 1, dtype=np.int64)
    cols, vals = [], []
    for j in range(J):
        nz = np.nonzero(np.abs(Af[j]) > 0)[0]
        cols.extend(nz.tolist())
        vals.extend(Af[j, nz].tolist())
        ptr[j + 1] = len(cols)
    anc = tree._ancestors
    jl = tree._joint_link
    anc_pt = anc[points]  # (P, J): joint j moves point u
    up = anc[jl].T if J else np.zeros((0, 0), dtype=bool)  # up[i, j]: joint i is an ancestor of (or is) j
    drives = ptr[1:] > ptr[:-1]  # the joint moves with a solved dof
    # sparsity, enumerated once: (point, joint) Jacobian entries; (i, j) pairs of the second-order
    # term (i revolute, ancestor of or equal to j) and the points below j each pair sums over
    pu, pj = np.nonzero(anc_pt & drives[None])
    rev = np.asarray(tree.joint_type) == REVOLUTE
    PI, PJ = np.nonzero(up & (rev & drives)[:, None] & drives[None]) if J else (np.zeros(0, int), np.zeros(0, int))
    tri_p, tri_u = [], []
    for k, j in enumerate(PJ):
        for u in np.nonzero(anc_pt[:, j])[0]:
            tri_p.append(k)
            tri_u.append(u)
    i64 = lambda a: np.asarray(a, dtype=np.int64)  # noqa: E731
    # only the frames the points hang from are needed (their ancestors), in topological order
    need = np.zeros(len(tree.link_names), dtype=bool)
    for u in points:
        i = int(u)
        while i >= 0 and not need[i]:
            need[i] = True
            i = int(tree.parent[i])
    need[0] = True
    order = np.nonzero(need)[0][1:].astype(np.int64)
    plan = (
        np.ascontiguousarray(tree.A, dtype=np.float64), np.ascontiguousarray(tree.b, dtype=np.float64),
        tree.parent.astype(np.int64), np.ascontiguousarray(tree.R_parent_link, dtype=np.float64),
        np.ascontiguousarray(tree.p_parent_link, dtype=np.float64), tree.link_joint.astype(np.int64), order,
        np.asarray(tree.joint_type, dtype=np.int64), np.ascontiguousarray(tree.joint_axis, dtype=np.float64),
        np.ascontiguousarray(tree.joint_anchor, dtype=np.float64), jl.astype(np.int64), points, i64(pu), i64(pj),
        i64(PI), i64(PJ), i64(tri_p), i64(tri_u), ptr, np.asarray(cols, dtype=np.int64),
        np.asarray(vals, dtype=np.float64), int(len(free)),
    )  # fmt: skip
    # C-contiguous arrays: one compiled signature for every robot
    return tuple(np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v for v in plan)


def fused_terms(q, ref, wk, beta, elementwise, pos_t, pos_o, plan, need_grad=True):
    """Objective terms of N frames in one compiled pass.

    q: (N, n) dofs; ref: (N, K, 3) targets; wk: (N, K) per-term weights (already divided by the
    term count); beta: Huber (SmoothL1) width; elementwise: position objective (per-coordinate Huber)
    instead of vector (per-vector norm); pos_t / pos_o: (K,) indices into the plan's points of each
    term's task / origin point (-1: none). Returns cost (N,), gradient (N, m), Gauss-Newton Hessian
    (N, m, m) and the second-order kinematic term (N, m, m) over the plan's free dofs.
    """
    return _fused_kernel(
        np.ascontiguousarray(q, dtype=np.float64), np.ascontiguousarray(ref, dtype=np.float64),
        np.ascontiguousarray(wk, dtype=np.float64), float(beta), bool(elementwise), pos_t, pos_o, *plan,
        bool(need_grad),
    )  # fmt: skip


def _fused_kernel_py(q, ref, wk, beta, elementwise, pos_t, pos_o, A, b, parent, R0, p0, link_joint, order, jtype,
                     axis, anchor, joint_link, pts, pu, pj, PI, PJ, tri_p, tri_u, nz_ptr, nz_col, nz_val, m,
                     need_grad):  # fmt: skip
    """:func:`fused_terms`' pass over N frames (the plan's arrays unpacked; see :func:`fused_plan`).

    One long function on purpose: numba compiles it to one loop nest whose scratch arrays
    (frame poses, Jacobians, point gradients) are allocated once and reused across frames; split into
    compiled helpers each would take a dozen of those arrays. Its sections are marked: forward
    kinematics of the needed frames (Rodrigues inline, tested against
    :func:`handx_robot.rotations.axis_angle_to_matrix`), joint axes and point Jacobians, objective
    terms, second-order term.
    """
    N, n = q.shape
    L = parent.shape[0]
    J = A.shape[0]
    P = pts.shape[0]
    K = pos_t.shape[0]
    cost = np.zeros(N)
    g = np.zeros((N, m))
    H = np.zeros((N, m, m))
    T2 = np.zeros((N, m, m))
    R = np.zeros((L, 3, 3))
    p = np.zeros((L, 3))
    qm = np.zeros(J)
    a = np.zeros((J, 3))
    o = np.zeros((J, 3))
    Jm = np.zeros((P, 3, J))
    Jd = np.zeros((P, 3, m))
    G = np.zeros((P, 3))
    T = np.zeros(PI.shape[0])
    Rl = np.zeros((3, 3))
    Rq = np.zeros((3, 3))
    tq = np.zeros(3)
    r = np.zeros(3)
    gr = np.zeros(3)
    wc = np.zeros(3)
    Jk = np.zeros((3, m))
    for x in range(3):
        for y in range(3):
            R[0, x, y] = R0[0, x, y]
        p[0, x] = p0[0, x]
    for f in range(N):
        for j in range(J):
            s = b[j]
            for k in range(n):
                s += A[j, k] * q[f, k]
            qm[j] = s
        # -- forward kinematics of the needed frames
        for i in order:
            pa = parent[i]
            for x in range(3):
                for y in range(3):
                    Rl[x, y] = R[pa, x, 0] * R0[i, 0, y] + R[pa, x, 1] * R0[i, 1, y] + R[pa, x, 2] * R0[i, 2, y]
                p[i, x] = p[pa, x] + R[pa, x, 0] * p0[i, 0] + R[pa, x, 1] * p0[i, 1] + R[pa, x, 2] * p0[i, 2]
            j = link_joint[i]
            if j < 0:
                for x in range(3):
                    for y in range(3):
                        R[i, x, y] = Rl[x, y]
                continue
            kx, ky, kz = axis[j, 0], axis[j, 1], axis[j, 2]
            if jtype[j] == 0:  # revolute: Rodrigues, R = I + s K + (1 - c) K^2
                sn = np.sin(qm[j])
                c1 = 1.0 - np.cos(qm[j])
                Rq[0, 0] = 1.0 - c1 * (ky * ky + kz * kz)
                Rq[0, 1] = -sn * kz + c1 * kx * ky
                Rq[0, 2] = sn * ky + c1 * kx * kz
                Rq[1, 0] = sn * kz + c1 * kx * ky
                Rq[1, 1] = 1.0 - c1 * (kx * kx + kz * kz)
                Rq[1, 2] = -sn * kx + c1 * ky * kz
                Rq[2, 0] = -sn * ky + c1 * kx * kz
                Rq[2, 1] = sn * kx + c1 * ky * kz
                Rq[2, 2] = 1.0 - c1 * (kx * kx + ky * ky)
                for x in range(3):
                    tq[x] = anchor[j, x] - (Rq[x, 0] * anchor[j, 0] + Rq[x, 1] * anchor[j, 1] + Rq[x, 2] * anchor[j, 2])
            else:  # prismatic
                for x in range(3):
                    for y in range(3):
                        Rq[x, y] = 1.0 if x == y else 0.0
                    tq[x] = axis[j, x] * qm[j]
            for x in range(3):
                p[i, x] += Rl[x, 0] * tq[0] + Rl[x, 1] * tq[1] + Rl[x, 2] * tq[2]
                for y in range(3):
                    R[i, x, y] = Rl[x, 0] * Rq[0, y] + Rl[x, 1] * Rq[1, y] + Rl[x, 2] * Rq[2, y]
        if need_grad:
            # -- joint axes/origins in the base frame, point Jacobians (model joints, then dofs)
            for j in range(J):
                jl = joint_link[j]
                for x in range(3):
                    a[j, x] = R[jl, x, 0] * axis[j, 0] + R[jl, x, 1] * axis[j, 1] + R[jl, x, 2] * axis[j, 2]
                    o[j, x] = p[jl, x] + R[jl, x, 0] * anchor[j, 0] + R[jl, x, 1] * anchor[j, 1] + R[jl, x, 2] * anchor[j, 2]
            for u in range(P):
                for c in range(3):
                    G[u, c] = 0.0
                    for k in range(m):
                        Jd[u, c, k] = 0.0
            for e0 in range(pu.shape[0]):
                u, j = pu[e0], pj[e0]
                pt = pts[u]
                if jtype[j] == 0:
                    d0, d1, d2 = p[pt, 0] - o[j, 0], p[pt, 1] - o[j, 1], p[pt, 2] - o[j, 2]
                    Jm[u, 0, j] = a[j, 1] * d2 - a[j, 2] * d1
                    Jm[u, 1, j] = a[j, 2] * d0 - a[j, 0] * d2
                    Jm[u, 2, j] = a[j, 0] * d1 - a[j, 1] * d0
                else:
                    for c in range(3):
                        Jm[u, c, j] = a[j, c]
                for e in range(nz_ptr[j], nz_ptr[j + 1]):
                    k = nz_col[e]
                    v = nz_val[e]
                    for c in range(3):
                        Jd[u, c, k] += Jm[u, c, j] * v
        # -- objective terms
        tot = 0.0
        for t in range(K):
            ut, uo = pos_t[t], pos_o[t]
            for c in range(3):
                r[c] = p[pts[ut], c] - ref[f, t, c]
                if uo >= 0:
                    r[c] -= p[pts[uo], c]
            w_t = wk[f, t]
            if elementwise:
                for c in range(3):
                    ad = abs(r[c])
                    if ad < beta:
                        tot += w_t * 0.5 * ad * ad / beta
                        wc[c] = w_t / beta
                    else:
                        tot += w_t * (ad - 0.5 * beta)
                        wc[c] = w_t / max(ad, 1e-12)
            else:
                dn = np.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2])
                if dn < beta:
                    tot += w_t * 0.5 * dn * dn / beta
                    aw = w_t / beta
                else:
                    tot += w_t * (dn - 0.5 * beta)
                    aw = w_t / max(dn, 1e-12)
                for c in range(3):
                    wc[c] = aw
            if not need_grad:
                continue
            for c in range(3):
                gr[c] = wc[c] * r[c]
                G[ut, c] += gr[c]
                if uo >= 0:
                    G[uo, c] -= gr[c]
                for k in range(m):
                    Jk[c, k] = Jd[ut, c, k] - (Jd[uo, c, k] if uo >= 0 else 0.0)
            for k in range(m):
                g[f, k] += Jk[0, k] * gr[0] + Jk[1, k] * gr[1] + Jk[2, k] * gr[2]
                for k2 in range(k, m):
                    h = wc[0] * Jk[0, k] * Jk[0, k2] + wc[1] * Jk[1, k] * Jk[1, k2] + wc[2] * Jk[2, k] * Jk[2, k2]
                    H[f, k, k2] += h
        cost[f] = tot
        if not need_grad:
            continue
        for k in range(m):
            for k2 in range(k + 1, m):
                H[f, k2, k] = H[f, k, k2]
        # -- second-order term: sum_u G_u . d2x_u/dq_i dq_j = sum_u (G_u x a_i) . J_uj, i revolute
        # ancestor of (or equal to) j; symmetrised, then mapped to the dofs
        for k in range(PI.shape[0]):
            T[k] = 0.0
        for e0 in range(tri_p.shape[0]):
            k, u = tri_p[e0], tri_u[e0]
            i, j = PI[k], PJ[k]
            c0 = G[u, 1] * a[i, 2] - G[u, 2] * a[i, 1]
            c1_ = G[u, 2] * a[i, 0] - G[u, 0] * a[i, 2]
            c2 = G[u, 0] * a[i, 1] - G[u, 1] * a[i, 0]
            T[k] += c0 * Jm[u, 0, j] + c1_ * Jm[u, 1, j] + c2 * Jm[u, 2, j]
        for k in range(PI.shape[0]):
            i, j = PI[k], PJ[k]
            tij = T[k]
            if tij == 0.0:
                continue
            for e1 in range(nz_ptr[i], nz_ptr[i + 1]):
                for e2 in range(nz_ptr[j], nz_ptr[j + 1]):
                    v = nz_val[e1] * nz_val[e2] * tij
                    T2[f, nz_col[e1], nz_col[e2]] += v
                    if i != j:
                        T2[f, nz_col[e2], nz_col[e1]] += v
    return cost, g, H, T2


_fused_kernel = _numba.njit(cache=True, nogil=True)(_fused_kernel_py) if HAVE_FUSED else _fused_kernel_py
