"""Mirror an MJCF robot across the x = 0 plane (a right hand becomes a left hand).

The reflection ``S = diag(-1, 1, 1)`` is applied to the whole world, which in every local frame
means: positions ``p -> S p``; rotations ``R -> S R S`` (quaternion ``[w, x, y, z] -> [w, x, -y, -z]``,
still proper rotations); hinge axes ``a -> -S a`` (so a positive joint angle moves the mirrored link
like the original, mirrored); ``fromto`` x coordinates negated; mesh assets scaled by ``(-1, 1, 1)``
(MuJoCo flips the faces of negatively scaled meshes). Primitive geoms (boxes, capsules, spheres,
cylinders, ellipsoids) are symmetric in their own frames and need nothing else. Joint names, ranges,
actuators and tendons are unchanged, so a robot motion of the right hand's joint names replays on
the mirrored hand as its mirror image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handx_robot.errors import ModelLoadError

__all__ = ["mirror_mjcf"]

_S = np.array([-1.0, 1.0, 1.0])


def _mirror_quat(q) -> list[float]:
    w, x, y, z = (float(v) for v in q)
    return [w, x, -y, -z]


def _resolve(spec, obj, attr_alt: str = "alt", attr_quat: str = "quat") -> None:
    import mujoco

    alt = getattr(obj, attr_alt)
    if alt.type != mujoco.mjtOrientation.mjORIENTATION_QUAT:
        q = spec.resolve_orientation(spec.compiler.degree, spec.compiler.eulerseq, alt)
        setattr(obj, attr_quat, list(q))
        alt.type = mujoco.mjtOrientation.mjORIENTATION_QUAT
    setattr(obj, attr_quat, _mirror_quat(getattr(obj, attr_quat)))


def mirror_mjcf(path: str | Path, model_name: str | None = None) -> str:
    """MJCF text of the mirror image of the model at ``path`` (see the module docstring)."""
    import mujoco

    path = Path(path)
    try:
        spec = mujoco.MjSpec.from_file(str(path))
    except Exception as exc:
        raise ModelLoadError(f"{path}: MuJoCo rejected the model: {exc}") from exc
    if model_name:
        spec.modelname = model_name
    for body in spec.bodies:
        if body.name == "world":
            continue
        body.pos = list(np.asarray(body.pos) * _S)
        _resolve(spec, body)
        if body.explicitinertial:
            body.ipos = list(np.asarray(body.ipos) * _S)
            _resolve(spec, body, "ialt", "iquat")
    for frame in spec.frames:
        frame.pos = list(np.asarray(frame.pos) * _S)
        _resolve(spec, frame)
    for geom in spec.geoms:
        geom.pos = list(np.asarray(geom.pos) * _S)
        _resolve(spec, geom)
        ft = np.asarray(geom.fromto, dtype=np.float64)
        if np.all(np.isfinite(ft)):
            geom.fromto = list(ft * np.r_[_S, _S])
    for site in spec.sites:
        site.pos = list(np.asarray(site.pos) * _S)
        _resolve(spec, site)
        ft = np.asarray(site.fromto, dtype=np.float64)
        if np.all(np.isfinite(ft)):
            site.fromto = list(ft * np.r_[_S, _S])
    for cam in spec.cameras:
        cam.pos = list(np.asarray(cam.pos) * _S)
        _resolve(spec, cam)
    for light in spec.lights:
        light.pos = list(np.asarray(light.pos) * _S)
        light.dir = list(np.asarray(light.dir) * _S)
    for joint in spec.joints:
        joint.pos = list(np.asarray(joint.pos) * _S)
        joint.axis = list(-np.asarray(joint.axis) * _S)
    for mesh in spec.meshes:
        mesh.scale = list(np.asarray(mesh.scale) * _S)
    try:
        spec.compile()
        return spec.to_xml()
    except Exception as exc:
        raise ModelLoadError(f"{path}: could not compile the mirrored model: {exc}") from exc
