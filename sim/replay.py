"""Replay a robot motion (:class:`handx_robot.retarget.robot_motion.RobotMotion`) in a MuJoCo :class:`HandScene`.

Two modes:

* kinematic: every motion frame sets joint and wrist positions exactly (mimic followers from their
  leaders); this is the reference and what the video shows when physics is off.
* physics: PD tracking with gravity and contacts. The sim timestep is the largest
  ``frame_period / k <= SceneConfig.timestep`` (so motion frames fall on sim steps); targets are
  interpolated linearly between frames (wrist orientation by slerp) and the target velocity is fed
  forward (``(kv + joint damping) * qdot_target``). The state starts at the kinematic frame 0.

Both return a :class:`ReplayResult` with the simulated trajectory and :class:`handx_robot.sim.metrics.ReplayMetrics`.
Joint positions rad (m for slide joints), positions m in the world frame (Z-up), poses
``[x, y, z, qw, qx, qy, qz]``.

:func:`scene_for_motion` (:mod:`handx_robot.sim.framing`) fits the scene to the motion: it visits
every frame kinematically (:func:`motion_extent`), aims the preset cameras at the box of the palms and fingertips and puts the
floor just under the lowest point of the hands' geometry. Synthetic test motions:
:mod:`handx_robot.sim.synthetic`.

Library use::

    from handx_robot.retarget.robot_motion import load_robot_motion
    from handx_robot.sim.replay import replay, scene_for_motion

    motion = load_robot_motion("robot.npz")
    scene = scene_for_motion(motion, assets="../shared/assets/dex-urdf")   # robots from the registry
    result = replay(motion, scene, physics=True)
    result.metrics.summary()["hands"]["right"]["fingertip_error_m"]     # {"mean": ..., "max": ..., "p95": ...}
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping

import mujoco
import numpy as np
from handx_robot.retarget.robot_motion import RobotMotion
from handx_robot.sim.framing import (
    CAMERA_MARGIN,
    FLOOR_CLEARANCE_M,
    HAND_PAD_M,
    MotionExtent,
    check_motion,
    hand_models_for_motion,
    motion_bounds,
    motion_extent,
    robot_bounds,
    scene_for_motion,
    unit_quats,
)
from handx_robot.sim.metrics import HAND_CONTACT_M, ReplayMetrics, hand_contact_f1, hand_gap
from handx_robot.sim.scene import HandModel, HandScene, SceneConfig, tip_positions

from handx_robot.errors import ConfigError, SolverError
from handx_robot.rotations import quat_angle, quat_slerp

__all__ = [  # scene fitting re-exported from handx_robot.sim.framing
    "FLOOR_CLEARANCE_M",
    "CAMERA_MARGIN",
    "HAND_PAD_M",
    "ReplayConfig",
    "ReplayResult",
    "MotionExtent",
    "replay",
    "scene_for_motion",
    "hand_models_for_motion",
    "motion_bounds",
    "motion_extent",
    "robot_bounds",
]

log = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """physics: PD tracking (True) or kinematic playback (False).
    velocity_feedforward: add ``(kv + joint damping) * qdot_target`` to the PD law (physics).
    wrist_lead: move each wrist target ahead in time by the weld's ramp lag (``2 * d0 * timeconst``),
        the wrist's velocity feed-forward (physics).
    start: first motion frame, stop: one past the last (None = end).
    """

    physics: bool = False
    velocity_feedforward: bool = True
    wrist_lead: bool = True
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise ConfigError(f"ReplayConfig: need 0 <= start < stop, got start={self.start}, stop={self.stop}")


@dataclasses.dataclass(frozen=True)
class ReplayResult:
    """Trajectory of a replay, one entry per motion frame.

    qpos[side]:       (T, n) simulated joint positions in ``joint_names[side]`` order.
    joint_names[side]: the model's joint names (robot names).
    wrist_pose[side]: (T, 7) simulated ``T_world_base``.
    fingertips[side]: (T, k, 3) simulated fingertip positions, m, world; names in ``fingertip_names``.
    reference_fingertips[side]: (T, k, 3) kinematic reference fingertips.
    metrics:          per-frame metrics and summary.
    """

    physics: bool
    fps: float
    joint_names: dict[str, tuple[str, ...]]
    qpos: dict[str, np.ndarray]
    wrist_pose: dict[str, np.ndarray]
    fingertip_names: dict[str, tuple[str, ...]]
    fingertips: dict[str, np.ndarray]
    reference_fingertips: dict[str, np.ndarray]
    metrics: ReplayMetrics

    @property
    def num_frames(self) -> int:
        return int(self.metrics.hand_hand_contact.shape[0])


def _physics_timestep(fps: float, max_dt: float) -> tuple[float, int]:
    period = 1.0 / fps
    n = max(1, math.ceil(period / max_dt - 1e-9))
    return period / n, n


@dataclasses.dataclass
class _Trace:
    """Per-frame record of one pass over the selected motion frames (``T`` rows; per side)."""

    qpos: dict[str, np.ndarray]  # (T, n) joint positions, joint_names order
    mount: dict[str, np.ndarray]  # (T, 7) T_world_mount of the hand's root body
    tips: dict[str, np.ndarray]  # (T, k, 3) fingertips, m, world
    contact: np.ndarray  # (T,) bool: hand-hand contact
    hh: np.ndarray  # (T,) deepest hand-hand penetration, m
    he: np.ndarray  # (T,) deepest hand-environment penetration, m
    wall: float = 0.0  # wall time of the pass, s
    rtf: float | None = None  # real-time factor (physics)

    @classmethod
    def empty(cls, hands: Mapping, T: int) -> _Trace:
        return cls(
            qpos={s: np.zeros((T, len(h.joint_names))) for s, h in hands.items()},
            mount={s: np.zeros((T, 7)) for s in hands},
            tips={s: np.zeros((T, len(h.tip_body_ids), 3)) for s, h in hands.items()},
            contact=np.zeros(T, dtype=bool), hh=np.zeros(T), he=np.zeros(T),
        )  # fmt: skip


def replay(
    motion: RobotMotion,
    scene: HandScene | None = None,
    *,
    physics: bool = False,
    config: ReplayConfig | None = None,
    hands: Mapping[str, HandModel] | None = None,
    assets=None,
    scene_config: SceneConfig | None = None,
    on_frame: Callable[[int, HandScene], None] | None = None,
) -> ReplayResult:
    """Replay ``motion`` kinematically or with physics; returns the trajectory and metrics.

    scene:    a scene to reuse (it is reset); default: :func:`scene_for_motion`.
    on_frame: called after each motion frame with ``(frame_index, scene)`` (rendering, progress);
              the scene state is the simulated one at that frame.
    Raises :class:`UnknownJointError` listing mismatched joint names and :class:`MotionValueError`
    naming the frame of a NaN.
    """
    cfg = config or ReplayConfig(physics=physics)
    if config is not None and physics and not config.physics:
        cfg = dataclasses.replace(config, physics=True)
    if scene is None:
        scene = scene_for_motion(motion, hands=hands, assets=assets, config=scene_config)
    targets = check_motion(motion, scene)
    stop = motion.num_frames if cfg.stop is None else min(cfg.stop, motion.num_frames)
    frames = range(cfg.start, stop)
    if len(frames) < 1:
        raise ConfigError(f"ReplayConfig selects no frames (start={cfg.start}, stop={cfg.stop}, motion has {motion.num_frames})")
    hidx = {s: scene._hand(s) for s in motion.sides}  # index tables (same package)
    wrist = {s: unit_quats(motion.hands[s].wrist_pose) for s in motion.sides}  # T_world_base
    mount = {s: hidx[s].base_to_mount(wrist[s]) for s in motion.sides}  # T_world_mount, what MuJoCo moves
    clamped = _count_clamped(hidx, targets)
    ref = _kinematic_reference(scene, hidx, targets, mount, frames)
    sel = np.asarray(list(frames))
    if cfg.physics:
        sim, dt = _play_physics(scene, motion, hidx, targets, mount, frames, cfg, on_frame)
        wrist_out = {s: hidx[s].mount_to_base(sim.mount[s]) for s in hidx}  # simulated T_world_base
    else:
        sim, dt = _play_kinematic(scene, hidx, targets, mount, frames, ref, on_frame), float(scene.model.opt.timestep)
        wrist_out = {s: wrist[s][sel].copy() for s in hidx}
    joint_err = {s: np.abs(sim.qpos[s] - targets[s][sel]) for s in hidx}
    metrics = ReplayMetrics(
        physics=cfg.physics,
        fps=motion.fps,
        timestep=dt,
        joint_error={s: joint_err[s].mean(axis=1) for s in hidx},
        joint_error_max={s: joint_err[s].max(axis=1) for s in hidx},
        wrist_pos_error={s: np.linalg.norm(sim.mount[s][:, :3] - mount[s][sel, :3], axis=1) for s in hidx},
        wrist_rot_error={s: quat_angle(sim.mount[s][:, 3:], mount[s][sel, 3:]) for s in hidx},
        fingertip_error={s: np.linalg.norm(sim.tips[s] - ref.tips[s], axis=2).mean(axis=1) for s in hidx},
        hand_hand_contact=sim.contact,
        hand_hand_penetration=sim.hh,
        hand_env_penetration=sim.he,
        contact_f1=hand_contact_f1(
            sim.contact, None if motion.source_joints is None else motion.source_joints[sel], motion.fps
        ),
        real_time_factor=sim.rtf,
        wall_time_s=sim.wall,
        clamped_targets=clamped,
    )
    return ReplayResult(
        physics=cfg.physics,
        fps=motion.fps,
        joint_names={s: hidx[s].joint_names for s in hidx},
        qpos=sim.qpos,
        wrist_pose=wrist_out,
        fingertip_names={s: hidx[s].fingertips for s in hidx},
        fingertips=sim.tips,
        reference_fingertips=ref.tips,
        metrics=metrics,
    )


def _count_clamped(hidx: Mapping, targets: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Per side, the number of frames with an actuated target outside the joint range (warned)."""
    clamped = {}
    for s, h in hidx.items():
        aidx = [h.joint_names.index(n) for n in h.actuated]
        qa = targets[s][:, aidx]
        out = (qa < h.ctrl_lo - 1e-3) | (qa > h.ctrl_hi + 1e-3)
        clamped[s] = int(out.any(axis=1).sum())
        if clamped[s]:
            log.warning("%s hand: targets outside the joint range in %d frames (clamped in physics)", s, clamped[s])
    return clamped


