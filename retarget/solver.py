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
so Gauss-Newton alone converges only linearly (20-40 iterations), Newton in 2-5. Where a frame's
Newton block is not positive definite (far from a minimum) that frame uses Gauss-Newton. Joint limits
by an active set (a joint at a limit whose gradient pushes outward is frozen) and a projected second
phase (joints a step would push through a limit are held there and the rest re-solved); steps are
capped at ``_MAX_STEP`` rad per joint.

Offline (``solve_sequence``), per chunk of ``chunk_size`` frames (memory does not grow with the
motion length): every ``_COARSE_STRIDE``-th frame is solved independently and interpolated as a
start; then (method ``segments``, default) the chunk is cut into ~``_SEGMENTS`` segments walked in
parallel, each frame warm-started from and regularised toward its predecessor's solution — the
streaming solver's (and dex-retargeting's) objective, batched across segments, 2-4 Newton iterations
per frame. Method ``coupled`` instead minimises the symmetric temporal term over the whole chunk
jointly (block-tridiagonal Newton system, banded Cholesky, one accept/reject for the chunk): smoother
(lower jerk), about half as fast. Streaming (``StreamingRetargeter``) is the same Newton step with
batch size one, reusing the previous frame's kinematics.

A frame is ``converged`` when, with its neighbours held fixed, a Newton step on its own block would
decrease the objective by less than ``ftol`` (``0.5 g^T H^-1 g``, positive definite ``H``);
dex-retargeting stops at ``ftol_abs = 1e-6``. Other frames are flagged, counted and reported.

Speed. With numba installed (``requirements.txt``) the objective terms of a batch (FK, Jacobians,
value, gradient, both Hessian terms: :func:`handx_robot.retarget.kinematics.fused_terms`) and the per-frame LM
step of the uncoupled solves (:func:`_newton_kernel`) run compiled, one pass per batch; the batched
numpy code is the fallback (no numba, or ``HANDX_NUMBA=0``) and the reference the tests compare the
kernels to. Same iterates either way (to rounding). The first call on a machine compiles (~10 s,
cached in ``retarget/__pycache__``). Figures: ``benchmarks/retarget_speed.py``.

