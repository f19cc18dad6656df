"""``handx-robot retarget --plot``: the interaction timeline of a robot motion (retarget/interaction/timeline.py),
measured from the written file alone, counts what the retarget report counts, and draws it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from handx_robot.retarget.interaction.timeline import interaction_timeline, plot_interaction_timeline
from handx_robot.retarget.robot_motion import load_robot_motion

from handx_robot.app import cli
from handx_robot.generate import generate
from handx_robot.motion import save_motion


@pytest.fixture(scope="module")
def clap(tmp_path_factory):
    d = tmp_path_factory.mktemp("timeline")
    save_motion(generate("clap twice", seed=0), d / "clap.npz")
    return d


def _retarget(d, name, *extra) -> dict:
    assert cli.main(["retarget", str(d / "clap.npz"), "--robot", "shadow_builtin", "-o", str(d / f"{name}.npz"),
                     "--metrics", str(d / f"{name}.json"), "--plot", str(d / f"{name}.png"), "--no-progress",
                     *extra]) == 0  # fmt: skip
    return json.loads((d / f"{name}.json").read_text())


def test_the_timeline_of_a_written_result_counts_what_its_report_counts(clap):
    """From the file alone, the same contact events across and within the hands (human and robot) and the same
    deepest penetration as the solve's own report; the picture is written."""
    report = _retarget(clap, "auto")["interaction"]
    tl = interaction_timeline(load_robot_motion(clap / "auto.npz"))
    for group, inter in (("inter_hand", True), ("intra_hand", False)):
        kinds = {"inter_tip_tip", "inter_tip_palm", "palm_palm"} if inter else {"pinch", "tip_tip", "tip_palm"}
        f1 = report["contact_f1"][group]
        assert sum(e.kind in kinds for e in tl.human_events) == f1["human_events"]
        assert sum(e.kind in kinds for e in tl.robot_events) == f1["robot_events"]
    assert report["contact_f1"]["inter_hand"]["human_events"] > 0  # a clap: something to count
    assert tl.hand_hand.max() == pytest.approx(report["hand_hand_penetration_m"]["max"], abs=1e-9)
    assert tl.finger_finger.max() == pytest.approx(report["self_penetration_m"]["max"], abs=1e-9)
    import imageio.v3 as iio

    img = iio.imread(clap / "auto.png")
    assert img.shape[1] == 1000 and img.shape[0] > 300


def test_the_timeline_shows_a_per_hand_result_passing_through_itself(clap, tmp_path):
    """The same clap per hand (``--interaction off``): the built-in Shadows' palms pass more than 2 mm into each
    other, which the timeline measures (and the solve's result does not do)."""
    _retarget(clap, "off", "--interaction", "off")
    tl = interaction_timeline(load_robot_motion(clap / "off.npz"))
    assert tl.hand_hand.max() > 0.002
    assert (clap / "off.png").stat().st_size > 0
    # an empty timeline draws too (no contact, no penetration)
    empty = type(tl)(fps=30.0, pairs=tl.pairs, human_events=[], robot_events=[], hand_hand=np.zeros(10),
                     finger_finger=np.zeros(10))  # fmt: skip
    assert plot_interaction_timeline(empty, tmp_path / "empty.png").stat().st_size > 0


def test_plot_refuses_a_humanoid_before_any_work(clap, capsys):
    assert cli.main(["retarget", str(clap / "clap.npz"), "--robot", "gr1_inspire", "-o", str(clap / "h.npz"),
                     "--plot", str(clap / "h.png")]) == 1  # fmt: skip
    assert "--plot draws robot hands' contacts" in capsys.readouterr().err
    assert not (clap / "h.npz").exists()
