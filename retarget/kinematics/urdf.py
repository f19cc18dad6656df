"""URDF -> :class:`KinematicTree`: links, joints (revolute, continuous, prismatic, fixed), ``<mimic>``.

URDFs are read with :mod:`xml.etree` (never executed). Units: metres, radians; joint origins are
URDF ``xyz`` / ``rpy`` (:func:`handx_robot.rotations.rpy_to_matrix`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from handx_robot.retarget.kinematics.tree import PRISMATIC, REVOLUTE, UNBOUNDED, KinematicTree

from handx_robot.errors import ModelLoadError
from handx_robot.rotations import rpy_to_matrix

__all__ = ["load_urdf_tree"]

_JOINT_TYPES = ("revolute", "continuous", "prismatic", "fixed")


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


def _read_joint(el: ET.Element, path: Path) -> dict:
    """One ``<joint>``: name, type, parent link, placement ``R``/``p`` in the parent, axis, limits, mimic."""
    name, jtype = el.get("name"), el.get("type")
    where = f"{path}: joint {name!r}"
    par, chi = el.find("parent"), el.find("child")
    if par is None or chi is None:
        raise ModelLoadError(f"{where} lacks <parent> or <child>")
    if jtype not in _JOINT_TYPES:
        raise ModelLoadError(f"{where} has type {jtype!r}; supported: {', '.join(_JOINT_TYPES)}")
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
    lo, hi = -UNBOUNDED, UNBOUNDED
    if jtype in ("revolute", "prismatic"):
        if lim is None:
            raise ModelLoadError(f"{where}: a {jtype} joint needs <limit lower= upper=>")
        lo, hi = float(lim.get("lower", 0.0)), float(lim.get("upper", 0.0))
    mim = el.find("mimic")
    mimic = None
    if mim is not None:
        mimic = (mim.get("joint"), float(mim.get("multiplier", 1.0)), float(mim.get("offset", 0.0)))
    return dict(
        name=name, type=jtype, parent=par.get("link"), child=chi.get("link"), R=rpy_to_matrix(rpy), p=xyz,
        axis=axis, lo=lo, hi=hi, mimic=mimic,
    )  # fmt: skip


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
    joints = {}  # child link -> its joint
    children: dict[str, list[str]] = {}
    for el in root.findall("joint"):
        j = _read_joint(el, path)
        joints[j["child"]] = j
        children.setdefault(j["parent"], []).append(j["child"])
    roots = [ln for ln in links if ln not in joints]
    if len(roots) != 1:
        raise ModelLoadError(f"{path}: a URDF needs exactly one root link, found {roots}")
    order: list[str] = []
    stack = [roots[0]]
    while stack:  # depth first, children in document order (pinocchio's order)
        ln = stack.pop()
        order.append(ln)
        stack.extend(reversed(children.get(ln, [])))
    return _assemble(path, order, joints)


def _assemble(path: Path, order: list[str], joints: dict[str, dict]) -> KinematicTree:
    """The tree of links in topological ``order`` with the joint of each non-root link."""
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

