"""Kinematic and physics replay of robot motions on real hand models, metrics, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from handx_robot.retarget.robot_motion import HandTrajectory, RobotMotion
from handx_robot.sim.metrics import hand_contact_f1, quat_angle
from handx_robot.sim.replay import ReplayConfig, _physics_timestep, replay, scene_for_motion, sinusoid_motion
from handx_robot.sim.scene import HandModel, build_scene

from handx_robot.errors import MotionValueError, UnknownJointError


@pytest.fixture(scope="module")
def allegro_scene(dex_urdf_dir):
    hands = [HandModel.from_path(dex_urdf_dir / "allegro_hand" / f"allegro_hand_{s}.urdf", s) for s in ("left", "right")]
    return build_scene(hands)


@pytest.fixture(scope="module")
def allegro_motion(allegro_scene):
    return sinusoid_motion(allegro_scene, seconds=1.0, fps=30.0)


def test_kinematic_replay_reproduces_the_motion(allegro_scene, allegro_motion):
    res = replay(allegro_motion, allegro_scene, physics=False)
    assert res.num_frames == allegro_motion.num_frames
    for side in ("left", "right"):
        np.testing.assert_allclose(res.metrics.joint_error[side], 0.0, atol=1e-12)
        np.testing.assert_allclose(res.metrics.fingertip_error[side], 0.0, atol=1e-12)
        np.testing.assert_allclose(res.wrist_pose[side], allegro_motion.hands[side].wrist_pose, atol=1e-12)
        idx = [res.joint_names[side].index(n) for n in allegro_motion.hands[side].joint_names]
        np.testing.assert_allclose(res.qpos[side][:, idx], allegro_motion.hands[side].qpos)
    assert res.metrics.real_time_factor is None


def test_physics_replay_tracks_within_a_centimetre(allegro_scene, allegro_motion):
    res = replay(allegro_motion, allegro_scene, physics=True)
    s = res.metrics.summary()
    assert s["mode"] == "physics" and s["timestep_s"] <= 0.002
    assert s["real_time_factor"] > 1.0
    for side in ("left", "right"):
        h = s["hands"][side]
        assert h["fingertip_error_m"]["mean"] < 0.01
        assert h["wrist_position_error_m"]["max"] < 0.005
        assert h["wrist_orientation_error_rad"]["max"] < 0.05
        assert 0 < h["joint_error_rad"]["mean"] < 0.05  # physics is not a copy of the targets
    # frame 0 starts from the kinematic state
    assert res.metrics.fingertip_error["right"][0] < 1e-6


def test_physics_without_feedforward_lags_more(allegro_scene, allegro_motion):
    with_ff = replay(allegro_motion, allegro_scene, config=ReplayConfig(physics=True))
    without = replay(allegro_motion, allegro_scene, config=ReplayConfig(physics=True, velocity_feedforward=False))
    assert without.metrics.joint_error["right"].mean() > with_ff.metrics.joint_error["right"].mean()


def test_timestep_divides_the_frame_period():
    dt, n = _physics_timestep(30.0, 0.002)
    assert dt <= 0.002 and n == 17
    assert n * dt == pytest.approx(1 / 30)
    dt, n = _physics_timestep(100.0, 0.002)
    assert (dt, n) == (pytest.approx(0.002), 5)


def _with_names(motion, side, names):
    h = motion.hands[side]
    hands = dict(motion.hands)
    hands[side] = HandTrajectory(h.robot, names, h.qpos, h.wrist_pose, h.converged)
    return RobotMotion(motion.fps, hands, motion.text)


def test_joint_name_mismatch_lists_missing_and_extra(allegro_scene, allegro_motion):
    names = list(allegro_motion.hands["right"].joint_names)
    names[0], names[3] = "thumb_joint_a", "wrong_joint"
    bad = _with_names(allegro_motion, "right", tuple(names))
    with pytest.raises(UnknownJointError) as err:
        replay(bad, allegro_scene)
    msg = str(err.value)
    assert "joint_0.0" in msg and "joint_3.0" in msg and "thumb_joint_a" in msg and "wrong_joint" in msg


def test_nan_target_names_the_frame(allegro_scene, allegro_motion):
    h = allegro_motion.hands["left"]
    qpos = h.qpos.copy()
    bad = RobotMotion(allegro_motion.fps, {"left": HandTrajectory(h.robot, h.joint_names, qpos, h.wrist_pose, h.converged)})
    qpos[7, 2] = np.nan  # arrays stay mutable after validation: replay checks again
    with pytest.raises(MotionValueError, match=r"frame 7 \(joint_2.0\)"):
        replay(bad, allegro_scene, physics=True)


def test_scene_for_motion_from_the_registry(dex_urdf_dir, tmp_path):
    hands = [HandModel.from_registry(f"leap_{s}", assets=dex_urdf_dir) for s in ("left", "right")]
    motion = sinusoid_motion(build_scene(hands), seconds=0.4)
    scene = scene_for_motion(motion, assets=dex_urdf_dir)
    res = replay(motion, scene, physics=True)
    assert res.metrics.summary()["hands"]["left"]["fingertip_error_m"]["mean"] < 0.01
    floor = scene.model.geom("handx/floor").id
    assert scene.data.geom_xpos[floor, 2] < min(res.fingertips["left"][..., 2].min(), res.fingertips["right"][..., 2].min())
    path = res.metrics.save_json(tmp_path / "m.json")
    data = json.loads(path.read_text())
    assert data["summary"]["mode"] == "physics"
    assert len(data["per_frame"]["left"]["fingertip_error_m"]) == motion.num_frames


def test_hand_contact_events_f1():
    T, fps = 60, 30.0
    sj = np.zeros((T, 2, 21, 3), dtype=np.float32)
    rng = np.random.default_rng(0)
    hand = rng.normal(scale=0.03, size=(21, 3)).astype(np.float32)
    sj[:, 0] = hand + [-0.3, 0, 0.3]
    sj[:, 1] = hand + [0.3, 0, 0.3]
    sj[20:40, 1] = hand + [0.0, 0, 0.3]  # the right hand moves onto the left one for frames 20..39
    sj[20:40, 0] = hand + [0.0, 0, 0.3]
    robot = np.zeros(T, dtype=bool)
    robot[21:40] = True
    good = hand_contact_f1(robot, sj, fps)
    assert good["f1"] == pytest.approx(1.0) and good["human_events"]
    none = hand_contact_f1(np.zeros(T, dtype=bool), sj, fps)
    assert none["f1"] == pytest.approx(0.0) and none["fn"] == 1
    assert hand_contact_f1(robot, None, fps)["f1"] is None


def test_quat_angle():
    q = np.array([1.0, 0, 0, 0])
    r = np.array([np.cos(0.25), 0, 0, np.sin(0.25)])
    assert quat_angle(q, r) == pytest.approx(0.5)
    assert quat_angle(r, -r) == pytest.approx(0.0, abs=1e-6)


def test_diverging_physics_is_an_error_not_a_result(dex_urdf_dir, tmp_path, monkeypatch):
    from handx_robot.sim.scene import GainConfig, SceneConfig

    from handx_robot.errors import SolverError

    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warning to ./MUJOCO_LOG.TXT

    hands = [HandModel.from_path(dex_urdf_dir / "allegro_hand" / "allegro_hand_right.urdf", "right")]
    stiff = GainConfig(overrides={"joint_2.0": (1e5, 0.0), "joint_3.0": (1e5, 0.0)})  # far beyond 2 ms stability
    scene = build_scene(hands, SceneConfig(gains=stiff))
    with pytest.raises(SolverError, match=r"diverged between motion frames (\d+) and \d+ \(motion time ") as err:
        replay(sinusoid_motion(scene, seconds=0.5), scene, physics=True)
    # the time is the motion's (frame / fps), not MuJoCo's d.time, which its bad-qacc reset sets back to 0
    k = int(err.value.args[0].split("between motion frames ")[1].split()[0])
    assert f"motion time {k / 30:.3f}-{(k + 1) / 30:.3f} s" in str(err.value)
    assert scene.model.opt.timestep == pytest.approx(0.002)  # restored after the failure
