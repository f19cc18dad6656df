"""The robot motion file: joint trajectories of one or two robot hands, keyed by joint name.

``.npz`` keys (``s`` in ``left``, ``right``, for each present side):

===================== ============== ==================================================
key                   shape / type   meaning
===================== ============== ==================================================
format                () str         ``handx-robot-robot-motion``
version               () int         file format version
fps                   () float       frames per second
text                  () str         caption of the source motion
{s}_robot             () str         robot id in the registry (``shadow_right``)
{s}_joint_names       (n,) str       joint names, the column order of ``{s}_qpos``
{s}_qpos              (T, n) f8      joint positions, robot units (rad / m)
{s}_wrist_pose        (T, 7) f8      ``T_world_base`` as [x, y, z, qw, qx, qy, qz], metres,
                                     robot world frame (Z-up)
{s}_converged         (T,) bool      solver converged at that frame
source_joints         (T, 2, 21, 3)  human keypoints (robot world frame, Z-up, metres)
===================== ============== ==================================================

A humanoid's motion (``handx-robot retarget --robot gr1_inspire``) adds its body: the hands' entries
are as above (``{s}_wrist_pose`` = the hand root's achieved pose), and

===================== ============== ==================================================
body_robot            () str         humanoid id (``gr1_inspire``) or its YAML path
body_joint_names      (m,) str       arm joint names, the column order of ``body_qpos``
body_qpos             (T, m) f8      arm joint positions, rad
body_base_pose        (7,) f8        ``T_world_base`` of the fixed base (pelvis), [x, y, z, qw, qx, qy, qz]
body_workspace        () str         JSON: the workspace mapping that placed the human motion
===================== ============== ==================================================
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from handx_robot.errors import MotionFormatError, MotionValueError, UnknownJointError
from handx_robot.motion import SIDES, atomic_write

__all__ = ["HandTrajectory", "BodyTrajectory", "RobotMotion", "save_robot_motion", "load_robot_motion", "ROBOT_MOTION_FORMAT"]

ROBOT_MOTION_FORMAT = "handx-robot-robot-motion"
ROBOT_MOTION_VERSION = 1


class _JointColumns:
    """``num_frames`` and by-name ``column`` of a trajectory with ``robot``, ``joint_names`` and ``qpos`` (T, n)."""

    robot: str
    joint_names: tuple[str, ...]
    qpos: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    def column(self, joint: str) -> np.ndarray:
        """(T,) trajectory of one joint, by name."""
        try:
            return self.qpos[:, self.joint_names.index(joint)]
        except ValueError:
            raise UnknownJointError(
                f"robot '{self.robot}' has no joint {joint!r}; joints: {', '.join(self.joint_names)}"
            ) from None


@dataclasses.dataclass(frozen=True)
class HandTrajectory(_JointColumns):
    """One robot hand's trajectory.

    robot:       registry id (e.g. ``shadow_right``).
    joint_names: (n,) joint names; the column order of ``qpos``.
    qpos:        (T, n) float64, robot units (rad for revolute, m for prismatic joints).
    wrist_pose:  (T, 7) float64, ``T_world_base`` as [x, y, z, qw, qx, qy, qz]; metres, world Z-up.
    converged:   (T,) bool, the solver's per-frame convergence flag.
    """

    robot: str
    joint_names: tuple[str, ...]
    qpos: np.ndarray
    wrist_pose: np.ndarray
    converged: np.ndarray

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.joint_names)
        qpos = np.asarray(self.qpos, dtype=np.float64)
        T = qpos.shape[0] if qpos.ndim == 2 else -1
        if qpos.ndim != 2 or qpos.shape[1] != len(names):
            raise MotionFormatError(
                f"robot '{self.robot}': qpos must have shape (T, {len(names)}) to match joint_names, "
                f"got {qpos.shape}"
            )
        if len(set(names)) != len(names):
            raise MotionFormatError(f"robot '{self.robot}': duplicate joint names in {names}")
        wrist = np.asarray(self.wrist_pose, dtype=np.float64)
        if wrist.shape != (T, 7):
            raise MotionFormatError(f"robot '{self.robot}': wrist_pose must have shape ({T}, 7), got {wrist.shape}")
        conv = np.asarray(self.converged, dtype=bool).reshape(-1)
        if conv.shape != (T,):
            raise MotionFormatError(f"robot '{self.robot}': converged must have shape ({T},), got {conv.shape}")
        for field, arr in (("qpos", qpos), ("wrist_pose", wrist)):
            bad = ~np.isfinite(arr)
            if bad.any():
                raise MotionValueError(
                    f"robot '{self.robot}': {field} has NaN/inf at frame {int(np.argwhere(bad)[0, 0])}"
                )
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "qpos", qpos)
        object.__setattr__(self, "wrist_pose", wrist)
        object.__setattr__(self, "converged", conv)


    def model_qpos(self, joint_names: Sequence[str], mimic: Mapping[str, tuple[str, np.ndarray]] | None = None) -> np.ndarray:
        """(T, n) positions in ``joint_names`` order (a model's joints): the trajectory's columns by name,
        0 for joints it lacks, except mimic followers (``mimic``: follower -> (leader, polynomial
        coefficients c0..), as :meth:`handx_robot.sim.scene.HandScene.mimic_joints`) the trajectory lacks, which
        follow their leader's column."""
        names = list(joint_names)
        q = np.zeros((self.num_frames, len(names)))
        for i, n in enumerate(names):
            if n in self.joint_names:
                q[:, i] = self.column(n)
        for follower, (leader, coef) in (mimic or {}).items():
            if follower not in self.joint_names:
                q[:, names.index(follower)] = np.polyval(np.asarray(coef)[::-1], q[:, names.index(leader)])
        return q

    def reordered(self, joint_names: list[str] | tuple[str, ...]) -> np.ndarray:
        """(T, len(joint_names)) qpos in the given order; errors list missing and extra names."""
        missing = [n for n in joint_names if n not in self.joint_names]
        extra = [n for n in self.joint_names if n not in joint_names]
        if missing:
            raise UnknownJointError(
                f"robot '{self.robot}': motion lacks joints {missing} that the model has"
                + (f"; the motion has joints the model lacks: {extra}" if extra else "")
            )
        idx = [self.joint_names.index(n) for n in joint_names]
        return self.qpos[:, idx]


@dataclasses.dataclass(frozen=True)
class BodyTrajectory(_JointColumns):
    """A humanoid's body: arm joints by name, the fixed base pose, the workspace mapping.

    robot:       humanoid id (``gr1_inspire``) or its YAML path.
    joint_names: (m,) arm joint names; the column order of ``qpos``.
    qpos:        (T, m) float64, rad.
    base_pose:   (7,) float64, ``T_world_base`` of the fixed base, [x, y, z, qw, qx, qy, qz], metres.
    workspace:   the mapping that placed the human motion (:meth:`WorkspaceMap.as_dict`), JSON-able.
    """

    robot: str
    joint_names: tuple[str, ...]
    qpos: np.ndarray
    base_pose: np.ndarray
    workspace: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.joint_names)
        qpos = np.asarray(self.qpos, dtype=np.float64)
        if qpos.ndim != 2 or qpos.shape[1] != len(names):
            raise MotionFormatError(f"body '{self.robot}': qpos must have shape (T, {len(names)}), got {qpos.shape}")
        if len(set(names)) != len(names):
            raise MotionFormatError(f"body '{self.robot}': duplicate joint names in {names}")
        base = np.asarray(self.base_pose, dtype=np.float64).reshape(-1)
        if base.shape != (7,):
            raise MotionFormatError(f"body '{self.robot}': base_pose must have shape (7,), got {base.shape}")
        for field, arr in (("qpos", qpos), ("base_pose", base)):
            bad = ~np.isfinite(arr)
            if bad.any():
                raise MotionValueError(f"body '{self.robot}': {field} has NaN/inf at {np.argwhere(bad)[0].tolist()}")
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "qpos", qpos)
        object.__setattr__(self, "base_pose", base)



