"""Offscreen rendering (real EGL/OSMesa) and the replay CLI end to end."""

from __future__ import annotations

import numpy as np
import pytest
from handx_robot.retarget.robot_motion import save_robot_motion
from handx_robot.sim.scene import HandModel, SceneConfig, build_scene
from handx_robot.sim.synthetic import root_poses, sinusoid_motion

from handx_robot.app.cli import main
from handx_robot.errors import ConfigError, MissingDependencyError


@pytest.fixture(scope="module")
def scene(dex_urdf_models):
    hands = [HandModel.from_path(dex_urdf_models / "allegro_hand" / f"allegro_hand_{s}.urdf", s) for s in ("left", "right")]
    return build_scene(hands, SceneConfig(view_center=(0.0, 0.0, 0.35), view_distance=0.6))


@pytest.fixture(scope="module")
def renderer(scene):
    from handx_robot.sim.render import OffscreenRenderer

    try:
        r = OffscreenRenderer(scene.model, 160, 120)
    except MissingDependencyError as exc:  # pragma: no cover - machines without any GL
        pytest.skip(f"no offscreen OpenGL: {exc}")
    yield r
    r.close()


def test_rendered_frames_are_not_blank_and_change_with_the_pose(scene, renderer):
    for s, x in (("left", -0.12), ("right", 0.12)):
        scene.set_joint_positions(s, {n: 0.0 for n in scene.actuated_joint_names(s)}, [x, 0, 0.35, 1, 0, 0, 0])
    scene.forward()
    a = renderer.render(scene.data, "front")
    assert a.shape == (120, 160, 3) and a.dtype == np.uint8
    assert a.std() > 10  # not a flat image
    limits = scene.joint_limits("right")
    closed = {n: limits[n][1] * 0.9 for n in scene.actuated_joint_names("right")}
    scene.set_joint_positions("right", closed, [0.05, 0, 0.3, 0.92, 0.39, 0, 0])
    scene.forward()
    b = renderer.render(scene.data, "front")
    diff = np.abs(a.astype(int) - b.astype(int)).sum(axis=2)
    assert (diff > 30).mean() > 0.005  # a visible part of the image changed
    assert not np.allclose(a.mean(axis=(0, 1)), b.mean(axis=(0, 1)), atol=0.05)
    c = renderer.render(scene.data, "top")
    assert np.abs(c.astype(int) - b.astype(int)).mean() > 1  # another camera sees another image


def test_unknown_camera_lists_the_cameras(renderer):
    with pytest.raises(ConfigError, match="cameras: front, back, left, right, top, closeup"):
        renderer.camera_id("nope")


def test_render_size_must_fit_the_buffer(scene):
    from handx_robot.sim.render import OffscreenRenderer

    with pytest.raises(ConfigError, match="offscreen buffer"):
        OffscreenRenderer(scene.model, 4000, 3000)


@pytest.fixture(scope="module")
def motion_file(dex_urdf_dir, tmp_path_factory):
    hands = [HandModel.from_registry(f"allegro_{s}", assets=dex_urdf_dir) for s in ("left", "right")]
    motion = sinusoid_motion(build_scene(hands), seconds=0.3, fps=30.0)
    return save_robot_motion(motion, tmp_path_factory.mktemp("m") / "allegro.npz")


def test_cli_physics_video_and_metrics(motion_file, dex_urdf_dir, tmp_path, capsys):
    import imageio.v2 as imageio

    video, metrics = tmp_path / "out.mp4", tmp_path / "m.json"
    rc = main([
        "replay", str(motion_file), "--physics", "--video", str(video), "--metrics", str(metrics),
        "--assets", str(dex_urdf_dir), "--width", "160", "--height", "120", "--camera", "top", "--no-progress",
        "--table-height", "0.05",
    ])
    assert rc == 0
    out = capsys.readouterr().out
    assert "hand-environment 0.0 mm" in out  # the table is below the hands
    assert "physics replay: 9 frames" in out and "real-time factor" in out
    reader = imageio.get_reader(str(video))
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == 9 and frames[0].shape == (120, 160, 3)
    assert metrics.is_file() and '"mode": "physics"' in metrics.read_text()


