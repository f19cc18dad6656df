"""The text-to-hand node graph, declared once.

Used by ``launch/text_to_hand.launch.py`` (``ros2 launch handx_robot text_to_hand.launch.py``) and by
``handx-robot ros-run`` (:mod:`handx_robot.ros.cli`, all nodes in one process). Both build the same list of
:class:`NodeSpec` from a :class:`GraphConfig`::

    text_to_motion --/handx/keypoints--> retarget --/handx/<side>/command--> safety_streamer_<side>
        --/<side>_hand_controller/joint_trajectory (or /commands)--> real controller | sim node
    sim --/handx/<side>/joint_states--> safety_streamer_<side> (start position)

Robots: ``robot`` is a registry id of one hand (``shadow_right``: that hand only) or a family without a
side (``shadow``: ``shadow_left`` and ``shadow_right``). Hardware units per robot family in
:data:`HARDWARE_UNITS` (Inspire hands take ``[0, 1]``, 1 = open).

Humanoids: ``robot`` may be a humanoid id (``gr1_inspire``, ``gr1_fourier``; :mod:`handx_robot.retarget.humanoid`).
The retarget node then runs with parameter ``humanoid`` and also streams each arm's commands, and every
side gets two safety streamers, ``safety_streamer_<side>`` (the hand) and ``safety_streamer_<side>_arm``::

    retarget --/handx/<side>_arm/command--> safety_streamer_<side>_arm
        --/<side>_arm_controller/joint_trajectory (or /commands)--> real controller | sim node

In ``mode:=sim`` the sim node runs the humanoid kinematically (:mod:`handx_robot.ros.sim_humanoid`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from handx_robot.errors import ConfigError

__all__ = [
    "NodeSpec",
    "GraphConfig",
    "LAUNCH_ARGUMENTS",
    "HARDWARE_UNITS",
    "MODES",
    "CONTROLLERS",
    "robots_for",
    "build_graph",
    "REALTIME_PRIORITY_REAL",
]

MODES = ("sim", "real")
CONTROLLERS = ("joint_trajectory", "forward_command")
#: robot family (id prefix) -> unit mapping of its hardware controller (handx_robot.safety.UNIT_MAPPINGS)
HARDWARE_UNITS = {"inspire": "inspire"}

#: launch argument -> (default, description). The launch file and ``ros-run`` use these.
LAUNCH_ARGUMENTS: dict[str, tuple[str, str]] = {
    "prompt": ("", "text prompt to perform (also accepted later on /handx/prompt, std_msgs/String)"),
    "robot": ("shadow_right", "robot hand id (e.g. shadow_right, inspire_left), a family for both hands (shadow), "
              "or a humanoid, arms and hands (gr1_inspire, gr1_fourier)"),
    "mode": ("sim", "sim: a MuJoCo hand stands in for the hardware; real: commands go to the real controllers"),
    "controller": ("joint_trajectory", "hardware controller interface: joint_trajectory "
                   "(/<side>_hand_controller/joint_trajectory) or forward_command (/<side>_hand_controller/commands)"),
    "rate": ("30.0", "keypoint and command rate in Hz (the motion is resampled to it)"),
    "motion_file": ("", "motion .npz to perform instead of generating one from the prompt"),
    "assets": ("", "robot asset directory (dex-urdf layout); '' = $HANDX_ROBOT_ASSETS"),
    "dry_run": ("false", "filter and count commands but send nothing to the hardware"),
    "video": ("", "sim mode: write an MP4 of the simulated hand(s) to this path ('' = none)"),
    "realtime_priority": ("auto", "SCHED_FIFO priority 1-99 of each safety streamer's process, as ros2_control "
                          "runs its control loop (0 = normal scheduling; auto = 50 in mode:=real, 0 in sim); "
                          "without the permission the streamer warns and runs at normal priority"),
}

#: SCHED_FIFO priority of the streamers with ``realtime_priority:=auto`` in ``mode:=real`` (ros2_control's
#: controller_manager uses 50 for its control loop)
REALTIME_PRIORITY_REAL = 50


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One node of the graph.

    name:        node name.
    executable:  console script installed to ``lib/handx_robot`` (``ros2 run handx_robot <executable>``).
    factory:     ``module:Class`` of the rclpy Node (``Class(node_name=..., parameter_overrides=...)``).
    parameters:  parameter name -> value (every one is declared by the node).
    remappings:  (from, to) topic remappings.
    """

    name: str
    executable: str
    factory: str
    parameters: Mapping[str, Any]
    remappings: tuple[tuple[str, str], ...] = ()

    def load_factory(self):
        import importlib

        module, cls = self.factory.split(":")
        return getattr(importlib.import_module(module), cls)


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"argument '{name}' is {value!r}; allowed: true, false")


