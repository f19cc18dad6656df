"""``sim`` node: a MuJoCo scene (:mod:`handx_robot.sim.scene`, issue 5) standing in for the real hand(s).

It takes exactly what the real controllers take and reports what a real ros2_control system reports:

==================================================== ================================= =======================================
topic                                                type                              meaning
==================================================== ================================= =======================================
``/<side>_hand_controller/joint_trajectory``         trajectory_msgs/JointTrajectory   in (``controller='joint_trajectory'``)
``/<side>_hand_controller/commands``                 std_msgs/Float64MultiArray        in (``controller='forward_command'``),
                                                                                       ``joint_names`` order
``/handx/<side>/wrist_pose``                         geometry_msgs/PoseStamped         in: wrist target ``T_world_base``
                                                                                       (the arm the hand is mounted on)
``/joint_states``                                    sensor_msgs/JointState            out, ``publish_rate_hz`` (>= 100 Hz):
                                                                                       every joint of every hand (one
                                                                                       message per hand when names collide)
``/handx/<side>/joint_states``                       sensor_msgs/JointState            out: the same, per hand
==================================================== ================================= =======================================

Humanoids (parameter ``humanoid``, e.g. ``gr1_inspire``; ``left_robot`` / ``right_robot`` empty or the
humanoid's hands): the humanoid is simulated kinematically (:class:`handx_robot.ros.sim_humanoid.KinematicHumanoid`:
its joints are put where the controllers are told, no physics), with one controller per limb:

==================================================== ================================= =======================================
``/<side>_hand_controller/...``                      as above                          in: the hand's joints
``/<side>_arm_controller/joint_trajectory``          trajectory_msgs/JointTrajectory   in: the arm's joints (or ``/commands``)
``/joint_states``                                    sensor_msgs/JointState            out: every arm and hand joint
``/handx/<side>/joint_states`` (hand),               sensor_msgs/JointState            out: per limb
``/handx/<side>_arm/joint_states`` (arm)
==================================================== ================================= =======================================

Wrist poses are not followed (the arm carries the hand); ``unit_mapping`` applies to the hands, the
arms take radians. ``video`` works with the humanoid model's cameras (``camera:=robotview``).

Trajectory semantics (like ros2_control's JointTrajectoryController, positions only): a new
trajectory replaces the active one and is followed from the current target, linearly interpolated
to each point at its ``time_from_start``; an empty trajectory stops (holds the current target).
Physics advances in real time (``n = elapsed / timestep`` steps per publishing tick, capped).
Commands in hardware units are mapped back with the same ``unit_mapping`` as the safety streamer.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import PoseStamped
from handx_robot.ros.common import (
    CONTROLLER_TOPICS,
    SIDES,
    STATE_QOS,
    STREAM_QOS,
    TOPIC_JOINT_STATES,
    ParamSpec,
    controller_topic,
    declare_parameters,
    limb_name,
    run_node,
    wrist_topic,
)
from handx_robot.ros.convert import duration_to_s, joint_state
from handx_robot.ros.readiness import Readiness
from handx_robot.ros.robot_model import humanoid_with_hands
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from handx_robot.errors import ConfigError
from handx_robot.safety import UNIT_MAPPINGS, JointLimit, make_unit_mapping

__all__ = ["SimNode", "TrajectoryFollower", "PARAMS", "main"]

MAX_CATCH_UP_S = 0.05  # at most this much simulated time per tick (a stalled process does not explode)

PARAMS = (
    ParamSpec("left_robot", "", "robot id of the simulated left hand ('' = none)"),
    ParamSpec("right_robot", "", "robot id of the simulated right hand ('' = none)"),
    ParamSpec("humanoid", "", "humanoid id to simulate, arms and hands, kinematically ('' = none), e.g. gr1_inspire"),
    ParamSpec("assets", "", "robot asset directory ('' = $HANDX_ROBOT_ASSETS / built-in models)"),
    ParamSpec("controller", "joint_trajectory", "controller interface to emulate", choices=tuple(CONTROLLER_TOPICS)),
    ParamSpec("unit_mapping", "identity", "hardware units of the commands", choices=tuple(UNIT_MAPPINGS)),
    ParamSpec("publish_rate_hz", 100.0, "joint state rate (Hz), >= 100", min_value=100.0),
    ParamSpec("timestep", 0.002, "physics timestep (s)", check=lambda v: None if 0 < v <= 0.01 else "must be in (0, 0.01]"),
    ParamSpec("follow_wrist", True, "move each hand's mount to /handx/<side>/wrist_pose (not for a humanoid)"),
    ParamSpec("video", "", "write an MP4 of the run to this path ('' = none); rendering costs joint-state rate"),
    ParamSpec("video_fps", 30.0, "video frame rate (Hz)", min_value=1.0),
    ParamSpec("camera", "front", "camera of the video (handx_robot.sim.scene.CAMERA_PRESETS or a model camera)"),
)


class TrajectoryFollower:
    """Piecewise-linear position trajectory from the current target (JointTrajectoryController-like).

    ``set(t_now, q_now, times (k,), points (k, n))``: follow from ``q_now`` at ``t_now`` to each point at
    ``t_now + times[i]``; ``sample(t)`` -> (n,) target; after the last point it holds it.
    """

    def __init__(self, q0: np.ndarray) -> None:
        self._t = [0.0]
        self._q = [np.asarray(q0, dtype=np.float64).copy()]

    def set(self, t_now: float, q_now: np.ndarray, times: Sequence[float], points: Sequence[np.ndarray]) -> None:
        ts, qs = [t_now], [np.asarray(q_now, dtype=np.float64).copy()]
        for dt, q in zip(times, points):
            t = t_now + max(float(dt), 0.0)
            if t <= ts[-1]:
                t = ts[-1] + 1e-9
            ts.append(t)
            qs.append(np.asarray(q, dtype=np.float64))
        self._t, self._q = ts, qs

    def hold(self, t_now: float) -> None:
        q = self.sample(t_now)
        self._t, self._q = [t_now], [q]

    def sample(self, t: float) -> np.ndarray:
        i = bisect.bisect_right(self._t, t)
        if i == 0:
            return self._q[0].copy()
        if i >= len(self._t):
            return self._q[-1].copy()
        t0, t1 = self._t[i - 1], self._t[i]
        a = (t - t0) / (t1 - t0)
        return (1.0 - a) * self._q[i - 1] + a * self._q[i]


class _SimHand:
    """One simulated limb and its controller (a hand, or a humanoid's arm); ``side`` is the limb's key in
    the scene (``right``, ``right_arm``)."""

    def __init__(self, scene, side: str, joint_names: tuple[str, ...], mapping) -> None:
        self.side = side
        self.joint_names = joint_names  # commanded joints (registry order)
        self.all_joints = scene.joint_names(side)
        self.mapping = mapping
        pos = scene.joint_positions(side)
        self.follower = TrajectoryFollower(np.array([pos[n] for n in joint_names]))
        self.index = {n: i for i, n in enumerate(joint_names)}
        self.commands = 0


class SimNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "sim", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        p = declare_parameters(self, PARAMS)
        self.params = p
        robots = {side: p[f"{side}_robot"] for side in SIDES if p[f"{side}_robot"]}
        # limbs: (side, limb, label, commanded joint names); the scene keys them by limb_name(side, limb)
        self.scene, limbs = self._humanoid_scene(robots) if p["humanoid"] else self._hand_scene(robots)
        self.scene.reset()
        self._lock = threading.Lock()
        self.hands: dict[str, _SimHand] = {}  # limb name ('right', 'right_arm') -> its controller
        for side, limb, label, names in limbs:
            key = limb_name(side, limb)
            limits = self.scene.joint_limits(key)
            lims = [JointLimit(n, *limits[n], 1.0, 1.0) for n in names]
            mapping = make_unit_mapping(p["unit_mapping"] if limb == "hand" else "identity", lims)
            self.hands[key] = _SimHand(self.scene, key, tuple(names), mapping)
            topic = controller_topic(side, p["controller"], limb)
            if p["controller"] == "joint_trajectory":
                self.create_subscription(JointTrajectory, topic, lambda m, k=key: self._on_trajectory(k, m), STREAM_QOS)
            else:
                self.create_subscription(Float64MultiArray, topic, lambda m, k=key: self._on_array(k, m), STREAM_QOS)
            if p["follow_wrist"] and not p["humanoid"]:
                self.create_subscription(PoseStamped, wrist_topic(side), lambda m, s=side: self._on_wrist(s, m), STREAM_QOS)
            self.get_logger().info(f"{key}: {label} ({len(names)} commanded joints) <- {topic}")
        all_names = [n for h in self.hands.values() for n in h.all_joints]
        self._combined = len(set(all_names)) == len(all_names)
        self._js_pub = self.create_publisher(JointState, TOPIC_JOINT_STATES, STATE_QOS)
        self._side_pubs = {k: self.create_publisher(JointState, f"/handx/{k}/joint_states", STATE_QOS) for k in self.hands}
        self._t_last = time.monotonic()
        self.sim_time = 0.0
        self.states_published = 0
        # physics + joint states run on their own thread with absolute deadlines: an executor timer
        # at 100 Hz in Python loses ticks whenever other callbacks hold the executor
        self.video_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"{self.get_name()}-physics", daemon=True)
        self._thread.start()
        self._video_thread = None
        if p["video"]:
            self._video_thread = threading.Thread(target=self._video_loop, name=f"{self.get_name()}-video", daemon=True)
            self._video_thread.start()
        self.readiness = Readiness(self, lambda: "" if self._thread.is_alive() else "its physics thread (stopped)")

    def _hand_scene(self, robots: dict[str, str]):
        """(HandScene of the floating hands, limbs) for the hand robots of ``left_robot`` / ``right_robot``."""
        from handx_robot.sim.scene import HandModel, SceneConfig, build_scene

        p = self.params
        if not robots:
            raise ConfigError("node 'sim': set parameter 'left_robot' and/or 'right_robot' (e.g. shadow_right), "
                              "or 'humanoid' (e.g. gr1_inspire)")
        models = {side: HandModel.from_registry(robot, assets=p["assets"] or None, side=side) for side, robot in robots.items()}
        scene = build_scene(models, SceneConfig(timestep=p["timestep"]))
        limbs = [(side, "hand", robots[side], model.independent_joints or scene.actuated_joint_names(side))
                 for side, model in models.items()]
        return scene, limbs

    def _humanoid_scene(self, robots: dict[str, str]):
        """(KinematicHumanoid, limbs: each side's hand, then each side's arm) for parameter ``humanoid``."""
        from handx_robot.ros.sim_humanoid import KinematicHumanoid

        spec = humanoid_with_hands(self.params["humanoid"], robots, self.get_name())
        scene = KinematicHumanoid(spec, self.params["timestep"])
        sides = scene.hm.sides
        limbs = [(s, "hand", spec.arms[s].hand, scene.commanded[limb_name(s, "hand")]) for s in sides]
        limbs += [(s, "arm", f"{spec.id} {s} arm", scene.commanded[limb_name(s, "arm")]) for s in sides]
        return scene, limbs

    #: how long close() waits for the physics thread and for the video thread to finish its file (s)
    JOIN_PHYSICS_S = 0.5
    JOIN_VIDEO_S = 1.0

    def close(self) -> None:
        """Stop the physics and video threads, say ``stopping`` (called before destroy_node; safe on a
        node whose __init__ failed). Bounded: a node exits within
        :data:`handx_robot.ros.common.SHUTDOWN_BUDGET_S` of SIGINT."""
        stop = getattr(self, "_stop", None)
        if stop is not None:  # the threads first: nothing publishes while the node is taken down
            stop.set()
            for thread, timeout in ((self._thread, self.JOIN_PHYSICS_S),
                                    (getattr(self, "_video_thread", None), self.JOIN_VIDEO_S)):
                if thread is not None and thread.is_alive():
                    thread.join(timeout=timeout)
                    if thread.is_alive():
                        self.get_logger().warning(f"{thread.name} did not stop within {timeout} s")
        readiness = getattr(self, "readiness", None)
        if readiness is not None:
            readiness.close()

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()

    def _open_video(self):
        """(renderer, writer) on this thread (an OpenGL context belongs to the thread that made it)."""
        from handx_robot.sim.render import OffscreenRenderer, VideoWriter

        renderer = OffscreenRenderer(self.scene.model, 640, 480)
        renderer.camera_id(self.params["camera"])  # unknown camera: ConfigError listing the cameras
        return renderer, VideoWriter(self.params["video"], self.params["video_fps"])

    def _video_loop(self) -> None:
        """Render snapshots of the state at ``video_fps`` on a thread of its own (software OpenGL can
        take tens of ms per frame; the physics loop must not wait for it). When rendering is slower
        than ``video_fps`` the video plays faster than real time."""
        import mujoco

        try:
            renderer, writer = self._open_video()
        except Exception as exc:  # noqa: BLE001 - no OpenGL / bad camera: run on without a video
            self.get_logger().error(f"no video: {exc}")
            return
        model = self.scene.model
        snap = mujoco.MjData(model)
        period = 1.0 / self.params["video_fps"]
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                with self._lock:
                    src = self.scene.data
                    snap.qpos[:], snap.qvel[:] = src.qpos, src.qvel
                    snap.mocap_pos[:], snap.mocap_quat[:] = src.mocap_pos, src.mocap_quat
                mujoco.mj_forward(model, snap)
                writer.append(renderer.render(snap, self.params["camera"]))
                self.video_frames += 1
                next_t += period
                self._stop.wait(max(0.0, next_t - time.monotonic()))
        finally:
            writer.close()
            renderer.close()
            self.get_logger().info(f"video: {self.video_frames} frames -> {self.params['video']}")

    def _loop(self) -> None:
        period = 1.0 / self.params["publish_rate_hz"]
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += period
            try:
                self._on_tick()
            except Exception as exc:  # noqa: BLE001 - a publish after shutdown ends the loop, others are logged
                if self._stop.is_set() or not self.context.ok():
                    return
                self.get_logger().error(f"physics tick failed: {exc}", throttle_duration_sec=1.0)
            delay = deadline - time.monotonic()
            if delay < -period:  # fell behind by more than a tick: skip, do not burst
                deadline = time.monotonic()
            elif delay > 0:
                self._stop.wait(delay)

    # -- commands ---------------------------------------------------------------------------------
    def _on_trajectory(self, side: str, msg: JointTrajectory) -> None:
        hand = self.hands[side]
        now = time.monotonic()
        with self._lock:
            if not msg.points:
                hand.follower.hold(now)
                return
            unknown = [n for n in msg.joint_names if n not in hand.index]
            if unknown:
                self.get_logger().error(f"{side}: trajectory names unknown joints {unknown}; ignored",
                                        throttle_duration_sec=1.0)
                return
            q_now = hand.follower.sample(now)
            cols = [hand.index[n] for n in msg.joint_names]
            points, times = [], []
            for pt in msg.points:
                q = q_now.copy()
                hw = np.asarray(pt.positions, dtype=np.float64)
                q[cols] = hand.mapping.to_model(msg.joint_names, hw)
                points.append(q)
                times.append(duration_to_s(pt.time_from_start))
            hand.follower.set(now, q_now, times, points)
            hand.commands += 1

    def _on_array(self, side: str, msg: Float64MultiArray) -> None:
        hand = self.hands[side]
        if len(msg.data) != len(hand.joint_names):
            self.get_logger().error(
                f"{side}: command has {len(msg.data)} values, the controller has {len(hand.joint_names)} joints",
                throttle_duration_sec=1.0,
            )
            return
        now = time.monotonic()
        with self._lock:
            q = hand.mapping.to_model(hand.joint_names, np.asarray(msg.data, dtype=np.float64))
            hand.follower.set(now, q, [], [])
            hand.commands += 1

    def _on_wrist(self, side: str, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        pose = [p.x, p.y, p.z, o.w, o.x, o.y, o.z]
        if not np.all(np.isfinite(pose)):
            return
        with self._lock:
            self.scene.set_wrist_target(side, pose)

    # -- physics --------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            elapsed = min(now - self._t_last, MAX_CATCH_UP_S)
            self._t_last = now
            for side, hand in self.hands.items():
                q = hand.follower.sample(now)
                self.scene.set_targets(side, dict(zip(hand.joint_names, q.tolist())))
            n = max(1, int(round(elapsed / self.scene.model.opt.timestep)))
            self.scene.step(n)
            self.sim_time += n * self.scene.model.opt.timestep
            states = {s: (self.scene.joint_positions(s), self.scene.joint_velocities(s)) for s in self.hands}
        stamp = self.get_clock().now().to_msg()
        msgs = {}
        for side, (pos, vel) in states.items():
            names = list(pos)
            msgs[side] = joint_state(names, [pos[n] for n in names], [vel[n] for n in names], stamp)
            self._side_pubs[side].publish(msgs[side])
        if self._combined:
            combined = joint_state([], [], [], stamp)
            for m in msgs.values():
                combined.name.extend(m.name)
                combined.position.extend(m.position)
                combined.velocity.extend(m.velocity)
            self._js_pub.publish(combined)
        else:
            for m in msgs.values():
                self._js_pub.publish(m)
        self.states_published += 1


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
