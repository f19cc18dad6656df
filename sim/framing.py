"""A robot motion in a MuJoCo scene: does it fit the scene's robots (:func:`check_motion`), where
does it take the hands (:func:`motion_extent`), and the scene fitted to it (:func:`scene_for_motion`:
the preset cameras aimed at the palms and fingertips, the floor just under the lowest point of the
hands' geometry). Positions m in the world frame (Z-up), poses ``[x, y, z, qw, qx, qy, qz]``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import mujoco
import numpy as np
from handx_robot.retarget.robot_motion import RobotMotion
from handx_robot.sim.scene import HandModel, HandScene, SceneConfig, build_scene, tip_positions

from handx_robot.errors import ConfigError, MotionValueError, UnknownJointError
from handx_robot.rotations import quat_normalize

__all__ = [
    "FLOOR_CLEARANCE_M",
    "CAMERA_MARGIN",
    "HAND_PAD_M",
    "MotionExtent",
    "check_motion",
    "hand_models_for_motion",
    "motion_bounds",
    "motion_extent",
    "robot_bounds",
    "scene_for_motion",
    "unit_quats",
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
    targets = check_motion(motion, scene)
    m = scene.model
    data = mujoco.MjData(m)
    hands = {s: scene._hand(s) for s in motion.sides}
    mount = {s: hands[s].base_to_mount(unit_quats(motion.hands[s].wrist_pose)) for s in motion.sides}
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


def unit_quats(poses: np.ndarray) -> np.ndarray:
    """A copy of poses ``(..., 7)`` ``[x, y, z, qw, qx, qy, qz]`` with unit quaternions."""
    poses = np.asarray(poses, dtype=np.float64)
    return np.concatenate([poses[..., :3], quat_normalize(poses[..., 3:])], axis=-1)


def check_motion(motion: RobotMotion, scene: HandScene) -> dict[str, np.ndarray]:
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
