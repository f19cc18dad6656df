"""The Gymnasium faces of the tracking task: :class:`HandXTrackingEnv` (one env) and
:class:`HandXTrackingVecEnv` (``num_envs`` envs on one batched backend), and :func:`build_task`.

Units: rad (m for slide joints), m, s, world frame Z-up; quaternions ``wxyz``. ``T_world_base`` is the
pose of a hand's model root (the "wrist" of :class:`handx_robot.retarget.robot_motion.HandTrajectory`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from handx_robot.sim.backends.base import SimBackend, SimState
from handx_robot.sim.tracking.config import TrackingConfig
from handx_robot.sim.tracking.reference import MotionsArg, ReferenceBank, load_motions, robots_for
from handx_robot.sim.tracking.task import TrackingTask

from handx_robot.errors import ConfigError

__all__ = ["BuiltTask", "build_task", "HandXTrackingEnv", "HandXTrackingVecEnv"]


@dataclasses.dataclass(frozen=True)
class BuiltTask:
    """What :func:`build_task` makes: robots per side, the backend, the reference bank, the task, and
    the motions' frame rate (Hz)."""

    robots: dict[str, str]
    backend: SimBackend
    bank: ReferenceBank
    task: TrackingTask
    fps: float


def build_task(motions: MotionsArg, robots: Mapping[str, str] | None, config: TrackingConfig,
               assets: str | os.PathLike | None, backend: str, num_envs: int, **backend_kwargs: Any) -> BuiltTask:
    """The task of ``num_envs`` envs on simulator ``backend`` (a key of
    :data:`handx_robot.sim.backends.BACKENDS`). The backend builds its own config from ``config``
    (``substeps``, ``bandwidth_hz``, ``floor_height``), the motions' fps (``control_dt``) and their
    extent (preset cameras); ``backend_kwargs`` are that backend's own options (its config's other
    fields or its constructor's, e.g. ``device`` for ``mjx`` and ``isaacgym``); unknown ones raise
    :class:`handx_robot.errors.ConfigError` listing what the backend takes."""
    from handx_robot.sim.backends import backend_class
    from handx_robot.sim.scene import HandModel

    clips = load_motions(motions)
    robots = robots_for(clips, robots)
    fps = clips[0][1].fps
    cls = backend_class(backend)  # unknown names fail before any model is loaded
    lo = np.min([h.wrist_pose[:, :3].min(axis=0) for _, m in clips for h in m.hands.values()], axis=0)
    hi = np.max([h.wrist_pose[:, :3].max(axis=0) for _, m in clips for h in m.hands.values()], axis=0)
    hands = [HandModel.from_registry(rid, assets=assets, side=side) for side, rid in robots.items()]
    sim = cls.for_tracking(
        hands, config, num_envs=num_envs, control_dt=1.0 / fps, view_center=tuple(((lo + hi) / 2).tolist()),
        view_distance=max(0.5, 1.6 * float(np.max(hi - lo)) + 0.4), **backend_kwargs,
    )
    bank = ReferenceBank(clips, sim)
    return BuiltTask(robots, sim, bank, TrackingTask(sim, bank, config), fps)


