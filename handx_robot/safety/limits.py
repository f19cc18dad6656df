"""Joint limits of a robot hand, and where they come from (URDF or MJCF).

Units: model units (rad for revolute, m for prismatic joints), per second, per second squared.
"""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ET
from pathlib import Path

from handx_robot.errors import ConfigError, ModelLoadError

__all__ = ["JointLimit", "limits_from_urdf", "limits_from_mjcf", "limits_from_model"]


@dataclasses.dataclass(frozen=True)
class JointLimit:
    """Limits of one joint, model units.

    lower, upper:      position range (rad or m), ``lower <= upper``, within +-1e3.
    max_velocity:      in (0, 1e4] (rad/s or m/s).
    max_acceleration:  in (0, 1e7] (rad/s^2 or m/s^2).

    The upper bounds are far beyond any robot hand; a larger value is a typo, and the bounds keep
    the filter's arithmetic finite.
    """

    name: str
    lower: float
    upper: float
    max_velocity: float
    max_acceleration: float

    def __post_init__(self) -> None:
        for field in ("lower", "upper", "max_velocity", "max_acceleration"):
            value = float(getattr(self, field))
            if not math.isfinite(value):
                raise ConfigError(f"joint '{self.name}': field '{field}' must be finite, got {value}")
            object.__setattr__(self, field, value)
        if self.lower > self.upper:
            raise ConfigError(
                f"joint '{self.name}': lower limit {self.lower} > upper limit {self.upper}; swap them"
            )
        for field, highest in (("lower", 1e3), ("upper", 1e3), ("max_velocity", 1e4), ("max_acceleration", 1e7)):
            value = getattr(self, field)
            if abs(value) > highest or (field.startswith("max") and value <= 0):
                allowed = f"in (0, {highest:g}]" if field.startswith("max") else f"within +-{highest:g}"
                raise ConfigError(f"joint '{self.name}': field '{field}' must be {allowed}, got {value}")





def limits_from_urdf(
    path: str | Path,
    default_velocity: float = 2.0,
    default_acceleration: float = 20.0,
    include_mimic: bool = False,
) -> tuple[JointLimit, ...]:
    """Actuated joints' limits of a URDF, in file order.

    Revolute and prismatic joints with a ``<limit lower upper>``; continuous joints have no
    position limit and are refused (a robot hand has none).
    Mimic joints are skipped unless ``include_mimic`` (controllers command the joint they follow).
    ``velocity`` missing or 0 -> ``default_velocity``; URDF has no acceleration limit ->
    ``default_acceleration``.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ModelLoadError(f"{path}: cannot read URDF ({exc}); check the robot's model path") from exc
    limits = []
    for joint in root.iter("joint"):
        jtype = joint.get("type", "")
        name = joint.get("name", "")
        if jtype in ("fixed", "floating", "planar"):
            continue
        if joint.find("mimic") is not None and not include_mimic:
            continue
        if jtype == "continuous":
            raise ModelLoadError(
                f"{path}: joint '{name}' is continuous (no position limits); the safety filter needs "
                "bounded joints: give it a <limit lower upper> in the URDF"
            )
        lim = joint.find("limit")
        if lim is None or lim.get("lower") is None or lim.get("upper") is None:
            raise ModelLoadError(f"{path}: joint '{name}' ({jtype}) has no <limit lower=... upper=...>")
        vel = float(lim.get("velocity", 0) or 0)
        limits.append(
            JointLimit(
                name=name,
                lower=float(lim.get("lower")),
                upper=float(lim.get("upper")),
                max_velocity=vel if vel > 0 else default_velocity,
                max_acceleration=default_acceleration,
            )
        )
    if not limits:
        raise ModelLoadError(f"{path}: no actuated (revolute/prismatic) joints found")
    return tuple(limits)


def limits_from_mjcf(
    path: str | Path, default_velocity: float = 2.0, default_acceleration: float = 20.0
) -> tuple[JointLimit, ...]:
    """Limited hinge/slide joints of an MJCF (via MuJoCo), in model order."""
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover - mujoco is a hard dependency
        raise ModelLoadError("mujoco is required to read MJCF joint limits") from exc
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except Exception as exc:
        raise ModelLoadError(f"{path}: cannot load MJCF ({exc})") from exc
    limits = []
    for j in range(model.njnt):
        if int(model.jnt_type[j]) not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            continue
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
        if not model.jnt_limited[j]:
            raise ModelLoadError(f"{path}: joint '{name}' is not limited; set limited/range in the MJCF")
        lo, hi = model.jnt_range[j]
        limits.append(JointLimit(name, float(lo), float(hi), default_velocity, default_acceleration))
    if not limits:
        raise ModelLoadError(f"{path}: no hinge/slide joints found")
    return tuple(limits)


def limits_from_model(path: str | Path, model_format: str | None = None, **kwargs) -> tuple[JointLimit, ...]:
    """Limits from a URDF or MJCF file (format from ``model_format`` or the file's content)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: robot model file not found")
    fmt = model_format
    if fmt is None:
        head = path.read_text(errors="replace")[:4096]
        fmt = "mjcf" if "<mujoco" in head else "urdf"
    if fmt == "urdf":
        return limits_from_urdf(path, **kwargs)
    if fmt == "mjcf":
        kwargs.pop("include_mimic", None)
        return limits_from_mjcf(path, **kwargs)
    raise ConfigError(f"{path}: model_format {fmt!r} is not 'urdf' or 'mjcf'")
