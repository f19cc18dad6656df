"""``text_to_motion`` node: a prompt in, a stream of human hand keypoints out.

Prompts come from ``/handx/prompt`` (std_msgs/String, latched QoS) or the ``prompt`` parameter.
Motion source: the motion file of parameter ``motion_file`` when set (our ``.npz``, see
:func:`handx_robot.motion.load_motion`; the prompt then only labels it), otherwise the text-to-motion
generator ``handx_robot.generate.generate(prompt, seed=, generator=) -> BimanualMotion`` (issue 7,
parameters ``generator`` and ``seed``). A new prompt replaces the motion being streamed.

The node says what it understood: after generating, the parse of the prompt (per hand: actions, parts,
counts, times; the words not used) goes out on ``/handx/status`` as ``parsed: {json}`` before the motion
streams. A prompt the composer cannot perform is refused (``refused: ...; try: ...`` on
``/handx/status``) and never moves the hands: the motion being streamed (or none) stays as it was.
With parameter ``lenient`` the composer performs what it understood instead (the parse lists the rest).

Published, in real time at the motion's fps (or ``rate_hz``, resampled):

=========================== ===================================== ===========================================
topic                       type                                  content
=========================== ===================================== ===========================================
``/handx/keypoints``        geometry_msgs/PoseArray               42 keypoints: left 21 then right 21, HandX
                                                                  order, metres, ``frame_id`` (world, Z-up);
                                                                  orientation.w = 0 marks an absent hand
``/handx/human_markers``    visualization_msgs/MarkerArray        the same keypoints as RViz skeletons
``/handx/status``           std_msgs/String (latched)             ``idle``, ``generating``, ``parsed:
                                                                  {json of the parse}``, ``refused:
                                                                  MESSAGE; try: A | B`` (nothing moves),
                                                                  ``waiting for ...``, ``streaming N
                                                                  frames``, ``done N frames``, ``error: ...``
``/handx/ready``            std_msgs/String (latched)             this node's readiness
                                                                  (:class:`handx_robot.ros.readiness.Readiness`)
=========================== ===================================== ===========================================

No lost start: with parameter ``wait_for`` (the launch file and ``ros-run`` name every other node of
the graph), a motion streams only once each of those nodes says ``ready`` on ``/handx/ready`` and
``/handx/keypoints`` has a subscriber; it then streams from frame 0, every frame in order (a late
timer tick publishes the frames it passed, up to :data:`MAX_CATCH_UP_FRAMES`; a longer stall skips
and counts them). If a waited-for node stops or leaves the graph mid-motion, the motion is dropped
with an ``error:`` status (send the prompt again); a node that does not become ready within
``ready_timeout_s`` gives an ``error:`` status naming it.
"""

from __future__ import annotations

import importlib
import json
import threading
import time

import numpy as np
from geometry_msgs.msg import PoseArray
from handx_robot.ros.common import (
    LATCHED_QOS,
    QUEUE_DEPTH,
    STREAM_QOS,
    TOPIC_KEYPOINTS,
    TOPIC_MARKERS,
    TOPIC_PROMPT,
    ParamSpec,
    declare_parameters,
    queue_qos,
    run_node,
)
from handx_robot.ros.convert import keypoints_to_markers, keypoints_to_pose_array
from handx_robot.ros.readiness import Readiness, ReadinessMonitor, unmatched_subscribers
from rclpy.node import Node
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from handx_robot.errors import HandXError, MissingDependencyError
from handx_robot.frames import FRAME_WORLD_ZUP
from handx_robot.motion import BimanualMotion, load_motion

__all__ = [
    "TextToMotionNode", "PARAMS", "TOPIC_STATUS", "MAX_CATCH_UP_FRAMES", "make_motion", "parsed_status",
    "refused_status", "main",
]  # fmt: skip

TOPIC_STATUS = "/handx/status"
#: a timer tick late by up to this many frames publishes the frames it passed; a longer stall skips them
MAX_CATCH_UP_FRAMES = 5
#: while waiting for the graph, say what is missing this often (s)
WAIT_LOG_PERIOD_S = 5.0

