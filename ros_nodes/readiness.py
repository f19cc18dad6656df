"""Readiness of the text-to-hand graph: what each node says on ``/handx/ready`` and how the source
knows the graph downstream can take a stream.

Readiness (``/handx/ready``, std_msgs/String, latched per node): every node says ``"<name> starting"``
when it is created, ``"<name> ready"`` once it can do its job (models loaded, solver compiled, and
each output it must feed matched by a subscriber), ``"<name> waiting for <what>"`` while it cannot,
and ``"<name> stopping"`` when it shuts down (:class:`Readiness`). The source (``text_to_motion``)
streams a motion only when every node it was told to wait for says ``ready`` and is in the ROS graph
(:class:`ReadinessMonitor`), so a prompt given at launch is performed from its first frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from handx_robot.ros.common import LATCHED_QOS
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

__all__ = ["TOPIC_READY", "READY_READER_QOS", "Readiness", "ReadinessMonitor", "unmatched_outputs",
           "unmatched_inputs", "unmatched_subscribers"]

TOPIC_READY = "/handx/ready"
#: reader of /handx/ready: every node's latched state reaches a late joiner, none overwrites another
READY_READER_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

class Readiness:
    """What one node says on ``/handx/ready`` (see the module docstring).

    ``waiting_for()``: '' when the node can do its job, else what it waits for (e.g. "a subscriber on
    /handx/right/command"); evaluated every ``period_s`` on the node's executor, and published when
    the answer changes (a downstream node that restarts makes its upstream wait again). ``close()``
    says ``stopping``.
    """

    def __init__(self, node, waiting_for: Callable[[], str] = lambda: "", period_s: float = 0.05) -> None:
        from std_msgs.msg import String

        self._node = node
        self._msg = String
        self._waiting_for = waiting_for
        self._pub = node.create_publisher(String, TOPIC_READY, LATCHED_QOS)
        self.state = ""
        self._say("starting")
        self._timer = node.create_timer(period_s, self.update)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def _say(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._pub.publish(self._msg(data=f"{self._node.get_name()} {state}"))
            if state != "starting":
                self._node.get_logger().info(state)

    def update(self) -> None:
        what = self._waiting_for()
        self._say(f"waiting for {what}" if what else "ready")

    def close(self) -> None:
        """Say ``stopping`` (idempotent; the context may already be gone)."""
        if self.state == "stopping":
            return
        try:
            self._node.destroy_timer(self._timer)
            self._say("stopping")
        except Exception:  # noqa: BLE001 - shut down under us: nobody is listening any more
            self.state = "stopping"


def unmatched_outputs(node, publishers) -> str:
    """'' when each publisher has matched every subscriber it can (:func:`unmatched_subscribers`: at
    least one), else what the first one waits for: a stream then reaches each of them from its first
    frame."""
    for pub in publishers:
        what = unmatched_subscribers(node, pub)
        if what:
            return what
    return ""


def unmatched_inputs(subscriptions) -> str:
    """'' when every subscription has a matched publisher, else "a publisher on <topics>"."""
    topics = [s.topic_name for s in subscriptions if s.get_publisher_count() == 0]
    return f"a publisher on {', '.join(topics)}" if topics else ""


def unmatched_subscribers(node, publisher) -> str:
    """'' when ``publisher`` has matched every subscription the ROS graph shows on its topic (at least
    one) that can match it, else what it waits for. The graph learns of a subscription before DDS has
    matched it, so a ready downstream node (or a recorder) may not be matched yet; the matched count is
    DDS's own. A subscription whose QoS cannot match the publisher's (e.g. one asking for transient
    local durability) never counts: it must not hold the stream up."""
    from rclpy.qos import QoSCompatibility, qos_check_compatible

    ours = publisher.qos_profile
    known = sum(1 for info in node.get_subscriptions_info_by_topic(publisher.topic_name)
                if qos_check_compatible(ours, info.qos_profile)[0] != QoSCompatibility.ERROR)
    matched = publisher.get_subscription_count()
    if matched == 0 or matched < known:
        return f"a subscriber on {publisher.topic_name} ({matched} of {max(known, 1)} matched)"
    return ""


class ReadinessMonitor:
    """The states the nodes ``required`` say on ``/handx/ready`` (a reader that late joiners' and
    restarted nodes' latched states reach). ``missing()`` lists the nodes not ready now: one that said
    anything else last, said nothing yet, or is no longer in the ROS graph (a crash says nothing)."""

    #: how often ``missing()`` asks the ROS graph which nodes exist (a graph query costs ~0.1 ms)
    GRAPH_PERIOD_S = 0.5

    def __init__(self, node, required: Sequence[str]) -> None:
        from std_msgs.msg import String

        self._node = node
        self.required = tuple(required)
        self.states: dict[str, str] = {}
        self._graph: set[str] = set()
        self._graph_t = -1.0
        node.create_subscription(String, TOPIC_READY, self._on_ready, READY_READER_QOS)

    def _on_ready(self, msg) -> None:
        name, _, state = msg.data.partition(" ")
        self.states[name] = state
        self._graph_t = -1.0  # a node that speaks is in the graph: look again on the next question

    def missing(self, now: float | None = None) -> list[str]:
        if not self.required:
            return []
        now = time.monotonic() if now is None else now
        if now - self._graph_t >= self.GRAPH_PERIOD_S:
            self._graph = set(self._node.get_node_names())
            self._graph_t = now
        out = []
        for name in self.required:
            state = self.states.get(name, "")
            if name not in self._graph:
                out.append(f"{name} (not running)")
            elif state != "ready":
                out.append(f"{name} ({state or 'no state yet'})")
        return out
