"""Built-in Inspire and Fourier hands: the MJCF models shipped in the robosuite wheel
(``robosuite/models/assets/grippers/{inspire,fourier}_{right,left}_hand.xml``), completed for retargeting
and written once to the cache directory; no asset directory needed.

robosuite is never imported: only its model files are read (``pip install --no-deps robosuite==1.5.2``).

What :func:`robosuite_hand_model` changes in the robosuite MJCF, and nothing else (bodies, joints,
geoms, actuators, sensors, contact excludes keep their names and values):

- mesh files are named by absolute path (the source uses ``meshdir="./"``);
- a fingertip site ``{side}_{finger}_tip`` (``right_index_tip``) per finger on its distal body, at the
  tip of the distal collision mesh (:func:`fingertip_point`);
- the under-actuated joints are coupled by joint equality constraints
  (``<equality><joint joint1=follower joint2=leader polycoef="offset multiplier 0 0 0"/>``, table:
  :func:`robosuite_hand_couplings`), so the kinematic tree (:mod:`handx_robot.retarget.kinematics.mjcf`)
  exposes the actuated joints only: 6 per hand, like the real hands;
- each follower joint's range becomes the image of its leader's range under the coupling, so the
  coupling holds over the leader's whole range (details in :func:`robosuite_hand_couplings`).

The model's root body stays the hand XML's root (``right_hand`` / ``left_hand``): robosuite mounts that
body's content on the GR1 humanoid's wrist body (``right_eef`` / ``left_eef``), and so does
:mod:`handx_robot.retarget.humanoid`. Units: metres, radians.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import math
from pathlib import Path

import numpy as np

from handx_robot.errors import ModelLoadError
from handx_robot.keypoints import FINGERS

__all__ = [
    "ROBOSUITE_FAMILIES",
    "JointCoupling",
    "robosuite_dir",
    "robosuite_hand_xml",
    "robosuite_hand_couplings",
    "robosuite_fingertip_bodies",
    "fingertip_site",
    "fingertip_point",
    "robosuite_hand_model",
]

#: hand families of the robosuite wheel served as built-in robots (``{family}_builtin_{side}``)
ROBOSUITE_FAMILIES: tuple[str, ...] = ("inspire", "fourier")
_SIDES = ("left", "right")
_INSTALL = "pip install --no-deps robosuite==1.5.2"
#: bump when the generated model changes for the same robosuite files (part of the cache file's hash)
_GENERATOR_VERSION = "robosuite-hands-v2"
#: vertices within this distance (m) of the mesh's extreme along the finger form the tip cap
_TIP_CAP_M = 0.002


@dataclasses.dataclass(frozen=True)
class JointCoupling:
    """``q[follower] = multiplier * q[leader] + offset`` (rad), a URDF ``<mimic>`` / MJCF joint equality."""

    follower: str
    leader: str
    multiplier: float
    offset: float = 0.0


def robosuite_dir() -> Path:
    """The installed robosuite package folder (only its model files are read; robosuite is never imported)."""
    spec = importlib.util.find_spec("robosuite")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"robosuite is not installed: the built-in Inspire and Fourier hands are its MJCF files ({_INSTALL}; "
            "its own dependencies are not needed)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _check(family: str, side: str) -> None:
    if family not in ROBOSUITE_FAMILIES:
        raise ModelLoadError(
            f"robosuite hand family {family!r} unknown; known: {', '.join(ROBOSUITE_FAMILIES)}"
        )
    if side not in _SIDES:
        raise ModelLoadError(f"robosuite hand side {side!r} unknown; allowed: {', '.join(_SIDES)}")


def robosuite_hand_xml(family: str, side: str) -> Path:
    """The robosuite MJCF of ``family`` ('inspire', 'fourier') and ``side`` ('left', 'right')."""
    _check(family, side)
    path = robosuite_dir() / "models" / "assets" / "grippers" / f"{family}_{side}_hand.xml"
    if not path.is_file():
        raise ModelLoadError(
            f"{path} not found: the robosuite wheel lacks the {family} hand model ({_INSTALL})"
        )
    return path


def robosuite_fingertip_bodies(family: str, side: str) -> dict[str, str]:
    """Distal body per finger (``{'thumb': 'r_thumb_distal', ...}``), FINGERS order."""
    _check(family, side)
    if family == "inspire":
        s = side[0]
        return {f: f"{s}_{f}_distal" for f in FINGERS}
    s = side[0].upper()
    return {f: f"{s}_thumb_distal_link" if f == "thumb" else f"{s}_{f}_intermediate_link" for f in FINGERS}


def fingertip_site(side: str, finger: str) -> str:
    """Name of the fingertip site the generated model adds (``right_index_tip``)."""
    return f"{side}_{finger}_tip"


def robosuite_hand_couplings(family: str, side: str) -> tuple[JointCoupling, ...]:
    """The couplings of the under-actuated joints (followers first named), as the real hands move.

    Inspire (RH56 series, 6 actuators): the coefficients of dex-urdf's ``inspire_hand_{side}.urdf``
    ``<mimic>`` tags, mapped onto robosuite's joint names (same link frames and meshes):

    =========================== ============================= ===================== ==========================
    follower (robosuite)        leader                        q_f = a q_l + b       dex-urdf
    =========================== ============================= ===================== ==========================
    joint_s_F_distal            joint_s_F_proximal            1.06399 q - 0.04545   F_intermediate_joint
    joint_s_thumb_middle        joint_s_thumb_proximal_2      1.334 q               thumb_intermediate_joint
    joint_s_thumb_distal        joint_s_thumb_proximal_2      0.667 q               thumb_distal_joint
    =========================== ============================= ===================== ==========================

    (F: index, middle, ring, pinky; s: r / l.) Actuated: ``joint_s_thumb_proximal_1`` (thumb yaw),
    ``joint_s_thumb_proximal_2`` (thumb pitch), ``joint_s_F_proximal``.

    Ranges: robosuite's leader ranges are kept (they are its actuators' ``ctrlrange``: fingers 0..1.62,
    thumb pitch 0..0.68 rad; dex-urdf has 0..1.47 and 0..0.6), and each follower's range is set to the
    image of its leader's range (rounded outward to 1e-5 rad), so the coupling holds over all of it: finger distal 0..1.82 ->
    -0.04545..1.678 rad (dex-urdf: -0.04545..1.56), thumb middle 0..0.68 -> 0..0.907 (dex-urdf 0..0.8),
    thumb distal 0..0.77 -> 0..0.454 (dex-urdf 0..0.4). Keeping robosuite's follower ranges instead would
    shrink the leaders' (the kinematic tree keeps coupled joints inside their limits): no fully open
    finger (the -0.04545 offset) and the thumb pitch capped at 0.51 rad.

    Fourier (GR1 hand, 6 actuators): the MJCF has the same linkage structure (finger intermediate driven
    by the proximal phalanx, thumb distal by the thumb pitch) but no official coefficients are shipped
    with it. The multiplier is the ratio of the joint ranges (both start at 0), so both joints reach their
    limits together: finger intermediate = 1.10828 proximal (1.74 / 1.57), thumb distal = 1.0082 pitch
    (1.23 / 1.22).
    That rule reproduces dex-urdf's Inspire coefficients from its own ranges (1.56 / 1.47 = 1.061 vs
    1.06399, 0.8 / 0.6 = 1.333 vs 1.334, 0.4 / 0.6 = 0.667), the evidence for using it here. The
    follower ranges stay robosuite's (their image is the range itself, to 1e-5 rad).

    The follower joints keep their robosuite actuators ("keep actuators as they are"): the simulation
    scenes of :mod:`handx_robot.sim.scene` replace every actuator by one per actuated joint; anything else
    driving this model must command the followers consistently with the equalities (or drop them).
    """
    _check(family, side)
    fingers4 = FINGERS[1:]
    if family == "inspire":
        s = side[0]
        out = [JointCoupling(f"joint_{s}_{f}_distal", f"joint_{s}_{f}_proximal", 1.06399, -0.04545)
               for f in fingers4]  # fmt: skip
        pitch = f"joint_{s}_thumb_proximal_2"
        out += [JointCoupling(f"joint_{s}_thumb_middle", pitch, 1.334),
                JointCoupling(f"joint_{s}_thumb_distal", pitch, 0.667)]  # fmt: skip
        return tuple(out)
    s = side[0].upper()
    # range ratios, 1.74 / 1.57 and 1.23 / 1.22, to the 6 digits an MJCF file keeps
    out = [JointCoupling(f"{s}_{f}_intermediate_joint", f"{s}_{f}_proximal_joint", 1.10828) for f in fingers4]
    out.append(JointCoupling(f"{s}_thumb_distal_joint", f"{s}_thumb_proximal_pitch_joint", 1.00820))
    return tuple(out)


def fingertip_point(vertices_body: np.ndarray, joint_anchor_body: np.ndarray) -> np.ndarray:
    """The tip of a distal phalanx: (3,) metres, body frame.

    vertices_body: (V, 3) its collision mesh's vertices, metres, body frame. joint_anchor_body: (3,)
    its joint's anchor, body frame. The finger's direction is anchor -> vertex centroid; the tip is the
    mean of the vertices within ``_TIP_CAP_M`` (2 mm) of the furthest one along it (the centre of the
    tip's end cap). On the Inspire hand it agrees with dex-urdf's hand-placed ``*_tip`` links (the
    bound: tests/test_robosuite_hands.py).
    """
    v = np.asarray(vertices_body, dtype=np.float64)
    a = np.asarray(joint_anchor_body, dtype=np.float64)
    d = v.mean(axis=0) - a
    n = np.linalg.norm(d)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 4 or n < 1e-6:
        raise ModelLoadError(
            f"fingertip_point: degenerate mesh ({v.shape} vertices, centroid {n * 1000:.2f} mm from the joint)"
        )
    s = (v - a) @ (d / n)
    return v[s >= s.max() - _TIP_CAP_M].mean(axis=0)


def _mesh_vertices_body(m, body_id: int) -> np.ndarray:
    """(V, 3) vertices (m, body frame) of the body's colliding mesh geoms (MuJoCo stores a mesh in its
    inertial frame; the geom's pos/quat place it in the body)."""
    import mujoco

    from handx_robot.rotations import quat_to_matrix

    out = []
    for g in range(m.ngeom):
        colliding = m.geom_contype[g] or m.geom_conaffinity[g]
        if m.geom_bodyid[g] != body_id or not colliding or m.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH:
            continue
        k = int(m.geom_dataid[g])
        v = m.mesh_vert[m.mesh_vertadr[k] : m.mesh_vertadr[k] + m.mesh_vertnum[k]]
        out.append(v @ quat_to_matrix(m.geom_quat[g]).T + m.geom_pos[g])
    return np.concatenate(out) if out else np.zeros((0, 3))


def _add_fingertip_sites(spec, family: str, side: str, src: Path) -> None:
    import mujoco

    m = spec.compile()
    for finger, body in robosuite_fingertip_bodies(family, side).items():
        b = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, body)
        if b < 0 or m.body_jntnum[b] != 1:
            raise ModelLoadError(
                f"{src}: expected the {finger} distal body {body!r} with one joint; unsupported robosuite "
                f"version ({_INSTALL})"
            )
        v = _mesh_vertices_body(m, b)
        if not len(v):
            raise ModelLoadError(
                f"{src}: body {body!r} has no colliding mesh to place the {finger} tip on ({_INSTALL})"
            )
        tip = fingertip_point(v, m.jnt_pos[m.body_jntadr[b]])
        spec.body(body).add_site(name=fingertip_site(side, finger), pos=tip.tolist(), size=[0.004, 0, 0],
                                 rgba=[0.9, 0.2, 0.2, 0.6], group=4)  # fmt: skip


