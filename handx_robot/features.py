"""HandX-style motion features and contact events of a bimanual motion.

Units: metres, seconds, radians. Keypoints are in HandX order (:mod:`handx_robot.keypoints`),
any frame (every feature here is rotation invariant). Arrays below use ``T`` frames and
hand axis ``(left, right)``; an absent hand gets NaN features and no events.

Features (:class:`MotionFeatures`):

* ``flexion`` (T, 2, 5): per finger (thumb, index, middle, ring, pinky) the sum of the bend angles
  at the finger's joints, radians (0 = straight). Fingers: MCP, PIP, DIP (bones wrist→MCP→PIP→DIP→tip);
  thumb: MCP and IP (bones CMC→MCP→IP→tip).
* ``openness`` (T, 2): mean over the five fingers of ``|tip - base| / chain length`` (base = MCP, thumb
  CMC), 1 = every finger straight, lower as fingers curl (a tight fist is about 0.4). Scale free.
* ``pinch`` (T, 2, 4): thumb tip to index/middle/ring/pinky tip distance, metres.
* ``palm_centre`` (T, 2, 3): mean of wrist and the four finger MCPs, metres.
* ``wrist_speed`` (T, 2): m/s (central differences).

Contacts (HandX thresholds): fingertip–fingertip < 2.0 cm, fingertip–palm < 2.5 cm, within a hand and
between hands, and palm–palm (claps) < 4.0 cm between the two palm centres (palm centres lie ~1.5 cm
under the skin, so two touching palms put them ~3 cm apart). Distances are between keypoints, which sit
inside the fingers, so these are "near-contact" thresholds as in HandX. Neighbouring fingertips of one
hand (index–middle, middle–ring, ring–pinky) rest 1.5–2 cm apart, so those pairs are not monitored unless
``ContactConfig(adjacent_tips=True)``.

Noise handling, applied in this order by :func:`contact_mask_with_hysteresis` and
:func:`segments_from_mask`:

1. hysteresis: a contact *starts* when the distance drops below ``threshold`` and lasts while it stays
   below ``threshold * exit_ratio`` (default 1.2), so jitter around the threshold does not toggle it;
2. gaps of at most ``max_gap`` seconds (default 0.1 s) between two contacts of a pair are closed;
3. contacts shorter than ``min_duration`` seconds (default 0.1 s) are dropped.

Participants are named ``{side}_{finger}_tip`` and ``{side}_palm`` (e.g. ``right_thumb_tip``,
``left_palm``), so robot fingertip positions can use the same names and the same machinery
(:func:`contact_events_from_points`, :func:`events_from_distances`).
Event times: ``start`` is the first contact frame's time, ``end`` the time just after the last contact
frame (``(last + 1) / fps``), so ``end - start`` is the number of contact frames / fps.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import numpy as np

from handx_robot.errors import MotionValueError
from handx_robot.keypoints import FINGER_CHAINS, FINGERS, FINGERTIPS, WRIST
from handx_robot.motion import SIDES, BimanualMotion

__all__ = [
    "TIP_TIP_THRESHOLD_M",
    "TIP_PALM_THRESHOLD_M",
    "PALM_PALM_THRESHOLD_M",
    "PALM_INDICES",
    "ContactConfig",
    "ContactEvent",
    "MotionFeatures",
    "palm_centre",
    "finger_flexion",
    "hand_openness",
    "pinch_distances",
    "wrist_speed",
    "contact_points",
    "contact_pairs",
    "contact_mask_with_hysteresis",
    "segments_from_mask",
    "events_from_distances",
    "contact_events",
    "contact_events_from_points",
    "compute_features",
    "describe",
    "describe_events",
]

TIP_TIP_THRESHOLD_M = 0.020
TIP_PALM_THRESHOLD_M = 0.025
PALM_PALM_THRESHOLD_M = 0.040

#: HandX indices of the palm: wrist + index, middle, ring, pinky MCP.
PALM_INDICES: tuple[int, ...] = (WRIST, 1, 4, 10, 7)
_PINCH_FINGERS = ("index", "middle", "ring", "pinky")


@dataclasses.dataclass(frozen=True)
class ContactConfig:
    """Contact thresholds (metres) and noise filtering (seconds); see the module docstring."""

    tip_tip: float = TIP_TIP_THRESHOLD_M
    tip_palm: float = TIP_PALM_THRESHOLD_M
    palm_palm: float = PALM_PALM_THRESHOLD_M
    exit_ratio: float = 1.2
    min_duration: float = 0.1
    max_gap: float = 0.1
    intra_hand: bool = True
    inter_hand: bool = True
    adjacent_tips: bool = False

    def __post_init__(self) -> None:
        for name in ("tip_tip", "tip_palm", "palm_palm"):
            v = getattr(self, name)
            if not np.isfinite(v) or v <= 0:
                raise MotionValueError(f"ContactConfig.{name} must be a distance > 0 m, got {v}")
        if not self.exit_ratio >= 1.0:
            raise MotionValueError(f"ContactConfig.exit_ratio must be >= 1, got {self.exit_ratio}")
        for name in ("min_duration", "max_gap"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise MotionValueError(f"ContactConfig.{name} must be >= 0 s, got {v}")


@dataclasses.dataclass(frozen=True)
class ContactEvent:
    """One contact between two participants over ``[start, end)`` seconds.

    kind:  ``pinch`` (thumb tip with another tip of the same hand), ``tip_tip``, ``tip_palm``,
           ``inter_tip_tip``, ``inter_tip_palm`` or ``palm_palm`` (any name for custom events).
    a, b:  participant names, e.g. ``right_thumb_tip``, ``left_palm``.
    start, end: seconds; ``end - start`` = contact frames / fps.
    min_distance: closest distance during the event, metres (NaN when unknown).
    """

    kind: str
    a: str
    b: str
    start: float
    end: float
    min_distance: float = float("nan")

    def __post_init__(self) -> None:
        if not (np.isfinite(self.start) and np.isfinite(self.end)) or self.end < self.start:
            raise MotionValueError(f"contact event {self.a}-{self.b}: needs start <= end, got {self.start}, {self.end}")

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def participants(self) -> frozenset[str]:
        return frozenset((self.a, self.b))

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "a": self.a,
            "b": self.b,
            "start": round(self.start, 4),
            "end": round(self.end, 4),
            "min_distance": None if not np.isfinite(self.min_distance) else round(self.min_distance, 5),
        }


@dataclasses.dataclass(frozen=True)
class MotionFeatures:
    """Per-frame features of a motion (shapes in the module docstring); absent hands hold NaN."""

    fps: float
    present: np.ndarray
    flexion: np.ndarray
    openness: np.ndarray
    pinch: np.ndarray
    palm_centre: np.ndarray
    wrist_speed: np.ndarray
    events: tuple[ContactEvent, ...]

    @property
    def num_frames(self) -> int:
        return int(self.openness.shape[0])

    def summary(self) -> dict:
        """Per-hand scalars (JSON-friendly)."""
        out: dict = {}
        for h, side in enumerate(SIDES):
            if not self.present[h]:
                continue
            out[side] = {
                "openness_min": float(np.min(self.openness[:, h])),
                "openness_max": float(np.max(self.openness[:, h])),
                "flexion_mean_rad": {f: float(np.mean(self.flexion[:, h, i])) for i, f in enumerate(FINGERS)},
                "min_pinch_m": {f: float(np.min(self.pinch[:, h, i])) for i, f in enumerate(_PINCH_FINGERS)},
                "wrist_speed_max_mps": float(np.max(self.wrist_speed[:, h])),
                "wrist_speed_mean_mps": float(np.mean(self.wrist_speed[:, h])),
            }
        return out


# -- per-frame geometry -------------------------------------------------------------------
def palm_centre(joints: np.ndarray) -> np.ndarray:
    """Palm centre ``(..., 3)``: mean of wrist and the four finger MCPs of ``joints (..., 21, 3)``."""
    joints = np.asarray(joints)
    return joints[..., PALM_INDICES, :].mean(axis=-2)


#: (5, 5) HandX indices per finger (thumb, index, middle, ring, pinky): wrist then the 4-joint chain.
_FINGER_IDX = np.array([(WRIST, *FINGER_CHAINS[f]) for f in FINGERS])
#: which of the 3 bend angles count as flexion: the thumb's wrist–CMC–MCP angle does not.
_FLEX_WEIGHT = np.array([[0.0, 1.0, 1.0]] + [[1.0, 1.0, 1.0]] * 4, dtype=np.float32)


def _finger_geometry(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(flexion (..., 5) rad, openness (...))`` from ``joints (..., 21, 3)`` in one gather."""
    pts = np.asarray(joints, dtype=np.float32)[..., _FINGER_IDX, :]  # (..., 5, 5, 3)
    bones = np.diff(pts, axis=-2)  # (..., 5, 4, 3)
    length = np.sqrt(np.einsum("...d,...d->...", bones, bones))  # (..., 5, 4)
    dots = np.einsum("...d,...d->...", bones[..., :-1, :], bones[..., 1:, :])  # (..., 5, 3)
    cos = np.clip(dots / np.maximum(length[..., :-1] * length[..., 1:], 1e-12), -1.0, 1.0)
    flexion = (np.arccos(cos) * _FLEX_WEIGHT).sum(axis=-1)
    reach_vec = pts[..., -1, :] - pts[..., 1, :]
    reach = np.sqrt(np.einsum("...d,...d->...", reach_vec, reach_vec))  # (..., 5)
    openness = (reach / np.maximum(length[..., 1:].sum(axis=-1), 1e-9)).mean(axis=-1)
    return flexion.astype(np.float32), openness.astype(np.float32)


