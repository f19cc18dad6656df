"""One robot hand's retargeting problem (:class:`HandProblem`): targets from human keypoints, the
objective (dex-retargeting's) with its gradient and Hessian terms, calibration, start values.

Units: metres, radians. Human keypoints: (N, 21, 3) HandX order, metres, human wrist frame.
"""

from __future__ import annotations

import logging

import numpy as np
from handx_robot.retarget.kinematics import (
    HAVE_FUSED,
    PRISMATIC,
    REVOLUTE,
    KinematicTree,
    fused_plan,
    fused_terms,
)
from handx_robot.retarget.robots import RobotSpec, load_tree_cached

from handx_robot.rotations import make_transform, xyz_to_matrix

__all__ = ["HandProblem", "DUMMY_JOINTS"]

log = logging.getLogger(__name__)

DUMMY_JOINTS = tuple(f"dummy_{a}_translation_joint" for a in "xyz") + tuple(
    f"dummy_{a}_rotation_joint" for a in "xyz"
)



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
        return make_transform(self.R_wrist_base, self.p_wrist_base)

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

    def term_weights(self, N: int, weight: np.ndarray | None) -> np.ndarray:
        """(N, K) each objective term's weight in the compiled pass, divided by the term count (the position
        objective's by 3K: a Huber term per coordinate); ``weight``: (N, K) DexPilot weights or None."""
        K = len(self.task_links)
        if self.type == "position":
            return np.full((N, K), 1.0 / (3 * K))
        return np.full((N, K), 1.0 / K) if weight is None else np.asarray(weight, dtype=np.float64) / K

    def data_terms(
        self, q: np.ndarray, ref: np.ndarray, weight: np.ndarray | None, need_grad: bool = True, kin=None
    ):
        """Objective (dex-retargeting's), gradient (N, m), Gauss-Newton Hessian (N, m, m) and the
        second-order kinematic term (N, m, m) or None at ``q``, over the solved dofs ``free`` (m).

        ref: (N, K, 3) scaled reference vectors / positions; weight: (N, K) DexPilot weights or None.
        """
        if kin is None and self._fplan is not None:
            wk = self.term_weights(q.shape[0], weight)
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
        """(N, 4, 4) pose of the robot root in the base frame for dofs ``q`` (N, n): the dummy free
        joint (translation, then rotations about x, y, z: ``Rx @ Ry @ Rz``); identity otherwise."""
        if not self.free_base:
            return np.tile(np.eye(4), (q.shape[0], 1, 1))
        return make_transform(xyz_to_matrix(q[:, 3:6]), q[:, :3])

    def initial_q(self, N: int) -> np.ndarray:
        """(N, n) start: dex-retargeting's (mid-range of the limits; 0 for the free base)."""
        q = np.tile(self.q_fixed, (N, 1))
        mid = 0.5 * (self.lower + self.upper)
        q[:, self.free] = np.where(np.abs(mid) < 1e3, mid, 0.0)[self.free]
        if self.free_base:
            q[:, :6] = 0.0
        return q

