"""Interaction-preserving bimanual retargeting: robot hands touch where the human hands touched, and
nowhere else, without passing through each other.

:func:`solve_bimanual` takes the per-hand solutions of both hands (:class:`~handx_robot.retarget.bimanual.HandResult`)
and re-solves, frame by frame, the frames where the hands interact (:mod:`.refine`); with one hand (or two),
also the frames where a hand's fingers would pass through each other or miss a contact the human's fingers
make within the hand (a pinch); :mod:`.measure`
reports contact F1 per contact type, penetration, and wrist deviation; :mod:`.world` is the MuJoCo
world of the two hands' collision geometry both use; :mod:`.state` one frame's state and the fade of a
correction; :mod:`.gate` which frames take the solve; :mod:`.palm` the hands whose palm moves on wrist joints, and
:mod:`.forearm` how their forearms are turned out of each other's way before the solve;
:mod:`.chunks` a long motion in chunks, on several processes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping

from handx_robot.retarget.pool import Pool

from .chunks import refine_chunked
from .forearm import turn_forearms, turned_references
from .measure import interaction_report, measure_frames
from .palm import palm_frame_objective, wrist_poses
from .refine import (
    GATE_REASONS,
    INTERACTION_MODES,
    BimanualRefiner,
    HumanContactTracker,
    InteractionOptions,
    human_contact_mask,
)
from .stream import BimanualFrame, BimanualStream
from .world import TwoHandWorld

#: Two-hand worlds by robots and margin, reused between calls (compiling one takes tenths of a second).
WORLDS = Pool(per_key=2, max_keys=8)

__all__ = ["solve_bimanual", "InteractionOptions", "BimanualRefiner", "HumanContactTracker", "BimanualStream",
           "BimanualFrame", "TwoHandWorld", "INTERACTION_MODES",
           "measure_frames", "interaction_report", "human_contact_mask"]  # fmt: skip


def solve_bimanual(hands: Mapping, fps: float, options: InteractionOptions | None = None,
                   progress: Callable[[int], None] | None = None) -> tuple[dict, dict]:
    """Both hands' per-hand results ``{'left': HandResult, 'right': HandResult}`` (or one hand's) -> new
    results with the bimanual solve applied (joint positions, base poses, objective), and the report's ``interaction``
    section (:mod:`.measure`) with ``bimanual_frames`` and the stage's ``frames_per_second``."""
    opts = options or InteractionOptions()
    t0 = time.perf_counter()
    problems = {s: hr.problem for s, hr in hands.items()}
    key = (tuple((s, repr(p.spec)) for s, p in problems.items()), opts.margin_m)
    with WORLDS.borrow(key, lambda: TwoHandWorld(problems, margin=opts.margin_m)) as world:
        refiner = BimanualRefiner(problems, opts, world=world)
        kp = {s: hr.kp_world for s, hr in hands.items()}
        touching, human_events = human_contact_mask(kp, refiner.pairs, fps)
        refs = {s: hr.problem.reference(hr.kp_wrist)[:2] for s, hr in hands.items()}
        T0 = {s: hr.T_world_base for s, hr in hands.items()}
        q0 = {s: hr.result.q for s, hr in hands.items()}
        Ts, qs = turn_forearms(refiner, T0, q0, fps)  # the same palms and fingers, forearms out of each other's way
        refs = turned_references(refiner, refs, q0, qs)
        T1, q1, info = refine_chunked(refiner, Ts, qs, refs, touching, fps, workers=opts.workers, progress=progress)
        section = interaction_report(refiner, info["measured"], human_events, fps,  # wrists: the links matched to the human's
                                     anchors={s: wrist_poses(problems[s], T0[s], q0[s]) for s in problems},
                                     poses={s: wrist_poses(problems[s], T1[s], q1[s]) for s in problems})  # fmt: skip
    out = {}
    for s, hr in hands.items():
        prob = hr.problem
        # the fingers' shape in the palm frame, which a turn of the forearm does not change (the base-frame objective
        # for a hand whose palm is rigid on its base)
        res = dataclasses.replace(hr.result, q=q1[s], qpos=prob.model_qpos(q1[s]),
                                  objective=palm_frame_objective(prob, q1[s], hr.result.q, hr.kp_wrist))  # fmt: skip
        out[s] = dataclasses.replace(hr, result=res, T_world_base=T1[s])
    seconds = time.perf_counter() - t0
    solved = info["solved"]
    section["bimanual_frames"] = {
        "count": int(solved.sum()), "fraction": float(solved.mean()) if len(solved) else 0.0,
        "non_converged": int((solved & ~info["converged"] & ~info["untangled"]).sum()),  # one step by design
        "mean_iterations": float(info["iterations"][solved].mean()) if solved.any() else 0.0,
        "faded": int((info["gate"] == "fade").sum()),
        "second_starts": int(info["second_start"].sum()),
        "pulled_back": int(info["pulled_back"].sum()),
        "untangled": int(info["untangled"].sum()),
        "by_reason": {r: int((info["gate"] == r).sum()) for r in GATE_REASONS},
    }  # fmt: skip
    section["chunks"] = {"count": len(info.get("splices", ())) + 1, "splices": [int(t) for t in info.get("splices", ())]}
    section["sides"] = list(refiner.world.sides)
    section["frames_per_second"] = len(solved) / max(seconds, 1e-9)
    section["seconds"] = seconds
    section["options"] = dataclasses.asdict(opts)
    return out, section
