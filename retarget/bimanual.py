"""Bimanual retargeting: a :class:`BimanualMotion` -> a :class:`RobotMotion` with wrist poses and a report.

Frames. The human motion is converted to the robot world frame ``world_zup`` (Z up, metres) with
:mod:`handx_robot.frames`. Per hand and frame the human wrist frame ``T_world_wrist`` is estimated
from the keypoints (:func:`handx_robot.handframe.wrist_transform`); the finger keypoints are solved
in that frame, and the robot base follows it through the robot's calibration::

    T_world_base(t) = T_world_wrist(t) @ T_wrist_base [@ T_base_root(q_t) for a free-floating base]

so both hands share one world frame and their relative placement is the humans'. A left human hand
drives a left robot (``*_left``, or a mirrored model such as ``shadow_builtin_left``); side-less
robots (grippers) take either.

Solvers: ``handx`` (:mod:`handx_robot.retarget.solver`) or ``dex-retargeting`` (:mod:`handx_robot.retarget.reference`, the
reference implementation run on the same keypoints and configs).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping

import numpy as np
from handx_robot.retarget.robot_motion import HandTrajectory, RobotMotion
from handx_robot.retarget.robots import RobotSpec, get_robot
from handx_robot.retarget.solver import HandProblem, SolveResult, SolverOptions, low_pass, solve_sequence

from handx_robot.errors import ConfigError, MotionValueError
from handx_robot.frames import FRAME_WORLD_ZUP
from handx_robot.handframe import to_wrist_frame, wrist_transform
from handx_robot.motion import SIDES, BimanualMotion
from handx_robot.rotations import matrix_to_pose

__all__ = ["HandResult", "retarget_motion", "retarget_hand", "pose_to_vec7", "SOLVERS"]

log = logging.getLogger(__name__)

#: whether this process has run the handx solver once: its first call loads the compiled kernels (numba's cache, tenths
#: of a second), which :func:`retarget_hand` does on two frames before it times a hand's solve
_SOLVER_LOADED = False

SOLVERS = ("handx", "dex-retargeting")


@dataclasses.dataclass(frozen=True)
class HandResult:
    """One hand's retargeting output (all arrays (T, ...), world frame Z-up, metres, radians).

    result: the solver's :class:`SolveResult` (dofs, qpos, converged, objective).
    T_world_base: (T, 4, 4) robot base poses. kp_world: (T, 21, 3) human keypoints (HandX order).
    seconds: solve wall time.
    """

    side: str
    spec: RobotSpec
    problem: HandProblem
    result: SolveResult
    T_world_base: np.ndarray
    kp_world: np.ndarray
    kp_wrist: np.ndarray
    seconds: float
    solver: str

    @property
    def trajectory(self) -> HandTrajectory:
        return HandTrajectory(
            robot=self.spec.id,
            joint_names=self.problem.joint_names,
            qpos=self.result.qpos,
            wrist_pose=matrix_to_pose(self.T_world_base),
            converged=self.result.converged,
        )


#: ``(N, 4, 4)`` poses -> ``(N, 7)`` ``[x, y, z, qw, qx, qy, qz]`` (``qw >= 0``); kept for existing callers.
pose_to_vec7 = matrix_to_pose


def _spec(robot: RobotSpec | str, assets) -> RobotSpec:
    return robot if isinstance(robot, RobotSpec) else get_robot(robot, assets)


def retarget_hand(
    kp_world: np.ndarray,
    side: str,
    robot: RobotSpec | str,
    *,
    assets=None,
    solver: str = "handx",
    options: SolverOptions | None = None,
    problem: HandProblem | None = None,
    progress: Callable[[int], None] | None = None,
) -> HandResult:
    """Retarget one hand's keypoints ``(T, 21, 3)`` (HandX order, world Z-up, metres)."""
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    spec = _spec(robot, assets)
    if spec.side not in (side, "any"):
        raise ConfigError(
            f"robot {spec.id!r} is a {spec.side} hand but drives the {side} human hand; give a {side} robot "
            f"(e.g. {spec.id.replace(spec.side, side)}) with --{side}-robot"
        )
    if solver not in SOLVERS:
        raise ConfigError(f"--solver {solver!r} is unknown; allowed: {', '.join(SOLVERS)}")
    opts = options or SolverOptions()
    prob = problem or HandProblem(spec)
    kp_world = np.asarray(kp_world, dtype=np.float64)
    T_world_wrist = wrist_transform(kp_world, side)
    kp_wrist = to_wrist_frame(kp_world, side)
    global _SOLVER_LOADED
    if solver == "handx" and not _SOLVER_LOADED:  # a hand's rate is its solve's, not the process's one-time load
        solve_sequence(prob, kp_wrist[:2], opts)
        _SOLVER_LOADED = True
    t0 = time.perf_counter()
    if solver == "handx":
        res = solve_sequence(prob, kp_wrist, opts, progress=progress)
    else:
        from handx_robot.retarget.reference import solve_with_dex_retargeting

        res = solve_with_dex_retargeting(prob, kp_wrist, progress=progress)
    seconds = time.perf_counter() - t0
    if opts.low_pass:
        a = prob.low_pass_alpha
        if 0 <= a < 1:
            res = dataclasses.replace(res, qpos=low_pass(res.qpos, a))
    T_world_base = T_world_wrist @ prob.T_wrist_base @ prob.base_offset(res.q)
    return HandResult(side, spec, prob, res, T_world_base, kp_world, kp_wrist, seconds, solver)


