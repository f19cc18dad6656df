"""The fidelity report of a retargeting run (``--metrics out.json``).

Per hand (``hands.<side>``):

=============================== =====================================================================
key                             meaning
=============================== =====================================================================
robot, solver                   robot id, solver name
frames_per_second               frames solved per second of wall time (this hand)
objective                       dex-retargeting's objective: mean, max, p95, and per frame (``values``,
                                omitted above 100 000 frames); after the bimanual solve, with the fingers'
                                vectors in the palm frame (what that solve keeps: a hand whose palm moves
                                on wrist joints may turn its forearm there, interaction.palm / .forearm)
fingertip_shape_error_m         |d_robot(i, j) - s * d_human(i, j)| over wrist/fingertip pairs (metres;
                                the wrist is the link the config pairs with human keypoint 0):
                                mean, max, p95; s = the config's ``scaling_factor``
non_converged_frames            count, fraction, first 20 indices
joint_limit_violations          (frame, joint) entries outside the model's limits (must be 0), max excess
joint_jerk_rad_s3               mean |d^3 q / dt^3| over joints and frames
contact_f1                      human vs robot fingertip contact events (2 cm, robot 2 cm * s), F1,
                                precision, recall, event counts
=============================== =====================================================================

Bimanual (``bimanual``): inter-hand fingertip contact F1 and robot-robot interpenetration (MuJoCo
collision of the two posed hands: max depth in metres, frames with penetration, frames checked).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
from handx_robot.retarget.pool import Pool

from handx_robot.features import TIP_TIP_THRESHOLD_M, ContactConfig, events_from_distances
from handx_robot.keypoints import FINGERS, FINGERTIPS, WRIST
from handx_robot.metrics import event_f1
from handx_robot.rotations import transform_inv

__all__ = ["fidelity_report", "robot_fingertips_world", "fingertip_shape_error", "MAX_PER_FRAME_VALUES", "MAX_COLLISION_FRAMES"]

log = logging.getLogger(__name__)

MAX_PER_FRAME_VALUES = 100_000
MAX_COLLISION_FRAMES = 2_000
#: Two-hand collision worlds by model files, reused between reports (see :mod:`handx_robot.retarget.pool`).
COLLIDERS = Pool(per_key=2, max_keys=8)
_FK_CHUNK = 8192


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "max": None, "p95": None}
    return {"mean": float(x.mean()), "max": float(x.max()), "p95": float(np.percentile(x, 95))}


def robot_fingertips_world(hr) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Fingers with a robot fingertip, their tip positions (T, F, 3) and the wrist-match point (T, 3),
    world frame, metres."""
    from handx_robot.retarget.robots import fingertip_links, human_wrist_link

    prob = hr.problem
    tips = fingertip_links(hr.spec)
    fingers = [f for f in FINGERS if f in tips]
    wl = human_wrist_link(hr.spec)
    idx = [prob.tree.link_index(tips[f]) for f in fingers] + ([prob.tree.link_index(wl)] if wl else [])
    q = hr.result.q
    pts = np.empty((q.shape[0], len(idx), 3))
    for s in range(0, q.shape[0], _FK_CHUNK):  # bounded memory on long motions
        pts[s : s + _FK_CHUNK] = prob.tree.forward(q[s : s + _FK_CHUNK])[1][:, idx]
    T = hr.T_world_base @ transform_inv(prob.base_offset(q))  # world <- tree base (dummy root)
    pts_w = np.einsum("tab,tkb->tka", T[:, :3, :3], pts) + T[:, None, :3, 3]
    if wl:
        return fingers, pts_w[:, :-1], pts_w[:, -1]
    return fingers, pts_w, None


def fingertip_shape_error(hr, fingers, tip_w, wrist_w) -> np.ndarray:
    """(T, P) |d_robot - s d_human| over wrist-tip and tip-tip pairs."""
    s = hr.problem.scaling
    h = hr.kp_world
    hp = h[:, [FINGERTIPS[f] for f in fingers]]
    rp = tip_w
    if wrist_w is not None:
        hp = np.concatenate([h[:, [WRIST]], hp], axis=1)
        rp = np.concatenate([wrist_w[:, None], rp], axis=1)
    if rp.shape[1] < 2:
        return np.zeros((h.shape[0], 0))
    i, j = np.triu_indices(hp.shape[1], 1)
    dh = np.linalg.norm(hp[:, i] - hp[:, j], axis=-1)
    dr = np.linalg.norm(rp[:, i] - rp[:, j], axis=-1)
    return np.abs(dr - s * dh)


def _tip_pairs(fingers: list[str]) -> list[tuple[str, str]]:
    cfg = ContactConfig()
    out = []
    for a in range(len(FINGERS)):
        for b in range(a + 1, len(FINGERS)):
            f1, f2 = FINGERS[a], FINGERS[b]
            if f1 not in fingers or f2 not in fingers:
                continue
            if b == a + 1 and f1 != "thumb" and not cfg.adjacent_tips:
                continue
            out.append((f1, f2))
    return out


def _contact_f1(side: str, hr, fingers, tip_w, fps: float) -> dict:
    s = hr.problem.scaling
    h = hr.kp_world
    hum, rob = [], []
    for f1, f2 in _tip_pairs(fingers):
        kind = "pinch" if f1 == "thumb" else "tip_tip"
        a, b = f"{side}_{f1}_tip", f"{side}_{f2}_tip"
        dh = np.linalg.norm(h[:, FINGERTIPS[f1]] - h[:, FINGERTIPS[f2]], axis=-1)
        dr = np.linalg.norm(tip_w[:, fingers.index(f1)] - tip_w[:, fingers.index(f2)], axis=-1)
        hum.append((kind, a, b, dh, TIP_TIP_THRESHOLD_M))
        rob.append((kind, a, b, dr, TIP_TIP_THRESHOLD_M * s))
    return _f1(hum, rob, fps)


