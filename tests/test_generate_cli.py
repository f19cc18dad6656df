"""``handx-robot generate`` / ``run`` say what they understood, and refuse what they cannot perform.

Every generation prints its parse (``understood:`` block, before the self-check) and stores it in the
motion file (``meta['parse']``); a prompt the composer cannot perform exits 1 with the closest
phrasings and writes nothing; ``--lenient`` performs what was understood and warns about the rest.
"""

from __future__ import annotations

import json

import pytest

from handx_robot.app import cli
from handx_robot.generate.cli import format_refusal, refusal_message
from handx_robot.generate.grammar import PromptRefused
from handx_robot.motion import load_motion

REFUSED = ["juggle three balls", "touch the nose with the right index finger"]


def _generate(tmp_path, prompt, *extra):
    out = tmp_path / "m.npz"
    rc = cli.main(["generate", prompt, "-o", str(out), *extra])
    return rc, out


@pytest.mark.parametrize(
    ("prompt", "sides"),
    [("clap twice", {"left", "right"}), ("make a peace sign with the left hand", {"left"})],
)
def test_generate_prints_the_parse_before_the_self_check_and_stores_it(tmp_path, capsys, prompt, sides):
    rc, out = _generate(tmp_path, prompt)
    assert rc == 0
    printed = capsys.readouterr()
    assert "understood:" in printed.out and "self-check:" in printed.out
    assert printed.out.index("understood:") < printed.out.index("self-check:")
    assert "warning: not performed" not in printed.err
    parse = load_motion(out).meta["parse"]
    assert parse["prompt"] == prompt and parse["unused"] == []
    assert {side for step in parse["steps"] for side in step["hands"]} == sides
    json.dumps(parse)  # plain JSON


def test_the_peace_sign_parse_names_the_hand_and_the_shape(tmp_path, capsys):
    rc, _ = _generate(tmp_path, "make a peace sign with the left hand")
    assert rc == 0
    block = capsys.readouterr().out.split("understood:", 1)[1]
    assert "left hand" in block and "peace" in block


@pytest.mark.parametrize("prompt", REFUSED)
@pytest.mark.parametrize("extra", [(), ("--no-open-vocabulary",)])
def test_generate_refuses_what_it_cannot_perform(tmp_path, capsys, prompt, extra):
    rc, out = _generate(tmp_path, prompt, *extra)
    assert rc == 1
    assert not out.exists() and not list(tmp_path.iterdir())
    printed = capsys.readouterr()
    assert printed.out == ""
    err = printed.err
    assert err.startswith("handx-robot generate: refused: cannot perform") and prompt in err
    assert "not used:" in err and "try instead:" in err
    tried = err.split("try instead:", 1)[1].splitlines()[1:]
    assert tried and tried[0].startswith("    ") and tried[0].strip()  # at least one phrasing, one a line


def test_the_suggestions_of_a_refusal_can_be_performed(tmp_path, capsys):
    rc, _ = _generate(tmp_path, "juggle three balls", "--no-open-vocabulary")
    assert rc == 1
    err = capsys.readouterr().err
    first = err.split("try instead:", 1)[1].splitlines()[1].strip()
    rc, out = _generate(tmp_path, first, "--no-open-vocabulary")
    assert rc == 0, capsys.readouterr().err
    assert load_motion(out).meta["parse"]["prompt"] == first


def test_lenient_generates_what_was_understood_and_warns(tmp_path, capsys):
    rc, out = _generate(tmp_path, "clap twice loudly", "--lenient")
    assert rc == 0
    printed = capsys.readouterr()
    assert "understood:" in printed.out
    assert "warning: not performed: 'loudly'" in printed.err
    parse = load_motion(out).meta["parse"]
    assert parse["unused"] == ["loudly"]
    rc, out2 = _generate(tmp_path, "clap twice loudly")  # without --lenient the same prompt is refused
    assert rc == 1 and "'loudly'" in capsys.readouterr().err


def test_lenient_still_refuses_a_prompt_with_nothing_understood(tmp_path, capsys):
    rc, out = _generate(tmp_path, "juggle three balls", "--lenient", "--no-open-vocabulary")
    assert rc == 1 and not out.exists()
    assert "try instead:" in capsys.readouterr().err


def test_lenient_is_for_the_composer_only(tmp_path, capsys):
    rc, out = _generate(tmp_path, "clap", "--lenient", "--generator", "library")
    assert rc == 1 and not out.exists()
    assert "--lenient applies to the composer" in capsys.readouterr().err


def test_refusal_text_from_the_exception():
    exc = PromptRefused("juggle", ["'juggle' is not a hand action I know"], ["juggle"], ["clap twice", "wave"])
    assert refusal_message(exc) == "cannot perform 'juggle': 'juggle' is not a hand action I know"
    text = format_refusal(exc, "run")
    assert text.splitlines()[:5] == [
        "handx-robot run: refused: cannot perform 'juggle': 'juggle' is not a hand action I know",
        "  not used: 'juggle'",
        "  try instead:",
        "    clap twice",
        "    wave",
    ]


# -- handx-robot run ---------------------------------------------------------------------------
def test_run_refuses_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["run", REFUSED[1], "--robot", "shadow", "--out", str(out), "--no-progress"])
    assert rc == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("handx-robot run: refused:") and "try instead:" in err


def test_run_lenient_performs_what_was_understood(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["run", "clap twice loudly", "--lenient", "--seconds", "2", "--kinematic", "--no-video",
                   "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr()
    assert "understood:" in printed.out and "warning: not performed: 'loudly'" in printed.err
    motion = load_motion(out / "motion.npz")
    assert motion.meta["parse"]["unused"] == ["loudly"]
    assert (out / "summary.json").exists()
