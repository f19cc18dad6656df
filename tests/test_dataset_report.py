"""``handx-robot dataset report``: summary of a hand-built manifest, the ``--keep`` filter, the files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from handx_robot.app.dataset.keep import compile_keep
from handx_robot.app.dataset.manifest import MANIFEST_NAME, Manifest
from handx_robot.app.dataset.report import error_kind, format_summary, summarize, write_report
from handx_robot.errors import ConfigError

BIMANUAL = ("contact_f1", "penetration_mm", "shape_error_mm")


def _row(task: str, clip: str, status: str = "done", metrics: dict | None = None, frames: int | None = 100,
         reason: str | None = None, error: str | None = None) -> dict:
    done = status == "done"
    return {
        "task": task, "clip": clip, "source": f"/data/{clip}.npz", "key": None, "format": "handx",
        "input_sha256": "0" * 64, "robots": {"left": "shadow_left", "right": "shadow_right"},
        "config": "abc123def456", "code": "0.4.0", "status": status, "reason": reason, "error": error,
        "output": f"motions/{clip}.npz" if done else None, "report": f"reports/{clip}.json" if done else None,
        "output_digest": "1" * 64 if done else None, "frames": frames, "sides": ["left", "right"],
        "metrics": metrics or {}, "node": "node-1", "pid": 4242, "wall_s": 1.5, "run": "0123456789ab",
    }


def _m(f1: float | None, pen: float, shape: float) -> dict:
    return {"contact_f1": f1, "penetration_mm": pen, "shape_error_mm": shape, "joint_limit_violations": 0}


def _write_manifest(directory: Path) -> None:
    """5 done (one superseding a failed attempt, one without contact_f1), 3 rejected, 1 failed, then a
    truncated last line."""
    with Manifest(directory) as m:
        m.append(_row("t1", "a", metrics=_m(0.9, 1.0, 1.0), frames=100))
        m.append(_row("t2", "b", metrics=_m(0.7, 0.5, 2.0), frames=200))
        m.append(_row("t5", "e", "failed", frames=None, reason="worker-died", error="worker died after 2 retries"))
        m.append(_row("t3", "c", metrics=_m(None, 3.0, 3.0), frames=300))
        m.append(_row("t4", "d", metrics=_m(0.95, 2.0, 4.0), frames=400))
        m.append(_row("t5", "e", metrics=_m(0.85, 2.5, 5.0), frames=500))
        for task, clip, error in [
            ("t6", "f", "MotionValueError: joints has NaN at frame 12 in /data/f.npz"),
            ("t7", "g", "MotionValueError: joints has NaN at frame 40 in /data/g.npz"),
            ("t8", "h", "MotionFormatError: /data/h.pkl: unknown format 'xyz'"),
        ]:
            m.append(_row(task, clip, "rejected", frames=None, reason="data", error=error))
        m.append(_row("t9", "i", "failed", frames=None, reason="unexpected", error="RuntimeError: boom"))
    with (directory / MANIFEST_NAME).open("ab") as f:
        f.write(b'{"task":"t10","clip":"j","stat')  # a crash mid-write


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("run")
    _write_manifest(d)
    return d


@pytest.fixture(scope="module")
def written(run_dir: Path):
    return write_report(run_dir, keep="contact_f1 >= 0.8 and penetration_mm <= 2")


def test_counts_supersede_and_skip_the_truncated_line(run_dir):
    s = summarize(run_dir)
    assert s.tasks == 9
    assert s.status_counts == {"done": 5, "rejected": 3, "failed": 1}
    assert s.frames_done == 1500
    assert s.reasons == {"rejected/data": 3, "failed/unexpected": 1}  # the worker-died attempt was redone
    assert s.setup["robots"] == {'{"left": "shadow_left", "right": "shadow_right"}': 9}
    assert s.setup["config"] == {"abc123def456": 9}


def test_failure_groups_by_kind_with_examples(run_dir):
    groups = summarize(run_dir).failure_groups
    assert [(g.status, g.reason, g.count) for g in groups] == [
        ("rejected", "data", 2), ("failed", "unexpected", 1), ("rejected", "data", 1)]
    nan = groups[0]
    assert nan.kind == "MotionValueError: joints has NaN at frame # in …"
    assert nan.examples == ("f", "g")
    assert nan.example_error.endswith("/data/f.npz")
    assert groups[2].kind.startswith("MotionFormatError: ")


def test_error_kind_truncates_long_messages():
    kind = error_kind("SolverError: " + "x" * 200)
    assert kind.startswith("SolverError: ") and kind.endswith("…")
    assert len(kind) == len("SolverError: ") + 61
    assert error_kind(None) == "(no message)"


def test_distributions_by_hand(run_dir):
    stats = {m.name: m for m in summarize(run_dir).metrics}
    shape = stats["shape_error_mm"]  # 1, 2, 3, 4, 5 over the done clips
    assert (shape.count, shape.missing) == (5, 0)
    assert_allclose([shape.min, shape.p5, shape.median, shape.mean, shape.p95, shape.max],
                    [1.0, 1.2, 3.0, 3.0, 4.8, 5.0], atol=1e-12)
    f1 = stats["contact_f1"]  # 0.9, 0.7, 0.95, 0.85; clip c not measured
    assert (f1.count, f1.missing) == (4, 1)
    assert_allclose([f1.min, f1.median, f1.mean, f1.max], [0.7, 0.875, 0.85, 0.95], atol=1e-12)
    assert sum(shape.counts) == 5 and len(shape.edges) == len(shape.counts) + 1


def test_keep_counts_and_file(run_dir, written):
    k = written.keep
    assert (k.kept, k.rejected, k.not_measured) == (2, 2, 1)  # a, d kept; b, e fail; c has no contact_f1
    assert k.names == ("contact_f1", "penetration_mm")
    lines = (run_dir / "keep.txt").read_text().splitlines()
    assert lines == [os.path.abspath(run_dir / "motions" / f"{c}.npz") for c in ("a", "d")]
    assert all(os.path.isabs(p) for p in lines)


def test_png_and_html_are_written(run_dir, written):
    png = (run_dir / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    page = (run_dir / "report.html").read_text()
    assert "data:image/png;base64,iVBORw0KGgo" in page  # the PNG itself, embedded
    assert page.count("<table>") >= 5
    for text in ("shape_error_mm", "MotionValueError: joints has NaN", "abc123def456", "shadow_left",
                 "contact_f1 &gt;= 0.8 and penetration_mm &lt;= 2"):
        assert text in page
    assert written.html == run_dir / "report.html" and written.png == run_dir / "report.png"


def test_format_summary(written):
    text = format_summary(written)
    assert "9 tasks: 5 done, 3 rejected, 1 failed; 1500 frames done" in text
    assert "2 kept, 2 failed the expression, 1 not measured" in text
    assert "shape_error_mm" in text and "report.html" in text


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(ConfigError, match=r"no manifest\.jsonl; run `handx-robot dataset retarget \.\.\. --out"):
        summarize(tmp_path)
    (tmp_path / MANIFEST_NAME).write_bytes(b"")
    with pytest.raises(ConfigError, match="has no rows"):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_bad_keep_writes_nothing(tmp_path):
    with Manifest(tmp_path) as m:
        m.append(_row("t1", "a", metrics=_m(0.9, 1.0, 1.0)))
    with pytest.raises(ConfigError, match="diverged is not in this manifest: it is measured with --validate physics"):
        write_report(tmp_path, keep="not diverged")
    assert not any((tmp_path / n).exists() for n in ("report.html", "report.png", "keep.txt"))


@pytest.mark.parametrize(("name", "why"), [
    ("diverged", "measured with --validate physics"),
    ("tracking_error_mm", "measured with --validate physics"),
    ("clearance_mm", "measured for humanoids only"),
    ("wrist_within_1cm", "measured for humanoids only"),
])
def test_documented_metric_absent_from_manifest(name, why):
    with pytest.raises(ConfigError, match=f"{name} is not in this manifest: it is {why}"):
        compile_keep(f"{name} > 0", BIMANUAL)


@pytest.mark.parametrize(("expr", "what"), [
    ("__import__('os')", "function calls"),
    ("contact_f1.real > 0", "attribute access"),
    ("x[0]", "indexing"),
    ("(lambda: 1)()", "function calls"),
    ("[c for c in ()]", "comprehensions"),
    ("contact_f1 ** 2 > 0", "BinOp"),
    ("contact_f1 if 1 else 2", "IfExp"),
    ("status > 1", "ordering a string against a number"),
    ("unknown_metric > 1", "unknown name 'unknown_metric'"),
    ("contact_f1 >=", "not an expression"),
])
def test_unsafe_or_bad_expressions_are_refused(expr, what):
    with pytest.raises(ConfigError, match="--keep") as info:
        compile_keep(expr, BIMANUAL)
    assert what in str(info.value)
    assert "contact_f1, frames, penetration_mm" in str(info.value) or what == "not an expression"


def test_operators_none_and_status():
    row = {"status": "done", "frames": 120, "metrics": {"contact_f1": 0.85, "penetration_mm": None, "diverged": False}}
    names = ("contact_f1", "penetration_mm", "diverged")
    assert compile_keep("0.8 <= contact_f1 < 0.9 and not diverged", names)(row) is True
    assert compile_keep("-contact_f1 * 2 + 2 > 0.25 or frames / 0 > 1", names)(row) is True
    assert compile_keep("frames >= 200 or status != 'done'", names)(row) is False
    assert compile_keep("contact_f1 > 0.5 or penetration_mm < 1", names)(row) is None  # a used metric is null
    assert compile_keep("frames / (contact_f1 - contact_f1) > 1", names)(row) is None  # division by zero
    assert compile_keep("contact_f1 > 0.5", names)({**row, "status": "rejected"}) is False
    assert compile_keep("contact_f1 > 0.5", names)({**row, "metrics": {}}) is None  # missing


def test_flags_and_keep_on_physics_metrics(tmp_path):
    with Manifest(tmp_path) as m:
        for i, diverged in enumerate([False, True, None, False]):
            m.append(_row(f"t{i}", f"c{i}", metrics={**_m(0.9, 1.0, 1.0), "diverged": diverged}))
    s = write_report(tmp_path, out_html=tmp_path / "out/r.html", out_png=tmp_path / "out/r.png",
                     keep="not diverged", keep_out=tmp_path / "out/k.txt")
    (flag,) = s.flags
    assert (flag.name, flag.true, flag.false, flag.missing) == ("diverged", 1, 2, 1)
    assert "diverged" not in {m.name for m in s.metrics}
    assert (s.keep.kept, s.keep.rejected, s.keep.not_measured) == (2, 1, 1)
    assert [Path(p).stem for p in (tmp_path / "out/k.txt").read_text().split()] == ["c0", "c3"]
    assert (tmp_path / "out/r.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "out/r.html").is_file()


finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(f1=st.none() | finite, pen=st.none() | finite, t=finite, p=finite)
def test_keep_agrees_with_python(f1, pen, t, p):
    keep = compile_keep(f"contact_f1 >= {t!r} and penetration_mm <= {p!r}", BIMANUAL)
    row = {"status": "done", "frames": 10, "metrics": {"contact_f1": f1, "penetration_mm": pen}}
    expected = None if f1 is None or pen is None else (f1 >= t and pen <= p)
    assert keep(row) is expected


def test_a_clip_redone_under_new_code_counts_once_with_its_latest_row(tmp_path):
    """A code change gives a clip a new task id; the report keeps only the clip's latest row."""
    with Manifest(tmp_path) as m:
        m.append(_row("old", "a", metrics=_m(0.5, 9.0, 1.0)))
        m.append(_row("x", "b", metrics=_m(0.9, 0.0, 1.0)))
        m.append({**_row("new", "a", metrics=_m(0.9, 1.0, 1.0)), "code": "0.5.0"})
    s = write_report(tmp_path, keep="penetration_mm <= 2")
    assert s.tasks == 2 and s.status_counts == {"done": 2, "rejected": 0, "failed": 0}
    assert sorted(Path(p).name for p in (tmp_path / "keep.txt").read_text().split()) == ["a.npz", "b.npz"]


def test_a_diverged_clip_with_its_physics_error_is_reported_not_refused(tmp_path):
    with Manifest(tmp_path) as m:
        m.append({**_row("t1", "a", metrics={**_m(0.9, 1.0, 1.0), "diverged": True, "tracking_error_mm": None}),
                  "physics_error": "physics diverged between motion frames 3 and 4"})
        m.append(_row("t2", "b", metrics={**_m(0.9, 1.0, 1.0), "diverged": False, "tracking_error_mm": 3.0}))
    s = write_report(tmp_path, keep="not diverged")
    assert s.keep.kept == 1 and (tmp_path / "keep.txt").read_text().strip().endswith("b.npz")
