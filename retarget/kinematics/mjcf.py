"""MJCF -> :class:`KinematicTree`, compiled by MuJoCo: bodies, hinge/slide joints, sites, and linear
couplings (joint equalities, fixed tendons with a pinned length). Units: metres, radians."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from handx_robot.retarget.kinematics.tree import PRISMATIC, REVOLUTE, UNBOUNDED, KinematicTree

from handx_robot.errors import ModelLoadError
from handx_robot.rotations import quat_to_matrix

__all__ = ["load_mjcf_tree", "tree_from_mjmodel"]

log = logging.getLogger(__name__)


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


class _Frames:
    """Frames and joints collected while walking an ``MjModel``'s bodies (parents first)."""

    def __init__(self, m, source: str) -> None:
        import mujoco

        self.mj, self.m, self.source = mujoco, m, source
        self.names: list[str] = []
        self.parent: list[int] = []
        self.R: list[np.ndarray] = []
        self.p: list[np.ndarray] = []
        self.link_joint: list[int] = []
        self.jnames: list[str] = []
        self.jtype: list[int] = []
        self.jaxis: list[np.ndarray] = []
        self.janchor: list[np.ndarray] = []
        self.jlo: list[float] = []
        self.jhi: list[float] = []
        self.jids: list[int] = []

    def name(self, kind, i: int) -> str:
        return self.mj.mj_id2name(self.m, kind, i) or f"{kind.name.lower()}{i}"

    def add(self, nm: str, par: int, R: np.ndarray, p: np.ndarray, j: int = -1) -> int:
        self.names.append(nm)
        self.parent.append(par)
        self.R.append(R)
        self.p.append(p)
        self.link_joint.append(j)
        return len(self.names) - 1

    def add_jointed_body(self, bi: int, bname: str, par: int, R: np.ndarray, p: np.ndarray) -> int:
        """One frame per joint of body ``bi`` (the last one named after the body); returns the body's frame."""
        mj, m = self.mj, self.m
        jadr, jnum = int(m.body_jntadr[bi]), int(m.body_jntnum[bi])
        fi = par
        for k in range(jnum):
            ji = jadr + k
            t = int(m.jnt_type[ji])
            jname = self.name(mj.mjtObj.mjOBJ_JOINT, ji)
            if t not in (mj.mjtJoint.mjJNT_HINGE, mj.mjtJoint.mjJNT_SLIDE):
                raise ModelLoadError(
                    f"{self.source}: joint {jname!r} is a {mj.mjtJoint(t).name}; "
                    "hand models may only use hinge and slide joints"
                )
            nm = bname if k == jnum - 1 else f"{bname}/{jname}"
            fi = self.add(nm, fi, R if k == 0 else np.eye(3), p if k == 0 else np.zeros(3), len(self.jnames))
            self.jnames.append(jname)
            self.jtype.append(REVOLUTE if t == mj.mjtJoint.mjJNT_HINGE else PRISMATIC)
            ax = np.array(m.jnt_axis[ji], dtype=np.float64)
            self.jaxis.append(ax / np.linalg.norm(ax))
            self.janchor.append(np.array(m.jnt_pos[ji], dtype=np.float64))
            if m.jnt_limited[ji]:
                self.jlo.append(float(m.jnt_range[ji, 0]))
                self.jhi.append(float(m.jnt_range[ji, 1]))
            else:
                self.jlo.append(-UNBOUNDED)
                self.jhi.append(UNBOUNDED)
            self.jids.append(ji)
        return fi

    def tree(self) -> KinematicTree:
        A, b, dof = _mjcf_couplings(self.m, self.jnames, self.jids, self.source)
        return KinematicTree(
            link_names=tuple(self.names), parent=np.asarray(self.parent), R_parent_link=np.asarray(self.R),
            p_parent_link=np.asarray(self.p), link_joint=np.asarray(self.link_joint), joint_names=tuple(self.jnames),
            joint_type=np.asarray(self.jtype, dtype=np.int64), joint_axis=np.asarray(self.jaxis).reshape(-1, 3),
            joint_anchor=np.asarray(self.janchor).reshape(-1, 3), joint_lower=np.asarray(self.jlo),
            joint_upper=np.asarray(self.jhi), dof_names=dof, A=A, b=b, source=self.source,
        )  # fmt: skip


def tree_from_mjmodel(m, source: str, *, root_body: str | None = None) -> KinematicTree:
    """Build a :class:`KinematicTree` from a compiled ``mujoco.MjModel`` (see :func:`load_mjcf_tree`)."""
    import mujoco

    OBJ_BODY, OBJ_SITE = mujoco.mjtObj.mjOBJ_BODY, mujoco.mjtObj.mjOBJ_SITE
    if root_body is None:
        tops = [i for i in range(1, m.nbody) if m.body_parentid[i] == 0]
        if not tops:
            raise ModelLoadError(f"{source}: the model has no body under the world")
        root = tops[0]
    else:
        root = mujoco.mj_name2id(m, OBJ_BODY, root_body)
        if root < 0:
            raise ModelLoadError(f"{source}: no body named {root_body!r}")
    fr = _Frames(m, source)
    body_frame: dict[int, int] = {}
    stack = [root]
    while stack:  # depth first: parents are added before children (topological order)
        bi = stack.pop()
        bname = fr.name(OBJ_BODY, bi)
        if bi == root:
            par, R, p = -1, np.eye(3), np.zeros(3)
        else:
            par = body_frame[int(m.body_parentid[bi])]
            R, p = quat_to_matrix(m.body_quat[bi]), np.array(m.body_pos[bi], dtype=np.float64)
        jnum = int(m.body_jntnum[bi])
        if bi == root and jnum:
            raise ModelLoadError(f"{source}: the base body {bname!r} has joints; give a root body above them")
        fi = fr.add(bname, par, R, p) if jnum == 0 or bi == root else fr.add_jointed_body(bi, bname, par, R, p)
        body_frame[bi] = fi
        for si in range(m.nsite):
            if m.site_bodyid[si] == bi:
                fr.add(fr.name(OBJ_SITE, si), fi, quat_to_matrix(m.site_quat[si]), np.array(m.site_pos[si], float))
        kids = [c for c in range(m.nbody) if m.body_parentid[c] == bi and c != bi]
        stack.extend(reversed(kids))
    return fr.tree()


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

