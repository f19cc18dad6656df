"""Placing the human motion (hands only, no body) in front of a humanoid.

Facing. HandX's canonical frame has the person facing -Z (Y up), which is +Y in ``world_zup``; a robot
faces +X (REP-103). ``R_robot_human`` turns +Y into +X (-90 deg about Z), then the spec's extra ``yaw``.

Mapping. Let ``m_t`` be the midpoint of the present hands' wrist keypoints at frame t and ``m_bar`` its
mean over the clip. Every keypoint ``k`` of frame t goes to::

    k' = R (k - m_t) + s R (m_t - m_bar) + center

The hands' shapes and their placement relative to each other are kept exactly (a clap stays a clap);
only the shared trajectory of the two hands is scaled by ``s`` about its mean and put at ``center``.
A one-hand motion is centred in front of that hand's shoulder (``center`` moved sideways to the arm
root's y).

Fit (``scale: auto``): the robot's reachable set per side is sampled once (hand-root positions of
30 000 random arm poses within the joint limits; a target within ``REACH_RADIUS_M`` of a sample is
reachable; orientation is left to the IK, which reports what it misses); ``s`` is the largest value
in 1.0, 0.95, ... 0.5 for which some centre (the spec's, moved by up to 20 cm forward/back and up/down,
nearest first, up to 20 cm away) puts the wrist targets inside it: the placements within ``REACH_SLACK`` of the best
reach (larger scale first, then nearer the spec's centre) are checked with the arm IK itself on 40
sampled frames (orientation included, speed limits over the time between them, within half the
tracking target: ``CHECK_M`` / ``CHECK_RAD``) and the first that reaches 99 % of them (else the best) wins.
The fractions are reported (``reach_fraction``: position reach per side, ``ik_checked``), never hidden. Given scale and centre are used as they are.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
from handx_robot.retarget.humanoid.model import HumanoidModel

from handx_robot.rotations import rpy_to_matrix

__all__ = ["WorkspaceMap", "fit_workspace", "reachable_points", "R_ROBOT_HUMAN"]

#: world_zup human facing +Y -> robot facing +X
R_ROBOT_HUMAN = rpy_to_matrix([0.0, 0.0, -np.pi / 2])
#: a target is reachable when a sampled hand-root position lies this close (sample spacing ~2.5 cm)
REACH_RADIUS_M = 0.03
SCALES = tuple(np.round(np.arange(1.0, 0.499, -0.05), 2))
#: offsets of the centre tried by the fit (x forward and z up, metres; y stays on the robot's midline)
OFFSETS_M = (0.0, -0.05, 0.05, -0.1, 0.1, -0.15, 0.15, -0.2, 0.2)
#: placements within this much position reach of the best are checked with the arm IK, at most SHORTLIST of them
REACH_SLACK, SHORTLIST = 0.03, 8
REACH_FRAMES = 300
#: the IK check's tolerance: half the tracking target (1 cm / 0.1 rad). A placement whose sampled frames are
#: reached only just within the target is at the edge of the workspace, where the frame-by-frame tracking
#: (speed limits, one basin of the IK) misses: the 60 s benchmark motion on gr1_inspire passed a 1 cm check
#: at scale 1.0 and was then tracked within 1 cm on 15 % of its frames (benchmarks/humanoid_retarget.py)
CHECK_M, CHECK_RAD = 0.005, 0.05


@dataclasses.dataclass(frozen=True)
class WorkspaceMap:
    """``k' = R (k - m_t) + scale R (m_t - m_bar) + center`` (see the module docstring).

    R: (3, 3) rotation robot <- human world_zup. m_bar, center: (3,) metres. reach_fraction: the
    wrist targets inside the sampled reachable set (per side and overall), None when not checked.
    """

    R: np.ndarray
    scale: float
    m_bar: np.ndarray
    center: np.ndarray
    automatic: bool
    reach_fraction: dict[str, float] | None = None

    def transforms(self, joints: np.ndarray, present: np.ndarray) -> np.ndarray:
        """(T, 4, 4) ``T_robot_human`` per frame: the rigid motion this map applies to frame t's hands
        (``joints`` (T, 2, 21, 3) world_zup metres give the midpoints ``m_t``)."""
        mid = _midpoint(np.asarray(joints, dtype=np.float64), present)  # (T, 3)
        M = np.tile(np.eye(4), (len(mid), 1, 1))
        M[:, :3, :3] = self.R
        M[:, :3, 3] = (self.scale * (mid - self.m_bar) - mid) @ self.R.T + self.center
        return M

    def apply(self, joints: np.ndarray, present: np.ndarray) -> np.ndarray:
        """``joints`` (T, 2, 21, 3) world_zup metres -> the same in the robot world (hands absent stay as they are)."""
        j = np.asarray(joints, dtype=np.float64)
        M = self.transforms(j, present)
        out = j @ M[:, None, :3, :3].transpose(0, 1, 3, 2) + M[:, None, None, :3, 3]
        return np.where(np.asarray(present, bool)[None, :, None, None], out, j).astype(np.float32)

    def as_dict(self) -> dict:
        return {"scale": self.scale, "center_m": self.center.tolist(), "automatic": self.automatic,
                "yaw_rad": float(np.arctan2(self.R[1, 0], self.R[0, 0])), "reach_fraction": self.reach_fraction}  # fmt: skip


def _midpoint(joints: np.ndarray, present: np.ndarray) -> np.ndarray:
    idx = [h for h in range(2) if present[h]]
    return joints[:, idx, 0, :].mean(axis=1)


@functools.lru_cache(maxsize=8)
def _reachable(path: str, arm_qpos: tuple[int, ...], root: str, limb_geoms: tuple[int, ...], n: int, seed: int):
    import os

    import mujoco
    from handx_robot.retarget.humanoid.model import _load
    from handx_robot.retarget.robots.builtin import cache_dir
    from scipy.spatial import cKDTree

    from handx_robot.motion import atomic_write

    cached = cache_dir() / f"reach2_{Path(path).stem}_{root.replace('/', '_')}_{n}_{seed}.npy"
    if cached.is_file():  # the model file's name carries its content hash
        return cKDTree(np.load(cached))
    m = _load(path, "", os.stat(path).st_mtime)
    d = mujoco.MjData(m)
    rng = np.random.default_rng(seed)
    idx = np.asarray(arm_qpos)
    jnt = [int(np.argwhere(m.jnt_qposadr == a)[0, 0]) for a in idx]
    lo, hi = m.jnt_range[jnt].T
    bid = m.body(root).id
    limb = set(limb_geoms)
    pts = []
    for q in rng.uniform(lo, hi, size=(n, len(idx))):
        d.qpos[idx] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        if any((c.geom1 in limb or c.geom2 in limb) and c.dist < 0 for c in d.contact[: d.ncon]):
            continue  # this arm (or its hand) inside the body, the other arm or itself: not a usable pose
        pts.append(d.xpos[bid].copy())
    arr = np.array(pts)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, arr)

    atomic_write(cached, write)
    return cKDTree(arr)


def reachable_points(hm: HumanoidModel, side: str, samples: int = 30000, seed: int = 0):
    """KD-tree of hand-root positions (world, m) over random arm poses within the joint limits in which
    the arm and its hand touch neither the body, nor the other arm (at rest), nor themselves; sampled once per model and
    side, kept in the cache directory next to the composed model."""
    limb = tuple(int(g) for g in np.concatenate([hm.geoms[f"arm_{side}"], hm.geoms[f"hand_{side}"]]))
    return _reachable(str(hm.path), tuple(int(a) for a in hm.arm_qpos[side]), hm.hand_root[side], limb, samples, seed)


def _shoulder_y(hm: HumanoidModel, side: str) -> float:
    """World y (m) of a side's arm root body at the rest pose."""
    import mujoco

    d = mujoco.MjData(hm.model)
    d.qpos[:] = hm.rest_qpos()
    mujoco.mj_kinematics(hm.model, d)
    return float(d.xpos[hm.model.body(hm.spec.arms[side].arm_root_body).id][1])