def test_cli_errors_are_one_line_and_helpful(motion_file, dex_urdf_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["replay", str(motion_file), "--viewer", "--assets", str(dex_urdf_dir)]) == 1
    assert "--video" in capsys.readouterr().err
    rc = main(["replay", str(motion_file), "--camera", "ceiling", "--assets", str(dex_urdf_dir), "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "ceiling" in err and "front" in err and "closeup" in err
    assert main(["replay", str(tmp_path / "none.npz"), "--no-progress"]) == 1
    assert "not found" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.mp4"))


FAMILY_IDS = {
    "allegro": ("allegro_left", "allegro_right"),
    "leap": ("leap_left", "leap_right"),
    "inspire": ("inspire_left", "inspire_right"),
    "shadow": ("shadow_left", "shadow_right"),
    "shadow_builtin": ("shadow_builtin_left", "shadow_builtin_right"),
    "panda_gripper": ("panda_gripper", "panda_gripper"),
}


@pytest.mark.parametrize("family", sorted(FAMILY_IDS))
def test_every_hand_replays_bimanually_and_renders(family, request, tmp_path, monkeypatch):
    from handx_robot.sim.render import OffscreenRenderer
    from handx_robot.sim.replay import replay, scene_for_motion

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the mirrored built-in Shadow is cached there
    left, right = FAMILY_IDS[family]
    assets = None if family == "shadow_builtin" else request.getfixturevalue("dex_urdf_dir")
    hands = {
        "left": HandModel.from_registry(left, assets=assets, side="left"),
        "right": HandModel.from_registry(right, assets=assets, side="right"),
    }
    probe = build_scene(list(hands.values()))
    poses = root_poses(probe, {"left": (-0.15, 0.0, 0.3), "right": (0.15, 0.0, 0.3)})
    motion = sinusoid_motion(probe, seconds=0.3, wrist_poses=poses, wrist_yaw_rad=0.05)
    scene = scene_for_motion(motion, hands=hands, config=SceneConfig(width=160, height=120))
    kin = replay(motion, scene, physics=False)
    assert max(kin.metrics.fingertip_error[s].max() for s in ("left", "right")) < 1e-9
    try:
        renderer = OffscreenRenderer(scene.model, 160, 120)
    except MissingDependencyError as exc:  # pragma: no cover - machines without any GL
        pytest.skip(f"no offscreen OpenGL: {exc}")
    frames = []
    phys = replay(motion, scene, physics=True, on_frame=lambda k, sc: frames.append(renderer.render(sc.data, "front")))
    renderer.option.geomgroup[1:4] = 0  # hide the robots: the background alone
    background = renderer.render(scene.data, "front")
    renderer.close()
    for s in ("left", "right"):
        assert phys.metrics.fingertip_error[s].mean() < 0.01
        assert np.isfinite(phys.qpos[s]).all()
    assert len(frames) == motion.num_frames and frames[0].std() > 5
    robot_pixels = np.abs(frames[-1].astype(int) - background.astype(int)).sum(axis=2) > 30
    assert robot_pixels.mean() > 0.01  # the framed hands cover a visible part of the image


def test_real_motion_end_to_end_side_by_side(dexmv_npz, dex_urdf_dir, tmp_path, capsys):
    """DexMV human hand -> retarget (allegro) -> physics replay video with the human skeleton alongside."""
    import imageio.v2 as imageio
    from handx_robot.retarget.bimanual import retarget_motion
    from handx_robot.retarget.robot_motion import HandTrajectory, RobotMotion

    from handx_robot.readers import read_motion

    human = read_motion(dexmv_npz, hand="right")
    full, _ = retarget_motion(human, right_robot="allegro_right", assets=dex_urdf_dir)
    h = full.hands["right"]
    n = 12
    short = RobotMotion(
        full.fps,
        {"right": HandTrajectory(h.robot, h.joint_names, h.qpos[:n], h.wrist_pose[:n], h.converged[:n])},
        full.text,
        full.source_joints[:n],
    )
    path = save_robot_motion(short, tmp_path / "dexmv_allegro.npz")
    video, metrics = tmp_path / "sbs.mp4", tmp_path / "m.json"
    rc = main([
        "replay", str(path), "--physics", "--video", str(video), "--side-by-side", "--metrics", str(metrics),
        "--assets", str(dex_urdf_dir), "--width", "160", "--height", "120", "--no-progress",
    ])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "contact F1: n/a (contact F1 needs both human hands)" in out
    reader = imageio.get_reader(str(video))
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == n and frames[0].shape == (120, 280, 3)  # robot 160 + square skeleton panel 120
    assert frames[0][:, 160:].std() > 5  # the skeleton panel is drawn
    import json

    summary = json.loads(metrics.read_text())["summary"]
    assert summary["hands"]["right"]["fingertip_error_m"]["mean"] < 0.01


def _two_hands(xy_left, xy_right, z=0.35):
    """(1, 2, 21, 3) world keypoints: two small 'hands' (3 cm blobs) around the given (x, y)."""
    off = np.random.default_rng(1).uniform(-0.03, 0.03, (21, 3)).astype(np.float32)
    sj = np.zeros((1, 2, 21, 3), np.float32)
    sj[0, 0] = np.array([*xy_left, z], np.float32) + off
    sj[0, 1] = np.array([*xy_right, z], np.float32) + off
    return sj


def _colour_centroid_x(img, hex_colour):
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    mask = np.abs(img.astype(int) - rgb).sum(axis=2) < 60
    assert mask.sum() > 20, f"no {hex_colour} pixels drawn"
    return np.nonzero(mask)[1].mean()


@pytest.mark.parametrize("camera", ["front", "back", "left"])
def test_skeleton_panel_shows_the_robot_cameras_viewpoint(scene, renderer, camera):
    from handx_robot.sim.render import SideBySide, camera_rotation

    from handx_robot.render import HAND_COLOURS

    sj = _two_hands((-0.15, -0.1), (0.15, 0.1))
    sbs = SideBySide(sj, 120, 160, R_world_cam=camera_rotation(scene.model, camera))
    try:
        panel = sbs.compose(np.zeros((120, 160, 3), np.uint8), 0)[:, 160:]
    finally:
        sbs.close()
    left_x = _colour_centroid_x(panel, HAND_COLOURS["left"])
    right_x = _colour_centroid_x(panel, HAND_COLOURS["right"])
    scene.forward()
    uv = renderer.project(scene.data, camera, sj[0, :, 0])  # where the robot camera sees the two wrists
    assert abs(uv[0, 0] - uv[1, 0]) > 0.05
    assert (left_x < right_x) == (uv[0, 0] < uv[1, 0])  # same hand on the same side in both panels


def test_project_puts_the_view_centre_in_the_middle_and_hides_points_behind(scene, renderer):
    scene.forward()
    cid = renderer.camera_id("front")
    centre = np.array([0.0, 0.0, 0.35])  # the scene fixture's view_center
    behind = scene.data.cam_xpos[cid] - 0.5 * (centre - scene.data.cam_xpos[cid])
    uv = renderer.project(scene.data, "front", np.stack([centre, behind]))
    np.testing.assert_allclose(uv[0], [0.5, 0.5], atol=1e-6)
    assert np.isnan(uv[1]).all()


def test_hand_labels_name_each_hand_without_overlapping(scene, renderer):
    from handx_robot.sim.render import LABEL_RGB, hand_labels

    for gap in (0.04, 0.3):  # clapping hands and hands apart
        for s, x in (("left", -gap / 2), ("right", gap / 2)):
            scene.set_joint_positions(s, {}, [x, 0.0, 0.35, 1, 0, 0, 0])
        scene.forward()
        labels = hand_labels(renderer, scene, "front")
        assert [t for t, _, _ in labels] == ["left", "right"]  # the front camera sees the left hand on the left
        assert all(rgb == LABEL_RGB[t] for t, _, rgb in labels)
        (_, (u0, v0), _), (_, (u1, v1), _) = labels
        assert u0 + len("left") * 15.0 / renderer.width <= u1 + 1e-9
        assert 0 <= min(u0, u1, v0, v1) and max(u0, u1, v0, v1) <= 1
    frame = renderer.render(scene.data, "front", labels)
    plain = renderer.render(scene.data, "front")
    assert np.abs(frame.astype(int) - plain.astype(int)).sum(axis=2).astype(bool).sum() > 30  # text drawn


def test_side_by_side_rejects_a_non_rotation():
    from handx_robot.sim.render import SideBySide

    with pytest.raises(ConfigError, match="rotation"):
        SideBySide(_two_hands((-0.1, 0), (0.1, 0)), 120, 160, R_world_cam=np.ones((3, 3)))


def test_side_by_side_marks_the_humans_contacts_in_red():
    from handx_robot.sim.render import SideBySide

    sj = np.repeat(_two_hands((-0.15, 0.0), (0.15, 0.0)), 12, axis=0)
    sj[:, 1, 16] = sj[:, 1, 17]  # right thumb tip on the right index tip: a pinch for 0.4 s

    def red_pixels(fps):
        sbs = SideBySide(sj, 120, 160, fps=fps)
        try:
            img = sbs.compose(np.zeros((120, 160, 3), np.uint8), 6)[:, 160:]
        finally:
            sbs.close()
        return int(((img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] < 90)).sum())

    assert red_pixels(30.0) > red_pixels(None) + 10
