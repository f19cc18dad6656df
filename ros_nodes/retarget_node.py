"""``retarget`` node: streaming retargeting of the keypoint stream to one robot hand per side.

Depends on the retarget package (issue 4): the registry :func:`handx_robot.retarget.robots.get_robot` and the
streaming solver :class:`handx_robot.retarget.solver.StreamingRetargeter` (one frame at a time, warm-started
from the previous solution, ``step(kp_wrist (21, 3)) -> (qpos, converged, objective)``), with the
wrist calibration ``T_world_base = T_world_wrist @ T_wrist_base`` of :mod:`handx_robot.retarget.bimanual`.

In: ``/handx/keypoints`` (geometry_msgs/PoseArray, see :mod:`handx_robot.ros.convert`; world Z-up).
Out, per side with a robot:

================================ =================================== ==============================================
topic                            type                                content
================================ =================================== ==============================================
``/handx/<side>/command``        trajectory_msgs/JointTrajectory     the robot's actuated joints (registry
                                                                     ``joint_names``, coupled joints excluded), rad/m;
                                                                     ``time_from_start`` = one input period
``/handx/<side>/wrist_pose``     geometry_msgs/PoseStamped           ``T_world_base`` (metres, world Z-up)
================================ =================================== ==============================================

Every keypoint frame is solved, in order (a queue of ``queue_depth`` frames absorbs a slow solve).
The node says ``ready`` on ``/handx/ready`` once its solvers are built (the kernels compiled) and
each command topic has a subscriber (the safety streamer) and the keypoint topic a publisher: see :class:`handx_robot.ros.readiness.Readiness`.

With parameter ``interaction`` ``auto`` (the default) each frame in which every configured hand is
present then goes through the bimanual step (:meth:`handx_robot.retarget.interaction.BimanualRefiner.step`,
warm-started, the human's contacts tracked frame by frame): where the hands interact, the robot hands
touch where the human's touch and do not pass through each other; with one hand or two, a hand's fingers
do not pass through each other and touch where the human's touch within the hand (a pinch); the commands
are the per-hand (low-pass filtered) ones plus the solve's change, and the wrist poses the solved ones. The step may take half the input
period (``input_rate_hz``); past that it ends with a result no deeper in penetration than the frame's
start or the previous result (``InteractionOptions.stream_budget_s``).

A frame whose hand is absent, degenerate or non-finite is skipped (the safety streamer's watchdog
holds the hand if frames stop coming); non-converged frames are published and counted.

Humanoids (parameter ``humanoid``, e.g. ``gr1_inspire``; :mod:`handx_robot.retarget.humanoid`): the hands
are the humanoid's (``left_robot`` / ``right_robot`` empty or equal to them) and each frame goes through
:class:`handx_robot.retarget.humanoid.stream.HumanoidStream` (the hands retargeted as above, then one
warm-started arm IK step toward them, within the arm joints' speed limits at ``input_rate_hz``). Per
side present in the frame, besides the hand command:

================================ =================================== ==============================================
``/handx/<side>_arm/command``    trajectory_msgs/JointTrajectory     that arm's joints (shoulder to wrist, by
                                                                     name), rad; ``time_from_start`` = one period
``/handx/<side>/wrist_pose``     geometry_msgs/PoseStamped           the hand root's pose the arm reached
                                                                     (metres, world Z-up)
================================ =================================== ==============================================

Readiness then also waits for a subscriber on each arm command topic. A humanoid frame's solve can
take longer than a frame period (frames where the hands touch), so its keypoints are taken and solved
on a thread of the node's own (:class:`handx_robot.ros.common.DedicatedSubscription`, in order, the
queue absorbing the lag), not on the executor: where nodes share one executor (``handx-robot ros-run``)
the keypoint source's timer and the sim node keep their pace.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped
from handx_robot.ros.common import (
    QUEUE_DEPTH,
    SIDES,
    STREAM_QOS,
    TOPIC_KEYPOINTS,
    DedicatedSubscription,
    ParamSpec,
    command_topic,
    declare_parameters,
    queue_qos,
    run_node,
    wrist_topic,
)
from handx_robot.ros.convert import joint_trajectory, pose_array_to_keypoints, wrist_pose_stamped
from handx_robot.ros.readiness import Readiness, unmatched_inputs, unmatched_outputs
from handx_robot.ros.robot_model import humanoid_with_hands
from rclpy.node import Node
from trajectory_msgs.msg import JointTrajectory

from handx_robot.errors import ConfigError, HandXError

__all__ = ["RetargetNode", "HandStream", "PARAMS", "main"]

PARAMS = (
    ParamSpec("left_robot", "", "robot id for the left hand ('' = none), e.g. shadow_left"),
    ParamSpec("right_robot", "", "robot id for the right hand ('' = none), e.g. shadow_right"),
    ParamSpec("humanoid", "", "humanoid id ('' = none), e.g. gr1_inspire: retarget its arms and hands together; "
              "left_robot/right_robot must then be empty or the humanoid's hands"),
    ParamSpec("assets", "", "robot asset directory ('' = $HANDX_ROBOT_ASSETS / built-in models)"),
    ParamSpec("input_rate_hz", 30.0, "expected keypoint rate (Hz): sets the commands' time_from_start",
              min_value=0.1),
    ParamSpec("frame_id", "world", "frame of the published wrist poses"),
    ParamSpec("interaction", "auto", "'auto' solves again the frames where the hands interact (contacts where "
              "the human's hands touch, no interpenetration, bounded wrist adaptation) or a hand's fingers would "
              "pass through each other or miss a contact of the human's within the hand (one hand or two; "
              "handx_robot.retarget.interaction); 'off' retargets each hand on its own", choices=("auto", "off")),
    ParamSpec("queue_depth", QUEUE_DEPTH, "keypoint frames queued while a solve runs, and commands kept for a "
              "subscriber that falls behind (KEEP_LAST): every frame is solved and sent in order unless this many "
              "newer ones come first", min_value=1),
)


class HandStream:
    """One hand: keypoints (21, 3) world Z-up -> (qpos by joint name, T_world_base (4, 4), converged)."""

    def __init__(self, side: str, robot: str, assets: str | None) -> None:
        from handx_robot.retarget.robots import get_robot
        from handx_robot.retarget.solver import HandProblem, SolverOptions, StreamingRetargeter

        self.side = side
        self.spec = get_robot(robot, assets or None)
        if self.spec.side not in (side, "any"):
            raise ConfigError(
                f"robot {self.spec.id!r} is a {self.spec.side} hand but is configured for the {side} hand; "
                f"give a {side} robot in parameter '{side}_robot'"
            )
        self.problem = HandProblem(self.spec)
        self.retargeter = StreamingRetargeter(self.problem, SolverOptions())
        #: the joints commanded: the registry's actuated joints, in model order
        self.joint_names = tuple(self.spec.joint_names)
        out = list(self.retargeter.joint_names)
        missing = [n for n in self.joint_names if n not in out]
        if missing:
            raise ConfigError(f"robot {self.spec.id!r}: the solver does not output joints {missing}")
        self._columns = np.array([out.index(n) for n in self.joint_names])
        tree = self.problem.tree
        idx = [tree.joint_names.index(n) for n in self.joint_names]
        self._lower, self._upper = tree.joint_lower[idx], tree.joint_upper[idx]
        self.frames = 0
        self.not_converged = 0
        #: this frame's solver dofs (D,) and wrist-frame keypoints (21, 3), for the bimanual solve
        self.q_dof: np.ndarray | None = None
        self.kp_wrist: np.ndarray | None = None

    def step(self, kp_world: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        from handx_robot.handframe import to_wrist_frame, wrist_transform

        T_world_wrist = wrist_transform(kp_world, self.side)
        kp_wrist = to_wrist_frame(kp_world, self.side)
        qpos, converged, _ = self.retargeter.step(kp_wrist)
        q_dof = self.retargeter.q  # (1, n) solver dofs (free-base offset for position configs)
        T_world_base = T_world_wrist @ self.problem.T_wrist_base @ self.problem.base_offset(q_dof)[0]
        self.q_dof, self.kp_wrist = q_dof[0].copy(), kp_wrist
        self.frames += 1
        self.not_converged += int(not converged)
        return qpos[self._columns], T_world_base, converged

    def corrected(self, qpos: np.ndarray, q_dof_new: np.ndarray) -> np.ndarray:
        """The commanded joints after the bimanual solve moved this frame's dofs to ``q_dof_new``: the
        (low-pass filtered) per-hand command plus the solve's change, inside the joint limits."""
        model = self.problem.model_qpos
        delta = model(q_dof_new[None])[0] - model(self.q_dof[None])[0]
        return np.clip(qpos + delta[self._columns], self._lower, self._upper)