def _set_kinematic(hidx: Mapping, data: mujoco.MjData, targets, mount, f: int) -> None:
    """Joint positions, free joints and mocap targets of motion frame ``f`` into ``data``."""
    for s, h in hidx.items():
        data.qpos[h.qadr] = targets[s][f]
        data.qpos[h.free_qadr : h.free_qadr + 7] = mount[s][f]
        data.mocap_pos[h.mocap_id] = mount[s][f, :3]
        data.mocap_quat[h.mocap_id] = mount[s][f, 3:]


def _kinematic_reference(scene: HandScene, hidx: Mapping, targets, mount, frames: range) -> _Trace:
    """The kinematic reference (in a separate ``MjData``): fingertips and contacts of every frame."""
    m = scene.model
    ref = mujoco.MjData(m)
    trace = _Trace.empty(hidx, len(frames))
    t0 = time.perf_counter()
    for k, f in enumerate(frames):
        _set_kinematic(hidx, ref, targets, mount, f)
        mujoco.mj_kinematics(m, ref)
        mujoco.mj_collision(m, ref)
        for s, h in hidx.items():
            trace.tips[s][k] = tip_positions(h, ref)
        trace.contact[k], trace.hh[k], trace.he[k] = _contacts(scene, ref)
    trace.wall = time.perf_counter() - t0
    return trace


