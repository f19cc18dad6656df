"""``handx-robot run``: one command from a sentence to robot hands moving in MuJoCo (and on ROS 2).

Stages, each writing its artefact into ``--out DIR``::

    prompt --generate--> motion.npz --retarget--> robot.npz --replay (physics)--> replay.mp4, replay.json
                                        \\-> retarget.json                        \\-> summary.json

``summary.json`` collects the figures a user checks first: generation time, retargeting fidelity
(fingertip-shape error, non-converged frames, joint-limit violations), tracking error in physics,
contact F1 human vs robot, real-time factor. With ``--ros`` the same prompt also runs through the
ROS 2 node graph in sim mode (:mod:`handx_robot.ros.cli`).

Module-level imports stay light (``--help`` must be fast); the stages import inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

__all__ = ["add_arguments", "run", "run_pipeline", "PipelineResult"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help='what the hands should do, e.g. "pinch twice with the right hand, then clap"')
    parser.add_argument("--robot", help="robot id or family for both hands (default: built-in Shadow hands)")
    parser.add_argument("--left-robot", metavar="ID", help="robot id for the left hand")
    parser.add_argument("--right-robot", metavar="ID", help="robot id for the right hand")
    parser.add_argument("--assets", metavar="DIR", help="robot asset directory (dex-urdf layout); default $HANDX_ROBOT_ASSETS")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--physics", dest="physics", action="store_true", default=True,
                      help="replay with PD control, gravity and contacts (default)")  # fmt: skip
    mode.add_argument("--kinematic", dest="physics", action="store_false", help="replay kinematically")
    parser.add_argument("--video", metavar="OUT.mp4", help="video path (default: OUT/replay.mp4)")
    parser.add_argument("--no-video", action="store_true", help="skip rendering")
    parser.add_argument("--out", default="out/run", metavar="DIR", help="output directory (default out/run)")
    parser.add_argument("--seconds", type=float, help="motion length, s (default: from the prompt)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--generator", default="composer", help="motion generator (default composer)")
    parser.add_argument("--lenient", action="store_true",
                        help="composer: perform what was understood of a prompt it cannot fully perform (and warn) "
                        "instead of refusing it")  # fmt: skip
    parser.add_argument("--camera", default="front", help="video camera (default front)")
    parser.add_argument("--width", type=int, default=640, help="robot view width, pixels (default 640)")
    parser.add_argument("--height", type=int, default=480, help="video height, pixels (default 480)")
    parser.add_argument("--ros", action="store_true", help="also run the prompt through the ROS 2 node graph (sim mode)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


class PipelineResult(dict):
    """The summary dict written to ``summary.json`` (plain JSON types)."""


def _mm(x) -> str:
    return "n/a" if x is None else f"{1000 * float(x):.1f} mm"


def run_pipeline(args: argparse.Namespace) -> PipelineResult:
    """Run every stage; returns the summary (also written to ``OUT/summary.json``)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    out = Path(args.out)
    summary = PipelineResult(prompt=args.prompt, out=str(out), files={})
    motion = _generate(args, out, summary)  # first: a refused prompt leaves no output (not even OUT)
    out.mkdir(parents=True, exist_ok=True)
    robot_motion, ids = _retarget(args, motion, out, summary)
    _replay(args, robot_motion, out, summary)
    if args.ros:
        summary["ros"] = _run_ros(args, ids)
    _write_json(out, "summary.json", summary)
    summary["files"]["summary"] = str(out / "summary.json")
    return summary


def _write_json(out: Path, name: str, obj: dict) -> Path:
    from handx_robot.motion import atomic_write

    text = json.dumps(obj, indent=1, default=float)
    return atomic_write(out / name, lambda tmp: Path(tmp).write_text(text))