def fit_workspace(joints: np.ndarray, present: np.ndarray, hm: HumanoidModel, *, scale: float | None = None,
                  center: np.ndarray | None = None, yaw: float | None = None,
                  hands: dict | None = None, fps: float = 30.0) -> WorkspaceMap:  # fmt: skip
    """The :class:`WorkspaceMap` of a motion (``joints`` (T, 2, 21, 3) world_zup, metres) onto ``hm``.

    scale/center/yaw override the spec's (``scale=None`` and the spec's ``auto``: fitted). hands: side ->
    (``T_world_hand`` (T, 4, 4) in the human frame, {hand joint: (T,) positions}), the hand retargeting's
    result, for the IK check (default: the human wrist frames with the hands' calibration, fingers open).
    """
    ws = hm.spec.workspace
    yaw = ws.yaw if yaw is None else float(yaw)
    R = rpy_to_matrix([0.0, 0.0, yaw]) @ R_ROBOT_HUMAN
    c = np.asarray(ws.center if center is None else center, dtype=np.float64)
    sides = [s for h, s in enumerate(("left", "right")) if present[h] and s in hm.spec.arms]
    if center is None and len(sides) == 1:  # one hand: in front of its own shoulder, not on the midline
        c = c + np.array([0.0, _shoulder_y(hm, sides[0]), 0.0])
    j = np.asarray(joints, dtype=np.float64)
    m_bar = _midpoint(j, present).mean(axis=0)
    fixed = scale if scale is not None else ws.scale

    # the position reach of a placement looks at the wrists of at most REACH_FRAMES evenly spaced frames
    wrists = j[np.unique(np.linspace(0, len(j) - 1, min(REACH_FRAMES, len(j))).round().astype(int))][:, :, :1]

    if fixed is not None and center is not None:
        return WorkspaceMap(R, float(fixed), m_bar, c, False,
                            _reach_grid(wrists, present, sides, hm, R, m_bar, [float(fixed)], [c])[0][0])  # fmt: skip
    scales = [float(fixed)] if fixed is not None else [float(x) for x in SCALES]
    centers = [c] if center is not None else sorted(
        (c + np.array([dx, 0.0, dz]) for dx in OFFSETS_M for dz in OFFSETS_M), key=lambda x: float(np.linalg.norm(x - c)))
    cands = _reach_grid(wrists, present, sides, hm, R, m_bar, scales, centers)
    top = max(r["all"] for r, _, _ in cands)
    # position reach short-lists; the arm IK itself (orientation included) decides on sampled frames
    short = sorted((x for x in cands if x[0]["all"] >= top - REACH_SLACK),
                   key=lambda x: (-x[1], float(np.linalg.norm(x[2] - c))))[:SHORTLIST]  # fmt: skip
    hands = hands or _calibrated_wrists(hm, j, sides)
    best = None
    for r, s_, c_ in short:
        wmap = WorkspaceMap(R, s_, m_bar, c_, True, r)
        score = ik_fraction(hm, wmap.transforms(j, present), hands, fps=fps)
        if best is None or score > best[0] + 0.01:
            best = (score, wmap)
        if score >= 0.99:
            break
    return dataclasses.replace(best[1], reach_fraction={**best[1].reach_fraction, "ik_checked": best[0]})