Units: metres, radians. Human keypoints: (T, 21, 3) HandX order, metres, in the human wrist frame
(:func:`handx_robot.handframe.to_wrist_frame`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
from handx_robot.retarget.kinematics import (
    HAVE_FUSED,
    PRISMATIC,
    REVOLUTE,
    KinematicTree,
    axis_angle_matrices,
    fused_plan,
    fused_terms,
)
from handx_robot.retarget.robots import RobotSpec, load_tree_cached

from handx_robot.errors import ConfigError, MotionValueError

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

log = logging.getLogger(__name__)

DUMMY_JOINTS = tuple(f"dummy_{a}_translation_joint" for a in "xyz") + tuple(
    f"dummy_{a}_rotation_joint" for a in "xyz"
)


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """Solver settings (defaults in one place; override with ``dataclasses.replace``).

    max_iterations:    LM iterations per chunk (offline).
    stream_iterations: LM iterations per frame when streaming (warm start).
    temporal_weight:   lambda of ``lambda |q_t - q_{t-1}|^2``; None = the config's ``normal_delta``.
    ftol:              convergence: predicted objective decrease of another step below this.
    chunk_size:        frames per batch offline.
    damping:           initial LM damping (relative to the Gauss-Newton Hessian's diagonal).
    low_pass:          apply the config's ``low_pass_alpha`` filter to the output (as dex-retargeting).
    method:            offline: 'segments' (default) — the chunk is cut into ~64 segments walked in
                       parallel, each frame warm-started from and regularised toward the previous
                       frame's solution (dex-retargeting's objective, one-sided temporal term);
                       'coupled' — the symmetric temporal term over all frames, solved jointly.
    """

    max_iterations: int = 40
    stream_iterations: int = 3
    temporal_weight: float | None = None
    ftol: float = 1e-6
    chunk_size: int = 2048
    damping: float = 1e-3
    low_pass: bool = True
    method: str = "segments"

    def __post_init__(self) -> None:
        for name in ("max_iterations", "stream_iterations", "chunk_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"solver option {name} must be >= 1, got {getattr(self, name)}")
        if self.temporal_weight is not None and not (self.temporal_weight >= 0):
            raise ConfigError(f"solver option temporal_weight must be >= 0, got {self.temporal_weight}")
        if not self.ftol > 0 or not self.damping > 0:
            raise ConfigError("solver options ftol and damping must be > 0")
        if self.method not in ("segments", "coupled"):
            raise ConfigError(f"solver option method is {self.method!r}; allowed: 'segments', 'coupled'")


def _with_free_base(tree: KinematicTree) -> KinematicTree:
    """Prepend dex-retargeting's 6 dummy joints (x, y, z translation, then x, y, z rotation)."""
    J = len(tree.joint_names)
    names = tuple(f"dummy_{a}_translation_link" for a in "xyz") + tuple(f"dummy_{a}_rotation_link" for a in "xyz")
    link_names = ("dummy_root",) + names + tree.link_names
    parent = np.concatenate([[-1, 0, 1, 2, 3, 4, 5], np.where(tree.parent < 0, 6, tree.parent + 7)])
    R = np.concatenate([np.tile(np.eye(3), (7, 1, 1)), tree.R_parent_link])
    p = np.concatenate([np.zeros((7, 3)), tree.p_parent_link])
    link_joint = np.concatenate([[-1, 0, 1, 2, 3, 4, 5], np.where(tree.link_joint < 0, -1, tree.link_joint + 6)])
    eye = np.eye(3)
    A = np.zeros((J + 6, tree.num_dof + 6))
    A[:6, :6] = np.eye(6)
    A[6:, 6:] = tree.A
    return KinematicTree(
        link_names=link_names, parent=parent, R_parent_link=R, p_parent_link=p, link_joint=link_joint,
        joint_names=DUMMY_JOINTS + tree.joint_names,
        joint_type=np.concatenate([[PRISMATIC] * 3 + [REVOLUTE] * 3, tree.joint_type]),
        joint_axis=np.concatenate([eye, eye, tree.joint_axis]),
        joint_anchor=np.concatenate([np.zeros((6, 3)), tree.joint_anchor]),
        joint_lower=np.concatenate([[-10.0] * 3 + [-1e4] * 3, tree.joint_lower]),
        joint_upper=np.concatenate([[10.0] * 3 + [1e4] * 3, tree.joint_upper]),
        dof_names=DUMMY_JOINTS + tree.dof_names, A=A, b=np.concatenate([np.zeros(6), tree.b]), source=tree.source,
    )  # fmt: skip


def _dexpilot_indices(nf: int) -> tuple[list[int], list[int]]:
    origin, task = [], []
    for i in range(1, nf):
        for j in range(i + 1, nf + 1):
            origin.append(j)
            task.append(i)
    for i in range(1, nf + 1):
        origin.append(0)
        task.append(i)
    return origin, task


class HandProblem:
    """One robot hand's retargeting problem, built once from a :class:`RobotSpec`.

    Attributes: ``tree`` (with dex's dummy free base when the config asks), ``free`` (indices of the
    solved dofs), ``q_fixed`` (values of the others), ``lower``/``upper`` (n,) limits, ``joint_names``
    (model joints written to the output, dummy joints excluded), ``R_wrist_base``/``p_wrist_base``.
    """

    def __init__(self, spec: RobotSpec, tree: KinematicTree | None = None) -> None:
        self.spec = spec
        cfg = spec.config
        self.type = spec.retargeting_type
        base_tree = tree if tree is not None else load_tree_cached(spec.model_path, spec.model_format)
        where = f"{spec.config_path} (model {spec.model_path})"
        self.free_base = bool(cfg.get("add_dummy_free_joint", False))
        self.tree = _with_free_base(base_tree) if self.free_base else base_tree
        t = self.tree
        if cfg.get("ignore_mimic_joint") and np.any(np.abs(t.A).sum(1) != 1):
            log.warning("%s: ignore_mimic_joint is set; mimic joints are still coupled as the model says", where)
        target = cfg.get("target_joint_names")
        if target is None:
            free_names = list(t.dof_names)
        else:
            free_names = (list(DUMMY_JOINTS) if self.free_base else []) + list(target)
        self.free = t.dof_index(free_names)
        self.lower = np.where(np.asarray(cfg.get("has_joint_limits", True)), t.dof_lower, -1e4)
        self.upper = np.where(np.asarray(cfg.get("has_joint_limits", True)), t.dof_upper, 1e4)
        self.q_fixed = np.clip(np.zeros(t.num_dof), self.lower, self.upper)
        self.joint_names = tuple(n for n in t.joint_names if n not in DUMMY_JOINTS)
        self._out_joints = np.array([t.joint_names.index(n) for n in self.joint_names], dtype=np.int64)
        self.scaling = float(cfg.get("scaling_factor", 1.0))
        self.normal_delta = float(cfg.get("normal_delta", 4e-3))
        self.huber_delta = float(cfg.get("huber_delta", 2e-2))
        self.low_pass_alpha = float(cfg.get("low_pass_alpha", 0.1))
        if self.type == "vector":
            hi = spec.to_handx_index(cfg["target_link_human_indices"])
            origin_links, task_links = cfg["target_origin_link_names"], cfg["target_task_link_names"]
        elif self.type == "position":
            hi = spec.to_handx_index(np.asarray(cfg["target_link_human_indices"]).reshape(-1))
            origin_links, task_links = [], cfg["target_link_names"]
        else:
            nf = len(cfg["finger_tip_link_names"])
            o, k = _dexpilot_indices(nf)
            links = [cfg["wrist_link_name"], *cfg["finger_tip_link_names"]]
            origin_links, task_links = [links[i] for i in o], [links[i] for i in k]
            raw = cfg.get("target_link_human_indices")
            raw = np.stack([np.asarray(o), np.asarray(k)]) * 4 if raw is None else np.asarray(raw)
            hi = spec.to_handx_index(raw)
            self.huber_delta = 0.03  # dex-retargeting builds DexPilotOptimizer with its default
            self.num_fingers = nf
            self.project_dist = float(cfg.get("project_dist", 0.03))
            self.escape_dist = float(cfg.get("escape_dist", 0.05))
        self.human_index = hi
        self.origin_links = np.array([t.link_index(n, config=where) for n in origin_links], dtype=np.int64)
        self.task_links = np.array([t.link_index(n, config=where) for n in task_links], dtype=np.int64)
        # unique links whose positions the objective needs
        self.links = np.unique(np.concatenate([self.origin_links, self.task_links]))
        self._pos_o = np.searchsorted(self.links, self.origin_links)
        self._pos_t = np.searchsorted(self.links, self.task_links)
        # (L_u, K) maps per-term point gradients to the unique links: task +1, origin -1
        self._scatter = np.zeros((len(self.links), len(self.task_links)))
        self._scatter[self._pos_t, np.arange(len(self.task_links))] += 1.0
        if len(self.origin_links):
            self._scatter[self._pos_o, np.arange(len(self.origin_links))] -= 1.0
        # compiled single-pass objective terms (numba); None: the batched numpy path
        self._fplan = fused_plan(t, self.links, self.free) if HAVE_FUSED else None
        self._fpos_t = np.ascontiguousarray(self._pos_t, dtype=np.int64)
        self._fpos_o = np.ascontiguousarray(
            self._pos_o if len(self.origin_links) else np.full(len(self.task_links), -1), dtype=np.int64
        )
        self._calibrate()

    # -- calibration ---------------------------------------------------------------
    def _calibrate(self) -> None:
        cal = self.spec.calibration
        self.R_wrist_base = cal.R_wrist_base
        if cal.p_wrist_base is not None:
            self.p_wrist_base = cal.p_wrist_base
            return
        cfg = self.spec.config
        link = cal.wrist_match_link or (
            cfg.get("wrist_link_name")
            if self.type == "dexpilot"
            else (cfg["target_origin_link_names"][0] if self.type == "vector" else None)
        )
        if link is None:
            self.p_wrist_base = np.zeros(3)
            return
        q0 = self.q_fixed.copy()
        q0[self.free] = 0.5 * (self.lower + self.upper)[self.free] if not self.free_base else 0.0
        if self.free_base:
            q0[6:] = np.clip(0.5 * (self.lower + self.upper), -3, 3)[6:]
            q0[:6] = 0.0
        _, p = self.tree.forward(q0[None])
        p_base_link = p[0, self.tree.link_index(link)]
        self.p_wrist_base = -self.R_wrist_base @ p_base_link

    @property
    def T_wrist_base(self) -> np.ndarray:
        """(4, 4) pose of the robot base in the human wrist frame."""
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = self.R_wrist_base, self.p_wrist_base
        return T

    # -- targets -------------------------------------------------------------------
    def targets(self, kp_wrist: np.ndarray) -> np.ndarray:
        """Human keypoints ``(N, 21, 3)`` (HandX, wrist frame) -> objective targets in the base frame.

        vector/dexpilot: (N, K, 3) human vectors (unscaled); position: (N, K, 3) positions.
        """
        kp = np.asarray(kp_wrist, dtype=np.float64)
        kp_base = (kp - self.p_wrist_base) @ self.R_wrist_base  # R_base_wrist @ (x - p)
        if self.type == "position":
            return kp_base[:, self.human_index]
        return kp_base[:, self.human_index[1]] - kp_base[:, self.human_index[0]]

    def dexpilot_weights(self, vec: np.ndarray, projected0: np.ndarray | None = None):
        """DexPilot reference vectors and weights for a sequence (hysteresis runs over frames).

        vec: (N, K, 3) human vectors. Returns reference (N, K, 3) (scaled), weights (N, K), and the last
        projection state (for streaming).
        """
        nf = self.num_fingers
        len_proj = nf * (nf - 1) // 2
        len_s1 = nf - 1
        s2o, s2t = [], []
        for i in range(0, nf - 2):
            for j in range(i + 1, nf - 1):
                s2o.append(j)
                s2t.append(i)
        pdist = np.array([1e-4] * (nf - 1) + [3e-2] * ((nf - 1) * (nf - 2) // 2))
        N = vec.shape[0]
        dist = np.linalg.norm(vec[:, :len_proj], axis=-1)
        projected = np.zeros((N, len_proj), dtype=bool)
        state = np.zeros(len_proj, dtype=bool) if projected0 is None else projected0.copy()
        for n in range(N):
            d = dist[n]
            state[:len_s1][d[:len_s1] < self.project_dist] = True
            state[:len_s1][d[:len_s1] > self.escape_dist] = False
            state[len_s1:] = state[:len_s1][s2o] & state[:len_s1][s2t] & (d[len_s1:] <= 0.03)
            projected[n] = state
        high = np.array([200.0] * len_s1 + [400.0] * (len_proj - len_s1))
        w = np.concatenate([np.where(projected, high, 1.0), np.full((N, nf), float(len_proj + nf))], axis=1)
        ref = vec * self.scaling
        dirv = vec[:, :len_proj] / (dist[..., None] + 1e-6)
        ref[:, :len_proj] = np.where(projected[..., None], dirv * pdist[:, None], ref[:, :len_proj])
        return ref, w, state

    # -- objective ---------------------------------------------------------------------
    def _huber(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SmoothL1 value and IRLS weight rho'(d)/d for d >= 0."""
        b = self.huber_delta
        small = d < b
        val = np.where(small, 0.5 * d * d / b, d - 0.5 * b)
        w = np.where(small, 1.0 / b, 1.0 / np.maximum(d, 1e-12))
        return val, w

    def kinematics(self, q: np.ndarray) -> tuple:
        """FK, target-link positions, Jacobians and second-order intermediates at ``q`` (N, n)."""
        R, p = self.tree.forward(q)
        return self.tree.point_jacobian(R, p, self.links, dofs=self.free, with_aux=True)

    def data_terms(
        self, q: np.ndarray, ref: np.ndarray, weight: np.ndarray | None, need_grad: bool = True, kin=None
    ):
        """Objective (dex-retargeting's), gradient (N, m), Gauss-Newton Hessian (N, m, m) and the
        second-order kinematic term (N, m, m) or None at ``q``, over the solved dofs ``free`` (m).

        ref: (N, K, 3) scaled reference vectors / positions; weight: (N, K) DexPilot weights or None.
        """
        if kin is None and self._fplan is not None:
            N, K = q.shape[0], len(self.task_links)
            if self.type == "position":
                wk = np.full((N, K), 1.0 / (3 * K))
            else:
                wk = np.full((N, K), 1.0 / K) if weight is None else np.asarray(weight, dtype=np.float64) / K
            cost, g, H, T2 = fused_terms(q, ref, wk, self.huber_delta, self.type == "position", self._fpos_t,
                                         self._fpos_o, self._fplan, need_grad)  # fmt: skip
            return (cost, g, H, T2) if need_grad else (cost, None, None, None)
        if kin is not None:
            x, Jx, aux = kin
        elif need_grad:
            x, Jx, aux = self.kinematics(q)
        else:
            x, Jx = self.tree.forward(q)[1][:, self.links], None
        N = q.shape[0]
        if self.type == "position":
            r = x[:, self._pos_t] - ref  # (N, K, 3)
            val, w = self._huber(np.abs(r))
            K3 = r.shape[1] * 3
            cost = val.sum((1, 2)) / K3
            if not need_grad:
                return cost, None, None, None
            gk = w * r / K3  # (N, K, 3) gradient w.r.t. each target point
            J = Jx[:, self._pos_t].reshape(N, K3, -1)  # (N, 3K, m)
            ws = (w / K3).reshape(N, K3, 1)
            JT = J.transpose(0, 2, 1)
            g = (JT @ (ws * r.reshape(N, K3, 1)))[..., 0]
            H = JT @ (ws * J)
            T2 = self.tree.hessian_term(aux, self._scatter @ gk, len(self.free))
            return cost, g, H, T2
        else:
            r = x[:, self._pos_t] - x[:, self._pos_o] - ref
            d = np.sqrt((r * r).sum(-1))
            val, w = self._huber(d)
            K = r.shape[1]
            scale = 1.0 / K if weight is None else weight / K
            cost = (val * scale).sum(1)
            if not need_grad:
                return cost, None, None, None
            Jk = Jx[:, self._pos_t] - Jx[:, self._pos_o]  # (N, K, 3, m)
            a = w * scale  # rho'(d) / d, times the term's weight
            gr = a[..., None] * r  # (N, K, 3) gradient w.r.t. each residual
            g = np.einsum("nka,nkam->nm", gr, Jk)
            J = Jk.reshape(N, 3 * K, -1)
            H = J.transpose(0, 2, 1) @ (np.repeat(a, 3, axis=1).reshape(N, 3 * K, 1) * J)
            # second derivatives of the kinematics: exact Newton for large residuals
            T2 = self.tree.hessian_term(aux, self._scatter @ gr, len(self.free))
            return cost, g, H, T2

    def reference(self, kp_wrist: np.ndarray, projected0=None):
        """Scaled reference and weights for keypoints ``(N, 21, 3)`` (wrist frame)."""
        tg = self.targets(kp_wrist)
        if self.type == "dexpilot":
            return self.dexpilot_weights(tg, projected0)
        if self.type == "vector":
            return tg * self.scaling, None, None
        return tg, None, None

    def dex_objective(self, q: np.ndarray, kp_wrist: np.ndarray) -> np.ndarray:
        """dex-retargeting's objective value (no regulariser) per frame for dofs ``q`` (N, n)."""
        ref, w, _ = self.reference(kp_wrist)
        return self.data_terms(q, ref, w, need_grad=False)[0]

    def model_qpos(self, q: np.ndarray) -> np.ndarray:
        """(N, n) dofs -> (N, len(joint_names)) model joint positions (mimic/coupled included)."""
        return self.tree.model_q(q)[:, self._out_joints]

    def base_offset(self, q: np.ndarray) -> np.ndarray:
        """(N, 4, 4) pose of the robot root in the base frame (the dummy free joint; identity otherwise)."""
        N = q.shape[0]
        T = np.tile(np.eye(4), (N, 1, 1))
        if self.free_base:
            Rs = axis_angle_matrices(np.eye(3), q[:, 3:6])  # (N, 3, 3, 3) about x, y, z
            T[:, :3, :3] = Rs[:, 0] @ Rs[:, 1] @ Rs[:, 2]
            T[:, :3, 3] = q[:, :3]
        return T

    def initial_q(self, N: int) -> np.ndarray:
        """(N, n) start: dex-retargeting's (mid-range of the limits; 0 for the free base)."""
        q = np.tile(self.q_fixed, (N, 1))
        mid = 0.5 * (self.lower + self.upper)
        q[:, self.free] = np.where(np.abs(mid) < 1e3, mid, 0.0)[self.free]
        if self.free_base:
            q[:, :6] = 0.0
        return q


@dataclasses.dataclass(frozen=True)
class SolveResult:
    """Solver output for N frames.

    q:          (N, n) dofs (``problem.tree.dof_names`` order), radians / metres.
    qpos:       (N, J) model joint positions in ``problem.joint_names`` order (mimic included).
    converged:  (N,) bool.
    objective:  (N,) dex-retargeting's objective at the solution.
    iterations: (N,) LM iterations spent on the frame's chunk.
    """

    q: np.ndarray
    qpos: np.ndarray
    converged: np.ndarray
    objective: np.ndarray
    iterations: np.ndarray

    @property
    def num_failed(self) -> int:
        return int((~self.converged).sum())


def _lm(
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

    def temporal(qf: np.ndarray):
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

    coupled = sequence and lam > 0 and N > 1
    cost_d, g_d, H_d, T_d = prob.data_terms(q, ref, weight)
    mu = np.full(N, opts.damping)
    done = np.zeros(N, dtype=bool)
    it_count = np.zeros(N, dtype=np.int64)
    pred = np.full(N, np.inf)
    for it in range(iters + 1):
        qf = q[:, free]
        c_t, g_t, h_t = temporal(qf)
        g = g_d + g_t
        if _newton_kernel is not None and not coupled and T_d is not None:
            # _newton_numpy's per-frame step (active set, Newton / Gauss-Newton choice, LM damping,
            # projected second phase, trust region), compiled: one pass instead of ~30 batched calls
            step, pred, bad_step = _newton_kernel(H_d, T_d, h_t, g, qf, lo, hi, mu, _MAX_STEP)
        else:
            step, pred, bad_step = _newton_numpy(H_d, T_d, h_t, g, qf, lo, hi, mu, lam, coupled)
        done = (pred < opts.ftol) & (pred >= 0)
        if done.all() or it == iters:
            break
        q_try = q.copy()
        q_try[:, free] = np.clip(qf + step, lo, hi)
        if coupled or not done.any():
            cd_try, gd_try, Hd_try, Td_try = prob.data_terms(q_try, ref, weight)
        else:  # early exit per frame: converged frames keep their solution, only the others are evaluated
            q_try[done] = q[done]
            sel = np.flatnonzero(~done)
            cd_s, gd_s, Hd_s, Td_s = prob.data_terms(q_try[sel], ref[sel], None if weight is None else weight[sel])
            cd_try, gd_try, Hd_try = cost_d.copy(), g_d.copy(), H_d.copy()
            cd_try[sel], gd_try[sel], Hd_try[sel] = cd_s, gd_s, Hd_s
            Td_try = None
            if T_d is not None:
                Td_try = T_d.copy()
                Td_try[sel] = Td_s
        ct_try, _, _ = temporal(q_try[:, free])
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


def _newton_numpy(H_d, T_d, h_t, g, qf, lo, hi, mu, lam, coupled):
    """One LM step of :func:`_lm` for a batch (batched numpy; the coupled method's block-tridiagonal
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
    # trust region in joint space: at most _MAX_STEP rad (or m) per joint and iteration
    big = np.abs(step).max(1, initial=0.0)
    if coupled:
        big = np.full(N, big.max(initial=0.0))
    step = step * np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-12))[:, None]
    return step, pred, bad_step



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
    """Per-frame version of :func:`_newton_numpy` (uncoupled frames), compiled with numba."""
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
    _newton_kernel = _numba.njit(cache=True, nogil=True)(_newton_kernel_py)
else:  # pragma: no cover - numba missing: the batched numpy step
    _newton_kernel = None

#: Largest joint change per LM iteration (rad or m).
_MAX_STEP = 0.5


def _step(A: np.ndarray, off: np.ndarray | None, g: np.ndarray) -> np.ndarray:
    """LM step ``-A^-1 g``; with ``off`` the frames are coupled (block-tridiagonal system)."""
    if off is None:
        return -np.linalg.solve(A, g[..., None])[..., 0]
    return _banded_solve(A, off, -g)


_TPC = None


def _blas_single_thread():
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
        # one BLAS thread: LAPACK's banded Cholesky slows down ~30x with several (measured, m = 24)
        with _blas_single_thread():
            return solveh_banded(ab, rhs.reshape(-1), lower=False, check_finite=False).reshape(N, m)
    except np.linalg.LinAlgError:  # not positive definite (degenerate input): per-frame fallback
        return np.linalg.solve(A, rhs[..., None])[..., 0]


def solve_sequence(
    prob: HandProblem,
    kp_wrist: np.ndarray,
    options: SolverOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> SolveResult:
    """Offline: retarget a whole sequence ``(T, 21, 3)`` (HandX order, human wrist frame) in chunks.

    Per chunk: (1) coarse pass on every ``_COARSE_STRIDE``-th frame from dex-retargeting's start
    (mid-range), (2) all frames initialised by interpolating the coarse solution, solved together
    with the exact temporal coupling, (3) frames not yet converged polished with their neighbours
    held fixed (only those frames are evaluated).
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
        solve = _solve_chunk_segments if opts.method == "segments" else _solve_chunk
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


#: Weight of the coarse pass's pull toward the common start, relative to lambda (conditioning only).
_COARSE_PULL = 0.01
#: Iterations of the coarse pass (a start only: the fine pass decides convergence).
_COARSE_ITERATIONS = 8
#: Segments walked in parallel per chunk (method 'segments'), and their shortest length.
_SEGMENTS = 64
_MIN_SEGMENT = 8


def _coarse_init(prob, ref, w, lam, opts, prev):
    """(N, n) start for every frame: every ``_COARSE_STRIDE``-th frame solved independently (a few
    Newton iterations from dex-retargeting's start, or the previous chunk's last frame), interpolated.
    Short chunks: that start for every frame."""
    N = ref.shape[0]
    if N >= 4 * _COARSE_STRIDE:
        idx = np.unique(np.r_[np.arange(0, N, _COARSE_STRIDE), N - 1])
        # independent frames (each regularised toward the common start): per-frame Newton steps
        # converge in a few iterations where a coupled solve from a cold start takes tens
        q_start = prob.initial_q(len(idx)) if prev is None else np.tile(prev, (len(idx), 1))
        qc, _, _, itc = _lm(prob, q_start, ref[idx], None if w is None else w[idx], lam * _COARSE_PULL,
                            min(_COARSE_ITERATIONS, opts.max_iterations), opts, q_start[0], None, False)  # fmt: skip
        q = np.empty((N, prob.tree.num_dof))
        t = np.arange(N)
        for k in range(q.shape[1]):
            q[:, k] = np.interp(t, idx, qc[:, k])
        return q, int(itc.max())
    if prev is not None:
        return np.tile(prev, (N, 1)), 0
    return prob.initial_q(N), 0


def _solve_chunk_segments(prob, ref, w, lam, opts, prev):
    """Segments walked in parallel: frame t of every segment is solved (Newton, warm-started from
    frame t-1's solution) with the temporal term toward frame t-1's solution, as streaming does.
    Segment starts begin from the coarse solution."""
    N = ref.shape[0]
    q0, it0 = _coarse_init(prob, ref, w, lam, opts, prev)
    coarse = N >= 4 * _COARSE_STRIDE
    L = max(int(np.ceil(N / _SEGMENTS)), _MIN_SEGMENT) if coarse else N  # short: one sequential pass
    starts = np.arange(0, N, L)
    cur = q0[starts].copy()
    # segment starts have no solved predecessor: their temporal term pulls toward their start (the
    # coarse solution; dex-retargeting's mid-range start for the first frame), or the previous chunk
    before = cur.copy()
    if prev is not None:
        before[0] = prev
    n = prob.tree.num_dof
    q = np.empty((N, n))
    conv = np.zeros(N, dtype=bool)
    its = np.full(N, it0, dtype=np.int64)
    for j in range(L):
        idx = starts + j
        ok = idx < N
        sel = idx[ok]
        qj, _, cj, itj = _lm(prob, cur[ok], ref[sel], None if w is None else w[sel], lam, opts.max_iterations,
                             opts, before[ok], None, False)  # fmt: skip
        q[sel], conv[sel] = qj, cj
        its[sel] += itj
        cur[ok] = qj
        before[ok] = qj
    return q, conv, its


def _solve_chunk(prob, ref, w, lam, opts, prev):
    """Coarse-to-fine LM on one chunk: every ``_COARSE_STRIDE``-th frame first, then all frames
    from the interpolated coarse solution, the temporal term coupling them exactly."""
    N = ref.shape[0]
    its = np.zeros(N, dtype=np.int64)
    sub = lambda a, i: None if a is None else a[i]  # noqa: E731
    if prev is None and N >= 4 * _COARSE_STRIDE:
        idx = np.unique(np.r_[np.arange(0, N, _COARSE_STRIDE), N - 1])
        qc, _, _, itc = _lm(prob, prob.initial_q(len(idx)), ref[idx], sub(w, idx), lam, opts.max_iterations,
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
    q, _, conv, it = _lm(prob, q, ref, w, lam, fine, opts, prev, None, True)
    its += it
    budget = opts.max_iterations - fine
    for _ in range(2):  # polish the few stragglers with their neighbours held fixed
        bad = np.flatnonzero(~conv)
        if len(bad) == 0 or budget <= 0:
            break
        before, after = _neighbours(q, bad, prev)
        k = max(budget // 2, 1)
        qb, _, _, itb = _lm(prob, q[bad], ref[bad], sub(w, bad), lam, k, opts, before, after, False)
        q[bad] = qb
        its[bad] += itb
        budget -= k
        conv = _lm(prob, q, ref, w, lam, 0, opts, prev, None, True)[2]
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
    return _lm(prob, q, ref, w, lam, 0, opts, before, None, False)[2]


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


def _newton_one(prob: HandProblem, q: np.ndarray, ref, w, lam: float, prev: np.ndarray, iters: int,
                opts: SolverOptions, cache: dict) -> tuple[np.ndarray, float, bool]:
    """One frame (streaming): :func:`_lm`'s algorithm (Newton, active set, projected second phase,
    trust region, LM damping) on plain (n,) arrays, with the kinematics reused from the previous
    frame. Returns q (n,), data objective, converged."""
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
        if big > _MAX_STEP:
            step = step * (_MAX_STEP / big)
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