def _compose(args: argparse.Namespace):
    """The composer's motion for the prompt: prints what it understood (the parse, also in the motion's
    ``meta['parse']``); raises :class:`~handx_robot.generate.grammar.PromptRefused` for a prompt it cannot
    perform (unless ``--lenient``); self-check as :meth:`ComposerGenerator.generate` (warn)."""
    from handx_robot.generate import get_generator
    from handx_robot.generate.cli import print_parse, with_parse

    gen = get_generator("composer", lenient=bool(getattr(args, "lenient", False)))
    comp = gen.compose(args.prompt, seconds=args.seconds, seed=args.seed)
    print_parse(comp)
    if gen.self_check != "off" and comp.expected:
        report = gen.check(comp)
        if not report.ok:
            log.warning("generated motion for %r misses promised events: %s", comp.plan.prompt,
                        "; ".join(report.failures()))  # fmt: skip
    return with_parse(comp)


def _generate(args: argparse.Namespace, out: Path, summary: PipelineResult):
    """Stage 1: the sentence -> ``motion.npz``."""
    from handx_robot.generate import generate
    from handx_robot.motion import save_motion

    t0 = time.perf_counter()
    if args.generator == "composer":
        motion = _compose(args)
    else:
        if getattr(args, "lenient", False):
            from handx_robot.errors import ConfigError

            raise ConfigError(f"--lenient applies to the composer generator, not {args.generator!r}; drop --lenient")
        motion = generate(args.prompt, seconds=args.seconds, seed=args.seed, generator=args.generator)
    summary["generation"] = {
        "generator": args.generator,
        "seconds": round(time.perf_counter() - t0, 4),
        "frames": motion.num_frames,
        "fps": motion.fps,
        "duration_s": motion.duration,
        "hands": list(motion.present_sides),
    }
    summary["files"]["motion"] = str(save_motion(motion, out / "motion.npz"))
    return motion


def _retarget(args: argparse.Namespace, motion, out: Path, summary: PipelineResult):
    """Stage 2: the motion -> ``robot.npz`` and ``retarget.json``; returns (robot motion, robot id per side)."""
    from handx_robot.retarget.bimanual import retarget_motion
    from handx_robot.retarget.humanoid import is_humanoid
    from handx_robot.retarget.robot_motion import save_robot_motion
    from handx_robot.retarget.robots import resolve_robot_specs

    if is_humanoid(args.robot):
        return _retarget_humanoid(args, motion, out, summary)
    # without assets a dex-urdf hand is simulated by the built-in hand of its family (one warning)
    specs = resolve_robot_specs(args.robot, args.left_robot, args.right_robot, args.assets, motion.present_sides)
    t0 = time.perf_counter()
    robot_motion, report = retarget_motion(motion, specs.get("left"), specs.get("right"), assets=args.assets)
    summary["retargeting"] = {
        "seconds": round(time.perf_counter() - t0, 4),
        "hands": {
            s: {
                "robot": h["robot"],
                "frames_per_second": h["frames_per_second"],
                "fingertip_shape_error_m": h["fingertip_shape_error_m"]["mean"],
                "non_converged_frames": h["non_converged_frames"]["count"],
                "joint_limit_violations": h["joint_limit_violations"]["count"],
                "contact_f1": h.get("contact_f1", {}).get("f1"),
            }
            for s, h in report["hands"].items()
        },
        "interpenetration_max_m": report.get("bimanual", {}).get("interpenetration", {}).get("max_depth_m"),
    }
    if "interaction" in report:
        summary["retargeting"]["interaction"] = _interaction_summary(report["interaction"])
    summary["files"]["robot_motion"] = str(save_robot_motion(robot_motion, out / "robot.npz"))
    summary["files"]["retarget_metrics"] = str(_write_json(out, "retarget.json", report))
    return robot_motion, {s: spec.id for s, spec in specs.items()}


