"""One dataset task, as a Ray worker runs it: read the sequence, retarget it, write its files, measure it.

:func:`run_task` never raises for a problem of the clip: a :class:`~handx_robot.errors.HandXError` of
the data (unreadable file, NaN, wrong shape, wrong hand) gives a ``rejected`` row with the error's
message, and any other exception a ``failed`` row (redone by the next run). The robot motion and the
full report are written atomically (temporary file, then rename) before the row is returned, so the
manifest never names a file that is not there. Models and physics scenes are cached per worker
process, so only a worker's first task pays for loading them.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import numpy as np

from handx_robot.errors import (
    HandXError,
    MissingDependencyError,
    ModelLoadError,
    SolverError,
    UnknownRobotError,
)

__all__ = ["run_task", "row_head", "output_digest", "metrics_of", "ROBOT_DIR", "REPORT_DIR"]

ROBOT_DIR = "robot"
REPORT_DIR = "reports"
#: Errors of the set-up, not of the clip: the task is ``failed`` (redone by the next run), not rejected.
SETUP_ERRORS = (ModelLoadError, UnknownRobotError, MissingDependencyError)
_SCENES: dict = {}  # physics scenes of this worker process, by robot ids


def output_digest(path: str | os.PathLike) -> str:
    """SHA-256 over the arrays of an ``.npz`` (sorted names, dtypes, shapes, bytes): equal for identical
    content whatever the zip's timestamps."""
    h = hashlib.sha256()
    with np.load(path, allow_pickle=False) as data:
        for name in sorted(data.files):
            a = data[name]
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _mm(x) -> float | None:
    return None if x is None else round(float(x) * 1000.0, 4)


def _min(values) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return min(vals) if vals else None


def metrics_of(report: dict, frames: int, wall_s: float) -> dict:
    """The flat metrics of a retargeting report (names and meanings: :mod:`handx_robot.app.dataset.manifest`)."""
    hands = report.get("hands", {})
    shape = [h["fingertip_shape_error_m"] for h in hands.values()]
    inter = report.get("interaction")
    inter_f1 = None
    if inter is not None and len(hands) == 2:  # one hand has an interaction section too, with nothing across
        inter_f1 = inter["contact_f1"]["inter_hand"]["f1"]
    elif "bimanual" in report:
        inter_f1 = report["bimanual"]["inter_hand_contact_f1"]["f1"]
    tip_f1 = _min(h["contact_f1"]["f1"] for h in hands.values())
    if inter is not None:
        pen = inter["hand_hand_penetration_m"]["max"]
    elif "bimanual" in report:
        pen = report["bimanual"].get("interpenetration", {}).get("max_depth_m")
    else:
        pen = 0.0  # one hand: there is no other hand to pass through
    nc = sum(h["non_converged_frames"]["count"] for h in hands.values())
    out = {
        "shape_error_mm": _mm(max(s["mean"] for s in shape)) if shape else None,
        "shape_error_max_mm": _mm(max(s["max"] for s in shape)) if shape else None,
        "inter_hand_f1": inter_f1,
        "tip_contact_f1": tip_f1,
        "contact_f1": _min([inter_f1, tip_f1]),
        "penetration_mm": _mm(pen),
        "self_penetration_mm": _mm(inter["self_penetration_m"]["max"]) if inter is not None else None,
        "non_converged": int(nc),
        "non_converged_fraction": nc / max(1, frames * max(1, len(hands))),
        "joint_limit_violations": int(sum(h["joint_limit_violations"]["count"] for h in hands.values())),
        "frames_per_second": frames / wall_s if wall_s > 0 else None,
    }
    if "humanoid" in report:
        out.update(_humanoid_metrics(report["humanoid"]))
    return out


def _humanoid_metrics(sec: dict) -> dict:
    sides = sec["sides"].values()
    return {
        "wrist_within_1cm": _min(v["within_1cm_0.1rad"] for v in sides),
        "unreachable_frames": int(sum(v["unreachable_frames"] for v in sides)),
        "clearance_mm": _mm(_min(c["min_distance_m"] for c in sec["clearance"].values())),
    }


