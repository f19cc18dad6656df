"""The humanoid's MuJoCo model: body MJCF + one hand model per arm, composed once into the cache.

:func:`humanoid_model_path` writes the composed MJCF (``$XDG_CACHE_HOME/handx-robot/models``):

- the base body (pelvis) is fixed at ``base_pose`` (its free joint removed); every joint that is not an
  arm or hand joint is removed (locked at zero);
- each side's hand model (the hand robot's MJCF/URDF, as retargeting uses it) is attached under the
  arm's ``mount_body``, its names prefixed ``{side}_hand/`` (``right_hand/joint_r_index_proximal``);
- the visual meshes of ``mesh_collision_bodies`` become the collision geometry (convex hulls, what
  MuJoCo collides), replacing those bodies' coarse boxes; pairs of bodies already touching at the rest
  pose (a shoulder in its socket) are excluded from collision.

:class:`HumanoidModel` is that model compiled, with names resolved once: arm joint addresses, the hand
joints by their hand-model names, and the geom groups of the clearance checks (per side: arm, hand;
the body), with the pairs checked (arm-arm, arm-hand across sides, arm-body, hand-body, and each arm
against itself and its own hand, bodies touching at rest excluded; hand-hand is the bimanual
interaction's business, see :mod:`handx_robot.retarget.interaction`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

import numpy as np
from handx_robot.retarget.humanoid.spec import SIDES, HumanoidSpec
from handx_robot.retarget.robots import RobotSpec, get_robot

from handx_robot.errors import ModelLoadError

__all__ = ["HumanoidModel", "humanoid_model_path", "load_humanoid_model", "hand_prefix", "apply_couplings", "pair_distances"]

_VERSION = "v1"


def hand_prefix(side: str) -> str:
    """Name prefix of a side's hand inside the composed model."""
    return f"{side}_hand/"


def _absolute_meshes(spec, model_file: Path) -> None:
    base = model_file.parent / (spec.meshdir or "")
    for mesh in spec.meshes:
        if mesh.file and not Path(mesh.file).is_absolute():
            mesh.file = str((base / mesh.file).resolve())
    spec.meshdir = ""


def _compose(hs: HumanoidSpec, hands: dict[str, RobotSpec]) -> str:
    import mujoco

    try:
        spec = mujoco.MjSpec.from_file(str(hs.model_path))
    except Exception as exc:
        raise ModelLoadError(f"{hs.model_path}: MuJoCo rejected the humanoid model: {exc}") from exc
    _absolute_meshes(spec, hs.model_path)
    where = f"{hs.config_path}"
    base = spec.body(hs.base_body)
    if base is None:
        raise ModelLoadError(f"{where}: humanoid.base_body {hs.base_body!r} is not a body of {hs.model_path}")
    base.pos, base.quat = hs.base_pose[:3], hs.base_pose[3:]
    for g in list(spec.geoms):
        if g.name in hs.drop_geoms:
            spec.delete(g)
    keep = set(hs.arm_joint_names)
    missing = keep - {j.name for j in spec.joints}
    if missing:
        raise ModelLoadError(f"{where}: arm joints {sorted(missing)} are not joints of {hs.model_path}")
    for a in list(spec.actuators):  # the body's own actuators (GR1: torque motors); the simulator adds its own
        spec.delete(a)
    for j in list(spec.joints):
        if j.name not in keep:
            spec.delete(j)
    for name in hs.mesh_collision_bodies:
        body = spec.body(name)
        if body is None:
            raise ModelLoadError(f"{where}: mesh_collision_bodies names {name!r}, not a body of {hs.model_path}")
        meshes = [g for g in body.geoms if g.type == mujoco.mjtGeom.mjGEOM_MESH]
        if not meshes:
            raise ModelLoadError(f"{where}: body {name!r} has no mesh geom to collide with")
        for g in body.geoms:
            if g.type == mujoco.mjtGeom.mjGEOM_MESH:
                g.contype, g.conaffinity, g.group = 1, 1, 1
            elif g.contype or g.conaffinity:  # the coarse box the mesh replaces: hidden, not colliding
                g.contype, g.conaffinity, g.group = 0, 0, 4
    for side, arm in hs.arms.items():
        mount = spec.body(arm.mount_body)
        if mount is None:
            raise ModelLoadError(f"{where}: sides.{side}.mount_body {arm.mount_body!r} is not a body of {hs.model_path}")
        hand = hands[side]
        try:
            child = mujoco.MjSpec.from_file(str(hand.model_path))
        except Exception as exc:
            raise ModelLoadError(f"{hand.model_path}: MuJoCo rejected the hand model: {exc}") from exc
        _absolute_meshes(child, hand.model_path)
        for k in list(child.keys):
            child.delete(k)
        frame = mount.add_frame()
        spec.attach(child, prefix=hand_prefix(side), frame=frame)
    model = spec.compile()
    _exclude_resting_contacts(spec, model, hs)
    return spec.to_xml()


