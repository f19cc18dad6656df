"""The ``handx-robot`` command line.

Each subcommand lives in its own module that exposes ``add_arguments(parser)`` and
``run(args) -> int`` (or ``add_arguments_<sub>`` / ``run_<sub>`` when one module serves several);
this file only routes. Module-level imports of those modules stay light (numpy at most) so that
``--help`` is fast; heavy imports go inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from handx_robot import __version__
from handx_robot.errors import HandXError

__all__ = ["main", "SUBCOMMANDS"]

#: name -> (module implementing it, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("handx_robot.generate.cli", "text prompt -> bimanual human motion file"),
    "convert": ("handx_robot.cli_data", "convert HandX / MediaPipe / MANO files to a motion file"),
    "describe": ("handx_robot.cli_data", "describe a motion: contacts, pinches, timing"),
    "show": ("handx_robot.cli_data", "render a motion's skeletons to video / plot its contacts"),
    "robots": ("handx_robot.retarget.cli", "list the robot hands available for retargeting"),
    "retarget": ("handx_robot.retarget.cli", "retarget a human motion to robot hands"),
    "replay": ("handx_robot.sim.cli", "replay a robot motion in MuJoCo (kinematic or physics), video, metrics"),
    "train-tracker": ("handx_robot.sim.cli_tracking", "train an RL residual tracking policy (PPO)"),
    "track": ("handx_robot.sim.cli_tracking", "track a robot motion with a trained policy"),
    "dataset": ("handx_robot.app.dataset.cli", "whole datasets onto a robot on Ray (resumable), and their report"),
    "run": ("handx_robot.app.pipeline", "sentence -> motion -> robot -> MuJoCo video and summary"),
    "ros-run": ("handx_robot.ros.cli", "run the ROS 2 text-to-hand node graph in one process"),
}

EXIT_ERROR = 1
EXIT_USAGE = 2

log = logging.getLogger("handx_robot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handx-robot",
        description="Text -> bimanual human hand motion -> dexterous robot hands (retargeting, "
        "MuJoCo replay, RL tracking, ROS 2).",
    )
    parser.add_argument("--version", action="version", version=f"handx-robot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        adder = getattr(module, f"add_arguments_{name.replace('-', '_')}", None) or module.add_arguments
        adder(p)
        p.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    module = importlib.import_module(args._module)
    runner = getattr(module, f"run_{args.command.replace('-', '_')}", None) or module.run
    try:
        return int(runner(args) or 0)
    except HandXError as exc:
        if args.verbose:
            log.exception("%s failed", args.command)
        print(f"handx-robot {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"handx-robot {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # unexpected: one line unless --verbose
        if args.verbose:
            raise
        print(
            f"handx-robot {args.command}: unexpected error: {type(exc).__name__}: {exc} "
            "(rerun with --verbose for the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