def finger_flexion(joints: np.ndarray) -> np.ndarray:
    """Flexion ``(..., 5)`` radians per finger (thumb, index, middle, ring, pinky) from ``(..., 21, 3)``."""
    return _finger_geometry(joints)[0]


def hand_openness(joints: np.ndarray) -> np.ndarray:
    """Openness ``(...)`` in (0, 1]: mean over fingers of tip-to-base distance / finger chain length."""
    return _finger_geometry(joints)[1]


def pinch_distances(joints: np.ndarray) -> np.ndarray:
    """Thumb tip to index/middle/ring/pinky tip distances ``(..., 4)``, metres."""
    joints = np.asarray(joints, dtype=np.float32)
    thumb = joints[..., FINGERTIPS["thumb"], :]
    tips = joints[..., [FINGERTIPS[f] for f in _PINCH_FINGERS], :]
    return np.linalg.norm(tips - thumb[..., None, :], axis=-1)


def wrist_speed(joints: np.ndarray, fps: float) -> np.ndarray:
    """Wrist speed ``(T, ...)`` m/s from ``joints (T, ..., 21, 3)`` (central differences)."""
    joints = np.asarray(joints, dtype=np.float32)
    wrist = joints[..., WRIST, :]
    if wrist.shape[0] < 2:
        return np.zeros(wrist.shape[:-1], dtype=np.float32)
    vel = np.gradient(wrist, axis=0) * np.float32(fps)
    return np.linalg.norm(vel, axis=-1)