def _interaction_summary(sec: dict) -> dict:
    """The bimanual solve's figures a user checks first, from the report's ``interaction`` section
    (:mod:`handx_robot.retarget.interaction.measure`): contact F1 across and within the hands (robot against human;
    None where the section has none), the deepest hand-hand and finger-finger penetration (metres, MuJoCo on the
    collision geometry), the wrists' largest deviation from the scaled human wrists (metres), and the fraction of
    frames the solve ran on."""
    f1 = sec.get("contact_f1", {})
    return {
        "contact_f1_inter_hand": f1.get("inter_hand", {}).get("f1"),
        "contact_f1_intra_hand": f1.get("intra_hand", {}).get("f1"),
        "hand_hand_penetration_max_m": sec.get("hand_hand_penetration_m", {}).get("max"),
        "finger_finger_penetration_max_m": sec.get("self_penetration_m", {}).get("max"),
        "wrist_deviation_max_m": sec.get("wrist_deviation_m", {}).get("max"),
        "bimanual_frames_fraction": sec.get("bimanual_frames", {}).get("fraction"),
    }


def _retarget_humanoid(args: argparse.Namespace, motion, out: Path, summary: PipelineResult):
    """Stage 2 for a humanoid (``--robot gr1_inspire``): arms and hands, the humanoid report in the summary."""
    from handx_robot.retarget.humanoid.retarget import retarget_humanoid
    from handx_robot.retarget.robot_motion import save_robot_motion

    if args.left_robot or args.right_robot:
        from handx_robot.errors import ConfigError

        raise ConfigError(f"--robot {args.robot} is a humanoid: its hands come with it; drop --left-robot/--right-robot")
    t0 = time.perf_counter()
    robot_motion, report = retarget_humanoid(motion, args.robot)
    h = report["humanoid"]
    summary["retargeting"] = {
        "seconds": round(time.perf_counter() - t0, 4),
        "humanoid": args.robot,
        "hands": {s: {"robot": robot_motion.hands[s].robot} for s in robot_motion.hands},
        "wrist_tracking": {s: {"within_1cm_0.1rad": v["within_1cm_0.1rad"], "position_error_p95_m": v["position_error_m"]["p95"],
                               "rotation_error_p95_rad": v["rotation_error_rad"]["p95"], "unreachable_frames": v["unreachable_frames"]}
                           for s, v in h["sides"].items()},  # fmt: skip
        "min_clearance_m": {k: v["min_distance_m"] for k, v in h["clearance"].items()},
        "joint_speed_max_fraction_of_limit": h["joint_speed"]["max_fraction_of_limit"],
        "workspace": h["workspace"],
        "interpenetration_max_m": report.get("bimanual", {}).get("interpenetration", {}).get("max_depth_m"),
    }
    summary["files"]["robot_motion"] = str(save_robot_motion(robot_motion, out / "robot.npz"))
    summary["files"]["retarget_metrics"] = str(_write_json(out, "retarget.json", report))
    return robot_motion, {"humanoid": args.robot}