def _play_kinematic(scene: HandScene, hidx: Mapping, targets, mount, frames: range, ref: _Trace, on_frame) -> _Trace:
    """Kinematic playback in the scene (for ``on_frame``); the trace is the reference's."""
    m, d = scene.model, scene.data
    sel = np.asarray(list(frames))
    scene.reset()
    for k, f in enumerate(frames):
        _set_kinematic(hidx, d, targets, mount, f)
        if on_frame is not None:
            mujoco.mj_forward(m, d)
            on_frame(k, scene)
    return _Trace(
        qpos={s: targets[s][sel].astype(np.float64) for s in hidx},
        mount={s: mount[s][sel].copy() for s in hidx},
        tips={s: ref.tips[s].copy() for s in hidx},
        contact=ref.contact, hh=ref.hh, he=ref.he, wall=ref.wall, rtf=None,
    )  # fmt: skip


def _play_physics(scene: HandScene, motion: RobotMotion, hidx: Mapping, targets, mount, frames: range,
                  cfg: ReplayConfig, on_frame) -> tuple[_Trace, float]:  # fmt: skip
    """PD tracking (see the module docstring) from the kinematic frame ``frames[0]``; returns the trace
    and the sim timestep, s. The scene's timestep is restored afterwards."""
    m, d = scene.model, scene.data
    dt, n_sub = _physics_timestep(motion.fps, scene.config.timestep)
    m.opt.timestep = dt
    try:
        t1 = time.perf_counter()
        seq = _interpolate(scene, motion, targets, mount, frames, n_sub, cfg)
        scene.reset()
        for s, h in hidx.items():
            d.qpos[h.qadr] = targets[s][frames[0]]
            d.qpos[h.free_qadr : h.free_qadr + 7] = mount[s][frames[0]]
        d.ctrl[:], d.mocap_pos[:], d.mocap_quat[:] = seq[0][0], seq[2][0], seq[3][0]
        mujoco.mj_forward(m, d)
        trace, callback_wall = _step_frames(scene, hidx, frames, n_sub, motion.fps, seq, on_frame)
        sim_wall = time.perf_counter() - t1 - callback_wall  # stepping + metrics, not the callback
    finally:
        m.opt.timestep = scene.config.timestep
    sim_time = (len(frames) - 1) * n_sub * dt
    trace.rtf = sim_time / sim_wall if sim_wall > 0 else None
    trace.wall = sim_wall
    return trace, dt


