"""Shared pieces of the handx-robot nodes: topic names, QoS profiles, parameters, ``main()``.

QoS (explicit everywhere):

=================== ========== =============== ===== ===============================================
profile             reliability durability     depth used for
=================== ========== =============== ===== ===============================================
LATCHED_QOS         reliable   transient local 1     /handx/prompt, /handx/estop, /handx/status,
                                                     /handx/ready (late joiners see the last prompt /
                                                     e-stop state / status; per publisher)
STREAM_QOS          reliable   volatile        10    markers, wrist poses (a newer one supersedes)
queue_qos(depth)    reliable   volatile        depth keypoints, commands, controller topics: every
                                                     frame counts (writer and reader: a reliable
                                                     KEEP_LAST writer drops what a slow reader has
                                                     not acknowledged once ``depth`` newer exist)
STATE_QOS           reliable   volatile        10    /joint_states (joint_state_broadcaster default)
DIAGNOSTICS_QOS     reliable   volatile        10    /diagnostics
=================== ========== =============== ===== ===============================================

Readiness (``/handx/ready``): :mod:`handx_robot.ros.readiness`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.callback_groups import CallbackGroup
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from handx_robot.errors import ConfigError

__all__ = [
    "SIDES",
    "LIMBS",
    "limb_name",
    "TOPIC_PROMPT",
    "TOPIC_KEYPOINTS",
    "TOPIC_MARKERS",
    "TOPIC_ESTOP",
    "TOPIC_JOINT_STATES",
    "TOPIC_DIAGNOSTICS",
    "command_topic",
    "wrist_topic",
    "controller_topic",
    "estop_reset_service",
    "joint_states_topic",
    "LATCHED_QOS",
    "STREAM_QOS",
    "QUEUE_DEPTH",
    "queue_qos",
    "STATE_QOS",
    "DIAGNOSTICS_QOS",
    "ParamSpec",
    "declare_parameters",
    "run_node",
    "ignore_stop_signals",
    "EXECUTOR_ENV",
    "DedicatedSubscription",
]

log = logging.getLogger(__name__)

SIDES = ("left", "right")
TOPIC_PROMPT = "/handx/prompt"
TOPIC_KEYPOINTS = "/handx/keypoints"
TOPIC_MARKERS = "/handx/human_markers"
TOPIC_ESTOP = "/handx/estop"
TOPIC_JOINT_STATES = "/joint_states"
TOPIC_DIAGNOSTICS = "/diagnostics"

#: what a streamer guards: a hand, or (humanoids) the arm that carries it
LIMBS = ("hand", "arm")

#: controller interface -> default topic pattern (ros2_control controllers named ``<side>_<limb>_controller``:
#: ``right_hand_controller``, ``right_arm_controller``)
CONTROLLER_TOPICS = {
    "joint_trajectory": "/{side}_{limb}_controller/joint_trajectory",
    "forward_command": "/{side}_{limb}_controller/commands",
}


def limb_name(side: str, limb: str = "hand") -> str:
    """The name of one limb in the ``/handx/...`` topics: ``right`` (the hand), ``right_arm``."""
    if limb not in LIMBS:
        raise ConfigError(f"limb {limb!r} is not one of {', '.join(LIMBS)} (parameter 'limb')")
    return side if limb == "hand" else f"{side}_{limb}"


def command_topic(side: str, limb: str = "hand") -> str:
    """Retargeted (unfiltered) commands of one limb: trajectory_msgs/JointTrajectory
    (``/handx/right/command``, ``/handx/right_arm/command``)."""
    return f"/handx/{limb_name(side, limb)}/command"


def wrist_topic(side: str) -> str:
    return f"/handx/{side}/wrist_pose"


def joint_states_topic(side: str, limb: str = "hand") -> str:
    """The sim node's joint states of one limb (``/handx/right/joint_states``, ``/handx/right_arm/joint_states``)."""
    return f"/handx/{limb_name(side, limb)}/joint_states"


