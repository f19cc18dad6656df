"""A humanoid streamed one frame at a time (what the ROS ``retarget`` node runs for a humanoid id).

Per frame: the human keypoints are placed in front of the robot with a fixed
:class:`~.workspace.WorkspaceMap` (given, or built from the spec with the first frame's hand midpoint as
the motion's mean: streaming cannot fit a scale to frames it has not seen, so ``scale: auto`` streams
at 1.0); each hand is retargeted by its streaming solver (warm-started; with both hands and
``interaction='auto'`` the bimanual step of :mod:`handx_robot.retarget.interaction` follows); the arms
then take one warm-started :class:`~.ik.ArmIK` step toward the hand targets, within the joint speed
limits at the stream's rate.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np
from handx_robot.retarget.humanoid.ik import ArmIK, IKOptions
from handx_robot.retarget.humanoid.model import load_humanoid_model
from handx_robot.retarget.humanoid.spec import SIDES, HumanoidSpec, get_humanoid
from handx_robot.retarget.humanoid.workspace import R_ROBOT_HUMAN, WorkspaceMap

from handx_robot.handframe import to_wrist_frame, wrist_transform
from handx_robot.rotations import rpy_to_matrix

__all__ = ["HumanoidFrame", "HumanoidStream"]


@dataclasses.dataclass(frozen=True)
class HumanoidFrame:
    """One streamed frame.

    hands: side -> {hand joint name: position} (the hand's actuated joints, rad/m). arms: arm joint
    name -> rad (both arms). T_world_hand: side -> (4, 4) achieved hand-root pose; target: side -> (4, 4)
    the hand retargeting's pose. position_error / rotation_error: side -> m / rad. seconds: wall time.
    """

    hands: dict[str, dict[str, float]]
    arms: dict[str, float]
    T_world_hand: dict[str, np.ndarray]
    target: dict[str, np.ndarray]
    position_error: dict[str, float]
    rotation_error: dict[str, float]
    seconds: float


class HumanoidStream:
    """``step({side: (21, 3) keypoints, world_zup, metres}) -> HumanoidFrame`` for a humanoid.

    fps: the stream's rate (Hz; sets the per-frame speed box). workspace: a fixed mapping, or None.
    interaction_options: the bimanual step's settings (:class:`~handx_robot.retarget.interaction.InteractionOptions`;
    default: its defaults).
    """

    def __init__(self, humanoid: HumanoidSpec | str, fps: float, *, interaction: str = "auto",
                 workspace: WorkspaceMap | None = None, ik: IKOptions | None = None,
                 interaction_options=None) -> None:  # fmt: skip
        from handx_robot.retarget.solver import HandProblem, SolverOptions, StreamingRetargeter

        self.spec = humanoid if isinstance(humanoid, HumanoidSpec) else get_humanoid(humanoid)
        self.hm = load_humanoid_model(self.spec)
        self.sides = self.hm.sides
        self.problems = {s: HandProblem(self.hm.hands[s]) for s in self.sides}
        self.retargeters = {s: StreamingRetargeter(p, SolverOptions()) for s, p in self.problems.items()}
        self.refiner = self.tracker = None
        if interaction == "auto" and len(self.sides) == 2:
            from handx_robot.retarget.interaction import BimanualRefiner, HumanContactTracker

            self.refiner = BimanualRefiner(self.problems, interaction_options)
            self.tracker = HumanContactTracker(self.refiner.pairs, self.refiner.contact_config)
        self.ik = ArmIK(self.hm, fps, ik)
        self.workspace = workspace
        self.joint_names = {s: tuple(self.hm.hands[s].joint_names) for s in self.sides}
        self._cols = {s: np.array([p.joint_names.index(n) for n in self.joint_names[s]]) for s, p in self.problems.items()}
        self.frames = 0

    @property
    def arm_joint_names(self) -> tuple[str, ...]:
        return self.spec.arm_joint_names

    def _map(self, kp_world: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        present = np.array([s in kp_world for s in SIDES])
        joints = np.zeros((1, 2, 21, 3))
        for h, s in enumerate(SIDES):
            if s in kp_world:
                joints[0, h] = kp_world[s]
        if self.workspace is None:
            ws = self.spec.workspace
            m_bar = joints[0, present, 0].mean(axis=0)
            R = rpy_to_matrix([0.0, 0.0, ws.yaw]) @ R_ROBOT_HUMAN
            self.workspace = WorkspaceMap(R, ws.scale or 1.0, m_bar, ws.center, False)
        mapped = self.workspace.apply(joints, present)[0].astype(np.float64)
        return {s: mapped[h] for h, s in enumerate(SIDES) if s in kp_world}

    def step(self, kp_world: Mapping[str, np.ndarray]) -> HumanoidFrame:
        """One frame; sides absent from ``kp_world`` keep their last hand pose and arm target."""
        t0 = time.perf_counter()
        kp = {s: v for s, v in self._map(kp_world).items() if s in self.sides}
        T0, q0, ref = {}, {}, {}
        for s, k in kp.items():
            p = self.problems[s]
            kp_wrist = to_wrist_frame(k, s)
            self.retargeters[s].step(kp_wrist)
            q0[s] = self.retargeters[s].q[0].copy()
            T0[s] = wrist_transform(k, s) @ p.T_wrist_base @ p.base_offset(self.retargeters[s].q)[0]
            ref[s] = p.reference(kp_wrist[None])[:2]
        T1, q1 = T0, q0
        if self.refiner is not None and len(kp) == 2:
            touching = self.tracker.update(kp)
            T1, q1, _ = self.refiner.step(T0, q0, ref, touching)
        hands = {}
        for s in kp:
            qpos = self.problems[s].model_qpos(q1[s][None])[0][self._cols[s]]
            hands[s] = dict(zip(self.joint_names[s], qpos.tolist()))
            self.ik.set_hand(s, hands[s])
        sol = self.ik.step({s: T1[s] for s in kp})
        arms = dict(zip(self.arm_joint_names, sol.qpos[np.concatenate([self.hm.arm_qpos[s] for s in self.sides])].tolist()))
        self.frames += 1
        return HumanoidFrame(hands, arms, sol.T_world_hand, dict(T1), sol.position_error, sol.rotation_error,
                             time.perf_counter() - t0)  # fmt: skip