@dataclasses.dataclass(frozen=True)
class GraphConfig:
    """The graph's arguments (see :data:`LAUNCH_ARGUMENTS`), validated."""

    prompt: str = ""
    robot: str = "shadow_right"
    mode: str = "sim"
    controller: str = "joint_trajectory"
    rate: float = 30.0
    motion_file: str = ""
    assets: str = ""
    dry_run: bool = False
    video: str = ""
    realtime_priority: int | str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"argument 'mode' is {self.mode!r}; allowed: {', '.join(MODES)}")
        if self.controller not in CONTROLLERS:
            raise ConfigError(f"argument 'controller' is {self.controller!r}; allowed: {', '.join(CONTROLLERS)}")
        try:
            rate = float(self.rate)
        except (TypeError, ValueError):
            raise ConfigError(f"argument 'rate' is {self.rate!r}; give a number of Hz (e.g. 30)") from None
        if not math.isfinite(rate) or not 1.0 <= rate <= 1000.0:
            raise ConfigError(f"argument 'rate' is {self.rate!r}; allowed: 1 to 1000 Hz")
        if not str(self.robot).strip():
            raise ConfigError("argument 'robot' is empty; give a robot id such as shadow_right")
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "dry_run", _bool(self.dry_run, "dry_run"))
        object.__setattr__(self, "robot", str(self.robot).strip())
        prio = str(self.realtime_priority).strip().lower()
        if prio != "auto":
            try:
                prio = int(prio)
            except ValueError:
                prio = -1
            if not 0 <= prio <= 99:
                raise ConfigError(f"argument 'realtime_priority' is {self.realtime_priority!r}; allowed: auto or "
                                  "0 (normal scheduling) to 99")
        object.__setattr__(self, "realtime_priority", prio)

    @property
    def streamer_priority(self) -> int:
        """The safety streamers' ``realtime_priority`` parameter (``auto`` resolved by mode)."""
        if self.realtime_priority == "auto":
            return REALTIME_PRIORITY_REAL if self.mode == "real" else 0
        return int(self.realtime_priority)

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> GraphConfig:
        """From launch-argument strings (unknown keys are an error)."""
        unknown = sorted(set(values) - set(LAUNCH_ARGUMENTS))
        if unknown:
            raise ConfigError(f"unknown graph arguments {unknown}; known: {', '.join(LAUNCH_ARGUMENTS)}")
        return cls(**{k: v for k, v in values.items()})


def robots_for(robot: str, assets: str | None = None, mode: str = "sim") -> dict[str, str]:
    """Robot id per side, resolved like ``handx-robot retarget --robot``.

    ``shadow_right`` -> {'right': 'shadow_right'}; ``shadow`` -> {'left': 'shadow_left', 'right': 'shadow_right'}
    with an asset directory, or the built-in ``shadow_builtin_*`` hands without one; a side-less robot
    (``panda_gripper``) serves both sides. Without an asset directory a dex-urdf hand is simulated
    with the built-in hand of its family in ``mode`` 'sim' (a warning says so) and refused with the
    fix in 'real' (:func:`handx_robot.retarget.robots.resolve_robot`).
    """
    from handx_robot.retarget.robots import resolve_robot_specs

    return {side: spec.id for side, spec in resolve_robot_specs(robot, None, None, assets or None, mode=mode).items()}


