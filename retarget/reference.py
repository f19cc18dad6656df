"""The reference solver: dex-retargeting itself, run on the same keypoints and configs.

dex-retargeting (``SeqRetargeting``: nlopt SLSQP + pinocchio, one frame at a time, warm-started from
the previous frame) is given exactly what our solver gets: the human keypoints in the robot base
frame (the human wrist frame, i.e. dex-retargeting's MANO-convention frame, through the robot's
calibration), reordered to the config's keypoint order (MediaPipe for dex-retargeting's configs), and
the reference values its own example code builds (``joint_pos[task] - joint_pos[origin]`` for vector
and DexPilot, ``joint_pos[indices]`` for position). Its low-pass filter is disabled here (the caller
applies the same filter to either solver's output). Its joint order (pinocchio's) is mapped to ours
by name. It reads URDFs only.

Convergence of its frames is graded with our test (:func:`handx_robot.retarget.solver.check_convergence`), since
dex-retargeting reports none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from handx_robot.retarget.solver import HandProblem, SolveResult, check_convergence

from handx_robot.errors import ConfigError, MissingDependencyError
from handx_robot.keypoints import HANDX_TO_MEDIAPIPE

__all__ = ["build_dex_retargeting", "solve_with_dex_retargeting", "dex_reference_values"]

log = logging.getLogger(__name__)


def build_dex_retargeting(prob: HandProblem):
    """A dex-retargeting ``SeqRetargeting`` for the problem's robot (its config, filter disabled)."""
    spec = prob.spec
    if spec.model_format != "urdf":
        raise ConfigError(
            f"robot {spec.id!r}: dex-retargeting reads URDF models only, {spec.model_path} is an MJCF; "
            "use --solver handx for this robot"
        )
    try:
        from dex_retargeting.retargeting_config import RetargetingConfig
    except ImportError as exc:  # pragma: no cover - pinned dependency
        raise MissingDependencyError(f"dex-retargeting is not importable ({exc}); pip install 'handx_robot[dex]'") from exc
    cfg = {k: v for k, v in dict(spec.config).items()}
    for k in ("target_link_names", "target_joint_names", "target_origin_link_names", "target_task_link_names",
              "finger_tip_link_names"):  # fmt: skip
        if cfg.get(k) is not None:
            cfg[k] = list(cfg[k])
    if cfg.get("target_link_human_indices") is not None:
        cfg["target_link_human_indices"] = np.asarray(cfg["target_link_human_indices"]).tolist()
    cfg["low_pass_alpha"] = 1.0  # identity filter: y = x
    cfg["type"] = {"vector": "vector", "position": "position", "dexpilot": "DexPilot"}[spec.retargeting_type]
    config = RetargetingConfig.from_dict(cfg)
    return config.build()


def _dex_order(prob: HandProblem, kp_wrist: np.ndarray) -> np.ndarray:
    """Keypoints (N, 21, 3) in the robot base frame and the config's keypoint order."""
    kp_base = (np.asarray(kp_wrist, dtype=np.float64) - prob.p_wrist_base) @ prob.R_wrist_base
    if prob.spec.human_indices_order == "mediapipe21":
        return kp_base[:, HANDX_TO_MEDIAPIPE]
    return kp_base


def dex_reference_values(retargeting, prob: HandProblem, kp_wrist: np.ndarray) -> np.ndarray:
    """dex-retargeting's ``ref_value`` per frame, built like its example code."""
    jp = _dex_order(prob, kp_wrist)
    idx = retargeting.optimizer.target_link_human_indices
    if retargeting.optimizer.retargeting_type == "POSITION":
        return jp[:, idx]
    return jp[:, idx[1]] - jp[:, idx[0]]


def solve_with_dex_retargeting(
    prob: HandProblem, kp_wrist: np.ndarray, progress: Callable[[int], None] | None = None, retargeting=None
) -> SolveResult:
    """Run dex-retargeting frame by frame on ``kp_wrist`` (T, 21, 3) and return our result type."""
    rt = retargeting or build_dex_retargeting(prob)
    ref = dex_reference_values(rt, prob, kp_wrist)
    names = list(rt.joint_names)
    missing = [n for n in prob.tree.dof_names if n not in names]
    if missing:
        raise ConfigError(f"dex-retargeting's model of {prob.spec.model_path} lacks joints {missing}")
    cols = np.array([names.index(n) for n in prob.tree.dof_names])
    T = ref.shape[0]
    q = np.zeros((T, prob.tree.num_dof))
    t0 = time.perf_counter()
    for t in range(T):
        q[t] = rt.retarget(ref[t])[cols]
        if progress is not None and (t + 1) % 256 == 0:
            progress(256)
    if progress is not None and T % 256:
        progress(T % 256)
    log.debug("dex-retargeting: %d frames in %.3f s", T, time.perf_counter() - t0)
    objective = prob.dex_objective(q, kp_wrist)
    converged = check_convergence(prob, q, kp_wrist)
    return SolveResult(q, prob.model_qpos(q), converged, objective, np.zeros(T, dtype=np.int64))