def _add_couplings(spec, family: str, side: str, src: Path) -> None:
    import mujoco

    joints = {j.name: j for j in spec.joints}
    for c in robosuite_hand_couplings(family, side):
        missing = [n for n in (c.follower, c.leader) if n not in joints]
        if missing:
            raise ModelLoadError(
                f"{src}: joints {missing} not found; unsupported robosuite version ({_INSTALL})"
            )
        lo, hi = joints[c.leader].range
        ends = sorted((c.multiplier * lo + c.offset, c.multiplier * hi + c.offset))
        # rounded outward to what the MJCF file keeps, so that no leader limit is tightened
        joints[c.follower].range = [
            math.floor(round(ends[0] * 1e5, 6)) / 1e5,
            math.ceil(round(ends[1] * 1e5, 6)) / 1e5,
        ]
        eq = spec.add_equality(
            name=f"couple_{c.follower}", type=mujoco.mjtEq.mjEQ_JOINT, objtype=mujoco.mjtObj.mjOBJ_JOINT,
            name1=c.follower, name2=c.leader,
        )  # fmt: skip
        poly = np.zeros(len(eq.data))  # polycoef: q_f - q_f0 = a0 + a1 (q_l - q_l0) + ...; q0 = 0 here
        poly[:2] = c.offset, c.multiplier
        eq.data = poly


