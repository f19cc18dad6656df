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

:func:`scene_for_motion` fits the scene to the motion: it visits every frame kinematically
(:func:`motion_extent`), aims the preset cameras at the box of the palms and fingertips and puts the
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
from handx_robot.sim.metrics import ReplayMetrics, hand_contact_f1
from handx_robot.sim.scene import HandModel, HandScene, SceneConfig, build_scene, tip_positions

from handx_robot.errors import ConfigError, MotionValueError, SolverError, UnknownJointError
from handx_robot.rotations import quat_angle, quat_slerp

__all__ = [
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

#: gap between the lowest point of the hands' geometry over the whole motion and the floor, m (room for
#: the physics replay's tracking error; the kinematic replay never touches the floor)
FLOOR_CLEARANCE_M = 0.02
#: room left around the hands' bounding box by the auto-framed preset cameras (1 = touching the edges)
CAMERA_MARGIN = 1.05
#: the framed box is the palms' and fingertips' positions grown by this much (the thickness of palm and
#: fingers), m, and clipped to the box of the hands' geometry
HAND_PAD_M = 0.03


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


@dataclasses.dataclass(frozen=True)
class MotionExtent:
    """Where a motion takes the hands of a scene, over every frame (kinematic pass). Boxes ``lo, hi``
    ``(3,)`` float64, m, world.

    geometry_lo, geometry_hi: every hand geom (each geom's local bounding box turned into a world-axis box,
        so the box is conservative): no hand geometry goes below ``geometry_lo[2]``.
    hands_lo, hands_hi: the palms and fingertips (a hand's palm: the deepest body above all its fingertips)
        grown by the pad (:data:`HAND_PAD_M`) and clipped to the geometry box: what the cameras frame, so a
        long forearm (the Shadow's) does not push them back.
    """

    geometry_lo: np.ndarray
    geometry_hi: np.ndarray
    hands_lo: np.ndarray
    hands_hi: np.ndarray


def scene_for_motion(
    motion: RobotMotion,
    hands: Mapping[str, HandModel] | None = None,
    assets=None,
    config: SceneConfig | None = None,
    frame: bool = True,
) -> HandScene:
    """Build the scene a motion needs: its robots (registry ids, or ``hands``) in a scene of ``config``.

    frame: fit the scene to where the motion takes the hands (:func:`motion_extent`, every frame): aim
    every preset camera at the box of the palms and fingertips from the distance at which it fits the
    image (:meth:`HandScene.frame_cameras`), and put the floor :data:`FLOOR_CLEARANCE_M` under the lowest
    point of the hands' geometry (and under the table, if ``config`` has one). The same scene serves
    kinematic and physics replays. ``frame=False`` keeps ``config.view_center`` / ``view_distance`` /
    ``floor_height``.
    """
    hands = dict(hands) if hands is not None else hand_models_for_motion(motion, assets)
    missing = [s for s in motion.sides if s not in hands]
    if missing:
        raise ConfigError(f"no robot model for the motion's {missing} hand(s); given: {sorted(hands)}")
    scene = build_scene([hands[s] for s in motion.sides], config)
    if frame:
        extent = motion_extent(scene, motion)
        scene.frame_cameras(extent.hands_lo, extent.hands_hi, margin=CAMERA_MARGIN)
        scene.set_floor_height(_floor_height(extent, scene.config))
        scene.forward()
    return scene


def _floor_height(extent: MotionExtent, config: SceneConfig) -> float:
    """Floor z, m: :data:`FLOOR_CLEARANCE_M` under the hands' lowest point and, with a table, under the
    table's underside (a floor must not cut through the table). A table is the user's: it stays, with a
    warning when the hands reach below its top over its area."""
    z = float(extent.geometry_lo[2]) - FLOOR_CLEARANCE_M
    t = config.table
    if t is None:
        return z
    half = np.asarray(t.size_xy) / 2
    over = np.all(extent.geometry_lo[:2] < np.asarray(t.center_xy) + half) and np.all(
        extent.geometry_hi[:2] > np.asarray(t.center_xy) - half
    )
    if over and extent.geometry_lo[2] < t.height:
        log.warning(
            "the hands reach z = %.3f m, below the table top at %.3f m (SceneConfig.table.height, --table-height): "
            "they may hit the table; lower it to put it under the hands", extent.geometry_lo[2], t.height,
        )  # fmt: skip
    return min(z, t.height - t.thickness)


def motion_extent(scene: HandScene, motion: RobotMotion, pad: float = HAND_PAD_M) -> MotionExtent:
    """Where ``motion`` takes the hands of ``scene`` (:class:`MotionExtent`): joint values and wrist poses
    of every frame set kinematically in a separate ``MjData`` (the scene's state is untouched; one
    ``mj_kinematics`` per frame). ``pad``: m, >= 0, added around the palms and fingertips."""
    if not (np.isfinite(pad) and pad >= 0):
        raise ConfigError(f"motion_extent: pad must be a finite number of metres >= 0, got {pad!r}")
    targets = _check_motion(motion, scene)
    m = scene.model
    data = mujoco.MjData(m)
    hands = {s: scene._hand(s) for s in motion.sides}
    mount = {s: hands[s].base_to_mount(_unit_quats(motion.hands[s].wrist_pose)) for s in motion.sides}
    palms = np.array([_palm_body(m, h.tip_body_ids, h.mount_id) for h in hands.values()], dtype=np.int64)
    geo = [np.full(3, np.inf), np.full(3, -np.inf)]
    pts = [np.full(3, np.inf), np.full(3, -np.inf)]
    for f in range(motion.num_frames):
        for s, h in hands.items():
            data.qpos[h.qadr] = targets[s][f]
            data.qpos[h.free_qadr : h.free_qadr + 7] = mount[s][f]
        mujoco.mj_kinematics(m, data)
        lo, hi = scene.robot_extent(data)
        geo = [np.minimum(geo[0], lo), np.maximum(geo[1], hi)]
        p = np.concatenate([data.xpos[palms], *(tip_positions(h, data) for h in hands.values())])
        pts = [np.minimum(pts[0], p.min(axis=0)), np.maximum(pts[1], p.max(axis=0))]
    return MotionExtent(
        geometry_lo=geo[0], geometry_hi=geo[1],
        hands_lo=np.clip(pts[0] - pad, geo[0], geo[1]), hands_hi=np.clip(pts[1] + pad, geo[0], geo[1]),
    )  # fmt: skip


def robot_bounds(scene: HandScene, motion: RobotMotion) -> tuple[np.ndarray, np.ndarray]:
    """``(lo (3,), hi (3,))`` of the robot geometry over every frame of the motion, m, world
    (:attr:`MotionExtent.geometry_lo` / ``geometry_hi`` of :func:`motion_extent`)."""
    extent = motion_extent(scene, motion)
    return extent.geometry_lo, extent.geometry_hi


def _palm_body(model: mujoco.MjModel, tip_body_ids: np.ndarray, mount_id: int) -> int:
    """The deepest body that is (or is an ancestor of) every fingertip body: the palm (``mount_id``
    when there are no fingertips)."""

    def chain(b: int) -> list[int]:
        out = []
        while b > 0:
            out.append(b)
            b = int(model.body_parentid[b])
        return out

    chains = [chain(int(b)) for b in tip_body_ids]
    if not chains:
        return int(mount_id)
    common = [b for b in chains[0] if all(b in c for c in chains[1:])]
    return common[0] if common else int(mount_id)


def _unit_quats(poses: np.ndarray) -> np.ndarray:
    """A copy of poses ``(..., 7)`` with unit quaternions."""
    out = np.array(poses, dtype=np.float64)
    out[..., 3:] /= np.linalg.norm(out[..., 3:], axis=-1, keepdims=True)
    return out


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
    targets = _check_motion(motion, scene)
    stop = motion.num_frames if cfg.stop is None else min(cfg.stop, motion.num_frames)
    frames = range(cfg.start, stop)
    if len(frames) < 1:
        raise ConfigError(f"ReplayConfig selects no frames (start={cfg.start}, stop={cfg.stop}, motion has {motion.num_frames})")
    hidx = {s: scene._hand(s) for s in motion.sides}  # index tables (same package)
    wrist = {s: _unit_quats(motion.hands[s].wrist_pose) for s in motion.sides}  # T_world_base
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
