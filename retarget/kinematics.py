"""Batched forward kinematics and point Jacobians of robot hands, built from a URDF or an MJCF.

A :class:`KinematicTree` holds every frame of the model (URDF links, MJCF bodies and sites) in
topological order, each with its parent, its fixed placement in the parent and the joint (if any)
that moves it. Units: metres, radians. Frames: every pose is expressed in the model's base frame
(the root link of a URDF, the top body of an MJCF hand), ``T_base_link`` maps points from a link
frame to the base frame.

Joints and couplings. The model's moving joints (``joint_names``, tree order) are driven by the
independent degrees of freedom (``dof_names``) through a linear map::

    q_model = A @ q_dof + b          A: (J, n), b: (J,)

which expresses URDF ``<mimic>`` tags (``q = multiplier * q_src + offset``), MJCF joint equality
constraints (linear ``polycoef``) and MJCF fixed tendons whose range pins a linear combination of
joints (Shadow's coupled distal joints: ``0.00705 * J0 - 0.00805 * J1 = 0``). Joint order is always
resolved by name.

Batching: FK runs level by level over the tree depth, each level one vectorised matmul over all
frames of a batch ``(N, ...)``; a hand has 6-10 levels, so the Python overhead is small even for
``N = 1`` (streaming).

URDFs are read with :mod:`xml.etree` (never executed); MJCFs are compiled by MuJoCo.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handx_robot.errors import ModelLoadError, UnknownJointError

__all__ = [
    "KinematicTree",
    "load_tree",
    "load_urdf_tree",
    "load_mjcf_tree",
    "rpy_to_matrix",
    "quat_wxyz_to_matrix",
    "matrix_to_quat_wxyz",
    "axis_angle_matrices",
    "HAVE_FUSED",
    "fused_plan",
    "fused_terms",
]

log = logging.getLogger(__name__)

REVOLUTE, PRISMATIC = 0, 1
#: Limits used for continuous joints (rad).
_UNBOUNDED = 1e4


# ----------------------------------------------------------------------------- rotations
def rpy_to_matrix(rpy: Sequence[float]) -> np.ndarray:
    """URDF roll-pitch-yaw (fixed axes x, y, z; rad) -> (3, 3) rotation ``Rz @ Ry @ Rx``."""
    r, p, y = (float(v) for v in rpy)
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` [w, x, y, z] -> rotations ``(..., 3, 3)``."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def matrix_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` [w, x, y, z] with ``w >= 0``."""
    R = np.asarray(R, dtype=np.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    # all four candidate magnitudes; pick the largest per element for numerical stability
    cand = np.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    k = np.argmax(cand, axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(cand, k[..., None], -1)[..., 0], 1e-12)) * 2
    q = np.empty(R.shape[:-2] + (4,))
    a = (R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1])
    b = (R[..., 0, 1] + R[..., 1, 0], R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1])
    opts = [
        np.stack([s / 4, a[0] / s, a[1] / s, a[2] / s], -1),
        np.stack([a[0] / s, s / 4, b[0] / s, b[1] / s], -1),
        np.stack([a[1] / s, b[0] / s, s / 4, b[2] / s], -1),
        np.stack([a[2] / s, b[1] / s, b[2] / s, s / 4], -1),
    ]
    for i, o in enumerate(opts):
        q = np.where((k == i)[..., None], o, q)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def axis_angle_matrices(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rodrigues: unit axes ``(J, 3)`` and angles ``(N, J)`` -> rotations ``(N, J, 3, 3)``."""
    axes = np.asarray(axes, dtype=np.float64)
    s = np.sin(angles)[..., None, None]
    c = np.cos(angles)[..., None, None]
    x, y, z = axes[:, 0], axes[:, 1], axes[:, 2]
    zero = np.zeros_like(x)
    K = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (broadcasting), without ``np.cross``'s axis juggling."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


# ----------------------------------------------------------------------------- the tree
@dataclasses.dataclass(frozen=True, eq=False)
class KinematicTree:
    """A robot hand's kinematic tree (see the module docstring).

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
        lo, hi = np.full(n, -_UNBOUNDED), np.full(n, _UNBOUNDED)
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
        ax = self.joint_axis
        zero = np.zeros(len(ax))
        K = np.stack(
            [np.stack([zero, -ax[:, 2], ax[:, 1]], -1), np.stack([ax[:, 2], zero, -ax[:, 0]], -1),
             np.stack([-ax[:, 1], ax[:, 0], zero], -1)], -2,
        )  # fmt: skip
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
        Rq = plan["I3"] + s * plan["K"] + c1 * plan["K2"]  # (N, J, 3, 3), Rodrigues
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
        ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
        zero = np.zeros_like(ax)
        U = len(used)
        S = np.stack([zero, -az, ay, az, zero, -ax, -ay, ax, zero], -1).reshape(N, U, 3, 3)
        Jm = (S.reshape(N, U * 3, 3) @ x.transpose(0, 2, 1)).reshape(N, U, 3, K) - _cross(a, o)[..., None]
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


# ----------------------------------------------------------------------------- loaders
def load_tree(path: str | Path, fmt: str | None = None) -> KinematicTree:
    """Read a URDF (``.urdf``) or an MJCF (``.xml``/``.mjcf``); ``fmt`` 'urdf' or 'mjcf' overrides."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"robot model {path} not found")
    fmt = fmt or ("urdf" if path.suffix.lower() == ".urdf" else "mjcf")
    if fmt == "urdf":
        return load_urdf_tree(path)
    if fmt == "mjcf":
        return load_mjcf_tree(path)
    raise ModelLoadError(f"{path}: unknown model format {fmt!r}; allowed: 'urdf', 'mjcf'")


def _floats(text: str | None, n: int, default: Sequence[float], where: str) -> np.ndarray:
    if text is None:
        return np.asarray(default, dtype=np.float64)
    try:
        v = np.array([float(t) for t in text.split()], dtype=np.float64)
    except ValueError:
        raise ModelLoadError(f"{where}: cannot read numbers from {text!r}") from None
    if v.shape != (n,) or not np.all(np.isfinite(v)):
        raise ModelLoadError(f"{where}: expected {n} finite numbers, got {text!r}")
    return v


def load_urdf_tree(path: str | Path) -> KinematicTree:
    """Kinematic tree of a URDF: links, joints (revolute, continuous, prismatic, fixed), mimic tags."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ModelLoadError(f"{path}: not a readable URDF/XML file ({exc})") from exc
    if root.tag != "robot":
        raise ModelLoadError(f"{path}: root element is <{root.tag}>, a URDF has <robot>")
    links = [el.get("name") for el in root.findall("link")]
    joints = {}
    children: dict[str, list[str]] = {}
    for el in root.findall("joint"):
        name, jtype = el.get("name"), el.get("type")
        where = f"{path}: joint {name!r}"
        par, chi = el.find("parent"), el.find("child")
        if par is None or chi is None:
            raise ModelLoadError(f"{where} lacks <parent> or <child>")
        if jtype not in ("revolute", "continuous", "prismatic", "fixed"):
            raise ModelLoadError(
                f"{where} has type {jtype!r}; supported: revolute, continuous, prismatic, fixed"
            )
        origin = el.find("origin")
        xyz = _floats(origin.get("xyz") if origin is not None else None, 3, (0, 0, 0), where)
        rpy = _floats(origin.get("rpy") if origin is not None else None, 3, (0, 0, 0), where)
        axis_el = el.find("axis")
        axis = _floats(axis_el.get("xyz") if axis_el is not None else None, 3, (1, 0, 0), where)
        if jtype != "fixed":
            nrm = np.linalg.norm(axis)
            if nrm < 1e-9:
                raise ModelLoadError(f"{where} has a zero axis")
            axis = axis / nrm
        lim = el.find("limit")
        lo, hi = -_UNBOUNDED, _UNBOUNDED
        if jtype in ("revolute", "prismatic"):
            if lim is None:
                raise ModelLoadError(f"{where}: a {jtype} joint needs <limit lower= upper=>")
            lo, hi = float(lim.get("lower", 0.0)), float(lim.get("upper", 0.0))
        mim = el.find("mimic")
        mimic = None
        if mim is not None:
            mimic = (mim.get("joint"), float(mim.get("multiplier", 1.0)), float(mim.get("offset", 0.0)))
        joints[chi.get("link")] = dict(
            name=name, type=jtype, parent=par.get("link"), R=rpy_to_matrix(rpy), p=xyz, axis=axis,
            lo=lo, hi=hi, mimic=mimic,
        )  # fmt: skip
        children.setdefault(par.get("link"), []).append(chi.get("link"))
    roots = [ln for ln in links if ln not in joints]
    if len(roots) != 1:
        raise ModelLoadError(f"{path}: a URDF needs exactly one root link, found {roots}")
    order: list[str] = []
    stack = [roots[0]]
    while stack:  # depth first, children in document order (pinocchio's order)
        ln = stack.pop()
        order.append(ln)
        stack.extend(reversed(children.get(ln, [])))
    idx = {ln: i for i, ln in enumerate(order)}
    L = len(order)
    parent = np.full(L, -1)
    Rpl = np.tile(np.eye(3), (L, 1, 1))
    ppl = np.zeros((L, 3))
    link_joint = np.full(L, -1)
    jnames, jtype, jaxis, jlo, jhi, mimics = [], [], [], [], [], []
    for i, ln in enumerate(order[1:], start=1):
        j = joints[ln]
        parent[i] = idx[j["parent"]]
        Rpl[i], ppl[i] = j["R"], j["p"]
        if j["type"] != "fixed":
            link_joint[i] = len(jnames)
            jnames.append(j["name"])
            jtype.append(PRISMATIC if j["type"] == "prismatic" else REVOLUTE)
            jaxis.append(j["axis"])
            jlo.append(j["lo"])
            jhi.append(j["hi"])
            mimics.append(j["mimic"])
    A, b, dof = _coupling_from_mimic(jnames, mimics, str(path))
    return KinematicTree(
        link_names=tuple(order), parent=parent, R_parent_link=Rpl, p_parent_link=ppl, link_joint=link_joint,
        joint_names=tuple(jnames), joint_type=np.asarray(jtype, dtype=np.int64).reshape(-1),
        joint_axis=np.asarray(jaxis, dtype=np.float64).reshape(-1, 3), joint_anchor=np.zeros((len(jnames), 3)),
        joint_lower=np.asarray(jlo, dtype=np.float64), joint_upper=np.asarray(jhi, dtype=np.float64),
        dof_names=dof, A=A, b=b, source=str(path),
    )  # fmt: skip


def _coupling_from_mimic(jnames, mimics, source) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Linear map from independent joints to all joints, resolving mimic chains."""
    J = len(jnames)
    dof = tuple(n for n, m in zip(jnames, mimics) if m is None)
    A = np.zeros((J, len(dof)))
    b = np.zeros(J)

    def resolve(j: int, seen: tuple[int, ...]) -> tuple[np.ndarray, float]:
        if jnames[j] in dof:
            row = np.zeros(len(dof))
            row[dof.index(jnames[j])] = 1.0
            return row, 0.0
        src, mult, off = mimics[j]
        if src not in jnames:
            raise ModelLoadError(f"{source}: joint {jnames[j]!r} mimics {src!r}, which is not a moving joint")
        s = jnames.index(src)
        if s in seen:
            raise ModelLoadError(f"{source}: mimic joints form a cycle through {jnames[j]!r}")
        row, bb = resolve(s, seen + (j,))
        return mult * row, mult * bb + off

    for j in range(J):
        A[j], b[j] = resolve(j, ())
    return A, b, dof


def load_mjcf_tree(path: str | Path, *, root_body: str | None = None) -> KinematicTree:
    """Kinematic tree of an MJCF hand compiled by MuJoCo: bodies, hinge/slide joints, sites, and
    linear couplings (joint equalities, fixed tendons with a pinned length).

    The base is ``root_body`` or the first body under the world. Bodies with several joints get one
    frame per joint (named ``body`` for the last, ``body/joint`` for the others).
    """
    import mujoco

    path = Path(path)
    try:
        m = mujoco.MjModel.from_xml_path(str(path))
    except Exception as exc:  # mujoco raises ValueError with its own message
        raise ModelLoadError(f"{path}: MuJoCo rejected the model: {exc}") from exc
    return tree_from_mjmodel(m, str(path), root_body=root_body)


def tree_from_mjmodel(m, source: str, *, root_body: str | None = None) -> KinematicTree:
    """Build a :class:`KinematicTree` from a compiled ``mujoco.MjModel`` (see :func:`load_mjcf_tree`)."""
    import mujoco

    def name(kind, i):
        return mujoco.mj_id2name(m, kind, i) or f"{kind.name.lower()}{i}"

    OBJ_BODY, OBJ_JOINT, OBJ_SITE = mujoco.mjtObj.mjOBJ_BODY, mujoco.mjtObj.mjOBJ_JOINT, mujoco.mjtObj.mjOBJ_SITE
    if root_body is None:
        tops = [i for i in range(1, m.nbody) if m.body_parentid[i] == 0]
        if not tops:
            raise ModelLoadError(f"{source}: the model has no body under the world")
        root = tops[0]
    else:
        root = mujoco.mj_name2id(m, OBJ_BODY, root_body)
        if root < 0:
            raise ModelLoadError(f"{source}: no body named {root_body!r}")
    names: list[str] = []
    parent: list[int] = []
    Rs: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    ljoint: list[int] = []
    jnames, jtype, jaxis, janchor, jlo, jhi, jids = [], [], [], [], [], [], []
    body_frame: dict[int, int] = {}

    def add(nm, par, R, p, j=-1):
        names.append(nm)
        parent.append(par)
        Rs.append(R)
        ps.append(p)
        ljoint.append(j)
        return len(names) - 1

    stack = [root]
    while stack:
        bi = stack.pop()
        bname = name(OBJ_BODY, bi)
        if bi == root:
            par, R, p = -1, np.eye(3), np.zeros(3)
        else:
            par = body_frame[int(m.body_parentid[bi])]
            R, p = quat_wxyz_to_matrix(m.body_quat[bi]), np.array(m.body_pos[bi], dtype=np.float64)
        jadr, jnum = int(m.body_jntadr[bi]), int(m.body_jntnum[bi])
        if bi == root or jnum == 0:
            if bi == root and jnum:
                raise ModelLoadError(f"{source}: the base body {bname!r} has joints; give a root body above them")
            fi = add(bname, par, R, p)
        else:
            fi = par
            for k in range(jnum):
                ji = jadr + k
                t = int(m.jnt_type[ji])
                if t not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                    raise ModelLoadError(
                        f"{source}: joint {name(OBJ_JOINT, ji)!r} is a {mujoco.mjtJoint(t).name}; "
                        "hand models may only use hinge and slide joints"
                    )
                last = k == jnum - 1
                nm = bname if last else f"{bname}/{name(OBJ_JOINT, ji)}"
                jidx = len(jnames)
                fi = add(nm, fi, R if k == 0 else np.eye(3), p if k == 0 else np.zeros(3), jidx)
                jnames.append(name(OBJ_JOINT, ji))
                jtype.append(REVOLUTE if t == mujoco.mjtJoint.mjJNT_HINGE else PRISMATIC)
                ax = np.array(m.jnt_axis[ji], dtype=np.float64)
                jaxis.append(ax / np.linalg.norm(ax))
                janchor.append(np.array(m.jnt_pos[ji], dtype=np.float64))
                if m.jnt_limited[ji]:
                    jlo.append(float(m.jnt_range[ji, 0]))
                    jhi.append(float(m.jnt_range[ji, 1]))
                else:
                    jlo.append(-_UNBOUNDED)
                    jhi.append(_UNBOUNDED)
                jids.append(ji)
        body_frame[bi] = fi
        for si in range(m.nsite):
            if m.site_bodyid[si] == bi:
                add(name(OBJ_SITE, si), fi, quat_wxyz_to_matrix(m.site_quat[si]), np.array(m.site_pos[si], float))
        kids = [c for c in range(m.nbody) if m.body_parentid[c] == bi and c != bi]
        stack.extend(reversed(kids))
    # topological order is guaranteed by the DFS (parents are added before children)
    A, b, dof = _mjcf_couplings(m, jnames, jids, source)
    return KinematicTree(
        link_names=tuple(names), parent=np.asarray(parent), R_parent_link=np.asarray(Rs), p_parent_link=np.asarray(ps),
        link_joint=np.asarray(ljoint), joint_names=tuple(jnames), joint_type=np.asarray(jtype, dtype=np.int64),
        joint_axis=np.asarray(jaxis).reshape(-1, 3), joint_anchor=np.asarray(janchor).reshape(-1, 3),
        joint_lower=np.asarray(jlo), joint_upper=np.asarray(jhi), dof_names=dof, A=A, b=b, source=source,
    )  # fmt: skip


#: A fixed tendon whose range is narrower than this (m or rad) pins its joints' linear combination.
_PINNED_TENDON_RANGE = 5e-3


def _mjcf_couplings(m, jnames, jids, source):
    """Couplings of an MJCF: joint equalities (linear part of polycoef) and pinned fixed tendons.

    The dependent joint of a tendon is the one without an actuator (else the first listed).
    """
    import mujoco

    jid_to_idx = {ji: k for k, ji in enumerate(jids)}
    actuated = set()
    for a in range(m.nu):
        if m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT:
            actuated.add(int(m.actuator_trnid[a, 0]))
    # each relation: dependent joint index -> (coefficient row over joints, constant)
    relations: dict[int, tuple[dict[int, float], float]] = {}
    for e in range(m.neq):
        if m.eq_type[e] != mujoco.mjtEq.mjEQ_JOINT or not m.eq_active0[e]:
            continue
        j1, j2 = int(m.eq_obj1id[e]), int(m.eq_obj2id[e])
        poly = m.eq_data[e, :5]
        if np.any(np.abs(poly[2:]) > 1e-12):
            log.warning("%s: joint equality %d is nonlinear; using its linear part", source, e)
        if j1 in jid_to_idx:
            if j2 >= 0 and j2 in jid_to_idx:
                relations[jid_to_idx[j1]] = ({jid_to_idx[j2]: float(poly[1])}, float(poly[0]))
            else:
                relations[jid_to_idx[j1]] = ({}, float(poly[0]))
    for t in range(m.ntendon):
        if not m.tendon_limited[t]:
            continue
        lo, hi = m.tendon_range[t]
        adr, num = int(m.tendon_adr[t]), int(m.tendon_num[t])
        if hi - lo > _PINNED_TENDON_RANGE or num < 2:
            continue
        wraps = [(int(m.wrap_objid[adr + k]), float(m.wrap_prm[adr + k])) for k in range(num)]
        if any(m.wrap_type[adr + k] != mujoco.mjtWrap.mjWRAP_JOINT for k in range(num)):
            continue
        if not all(ji in jid_to_idx for ji, _ in wraps):
            continue
        dep = next((ji for ji, _ in wraps if ji not in actuated), wraps[0][0])
        cdep = dict(wraps)[dep]
        mid = 0.5 * (lo + hi)
        row = {jid_to_idx[ji]: -c / cdep for ji, c in wraps if ji != dep}
        relations[jid_to_idx[dep]] = (row, mid / cdep)
    J = len(jnames)
    dof = tuple(jnames[k] for k in range(J) if k not in relations)
    A = np.zeros((J, len(dof)))
    b = np.zeros(J)

    def resolve(k, seen):
        if k not in relations:
            r = np.zeros(len(dof))
            r[dof.index(jnames[k])] = 1.0
            return r, 0.0
        if k in seen:
            raise ModelLoadError(f"{source}: joint couplings form a cycle through {jnames[k]!r}")
        coefs, const = relations[k]
        r, c = np.zeros(len(dof)), const
        for s, w in coefs.items():
            rs, cs = resolve(s, seen | {k})
            r += w * rs
            c += w * cs
        return r, c

    for k in range(J):
        A[k], b[k] = resolve(k, frozenset())
    return A, b, dof


# ----------------------------------------------------------------------------- fused kernel (numba)
# One compiled pass per frame: FK, point Jacobians, the retargeting objective's value, gradient,
# Gauss-Newton Hessian and second-order kinematic term. Same mathematics as ``forward`` +
# ``point_jacobian`` + ``hessian_term`` + ``handx_robot.retarget.solver.HandProblem.data_terms`` (tests compare
# them to 1e-9); 5-20x faster than the batched numpy path, which stays the fallback when numba is
# not installed or the environment sets HANDX_NUMBA=0. Compiled once per machine, cached in __pycache__.
try:  # pragma: no cover - exercised through HandProblem
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None

#: True when the compiled kernels are used (numba importable and HANDX_NUMBA is not "0").
HAVE_FUSED = _numba is not None and os.environ.get("HANDX_NUMBA", "1") != "0"
if _numba is None:
    log.warning("numba is not installed: retargeting uses the batched numpy path (5-10x slower); pip install numba")
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
