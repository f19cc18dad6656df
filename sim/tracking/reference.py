"""The reference clips of the tracking task: loading, robot checks and the padded :class:`ReferenceBank`.

Units: rad (m for slide joints), m, s, world frame Z-up; quaternions ``wxyz``; wrist poses are
``T_world_base`` 7-vectors ``[x, y, z, qw, qx, qy, qz]``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from handx_robot.retarget.robot_motion import RobotMotion, load_robot_motion
from handx_robot.sim.backends.base import HandLayout, SimBackend
from handx_robot.sim.tracking.config import RobotMismatchError

from handx_robot.errors import ConfigError, MotionFormatError, MotionValueError
from handx_robot.rotations import quat_conj, quat_continuous, quat_mul, quat_to_rotvec

__all__ = ["load_motions", "robots_for", "ReferenceBank"]

log = logging.getLogger(__name__)

MotionsArg = RobotMotion | str | os.PathLike | Sequence[RobotMotion | str | os.PathLike]


def load_motions(motions: MotionsArg) -> list[tuple[str, RobotMotion]]:
    """``[(name, motion)]`` from motions and/or robot-motion ``.npz`` paths; errors name the missing file."""
    if isinstance(motions, (RobotMotion, str, os.PathLike)):
        motions = [motions]
    out = []
    for i, item in enumerate(motions):
        if isinstance(item, RobotMotion):
            out.append((f"motion{i}", item))
            continue
        path = Path(item)
        if not path.is_file():
            raise MotionFormatError(
                f"{path}: robot motion file not found (motions[{i}]); give .npz files written by "
                "`handx-robot retarget`"
            )
        out.append((str(path), load_robot_motion(path)))
    if not out:
        raise ConfigError("the tracking env needs at least one robot motion (--motions FILE ...)")
    return out


def robots_for(motions: Sequence[tuple[str, RobotMotion]], robots: Mapping[str, str] | None) -> dict[str, str]:
    """Robot id per side (default: the first motion's); every motion must have the same sides and robots."""
    _, first = motions[0]
    if robots is None:
        robots = {s: h.robot for s, h in first.hands.items()}
    robots = dict(robots)
    problems = []
    for name, m in motions:
        if set(m.sides) != set(robots):
            problems.append(f"{name} has hands {list(m.sides)}, the env has {sorted(robots)}")
            continue
        for s, h in m.hands.items():
            if h.robot != robots[s]:
                problems.append(f"{name}: the {s} hand was retargeted for '{h.robot}', the env's {s} robot is '{robots[s]}'")
    if problems:
        raise RobotMismatchError(
            "motions do not match the env's robots: " + "; ".join(problems)
            + ". Retarget every motion for the same robots (`handx-robot retarget --robot ...`) or pass the "
            "robot the motions were retargeted for (--robot)."
        )
    return robots


def _model_columns(name: str, motion: RobotMotion, side: str, hand: HandLayout) -> np.ndarray:
    """(T, n) the motion's joints in the model's order, mimic followers filled from their leaders."""
    traj = motion.hands[side]
    missing = [n for n in hand.joint_names if n not in traj.joint_names and n not in hand.mimic]
    extra = [n for n in traj.joint_names if n not in hand.joint_names]
    if missing or extra:
        raise RobotMismatchError(
            f"{name}: the {side} hand's joints do not match robot '{hand.robot_id}': model joints missing "
            f"from the motion: {missing}; motion joints the model lacks: {extra}. Retarget the motion for "
            f"'{hand.robot_id}' or build the env for '{traj.robot}'."
        )
    return traj.model_qpos(hand.joint_names, hand.mimic)


def _wrist_track(name: str, side: str, wrist_pose: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """``(T_world_base (T, 7) with unit quaternions in one hemisphere, twist (T, 6) m/s and rad/s world)``.
    One hemisphere makes neighbouring differences short arcs; the angular velocity of frame t >= 1 is
    the rotation from t-1 to t over dt (frame 0 repeats frame 1's)."""
    w = np.array(wrist_pose, dtype=np.float64)
    norm = np.linalg.norm(w[:, 3:], axis=1, keepdims=True)
    if np.any(norm < 1e-6):
        raise MotionValueError(f"{name}: {side} wrist quaternion is zero at frame {int(np.argmin(norm))}")
    w[:, 3:] = quat_continuous(w[:, 3:] / norm)
    wv = np.zeros((len(w), 6))
    wv[:, :3] = np.gradient(w[:, :3], dt, axis=0)
    ang = quat_to_rotvec(quat_mul(w[1:, 3:], quat_conj(w[:-1, 3:]))) / dt
    wv[1:, 3:], wv[0, 3:] = ang, ang[0]
    return w, wv


class ReferenceBank:
    """The reference clips, padded to ``(C, T_max, ...)`` arrays so batched envs index them by
    ``(clip, frame)``; hands concatenated in :attr:`sides` order (columns of each hand: :attr:`joint_slice`,
    :attr:`act_slice`, :attr:`tip_slice`).

    q, qd:             (C, T, N) all joints, rad / rad/s (finite differences).
    target, target_vel: (C, T, A) actuated joints, clipped into the joint range / rad/s.
    wrist:             (C, T, S, 7) ``T_world_base`` per hand; wrist_vel (C, T, S, 6) m/s, rad/s world.
    tips:              (C, T, Ktot, 3) kinematic fingertips, m world.
    contact:           (C, T) bool hand-hand contact of the kinematic reference.
    lengths:           (C,) frames per clip; frames past a clip's end repeat its last frame.
    """

    def __init__(self, motions: Sequence[tuple[str, RobotMotion]], backend: SimBackend):
        layout = backend.layout
        self.sides = layout.sides
        self.names = [n for n, _ in motions]
        self.lengths = np.array([m.num_frames for _, m in motions], dtype=np.int64)
        if np.any(self.lengths < 2):
            bad = [n for (n, _), L in zip(motions, self.lengths) if L < 2]
            raise MotionValueError(f"{bad}: a tracked motion needs at least 2 frames")
        control_fps = 1.0 / layout.control_dt
        off = {n: m.fps for n, m in motions if abs(m.fps - control_fps) > 1e-6 * control_fps}
        if off:
            raise ConfigError(
                f"motions {sorted(off)} have fps {sorted(set(off.values()))}, the env steps at {control_fps:g} fps; "
                "use motions of one frame rate (resample them) or build the env at their fps"
            )
        nj, na, nk = self._columns(layout.hands)
        C, Tm, S = len(motions), int(self.lengths.max()), len(self.sides)
        self.q, self.qd = np.zeros((C, Tm, nj)), np.zeros((C, Tm, nj))
        self.target, self.target_vel = np.zeros((C, Tm, na)), np.zeros((C, Tm, na))
        self.wrist, self.wrist_vel = np.zeros((C, Tm, S, 7)), np.zeros((C, Tm, S, 6))
        self.tips = np.zeros((C, Tm, nk, 3))
        self.contact = np.zeros((C, Tm), dtype=bool)
        for c, (name, motion) in enumerate(motions):
            self._fill_clip(c, name, motion, backend)

    def _columns(self, hands: Mapping[str, HandLayout]) -> tuple[int, int, int]:
        """Per-hand column slices, actuated columns and target limits; returns the totals (N, A, Ktot)."""
        self.joint_slice, self.act_slice, self.tip_slice = {}, {}, {}
        act_in_joint, lo, hi = [], [], []
        nj = na = nk = 0
        for s in self.sides:
            h = hands[s]
            n, a, k = len(h.joint_names), len(h.actuated), len(h.fingertips)
            self.joint_slice[s], self.act_slice[s], self.tip_slice[s] = slice(nj, nj + n), slice(na, na + a), slice(nk, nk + k)
            act_in_joint.append(nj + h.actuated_index)
            lo.append(h.ctrl_lo)
            hi.append(h.ctrl_hi)
            nj, na, nk = nj + n, na + a, nk + k
        self.act_in_joint = np.concatenate(act_in_joint)
        self.ctrl_lo, self.ctrl_hi = np.concatenate(lo), np.concatenate(hi)
        return nj, na, nk

    def _fill_clip(self, c: int, name: str, motion: RobotMotion, backend: SimBackend) -> None:
        """Row ``c``: joints, targets, wrists, kinematic fingertips and contact of one clip, padded."""
        layout = backend.layout
        dt = layout.control_dt
        T = motion.num_frames
        q_side, w_side = {}, {}
        for i, s in enumerate(self.sides):
            q = _model_columns(name, motion, s, layout.hands[s])
            w, wv = _wrist_track(name, s, motion.hands[s].wrist_pose, dt)
            self.q[c, :T, self.joint_slice[s]] = q
            self.qd[c, :T, self.joint_slice[s]] = np.gradient(q, dt, axis=0)
            self.wrist[c, :T, i], self.wrist_vel[c, :T, i] = w, wv
            q_side[s], w_side[s] = q, w
        q_act = self.q[c, :T][:, self.act_in_joint]
        self.target[c, :T] = np.clip(q_act, self.ctrl_lo, self.ctrl_hi)
        self.target_vel[c, :T] = self.qd[c, :T][:, self.act_in_joint]
        out = (q_act < self.ctrl_lo - 1e-3) | (q_act > self.ctrl_hi + 1e-3)
        if out.any():
            log.warning("%s: reference joints outside the joint range in %d frames (targets clipped)", name, int(out.any(axis=1).sum()))
        kin = backend.kinematics(q_side, w_side)
        for s in self.sides:
            self.tips[c, :T, self.tip_slice[s]] = kin.fingertips[s]
        self.contact[c, :T] = kin.hand_contact
        for arr in (self.q, self.qd, self.target, self.target_vel, self.wrist, self.wrist_vel, self.tips, self.contact):
            arr[c, T:] = arr[c, T - 1]

    @property
    def num_clips(self) -> int:
        return len(self.names)
