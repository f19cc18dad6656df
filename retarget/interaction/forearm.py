"""Offline, before the bimanual solve: the forearms of hands whose palm moves on wrist joints turned out of each
other's way where the palms come close (:func:`turn_forearms`). Units: metres, radians.

The dex-urdf Shadow's forearm housing (its collision hull 15 cm across) reaches to a few cm below the palm. Where the
human presses the palms together or claps, the per-hand solution puts the two forearms into each other, and the solve,
starting from there, pushed them apart sideways, and with them the palms, which its fingers then bent to reach (the
forearms' turn that makes room costs it more per iteration: the base's origin, the arm's flange, sits 25 cm from the
palm). Yet the palms can meet flat: each forearm turned about a wrist joint's axis, that joint turned back as much, so
the palm and the fingers stay where the per-hand solution put them, opens a V between the forearms.

:func:`turn_forearms` gives the solve that per-hand start. For each stretch of frames where the palms (the links
matched to the human wrists) come within :data:`NEAR_M` of each other, at its frame of closest approach, with the hands
moved apart until their palms and fingers just clear (the per-hand palms overlap by what a robot palm is thicker than
a human's), it finds the wrist joint and direction whose turn moves each forearm's far end away from the other palm
fastest, and the smallest turn that keeps the forearms' geoms (those of the links between the base and the palm)
:data:`CLEAR_M` from the other hand's, within the joint's limits; the turn ramps in over :data:`RAMP_S` before the
stretch and out after it (a smoothstep), so the arm moves there smoothly. A hand without wrist joints, or a motion of one hand, is left as it is. The fingers' shape
reference turns with the base (:func:`turned_references`), so the shape term is the same. Not in the stream, which
cannot see a contact coming.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from handx_robot.rotations import rotvec_to_matrix

from .palm import wrist_link_index, wrist_poses

__all__ = ["NEAR_M", "RAMP_S", "CLEAR_M", "turn_forearms", "turned_references"]

#: palms (the links matched to the human wrists) closer than this: the forearms may meet (metres)
NEAR_M = 0.08
#: the forearms' turn ramps in over this before a stretch of near frames and out over this after it (seconds)
RAMP_S = 0.8
#: the forearms' geoms kept at least this far from the other hand's (metres)
CLEAR_M = 0.02
#: the turns tried, radians (the smallest that clears is taken)
_GRID = np.arange(0.05, 0.91, 0.05)


def _arm_geoms(world, side: str, problem) -> np.ndarray:
    """The geoms of ``side``'s links from its base to the link before the palm (the forearm, a wrist link)."""
    m = world.model
    palm = problem.tree.link_names[wrist_link_index(problem)]
    pb = m.body(f"{side}/{palm}").id
    arm, b = set(), int(m.body_parentid[pb])
    while b > 0 and m.body(b).name.startswith(f"{side}/"):
        arm.add(b)
        b = int(m.body_parentid[b])
    return np.array([g for g in range(m.ngeom) if int(m.geom_bodyid[g]) in arm and world.geom_side[g] >= 0], dtype=np.int64)


