"""Both hands (or one) streamed one frame at a time: the per-hand streaming retargeters, then the bimanual step
(:meth:`~handx_robot.retarget.interaction.refine.BimanualRefiner.step`) with the human's contacts
tracked frame by frame (:class:`~handx_robot.retarget.interaction.pairs.HumanContactTracker`).

What the ROS ``retarget`` node does (it adds message handling and joint selection), for tests and
benchmarks without ROS.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np

from .refine import BimanualRefiner, HumanContactTracker, InteractionOptions

__all__ = ["BimanualFrame", "BimanualStream"]

SIDES = ("left", "right")


@dataclasses.dataclass
class BimanualFrame:
    """One streamed frame. Per side: ``T_world_base`` (4, 4) and ``q`` (D,) the solver's dofs, before
    (``per_hand``) and after the bimanual step; ``solved``: the step ran (the gate did not skip it);
    ``seconds``: per-hand solves and bimanual step, wall time."""

    per_hand_T: dict
    per_hand_q: dict
    T: dict
    q: dict
    solved: bool
    seconds: float


class BimanualStream:
    """``problems``: ``{'left': HandProblem, 'right': HandProblem}``, or one of them (one hand: its fingers
    kept from passing through each other, its own contacts kept); ``step(kp_world)`` with ``kp_world``:
    ``{side: (21, 3)}`` HandX keypoints of those sides, metres, world Z-up -> :class:`BimanualFrame`."""

    def __init__(self, problems: Mapping, options: InteractionOptions | None = None, solver_options=None) -> None:
        from handx_robot.retarget.solver import SolverOptions, StreamingRetargeter

        self.problems = {s: problems[s] for s in SIDES if s in problems}
        self.retargeters = {s: StreamingRetargeter(p, solver_options or SolverOptions()) for s, p in self.problems.items()}
        self.refiner = BimanualRefiner(self.problems, options)
        self.tracker = HumanContactTracker(self.refiner.pairs, self.refiner.contact_config)

    def step(self, kp_world: Mapping[str, np.ndarray]) -> BimanualFrame:
        from handx_robot.handframe import to_wrist_frame, wrist_transform

        t0 = time.perf_counter()
        T0, q0, ref = {}, {}, {}
        for s, prob in self.problems.items():
            kp_wrist = to_wrist_frame(kp_world[s], s)
            r = self.retargeters[s]
            r.step(kp_wrist)
            q0[s] = r.q[0].copy()
            T0[s] = wrist_transform(kp_world[s], s) @ prob.T_wrist_base @ prob.base_offset(r.q)[0]
            ref[s] = prob.reference(kp_wrist[None])[:2]
        touching = self.tracker.update(kp_world)
        T1, q1, stats = self.refiner.step(T0, q0, ref, touching)
        return BimanualFrame(T0, q0, T1, q1, stats is not None, time.perf_counter() - t0)
