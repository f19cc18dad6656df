"""Scene builder and HandScene: real dex-urdf models and the built-in Shadow MJCF (no mocks)."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
from handx_robot.sim.scene import (
    BIT_ENV,
    GainConfig,
    HandModel,
    SceneConfig,
    TableConfig,
    build_scene,
    compose_poses,
    invert_pose,
)

from handx_robot.errors import ConfigError, ModelLoadError, MotionValueError, UnknownJointError

FAMILIES = ("allegro_hand", "inspire_hand", "leap_hand", "shadow_hand")


def _pair(dex_urdf_models, family):
    return [HandModel.from_path(dex_urdf_models / family / f"{family}_{s}.urdf", s) for s in ("left", "right")]


def _place(scene, gap=0.3):
    for s in scene.sides:
        x = -gap / 2 if s == "left" else gap / 2
        scene.set_joint_positions(s, {}, [x, 0.0, 0.3, 1, 0, 0, 0])
        scene.set_wrist_target(s, [x, 0.0, 0.3, 1, 0, 0, 0])
    scene.forward()


@pytest.mark.parametrize("family", FAMILIES)
def test_bimanual_scene_builds_for_every_dex_urdf_hand(dex_urdf_models, family):
    scene = build_scene(_pair(dex_urdf_models, family))
    m = scene.model
    assert scene.sides == ("left", "right")
    for side in scene.sides:
        act = scene.actuated_joint_names(side)
        mimic = scene.mimic_joints(side)
        assert len(act) + len(mimic) == len(scene.joint_names(side))
        assert not set(act) & set(mimic)
        for name in act:  # one position actuator per actuated joint, ctrlrange = joint range
            aid = m.actuator(f"{side}/{name}").id
            jid = m.joint(f"{side}/{name}").id
            np.testing.assert_allclose(m.actuator_ctrlrange[aid], m.jnt_range[jid])
        assert len(scene.fingertip_names(side)) >= 4
    assert m.nu == sum(len(scene.actuated_joint_names(s)) for s in scene.sides)
    # hands never collide with themselves, only with the other hand and the environment
    for g in range(m.ngeom):
        if m.geom_contype[g] and m.body_rootid[m.geom_bodyid[g]] != 0:
            assert m.geom_contype[g] & m.geom_conaffinity[g] == 0
            assert m.geom_conaffinity[g] & BIT_ENV


def test_inspire_mimic_joints_become_equalities_without_actuators(dex_urdf_models):
    scene = build_scene(_pair(dex_urdf_models, "inspire_hand")[1:])
    mimic = scene.mimic_joints("right")
    assert "index_intermediate_joint" in mimic
    leader, coef = mimic["index_intermediate_joint"]
    assert leader == "index_proximal_joint"
    np.testing.assert_allclose(coef[:2], [-0.04545, 1.06399])
    assert "index_intermediate_joint" not in scene.actuated_joint_names("right")
    scene.set_joint_positions("right", {"index_proximal_joint": 1.0})
    q = scene.joint_positions("right")
    assert q["index_intermediate_joint"] == pytest.approx(-0.04545 + 1.06399 * 1.0)


def test_allegro_inertia_fix_is_reported(dex_urdf_models):
    scene = build_scene(_pair(dex_urdf_models, "allegro_hand")[1:])
    assert any("balanceinertia" in f for f in scene.fixes["right"])


def test_gains_follow_inertia_and_overrides(dex_urdf_models):
    hands = _pair(dex_urdf_models, "allegro_hand")[1:]
    slow = build_scene(hands, SceneConfig(gains=GainConfig(bandwidth_hz=10.0)))
    fast = build_scene(hands, SceneConfig(gains=GainConfig(bandwidth_hz=20.0, overrides={"joint_0.0": (3.0, 0.1)})))
    g_slow, g_fast = slow.gains("right"), fast.gains("right")
    # kp ~ bandwidth^2 at the same inertia, kv ~ bandwidth
    assert g_fast["joint_1.0"][0] == pytest.approx(4 * g_slow["joint_1.0"][0], rel=1e-9)
    assert g_fast["joint_1.0"][1] == pytest.approx(2 * g_slow["joint_1.0"][1], rel=1e-9)
    assert g_fast["joint_0.0"] == (3.0, 0.1)
    aid = fast.model.actuator("right/joint_0.0").id
    assert fast.model.actuator_gainprm[aid, 0] == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="bandwidth_hz"):
        GainConfig(bandwidth_hz=-1)


def test_builtin_shadow_mjcf_left_and_right(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    hands = [HandModel.from_registry(f"shadow_builtin_{s}") for s in ("left", "right")]
    scene = build_scene(hands)
    for side in scene.sides:
        mimic = scene.mimic_joints(side)
        assert "robot0:FFJ0" in mimic and mimic["robot0:FFJ0"][0] == "robot0:FFJ1"  # coupling tendon
        assert len(scene.actuated_joint_names(side)) == 20
        assert len(scene.fingertip_names(side)) == 5  # sites S_*tip
        np.testing.assert_allclose(scene.T_base_root(side), [0, 0, 0, 1, 0, 0, 0])  # base = root body
    _place(scene, gap=0.5)
    tips_l, tips_r = scene.fingertip_array("left"), scene.fingertip_array("right")
    assert np.all(np.isfinite(tips_l)) and not np.allclose(tips_l, tips_r)


def test_wrist_pose_round_trip_with_rotated_root(dex_urdf_models):
    """The dex-urdf Shadow's root link is 'world' (merged by MuJoCo): its forearm sits rotated 90 deg."""
    scene = build_scene([HandModel.from_path(dex_urdf_models / "shadow_hand" / "shadow_hand_right.urdf", "right")])
    np.testing.assert_allclose(scene.T_base_root("right")[3:], [math.sqrt(0.5), 0, 0, math.sqrt(0.5)], atol=1e-4)
    pose = np.array([0.1, -0.2, 0.4, math.cos(0.3), 0.0, math.sin(0.3), 0.0])
    scene.set_joint_positions("right", {}, pose)
    scene.forward()
    np.testing.assert_allclose(scene.wrist_pose("right"), pose, atol=1e-9)
    mount = scene.base_to_mount("right", pose)
    np.testing.assert_allclose(scene.mount_to_base("right", mount), pose, atol=1e-12)
    free = scene.model.joint("handx/right/free").qposadr[0]
    np.testing.assert_allclose(scene.data.qpos[free : free + 7], mount, atol=1e-12)
    T = np.array([0.3, 0.1, -0.2, 0.9, 0.1, -0.3, 0.2])
    T[3:] /= np.linalg.norm(T[3:])
    np.testing.assert_allclose(compose_poses(T, invert_pose(T)), [0, 0, 0, 1, 0, 0, 0], atol=1e-12)