def _f1(hum, rob, fps) -> dict:
    he = events_from_distances(hum, fps) if hum else []
    re_ = events_from_distances(rob, fps) if rob else []
    f = event_f1(re_, he)
    return {
        "f1": f["f1"], "precision": f["precision"], "recall": f["recall"],
        "human_events": len(he), "robot_events": len(re_), "pairs": len(hum),
    }  # fmt: skip


def _hand_report(side: str, hr, fps: float, tips: tuple) -> dict:
    """``tips``: :func:`robot_fingertips_world` of ``hr``."""
    res = hr.result
    T = len(res.converged)
    fingers, tip_w, wrist_w = tips
    shape = fingertip_shape_error(hr, fingers, tip_w, wrist_w)
    prob = hr.problem
    lo = prob.tree.joint_lower[[prob.tree.joint_names.index(n) for n in prob.joint_names]]
    hi = prob.tree.joint_upper[[prob.tree.joint_names.index(n) for n in prob.joint_names]]
    excess = np.maximum(res.qpos - hi, lo - res.qpos)
    viol = excess > 1e-9
    failed = np.flatnonzero(~res.converged)
    jerk = np.abs(np.diff(res.qpos, n=3, axis=0)) * fps**3 if T >= 4 else np.zeros((0,))
    obj = _stats(res.objective)
    if T <= MAX_PER_FRAME_VALUES:
        obj["values"] = [float(v) for v in res.objective]
    return {
        "robot": hr.spec.id,
        "solver": hr.solver,
        "num_frames": T,
        "frames_per_second": T / max(hr.seconds, 1e-9),
        "objective": obj,
        "fingertip_shape_error_m": _stats(shape),
        "fingertips": fingers,
        "non_converged_frames": {
            "count": int(len(failed)), "fraction": float(len(failed) / max(T, 1)),
            "first": [int(i) for i in failed[:20]],
        },  # fmt: skip
        "joint_limit_violations": {"count": int(viol.sum()), "max_excess": float(max(excess.max(), 0.0))},
        "joint_jerk_rad_s3": float(jerk.mean()) if jerk.size else 0.0,
        "contact_f1": _contact_f1(side, hr, fingers, tip_w, fps),
    }


def _bimanual(hands: Mapping, fps: float, tips: Mapping) -> dict:
    """``tips``: ``{side: robot_fingertips_world(hands[side])}``."""
    out: dict = {}
    left, right = hands["left"], hands["right"]
    (fl, tl, _), (fr, tr, _) = tips["left"], tips["right"]
    s = 0.5 * (left.problem.scaling + right.problem.scaling)
    hum, rob = [], []
    for f1 in fl:
        for f2 in fr:
            a, b = f"left_{f1}_tip", f"right_{f2}_tip"
            dh = np.linalg.norm(left.kp_world[:, FINGERTIPS[f1]] - right.kp_world[:, FINGERTIPS[f2]], axis=-1)
            dr = np.linalg.norm(tl[:, fl.index(f1)] - tr[:, fr.index(f2)], axis=-1)
            hum.append(("inter_tip_tip", a, b, dh, TIP_TIP_THRESHOLD_M))
            rob.append(("inter_tip_tip", a, b, dr, TIP_TIP_THRESHOLD_M * s))
    out["inter_hand_contact_f1"] = _f1(hum, rob, fps)
    T = left.T_world_base.shape[0]
    frames = np.unique(np.linspace(0, T - 1, min(T, MAX_COLLISION_FRAMES)).astype(np.int64))
    try:
        from handx_robot.retarget.collision import HandPairCollider

        models = {s_: (h.spec.model_path, h.spec.model_format, h.problem.tree.link_names[0] if not h.problem.free_base
                       else h.problem.tree.link_names[7]) for s_, h in hands.items()}  # fmt: skip
        poses = {s_: h.T_world_base for s_, h in hands.items()}
        qpos = {s_: (h.problem.joint_names, h.result.qpos) for s_, h in hands.items()}
        with COLLIDERS.borrow(repr(sorted(models.items())), lambda: HandPairCollider(models)) as col:
            depth = col.penetration(poses, qpos, frames)
        out["interpenetration"] = {
            "max_depth_m": float(depth.max()) if depth.size else 0.0,
            "frames_with_penetration": int((depth > 0).sum()),
            "frames_checked": int(len(frames)),
            "first_frames": [int(f) for f in frames[depth > 0][:20]],
        }
    except Exception as exc:  # the metric is optional; say why it is missing
        log.warning("robot-robot interpenetration not computed: %s", exc)
        out["interpenetration"] = {"error": str(exc)}
    return out


def fidelity_report(hands: Mapping, fps: float) -> dict:
    """The report dict for ``{side: HandResult}`` (see the module docstring)."""
    tips = {s: robot_fingertips_world(hr) for s, hr in hands.items()}  # once: forward kinematics of every frame
    rep: dict = {"hands": {s: _hand_report(s, hr, fps, tips[s]) for s, hr in hands.items()}}
    if "left" in hands and "right" in hands:
        rep["bimanual"] = _bimanual(hands, fps, tips)
    return rep