# -- contacts ------------------------------------------------------------------------------
def contact_points(joints: np.ndarray, present: Sequence[bool] = (True, True)) -> dict[str, np.ndarray]:
    """Named contact points ``{name: (T, 3)}`` of ``joints (T, 2, 21, 3)``: fingertips and palm centres."""
    joints = np.asarray(joints)
    points: dict[str, np.ndarray] = {}
    for h, side in enumerate(SIDES):
        if not present[h]:
            continue
        for finger in FINGERS:
            points[f"{side}_{finger}_tip"] = joints[:, h, FINGERTIPS[finger]]
        points[f"{side}_palm"] = palm_centre(joints[:, h])
    return points


def contact_pairs(present: Sequence[bool] = (True, True), config: ContactConfig | None = None) -> list[tuple[str, str, str, float]]:
    """Monitored pairs ``(kind, a, b, threshold_m)`` for the hands in ``present`` (left, right)."""
    cfg = config or ContactConfig()
    pairs: list[tuple[str, str, str, float]] = []
    sides = [s for s, p in zip(SIDES, present) if p]
    if cfg.intra_hand:
        for side in sides:
            for i, f1 in enumerate(FINGERS):
                for k, f2 in enumerate(FINGERS[i + 1 :]):
                    if k == 0 and f1 != "thumb" and not cfg.adjacent_tips:
                        continue  # neighbouring fingertips rest ~1.5-2 cm apart: not a contact cue
                    kind = "pinch" if f1 == "thumb" else "tip_tip"
                    pairs.append((kind, f"{side}_{f1}_tip", f"{side}_{f2}_tip", cfg.tip_tip))
            for f in FINGERS:
                pairs.append(("tip_palm", f"{side}_{f}_tip", f"{side}_palm", cfg.tip_palm))
    if cfg.inter_hand and len(sides) == 2:
        for f1 in FINGERS:
            for f2 in FINGERS:
                pairs.append(("inter_tip_tip", f"left_{f1}_tip", f"right_{f2}_tip", cfg.tip_tip))
        for f in FINGERS:
            pairs.append(("inter_tip_palm", f"left_{f}_tip", "right_palm", cfg.tip_palm))
            pairs.append(("inter_tip_palm", f"right_{f}_tip", "left_palm", cfg.tip_palm))
        pairs.append(("palm_palm", "left_palm", "right_palm", cfg.palm_palm))
    return pairs


