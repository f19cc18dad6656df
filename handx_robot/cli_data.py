"""``handx-robot convert | describe | show``: motion files in, motion files / text / video out.

* ``convert INPUT -o motion.npz``: any format of :mod:`handx_robot.readers` -> our motion ``.npz``.
* ``describe motion.npz [--json]``: hands, timing, openness, wrist speed, contact events, and what the
  motion shows in the words of the text grammar (:func:`handx_robot.gestures.observe`).
* ``show motion.npz -o out.mp4 [--plot timeline.png]``: skeleton video with contacts, contact timeline.

Module-level imports stay light (argparse only); the work is imported inside ``run_*``.
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = [
    "add_arguments_convert",
    "run_convert",
    "add_arguments_describe",
    "run_describe",
    "add_arguments_show",
    "run_show",
]

log = logging.getLogger(__name__)

_FORMAT_NAMES = (
    "motion", "handx-npy", "handx-npz", "handx-mano-pkl", "handx-mano-npz",
    "mediapipe-npy", "mediapipe-npz", "mediapipe-pkl",
)  # fmt: skip  (== readers.FORMATS keys; repeated here to keep --help import-free; tested)


def add_input_options(p: argparse.ArgumentParser, key: bool = True) -> None:
    """Reader options (:func:`handx_robot.readers.read_motion`); ``key=False`` leaves out ``--key``."""
    p.add_argument("--format", choices=_FORMAT_NAMES, help="input format (default: detected from the file)")
    p.add_argument("--hand", choices=("left", "right"), help="which hand a single-hand file holds (required for "
                   "MediaPipe-order files); for bimanual files, keep only this hand")  # fmt: skip
    p.add_argument("--fps", type=float, help="input frame rate where the file stores none (default 30)")
    p.add_argument("--frame", choices=("yup", "zup", "camera"),
                   help="the input's frame: yup = HandX (default), zup = robot world (Z up), camera = OpenCV camera "
                   "(x right, y down, z forward; DexMV / MediaPipe world landmarks). Output is always HandX Y-up; "
                   "our motion files state their own frame")  # fmt: skip
    p.add_argument("--units", choices=("m", "cm", "mm"), default="m", help="units of the input keypoints (default m)")
    p.add_argument("--mano-dir", help="folder with the licensed MANO_LEFT.pkl / MANO_RIGHT.pkl (MANO inputs only; "
                   "or set HANDX_MANO_DIR)")  # fmt: skip
    if key:
        p.add_argument("--key", help="sequence name or index inside a collection file")
    p.add_argument("--fill-gaps", type=float, default=0.0, metavar="SECONDS",
                   help="interpolate missing frames (NaN or all-zero keypoints) over gaps up to SECONDS (default 0: "
                   "missing frames are an error)")  # fmt: skip
    p.add_argument("--swap-hands", action="store_true", help="exchange left and right (files with swapped hand axis)")
    p.add_argument("--no-handedness-check", action="store_true",
                   help="skip the left/right mix-up test (for unusual data, e.g. hyperextended fingers)")  # fmt: skip


def read_input(args, path=None):
    """The motion at ``path`` (default ``args.input``) read with the options of :func:`add_input_options`."""
    from handx_robot.readers import read_motion

    return read_motion(
        args.input if path is None else path, format=args.format, hand=args.hand, fps=args.fps, frame=args.frame, units=args.units,
        mano_dir=args.mano_dir, key=args.key, swap_hands=args.swap_hands, check_hands=not args.no_handedness_check,
        fill_gaps=args.fill_gaps,
    )  # fmt: skip


# -- convert ---------------------------------------------------------------------------------
def add_arguments_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="input motion file (.npy, .npz, .pkl)")
    p.add_argument("-o", "--output", required=True, help="output motion .npz")
    add_input_options(p)
    p.add_argument("--resample", type=float, metavar="FPS", help="resample the output to FPS (linear)")
    p.add_argument("--trim", nargs=2, type=float, metavar=("START", "END"), help="keep START..END seconds")
    p.add_argument("--text", help="caption to store in the motion file")


def run_convert(args) -> int:
    from handx_robot.errors import ConfigError
    from handx_robot.motion import save_motion

    if not str(args.output).endswith(".npz"):
        raise ConfigError(f"-o {args.output}: the output motion file must end in .npz")
    motion = read_input(args)
    if args.trim:
        motion = motion.trim(*args.trim)
    if args.resample:
        motion = motion.resample(args.resample)
    if args.text is not None:
        motion = motion.replace(text=args.text)
    out = save_motion(motion, args.output)
    print(
        f"wrote {out}: {motion.num_frames} frames at {motion.fps:g} fps ({motion.duration:.2f} s), "
        f"hands: {', '.join(motion.present_sides)}, frame {motion.frame}"
    )
    return 0


# -- describe ------------------------------------------------------------------------------
def add_arguments_describe(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="motion file (our .npz, or any convert input with the same options)")
    add_input_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable JSON instead of text (with the key "
                   "'observations': shapes, contacts, wrist motions named as in the text grammar)")  # fmt: skip


def run_describe(args) -> int:
    import json

    from handx_robot.features import describe
    from handx_robot.gestures import observation_lines, observe

    motion = read_input(args)
    observations = observe(motion)
    if args.json:
        data = json.loads(describe(motion, as_json=True))
        data["observations"] = [o.to_dict() for o in observations]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    lines = [describe(motion), "observed:" if observations else "observed: nothing"]
    lines += ["  " + line for line in observation_lines(observations)]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# -- show ----------------------------------------------------------------------------------
def add_arguments_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="motion file (our .npz, or any convert input with the same options)")
    p.add_argument("-o", "--output", help="output video (.mp4)")
    p.add_argument("--plot", help="write a contact timeline image (.png/.pdf/.svg)")
    p.add_argument("--size", nargs=2, type=int, default=(960, 480), metavar=("W", "H"), help="video size in pixels")
    p.add_argument("--views", default="front,side", help="comma-separated panels: front, side, top")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_input_options(p)


def run_show(args) -> int:
    from handx_robot.errors import ConfigError
    from handx_robot.features import contact_events
    from handx_robot.render import plot_contact_timeline, render_video

    if not args.output and not args.plot:
        raise ConfigError("show: nothing to do; pass -o out.mp4 and/or --plot timeline.png")
    if args.output and not str(args.output).lower().endswith((".mp4", ".mkv", ".mov", ".avi")):
        raise ConfigError(f"-o {args.output}: the video must end in .mp4 (or .mkv/.mov/.avi)")
    motion = read_input(args)
    events = contact_events(motion)
    if args.output:
        views = [v.strip() for v in args.views.split(",") if v.strip()]
        out = render_video(motion, args.output, events=events, width=args.size[0], height=args.size[1],
                           views=views, progress=not args.no_progress)  # fmt: skip
        print(f"wrote {out} ({motion.num_frames} frames, {args.size[0]}x{args.size[1]})")
    if args.plot:
        seconds = motion.num_frames / motion.fps  # events end at (last frame + 1) / fps
        out = plot_contact_timeline(events, seconds, args.plot, title=f"contacts: {motion.source}")
        print(f"wrote {out} ({len(events)} contact events)")
    return 0