def _step_frames(scene: HandScene, hidx: Mapping, frames: range, n_sub: int, fps: float, seq, on_frame) -> tuple[_Trace, float]:
    """Step from each motion frame to the next (``n_sub`` sim steps fed from ``seq`` of
    :func:`_interpolate`), recording the state at every frame; returns the trace and the wall time
    spent in ``on_frame``, s."""
    m, d = scene.model, scene.data
    ctrl_seq, ff_seq, mpos_seq, mquat_seq = seq
    T = len(frames)
    trace = _Trace.empty(hidx, T)
    warn0 = int(d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number)
    ctrl, qfrc, mpos, mquat, step = d.ctrl, d.qfrc_applied, d.mocap_pos, d.mocap_quat, mujoco.mj_step
    callback_wall = 0.0
    tip_x = {s: np.zeros((T, len(h.tip_body_ids), 3)) for s, h in hidx.items()}
    tip_R = {s: np.zeros((T, len(h.tip_body_ids), 9)) for s, h in hidx.items()}
    for k in range(T):
        if k > 0:
            base = (k - 1) * n_sub
            for j in range(base + 1, base + n_sub + 1):  # hot loop: views bound once
                ctrl[:] = ctrl_seq[j]
                qfrc[:] = ff_seq[j]
                mpos[:] = mpos_seq[j]
                mquat[:] = mquat_seq[j]
                step(m, d)
            _check_diverged(m, d, frames[k], warn0, fps, bool(trace.contact[k - 1]), float(trace.hh[k - 1]))
            mujoco.mj_kinematics(m, d)  # positions at the frame time (mj_step leaves them one step old)
            mujoco.mj_collision(m, d)
        for s, h in hidx.items():  # raw copies only: poses and fingertips are derived after the loop
            trace.qpos[s][k] = d.qpos[h.qadr]
            trace.mount[s][k, :3] = d.xpos[h.mount_id]
            trace.mount[s][k, 3:] = d.xquat[h.mount_id]
            tip_x[s][k] = d.xpos[h.tip_body_ids]
            tip_R[s][k] = d.xmat[h.tip_body_ids]
        trace.contact[k], trace.hh[k], trace.he[k] = _contacts(scene, d)
        if on_frame is not None:
            t2 = time.perf_counter()
            on_frame(k, scene)
            callback_wall += time.perf_counter() - t2
    for s, h in hidx.items():
        trace.tips[s][:] = tip_x[s] + np.einsum("tkij,kj->tki", tip_R[s].reshape(T, -1, 3, 3), h.tip_offsets)
    return trace, callback_wall


