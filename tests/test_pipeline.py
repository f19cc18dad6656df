"""End to end: `handx-robot run` from a sentence to a robot motion, a physics replay video and a summary."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
from handx_robot.retarget.robot_motion import load_robot_motion

from handx_robot.app import cli
from handx_robot.motion import load_motion


def test_run_writes_every_artefact(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["run", "clap twice", "--seconds", "2.5", "--out", str(out), "--no-progress"])
    assert rc == 0
    motion = load_motion(out / "motion.npz")
    assert motion.present.all() and motion.text == "clap twice"
    robot = load_robot_motion(out / "robot.npz")
    assert robot.sides == ("left", "right")
    assert robot.num_frames == motion.num_frames
    for hand in robot.hands.values():
        assert hand.robot.startswith("shadow_builtin_")
        assert hand.converged.all()

    import imageio.v2 as imageio

    reader = imageio.get_reader(out / "replay.mp4")
    frames = [reader.get_data(k) for k in (0, motion.num_frames // 2)]
    assert reader.count_frames() == motion.num_frames
    reader.close()
    assert frames[0].shape[0] == 480 and frames[0].shape[1] > 640  # robot view + human skeleton panel
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() > 0.5  # the hands moved

    summary = json.loads((out / "summary.json").read_text())
    assert summary["generation"]["frames"] == motion.num_frames
    assert summary["replay"]["mode"] == "physics"
    for side in ("left", "right"):
        r = summary["retargeting"]["hands"][side]
        assert r["joint_limit_violations"] == 0 and r["non_converged_frames"] == 0
        assert 0 <= summary["replay"]["hands"][side]["fingertip_error_m"] < 0.02
    assert summary["replay"]["contact_f1_human_vs_robot"] is not None
    it = summary["retargeting"]["interaction"]  # the bimanual solve's figures (#17's targets)
    assert it["contact_f1_inter_hand"] >= 0.8 and it["hand_hand_penetration_max_m"] <= 0.002
    assert it["finger_finger_penetration_max_m"] <= 0.002 and 0 < it["bimanual_frames_fraction"] <= 1
    assert summary["replay"]["real_time_factor"] > 0
    assert json.loads((out / "retarget.json").read_text())["hands"]["right"]["robot"] == "shadow_builtin_right"
    assert "hands" in json.loads((out / "replay.json").read_text())["summary"]
    printed = capsys.readouterr().out
    assert "contact F1 human vs robot" in printed and "summary.json" in printed
    assert "contact F1 across / within the hands" in printed and "penetration max, hand-hand" in printed


def test_run_through_ros_graph(tmp_path, monkeypatch):
    pytest.importorskip("rclpy")
    monkeypatch.setenv("ROS_DOMAIN_ID", str(random.randint(101, 200)))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    out = tmp_path / "ros"
    rc = cli.main(["run", "pinch twice with the right hand", "--seconds", "2", "--kinematic", "--no-video",
                   "--ros", "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ros"]["exit_code"] == 0
    assert summary["replay"]["mode"] == "kinematic"
    assert not (out / "replay.mp4").exists()


def test_run_bad_prompt_fails_cleanly_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "bad"
    rc = cli.main(["run", "   ", "--out", str(out), "--no-progress"])
    assert rc == 1
    assert "error" in capsys.readouterr().err
    assert not out.exists() or not any(out.rglob("*"))


def test_run_sets_headless_rendering_when_unset(tmp_path, monkeypatch):
    """With MUJOCO_GL unset, ``run`` picks EGL (headless) before anything renders."""
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert cli.main(["run", "   ", "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    assert os.environ.get("MUJOCO_GL") == "egl"


def test_run_returns_the_ros_graphs_exit_code(tmp_path, monkeypatch):
    """``run --ros`` fails when the ROS 2 graph failed (it used to report success whatever the graph did)."""
    from handx_robot.app import pipeline

    monkeypatch.setattr(pipeline, "run_pipeline", lambda args: {"ros": {"exit_code": 3}})
    monkeypatch.setattr(pipeline, "_print_summary", lambda summary: None)
    assert cli.main(["run", "clap", "--ros", "--out", str(tmp_path / "r"), "--no-progress"]) == 3
