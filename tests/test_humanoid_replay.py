"""Humanoid replay (:mod:`handx_robot.sim.humanoid_replay`): the kinematic replay is ``model_qpos``, the
physics replay of a retargeted clap tracks the hand roots without diverging or pressing the arms into the
body, contacts are sorted by part pair, a video renders, and the ``replay`` CLI and the pipeline's replay
stage take humanoid motions. Needs robosuite's model files (the GR1 and its hands)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math

import mujoco
import numpy as np
import pytest

if importlib.util.find_spec("robosuite") is None:
    pytest.skip("robosuite's model files are not installed (pip install --no-deps robosuite==1.5.2)",
                allow_module_level=True)  # fmt: skip

from handx_robot.retarget.humanoid.retarget import model_qpos, retarget_humanoid  # noqa: E402
from handx_robot.retarget.robot_motion import save_robot_motion  # noqa: E402
from handx_robot.sim.humanoid_replay import HumanoidReplayConfig, humanoid_replay, render_humanoid_replay  # noqa: E402
from handx_robot.sim.humanoid_scene import UNWANTED_CONTACTS, HumanoidSceneConfig, build_humanoid_scene  # noqa: E402

from handx_robot.app.cli import main  # noqa: E402
from handx_robot.errors import MissingDependencyError, MotionValueError  # noqa: E402
from handx_robot.generate import generate  # noqa: E402

ROBOT = "gr1_inspire"
SMALL = {"width": 320, "height": 240}


@pytest.fixture(scope="module")
def clap():
    """'clap twice' in 2 s (61 frames at 30 fps), retargeted onto the GR1 with Inspire hands."""
    motion, _ = retarget_humanoid(generate("clap twice", seconds=2.0, seed=0), ROBOT)
    return motion


@pytest.fixture(scope="module")
def scene():
    return build_humanoid_scene(ROBOT, HumanoidSceneConfig(**SMALL))


@pytest.fixture(scope="module")
def tracking_scene():
    """Without one arm's links colliding with each other: the arm IK does not keep the forearm's hull out
    of the upper arm's (see test_deep_elbow_flexion_is_an_arm_self_contact), and the tracking test
    checks the controller, not the motion."""
    return build_humanoid_scene(ROBOT, HumanoidSceneConfig(arm_self_collision=False, **SMALL))


def test_kinematic_replay_reproduces_model_qpos(scene, clap):
    res = humanoid_replay(clap, scene)
    assert res.num_frames == clap.num_frames and not res.physics and not res.diverged
    np.testing.assert_array_equal(res.qpos, model_qpos(scene.hm, clap))
    s = res.metrics.summary()
    assert s["mode"] == "kinematic" and s["real_time_factor"] is None
    for side in ("left", "right"):
        np.testing.assert_allclose(res.metrics.hand_root_position_error[side], 0.0, atol=1e-9)
        np.testing.assert_allclose(res.metrics.hand_root_rotation_error[side], 0.0, atol=1e-6)
        assert s["sides"][side]["fingertip_error_m"]["max"] == 0.0
        assert s["sides"][side]["arm_joint_error_rad"]["max"] == 0.0


def test_physics_replay_tracks_the_hand_roots_of_a_retargeted_clap(tracking_scene, clap):
    """Bounds 1.5-3x the figures measured when this was written (hand root 9.3 mm / 0.09 rad max and
    1.1 mm / 0.014 rad mean; the clap's impact makes the peaks; the retargeted motion, hence these
    figures, move with the arm IK; ``benchmarks/humanoid_replay.py`` for longer motions)."""
    res = humanoid_replay(clap, tracking_scene, physics=True)
    s = res.metrics.summary()
    assert not s["diverged"] and res.num_frames == clap.num_frames
    assert s["mode"] == "physics" and s["timestep_s"] <= 0.002 and s["real_time_factor"] > 1.0
    np.testing.assert_array_equal(res.qpos[0], res.reference_qpos[0])  # starts at the kinematic frame 0
    for side in ("left", "right"):
        h = s["sides"][side]
        assert h["hand_root_position_error_m"]["max"] < 0.015, (side, h["hand_root_position_error_m"])
        assert h["hand_root_position_error_m"]["mean"] < 0.004, (side, h["hand_root_position_error_m"])
        assert h["hand_root_rotation_error_rad"]["max"] < 0.25, (side, h["hand_root_rotation_error_rad"])
        assert 0 < h["arm_joint_error_rad"]["mean"] < 0.01  # physics is not a copy of the targets
        assert h["fingertip_error_m"]["mean"] < 0.01
    for pair in ("arm-body", "hand-body", "arm-arm"):
        assert s["contacts"][pair]["max_depth_m"] <= 0.002, (pair, s["contacts"][pair])
    assert s["max_joint_speed_rad_s"] < 60  # 23 rad/s measured (fingers at the clap's impact)
    # both claps count: the hands come within HAND_CONTACT_M through each human touch, though they touch
    # (penetrate) only at the impacts, too briefly for an event (contact F1 0.00 when that was the test)
    f1 = s["contact_f1"]
    assert len(f1["human_events"]) == 2 and f1["f1"] == 1.0, f1
    touching = res.metrics.contact_depth["hand-hand"] > 0
    assert touching.sum() < res.metrics.hand_hand_contact.sum() and not (touching & ~res.metrics.hand_hand_contact).any()


def test_driven_followers_track_their_couplings(scene, clap):
    """The coupled distal joints: driven at their coupled targets they track; left to the joint
    equalities alone they lag far behind (the hands' joint damping), which is why they are driven."""
    driven = humanoid_replay(clap, scene, physics=True).metrics
    loose_scene = build_humanoid_scene(ROBOT, HumanoidSceneConfig(drive_followers=False, **SMALL))
    loose = humanoid_replay(clap, loose_scene, physics=True).metrics
    assert loose_scene.model.nu < scene.model.nu
    for side in ("left", "right"):
        d, f = driven.hand_joint_error[side], loose.hand_joint_error[side]
        assert np.percentile(d, 95) < 0.05, side
        assert np.percentile(f, 95) > 2 * np.percentile(d, 95), side


def test_deep_elbow_flexion_is_an_arm_self_contact(scene, clap):
    """The right elbow flexed to 2.6 rad (inside its range) presses the forearm's hull into the upper
    arm's: reported as ``arm-self``, the deepest contact between parts that must not touch."""
    qpos = clap.body.qpos.copy()
    qpos[:, clap.body.joint_names.index("r_elbow_pitch")] = -2.6
    bent = dataclasses.replace(clap, body=dataclasses.replace(clap.body, qpos=qpos))
    s = humanoid_replay(bent, scene, config=HumanoidReplayConfig(stop=3)).metrics.summary()
    assert s["contacts"]["arm-self"]["max_depth_m"] > 0.005 and s["contacts"]["arm-self"]["frames"] == 3
    assert s["deepest_unwanted_contact"]["pair"] == "arm-self" and "arm-self" in UNWANTED_CONTACTS


def _pixels(scene, camera: str, points: np.ndarray, aspect: float) -> np.ndarray:
    """(n, 2) image coordinates in [0, 1] of world points seen by a camera of the scene (pinhole)."""
    m, d = scene.model, mujoco.MjData(scene.model)
    mujoco.mj_kinematics(m, d)
    mujoco.mj_camlight(m, d)
    cid = m.camera(camera).id
    pc = (points - d.cam_xpos[cid]) @ d.cam_xmat[cid].reshape(3, 3)
    tan_v = math.tan(math.radians(m.cam_fovy[cid]) / 2)
    return np.stack([0.5 + 0.5 * pc[:, 0] / (-pc[:, 2] * tan_v * aspect), 0.5 + 0.5 * pc[:, 1] / (-pc[:, 2] * tan_v)], 1)


def test_a_tiny_video_renders_the_upper_body_with_both_hands(scene, clap, tmp_path):
    import imageio.v2 as imageio

    path = tmp_path / "gr1.mp4"
    try:
        res = render_humanoid_replay(clap, path, config=HumanoidReplayConfig(stop=3), scene=scene, width=160, height=120)
    except MissingDependencyError as exc:  # pragma: no cover - machines without any GL
        pytest.skip(f"no offscreen OpenGL: {exc}")
    frames = [np.asarray(f) for f in imageio.get_reader(str(path))]
    assert res.num_frames == 3 and len(frames) == 3 and frames[0].shape == (120, 160, 3)
    assert frames[0].std() > 10  # not a flat image
    d = mujoco.MjData(scene.model)  # the cameras were framed on these frames: every hand geom is in view
    for q in res.qpos:
        d.qpos[:] = q
        mujoco.mj_kinematics(scene.model, d)
        for side in ("left", "right"):
            uv = _pixels(scene, "front", scene.hand_geom_positions(side, d), 160 / 120)
            assert np.all((uv > 0) & (uv < 1)), (side, uv)


def test_a_floating_hand_motion_is_refused(scene, clap):
    with pytest.raises(MotionValueError, match="no humanoid body"):
        humanoid_replay(dataclasses.replace(clap, body=None), scene)


def test_replay_cli_takes_a_humanoid_motion(clap, tmp_path, capsys):
    path = save_robot_motion(clap, tmp_path / "gr1.npz")
    metrics = tmp_path / "m.json"
    assert main(["replay", str(path), "--physics", "--metrics", str(metrics), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"physics replay of {ROBOT}: {clap.num_frames} frames" in out and "hand root" in out
    assert json.loads(metrics.read_text())["summary"]["robot"] == ROBOT
    assert main(["replay", str(path), "--table-height", "0.8"]) == 1
    assert "--table-height is not supported" in capsys.readouterr().err


def test_pipeline_replay_stage_takes_a_humanoid_motion(clap, tmp_path):
    from handx_robot.app.pipeline import PipelineResult, _replay

    args = argparse.Namespace(width=160, height=120, physics=False, no_video=True, no_progress=True, video=None,
                              camera="front", assets=None)  # fmt: skip
    summary = PipelineResult(files={})
    _replay(args, clap, tmp_path, summary)
    r = summary["replay"]
    assert r["mode"] == "kinematic" and not r["diverged"]
    assert r["hands"]["right"]["fingertip_error_m"] == 0.0 and r["hands"]["left"]["wrist_position_error_m"] < 1e-9
    assert (tmp_path / "replay.json").is_file()
