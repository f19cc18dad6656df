"""``handx-robot ros-run``: the text-to-hand node graph (:mod:`handx_robot.ros.graph`) in one process.

For machines without the ROS 2 launch tools: the same nodes and parameters as
``ros2 launch handx_robot text_to_hand.launch.py``, started with rclpy on one executor (SingleThreadedExecutor; ``$HANDX_ROS_EXECUTOR=multi`` for a
MultiThreadedExecutor).
Stops on Ctrl-C, after ``--duration`` seconds, or (with ``--until-done``) when the motion has been
performed. Prints a summary of what went through the graph.
"""

from __future__ import annotations

import argparse
import logging

from handx_robot.ros.graph import CONTROLLERS, LAUNCH_ARGUMENTS, MODES

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = {k: v[0] for k, v in LAUNCH_ARGUMENTS.items()}
    h = {k: v[1] for k, v in LAUNCH_ARGUMENTS.items()}
    parser.add_argument("--prompt", default=d["prompt"], help=h["prompt"])
    parser.add_argument("--robot", default=d["robot"], help=h["robot"])
    parser.add_argument("--mode", default=d["mode"], choices=MODES, help=h["mode"])
    parser.add_argument("--controller", default=d["controller"], choices=CONTROLLERS, help=h["controller"])
    parser.add_argument("--rate", type=float, default=float(d["rate"]), help=h["rate"])
    parser.add_argument("--motion-file", default=d["motion_file"], help=h["motion_file"])
    parser.add_argument("--assets", default=d["assets"], help=h["assets"])
    parser.add_argument("--dry-run", action="store_true", help=h["dry_run"])
    parser.add_argument("--video", default=d["video"], help=h["video"])
    parser.add_argument("--realtime-priority", default=d["realtime_priority"],
                        help="accepted for symmetry with the launch file, but ros-run keeps every node in one "
                        "process and runs it at normal scheduling (SCHED_FIFO would cover every node's threads): "
                        "run safety_streamer_node in a process of its own for that")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (0 = run until Ctrl-C or --until-done)")
    parser.add_argument("--until-done", action="store_true",
                        help="stop once the motion has been performed (plus the watchdog's stop)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID to use (default: the environment's)")


def run(args: argparse.Namespace) -> int:
    """Start the graph of ``args`` in this process and run it until done; exit code 1 when the
    text-to-motion node ended in error."""
    import os

    specs, cfg = _graph(args)
    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    return _run_nodes(specs, cfg, args)


def _graph(args: argparse.Namespace):
    """(node specs, GraphConfig) from the command line; one process runs at normal scheduling."""
    import dataclasses
    from pathlib import Path

    from handx_robot.ros.graph import GraphConfig, build_graph

    from handx_robot.errors import ConfigError

    if args.duration < 0:
        raise ConfigError(f"--duration is {args.duration}; give seconds >= 0")
    if not args.prompt and not args.motion_file:
        raise ConfigError("give --prompt TEXT (and/or --motion-file FILE): there is nothing to perform")
    cfg = GraphConfig(
        # a motion file alone plays at once (the node waits for /handx/prompt when it has no prompt);
        # the prompt only labels a motion file
        prompt=args.prompt or (Path(args.motion_file).stem if args.motion_file else ""),
        robot=args.robot,
        mode=args.mode,
        controller=args.controller,
        rate=args.rate,
        motion_file=args.motion_file,
        assets=args.assets,
        dry_run=args.dry_run,
        video=args.video,
        realtime_priority=args.realtime_priority,
    )
    if cfg.streamer_priority:  # one process: SCHED_FIFO would put every node's threads (physics too) under it
        log.warning("ros-run runs all nodes in one process at normal scheduling (realtime_priority %s ignored); "
                    "for a real-time streamer use the launch file or run safety_streamer_node on its own with "
                    "-p realtime_priority:=%s", cfg.streamer_priority, cfg.streamer_priority)
        cfg = dataclasses.replace(cfg, realtime_priority=0)
    return build_graph(cfg), cfg