def _build(family: str, side: str, src: Path) -> str:
    import mujoco

    try:
        spec = mujoco.MjSpec.from_file(str(src))
    except Exception as exc:
        raise ModelLoadError(f"{src}: MuJoCo rejected the robosuite hand model: {exc}") from exc
    meshdir = (src.parent / (spec.meshdir or "")).resolve()
    for mesh in spec.meshes:
        if mesh.file and not Path(mesh.file).is_absolute():
            mesh.file = str(meshdir / mesh.file)
    spec.meshdir = ""
    spec.modelname = f"{family}_builtin_{side}"
    try:
        _add_fingertip_sites(spec, family, side, src)
        _add_couplings(spec, family, side, src)
        spec.compile()
        return spec.to_xml()
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{src}: MuJoCo rejected the built-in {family} hand model: {exc}") from exc


def robosuite_hand_model(family: str, side: str) -> Path:
    """MJCF of robosuite's ``family`` ('inspire', 'fourier') hand of ``side``, ready for retargeting
    (fingertip sites, coupled joints; see the module docstring), root body ``{side}_hand``.

    Written once to the cache directory (``$XDG_CACHE_HOME/handx-robot/models``), named by a hash of
    the source XML and this generator's version; the file names the wheel's meshes by absolute path.
    """
    from handx_robot.retarget.robots.builtin import cache_dir

    from handx_robot.motion import atomic_write

    src = robosuite_hand_xml(family, side)
    key_src = "\n".join([_GENERATOR_VERSION, str(src), src.read_text()])
    key = hashlib.sha1(key_src.encode()).hexdigest()[:10]
    out = cache_dir() / f"{family}_builtin_{side}_{key}.xml"
    if not out.is_file():
        text = _build(family, side, src)
        atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return out
