"""Kinematic and physics replay of robot motions on real hand models, metrics, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from handx_robot.retarget.robot_motion import HandTrajectory, RobotMotion
from handx_robot.sim.metrics import hand_contact_f1, quat_angle
from handx_robot.sim.replay import (
    FLOOR_CLEARANCE_M,
    ReplayConfig,
    _physics_timestep,
    motion_extent,
    replay,
    scene_for_motion,
)
from handx_robot.sim.scene import CAMERA_PRESETS, HandModel, SceneConfig, TableConfig, build_scene
from handx_robot.sim.synthetic import sinusoid_motion

from handx_robot.errors import MotionValueError, UnknownJointError


@pytest.fixture(scope="module")
def allegro_scene(dex_urdf_models):
    hands = [HandModel.from_path(dex_urdf_models / "allegro_hand" / f"allegro_hand_{s}.urdf", s) for s in ("left", "right")]
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


def test_diverging_physics_is_an_error_not_a_result(dex_urdf_models, tmp_path, monkeypatch):
    from handx_robot.sim.scene import GainConfig, SceneConfig

    from handx_robot.errors import SolverError

    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warning to ./MUJOCO_LOG.TXT

    hands = [HandModel.from_path(dex_urdf_models / "allegro_hand" / "allegro_hand_right.urdf", "right")]
    stiff = GainConfig(overrides={"joint_2.0": (1e5, 0.0), "joint_3.0": (1e5, 0.0)})  # far beyond 2 ms stability
    scene = build_scene(hands, SceneConfig(gains=stiff))
    with pytest.raises(SolverError, match=r"diverged between motion frames (\d+) and \d+ \(motion time ") as err:
        replay(sinusoid_motion(scene, seconds=0.5), scene, physics=True)
    # the time is the motion's (frame / fps), not MuJoCo's d.time, which its bad-qacc reset sets back to 0
    k = int(err.value.args[0].split("between motion frames ")[1].split()[0])
    assert f"motion time {k / 30:.3f}-{(k + 1) / 30:.3f} s" in str(err.value)
    assert scene.model.opt.timestep == pytest.approx(0.002)  # restored after the failure


# --------------------------------------------------------------------------- framing and floor of a replay
def _project(scene, camera, points):
    """``(n, 2)`` image coordinates of world points ``(n, 3)`` (m) seen by ``camera`` of ``scene.data``:
    ``(0, 0)`` bottom-left, ``(1, 1)`` top-right (pinhole, the offscreen buffer's aspect; no OpenGL)."""
    m, d = scene.model, scene.data
    cid = m.camera(camera).id
    pc = (np.asarray(points) - d.cam_xpos[cid]) @ d.cam_xmat[cid].reshape(3, 3)  # x right, y up, -z forward
    depth = -pc[:, 2]
    assert (depth > 0).all(), f"{camera}: points behind the camera"
    tan_v = np.tan(np.radians(m.cam_fovy[cid]) / 2)
    tan_h = tan_v * m.vis.global_.offwidth / m.vis.global_.offheight
    return np.stack([0.5 + 0.5 * pc[:, 0] / (depth * tan_h), 0.5 + 0.5 * pc[:, 1] / (depth * tan_v)], axis=1)


@pytest.fixture(scope="module", params=["allegro_right", "shadow_right"])
def real_capture(request, dexmv_npz, dex_urdf_dir, tmp_path_factory):
    """The whole DexMV capture (a real right hand, world Z-up) retargeted to a dex-urdf hand, as the ROS
    tests and benchmarks read it (``dexmv_motion_file``), and the scene :func:`scene_for_motion` builds."""
    from handx_robot.retarget.bimanual import retarget_motion
    from ros_harness import dexmv_motion_file

    from handx_robot.readers import read_motion

    path = dexmv_motion_file(dexmv_npz, tmp_path_factory.mktemp("dexmv") / "dexmv.npz", 10_000)
    motion, _ = retarget_motion(read_motion(path), right_robot=request.param, assets=dex_urdf_dir)
    scene = scene_for_motion(motion, assets=dex_urdf_dir, config=SceneConfig(width=160, height=120))
    return motion, scene


def test_real_capture_no_hand_geometry_below_the_floor(real_capture):
    motion, scene = real_capture
    floor_z = float(scene.model.geom("handx/floor").pos[2])
    lowest = []  # per frame, the bottom of the hand's geometry (world-axis boxes of its geoms: conservative)
    kin = replay(motion, scene, on_frame=lambda k, sc: lowest.append(sc.robot_extent()[0][2]))
    assert len(lowest) == motion.num_frames
    assert min(lowest) >= floor_z  # every frame, not only sampled ones
    assert min(lowest) - floor_z <= FLOOR_CLEARANCE_M + 1e-9  # and the floor is right under the hands
    assert kin.metrics.hand_env_penetration.max() == 0.0
    phys = replay(motion, scene, physics=True)
    assert phys.metrics.hand_env_penetration.max() == 0.0


def test_real_capture_cameras_frame_the_hands(real_capture):
    motion, scene = real_capture
    res = replay(motion, scene)
    scene.forward()  # the cameras' poses (fixed in the world)
    tips = res.fingertips["right"].reshape(-1, 3)
    for camera in CAMERA_PRESETS:
        uv = _project(scene, camera, tips)
        assert (uv >= 0).all() and (uv <= 1).all(), f"{camera}: fingertips leave the image"
        height = np.ptp(uv[:, 1])  # the fingertips' projected box over the motion, fraction of the image height
        assert height > 0.15, f"{camera}: the hands fill only {100 * height:.0f} % of the image height"


def test_a_brief_dip_still_clears_the_floor(allegro_scene, dex_urdf_models):
    """One frame dips 10 cm (a fast move down between two neighbours): the floor goes under it too."""
    motion = sinusoid_motion(allegro_scene, seconds=100 / 30)
    h = motion.hands["right"]
    wrist = h.wrist_pose.copy()
    wrist[50, 2] -= 0.1
    dipped = RobotMotion(
        motion.fps, {**motion.hands, "right": HandTrajectory(h.robot, h.joint_names, h.qpos, wrist, h.converged)}
    )
    hands = {s: HandModel.from_path(dex_urdf_models / "allegro_hand" / f"allegro_hand_{s}.urdf", s) for s in ("left", "right")}
    scene = scene_for_motion(dipped, hands=hands)
    extent = motion_extent(scene, dipped)
    assert scene.model.geom("handx/floor").pos[2] == pytest.approx(extent.geometry_lo[2] - FLOOR_CLEARANCE_M)
    assert (extent.hands_lo >= extent.geometry_lo).all() and (extent.hands_hi <= extent.geometry_hi).all()
    assert replay(dipped, scene).metrics.hand_env_penetration.max() == 0.0


def test_the_floor_goes_under_a_table_and_a_table_in_the_way_is_reported(allegro_motion, dex_urdf_models, caplog):
    hands = {s: HandModel.from_path(dex_urdf_models / "allegro_hand" / f"allegro_hand_{s}.urdf", s) for s in ("left", "right")}
    low = TableConfig(height=0.05)
    scene = scene_for_motion(allegro_motion, hands=hands, config=SceneConfig(table=low))
    assert scene.model.geom("handx/floor").pos[2] <= low.height - low.thickness  # not through the table
    assert "table" not in caplog.text
    high = TableConfig(height=0.3)  # the hands' home height: they reach below its top
    with caplog.at_level("WARNING", logger="handx_robot.sim.replay"):
        scene = scene_for_motion(allegro_motion, hands=hands, config=SceneConfig(table=high))
    assert "below the table top" in caplog.text
    assert scene.model.geom("handx/floor").pos[2] <= high.height - high.thickness