@dataclasses.dataclass(frozen=True)
class RobotMotion:
    """Both hands' trajectories at one frame rate. ``hands`` is keyed ``'left'`` / ``'right'``.

    source_joints: optional (T, 2, 21, 3) float32 human keypoints, metres, robot world frame (Z-up).
    body: a humanoid's arms (:class:`BodyTrajectory`), None for floating hands.
    """

    fps: float
    hands: dict[str, HandTrajectory]
    text: str = ""
    source_joints: np.ndarray | None = None
    body: BodyTrajectory | None = None

    def __post_init__(self) -> None:
        if not self.hands:
            raise MotionFormatError("a robot motion needs at least one hand")
        for side in self.hands:
            if side not in SIDES:
                raise MotionFormatError(f"robot motion side {side!r} is not one of {SIDES}")
        lengths = {s: h.num_frames for s, h in self.hands.items()}
        if len(set(lengths.values())) != 1:
            raise MotionFormatError(f"hands disagree on frame count: {lengths}")
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise MotionValueError(f"robot motion fps must be > 0, got {self.fps}")
        if self.source_joints is not None:
            sj = np.asarray(self.source_joints, dtype=np.float32)
            T = next(iter(lengths.values()))
            if sj.shape != (T, 2, 21, 3):
                raise MotionFormatError(f"source_joints must have shape ({T}, 2, 21, 3), got {sj.shape}")
            object.__setattr__(self, "source_joints", sj)
        if self.body is not None and self.body.num_frames != next(iter(lengths.values())):
            raise MotionFormatError(f"body has {self.body.num_frames} frames, the hands {next(iter(lengths.values()))}")
        object.__setattr__(self, "fps", float(self.fps))

    @property
    def num_frames(self) -> int:
        return next(iter(self.hands.values())).num_frames

    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(s for s in SIDES if s in self.hands)


