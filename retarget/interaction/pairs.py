"""The part pairs the bimanual solve watches (:class:`PartPair`: fingertips and palms, across and within
the hands, those both robots have) and when the human touches them: offline, as contact events with
:mod:`handx_robot.features`'s thresholds, hysteresis, gaps and minimum duration
(:func:`human_contact_mask`), and how many frames ahead each contact begins (:func:`frames_to_onset`);
streamed, frame by frame with the same thresholds and hysteresis (:class:`HumanContactTracker`); the pairs'
distances on the robots (:class:`PairDistances`). Keypoints in metres, HandX order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from handx_robot.features import ContactConfig, contact_events_from_points, contact_pairs, contact_points
from handx_robot.keypoints import FINGERS

from .world import Contacts, TwoHandWorld

__all__ = ["PartPair", "PairDistances", "monitored_pairs", "human_contact_mask", "frames_to_onset", "HumanContactTracker"]


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


class PairDistances:
    """The monitored pairs' distances on the robots, a part of :class:`.refine.BimanualRefiner` (its ``world``,
    ``pairs``, ``options``, ``_inter``, ``_pair_lookup`` and ``_part_geoms``). Metres; gradients over the solve's variables (nx,)."""

    def _pair_rows(self, c) -> tuple[np.ndarray, np.ndarray]:
        """Per monitored pair the row of ``c`` with its smallest distance (-1 if none) and that distance."""
        P = len(self.pairs)
        best = np.full(P, -1, dtype=np.int64)
        dist = np.full(P, np.inf)
        if len(c.dist) == 0 or P == 0:
            return best, dist
        parts = self.world.geom_part[c.geom]
        pair = self._pair_lookup[parts[:, 0], parts[:, 1]]  # a geom of no part (-1): the lookup's last row, -1
        rows = np.flatnonzero(pair >= 0)
        if len(rows) == 0:
            return best, dist
        pair, d = pair[rows], c.dist[rows]
        order = np.lexsort((rows, d, pair))  # by pair, nearest first, the first row of equal distances first
        first = np.ones(len(order), dtype=bool)
        first[1:] = pair[order][1:] != pair[order][:-1]
        sel = order[first]
        best[pair[sel]], dist[pair[sel]] = rows[sel], d[sel]
        return best, dist

    def _missed(self, pair_distance: np.ndarray, touching: np.ndarray) -> int:
        """How many pairs across the hands the human touches (``touching`` (P,)) are not in contact on the robot at
        the monitored pairs' distances ``pair_distance`` (P,) (metres; :meth:`_pair_rows`')."""
        return int((touching & self._inter & (pair_distance >= self.options.robot_contact_m)).sum())

    def _pair_term(self, i: int, rows: np.ndarray, pd: np.ndarray, G: np.ndarray) -> tuple[float, np.ndarray]:
        """Distance and gradient (nx,) of pair ``i``: its listed row of the contacts, else :meth:`_far_pair`."""
        return (pd[i], G[rows[i]]) if rows[i] >= 0 else self._far_pair(i)

    def _far_pair(self, i: int) -> tuple[float, np.ndarray]:
        """Distance and gradient (nx,) of pair ``i`` when no geom pair is within the margin."""
        w = self.world
        p = self.pairs[i]
        best, ft_best, gb = np.inf, None, None
        for g1 in self._part_geoms[(p.side_a, p.part_a)]:
            for g2 in self._part_geoms[(p.side_b, p.part_b)]:
                d, ft = w.geom_distance(g1, g2, 0.25)
                if d < best:
                    best, ft_best, gb = d, ft, (g1, g2)
        if ft_best is None or not np.isfinite(best):
            return np.inf, np.zeros(w.nx)
        p1, p2 = ft_best[:3], ft_best[3:]
        v = p2 - p1
        nrm = v / max(np.linalg.norm(v), 1e-12)
        c = Contacts(np.array([best]), np.array([gb]), nrm[None], (0.5 * (p1 + p2))[None])
        return best, w.distance_gradient(c)[0]


def frames_to_onset(touching: np.ndarray, frames: int) -> np.ndarray:
    """(T, P) int: for a frame where pair p is not touched but a human contact event of p begins ``k`` frames later
    (1 <= k <= ``frames``), ``k``; else 0. ``touching``: (T, P) bool, :func:`human_contact_mask`'s."""
    touching = np.asarray(touching, dtype=bool)
    onset = touching & ~np.vstack([np.zeros((1, touching.shape[1]), dtype=bool), touching[:-1]])
    ahead = np.zeros(touching.shape, dtype=np.int64)
    for k in range(min(frames, len(touching) - 1), 0, -1):  # the nearest onset wins
        ahead[:-k][onset[k:]] = k
    ahead[touching] = 0
    return ahead


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