def contact_mask_with_hysteresis(distance: np.ndarray, threshold: float, exit_ratio: float = 1.2) -> np.ndarray:
    """Contact mask ``(T, ...)`` bool from distances ``(T, ...)`` with hysteresis (vectorised over time).

    Same result as the state machine ``on[t] = d[t] < threshold or (on[t-1] and d[t] < threshold * exit_ratio)``:
    a contact starts at the first frame below ``threshold`` and lasts while the distance stays below
    ``threshold * exit_ratio``. NaN distances are never in contact.
    """
    d = np.asarray(distance)
    if exit_ratio == 1.0 or d.shape[0] == 0:
        return d < threshold
    out = np.empty(d.shape, dtype=bool)
    rest = d.shape[1:]
    prev_stay = np.zeros(rest, dtype=bool)
    last_start = np.full(rest, -1, dtype=np.int64)
    last_enter = np.full(rest, -1, dtype=np.int64)
    step = 8192  # blocks of frames with carried state: cache friendly, same result as one pass
    for s in range(0, d.shape[0], step):
        blk = d[s : s + step]
        enter = blk < threshold
        stay = blk < threshold * exit_ratio
        starts = stay.copy()
        starts[0] &= ~prev_stay
        starts[1:] &= ~stay[:-1]
        idx = np.arange(s, s + blk.shape[0], dtype=np.int64).reshape((-1,) + (1,) * len(rest))
        ls = np.maximum.accumulate(np.where(starts, idx, -1), axis=0)
        np.maximum(ls, last_start, out=ls)
        le = np.maximum.accumulate(np.where(enter, idx, -1), axis=0)
        np.maximum(le, last_enter, out=le)
        out[s : s + step] = stay & (le >= ls)
        prev_stay, last_start, last_enter = stay[-1], ls[-1], le[-1]
    return out


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) frame indices of the True runs of a 1-D mask."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return edges[0::2], edges[1::2]


def _filter_runs(starts: np.ndarray, ends: np.ndarray, fps: float, min_duration: float, max_gap: float):
    if len(starts) and max_gap > 0:
        gap = starts[1:] - ends[:-1]
        keep_break = gap > max_gap * fps + 1e-9  # close gaps of <= max_gap seconds
        new_starts = np.concatenate([starts[:1], starts[1:][keep_break]])
        new_ends = np.concatenate([ends[:-1][keep_break], ends[-1:]])
        starts, ends = new_starts, new_ends
    if len(starts) and min_duration > 0:
        long = (ends - starts) >= min_duration * fps - 1e-9
        starts, ends = starts[long], ends[long]
    return starts, ends