def _exclude_resting_contacts(spec, model, hs: HumanoidSpec) -> None:
    """Exclude body pairs (other than parent-child, which MuJoCo skips) touching at the rest pose."""
    import mujoco

    data = mujoco.MjData(model)
    for arm in hs.arms.values():
        for j, q in zip(arm.arm_joints, arm.rest):
            data.qpos[model.jnt_qposadr[model.joint(j).id]] = q
    pairs: set[tuple[str, str]] = set()
    for qpos in (np.zeros(model.nq), data.qpos.copy()):
        data.qpos[:] = qpos
        mujoco.mj_forward(model, data)
        for c in data.contact[: data.ncon]:
            b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
            pairs.add(tuple(sorted((model.body(b1).name, model.body(b2).name))))
    for b1, b2 in sorted(pairs):
        spec.add_exclude(bodyname1=b1, bodyname2=b2)
    spec.compile()


def humanoid_model_path(hs: HumanoidSpec) -> Path:
    """The composed MJCF of ``hs`` (written once to the cache; the file names meshes by absolute path)."""
    from handx_robot.retarget.robots.builtin import cache_dir

    from handx_robot.motion import atomic_write

    hands = {s: get_robot(a.hand) for s, a in hs.arms.items()}
    for s, h in hands.items():
        if h.side not in (s, "any"):
            raise ModelLoadError(f"{hs.config_path}: sides.{s}.hand is {h.id!r}, a {h.side} hand")
    key_src = [_VERSION, hs.config_path.read_text(), hs.model_path.read_text()]
    key_src += [Path(h.model_path).read_text() for h in hands.values()]
    key = hashlib.sha1("\n".join(key_src).encode()).hexdigest()[:12]
    stem = Path(hs.id).stem
    out = cache_dir() / f"humanoid_{stem}_{key}.xml"
    if not out.is_file():
        text = _compose(hs, hands)
        atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return out


@dataclasses.dataclass(frozen=True)
class HumanoidModel:
    """The composed humanoid, compiled, with every name resolved once.

    model: ``mujoco.MjModel``. hands: side -> the hand's :class:`RobotSpec`. arm_qpos: side -> (7,) qpos
    addresses of the arm joints (``spec.arms[side].arm_joints`` order). hand_qpos: side -> {hand joint
    name (hand model's) -> qpos address}. hand_root: side -> the hand root body's name in the model (the
    body whose pose is the hand's ``T_world_base``). geoms: group -> (n,) collidable geom ids, groups
    ``arm_left``, ``hand_left``, ``arm_right``, ``hand_right``, ``body``. pairs: the group pairs checked.
    """

    spec: HumanoidSpec
    path: Path
    model: object
    hands: dict[str, RobotSpec]
    arm_qpos: dict[str, np.ndarray]
    arm_dof: dict[str, np.ndarray]
    hand_qpos: dict[str, dict[str, int]]
    hand_root: dict[str, str]
    geoms: dict[str, np.ndarray]
    pairs: tuple[tuple[str, str], ...]

    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(s for s in SIDES if s in self.spec.arms)

    def rest_qpos(self) -> np.ndarray:
        """(nq,) the arms at their rest pose, hands at zero."""
        q = np.zeros(self.model.nq)
        for s in self.sides:
            q[self.arm_qpos[s]] = self.spec.arms[s].rest
        return q

    def geom_pairs(self) -> list[tuple[int, int]]:
        """Every (geom, geom) pair of the checked group pairs, minus excluded bodies and those MuJoCo never
        collides (one rigid body, or two joined by a joint: ``body_weldid`` and its parent)."""
        m = self.model
        excluded = {tuple(sorted((int(b1), int(b2)))) for b1, b2 in _excluded_body_pairs(m)}
        out = []
        for ga, gb in self.pairs:
            for g1 in self.geoms[ga]:
                for g2 in self.geoms[gb]:
                    if ga == gb and g2 <= g1:  # within one group: each pair once
                        continue
                    b1, b2 = int(m.geom_bodyid[g1]), int(m.geom_bodyid[g2])
                    w1, w2 = int(m.body_weldid[b1]), int(m.body_weldid[b2])
                    # as MuJoCo filters contacts: same rigid body, or rigid bodies in a parent-child joint
                    if w1 == w2 or int(m.body_weldid[m.body_parentid[w1]]) == w2 or int(m.body_weldid[m.body_parentid[w2]]) == w1:
                        continue
                    if tuple(sorted((b1, b2))) in excluded:
                        continue
                    out.append((int(g1), int(g2)))
        return out


def _excluded_body_pairs(m) -> list[tuple[int, int]]:
    # MjModel keeps <exclude> as exclude_signature = (body1 << 16) + body2
    sig = np.asarray(m.exclude_signature, dtype=np.int64)
    return [(int(s >> 16), int(s & 0xFFFF)) for s in sig]


def _subtree_bodies(m, root: int) -> set[int]:
    out = {root}
    for b in range(root + 1, m.nbody):
        if int(m.body_parentid[b]) in out:
            out.add(b)
    return out


