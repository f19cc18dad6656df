"""Streaming: one frame at a time with warm start (:class:`StreamingRetargeter`, for ROS).

Human keypoints: (21, 3) HandX order, metres, human wrist frame. Output: joint positions (J,) in
``joint_names`` order, radians / metres.
"""

from __future__ import annotations

import numpy as np
from handx_robot.retarget.robots import RobotSpec
from handx_robot.retarget.solver.options import SolverOptions
from handx_robot.retarget.solver.problem import HandProblem
from handx_robot.retarget.solver.walk import walk

from handx_robot.errors import MotionValueError

__all__ = ["StreamingRetargeter"]


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
        if p._fplan is not None:  # compile (first run on a machine) / load the kernels now, not on frame 1
            ref, w, _ = p.reference(np.zeros((1, 21, 3)))
            walk(p, ref, w, self.lam, self.options, self.q[0], 0)

    def reset(self) -> None:
        self.q = self.problem.initial_q(1)
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
        # from and toward the previous solution; for the first frame dex-retargeting's start
        q, conv, _, cost = walk(p, ref, w, self.lam, self.options, self.q[0], iters)
        self.q, conv, cost = q, bool(conv[0]), float(cost[0])
        self.num_frames += 1
        self.num_failed += int(not conv)
        qpos = p.model_qpos(self.q)[0]
        a = p.low_pass_alpha
        if self.options.low_pass and 0 <= a < 1:
            self._y = qpos if self._y is None else self._y + a * (qpos - self._y)
            qpos = self._y.copy()
        return qpos, conv, cost
