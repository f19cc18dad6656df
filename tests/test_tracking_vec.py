"""HandXTrackingVecEnv (many envs on one batched backend) and the MJX backend.

Real scenes of the two built-in Shadow hands, smooth sinusoid clips. The MJX tests run MuJoCo XLA
on the CPU at a batch of 2 (one jit compilation of the step; its cost: benchmarks/tracking_env_speed.py): the backend must
agree with MuJoCo's C engine step for step, and the vector env built on it must give the same
observations and rewards as the one on the CPU backend.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from handx_robot.sim.backends import BACKENDS, make_backend
from handx_robot.sim.scene import HandModel, build_scene
from handx_robot.sim.synthetic import sinusoid_motion
from handx_robot.sim.tracking_env import ENV_ID, HandXTrackingVecEnv, TrackingConfig

from handx_robot.errors import ConfigError

ROBOTS = ("shadow_builtin_left", "shadow_builtin_right")


@pytest.fixture(scope="module")
def clips():
    scene = build_scene([HandModel.from_registry(r) for r in ROBOTS])
    return [sinusoid_motion(scene, seconds=1.0, seed=0), sinusoid_motion(scene, seconds=1.2, seed=1, frequency_hz=0.8)]


# --------------------------------------------------------------------------- vector env (CPU backend)
def test_make_vec_uses_the_batched_env_and_same_step_autoreset(clips):
    cfg = TrackingConfig(episode_frames=3)
    venv = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", motions=clips, config=cfg)
    assert isinstance(venv.unwrapped, HandXTrackingVecEnv)
    obs, info = venv.reset(seed=7)
    n_obs, n_act = venv.single_observation_space.shape[0], venv.single_action_space.shape[0]
    assert obs.shape == (3, n_obs) and venv.action_space.shape == (3, n_act)
    zero = np.zeros((3, n_act), np.float32)
    for k in range(1, 4):
        obs, rew, term, trunc, info = venv.step(zero)
        assert rew.shape == (3,) and np.isfinite(rew).all() and np.isfinite(obs).all()
        total = sum(info[t] for t in ("reward_joint", "reward_tip", "reward_wrist", "reward_contact", "reward_smooth"))
        np.testing.assert_allclose(total, rew, rtol=1e-6)
        if k < 3:
            assert not (term | trunc).any() and "final_obs" not in info
    # episode_frames=3: every env is truncated on the 3rd step and reset inside it
    assert trunc.all() and not term.any()
    assert info["_final_obs"].all() and info["final_obs"].shape == (3, n_obs)
    assert not np.allclose(info["final_obs"], obs)  # the returned observation starts the new episode
    assert (venv.unwrapped.task.steps == 0).all()
    venv.close()


def test_vec_env_matches_single_envs(clips):
    """The batched env computes what single envs compute, env by env (CPU backend)."""
    from handx_robot.sim.tracking_env import HandXTrackingEnv

    cfg = TrackingConfig(random_start=False)
    venv = HandXTrackingVecEnv(clips, num_envs=2, config=cfg)
    venv.reset(seed=0)
    clips_used = venv.task.clip.copy()
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-0.5, 0.5, (2, venv.single_action_space.shape[0])).astype(np.float32) for _ in range(4)]
    for a in actions:
        vobs, vrew, *_ = venv.step(a)
    for i in range(2):
        env = HandXTrackingEnv(clips, config=cfg)
        env.reset(options={"clip": int(clips_used[i]), "start": 0})
        for a in actions:
            obs, rew, *_ = env.step(a[i])
        np.testing.assert_allclose(vobs[i], obs, rtol=1e-5, atol=1e-6)
        assert vrew[i] == pytest.approx(rew, rel=1e-6)
        env.close()
    venv.close()


def test_vec_env_bad_input(clips):
    with pytest.raises(ConfigError, match="num_envs"):
        HandXTrackingVecEnv(clips, num_envs=0)
    with pytest.raises(ConfigError, match="unknown simulator backend 'physx'.*mujoco"):
        HandXTrackingVecEnv(clips, num_envs=2, backend="physx")
    venv = HandXTrackingVecEnv(clips, num_envs=2)
    with pytest.raises(ConfigError, match="reset"):
        venv.step(np.zeros(venv.action_space.shape, np.float32))
    venv.close()


# --------------------------------------------------------------------------- MJX
@pytest.fixture(scope="module")
def mjx_pair(clips):
    pytest.importorskip("jax")
    cfg = TrackingConfig(random_start=False)
    cpu = HandXTrackingVecEnv(clips, num_envs=2, config=cfg, backend="mujoco")
    mjx = HandXTrackingVecEnv(clips, num_envs=2, config=cfg, backend="mjx", device="cpu")  # a backend option
    yield cpu, mjx
    cpu.close()
    mjx.close()


def test_mjx_env_runs_on_the_mjx_backend_and_device_it_was_given(mjx_pair):
    from handx_robot.sim.backends.mjx_backend import MjxBackend

    cpu, mjx = mjx_pair
    assert "mjx" in BACKENDS and type(mjx.backend) is MjxBackend and type(cpu.backend) is not MjxBackend
    assert mjx.backend.device.platform == "cpu"  # device="cpu" reached the backend through the env
    leaves = mjx.backend._jax.tree_util.tree_leaves(mjx.backend._dx)  # the batch lives on that device
    assert leaves and all(leaf.devices() == {mjx.backend.device} for leaf in leaves if hasattr(leaf, "devices"))


def test_mjx_env_tracks_like_the_cpu_env(mjx_pair):
    cpu, mjx = mjx_pair
    o_cpu, _ = cpu.reset(seed=3)
    o_mjx, _ = mjx.reset(seed=3)
    np.testing.assert_allclose(o_mjx, o_cpu, atol=1e-6)  # reset: the same teleported state
    rng = np.random.default_rng(1)
    moved = 0.0
    for _ in range(20):
        a = rng.uniform(-1, 1, cpu.action_space.shape).astype(np.float32)
        o_cpu, r_cpu, t_cpu, tr_cpu, i_cpu = cpu.step(a)
        o_mjx, r_mjx, t_mjx, tr_mjx, i_mjx = mjx.step(a)
        assert not i_mjx["unstable"].any()
        np.testing.assert_array_equal(t_mjx, t_cpu)
        np.testing.assert_array_equal(tr_mjx, tr_cpu)
        # float32 XLA vs float64 C engine: fingertip errors agree to 0.1 mm, rewards to 1e-3
        np.testing.assert_allclose(i_mjx["tip_error"], i_cpu["tip_error"], atol=1e-4)
        np.testing.assert_allclose(r_mjx, r_cpu, atol=1e-3)
        moved = max(moved, float(np.max(i_cpu["joint_error"])))
    st_cpu, st_mjx = cpu.backend.read_state(), mjx.backend.read_state()
    for s in ("left", "right"):
        np.testing.assert_allclose(st_mjx.fingertips[s], st_cpu.fingertips[s], atol=2e-4)
        np.testing.assert_allclose(st_mjx.wrist_pose[s][:, :3], st_cpu.wrist_pose[s][:, :3], atol=2e-4)
    assert moved > 0.01, "the residual actions never moved the hands off the reference: the test would prove nothing"


def test_mjx_partial_reset_and_hand_contact(mjx_pair):
    """Teleporting one env after steps: read_state mixes the fresh env (exact) with the stepped one;
    two hands pushed into each other register hand-hand contact on the device like on the CPU."""
    cpu, mjx = mjx_pair
    backends = (cpu.backend, mjx.backend)
    lay = mjx.backend.layout
    base = cpu.backend.read_state()
    q = {s: base.qpos[s][:1] for s in lay.sides}
    zero = {s: np.zeros_like(q[s]) for s in lay.sides}
    # env 1 only: both wrists at one point, the hands interpenetrate
    w = {s: np.array([[0.0, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0]]) for s in lay.sides}
    for b in backends:
        b.set_state([1], q, zero, w)
    fresh_cpu, fresh_mjx = cpu.backend.read_state(), mjx.backend.read_state()
    np.testing.assert_allclose(fresh_mjx.fingertips["right"][1], fresh_cpu.fingertips["right"][1], atol=1e-9)
    assert fresh_mjx.hand_contact[1] and fresh_cpu.hand_contact[1]
    # env 0 keeps its stepped (device) state
    np.testing.assert_allclose(fresh_mjx.fingertips["left"][0], fresh_cpu.fingertips["left"][0], atol=2e-4)
    tg = {s: q[s][:, lay.hands[s].actuated_index].repeat(2, 0) for s in lay.sides}
    wt = {s: np.concatenate([base.wrist_pose[s][:1], w[s]]) for s in lay.sides}
    for b in backends:
        b.set_targets(tg, wt)
        b.step()
    a, d = cpu.backend.read_state(), mjx.backend.read_state()
    assert d.hand_contact[1] and a.hand_contact[1]
    assert d.hand_hand_depth[1] > 1e-3 and a.hand_hand_depth[1] > 1e-3
    assert not d.hand_contact[0] and not a.hand_contact[0]


def test_mjx_missing_dependency_message(monkeypatch, clips):
    import builtins

    real_import = builtins.__import__

    def no_jax(name, *args, **kwargs):
        if name == "jax" or name.startswith("jax."):
            raise ImportError("No module named 'jax'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jax)
    hands = [HandModel.from_registry(r) for r in ROBOTS]
    with pytest.raises(ConfigError, match="jax and mujoco-mjx.*backend 'mujoco'"):
        make_backend("mjx", hands, num_envs=1)