class HandXTrackingEnv(gym.Env):
    """Track robot hand motions in MuJoCo physics with residual PD targets (``HandXTracking-v0``).

    Each step is one motion frame (``1 / fps`` s, ``substeps`` physics steps). The PD targets of the
    fingers and the wrist targets (a weld pulls each floating hand onto its target, like a stiff arm)
    are the reference's next frame plus the policy's residual; reference joint velocities are fed
    forward. Action 0 everywhere is open-loop PD replay.

    **Observation** (``Box``, float32). Grouped by quantity, each group ``left`` then ``right`` hand
    (``n`` joints, ``a`` actuated joints, ``k`` fingertips per hand; ``env.unwrapped.observation_table()``
    prints the exact rows for any robots). Indices below: two built-in Shadow hands (n = 24, a = 20,
    k = 5), K = 3, 343 values:

    ========= ====================== ========== ================================================================
    index     name                   unit       meaning
    ========= ====================== ========== ================================================================
    0-47      {left,right}_q         rad        joint positions, model joint order (n per hand)
    48-95     {side}_qd              rad/s      joint velocities
    96-101    {side}_wrist_pos       m          wrist (``T_world_base``) position, world
    102-109   {side}_wrist_quat      1          wrist orientation wxyz, world, w >= 0
    110-121   {side}_wrist_vel       m/s, rad/s wrist linear and angular velocity, world
    122-151   {side}_tips            m          fingertips minus their wrist position, world axes (3k per hand)
    152-181   {side}_tip_err         m          reference fingertips at frame t minus simulated (3k per hand)
    182-301   ref{j}_{side}_dq       rad        reference actuated targets at t+j minus current, j = 1..K (a each)
    302-319   ref{j}_{side}_dpos     m          reference wrist position at t+j minus current, world
    320-337   ref{j}_{side}_drot     rad        rotation vector from current to reference wrist at t+j, world
    338       contact                0/1        simulated hand-hand contact
    339-341   ref_contact            0/1        reference hand-hand contact at t+1..t+K
    342       phase                  1          frame / (clip frames - 1)
    ========= ====================== ========== ================================================================

    **Action** (``Box(-1, 1)``; Shadow pair: 52 values): ``{side}_dq`` (a per hand, indices 0-39)
    x ``finger_action_scale`` rad added to the reference joint targets (then clipped to the joint
    range); ``{side}_dpos`` (3, 40-45) x ``wrist_pos_action_scale`` m added to the wrist target;
    ``{side}_drot`` (3, 46-51) x ``wrist_rot_action_scale`` rad, a world rotation vector applied to the
    wrist target orientation. ``env.unwrapped.action_table()`` lists the rows for any robots.

    **Reward** (every term in ``info``, their sum is the reward)::

        reward_joint   = w_joint   * exp(-mean_j (q - q_ref)^2 / sigma_joint^2)
        reward_tip     = w_tip     * exp(-(mean_i |p_tip - p_tip_ref| / sigma_tip)^2)
        reward_wrist   = w_wrist   * exp(-(|p_w - p_w_ref| / sigma_wrist_pos)^2 - (angle / sigma_wrist_rot)^2)
        reward_contact = w_contact * [hand-hand contact == reference hand-hand contact]
        reward_smooth  = -w_smooth * mean((a_t - a_{t-1})^2)

    (means over both hands; the reference contact is the geometric hand-hand contact of the kinematic
    reference.) ``info`` also has ``tip_error`` (m), ``wrist_pos_error`` (m), ``wrist_rot_error`` (rad),
    ``joint_error`` (rad), ``contact``, ``ref_contact``, ``clip``, ``frame``, ``unstable``.

    **Episodes**: ``reset`` picks a clip uniformly and (``random_start``) a start frame uniformly in
    ``[0, T - 2]``, teleports the hands to the reference there (``options={"clip": i, "start": f}``
    overrides). Terminated when the mean fingertip error exceeds ``terminate_tip_error`` or the wrist
    error ``terminate_wrist_error`` for ``terminate_after_s``, or the physics diverges; truncated at the
    clip's end or after ``episode_frames`` steps.

    Args: ``motions`` (RobotMotion, ``.npz`` path, or a list), ``robots`` ``{side: robot id}`` (default:
    the first motion's; every motion must match), ``config`` :class:`TrackingConfig`, ``render_mode``
    (``rgb_array``), ``assets`` (robot asset directory), ``camera`` (scene camera for rendering),
    ``backend`` (simulator, :data:`handx_robot.sim.backends.BACKENDS`; many envs on one batched backend:
    :class:`HandXTrackingVecEnv`), ``**backend_kwargs`` (the backend's own options, :func:`build_task`).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        motions: Any,
        robots: Mapping[str, str] | None = None,
        config: TrackingConfig | None = None,
        render_mode: str | None = None,
        assets: str | os.PathLike | None = None,
        camera: str | None = None,
        render_size: tuple[int, int] = (640, 480),
        backend: str = "mujoco",
        **backend_kwargs: Any,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode {render_mode!r}; allowed: {self.metadata['render_modes']} or None")
        self.config = config or TrackingConfig()
        built = build_task(motions, robots, self.config, assets, backend, 1, **backend_kwargs)
        self.robots, self.backend, self.bank, self.task = built.robots, built.backend, built.bank, built.task
        self.metadata = {**self.metadata, "render_fps": int(round(built.fps))}
        self.render_mode = render_mode
        self.camera = camera
        self.render_size = render_size
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.task.obs_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.task.act_dim,), dtype=np.float32)
        self._state: SimState | None = None
        self._env0 = np.zeros(1, dtype=np.int64)

    # ---------------------------------------------------------------- docs
    def observation_table(self) -> str:
        return self.task.table("obs")

    def action_table(self) -> str:
        return self.task.table("act")

    def signature(self) -> dict:
        return self.task.signature()

    # ---------------------------------------------------------------- gym API
    def _start(self, options: Mapping[str, Any]) -> tuple[int, int]:
        """(clip, start frame) of a reset: from ``options`` or sampled; out-of-range values raise."""
        C = self.bank.num_clips
        clip = options.get("clip")
        if clip is None:
            clip = int(self.np_random.integers(C))
        if not 0 <= int(clip) < C:
            raise ConfigError(f"reset option clip={clip}; the env has clips 0..{C - 1}")
        T = int(self.bank.lengths[clip])
        start = options.get("start")
        if start is None:
            start = int(self.np_random.integers(T - 1)) if self.config.random_start else 0
        if not 0 <= int(start) <= T - 2:
            raise ConfigError(f"reset option start={start}; clip {clip} allows 0..{T - 2}")
        return int(clip), int(start)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        clip, start = self._start(options or {})
        self._state = self.task.reset_envs(self._env0, np.array([clip]), np.array([start]))
        e = self.task.errors(self._state)
        info = {"clip": clip, "frame": start, "tip_error": float(e["tip"][0]), "clip_name": self.bank.names[clip]}
        return self.task.observe(self._state)[0], info

    def step(self, action):
        if self._state is None:
            raise ConfigError("call reset() before step()")
        st, obs, reward, terminated, truncated, arrays = self.task.step(np.asarray(action)[None])
        self._state = st
        info = {k: v[0].item() for k, v in arrays.items()}
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        w, h = self.render_size
        return self.backend.render(0, self.camera, width=w, height=h)

    def close(self):
        self.backend.close()


class HandXTrackingVecEnv(gym.vector.VectorEnv):
    """``num_envs`` tracking envs on ONE batched simulator backend: the observation, action and reward
    of :class:`HandXTrackingEnv`, computed for all envs at once by :class:`TrackingTask`.

    ``backend="mjx"`` steps every env in one jit-compiled MJX call (a GPU where JAX has one);
    ``"mujoco"`` steps CPU MjData in turn. ``**backend_kwargs`` are the backend's own options
    (:func:`build_task`; e.g. ``backend="mjx", device=jax.devices("cpu")[0]``). Also reachable as
    ``gym.make_vec("HandXTracking-v0", num_envs=N, vectorization_mode="vector_entry_point", motions=..., backend="mjx")``.

    Autoreset: same step. An env whose episode ends is reset (new clip and start frame) inside that
    ``step``; the returned observation is the new episode's first, the last one is in
    ``infos["final_obs"]`` (rows where ``infos["_final_obs"]``). ``infos`` holds (num_envs,) arrays:
    every reward term, ``tip_error``, ``wrist_pos_error``, ``wrist_rot_error``, ``joint_error``,
    ``contact``, ``ref_contact``, ``clip``, ``frame``, ``unstable``.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        motions: Any,
        num_envs: int = 8,
        robots: Mapping[str, str] | None = None,
        config: TrackingConfig | None = None,
        assets: str | os.PathLike | None = None,
        backend: str = "mujoco",
        **backend_kwargs: Any,
    ):
        if int(num_envs) < 1:
            raise ConfigError(f"HandXTrackingVecEnv: num_envs must be >= 1, got {num_envs!r}")
        self.config = config or TrackingConfig()
        self.num_envs = int(num_envs)
        built = build_task(motions, robots, self.config, assets, backend, self.num_envs, **backend_kwargs)
        self.robots, self.backend, self.bank, self.task = built.robots, built.backend, built.bank, built.task
        self.render_mode = None
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.task.obs_dim,), dtype=np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.task.act_dim,), dtype=np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._all = np.arange(self.num_envs)
        self._started = False

    def _sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        clips = self.np_random.integers(self.bank.num_clips, size=n)
        if not self.config.random_start:
            return clips, np.zeros(n, dtype=np.int64)
        return clips, np.array([self.np_random.integers(int(self.bank.lengths[c]) - 1) for c in clips], dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        clips, starts = self._sample(self.num_envs)
        st = self.task.reset_envs(self._all, clips, starts)
        self._started = True
        return self.task.observe(st), {"clip": clips, "frame": starts}

    def step(self, actions):
        if not self._started:
            raise ConfigError("call reset() before step()")
        _, obs, reward, terminated, truncated, infos = self.task.step(np.asarray(actions))
        done = terminated | truncated
        if done.any():
            ids = np.flatnonzero(done)
            infos["final_obs"], infos["_final_obs"] = obs.copy(), done.copy()
            clips, starts = self._sample(len(ids))
            obs = self.task.observe(self.task.reset_envs(ids, clips, starts))
        return obs, reward.astype(np.float64), terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        self.backend.close()