def _check_diverged(
    m: mujoco.MjModel, d: mujoco.MjData, frame: int, warn0: int, fps: float, touching: bool, hh_depth: float
) -> None:
    """Raise :class:`SolverError` when the simulation blew up (non-finite state or MuJoCo's bad-qacc reset).

    Called after the sim steps from motion frame ``frame - 1`` to ``frame``. The time in the message is the
    motion time of that interval (``frame / fps``): ``d.time`` cannot be used, MuJoCo's bad-qacc handler
    resets the whole state (time included) to the model's defaults and keeps stepping from there.
    ``touching`` / ``hh_depth``: hand-hand contact and penetration (m) at frame ``frame - 1``."""
    bad = int(d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number) > warn0
    if bad or not (np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all()):
        where = (
            f"the hands were touching ({hh_depth * 1000:.1f} mm penetration); check that the wrist targets do not "
            "drive the hands deep into each other (SceneConfig.contact_timeconst must not exceed wrist_timeconst)"
            if touching
            else "check the model's inertias and the targets' speed"
        )
        raise SolverError(
            f"physics diverged between motion frames {frame - 1} and {frame} (motion time {(frame - 1) / fps:.3f}-"
            f"{frame / fps:.3f} s): MuJoCo reported unstable accelerations and reset the state; {where}; "
            "or lower the finger gains (--bandwidth) or the timestep (--timestep)"
        )


def _contacts(scene: HandScene, data: mujoco.MjData) -> tuple[bool, float, float]:
    """(the hands nearer than ``HAND_CONTACT_M``, the deepest hand-hand penetration, the deepest hand-environment
    penetration) at ``data``'s state (positions and contacts computed)."""
    m = scene.model
    collidable = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
    left, right = (np.flatnonzero(collidable & (scene._geom_side == h)) for h in (0, 1))  # _geom_side: 0 left, 1 right
    near = hand_gap(m, data, left, right) < HAND_CONTACT_M
    n = data.ncon
    if n == 0:
        return near, 0.0, 0.0
    geoms = data.contact.geom[:n]
    depth = np.maximum(-data.contact.dist[:n], 0.0)
    s1, s2 = scene._geom_side[geoms[:, 0]], scene._geom_side[geoms[:, 1]]
    hh = (s1 >= 0) & (s2 >= 0) & (s1 != s2)
    he = (s1 >= 0) ^ (s2 >= 0)
    return (
        near,
        float(depth[hh].max()) if hh.any() else 0.0,
        float(depth[he].max()) if he.any() else 0.0,
    )


def _interpolate(scene, motion, targets, wrist, frames, n_sub, cfg):
    """Per-sim-step ctrl, velocity feed-forward, mocap pos/quat: arrays of ``(T-1) * n_sub + 1`` rows."""
    m = scene.model
    T = len(frames)
    N = (T - 1) * n_sub + 1
    ctrl = np.zeros((N, m.nu))
    ff = np.zeros((N, m.nv))
    mpos = np.tile(scene.data.mocap_pos, (N, 1, 1))
    mquat = np.tile(scene.data.mocap_quat, (N, 1, 1))
    a = np.arange(n_sub + 1) / n_sub  # fraction within a frame interval
    sel = np.asarray(list(frames))
    for s in motion.sides:
        h = scene._hand(s)
        aidx = [h.joint_names.index(n) for n in h.actuated]
        q = np.clip(targets[s][sel][:, aidx], h.ctrl_lo, h.ctrl_hi)  # (T, a)
        w = wrist[s][sel]
        ctrl[0, h.act_ids] = q[0]
        mpos[0, h.mocap_id] = w[0, :3]
        mquat[0, h.mocap_id] = w[0, 3:]
        for k in range(T - 1):
            rows = slice(k * n_sub, (k + 1) * n_sub + 1)
            ctrl[rows, h.act_ids] = q[k][None] + a[:, None] * (q[k + 1] - q[k])[None]
            if cfg.velocity_feedforward:
                ff[rows.start + 1 : rows.stop, h.act_vadr] = (h.kv + h.damping) * (q[k + 1] - q[k]) * motion.fps
            mpos[rows, h.mocap_id] = w[k, :3][None] + a[:, None] * (w[k + 1, :3] - w[k, :3])[None]
            mquat[rows, h.mocap_id] = quat_slerp(w[k, 3:], w[k + 1, 3:], a)
    if cfg.wrist_lead:
        # the weld is a critically damped spring toward a target it sees as static: tracking a ramp it lags
        # by 2 * d0 * timeconst (d0 = solimp[0], impedance at zero violation). Leading the target by that
        # much is the arm's velocity feed-forward.
        eq = m.eq(f"handx/{motion.sides[0]}/wrist_weld").id
        lead_s = 2.0 * m.eq_solimp[eq, 0] * m.eq_solref[eq, 0]
        shift = int(round(lead_s / m.opt.timestep))
        if shift > 0:
            idx = np.minimum(np.arange(N) + shift, N - 1)
            mpos, mquat = mpos[idx], mquat[idx]
    return ctrl, ff, mpos, mquat
