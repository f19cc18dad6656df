"""``handx-robot replay``: replay a robot motion in MuJoCo (kinematic or physics), video, metrics.

Examples::

    handx-robot replay robot.npz                                   # kinematic, prints the summary
    handx-robot replay robot.npz --physics --metrics m.json        # PD tracking with gravity, metrics file
    handx-robot replay robot.npz --physics --video out.mp4 --camera top --side-by-side
    handx-robot replay robot.npz --viewer                          # interactive viewer (needs a display)
    handx-robot replay gr1.npz --physics --video gr1.mp4           # a humanoid motion (--robot gr1_inspire)

A humanoid motion (one with a body: ``handx-robot retarget --robot gr1_inspire``) replays the whole
upper body (arms and hands) with :mod:`handx_robot.sim.humanoid_replay`; the cameras are then
``front``, ``left``, ``right``, ``top`` (the robot's sides) and the model's own.

Module-level imports stay light; MuJoCo is imported in :func:`run` after ``MUJOCO_GL`` is set.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("motion", help="robot motion file (.npz from `handx-robot retarget`)")
    parser.add_argument("--physics", action="store_true", help="PD tracking with gravity and contacts (default: kinematic)")
    parser.add_argument("--video", metavar="OUT.mp4", help="render an mp4 offscreen (MUJOCO_GL=egl, fallback osmesa)")
    parser.add_argument("--metrics", metavar="OUT.json", help="write summary and per-frame metrics as JSON")
    parser.add_argument("--camera", default="front", help="camera name (presets: front, back, left, right, top, closeup)")
    parser.add_argument("--viewer", action="store_true", help="open MuJoCo's interactive viewer (needs a display)")
    parser.add_argument("--assets", metavar="DIR", help="robot asset directory (dex-urdf layout); default $HANDX_ROBOT_ASSETS")
    parser.add_argument("--width", type=int, default=640, help="video width, pixels (default 640)")
    parser.add_argument("--height", type=int, default=480, help="video height, pixels (default 480)")
    parser.add_argument(
        "--side-by-side", action="store_true", help="video: human skeleton (source_joints) next to the robot"
    )
    parser.add_argument("--table-height", type=float, metavar="Z", help="add a table whose top is at Z metres (world)")
    parser.add_argument("--timestep", type=float, default=0.002, help="max physics timestep, s (default 0.002)")
    parser.add_argument("--bandwidth", type=float, default=None, help="finger PD bandwidth, Hz (default 20)")
    parser.add_argument("--shadows", action="store_true", help="video: lights cast shadows (slower)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_args(args: argparse.Namespace) -> None:
    from handx_robot.errors import ConfigError

    if args.video and not str(args.video).lower().endswith(".mp4"):
        raise ConfigError(f"--video {args.video!r}: the output must be an .mp4 file")
    if not (16 <= args.width <= 4096 and 16 <= args.height <= 4096):
        raise ConfigError(f"--width/--height must be in [16, 4096], got {args.width}x{args.height}")
    if not (0 < args.timestep <= 0.002):
        raise ConfigError(f"--timestep must be in (0, 0.002] s, got {args.timestep}")
    if args.bandwidth is not None and not (0 < args.bandwidth <= 100):
        raise ConfigError(f"--bandwidth must be in (0, 100] Hz, got {args.bandwidth}")
    if args.viewer and args.video:
        raise ConfigError("--viewer and --video are exclusive: watch interactively, or render a file")
    if args.side_by_side and not args.video:
        raise ConfigError("--side-by-side needs --video OUT.mp4")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    import dataclasses
    import logging

    from handx_robot.retarget.robot_motion import load_robot_motion
    from handx_robot.sim.render import has_display
    from handx_robot.sim.replay import ReplayConfig, replay, scene_for_motion
    from handx_robot.sim.scene import GainConfig, SceneConfig, TableConfig
    from tqdm import tqdm

    from handx_robot.errors import ConfigError
    from handx_robot.motion import atomic_write

    log = logging.getLogger("handx_robot.sim.cli")
    _check_args(args)
    if args.viewer and not has_display():
        raise ConfigError(
            "--viewer needs a display (DISPLAY / WAYLAND_DISPLAY is not set, e.g. over SSH or in a container); "
            "render offscreen instead with --video out.mp4"
        )
    motion = load_robot_motion(args.motion)
    if args.side_by_side and motion.source_joints is None:
        raise ConfigError(f"{args.motion}: --side-by-side needs the human motion (field 'source_joints'), which this file lacks")
    if motion.body is not None:  # a humanoid (arms + hands in one model): its own scene and replay
        return _run_humanoid(args, motion, tqdm, log)
    cfg = SceneConfig(
        timestep=args.timestep,
        width=max(args.width, 640),
        height=max(args.height, 480),
        table=TableConfig(height=args.table_height) if args.table_height is not None else None,
        shadows=args.shadows,
    )
    if args.bandwidth is not None:
        cfg = dataclasses.replace(cfg, gains=GainConfig(bandwidth_hz=args.bandwidth))
    scene = scene_for_motion(motion, assets=args.assets, config=cfg)
    if args.camera not in scene.camera_names:
        raise ConfigError(f"--camera {args.camera!r} is not a camera of the scene; cameras: {', '.join(scene.camera_names)}")
    rcfg = ReplayConfig(physics=args.physics)
    bar = tqdm(total=motion.num_frames, disable=args.no_progress, desc="replay", unit="frame")

    def tick(k: int, _scene) -> None:
        bar.update(1)

    try:
        if args.video:
            result = _replay_to_video(args, motion, scene, rcfg, tick, atomic_write)
        elif args.viewer:
            result = _replay_in_viewer(scene.model, scene.data, motion.fps, tick,
                                       lambda cb: replay(motion, scene, config=rcfg, on_frame=cb))  # fmt: skip
        else:
            result = replay(motion, scene, config=rcfg, on_frame=tick)
    finally:
        bar.close()
    if args.metrics:
        path = result.metrics.save_json(args.metrics)
        log.info("wrote %s", path)
    _print_summary(result.metrics.summary(), args)
    return 0


def _replay_to_video(args, motion, scene, rcfg, tick, atomic_write):
    from handx_robot.sim.render import render_replay

    result = render_replay(
        motion, scene, rcfg, args.video, camera=args.camera, width=args.width, height=args.height,
        side_by_side=args.side_by_side, on_frame=tick,
    )  # fmt: skip
    print(f"video: {args.video} ({motion.num_frames} frames at {motion.fps:g} fps, camera {args.camera})")
    return result


def _replay_in_viewer(model, data, fps: float, tick, play):
    """Run ``play(on_frame)`` (a replay calling ``on_frame(k, scene)`` per frame) in MuJoCo's passive
    viewer on ``model`` / ``data``, one frame per motion period; returns what ``play`` returns."""
    import time

    import mujoco.viewer

    period = 1.0 / fps
    with mujoco.viewer.launch_passive(model, data) as viewer:
        state = {"t": time.perf_counter()}

        def on_frame(k: int, sc) -> None:
            viewer.sync()
            tick(k, sc)
            delay = state["t"] + period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            state["t"] = time.perf_counter()

        result = play(on_frame)
        while viewer.is_running():  # keep the last frame on screen until the window is closed
            time.sleep(0.05)
    return result


def _run_humanoid(args: argparse.Namespace, motion, tqdm, log) -> int:
    """``replay`` of a humanoid motion (:mod:`handx_robot.sim.humanoid_replay`): the same flags, except
    --table-height and --assets (the hands come with the humanoid); a diverged physics replay fails."""
    from handx_robot.sim.humanoid_replay import HumanoidReplayConfig, humanoid_replay, render_humanoid_replay
    from handx_robot.sim.humanoid_scene import HumanoidSceneConfig, build_humanoid_scene

    from handx_robot.errors import ConfigError, SolverError

    if args.table_height is not None:
        raise ConfigError(f"{args.motion}: --table-height is not supported for a humanoid motion ({motion.body.robot}): "
                          "its retargeting knows no table")  # fmt: skip
    gains = {} if args.bandwidth is None else {"hand_bandwidth_hz": args.bandwidth}
    scene_cfg = HumanoidSceneConfig(timestep=args.timestep, width=max(args.width, 640), height=max(args.height, 480),
                                    shadows=args.shadows, **gains)  # fmt: skip
    scene = build_humanoid_scene(motion.body.robot, scene_cfg)
    cfg = HumanoidReplayConfig(physics=args.physics)
    if args.camera not in scene.camera_names:
        raise ConfigError(f"--camera {args.camera!r} is not a camera of the humanoid scene; cameras: "
                          f"{', '.join(scene.camera_names)}")  # fmt: skip
    bar = tqdm(total=motion.num_frames, disable=args.no_progress, desc="replay", unit="frame")

    def tick(k: int, _scene) -> None:
        bar.update(1)

    try:
        if args.video:
            result = render_humanoid_replay(motion, args.video, config=cfg, scene=scene, camera=args.camera,
                                            width=args.width, height=args.height, side_by_side=args.side_by_side,
                                            on_frame=tick)  # fmt: skip
            print(f"video: {args.video} ({result.num_frames} frames at {motion.fps:g} fps, camera {args.camera})")
        elif args.viewer:
            result = _replay_in_viewer(scene.model, scene.data, motion.fps, tick,
                                       lambda cb: humanoid_replay(motion, scene, config=cfg, on_frame=cb))  # fmt: skip
        else:
            result = humanoid_replay(motion, scene, config=cfg, on_frame=tick)
    finally:
        bar.close()
    if args.metrics:
        log.info("wrote %s", result.metrics.save_json(args.metrics))
    s = result.metrics.summary()
    _print_humanoid_summary(s)
    if s["diverged"]:
        raise SolverError(f"{args.motion}: the physics replay diverged at motion frame {s['diverged_frame']} (joint "
                          f"speeds over {cfg.max_joint_speed:g} rad/s or unstable accelerations); lower --timestep, "
                          "or check the motion's arm speeds (handx-robot retarget's report)")  # fmt: skip
    return 0


def _print_humanoid_summary(s: dict) -> None:
    from handx_robot.sim.metrics import HAND_CONTACT_M

    def mm(x):
        return "n/a" if x is None else f"{1000 * x:.1f} mm"

    speed = f", {s['frames_per_second']:.0f} frames/s" if s["frames_per_second"] else ""
    rtf = f" (real-time factor {s['real_time_factor']:.1f})" if s["real_time_factor"] else ""
    print(f"{s['mode']} replay of {s['robot']}: {s['frames']} frames at {s['fps']:g} fps, timestep "
          f"{1000 * s['timestep_s']:.2f} ms{speed}{rtf}")  # fmt: skip
    for side, h in s["sides"].items():
        p, a, t = h.get("hand_root_position_error_m"), h["arm_joint_error_rad"], h["fingertip_error_m"]
        root = f"hand root {mm(p['mean'])} mean, {mm(p['max'])} max; " if p else ""
        print(f"  {side:5s}: {root}arm joints {a['mean']:.3f} rad mean, {a['max']:.3f} max; "
              f"fingertips {mm(t['mean'])} mean, {mm(t['max'])} max")  # fmt: skip
    c, w = s["contacts"], s["deepest_unwanted_contact"]
    worst = f"{mm(w['depth_m'])} ({w['pair']})" if w["depth_m"] > 0 else "none"
    print(f"  contacts: deepest between parts that must not touch: {worst}; "
          + ", ".join(f"{k} {mm(c[k]['max_depth_m'])}" for k in c if k != "hand-hand")
          + f"; hands within {HAND_CONTACT_M * 1e3:.0f} mm in {s['hand_hand_contact_frames']} frames, hand-hand max "
          f"{mm(c['hand-hand']['max_depth_m'])}")
    f1 = s["contact_f1"]
    if f1.get("f1") is not None:
        print(f"  contact F1 vs human: {f1['f1']:.2f} (precision {f1['precision']:.2f}, recall {f1['recall']:.2f})")
    if s["diverged"]:
        print(f"  DIVERGED at motion frame {s['diverged_frame']}: the replay stopped there")


def _print_summary(s: dict, args) -> None:
    from handx_robot.sim.metrics import HAND_CONTACT_M

    def mm(x):
        return "n/a" if x is None else f"{1000 * x:.1f} mm"

    rtf = s["real_time_factor"]
    print(f"{s['mode']} replay: {s['frames']} frames at {s['fps']:g} fps, timestep {1000 * s['timestep_s']:.2f} ms"
          + (f", real-time factor {rtf:.1f}" if rtf else ""))
    for side, h in s["hands"].items():
        print(
            f"  {side:5s}: fingertip error mean {mm(h['fingertip_error_m']['mean'])} (max {mm(h['fingertip_error_m']['max'])}), "
            f"joint error mean {h['joint_error_rad']['mean']:.3f} rad, wrist {mm(h['wrist_position_error_m']['mean'])} / "
            f"{h['wrist_orientation_error_rad']['mean']:.3f} rad"
            + (f", {h['clamped_target_frames']} frames with targets outside joint limits" if h["clamped_target_frames"] else "")
        )
    print(
        f"  contacts: hands within {HAND_CONTACT_M * 1e3:.0f} mm in {s['hand_hand_contact_frames']} frames, max penetration hand-hand "
        f"{mm(s['hand_hand_penetration_m']['max'])}, hand-environment {mm(s['hand_env_penetration_m']['max'])}"
    )
    f1 = s["contact_f1"]
    if f1.get("f1") is None:
        print(f"  contact F1: n/a ({f1.get('reason', '')})")
    else:
        print(f"  contact F1 vs human: {f1['f1']:.2f} (precision {f1['precision']:.2f}, recall {f1['recall']:.2f})")
