"""Hands whose palm moves on wrist joints: the bimanual solve anchors their palm, not their base.

The dex-urdf Shadow's kinematic tree starts at its forearm; two wrist joints (WRJ2, WRJ1) carry the palm.
The per-hand solve places that base at the scaled human wrist and turns the wrist joints to fit the
fingertip vectors (dex-retargeting's objective, taken in the base frame). In the bimanual solve, that
objective counts a turn of the wrist joints as a change of the fingers' shape, and the wrist term holds
the forearm where the per-hand solution put it. In a clap the Shadow's forearm housings (7 cm wide) meet
before its palms do, so the solve could only reach the palm contact by bending the fingers (offline, :mod:`.forearm`
now also starts it with the forearms turned out of each other's way).

For such a hand (:class:`WristJoints`) the solve instead:

* measures the fingers' shape in the palm frame. The reference vectors turn with the palm, from the
  per-hand solution's palm, so a turn of the wrist joints leaves the shape term unchanged
  (:meth:`WristJoints.shape_reference`, :meth:`WristJoints.drop`);
* holds the palm (the wrist link: the human wrist's match) to the per-hand solution's pose, within the
  wrist budget (:meth:`WristJoints.deviation`);
* holds the base, the forearm, to the per-hand solution only weakly (:data:`BASE_WEIGHT` times the wrist
  term), so the forearm can turn about the palm, within the wrist joints' limits, to make room;
* turns the base about the palm: the QP's variables for the hand are the palm origin's step and the base's
  turn (:meth:`WristJoints.pivot`, :meth:`WristJoints.base_step`). Turned about its own origin, at the
  forearm's far end 25 cm from the palm, a turn moved the palm 25 cm per radian, so the 1 cm trust region let
  the forearm swing 0.04 rad per iteration.

A hand without such joints (Allegro, LEAP, Inspire, the built-in Shadow) keeps the base-anchored terms of
:mod:`.refine`. Units: metres, radians.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from handx_robot.retarget.kinematics.tree import REVOLUTE, KinematicTree

from handx_robot.rotations import matrix_to_rotvec, rotvec_to_matrix

__all__ = ["WristJoints", "BASE_WEIGHT", "wrist_link_index", "wrist_poses", "palm_frame_objective"]

#: the base's (forearm's) deviation costs this fraction of the wrist term, for a hand with wrist joints: it
#: fixes the turn of the forearm about the palm where nothing else does. On the dex-urdf Shadow's 20 contact-rich
#: motions, 0.01, 0.1 and 1 gave the same contacts and shape (within the solve's chaos); 0.1 kept the forearm
#: within 84 mm of the per-hand solution's, 0.01 within 104 mm (``benchmarks/RESULTS.md``)
BASE_WEIGHT = 0.1


def _skew1(v: np.ndarray) -> np.ndarray:
    """(3, 3) cross-product matrix of one vector (``handx_robot.rotations.skew`` batches; this is the hot path)."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def wrist_link_index(problem) -> int | None:
    """Index in ``problem.tree`` of the link standing for the human wrist (:func:`human_wrist_link`), or None
    when the config names none."""
    from handx_robot.retarget.robots import human_wrist_link

    name = human_wrist_link(problem.spec)
    return None if name is None else problem.tree.link_index(name)


