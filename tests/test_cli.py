"""The handx-robot command router: help, version, usage, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from handx_robot import __version__
from handx_robot.app import cli
from handx_robot.errors import MotionFormatError


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert cli.main([]) == cli.EXIT_USAGE
    assert "COMMAND" in capsys.readouterr().out


def test_handx_error_is_one_line_and_exit_1(monkeypatch, capsys, tmp_path):
    mod = tmp_path / "fake_sub.py"
    mod.write_text(
        "from handx_robot.errors import MotionFormatError\n"
        "def add_arguments(p):\n    p.add_argument('path')\n"
        "def run(args):\n    raise MotionFormatError(f'{args.path}: field joints is missing')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.SUBCOMMANDS, "fake", ("fake_sub", "fake"))
    assert cli.main(["fake", "in.npz"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["handx-robot fake: error: in.npz: field joints is missing"]
    assert issubclass(MotionFormatError, ValueError)


def test_console_script_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "handx_robot.app.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0
    assert "retarget" in proc.stdout
