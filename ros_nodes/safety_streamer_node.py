"""``safety_streamer`` node: forwards only safe joint commands to one hand's (or arm's) real controller.

A thin adapter over :class:`handx_robot.safety.SafetyFilter` (all the logic and its guarantees
are documented there).

Topics (side = parameter ``side``; ``<limb>`` = ``<side>`` for a hand, ``<side>_arm`` for an arm):

=============================================== ==================================== ===================
topic                                           type                                 direction
=============================================== ==================================== ===================
``/handx/<limb>/command`` (``input_topic``)     trajectory_msgs/JointTrajectory      in (model units)
``/<side>_hand_controller/joint_trajectory``    trajectory_msgs/JointTrajectory      out (controller='joint_trajectory';
                                                                                     ``/<side>_arm_controller/...`` for an arm)
``/<side>_hand_controller/commands``            std_msgs/Float64MultiArray           out (controller='forward_command')
``/joint_states`` (``state_topic``)             sensor_msgs/JointState               in: seeds the start position
``/handx/estop``                                std_msgs/Bool                        in: true latches the e-stop
``/handx/<limb>/estop_reset``                   std_srvs/Trigger (service)           resets the latch
``/diagnostics``                                diagnostic_msgs/DiagnosticArray      out: counters, state
``/handx/ready``                                 std_msgs/String (latched)            out: readiness
=============================================== ==================================== ===================

An arm (``limb:=arm``, ``robot`` a humanoid id such as ``gr1_inspire``): the side's arm joints and their
position limits come from the composed humanoid model, their velocity limits from the humanoid spec's
``velocity_limit`` (:func:`handx_robot.ros.robot_model.resolve_arm_model`); the filter, watchdog, e-stop
and everything below are the same as for a hand.

Readiness (:class:`handx_robot.ros.readiness.Readiness`): ``ready`` once the filter is built, the
command thread runs and the controller topic has a subscriber (the controller, or the sim node);
``waiting for ...`` otherwise (``dry_run``: no subscriber needed). The source streams only then.

Output values are in hardware units (parameter ``unit_mapping``); in ``forward_command`` mode the
array is in ``joint_names`` order. Moves and holds are one-point trajectories with positions only
(linear interpolation: the execution model the filter's guarantees are stated on,
:mod:`handx_robot.safety.moves`). Stop: an empty JointTrajectory (ros2_control's
JointTrajectoryController stops and holds on it); for ``forward_command`` the hold position again.
``dry_run``: everything is filtered, counted and logged, nothing is published to the controller.

Commands are taken on a thread of their own (``command_thread``, default on: its own rcl wait set
on the command subscription, the watchdog there too), not by the node's executor, so a busy executor
delays neither commands nor the watchdog. Messages are read and written with rclpy's own
(de)serialization. Where the streamer runs in its own process (its console script, the launch
file), ``realtime_priority:=50`` puts the process under SCHED_FIFO as ros2_control does for its
control loop; without the permission it warns and runs on. Latency through the streamer:
``benchmarks/ros_latency.py`` (figures in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from handx_robot.ros.common import (
    CONTROLLER_TOPICS,
    DIAGNOSTICS_QOS,
    LATCHED_QOS,
    LIMBS,
    SIDES,
    STATE_QOS,
    TOPIC_DIAGNOSTICS,
    TOPIC_ESTOP,
    TOPIC_JOINT_STATES,
    DedicatedSubscription,
    ParamSpec,
    command_topic,
    controller_topic,
    declare_parameters,
    estop_reset_service,
    limb_name,
    queue_qos,
    run_node,
    set_realtime_priority,
)
from handx_robot.ros.convert import duration_to_s, empty_trajectory, float64_array, joint_trajectory
from handx_robot.ros.readiness import Readiness, unmatched_outputs
from handx_robot.ros.robot_model import resolve_arm_model, resolve_model
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from handx_robot.errors import ConfigError
from handx_robot.safety import (
    COUNTER_NAMES,
    UNIT_MAPPINGS,
    Action,
    Decision,
    FilterState,
    SafetyConfig,
    SafetyFilter,
    limits_from_model,
    make_unit_mapping,
)

__all__ = ["SafetyStreamerNode", "PARAMS", "main"]

PARAMS = (
    ParamSpec("side", "right", "which hand (or arm) this streamer guards", choices=SIDES),
    ParamSpec("limb", "hand", "what it guards: the hand, or the arm of a humanoid (robot then a humanoid id such "
              "as gr1_inspire; joints, position limits and velocity limits from the humanoid)", choices=LIMBS),
    ParamSpec("robot", "", "robot id in the retarget registry (e.g. shadow_right), or a humanoid id with limb:=arm; "
              "gives the model and joints"),
    ParamSpec("assets", "", "robot asset directory for 'robot' ('' = $HANDX_ROBOT_ASSETS / built-in models)"),
    ParamSpec("model_path", "", "URDF/MJCF of the robot (overrides 'robot' for the limits)"),
    ParamSpec("joint_names", "", "controller joints, comma-separated, in the controller's order ('' = all "
              "actuated joints of the model)"),
    ParamSpec("controller", "joint_trajectory", "controller interface of the real hand",
              choices=tuple(CONTROLLER_TOPICS)),
    ParamSpec("controller_topic", "", "output topic ('' = the controller's default topic for 'side' and 'limb')"),
    ParamSpec("input_topic", "", "input JointTrajectory topic ('' = /handx/<side>/command, /handx/<side>_arm/command "
              "for an arm)"),
    ParamSpec("state_topic", TOPIC_JOINT_STATES, "measured JointState topic seeding the start position ('' = none)"),
    ParamSpec("state_in_hardware_units", False, "the measured joint states are in hardware units"),
    ParamSpec("estop_topic", TOPIC_ESTOP, "std_msgs/Bool e-stop topic (true = stop, latches)"),
    ParamSpec("position_mode", "clamp", "out-of-limit positions", choices=("clamp", "reject")),
    ParamSpec("velocity_mode", "scale", "velocity/acceleration limit violations", choices=("scale", "reject")),
    ParamSpec("control_rate_hz", 30.0, "expected command rate (Hz); sets the control period", min_value=0.1),
    ParamSpec("watchdog_periods", 1.5, "no command for this many control periods -> hold", min_value=0.5),
    ParamSpec("watchdog_stop_s", 0.5, "holding this long without a command -> stop (s)", min_value=0.0),
    ParamSpec("first_move_duration_s", 1.0, "duration of the first move when the position is unknown (s)",
              min_value=0.01),
    ParamSpec("default_velocity", 2.0, "velocity limit for joints whose model has none (rad/s)", min_value=1e-6),
    ParamSpec("max_acceleration", 50.0, "acceleration limit of every joint (rad/s^2)", min_value=1e-6),
    ParamSpec("velocity_scale", 1.0, "fraction of the model's velocity limits to allow (0, 1]",
              check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]"),
    ParamSpec("allow_partial", False, "accept commands naming a subset of the joints"),
    ParamSpec("unit_mapping", "identity", "model -> hardware units", choices=tuple(UNIT_MAPPINGS)),
    ParamSpec("dry_run", False, "filter and count, but publish nothing to the controller"),
    ParamSpec("diagnostics_period_s", 1.0, "diagnostics publishing period (s)", min_value=0.01),
    ParamSpec("realtime_priority", 0, "SCHED_FIFO priority 1-99 for every thread of this process (0 = normal "
              "scheduling); only where the streamer runs in a process of its own",
              check=lambda v: None if 0 <= v <= 99 else "must be in 0..99"),
    ParamSpec("command_thread", True, "take commands on a thread of their own (its own wait set, the watchdog "
              "there too) instead of the node's executor: lower latency, and a busy executor delays neither"),
    ParamSpec("queue_depth", 100, "input/output queue depth (KEEP_LAST): a stall shorter than depth/rate "
              "drops nothing; a backlog is filtered in order and only the newest target matters", min_value=1),
)


def build_config(values: dict) -> tuple[SafetyConfig, str]:
    """SafetyConfig from validated parameter values; also returns the robot id / model for messages."""
    import dataclasses

    velocity = {}  # joint -> rad/s where the robot's spec gives it (a humanoid's arm), over the model's
    if values["limb"] == "arm":
        model_path, model_format, robot_joints, label, velocity = resolve_arm_model(
            values["robot"], values["side"], values["model_path"])
    else:
        model_path, model_format, robot_joints, label = resolve_model(values["robot"], values["model_path"],
                                                                      values["assets"])
    limits = limits_from_model(model_path, model_format, default_velocity=values["default_velocity"],
                               default_acceleration=values["max_acceleration"])
    if velocity or values["velocity_scale"] != 1.0:
        limits = tuple(dataclasses.replace(
            lim, max_velocity=velocity.get(lim.name, lim.max_velocity) * values["velocity_scale"]) for lim in limits)
    names = [n.strip() for n in values["joint_names"].split(",") if n.strip()]
    if not names:
        names = [n for n in (robot_joints or [lim.name for lim in limits]) if n in {lim.name for lim in limits}]
    config = SafetyConfig(
        joint_names=tuple(names),
        limits=limits,
        position_mode=values["position_mode"],
        velocity_mode=values["velocity_mode"],
        interface="trajectory" if values["controller"] == "joint_trajectory" else "position_stream",
        control_period_s=1.0 / values["control_rate_hz"],
        watchdog_periods=values["watchdog_periods"],
        watchdog_stop_s=values["watchdog_stop_s"],
        first_move_duration_s=values["first_move_duration_s"],
        allow_partial=values["allow_partial"],
        unit_mapping=make_unit_mapping(values["unit_mapping"], limits),
    )
    return config, label


class SafetyStreamerNode(Node):
    """See the module docstring. All callbacks share the node's mutually exclusive callback group."""

    def __init__(self, node_name: str = "safety_streamer", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        p = declare_parameters(self, PARAMS)
        self.params = p
        self.side = p["side"]
        self.limb = p["limb"]
        self.limb_name = limb_name(self.side, self.limb)  # 'right', 'right_arm'
        self.config, self.robot_label = build_config(p)
        self.filter = SafetyFilter(self.config)
        self._lock = threading.Lock()
        self._process_s = np.zeros(1000)  # ring buffer: command callback wall time, s
        self._process_i = 0
        self.dry_run = p["dry_run"]
        self.interface = p["controller"]
        out_topic = p["controller_topic"] or controller_topic(self.side, self.interface, self.limb)
        in_topic = p["input_topic"] or command_topic(self.side, self.limb)
        msg_type = JointTrajectory if self.interface == "joint_trajectory" else Float64MultiArray
        self.out_topic = out_topic
        qos = queue_qos(p["queue_depth"])
        self._pub = self.create_publisher(msg_type, out_topic, qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, DIAGNOSTICS_QOS)
        self._command_sub: DedicatedSubscription | None = None
        self._watchdog = None
        if p["command_thread"]:
            self._command_sub = DedicatedSubscription(
                self, JointTrajectory, in_topic, qos, self._on_command,
                next_deadline=self._watchdog_deadline, on_deadline=self._on_watchdog,
                thread_name=f"{node_name}_commands")
        else:
            self.create_subscription(JointTrajectory, in_topic, self._on_command, qos)
            self._watchdog = self.create_timer(self.config.watchdog_timeout_s, self._on_watchdog)
        self.create_subscription(Bool, p["estop_topic"], self._on_estop, LATCHED_QOS)
        self._state_sub = None
        if p["state_topic"]:
            self._state_sub = self.create_subscription(JointState, p["state_topic"], self._on_state, STATE_QOS)
        self.create_service(Trigger, estop_reset_service(self.side, self.limb), self._on_reset)
        self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics)
        if p["realtime_priority"]:
            try:
                self.get_logger().info(set_realtime_priority(p["realtime_priority"]))
            except ConfigError as exc:  # not allowed here: run on, at normal priority, and say so
                self.get_logger().warning(f"{exc}; running at normal priority")
        self.get_logger().info(
            f"guarding {self.robot_label} ({self.limb_name}): {len(self.config.joint_names)} joints, "
            f"{in_topic} -> {out_topic} [{self.interface}{', DRY RUN' if self.dry_run else ''}], "
            f"watchdog {self.config.watchdog_timeout_s * 1e3:.1f} ms, positions {self.config.position_mode}, "
            f"velocities {self.config.velocity_mode}, units {self.config.unit_mapping.name}, commands on "
            f"{'a thread of their own' if self._command_sub else 'the executor'}"
        )
        if self._command_sub is not None:  # after set_realtime_priority: the thread inherits SCHED_FIFO
            self._command_sub.start()
        self.readiness = Readiness(self, self._waiting_for)

    def _waiting_for(self) -> str:
        """What keeps this streamer from forwarding ('' = ready); see the module docstring."""
        if self._command_sub is not None and not self._command_sub.alive:
            return "its command thread (stopped)"
        return "" if self.dry_run else unmatched_outputs(self, [self._pub])

    def close(self) -> None:
        """Say ``stopping`` and stop the command thread (called before destroy_node; safe on a node
        whose __init__ failed)."""
        readiness = getattr(self, "readiness", None)
        if readiness is not None:
            readiness.close()
        sub = getattr(self, "_command_sub", None)
        if sub is not None:
            sub.close(timeout_s=0.5)

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()

    # -- callbacks ------------------------------------------------------------------------------
    def _on_command(self, msg: JointTrajectory, now: float | None = None, t0: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        t0 = time.perf_counter() if t0 is None else t0
        if not msg.points:  # nothing to reach: rejected (counted); the watchdog holds
            self._command(msg.joint_names, None, None, now, t0)
        else:
            point = msg.points[-1]
            self._command(msg.joint_names, point.positions, duration_to_s(point.time_from_start), now, t0)

    def _command(self, names, positions, duration_s: float | None, now: float, t0: float) -> None:
        """Filter one command (``positions`` None: the message had no point) and send the decision."""
        with self._lock:
            if positions is None:
                decision = self.filter.filter(names, [], now)
            else:
                decision = self.filter.filter(names, positions, now, duration_s=duration_s)
            if decision.action is Action.FORWARD and self._watchdog is not None:
                self._watchdog.reset()
            self._send(decision)
            self._process_s[self._process_i % len(self._process_s)] = time.perf_counter() - t0
            self._process_i += 1
        if decision.action is Action.REJECT:
            self.get_logger().warning(f"rejected command: {decision.reason}", throttle_duration_sec=1.0)
        elif decision.reason:
            self.get_logger().info(decision.reason, throttle_duration_sec=1.0)

    def _on_state(self, msg: JointState) -> None:
        with self._lock:
            used = self.filter.set_measured(msg.name, msg.position, self.params["state_in_hardware_units"])
        if used and self._state_sub is not None:
            self.get_logger().info("start position taken from the measured joint states")
            sub, self._state_sub = self._state_sub, None
            self.destroy_subscription(sub)

    def _on_estop(self, msg: Bool) -> None:
        with self._lock:
            decisions = self.filter.estop(bool(msg.data), time.monotonic())
            for d in decisions:
                self._send(d)
        if decisions:
            self.get_logger().error("E-STOP engaged: holding; commands blocked until reset")

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            ok, message = self.filter.reset(time.monotonic())
        response.success, response.message = ok, message
        if ok:
            self.get_logger().info(f"e-stop reset: {message}")
        else:
            self.get_logger().warning(f"e-stop reset refused: {message}")
        return response

    def _watchdog_deadline(self) -> float | None:
        with self._lock:
            return self.filter.watchdog_deadline()

    def _on_watchdog(self) -> None:
        # command_thread: called once time.monotonic() reached the filter's deadline. Timer (no
        # command thread): re-armed by every accepted command, so it fires one timeout after the
        # last one; it runs on the ROS clock and may wake a little before the monotonic clock says
        # so: allow 5 % of the timeout rather than wait a whole extra timeout.
        slack = 0.0 if self._command_sub is not None else 0.05 * self.config.watchdog_timeout_s
        with self._lock:
            decision = self.filter.tick(time.monotonic() + slack)
            if decision is not None:
                self._send(decision)
        if decision is not None:
            self.get_logger().warning(decision.reason, throttle_duration_sec=1.0)

    # -- output --------------------------------------------------------------------------------
    def _send(self, d: Decision) -> None:
        if not d.sends or self.dry_run:
            return
        names = self.config.joint_names
        if self.interface == "joint_trajectory":
            if d.action is Action.STOP:
                self._pub.publish(empty_trajectory(names))
            else:  # moves and holds: positions only, the controller interpolates linearly
                self._pub.publish(joint_trajectory(names, d.hw_positions, d.duration_s))
        else:
            q = d.hw_positions
            if d.action is Action.STOP:
                if self.filter.last_safe_position is None:
                    return
                q = self.filter.to_hardware(self.filter.last_safe_position)
            self._pub.publish(float64_array(q))

    def diagnostics(self) -> DiagnosticStatus:
        with self._lock:
            counters = dict(self.filter.counters)
            state = self.filter.state
            reason = self.filter.last_reason
            n = min(self._process_i, len(self._process_s))
            process_us = np.percentile(self._process_s[:n], [50, 99]) * 1e6 if n else (0.0, 0.0)
        thread_dead = self._command_sub is not None and not self._command_sub.alive and self.context.ok()
        if thread_dead:
            level, message = DiagnosticStatus.ERROR, "command thread stopped: no commands are forwarded"
        elif state is FilterState.ESTOPPED:
            level, message = DiagnosticStatus.ERROR, "e-stop latched"
        elif counters["rejected"] or state in (FilterState.HOLDING, FilterState.STOPPED):
            level, message = DiagnosticStatus.WARN, f"{state.value}; {counters['rejected']} rejected"
        else:
            level, message = DiagnosticStatus.OK, state.value
        values = [KeyValue(key=k, value=str(counters[k])) for k in COUNTER_NAMES]
        values += [
            KeyValue(key="state", value=state.value),
            KeyValue(key="last_reason", value=reason),
            KeyValue(key="dry_run", value=str(self.dry_run)),
            KeyValue(key="controller_topic", value=self.out_topic),
            KeyValue(key="command_thread", value="off" if self._command_sub is None else
                     ("alive" if self._command_sub.alive else "stopped")),
            KeyValue(key="command_process_us_p50", value=f"{process_us[0]:.1f}"),
            KeyValue(key="command_process_us_p99", value=f"{process_us[1]:.1f}"),
        ]
        return DiagnosticStatus(
            level=level,
            name=f"handx_robot/safety_streamer/{self.limb_name}",
            message=message,
            hardware_id=self.robot_label,
            values=values,
        )

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray(status=[self.diagnostics()])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(SafetyStreamerNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

