"""PPO residual tracking: a short seeded training run, policy files, TorchScript export, the CLI."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from handx_robot.retarget.robot_motion import save_robot_motion
from handx_robot.sim.policy_export import (
    META_MEMBER,
    PolicyMismatchError,
    check_compatible,
    export_torchscript,
    load_policy,
)
from handx_robot.sim.scene import HandModel, build_scene
from handx_robot.sim.synthetic import sinusoid_motion
from handx_robot.sim.tracking_env import HandXTrackingEnv, RobotMismatchError, TrackingConfig
from handx_robot.sim.training import TrainSettings, train_tracker

from handx_robot.app.cli import main
from handx_robot.errors import ModelLoadError

SETTINGS = TrainSettings(steps=768, n_steps=128, batch_size=64, epochs=3, net_arch=(32, 32), checkpoint_every=384, seed=0)


@pytest.fixture(scope="module")
def clips():
    scene = build_scene([HandModel.from_registry("shadow_builtin_left"), HandModel.from_registry("shadow_builtin_right")])
    return [sinusoid_motion(scene, seconds=1.0, seed=s, frequency_hz=0.5 + 0.3 * s) for s in range(2)]


@pytest.fixture(scope="module")
def trained(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo") / "policy.zip"
    return train_tracker(clips, out, settings=SETTINGS, progress=False)


def test_short_ppo_run_moves_loss_and_reward(trained):
    rows = trained.history
    assert len(rows) == SETTINGS.steps // SETTINGS.n_steps
    losses = [r["train/loss"] for r in rows if r.get("train/loss") is not None]
    rewards = [r["tracking/step_reward"] for r in rows if r.get("tracking/step_reward") is not None]
    assert len(losses) >= 4 and all(np.isfinite(losses))
    assert max(losses) - min(losses) > 1e-3  # the loss moves between updates
    assert len(rewards) == len(rows) and max(rewards) - min(rewards) > 1e-4  # so does the step reward
    assert all(0 < r < 1.0 for r in rewards)  # weighted kernels: at most w_joint + w_tip + w_wrist + w_contact = 1
    assert trained.model.num_timesteps == SETTINGS.steps
    assert (trained.log_dir / "progress.csv").is_file()
    events = list(trained.log_dir.rglob("events.out.tfevents.*"))  # TensorBoard (tensorboard is in requirements)
    assert events and events[0].stat().st_size > 0
    ckpts = sorted((trained.log_dir / "checkpoints").glob("policy_*.zip"))
    assert [p.name for p in ckpts] == ["policy_384.zip", "policy_768.zip"]
    assert load_policy(ckpts[0]).meta["training"]["steps"] == 384


def test_policy_file_matches_sb3_and_torchscript(trained, clips, tmp_path):
    import torch
    from stable_baselines3 import PPO

    policy = load_policy(trained.policy_path)
    meta = policy.meta
    assert meta["signature"]["robots"] == {"left": "shadow_builtin_left", "right": "shadow_builtin_right"}
    assert meta["signature"]["horizon"] == 3 and meta["obs_norm"] is not None
    env = HandXTrackingEnv(clips)
    obs = np.stack([env.reset(seed=s)[0] for s in range(5)])
    norm = meta["obs_norm"]
    obs_n = np.clip((obs - np.array(norm["mean"])) / np.sqrt(np.array(norm["var"]) + norm["epsilon"]), -norm["clip"], norm["clip"])
    sb3_actions, _ = PPO.load(trained.policy_path, device="cpu").predict(obs_n.astype(np.float32), deterministic=True)
    np.testing.assert_allclose(policy(obs), sb3_actions, atol=1e-5)
    np.testing.assert_allclose(policy(obs[0]), sb3_actions[0], atol=1e-5)
    ts = export_torchscript(policy, tmp_path / "actor.pt")
    module = torch.jit.load(str(ts))
    np.testing.assert_allclose(module(torch.as_tensor(obs)).numpy(), sb3_actions, atol=1e-5)
    assert json.loads((tmp_path / "actor.pt.json").read_text())["signature"] == meta["signature"]


def test_policy_layout_and_robot_checks(trained, clips, tmp_path):
    policy = load_policy(trained.policy_path)
    env_k2 = HandXTrackingEnv(clips, config=TrackingConfig(horizon=2))
    with pytest.raises(PolicyMismatchError, match="horizon"):
        check_compatible(policy.meta, env_k2.signature(), trained.policy_path)
    other = dict(policy.meta, signature=dict(policy.meta["signature"], robots={"right": "allegro_right"}))
    with pytest.raises(RobotMismatchError, match="allegro_right"):
        check_compatible(other, env_k2.signature(), "p.zip")
    with pytest.raises(PolicyMismatchError, match="observation"):
        policy(np.zeros(10, np.float32))
    # a plain SB3 zip (no layout), a missing file, a non-zip
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(trained.policy_path) as src, zipfile.ZipFile(plain, "w") as dst:
        for name in src.namelist():
            if name != META_MEMBER:
                dst.writestr(name, src.read(name))
    with pytest.raises(ModelLoadError, match="not a handx-robot tracking policy"):
        load_policy(plain)
    with pytest.raises(ModelLoadError, match="not found"):
        load_policy(tmp_path / "missing.zip")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="not a zip"):
        load_policy(tmp_path / "junk.zip")


def test_cli_track_writes_metrics_and_video(trained, clips, tmp_path, capsys):
    npz = save_robot_motion(clips[0], tmp_path / "clip.npz")
    rc = main(["track", str(npz), "--policy", str(trained.policy_path), "--metrics", str(tmp_path / "m.json"),
               "--video", str(tmp_path / "v.mp4"), "--size", "160x120"])
    assert rc == 0
    m = json.loads((tmp_path / "m.json").read_text())
    for key in ("policy", "open_loop"):
        assert m[key]["steps"] == clips[0].num_frames - 1
        assert 0 <= m[key]["mean_tip_error_m"] < 0.05 and m[key]["contact_f1"]["f1"] is not None
    assert (tmp_path / "v.mp4").stat().st_size > 1000
    assert "tip error" in capsys.readouterr().out


def test_cli_train_tracker_end_to_end_and_bad_input(clips, tmp_path, capsys):
    paths = [str(save_robot_motion(c, tmp_path / f"c{i}.npz")) for i, c in enumerate(clips)]
    out = tmp_path / "p.zip"
    rc = main(["train-tracker", "--motions", *paths, "--robot", "shadow_builtin", "-o", str(out), "--steps", "128",
               "--n-steps", "64", "--batch-size", "64", "--epochs", "1", "--net", "16,16", "--checkpoint-every", "0",
               "--torchscript", str(tmp_path / "p.pt"), "--onnx", str(tmp_path / "p.onnx")])
    assert rc == 0 and out.is_file() and (tmp_path / "p.pt").is_file()
    import onnxruntime

    obs = np.random.default_rng(0).normal(size=(4, load_policy(out).obs_dim)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "p.onnx"))
    np.testing.assert_allclose(session.run(None, {"obs": obs})[0], load_policy(out)(obs), atol=1e-5)
    assert json.loads((tmp_path / "p.onnx.json").read_text())["signature"] == load_policy(out).meta["signature"]
    assert load_policy(out).meta["training"]["motions"] == paths
    assert main(["train-tracker", "--motions", str(tmp_path / "nope.npz"), "-o", str(out)]) == 1
    assert "nope.npz" in capsys.readouterr().err
    assert main(["train-tracker", "--motions", *paths, "--robot", "allegro", "-o", str(out)]) == 1
    assert "allegro_left" in capsys.readouterr().err
    assert main(["track", paths[0], "--policy", str(tmp_path / "nope.zip")]) == 1
    assert "policy file not found" in capsys.readouterr().err
    ilc = tmp_path / "ilc.zip"
    assert main(["train-tracker", "--motions", *paths, "-o", str(ilc), "--init", "ilc", "--steps", "0",
                 "--ilc-iterations", "2", "--checkpoint-every", "0"]) == 0
    meta = load_policy(ilc).meta
    assert meta["net_arch"] == [] and meta["training"]["algorithm"] == "ILC + ridge linear actor"
    assert main(["train-tracker", "--motions", *paths, "-o", str(ilc), "--steps", "0"]) == 1
    assert "steps" in capsys.readouterr().err


def test_ilc_init_fits_a_linear_actor_that_beats_open_loop(clips, tmp_path):
    """init='ilc': ILC residuals on the clips, a ridge-fitted linear actor in the saved PPO policy
    (the file's actor computes exactly the fitted map), better than open-loop PD on those clips."""
    import dataclasses

    from handx_robot.sim.ilc import collect_demonstrations, fit_linear_policy, ilc_clip

    cfg = TrackingConfig(random_start=False)
    env = HandXTrackingEnv(clips, config=cfg)
    U, errors = ilc_clip(env, 0, iterations=4)
    assert U.shape == (int(env.bank.lengths[0]) - 1, env.task.act_dim) and np.abs(U).max() <= 1.0
    assert min(errors[1:]) < 0.9 * errors[0]  # ILC lowers the fingertip error on its own clip
    settings = dataclasses.replace(SETTINGS, init="ilc", steps=0, ilc_iterations=4, ilc_noise_rollouts=1)
    res = train_tracker(clips, tmp_path / "ilc.zip", config=cfg, settings=settings, progress=False)
    pol = load_policy(res.policy_path)
    assert pol.meta["net_arch"] == [] and pol.meta["training"]["init"]["clips"] == 2
    rep = pol.meta["training"]["init"]
    assert rep["ilc_tip_error_m"] < rep["open_loop_tip_error_m"]
    # the saved actor is the ridge fit on the same demonstrations
    X, Y, _ = collect_demonstrations(env, iterations=4, noise_rollouts=1, progress=False)
    lin = fit_linear_policy(X, Y)
    np.testing.assert_allclose(pol(X[:50].astype(np.float32)), lin(X[:50]), atol=1e-4)
    from handx_robot.sim.tracking_env import rollout

    for c in range(2):
        ol, pl = rollout(env, None, clip=c), rollout(env, pol, clip=c)
        assert pl.success and pl.tip_error.mean() < ol.tip_error.mean()
    env.close()


def test_ilc_settings_are_validated():
    from handx_robot.errors import ConfigError

    with pytest.raises(ConfigError, match="init"):
        TrainSettings(init="bc")
    with pytest.raises(ConfigError, match="steps"):
        TrainSettings(steps=0)
    TrainSettings(steps=0, init="ilc")


def test_linear_actor_selection_falls_back_to_open_loop(clips):
    """A fit that tracks worse than open-loop PD in closed loop is never kept: garbage residuals
    give the zero residual (ridge None), and the table says what each candidate did."""
    from handx_robot.sim.ilc import collect_demonstrations, select_linear_policy

    env = HandXTrackingEnv(clips, config=TrackingConfig(random_start=False))
    X, Y, _ = collect_demonstrations(env, iterations=2, noise_rollouts=0, progress=False)
    garbage = np.random.default_rng(0).choice([-1.0, 1.0], size=Y.shape)
    pol, ridge, table = select_linear_policy(env, X, garbage, ridges=(1e-4, 1e-2))
    assert ridge is None and not np.any(pol.W) and not np.any(pol.bias)
    assert [r["ridge"] for r in table] == [None, 1e-4, 1e-2]
    open_loop = table[0]["tip_error_m"]
    assert all(r["tip_error_m"] > open_loop or r["success_rate"] < 1 for r in table[1:])
    pol, ridge, table = select_linear_policy(env, X, Y, ridges=(0.01,))
    assert ridge == 0.01 and table[1]["tip_error_m"] < table[0]["tip_error_m"]
    env.close()


def test_ilc_initialised_actor_lowers_the_error_on_held_out_clips(tmp_path):
    """What ``train-tracker --init ilc --steps 0`` saves generalizes: fitted on 60 short clips (seeds
    0..59), it tracks two clips it never saw (seeds 100, 101) with a lower mean fingertip error than
    open-loop PD replay. Clips: every joint a 0.8 Hz sinusoid of random phase, wrists still."""
    scene = build_scene([HandModel.from_registry("shadow_builtin_left"), HandModel.from_registry("shadow_builtin_right")])

    def clip(seed: int):
        return sinusoid_motion(scene, seconds=0.7, seed=seed, frequency_hz=0.8, amplitude=0.5, wrist_radius_m=0.0,
                               wrist_yaw_rad=0.0)

    settings = TrainSettings(steps=0, init="ilc", ilc_iterations=3, ilc_noise_rollouts=1, n_steps=64, batch_size=64,
                             net_arch=(16,), checkpoint_every=0, seed=0)
    cfg = TrackingConfig(random_start=False)
    res = train_tracker([clip(s) for s in range(60)], tmp_path / "ilc.zip", config=cfg, settings=settings, progress=False)
    policy = load_policy(res.policy_path)
    assert policy.meta["training"]["init"]["ridge"] is not None  # a fitted actor, not the zero fallback
    env = HandXTrackingEnv([clip(100), clip(101)], config=cfg)
    from handx_robot.sim.tracking_env import rollout

    open_loop = [rollout(env, None, clip=c) for c in range(2)]
    fitted = [rollout(env, policy, clip=c) for c in range(2)]
    env.close()
    assert all(r.success for r in fitted)
    ol, pl = np.mean([r.tip_error.mean() for r in open_loop]), np.mean([r.tip_error.mean() for r in fitted])
    assert pl < 0.95 * ol, f"held-out mean fingertip error {1e3 * pl:.2f} mm vs open loop {1e3 * ol:.2f} mm"
