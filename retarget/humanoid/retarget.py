"""A human motion onto a humanoid: workspace mapping, the hands, then both arms by IK.

1. The hands are retargeted as floating hands would be (:func:`handx_robot.retarget.bimanual.retarget_motion`,
   bimanual interaction terms included), in the human's frame: finger joints and each hand root's pose.
2. The motion is placed in front of the robot (:func:`~.workspace.fit_workspace`, checked with those
   hand poses and fingers): one rigid motion per frame for both hands, applied to the hand roots, which
   become the arms' targets ``T_world_hand``.
3. The arms track those targets frame by frame (:class:`~.ik.ArmIK`: joint and speed limits, clearance,
   posture). The hands' stored ``wrist_pose`` is the pose the arms achieved, not the target.

The report (:func:`humanoid_report`) compares achieved and target hand poses and measures the
clearances in a kinematic replay of the result on the model's collision geometry.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np
from handx_robot.retarget.humanoid.ik import ArmIK, IKOptions
from handx_robot.retarget.humanoid.model import (
    HumanoidModel,
    apply_couplings,
    load_humanoid_model,
    pair_distances,
)
from handx_robot.retarget.humanoid.spec import HumanoidSpec, get_humanoid
from handx_robot.retarget.humanoid.workspace import WorkspaceMap, fit_workspace
from handx_robot.retarget.robot_motion import BodyTrajectory, RobotMotion

from handx_robot.errors import MotionValueError
from handx_robot.frames import FRAME_WORLD_ZUP
from handx_robot.motion import SIDES, BimanualMotion
from handx_robot.rotations import matrix_to_pose, pose_to_matrix

__all__ = ["retarget_humanoid", "humanoid_report", "clearances", "WITHIN_M", "WITHIN_RAD"]

log = logging.getLogger(__name__)

#: a frame's hand pose counts as tracked within these errors (the issue's 1 cm / 0.1 rad)
WITHIN_M, WITHIN_RAD = 0.01, 0.1


def retarget_humanoid(
    motion: BimanualMotion,
    humanoid: HumanoidSpec | str = "gr1_inspire",
    *,
    interaction="auto",
    scale: float | None = None,
    center=None,
    yaw: float | None = None,
    ik: IKOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[RobotMotion, dict]:
    """Retarget ``motion`` onto a humanoid; returns the robot motion (hands + body) and the report.

    scale/center/yaw override the spec's workspace mapping (``scale=None``: the spec's, ``auto`` = fitted).
    """
    hs = humanoid if isinstance(humanoid, HumanoidSpec) else get_humanoid(humanoid)
    hm = load_humanoid_model(hs)
    world = motion.in_frame(FRAME_WORLD_ZUP)
    present = np.array([world.present[h] and s in hs.arms for h, s in enumerate(SIDES)])
    if not present.any():
        raise MotionValueError(f"{motion.source}: no hand of the motion has an arm on {hs.id} (arms: {list(hs.arms)})")
    from handx_robot.retarget.bimanual import retarget_motion

    robots = {s: (hm.hands[s] if present[h] else None) for h, s in enumerate(SIDES)}
    t0 = time.perf_counter()
    # the hands in the human's frame: the placement is one rigid motion per frame for both hands, which
    # changes neither the fingers nor the bimanual solve; the targets then move with it
    human, report = retarget_motion(world, robots["left"], robots["right"], interaction=interaction,
                                    progress=progress)  # fmt: skip
    t_hands = time.perf_counter() - t0
    targets = {s: (pose_to_matrix(h.wrist_pose), dict(zip(h.joint_names, h.qpos.T))) for s, h in human.hands.items()}
    wmap = fit_workspace(world.joints, present, hm, scale=scale, center=center, yaw=yaw, hands=targets,
                         fps=world.fps)  # fmt: skip
    M = wmap.transforms(world.joints, present)
    hands_motion = dataclasses.replace(
        human, source_joints=wmap.apply(world.joints, present),
        hands={s: dataclasses.replace(h, wrist_pose=matrix_to_pose(M @ targets[s][0])) for s, h in human.hands.items()},
    )  # fmt: skip
    body, hands, errors, t_ik = _track(hm, hands_motion, ik, progress)
    body = dataclasses.replace(body, workspace=wmap.as_dict())
    rm = RobotMotion(fps=hands_motion.fps, hands=hands, text=hands_motion.text,
                     source_joints=hands_motion.source_joints, body=body)  # fmt: skip
    report["humanoid"] = humanoid_report(hm, rm, errors, wmap, seconds={"hands": t_hands, "arms": t_ik})
    return rm, report


def _track(hm: HumanoidModel, hands_motion: RobotMotion, ik: IKOptions | None, progress) -> tuple:
    solver = ArmIK(hm, hands_motion.fps, ik)
    T = hands_motion.num_frames
    sides = [s for s in hm.sides if s in hands_motion.hands]
    targets = {s: pose_to_matrix(hands_motion.hands[s].wrist_pose) for s in sides}
    arm_cols = np.concatenate([hm.arm_qpos[s] for s in hm.sides])
    q_arm = np.zeros((T, len(arm_cols)))
    achieved = {s: np.zeros((T, 4, 4)) for s in sides}
    pos_err = {s: np.zeros(T) for s in sides}
    rot_err = {s: np.zeros(T) for s in sides}
    iters = np.zeros(T, dtype=np.int64)
    t0 = time.perf_counter()
    for t in range(T):
        for s in sides:
            h = hands_motion.hands[s]
            solver.set_hand(s, dict(zip(h.joint_names, h.qpos[t])))
        sol = solver.step({s: targets[s][t] for s in sides})
        q_arm[t] = sol.qpos[arm_cols]
        iters[t] = sol.iterations
        for s in sides:
            achieved[s][t] = sol.T_world_hand[s]
            pos_err[s][t], rot_err[s][t] = sol.position_error[s], sol.rotation_error[s]
        if progress is not None and t % 50 == 49:
            progress(50)
    seconds = time.perf_counter() - t0
    hands = {s: dataclasses.replace(hands_motion.hands[s], wrist_pose=matrix_to_pose(achieved[s])) for s in sides}
    body = BodyTrajectory(robot=hm.spec.id, joint_names=hm.spec.arm_joint_names, qpos=q_arm,
                          base_pose=hm.spec.base_pose)  # fmt: skip
    errors = {"position": pos_err, "rotation": rot_err, "targets": targets, "iterations": iters,
              "replans": solver.replans, "infeasible": solver.infeasible}
    return body, hands, errors, seconds


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=np.float64)
    return {"mean": float(x.mean()), "p95": float(np.percentile(x, 95)), "max": float(x.max())}


def clearances(hm: HumanoidModel, motion: RobotMotion, distmax: float = 0.05) -> dict:
    """Kinematic replay of ``motion`` on ``hm``: per checked group pair, the smallest signed distance
    over all frames (m; negative = penetration depth) and the frames deeper than 2 mm.

    Distances are MuJoCo's (``mj_geomDistance``) on the collision geometry, pairs prefiltered by
    bounding spheres; a pair farther than ``distmax`` counts as ``distmax``.
    """
    import mujoco

    m = hm.model
    d = mujoco.MjData(m)
    qs = model_qpos(hm, motion)
    group_of = {}
    for name, ids in hm.geoms.items():
        for g in ids:
            group_of[int(g)] = name
    pairs = np.array(hm.geom_pairs(), dtype=np.int64).reshape(-1, 2)
    labels = [_pair_label(group_of[a], group_of[b]) for a, b in pairs]
    out: dict[str, dict] = {}
    for lab in sorted(set(labels)):
        out[lab] = {"min_distance_m": distmax, "frames_deeper_than_2mm": 0}
    lab_arr = np.array(labels)
    for t in range(qs.shape[0]):
        d.qpos[:] = qs[t]
        mujoco.mj_kinematics(m, d)
        dist = pair_distances(m, d, pairs, distmax)
        for lab in out:
            sel = dist[lab_arr == lab]
            out[lab]["min_distance_m"] = min(out[lab]["min_distance_m"], float(sel.min()))
            out[lab]["frames_deeper_than_2mm"] += int(bool((sel < -0.002).any()))
    return out


def _pair_label(a: str, b: str) -> str:
    if a != "body" and a.split("_")[1] == b.split("_")[-1]:
        return "arm-self"  # one arm against itself or its own hand
    kinds = sorted(x.split("_")[0] for x in (a, b))
    if "body" in (a, b):
        return f"{kinds[0]}-body" if kinds[0] != "body" else f"{kinds[1]}-body"
    return "arm-arm" if kinds == ["arm", "arm"] else "arm-hand"


def model_qpos(hm: HumanoidModel, motion: RobotMotion) -> np.ndarray:
    """(T, nq) model positions of a humanoid motion: arms from the body, hands by joint name
    (followers of the hands' couplings from their leaders, as MuJoCo's equalities define them)."""
    if motion.body is None:
        raise MotionValueError("the robot motion has no humanoid body (retarget it with a humanoid id)")
    m = hm.model
    T = motion.num_frames
    q = np.tile(hm.rest_qpos(), (T, 1))
    for j, name in enumerate(motion.body.joint_names):
        q[:, m.jnt_qposadr[m.joint(name).id]] = motion.body.qpos[:, j]
    for s, h in motion.hands.items():
        if s not in hm.hand_qpos:
            continue
        addr = hm.hand_qpos[s]
        for j, name in enumerate(h.joint_names):
            q[:, addr[name]] = h.qpos[:, j]
    apply_couplings(m, q)
    return q


def humanoid_report(hm: HumanoidModel, rm: RobotMotion, errors: dict, wmap: WorkspaceMap, seconds: dict) -> dict:
    """The humanoid section of the report: per side hand-pose tracking, clearances, limits, speed."""
    m = hm.model
    T = rm.num_frames
    per_side = {}
    for s in errors["position"]:
        p, r = errors["position"][s], errors["rotation"][s]
        ok = (p <= WITHIN_M) & (r <= WITHIN_RAD)
        per_side[s] = {
            "position_error_m": _stats(p), "rotation_error_rad": _stats(r),
            "within_1cm_0.1rad": float(ok.mean()), "unreachable_frames": int((~ok).sum()),
        }  # fmt: skip
    body = rm.body
    names = body.joint_names
    lo = np.array([m.jnt_range[m.joint(n).id][0] for n in names])
    hi = np.array([m.jnt_range[m.joint(n).id][1] for n in names])
    margin = np.minimum(body.qpos - lo, hi - body.qpos).min(axis=0)
    vel = np.abs(np.diff(body.qpos, axis=0)) * rm.fps if T > 1 else np.zeros((1, len(names)))
    vmax = np.array([hm.spec.velocity_limits[n] for n in names])
    ratio = (vel / vmax).max(axis=0)
    clear = clearances(hm, rm)
    return {
        "robot": hm.spec.id, "frames": T, "sides": per_side, "workspace": wmap.as_dict(),
        "clearance": clear,
        "joint_limit_margin_rad": {"min": float(margin.min()), "joint": names[int(margin.argmin())]},
        "joint_speed": {"max_fraction_of_limit": float(ratio.max()), "joint": names[int(ratio.argmax())],
                        "frames_over_limit": int((vel > vmax * (1 + 1e-6)).any(axis=1).sum())},
        "ik_iterations_mean": float(errors["iterations"].mean()),
        "ik_replans": int(errors["replans"]), "ik_infeasible_solves": int(errors["infeasible"]),
        "frames_per_second": {"arms": T / max(seconds["arms"], 1e-9),
                              "upper_body": T / max(seconds["arms"] + seconds["hands"], 1e-9)},
    }  # fmt: skip
