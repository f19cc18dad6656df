"""The manifest of a dataset run: one JSON line per finished task attempt, appended as tasks finish.

``DIR/manifest.jsonl`` is the run's only record of what is done. One process (the driver) appends to
it; each row is written with a single ``write`` of one complete line on an ``O_APPEND`` descriptor and
flushed to disk (``fsync``) before the next task is counted as done, and only after the task's output
files are in place (written atomically by the worker). So a crash or Ctrl-C leaves at most a
truncated *last* line (ignored and cut off on the next run), never a row for a file that does not
exist. Later rows of a task supersede earlier ones (a failed attempt redone on resume).

Row fields
==========

=================== ===============================================================================
field               meaning
=================== ===============================================================================
task                the task's identity (16 hex): hash of input content, sequence key, robot ids,
                    config hash and code version (:func:`handx_robot.app.dataset.tasks.task_id`)
clip                the clip's name: source file stem, ``__KEY`` for a sequence of a collection,
                    and a short hash of the source path (unique within a run)
source, key, format the input file (absolute path), the sequence key in a collection (``null`` for a
                    single-motion file) and the reader's format name
input_sha256        SHA-256 of the input file's bytes
robots              ``{"left": ID, "right": ID}`` or ``{"humanoid": ID}``
config, code        config hash (12 hex) and code version of the run
status              ``done`` (output written), ``rejected`` (the clip cannot be used, for a data
                    reason: NaN, wrong shape, unreadable file; ``error`` says why; a finished task)
                    or ``failed`` (the attempt did not finish: worker died after its retries, an
                    unexpected exception; redone by the next run)
reason, error       ``data`` / ``worker-died`` / ``unexpected`` and the one-line message (``null``
                    when done)
output, report      the robot motion ``.npz`` and the full fidelity report ``.json``, relative to DIR
output_digest       SHA-256 over the robot motion's arrays (names, dtypes, shapes, bytes): equal
                    digests mean identical outputs (the ``.npz`` bytes also hold zip timestamps)
frames, sides       frames of the clip and the hands retargeted (``["left", "right"]``)
metrics             flat numbers of the fidelity report (below), the names ``--keep`` expressions use
physics_error       ``--validate physics`` only: where the physics replay diverged (``null`` if it did not)
node, pid, wall_s   where the task ran and its wall time, s
run, time           the run's id (12 hex) and the UTC time the row was written (ISO 8601)
=================== ===============================================================================

Metrics (``metrics``; ``null`` where not measured)
===================================================

======================== ==========================================================================
name                     meaning
======================== ==========================================================================
shape_error_mm           fingertip-shape error (``fingertip_shape_error_m``), mean over frames,
                         worst hand, mm
shape_error_max_mm       its maximum over frames and hands, mm
inter_hand_f1            inter-hand contact F1, human vs robot (two-hand clips; else null)
tip_contact_f1           within-hand fingertip contact F1, worst hand
contact_f1               the smaller of the two above (the clip's worst contact fidelity)
penetration_mm           deepest hand-hand interpenetration of the robot hands, mm (0 for one hand:
                         there is no other hand)
self_penetration_mm      deepest finger-finger penetration within a hand, mm (where measured)
non_converged            frames the IK did not converge (sum over hands)
non_converged_fraction   that count over frames x hands
joint_limit_violations   (frame, joint) entries outside the model's limits (must be 0)
frames_per_second        frames of the clip over the retargeting wall time
wrist_within_1cm         humanoids: fraction of frames whose hands reach their targets within 1 cm
                         and 0.1 rad (worst side)
unreachable_frames       humanoids: frames with an unreachable hand target (sum over sides)
clearance_mm             humanoids: smallest arm-arm / arm-body distance, mm
--validate physics:
tracking_error_mm        physics replay: fingertip error against the kinematic replay, mean, worst
                         hand, mm
physics_contact_f1       physics replay: hand-hand contact F1, human vs robot
physics_penetration_mm   physics replay: deepest hand-hand penetration, mm
diverged                 physics replay blew up (true / false); the row's ``physics_error`` says where
======================== ==========================================================================
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from handx_robot.errors import MotionFormatError

__all__ = ["MANIFEST_NAME", "STATUSES", "VOLATILE_FIELDS", "Manifest", "read_rows", "latest_rows", "comparable"]

MANIFEST_NAME = "manifest.jsonl"
#: done: output written; rejected: the clip cannot be used (data); failed: the attempt did not finish.
STATUSES = ("done", "rejected", "failed")
#: Fields that differ between two runs of the same tasks (where, when, how fast); :func:`comparable` drops them.
VOLATILE_FIELDS = ("node", "pid", "wall_s", "run", "time", "source")
#: Metrics that measure speed, not the result.
VOLATILE_METRICS = ("frames_per_second",)


def read_rows(path: str | os.PathLike) -> Iterator[dict]:
    """The rows of a manifest file, in order. A truncated last line (a crash mid-write) is skipped; a
    malformed line elsewhere raises :class:`MotionFormatError` naming the line."""
    path = Path(path)
    if not path.is_file():
        return
    with path.open("rb") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                if not line.endswith(b"\n"):  # the last line, cut short by a crash mid-write
                    return
                raise MotionFormatError(f"{path}: line {i} is not a JSON row ({exc}); fix or delete that line") from exc
            yield row


def latest_rows(path: str | os.PathLike) -> dict[str, dict]:
    """task id -> its latest row."""
    return {row["task"]: row for row in read_rows(path)}


def comparable(row: dict) -> dict:
    """``row`` without the fields that differ between runs of the same task (where, when, how fast)."""
    out = {k: v for k, v in row.items() if k not in VOLATILE_FIELDS}
    if isinstance(out.get("metrics"), dict):
        out["metrics"] = {k: v for k, v in out["metrics"].items() if k not in VOLATILE_METRICS}
    return out


class Manifest:
    """Append-only writer of ``DIR/manifest.jsonl`` (one process writes it; see the module docstring)."""

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / MANIFEST_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cut_truncated_tail()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _cut_truncated_tail(self) -> None:
        """Drop a last line without its newline (left by a crash mid-write) so the next row starts clean."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as f:
                f.truncate(keep)

    def append(self, row: dict) -> None:
        """Write ``row`` (``status`` one of :data:`STATUSES`) as one line and flush it to disk."""
        if row.get("status") not in STATUSES:
            raise ValueError(f"manifest row status must be one of {STATUSES}, got {row.get('status')!r}")
        row = {**row, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        line = (json.dumps(row, allow_nan=False, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
