"""The driver of ``handx-robot dataset retarget``: tasks to Ray, rows to the manifest, resume, faults.

* **Ray, local or a cluster.** Without an address the driver starts a local Ray instance with
  ``workers`` CPUs; with one (``ray start --head`` on one machine, ``ray start --address=HEAD:PORT`` on
  the others) it joins that cluster and uses its CPUs. Each task is a Ray task of one CPU
  (:func:`handx_robot.app.dataset.worker.run_task`). Input and output folders must be reachable
  under the same path from every node (a shared file system), as they are on one machine.
* **Bounded memory.** At most ``2 x workers`` tasks are in flight; a finished task's row goes to the
  manifest and is dropped. The driver holds the list of input files and the ids of finished tasks,
  never results.
* **Resume.** Tasks with a ``done`` row whose output exists, or a ``rejected`` row, are skipped;
  ``failed`` ones and those never finished are run again. Identity: :mod:`.tasks`.
* **Faults.** A worker that dies (killed, out of memory) has its task retried by Ray on another worker,
  ``retries`` times; then the task gets a ``failed`` row and the run goes on. A clip with bad data gets a
  ``rejected`` row with its error message.
* **Ctrl-C** stops the driver; ``ray.shutdown()`` ends the tasks in flight (locally it stops the Ray instance;
  on a cluster Ray force-exits a finished job's workers, ray-project/ray#44214; tested locally only). Every
  row already written stays valid, a task cut short
  leaves at most a temporary file that the next run removes, and the same command resumes. The tasks
  are not ``ray.cancel(force=True)``-ed one by one: in Ray 2.60 that races with a task finishing at the
  same moment and aborts the driver ("Tried to complete task that was not pending",
  ``task_manager.cc``), seen in 2 of 6 runs of the kill/Ctrl-C test. One run at a time writes a folder
  (a lock file).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from handx_robot.app.dataset import worker
from handx_robot.app.dataset.manifest import MANIFEST_NAME, Manifest, latest_rows
from handx_robot.app.dataset.tasks import Task, code_version, config_hash, find_files, list_tasks, scan
from handx_robot.errors import ConfigError, MissingDependencyError

__all__ = ["RunSummary", "run_dataset", "RUN_FILE"]

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
#: Ray errors that mean the worker process (or its node) died while running the task.
_DIED = ("WorkerCrashedError", "OutOfMemoryError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError",
         "OwnerDiedError", "TaskCancelledError")  # fmt: skip


@dataclasses.dataclass
class RunSummary:
    """What a run did. ``skipped``: tasks finished by an earlier run; ``duplicates``: sequences with the
    same identity as another in this run (identical content)."""

    out: Path
    skipped: int = 0
    duplicates: int = 0
    done: int = 0
    rejected: int = 0
    failed: int = 0
    frames: int = 0
    wall_s: float = 0.0
    workers: int = 0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def line(self) -> str:
        return (f"{self.done} done, {self.rejected} rejected, {self.failed} failed, {self.skipped} already done, "
                f"{self.duplicates} duplicates; {self.frames} frames in {self.wall_s:.1f} s "
                f"({self.frames_per_second:.0f} frames/s on {self.workers} workers); manifest {self.out / MANIFEST_NAME}")


def _lock(out: Path):
    """Hold ``out/.lock`` for the run (another run writing the same folder is refused)."""
    f = open(out / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the run
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        f.close()
        raise ConfigError(f"{out}: another dataset run is writing this folder; wait for it or use another --out") from exc
    return f


def _check_config(out: Path, config: dict, chash: str) -> None:
    """``out/run.json`` records the configuration; a different one into the same folder is refused."""
    path = out / RUN_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("config_hash") != chash:
            changed = sorted(k for k in set(old.get("config", {})) | set(config)
                             if old.get("config", {}).get(k) != config.get(k))  # fmt: skip
            raise ConfigError(f"{out} holds a run with other options ({', '.join(changed)} differ: {path}); "
                              "use another --out, or the same options to resume")  # fmt: skip
        return
    from handx_robot.motion import atomic_write

    text = json.dumps({"config_hash": chash, "config": config}, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _remove_partial_files(out: Path) -> int:
    """Temporary files of writes cut short by a crash (``.NAME.*``, see ``atomic_write``)."""
    n = 0
    for sub in (worker.ROBOT_DIR, worker.REPORT_DIR):
        for f in (out / sub).glob(".*"):
            f.unlink(missing_ok=True)
            n += 1
    return n


def _finished(out: Path) -> set[str]:
    """Ids of tasks a rerun skips: ``rejected``, or ``done`` with the output file in place."""
    rows = latest_rows(out / MANIFEST_NAME)
    return {t for t, r in rows.items()
            if r["status"] == "rejected" or (r["status"] == "done" and (out / r["output"]).is_file())}  # fmt: skip


def _task_dict(t: Task) -> dict:
    return {"task": t.id, "clip": t.clip, "source": t.source, "key": t.key, "format": t.format,
            "input_sha256": t.input_sha256, "error": t.error}  # fmt: skip


def _start_ray(workers: int | None, address: str | None) -> tuple[int, int]:
    """Start or join Ray; returns (workers, tasks to keep in flight). Locally Ray runs at most ``workers``
    tasks at once and a second task per worker waits queued; on a cluster with more CPUs than
    ``--workers`` asks for, the number in flight is the cap."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("handx-robot dataset needs Ray: pip install 'handx_robot[dataset]'") from exc
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        ctx = ray.init(address=address, **quiet)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = min(workers, cpus) if workers else cpus
        window = n if n < cpus else 2 * n
    else:  # the dashboard starts where Ray's dashboard packages are installed (pip install "ray[default]")
        n = workers or os.cpu_count() or 1
        ctx = ray.init(num_cpus=n, include_dashboard=None, **quiet)
        window = 2 * n
    if ctx.dashboard_url:
        log.info("Ray dashboard: http://%s", ctx.dashboard_url)
    return n, window