@pytest.mark.parametrize("robot_id", ["allegro_right", "inspire_right", "shadow_left", "shadow_builtin_right"])
def test_fingertips_match_the_retargeters_kinematics(robot_id, dex_urdf_dir, tmp_path, monkeypatch):
    """Same joint values and T_world_base -> same fingertips as handx_robot.retarget.kinematics (to 1e-9 m)."""
    from handx_robot.retarget.kinematics import load_tree, quat_wxyz_to_matrix
    from handx_robot.retarget.robots import fingertip_links, get_robot
    from handx_robot.sim.replay import replay
    from handx_robot.sim.synthetic import sinusoid_motion

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = get_robot(robot_id, assets=dex_urdf_dir)
    tree = load_tree(spec.model_path, spec.model_format)
    hand = HandModel.from_registry(robot_id, assets=dex_urdf_dir)
    scene = build_scene([hand])
    motion = sinusoid_motion(scene, seconds=0.2, wrist_yaw_rad=0.4)
    res = replay(motion, scene)
    traj = motion.hands[hand.side]
    _, p_base_link = tree.forward(np.stack([traj.column(n) for n in tree.dof_names], axis=1))
    for link in fingertip_links(spec).values():
        j = res.fingertip_names[hand.side].index(link)
        for t in range(traj.num_frames):
            w = traj.wrist_pose[t]
            expected = w[:3] + quat_wxyz_to_matrix(w[3:]) @ p_base_link[t, tree.link_index(link)]
            np.testing.assert_allclose(res.fingertips[hand.side][t, j], expected, atol=1e-9)


def test_hand_hand_and_table_contacts(dex_urdf_models):
    scene = build_scene(_pair(dex_urdf_models, "allegro_hand"), SceneConfig(table=TableConfig(height=0.2)))
    _place(scene, gap=0.4)
    c = scene.contacts()
    assert not c.hand_hand and c.hand_env_depth == 0.0
    _place(scene, gap=0.0)  # both hands at the same place: they interpenetrate
    c = scene.contacts()
    assert c.hand_hand and c.hand_hand_depth > 0.005
    scene.set_joint_positions("right", {}, [0.3, 0.0, 0.2, 1, 0, 0, 0])  # into the table top
    scene.set_joint_positions("left", {}, [-0.3, 0.0, 0.6, 1, 0, 0, 0])
    scene.forward()
    c = scene.contacts()
    assert not c.hand_hand and c.hand_env_depth > 0.0