def _replay(args: argparse.Namespace, robot_motion, out: Path, summary: PipelineResult) -> None:
    """Stage 3: the robot motion in MuJoCo -> ``replay.mp4`` (unless ``--no-video``) and ``replay.json``."""
    from tqdm import tqdm

    from handx_robot.sim.render import render_replay
    from handx_robot.sim.replay import ReplayConfig, replay, scene_for_motion
    from handx_robot.sim.scene import SceneConfig

    if robot_motion.body is not None:  # a humanoid: arms and hands in one model (handx_robot.sim.humanoid_replay)
        from handx_robot.sim import humanoid_replay as hr
        from handx_robot.sim.humanoid_scene import HumanoidSceneConfig, build_humanoid_scene

        scene = build_humanoid_scene(robot_motion.body.robot, HumanoidSceneConfig(width=max(args.width, 640),
                                                                                  height=max(args.height, 480)))
        rcfg = hr.HumanoidReplayConfig(physics=args.physics)
        play, render = hr.humanoid_replay, hr.render_humanoid_replay
    else:
        scene = scene_for_motion(robot_motion, assets=args.assets, config=SceneConfig(width=max(args.width, 640),
                                                                                      height=max(args.height, 480)))
        rcfg = ReplayConfig(physics=args.physics)
        play = replay

        def render(motion, path, **kw):
            return render_replay(motion, kw.pop("scene"), kw.pop("config"), path, **kw)

    bar = tqdm(total=robot_motion.num_frames, desc="replay", unit="frame", disable=args.no_progress)
    try:
        if args.no_video:
            result = play(robot_motion, scene, config=rcfg, on_frame=lambda k, sc: bar.update(1))
        else:
            video = Path(args.video) if args.video else out / "replay.mp4"
            result = render(
                robot_motion, video, scene=scene, config=rcfg, camera=args.camera, width=args.width,
                height=args.height, side_by_side=True, on_frame=lambda k, sc: bar.update(1),
            )  # fmt: skip
            summary["files"]["video"] = str(video)
    finally:
        bar.close()
    summary["files"]["replay_metrics"] = str(result.metrics.save_json(out / "replay.json"))
    rs = result.metrics.summary()
    common = {"mode": rs["mode"], "real_time_factor": rs["real_time_factor"],
              "contact_f1_human_vs_robot": rs["contact_f1"].get("f1")}  # fmt: skip
    if robot_motion.body is not None:  # a humanoid's replay: hand and arm errors, contacts by pair kind
        summary["replay"] = {
            **common,
            "hands": {
                s: {
                    "fingertip_error_m": h["fingertip_error_m"]["mean"],
                    "joint_error_rad": h["hand_joint_error_rad"]["mean"],
                    "wrist_position_error_m": h.get("hand_root_position_error_m", {}).get("mean"),
                    "arm_joint_error_rad": h["arm_joint_error_rad"]["mean"],
                }
                for s, h in rs["sides"].items()
            },
            "hand_hand_penetration_max_m": rs["contacts"]["hand-hand"]["max_depth_m"],
            "deepest_unwanted_contact": rs["deepest_unwanted_contact"],
            "diverged": rs["diverged"],
        }
        return
    summary["replay"] = {
        **common,
        "hands": {
            s: {
                "fingertip_error_m": h["fingertip_error_m"]["mean"],
                "joint_error_rad": h["joint_error_rad"]["mean"],
                "wrist_position_error_m": h["wrist_position_error_m"]["mean"],
            }
            for s, h in rs["hands"].items()
        },
        "hand_hand_penetration_max_m": rs["hand_hand_penetration_m"]["max"],
    }

def _run_ros(args: argparse.Namespace, ids: dict[str, str]) -> dict:
    """Run the prompt through the ROS 2 node graph (sim mode) until the motion has been performed."""
    from handx_robot.ros import cli as ros_cli

    parser = argparse.ArgumentParser(prog="handx-robot ros-run")
    ros_cli.add_arguments(parser)
    if args.left_robot or args.right_robot:
        from handx_robot.errors import ConfigError

        raise ConfigError("--ros takes one --robot (id or family such as 'shadow'), not --left-robot/--right-robot")
    robot = args.robot or "shadow"
    argv = ["--prompt", args.prompt, "--robot", robot, "--mode", "sim", "--until-done", "--duration", "120"]
    if args.assets:
        argv += ["--assets", args.assets]
    if getattr(args, "lenient", False):  # the graph performs what was understood, not a refusal of the prompt
        argv += ["--motion-file", str(Path(args.out) / "motion.npz")]
    t0 = time.perf_counter()
    rc = ros_cli.run(parser.parse_args(argv))
    return {"exit_code": rc, "seconds": round(time.perf_counter() - t0, 2), "robots": ids}


