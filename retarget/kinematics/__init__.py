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

Modules: :mod:`.tree` (:class:`KinematicTree`: FK, point Jacobians, second-order terms, numpy),
:mod:`.urdf` and :mod:`.mjcf` (loaders), :mod:`.fused` (the compiled objective pass, numba).
Rotations come from :mod:`handx_robot.rotations`; ``rpy_to_matrix``, ``quat_wxyz_to_matrix``,
``matrix_to_quat_wxyz`` and ``axis_angle_matrices`` remain here as aliases of its functions.
"""

from __future__ import annotations

from pathlib import Path

from handx_robot.retarget.kinematics.fused import HAVE_FUSED, fused_plan, fused_terms
from handx_robot.retarget.kinematics.mjcf import load_mjcf_tree, tree_from_mjmodel
from handx_robot.retarget.kinematics.tree import PRISMATIC, REVOLUTE, UNBOUNDED, KinematicTree
from handx_robot.retarget.kinematics.urdf import load_urdf_tree

from handx_robot.errors import ModelLoadError
from handx_robot.rotations import axis_angle_to_matrix, matrix_to_quat, quat_to_matrix, rpy_to_matrix

__all__ = [
    "KinematicTree",
    "load_tree",
    "load_urdf_tree",
    "load_mjcf_tree",
    "tree_from_mjmodel",
    "rpy_to_matrix",
    "quat_wxyz_to_matrix",
    "matrix_to_quat_wxyz",
    "axis_angle_matrices",
    "HAVE_FUSED",
    "fused_plan",
    "fused_terms",
    "REVOLUTE",
    "PRISMATIC",
    "UNBOUNDED",
]

#: Aliases kept for existing callers: use :mod:`handx_robot.rotations` in new code.
quat_wxyz_to_matrix = quat_to_matrix
matrix_to_quat_wxyz = matrix_to_quat
axis_angle_matrices = axis_angle_to_matrix


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