def controller_topic(side: str, interface: str, limb: str = "hand") -> str:
    if interface not in CONTROLLER_TOPICS:
        raise ConfigError(
            f"controller interface {interface!r} is not one of {', '.join(CONTROLLER_TOPICS)} "
            "(parameter 'controller')"
        )
    limb_name(side, limb)  # validates limb
    return CONTROLLER_TOPICS[interface].format(side=side, limb=limb)


def estop_reset_service(side: str, limb: str = "hand") -> str:
    return f"/handx/{limb_name(side, limb)}/estop_reset"


LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
STREAM_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
STATE_QOS = STREAM_QOS
#: depth of the frame queues (keypoints, commands): 100 frames = 3.3 s at 30 Hz of a stalled consumer
QUEUE_DEPTH = 100


def queue_qos(depth: int = QUEUE_DEPTH) -> QoSProfile:
    """Reliable, volatile, KEEP_LAST ``depth``: a stream where every frame counts (see the table)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)

DIAGNOSTICS_QOS = STREAM_QOS


class ParamSpec:
    """One declared parameter: name, default (its type is the parameter's type), description, check.

    check: optional ``value -> error string or None``; ``choices``: allowed values;
    ``min_value``: inclusive lower bound for numbers (also shown in the descriptor's range).
    """

    def __init__(
        self,
        name: str,
        default: Any,
        description: str,
        choices: Sequence[Any] | None = None,
        min_value: float | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.name = name
        self.default = default
        self.description = description
        self.choices = tuple(choices) if choices else None
        self.min_value = min_value
        self.check = check

    def descriptor(self) -> ParameterDescriptor:
        desc = self.description
        if self.choices:
            desc += f" (one of: {', '.join(map(str, self.choices))})"
        d = ParameterDescriptor(name=self.name, description=desc, read_only=True)
        if self.min_value is not None and isinstance(self.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(self.min_value), to_value=1e18, step=0.0)]
        return d

    def validate(self, value: Any, node_name: str) -> Any:
        where = f"node '{node_name}': parameter '{self.name}'"
        if isinstance(self.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(self.default, float) and not math.isfinite(value):
            raise ConfigError(f"{where} must be finite, got {value}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where} is {value!r}; allowed: {', '.join(map(str, self.choices))}")
        if self.min_value is not None and value < self.min_value:
            raise ConfigError(f"{where} is {value}; it must be >= {self.min_value}")
        if self.check is not None:
            err = self.check(value)
            if err:
                raise ConfigError(f"{where} is {value!r}: {err}")
        return value


def declare_parameters(node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare every spec on ``node`` (with descriptor), read and validate: name -> value."""
    values = {}
    for spec in specs:
        param = node.declare_parameter(spec.name, spec.default, spec.descriptor())
        values[spec.name] = spec.validate(param.value, node.get_name())
    return values


#: GIL switch interval while a node graph runs in one process (Python's default is 5 ms)
GIL_SWITCH_INTERVAL_S = 0.001

#: environment variable choosing the executor: single (default) or multi. With a 4-thread
#: MultiThreadedExecutor the executor threads spend the GIL rebuilding wait sets: the sim node's
#: 100 Hz /joint_states and the retargeting solve fall far behind the single-threaded executor
#: (``benchmarks/ros_graph_rate.py``, figures in benchmarks/RESULTS.md). Blocking work (generation,
#: physics, video) runs on the nodes' own threads, so no callback needs a second executor thread.
#: (rclpy.experimental.EventsExecutor was tried for the 500 Hz stream: with rclpy 9.1.2 the node
#: received nothing and did not stop on SIGINT, so it is not offered.)
EXECUTOR_ENV = "HANDX_ROS_EXECUTOR"


def make_executor(context=None):
    """The executor named by ``$HANDX_ROS_EXECUTOR``: ``single`` (SingleThreadedExecutor, default)
    or ``multi`` (MultiThreadedExecutor, 4 threads), on ``context`` (None: the default context)."""
    import os

    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    name = os.environ.get(EXECUTOR_ENV, "single").strip().lower()
    if name == "single":
        return SingleThreadedExecutor(context=context)
    if name == "multi":
        return MultiThreadedExecutor(num_threads=4, context=context)
    raise ConfigError(f"${EXECUTOR_ENV} is {name!r}; allowed: single, multi")


def freeze_gc() -> None:
    """Move every object allocated so far out of the cyclic garbage collector's reach (``gc.freeze``).
    Call after a node graph is built: a full collection then scans only what was allocated since,
    instead of the whole heap. In a large heap (this repository's test session) one full collection
    inside a graph's run can be long enough to drop the sim node's 100 Hz /joint_states or trip a
    50 ms safety watchdog; with the freeze, collections while a graph runs are short
    (``benchmarks/gc_pause_probe.py``, figures in benchmarks/RESULTS.md). ``gc.unfreeze()`` undoes it.
    """
    import gc

    gc.freeze()  # no gc.collect() first: a full collection of a large heap is the very pause avoided


def set_realtime_priority(priority: int) -> str:
    """Put every thread of this process (the executor and the DDS threads) under ``SCHED_FIFO`` at
    ``priority`` (1-99), as ros2_control does for its control loop; ``0`` does nothing.

    Returns what was done (for the node's log). Raises :class:`ConfigError` with the fix when the
    process may not (no CAP_SYS_NICE / rtprio limit) or the OS has no SCHED_FIFO. Threads started
    later inherit the policy, so call it from a process that runs the real-time node alone.
    """
    import os

    if priority == 0:
        return "normal scheduling (realtime_priority 0)"
    if not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_FIFO"):
        raise ConfigError("realtime_priority needs Linux SCHED_FIFO; set realtime_priority:=0 on this OS")
    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    try:
        for tid in tids:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as exc:
        raise ConfigError(
            f"realtime_priority {priority}: the process may not use SCHED_FIFO ({exc}); allow it (an "
            f"'@realtime - rtprio 99' line in /etc/security/limits.conf and the user in group realtime, "
            f"or CAP_SYS_NICE) or set realtime_priority:=0"
        ) from exc
    return f"SCHED_FIFO priority {priority} on {len(tids)} threads"


class _NotForExecutors(CallbackGroup):
    """Callback group whose entities no executor waits on or runs: rclpy's executors only put an
    entity in their wait set when its group ``can_execute`` it (public CallbackGroup interface)."""

    def can_execute(self, entity) -> bool:
        return False

    def beginning_execution(self, entity) -> bool:
        return False

    def ending_execution(self, entity) -> None:
        pass


class DedicatedSubscription:
    """A subscription served by a thread of its own instead of the node's executor.

    The thread waits on this one subscription (an rcl wait set of its own, as
    ``rclpy.wait_for_message`` does), takes every message as soon as DDS holds it and calls
    ``callback(msg)`` in arrival order (``with_info``: ``callback(msg, info)``, info as rclpy's
    ``MessageInfo``: ``source_timestamp``, ``received_timestamp`` in ns). Between messages it calls ``on_deadline()`` once
    ``time.monotonic()`` reaches ``next_deadline()`` (seconds or None = no deadline; asked before
    each wait) — the safety streamer's watchdog lives there, so a busy executor delays neither.

    Why: rclpy's Python executors rebuild a wait set of every entity of the node (parameter
    services, timers, ...) for each callback; for a 500 Hz command stream that overhead, not the
    filter, dominated the streamer's latency (``benchmarks/ros_latency.py``).

    ``callback`` and ``on_deadline`` run on this thread: guard shared state with a lock. An exception
    in them is logged through the node's logger and the loop goes on (a safety node must keep its
    watchdog). ``close()`` stops the thread (also on context shutdown, within 0.1 s).
    """

    #: longest single wait (s): the loop notices a shut-down context at least this often
    MAX_WAIT_S = 0.1

    def __init__(self, node, msg_type, topic: str, qos, callback: Callable[[Any], None],
                 next_deadline: Callable[[], float | None] | None = None,
                 on_deadline: Callable[[], None] | None = None, thread_name: str = "",
                 with_info: bool = False) -> None:
        from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

        self._node = node
        self._callback = callback
        self._with_info = with_info
        self._next_deadline = next_deadline or (lambda: None)
        self._on_deadline = on_deadline or (lambda: None)
        self._group = _NotForExecutors()
        self.subscription = node.create_subscription(msg_type, topic, callback, qos, callback_group=self._group)
        self._wake = _rclpy.GuardCondition(node.context.handle)
        self._wait_set = _rclpy.WaitSet(1, 1, 0, 0, 0, 0, node.context.handle)
        self._stop = threading.Event()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=thread_name or f"{node.get_name()}:{topic}",
                                        daemon=True)

    def start(self) -> DedicatedSubscription:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _report(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        self._node.get_logger().error(f"{what} raised {type(exc).__name__}: {exc}", throttle_duration_sec=1.0)

    def _run(self) -> None:
        sub, ws = self.subscription, self._wait_set
        handle, msg_type = sub.handle, sub.msg_type
        context = self._node.context
        while not self._stop.is_set() and context.ok():
            deadline = self._next_deadline()
            wait_s = self.MAX_WAIT_S if deadline is None else min(self.MAX_WAIT_S, deadline - time.monotonic())
            try:
                ws.clear_entities()
                ws.add_subscription(handle)
                ws.add_guard_condition(self._wake)
                ws.wait(max(0, int(wait_s * 1e9)))
                ready = handle.pointer in ws.get_ready_entities("subscription")
            except Exception as exc:  # noqa: BLE001 - the context or the node went away under us: stop
                if not (self._stop.is_set() or not context.ok()):
                    self._report("waiting for messages (the thread stops)", exc)
                return
            if self._stop.is_set():
                return
            if ready:
                while True:
                    try:
                        taken = handle.take_message(msg_type, False)
                    except Exception as exc:  # noqa: BLE001 - as for the wait: shut down under us, stop
                        if not (self._stop.is_set() or not context.ok()):
                            self._report("taking a message (the thread stops)", exc)
                        return
                    if taken is None:
                        break
                    try:
                        if self._with_info:
                            self._callback(*taken)
                        else:
                            self._callback(taken[0])
                    except Exception as exc:  # noqa: BLE001 - keep serving (and the watchdog) alive
                        self._report("message callback", exc)
                deadline = self._next_deadline()  # the messages may have moved it
            if deadline is not None and time.monotonic() >= deadline:
                try:
                    self._on_deadline()
                except Exception as exc:  # noqa: BLE001
                    self._report("deadline callback", exc)

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and destroy the subscription (idempotent)."""
        self._stop.set()
        try:
            self._wake.trigger_guard_condition()
        except Exception:  # noqa: BLE001 - context already gone: the loop stops on its own
            pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        if self.subscription is not None and not self._thread.is_alive():
            try:
                self._node.destroy_subscription(self.subscription)
            except Exception:  # noqa: BLE001 - node already destroyed
                pass
            self.subscription = None


#: a node exits within this long of SIGINT/SIGTERM: past it, the exit guard ends the process
SHUTDOWN_BUDGET_S = 1.8
#: longest wait of a node's executor: a signal is acted on within this long
SPIN_WAKE_S = 0.1
#: exit code when the shutdown overran :data:`SHUTDOWN_BUDGET_S` and the guard ended the process
EXIT_SHUTDOWN_OVERRAN = 3
#: the kernel's SIGALRM ends the process this long after the guard should have (a GIL deadlock)
HARD_STOP_AFTER_S = 0.15


def ignore_stop_signals() -> None:
    """Clean-up has begun: ignore SIGINT and SIGTERM from now on (call from the main thread). Ignored,
    not handled: at exit the interpreter puts the default action back on signals that have a Python
    handler, so a second Ctrl-C (or the SIGINT ``ros2 launch`` forwards after the terminal's) would
    kill the process halfway through its clean-up."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class _Shutdown:
    """SIGINT/SIGTERM handling of a node process (``ros2 launch`` sends SIGINT, then SIGTERM after 5 s;
    ``timeout -s INT`` and Ctrl-C in a terminal send SIGINT to the whole process group too, so a
    node sees two). The first signal arms the exit guards and ends the spin: while the node is being
    built it interrupts that (KeyboardInterrupt); once it spins it only sets :attr:`signalled`, which
    the spin loop checks every :data:`SPIN_WAKE_S` (an exception raised at a random point inside
    rclpy's executor can leave a subscription's handle marked in use, and destroying the node then
    waits for it forever: the hang of one launch in ten). Later signals are ignored (:meth:`arm`), so
    clean-up is never interrupted halfway.

    Two guards bound the clean-up: at :data:`SHUTDOWN_BUDGET_S` a thread logs where every thread is
    and ends the process (exit code :data:`EXIT_SHUTDOWN_OVERRAN`); should that thread not get the GIL
    (a thread deadlocked in C while holding it), the kernel ends the process with SIGALRM
    :data:`HARD_STOP_AFTER_S` later (``alarm``: no Python involved). A node never hangs a launch."""

    def __init__(self) -> None:
        import signal

        self.signalled = False
        self.spinning = False  # set once the node is built: a signal then only sets `signalled`
        self._guard: threading.Timer | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self.signalled:
            return
        self.signalled = True
        self.arm()
        if not self.spinning:
            raise KeyboardInterrupt

    def arm(self) -> None:
        """Clean-up begins: :func:`ignore_stop_signals` and start the exit guards (idempotent): clean-up
        has :data:`SHUTDOWN_BUDGET_S` from now."""
        import signal

        if self._guard is not None:
            return
        ignore_stop_signals()
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the kernel's default action: terminate
        signal.setitimer(signal.ITIMER_REAL, SHUTDOWN_BUDGET_S + HARD_STOP_AFTER_S)
        self._guard = threading.Timer(SHUTDOWN_BUDGET_S, self._overran)
        self._guard.daemon = True
        self._guard.start()

    def _overran(self) -> None:
        import os
        import sys
        import traceback

        names = {t.ident: t.name for t in threading.enumerate()}
        where = "; ".join(f"{names.get(tid, tid)}: {traceback.extract_stack(f)[-1].name}"
                          for tid, f in sys._current_frames().items())
        log.error("shutdown took longer than %.1f s (threads: %s); exiting now", SHUTDOWN_BUDGET_S, where)
        logging.shutdown()
        os._exit(EXIT_SHUTDOWN_OVERRAN)


def run_node(factory: Callable[..., Any], args: list[str] | None = None) -> int:
    """Standard ``main()``: init, build the node, spin until SIGINT/SIGTERM or shutdown, clean up in
    order (the node's own threads, the executor, the node, the context) within
    :data:`SHUTDOWN_BUDGET_S`. Exit code 0 after a signal, 1 when the node could not start or failed
    (its message logged first), so ``ros2 launch`` can stop the graph (see the launch file)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions

    from handx_robot.errors import HandXError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    shutdown = _Shutdown()
    node = None
    executor = None
    code = 0
    try:
        # rclpy's own handlers would shut the context down from the signal handler and chain to ours
        # at an unknown point; without them the first signal ends the spin (woken every SPIN_WAKE_S)
        # and clean-up runs on a live context, in order
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        node = factory()
        freeze_gc()
        executor = make_executor()
        executor.add_node(node)
        shutdown.spinning = True
        while rclpy.ok() and not shutdown.signalled:
            executor.spin_once(timeout_sec=SPIN_WAKE_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except HandXError as exc:
        log.error("%s", exc)
        code = 1
    except Exception:  # noqa: BLE001 - a bug: say where, exit 1 (never a hang or a half-dead node)
        log.exception("node failed")
        code = 1
    finally:
        shutdown.arm()
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
        if executor is not None:
            executor.shutdown(timeout_sec=0.5)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    # the guards stay armed: the interpreter's own exit (module teardown, DDS threads) is bounded too
    return code
