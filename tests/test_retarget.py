"""Retargeting: round trips for every shipped config, limits, convergence flags, streaming, the
dex-retargeting reference, bimanual wrist placement, and the CLI with the built-in Shadow hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from handx_robot.retarget.bimanual import retarget_hand, retarget_motion
from handx_robot.retarget.robot_motion import load_robot_motion
from handx_robot.retarget.robots import get_robot, list_robots
from handx_robot.retarget.solver import HandProblem, SolverOptions, StreamingRetargeter, solve_sequence

from handx_robot.app import cli
from handx_robot.errors import MotionValueError
from handx_robot.handframe import wrist_transform
from handx_robot.keypoints import mediapipe_to_handx
from handx_robot.motion import BimanualMotion, save_motion

ASSET_IDS = [
    "allegro_right", "allegro_left", "leap_right", "leap_left", "inspire_right", "inspire_left",
    "shadow_right", "shadow_left", "panda_gripper", "allegro_right@dexpilot", "inspire_left@dexpilot",
]  # fmt: skip
BUILTIN_IDS = ["shadow_builtin_right", "shadow_builtin_left"]


def _synth(prob: HandProblem, q: np.ndarray) -> np.ndarray:
    """Human-like keypoints (T, 21, 3) (HandX, wrist frame) whose targets the robot reaches at ``q``."""
    _, p = prob.tree.forward(q)
    x = p[:, prob.links]
    kp_base = np.zeros((q.shape[0], 21, 3))
    if prob.type == "position":
        kp_base[:, prob.human_index] = x[:, prob._pos_t]
    else:
        kp_base[:, prob.human_index[0]] = x[:, prob._pos_o] / prob.scaling
        kp_base[:, prob.human_index[1]] = x[:, prob._pos_t] / prob.scaling
    return kp_base @ prob.R_wrist_base.T + prob.p_wrist_base


def _smooth_q(prob: HandProblem, T: int, seed: int, lo=0.3, hi=0.7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(lo, hi, (2, prob.tree.num_dof))
    s = np.linspace(0, 1, T)[:, None]
    span_lo, span_hi = np.maximum(prob.lower, -1.0), np.minimum(prob.upper, 1.0)
    q = span_lo + (span_hi - span_lo) * (a + (b - a) * s)
    fixed = np.setdiff1d(np.arange(prob.tree.num_dof), prob.free)
    q[:, fixed] = prob.q_fixed[fixed]
    if prob.free_base:
        q[:, :6] = rng.uniform(-0.05, 0.05, 6)
    return q


def _round_trip(spec, T=6):
    prob = HandProblem(spec)
    q = _smooth_q(prob, T, seed=7, lo=0.35, hi=0.65)
    kp = _synth(prob, q)
    res = solve_sequence(prob, kp, SolverOptions(temporal_weight=1e-5))
    _, p_true = prob.tree.forward(q)
    _, p_got = prob.tree.forward(res.q)
    links = prob.task_links
    if prob.type != "position":  # vectors are relative to the origin links
        rel = lambda p: p[:, links] - p[:, prob.origin_links]  # noqa: E731
        err = np.linalg.norm(rel(p_true) - rel(p_got), axis=-1)
    else:
        err = np.linalg.norm(p_true[:, links] - p_got[:, links], axis=-1)
    assert np.all(res.qpos.shape == (T, len(prob.joint_names)))
    assert np.all((res.q >= prob.lower - 1e-12) & (res.q <= prob.upper + 1e-12))
    return float(err.mean()), res


@pytest.mark.parametrize("robot_id", ASSET_IDS)
def test_round_trip_asset_configs(robot_id, dex_urdf_dir):
    err, res = _round_trip(get_robot(robot_id, dex_urdf_dir))
    assert err < 0.01, f"{robot_id}: mean target error {err * 1000:.2f} mm"  # < 1 cm
    assert res.converged.mean() >= 0.5


@pytest.mark.parametrize("robot_id", BUILTIN_IDS)
def test_round_trip_builtin_configs(robot_id):
    err, res = _round_trip(get_robot(robot_id))
    assert err < 0.01, f"{robot_id}: mean target error {err * 1000:.2f} mm"
    assert res.converged.all()


def test_position_variant_round_trip(dex_urdf_dir):
    err, _ = _round_trip(get_robot("allegro_right@position", dex_urdf_dir), T=4)
    assert err < 0.01


def test_limits_hold_and_failures_are_flagged():
    prob = HandProblem(get_robot("shadow_builtin_right"))
    q = _smooth_q(prob, 5, seed=1)
    kp = _synth(prob, q) * 3.0  # a giant hand: unreachable targets
    res = solve_sequence(prob, kp, SolverOptions(max_iterations=1, ftol=1e-14))
    assert np.all((res.q >= prob.lower) & (res.q <= prob.upper))
    assert res.num_failed > 0  # one iteration cannot reach 1e-14: said so, not passed off as good
    res = solve_sequence(prob, kp)
    assert np.all((res.q >= prob.lower) & (res.q <= prob.upper))
    with pytest.raises(MotionValueError, match="NaN"):
        solve_sequence(prob, np.full((3, 21, 3), np.nan))


def test_streaming_warm_start_tracks_offline():
    prob = HandProblem(get_robot("shadow_builtin_right"))
    q = _smooth_q(prob, 12, seed=4, lo=0.35, hi=0.65)
    kp = _synth(prob, q)
    off = solve_sequence(prob, kp)
    st = StreamingRetargeter(prob, SolverOptions(low_pass=False))
    objs = [st.step(kp[t])[2] for t in range(len(kp))]
    assert st.num_frames == 12 and st.num_failed <= 2
    # huber(d) = d^2 / (2 * 0.02) below 2 cm: 1e-4 <=> a mean vector error of 2 mm
    assert np.mean(objs) < 1e-4 and off.objective.mean() < 1e-4
    qpos, _, _ = st.step(kp[-1])
    assert qpos.shape == (len(st.joint_names),)


def _dexmv_world(dexmv_npz, T=30):
    joints = np.asarray(np.load(dexmv_npz)["joints"], dtype=np.float64)[:T]
    return mediapipe_to_handx(joints)


def test_reference_solver_side_by_side(dexmv_npz, dex_urdf_dir):
    pytest.importorskip("dex_retargeting.optimizer", exc_type=ImportError,
                        reason="dex-retargeting's solver (the dex extra) is not usable here")
    kp = _dexmv_world(dexmv_npz, 20)
    spec = get_robot("allegro_right", dex_urdf_dir)
    ours = retarget_hand(kp, "right", spec, options=SolverOptions(low_pass=False))
    ref = retarget_hand(kp, "right", spec, solver="dex-retargeting", options=SolverOptions(low_pass=False))
    assert ours.result.qpos.shape == ref.result.qpos.shape
    # same objective, evaluated identically on both solutions: ours no worse than 1.05x
    assert ours.result.objective.mean() <= 1.05 * ref.result.objective.mean()


def test_reference_solver_refuses_mjcf():
    from handx_robot.errors import ConfigError

    kp = np.tile(np.eye(21, 3) * 0.05, (3, 1, 1)) + np.linspace(0, 0.1, 21)[None, :, None]
    with pytest.raises(ConfigError, match="URDF"):
        retarget_hand(kp, "right", "shadow_builtin_right", solver="dex-retargeting")


def _bimanual(dexmv_npz, T=24) -> BimanualMotion:
    right = _dexmv_world(dexmv_npz, T).astype(np.float32)
    right = right - right[:1, :1] + np.array([0.12, 0.0, 0.0], dtype=np.float32)
    left = right.copy()
    left[..., 0] *= -1.0
    return BimanualMotion(np.stack([left, right], axis=1), fps=30.0, text="test")


def test_bimanual_wrists_follow_humans(dexmv_npz):
    motion = _bimanual(dexmv_npz)
    rm, report = retarget_motion(motion, "shadow_builtin_left", "shadow_builtin_right")
    assert rm.sides == ("left", "right")
    world = motion.in_frame("world_zup")
    for h, side in enumerate(("left", "right")):
        traj = rm.hands[side]
        # the robot palm (wrist_match_link) sits on the human wrist keypoint, world Z-up
        spec = get_robot(f"shadow_builtin_{side}")
        prob = HandProblem(spec)
        _, p = prob.tree.forward(prob.tree.dof_from_model_q(traj.qpos, traj.joint_names))
        from handx_robot.retarget.kinematics import quat_wxyz_to_matrix

        R = quat_wxyz_to_matrix(traj.wrist_pose[:, 3:])
        palm = np.einsum("tab,tb->ta", R, p[:, prob.tree.link_index("robot0:palm")]) + traj.wrist_pose[:, :3]
        np.testing.assert_allclose(palm, world.joints[:, h, 0], atol=1e-5)
        # orientation follows the human wrist frame through the calibration
        T_ww = wrist_transform(world.joints[:, h].astype(np.float64), side)
        np.testing.assert_allclose(R, T_ww[:, :3, :3] @ prob.R_wrist_base, atol=1e-5)
    hands = report["hands"]
    for side in ("left", "right"):
        assert hands[side]["joint_limit_violations"]["count"] == 0
        failed = np.flatnonzero(~rm.hands[side].converged)  # the robot motion's own flags
        nc = hands[side]["non_converged_frames"]
        assert nc["count"] == len(failed) and nc["first"] == failed[:20].tolist()
        assert nc["fraction"] == pytest.approx(len(failed) / motion.num_frames)
        assert 0.0 <= hands[side]["contact_f1"]["f1"] <= 1.0
        assert len(hands[side]["objective"]["values"]) == motion.num_frames
    # the humans' hands stay >= 5 cm apart (wrists ~24 cm): the robots' must not interpenetrate
    pen = report["bimanual"]["interpenetration"]
    assert pen["frames_checked"] == motion.num_frames > 0  # every frame (fewer than MAX_COLLISION_FRAMES)
    assert pen["max_depth_m"] <= 1e-3, pen  # metres


def test_missing_hand_is_skipped_and_logged(dexmv_npz, caplog):
    motion = _bimanual(dexmv_npz, 12).replace(present=np.array([False, True]))
    with caplog.at_level("INFO"):
        rm, report = retarget_motion(motion, "shadow_builtin_left", "shadow_builtin_right")
    assert rm.sides == ("right",) and set(report["hands"]) == {"right"}
    assert any("no left hand" in r.getMessage() for r in caplog.records)


def test_cli_builtin_shadow_without_assets(dexmv_npz, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HANDX_ROBOT_ASSETS", raising=False)
    src = tmp_path / "motion.npz"
    save_motion(_bimanual(dexmv_npz, 16), src)
    out, metrics = tmp_path / "robot.npz", tmp_path / "metrics.json"
    assert cli.main(["retarget", str(src), "--robot", "shadow", "-o", str(out), "--metrics", str(metrics)]) == 0
    rm = load_robot_motion(out)
    assert rm.hands["left"].robot == "shadow_builtin_left" and rm.hands["right"].robot == "shadow_builtin_right"
    assert rm.hands["right"].wrist_pose.shape == (16, 7) and rm.source_joints.shape == (16, 2, 21, 3)
    rep = json.loads(metrics.read_text())
    assert set(rep["hands"]) == {"left", "right"} and rep["hands"]["right"]["frames_per_second"] > 0
    assert "wrote" in capsys.readouterr().out


def test_cli_retarget_reads_a_one_hand_capture_with_the_reader_options(dexmv_npz, tmp_path, capsys):
    """``retarget`` reads what ``convert`` reads, with the same options: a one-hand MediaPipe capture needs --hand
    (the error says so, and the option now exists on this command), and its camera frame --frame camera."""
    out = tmp_path / "robot.npz"
    assert cli.main(["retarget", str(dexmv_npz), "--robot", "shadow", "-o", str(out)]) == 1
    assert "--hand left or --hand right" in capsys.readouterr().err and not out.exists()
    assert cli.main(["retarget", str(dexmv_npz), "--hand", "right", "--frame", "camera", "--robot", "shadow",
                     "-o", str(out), "--no-progress"]) == 0  # fmt: skip
    rm = load_robot_motion(out)
    assert rm.sides == ("right",) and rm.hands["right"].qpos.shape[0] == 122
    # one hand goes through the solve too (its fingers, its own contacts); the summary says so, without rows
    # for a second hand
    text = capsys.readouterr().out
    assert "solve (one hand):" in text and "finger-finger penetration" in text, text
    assert "hand-hand penetration" not in text and "inter-hand" not in text, text


def test_cli_errors_and_robot_list(tmp_path, capsys, dex_urdf_dir):
    assert cli.main(["robots", "--json", "--assets", str(dex_urdf_dir)]) == 0
    listed = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["allegro_right"]["available"] and not listed["ability_left"]["available"]
    assert len(list_robots(dex_urdf_dir)) == len(listed)
    src = tmp_path / "m.npz"
    save_motion(BimanualMotion(np.random.default_rng(0).normal(0, 0.03, (4, 2, 21, 3))), src)
    assert cli.main(["retarget", str(src), "--robot", "robonaut_right", "-o", str(tmp_path / "o.npz")]) == 1
    assert "known ids" in capsys.readouterr().err


@pytest.mark.parametrize("robot_id", ["shadow_builtin_right", "allegro_right", "inspire_right"])
def test_robot_fingers_point_like_the_human_in_world(robot_id, dexmv_npz, request):
    """Frames and calibration: the robot's wrist->fingertip directions match the human's (world Z-up)."""
    from handx_robot.retarget.report import robot_fingertips_world

    from handx_robot.keypoints import FINGERTIPS

    assets = None if robot_id.startswith("shadow_builtin") else request.getfixturevalue("dex_urdf_dir")
    kp = _dexmv_world(dexmv_npz, 20)
    hr = retarget_hand(kp, "right", robot_id, assets=assets, options=SolverOptions(low_pass=False))
    fingers, tips, wrist = robot_fingertips_world(hr)
    for i, f in enumerate(fingers):
        vr, vh = tips[:, i] - wrist, kp[:, FINGERTIPS[f]] - kp[:, 0]
        cos = (vr * vh).sum(-1) / np.linalg.norm(vr, axis=-1) / np.linalg.norm(vh, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 15.0, f"{robot_id} {f}"


FUSED_IDS = ["allegro_right@position", "inspire_left@dexpilot", "shadow_right", "leap_left", "panda_gripper"]


@pytest.mark.parametrize("robot_id", FUSED_IDS + BUILTIN_IDS)
def test_compiled_terms_match_numpy(robot_id, request):
    """The numba pass (FK, Jacobians, objective, gradient, both Hessian terms) equals the batched numpy
    path: vector / position (free base) / DexPilot objectives, URDF mimics, MJCF tendons and anchors."""
    from handx_robot.retarget.kinematics import HAVE_FUSED

    if not HAVE_FUSED:
        pytest.skip("compiled kernels off (numba missing or HANDX_NUMBA=0)")
    assets = request.getfixturevalue("dex_urdf_dir") if robot_id in FUSED_IDS else None
    prob = HandProblem(get_robot(robot_id, assets))
    rng = np.random.default_rng(3)
    q = prob.initial_q(5)
    q[:, prob.free] += rng.normal(size=(5, len(prob.free))) * 0.3
    ref, w, _ = prob.reference(_synth(prob, q) + rng.normal(size=(5, 21, 3)) * 0.02)
    fused = prob.data_terms(q, ref, w)
    numpy_path = prob.data_terms(q, ref, w, kin=prob.kinematics(q))  # given kinematics: numpy
    for a, b, what in zip(fused, numpy_path, ("cost", "gradient", "Gauss-Newton", "second-order")):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(b).max(), err_msg=what)
    if robot_id != "panda_gripper":  # prismatic fingers: no second-order term
        assert np.abs(fused[3]).max() > 0  # exercised, not trivially zero
    np.testing.assert_allclose(prob.data_terms(q, ref, w, need_grad=False)[0], numpy_path[0], rtol=1e-9)


@pytest.mark.parametrize("robot_id", ["allegro_right@position", "inspire_left@dexpilot", "leap_left", "shadow_builtin_right"])
def test_compiled_walk_matches_lm_frame_by_frame(robot_id, request, monkeypatch):
    """The default offline method's compiled walk gives the iterates of :func:`lm` run frame by frame (each from
    and toward its predecessor): the same joints, convergence flags and iteration counts, with joints at their
    limits and a motion the robot cannot follow exactly."""
    from handx_robot.retarget.solver import walk as walk_mod

    if walk_mod._walk_kernel is None:
        pytest.skip("compiled kernels off (numba missing or HANDX_NUMBA=0)")
    assets = None if "builtin" in robot_id else request.getfixturevalue("dex_urdf_dir")
    prob = HandProblem(get_robot(robot_id, assets))
    rng = np.random.default_rng(4)
    q = _smooth_q(prob, 30, seed=4, lo=0.0, hi=1.0)  # from one limit toward the other
    ref, w, _ = prob.reference(_synth(prob, q) + rng.normal(size=(30, 21, 3)) * 0.01)
    opts = SolverOptions()
    start = prob.initial_q(1)[0]
    compiled = walk_mod.walk(prob, ref, w, prob.normal_delta, opts, start)
    monkeypatch.setattr(walk_mod, "_walk_kernel", None)
    monkeypatch.setattr(walk_mod, "newton_kernel", None)
    reference = walk_mod.walk(prob, ref, w, prob.normal_delta, opts, start)
    np.testing.assert_allclose(compiled[0], reference[0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(compiled[1], reference[1])
    np.testing.assert_array_equal(compiled[2], reference[2])
    assert np.any(np.isclose(compiled[0][:, prob.free], prob.lower[prob.free]) | np.isclose(compiled[0][:, prob.free], prob.upper[prob.free]))


def test_compiled_newton_step_matches_numpy():
    """The compiled per-frame LM step equals the batched numpy step: active set at limits, Newton vs
    Gauss-Newton choice for indefinite blocks, projected second phase, trust region."""
    from handx_robot.retarget.solver import newton, step_kernel

    if step_kernel.newton_kernel is None:
        pytest.skip("compiled kernels off (numba missing or HANDX_NUMBA=0)")
    rng = np.random.default_rng(5)
    N, m = 12, 7
    B = rng.normal(size=(N, m, m))
    H_d = B @ B.transpose(0, 2, 1) * 0.1
    T_d = rng.normal(size=(N, m, m)) * 0.02
    T_d = T_d + T_d.transpose(0, 2, 1)
    T_d[:3] *= 40  # some frames indefinite: Gauss-Newton there, no convergence claim
    lo, hi = -np.ones(m), np.ones(m)
    qf = rng.uniform(-0.9, 0.9, (N, m))
    qf[4, 0], qf[5, 1] = lo[0], hi[1]  # at limits
    g = rng.normal(size=(N, m))
    g[4, 0], g[5, 1] = 1.0, -1.0  # pushing outward: frozen
    qf[6:9] = 0.95  # steps run through the upper limits: second phase
    g[6:9] = -2.0
    h_t = np.full(N, 0.008)
    mu = np.full(N, 1e-3)
    step_c, pred_c, bad_c = step_kernel.newton_kernel(H_d, T_d, h_t, g, qf, lo, hi, mu, step_kernel.MAX_STEP)
    step_n, pred_n, bad_n = newton.newton_step_numpy(H_d, T_d, h_t, g, qf, lo, hi, mu, 0.004, False)
    np.testing.assert_allclose(step_c, step_n, rtol=1e-7, atol=1e-10)
    assert np.array_equal(np.isinf(pred_c), np.isinf(pred_n)) and np.isinf(pred_c).sum() >= 1
    fin = np.isfinite(pred_n)
    np.testing.assert_allclose(pred_c[fin], pred_n[fin], rtol=1e-7)
    assert np.array_equal(bad_c, bad_n)
    assert np.all(qf[6:9] + step_c[6:9] <= hi + 1e-12)
    assert step_c[4, 0] == 0.0 and step_c[5, 1] == 0.0
    # the compiled LU used where a damped block is not positive definite
    M, b = rng.normal(size=(m, m)), rng.normal(size=m)
    x = np.empty(m)
    step_kernel._lu_solve(M, b, np.empty((m, m)), x)
    np.testing.assert_allclose(x, np.linalg.solve(M, b), rtol=1e-9)


def test_base_offset_is_the_free_joint_pose(dex_urdf_dir):
    """``base_offset`` (Rx @ Ry @ Rz of the dummy rotations, then their translation) is the pose the
    kinematic tree gives the last dummy link: the free base's convention, checked against FK."""
    prob = HandProblem(get_robot("allegro_right@position", dex_urdf_dir))
    assert prob.free_base
    q = prob.initial_q(6)
    q[:, :6] = np.random.default_rng(8).uniform(-2.0, 2.0, (6, 6))
    R, p = prob.tree.forward(q)
    k = prob.tree.link_index("dummy_z_rotation_link")
    T = prob.base_offset(q)
    np.testing.assert_allclose(T[:, :3, :3], R[:, k], atol=1e-12)
    np.testing.assert_allclose(T[:, :3, 3], p[:, k], atol=1e-12)  # metres
    np.testing.assert_allclose(T[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (6, 1)))