def _humanoid_rows(table, rt: dict) -> None:
    table.add_row("retarget", f"humanoid {rt['humanoid']}", f"{rt['seconds']:.1f} s")
    for side, w in rt["wrist_tracking"].items():
        table.add_row(f"arm {side}", "hand pose within 1 cm / 0.1 rad", f"{100 * w['within_1cm_0.1rad']:.1f} %")
        table.add_row("", "error p95", f"{_mm(w['position_error_p95_m'])}, {w['rotation_error_p95_rad']:.3f} rad")
        table.add_row("", "unreachable frames", str(w["unreachable_frames"]))
    for pair, d in rt["min_clearance_m"].items():
        table.add_row("clearance", f"{pair} minimum distance", _mm(d))
    table.add_row("arms", "max joint speed / limit", f"{rt['joint_speed_max_fraction_of_limit']:.2f}")


def _interaction_rows(table, it: dict) -> None:
    """The bimanual solve's rows of the summary table (:func:`_interaction_summary`'s figures)."""
    f1 = " / ".join("n/a" if v is None else f"{v:.2f}" for v in (it["contact_f1_inter_hand"], it["contact_f1_intra_hand"]))
    frac = it["bimanual_frames_fraction"]
    table.add_row("retarget both", "contact F1 across / within the hands", f1)
    table.add_row("", "penetration max, hand-hand / finger-finger",
                  f"{_mm(it['hand_hand_penetration_max_m'])} / {_mm(it['finger_finger_penetration_max_m'])}")
    table.add_row("", "wrist deviation max", _mm(it["wrist_deviation_max_m"]))
    table.add_row("", "frames solved bimanually", "n/a" if frac is None else f"{100 * frac:.0f} %")


def _print_summary(s: PipelineResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"handx-robot run: {s['prompt']!r}")
    table.add_column("stage")
    table.add_column("figure")
    table.add_column("value", justify="right")
    g = s["generation"]
    table.add_row("generate", f"{g['generator']}: {g['frames']} frames, {g['duration_s']:.2f} s", f"{g['seconds'] * 1000:.0f} ms")
    rt = s["retargeting"]
    if "humanoid" in rt:
        _humanoid_rows(table, rt)
    else:
        for side, h in rt["hands"].items():
            table.add_row(f"retarget {side}", f"{h['robot']} fingertip-shape error", _mm(h["fingertip_shape_error_m"]))
            table.add_row("", "non-converged / limit violations", f"{h['non_converged_frames']} / {h['joint_limit_violations']}")
            table.add_row("", "frames/s", f"{h['frames_per_second']:.0f}")
        if "interaction" in rt:
            _interaction_rows(table, rt["interaction"])
    r = s["replay"]
    for side, h in r["hands"].items():
        table.add_row(f"replay {side}", f"{r['mode']} fingertip error vs kinematic", _mm(h["fingertip_error_m"]))
    f1 = r["contact_f1_human_vs_robot"]
    table.add_row("replay", "contact F1 human vs robot", "n/a" if f1 is None else f"{f1:.2f}")
    rtf = r["real_time_factor"]
    table.add_row("replay", "real-time factor", "n/a" if rtf is None else f"{rtf:.1f}")
    if "ros" in s:
        table.add_row("ros", "node graph (sim mode) exit code", str(s["ros"]["exit_code"]))
    Console().print(table)
    for name, path in s["files"].items():
        print(f"{name:16s} {path}")


def run(args: argparse.Namespace) -> int:
    """Exit code 0, or the ROS graph's exit code when ``--ros`` ran it and it failed; 1 for a prompt
    the composer refuses (nothing is written)."""
    from handx_robot.generate.grammar import PromptRefused

    try:
        summary = run_pipeline(args)
    except PromptRefused as exc:
        from handx_robot.generate.cli import EXIT_REFUSED, format_refusal

        print(format_refusal(exc, "run"), file=sys.stderr)
        return EXIT_REFUSED
    _print_summary(summary)
    ros_rc = summary.get("ros", {}).get("exit_code", 0)
    if ros_rc:
        log.error("the ROS 2 node graph exited with code %d", ros_rc)
    return int(ros_rc)