def retarget_motion(
    motion: BimanualMotion,
    left_robot: RobotSpec | str | None = None,
    right_robot: RobotSpec | str | None = None,
    *,
    assets=None,
    solver: str = "handx",
    options: SolverOptions | None = None,
    metrics: bool = True,
    progress: Callable[[int], None] | None = None,
    interaction=None,
) -> tuple[RobotMotion, dict]:
    """Retarget both hands of ``motion``; returns the robot motion and a report (see :mod:`handx_robot.retarget.report`).

    A hand missing from the motion, or without a robot, is skipped (logged). Options default to
    offline settings: no low-pass filter (the temporal term smooths instead).
    interaction: :class:`~handx_robot.retarget.interaction.InteractionOptions`, or its mode ('auto',
    'off'); default 'auto': the frames where the hands interact, or where a hand's fingers would pass through
    each other or miss a contact the human's make within the hand, are solved again, both hands in one
    problem (:mod:`handx_robot.retarget.interaction`; with one hand, that hand), and the report gains an
    ``interaction`` section.
    """
    from handx_robot.retarget.interaction.refine import InteractionOptions

    if interaction is None or isinstance(interaction, str):
        interaction = InteractionOptions(mode=interaction or "auto")
    opts = options or SolverOptions(low_pass=False)
    world = motion.in_frame(FRAME_WORLD_ZUP)
    robots = {"left": left_robot, "right": right_robot}
    hands: dict[str, HandResult] = {}
    for h, side in enumerate(SIDES):
        if robots[side] is None:
            if world.present[h]:
                log.info("the %s hand is in the motion but no %s robot was given: not retargeted", side, side)
            continue
        if not world.present[h]:
            log.info("the motion has no %s hand: only the present hand is retargeted", side)
            continue
        hands[side] = retarget_hand(
            world.joints[:, h], side, robots[side], assets=assets, solver=solver, options=opts, progress=progress
        )
    if not hands:
        raise MotionValueError(
            f"{motion.source}: nothing to retarget: hands present {list(world.present_sides)}, robots given for "
            f"{[s for s, r in robots.items() if r is not None]}"
        )
    inter_section = None
    if interaction.mode != "off":
        from handx_robot.retarget.interaction import solve_bimanual

        hands, inter_section = solve_bimanual(hands, world.fps, interaction)
    for side, hr in hands.items():
        nf = hr.result.num_failed
        if nf:
            log.warning(
                "%s hand (%s): %d of %d frames did not converge (flagged in %s_converged)",
                side, hr.spec.id, nf, len(hr.result.converged), side,
            )  # fmt: skip
    rm = RobotMotion(
        fps=world.fps,
        hands={s: hr.trajectory for s, hr in hands.items()},
        text=world.text,
        source_joints=world.joints,
    )
    report: dict = {"solver": solver, "fps": world.fps, "num_frames": world.num_frames}
    if metrics:
        from handx_robot.retarget.report import fidelity_report

        report.update(fidelity_report(hands, world.fps))
    else:
        report["hands"] = {
            s: {"robot": hr.spec.id, "non_converged_frames": hr.result.num_failed,
                "frames_per_second": len(hr.result.converged) / max(hr.seconds, 1e-9)}
            for s, hr in hands.items()
        }  # fmt: skip
    if inter_section is not None:
        report["interaction"] = inter_section
    return rm, report


def robots_for(motion: BimanualMotion, ids: Mapping[str, str]) -> dict[str, str | None]:
    """``{'left': id or None, 'right': ...}`` for :func:`retarget_motion` from resolved ids."""
    return {s: ids.get(s) for s in SIDES}
