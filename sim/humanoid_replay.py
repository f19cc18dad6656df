"""Replay a humanoid robot motion (a :class:`~handx_robot.retarget.robot_motion.RobotMotion` with ``body``)
in MuJoCo, kinematic or physics, with tracking and clearance metrics and a video of the upper body.

Scene: :mod:`handx_robot.sim.humanoid_scene` (actuators, gains, gravity compensation, cameras).

* kinematic: every frame's ``qpos`` is :func:`~handx_robot.retarget.humanoid.retarget.model_qpos`'s row
  (arms from the body trajectory, hands by joint name, followers from their couplings); the reference.
* physics: from the kinematic frame 0 (the pelvis is fixed), PD tracking of every actuated joint's
  ``model_qpos`` target, interpolated linearly between frames, with the target velocity fed forward
  (``(kv + joint damping) * qdot_target``); the sim timestep is the largest ``frame_period / k`` not over
  the scene's timestep. A non-finite state, joint speeds over ``max_joint_speed`` or MuJoCo's
  bad-acceleration warning mark the replay diverged; it stops there.

Both return a :class:`HumanoidReplayResult`: the simulated ``qpos`` per frame and
:class:`HumanoidReplayMetrics` (hand root vs the motion's ``wrist_pose``, arm and hand joint errors,
fingertips vs the kinematic replay, the deepest contact per pair of
:data:`~handx_robot.sim.humanoid_scene.CONTACT_PAIRS`, divergence, speed). Speed and tracking figures:
``benchmarks/humanoid_replay.py``.

Units: metres, radians, seconds; world frame Z-up; poses ``[x, y, z, qw, qx, qy, qz]``.

Library use::

    from handx_robot.retarget.robot_motion import load_robot_motion
    from handx_robot.sim.humanoid_replay import HumanoidReplayConfig, humanoid_replay, render_humanoid_replay

    motion = load_robot_motion("gr1.npz")                    # handx-robot retarget --robot gr1_inspire
    result = humanoid_replay(motion, physics=True)
    result.metrics.summary()["sides"]["right"]["hand_root_position_error_m"]   # {"mean", "p95", "max"}
    render_humanoid_replay(motion, "gr1.mp4", config=HumanoidReplayConfig(physics=True))
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np
from handx_robot.retarget.humanoid.retarget import model_qpos
from handx_robot.retarget.robot_motion import RobotMotion
from handx_robot.sim.humanoid_scene import (
    CONTACT_PAIRS,
    UNWANTED_CONTACTS,
    HumanoidScene,
    HumanoidSceneConfig,
    build_humanoid_scene,
)
from handx_robot.sim.metrics import HAND_CONTACT_M, hand_contact_f1
from handx_robot.sim.replay import _physics_timestep

from handx_robot.errors import ConfigError, MotionValueError
from handx_robot.motion import atomic_write
from handx_robot.rotations import quat_angle

__all__ = [
    "HumanoidReplayConfig",
    "HumanoidReplayMetrics",
    "HumanoidReplayResult",
    "humanoid_replay",
    "render_humanoid_replay",
]

log = logging.getLogger(__name__)



@dataclasses.dataclass(frozen=True)
class HumanoidReplayConfig:
    """physics: PD tracking with gravity and contacts (True) or kinematic playback (False).
    velocity_feedforward: add ``(kv + damping) * qdot_target`` to the PD law (physics).
    max_joint_speed: rad/s; any joint faster counts as diverged (physics).
    start: first motion frame, stop: one past the last (None = the end).
    """

    physics: bool = False
    velocity_feedforward: bool = True
    max_joint_speed: float = 100.0
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.max_joint_speed) and self.max_joint_speed > 0):
            raise ConfigError(f"HumanoidReplayConfig.max_joint_speed must be > 0 rad/s, got {self.max_joint_speed!r}")
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise ConfigError(f"HumanoidReplayConfig: need 0 <= start < stop, got start={self.start}, stop={self.stop}")


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return {"mean": None, "p95": None, "max": None}
    return {"mean": float(x.mean()), "p95": float(np.percentile(x, 95)), "max": float(x.max())}


@dataclasses.dataclass(frozen=True)
class HumanoidReplayMetrics:
    """Per-frame metrics of a humanoid replay (``T`` = frames replayed; per side keyed ``left`` / ``right``).

    hand_root_position_error[side] (T,) m and hand_root_rotation_error[side] (T,) rad: the simulated
    hand root vs the motion's ``wrist_pose``. arm_joint_error[side] (T, 7) rad and hand_joint_error[side]
    (T, n) rad: ``|q_sim - q_target|`` (targets: ``model_qpos``; hand joints followers included).
    fingertip_error[side] (T,) m: mean fingertip distance to the kinematic replay's (world frame).
    contact_depth[label] (T,) m: deepest penetration per pair of
    :data:`~handx_robot.sim.humanoid_scene.CONTACT_PAIRS` (0 = none).
    hand_hand_contact (T,) bool: the hands' collision geometry nearer than
    :data:`~handx_robot.sim.metrics.HAND_CONTACT_M` (see :mod:`handx_robot.sim.metrics`); contact_f1
    scores it against the human's events. max_joint_speed: rad/s over the replay. diverged / diverged_frame: see
    :class:`HumanoidReplayConfig`. wall_time_s: the replay loop's wall time, rendering callbacks excluded.
    """

    physics: bool
    robot: str
    fps: float
    timestep: float
    hand_root_position_error: dict[str, np.ndarray]
    hand_root_rotation_error: dict[str, np.ndarray]
    arm_joint_error: dict[str, np.ndarray]
    hand_joint_error: dict[str, np.ndarray]
    fingertip_error: dict[str, np.ndarray]
    contact_depth: dict[str, np.ndarray]
    hand_hand_contact: np.ndarray
    contact_f1: dict
    max_joint_speed: float
    diverged: bool
    diverged_frame: int | None
    wall_time_s: float

    @property
    def num_frames(self) -> int:
        return int(self.hand_hand_contact.shape[0])

    def summary(self) -> dict:
        """Plain-JSON summary: per side mean/p95/max of the errors (joint errors over every frame and
        joint), the deepest contact per pair, speed (``frames_per_second``: frames replayed per second of
        wall time; ``real_time_factor``: physics only), divergence."""
        T = self.num_frames
        sim_time = (T - 1) / self.fps if self.physics else None
        sides = {}
        for s in self.arm_joint_error:
            sides[s] = {
                "arm_joint_error_rad": _stats(self.arm_joint_error[s]),
                "hand_joint_error_rad": _stats(self.hand_joint_error[s]),
                "fingertip_error_m": _stats(self.fingertip_error[s]),
            }
            if s in self.hand_root_position_error:  # a side the motion has a hand for
                sides[s]["hand_root_position_error_m"] = _stats(self.hand_root_position_error[s])
                sides[s]["hand_root_rotation_error_rad"] = _stats(self.hand_root_rotation_error[s])
        contacts = {k: {"max_depth_m": float(v.max()) if T else 0.0, "frames": int((v > 0).sum())}
                    for k, v in self.contact_depth.items()}  # fmt: skip
        worst = max(UNWANTED_CONTACTS, key=lambda k: contacts[k]["max_depth_m"])
        return {
            "mode": "physics" if self.physics else "kinematic", "robot": self.robot, "frames": T, "fps": self.fps,
            "timestep_s": self.timestep, "sides": sides, "contacts": contacts,
            "deepest_unwanted_contact": {"pair": worst, "depth_m": contacts[worst]["max_depth_m"]},
            "hand_hand_contact_frames": int(self.hand_hand_contact.sum()), "contact_f1": self.contact_f1,
            "max_joint_speed_rad_s": self.max_joint_speed, "diverged": self.diverged,
            "diverged_frame": self.diverged_frame, "wall_time_s": self.wall_time_s,
            "frames_per_second": T / self.wall_time_s if self.wall_time_s > 0 else None,
            "real_time_factor": sim_time / self.wall_time_s if sim_time and self.wall_time_s > 0 else None,
        }  # fmt: skip

    def save_json(self, path: str | os.PathLike) -> Path:
        """Summary and per-frame arrays as JSON (written atomically)."""
        per_frame = {
            "hand_root_position_error_m": {s: v.tolist() for s, v in self.hand_root_position_error.items()},
            "hand_root_rotation_error_rad": {s: v.tolist() for s, v in self.hand_root_rotation_error.items()},
            "arm_joint_error_rad": {s: v.tolist() for s, v in self.arm_joint_error.items()},
            "fingertip_error_m": {s: v.tolist() for s, v in self.fingertip_error.items()},
            "contact_depth_m": {k: v.tolist() for k, v in self.contact_depth.items()},
        }
        text = json.dumps({"summary": self.summary(), "per_frame": per_frame}, default=float)
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


@dataclasses.dataclass(frozen=True)
class HumanoidReplayResult:
    """A replay's trajectory, one row per frame replayed.

    frames (T,): the motion frame of each row. qpos (T, nq): simulated model positions (layout of
    ``HumanoidModel.model``); reference_qpos (T, nq): ``model_qpos`` (the targets). hand_root_pose[side]
    (T, 7): simulated hand root ``T_world_base``. T is shorter than the selection when the physics diverged.
    """

    physics: bool
    fps: float
    frames: np.ndarray
    qpos: np.ndarray
    reference_qpos: np.ndarray
    hand_root_pose: dict[str, np.ndarray]
    metrics: HumanoidReplayMetrics

    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    @property
    def diverged(self) -> bool:
        return self.metrics.diverged


@dataclasses.dataclass
class _Trace:
    """What each frame records (rows filled up to ``n``)."""

    qpos: np.ndarray
    root: dict[str, np.ndarray]
    tips: dict[str, np.ndarray]
    depth: np.ndarray  # (T, len(CONTACT_PAIRS))
    n: int = 0

    @classmethod
    def empty(cls, scene: HumanoidScene, T: int) -> _Trace:
        return cls(np.zeros((T, scene.model.nq)), {s: np.zeros((T, 7)) for s in scene.sides},
                   {s: np.zeros((T, len(scene.tips[s]), 3)) for s in scene.sides}, np.zeros((T, len(CONTACT_PAIRS))))  # fmt: skip

    def record(self, scene: HumanoidScene, d: mujoco.MjData) -> None:
        k = self.n
        self.qpos[k] = d.qpos
        for s in scene.sides:
            self.root[s][k, :3], self.root[s][k, 3:] = d.xpos[scene.hand_root[s]], d.xquat[scene.hand_root[s]]
            self.tips[s][k] = d.site_xpos[scene.tips[s]]
        n = d.ncon
        if n:
            g = d.contact.geom[:n]
            lab = scene.pair_label[g[:, 0], g[:, 1]]
            depth = -d.contact.dist[:n]
            for i in np.flatnonzero((lab >= 0) & (depth > 0)):
                self.depth[k, lab[i]] = max(self.depth[k, lab[i]], depth[i])
        self.n += 1


def _reference(scene: HumanoidScene, q_ref: np.ndarray) -> dict[str, np.ndarray]:
    """Fingertips (T, k, 3) of the kinematic replay per side (a separate ``MjData``)."""
    m = scene.model
    d = mujoco.MjData(m)
    tips = {s: np.zeros((len(q_ref), len(scene.tips[s]), 3)) for s in scene.sides}
    for k, q in enumerate(q_ref):
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        for s in scene.sides:
            tips[s][k] = d.site_xpos[scene.tips[s]]
    return tips


def _play_kinematic(scene: HumanoidScene, q_ref: np.ndarray, trace: _Trace, on_frame) -> float:
    m, d = scene.model, scene.data
    callback = 0.0
    mujoco.mj_resetData(m, d)
    for k, q in enumerate(q_ref):
        d.qpos[:] = q
        mujoco.mj_forward(m, d)
        trace.record(scene, d)
        if on_frame is not None:
            t0 = time.perf_counter()
            on_frame(k, scene)
            callback += time.perf_counter() - t0
    return callback


def _targets(scene: HumanoidScene, q_ref: np.ndarray, fps: float, n_sub: int, cfg: HumanoidReplayConfig):
    """Per sim step ctrl (N, nu) and feed-forward joint forces (N, nv), N = (T - 1) * n_sub + 1."""
    m = scene.model
    c = np.clip(q_ref[:, scene.act_qadr], scene.ctrl_lo, scene.ctrl_hi)  # (T, nu)
    T = len(c)
    a = (np.arange(1, n_sub + 1) / n_sub)[None, :, None]
    ctrl = np.concatenate([c[:1], (c[:-1, None] + a * (c[1:] - c[:-1])[:, None]).reshape(-1, m.nu)])
    ff = np.zeros((len(ctrl), m.nv))
    if cfg.velocity_feedforward and T > 1:
        vel = np.repeat(np.diff(c, axis=0) * fps, n_sub, axis=0)  # constant over each frame interval
        ff[1:, scene.act_vadr] = (scene.act_kv + scene.act_damping) * vel
    return ctrl, ff


def _diverged(m: mujoco.MjModel, d: mujoco.MjData, warn0: int, max_speed: float) -> bool:
    bad = int(d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number) > warn0
    return bad or not (np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all()) or np.abs(d.qvel).max() > max_speed


def _play_physics(scene: HumanoidScene, q_ref: np.ndarray, fps: float, cfg: HumanoidReplayConfig, trace: _Trace,
                  on_frame) -> tuple[float, float, float, int | None]:  # fmt: skip
    """Returns (timestep s, callback wall s, max joint speed rad/s, first diverged row or None)."""
    m, d = scene.model, scene.data
    saved = m.opt.timestep
    dt, n_sub = _physics_timestep(fps, saved)
    m.opt.timestep = dt
    callback, vmax, bad_row = 0.0, 0.0, None
    try:
        ctrl_seq, ff_seq = _targets(scene, q_ref, fps, n_sub, cfg)
        mujoco.mj_resetData(m, d)
        d.qpos[:] = q_ref[0]
        d.ctrl[:] = ctrl_seq[0]
        mujoco.mj_forward(m, d)
        warn0 = int(d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number)
        ctrl, qfrc, step = d.ctrl, d.qfrc_applied, mujoco.mj_step
        for k in range(len(q_ref)):
            if k > 0:
                for j in range((k - 1) * n_sub + 1, k * n_sub + 1):  # hot loop
                    ctrl[:] = ctrl_seq[j]
                    qfrc[:] = ff_seq[j]
                    step(m, d)
                if _diverged(m, d, warn0, cfg.max_joint_speed):
                    bad_row = k
                    log.warning("physics diverged between motion frames %d and %d; the replay stops there",
                                cfg.start + k - 1, cfg.start + k)  # fmt: skip
                    break
                vmax = max(vmax, float(np.abs(d.qvel).max()))
                mujoco.mj_forward(m, d)  # positions, contacts and cameras at the frame time
            trace.record(scene, d)
            if on_frame is not None:
                t0 = time.perf_counter()
                on_frame(k, scene)
                callback += time.perf_counter() - t0
    finally:
        m.opt.timestep = saved
    return dt, callback, vmax, bad_row


def humanoid_replay(
    motion: RobotMotion,
    scene: HumanoidScene | None = None,
    *,
    physics: bool = False,
    config: HumanoidReplayConfig | None = None,
    scene_config: HumanoidSceneConfig | None = None,
    on_frame: Callable[[int, HumanoidScene], None] | None = None,
    aspect: float = 4 / 3,
) -> HumanoidReplayResult:
    """Replay a humanoid motion kinematically or with physics; returns the trajectory and metrics.

    scene: a scene of the motion's humanoid to reuse (default: :func:`build_humanoid_scene` with
    ``scene_config``); its cameras are framed on the motion (``aspect`` = image width / height).
    on_frame: called after each frame with ``(row, scene)``, the scene's data at that frame (rendering,
    progress). ``physics=True`` overrides ``config.physics``. Raises :class:`MotionValueError` for a
    motion without a humanoid body, :class:`ConfigError` for a scene of another robot.
    """
    cfg = config or HumanoidReplayConfig(physics=physics)
    if physics and not cfg.physics:
        cfg = dataclasses.replace(cfg, physics=True)
    scene = _scene_for(motion, scene, scene_config)
    stop = motion.num_frames if cfg.stop is None else min(cfg.stop, motion.num_frames)
    if stop <= cfg.start:
        raise ConfigError(f"HumanoidReplayConfig selects no frames (start={cfg.start}, stop={cfg.stop}, motion has "
                          f"{motion.num_frames})")  # fmt: skip
    frames = np.arange(cfg.start, stop)
    q_ref = model_qpos(scene.hm, motion)[frames]
    scene.frame_cameras(scene.framed_points(q_ref), aspect=aspect)
    trace = _Trace.empty(scene, len(frames))
    t0 = time.perf_counter()
    if cfg.physics:
        dt, callback, vmax, bad_row = _play_physics(scene, q_ref, motion.fps, cfg, trace, on_frame)
    else:
        dt, vmax, bad_row = float(scene.model.opt.timestep), 0.0, None
        callback = _play_kinematic(scene, q_ref, trace, on_frame)
    wall = time.perf_counter() - t0 - callback
    return _result(scene, motion, cfg, frames[: trace.n], q_ref[: trace.n], trace, dt, vmax, bad_row, wall)



def _scene_for(motion: RobotMotion, scene: HumanoidScene | None, config: HumanoidSceneConfig | None) -> HumanoidScene:
    if motion.body is None:
        raise MotionValueError("this robot motion has no humanoid body (retarget with --robot gr1_inspire, ...); "
                               "replay floating hands with handx_robot.sim.replay")  # fmt: skip
    if scene is None:
        return build_humanoid_scene(motion.body.robot, config)
    if scene.hm.spec.id != motion.body.robot:
        raise ConfigError(f"the scene is of {scene.hm.spec.id!r}, the motion of {motion.body.robot!r}")
    return scene

def _result(scene: HumanoidScene, motion: RobotMotion, cfg: HumanoidReplayConfig, frames, q_ref, trace: _Trace, dt,
            vmax, bad_row, wall) -> HumanoidReplayResult:  # fmt: skip
    T = len(frames)
    qpos = trace.qpos[:T]
    ref_tips = _reference(scene, q_ref)
    pos_err, rot_err, arm_err, hand_err, tip_err, roots = {}, {}, {}, {}, {}, {}
    for s in scene.sides:
        roots[s] = trace.root[s][:T]
        if s in motion.hands:
            target = motion.hands[s].wrist_pose[frames]
            pos_err[s] = np.linalg.norm(roots[s][:, :3] - target[:, :3], axis=1)
            rot_err[s] = quat_angle(roots[s][:, 3:], target[:, 3:])
        arm_err[s] = np.abs(qpos[:, scene.arm_qadr[s]] - q_ref[:, scene.arm_qadr[s]])
        hand_err[s] = np.abs(qpos[:, scene.hand_qadr[s]] - q_ref[:, scene.hand_qadr[s]])
        tip_err[s] = np.linalg.norm(trace.tips[s][:T] - ref_tips[s], axis=2).mean(axis=1)
    depth = {k: trace.depth[:T, i].copy() for i, k in enumerate(CONTACT_PAIRS)}
    hh = scene.hand_hand_gap(qpos, HAND_CONTACT_M) < HAND_CONTACT_M
    sj = None if motion.source_joints is None else motion.source_joints[frames]
    metrics = HumanoidReplayMetrics(
        physics=cfg.physics, robot=scene.hm.spec.id, fps=motion.fps, timestep=dt,
        hand_root_position_error=pos_err, hand_root_rotation_error=rot_err, arm_joint_error=arm_err,
        hand_joint_error=hand_err, fingertip_error=tip_err, contact_depth=depth, hand_hand_contact=hh,
        contact_f1=hand_contact_f1(hh, sj, motion.fps), max_joint_speed=vmax, diverged=bad_row is not None,
        diverged_frame=None if bad_row is None else int(cfg.start + bad_row), wall_time_s=wall,
    )  # fmt: skip
    return HumanoidReplayResult(cfg.physics, motion.fps, frames, qpos.copy(), q_ref.copy(), roots, metrics)


# ----------------------------------------------------------------------------------------------- video


def render_humanoid_replay(
    motion: RobotMotion,
    path: str | os.PathLike,
    *,
    config: HumanoidReplayConfig | None = None,
    scene: HumanoidScene | None = None,
    scene_config: HumanoidSceneConfig | None = None,
    camera: str = "front",
    width: int = 640,
    height: int = 480,
    side_by_side: bool = False,
    label_hands: bool = True,
    on_frame: Callable[[int, HumanoidScene], None] | None = None,
) -> HumanoidReplayResult:
    """:func:`humanoid_replay` while writing an mp4 to ``path`` (atomically: a failed replay leaves no file).

    camera: a camera of the scene (:data:`~handx_robot.sim.humanoid_scene.HUMANOID_CAMERAS` or the
    model's own). side_by_side: the human skeleton (``motion.source_joints``)
    next to the robot, seen from the robot camera (:class:`handx_robot.sim.render.SideBySide`).
    label_hands: ``left`` / ``right`` under each hand. The scene's framebuffer
    (``HumanoidSceneConfig.width/height``) must hold ``width x height``.
    """
    from handx_robot.sim.render import record_replay

    if side_by_side and motion.source_joints is None:
        raise ConfigError("side_by_side needs the human motion (the robot motion's source_joints), which it lacks")
    cfg = config or HumanoidReplayConfig()
    scene = _scene_for(motion, scene, scene_config or HumanoidSceneConfig(width=max(width, 640), height=max(height, 480)))
    if camera not in scene.camera_names:
        raise ConfigError(f"camera {camera!r} is not a camera of the humanoid scene; cameras: {', '.join(scene.camera_names)}")
    return record_replay(
        path, scene.model, motion.fps,
        lambda each: humanoid_replay(motion, scene, config=cfg, on_frame=each, aspect=width / height),
        camera=camera, width=width, height=height, t0=cfg.start / motion.fps, label_hands=label_hands,
        source_joints=motion.source_joints[cfg.start : cfg.stop] if side_by_side else None, on_frame=on_frame,
    )  # fmt: skip
