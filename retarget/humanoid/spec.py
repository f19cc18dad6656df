"""Humanoid specs: a body model with two arms, a dexterous hand on each, read from one YAML file.

A humanoid id is ``gr1_inspire`` / ``gr1_fourier`` (``retarget/configs/humanoids/<id>.yml``) or a path to
a YAML file of the same schema (a user humanoid, no code change)::

    humanoid:
      model: robosuite:models/assets/robots/gr1/robot.xml  # or a path relative to the YAML, or absolute
      base_body: base                    # fixed in the world at base_pose (the pelvis)
      base_pose: [x, y, z, qw, qx, qy, qz]   # T_world_base, metres; the floor is z = 0
      drop_geoms: [floor]                # geoms of the file removed (optional)
      body_bodies: [torso, ...]          # bodies whose subtrees are "the body" for arm-body clearance
      mesh_collision_bodies: [...]       # bodies whose visual meshes become collision geometry (optional)
      sides:
        right:
          arm_joints: [...]              # the arm's joints, shoulder to wrist
          arm_root_body: NAME            # first body of the arm (its subtree = arm + hand)
          mount_body: NAME               # the hand model's root body is attached here
          hand: HAND_ID                  # hand robot id (``handx-robot robots``) or a retargeting YAML
          rest: {joint: rad, ...}        # the posture term's target (elbows natural)
        left: {...}
      velocity_limit: 3.0                # rad/s for every arm joint, or {joint: rad/s}
      workspace: {center: [x, y, z], scale: auto | S, yaw: rad}

Every joint of the model that is neither an arm joint nor a hand joint is locked at zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml
from handx_robot.retarget.robots.robosuite_hands import robosuite_dir

from handx_robot.errors import ConfigError, ModelLoadError, UnknownRobotError

__all__ = ["ArmSpec", "HumanoidSpec", "WorkspaceSpec", "HUMANOID_CONFIG_DIR", "humanoid_ids", "is_humanoid",
           "get_humanoid", "robosuite_dir"]  # fmt: skip

#: the shipped humanoid YAMLs
HUMANOID_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "humanoids"
SIDES = ("left", "right")


@dataclasses.dataclass(frozen=True)
class ArmSpec:
    """One arm and its hand.

    arm_joints: joint names, shoulder to wrist. arm_root_body: first body of the arm. mount_body: the
    body the hand's root body is attached to. hand: hand robot id or retargeting YAML path.
    rest: (len(arm_joints),) rad, the posture target, in ``arm_joints`` order.
    """

    side: str
    arm_joints: tuple[str, ...]
    arm_root_body: str
    mount_body: str
    hand: str
    rest: np.ndarray


@dataclasses.dataclass(frozen=True)
class WorkspaceSpec:
    """Where the human motion goes: ``center`` (3,) m, world; ``scale`` None = automatic fit; ``yaw`` rad."""

    center: np.ndarray
    scale: float | None = None
    yaw: float = 0.0


@dataclasses.dataclass(frozen=True)
class HumanoidSpec:
    """A humanoid ready to build (:func:`handx_robot.retarget.humanoid.model.build_humanoid`).

    id: registry id or the YAML path. model_path: the body MJCF. base_pose: (7,) ``T_world_base``.
    arms: ``{'left': ArmSpec, 'right': ArmSpec}``. velocity_limits: joint -> rad/s for every arm joint.
    """

    id: str
    config_path: Path
    model_path: Path
    base_body: str
    base_pose: np.ndarray
    arms: Mapping[str, ArmSpec]
    body_bodies: tuple[str, ...]
    mesh_collision_bodies: tuple[str, ...]
    drop_geoms: tuple[str, ...]
    velocity_limits: Mapping[str, float]
    workspace: WorkspaceSpec

    def __post_init__(self) -> None:
        object.__setattr__(self, "arms", MappingProxyType(dict(self.arms)))
        object.__setattr__(self, "velocity_limits", MappingProxyType(dict(self.velocity_limits)))

    @property
    def arm_joint_names(self) -> tuple[str, ...]:
        """Every arm joint, left arm then right arm (the column order of the body trajectory)."""
        return tuple(j for s in SIDES if s in self.arms for j in self.arms[s].arm_joints)


def humanoid_ids() -> list[str]:
    """The shipped humanoid ids."""
    return sorted(p.stem for p in HUMANOID_CONFIG_DIR.glob("*.yml"))


def is_humanoid(robot_id: str | None) -> bool:
    """True for a shipped humanoid id or a YAML file with a top-level ``humanoid:`` mapping."""
    if not robot_id:
        return False
    if robot_id in humanoid_ids():
        return True
    p = Path(robot_id)
    if p.suffix in (".yml", ".yaml") and p.is_file():
        try:
            data = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError):
            return False
        return isinstance(data, dict) and isinstance(data.get("humanoid"), dict)
    return False


def _need(d: Mapping, key: str, path: Path, where: str = "humanoid") -> Any:
    if key not in d or d[key] is None:
        raise ConfigError(f"{path}: {where}.{key} is missing")
    return d[key]


def _floats(v: Any, n: int, path: Path, field: str) -> np.ndarray:
    try:
        a = np.asarray([float(x) for x in v], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {field} must be {n} numbers, got {v!r}") from exc
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ConfigError(f"{path}: {field} must be {n} finite numbers, got {v!r}")
    return a


def _model_path(ref: str, path: Path) -> Path:
    if ref.startswith("robosuite:"):
        p = robosuite_dir() / ref.split(":", 1)[1]
    else:
        p = Path(ref) if Path(ref).is_absolute() else path.parent / ref
    if not p.is_file():
        raise ModelLoadError(f"{path}: humanoid.model {ref!r} not found ({p})")
    return p


def _arm(side: str, d: Any, path: Path) -> ArmSpec:
    where = f"humanoid.sides.{side}"
    if not isinstance(d, Mapping):
        raise ConfigError(f"{path}: {where} must be a mapping")
    joints = tuple(str(j) for j in _need(d, "arm_joints", path, where))
    rest_map = d.get("rest") or {}
    unknown = set(rest_map) - set(joints)
    if unknown:
        raise ConfigError(f"{path}: {where}.rest names {sorted(unknown)}, not arm joints; arm joints: {list(joints)}")
    rest = np.array([float(rest_map.get(j, 0.0)) for j in joints])
    return ArmSpec(side, joints, str(_need(d, "arm_root_body", path, where)), str(_need(d, "mount_body", path, where)),
                   str(_need(d, "hand", path, where)), rest)  # fmt: skip


_KEYS = {"model", "base_body", "base_pose", "drop_geoms", "body_bodies", "mesh_collision_bodies", "sides",
         "velocity_limit", "workspace"}  # fmt: skip


def load_humanoid_yaml(path: Path, robot_id: str | None = None) -> HumanoidSpec:
    """Read and validate a humanoid YAML (errors name the file and field)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the humanoid YAML ({exc})") from exc
    h = data.get("humanoid") if isinstance(data, dict) else None
    if not isinstance(h, Mapping):
        raise ConfigError(f"{path}: a humanoid config needs a top-level 'humanoid:' mapping")
    extra = set(h) - _KEYS
    if extra:
        raise ConfigError(f"{path}: unknown keys {sorted(extra)} in 'humanoid:'; allowed: {sorted(_KEYS)}")
    sides = _need(h, "sides", path)
    if not isinstance(sides, Mapping) or not set(sides) <= set(SIDES) or not sides:
        raise ConfigError(f"{path}: humanoid.sides must map 'left' and/or 'right' to an arm, got {list(sides or [])}")
    arms = {s: _arm(s, sides[s], path) for s in SIDES if s in sides}
    vl = h.get("velocity_limit", 3.0)
    arm_joints = [j for a in arms.values() for j in a.arm_joints]
    if isinstance(vl, Mapping):
        missing = [j for j in arm_joints if j not in vl]
        if missing:
            raise ConfigError(f"{path}: humanoid.velocity_limit lacks arm joints {missing}")
        limits = {j: float(vl[j]) for j in arm_joints}
    else:
        limits = {j: float(vl) for j in arm_joints}
    if not all(np.isfinite(v) and v > 0 for v in limits.values()):
        raise ConfigError(f"{path}: humanoid.velocity_limit must be positive rad/s, got {vl!r}")
    ws = h.get("workspace") or {}
    scale = ws.get("scale", "auto")
    if scale != "auto" and not (isinstance(scale, (int, float)) and 0 < float(scale) <= 10):
        raise ConfigError(f"{path}: humanoid.workspace.scale must be 'auto' or a number in (0, 10], got {scale!r}")
    workspace = WorkspaceSpec(
        center=_floats(_need(ws, "center", path, "humanoid.workspace"), 3, path, "humanoid.workspace.center"),
        scale=None if scale == "auto" else float(scale),
        yaw=float(ws.get("yaw", 0.0)),
    )
    pose = _floats(h.get("base_pose", [0, 0, 0, 1, 0, 0, 0]), 7, path, "humanoid.base_pose")
    if abs(np.linalg.norm(pose[3:]) - 1) > 1e-6:
        raise ConfigError(f"{path}: humanoid.base_pose's quaternion [qw, qx, qy, qz] must have unit norm")
    return HumanoidSpec(
        id=robot_id or str(path), config_path=Path(path), model_path=_model_path(str(_need(h, "model", path)), Path(path)),
        base_body=str(_need(h, "base_body", path)), base_pose=pose, arms=arms,
        body_bodies=tuple(str(b) for b in h.get("body_bodies") or ()),
        mesh_collision_bodies=tuple(str(b) for b in h.get("mesh_collision_bodies") or ()),
        drop_geoms=tuple(str(g) for g in h.get("drop_geoms") or ()), velocity_limits=limits, workspace=workspace,
    )  # fmt: skip


def get_humanoid(robot_id: str) -> HumanoidSpec:
    """The :class:`HumanoidSpec` of a shipped id or a YAML path."""
    if robot_id in humanoid_ids():
        return load_humanoid_yaml(HUMANOID_CONFIG_DIR / f"{robot_id}.yml", robot_id)
    if is_humanoid(robot_id):
        return load_humanoid_yaml(Path(robot_id))
    raise UnknownRobotError(
        f"unknown humanoid {robot_id!r}; shipped humanoids: {', '.join(humanoid_ids())}, or a YAML path with a "
        "top-level 'humanoid:' mapping"
    )