def test_coupled_method_round_trip():
    """method 'coupled' (block-tridiagonal Newton over the chunk, numpy step, compiled terms) fits too."""
    prob = HandProblem(get_robot("shadow_builtin_right"))
    q = _smooth_q(prob, 40, seed=2, lo=0.35, hi=0.65)
    kp = _synth(prob, q)
    seg = solve_sequence(prob, kp, SolverOptions(temporal_weight=1e-5))
    cpl = solve_sequence(prob, kp, SolverOptions(temporal_weight=1e-5, method="coupled"))
    assert np.all((cpl.q >= prob.lower) & (cpl.q <= prob.upper))
    assert cpl.converged.mean() >= 0.9 and seg.converged.mean() >= 0.9
    assert cpl.objective.mean() < 1e-4 and seg.objective.mean() < 1e-4  # ~2 mm mean vector error


def test_the_old_method_name_is_read_as_the_walk():
    """'segments' (the default until 2026-12) is read as 'sequential' with a warning; an unknown method is refused."""
    from handx_robot.errors import ConfigError

    with pytest.warns(FutureWarning, match="now 'sequential'"):
        assert SolverOptions(method="segments").method == "sequential"
    with pytest.raises(ConfigError, match="allowed: 'sequential', 'coupled'"):
        SolverOptions(method="parallel")


