"""Two robot hands in one MuJoCo world, for geometry only: distances, contacts and point Jacobians
on the robots' own collision shapes.

Frames. Each hand hangs under a mount body ``{side}/mount`` on a free joint; the mount's pose is the
hand's ``T_world_base`` (world Z-up, metres), the pose of its kinematic tree's base frame. The model's
base body sits at the mount's origin; other top-level bodies (a URDF whose root link is MuJoCo's
world) keep their placement relative to it. Joint positions are set by name from the hand problem's
dofs (coupled / mimic joints through the tree's ``q_joint = A q_dof + b``).

Parts. Every collision geom belongs to one part of its hand, named like the contact participants of
:mod:`handx_robot.features`: ``{side}_{finger}_tip`` (the geoms of the fingertip link, or of the first
link above it that has any), ``{side}_palm`` (the links shared by all fingers: the lowest common
ancestor of the fingertip links and the links rigidly below it), or no part (the rest of a finger, the
forearm). Each geom also has a *group*: its finger, or the palm group (palm, forearm).

What collides (contype / conaffinity bits, so ``mj_collision`` reports nothing else):

* any geom of one hand with any geom of the other;
* within a hand, geoms of different fingers, and finger geoms with the palm group, except body pairs
  that cannot separate: a finger's first two links against the palm group, and pairs already touching
  at the model's rest pose (MoveIt's "adjacent / default" pairs).

A query reports the pairs closer than its margin (``margin``, metres): MuJoCo lists a pair of geoms closer than
the sum of their margins, so each geom gets half of it (with the whole, a query listed pairs up to twice as far).
``dist < 0`` is penetration. MuJoCo's box-box test can miss two separate boxes within the margin (never a
penetration).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import numpy as np
from handx_robot.retarget.collision import SIZE_ATTRS, load_hand_spec
from handx_robot.retarget.robots import fingertip_links

from handx_robot.errors import ModelLoadError
from handx_robot.keypoints import FINGERS
from handx_robot.motion import SIDES
from handx_robot.rotations import matrix_to_quat

__all__ = ["TwoHandWorld", "Contacts", "PALM_GROUP", "DUMMY_JOINTS"]

log = logging.getLogger(__name__)

PALM_GROUP = -1
@dataclasses.dataclass(frozen=True)
class Contacts:
    """Geom pairs closer than the margin, one row each (``n`` rows).

    dist (n,) metres (< 0: penetration); geom (n, 2); normal (n, 3) from geom 0 to geom 1; pos (n, 3)
    midpoint between the surfaces (world frame).
    """

    dist: np.ndarray
    geom: np.ndarray
    normal: np.ndarray
    pos: np.ndarray


class TwoHandWorld:
    """One or two hands (``{side: HandProblem}``) in one MuJoCo world; see the module docstring.

    After :meth:`set_state`, :meth:`contacts` lists the close geom pairs and :meth:`point_jacobian`
    gives d(point)/d(x) for the solve variables ``x``: per present side (left first) the mount's 6
    free-joint velocities (linear in the world frame, angular in the mount frame) then the hand's
    solved dofs (``dofs[side]``, indices into the tree's dofs; the dummy free base excluded).
    """

    def __init__(self, problems: Mapping, *, margin: float = 0.02, intra: bool = True) -> None:
        import mujoco

        self._mj = mujoco
        self.sides = [s for s in SIDES if s in problems]
        if not self.sides:
            raise ValueError("TwoHandWorld needs at least one hand")
        self.problems = dict(problems)
        self.margin = float(margin)
        world = mujoco.MjSpec()
        world.option.gravity = [0.0, 0.0, 0.0]
        world.compiler.balanceinertia = True  # geometry only: inertias do not matter
        child_models = {}
        for side in self.sides:
            prob = self.problems[side]
            child = _load_spec(prob.spec)
            child.compiler.balanceinertia = True
            try:
                cm = child.compile()
            except Exception as exc:
                raise ModelLoadError(f"{prob.spec.model_path}: MuJoCo rejected the model: {exc}") from exc
            for attr in SIZE_ATTRS:
                setattr(world, attr, max(getattr(world, attr), getattr(child, attr)))
            base = _base_name(prob)
            for b in child.worldbody.bodies:
                if b.name == base:
                    b.pos, b.quat = [0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]
            for pair in list(child.pairs):  # explicit pairs bypass the filters below
                child.delete(pair)
            for g in child.geoms:  # collision filtering is set after compiling the world
                g.margin, g.gap = self.margin, 0.0
            mount = world.worldbody.add_body(name=f"{side}/mount")
            mount.add_freejoint(name=f"{side}/mount_free")
            world.attach(child, prefix=f"{side}/", frame=mount.add_frame())
            child_models[side] = cm
        self._build(world)
        if intra:  # body pairs that cannot separate leave the collision pass itself, as MuJoCo excludes
            m = self.model
            for a, b in self._rest_pairs():
                world.add_exclude(bodyname1=m.body(a).name, bodyname2=m.body(b).name)
            self._build(world)

    def _build(self, world) -> None:
        """Compile the world spec and derive everything from the compiled model."""
        try:
            model = world.compile()
        except Exception as exc:
            raise ModelLoadError(f"cannot build the two-hand world: {exc}") from exc
        self._classify(model)
        self._set_filters(model)
        self.model = model
        self._no_part = self.geom_part < 0
        self.data = self._mj.MjData(model)
        self._layout()

    # -- structure -----------------------------------------------------------------
    def _classify(self, m) -> None:
        """Side, part and group of every collision geom (see the module docstring)."""
        mj = self._mj
        self.geom_side = np.full(m.ngeom, -1, dtype=np.int64)
        self.geom_part = np.full(m.ngeom, -1, dtype=np.int64)  # side * 6 + part index
        self.geom_group = np.full(m.ngeom, PALM_GROUP, dtype=np.int64)
        self.collides = np.array([m.geom_contype[g] != 0 or m.geom_conaffinity[g] != 0 for g in range(m.ngeom)])
        self.body_group = np.full(m.nbody, PALM_GROUP, dtype=np.int64)
        self.body_depth = np.zeros(m.nbody, dtype=np.int64)  # links below the palm (fingers), 0 otherwise
        self.palm_body: dict[str, int] = {}
        self.tip_body: dict[str, dict[str, int]] = {}
        for si, side in enumerate(self.sides):
            prob = self.problems[side]
            pre = f"{side}/"
            tips = fingertip_links(prob.spec)
            tip_bodies: dict[str, int] = {}
            for f, link in tips.items():
                b = _body_of(m, mj, pre + link)
                if b is None:
                    raise ModelLoadError(f"{prob.spec.model_path}: fingertip link {link!r} ({f}) is not a body or site")
                while b > 0 and not _has_geoms(m, b, self.collides):
                    b = int(m.body_parentid[b])
                tip_bodies[f] = b
            self.tip_body[side] = tip_bodies
            paths = {f: _ancestors(m, b) for f, b in tip_bodies.items()}
            common = set.intersection(*(set(p) for p in paths.values())) if paths else set()
            lca = max(common, key=lambda b: len(_ancestors(m, b))) if common else _body_of(m, mj, f"{side}/mount")
            self.palm_body[side] = lca
            mount = _body_of(m, mj, f"{side}/mount")
            finger_of = {}
            for f, p in paths.items():
                below = p[: p.index(lca)] if lca in p else p
                for depth, b in enumerate(reversed(below)):
                    finger_of[b] = (FINGERS.index(f), depth + 1)
            for b in range(1, m.nbody):
                if mount not in _ancestors(m, b):
                    continue
                # a body not on a finger path takes the finger of its nearest ancestor on one
                for a in _ancestors(m, b):
                    if a in finger_of:
                        self.body_group[b], self.body_depth[b] = finger_of[a]
                        break
                    if a == lca:
                        break
            rigid_palm = _rigid_subtree(m, lca, finger_of)
            for g in range(m.ngeom):
                b = int(m.geom_bodyid[g])
                if mount not in _ancestors(m, b) or not self.collides[g]:
                    continue
                self.geom_side[g] = si
                self.geom_group[g] = self.body_group[b]
                for f, tb in tip_bodies.items():
                    if b == tb:
                        self.geom_part[g] = si * 6 + FINGERS.index(f)
                if b in rigid_palm:
                    self.geom_part[g] = si * 6 + 5

    def _set_filters(self, m) -> None:
        """The contype / conaffinity bits of the module docstring, kept as three filter sets: ``all`` (the
        model's own), ``across`` (pairs across the hands only) and ``within`` (pairs within a hand only)."""
        ct = np.zeros(m.ngeom, dtype=np.int64)
        ca = np.zeros(m.ngeom, dtype=np.int64)
        for g in range(m.ngeom):
            si = self.geom_side[g]
            if si < 0:
                continue
            own, other = 1 << si, 1 << (1 - si)
            fingers = 0b11111 << (2 + 5 * si)
            k = self.geom_group[g]
            if k == PALM_GROUP:
                ct[g], ca[g] = own, other | fingers
            else:
                fk = 1 << (2 + 5 * si + k)
                ct[g], ca[g] = own | fk, other | (fingers & ~fk)
        self._filters = {name: _filter_set(m, t, a) for name, t, a in
                         (("all", ct, ca), ("across", ct & 0b11, ca & 0b11), ("within", ct & ~0b11, ca & ~0b11))}
        self._use(m, "all", self.margin)

    def _use(self, m, filters: str, margin: float) -> None:
        """Switch the model's collision bits to a filter set, and every geom's margin to half ``margin``: MuJoCo
        lists a pair of geoms closer than the sum of their margins."""
        m.geom_contype[:], m.geom_conaffinity[:], m.body_contype[:], m.body_conaffinity[:] = self._filters[filters]
        m.geom_margin[:] = 0.5 * margin

    def _layout(self) -> None:
        """Variables x -> MuJoCo dofs (``self.M``, nv x nx) and the per-side qpos addresses."""
        m = self.model
        cols, self.x_slices, self.dofs, self._qadr, self._mount_qadr = 0, {}, {}, {}, {}
        blocks = []
        for side in self.sides:
            prob = self.problems[side]
            t = prob.tree
            dofs = np.array([i for i in prob.free if t.dof_names[i] not in DUMMY_JOINTS], dtype=np.int64)
            self.dofs[side] = dofs
            n = 6 + len(dofs)
            self.x_slices[side] = slice(cols, cols + n)
            j = m.joint(f"{side}/mount_free")
            self._mount_qadr[side] = int(j.qposadr[0])
            rows = []
            qadr = []
            for k, name in enumerate(t.joint_names):
                if name in DUMMY_JOINTS:
                    continue
                try:
                    jj = m.joint(f"{side}/{name}")
                except KeyError:
                    continue
                qadr.append((k, int(jj.qposadr[0])))
                rows.append((int(jj.dofadr[0]), t.A[k, dofs]))
            self._qadr[side] = (np.array([a for a, _ in qadr], dtype=np.int64), np.array([b for _, b in qadr], dtype=np.int64))
            blocks.append((cols, int(j.dofadr[0]), rows, len(dofs)))
            cols += n
        self.nx = cols
        # _moves[b, i]: dof i moves body b (its joint's body is b or an ancestor of b)
        self._moves = np.zeros((m.nbody, m.nv))
        for b in range(m.nbody):
            self._moves[b] = np.isin(m.dof_bodyid, _ancestors(m, b))
        M = np.zeros((m.nv, cols))
        for c0, d0, rows, nd in blocks:
            M[d0 : d0 + 6, c0 : c0 + 6] = np.eye(6)
            for dadr, arow in rows:
                M[dadr, c0 + 6 : c0 + 6 + nd] = arow
        self.M = M

    def _rest_pairs(self) -> set[tuple[int, int]]:
        """Intra-hand body pairs that cannot separate: a finger's first two links vs the palm group,
        and pairs touching at the rest pose (mid-range and zero joints); the world excludes them."""
        m, _d = self.model, self.data
        pairs: set[tuple[int, int]] = set()
        for _side in self.sides:
            for b in range(1, m.nbody):
                if self.body_group[b] != PALM_GROUP and 1 <= self.body_depth[b] <= 2:
                    for p in range(1, m.nbody):
                        if self.body_group[p] == PALM_GROUP and self._same_side_body(b, p):
                            pairs.add((min(b, p), max(b, p)))
        far = 10.0
        for q_mode in ("mid", "zero"):
            poses = {s: np.eye(4) for s in self.sides}
            for i, s in enumerate(self.sides):
                poses[s][0, 3] = far * i  # hands far apart: intra-hand pairs only
            qs = {}
            for s, prob in self.problems.items():
                zero = np.clip(np.zeros(prob.tree.num_dof), prob.lower, prob.upper)
                qs[s] = prob.initial_q(1)[0] if q_mode == "mid" else zero
            self.set_state(poses, qs)
            c = self.contacts()
            for (g1, g2), dist in zip(c.geom, c.dist):
                if dist < 0.002 and self.geom_side[g1] == self.geom_side[g2]:
                    b1, b2 = int(m.geom_bodyid[g1]), int(m.geom_bodyid[g2])
                    pairs.add((min(b1, b2), max(b1, b2)))
        log.debug("two-hand world: %d intra-hand body pairs excluded", len(pairs))
        return pairs

    def _same_side_body(self, a: int, b: int) -> bool:
        m = self.model
        return m.body(int(a)).name.split("/", 1)[0] == m.body(int(b)).name.split("/", 1)[0]

    # -- state ---------------------------------------------------------------------
    def set_state(self, T_world_base: Mapping[str, np.ndarray], q: Mapping[str, np.ndarray]) -> None:
        """Place each hand: ``T_world_base[side]`` (4, 4); ``q[side]`` (D,) the tree's dofs."""
        mj, m, d = self._mj, self.model, self.data
        for side in self.sides:
            a = self._mount_qadr[side]
            T = T_world_base[side]
            d.qpos[a : a + 3] = T[:3, 3]
            d.qpos[a + 3 : a + 7] = matrix_to_quat(T[:3, :3])
            tree = self.problems[side].tree
            qj = tree.model_q(np.asarray(q[side], dtype=np.float64)[None])[0]
            k, adr = self._qadr[side]
            d.qpos[adr] = qj[k]
        mj.mj_kinematics(m, d)
        mj.mj_comPos(m, d)

    def contacts(self, intra_margin: float | None = None, finger_margin: float | None = None) -> Contacts:
        """Geom pairs closer than the margin at the current state (after :meth:`set_state`), one row per
        pair (its deepest point). Pairs within one hand are kept only below ``intra_margin`` (default:
        the margin); with a smaller one they have their own collision pass at that margin, so MuJoCo never
        computes the rest. With ``finger_margin`` as well (at most ``intra_margin``), that pass lists a pair of
        geoms of no part (:attr:`geom_part`: neither a fingertip's nor the palm's) only below it, and a part's geom
        with one of no part below the mean of the two margins (MuJoCo sums two geoms' margins)."""
        m = self.model
        if intra_margin is None or intra_margin >= self.margin:
            found = [self._collide("all", self.margin)]
        else:
            found = [self._collide("across", self.margin), self._collide("within", intra_margin, finger_margin)]
            self._use(m, "all", self.margin)
        geom, dist, normal, pos = (np.concatenate(k) for k in zip(*found))
        if intra_margin is not None:
            same = self.geom_side[geom[:, 0]] == self.geom_side[geom[:, 1]]
            keep = ~same | (dist < intra_margin)
            geom, dist, normal, pos = geom[keep], dist[keep], normal[keep], pos[keep]
        if len(dist) == 0:
            return _EMPTY
        key = geom[:, 0] * m.ngeom + geom[:, 1]
        order = np.lexsort((dist, key))  # by pair, deepest first
        first = np.ones(len(order), dtype=bool)
        first[1:] = key[order][1:] != key[order][:-1]
        sel = order[first]
        return Contacts(dist[sel], geom[sel], normal[sel], pos[sel])

    def _collide(self, filters: str, margin: float, no_part_margin: float | None = None) -> tuple[np.ndarray, ...]:
        """One ``mj_collision`` pass with a filter set and margin (``no_part_margin``: that of pairs of geoms of no
        part, :meth:`contacts`): (geom (n, 2), dist (n,), normal (n, 3), pos (n, 3)), copies."""
        m, d = self.model, self.data
        self._use(m, filters, margin)
        if no_part_margin is not None:
            m.geom_margin[self._no_part] = 0.5 * no_part_margin
        self._mj.mj_collision(m, d)
        n = d.ncon
        con = d.contact
        return (np.array(con.geom[:n], dtype=np.int64), np.array(con.dist[:n], dtype=np.float64),
                np.array(con.frame[:n, :3], dtype=np.float64), np.array(con.pos[:n], dtype=np.float64))

    def distance_gradient(self, c: Contacts) -> np.ndarray:
        """(n, nx) d(dist)/dx of each contact row: ``n . (J_2(p_2) - J_1(p_1))``.

        MuJoCo's Jacobian of a point ``p`` on body ``b`` (``mj_jac``): column ``i`` of a dof that moves
        ``b`` is ``cdof_lin_i + cdof_rot_i x (p - c)``, ``c`` the subtree centre of mass of ``b``'s root
        body, so ``n . J(p)_i = n . cdof_lin_i + cdof_rot_i . ((p - c) x n)``; all rows at once.
        """
        m, d = self.model, self.data
        if len(c.dist) == 0:
            return np.zeros((0, self.nx))
        bodies = m.geom_bodyid[c.geom]  # (n, 2)
        nrm = c.normal
        rot, lin = d.cdof[:, :3], d.cdof[:, 3:]
        n_lin = nrm @ lin.T  # the same for both ends
        half = 0.5 * c.dist[:, None] * nrm

        def end_row(end: int, pts: np.ndarray) -> np.ndarray:
            b = bodies[:, end]
            r = pts - d.subtree_com[m.body_rootid[b]]
            return self._moves[b] * (n_lin + _cross(r, nrm) @ rot.T)

        out = end_row(1, c.pos + half)
        out -= end_row(0, c.pos + -half)
        return out @ self.M

    def geom_distance(self, g1: int, g2: int, distmax: float) -> tuple[float, np.ndarray]:
        """Signed distance of two geoms (metres) and ``fromto`` (6,) (points on g1, g2), up to ``distmax``."""
        ft = np.zeros(6)
        dist = self._mj.mj_geomDistance(self.model, self.data, int(g1), int(g2), float(distmax), ft)
        return float(dist), ft

    def part_geoms(self, side: str, part: int) -> np.ndarray:
        """Geom ids of a part (0-4 fingertips in FINGERS order, 5 palm) of ``side``."""
        si = self.sides.index(side)
        return np.flatnonzero(self.geom_part == si * 6 + part)

    def has_part(self, side: str, part: int) -> bool:
        return bool(len(self.part_geoms(side, part)))


_EMPTY = Contacts(np.zeros((0,)), np.zeros((0, 2), dtype=np.int64), np.zeros((0, 3)), np.zeros((0, 3)))
#: dex-retargeting's dummy free-base joints (a hand config's ``add_dummy_free_joint``): the world places the base itself
DUMMY_JOINTS = frozenset(f"dummy_{a}_{k}_joint" for a in "xyz" for k in ("translation", "rotation"))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross products of (n, 3) arrays (np.cross's own overhead is most of its time at these sizes)."""
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def _filter_set(m, ct: np.ndarray, ca: np.ndarray) -> tuple[np.ndarray, ...]:
    """Geom and body contype / conaffinity for geom bits ``ct``, ``ca``; the broad phase filters bodies
    by the union of their geoms' bits."""
    bct = np.zeros(m.nbody, dtype=np.int64)
    bca = np.zeros(m.nbody, dtype=np.int64)
    np.bitwise_or.at(bct, m.geom_bodyid, ct)
    np.bitwise_or.at(bca, m.geom_bodyid, ca)
    return tuple(v.astype(m.geom_contype.dtype) for v in (ct, ca, bct, bca))


def _base_name(prob) -> str:
    return prob.tree.link_names[7] if prob.free_base else prob.tree.link_names[0]


def _load_spec(spec):
    return load_hand_spec(spec.model_path, spec.model_format)


def _body_of(m, mj, name: str) -> int | None:
    i = mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, name)
    if i >= 0:
        return int(i)
    i = mj.mj_name2id(m, mj.mjtObj.mjOBJ_SITE, name)
    if i >= 0:
        return int(m.site_bodyid[i])
    return None


def _has_geoms(m, b: int, collides: np.ndarray) -> bool:
    return bool(np.any((m.geom_bodyid == b) & collides))


def _ancestors(m, b: int) -> list[int]:
    """``[b, parent, ..., world]``."""
    out = [int(b)]
    while out[-1] != 0:
        out.append(int(m.body_parentid[out[-1]]))
    return out


def _rigid_subtree(m, root: int, finger_of: Mapping[int, tuple[int, int]]) -> set[int]:
    """``root`` and the bodies fixed to it (no joint in between), fingers excluded."""
    out = {int(root)}
    for b in range(1, m.nbody):
        if b in out or b in finger_of:
            continue
        chain = _ancestors(m, b)
        if root in chain:
            between = chain[: chain.index(root)]
            if all(m.body_jntnum[x] == 0 and x not in finger_of for x in between):
                out.add(b)
    return out