def save_robot_motion(motion: RobotMotion, path: str | os.PathLike) -> Path:
    """Write a robot motion ``.npz`` atomically."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(ROBOT_MOTION_FORMAT),
        "version": np.array(ROBOT_MOTION_VERSION),
        "fps": np.array(motion.fps),
        "text": np.array(motion.text),
    }
    for side, hand in motion.hands.items():
        arrays[f"{side}_robot"] = np.array(hand.robot)
        arrays[f"{side}_joint_names"] = np.array(hand.joint_names, dtype=str)
        arrays[f"{side}_qpos"] = hand.qpos
        arrays[f"{side}_wrist_pose"] = hand.wrist_pose
        arrays[f"{side}_converged"] = hand.converged
    if motion.source_joints is not None:
        arrays["source_joints"] = motion.source_joints
    if motion.body is not None:
        arrays["body_robot"] = np.array(motion.body.robot)
        arrays["body_joint_names"] = np.array(motion.body.joint_names, dtype=str)
        arrays["body_qpos"] = motion.body.qpos
        arrays["body_base_pose"] = motion.body.base_pose
        arrays["body_workspace"] = np.array(json.dumps(dict(motion.body.workspace)))

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return atomic_write(path, write)


def load_robot_motion(path: str | os.PathLike) -> RobotMotion:
    """Read a robot motion ``.npz`` (never unpickles)."""
    path = Path(path)
    if not path.exists():
        raise MotionFormatError(f"{path}: file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise MotionFormatError(f"{path}: not a readable .npz file ({exc})") from exc
    with data:
        keys = set(data.files)
        hands = {}
        for side in SIDES:
            if f"{side}_qpos" not in keys:
                continue
            need = [f"{side}_{k}" for k in ("robot", "joint_names", "wrist_pose", "converged")]
            missing = [k for k in need if k not in keys]
            if missing:
                raise MotionFormatError(f"{path}: fields {missing} are missing for the {side} hand")
            hands[side] = HandTrajectory(
                robot=str(data[f"{side}_robot"]),
                joint_names=tuple(str(n) for n in data[f"{side}_joint_names"]),
                qpos=data[f"{side}_qpos"],
                wrist_pose=data[f"{side}_wrist_pose"],
                converged=data[f"{side}_converged"],
            )
        if not hands:
            raise MotionFormatError(
                f"{path}: no 'left_qpos' or 'right_qpos' field; is this a robot motion file "
                f"(from `handx-robot retarget`)? Found keys: {sorted(keys)}"
            )
        body = None
        if "body_qpos" in keys:
            missing = [k for k in ("body_robot", "body_joint_names", "body_base_pose") if k not in keys]
            if missing:
                raise MotionFormatError(f"{path}: fields {missing} are missing for the humanoid body")
            try:
                ws = json.loads(str(data["body_workspace"])) if "body_workspace" in keys else {}
            except ValueError as exc:
                raise MotionFormatError(f"{path}: body_workspace is not JSON ({exc})") from exc
            body = BodyTrajectory(
                robot=str(data["body_robot"]), joint_names=tuple(str(n) for n in data["body_joint_names"]),
                qpos=data["body_qpos"], base_pose=data["body_base_pose"], workspace=ws if isinstance(ws, dict) else {},
            )
        try:
            return RobotMotion(
                body=body,
                fps=float(data["fps"]) if "fps" in keys else 30.0,
                hands=hands,
                text=str(data["text"]) if "text" in keys else "",
                source_joints=data["source_joints"] if "source_joints" in keys else None,
            )
        except MotionFormatError as exc:
            raise MotionFormatError(f"{path}: {exc}") from exc