def _pose7(T: np.ndarray) -> np.ndarray:
    from handx_robot.retarget.kinematics import matrix_to_quat_wxyz

    return np.concatenate([T[:3, 3], matrix_to_quat_wxyz(T[None, :3, :3])[0]])


class RetargetNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "retarget", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        p = declare_parameters(self, PARAMS)
        self.params = p
        robots = {side: p[f"{side}_robot"] for side in SIDES if p[f"{side}_robot"]}
        self.hands: dict[str, HandStream] = {}
        self.humanoid = None  # HumanoidStream with parameter 'humanoid'
        self.position_errors: list[float] = []  # humanoid: per frame, the largest hand position error (m)
        self._cmd_pubs = {}
        self._arm_pubs = {}
        self._wrist_pubs = {}
        self._lock = threading.Lock()
        self.solve_seconds: list[float] = []
        self.bimanual = None  # (BimanualRefiner, HumanContactTracker) with interaction 'auto'
        self.bimanual_frames = 0
        if p["humanoid"]:
            self._init_humanoid(robots)
        else:
            self._init_hands(robots)
        qos = queue_qos(p["queue_depth"])
        self._solve_thread: DedicatedSubscription | None = None
        if self.humanoid is not None:  # a frame's solve may outlast a period: not on the executor (docstring)
            self._solve_thread = DedicatedSubscription(self, PoseArray, TOPIC_KEYPOINTS, qos, self._on_keypoints,
                                                       thread_name=f"{self.get_name()}_solve").start()
            keypoints = self._solve_thread.subscription
        else:
            keypoints = self.create_subscription(PoseArray, TOPIC_KEYPOINTS, self._on_keypoints, qos)
        outputs = [*self._cmd_pubs.values(), *self._arm_pubs.values()]
        self.readiness = Readiness(self, lambda: self._waiting_for(outputs, keypoints))

    def _waiting_for(self, outputs, keypoints) -> str:
        """What keeps this node from retargeting ('' = ready)."""
        if self._solve_thread is not None and not self._solve_thread.alive:
            return "its solve thread (stopped)"
        return unmatched_outputs(self, outputs) or unmatched_inputs([keypoints])

    def _init_hands(self, robots: dict[str, str]) -> None:
        p = self.params
        if not robots:
            raise ConfigError("node 'retarget': set parameter 'left_robot' and/or 'right_robot' (e.g. shadow_right), "
                              "or 'humanoid' (e.g. gr1_inspire)")
        for side, robot in robots.items():
            self.hands[side] = HandStream(side, robot, p["assets"])
            self._hand_outputs(side)
            self.get_logger().info(
                f"{side}: {robot} ({len(self.hands[side].joint_names)} joints) -> {command_topic(side)}"
            )
        if self.hands and p["interaction"] == "auto":
            from handx_robot.retarget.interaction import BimanualRefiner, HumanContactTracker

            refiner = BimanualRefiner({side: hand.problem for side, hand in self.hands.items()}, self._interaction_options())
            self.bimanual = (refiner, HumanContactTracker(refiner.pairs, refiner.contact_config))
            self.get_logger().info(f"bimanual solve on ({', '.join(self.hands)}): {len(refiner.pairs)} part pairs monitored")

    def _interaction_options(self):
        """The bimanual step may take half the input period (``stream_budget_s``), so a frame is answered
        within it; past that the step keeps its no-deeper-penetration guarantee and ends."""
        from handx_robot.retarget.interaction import InteractionOptions

        return InteractionOptions(stream_budget_s=0.5 / self.params["input_rate_hz"])

    def _init_humanoid(self, robots: dict[str, str]) -> None:
        from handx_robot.retarget.humanoid.stream import HumanoidStream

        p = self.params
        spec = humanoid_with_hands(p["humanoid"], robots, self.get_name())
        self.humanoid = HumanoidStream(spec, p["input_rate_hz"], interaction=p["interaction"],
                                       interaction_options=self._interaction_options())
        for side in self.humanoid.sides:
            self._hand_outputs(side)
            self._arm_pubs[side] = self.create_publisher(JointTrajectory, command_topic(side, "arm"),
                                                         queue_qos(p["queue_depth"]))
            self.get_logger().info(
                f"{side}: humanoid {spec.id}: hand {spec.arms[side].hand} ({len(self.humanoid.joint_names[side])} "
                f"joints) -> {command_topic(side)}, arm ({len(spec.arms[side].arm_joints)} joints) -> "
                f"{command_topic(side, 'arm')}"
            )

    def _hand_outputs(self, side: str) -> None:
        self._cmd_pubs[side] = self.create_publisher(JointTrajectory, command_topic(side), queue_qos(self.params["queue_depth"]))
        self._wrist_pubs[side] = self.create_publisher(PoseStamped, wrist_topic(side), STREAM_QOS)

    def close(self) -> None:
        """Say ``stopping`` on /handx/ready and stop the solve thread (safe on a node whose __init__
        failed; idempotent)."""
        readiness = getattr(self, "readiness", None)
        if readiness is not None:
            readiness.close()
        thread = getattr(self, "_solve_thread", None)
        if thread is not None:
            thread.close(timeout_s=0.5)

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()

    def _on_keypoints(self, msg: PoseArray) -> None:
        try:
            kp, present = pose_array_to_keypoints(msg)
        except HandXError as exc:
            self.get_logger().warning(f"bad keypoint message: {exc}", throttle_duration_sec=1.0)
            return
        if self.humanoid is not None:
            self._humanoid_frame(kp, present, msg.header.stamp)
            return
        duration = 1.0 / self.params["input_rate_hz"]
        solved = {}
        t0 = time.perf_counter()
        for h, side in enumerate(SIDES):
            hand = self.hands.get(side)
            if hand is None or not present[h]:
                continue
            try:
                with self._lock:
                    solved[side] = hand.step(kp[h])
            except HandXError as exc:
                self.get_logger().warning(f"{side}: frame skipped: {exc}", throttle_duration_sec=1.0)
                continue
            if not solved[side][2]:
                self.get_logger().debug(f"{side}: frame {hand.frames} did not converge")
        if self.bimanual is not None and len(solved) == len(self.hands):  # every configured hand this frame
            solved = self._bimanual(solved, {side: kp[h] for h, side in enumerate(SIDES) if side in self.hands})
        if solved:
            self.solve_seconds.append(time.perf_counter() - t0)
        for side, (q, T_world_base, _converged) in solved.items():
            self._cmd_pubs[side].publish(joint_trajectory(self.hands[side].joint_names, q, duration))
            self._wrist_pubs[side].publish(
                wrist_pose_stamped(_pose7(T_world_base), self.params["frame_id"], msg.header.stamp)
            )

    def _humanoid_frame(self, kp: np.ndarray, present, stamp) -> None:
        """One keypoint frame through the humanoid: hand and arm commands and the reached wrist pose of
        each side present (a frame that fails is skipped, as for the hands)."""
        kp_world = {side: kp[h] for h, side in enumerate(SIDES) if present[h] and side in self.humanoid.sides}
        if not kp_world:
            return
        try:
            with self._lock:
                frame = self.humanoid.step(kp_world)
        except HandXError as exc:
            self.get_logger().warning(f"humanoid: frame skipped: {exc}", throttle_duration_sec=1.0)
            return
        self.solve_seconds.append(frame.seconds)
        self.position_errors.append(max(frame.position_error[s] for s in kp_world))
        duration = 1.0 / self.params["input_rate_hz"]
        for side in kp_world:
            hand = frame.hands[side]
            names = self.humanoid.joint_names[side]
            self._cmd_pubs[side].publish(joint_trajectory(names, [hand[n] for n in names], duration))
            arm = self.humanoid.spec.arms[side].arm_joints
            self._arm_pubs[side].publish(joint_trajectory(arm, [frame.arms[n] for n in arm], duration))
            self._wrist_pubs[side].publish(
                wrist_pose_stamped(_pose7(frame.T_world_hand[side]), self.params["frame_id"], stamp))

    def _bimanual(self, solved: dict, kp_world: dict) -> dict:
        """The configured hands' per-hand results of this frame -> after the bimanual solve (see
        ``interaction``); the per-hand results stand if the solve fails."""
        refiner, tracker = self.bimanual
        try:
            with self._lock:
                touching = tracker.update(kp_world)
                ref = {s: h.problem.reference(h.kp_wrist[None])[:2] for s, h in self.hands.items()}
                T, q, stats = refiner.step({s: r[1] for s, r in solved.items()},
                                           {s: h.q_dof for s, h in self.hands.items()}, ref, touching)
                if stats is None:
                    return solved
                self.bimanual_frames += 1
                return {s: (self.hands[s].corrected(r[0], q[s]), T[s], r[2]) for s, r in solved.items()}
        except HandXError as exc:
            self.get_logger().warning(f"bimanual solve skipped: {exc}", throttle_duration_sec=1.0)
            return solved


def main(args: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    # the solvers' matrices are small: more BLAS threads only spin, on cores the robot's other nodes need
    # (benchmarks/bimanual_streaming.py's CPU time with and without OPENBLAS_NUM_THREADS=1: benchmarks/RESULTS.md)
    threadpool_limits(limits=1, user_api="blas")
    return run_node(RetargetNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
