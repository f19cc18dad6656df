"""Loading a robot hand model (URDF or MJCF) into an ``MjSpec``, with the fixes real models need.

URDF fixes (each logged and kept in ``HandScene.fixes``): inertias violating the triangle inequality are
balanced (``balanceinertia``); ``package://`` mesh paths are resolved next to the URDF; a visual mesh in a
format MuJoCo cannot read (``.glb``) is swapped for a same-name ``.obj`` / ``.stl`` when one exists, else
the visual is dropped (its link is then drawn with its collision geometry). Collision meshes that cannot
be read are errors (:class:`handx_robot.errors.ModelLoadError` naming the file and the fix).
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from xml.sax.saxutils import quoteattr

import mujoco

from handx_robot.errors import ModelLoadError

from .config import HandModel

__all__ = ["load_robot_spec", "compile_spec"]

log = logging.getLogger(__package__)  # the package's logger: handx_robot.sim.scene

#: mesh file formats MuJoCo reads
_READABLE_MESH = (".obj", ".stl", ".msh")
#: largest URDF file read, bytes
_MAX_MODEL_BYTES = 50_000_000


def _resolve_package_path(filename: str, model_dir: Path) -> str:
    """``package://pkg/rest`` -> an existing ``rest`` next to (or above) the model file, else unchanged."""
    if not filename.startswith("package://"):
        return filename
    rest = filename[len("package://") :].split("/", 1)
    tail = rest[1] if len(rest) == 2 else rest[0]
    for base in (model_dir, *model_dir.parents[:3]):
        if (base / tail).is_file():
            return str(base / tail)
    return filename


def _drop_unreadable_visuals(text: str, model_dir: Path) -> tuple[str, list[str]]:
    """Remove the URDF ``<visual>`` elements whose mesh MuJoCo cannot read and that have no same-name
    readable file to swap in (:func:`_fix_meshes` swaps those); returns the text and the fixes made.

    Done on the text, before MuJoCo parses it: MuJoCo 3.x names a URDF mesh after its file stem and
    reuses the first mesh of a name, so a visual ``a.glb`` and a collision ``a.obj`` (the dex-urdf
    Inspire hand) became one unreadable mesh, which the collision geom then used.
    """
    fixes: list[str] = []

    def keep_or_drop(visual: re.Match) -> str:
        mesh = re.search(r'<mesh\b[^>]*\bfilename="([^"]+)"', visual.group(0))
        if mesh is None:
            return visual.group(0)
        full = model_dir / mesh.group(1)  # an absolute filename stays absolute
        if any(full.with_suffix(s).is_file() for s in _READABLE_MESH):
            return visual.group(0)
        fixes.append(f"visual mesh '{full.stem}' dropped ({full.name} missing or unreadable); collision shown")
        return ""

    return re.sub(r"<visual\b[^>]*(?<!/)>.*?</visual>", keep_or_drop, text, flags=re.S), fixes


def _read_urdf(path: Path) -> tuple[mujoco.MjSpec, list[str]]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the robot model ({exc}); check the path or --assets") from exc
    if size > _MAX_MODEL_BYTES:
        raise ModelLoadError(f"{path}: {size} bytes is too large for a URDF (limit {_MAX_MODEL_BYTES})")
    text = path.read_text(encoding="utf-8", errors="replace")
    match = re.search(r"<robot\b[^>]*>", text)
    if match is None:
        raise ModelLoadError(f"{path}: no <robot> element; is this a URDF file?")
    model_dir = path.resolve().parent
    # keep visuals and fixed tip links; mesh paths relative to the URDF; inertia fixes are decided below
    tag = (
        '<mujoco><compiler discardvisual="false" fusestatic="false" strippath="false" '
        f"meshdir={quoteattr(str(model_dir) + '/')}/></mujoco>"
    )
    text = text[: match.end()] + tag + text[match.end() :]
    text = re.sub(
        r'filename="(package://[^"]+)"',
        lambda m: f'filename="{_resolve_package_path(m.group(1), model_dir)}"',
        text,
    )
    text, fixes = _drop_unreadable_visuals(text, model_dir)
    try:
        return mujoco.MjSpec.from_string(text), fixes
    except Exception as exc:
        raise ModelLoadError(f"{path}: MuJoCo cannot parse this URDF: {exc}") from exc