class _Turner:
    """Turns a hand's base about one of its wrist joints' axis and that joint back: the palm stays put."""

    def __init__(self, refiner) -> None:
        self.world = refiner.world
        m = self.world.model
        self.sides = [s for s in self.world.sides if refiner._wrist[s] is not None]
        self.joints = {}  # side -> [(tree dof index, MuJoCo joint id)]
        for s in self.sides:
            wj, tree = refiner._wrist[s], refiner.problems[s].tree
            self.joints[s] = [(int(k), m.joint(f"{s}/{tree.dof_names[int(k)]}").id) for k in wj.dofs[wj.pos]]
        self.arm = np.zeros(m.ngeom, dtype=bool)  # the turned hands' forearm geoms
        for s in self.sides:
            self.arm[_arm_geoms(self.world, s, refiner.problems[s])] = True

    def axes(self, T: Mapping, q: Mapping) -> dict:
        """Per side, per wrist joint: (anchor (3,), axis (3,)) in the world at the state ``T``, ``q``."""
        w = self.world
        w.set_state(T, q)
        d = w.data
        return {s: [(d.xanchor[j].copy(), d.xaxis[j].copy()) for _, j in self.joints[s]] for s in self.sides}

    @staticmethod
    def turned(T: np.ndarray, anchor: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
        """(4, 4) the base pose ``T`` turned by ``angle`` about the line through ``anchor`` along ``axis``."""
        M = np.eye(4)
        M[:3, :3] = rotvec_to_matrix(axis * angle)
        M[:3, 3] = anchor - M[:3, :3] @ anchor
        return M @ T

    def clear(self, T: Mapping, q: Mapping, arms: bool) -> bool:
        """At ``T``, ``q``: whether no geom of one hand passes into the other hand's, among the pairs with a forearm
        geom (``arms``) or among the others (the palms and fingers)."""
        w = self.world
        w.set_state(T, q)
        c = w.contacts()
        cross = w.geom_side[c.geom[:, 0]] != w.geom_side[c.geom[:, 1]]
        hit = self.arm[c.geom[:, 0]] | self.arm[c.geom[:, 1]]
        return not (cross & (hit if arms else ~hit) & (c.dist < (CLEAR_M if arms else 0.0))).any()

    def apart(self, T: Mapping, q: Mapping, u: np.ndarray) -> dict:
        """The bases ``T`` moved apart along ``u`` (3,), the first side's palm toward the second's, by the least
        distance (to 1 mm, at most 10 cm) at which the palms and fingers of one hand pass into none of the other's
        (:meth:`clear`): the per-hand palms of a press overlap, by what a robot palm is thicker than a human's."""
        s0, s1 = self.world.sides

        def moved(x):
            return {s0: _shifted(T[s0], -0.5 * x * u), s1: _shifted(T[s1], 0.5 * x * u)}

        lo, hi = 0.0, 0.1
        if self.clear(T, q, arms=False):
            return dict(T)
        while hi - lo > 1e-3:
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if self.clear(moved(mid), q, arms=False) else (mid, hi)
        return moved(hi)


def _shifted(T: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = T.copy()
    out[:3, 3] += v
    return out


def turn_forearms(refiner, T0: Mapping[str, np.ndarray], q0: Mapping[str, np.ndarray], fps: float) -> tuple[dict, dict]:
    """The per-hand solution ``T0`` ``{side: (T, 4, 4)}``, ``q0`` ``{side: (T, D)}`` with the forearms of the hands
    with wrist joints turned out of each other's way (the module docstring): new ``(T, q)``, copies; the palms' poses
    and the fingers' joints are the same."""
    w = refiner.world
    T1 = {s: np.array(v, dtype=np.float64, copy=True) for s, v in T0.items()}
    q1 = {s: np.array(v, dtype=np.float64, copy=True) for s, v in q0.items()}
    if len(w.sides) < 2 or not any(refiner._wrist[s] is not None for s in w.sides):
        return T1, q1
    tr = _Turner(refiner)
    P = {s: wrist_poses(refiner.problems[s], T0[s], q0[s])[:, :3, 3] for s in w.sides}
    gap = np.linalg.norm(P[w.sides[0]] - P[w.sides[1]], axis=1)
    n = len(gap)
    ramp = max(1, int(round(RAMP_S * fps)))
    angle = {s: np.zeros(n) for s in tr.sides}  # the turn per frame, and which joint and direction
    how = {s: np.zeros(n, dtype=np.int64) for s in tr.sides}
    near = np.flatnonzero(gap < NEAR_M)
    for run in np.split(near, np.flatnonzero(np.diff(near) > 1) + 1) if len(near) else []:
        t = int(run[np.argmin(gap[run])])
        q = {s: np.asarray(q0[s][t], dtype=np.float64) for s in w.sides}
        u = P[w.sides[1]][t] - P[w.sides[0]][t]
        T = tr.apart({s: T0[s][t] for s in w.sides}, q, u / max(np.linalg.norm(u), 1e-9))  # palms just touching
        if tr.clear(T, q, arms=True):
            continue
        axes = tr.axes(T, q)
        choice = {}
        for s in tr.sides:  # the joint and direction that move the base's origin away from the other palm fastest
            other = P[w.sides[1 - w.sides.index(s)]][t]
            b = T[s][:3, 3]
            away = (b - other) / max(np.linalg.norm(b - other), 1e-9)
            best = None
            for k, (anchor, axis) in enumerate(axes[s]):
                gain = float(np.cross(axis, b - anchor) @ away)
                dof = tr.joints[s][k][0]
                sign = 1.0 if gain >= 0 else -1.0
                room = q[s][dof] - refiner.problems[s].lower[dof] if sign > 0 else refiner.problems[s].upper[dof] - q[s][dof]
                if room > 0.05 and (best is None or abs(gain) > best[0]):
                    best = (abs(gain), k, sign, room)
            if best is not None:
                choice[s] = best[1:]
        if not choice:
            continue
        for a in _GRID:
            Tt, qt = dict(T), {s: v.copy() for s, v in q.items()}
            for s, (k, sign, room) in choice.items():
                turn = min(a, room)
                anchor, axis = axes[s][k]
                Tt[s] = tr.turned(T[s], anchor, axis, sign * turn)
                qt[s][tr.joints[s][k][0]] -= sign * turn
            if tr.clear(Tt, qt, arms=True):
                break
        lo, hi = max(0, run[0] - ramp), min(n, run[-1] + ramp + 1)
        f = np.arange(lo, hi)
        r = np.clip(np.minimum(f - (run[0] - ramp), (run[-1] + ramp) - f) / ramp, 0.0, 1.0)
        r = r * r * (3.0 - 2.0 * r)  # smoothstep: 1 over the run, 0 a ramp before and after
        for s, (k, sign, _) in choice.items():
            sel = r * a > np.abs(angle[s][f])
            angle[s][f[sel]], how[s][f[sel]] = sign * (r * a)[sel], k
    for f in np.flatnonzero(np.any([angle[s] != 0 for s in tr.sides], axis=0)):
        T = {s: T0[s][f] for s in w.sides}
        q = {s: np.asarray(q0[s][f], dtype=np.float64) for s in w.sides}
        axes = tr.axes(T, q)
        for s in tr.sides:
            if angle[s][f] != 0.0:
                k = int(how[s][f])
                dof = tr.joints[s][k][0]
                prob = refiner.problems[s]
                turn = float(np.clip(q[s][dof] - angle[s][f], prob.lower[dof], prob.upper[dof]) - q[s][dof])  # -angle
                anchor, axis = axes[s][k]
                T1[s][f] = tr.turned(T0[s][f], anchor, axis, -turn)
                q1[s][f, dof] = q[s][dof] + turn
    return T1, q1


def turned_references(refiner, refs: Mapping, q0: Mapping[str, np.ndarray], q1: Mapping[str, np.ndarray]) -> dict:
    """The shape terms' references ``{side: (ref (T, K, 3), weights)}``, in the per-hand solution's base frame (dofs
    ``q0``), in the base frame of the turned start (dofs ``q1``, :func:`turn_forearms`): turned by ``R_bp(q1) R_bp(q0)^T``
    (the palm's frame in the base's, :class:`.palm.WristJoints`), so that the shape term measures the same fingers'
    shape."""
    out = dict(refs)
    for s, (ref, weights) in refs.items():
        wj = refiner._wrist.get(s)
        if wj is None or np.array_equal(q0[s], q1[s]):
            continue
        R1, R0 = wj.chain.forward(q1[s])[0][:, -1], wj.chain.forward(q0[s])[0][:, -1]
        out[s] = (np.einsum("tij,tkj,tlk->tli", R1, R0, ref), weights)
    return out