def _collidable(m, bodies: set[int]) -> np.ndarray:
    return np.array([g for g in range(m.ngeom) if int(m.geom_bodyid[g]) in bodies
                     and (m.geom_contype[g] or m.geom_conaffinity[g])], dtype=np.int64)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _load(path: str, spec_id: str, mtime: float):
    import mujoco

    try:
        return mujoco.MjModel.from_xml_path(path)
    except Exception as exc:
        raise ModelLoadError(f"{path}: MuJoCo rejected the composed humanoid model ({spec_id}): {exc}") from exc


def load_humanoid_model(hs: HumanoidSpec) -> HumanoidModel:
    """Compose (once) and compile ``hs``; names resolved, geom groups and checked pairs built."""
    import mujoco

    path = humanoid_model_path(hs)
    m = _load(str(path), hs.id, path.stat().st_mtime)
    hands = {s: get_robot(a.hand) for s, a in hs.arms.items()}

    def body_id(name: str) -> int:
        i = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
        if i < 0:
            raise ModelLoadError(f"{path}: no body {name!r}")
        return int(i)

    arm_qpos, arm_dof, hand_qpos, hand_root, geoms = {}, {}, {}, {}, {}
    hand_bodies_all: set[int] = set()
    for s, arm in hs.arms.items():
        ids = [m.joint(j).id for j in arm.arm_joints]
        arm_qpos[s] = np.array([m.jnt_qposadr[i] for i in ids], dtype=np.int64)
        arm_dof[s] = np.array([m.jnt_dofadr[i] for i in ids], dtype=np.int64)
        pre = hand_prefix(s)
        hand_qpos[s] = {m.joint(j).name[len(pre):]: int(m.jnt_qposadr[j]) for j in range(m.njnt)
                        if m.joint(j).name.startswith(pre)}  # fmt: skip
        missing = [n for n in hands[s].joint_names if n not in hand_qpos[s]]
        if missing:
            raise ModelLoadError(f"{path}: the {s} hand's joints {missing} are missing from the composed model")
        mount = body_id(arm.mount_body)
        roots = [b for b in range(m.nbody) if int(m.body_parentid[b]) == mount and m.body(b).name.startswith(pre)]
        if len(roots) != 1:
            raise ModelLoadError(f"{path}: expected one root body of the {s} hand, found {len(roots)}")
        hand_root[s] = m.body(roots[0]).name
        hand_bodies = _subtree_bodies(m, roots[0])
        hand_bodies_all |= hand_bodies
        geoms[f"hand_{s}"] = _collidable(m, hand_bodies)
        geoms[f"arm_{s}"] = _collidable(m, _subtree_bodies(m, body_id(arm.arm_root_body)) - hand_bodies)
    body = set()
    for name in hs.body_bodies:
        body |= _subtree_bodies(m, body_id(name))
    for arm in hs.arms.values():
        body -= _subtree_bodies(m, body_id(arm.arm_root_body))
    geoms["body"] = _collidable(m, body)
    pairs: list[tuple[str, str]] = []
    if len(hs.arms) == 2:
        pairs += [("arm_left", "arm_right"), ("arm_left", "hand_right"), ("hand_left", "arm_right")]
    for s in hs.arms:  # an arm against the body, and against itself (a deep elbow: forearm into upper arm)
        pairs += [(f"arm_{s}", "body"), (f"hand_{s}", "body"), (f"arm_{s}", f"arm_{s}"), (f"arm_{s}", f"hand_{s}")]
    return HumanoidModel(hs, path, m, hands, arm_qpos, arm_dof, hand_qpos, hand_root, geoms, tuple(pairs))


def apply_couplings(m, q: np.ndarray) -> None:
    """Set coupled (follower) joints of ``q`` (..., nq) from their leaders, as the model's joint equalities say."""
    import mujoco

    for e in range(m.neq):
        if m.eq_type[e] != mujoco.mjtEq.mjEQ_JOINT or not m.eq_active0[e]:
            continue
        j1, j2 = int(m.eq_obj1id[e]), int(m.eq_obj2id[e])
        c = m.eq_data[e, :5]
        x = q[..., m.jnt_qposadr[j2]]
        q[..., m.jnt_qposadr[j1]] = c[0] + c[1] * x + c[2] * x**2 + c[3] * x**3 + c[4] * x**4


def pair_distances(m, data, pairs: np.ndarray, distmax: float = 0.05) -> np.ndarray:
    """(k,) signed distances (m, negative = penetration depth) of geom ``pairs`` (k, 2) at ``data``'s
    kinematics (``mj_kinematics`` done): MuJoCo's ``mj_geomDistance``, pairs whose bounding spheres are
    farther apart than ``distmax`` skipped (reported as ``distmax``)."""
    import mujoco

    out = np.full(len(pairs), distmax)
    if not len(pairs):
        return out
    gap = np.linalg.norm(data.geom_xpos[pairs[:, 0]] - data.geom_xpos[pairs[:, 1]], axis=1)
    near = gap - m.geom_rbound[pairs[:, 0]] - m.geom_rbound[pairs[:, 1]] < distmax
    fromto = np.zeros(6)
    for k in np.flatnonzero(near):
        out[k] = mujoco.mj_geomDistance(m, data, int(pairs[k, 0]), int(pairs[k, 1]), distmax, fromto)
    return out