def _fix_meshes(spec: mujoco.MjSpec, path: Path) -> list[str]:
    """Swap or drop meshes MuJoCo cannot read (see the module docstring); returns the fixes made."""
    fixes: list[str] = []
    meshdir = Path(spec.meshdir) if spec.meshdir else path.resolve().parent
    if not meshdir.is_absolute():
        meshdir = path.resolve().parent / meshdir
    geoms_by_mesh: dict[str, list] = {}
    for g in spec.geoms:
        if g.type == mujoco.mjtGeom.mjGEOM_MESH:
            geoms_by_mesh.setdefault(g.meshname, []).append(g)
    for mesh in list(spec.meshes):
        if not mesh.file:
            continue
        f = Path(mesh.file)
        full = f if f.is_absolute() else meshdir / f
        if full.suffix.lower() in _READABLE_MESH and full.is_file():
            continue
        swap = next(
            (full.with_suffix(s) for s in _READABLE_MESH if full.with_suffix(s).is_file()),
            None,
        )
        if swap is not None:
            mesh.file = str(swap)
            fixes.append(f"mesh '{mesh.name}': {f.name} -> {swap.name} (MuJoCo reads .obj/.stl/.msh)")
            continue
        users = geoms_by_mesh.get(mesh.name, [])
        if any(g.contype or g.conaffinity for g in users):
            raise ModelLoadError(
                f"{path}: collision mesh '{mesh.name}' file {full} is missing or not readable by MuJoCo "
                f"(allowed: {', '.join(_READABLE_MESH)}); convert it to .obj or fix the path"
            )
        for g in users:
            spec.delete(g)
        spec.delete(mesh)
        fixes.append(f"visual mesh '{mesh.name}' dropped ({full.name} missing or unreadable); collision shown")
    return fixes


def compile_spec(spec: mujoco.MjSpec, what: str) -> mujoco.MjModel:
    """``spec.compile()`` with MuJoCo's decoder warnings (e.g. OBJ texture coordinates) sent to the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = spec.compile()
    for w in {str(c.message) for c in caught}:
        log.debug("%s: %s", what, w)
    return model


def load_robot_spec(hand: HandModel) -> tuple[mujoco.MjSpec, mujoco.MjModel, list[str]]:
    """Parse a hand model into an ``MjSpec`` and apply the URDF fixes; returns ``(spec, model, fixes)``.

    Raises :class:`ModelLoadError` naming the file when the model cannot be read or compiled.
    """
    path = hand.model_path
    if not path.is_file():
        raise ModelLoadError(
            f"robot '{hand.robot_id}': model file {path} not found; check --assets or the registry entry"
        )
    if hand.model_format == "urdf":
        spec, fixes = _read_urdf(path)
    else:
        try:
            spec, fixes = mujoco.MjSpec.from_file(str(path)), []
        except Exception as exc:
            raise ModelLoadError(f"{path}: MuJoCo cannot parse this MJCF: {exc}") from exc
    fixes += _fix_meshes(spec, path)
    try:
        model = compile_spec(spec, str(path))
    except Exception as exc:
        if "balanceinertia" not in str(exc):
            raise ModelLoadError(f"{path}: MuJoCo cannot compile this model: {exc}") from exc
        spec.compiler.balanceinertia = True
        fixes.append(f"inertias balanced (balanceinertia): {str(exc).splitlines()[0]}")
        try:
            model = compile_spec(spec, str(path))
        except Exception as exc2:
            raise ModelLoadError(f"{path}: MuJoCo cannot compile this model: {exc2}") from exc2
    for fix in fixes:
        log.info("%s (%s): %s", hand.robot_id, path.name, fix)
    return spec, model, fixes

