"""``handx-robot dataset retarget`` on a small corpus: results, faults, resume, a two-node Ray cluster.

Every test runs the real command (a subprocess, real Ray, the built-in Shadow hands) on generated
motions, so nothing here needs ../shared. The unit tests above the line run no Ray.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from handx_robot.app.dataset.manifest import Manifest, comparable, latest_rows, read_rows
from handx_robot.app.dataset.tasks import clip_name, find_files, list_tasks, scan, task_id
from handx_robot.errors import ConfigError

ray = pytest.importorskip("ray", reason="the dataset command needs Ray (pip install 'handx_robot[dataset]')")

CLI = [sys.executable, "-m", "handx_robot.app.cli"]
PROMPTS = ("wave with the right hand", "make a fist with the left hand", "clap twice",
           "turn both palms up", "make a peace sign with the right hand", "open the left hand")  # fmt: skip
COLLECTION = {"a": "point with the right index finger", "b": "make a fist with both hands"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """6 motion files and a HandX collection of 2 sequences: 8 clips, two hands each."""
    from handx_robot.generate import generate
    from handx_robot.motion import save_motion

    src = tmp_path_factory.mktemp("corpus")
    for i, prompt in enumerate(PROMPTS):
        save_motion(generate(prompt, seed=0), src / f"clip{i}.npz")
    np.savez(src / "gen_can_pos_all.npz", **{k: generate(p, seed=0).joints for k, p in COLLECTION.items()})
    return src


def _run(*args, env=None, check=True, timeout=300) -> subprocess.CompletedProcess:
    p = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}")
    return p


def _manifest(out: Path) -> dict[str, dict]:
    return {t: comparable(r) for t, r in latest_rows(out / "manifest.jsonl").items()}


# -- no Ray -----------------------------------------------------------------------------------
def test_task_identity_is_content_key_robots_config_and_code(tmp_path, corpus):
    a = tmp_path / "a.npz"
    shutil.copy(corpus / "clip0.npz", a)
    b = tmp_path / "renamed.npz"
    shutil.copy(a, b)
    (ta,), (tb,) = (list(list_tasks(scan([p]), {"robot": "shadow"}, "cfg", "v1")) for p in (a, b))
    assert ta.id == tb.id and ta.clip != tb.clip  # same content: same task, wherever it lies
    base = task_id(ta.input_sha256, None, {"robot": "shadow"}, "cfg", "v1")
    assert base == ta.id
    for changed in (task_id(ta.input_sha256, "k", {"robot": "shadow"}, "cfg", "v1"),
                    task_id(ta.input_sha256, None, {"robot": "allegro"}, "cfg", "v1"),
                    task_id(ta.input_sha256, None, {"robot": "shadow"}, "cfg2", "v1"),
                    task_id(ta.input_sha256, None, {"robot": "shadow"}, "cfg", "v2")):  # fmt: skip
        assert changed != base


def test_sources_expand_to_every_sequence_and_skip_the_output_folder(tmp_path, corpus):
    out = corpus / "out"
    out.mkdir(exist_ok=True)
    np.savez(out / "old_can_pos_x.npz", x=np.zeros((3, 2, 21, 3)))  # inside --out: never an input
    files = find_files([str(corpus)], exclude=out)
    assert sorted(f.name for f in files) == sorted([f"clip{i}.npz" for i in range(6)] + ["gen_can_pos_all.npz"])
    tasks = list(list_tasks(scan(files), {"robot": "shadow"}, "c", "v"))
    assert len(tasks) == 8 and {t.key for t in tasks if t.key} == {"a", "b"}
    assert len({t.clip for t in tasks}) == 8
    assert find_files([str(corpus / "clip[01].npz")]) == [corpus / "clip0.npz", corpus / "clip1.npz"]
    with pytest.raises(ConfigError, match="no such file or folder"):
        find_files([str(tmp_path / "missing")])
    shutil.rmtree(out)
    assert clip_name(Path("/d/x y.npz"), "s/1").startswith("x_y__s_1-")


def test_manifest_drops_a_truncated_last_line_and_later_rows_win(tmp_path):
    with Manifest(tmp_path) as m:
        m.append({"task": "t1", "status": "failed"})
        m.append({"task": "t1", "status": "done", "output": "robot/x.npz"})
    with open(tmp_path / "manifest.jsonl", "ab") as f:
        f.write(b'{"task": "t2", "sta')  # a crash mid-write
    assert [r["task"] for r in read_rows(tmp_path / "manifest.jsonl")] == ["t1", "t1"]
    with Manifest(tmp_path) as m:  # reopening cuts the partial line; the next row starts clean
        m.append({"task": "t3", "status": "rejected"})
    assert {t: r["status"] for t, r in latest_rows(tmp_path / "manifest.jsonl").items()} == {"t1": "done", "t3": "rejected"}
    with pytest.raises(ValueError, match="status"):
        Manifest(tmp_path).append({"task": "t4", "status": "ok"})


def _settings(validate: str) -> dict:
    """What the command line gives the worker for ``--robot shadow`` (defaults elsewhere)."""
    from handx_robot.retarget.cli import ROBOT_OPTIONS

    retarget = dict.fromkeys(ROBOT_OPTIONS) | {"solver": "handx", "low_pass": False, "interaction": "auto"}
    return {"read": {}, "retarget": retarget, "robots": {"robot": "shadow"}, "validate": validate, "config": "c",
            "code": "v"}  # fmt: skip


def _task(path: Path) -> dict:
    (t,) = list_tasks(scan([path]), {"robot": "shadow"}, "c", "v")
    return {"task": t.id, "clip": t.clip, "source": t.source, "key": t.key, "format": t.format,
            "input_sha256": t.input_sha256, "error": t.error}  # fmt: skip


def test_worker_rows_for_a_good_clip_a_nan_clip_and_an_unreadable_file(tmp_path, corpus):
    from handx_robot.app.dataset.worker import output_digest, run_task

    bad = tmp_path / "nan.npy"
    joints = np.load(corpus / "clip0.npz")["joints"].copy()
    joints[4, 1, 7] = np.nan
    np.save(bad, joints)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    settings = _settings("none")
    rows = {f.name: run_task(_task(f), settings, str(tmp_path / "out")) for f in (corpus / "clip1.npz", bad, junk)}
    good = rows["clip1.npz"]
    assert good["status"] == "done" and good["frames"] > 10 and good["sides"] == ["left", "right"]
    assert (tmp_path / "out" / good["output"]).is_file() and (tmp_path / "out" / good["report"]).is_file()
    assert good["output_digest"] == output_digest(tmp_path / "out" / good["output"])
    m = good["metrics"]
    assert m["joint_limit_violations"] == 0 and 0 <= m["contact_f1"] <= 1 and m["shape_error_mm"] > 0
    assert rows["nan.npy"]["status"] == "rejected" and "NaN" in rows["nan.npy"]["error"] and "frame 4" in rows["nan.npy"]["error"]
    assert rows["junk.npz"]["status"] == "rejected" and "not a readable .npz" in rows["junk.npz"]["error"]
    assert not list((tmp_path / "out" / "robot").glob("nan*")), "a rejected clip writes no output"


def test_a_one_hand_clip_has_no_inter_hand_f1_and_its_fingers_measured():
    """A one-hand clip goes through the solve too (its fingers kept apart): its row has the finger-finger
    penetration, no inter-hand F1 (null: there is no other hand) and no hand-hand penetration."""
    import dataclasses

    from handx_robot.retarget.bimanual import retarget_motion

    from handx_robot.app.dataset.worker import metrics_of
    from handx_robot.generate import generate

    m = generate("make a fist with the right hand", seed=0)
    j = m.joints.copy()
    j[:, 0] = 0.0
    m = dataclasses.replace(m, joints=j, present=np.array([False, True]))
    _, report = retarget_motion(m, None, "shadow_builtin_right")
    row = metrics_of(report, m.num_frames, 1.0)
    assert row["inter_hand_f1"] is None and row["penetration_mm"] == 0.0
    assert row["self_penetration_mm"] is not None and row["self_penetration_mm"] <= 2.0
    assert row["contact_f1"] == row["tip_contact_f1"]


def test_physics_validation_adds_the_replay_metrics(tmp_path, corpus):
    from handx_robot.app.dataset.worker import run_task

    row = run_task(_task(corpus / "clip2.npz"), _settings("physics"), str(tmp_path))  # "clap twice"
    m = row["metrics"]
    assert row["status"] == "done" and m["diverged"] is False and row["physics_error"] is None
    assert 0 < m["tracking_error_mm"] < 20 and 0 <= m["physics_contact_f1"] <= 1 and m["physics_penetration_mm"] >= 0


@pytest.mark.slow
def test_a_humanoid_row_has_the_arm_metrics(tmp_path, corpus):
    from handx_robot.app.dataset.worker import run_task

    settings = _settings("none")
    settings["retarget"]["robot"], settings["robots"] = "gr1_inspire", {"humanoid": "gr1_inspire"}
    row = run_task(_task(corpus / "clip2.npz"), settings, str(tmp_path))  # "clap twice"
    m = row["metrics"]
    assert row["status"] == "done", row.get("error")
    assert 0 <= m["wrist_within_1cm"] <= 1 and m["unreachable_frames"] >= 0 and m["clearance_mm"] is not None
    assert m["joint_limit_violations"] == 0 and row["sides"] == ["left", "right"]


# -- the command, on Ray ----------------------------------------------------------------------
def test_run_records_faults_goes_on_and_a_rerun_skips_everything(tmp_path, corpus):
    src = tmp_path / "src"
    shutil.copytree(corpus, src)
    joints = np.load(corpus / "clip0.npz")["joints"].copy()
    joints[10:12, 0] = np.inf
    np.save(src / "broken.npy", joints)
    np.save(src / "wrong_shape.npy", np.zeros((20, 2, 20, 3)))
    out = tmp_path / "out"
    p = _run("dataset", "retarget", src, "--out", out, "--workers", "2", "--no-progress")
    assert "8 done, 2 rejected, 0 failed" in p.stdout
    rows = latest_rows(out / "manifest.jsonl")
    rejected = {Path(r["source"]).name: r["error"] for r in rows.values() if r["status"] == "rejected"}
    assert "missing keypoints" in rejected["broken.npy"] and "--fill-gaps" in rejected["broken.npy"]
    assert "(T, 2, 21, 3)" in rejected["wrong_shape.npy"]
    for r in rows.values():
        if r["status"] == "done":
            assert (out / r["output"]).is_file() and r["frames"] > 0
    again = _run("dataset", "retarget", src, "--out", out, "--workers", "2", "--no-progress")
    assert "0 done, 0 rejected, 0 failed, 10 already done" in again.stdout
    assert len(list(read_rows(out / "manifest.jsonl"))) == 10  # nothing was redone
    other = _run("dataset", "retarget", src, "--out", out, "--interaction", "off", "--no-progress", check=False)
    assert other.returncode == 1 and "other options" in other.stderr
    rep = _run("dataset", "report", out, "--keep", "contact_f1 >= 0.5 and joint_limit_violations == 0")
    kept = (out / "keep.txt").read_text().split()
    assert 1 <= len(kept) <= 8 and all(Path(k).is_file() for k in kept) and "8 done" in rep.stdout
    assert (out / "report.html").read_text().count("data:image/png;base64") == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_node_cluster_gives_the_same_manifest_as_a_local_run(tmp_path, corpus):
    ray_bin = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    port = _free_port()
    common = ["--num-cpus=1", "--disable-usage-stats"]
    subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
                   env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
    try:
        subprocess.run([ray_bin, "start", f"--address=127.0.0.1:{port}", *common], env=env, check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        _run("dataset", "retarget", corpus, "--out", tmp_path / "cluster", "--address", f"127.0.0.1:{port}",
             "--no-progress", env=env)  # fmt: skip
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)
    _run("dataset", "retarget", corpus, "--out", tmp_path / "local", "--workers", "2", "--no-progress")
    cluster, local = _manifest(tmp_path / "cluster"), _manifest(tmp_path / "local")
    assert len(cluster) == 8 and cluster == local
    nodes = {r["node"] for r in read_rows(tmp_path / "cluster" / "manifest.jsonl")}
    assert len(nodes) == 2, f"both nodes ran tasks: {nodes}"


def _task_workers() -> list[int]:
    """PIDs of Ray worker processes running a dataset task (process title ``ray::run_task``)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(b"ray::run_task"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_killed_worker_then_ctrl_c_then_rerun_completes_each_task_once_with_identical_outputs(tmp_path, corpus):
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    out = tmp_path / "out"
    cmd = [*CLI, "dataset", "retarget", str(corpus), "--out", str(out), "--workers", "2", "--no-progress"]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    after = rng.randint(1, 3)  # rows written before the kill: a random point of the run
    deadline = time.monotonic() + 180
    killed = None
    while time.monotonic() < deadline and driver.poll() is None:
        n = len(list(read_rows(out / "manifest.jsonl")))
        busy = _task_workers()
        if n >= after and busy:
            killed = rng.choice(busy)
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.05)
    assert killed is not None, f"no worker to kill (rows: {len(list(read_rows(out / 'manifest.jsonl')))})"
    time.sleep(rng.uniform(0.05, 0.5))
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    first = list(read_rows(out / "manifest.jsonl"))
    if driver.returncode == 0:
        assert len(first) == 8  # it had finished before the Ctrl-C arrived: still a valid test of the kill
    else:
        assert driver.returncode == 130 and "rerun the same command to resume" in err, err
    done_first = {r["task"] for r in first if r["status"] == "done"}
    _run("dataset", "retarget", corpus, "--out", out, "--workers", "2", "--no-progress")
    rows = list(read_rows(out / "manifest.jsonl"))
    done = [r["task"] for r in rows if r["status"] == "done"]
    assert len(done) == len(set(done)) == 8, "each task done exactly once over both runs"
    assert not done_first & {r["task"] for r in rows[len(first):]}, "the rerun redid a finished task"
    _run("dataset", "retarget", corpus, "--out", tmp_path / "clean", "--workers", "2", "--no-progress")
    assert _manifest(out) == _manifest(tmp_path / "clean")
    assert not [f for f in (out / "robot").iterdir() if f.name.startswith(".")], "no partial file is left"
    json.loads((out / "run.json").read_text())


