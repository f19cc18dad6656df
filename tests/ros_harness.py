"""Helpers to run nodes in-process over real DDS (the tests' and the benchmarks' harness, not product code).

:class:`RosGraph` owns an rclpy context on an isolated domain (random ``ROS_DOMAIN_ID`` in 1..100
unless set, localhost-only discovery), one executor (:func:`handx_robot.ros.common.make_executor`, single-threaded
unless ``$HANDX_ROS_EXECUTOR=multi``) spinning in a background thread, and
the nodes added to it; :class:`Probe` records messages with their arrival times.
Always use it as a context manager: nodes are destroyed and the context shut down on exit.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from handx_robot.ros.common import GIL_SWITCH_INTERVAL_S

__all__ = ["isolate_ros_env", "RosGraph", "Probe", "wait_for", "dexmv_motion_file"]


def dexmv_motion_file(npz, out, frames: int) -> str:
    """The first ``frames`` frames of a DexMV recording (MediaPipe keypoints of a real right hand,
    world Z-up, 30 fps; ``../shared/data/*.npz``) as a motion file at ``out``, labelled 'relocate':
    the real-hand input of the ROS tests and benchmarks. Read with :func:`handx_robot.readers.read_motion`."""
    from handx_robot.motion import save_motion
    from handx_robot.readers import read_motion

    motion = read_motion(npz, hand="right", frame="zup").in_frame("world_zup")
    motion = motion.trim(0.0, (frames - 1) / motion.fps).replace(text="relocate")
    return str(save_motion(motion, out))


def isolate_ros_env(domain_id: int | None = None) -> int:
    """Set a private ROS_DOMAIN_ID (random 1..100 unless given/already set) and localhost discovery."""
    if domain_id is None:
        domain_id = int(os.environ.get("HANDX_ROS_DOMAIN_ID") or random.SystemRandom().randint(1, 100))
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_LOCALHOST_ONLY"] = "1"
    return domain_id


def wait_for(predicate: Callable[[], Any], timeout: float, period: float = 0.005) -> Any:
    """Poll ``predicate`` until truthy (returned) or ``timeout`` s (returns the last falsy value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(period)
        value = predicate()
    return value


class Probe:
    """Subscribes to a topic and records ``(monotonic arrival time, message)``."""

    def __init__(self, node, msg_type, topic: str, qos) -> None:
        self.topic = topic
        self.messages: list[tuple[float, Any]] = []
        self._lock = threading.Lock()
        self.sub = node.create_subscription(msg_type, topic, self._on_msg, qos)

    def _on_msg(self, msg) -> None:
        with self._lock:
            self.messages.append((time.monotonic(), msg))

    def snapshot(self) -> list[tuple[float, Any]]:
        with self._lock:
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self.messages)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[tuple[float, Any]]:
        wait_for(lambda: len(self) >= count, timeout)
        return self.snapshot()


class RosGraph:
    """In-process node graph on its own context; ``with RosGraph() as g: g.add(node_cls, params)``."""

    def __init__(self, domain_id: int | None = None) -> None:
        self.domain_id = isolate_ros_env(domain_id)
        self.nodes: list = []
        self.context = None
        self.executor = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RosGraph:
        import rclpy
        from handx_robot.ros.common import freeze_gc, make_executor

        # several real-time loops share one interpreter: hand the GIL over every 1 ms, not 5 ms
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, GIL_SWITCH_INTERVAL_S))
        freeze_gc()  # a caller's large heap (a test session) must not stall the graph in full collections
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self.domain_id)
        self.executor = make_executor(self.context)
        self.probe_node = self.node("handx_test_probe")
        self._thread = threading.Thread(target=self._spin, name="ros-spin", daemon=True)
        self._thread.start()
        return self

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except (ExternalShutdownException, RuntimeError):
            pass

    def node(self, name: str):
        """A plain rclpy node in this graph (for publishers, probes, service clients)."""
        import rclpy

        n = rclpy.create_node(name, context=self.context)
        self.nodes.append(n)
        self.executor.add_node(n)
        return n

    def add(self, factory: Callable[..., Any], params: dict[str, Any] | None = None, name: str | None = None):
        """Build a node ``factory(context=..., parameter_overrides=...)`` and spin it."""
        from rclpy.parameter import Parameter

        overrides = [Parameter(k, value=v) for k, v in (params or {}).items()]
        kwargs: dict[str, Any] = {"context": self.context, "parameter_overrides": overrides}
        if name:
            kwargs["node_name"] = name
        n = factory(**kwargs)
        self.nodes.append(n)
        self.executor.add_node(n)
        return n

    def probe(self, msg_type, topic: str, qos) -> Probe:
        return Probe(self.probe_node, msg_type, topic, qos)

    def __exit__(self, *exc) -> None:
        import rclpy

        # stop the nodes' threads, then the executor and its thread, then destroy the nodes
        for n in reversed(self.nodes):
            close = getattr(n, "close", None)
            if close is not None:
                close()
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        for n in reversed(self.nodes):
            n.destroy_node()
        if self.context is not None and self.context.ok():
            rclpy.shutdown(context=self.context)
        sys.setswitchinterval(self._switch)
        gc.unfreeze()
