"""Robot model lookup for the nodes: registry id (retarget package) or an explicit model file.

The registry is :func:`handx_robot.retarget.robots.get_robot` (issue 4, see docs/ARCHITECTURE.md):
``get_robot(robot_id, assets=None) -> RobotSpec`` with ``model_path``, ``model_format`` and
``joint_names``. An explicit ``model_path`` (URDF or MJCF) needs no registry.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from handx_robot.errors import ConfigError, MissingDependencyError, ModelLoadError

__all__ = ["resolve_model", "get_robot_spec"]


def get_robot_spec(robot: str, assets: str | None = None):
    """The registry's RobotSpec for ``robot`` (raises UnknownRobotError / MissingDependencyError)."""
    try:
        robots = importlib.import_module("handx_robot.retarget.robots")
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"robot id {robot!r} needs the robot registry handx_robot.retarget.robots (not installed: {exc}); "
            "give the model file with parameter 'model_path' instead"
        ) from exc
    return robots.get_robot(robot, assets or None)


def resolve_model(robot: str, model_path: str, assets: str | None = None) -> tuple[Path, str | None, list[str] | None, str]:
    """(model path, model format or None, joint names or None, label) from a robot id and/or a path."""
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"parameter 'model_path': file {path} not found")
        return path, None, None, robot or path.stem
    if not robot:
        raise ConfigError("set parameter 'robot' (a registry id such as shadow_right) or 'model_path' (a URDF)")
    spec = get_robot_spec(robot, assets)
    return Path(spec.model_path), getattr(spec, "model_format", None), list(spec.joint_names), robot
