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
from collections.abc import Callable, Mapping, Sequence

import mujoco
import numpy as np
from handx_robot.retarget.robot_motion import RobotMotion
from handx_robot.sim.metrics import ReplayMetrics, hand_contact_f1, quat_angle
from handx_robot.sim.scene import HandModel, HandScene, SceneConfig, build_scene, tip_positions

from handx_robot.errors import ConfigError, MotionValueError, SolverError, UnknownJointError

__all__ = [
    "ReplayConfig",
    "ReplayResult",
    "replay",
    "scene_for_motion",
    "hand_models_for_motion",
    "motion_bounds",
    "robot_bounds",
    "sinusoid_motion",
    "root_poses",
]

log = logging.getLogger(__name__)

#: distance from the lowest point of the hands (kinematic pass) to the floor, m
FLOOR_CLEARANCE_M = 0.05
#: room left around the hands' bounding box by the auto-framed preset cameras (1 = touching the edges)
CAMERA_MARGIN = 1.05


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """physics: PD tracking (True) or kinematic playback (False).
    velocity_feedforward: add ``(kv + joint damping) * qdot_target`` to the PD law (physics).
    wrist_lead: move each wrist target ahead in time by the weld's ramp lag (``2 * d0 * timeconst``, ~9 ms),
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


def hand_models_for_motion(motion: RobotMotion, assets=None) -> dict[str, HandModel]:
    """One :class:`HandModel` per side of the motion, from the registry ids stored in the motion."""
    return {side: HandModel.from_registry(h.robot, assets=assets, side=side) for side, h in motion.hands.items()}


def motion_bounds(motion: RobotMotion) -> tuple[np.ndarray, np.ndarray]:
    """``(lo (3,), hi (3,))`` of the wrist positions (and human keypoints when present), m, world."""
    pts = [h.wrist_pose[:, :3] for h in motion.hands.values()]
    if motion.source_joints is not None:
        sj = motion.source_joints.reshape(-1, 3)
        pts.append(sj[np.any(sj != 0, axis=1)])
    allp = np.concatenate(pts, axis=0)
    return allp.min(axis=0), allp.max(axis=0)


def scene_for_motion(
    motion: RobotMotion,
    hands: Mapping[str, HandModel] | None = None,
    assets=None,
    config: SceneConfig | None = None,
    frame: bool = True,
) -> HandScene:
    """Build the scene a motion needs: its robots (registry ids, or ``hands``). Without ``config`` the
    ``frame``: aim every preset camera at the hands' bounding box over the motion, from the distance at
    which the box fits its image (:meth:`HandScene.frame_cameras`), and put the floor 5 cm under their
    lowest point (else ``config.view_center`` / ``floor_height`` stay)."""
    hands = dict(hands) if hands is not None else hand_models_for_motion(motion, assets)
    missing = [s for s in motion.sides if s not in hands]
    if missing:
        raise ConfigError(f"no robot model for the motion's {missing} hand(s); given: {sorted(hands)}")
    scene = build_scene([hands[s] for s in motion.sides], config)
    if frame:  # frame the cameras and put the floor under the hands
        lo, hi = robot_bounds(scene, motion)
        scene.frame_cameras(lo, hi, margin=CAMERA_MARGIN)
        scene.set_floor_height(float(lo[2]) - FLOOR_CLEARANCE_M)
        scene.forward()
    return scene


def robot_bounds(scene: HandScene, motion: RobotMotion, max_samples: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """``(lo (3,), hi (3,))`` of the robot geometry over (up to ``max_samples``) kinematic frames, m, world."""
    targets = _check_motion(motion, scene)
    data = mujoco.MjData(scene.model)
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for f in np.unique(np.linspace(0, motion.num_frames - 1, max_samples).round().astype(int)):
        for s in motion.sides:
            h = scene._hand(s)
            data.qpos[h.qadr] = targets[s][f]
            w = motion.hands[s].wrist_pose[f].copy()
            w[3:] /= np.linalg.norm(w[3:])
            data.qpos[h.free_qadr : h.free_qadr + 7] = h.base_to_mount(w)
        mujoco.mj_kinematics(scene.model, data)
        a, b = scene.robot_extent(data)
        lo, hi = np.minimum(lo, a), np.maximum(hi, b)
    return lo, hi


def _check_motion(motion: RobotMotion, scene: HandScene) -> dict[str, np.ndarray]:
    """Validate names and values; returns per side the motion's columns in model joint order
    (``(T, n)``, mimic followers missing from the motion filled from their leaders)."""
    problems = []
    for side in motion.sides:
        if side not in scene.sides:
            problems.append(f"the motion has a {side} hand, the scene has only {', '.join(scene.sides)}")
            continue
        traj = motion.hands[side]
        model = scene.joint_names(side)
        mimic = scene.mimic_joints(side)
        missing = [n for n in model if n not in traj.joint_names and n not in mimic]
        extra = [n for n in traj.joint_names if n not in model]
        if missing or extra:
            problems.append(
                f"{side} hand (motion robot '{traj.robot}', scene robot '{scene.robot_id(side)}'): "
                f"joints in the model but not in the motion: {missing}; in the motion but not in the model: "
                f"{extra}"
            )
    if problems:
        raise UnknownJointError(
            "the robot motion does not match the robot model: " + "; ".join(problems)
            + ". Retarget the motion for this robot, or pass the robot it was retargeted for."
        )
    out = {}
    for side in motion.sides:
        traj = motion.hands[side]
        for field, arr in (("qpos", traj.qpos), ("wrist_pose", traj.wrist_pose)):
            bad = ~np.isfinite(arr)
            if bad.any():
                f, c = (int(v) for v in np.argwhere(bad)[0])
                what = traj.joint_names[c] if field == "qpos" else "xyz qw qx qy qz".split()[c]
                raise MotionValueError(
                    f"{side} hand: {field} is NaN/inf at frame {f} ({what}); fix or drop that frame"
                )
        q = traj.model_qpos(scene.joint_names(side), scene.mimic_joints(side))
        quat_norm = np.linalg.norm(traj.wrist_pose[:, 3:], axis=1)
        if np.any(quat_norm < 1e-6):
            raise MotionValueError(f"{side} hand: wrist quaternion is zero at frame {int(np.argmin(quat_norm))}")
        out[side] = q
    return out


def _slerp(q0: np.ndarray, q1: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Slerp of unit quaternions ``q0, q1 (4,)`` at fractions ``a (k,)`` -> ``(k, 4)`` (shortest arc)."""
    if q0 @ q1 < 0:
        q1 = -q1
    dot = float(np.clip(q0 @ q1, -1.0, 1.0))
    if dot > 0.9995:
        out = q0[None] + a[:, None] * (q1 - q0)[None]
    else:
        th = math.acos(dot)
        out = (np.sin((1 - a) * th)[:, None] * q0 + np.sin(a * th)[:, None] * q1) / math.sin(th)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _physics_timestep(fps: float, max_dt: float) -> tuple[float, int]:
    period = 1.0 / fps
    n = max(1, math.ceil(period / max_dt - 1e-9))
    return period / n, n


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
    targets = _check_motion(motion, scene)
    stop = motion.num_frames if cfg.stop is None else min(cfg.stop, motion.num_frames)
    frames = range(cfg.start, stop)
    T = len(frames)
    if T < 1:
        raise ConfigError(f"ReplayConfig selects no frames (start={cfg.start}, stop={cfg.stop}, motion has {motion.num_frames})")
    sides = motion.sides
    m, d = scene.model, scene.data
    hidx = {s: scene._hand(s) for s in sides}  # index tables (same package)
    wrist = {s: motion.hands[s].wrist_pose.copy() for s in sides}  # T_world_base
    for s in sides:
        wrist[s][:, 3:] /= np.linalg.norm(wrist[s][:, 3:], axis=1, keepdims=True)
    mount = {s: hidx[s].base_to_mount(wrist[s]) for s in sides}  # T_world_mount, what MuJoCo moves

    # ---- kinematic reference (a separate MjData: positions, contacts)
    ref = mujoco.MjData(m)
    ref_tips = {s: np.zeros((T, len(hidx[s].tip_body_ids), 3)) for s in sides}
    ref_contact = np.zeros(T, dtype=bool)
    ref_hh = np.zeros(T)
    ref_he = np.zeros(T)
    clamped = {s: 0 for s in sides}
    for s in sides:
        h = hidx[s]
        aidx = [h.joint_names.index(n) for n in h.actuated]
        qa = targets[s][:, aidx]
        out = (qa < h.ctrl_lo - 1e-3) | (qa > h.ctrl_hi + 1e-3)
        clamped[s] = int(out.any(axis=1).sum())
        if clamped[s]:
            log.warning("%s hand: targets outside the joint range in %d frames (clamped in physics)", s, clamped[s])
    t0 = time.perf_counter()
    for k, f in enumerate(frames):
        for s in sides:
            h = hidx[s]
            ref.qpos[h.qadr] = targets[s][f]
            ref.qpos[h.free_qadr : h.free_qadr + 7] = mount[s][f]
            ref.mocap_pos[h.mocap_id] = mount[s][f, :3]
            ref.mocap_quat[h.mocap_id] = mount[s][f, 3:]
        mujoco.mj_kinematics(m, ref)
        mujoco.mj_collision(m, ref)
        for s in sides:
            ref_tips[s][k] = tip_positions(hidx[s], ref)
        c = _contacts(scene, ref)
        ref_contact[k], ref_hh[k], ref_he[k] = c
    kin_wall = time.perf_counter() - t0

    qpos_out = {s: np.zeros((T, len(hidx[s].joint_names))) for s in sides}
    wrist_out = {s: np.zeros((T, 7)) for s in sides}  # simulated T_world_base
    mount_out = {s: mount[s][np.asarray(list(frames))].copy() for s in sides}  # simulated hand root pose
    tips_out = {s: np.zeros_like(ref_tips[s]) for s in sides}
    contact = np.zeros(T, dtype=bool)
    hh = np.zeros(T)
    he = np.zeros(T)

    if not cfg.physics:
        scene.reset()
        for k, f in enumerate(frames):
            for s in sides:
                h = hidx[s]
                d.qpos[h.qadr] = targets[s][f]
                d.qpos[h.free_qadr : h.free_qadr + 7] = mount[s][f]
                d.mocap_pos[h.mocap_id] = mount[s][f, :3]
                d.mocap_quat[h.mocap_id] = mount[s][f, 3:]
            if on_frame is not None:
                mujoco.mj_forward(m, d)
                on_frame(k, scene)
            for s in sides:
                qpos_out[s][k] = targets[s][f]
                wrist_out[s][k] = wrist[s][f]
                tips_out[s][k] = ref_tips[s][k]
        contact, hh, he = ref_contact, ref_hh, ref_he
        rtf, wall, dt = None, kin_wall, float(m.opt.timestep)
    else:
        dt, n_sub = _physics_timestep(motion.fps, scene.config.timestep)
        m.opt.timestep = dt
        try:
            t1 = time.perf_counter()
            ctrl_seq, ff_seq, mpos_seq, mquat_seq = _interpolate(scene, motion, targets, mount, frames, n_sub, cfg)
            scene.reset()
            f0 = frames[0]
            for s in sides:
                h = hidx[s]
                d.qpos[h.qadr] = targets[s][f0]
                d.qpos[h.free_qadr : h.free_qadr + 7] = mount[s][f0]
            d.ctrl[:] = ctrl_seq[0]
            d.mocap_pos[:] = mpos_seq[0]
            d.mocap_quat[:] = mquat_seq[0]
            mujoco.mj_forward(m, d)
            warn0 = int(d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number)
            ctrl, qfrc, mpos, mquat, step = d.ctrl, d.qfrc_applied, d.mocap_pos, d.mocap_quat, mujoco.mj_step
            callback_wall = 0.0
            tip_x = {s: np.zeros((T, len(hidx[s].tip_body_ids), 3)) for s in sides}
            tip_R = {s: np.zeros((T, len(hidx[s].tip_body_ids), 9)) for s in sides}
            for k in range(T):
                if k > 0:
                    base = (k - 1) * n_sub
                    for j in range(base + 1, base + n_sub + 1):  # hot loop: views bound once
                        ctrl[:] = ctrl_seq[j]
                        qfrc[:] = ff_seq[j]
                        mpos[:] = mpos_seq[j]
                        mquat[:] = mquat_seq[j]
                        step(m, d)
                    _check_diverged(m, d, frames[k], warn0, motion.fps, bool(contact[k - 1]), float(hh[k - 1]))
                    mujoco.mj_kinematics(m, d)  # positions at the frame time (mj_step leaves them one step old)
                    mujoco.mj_collision(m, d)
                for s in sides:  # raw copies only: poses and fingertips are derived after the loop
                    h = hidx[s]
                    qpos_out[s][k] = d.qpos[h.qadr]
                    mount_out[s][k, :3] = d.xpos[h.mount_id]
                    mount_out[s][k, 3:] = d.xquat[h.mount_id]
                    tip_x[s][k] = d.xpos[h.tip_body_ids]
                    tip_R[s][k] = d.xmat[h.tip_body_ids]
                contact[k], hh[k], he[k] = _contacts(scene, d)
                if on_frame is not None:
                    t2 = time.perf_counter()
                    on_frame(k, scene)
                    callback_wall += time.perf_counter() - t2
            for s in sides:
                h = hidx[s]
                wrist_out[s][:] = h.mount_to_base(mount_out[s])
                tips_out[s][:] = tip_x[s] + np.einsum("tkij,kj->tki", tip_R[s].reshape(T, -1, 3, 3), h.tip_offsets)
            sim_wall = time.perf_counter() - t1 - callback_wall  # stepping + metrics, not the callback
            sim_time = (T - 1) * n_sub * dt
            rtf = sim_time / sim_wall if sim_wall > 0 else None
            wall = sim_wall
        finally:
            m.opt.timestep = scene.config.timestep

    sel = np.asarray(list(frames))
    joint_err = {s: np.abs(qpos_out[s] - targets[s][sel]) for s in sides}
    metrics = ReplayMetrics(
        physics=cfg.physics,
        fps=motion.fps,
        timestep=dt,
        joint_error={s: joint_err[s].mean(axis=1) for s in sides},
        joint_error_max={s: joint_err[s].max(axis=1) for s in sides},
        wrist_pos_error={s: np.linalg.norm(mount_out[s][:, :3] - mount[s][sel, :3], axis=1) for s in sides},
        wrist_rot_error={s: quat_angle(mount_out[s][:, 3:], mount[s][sel, 3:]) for s in sides},
        fingertip_error={s: np.linalg.norm(tips_out[s] - ref_tips[s], axis=2).mean(axis=1) for s in sides},
        hand_hand_contact=contact,
        hand_hand_penetration=hh,
        hand_env_penetration=he,
        contact_f1=hand_contact_f1(
            contact, None if motion.source_joints is None else motion.source_joints[sel], motion.fps
        ),
        real_time_factor=rtf,
        wall_time_s=wall,
        clamped_targets=clamped,
    )
    return ReplayResult(
        physics=cfg.physics,
        fps=motion.fps,
        joint_names={s: hidx[s].joint_names for s in sides},
        qpos=qpos_out,
        wrist_pose=wrist_out,
        fingertip_names={s: hidx[s].fingertips for s in sides},
        fingertips=tips_out,
        reference_fingertips=ref_tips,
        metrics=metrics,
    )


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
    n = data.ncon
    if n == 0:
        return False, 0.0, 0.0
    geoms = data.contact.geom[:n]
    depth = np.maximum(-data.contact.dist[:n], 0.0)
    s1, s2 = scene._geom_side[geoms[:, 0]], scene._geom_side[geoms[:, 1]]
    hh = (s1 >= 0) & (s2 >= 0) & (s1 != s2)
    he = (s1 >= 0) ^ (s2 >= 0)
    return (
        bool(hh.any()),
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
            mquat[rows, h.mocap_id] = _slerp(w[k, 3:], w[k + 1, 3:], a)
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


def sinusoid_motion(
    scene: HandScene,
    seconds: float = 2.0,
    fps: float = 30.0,
    amplitude: float = 0.35,
    frequency_hz: float = 0.5,
    wrist_poses: Mapping[str, Sequence[float]] | None = None,
    wrist_radius_m: float = 0.02,
    wrist_yaw_rad: float = 0.2,
    seed: int = 0,
) -> RobotMotion:
    """A smooth test motion for the scene's hands.

    Each actuated joint follows ``mid + amplitude * half_range * sin(2 pi f t + phase)`` (random phases,
    ``seed``). Each wrist (``T_world_base``) circles with radius ``wrist_radius_m`` in the world xy plane
    around ``wrist_poses[side]`` (3 numbers: position, identity orientation; or 7: a full pose; default
    x = -/+0.15 m, z = 0.3 m) while yawing by ``wrist_yaw_rad * sin(2 pi f t)`` about world z."""
    from handx_robot.retarget.robot_motion import HandTrajectory
    from handx_robot.sim.scene import quat_mul

    if not (0 < amplitude <= 1):
        raise ConfigError(f"sinusoid_motion: amplitude must be in (0, 1], got {amplitude}")
    rng = np.random.default_rng(seed)
    T = max(2, int(round(seconds * fps)))
    t = np.arange(T) / fps
    hands = {}
    for i, side in enumerate(scene.sides):
        limits = scene.joint_limits(side)
        names = scene.actuated_joint_names(side)
        q = np.zeros((T, len(names)))
        for j, n in enumerate(names):
            lo, hi = limits[n]
            if not np.isfinite(lo):
                lo, hi = -0.5, 0.5
            mid, half = (lo + hi) / 2, (hi - lo) / 2
            q[:, j] = mid + amplitude * half * np.sin(2 * np.pi * frequency_hz * t + rng.uniform(0, 2 * np.pi))
        given = np.asarray((wrist_poses or {}).get(side, (-0.15 if side == "left" else 0.15, 0.0, 0.3)), dtype=np.float64)
        if given.shape not in ((3,), (7,)):
            raise ConfigError(f"sinusoid_motion: wrist_poses[{side!r}] must have 3 or 7 numbers, got {given.shape}")
        q0 = given[3:] / np.linalg.norm(given[3:]) if given.shape == (7,) else np.array([1.0, 0, 0, 0])
        w = np.zeros((T, 7))
        ang = 2 * np.pi * frequency_hz * t + i * np.pi
        w[:, 0] = given[0] + wrist_radius_m * np.cos(ang)
        w[:, 1] = given[1] + wrist_radius_m * np.sin(ang)
        w[:, 2] = given[2]
        yaw = wrist_yaw_rad * np.sin(2 * np.pi * frequency_hz * t)
        q_yaw = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
        w[:, 3:] = quat_mul(q_yaw, q0[None])
        hands[side] = HandTrajectory(
            robot=scene.robot_id(side), joint_names=names, qpos=q, wrist_pose=w, converged=np.ones(T, bool)
        )
    return RobotMotion(fps=fps, hands=hands, text="sinusoid test motion")


def root_poses(scene: HandScene, roots: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """``T_world_base`` (7,) per side that puts each hand's root body at ``roots[side]`` (3 or 7 numbers)
    (the built-in Shadow's model frame is 1.6 m away from its hand: place the hand, not the frame)."""
    from handx_robot.sim.scene import compose_poses, invert_pose

    out = {}
    for side, r in roots.items():
        r = np.asarray(r, dtype=np.float64)
        pose = np.concatenate([r, [1.0, 0, 0, 0]]) if r.shape == (3,) else r
        out[side] = compose_poses(pose, invert_pose(scene._hand(side).T_base_root))
    return out
