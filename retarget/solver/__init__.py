"""Retargeting solver: human keypoints (wrist frame) -> robot joint positions, batched or streaming.

Objectives are dex-retargeting's, evaluated identically (``HandProblem.dex_objective``):

* ``vector``:   mean_k huber(|(x_task_k - x_origin_k) - s * v_k|), v_k = human task - origin keypoint
* ``position``: mean over links and xyz of huber(x_k - p_k) (elementwise), p_k = human keypoint
* ``dexpilot``: sum_k w_k huber(|r_k|) / K over fingertip-pair and wrist-tip vectors, with DexPilot's
  projection of nearly touching fingertip pairs (hysteresis between ``project_dist`` and
  ``escape_dist``) and its weights (200 / 400 for projected pairs, K for wrist vectors)

with ``huber`` = SmoothL1 with ``beta = huber_delta`` (DexPilot: 0.03, as dex-retargeting builds it),
``s = scaling_factor``. We add a temporal term ``lambda * |q_t - q_{t-1}|^2`` (``lambda`` defaults
to the config's ``normal_delta``, dex-retargeting's regulariser toward the previous solution; offline
it is summed over the whole sequence, streaming it pulls toward the previous frame's solution) and
hard joint limits (never exceeded, unlike dex-retargeting's 1e-3 rad slack).

Method: Newton / Levenberg-Marquardt with analytic derivatives from
:class:`handx_robot.retarget.kinematics.KinematicTree`. The Hessian is exact up to the kinematics: Gauss-Newton
term (IRLS weights of the Huber loss) plus the second-order kinematic term
``sum_k G_k . d2x_k/dq2``; the residuals of retargeting are large (a robot cannot match a human hand),
so Gauss-Newton alone converges only linearly, Newton quadratically near a minimum. Where a frame's
Newton block is not positive definite (far from a minimum) that frame uses Gauss-Newton. Joint limits
by an active set (a joint at a limit whose gradient pushes outward is frozen) and a projected second
phase (joints a step would push through a limit are held there and the rest re-solved); steps are
capped at ``MAX_STEP`` rad per joint (:mod:`.step_kernel`).

Offline (``solve_sequence``), per chunk of ``chunk_size`` frames (memory does not grow with the
motion length), method ``sequential`` (default, :mod:`.walk`) solves the frames one after the other, each
warm-started from and regularised toward its predecessor's solution — the streaming solver's (and
dex-retargeting's) objective exactly, a few Newton iterations per frame, the whole walk compiled. Method
``coupled`` instead solves every ``_COARSE_STRIDE``-th frame independently as a start and minimises the
symmetric temporal term over the whole chunk jointly (block-tridiagonal Newton system, banded Cholesky, one
accept/reject for the chunk): smoother (lower jerk) and slower (figures: ``benchmarks/RESULTS.md``, ``benchmarks/retarget_speed.py --coupled``).
Streaming (``StreamingRetargeter``) is the same Newton step with batch size one, reusing the previous
frame's kinematics.

A frame is ``converged`` when, with its neighbours held fixed, a Newton step on its own block would
decrease the objective by less than ``ftol`` (``0.5 g^T H^-1 g``, positive definite ``H``);
dex-retargeting stops at ``ftol_abs = 1e-6``. Other frames are flagged, counted and reported.

Speed. With numba installed (``requirements.txt``) the objective terms of a batch (FK, Jacobians,
value, gradient, both Hessian terms: :func:`handx_robot.retarget.kinematics.fused_terms`) and the
per-frame LM step of the uncoupled solves (:func:`.step_kernel.newton_kernel`) run compiled, one pass
per batch, and the default offline method's whole walk over a chunk is one compiled call; the batched numpy code is the fallback (no numba, or ``HANDX_NUMBA=0``) and the reference the tests compare the
kernels to. Same iterates either way (to rounding). The first call on a machine compiles the kernels
(cached in the ``__pycache__`` folders next to them). Speed and compile time: ``benchmarks/RESULTS.md``
(``benchmarks/retarget_speed.py``).

Units: metres, radians. Human keypoints: (T, 21, 3) HandX order, metres, in the human wrist frame
(:func:`handx_robot.handframe.to_wrist_frame`).

Modules: :mod:`.options` (:class:`SolverOptions`, :class:`SolveResult`), :mod:`.problem`
(:class:`HandProblem`: targets, objective, derivatives), :mod:`.newton` (the LM iteration and its
numpy step), :mod:`.step_kernel` (the compiled step), :mod:`.walk` (the default offline method),
:mod:`.sequence` (offline), :mod:`.streaming`.
"""

from __future__ import annotations

from handx_robot.retarget.solver.options import SolveResult, SolverOptions
from handx_robot.retarget.solver.problem import DUMMY_JOINTS, HandProblem
from handx_robot.retarget.solver.sequence import check_convergence, low_pass, solve_sequence
from handx_robot.retarget.solver.streaming import StreamingRetargeter

__all__ = [
    "SolverOptions",
    "HandProblem",
    "SolveResult",
    "solve_sequence",
    "check_convergence",
    "low_pass",
    "StreamingRetargeter",
    "DUMMY_JOINTS",
]