def segments_from_mask(
    mask: np.ndarray, fps: float, min_duration: float = 0.0, max_gap: float = 0.0
) -> list[tuple[float, float]]:
    """``[(start_s, end_s), ...]`` of the True runs of ``mask (T,)``; ``end`` is exclusive ((last+1)/fps).

    Gaps of at most ``max_gap`` seconds are closed first, then runs shorter than ``min_duration``
    seconds are dropped.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 1:
        raise MotionValueError(f"segments_from_mask: mask must have shape (T,), got {mask.shape}")
    if not np.isfinite(fps) or fps <= 0:
        raise MotionValueError(f"segments_from_mask: fps must be > 0, got {fps}")
    starts, ends = _filter_runs(*_runs(mask), fps, min_duration, max_gap)
    return [(float(s) / fps, float(e) / fps) for s, e in zip(starts, ends)]


def events_from_distances(
    distances: dict[tuple[str, str, str], np.ndarray] | Sequence[tuple[str, str, str, np.ndarray, float]],
    fps: float,
    config: ContactConfig | None = None,
    thresholds: dict[str, float] | None = None,
) -> list[ContactEvent]:
    """Contact events from per-pair distance series.

    distances: either a list of ``(kind, a, b, distance (T,), threshold_m)`` or a dict
               ``{(kind, a, b): distance (T,)}`` with ``thresholds[kind]`` (defaults from ``config``).
    Returns events sorted by start time. Reusable on robot fingertip distances.
    """
    cfg = config or ContactConfig()
    if isinstance(distances, dict):
        th = {
            "pinch": cfg.tip_tip, "tip_tip": cfg.tip_tip, "inter_tip_tip": cfg.tip_tip,
            "tip_palm": cfg.tip_palm, "inter_tip_palm": cfg.tip_palm, "palm_palm": cfg.palm_palm,
        }  # fmt: skip
        th.update(thresholds or {})
        unknown = sorted({k for k, _, _ in distances if k not in th})
        if unknown:
            raise MotionValueError(
                f"events_from_distances: no threshold for kind(s) {unknown}; known kinds: {sorted(th)}; "
                "pass thresholds={kind: metres}"
            )
        items = [(k, a, b, d, th[k]) for (k, a, b), d in distances.items()]
    else:
        items = list(distances)
    if not items:
        return []
    D = np.stack([np.asarray(it[3], dtype=np.float32) for it in items], axis=1)  # (T, P)
    thr = np.array([it[4] for it in items], dtype=np.float32)
    mask = contact_mask_with_hysteresis(D / thr, 1.0, cfg.exit_ratio)
    return _events_from_mask(mask, D, items, fps, cfg)


def _events_from_mask(mask: np.ndarray, D: np.ndarray, items, fps: float, cfg: ContactConfig) -> list[ContactEvent]:
    events: list[ContactEvent] = []
    # transitions for all pairs at once; only pairs with any contact are visited in Python
    any_contact = np.flatnonzero(mask.any(axis=0))
    for p in any_contact:
        starts, ends = _filter_runs(*_runs(mask[:, p]), fps, cfg.min_duration, cfg.max_gap)
        if not len(starts):
            continue
        kind, a, b = items[p][0], items[p][1], items[p][2]
        col = D[:, p]
        for s, e in zip(starts, ends):
            events.append(ContactEvent(kind, a, b, float(s) / fps, float(e) / fps, float(col[s:e].min())))
    events.sort(key=lambda ev: (ev.start, ev.a, ev.b))
    return events


_CHUNK = 32768  # frames per block: keeps the temporaries in the CPU cache
_PAIR_CHUNK = 8192


def _block_points(block: np.ndarray, present) -> np.ndarray:
    """``(t, K, 3)`` contact points of ``block (t, 2, 21, 3)``, in :func:`contact_points` order."""
    parts = []
    tips = [FINGERTIPS[f] for f in FINGERS]
    for h in range(2):
        if present[h]:
            parts.append(block[:, h, tips])
            parts.append(block[:, h, PALM_INDICES].mean(axis=1, keepdims=True))
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def _pair_distances(joints: np.ndarray, present, cfg: ContactConfig):
    """Monitored pairs and their distances ``(T, P)`` float32 metres, computed in frame blocks."""
    pairs = contact_pairs(present, cfg)
    T = joints.shape[0]
    if not pairs:
        return pairs, np.zeros((T, 0), dtype=np.float32)
    names = list(contact_points(joints[:1], present))
    ia = np.array([names.index(p[1]) for p in pairs])
    ib = np.array([names.index(p[2]) for p in pairs])
    D = np.empty((T, len(pairs)), dtype=np.float32)
    for s in range(0, T, _PAIR_CHUNK):
        P = _block_points(joints[s : s + _PAIR_CHUNK], present)
        Pc = np.ascontiguousarray(P.transpose(2, 0, 1))  # (3, t, K): per-axis gathers are contiguous
        acc = np.zeros((P.shape[0], len(pairs)), dtype=np.float32)
        for c in range(3):
            dc = Pc[c][:, ia] - Pc[c][:, ib]
            acc += dc * dc
        D[s : s + _PAIR_CHUNK] = np.sqrt(acc)
    return pairs, D


def contact_events(motion: BimanualMotion, config: ContactConfig | None = None) -> list[ContactEvent]:
    """Contact events of ``motion`` (fingertips and palms, within and between hands), sorted by start."""
    cfg = config or ContactConfig()
    pairs, D = _pair_distances(motion.joints, motion.present, cfg)
    if not pairs:
        return []
    thr = np.array([p[3] for p in pairs], dtype=np.float32)
    mask = contact_mask_with_hysteresis(D / thr, 1.0, cfg.exit_ratio)
    items = [(k, a, b, None, t) for k, a, b, t in pairs]
    return _events_from_mask(mask, D, items, motion.fps, cfg)


def contact_events_from_points(
    points: dict[str, np.ndarray], fps: float, config: ContactConfig | None = None
) -> list[ContactEvent]:
    """Contact events from named point trajectories ``{name: (T, 3)}`` metres (e.g. robot fingertips).

    Names follow :func:`contact_points` (``right_thumb_tip``, ``left_palm``, ...); every pair of
    :func:`contact_pairs` whose two names are both given is monitored with the same thresholds and noise
    filtering as human motion, so ``event_f1(robot_events, human_events)`` compares like with like.
    """
    cfg = config or ContactConfig()
    if not np.isfinite(fps) or fps <= 0:
        raise MotionValueError(f"contact_events_from_points: fps must be > 0, got {fps}")
    arrays = {n: np.asarray(p, dtype=np.float32) for n, p in points.items()}
    lengths = {a.shape for a in arrays.values()}
    if len(lengths) > 1 or any(len(sh) != 2 or sh[1] != 3 for sh in lengths):
        raise MotionValueError(f"contact_events_from_points: every trajectory must be (T, 3) with one T, got {sorted(lengths)}")
    pairs = [p for p in contact_pairs((True, True), cfg) if p[1] in arrays and p[2] in arrays]
    if not pairs:
        return []
    items = [(k, a, b, np.linalg.norm(arrays[a] - arrays[b], axis=-1), t) for k, a, b, t in pairs]
    return events_from_distances(items, fps, cfg)


def compute_features(motion: BimanualMotion, config: ContactConfig | None = None) -> MotionFeatures:
    """All per-frame features and the contact events of ``motion``."""
    J = motion.joints
    T = motion.num_frames
    flex = np.full((T, 2, 5), np.nan, dtype=np.float32)
    openness = np.full((T, 2), np.nan, dtype=np.float32)
    pinch = np.full((T, 2, 4), np.nan, dtype=np.float32)
    palm = np.full((T, 2, 3), np.nan, dtype=np.float32)
    speed = np.full((T, 2), np.nan, dtype=np.float32)
    for h in range(2):
        if not motion.present[h]:
            continue
        for s in range(0, T, _CHUNK):
            hand = J[s : s + _CHUNK, h]
            flex[s : s + _CHUNK, h], openness[s : s + _CHUNK, h] = _finger_geometry(hand)
            pinch[s : s + _CHUNK, h] = pinch_distances(hand)
            palm[s : s + _CHUNK, h] = palm_centre(hand)
        speed[:, h] = wrist_speed(J[:, h], motion.fps)
    events = tuple(contact_events(motion, config))
    return MotionFeatures(motion.fps, motion.present.copy(), flex, openness, pinch, palm, speed, events)


# -- text -----------------------------------------------------------------------------------
def _pretty(name: str) -> str:
    parts = name.split("_")
    if parts[-1] == "tip":
        parts = parts[:-1]
    return " ".join(parts)


def _event_text(ev: ContactEvent) -> str:
    span = f"{ev.start:.2f}–{ev.end:.2f} s"
    a, b = _pretty(ev.a), _pretty(ev.b)
    if ev.kind == "pinch":
        side, _, f2 = b.partition(" ")
        return f"{side} thumb and {f2} pinch {span}"
    if ev.kind == "palm_palm":
        return f"palms touch (clap) {span}"
    if ev.kind == "tip_tip":
        side, _, f1 = a.partition(" ")
        return f"{side} {f1} and {b.partition(' ')[2]} tips touch {span}"
    if ev.kind == "tip_palm":
        side, _, f1 = a.partition(" ")
        return f"{side} {f1} tip touches its palm {span}"
    return f"{a} {'tip ' if ev.a.endswith('_tip') else ''}touches {b}{' tip' if ev.b.endswith('_tip') else ''} {span}"


def describe_events(events: Sequence[ContactEvent]) -> list[str]:
    """One short factual line per event, in time order."""
    return [_event_text(ev) for ev in sorted(events, key=lambda e: (e.start, e.a, e.b))]


def describe(motion: BimanualMotion, features: MotionFeatures | None = None, as_json: bool = False) -> str:
    """A short factual text of ``motion`` (or JSON with ``as_json``): hands, timing, openness, speed,
    HandX contact metrics (over ``frames / fps`` seconds) and one line per contact event."""
    from handx_robot.metrics import contact_stats

    feats = features or compute_features(motion)
    stats = contact_stats(feats.events, motion.num_frames / motion.fps)
    if as_json:
        return json.dumps(
            {
                "source": motion.source,
                "text": motion.text,
                "fps": motion.fps,
                "frames": motion.num_frames,
                "duration_s": round(motion.duration, 4),
                "hands": list(motion.present_sides),
                "frame": motion.frame,
                "hand_stats": feats.summary(),
                "contact_stats": stats,
                "events": [ev.to_dict() for ev in feats.events],
                "lines": describe_events(feats.events),
            },
            indent=2,
        )
    lines = [
        f"{motion.duration:.2f} s, {motion.num_frames} frames at {motion.fps:g} fps; "
        f"hands: {', '.join(motion.present_sides)}"
    ]
    if motion.text:
        lines.append(f"caption: {motion.text}")
    for side, s in feats.summary().items():
        lines.append(
            f"{side} hand: openness {s['openness_min']:.2f}–{s['openness_max']:.2f}, "
            f"wrist speed mean {s['wrist_speed_mean_mps']:.2f} m/s, max {s['wrist_speed_max_mps']:.2f} m/s"
        )
    ev_lines = describe_events(feats.events)
    if ev_lines:
        lines.append(
            f"contacts: {stats['num_events']} events, contact ratio {stats['contact_ratio']:.2f}, "
            f"mean duration {stats['mean_contact_duration']:.2f} s, {stats['contact_frequency']:.2f} events/s"
        )
        lines.extend(ev_lines)
    else:
        lines.append("no contacts")
    return "\n".join(lines)
