"""Interaction fidelity of two posed robot hands, measured by MuJoCo on their collision geometry.

Per frame (:func:`measure_frames`): the distance of every monitored part pair (fingertips, palms; below
the world's margin, else ``inf``), the deepest hand-hand penetration and the deepest finger-finger
penetration within a hand (metres, >= 0). :func:`interaction_report` turns these into the report's
``interaction`` section:

=================================== ==================================================================
key                                 meaning
=================================== ==================================================================
contact_f1.inter_hand / intra_hand  human vs robot contact events over all pairs across / within hands:
                                    f1, precision, recall, human_events, robot_events
contact_f1.by_kind.<kind>           the same per kind (inter_tip_tip, inter_tip_palm, palm_palm, pinch,
                                    tip_tip, tip_palm)
hand_hand_penetration_m             max, p95 (over frames), frames (with > 0.1 mm), frames_over_2mm
self_penetration_m                  the same between fingers of one hand
wrist_deviation_m / _rad            distance of each robot wrist (the link matched to the human wrist, the
                                    palm; :func:`.palm.wrist_poses`) from its place in the per-hand
                                    solution, the scaled human wrist: mean, max (over frames and hands)
bimanual_frames                     count, fraction of the frames solved bimanually; non_converged,
                                    mean_iterations of those; by_reason: their count per gate reason
                                    (human touch, hands near, fingers penetrate); faded: frames that
                                    kept a fading correction without a solve; second_starts: frames
                                    whose result came from a second start at the per-hand solution;
                                    pulled_back: frames before such a frame, solved again from its result,
                                    or before a frame whose joints stepped far, ramped into its step (the
                                    step spread over them);
                                    untangled: fading frames that took one SQP step because their faded
                                    fingers would pass through each other (counted among the solved,
                                    reason fingers penetrate; not in non_converged)
frames_per_second                   of the bimanual stage (gate, solve and measurements)
sides                               the hands solved: both, or the one hand of a one-hand motion
=================================== ==================================================================

Human events: keypoint distances with HandX thresholds (:mod:`handx_robot.features`); robot events:
part-pair geometric distance below ``robot_contact_m``, with the same hysteresis and event filtering.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from handx_robot.features import ContactConfig, events_from_distances
from handx_robot.metrics import event_f1
from handx_robot.rotations import matrix_to_rotvec

__all__ = ["measure_frames", "robot_events", "interaction_report", "INTER_KINDS", "INTRA_KINDS", "PENETRATION_EPS_M"]

INTER_KINDS = ("inter_tip_tip", "inter_tip_palm", "palm_palm")
INTRA_KINDS = ("pinch", "tip_tip", "tip_palm")
PENETRATION_EPS_M = 1e-4


def measure_frames(refiner, T_world_base: Mapping[str, np.ndarray], q: Mapping[str, np.ndarray],
                   progress=None) -> dict:
    """Per frame: ``pair_distance`` (T, P), ``hand_hand`` (T,), ``self`` (T,) penetration depths (metres)."""
    w = refiner.world
    T = next(iter(q.values())).shape[0]
    P = len(refiner.pairs)
    pd = np.full((T, P), np.inf)
    hh = np.zeros(T)
    sp = np.zeros(T)
    out = {"pair_distance": pd, "hand_hand": hh, "self": sp}
    for t in range(T):
        w.set_state({s: T_world_base[s][t] for s in w.sides}, {s: q[s][t] for s in w.sides})
        refiner.record(w.contacts(refiner.intra_margin_m, refiner.finger_margin_m), t, out)
        if progress:
            progress(1)
    return out


def _f1(rob, hum) -> dict:
    f = event_f1(rob, hum)
    return {"f1": f["f1"], "precision": f["precision"], "recall": f["recall"],
            "human_events": len(hum), "robot_events": len(rob)}  # fmt: skip


def _pen(x: np.ndarray) -> dict:
    return {
        "max": float(x.max()) if x.size else 0.0,
        "p95": float(np.percentile(x, 95)) if x.size else 0.0,
        "frames": int((x > PENETRATION_EPS_M).sum()),
        "frames_over_2mm": int((x > 0.002).sum()),
    }


def robot_events(refiner, pair_distance: np.ndarray, fps: float, config: ContactConfig | None = None) -> list:
    """The robot's contact events from the monitored pairs' distances ``pair_distance`` (T, P) (metres; inf beyond
    the margin): below ``robot_contact_m``, with the human's hysteresis and event filtering."""
    o = refiner.options
    cap = 10.0 * o.robot_contact_m  # unknown (beyond the margin) = far
    items = [(p.kind, p.a, p.b, np.minimum(pair_distance[:, i], cap), o.robot_contact_m) for i, p in enumerate(refiner.pairs)]
    return events_from_distances(items, fps, config) if items else []


def interaction_report(refiner, measured: dict, human_events: list, fps: float, anchors: Mapping | None = None,
                       poses: Mapping | None = None, config: ContactConfig | None = None) -> dict:
    """The ``interaction`` report section (see the module docstring)."""
    events = robot_events(refiner, measured["pair_distance"], fps, config)
    out: dict = {"contact_f1": {"by_kind": {}}}
    for group, kinds in (("inter_hand", INTER_KINDS), ("intra_hand", INTRA_KINDS)):
        r = [e for e in events if e.kind in kinds]
        h = [e for e in human_events if e.kind in kinds]
        out["contact_f1"][group] = _f1(r, h)
        for k in kinds:
            if any(p.kind == k for p in refiner.pairs):
                out["contact_f1"]["by_kind"][k] = _f1([e for e in r if e.kind == k], [e for e in h if e.kind == k])
    out["hand_hand_penetration_m"] = _pen(measured["hand_hand"])
    out["self_penetration_m"] = _pen(measured["self"])
    if anchors is not None and poses is not None:
        dp, dr = [], []
        for s in anchors:
            A, B = np.asarray(anchors[s]), np.asarray(poses[s])
            dp.append(np.linalg.norm(B[:, :3, 3] - A[:, :3, 3], axis=-1))
            dr.append(np.linalg.norm(matrix_to_rotvec(np.einsum("tji,tjk->tik", A[:, :3, :3], B[:, :3, :3])), axis=-1))
        dp_a, dr_a = np.concatenate(dp), np.concatenate(dr)
        out["wrist_deviation_m"] = {"mean": float(dp_a.mean()), "max": float(dp_a.max())}
        out["wrist_deviation_rad"] = {"mean": float(dr_a.mean()), "max": float(dr_a.max())}
    return out