PARAMS = (
    ParamSpec("prompt", "", "prompt to generate at start-up ('' = wait for /handx/prompt)"),
    ParamSpec("motion_file", "", "motion .npz to stream instead of generating one ('' = generate)"),
    ParamSpec("generator", "composer", "text-to-motion generator name (handx_robot.generate.available_generators)"),
    ParamSpec("seed", 0, "generator seed (same prompt + seed = same motion)", min_value=0),
    ParamSpec("lenient", False, "composer: perform what was understood of a prompt it cannot fully perform "
              "instead of refusing it (the parse on /handx/status lists the words not used)"),
    ParamSpec("rate_hz", 0.0, "publishing rate in Hz (0 = the motion's fps; otherwise resampled)", min_value=0.0),
    ParamSpec("loop", False, "restart the motion when it ends"),
    ParamSpec("frame_id", "world", "frame of the published keypoints (robot world, Z-up)"),
    ParamSpec("publish_markers", True, "publish RViz markers of the human hands"),
    ParamSpec("start_delay_s", 0.0, "wait this long after a motion is ready before streaming (s)", min_value=0.0),
    ParamSpec("wait_for", "", "nodes that must say ready on /handx/ready before a motion streams, comma-separated "
              "('' = stream at once)"),
    ParamSpec("queue_depth", QUEUE_DEPTH, "keypoint frames kept for a subscriber that falls behind (KEEP_LAST)",
              min_value=1),
    ParamSpec("ready_timeout_s", 60.0, "give up on a motion (error status) when the nodes of 'wait_for' are not "
              "ready within this long (s)", min_value=0.1),
)


def make_motion(
    prompt: str, motion_file: str = "", generator: str = "composer", seed: int = 0, lenient: bool = False
) -> BimanualMotion:
    """The motion for ``prompt``: from ``motion_file`` if given, else from the text-to-motion generator.

    The composer (``ComposerGenerator(lenient=lenient)``) puts what it understood in ``motion.meta['parse']``
    and raises :class:`~handx_robot.generate.grammar.PromptRefused` for a prompt it cannot perform.
    """
    if motion_file:
        motion = load_motion(motion_file)
        return motion.replace(text=prompt or motion.text)
    try:
        gen = importlib.import_module("handx_robot.generate")
    except ModuleNotFoundError as exc:  # pragma: no cover - the package exists
        raise MissingDependencyError(f"handx_robot.generate is not importable ({exc})") from exc
    generate = getattr(gen, "generate", None)
    if generate is None:
        raise MissingDependencyError(
            "the text-to-motion generator (handx_robot.generate.generate) is not available in this "
            "version; give a motion file with parameter 'motion_file' (or --motion-file)"
        )
    kwargs = {"lenient": bool(lenient)} if generator == "composer" else {}
    motion = generate(prompt, seed=seed, generator=generator, **kwargs)
    if not isinstance(motion, BimanualMotion):
        raise MissingDependencyError(f"handx_robot.generate.generate returned {type(motion).__name__}, not a BimanualMotion")
    return motion


def parsed_status(motion: BimanualMotion) -> str | None:
    """``parsed: {json}``: what the generator understood (``motion.meta['parse']``, one line), or None."""
    parse = motion.meta.get("parse")
    if parse is None:
        return None
    return "parsed: " + json.dumps(parse, separators=(",", ":"), ensure_ascii=False, default=str)


def refused_status(exc) -> str:
    """``refused: MESSAGE; try: A | B`` for a :class:`~handx_robot.generate.grammar.PromptRefused`."""
    from handx_robot.generate.cli import refusal_message

    status = f"refused: {refusal_message(exc)}"
    suggestions = tuple(getattr(exc, "suggestions", ()) or ())
    if suggestions:
        status += "; try: " + " | ".join(suggestions)
    return status


class TextToMotionNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "text_to_motion", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.params = declare_parameters(self, PARAMS)
        self._lock = threading.Lock()
        self._motion: BimanualMotion | None = None  # world Z-up, at the publishing rate
        self._t0 = 0.0
        self._started = False  # the current motion's stream began (the graph was ready)
        self._wait_t0 = 0.0
        self._wait_logged = 0.0
        self._last_index = -1
        self._generation = 0
        self.frames_published = 0
        self.frames_skipped = 0
        required = [n.strip() for n in self.params["wait_for"].split(",") if n.strip()]
        self._monitor = ReadinessMonitor(self, required)
        self._kp_pub = self.create_publisher(PoseArray, TOPIC_KEYPOINTS, queue_qos(self.params["queue_depth"]))
        self._marker_pub = self.create_publisher(MarkerArray, TOPIC_MARKERS, STREAM_QOS)
        self._status_pub = self.create_publisher(String, TOPIC_STATUS, LATCHED_QOS)
        self.create_subscription(String, TOPIC_PROMPT, self._on_prompt, LATCHED_QOS)
        self._timer = None
        self._workers: list[threading.Thread] = []
        self._closing = False
        self.status = ""
        self._set_status("idle")
        self.readiness = Readiness(self)
        if self.params["prompt"]:
            self.start_prompt(self.params["prompt"])

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self._status_pub.publish(String(data=status))

    def _on_prompt(self, msg: String) -> None:
        prompt = msg.data.strip()
        if not prompt:
            self.get_logger().warning("ignoring an empty prompt on /handx/prompt")
            return
        self.start_prompt(prompt)

    def start_prompt(self, prompt: str) -> None:
        """Generate (in a worker thread, the executor keeps spinning) and then stream ``prompt``."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        self._set_status("generating")
        self.get_logger().info(f"prompt: {prompt!r}")
        worker = threading.Thread(target=self._generate, args=(prompt, generation), daemon=True, name="t2m-generate")
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    def _generate(self, prompt: str, generation: int) -> None:
        from handx_robot.generate.grammar import PromptRefused

        try:
            p = self.params
            motion = make_motion(prompt, p["motion_file"], p["generator"], p["seed"], p["lenient"])
            motion = motion.in_frame(FRAME_WORLD_ZUP)
            if self.params["rate_hz"] > 0:
                motion = motion.resample(self.params["rate_hz"])
        except PromptRefused as exc:  # never moves the hands: the motion being streamed (or none) stays
            self.get_logger().error(f"refused {prompt!r}: {exc}")
            if generation == self._generation and not self._closing:
                self._set_status(refused_status(exc))
            return
        except HandXError as exc:
            self.get_logger().error(f"cannot make a motion for {prompt!r}: {exc}")
            self._set_status(f"error: {exc}")
            return
        if self._closing:
            return
        with self._lock:
            if generation != self._generation:
                return  # a newer prompt arrived meanwhile
            parsed = None if p["motion_file"] else parsed_status(motion)
            if parsed is not None:  # what was understood, before anything moves
                self._set_status(parsed)
                unused = motion.meta["parse"].get("unused") if isinstance(motion.meta["parse"], dict) else None
                if unused:
                    self.get_logger().warning(f"not performed of {prompt!r}: {', '.join(map(str, unused))}")
            self._motion = motion
            self._started = False
            self._wait_t0 = self._wait_logged = time.monotonic()
            self._last_index = -1
            if self._timer is not None:
                self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / motion.fps, self._on_timer)
        self.get_logger().info(
            f"motion ready: {motion.num_frames} frames at {motion.fps:g} fps ({motion.duration:.2f} s), "
            f"hands: {', '.join(motion.present_sides)}"
        )

    def _graph_missing(self) -> list[str]:
        """What the motion waits for: the ``wait_for`` nodes not ready, and a keypoint subscriber."""
        missing = self._monitor.missing()
        if self._monitor.required:
            keypoints = unmatched_subscribers(self, self._kp_pub)
            if keypoints:
                missing.append(keypoints)
        return missing

    def _drop_motion(self, status: str) -> None:
        """Stop the current motion (lock held) and say why."""
        self._motion = None
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._set_status(status)

    def _wait_for_graph(self, now: float) -> bool:
        """True once the graph downstream is ready (the stream starts now); lock held."""
        missing = self._graph_missing()
        if not missing:
            motion = self._motion
            self._started = True
            self._t0 = now + self.params["start_delay_s"]
            self._set_status(f"streaming {motion.num_frames} frames")
            self.get_logger().info(f"streaming {motion.num_frames} frames at {motion.fps:g} fps "
                                   f"({motion.duration:.2f} s) after {now - self._wait_t0:.2f} s waiting for the graph")
            return True
        waited = now - self._wait_t0
        if waited > self.params["ready_timeout_s"]:
            self.get_logger().error(f"not streaming: after {waited:.0f} s still waiting for {', '.join(missing)}")
            self._drop_motion(f"error: not streaming: waited {waited:.0f} s for {', '.join(missing)}; check that "
                              "those nodes run (and their log), then send the prompt again")
        else:
            self._set_status(f"waiting for {', '.join(missing)}")
            if now - self._wait_logged >= WAIT_LOG_PERIOD_S:
                self._wait_logged = now
                self.get_logger().info(f"waiting {waited:.0f} s for {', '.join(missing)}")
        return False

    def _on_timer(self) -> None:
        frames: list[int] = []
        with self._lock:
            motion = self._motion
            if motion is None:
                return
            now = time.monotonic()
            if not self._started:
                if not self._wait_for_graph(now):
                    return
            elif self._monitor.required:
                gone = self._monitor.missing(now)
                if gone:
                    at = self._last_index + 1
                    self.get_logger().error(f"motion stopped at frame {at}/{motion.num_frames}: {', '.join(gone)}")
                    self._drop_motion(f"error: motion stopped at frame {at}/{motion.num_frames}: "
                                      f"{', '.join(gone)}; send the prompt again once it runs")
                    return
            if now < self._t0:
                return
            index = min(int((now - self._t0) * motion.fps), motion.num_frames - 1)
            first = self._last_index + 1
            if index - first >= MAX_CATCH_UP_FRAMES:  # a long stall: skip what is stale, say so
                self.frames_skipped += index - first
                self.get_logger().warning(f"skipped {index - first} frames after a stall", throttle_duration_sec=1.0)
                first = index
            frames = list(range(first, index + 1))
            if frames:
                self._last_index = index
            finished = self._last_index >= motion.num_frames - 1
            if finished:
                if self.params["loop"]:
                    self._t0 = now + 1.0 / motion.fps
                    self._last_index = -1
                else:
                    self._motion = None
                    self.destroy_timer(self._timer)
                    self._timer = None
        for i in frames:
            self.publish_frame(motion.joints[i], motion.present)
        if finished and not self.params["loop"]:
            self._set_status(f"done {motion.num_frames} frames")
            self.get_logger().info(f"motion finished: {self.frames_published} frames published, "
                                   f"{self.frames_skipped} skipped")

    def publish_frame(self, joints: np.ndarray, present: np.ndarray) -> None:
        """Publish one frame: (2, 21, 3) keypoints, metres, world Z-up."""
        stamp = self.get_clock().now().to_msg()
        frame_id = self.params["frame_id"]
        self._kp_pub.publish(keypoints_to_pose_array(joints, present, frame_id, stamp))
        if self.params["publish_markers"]:
            self._marker_pub.publish(keypoints_to_markers(joints, present, frame_id, stamp))
        self.frames_published += 1

    def close(self) -> None:
        """Stop streaming and say so; a generation still running is abandoned (daemon thread, its
        result dropped), so shutting down never waits for it."""
        self._closing = True
        with self._lock:
            if self._timer is not None:
                self.destroy_timer(self._timer)
                self._timer = None
            self._motion = None
        self.readiness.close()


def main(args: list[str] | None = None) -> int:
    return run_node(TextToMotionNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