def unit_mapping_for(robot_id: str) -> str:
    family = robot_id.split("_")[0]
    return HARDWARE_UNITS.get(family, "identity")


def _humanoid(robot: str):
    """The HumanoidSpec of ``robot`` when it is a humanoid id (or humanoid YAML), else None."""
    from handx_robot.retarget.humanoid import get_humanoid, is_humanoid

    return get_humanoid(robot) if is_humanoid(robot) else None


def _streamer(cfg: GraphConfig, side: str, limb: str, robot: str) -> NodeSpec:
    """The safety streamer of one limb (``hand``, or ``arm`` with ``robot`` a humanoid id)."""
    from handx_robot.ros.common import joint_states_topic, limb_name

    return NodeSpec(
        name=f"safety_streamer_{limb_name(side, limb)}",
        executable="safety_streamer_node",
        factory="handx_robot.ros.safety_streamer_node:SafetyStreamerNode",
        parameters={
            "side": side,
            "limb": limb,
            "robot": robot,
            "assets": cfg.assets,
            "controller": cfg.controller,
            "control_rate_hz": cfg.rate,
            "unit_mapping": unit_mapping_for(robot) if limb == "hand" else "identity",
            # the sim publishes each limb's states separately (two hands may share joint names)
            "state_topic": joint_states_topic(side, limb) if cfg.mode == "sim" else "/joint_states",
            "state_in_hardware_units": False,
            "dry_run": cfg.dry_run,
            "realtime_priority": cfg.streamer_priority,
        },
    )


def build_graph(cfg: GraphConfig) -> tuple[NodeSpec, ...]:
    """The node list for ``cfg`` (order: source to sink)."""
    humanoid = _humanoid(cfg.robot)
    if humanoid is not None:  # its hands: one per arm
        robots = {side: arm.hand for side, arm in humanoid.arms.items()}
    else:
        robots = robots_for(cfg.robot, cfg.assets, cfg.mode)
    nodes = [
        NodeSpec(
            name="text_to_motion",
            executable="text_to_motion_node",
            factory="handx_robot.ros.text_to_motion_node:TextToMotionNode",
            parameters={"prompt": cfg.prompt, "motion_file": cfg.motion_file, "rate_hz": cfg.rate},
        ),
        NodeSpec(
            name="retarget",
            executable="retarget_node",
            factory="handx_robot.ros.retarget_node:RetargetNode",
            parameters={
                "left_robot": robots.get("left", ""),
                "right_robot": robots.get("right", ""),
                "humanoid": cfg.robot if humanoid is not None else "",
                "assets": cfg.assets,
                "input_rate_hz": cfg.rate,
            },
        ),
    ]
    nodes += [_streamer(cfg, side, "hand", robot) for side, robot in robots.items()]
    if humanoid is not None:
        nodes += [_streamer(cfg, side, "arm", cfg.robot) for side in robots]
    if cfg.mode == "sim":
        units = {unit_mapping_for(r) for r in robots.values()}
        if len(units) > 1:
            raise ConfigError(f"robots {sorted(robots.values())} use different hardware units {sorted(units)}")
        sim = {
            "left_robot": robots.get("left", ""),
            "right_robot": robots.get("right", ""),
            "assets": cfg.assets,
            "controller": cfg.controller,
            "unit_mapping": units.pop(),
            "video": cfg.video,
        }
        if humanoid is not None:  # kinematic humanoid, filmed by its model's camera over the robot
            sim.update(humanoid=cfg.robot, camera="robotview")
        nodes.append(NodeSpec(name="sim", executable="sim_node", factory="handx_robot.ros.sim_node:SimNode",
                              parameters=sim))
    # no lost start: the source streams a motion only once every other node says ready
    waits = ",".join(n.name for n in nodes[1:])
    nodes[0] = dataclasses.replace(nodes[0], parameters={**nodes[0].parameters, "wait_for": waits})
    return tuple(nodes)