def _run_nodes(specs, cfg, args: argparse.Namespace) -> int:
    """Create the nodes (sink first), spin them on one executor until done, shut down in order."""
    import sys
    import threading
    import time

    import rclpy
    from handx_robot.ros.common import GIL_SWITCH_INTERVAL_S, freeze_gc, ignore_stop_signals, make_executor
    from rclpy.executors import ExternalShutdownException
    from rclpy.parameter import Parameter

    # several real-time loops (keypoint timer, streamers, physics thread) share one interpreter
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []
    executor = make_executor(context)
    spinner = None
    t_start = time.monotonic()
    try:
        # sink first: controllers/sim and streamers listen before the source starts streaming
        for spec in reversed(specs):
            overrides = [Parameter(k, value=v) for k, v in spec.parameters.items()]
            node = spec.load_factory()(node_name=spec.name, context=context, parameter_overrides=overrides)
            nodes.append(node)
            executor.add_node(node)
        freeze_gc()
        t2m = next(n for n in nodes if n.get_name() == "text_to_motion")
        streamers = [n for n in nodes if n.get_name().startswith("safety_streamer_")]
        print(f"ros-run: {len(nodes)} nodes ({', '.join(n.get_name() for n in reversed(nodes))}), "
              f"robot {cfg.robot}, mode {cfg.mode}, controller {cfg.controller}, {cfg.rate:g} Hz", flush=True)

        def done() -> bool:
            if args.duration and time.monotonic() - t_start >= args.duration:
                return True
            if args.until_done and t2m.status.startswith(("done", "error", "refused")):
                return all(s.filter.state.value in ("stopped", "idle", "estopped") for s in streamers)
            return False

        spinner = threading.Thread(target=_spin, args=(executor, context), name="ros-run-spin", daemon=True)
        spinner.start()
        while context.ok() and spinner.is_alive() and not done():
            time.sleep(0.02)
    except (KeyboardInterrupt, ExternalShutdownException):
        print("ros-run: interrupted", flush=True)
    finally:
        if threading.current_thread() is threading.main_thread():
            ignore_stop_signals()  # a second Ctrl-C must not cut the clean-up (and the summary) short
        summary = _summary(nodes, time.monotonic() - t_start)
        # order matters: stop the nodes' own threads, stop the executor and its spinning thread, and
        # only then destroy the nodes (destroying them under a spinning executor can abort the process)
        for node in nodes:
            close = getattr(node, "close", None)
            if close is not None:
                close()
        executor.shutdown(timeout_sec=5.0)
        if spinner is not None:
            spinner.join(timeout=5.0)
        for node in nodes:
            node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
    print(summary, flush=True)
    t2m_status = next((line for line in summary.splitlines() if "text_to_motion" in line), "")
    return 1 if ("error" in t2m_status or "refused" in t2m_status) else 0


def _spin(executor, context) -> None:
    from rclpy.executors import ExternalShutdownException

    try:
        executor.spin()
    except (ExternalShutdownException, RuntimeError) as exc:  # context shut down under the executor
        if context.ok():
            log.error("executor stopped: %s", exc)


def _summary(nodes, seconds: float) -> str:
    import numpy as np

    lines = [f"ros-run summary after {seconds:.1f} s:"]
    for node in reversed(nodes):
        name = node.get_name()
        if name == "text_to_motion":
            lines.append(f"  text_to_motion: {node.frames_published} keypoint frames, status {node.status}")
        elif name == "retarget":
            if node.humanoid is not None:
                err = np.percentile(node.position_errors, 95) * 1e3 if node.position_errors else float("nan")
                lines.append(f"  retarget/{node.humanoid.spec.id}: {node.humanoid.frames} frames (arms and hands), "
                             f"hand position error p95 {err:.1f} mm")
            for side, hand in node.hands.items():
                lines.append(f"  retarget/{side}: {hand.frames} frames, {hand.not_converged} not converged")
        elif name.startswith("safety_streamer_"):
            c = node.filter.counters
            lines.append(
                f"  {name}: {c['forwarded']} forwarded to {node.out_topic} ({c['clamped']} clamped, "
                f"{c['time_scaled']} time-scaled), {c['rejected']} rejected, {c['held']} holds, "
                f"{c['stopped']} stops, state {node.filter.state.value}"
            )
        elif name == "sim":
            cmds = ", ".join(f"{s} {h.commands}" for s, h in node.hands.items())
            video = f", video {node.video_frames} frames -> {node.params['video']}" if node.params["video"] else ""
            lines.append(
                f"  sim: {node.states_published} joint_states, {node.sim_time:.2f} s simulated, commands {cmds}{video}"
            )
    return "\n".join(lines)
