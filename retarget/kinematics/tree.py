"""The kinematic tree of a robot hand and its batched forward kinematics, point Jacobians and
second-order terms (numpy).

Units: metres, radians. Every pose is in the model's base frame (frame 0): ``R_base_link`` /
``p_base_link`` map points from a link frame to the base frame. Joints and couplings:
``q_model = A @ q_dof + b`` (see :mod:`handx_robot.retarget.kinematics`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from handx_robot.errors import ModelLoadError, UnknownJointError
from handx_robot.rotations import skew

__all__ = ["KinematicTree", "REVOLUTE", "PRISMATIC", "UNBOUNDED"]

REVOLUTE, PRISMATIC = 0, 1
#: Limits used for continuous joints (rad).
UNBOUNDED = 1e4


@dataclasses.dataclass(frozen=True, eq=False)
class KinematicTree:
    """A robot hand's kinematic tree (see :mod:`handx_robot.retarget.kinematics`).

    link_names:   (L,) frame names, topological order (parents first); frame 0 is the base.
    parent:       (L,) int, parent frame index (-1 for the base).
    R_parent_link, p_parent_link: (L, 3, 3), (L, 3) fixed placement of each frame in its parent,
                  before its joint moves (metres).
    link_joint:   (L,) int, index into ``joint_names`` of the joint moving the frame, -1 if rigid.
    joint_names:  (J,) model joints that move (revolute / prismatic), tree order.
    joint_type:   (J,) 0 revolute, 1 prismatic.
    joint_axis:   (J, 3) unit axis in the moved frame.
    joint_anchor: (J, 3) point on the axis in the moved frame (0 for URDF).
    joint_lower, joint_upper: (J,) limits (rad or m); continuous joints get +-1e4.
    dof_names:    (n,) independent degrees of freedom (joints not driven by another joint).
    A, b:         (J, n), (J,) ``q_model = A @ q_dof + b``.
    source:       file the tree was read from.
    """

    link_names: tuple[str, ...]
    parent: np.ndarray
    R_parent_link: np.ndarray
    p_parent_link: np.ndarray
    link_joint: np.ndarray
    joint_names: tuple[str, ...]
    joint_type: np.ndarray
    joint_axis: np.ndarray
    joint_anchor: np.ndarray
    joint_lower: np.ndarray
    joint_upper: np.ndarray
    dof_names: tuple[str, ...]
    A: np.ndarray
    b: np.ndarray
    source: str = "<memory>"

    def __post_init__(self) -> None:
        L, J, n = len(self.link_names), len(self.joint_names), len(self.dof_names)
        if len(set(self.link_names)) != L:
            dup = sorted({x for x in self.link_names if self.link_names.count(x) > 1})
            raise ModelLoadError(f"{self.source}: duplicate link/frame names {dup}")
        if np.asarray(self.A).shape != (J, n) or np.asarray(self.b).shape != (J,):
            raise ModelLoadError(f"{self.source}: coupling map has shape {np.shape(self.A)}, expected ({J}, {n})")
        parent = np.asarray(self.parent, dtype=np.int64)
        if L == 0 or parent[0] != -1 or np.any(parent[1:] >= np.arange(1, L)) or np.any(parent[1:] < 0):
            raise ModelLoadError(f"{self.source}: frames are not in topological order with one root")
        depth = np.zeros(L, dtype=np.int64)
        for i in range(1, L):
            depth[i] = depth[parent[i]] + 1
        levels = [np.nonzero(depth == d)[0] for d in range(1, int(depth.max()) + 1)] if L > 1 else []
        # ancestor joints of every frame: (L, J) bool
        anc = np.zeros((L, J), dtype=bool)
        lj = np.asarray(self.link_joint, dtype=np.int64)
        for i in range(L):
            if i > 0:
                anc[i] = anc[parent[i]]
            if lj[i] >= 0:
                anc[i, lj[i]] = True
        jl = np.full(J, -1, dtype=np.int64)
        for i in range(L):
            if lj[i] >= 0:
                jl[lj[i]] = i
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "link_joint", lj)
        object.__setattr__(self, "_levels", levels)
        object.__setattr__(self, "_ancestors", anc)
        object.__setattr__(self, "_joint_link", jl)
        object.__setattr__(self, "_link_index", {name: i for i, name in enumerate(self.link_names)})

    # -- names -----------------------------------------------------------------
    @property
    def num_dof(self) -> int:
        return len(self.dof_names)

    @property
    def base_name(self) -> str:
        return self.link_names[0]

    def link_index(self, name: str, *, what: str = "link", config: str | None = None) -> int:
        """Index of a frame by name; the error names the model file and lists the frames."""
        try:
            return self._link_index[name]
        except KeyError:
            where = f" (named in {config})" if config else ""
            raise ModelLoadError(
                f"{what} {name!r}{where} is not in the model {self.source}; its links/frames are: "
                f"{', '.join(self.link_names)}. Fix the link name in the config."
            ) from None

    def dof_index(self, names: Sequence[str]) -> np.ndarray:
        """Indices of ``names`` in ``dof_names`` (error lists the valid names)."""
        out = []
        for n in names:
            if n not in self.dof_names:
                coupled = " (it is coupled to another joint)" if n in self.joint_names else ""
                raise UnknownJointError(
                    f"joint {n!r}{coupled} is not an independent joint of {self.source}; "
                    f"independent joints: {', '.join(self.dof_names)}"
                )
            out.append(self.dof_names.index(n))
        return np.asarray(out, dtype=np.int64)

    @property
    def dof_lower(self) -> np.ndarray:
        """(n,) lower limits of the independent dofs, tightened so coupled joints stay in range too."""
        return self._dof_limits()[0]

    @property
    def dof_upper(self) -> np.ndarray:
        return self._dof_limits()[1]

    def _dof_limits(self) -> tuple[np.ndarray, np.ndarray]:
        cached = self.__dict__.get("_limits")
        if cached is not None:
            return cached
        n = self.num_dof
        lo, hi = np.full(n, -UNBOUNDED), np.full(n, UNBOUNDED)
        for j in range(len(self.joint_names)):
            nz = np.nonzero(np.abs(self.A[j]) > 1e-12)[0]
            if len(nz) != 1:
                continue  # multi-source couplings: limits of the sources only
            k = nz[0]
            a, b = self.A[j, k], self.b[j]
            l_, u_ = sorted(((self.joint_lower[j] - b) / a, (self.joint_upper[j] - b) / a))
            lo[k], hi[k] = max(lo[k], l_), min(hi[k], u_)
        bad = lo > hi
        if bad.any():
            names = [self.dof_names[i] for i in np.nonzero(bad)[0]]
            raise ModelLoadError(f"{self.source}: joint limits of {names} and their coupled joints do not overlap")
        object.__setattr__(self, "_limits", (lo, hi))
        return lo, hi

    def chain(self, link: int) -> KinematicTree:
        """The frames from the base to frame ``link`` alone, as a tree with the same dofs: its
        :meth:`forward` places that frame (its last) as this tree's does, for a fraction of the work."""
        frames = [link]
        while self.parent[frames[-1]] >= 0:
            frames.append(int(self.parent[frames[-1]]))
        frames = frames[::-1]
        lj = self.link_joint[frames]
        joints = lj[lj >= 0]
        new_joint = np.full(len(lj), -1, dtype=np.int64)
        new_joint[lj >= 0] = np.arange(len(joints))
        return KinematicTree(
            link_names=tuple(self.link_names[f] for f in frames), parent=np.arange(len(frames)) - 1,
            R_parent_link=self.R_parent_link[frames], p_parent_link=self.p_parent_link[frames], link_joint=new_joint,
            joint_names=tuple(self.joint_names[j] for j in joints), joint_type=self.joint_type[joints],
            joint_axis=self.joint_axis[joints], joint_anchor=self.joint_anchor[joints],
            joint_lower=self.joint_lower[joints], joint_upper=self.joint_upper[joints], dof_names=self.dof_names,
            A=self.A[joints], b=self.b[joints], source=self.source,
        )  # fmt: skip

    # -- kinematics ----------------------------------------------------------------
    def model_q(self, q_dof: np.ndarray) -> np.ndarray:
        """(N, n) independent dofs -> (N, J) model joint positions."""
        return np.asarray(q_dof, dtype=np.float64) @ self.A.T + self.b

    def dof_from_model_q(self, q_model: np.ndarray, joint_names: Sequence[str] | None = None) -> np.ndarray:
        """(N, J') joint positions (given by ``joint_names``, default model order) -> (N, n) dofs."""
        q_model = np.atleast_2d(np.asarray(q_model, dtype=np.float64))
        names = list(joint_names) if joint_names is not None else list(self.joint_names)
        out = np.zeros((q_model.shape[0], self.num_dof))
        for k, n in enumerate(self.dof_names):
            if n not in names:
                raise UnknownJointError(f"joint {n!r} of {self.source} is missing; given: {names}")
            out[:, k] = q_model[:, names.index(n)]
        return out

    def _plan(self) -> dict:
        """Precomputed per-level index arrays and constants for :meth:`forward` (built once)."""
        plan = self.__dict__.get("_plan_cache")
        if plan is not None:
            return plan
        K = skew(self.joint_axis).reshape(-1, 3, 3)  # (J, 3, 3); (0, 3, 3) for a rigid model
        levels = []
        lj = self.link_joint
        for lev in self._levels:
            moved = lj[lev] >= 0
            levels.append(
                dict(
                    lev=lev, par=self.parent[lev], Ro=self.R_parent_link[lev], po=self.p_parent_link[lev][:, :, None],
                    all_moved=bool(moved.all()), none_moved=not moved.any(), moved=np.nonzero(moved)[0],
                    js=lj[lev][moved],
                )  # fmt: skip
            )
        plan = dict(
            K=K, K2=K @ K, I3=np.eye(3), levels=levels, revolute=self.joint_type == REVOLUTE,
            any_prismatic=bool(np.any(self.joint_type == PRISMATIC)), any_anchor=bool(np.any(self.joint_anchor != 0)),
        )  # fmt: skip
        object.__setattr__(self, "_plan_cache", plan)
        return plan

    def forward(self, q_dof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FK of every frame.

        q_dof: (N, n) independent dofs. Returns ``R_base_link`` (N, L, 3, 3) and ``p_base_link``
        (N, L, 3), metres, base frame.
        """
        q_dof = np.atleast_2d(np.asarray(q_dof, dtype=np.float64))
        N, L = q_dof.shape[0], len(self.link_names)
        plan = self._plan()
        q = self.model_q(q_dof)
        qr = np.where(plan["revolute"], q, 0.0) if plan["any_prismatic"] else q
        s = np.sin(qr)[..., None, None]
        c1 = (1.0 - np.cos(qr))[..., None, None]
        # Rodrigues with K, K^2 cached per model, inline on purpose (hot path; tested against
        # handx_robot.rotations.axis_angle_to_matrix)
        Rq = plan["I3"] + s * plan["K"] + c1 * plan["K2"]  # (N, J, 3, 3)
        # joint motion in the moved frame: x -> Rq (x - c) + c + axis * q_prismatic
        tq = None
        if plan["any_anchor"] or plan["any_prismatic"]:
            c = self.joint_anchor
            tq = c[None] - (Rq @ c[:, :, None])[..., 0]
            if plan["any_prismatic"]:
                tq = tq + self.joint_axis[None] * np.where(plan["revolute"], 0.0, q)[..., None]
        R = np.empty((N, L, 3, 3))
        p = np.empty((N, L, 3))
        R[:, 0] = self.R_parent_link[0]
        p[:, 0] = self.p_parent_link[0]
        for lv in plan["levels"]:
            lev = lv["lev"]
            Rp = R[:, lv["par"]]
            Rl = Rp @ lv["Ro"]  # (N, k, 3, 3)
            pl = p[:, lv["par"]] + (Rp @ lv["po"])[..., 0]
            if lv["all_moved"]:
                if tq is not None:
                    pl = pl + (Rl @ tq[:, lv["js"], :, None])[..., 0]
                Rl = Rl @ Rq[:, lv["js"]]
            elif not lv["none_moved"]:
                mv, js = lv["moved"], lv["js"]
                Rm = Rl[:, mv]
                if tq is not None:
                    pl[:, mv] = pl[:, mv] + (Rm @ tq[:, js, :, None])[..., 0]
                Rl[:, mv] = Rm @ Rq[:, js]
            R[:, lev] = Rl
            p[:, lev] = pl
        return R, p

    def point_jacobian(
        self,
        R: np.ndarray,
        p: np.ndarray,
        links: np.ndarray,
        offsets: np.ndarray | None = None,
        dofs: np.ndarray | None = None,
        with_aux: bool = False,
    ):
        """Positions and Jacobians of points fixed to ``links``.

        R, p: FK output. links: (K,) frame indices. offsets: optional (K, 3) point in the link frame.
        dofs: optional subset of dof indices (columns of the Jacobian; default all).
        Returns ``x`` (N, K, 3) metres, base frame, and ``J = dx/dq_dof`` (N, K, 3, n or len(dofs));
        with ``with_aux`` also the intermediate terms :meth:`hessian_term` reuses.
        """
        plan = self._plan()
        links = np.asarray(links, dtype=np.int64)
        x = p[:, links]
        if offsets is not None:
            x = x + (R[:, links] @ np.asarray(offsets)[:, :, None])[..., 0]
        A = self.A if dofs is None else self.A[:, dofs]
        N, K = x.shape[:2]
        # joints that move any of the points and drive any of the wanted dofs
        anc = self._ancestors[links]  # (K, J)
        used = np.nonzero(anc.any(0) & (np.abs(A) > 0).any(1))[0]
        if len(used) == 0:
            J = np.zeros(x.shape + (A.shape[1],))
            return (x, J, None) if with_aux else (x, J)
        jl = self._joint_link[used]
        Rj = R[:, jl]  # (N, U, 3, 3) frame moved by each joint
        a = (Rj @ self.joint_axis[used][:, :, None])[..., 0]  # (N, U, 3) world axis
        o = p[:, jl]
        if plan["any_anchor"]:
            o = o + (Rj @ self.joint_anchor[used][:, :, None])[..., 0]
        # revolute column for point k: a x (x_k - o) = skew(a) x_k - a x o
        U = len(used)
        S = skew(a)  # (N, U, 3, 3)
        Jm = (S.reshape(N, U * 3, 3) @ x.transpose(0, 2, 1)).reshape(N, U, 3, K) - (S @ o[..., None])
        pri = ~plan["revolute"][used]
        if pri.any():
            Jm[:, pri] = np.broadcast_to(a[:, pri, :, None], Jm[:, pri].shape)
        mask = anc[:, used].T[None, :, None, :]  # (1, U, 1, K)
        Jm = Jm * mask  # (N, U, 3, K)
        Au = A[used]
        J = Jm.transpose(0, 3, 2, 1) @ Au  # (N, K, 3, n)
        if not with_aux:
            return x, J
        up = self._ancestors[jl][:, used].T  # up[i, j]: joint i is an ancestor of (or is) joint j
        aux = dict(S=S, Jm=Jm, mask=mask * (~pri)[None, :, None, None], Au=Au, up=up)
        return x, J, aux

    @staticmethod
    def hessian_term(aux: dict | None, G: np.ndarray, n: int) -> np.ndarray:
        """``sum_k G_k . d2 x_k / dq dq`` (N, n, n) from :meth:`point_jacobian`'s ``aux``.

        G: (N, K, 3) gradient of a scalar w.r.t. the points. For a revolute joint i that is an
        ancestor of (or is) joint j: ``d2x / dq_i dq_j = a_i x dx/dq_j``; prismatic joints i add none.
        """
        N = G.shape[0]
        if aux is None:
            return np.zeros((N, n, n))
        S, Jm = aux["S"], aux["Jm"]
        U = S.shape[1]
        # C[u, :, k] = G_k x a_u = -(a_u x G_k)
        C = -(S.reshape(N, U * 3, 3) @ G.transpose(0, 2, 1)).reshape(N, U, 3, -1) * aux["mask"]
        T = C.reshape(N, U, -1) @ Jm.reshape(N, U, -1).transpose(0, 2, 1)
        T = T * aux["up"]
        T = T + T.transpose(0, 2, 1) - T * np.eye(U)
        Au = aux["Au"]
        return Au.T @ T @ Au

    def point_hessian_term(
        self, R: np.ndarray, p: np.ndarray, links: np.ndarray, G: np.ndarray, dofs: np.ndarray | None = None
    ) -> np.ndarray:
        """Second-order term ``sum_k G_k . d2 x_k / dq dq`` (N, n, n) for points at ``links`` origins
        (see :meth:`hessian_term`). With the Gauss-Newton term it gives the exact Hessian."""
        _, J, aux = self.point_jacobian(R, p, links, dofs=dofs, with_aux=True)
        return self.hessian_term(aux, G, J.shape[-1])


