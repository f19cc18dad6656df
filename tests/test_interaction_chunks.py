"""A long motion's bimanual solve in chunks (handx_robot.retarget.interaction.chunks): the chunks cover the motion,
the result does not depend on the number of processes, and a spliced result keeps the solve's guarantees. The
chunk length is shrunk here (to 40 frames) so that short generated clips have several chunks."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from handx_robot.retarget.bimanual import retarget_motion
from handx_robot.retarget.interaction import InteractionOptions
from handx_robot.retarget.interaction import chunks as chunks_mod
from hypothesis import given
from hypothesis import strategies as st

from handx_robot.errors import ConfigError
from handx_robot.generate import generate

PEN_MAX_M = 0.002  # #17's target


@given(st.integers(0, 20000), st.integers(2, 3000))
def test_chunk_starts_cover_the_motion(frames, chunk):
    """The chunks run from 0 to the last frame without a gap; each is at least half a chunk long and under one and
    a half (a motion shorter than that is one chunk)."""
    starts = chunks_mod.chunk_starts(frames, chunk)
    assert starts[0] == 0 and starts[-1] == frames
    sizes = np.diff(starts)
    assert np.all(sizes > 0) or frames == 0
    if len(sizes) > 1:
        assert np.all(sizes >= chunk // 2) and np.all(sizes < chunk + chunk // 2 + 1), (frames, chunk, starts)
    else:
        assert frames < chunk + chunk // 2 or chunk > frames


@pytest.fixture(scope="module")
def long_motion():
    """Three generated two-hand clips one after the other (a clap, fingertips, palms; 300 frames or so)."""
    clips = [generate(p, seed=0) for p in ("clap three times", "touch the fingertips of both hands together",
                                           "press the palms together")]  # fmt: skip
    joints = np.concatenate([c.joints for c in clips])
    return dataclasses.replace(clips[0], joints=joints, mano={}, meta={}, text="three clips")


@pytest.fixture()
def small_chunks(monkeypatch):
    monkeypatch.setattr(chunks_mod, "CHUNK_FRAMES", 40)
    monkeypatch.setattr(chunks_mod, "WARMUP_FRAMES", 20)
    monkeypatch.setattr(chunks_mod, "LEAD_FRAMES", 10)


def _run(motion, workers):
    rm, rep = retarget_motion(motion, "shadow_builtin_left", "shadow_builtin_right",
                              interaction=InteractionOptions(workers=workers))  # fmt: skip
    return rm, rep["interaction"]


def test_any_number_of_workers_gives_the_same_result(long_motion, small_chunks):
    """The chunks are the motion's, not the workers': one process and three give the same joints and wrists to the
    bit, and the report names the chunks and their splices."""
    one, rep1 = _run(long_motion, 1)
    three, rep3 = _run(long_motion, 3)
    n = long_motion.num_frames
    assert rep1["chunks"] == rep3["chunks"]
    assert rep1["chunks"]["count"] == len(chunks_mod.chunk_starts(n, 40)) - 1 >= 5
    for s in one.hands:
        assert np.array_equal(one.hands[s].qpos, three.hands[s].qpos)
        assert np.array_equal(one.hands[s].wrist_pose, three.hands[s].wrist_pose)


def test_a_spliced_result_keeps_the_guarantees(long_motion, small_chunks):
    """In chunks of 40 frames (a splice every 40 frames, each chunk warmed up over only 20), the result still touches
    where the human's hands do, passes no hand through the other, and the splices are small steps: on average at
    most the joints' 90th-percentile frame-to-frame step elsewhere in the result (splicing at the first frame the
    chunks share, the cold start of the warm-up, fails this)."""
    rm, rep = _run(long_motion, 2)
    assert rep["contact_f1"]["inter_hand"]["recall"] >= 0.9
    assert rep["hand_hand_penetration_m"]["max"] <= PEN_MAX_M
    assert rep["self_penetration_m"]["max"] <= PEN_MAX_M
    splices = np.array(rep["chunks"]["splices"])
    assert len(splices) >= 5
    for traj in rm.hands.values():
        step = np.abs(np.diff(traj.qpos, axis=0)).max(axis=1)  # step[t]: frame t -> t + 1
        at_splice = step[splices - 1]
        elsewhere = np.delete(step, splices - 1)
        assert at_splice.mean() <= np.percentile(elsewhere, 90), (at_splice, np.percentile(elsewhere, 90))


def test_cli_workers(tmp_path, capsys, monkeypatch):
    """A motion under one and a half chunks is solved as one sequence (no splice); in chunks (shrunk to 40 frames
    here), the summary says so; ``--workers 0`` is refused with the option named."""
    from handx_robot.app import cli
    from handx_robot.motion import save_motion

    src = tmp_path / "clap.npz"
    save_motion(generate("clap twice", seed=0), src)
    metrics = tmp_path / "m.json"
    assert cli.main(["retarget", str(src), "--robot", "shadow_builtin", "--workers", "2", "-o", str(tmp_path / "o.npz"),
                     "--metrics", str(metrics), "--no-progress"]) == 0  # fmt: skip
    sec = json.loads(metrics.read_text())["interaction"]
    assert sec["chunks"] == {"count": 1, "splices": []}
    assert sec["options"]["workers"] == 2
    assert "chunks" not in capsys.readouterr().out
    monkeypatch.setattr(chunks_mod, "CHUNK_FRAMES", 40)
    assert cli.main(["retarget", str(src), "--robot", "shadow_builtin", "--workers", "2", "-o", str(tmp_path / "o.npz"),
                     "--metrics", str(metrics), "--no-progress"]) == 0  # fmt: skip
    sec = json.loads(metrics.read_text())["interaction"]
    assert sec["chunks"]["count"] >= 2
    assert f"in {sec['chunks']['count']} chunks on 2 process(es), spliced at {sec['chunks']['splices'][0]}" in capsys.readouterr().out
    assert cli.main(["retarget", str(src), "--robot", "shadow_builtin", "--workers", "0", "-o", str(tmp_path / "x.npz")]) == 1
    assert "workers must be >= 1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="workers"):
        InteractionOptions(workers=0)


def _children(pid: int) -> list[int]:
    """PIDs of the live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_ctrl_c_during_the_chunks_stops_every_process_quietly(tmp_path, long_motion):
    """Ctrl-C (SIGINT to the terminal's whole process group) while the chunks run on two processes: the command exits
    130 with its one line, no worker prints anything (each printed its name and the start of a traceback, cut off by
    the pool's terminate) or outlives it, and no output file is written."""
    from handx_robot.motion import save_motion

    src = tmp_path / "long.npz"  # twelve times the three clips: over one and a half chunks of 1800 frames
    save_motion(dataclasses.replace(long_motion, joints=np.concatenate([long_motion.joints] * 12)), src)
    out = tmp_path / "o.npz"
    cmd = [sys.executable, "-m", "handx_robot.app.cli", "retarget", str(src), "-o", str(out), "--robot", "shadow",
           "--workers", "2", "--no-progress"]  # fmt: skip
    # SIGINT as a terminal's shell leaves it: where this test itself runs with SIGINT ignored (a background job of a
    # non-interactive shell), the command would inherit that and finish (CI or `make test &`)
    main = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and main.poll() is None and len(workers) < 2:
        workers = _children(main.pid)
        time.sleep(0.02)
    assert len(workers) == 2, f"the chunks' two workers never ran (exit {main.poll()})"
    os.killpg(main.pid, signal.SIGINT)
    _, err = main.communicate(timeout=60)
    assert main.returncode == 130, err
    assert err.rstrip().endswith("handx-robot retarget: interrupted"), err
    assert "Traceback" not in err and "PoolWorker" not in err, err
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers), "a chunk worker outlived the command"
    assert not out.exists()
