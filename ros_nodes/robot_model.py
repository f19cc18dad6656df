"""Robot model lookup for the nodes: registry id (retarget package) or an explicit model file.

The registry is :func:`handx_robot.retarget.robots.get_robot` (issue 4, see docs/ARCHITECTURE.md):
``get_robot(robot_id, assets=None) -> RobotSpec`` with ``model_path``, ``model_format`` and
``joint_names``. An explicit ``model_path`` (URDF or MJCF) needs no registry. A humanoid's arm
(:func:`resolve_arm_model`): the composed humanoid MJCF and the arm joints and speed limits of its spec
(:mod:`handx_robot.retarget.humanoid`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from handx_robot.errors import ConfigError, MissingDependencyError, ModelLoadError

__all__ = ["resolve_model", "resolve_arm_model", "humanoid_with_hands", "get_robot_spec"]


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


def resolve_arm_model(robot: str, side: str, model_path: str = "") -> tuple[Path, str | None, list[str], str, dict[str, float]]:
    """(model path, model format or None, arm joint names, label, velocity limit (rad/s) per arm joint) of
    the ``side`` arm of humanoid ``robot``. The model is the composed humanoid MJCF
    (:func:`handx_robot.retarget.humanoid.model.humanoid_model_path`) unless ``model_path`` is given;
    the joints (shoulder to wrist) and velocity limits are the humanoid spec's."""
    from handx_robot.retarget.humanoid import get_humanoid, humanoid_ids, is_humanoid
    from handx_robot.retarget.humanoid.model import humanoid_model_path

    if not is_humanoid(robot):
        raise ConfigError(
            f"parameter 'limb' is 'arm', so parameter 'robot' must be a humanoid: one of {', '.join(humanoid_ids())} "
            f"or a humanoid YAML; got {robot!r} (for a hand, set limb:=hand)"
        )
    spec = get_humanoid(robot)
    arm = spec.arms.get(side)
    if arm is None:
        raise ConfigError(f"humanoid {spec.id!r} has no {side} arm (arms: {', '.join(spec.arms)}); fix parameter 'side'")
    if model_path:
        path, fmt = Path(model_path).expanduser(), None
        if not path.is_file():
            raise ModelLoadError(f"parameter 'model_path': file {path} not found")
    else:
        path, fmt = humanoid_model_path(spec), "mjcf"
    velocity = {j: float(spec.velocity_limits[j]) for j in arm.arm_joints}
    return path, fmt, list(arm.arm_joints), f"{spec.id} {side} arm", velocity


def humanoid_with_hands(humanoid: str, robots: dict[str, str], node: str):
    """The :class:`~handx_robot.retarget.humanoid.HumanoidSpec` of ``humanoid`` after checking that the
    hand robots of node ``node``'s parameters (side -> id; '' = none) are its hands."""
    from handx_robot.retarget.humanoid import get_humanoid

    spec = get_humanoid(humanoid)
    for side, robot in robots.items():
        arm = spec.arms.get(side)
        if robot and (arm is None or robot != arm.hand):
            carries = f"carries {arm.hand!r} on its {side} arm" if arm else f"has no {side} arm"
            fix = f"or set it to {arm.hand!r}" if arm else "(it cannot be used)"
            raise ConfigError(
                f"node '{node}': parameter '{side}_robot' is {robot!r}, but humanoid {spec.id!r} {carries}; "
                f"leave '{side}_robot' empty (the humanoid's hands are used) {fix}"
            )
    return spec
