"""Robot registry: ids, asset layouts, built-in Shadow (and its mirror), config errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from handx_robot.retarget.kinematics import load_tree
from handx_robot.retarget.robots import (
    ASSETS_ENV,
    RobotRegistry,
    fingertip_links,
    get_robot,
    list_robots,
    resolve_robot,
    resolve_robot_ids,
)

from handx_robot.errors import ConfigError, ModelLoadError, UnknownRobotError


def test_unknown_id_lists_known_ids():
    with pytest.raises(UnknownRobotError) as exc:
        get_robot("allegro_middle")
    msg = str(exc.value)
    for rid in ("allegro_right", "leap_left", "inspire_right", "shadow_builtin_left", "panda_gripper"):
        assert rid in msg


def test_builtin_shadow_needs_no_assets(monkeypatch):
    monkeypatch.delenv("HANDX_ROBOT_ASSETS", raising=False)
    spec = get_robot("shadow_builtin_right")
    assert spec.model_format == "mjcf" and spec.side == "right"
    assert spec.source.startswith("builtin:gymnasium-robotics")
    # coupled distal joints J0 are not independent
    assert "robot0:FFJ1" in spec.joint_names and "robot0:FFJ0" not in spec.joint_names
    assert len(spec.joint_names) == 20
    tips = fingertip_links(spec)
    assert tips["thumb"] == "robot0:S_thtip" and tips["pinky"] == "robot0:S_lftip"


def test_builtin_left_is_mirror_of_right():
    r, l_ = get_robot("shadow_builtin_right"), get_robot("shadow_builtin_left")
    tr, tl = load_tree(r.model_path), load_tree(l_.model_path)
    assert tr.dof_names == tl.dof_names
    q = np.random.default_rng(0).uniform(tr.dof_lower, tr.dof_upper, (4, tr.num_dof))
    Rr, pr = tr.forward(q)
    Rl, pl = tl.forward(q)
    S = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(pl, pr * np.diag(S), atol=1e-6)  # metres
    np.testing.assert_allclose(Rl, S @ Rr @ S, atol=1e-5)


def test_asset_layouts(dex_urdf_dir, tmp_path):
    spec = get_robot("allegro_right", dex_urdf_dir)
    assert spec.model_path.name == "allegro_hand_right.urdf" and spec.config["type"] == "vector"
    assert spec.source.startswith("assets:")
    # the dex-urdf repository layout: DIR/robots/hands/...
    hands = tmp_path / "robots" / "hands"
    hands.mkdir(parents=True)
    (hands / "leap_hand").symlink_to(dex_urdf_dir / "leap_hand")
    assert get_robot("leap_left", tmp_path).model_path.name == "leap_hand_left.urdf"
    with pytest.raises(ModelLoadError, match="allegro_hand_right.urdf"):
        get_robot("allegro_right", tmp_path)


def test_env_var_assets(dex_urdf_dir, monkeypatch):
    monkeypatch.setenv("HANDX_ROBOT_ASSETS", str(dex_urdf_dir))
    assert get_robot("inspire_right").model_path.is_file()
    infos = {i.id: i for i in list_robots()}
    assert infos["inspire_right"].available and not infos["ability_right"].available
    assert "asset directory" in infos["ability_right"].reason


def test_inspire_mimic_joints(dex_urdf_dir):
    spec = get_robot("inspire_right", dex_urdf_dir)
    assert len(spec.joint_names) == 6  # 12 revolute joints, 6 mimic
    assert spec.joint_names == tuple(spec.config["target_joint_names"]) or set(spec.joint_names) == set(
        spec.config["target_joint_names"]
    )


def test_variants(dex_urdf_dir):
    assert get_robot("allegro_right@dexpilot", dex_urdf_dir).config["type"] == "dexpilot"
    assert get_robot("shadow_right@position", dex_urdf_dir).config.get("add_dummy_free_joint") is True
    with pytest.raises(UnknownRobotError, match="variant"):
        get_robot("allegro_right@fancy", dex_urdf_dir)


def _user_robot(tmp_path: Path, dex_urdf_models: Path, link: str) -> Path:
    shutil.copy(dex_urdf_models / "allegro_hand" / "allegro_hand_right.urdf", tmp_path / "my_hand.urdf")
    cfg = tmp_path / "my_hand_right.yml"
    cfg.write_text(
        "retargeting:\n  type: vector\n  urdf_path: my_hand.urdf\n"
        f"  target_origin_link_names: [wrist, wrist]\n  target_task_link_names: [{link}, link_3.0_tip]\n"
        "  target_link_human_indices: [[0, 0], [4, 8]]\n  scaling_factor: 1.6\n"
    )
    return cfg


def test_user_yaml_as_id(tmp_path, dex_urdf_models):
    cfg = _user_robot(tmp_path, dex_urdf_models, "link_15.0_tip")
    spec = get_robot(str(cfg))
    assert spec.side == "right" and spec.source.startswith("user:")
    reg = RobotRegistry()
    reg.register("mine", tmp_path / "my_hand.urdf", cfg, side="right")
    assert reg.get("mine").joint_names == spec.joint_names


def test_config_naming_missing_link(tmp_path, dex_urdf_models):
    cfg = _user_robot(tmp_path, dex_urdf_models, "no_such_tip")
    with pytest.raises(ModelLoadError) as exc:
        get_robot(str(cfg))
    assert "no_such_tip" in str(exc.value) and "my_hand.urdf" in str(exc.value) and str(cfg) in str(exc.value)


def test_bad_config_type(tmp_path):
    cfg = tmp_path / "x_right.yml"
    cfg.write_text("retargeting:\n  type: magic\n  urdf_path: x.urdf\n")
    with pytest.raises(ConfigError, match="magic"):
        get_robot(str(cfg))


def test_broken_urdf_names_file(tmp_path):
    (tmp_path / "bad.urdf").write_text("<robot name='x'><link name='a'/><joint name='j' type='revolute'>")
    cfg = tmp_path / "bad_right.yml"
    cfg.write_text(
        "retargeting:\n  type: position\n  urdf_path: bad.urdf\n  target_link_names: [a]\n"
        "  target_link_human_indices: [4]\n"
    )
    with pytest.raises(ModelLoadError, match="bad.urdf"):
        get_robot(str(cfg))


def test_resolve_shorthand(monkeypatch, dex_urdf_models):
    monkeypatch.delenv("HANDX_ROBOT_ASSETS", raising=False)
    assert resolve_robot_ids("shadow", None, None) == {"left": "shadow_builtin_left", "right": "shadow_builtin_right"}
    assert resolve_robot_ids("shadow", None, None, assets=dex_urdf_models) == {
        "left": "shadow_left",
        "right": "shadow_right",
    }
    assert resolve_robot_ids("allegro_right", None, None) == {"right": "allegro_right"}
    assert resolve_robot_ids(None, "leap_left", "allegro_right") == {"left": "leap_left", "right": "allegro_right"}
    with pytest.raises(ConfigError):
        resolve_robot_ids("shadow", "leap_left", None)


@pytest.mark.parametrize("side", ["right", "left"])
def test_builtin_shadow_is_the_hand_from_the_wrist_up(side):
    """The gymnasium-robotics forearm shell is removed (it sat where the operator's forearm is and made
    two hands interpenetrate at a clap); the chain, wrist joints and masses stay."""
    import mujoco
    from handx_robot.retarget.robots import (
        BUILTIN_SHADOW_DROPPED_GEOMS,
        BUILTIN_SHADOW_NONCOLLIDING_GEOMS,
        builtin_shadow_model,
    )

    m = mujoco.MjModel.from_xml_path(str(builtin_shadow_model(side)))
    names = {m.geom(i).name for i in range(m.ngeom)}
    assert not names & set(BUILTIN_SHADOW_DROPPED_GEOMS)
    assert {"robot0:C_wrist", "robot0:V_wrist", "robot0:C_palm0", "robot0:V_palm"} <= names
    assert m.body("robot0:forearm").mass[0] == pytest.approx(4.0)
    assert m.body("robot0:hand mount").mass[0] == pytest.approx(0.1)
    for j in ("robot0:WRJ1", "robot0:WRJ0"):
        assert m.joint(j).type[0] == mujoco.mjtJoint.mjJNT_HINGE
    for g in BUILTIN_SHADOW_NONCOLLIDING_GEOMS:
        assert m.geom(g).contype[0] == 0 and m.geom(g).conaffinity[0] == 0
    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)
    # everything that collides lies at or beyond the wrist housing along the hand's z (toward the fingers)
    wrist = m.body("robot0:wrist").id
    z = d.xmat[wrist].reshape(3, 3)[:, 2]
    colliding = (m.geom_contype > 0) | (m.geom_conaffinity > 0)
    reach = (d.geom_xpos[colliding] - d.xpos[wrist]) @ z
    assert reach.min() > -0.03, reach.min()


def test_builtin_shadow_config_closes_the_robot_pinch_when_the_human_pinches():
    """The built-in configs carry thumb-tip -> fingertip vectors, so a human pinch is a robot pinch."""
    from handx_robot.retarget.bimanual import retarget_motion

    from handx_robot.generate import generate

    motion = generate("pinch with the right thumb and index finger", seed=0)
    _, report = retarget_motion(motion, "shadow_builtin_left", "shadow_builtin_right")
    f1 = report["hands"]["right"]["contact_f1"]
    assert f1["human_events"] >= 1
    assert f1["robot_events"] == f1["human_events"] and f1["f1"] == pytest.approx(1.0)
    spec = get_robot("shadow_builtin_right")
    origins = spec.config["target_origin_link_names"]
    assert origins.count("robot0:S_thtip") == 4


# -- resolve_robot: the built-in stand-in of simulation without assets (README: --robot shadow_right --mode sim)
@pytest.mark.parametrize(("robot_id", "builtin"), [("shadow_right", "shadow_builtin_right"),
                                                   ("shadow_left@dexpilot", "shadow_builtin_left")])  # fmt: skip
def test_resolve_robot_sim_falls_back_to_builtin_with_a_note(robot_id, builtin, monkeypatch):
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    spec, note = resolve_robot(robot_id, mode="sim")
    assert spec.id == builtin and spec.model_format == "mjcf" and spec.source.startswith("builtin:")
    assert spec.side == builtin.rsplit("_", 1)[1]
    assert "\n" not in note and repr(robot_id) in note and repr(builtin) in note
    assert "--assets DIR" in note and ASSETS_ENV in note
    if "@" in robot_id:
        assert "dexpilot variant needs the assets" in note
    assert resolve_robot(robot_id)[0].id == builtin  # mode 'sim' is the default


@pytest.mark.parametrize("robot_id", ["shadow_right", "allegro_left", "panda_gripper"])
def test_resolve_robot_real_mode_never_substitutes(robot_id, monkeypatch):
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    with pytest.raises(ModelLoadError) as exc:
        resolve_robot(robot_id, mode="real")
    msg = str(exc.value)
    assert repr(robot_id) in msg and "--assets DIR" in msg and ASSETS_ENV in msg
    assert "joint names" in msg and "hardware" in msg


@pytest.mark.parametrize("robot_id", ["allegro_right", "leap_left@dexpilot", "schunk_svh_right", "panda_gripper"])
def test_resolve_robot_sim_refuses_families_without_builtin(robot_id, monkeypatch):
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    with pytest.raises(ModelLoadError) as exc:
        resolve_robot(robot_id, mode="sim")
    msg = str(exc.value)
    assert repr(robot_id) in msg and "--assets DIR" in msg and ASSETS_ENV in msg
    assert "no built-in" in msg and "shadow_builtin_left/right" in msg


@pytest.mark.parametrize("mode", ["sim", "real"])
def test_resolve_robot_with_assets_is_get_robot(mode, dex_urdf_dir, monkeypatch):
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    for rid in ("shadow_right", "allegro_left@dexpilot", "panda_gripper"):
        spec, note = resolve_robot(rid, dex_urdf_dir, mode=mode)
        ref = get_robot(rid, dex_urdf_dir)
        assert note is None and spec.id == rid and spec.model_path == ref.model_path
        assert spec.joint_names == ref.joint_names and spec.source == ref.source
    # the environment variable counts as an asset directory
    monkeypatch.setenv(ASSETS_ENV, str(dex_urdf_dir))
    spec, note = resolve_robot("shadow_left", mode=mode)
    assert note is None and spec.id == "shadow_left" and spec.model_format == "urdf"
    # a model missing from the given directory is get_robot's error, never a silent stand-in
    with pytest.raises(ModelLoadError, match="not found"):
        resolve_robot("ability_right", dex_urdf_dir, mode=mode)
    # ids that are not dex-urdf hands are unchanged in both modes
    spec, note = resolve_robot("shadow_builtin_right", mode=mode)
    assert spec.id == "shadow_builtin_right" and note is None


def test_resolve_robot_errors(monkeypatch):
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    with pytest.raises(ConfigError, match="allowed: sim, real"):
        resolve_robot("shadow_right", mode="hardware")
    with pytest.raises(UnknownRobotError, match="known ids"):
        resolve_robot("robonaut_right")


def test_without_dex_retargeting_the_builtin_hands_still_serve(monkeypatch, tmp_path):
    """dex-retargeting (the 'dex' extra) ships the dex-urdf hands' configs. Without it those hands are
    listed as unavailable with the fix, their side still comes from the id, and simulation without an
    asset directory uses the built-in hand (ROS 2 installs that skip the extra)."""
    from handx_robot.retarget.robots import registry, robot_side

    def missing():
        raise ModelLoadError("dex-retargeting is not installed (pip install 'handx_robot[dex]')")

    monkeypatch.setattr(registry, "dex_config_dir", missing)
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    assert robot_side("shadow_right") == "right" and robot_side("panda_gripper") == "any"
    infos = {info.id: info for info in list_robots()}
    assert not infos["allegro_right"].available and "handx_robot[dex]" in infos["allegro_right"].reason
    assert infos["shadow_builtin_left"].available
    spec, note = resolve_robot("shadow_right", mode="sim")
    assert spec.id == "shadow_builtin_right" and "built-in" in note
    with pytest.raises(ModelLoadError, match=r"handx_robot\[dex\]"):
        get_robot("allegro_right", tmp_path)