def _failed_row(task: dict, settings: dict, exc: BaseException) -> dict:
    """The row of a task whose worker died after its retries (or another Ray error)."""
    died = any(c.__name__ in _DIED for c in type(exc).__mro__)
    return {**worker.row_head(task, settings), "status": "failed", "reason": "worker-died" if died else "unexpected",
            "error": f"{type(exc).__name__}: {str(exc)[:300]}"}  # fmt: skip


def _prepare(sources: list[str], out: Path, settings: dict) -> tuple[Iterator[Task], int]:
    """Check the folder and options, list the inputs; returns the tasks (lazily) and their count."""
    files = find_files(sources, exclude=out)
    inputs = scan(files, settings["read"].get("format"))
    return list_tasks(inputs, settings["robots"], settings["config"], settings["code"]), sum(len(f.keys) for f in inputs)


def run_dataset(
    sources: list[str],
    out: str | os.PathLike,
    settings: dict,
    *,
    workers: int | None = None,
    address: str | None = None,
    retries: int = 3,
    progress: bool = True,
    on_row: Callable[[dict], None] | None = None,
) -> RunSummary:
    """Retarget every sequence of ``sources`` into ``out`` (see the module docstring).

    settings: ``read`` (options of :func:`~handx_robot.readers.read_motion` but ``key``), ``retarget``
    (:func:`~handx_robot.retarget.cli.robot_settings`), ``robots`` (ids, for the task identity),
    ``validate`` (``"none"`` or ``"physics"``). ``config`` and ``code`` are added here.
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = {k: settings[k] for k in ("read", "retarget", "robots", "validate")}
    settings = {**config, "config": config_hash(config), "code": code_version()}
    lock = _lock(out)
    try:
        tasks, total = _prepare(sources, out, settings)  # sources that name nothing fail before DIR is claimed
        _check_config(out, config, settings["config"])
        _remove_partial_files(out)
        summary = RunSummary(out=out)

        def start() -> int:  # Ray starts when the first task needs running (not on a finished dataset)
            summary.workers, window = _start_ray(workers, address)
            return window

        try:
            _drive(tasks, total, out, settings, summary, retries, progress, on_row, start)
        finally:
            if summary.workers:
                import ray

                ray.shutdown()
    finally:
        lock.close()
    return summary


def _drive(tasks, total, out, settings, summary, retries, progress, on_row, start) -> None:
    import ray
    from tqdm import tqdm

    remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(worker.run_task)
    finished, seen = _finished(out), set()
    run_id = secrets.token_hex(6)
    window = 0
    pending: dict = {}  # ObjectRef -> task dict
    t0 = time.perf_counter()
    bar = tqdm(total=total, unit="clip", desc="dataset", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    with Manifest(out) as manifest:
        try:
            while True:
                for t in tasks:
                    if t.id in finished or t.id in seen:
                        summary.skipped += t.id in finished
                        summary.duplicates += t.id in seen and t.id not in finished
                        bar.update(1)
                        continue
                    seen.add(t.id)
                    window = window or start()
                    td = _task_dict(t)
                    pending[remote.remote(td, settings, str(out))] = td
                    if len(pending) >= window:
                        break
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    td = pending.pop(ref)
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        row = _failed_row(td, settings, exc)
                    row["run"] = run_id
                    manifest.append(row)
                    _count(summary, row, bar, t0)
                    if on_row is not None:
                        on_row(row)
        finally:  # on Ctrl-C, ray.shutdown() in run_dataset ends the tasks in flight (no ray.cancel: module docstring)
            summary.wall_s = time.perf_counter() - t0
            bar.close()


def _count(summary: RunSummary, row: dict, bar, t0: float) -> None:
    setattr(summary, row["status"], getattr(summary, row["status"]) + 1)
    if row["status"] == "done":
        summary.frames += int(row["frames"])
    elif row["status"] == "failed":
        log.warning("%s failed (%s): %s", row["clip"], row["reason"], row["error"])
    bar.update(1)
    bar.set_postfix(fps=f"{summary.frames / max(1e-9, time.perf_counter() - t0):.0f}", rejected=summary.rejected,
                    failed=summary.failed, refresh=False)  # fmt: skip