def _physics(robot_motion, settings: dict) -> dict:
    """Replay with physics (no video); the replay's tracking, contact and divergence metrics."""
    key = (robot_motion.body.robot if robot_motion.body is not None else None,
           tuple((s, h.robot) for s, h in robot_motion.hands.items()))  # fmt: skip
    try:
        if robot_motion.body is not None:
            from handx_robot.sim import humanoid_replay as hr
            from handx_robot.sim.humanoid_scene import build_humanoid_scene

            scene = _SCENES.get(key) or _SCENES.setdefault(key, build_humanoid_scene(robot_motion.body.robot))
            rs = hr.humanoid_replay(robot_motion, scene, config=hr.HumanoidReplayConfig(physics=True)).metrics.summary()
            tips = [v["fingertip_error_m"]["mean"] for v in rs["sides"].values()]
            pen = rs["contacts"]["hand-hand"]["max_depth_m"]
            diverged, error = bool(rs["diverged"]), None
        else:
            from handx_robot.sim.replay import replay, scene_for_motion

            scene = _SCENES.get(key) or _SCENES.setdefault(key, scene_for_motion(robot_motion, assets=settings["assets"]))
            rs = replay(robot_motion, scene, physics=True).metrics.summary()
            tips = [v["fingertip_error_m"]["mean"] for v in rs["hands"].values()]
            pen, diverged, error = rs["hand_hand_penetration_m"]["max"], False, None
    except SolverError as exc:  # the simulation blew up: a result of this clip, not a crash
        return {"tracking_error_mm": None, "physics_contact_f1": None, "physics_penetration_mm": None,
                "diverged": True, "physics_error": str(exc)}  # fmt: skip
    return {"tracking_error_mm": _mm(max(tips)), "physics_contact_f1": rs["contact_f1"].get("f1"),
            "physics_penetration_mm": _mm(pen), "diverged": diverged, "physics_error": error}  # fmt: skip


def _write(out_dir: Path, clip: str, robot_motion, report: dict) -> tuple[str, str]:
    from handx_robot.motion import atomic_write
    from handx_robot.retarget.robot_motion import save_robot_motion

    out = Path(ROBOT_DIR) / f"{clip}.npz"
    rep = Path(REPORT_DIR) / f"{clip}.json"
    text = json.dumps(report, indent=1, default=float)
    atomic_write(out_dir / rep, lambda tmp: Path(tmp).write_text(text))
    save_robot_motion(robot_motion, out_dir / out)
    return str(out), str(rep)


def _retarget(task: dict, settings: dict, out_dir: Path) -> dict:
    from handx_robot.readers import read_motion
    from handx_robot.retarget.cli import retarget_with

    motion = read_motion(task["source"], key=task["key"], **{**settings["read"], "format": task["format"]})
    t0 = time.perf_counter()
    robot_motion, report = retarget_with(motion, settings["retarget"])
    wall = time.perf_counter() - t0
    metrics = metrics_of(report, motion.num_frames, wall)
    if settings["validate"] == "physics":
        metrics.update(_physics(robot_motion, settings["retarget"]))
    physics_error = metrics.pop("physics_error", None)
    metrics = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}
    out, rep = _write(out_dir, task["clip"], robot_motion, report)
    row = {"status": "done", "output": out, "report": rep, "output_digest": output_digest(out_dir / out),
           "frames": motion.num_frames, "sides": list(robot_motion.hands), "metrics": metrics}  # fmt: skip
    if settings["validate"] == "physics":
        row["physics_error"] = physics_error
    return row


def _node() -> str:
    """``HOST`` or, inside Ray, ``HOST/NODE-ID`` (several Ray nodes can share a host)."""
    try:
        import ray

        if ray.is_initialized():
            return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"
    except ImportError:
        pass
    return socket.gethostname()


def row_head(task: dict, settings: dict) -> dict:
    """The fields every manifest row of ``task`` starts with: what it is and how it is run."""
    return {**{k: task[k] for k in ("task", "clip", "source", "key", "format", "input_sha256")},
            "robots": settings["robots"], "config": settings["config"], "code": settings["code"]}


def run_task(task: dict, settings: dict, out_dir: str) -> dict:
    """Run one task (``task``: the fields of :class:`~handx_robot.app.dataset.tasks.Task`; ``settings``:
    ``read`` options of :func:`~handx_robot.readers.read_motion`, ``retarget`` options of
    :func:`~handx_robot.retarget.cli.retarget_with`, ``validate``) and return its manifest row (without
    ``run`` and ``time``, which the driver adds)."""
    t0 = time.perf_counter()
    row = {**row_head(task, settings), "node": _node(), "pid": os.getpid()}
    try:
        if task.get("error"):
            raise _Unreadable(task["error"])
        row.update(_retarget(task, settings, Path(out_dir)))
        row.update(reason=None, error=None)
    except _Unreadable as exc:
        row.update(status="rejected", reason="data", error=str(exc))
    except SETUP_ERRORS as exc:
        row.update(status="failed", reason="setup", error=f"{type(exc).__name__}: {exc}")
    except HandXError as exc:
        row.update(status="rejected", reason="data", error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug or an unforeseen input: recorded, redone by the next run
        row.update(status="failed", reason="unexpected", error=f"{type(exc).__name__}: {exc}")
    row["wall_s"] = round(time.perf_counter() - t0, 4)
    return row


class _Unreadable(Exception):
    """The input file could not be read at all (found while listing the tasks)."""
