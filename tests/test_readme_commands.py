"""README.md runs as written: every ``handx-robot ...`` command it shows (code blocks and inline
code) is listed here; the fast ones run, in README order, in a fresh directory, through the installed
console script and without an asset directory, as a new user would; the slow ones (training, a
60 s ROS graph) are parsed with the real argument parser, so a renamed flag fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[1]

#: every handx-robot command of README.md -> 'run' (runs here) or why it is only parsed
COMMANDS = {
    'handx-robot generate "make a fist with the left hand, then wave" -o motion.npz': "run",
    'handx-robot generate "The right index fingertip taps the left palm twice while the left thumb stays extended." '
    "-o tap.npz": "run",
    'handx-robot generate "juggle three balls" -o x.npz': "refused",
    'handx-robot generate "clap twice then juggle" --lenient -o clap.npz': "run",
    "handx-robot convert capture.npy --hand right --units mm -o motion.npz": "run",
    "handx-robot describe motion.npz": "run",
    "handx-robot show motion.npz -o skel.mp4 --plot contacts.png": "run",
    "handx-robot robots": "run",
    "handx-robot retarget motion.npz --robot shadow -o robot.npz --metrics fidelity.json": "run",
    "handx-robot retarget capture.npy --hand right --units mm --robot shadow -o right.npz": "run",
    "handx-robot replay robot.npz --physics --video replay.mp4 --metrics replay.json": "run",
    'handx-robot run "clap twice" --out out/clap': "run",
    "handx-robot retarget out/clap/motion.npz --robot shadow --interaction off -o out/clap/per_hand.npz": "run",
    "handx-robot retarget out/clap/motion.npz --robot shadow -o out/clap/robot.npz --plot out/clap/contacts.png": "run",
    'handx-robot generate "clap twice" -o clap.npz': "run",
    "handx-robot dataset retarget motion.npz tap.npz clap.npz --robot shadow --out out/ds": "run",
    'handx-robot dataset report out/ds --keep "contact_f1 >= 0.8 and penetration_mm <= 2"': "run",
    'handx-robot dataset retarget captures/ "handx/**/*_can_pos_*.npz" --robot shadow --validate physics '
    "--out out/handx": "parse: needs a dataset",
    'handx-robot dataset report out/handx --keep "contact_f1 >= 0.8 and penetration_mm <= 2 and not diverged"':
    "parse: needs the run above",
    "handx-robot dataset retarget /shared/handx --robot shadow --out /shared/out/handx --address HEAD:6379":
    "parse: needs a Ray cluster",
    "handx-robot --help": "run",
    'handx-robot run "wave with the right hand, then clap twice" --robot gr1_inspire --out out/gr1': "run",
    'handx-robot ros-run --prompt "..." --robot shadow_right --mode sim': "run",
    "handx-robot train-tracker --motions robot.npz --robot shadow_right -o policy.zip": "parse: trains PPO for minutes",
    "handx-robot track robot.npz --policy policy.zip --video out.mp4": "parse: needs the trained policy",
}

#: placeholders of the README that a user replaces
PLACEHOLDERS = {'"..."': '"pinch twice with the right hand"'}


def readme_commands() -> list[str]:
    """Every ``handx-robot`` command in README.md, in order: code-block lines (comments cut) and
    inline code spans."""
    text = (REPO / "README.md").read_text()
    found = []
    in_block = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if in_block and line.startswith("handx-robot"):
            found.append(line.split("  #")[0].strip())
        elif not in_block:
            found += [m.strip() for m in re.findall(r"`(handx-robot [^`]+)`", line) if not _mention(m)]
    return list(dict.fromkeys(found))


def _mention(command: str) -> bool:
    """``handx-robot robots / retarget`` in a table names subcommands; it is not a command line."""
    from handx_robot.app.cli import SUBCOMMANDS

    return all(t in SUBCOMMANDS or t == "/" for t in shlex.split(command)[1:])


def test_the_list_here_is_the_readme():
    """A command added to or changed in the README must be added here (and so run or parsed)."""
    readme = readme_commands()
    assert set(readme) == set(COMMANDS), (
        f"README commands not covered here: {sorted(set(readme) - set(COMMANDS))}; "
        f"listed here but not in the README: {sorted(set(COMMANDS) - set(readme))}")


def _capture(shared_dir: Path, path: Path) -> None:
    """``capture.npy``: a real right hand, MediaPipe order, millimetres, (T, 21, 3)."""
    joints = np.load(shared_dir / "data" / "dexmv_relocate_mustard_right.npz")["joints"][:60]
    np.save(path, joints * 1000.0)


def test_readme_commands_run_as_written(tmp_path, shared_dir):
    exe = Path(sys.executable).with_name("handx-robot")
    env = {k: v for k, v in os.environ.items() if k != "HANDX_ROBOT_ASSETS"}  # a new user has none
    env.update(ROS_DOMAIN_ID=str(np.random.default_rng().integers(101, 200)), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    _capture(shared_dir, tmp_path / "capture.npy")
    for command, how in COMMANDS.items():
        for placeholder, value in PLACEHOLDERS.items():
            command = command.replace(placeholder, value)
        argv = shlex.split(command)[1:]
        if how == "refused":  # the README shows a refusal: exit code 1, no file, the closest phrasings
            proc = subprocess.run([str(exe), *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 1 and "try instead" in proc.stderr, f"{command}\n{proc.stderr[-2000:]}"
            assert not (tmp_path / argv[argv.index("-o") + 1]).exists()
            continue
        if how != "run":
            continue
        if argv[0] == "ros-run":
            argv += ["--until-done", "--duration", "60"]  # the README's command, bounded for a test
        proc = subprocess.run([str(exe), *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    for name in ("motion.npz", "tap.npz", "clap.npz", "skel.mp4", "contacts.png", "robot.npz", "right.npz", "fidelity.json", "replay.mp4",
                 "replay.json", "out/clap/summary.json", "out/gr1/summary.json", "out/gr1/replay.mp4",
                 "out/ds/manifest.jsonl", "out/ds/keep.txt", "out/ds/report.html"):
        assert (tmp_path / name).is_file(), f"{name} was not written"


def test_readme_commands_that_take_minutes_parse():
    from handx_robot.app.cli import build_parser

    parser = build_parser()
    for command, how in COMMANDS.items():
        if how.startswith("parse"):
            args = parser.parse_args(shlex.split(command)[1:])
            assert args.command == shlex.split(command)[1]