def wrist_poses(problem, T_world_base: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(T, 4, 4) world poses of the wrist link (:func:`wrist_link_index`) for base poses ``T_world_base``
    (T, 4, 4) and dofs ``q`` (T, D); the base poses where the config names no wrist link."""
    link = wrist_link_index(problem)
    T_world_base = np.asarray(T_world_base, dtype=np.float64)
    if link is None:
        return T_world_base.copy()
    R, p = problem.tree.chain(link).forward(q)
    T_base_link = np.tile(np.eye(4), (len(q), 1, 1))
    T_base_link[:, :3, :3], T_base_link[:, :3, 3] = R[:, -1], p[:, -1]
    return T_world_base @ T_base_link


@dataclasses.dataclass(frozen=True)
class WristJoints:
    """The wrist link of a hand and the joints that move it. ``chain``: the tree's frames from the base to
    the wrist link (:meth:`KinematicTree.chain`, the link last); ``pos``: the positions, among the bimanual
    solve's dofs of the hand (``dofs``: ``TwoHandWorld.dofs[side]``, tree dof indices), of those that move it."""

    chain: KinematicTree
    pos: np.ndarray
    dofs: np.ndarray
    _fk_cache: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, problem, dofs: np.ndarray) -> WristJoints | None:
        """The hand's wrist joints, or None when no solved dof moves its wrist link (or it has none)."""
        link = wrist_link_index(problem)
        if link is None:
            return None
        chain = problem.tree.chain(link)
        moves = (np.abs(chain.A[:, dofs]) > 0).any(axis=0)
        return cls(chain, np.flatnonzero(moves), np.asarray(dofs)) if moves.any() else None

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The chain's frames for dofs ``q`` (D,): R_base_link (L, 3, 3) and p_base_link (L, 3), read-only. An SQP
        iteration asks for the same ``q`` several times (the palm's deviation, the shape reference, the pivot, the
        base's step): the last few are kept, by value."""
        key = q.tobytes()
        hit = self._fk_cache.get(key)
        if hit is None:
            R, p = self.chain.forward(q[None])
            hit = (R[0], p[0])
            for a in hit:
                a.flags.writeable = False
            if len(self._fk_cache) >= 8:
                del self._fk_cache[next(iter(self._fk_cache))]
            self._fk_cache[key] = hit
        return hit

    def palm(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R_base_palm (3, 3) and p_base_palm (3,) for dofs ``q`` (D,)."""
        R, p = self.forward(q)
        return R[-1], p[-1]

    def shape_reference(self, q: np.ndarray, q_anchor: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """The shape term's reference vectors ``ref`` (1, K, 3), base frame, for dofs ``q`` (D,): turned by
        the palm's turn from the per-hand solution ``q_anchor`` (D,), ``R_bp(q) R_bp(q_anchor)^T``."""
        return ref @ (self.palm(q)[0] @ self.palm(q_anchor)[0].T).T

    def drop(self, g: np.ndarray, H: np.ndarray) -> None:
        """Take the wrist joints out of the shape term's gradient ``g`` (n,) and Hessian ``H`` (n, n), in
        place: in the palm frame the fingers' vectors do not depend on them."""
        g[self.pos] = 0.0
        H[self.pos, :] = 0.0
        H[:, self.pos] = 0.0

    def deviation(self, T_world_base: np.ndarray, q: np.ndarray, anchor: tuple[np.ndarray, np.ndarray]):
        """The palm's deviation from ``anchor`` = (R_world_palm (3, 3), p_world_palm (3,)) of the per-hand
        solution, for base pose ``T_world_base`` (4, 4) and dofs ``q`` (D,): ``dp`` (3,) metres, world
        frame; ``dr`` (3,) rotation vector, palm frame; and their Jacobians ``Jp``, ``Jr`` (3, 6 + n) over the
        hand's solve variables (base translation, world frame; base rotation, base frame; the solved dofs)."""
        c = self.chain
        R, p = self.forward(q)
        Rb = T_world_base[:3, :3]
        dp = Rb @ p[-1] + T_world_base[:3, 3] - anchor[1]
        dr = matrix_to_rotvec(anchor[0].T @ Rb @ R[-1])
        # each joint of the chain: its axis and a point on it, base frame (as KinematicTree.point_jacobian)
        moved = np.flatnonzero(c.link_joint >= 0)
        js = c.link_joint[moved]
        axis = (R[moved] @ c.joint_axis[js][:, :, None])[..., 0]
        origin = p[moved] + (R[moved] @ c.joint_anchor[js][:, :, None])[..., 0]
        revolute = (c.joint_type[js] == REVOLUTE)[:, None]
        r = p[-1] - origin
        cross = axis[:, [1, 2, 0]] * r[:, [2, 0, 1]] - axis[:, [2, 0, 1]] * r[:, [1, 2, 0]]
        d_pos = np.where(revolute, cross, axis)  # (j, 3) per unit of joint motion
        d_rot = np.where(revolute, axis, 0.0) @ R[-1]  # (j, 3) palm frame
        A = c.A[js][:, self.dofs[self.pos]]  # joint motion per unit of each wrist dof
        n = len(self.dofs)
        Jp, Jr = np.zeros((3, 6 + n)), np.zeros((3, 6 + n))
        Jp[:, :3] = np.eye(3)
        Jp[:, 3:6] = -Rb @ _skew1(p[-1])
        Jp[:, 6 + self.pos] = Rb @ d_pos.T @ A
        Jr[:, 3:6] = R[-1].T
        Jr[:, 6 + self.pos] = d_rot.T @ A
        return dp, dr, Jp, Jr

    def pivot(self, T_world_base: np.ndarray, q: np.ndarray) -> np.ndarray:
        """(3, 3) ``B``: with the base turned about the palm's origin, not its own, a step ``(v_palm, w)`` (the
        palm origin's translation, world frame; the base's rotation, base frame) moves the base's origin by
        ``v_palm + B w`` to first order (:meth:`base_step` is exact), for base pose ``T_world_base`` (4, 4)
        and dofs ``q`` (D,)."""
        return T_world_base[:3, :3] @ _skew1(self.palm(q)[1])

    def base_step(self, T_world_base: np.ndarray, q: np.ndarray, step: np.ndarray) -> np.ndarray:
        """The base's step (6,) (translation, world frame; rotation vector, base frame) that turns the base
        by ``step[3:]`` about the palm's origin and moves that origin by ``step[:3]`` (world frame)."""
        p = self.palm(q)[1]
        Rb = T_world_base[:3, :3]
        return np.concatenate([step[:3] + Rb @ (p - rotvec_to_matrix(step[3:]) @ p), step[3:]])

    def anchor_pose(self, T_world_base: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(R_world_palm (3, 3), p_world_palm (3,)) for base pose ``T_world_base`` (4, 4) and dofs ``q`` (D,)."""
        R, p = self.palm(q)
        return T_world_base[:3, :3] @ R, T_world_base[:3, :3] @ p + T_world_base[:3, 3]


def palm_frame_objective(problem, q: np.ndarray, q_anchor: np.ndarray, kp_wrist: np.ndarray) -> np.ndarray:
    """(T,) dex-retargeting's objective for dofs ``q`` (T, D) with the fingers' vectors taken in the palm
    frame (the bimanual solve's shape term, :class:`WristJoints`): the reference turned by the wrist link's
    turn from ``q_anchor`` (T, D), the per-hand solution, in the base frame. Equal to
    ``problem.dex_objective(q, kp_wrist)`` for a hand whose wrist link is rigid on its base."""
    ref, w, _ = problem.reference(kp_wrist)
    link = wrist_link_index(problem)
    if link is not None:
        chain = problem.tree.chain(link)
        R1, R0 = chain.forward(q)[0][:, -1], chain.forward(q_anchor)[0][:, -1]
        ref = np.einsum("tij,tkj,tlk->tli", R1, R0, ref)  # R1 R0^T v for every vector v
    return problem.data_terms(q, ref, w, need_grad=False)[0]