def test_cli_methods_keep_the_joints_smooth(dex_urdf_dir, tmp_path, capsys):
    """The default method walks the frames in order, each from its predecessor: on an Allegro clap its joints
    are as smooth as dex-retargeting's (the method it replaced, segments walked in parallel, jumped where each
    began: 10x the acceleration) at the same objective. ``--method coupled`` solves the whole clip's temporal
    term jointly: under half of that acceleration, at no worse an objective. ``--method`` is the handx
    solver's: refused with dex-retargeting."""
    from handx_robot.generate import generate

    src = tmp_path / "clap.npz"
    save_motion(generate("clap three times", seed=0), src)
    try:  # the comparison with dex-retargeting where its solver is usable (not in the minimum-versions run)
        import dex_retargeting.optimizer  # noqa: F401

        runs = ("sequential", "coupled", "dex-retargeting")
    except ImportError:
        runs = ("sequential", "coupled")
    acc, obj = {}, {}
    for run in runs:
        out, metrics = tmp_path / f"{run}.npz", tmp_path / f"{run}.json"
        how = ["--solver", run] if run == "dex-retargeting" else ["--method", run]
        assert cli.main(["retarget", str(src), "--robot", "allegro", "--assets", str(dex_urdf_dir), "--interaction", "off",
                         *how, "-o", str(out), "--metrics", str(metrics), "--no-progress"]) == 0  # fmt: skip
        rm = load_robot_motion(out)
        acc[run] = np.mean([np.sqrt(np.mean((np.diff(h.qpos, 2, axis=0) * rm.fps**2) ** 2)) for h in rm.hands.values()])
        obj[run] = np.mean([h["objective"]["mean"] for h in json.loads(metrics.read_text())["hands"].values()])
    if "dex-retargeting" in acc:
        assert acc["sequential"] <= 1.1 * acc["dex-retargeting"], acc
        assert obj["sequential"] <= obj["dex-retargeting"] * 1.01, obj
    assert acc["coupled"] < 0.5 * acc["sequential"], acc
    assert obj["coupled"] <= obj["sequential"] * 1.01, obj
    capsys.readouterr()
    assert cli.main(["retarget", str(src), "--robot", "allegro", "--assets", str(dex_urdf_dir), "--solver", "dex-retargeting",
                     "--method", "coupled", "-o", str(tmp_path / "x.npz")]) == 1  # fmt: skip
    assert "--method is the handx solver's" in capsys.readouterr().err
