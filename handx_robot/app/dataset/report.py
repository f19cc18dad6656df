"""``handx-robot dataset report DIR``: what a dataset run produced, from ``DIR/manifest.jsonl`` alone.

Counts by status, failures grouped by reason and error kind, the distribution of every metric over
the ``done`` clips (units as in :mod:`handx_robot.app.dataset.manifest`), a PNG of histograms and a
self-contained HTML page; with ``--keep EXPR`` (:mod:`handx_robot.app.dataset.keep`) the list of the
clips' output ``.npz`` files that pass it. Only the latest row of each clip counts (a clip redone after a
code or data change supersedes its earlier rows); per clip only its name, status, failure message, output
path, frame count, metric values and run setup are held.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from handx_robot.app.dataset.keep import compile_keep
from handx_robot.app.dataset.manifest import MANIFEST_NAME, STATUSES, read_rows
from handx_robot.errors import ConfigError, MissingDependencyError, MotionFormatError

__all__ = ["REPORT_HTML", "REPORT_PNG", "KEEP_TXT", "MetricStats", "FlagStats", "FailureGroup", "KeepResult",
           "DatasetSummary", "error_kind", "summarize", "write_report", "format_summary"]

log = logging.getLogger(__name__)

#: default output file names in DIR
REPORT_HTML, REPORT_PNG, KEEP_TXT = "report.html", "report.png", "keep.txt"
#: example clips shown per failure group; characters of a message kept in its kind; histogram bins
EXAMPLES, KIND_CHARS, BINS = 3, 60, 20
SETUP_FIELDS = ("robots", "config", "code", "run")
_STATS = ("min", "p5", "median", "mean", "p95", "max")
_CLASS = re.compile(r"^([A-Z]\w*(?:Error|Exception|Exit|Interrupt))\b:?\s*")
_PATH = re.compile(r"\S*/\S*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_STATUS_COLOURS = {"done": "#2ca02c", "rejected": "#ff7f0e", "failed": "#d62728"}


@dataclass(frozen=True)
class MetricStats:
    """Distribution of one numeric metric over the done clips (its unit); None where ``count == 0``.
    ``edges (BINS + 1,)`` and ``counts (BINS,)``: its histogram."""

    name: str
    count: int
    missing: int
    min: float | None
    p5: float | None
    median: float | None
    mean: float | None
    p95: float | None
    max: float | None
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()


@dataclass(frozen=True)
class FlagStats:
    """A true/false metric (``diverged``) over the done clips."""

    name: str
    true: int
    false: int
    missing: int


@dataclass(frozen=True)
class FailureGroup:
    """Rejected or failed clips with the same status, reason and :func:`error_kind`."""

    status: str
    reason: str
    kind: str
    count: int
    examples: tuple[str, ...]
    example_error: str


@dataclass(frozen=True)
class KeepResult:
    """``--keep``: over the done clips, how many it kept, rejected and could not decide (null metric)."""

    expr: str
    names: tuple[str, ...]
    kept: int
    rejected: int
    not_measured: int
    path: Path


@dataclass(frozen=True)
class DatasetSummary:
    """The report of ``directory``. ``setup``: field (robots/config/code/run) -> value -> tasks."""

    directory: Path
    tasks: int
    status_counts: dict[str, int]
    frames_done: int
    frames_all: int
    reasons: dict[str, int]
    failure_groups: tuple[FailureGroup, ...]
    metrics: tuple[MetricStats, ...]
    flags: tuple[FlagStats, ...]
    metric_names: tuple[str, ...]
    setup: dict[str, dict[str, int]]
    keep: KeepResult | None = None
    html: Path | None = None
    png: Path | None = None


@dataclass(frozen=True, slots=True)
class _Clip:
    """What the report holds of one task's latest row (``setup``: interned strings, shared)."""

    clip: str
    status: str
    reason: str | None
    error: str | None
    output: str | None
    frames: int | None
    metrics: dict[str, float | bool | None]
    setup: tuple[str, ...]

    def as_row(self) -> dict[str, Any]:
        return {"status": self.status, "frames": self.frames, "metrics": self.metrics}


