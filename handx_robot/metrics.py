"""Metrics shared by every stage: contact statistics, contact-event F1, MPJPE, jerk.

Units: metres, seconds. Events are :class:`handx_robot.features.ContactEvent` (or anything with
``a``, ``b``, ``start``, ``end`` attributes), so robot fingertip events computed with
:func:`handx_robot.features.events_from_distances` compare directly with human ones.

HandX contact metrics (:func:`contact_stats`):

* ``contact_ratio``: fraction of the motion's duration covered by at least one contact event;
* ``mean_contact_duration``: mean event duration, seconds (0 when there is none);
* ``contact_frequency``: events per second of motion.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

import numpy as np

from handx_robot.errors import MotionValueError

__all__ = ["temporal_iou", "contact_stats", "event_f1", "mpjpe", "jerk"]


def temporal_iou(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """Intersection over union of the intervals ``[a_start, a_end)`` and ``[b_start, b_end)``."""
    inter = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    union = max(a_end, b_end) - min(a_start, b_start)
    return inter / union if union > 0 else (1.0 if (a_start == b_start and a_end == b_end) else 0.0)


def _union_length(intervals: Sequence[tuple[float, float]]) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def contact_stats(events: Sequence, duration: float) -> dict[str, float]:
    """HandX contact metrics of ``events`` over a motion of ``duration`` seconds (> 0).

    Returns ``contact_ratio`` (0..1), ``mean_contact_duration`` (s), ``contact_frequency`` (events/s),
    ``num_events``.
    """
    if not np.isfinite(duration) or duration <= 0:
        raise MotionValueError(f"contact_stats: duration must be > 0 s, got {duration}")
    spans = [(float(ev.start), float(ev.end)) for ev in events]
    n = len(spans)
    return {
        "contact_ratio": min(1.0, _union_length(spans) / duration),
        "mean_contact_duration": float(np.mean([e - s for s, e in spans])) if n else 0.0,
        "contact_frequency": n / duration,
        "num_events": n,
    }


def event_f1(
    pred_events: Sequence,
    ref_events: Sequence,
    iou_threshold: float = 0.5,
    rename: Callable[[str], str] | None = None,
) -> dict:
    """Precision / recall / F1 of predicted contact events against reference events.

    Two events match when they have the same participants (unordered pair ``{a, b}``, after
    ``rename`` is applied to predicted names) and their temporal IoU is >= ``iou_threshold``.
    Matching is one-to-one, greedy by decreasing IoU. With no events on either side, precision,
    recall and F1 are 1 (nothing to find, nothing wrongly found).

    Returns ``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``fn``, ``mean_iou`` (over matches),
    ``matches`` (list of ``(pred_index, ref_index, iou)``).
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise MotionValueError(f"event_f1: iou_threshold must be in [0, 1], got {iou_threshold}")
    ren = rename or (lambda n: n)
    # per participant pair, the reference events by start, and the largest end up to each of them: a predicted
    # event is scored only against those that can overlap it (every other IoU is 0), so a long motion's
    # thousands of events cost n log n, not n x m
    by_key: dict[frozenset, tuple[list[float], list[float], list[int]]] = {}
    for j in sorted(range(len(ref_events)), key=lambda j: ref_events[j].start):
        starts, reach, idx = by_key.setdefault(frozenset((ref_events[j].a, ref_events[j].b)), ([], [], []))
        starts.append(ref_events[j].start)
        reach.append(max(reach[-1], ref_events[j].end) if reach else ref_events[j].end)
        idx.append(j)
    candidates = []
    for i, pe in enumerate(pred_events):
        starts, reach, idx = by_key.get(frozenset((ren(pe.a), ren(pe.b))), ((), (), ()))
        for k in range(bisect.bisect_right(starts, pe.end) - 1, -1, -1):  # reference events starting by its end
            if reach[k] < pe.start:  # these and every earlier one end before it starts
                break
            re_ = ref_events[idx[k]]
            iou = temporal_iou(pe.start, pe.end, re_.start, re_.end)
            if iou >= iou_threshold and iou > 0:
                candidates.append((iou, i, idx[k]))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_p: set[int] = set()
    used_r: set[int] = set()
    matches = []
    for iou, i, j in candidates:
        if i in used_p or j in used_r:
            continue
        used_p.add(i)
        used_r.add(j)
        matches.append((i, j, iou))
    tp = len(matches)
    fp = len(pred_events) - tp
    fn = len(ref_events) - tp
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "mean_iou": float(np.mean([m[2] for m in matches])) if matches else 0.0,
        "matches": sorted(matches),
    }


def mpjpe(pred: np.ndarray, ref: np.ndarray, root: int | None = None) -> float:
    """Mean per-joint position error, metres, between ``pred`` and ``ref`` of equal shape ``(..., J, 3)``.

    ``root``: subtract that joint from each (e.g. 0 = wrist) before comparing (root-relative MPJPE).
    Non-finite entries in either input raise :class:`MotionValueError`.
    """
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape or pred.ndim < 2 or pred.shape[-1] != 3:
        raise MotionValueError(f"mpjpe: shapes must match and end in (J, 3), got {pred.shape} and {ref.shape}")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(ref))):
        raise MotionValueError("mpjpe: inputs contain NaN/inf")
    if root is not None:
        pred = pred - pred[..., root : root + 1, :]
        ref = ref - ref[..., root : root + 1, :]
    return float(np.linalg.norm(pred - ref, axis=-1).mean())


def jerk(points: np.ndarray, fps: float) -> float:
    """Mean jerk magnitude, m/s³, of trajectories ``points (T, ..., 3)`` sampled at ``fps`` (T >= 4).

    Third finite difference times ``fps**3``; lower is smoother.
    """
    points = np.asarray(points, dtype=np.float64)
    if not np.isfinite(fps) or fps <= 0:
        raise MotionValueError(f"jerk: fps must be > 0, got {fps}")
    if points.ndim < 2 or points.shape[-1] != 3 or points.shape[0] < 4:
        raise MotionValueError(f"jerk: points must have shape (T>=4, ..., 3), got {points.shape}")
    j = np.diff(points, n=3, axis=0) * fps**3
    return float(np.linalg.norm(j, axis=-1).mean())
