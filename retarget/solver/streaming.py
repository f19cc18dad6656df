"""Streaming: one frame at a time with warm start (:class:`StreamingRetargeter`, for ROS).

Human keypoints: (21, 3) HandX order, metres, human wrist frame. Output: joint positions (J,) in
``joint_names`` order, radians / metres.
"""

from __future__ import annotations

import numpy as np
from handx_robot.retarget.robots import RobotSpec
from handx_robot.retarget.solver.options import SolverOptions
from handx_robot.retarget.solver.problem import HandProblem
from handx_robot.retarget.solver.step_kernel import MAX_STEP

from handx_robot.errors import MotionValueError

__all__ = ["StreamingRetargeter"]


def _newton_one(prob: HandProblem, q: np.ndarray, ref, w, lam: float, prev: np.ndarray, iters: int,
                opts: SolverOptions, cache: dict) -> tuple[np.ndarray, float, bool]:
    """One frame (streaming): the algorithm of :func:`~handx_robot.retarget.solver.newton.lm` (Newton,
    active set, projected second phase, trust region, LM damping) on plain (n,) arrays, with the
    kinematics reused from the previous frame. Returns q (n,), data objective, converged."""
    free = prob.free
    lo, hi = prob.lower[free], prob.upper[free]
    m = len(free)
    eye = np.eye(m)
    fused = prob._fplan is not None  # compiled terms: no kinematics to reuse
    kin = None if fused else (cache.get("kin") if np.array_equal(cache.get("q"), q) else None)
    if kin is None and not fused:
        kin = prob.kinematics(q[None])
    cost, g, Hgn, T = (a[0] for a in prob.data_terms(q[None], ref, w, kin=kin))
    pf = prev[free]
    mu = opts.damping
    converged = False
    for it in range(iters + 1):
        qf = q[free]
        dq = qf - pf
        c_t = lam * float(dq @ dq)
        gt = g + 2 * lam * dq
        act = ((qf <= lo + 1e-10) & (gt > 0)) | ((qf >= hi - 1e-10) & (gt < 0))
        H = Hgn + T + 2 * lam * eye
        newton_ok = True
        if act.any():
            keep = ~act
            gt = np.where(act, 0.0, gt)
            H = H * np.outer(keep, keep) + np.diag(act.astype(float))
        try:
            np.linalg.cholesky(H)
        except np.linalg.LinAlgError:
            newton_ok = False
            H = Hgn + 2 * lam * eye
            if act.any():
                H = H * np.outer(~act, ~act) + np.diag(act.astype(float))
        own = np.linalg.solve(H + 1e-12 * eye, gt)
        pred = 0.5 * float(gt @ own)
        converged = newton_ok and 0 <= pred < opts.ftol and np.isfinite(cost)
        if converged or it == iters:
            break
        step = -np.linalg.solve(H + mu * np.diag(np.diag(H) + 1e-9), gt)
        over = (qf + step < lo - 1e-12) | (qf + step > hi + 1e-12)
        if over.any():
            fixed = np.where(qf + step < lo, lo - qf, hi - qf) * over
            free2 = ~over & ~act
            A2 = (H + mu * np.diag(np.diag(H) + 1e-9)) * np.outer(free2, free2) + np.diag((~free2).astype(float))
            g2 = np.where(free2, gt + H @ fixed, 0.0)
            step = np.where(free2, -np.linalg.solve(A2, g2), fixed)
        big = float(np.abs(step).max(initial=0.0))
        if big > MAX_STEP:
            step = step * (MAX_STEP / big)
        if not np.all(np.isfinite(step)):
            mu = min(mu * 10.0, 1e6)
            continue
        q_try = q.copy()
        q_try[free] = np.clip(qf + step, lo, hi)
        kin_try = None if fused else prob.kinematics(q_try[None])
        c_try, g_try, H_try, T_try = (a[0] for a in prob.data_terms(q_try[None], ref, w, kin=kin_try))
        dq2 = q_try[free] - pf
        if np.isfinite(c_try) and c_try + lam * float(dq2 @ dq2) <= cost + c_t + 1e-15:
            q, cost, g, Hgn, T, kin = q_try, c_try, g_try, H_try, T_try, kin_try
            mu = max(mu * 0.3, 1e-7)
        else:
            mu = min(mu * 10.0, 1e6)
    cache["q"], cache["kin"] = q.copy(), kin
    return q, float(cost), bool(converged)


class StreamingRetargeter:
    """One frame at a time with warm start (for ROS): ``step(kp_wrist (21, 3)) -> (qpos, converged, objective)``.

    Keeps the previous solution (warm start and temporal term) and the DexPilot projection state;
    applies the config's low-pass filter to the output like dex-retargeting (``options.low_pass``).
    """

    def __init__(self, problem: HandProblem | RobotSpec, options: SolverOptions | None = None) -> None:
        self.problem = problem if isinstance(problem, HandProblem) else HandProblem(problem)
        self.options = options or SolverOptions()
        p = self.problem
        self.lam = p.normal_delta if self.options.temporal_weight is None else float(self.options.temporal_weight)
        self.reset()
        if p._fplan is not None:  # compile (first run on a machine) / load the kernel now, not on frame 1
            ref, w, _ = p.reference(np.zeros((1, 21, 3)))
            p.data_terms(self.q, ref, w)

    def reset(self) -> None:
        self.q = self.problem.initial_q(1)
        self._cache: dict = {}
        self._proj = None
        self._y = None
        self.num_frames = 0
        self.num_failed = 0

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.problem.joint_names

    def step(self, kp_wrist: np.ndarray) -> tuple[np.ndarray, bool, float]:
        """Retarget one frame. kp_wrist: (21, 3) HandX order, metres, human wrist frame.

        Returns qpos (J,) in ``joint_names`` order (filtered), converged, dex objective.
        """
        kp = np.asarray(kp_wrist, dtype=np.float64).reshape(1, 21, 3)
        if not np.all(np.isfinite(kp)):
            raise MotionValueError("streaming keypoints contain NaN/inf; the previous command stays valid")
        p = self.problem
        ref, w, self._proj = p.reference(kp, self._proj)
        first = self.num_frames == 0
        iters = self.options.max_iterations if first else self.options.stream_iterations
        prev = self.q[0].copy()  # the previous solution; for the first frame dex-retargeting's start
        q, cost, conv = _newton_one(p, self.q[0], ref, w, self.lam, prev, iters, self.options, self._cache)
        self.q = q[None]
        self.num_frames += 1
        self.num_failed += int(not conv)
        qpos = p.model_qpos(self.q)[0]
        a = p.low_pass_alpha
        if self.options.low_pass and 0 <= a < 1:
            self._y = qpos if self._y is None else self._y + a * (qpos - self._y)
            qpos = self._y.copy()
        return qpos, conv, cost
