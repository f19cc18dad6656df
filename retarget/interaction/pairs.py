"""The part pairs the bimanual solve watches (:class:`PartPair`: fingertips and palms, across and within
the hands, those both robots have) and when the human touches them: offline, as contact events with
:mod:`handx_robot.features`'s thresholds, hysteresis, gaps and minimum duration
(:func:`human_contact_mask`); streamed, frame by frame with the same thresholds and hysteresis
(:class:`HumanContactTracker`). Keypoints in metres, HandX order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from handx_robot.features import ContactConfig, contact_events_from_points, contact_pairs, contact_points
from handx_robot.keypoints import FINGERS

from .world import TwoHandWorld

__all__ = ["PartPair", "monitored_pairs", "human_contact_mask", "HumanContactTracker"]


@dataclasses.dataclass(frozen=True)
class PartPair:
    """A monitored contact pair: ``kind`` and participant names as in :func:`handx_robot.features.contact_pairs`,
    and the robot parts (side, part index: 0-4 fingertips in FINGERS order, 5 palm)."""

    kind: str
    a: str
    b: str
    side_a: str
    part_a: int
    side_b: str
    part_b: int


def _part_of(name: str) -> tuple[str, int]:
    side, rest = name.split("_", 1)
    return side, (5 if rest == "palm" else FINGERS.index(rest[: -len("_tip")]))


def monitored_pairs(world: TwoHandWorld, config: ContactConfig | None = None) -> list[PartPair]:
    """The human contact pairs both of whose parts the robots have (e.g. no pinky on an Allegro)."""
    present = tuple(s in world.sides for s in ("left", "right"))
    out = []
    for kind, a, b, _ in contact_pairs(present, config):
        (sa, pa), (sb, pb) = _part_of(a), _part_of(b)
        if world.has_part(sa, pa) and world.has_part(sb, pb):
            out.append(PartPair(kind, a, b, sa, pa, sb, pb))
    return out


def human_contact_mask(kp_world: Mapping[str, np.ndarray], pairs: list[PartPair], fps: float,
                       config: ContactConfig | None = None) -> tuple[np.ndarray, list]:
    """(T, P) bool: frames of the human's contact events per pair, and the events.

    kp_world: ``{side: (T, 21, 3)}`` HandX keypoints, metres (any common frame).
    """
    T = next(iter(kp_world.values())).shape[0]
    joints = np.zeros((T, 2, 21, 3))
    present = [s in kp_world for s in ("left", "right")]
    for h, s in enumerate(("left", "right")):
        if s in kp_world:
            joints[:, h] = kp_world[s]
    pts = contact_points(joints, present)
    names = {p.a for p in pairs} | {p.b for p in pairs}
    events = contact_events_from_points({n: pts[n] for n in names if n in pts}, fps, config)
    index = {frozenset((p.a, p.b)): i for i, p in enumerate(pairs)}
    mask = np.zeros((T, len(pairs)), dtype=bool)
    kept = []
    for ev in events:
        i = index.get(frozenset((ev.a, ev.b)))
        if i is None:
            continue
        kept.append(ev)
        s, e = int(round(ev.start * fps)), int(round(ev.end * fps))
        mask[max(s, 0) : min(e, T), i] = True
    return mask, kept


class HumanContactTracker:
    """The human's contacts frame by frame, for streaming (:meth:`.refine.BimanualRefiner.step`): per monitored
    pair, in contact from when its distance falls below the pair's threshold of
    :func:`handx_robot.features.contact_pairs` until it rises above ``exit_ratio`` times it (the same
    thresholds and hysteresis as the offline events; their minimum duration and gap filling need the
    future, so a streamed contact starts and ends on the frame it is seen)."""

    def __init__(self, pairs: list[PartPair], config: ContactConfig | None = None) -> None:
        self.config = config or ContactConfig()
        thresholds = {frozenset((a, b)): thr for _k, a, b, thr in contact_pairs((True, True), self.config)}
        self.pairs = pairs
        self.threshold = np.array([thresholds.get(frozenset((p.a, p.b)), 0.0) for p in pairs])
        self.active = np.zeros(len(pairs), dtype=bool)

    def update(self, kp_world: Mapping[str, np.ndarray]) -> np.ndarray:
        """kp_world: ``{side: (21, 3)}`` HandX keypoints, metres, one frame. Returns (P,) bool."""
        joints = np.zeros((1, 2, 21, 3))
        present = [s in kp_world for s in ("left", "right")]
        for h, s in enumerate(("left", "right")):
            if s in kp_world:
                joints[0, h] = kp_world[s]
        pts = contact_points(joints, present)
        for i, p in enumerate(self.pairs):
            if p.a not in pts or p.b not in pts or self.threshold[i] <= 0:
                self.active[i] = False
                continue
            d = float(np.linalg.norm(pts[p.a][0] - pts[p.b][0]))
            limit = self.threshold[i] * (self.config.exit_ratio if self.active[i] else 1.0)
            self.active[i] = d < limit
        return self.active.copy()
