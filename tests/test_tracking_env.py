"""HandXTracking-v0: Gymnasium / SB3 env checks, observation/action/reward semantics, backends, bad input.

Real MuJoCo scenes of the two built-in Shadow hands (gymnasium-robotics MJCF) and smooth sinusoid
clips inside the joint limits (no retargeter involved).
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from handx_robot.retarget.robot_motion import RobotMotion, save_robot_motion
from handx_robot.sim.backends.mujoco_backend import MujocoBackend, MujocoBackendConfig
from handx_robot.sim.scene import HandModel, build_scene
from handx_robot.sim.synthetic import sinusoid_motion
from handx_robot.sim.tracking_env import (
    ENV_ID,
    HandXTrackingEnv,
    RobotMismatchError,
    TrackingConfig,
    quat_conj,
    quat_from_rotvec,
    quat_mul,
    quat_to_rotvec,
    rollout,
)

from handx_robot.errors import (
    ConfigError,
    HandXError,
    MissingDependencyError,
    MotionFormatError,
    MotionValueError,
)

ROBOTS = ("shadow_builtin_left", "shadow_builtin_right")


@pytest.fixture(scope="module")
def hands():
    return [HandModel.from_registry(r) for r in ROBOTS]


@pytest.fixture(scope="module")
def clips(hands):
    scene = build_scene(hands)
    return [sinusoid_motion(scene, seconds=1.0, seed=0), sinusoid_motion(scene, seconds=1.2, seed=1, frequency_hz=0.8)]


@pytest.fixture(scope="module")
def env(clips):
    e = HandXTrackingEnv(clips)
    yield e
    e.close()


def _replace_hand(motion: RobotMotion, side: str, **changes) -> RobotMotion:
    hands = dict(motion.hands)
    hands[side] = dataclasses.replace(hands[side], **changes)
    return dataclasses.replace(motion, hands=hands)


# ------------------------------------------------------------------------------------- API checks
def test_registered_with_gymnasium():
    assert gym.spec(ENV_ID).entry_point == "handx_robot.sim.tracking_env:HandXTrackingEnv"


def test_gymnasium_and_sb3_check_env(clips):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(ENV_ID, motions=clips)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    assert env.observation_space.shape == (env.unwrapped.task.obs_dim,)
    env.close()


def test_vector_env(clips):
    venv = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", motions=clips)
    obs, info = venv.reset(seed=[1, 2])
    assert obs.shape == (2, venv.single_observation_space.shape[0])
    for _ in range(3):
        obs, rew, term, trunc, info = venv.step(np.zeros((2, venv.single_action_space.shape[0]), np.float32))
    assert rew.shape == (2,) and np.all(np.isfinite(rew)) and np.all(np.isfinite(obs))
    assert "tip_error" in info and info["tip_error"].shape == (2,)
    venv.close()


def test_reset_seeding_and_random_starts(env):
    o1, i1 = env.reset(seed=7)
    o2, i2 = env.reset(seed=7)
    np.testing.assert_array_equal(o1, o2)
    assert (i1["clip"], i1["frame"]) == (i2["clip"], i2["frame"])
    starts = {(env.reset(seed=s)[1]["clip"], env.reset(seed=s)[1]["frame"]) for s in range(8)}
    assert len(starts) > 3  # random clip and start frame
    with pytest.raises(ConfigError, match="start"):
        env.reset(options={"clip": 0, "start": 10_000})


# ------------------------------------------------------------------------------------- semantics
def test_observation_layout_and_values_at_reset(env, clips):
    task = env.task
    assert task.obs_fields[0].start == 0 and task.obs_fields[-1].stop == env.observation_space.shape[0]
    assert all(a.stop == b.start for a, b in zip(task.obs_fields, task.obs_fields[1:]))
    table = env.observation_table()
    assert "right_tip_err" in table and "ref3_left_drot" in table and "phase" in table
    obs, info = env.reset(options={"clip": 1, "start": 5})
    f = {x.name: obs[x.start : x.stop] for x in task.obs_fields}
    # teleported onto the reference: no fingertip error, reference joint deltas are the reference's own steps
    np.testing.assert_allclose(f["left_tip_err"], 0.0, atol=1e-6)
    np.testing.assert_allclose(f["right_tip_err"], 0.0, atol=1e-6)
    ref_q = clips[1].hands["right"].reordered(env.backend.scene.actuated_joint_names("right"))
    np.testing.assert_allclose(f["ref1_right_dq"], ref_q[6] - ref_q[5], atol=1e-5)
    np.testing.assert_allclose(f["ref2_right_dq"], ref_q[7] - ref_q[5], atol=1e-5)
    np.testing.assert_allclose(f["right_wrist_pos"], clips[1].hands["right"].wrist_pose[5, :3], atol=1e-6)
    assert f["phase"][0] == pytest.approx(5 / (clips[1].num_frames - 1))
    # wrist quaternions are canonical (w >= 0) for both hands (layout version 2; version 1 flipped the left one)
    assert f["left_wrist_quat"][0] >= 0 and f["right_wrist_quat"][0] >= 0
    assert env.signature()["layout_version"] == 2


def test_zero_action_tracks_and_reward_terms_sum(env):
    r = rollout(env, None, clip=0, start=0)
    assert r.success and len(r.frames) == env.bank.lengths[0] - 1
    assert r.tip_error.mean() < 0.01  # open-loop PD follows a smooth clip within 1 cm
    env.reset(options={"clip": 0, "start": 0})
    _, reward, _, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
    terms = [k for k in info if k.startswith("reward_")]
    assert set(terms) == {"reward_joint", "reward_tip", "reward_wrist", "reward_contact", "reward_smooth"}
    assert reward == pytest.approx(sum(info[k] for k in terms))
    assert 0 < info["reward_tip"] <= env.config.w_tip


def test_residual_action_offsets_targets_by_name(env, clips):
    env.reset(options={"clip": 0, "start": 3})
    names = env.backend.scene.actuated_joint_names("right")
    fields = {f.name: f for f in env.task.act_fields}
    j = names.index("robot0:FFJ2")
    a = np.zeros(env.action_space.shape, np.float32)
    a[fields["right_dq"].start + j] = -0.5
    a[fields["left_dpos"].start + 2] = 1.0
    env.task.apply_action(a[None])
    d, m = env.backend.datas[0], env.backend.model
    ref = clips[0].hands["right"].column("robot0:FFJ2")[4]
    lo, hi = m.actuator_ctrlrange[m.actuator("right/robot0:FFJ2").id]
    assert d.ctrl[m.actuator("right/robot0:FFJ2").id] == pytest.approx(np.clip(ref - 0.5 * env.config.finger_action_scale, lo, hi))
    mocap = m.body_mocapid[m.body("handx/left/wrist_target").id]
    expected = clips[0].hands["left"].wrist_pose[4, 2] + env.config.wrist_pos_action_scale
    assert d.mocap_pos[mocap, 2] == pytest.approx(expected)
    with pytest.raises(MotionValueError, match="NaN"):
        env.step(np.full(env.action_space.shape, np.nan, np.float32))


def test_constant_residual_offsets_the_simulated_joint(env, clips):
    """In physics, a held residual of -0.5 on FFJ3 settles the joint about 0.5 * scale below the reference."""
    env.reset(options={"clip": 1, "start": 0})
    j = env.backend.scene.actuated_joint_names("right").index("robot0:FFJ3")
    a = np.zeros(env.action_space.shape, np.float32)
    a[{f.name: f for f in env.task.act_fields}["right_dq"].start + j] = -0.5
    for _ in range(15):
        env.step(a)
    q = env.backend.read_state().qpos["right"][0, env.backend.layout.hands["right"].joint_names.index("robot0:FFJ3")]
    ref = clips[1].hands["right"].column("robot0:FFJ3")[15]
    assert q - ref == pytest.approx(-0.5 * env.config.finger_action_scale, abs=0.03)


def test_termination_when_lost_for_sustained_time(clips):
    cfg = TrackingConfig(terminate_tip_error=1e-4, terminate_after_s=2 / 30, random_start=False)
    env = HandXTrackingEnv(clips[:1], config=cfg)
    env.reset(seed=0)
    a = np.ones(env.action_space.shape, np.float32)
    done = [env.step(a)[2] for _ in range(3)]
    assert done[:1] == [False] and any(done[1:])
    cfg = dataclasses.replace(cfg, terminate_tip_error=1.0, episode_frames=4)
    env = HandXTrackingEnv(clips[:1], config=cfg)
    env.reset(seed=0)
    out = [env.step(np.zeros(env.action_space.shape, np.float32)) for _ in range(4)]
    assert [o[3] for o in out] == [False, False, False, True] and not any(o[2] for o in out)


# ------------------------------------------------------------------------------------- backends
def test_mujoco_backend_batch_matches_single(hands, clips):
    single = MujocoBackend(hands, num_envs=1)
    batch = MujocoBackend(hands, num_envs=2)
    assert single.layout.physics_dt == pytest.approx(1 / 30 / 6)
    lay = batch.layout
    m = clips[0]
    q = {s: np.stack([np.zeros(len(lay.hands[s].joint_names))] * 2) for s in lay.sides}
    for s in lay.sides:
        for i, n in enumerate(lay.hands[s].joint_names):
            if n in m.hands[s].joint_names:
                q[s][:, i] = m.hands[s].column(n)[0]
    w = {s: np.stack([m.hands[s].wrist_pose[0]] * 2) for s in lay.sides}
    w2 = {s: w[s].copy() for s in lay.sides}
    for s in lay.sides:
        w2[s][1, 2] += 0.05  # env 1 is 5 cm higher
    zero = {s: np.zeros_like(q[s]) for s in lay.sides}
    batch.set_state(None, q, zero, w2)
    single.set_state(None, {s: q[s][:1] for s in lay.sides}, {s: zero[s][:1] for s in lay.sides}, {s: w[s][:1] for s in lay.sides})
    tgt = {s: q[s][:, lay.hands[s].actuated_index] for s in lay.sides}
    batch.set_targets(tgt, w2)
    single.set_targets({s: tgt[s][:1] for s in lay.sides}, {s: w[s][:1] for s in lay.sides})
    for _ in range(3):
        batch.step()
        single.step()
    a, b = batch.read_state(), single.read_state()
    np.testing.assert_allclose(a.qpos["right"][0], b.qpos["right"][0], atol=1e-9)
    np.testing.assert_allclose(a.fingertips["left"][1] - a.fingertips["left"][0], np.tile([0, 0, 0.05], (5, 1)), atol=2e-3)
    assert not a.unstable.any() and a.hand_contact.shape == (2,)
    kin = single.kinematics({s: q[s][:1] for s in lay.sides}, {s: w[s][:1] for s in lay.sides})
    single.set_state(None, {s: q[s][:1] for s in lay.sides}, {s: zero[s][:1] for s in lay.sides}, {s: w[s][:1] for s in lay.sides})
    for s in lay.sides:  # kinematics agrees with the scene's own fingertip computation
        np.testing.assert_allclose(kin.fingertips[s][0], single.scene.fingertip_array(s, single.datas[0]), atol=1e-9)


def test_backend_config_rejects_unstable_settings():
    with pytest.raises(ConfigError, match="substeps"):
        MujocoBackendConfig(control_dt=1 / 30, substeps=2)
    with pytest.raises(ConfigError, match="bandwidth"):
        MujocoBackendConfig(control_dt=1 / 30, substeps=4, bandwidth_hz=40)


def test_each_backend_builds_its_own_config_from_the_tracking_config():
    from handx_robot.sim.backends.isaacgym_backend import (
        COLLISION_FILTER,
        IsaacGymConfig,
        ground_plane_distance,
    )

    tracking = TrackingConfig(substeps=8, bandwidth_hz=12.0, floor_height=0.05)
    mj = MujocoBackendConfig.from_tracking(tracking, control_dt=1 / 30, view_center=(0.0, 0.1, 0.2), view_distance=0.9)
    assert (mj.control_dt, mj.substeps, mj.bandwidth_hz, mj.floor_height) == (1 / 30, 8, 12.0, 0.05)
    assert (mj.view_center, mj.view_distance) == ((0.0, 0.1, 0.2), 0.9)
    ig = IsaacGymConfig.from_tracking(tracking, control_dt=1 / 30, view_center=(0, 0, 0), device="cuda:1", spacing=2.0)
    assert (ig.control_dt, ig.substeps, ig.bandwidth_hz, ig.floor_height) == (1 / 30, 8, 12.0, 0.05)
    assert (ig.device, ig.gpu_index, ig.spacing) == ("cuda:1", 1, 2.0)
    twin = ig.mujoco_twin()  # the CPU twin (gains, kinematics, depth) has the same clock, bandwidth and floor
    assert (twin.control_dt, twin.substeps, twin.bandwidth_hz, twin.floor_height) == (1 / 30, 8, 12.0, 0.05)
    assert ground_plane_distance(0.05) == -0.05
    assert COLLISION_FILTER["left"] & COLLISION_FILTER["right"] == 0 and all(COLLISION_FILTER.values())


def test_isaacgym_default_config_and_its_twin_are_valid():
    from handx_robot.sim.backends.isaacgym_backend import IsaacGymConfig

    cfg = IsaacGymConfig()
    twin = cfg.mujoco_twin()  # IsaacGymConfig() once built a twin that failed MujocoBackendConfig's validation
    assert twin.control_dt / twin.substeps <= 0.01 and 2 * np.pi * twin.bandwidth_hz * twin.control_dt / twin.substeps < 0.5
    with pytest.raises(ConfigError, match="IsaacGymConfig.*substeps"):
        IsaacGymConfig(substeps=2)
    with pytest.raises(ConfigError, match="IsaacGymConfig.device"):
        IsaacGymConfig(device="tpu")
    with pytest.raises(ConfigError, match="IsaacGymConfig.spacing"):
        IsaacGymConfig(spacing=0.0)


def test_a_backend_rejects_another_backends_config(hands):
    from handx_robot.sim.backends.isaacgym_backend import IsaacGymBackend, IsaacGymConfig

    with pytest.raises(ConfigError, match="config is a IsaacGymConfig.*MujocoBackendConfig"):
        MujocoBackend(hands, config=IsaacGymConfig())
    with pytest.raises(ConfigError, match="config is a MujocoBackendConfig.*IsaacGymConfig"):
        IsaacGymBackend(hands, config=MujocoBackendConfig())  # checked before isaacgym is imported


def test_backend_kwargs_reach_the_backend_or_fail_clearly(clips):
    from handx_robot.sim.tracking_env import HandXTrackingVecEnv

    env = HandXTrackingEnv(clips[:1], config=TrackingConfig(floor_height=-0.2), wrist_timeconst=0.03)
    assert env.backend.config.wrist_timeconst == 0.03 and env.backend.config.floor_height == -0.2
    env.close()
    with pytest.raises(ConfigError, match=r"unknown backend options \['bogus'\].*wrist_timeconst"):
        HandXTrackingEnv(clips[:1], bogus=1)
    with pytest.raises(ConfigError, match=r"\['substeps'\].*TrackingConfig"):
        HandXTrackingVecEnv(clips[:1], num_envs=1, substeps=8)
    with pytest.raises(ConfigError, match=r"unknown backend options \['bogus'\].*spacing"):
        HandXTrackingVecEnv(clips[:1], num_envs=2, backend="isaacgym", bogus=1)
    with pytest.raises(MissingDependencyError, match="Isaac Gym"):  # valid options reach the backend itself
        HandXTrackingVecEnv(clips[:1], num_envs=2, backend="isaacgym", device="cuda:0", spacing=2.0)


def test_isaacgym_hand_contact_is_the_twins_on_force_flagged_envs(hands, monkeypatch):
    """The Isaac Gym backend's hand-hand contact and depth: MuJoCo's (the CPU twin's) collision of the
    PhysX state, for the envs where both hands feel a net contact force; torch on the CPU stands in for
    the GPU tensors."""
    import torch
    from handx_robot.sim.backends import isaacgym_backend as igb

    monkeypatch.setattr(igb, "torch", torch, raising=False)
    twin = MujocoBackend(hands, 1, igb.IsaacGymConfig().mujoco_twin())
    backend = object.__new__(igb.IsaacGymBackend)
    backend.config, backend._cpu, backend.layout, backend.num_envs = igb.IsaacGymConfig(), twin, twin.layout, 3
    backend._hand_rbs = {"left": torch.arange(0, 2), "right": torch.arange(2, 4)}
    force = torch.zeros(3, 4, 3)
    force[0, [0, 2], 2] = 1.0  # env 0: both hands pushed; env 1: only the left; env 2: both
    force[1, 0, 2] = 1.0
    force[2, [1, 3], 0] = 1.0
    backend._force = force
    twin.reset()
    home = twin.read_state()
    lay = twin.layout
    overlap = np.array([0.0, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])  # both wrists at one point: the hands interpenetrate
    qpos = {s: np.repeat(home.qpos[s], 3, axis=0) for s in lay.sides}
    wpose = {s: np.stack([overlap, overlap, home.wrist_pose[s][0]]) for s in lay.sides}
    contact, depth = backend._hand_contact(qpos, wpose)
    want = twin.kinematics({s: qpos[s][:1] for s in lay.sides}, {s: wpose[s][:1] for s in lay.sides})
    assert want.hand_contact[0] and want.hand_hand_depth[0] > 1e-3
    np.testing.assert_array_equal(contact, [True, False, False])  # env 1: one hand only; env 2: apart
    np.testing.assert_allclose(depth, [want.hand_hand_depth[0], 0.0, 0.0], atol=1e-12)


def test_isaacgym_backend_is_lazy_and_explains(hands):
    import sys

    from handx_robot.sim.backends import BACKENDS
    from handx_robot.sim.backends.isaacgym_backend import IsaacGymBackend

    assert "isaacgym" not in sys.modules and "isaacgym" in BACKENDS
    with pytest.raises(MissingDependencyError, match="Isaac Gym"):
        IsaacGymBackend(hands, num_envs=2)


# ------------------------------------------------------------------------------------- bad input
def test_robot_mismatch_is_a_clear_error(clips):
    other = _replace_hand(clips[0], "right", robot="allegro_right")
    with pytest.raises(RobotMismatchError, match="allegro_right") as exc:
        HandXTrackingEnv([clips[0], other])
    assert isinstance(exc.value, HandXError) and "Retarget" in str(exc.value)
    one_hand = dataclasses.replace(clips[0], hands={"right": clips[0].hands["right"]})
    with pytest.raises(RobotMismatchError, match="hands"):
        HandXTrackingEnv([clips[0], one_hand])


def test_joint_mismatch_lists_missing_joints(clips):
    h = clips[0].hands["right"]
    keep = [n for n in h.joint_names if n != "robot0:FFJ2"]
    bad = _replace_hand(clips[0], "right", joint_names=tuple(keep), qpos=h.reordered(keep))
    with pytest.raises(RobotMismatchError, match="robot0:FFJ2"):
        HandXTrackingEnv([bad])


def test_missing_motion_file_and_fps_mismatch(tmp_path, clips):
    with pytest.raises(MotionFormatError, match="nope.npz"):
        HandXTrackingEnv([str(tmp_path / "nope.npz")])
    save_robot_motion(clips[0], tmp_path / "a.npz")
    env = HandXTrackingEnv([str(tmp_path / "a.npz")])  # a file works like an object
    assert env.bank.names == [str(tmp_path / "a.npz")]
    fast = dataclasses.replace(clips[1], fps=60.0)
    with pytest.raises(ConfigError, match="fps"):
        HandXTrackingEnv([clips[0], fast])


def test_quaternion_helpers_match_scipy():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    v = rng.normal(size=(20, 3))
    q = quat_from_rotvec(v)
    np.testing.assert_allclose(q, Rotation.from_rotvec(v).as_quat(scalar_first=True), atol=1e-12)
    r = Rotation.from_quat(q, scalar_first=True)
    np.testing.assert_allclose(quat_to_rotvec(q), r.as_rotvec(), atol=1e-10)
    p = quat_mul(q, quat_conj(q[::-1]))
    np.testing.assert_allclose(np.abs(p), np.abs((r * r[::-1].inv()).as_quat(scalar_first=True)), atol=1e-12)
    np.testing.assert_allclose(quat_to_rotvec(np.array([1.0, 0, 0, 0])), 0.0)


def test_backend_wrist_poses_are_T_world_base_for_a_turned_robot_root(dex_urdf_dir):
    """The dex-urdf Shadow's root is turned 90 deg in its mount: the backend takes and returns
    T_world_base (as the motions and the replay do) and moves the mount; fingertips agree with the
    replay's placement (``HandScene`` with ``base_to_mount``)."""
    import mujoco

    backend = MujocoBackend([HandModel.from_registry("shadow_right", str(dex_urdf_dir))])
    h = backend.scene._hand("right")
    assert not np.allclose(h.T_base_root[3:], [1, 0, 0, 0])  # the case under test
    rng = np.random.default_rng(4)
    limits = backend.scene.joint_limits("right")
    lo, hi = np.array([limits[n] for n in h.joint_names]).T
    q = {"right": np.clip(rng.normal(0, 0.3, (1, len(h.joint_names))), lo, hi)}
    quat = rng.normal(size=4)
    pose = {"right": np.concatenate([[0.1, -0.05, 0.3], quat / np.linalg.norm(quat)])[None]}
    twist = {"right": np.array([[0.2, -0.1, 0.05, 1.0, -0.5, 2.0]])}
    backend.set_state(None, q, {"right": np.zeros_like(q["right"])}, pose, twist)
    st = backend.read_state()
    got = st.wrist_pose["right"][0]
    np.testing.assert_allclose(got[:3], pose["right"][0, :3], atol=1e-9)
    assert abs(abs(got[3:] @ pose["right"][0, 3:]) - 1.0) < 1e-9  # same rotation (q or -q)
    np.testing.assert_allclose(st.wrist_vel["right"][0], twist["right"][0], atol=1e-9)
    # fingertips: the backend's kinematics and state vs the replay's placement of the same frame
    d = mujoco.MjData(backend.model)
    d.qpos[h.qadr] = q["right"][0]
    d.qpos[h.free_qadr : h.free_qadr + 7] = h.base_to_mount(pose["right"][0])
    mujoco.mj_kinematics(backend.model, d)
    want = backend.scene.fingertip_array("right", d)
    np.testing.assert_allclose(backend.kinematics(q, pose).fingertips["right"][0], want, atol=1e-9)
    np.testing.assert_allclose(st.fingertips["right"][0], want, atol=1e-9)