def error_kind(error: str | None) -> str:
    """A short kind of a failure message, for grouping: its leading exception class name plus the
    first :data:`KIND_CHARS` characters of the rest, paths replaced by ``…`` and numbers by ``#``."""
    text = " ".join((error or "").split())
    match = _CLASS.match(text)
    name = match.group(1) + ": " if match else ""
    rest = _NUMBER.sub("#", _PATH.sub("…", text[match.end() :] if match else text))
    if len(rest) > KIND_CHARS:
        rest = rest[:KIND_CHARS].rstrip() + "…"
    return (name + rest) or "(no message)"


def _clip_of(row: Any, line: int, path: Path) -> tuple[str, _Clip]:
    """(task id, clip) of a manifest row; MotionFormatError naming the line if it is not one."""
    if not isinstance(row, dict) or not isinstance(row.get("task"), str) or "status" not in row:
        raise MotionFormatError(f"{path}: row {line} has no task/status; fix or delete that line")
    metrics = row.get("metrics") or {}
    bad = [k for k, v in metrics.items() if v is not None and not isinstance(v, (bool, int, float))]
    if bad:
        raise MotionFormatError(f"{path}: row {line} metric {bad[0]!r} is {metrics[bad[0]]!r}, not a number")
    if row["status"] == "done" and not row.get("output"):
        raise MotionFormatError(f"{path}: row {line} (task {row['task']}) is done but has no output")
    setup = tuple(sys.intern(v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                  for v in map(row.get, SETUP_FIELDS))
    clip = _Clip(
        clip=str(row.get("clip") or row["task"]),
        status=row["status"],
        reason=row.get("reason"),
        error=row.get("error") if row["status"] != "done" else None,
        output=row.get("output"),
        frames=row.get("frames"),
        metrics={k: v if v is None or isinstance(v, bool) else float(v) for k, v in metrics.items()},
        setup=setup,
    )
    return row["task"], clip


def _load(directory: Path) -> dict[str, _Clip]:
    """clip name -> its latest row. ConfigError if there is no manifest or it has no rows."""
    path = directory / MANIFEST_NAME
    hint = f"run `handx-robot dataset retarget ... --out {directory}` first"
    if not path.is_file():
        raise ConfigError(f"{directory}: no {MANIFEST_NAME}; {hint}")
    clips: dict[str, _Clip] = {}
    for i, row in enumerate(read_rows(path), start=1):
        _, clip = _clip_of(row, i, path)
        clips.pop(clip.clip, None)  # re-inserted: the dict keeps the order of the latest rows
        clips[clip.clip] = clip
    if not clips:
        raise ConfigError(f"{directory}: {MANIFEST_NAME} has no rows; {hint}")
    return clips


def _failure_groups(clips: Iterable[_Clip]) -> tuple[FailureGroup, ...]:
    """Not-done clips grouped by (status, reason, error kind), largest group first."""
    groups: dict[tuple[str, str, str], list[_Clip]] = {}
    for c in clips:
        if c.status != "done":
            groups.setdefault((c.status, str(c.reason), error_kind(c.error)), []).append(c)
    out = []
    for (status, reason, kind), group in groups.items():
        group.sort(key=lambda c: c.clip)
        examples = tuple(c.clip for c in group[:EXAMPLES])
        out.append(FailureGroup(status, reason, kind, len(group), examples, group[0].error or ""))
    return tuple(sorted(out, key=lambda g: (-g.count, g.status, g.reason, g.kind)))


def _metric_stats(name: str, values: list[float], missing: int) -> MetricStats:
    """Distribution of ``values`` (the non-null ones; ``missing`` null or absent)."""
    if not values:
        return MetricStats(name, 0, missing, None, None, None, None, None, None)
    v = np.asarray(values, dtype=np.float64)
    p5, median, p95 = np.percentile(v, [5, 50, 95])
    counts, edges = np.histogram(v, bins=BINS)
    return MetricStats(
        name, v.size, missing, float(v.min()), float(p5), float(median), float(v.mean()), float(p95),
        float(v.max()), tuple(edges.tolist()), tuple(counts.tolist()),
    )


def _distributions(done: list[_Clip], names: Iterable[str]) -> tuple[tuple[MetricStats, ...], tuple[FlagStats, ...]]:
    """Numeric and true/false metrics over the done clips, by name."""
    metrics, flags = [], []
    for name in names:
        values = [c.metrics.get(name) for c in done]
        present = [v for v in values if v is not None]
        missing = len(values) - len(present)
        if present and all(isinstance(v, bool) for v in present):
            flags.append(FlagStats(name, sum(present), len(present) - sum(present), missing))
        else:
            metrics.append(_metric_stats(name, [float(v) for v in present], missing))
    return tuple(metrics), tuple(flags)


def _summarize(directory: Path, clips: Mapping[str, _Clip]) -> DatasetSummary:
    done = [c for c in clips.values() if c.status == "done"]
    names = sorted({n for c in clips.values() for n in c.metrics})
    metrics, flags = _distributions(done, names)
    status = Counter(c.status for c in clips.values())
    setup = {f: dict(Counter(c.setup[i] for c in clips.values()).most_common()) for i, f in enumerate(SETUP_FIELDS)}
    return DatasetSummary(
        directory=directory,
        tasks=len(clips),
        status_counts={s: status.get(s, 0) for s in (*STATUSES, *sorted(set(status) - set(STATUSES)))},
        frames_done=sum(c.frames or 0 for c in done),
        frames_all=sum(c.frames or 0 for c in clips.values()),
        reasons=dict(Counter(f"{c.status}/{c.reason}" for c in clips.values() if c.status != "done").most_common()),
        failure_groups=_failure_groups(clips.values()),
        metrics=metrics,
        flags=flags,
        metric_names=tuple(names),
        setup=setup,
    )


def summarize(directory: str | os.PathLike) -> DatasetSummary:
    """The summary of ``directory/manifest.jsonl`` (latest row per clip); writes nothing."""
    directory = Path(directory)
    return _summarize(directory, _load(directory))


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _apply_keep(directory: Path, clips: Mapping[str, _Clip], expr: str, names: Iterable[str], out: Path) -> KeepResult:
    """Evaluate ``expr`` on the done clips; write the kept outputs (absolute paths, by clip name) to ``out``."""
    keep = compile_keep(expr, names)
    kept: list[tuple[str, str]] = []
    rejected = not_measured = 0
    for c in clips.values():
        if c.status != "done":
            continue
        verdict = keep(c.as_row())
        if verdict is None:
            not_measured += 1
        elif verdict:
            kept.append((c.clip, os.path.abspath(directory / str(c.output))))
        else:
            rejected += 1
    _write(out, "".join(f"{p}\n" for _, p in sorted(kept)).encode())
    log.debug("--keep %r: %d kept, %d failed the expression, %d not measured -> %s",
             expr, len(kept), rejected, not_measured, out)
    return KeepResult(expr, keep.names, len(kept), rejected, not_measured, out)


def _plot(summary: DatasetSummary) -> bytes:
    """PNG bytes: status counts, true/false metrics and one histogram per numeric metric."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a declared dependency
        raise MissingDependencyError("the dataset report needs matplotlib: pip install matplotlib") from exc
    panels = 1 + len(summary.flags) + len(summary.metrics)
    cols = min(4, panels)
    rows = -(-panels // cols)
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows), dpi=80, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    names = list(summary.status_counts)
    axes[0].bar(names, [summary.status_counts[s] for s in names], color=[_STATUS_COLOURS.get(s, "grey") for s in names])
    axes[0].set_title(f"status ({summary.tasks} tasks)", fontsize=9)
    for ax, flag in zip(axes[1:], summary.flags):
        ax.bar(["false", "true", "null"], [flag.false, flag.true, flag.missing], color=["#2ca02c", "#d62728", "grey"])
        ax.set_title(flag.name, fontsize=9)
    for ax, m in zip(axes[1 + len(summary.flags) :], summary.metrics):
        if m.count:
            ax.stairs(m.counts, m.edges, fill=True)
        ax.set_title(f"{m.name} (n={m.count})", fontsize=9)
    for ax in axes[panels:]:
        ax.set_axis_off()
    buf = io.BytesIO()
    canvas.print_png(buf)
    return buf.getvalue()


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(s: DatasetSummary, png: bytes) -> str:
    """The self-contained report page (the PNG as a data URI)."""
    parts = [
        f"<h1>Dataset report: {html.escape(str(s.directory))}</h1>",
        f"<p>{s.tasks} tasks, {s.frames_done} frames done ({s.frames_all} in all)</p>",
        "<h2>Status</h2>" + _table(("status", "tasks"), s.status_counts.items()),
        "<h2>Failures</h2>" + _table(("status/reason", "tasks"), s.reasons.items()),
        _table(("status", "reason", "kind", "tasks", "examples", "first error"),
               ((g.status, g.reason, g.kind, g.count, ", ".join(g.examples), g.example_error) for g in s.failure_groups)),
        "<h2>Metrics (done clips)</h2>"
        + _table(("metric", "count", "null", *_STATS),
                 ((m.name, m.count, m.missing, *(_num(getattr(m, c)) for c in _STATS)) for m in s.metrics)),
        _table(("flag", "true", "false", "null"), ((f.name, f.true, f.false, f.missing) for f in s.flags)),
        f'<img alt="metric histograms" src="data:image/png;base64,{base64.b64encode(png).decode()}">',
        "<h2>Run setup</h2>" + _table(("field", "value", "tasks"),
                                      ((f, v, n) for f, vals in s.setup.items() for v, n in vals.items())),
    ]
    if s.keep is not None:
        k = s.keep
        parts.append("<h2>Keep</h2>" + _table(("expression", "kept", "failed the expression", "not measured", "list"),
                                              [(k.expr, k.kept, k.rejected, k.not_measured, k.path)]))
    style = "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px}"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Dataset report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


def write_report(directory: str | os.PathLike, out_html: str | os.PathLike | None = None,
                 out_png: str | os.PathLike | None = None, keep: str | None = None,
                 keep_out: str | os.PathLike | None = None) -> DatasetSummary:
    """Write the PNG (default ``DIR/report.png``), the HTML page (``DIR/report.html``) and, with
    ``keep``, the kept clips' ``.npz`` paths (``DIR/keep.txt``). A bad ``keep`` raises
    :class:`ConfigError` before anything is written."""
    directory = Path(directory)
    clips = _load(directory)
    summary = _summarize(directory, clips)
    png_path = Path(out_png) if out_png is not None else directory / REPORT_PNG
    html_path = Path(out_html) if out_html is not None else directory / REPORT_HTML
    kept = None
    if keep is not None:
        keep_path = Path(keep_out) if keep_out is not None else directory / KEEP_TXT
        kept = _apply_keep(directory, clips, keep, summary.metric_names, keep_path)
    summary = replace(summary, keep=kept, png=png_path, html=html_path)
    png = _plot(summary)
    _write(png_path, png)
    _write(html_path, _html(summary, png).encode())
    return summary


def format_summary(s: DatasetSummary) -> str:
    """The summary as plain text for the terminal."""
    counts = ", ".join(f"{n} {st}" for st, n in s.status_counts.items())
    lines = [f"{s.directory}: {s.tasks} tasks: {counts}; {s.frames_done} frames done ({s.frames_all} in all)"]
    if s.failure_groups:
        lines.append("failures:")
        for g in s.failure_groups:
            lines.append(f"  {g.count:>6}  {g.status}/{g.reason}  {g.kind}  (e.g. {', '.join(g.examples)})")
    if s.metrics or s.flags:
        width = max(6, *(len(m.name) for m in (*s.metrics, *s.flags)))
        lines.append(f"  {'metric':<{width}} {'count':>6} " + " ".join(f"{c:>9}" for c in _STATS))
        for m in s.metrics:
            vals = " ".join(f"{_num(getattr(m, c)):>9}" for c in _STATS)
            lines.append(f"  {m.name:<{width}} {m.count:>6} {vals}")
        for f in s.flags:
            lines.append(f"  {f.name:<{width}} {f.true + f.false:>6}  true {f.true}, false {f.false}")
    if s.keep is not None:
        k = s.keep
        lines.append(f"keep {k.expr!r}: {k.kept} kept, {k.rejected} failed the expression, "
                     f"{k.not_measured} not measured -> {k.path}")
    if s.html is not None:
        lines.append(f"report: {s.html}  {s.png}")
    return "\n".join(lines)
