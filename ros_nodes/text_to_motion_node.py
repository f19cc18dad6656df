"""``text_to_motion`` node: a prompt in, a stream of human hand keypoints out.

Prompts come from ``/handx/prompt`` (std_msgs/String, latched QoS) or the ``prompt`` parameter.
Motion source: the motion file of parameter ``motion_file`` when set (our ``.npz``, see
:func:`handx_robot.motion.load_motion`; the prompt then only labels it), otherwise the text-to-motion
generator ``handx_robot.generate.generate(prompt, seed=, generator=) -> BimanualMotion`` (issue 7,
parameters ``generator`` and ``seed``). A new prompt replaces the motion being streamed.

Published, in real time at the motion's fps (or ``rate_hz``, resampled):

=========================== ===================================== ===========================================
topic                       type                                  content
=========================== ===================================== ===========================================
``/handx/keypoints``        geometry_msgs/PoseArray               42 keypoints: left 21 then right 21, HandX
                                                                  order, metres, ``frame_id`` (world, Z-up);
                                                                  orientation.w = 0 marks an absent hand
``/handx/human_markers``    visualization_msgs/MarkerArray        the same keypoints as RViz skeletons
``/handx/status``           std_msgs/String (latched)             ``generating``, ``streaming``, ``done``,
                                                                  ``error: ...``
=========================== ===================================== ===========================================
"""

from __future__ import annotations

import importlib
import threading
import time

import numpy as np
from geometry_msgs.msg import PoseArray
from handx_robot.ros.common import (
    LATCHED_QOS,
    STREAM_QOS,
    TOPIC_KEYPOINTS,
    TOPIC_MARKERS,
    TOPIC_PROMPT,
    ParamSpec,
    declare_parameters,
    run_node,
)
from handx_robot.ros.convert import keypoints_to_markers, keypoints_to_pose_array
from rclpy.node import Node
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from handx_robot.errors import HandXError, MissingDependencyError
from handx_robot.frames import FRAME_WORLD_ZUP
from handx_robot.motion import BimanualMotion, load_motion

__all__ = ["TextToMotionNode", "PARAMS", "TOPIC_STATUS", "make_motion", "main"]

TOPIC_STATUS = "/handx/status"

PARAMS = (
    ParamSpec("prompt", "", "prompt to generate at start-up ('' = wait for /handx/prompt)"),
    ParamSpec("motion_file", "", "motion .npz to stream instead of generating one ('' = generate)"),
    ParamSpec("generator", "composer", "text-to-motion generator name (handx_robot.generate.available_generators)"),
    ParamSpec("seed", 0, "generator seed (same prompt + seed = same motion)", min_value=0),
    ParamSpec("rate_hz", 0.0, "publishing rate in Hz (0 = the motion's fps; otherwise resampled)", min_value=0.0),
    ParamSpec("loop", False, "restart the motion when it ends"),
    ParamSpec("frame_id", "world", "frame of the published keypoints (robot world, Z-up)"),
    ParamSpec("publish_markers", True, "publish RViz markers of the human hands"),
    ParamSpec("start_delay_s", 0.0, "wait this long after a motion is ready before streaming (s)", min_value=0.0),
)


def make_motion(prompt: str, motion_file: str = "", generator: str = "composer", seed: int = 0) -> BimanualMotion:
    """The motion for ``prompt``: from ``motion_file`` if given, else from the text-to-motion generator."""
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
    motion = generate(prompt, seed=seed, generator=generator)
    if not isinstance(motion, BimanualMotion):
        raise MissingDependencyError(f"handx_robot.generate.generate returned {type(motion).__name__}, not a BimanualMotion")
    return motion


class TextToMotionNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "text_to_motion", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.params = declare_parameters(self, PARAMS)
        self._lock = threading.Lock()
        self._motion: BimanualMotion | None = None  # world Z-up, at the publishing rate
        self._t0 = 0.0
        self._last_index = -1
        self._generation = 0
        self.frames_published = 0
        self._kp_pub = self.create_publisher(PoseArray, TOPIC_KEYPOINTS, STREAM_QOS)
        self._marker_pub = self.create_publisher(MarkerArray, TOPIC_MARKERS, STREAM_QOS)
        self._status_pub = self.create_publisher(String, TOPIC_STATUS, LATCHED_QOS)
        self.create_subscription(String, TOPIC_PROMPT, self._on_prompt, LATCHED_QOS)
        self._timer = None
        self._workers: list[threading.Thread] = []
        self._closing = False
        self.status = "idle"
        self._set_status("idle")
        if self.params["prompt"]:
            self.start_prompt(self.params["prompt"])

    def _set_status(self, status: str) -> None:
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
        try:
            p = self.params
            motion = make_motion(prompt, p["motion_file"], p["generator"], p["seed"]).in_frame(FRAME_WORLD_ZUP)
            if self.params["rate_hz"] > 0:
                motion = motion.resample(self.params["rate_hz"])
        except HandXError as exc:
            self.get_logger().error(f"cannot make a motion for {prompt!r}: {exc}")
            self._set_status(f"error: {exc}")
            return
        if self._closing:
            return
        with self._lock:
            if generation != self._generation:
                return  # a newer prompt arrived meanwhile
            self._motion = motion
            self._t0 = time.monotonic() + self.params["start_delay_s"]
            self._last_index = -1
            if self._timer is not None:
                self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / motion.fps, self._on_timer)
        self.get_logger().info(
            f"streaming {motion.num_frames} frames at {motion.fps:g} fps ({motion.duration:.2f} s), "
            f"hands: {', '.join(motion.present_sides)}"
        )
        self._set_status("streaming")

    def _on_timer(self) -> None:
        with self._lock:
            motion = self._motion
            if motion is None:
                return
            now = time.monotonic()
            if now < self._t0:
                return
            index = int((now - self._t0) * motion.fps)
            if index >= motion.num_frames:
                if self.params["loop"]:
                    self._t0 = now
                    index = 0
                else:
                    self._motion = None
                    self.destroy_timer(self._timer)
                    self._timer = None
                    index = -1
            if index == self._last_index:
                return
            self._last_index = index
        if index < 0:
            self._set_status("done")
            self.get_logger().info("motion finished")
            return
        self.publish_frame(motion.joints[index], motion.present)

    def publish_frame(self, joints: np.ndarray, present: np.ndarray) -> None:
        """Publish one frame: (2, 21, 3) keypoints, metres, world Z-up."""
        stamp = self.get_clock().now().to_msg()
        frame_id = self.params["frame_id"]
        self._kp_pub.publish(keypoints_to_pose_array(joints, present, frame_id, stamp))
        if self.params["publish_markers"]:
            self._marker_pub.publish(keypoints_to_markers(joints, present, frame_id, stamp))
        self.frames_published += 1

    def close(self) -> None:
        self._closing = True
        for w in self._workers:
            w.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    return run_node(TextToMotionNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