@pytest.mark.slow
def test_a_worker_killed_with_no_retries_left_gives_a_failed_row_that_the_rerun_redoes(tmp_path, corpus):
    out = tmp_path / "out"
    cmd = [*CLI, "dataset", "retarget", str(corpus), "--out", str(out), "--workers", "1", "--retries", "0",
           "--no-progress"]  # fmt: skip
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline, killed = time.monotonic() + 180, None
    while time.monotonic() < deadline and driver.poll() is None and killed is None:
        busy = _task_workers()
        if busy and len(list(read_rows(out / "manifest.jsonl"))) >= 1:
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    out_text, err = driver.communicate(timeout=180)
    assert killed is not None
    rows = latest_rows(out / "manifest.jsonl")
    failed = [r for r in rows.values() if r["status"] == "failed"]
    assert driver.returncode == 1 and "failed" in err and len(failed) == 1, (out_text, err)
    assert failed[0]["reason"] == "worker-died" and sum(r["status"] == "done" for r in rows.values()) == 7
    again = _run("dataset", "retarget", corpus, "--out", out, "--workers", "1", "--no-progress")
    assert "1 done, 0 rejected, 0 failed, 7 already done" in again.stdout
    assert latest_rows(out / "manifest.jsonl")[failed[0]["task"]]["status"] == "done"


def test_at_most_two_tasks_per_worker_are_in_flight(tmp_path, corpus, monkeypatch):
    """Bounded memory: the driver never holds more than 2 x workers unfinished tasks, whatever the corpus."""
    from handx_robot.app.dataset.runner import run_dataset

    in_flight = []
    real_wait = ray.wait

    def wait(refs, *args, **kwargs):
        in_flight.append(len(refs))
        return real_wait(refs, *args, **kwargs)

    monkeypatch.setattr(ray, "wait", wait)
    settings = {k: v for k, v in _settings("none").items() if k not in ("config", "code")}
    rows = []
    summary = run_dataset([str(corpus)], tmp_path / "out", settings, workers=1, progress=False, on_row=rows.append)
    assert summary.done == 8 and len(rows) == 8 and summary.workers == 1
    assert max(in_flight) == 2 and len(in_flight) == 8  # one wait per finished task, never more than 2 pending