def test_targets_by_name_step_and_reset(dex_urdf_models):
    scene = build_scene(_pair(dex_urdf_models, "allegro_hand")[1:])
    _place(scene)
    scene.set_targets("right", {"joint_1.0": 0.8, "joint_5.0": 0.6})
    scene.step(300)  # 0.6 s
    q = scene.joint_positions("right")
    assert q["joint_1.0"] == pytest.approx(0.8, abs=0.03)
    assert q["joint_5.0"] == pytest.approx(0.6, abs=0.03)
    assert np.linalg.norm(scene.wrist_pose("right")[:3] - [0.15, 0, 0.3]) < 0.002  # the weld holds it
    efforts = scene.joint_efforts("right")
    assert set(efforts) == set(scene.actuated_joint_names("right")) and np.isfinite(list(efforts.values())).all()
    assert scene.time == pytest.approx(300 * scene.model.opt.timestep)
    with pytest.raises(UnknownJointError, match="joint_99"):
        scene.set_targets("right", {"joint_99": 0.1})
    with pytest.raises(MotionValueError, match="joint_2.0"):
        scene.set_targets("right", {"joint_2.0": float("nan")})
    with pytest.raises(ConfigError, match="no 'left' hand"):
        scene.joint_positions("left")
    scene.reset()
    assert scene.joint_positions("right")["joint_1.0"] == pytest.approx(0.0)
    assert scene.data.time == 0.0


def test_bad_model_paths_raise_clear_errors(tmp_path, dex_urdf_models):
    with pytest.raises(ModelLoadError, match="not found"):
        build_scene([HandModel.from_path(tmp_path / "missing.urdf", "right")])
    bad = tmp_path / "bad.urdf"
    bad.write_text("<notarobot/>")
    with pytest.raises(ModelLoadError, match="<robot>"):
        build_scene([HandModel.from_path(bad, "right")])
    with pytest.raises(ConfigError, match="one hand per side"):
        hands = _pair(dex_urdf_models, "allegro_hand")
        build_scene([hands[1], hands[1]])
    with pytest.raises(ConfigError, match="side"):
        HandModel("x", "middle", tmp_path / "a.urdf", "urdf")


def test_panda_gripper_glb_visuals_dropped_collision_shown(dex_urdf_models):
    scene = build_scene([HandModel.from_path(dex_urdf_models / "panda_gripper" / "panda_gripper_glb.urdf", "right")])
    assert scene.actuated_joint_names("right") == ("panda_finger_joint1",)
    assert any("dropped" in f for f in scene.fixes["right"])
    m = scene.model
    drawn = [g for g in range(m.ngeom) if m.geom_group[g] == 2]
    assert drawn, "links without a readable visual mesh must draw their collision geoms"
    assert mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, "front") >= 0


def test_every_urdf_file_in_dex_urdf_builds(dex_urdf_models):
    """Every URDF of the snapshot, including the *_glb.urdf variants (glb visuals swapped or dropped)."""
    files = sorted(dex_urdf_models.glob("*/*.urdf"))
    assert len(files) >= 13
    for path in files:
        side = "left" if "left" in path.stem else "right"
        scene = build_scene([HandModel.from_path(path, side)])
        assert scene.model.nu == len(scene.actuated_joint_names(side)) > 0, path.name
        assert scene.fingertip_names(side), path.name
        if path.stem.endswith("_glb") and "panda" not in path.stem:
            assert any(".glb ->" in f for f in scene.fixes[side]), path.name


@pytest.mark.parametrize("name", ["front", "back", "left", "top", "closeup"])
def test_fit_camera_distance_fits_the_box_tightly(name):
    from handx_robot.sim.scene import camera_pose, fit_camera_distance

    lo, hi = np.array([-0.2, 0.1, 0.05]), np.array([0.25, 0.4, 0.3])
    fovy, aspect, margin = 45.0, 4 / 3, 1.1
    d = fit_camera_distance(name, lo, hi, fovy, aspect, margin)
    pos, quat = camera_pose(name, (lo + hi) / 2, d)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, quat)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    pc = (corners - pos) @ R.reshape(3, 3)
    depth = -pc[:, 2]
    assert (depth > 0).all()
    t = math.tan(math.radians(fovy) / 2)
    ndc = np.abs(np.stack([pc[:, 0] / (depth * t * aspect), pc[:, 1] / (depth * t)], axis=1))
    assert ndc.max() <= 1 / margin + 1e-9  # every corner inside, with the margin
    assert ndc.max() > 0.97 / margin  # and not from needlessly far away


def test_fit_camera_distance_rejects_bad_arguments():
    from handx_robot.sim.scene import fit_camera_distance

    with pytest.raises(ConfigError, match="presets"):
        fit_camera_distance("fisheye", np.zeros(3), np.ones(3))
    with pytest.raises(ConfigError, match="margin"):
        fit_camera_distance("front", np.zeros(3), np.ones(3), margin=0.5)