def _reach_grid(wrists: np.ndarray, present: np.ndarray, sides: list[str], hm: HumanoidModel, R: np.ndarray,
                m_bar: np.ndarray, scales: list[float], centers: list[np.ndarray]) -> list[tuple[dict, float, np.ndarray]]:
    """``(reach, scale, centre)`` of every placement: per side the fraction of the ``wrists`` (F, 2, 1, 3)
    world_zup metres it puts within ``REACH_RADIUS_M`` of a sampled reachable hand-root position, and
    ``all``, their mean; one KD-tree query per scale and side over all centres."""
    C = np.array(centers)  # (C, 3)
    per_side = {}
    for side in sides:
        h = ("left", "right").index(side)
        tree = reachable_points(hm, side)
        rows = []
        for s_ in scales:
            base = WorkspaceMap(R, s_, m_bar, np.zeros(3), False).apply(wrists, present)[:, h, 0].astype(np.float64)
            pts = (base[None, :, :] + C[:, None, :]).reshape(-1, 3)
            dist, _ = tree.query(pts, k=1, distance_upper_bound=2 * REACH_RADIUS_M)
            rows.append((dist <= REACH_RADIUS_M).reshape(len(C), -1).mean(axis=1))
        per_side[side] = np.array(rows)  # (S, C)
    out = []
    for i, s_ in enumerate(scales):
        for k, c_ in enumerate(centers):
            r = {side: float(per_side[side][i, k]) for side in sides}
            r["all"] = float(np.mean([r[x] for x in sides])) if sides else 1.0
            out.append((r, s_, c_))
    return out


def _calibrated_wrists(hm: HumanoidModel, joints: np.ndarray, sides: list[str]) -> dict:
    from handx_robot.retarget.solver import HandProblem

    from handx_robot.handframe import wrist_transform

    return {s: (wrist_transform(joints[:, ("left", "right").index(s)], s) @ HandProblem(hm.hands[s]).T_wrist_base, {})
            for s in sides}  # fmt: skip


def ik_fraction(hm: HumanoidModel, M: np.ndarray, hands: dict, frames: int = 40, fps: float = 30.0) -> float:
    """Fraction of up to ``frames`` evenly spaced frames whose hand-root targets ``M[t] @ T_world_hand[t]``
    (``M``: (T, 4, 4) a placement's transforms; ``hands`` as :func:`fit_workspace` takes them, fingers set)
    the arm IK reaches within ``CHECK_M`` / ``CHECK_RAD``, tracked in order from the rest pose as the
    motion's tracking would: the arm joints' speed limits over the time between two sampled frames
    (``fps``: the motion's)."""
    from handx_robot.retarget.humanoid.ik import ArmIK

    idx = np.unique(np.linspace(0, len(M) - 1, min(frames, len(M))).round().astype(int))
    stride = float(np.mean(np.diff(idx))) if len(idx) > 1 else 1.0
    ik = ArmIK(hm, fps=fps / stride)
    ok = []
    for t in idx:
        for s, (_, fingers) in hands.items():
            if fingers:
                ik.set_hand(s, {n: float(v[t]) for n, v in fingers.items()})
        sol = ik.step({s: M[t] @ T[t] for s, (T, _) in hands.items()})
        ok.append(all(sol.position_error[s] <= CHECK_M and sol.rotation_error[s] <= CHECK_RAD for s in hands))
    return float(np.mean(ok))
