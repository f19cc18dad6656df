"""``handx-robot dataset retarget SRC... --out DIR`` and ``handx-robot dataset report DIR [--keep EXPR]``.

Module-level imports stay light (argparse); Ray and the solvers load inside ``run``.
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)

EXIT_FAILED = 1


def _add_retarget(p: argparse.ArgumentParser) -> None:
    from handx_robot.cli_data import add_input_options
    from handx_robot.retarget.cli import add_robot_arguments

    p.add_argument("sources", nargs="+", metavar="SRC",
                   help="motion files, folders (searched recursively) or globs ('data/**/*.npz'), of any format "
                        "`convert` reads; each sequence of a collection file is one clip")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: robot/*.npz, reports/*.json, manifest.jsonl (rerun the same command to resume)")
    p.add_argument("--validate", choices=("none", "physics"), default="none",
                   help="physics: replay each clip in MuJoCo physics and record tracking error, contact F1, divergence")
    p.add_argument("--workers", type=int, metavar="N",
                   help="parallel tasks (default: all cores of this machine; with --address: the cluster's CPUs)")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="join a running Ray cluster (`ray start --head` ...; 'auto' finds the local one) instead of "
                        "starting a local Ray instance; DIR and the inputs must be on a file system all nodes see")  # fmt: skip
    p.add_argument("--retries", type=int, default=3, metavar="N",
                   help="times a task whose worker died (killed, out of memory) is retried on another worker (default 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_robot_arguments(p)
    add_input_options(p.add_argument_group("reading the inputs (as `convert`)"), key=False)


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="the --out folder of a `dataset retarget` run")
    p.add_argument("--keep", metavar="EXPR",
                   help="write the clips that pass, e.g. \"contact_f1 >= 0.8 and penetration_mm <= 2 and not diverged\" "
                        "(names: the manifest's metrics, frames, status; and, or, not, comparisons, + - * /)")  # fmt: skip
    p.add_argument("--keep-out", metavar="TXT", help="curated clip list (default DIR/keep.txt)")
    p.add_argument("--html", metavar="HTML", help="report page (default DIR/report.html)")
    p.add_argument("--png", metavar="PNG", help="plots (default DIR/report.png)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset_command", metavar="{retarget,report}", required=True)
    _add_retarget(sub.add_parser("retarget", help="retarget every clip of a dataset (Ray; resumable)",
                                 description="Retarget every sequence of SRC onto the robot, on Ray (local or a "
                                             "cluster); rerunning the command resumes."))  # fmt: skip
    _add_report(sub.add_parser("report", help="summary, plots and curated clip list of a dataset run"))


def _settings(args: argparse.Namespace) -> dict:
    from handx_robot.retarget.cli import check_robot_settings, robot_settings
    from handx_robot.retarget.humanoid import get_humanoid, is_humanoid
    from handx_robot.retarget.robots import resolve_robot_specs

    retarget = robot_settings(args)
    check_robot_settings(retarget)
    if is_humanoid(args.robot):
        get_humanoid(args.robot)  # unknown or broken humanoid: fail before any task
        robots = {"humanoid": args.robot}
    else:
        resolve_robot_specs(args.robot, args.left_robot, args.right_robot, args.assets, ("left", "right"))
        robots = {k: v for k, v in (("robot", args.robot or "shadow"), ("left", args.left_robot),
                                    ("right", args.right_robot)) if v}  # fmt: skip
    read = {"format": args.format, "hand": args.hand, "fps": args.fps, "frame": args.frame, "units": args.units,
            "mano_dir": args.mano_dir, "swap_hands": args.swap_hands, "check_hands": not args.no_handedness_check,
            "fill_gaps": args.fill_gaps}  # fmt: skip
    return {"read": read, "retarget": retarget, "robots": robots, "validate": args.validate}


def _run_retarget(args: argparse.Namespace) -> int:
    from handx_robot.app.dataset.runner import run_dataset
    from handx_robot.errors import ConfigError

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give at least 1")
    if args.retries < 0:
        raise ConfigError(f"--retries {args.retries}: give 0 or more")
    summary = None
    try:
        summary = run_dataset(args.sources, args.out, _settings(args), workers=args.workers, address=args.address,
                              retries=args.retries, progress=not args.no_progress)  # fmt: skip
    except KeyboardInterrupt:
        print(f"interrupted: every finished clip is in {args.out}/manifest.jsonl; rerun the same command to resume",
              file=sys.stderr)  # fmt: skip
        raise
    print(summary.line())
    if summary.failed:
        print(f"{summary.failed} clips failed (see the manifest's 'error'); rerun the same command to retry them",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from handx_robot.app.dataset.report import format_summary, write_report

    summary = write_report(args.dir, out_html=args.html, out_png=args.png, keep=args.keep, keep_out=args.keep_out)
    print(format_summary(summary))
    return 0


def run(args: argparse.Namespace) -> int:
    return _run_retarget(args) if args.dataset_command == "retarget" else _run_report(args)
