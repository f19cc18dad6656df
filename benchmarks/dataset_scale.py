"""Dataset retargeting at scale: ``handx-robot dataset retarget`` on 1 and 2 Ray workers vs the single-clip
CLI and an in-process loop, on the same corpus, onto the built-in Shadow hands (``--robot``).

Corpus (deterministic, seed 0; ``--clips`` clips, default 200): copies of the real DexMV capture
``SHARED/data/dexmv_relocate_mustard_right.npz`` (one right hand), each moved by i mm along x so each copy
is its own task, and two-hand motions of the embedded composer (:data:`PROMPTS`, both hands present),
each copy moved likewise, half stored as our ``.npz`` files and half as sequences of one HandX collection
``gen_can_pos_all.npz``. ``--two-hand-fraction`` (default 0.5) of the clips are generated; without the
shared data every clip is.

Measured, frames/s = frames of the clips / wall time:

* ``CLI``: ``handx-robot retarget FILE -o OUT --no-progress``, one process per clip, over ``--cli-clips``
  standalone files (the corpus's one-/two-hand mix; process start included: a shell loop today);
* ``loop``: one process reading, retargeting and writing every clip (models loaded once; imports excluded);
* ``N workers``: ``handx-robot dataset retarget CORPUS --out D --workers N --no-progress``, whole command.

Targets: 2 workers >= 1.7 x 1 worker (2-core machine), 1 worker >= 0.8 x CLI; HandX (5.8 M two-hand frames)
on 64 cores <= 10 min. Run::

    .venv/bin/python benchmarks/dataset_scale.py [--clips 200] [--cli-clips 20] [--two-hand-fraction 0.5]
        [--robot shadow] [--workers-list 1 2] [--skip-cli] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))
CAPTURE = SHARED / "data" / "dexmv_relocate_mustard_right.npz"
HANDX = 5.8e6  # frames of two hands in HandX (54 h at 30 fps)
CORES = 64
PROMPTS = ("wave with the right hand", "make a fist with the left hand, then open it", "turn both palms up",
           "move both hands apart", "clap twice", "touch the fingertips of both hands together",
           "point forward with the left hand", "press the palms together", "rotate both wrists slowly",
           "interlock the fingers of both hands")  # fmt: skip
CLI = Path(sys.executable).parent / "handx-robot"
CMD = "  .venv/bin/python benchmarks/dataset_scale.py " + " ".join(a for a in sys.argv[1:] if a != "--_loop")


def _shift(motion, mm: float):
    joints = motion.joints.copy()
    joints[:, :, :, 0] += np.where(motion.present[None, :, None], mm * 1e-3, 0.0).astype(np.float32)
    return dataclasses.replace(motion, joints=joints)


def _two_hand_bases() -> list:
    from handx_robot.generate import generate

    return [m for m in (generate(p, seed=0) for p in PROMPTS) if m.present.all()]


def build_corpus(root: Path, clips: int, frac: float) -> list[dict]:
    """Write the corpus into ``root``; returns one dict per clip (path, key, frames, hands, standalone)."""
    from handx_robot.motion import save_motion
    from handx_robot.readers import read_motion

    n_gen = clips if not CAPTURE.is_file() else round(clips * frac)
    if not CAPTURE.is_file():
        print(f"note: {CAPTURE} missing: generated clips only")
    out, coll = [], {}
    if clips - n_gen:
        cap = read_motion(CAPTURE, hand="right", frame="camera")
        for i in range(clips - n_gen):
            path = save_motion(_shift(cap, i), root / f"capture_{i:04d}.npz")
            out.append({"path": str(path), "key": None, "frames": cap.num_frames, "hands": 1, "standalone": True})
    bases = _two_hand_bases() if n_gen else []
    for j in range(n_gen):
        p, c = j % len(bases), j // len(bases)
        m = _shift(bases[p].in_frame("handx_yup"), clips - n_gen + j)
        row = {"path": str(root / f"gen_{j:04d}.npz"), "key": None, "frames": m.num_frames, "hands": 2,
               "standalone": (p + c) % 2 == 0}  # alternate: each prompt both standalone and in the collection
        if row["standalone"]:
            save_motion(m, row["path"])
        else:
            row.update(path=str(root / "gen_can_pos_all.npz"), key=f"gen_{j:04d}")
            coll[row["key"]] = m.joints.astype(np.float32)
        out.append(row)
    if coll:
        np.savez(root / "gen_can_pos_all.npz", **coll)
    return out


def cli_subset(corpus: list[dict], n: int) -> list[dict]:
    """``n`` standalone clips with the corpus's share of two-hand clips."""
    two = [c for c in corpus if c["standalone"] and c["hands"] == 2]
    one = [c for c in corpus if c["hands"] == 1]
    n2 = min(len(two), round(n * sum(c["hands"] == 2 for c in corpus) / len(corpus)))
    return one[: n - n2] + two[:n2]


def run_cli(clips: list[dict], out: Path, robot: str) -> float:
    t0 = time.perf_counter()
    for i, c in enumerate(clips):
        cmd = [str(CLI), "retarget", c["path"], "-o", str(out / f"cli_{i}.npz"), "--no-progress", "--robot", robot]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"CLI failed on {c['path']}:\n{r.stderr[-2000:]}")
    return time.perf_counter() - t0


def loop_main(spec: str) -> int:
    """The in-process reference (run in a subprocess): every clip read, retargeted, written in one process."""
    a = json.loads(Path(spec).read_text())
    import handx_robot.retarget.bimanual  # noqa: F401 - imports of retarget_with, outside the timing
    import handx_robot.retarget.interaction  # noqa: F401
    from handx_robot.retarget.cli import add_robot_arguments, retarget_with, robot_settings
    from handx_robot.retarget.robot_motion import save_robot_motion

    from handx_robot.app.dataset.worker import output_digest
    from handx_robot.readers import read_motion

    ap = argparse.ArgumentParser()
    add_robot_arguments(ap)
    settings = robot_settings(ap.parse_args(["--robot", a["robot"]]))
    rows, t0 = [], time.perf_counter()
    for i, c in enumerate(a["clips"]):
        t = time.perf_counter()
        m = read_motion(c["path"], key=c["key"])
        rm, _ = retarget_with(m, settings)
        out = save_robot_motion(rm, Path(a["out"]) / f"loop_{i}.npz")
        rows.append({"wall_s": time.perf_counter() - t, "frames": m.num_frames, "digest": output_digest(out)})
    Path(a["result"]).write_text(json.dumps({"wall_s": time.perf_counter() - t0, "rows": rows}))
    return 0


def run_loop(corpus: list[dict], work: Path, robot: str) -> dict:
    (work / "loop").mkdir()
    spec = work / "loop.json"
    spec.write_text(json.dumps({"clips": corpus, "robot": robot, "out": str(work / "loop"),
                                "result": str(work / "loop_result.json")}))  # fmt: skip
    subprocess.run([sys.executable, __file__, "--_loop", str(spec)], check=True)
    return json.loads((work / "loop_result.json").read_text())


def run_dataset(corpus_dir: Path, out: Path, workers: int, robot: str) -> dict:
    cmd = [str(CLI), "dataset", "retarget", str(corpus_dir), "--out", str(out), "--workers", str(workers),
           "--no-progress", "--robot", robot]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        print(f"dataset run ({workers} workers) exited {r.returncode}:\n{r.stderr[-2000:]}")
    from handx_robot.app.dataset.manifest import latest_rows

    rows = latest_rows(out / "manifest.jsonl")
    for row in rows.values():
        if row["status"] != "done":
            print(f"  {row['status']}: {row['clip']}: {row['error']}")
    line = next((s for s in r.stdout.splitlines() if "frames in" in s), "(no summary line)")
    return {"wall_s": wall, "rows": rows, "line": line, "workers": workers}


def _fps(frames: float, wall: float) -> float:
    return frames / wall if wall > 0 else float("nan")


def _done(run: dict) -> list[dict]:
    return [x for x in run["rows"].values() if x["status"] == "done"]


def report(cli, loop, runs) -> None:
    loop_frames = sum(r["frames"] for r in loop["rows"])
    table = [("CLI, process per clip", cli["clips"], cli["frames"], cli["wall_s"])] if cli else []
    table.append(("in-process loop", len(loop["rows"]), loop_frames, loop["wall_s"]))
    for n, r in runs.items():
        table.append((f"dataset, {n} worker{'s' * (n > 1)}", len(_done(r)), sum(x["frames"] for x in _done(r)), r["wall_s"]))
    base = _fps(*table[0][2:])
    print(f"\n| method | clips | frames | wall s | frames/s | x {table[0][0].split(',')[0]} |\n|---|---|---|---|---|---|")
    for name, n, f, w in table:
        print(f"| {name} | {n} | {f} | {w:.1f} | {_fps(f, w):.1f} | {_fps(f, w) / base:.2f} |")
    fps = {n: _fps(*row[2:]) for n, row in zip(runs, table[-len(runs):])} if runs else {}
    for n, r in runs.items():
        busy = sum(x["wall_s"] for x in r["rows"].values()) / n
        print(f"{n} worker(s), the command's summary: {r['line'].split(';')[-2].strip() if ';' in r['line'] else r['line']}; "
              f"tasks only (sum of rows' wall_s / {n}): {_fps(sum(x['frames'] for x in _done(r)), busy):.1f} frames/s")
    if 1 in fps and 2 in fps:
        print(f"2 workers / 1 worker = {fps[2] / fps[1]:.2f} (target >= 1.7)")
    if 1 in fps and cli:
        sub = [loop["rows"][i] for i in cli["index"]]  # the loop's times on the CLI's clips: same-mix ratio
        same = fps[1] / _fps(loop_frames, loop["wall_s"]) * _fps(sum(r["frames"] for r in sub), sum(r["wall_s"] for r in sub)) / base
        print(f"1 worker / CLI = {fps[1] / base:.2f} (target >= 0.8; CLI on its {cli['clips']} clips); "
              f"on the same clip mix (scaled by the loop's per-clip times) = {same:.2f}")
    if 1 in fps:
        print(f"1 worker / in-process loop = {fps[1] / _fps(loop_frames, loop['wall_s']):.2f}")
    estimate(runs, fps)


def estimate(runs, fps) -> None:
    rows = [x for x in _done(runs[min(runs)]) if len(x["sides"]) == 2] if runs else []
    if not rows:
        return
    rate = _fps(sum(x["frames"] for x in rows), sum(x["wall_s"] for x in rows))
    print(f"per-worker two-hand rate ({len(rows)} two-hand rows of the {min(runs)}-worker manifest, frames / wall_s): "
          f"{rate:.1f} frames/s")
    minutes = HANDX / (CORES * rate) / 60
    print(f"HandX on {CORES} cores: {HANDX:.3g} frames / ({CORES} x {rate:.1f} frames/s) = {minutes:.1f} min "
          "(target <= 10), assuming linear scaling")
    if 1 in fps and 2 in fps:
        eff = fps[2] / fps[1] / 2
        print(f"  at the 2-worker efficiency measured here ({eff:.2f} = speed-up / 2) per worker: {minutes / eff:.1f} min")


def check_same(runs) -> None:
    if len(runs) < 2:
        return
    ref = {t: r.get("output_digest") for t, r in runs[min(runs)]["rows"].items()}
    for n, r in runs.items():
        diff = [t for t, x in r["rows"].items() if x.get("output_digest") != ref.get(t)]
        if diff or len(r["rows"]) != len(ref):
            print(f"MISMATCH: {n} workers vs {min(runs)}: {len(diff)} tasks differ, {len(r['rows'])} vs {len(ref)} rows")
    print(f"outputs identical across {sorted(runs)} workers: {all(r['rows'].keys() == ref.keys() for r in runs.values())}"
          f" ({len(ref)} tasks)")


def prepare(args) -> tuple[Path, Path]:
    work = Path(tempfile.mkdtemp(prefix="handx_dataset_scale_"))
    corpus_dir = Path(args.corpus) if args.corpus else work / "corpus"
    if corpus_dir.exists() and any(corpus_dir.iterdir()) and not (corpus_dir / "corpus.json").is_file():
        sys.exit(f"{corpus_dir}: not empty and not a corpus of this benchmark; give another --corpus")
    shutil.rmtree(corpus_dir, ignore_errors=True)
    corpus_dir.mkdir(parents=True)
    return work, corpus_dir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--cli-clips", type=int, default=20)
    ap.add_argument("--two-hand-fraction", type=float, default=0.5)
    ap.add_argument("--robot", default="shadow")
    ap.add_argument("--workers-list", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--corpus", metavar="DIR", help="build the corpus here and keep it (default: a temp folder)")
    ap.add_argument("--_loop", metavar="SPEC", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._loop:
        return loop_main(args._loop)
    work, corpus_dir = prepare(args)
    corpus = build_corpus(corpus_dir, args.clips, args.two_hand_fraction)
    (corpus_dir / "corpus.json").write_text(json.dumps(corpus))  # not a motion file: the dataset skips it
    n2 = sum(c["hands"] == 2 for c in corpus)
    print(f"corpus {corpus_dir}: {len(corpus)} clips, {sum(c['frames'] for c in corpus)} frames; one-hand {len(corpus) - n2} "
          f"({sum(c['frames'] for c in corpus if c['hands'] == 1)} frames), two-hand {n2} "
          f"({sum(c['frames'] for c in corpus if c['hands'] == 2)} frames, {sum(not c['standalone'] for c in corpus)} "
          f"in gen_can_pos_all.npz); robot {args.robot}", flush=True)
    cli = None
    if not args.skip_cli:
        sub = cli_subset(corpus, args.cli_clips)
        print(f"CLI: {len(sub)} clips ({sum(c['hands'] == 2 for c in sub)} two-hand), one process each ...", flush=True)
        cli = {"clips": len(sub), "frames": sum(c["frames"] for c in sub), "wall_s": run_cli(sub, work, args.robot),
               "index": [corpus.index(c) for c in sub]}  # fmt: skip
    print("in-process loop over every clip ...", flush=True)
    loop = run_loop(corpus, work, args.robot)
    runs = {}
    for n in args.workers_list:
        print(f"dataset retarget, {n} workers ...", flush=True)
        runs[n] = run_dataset(corpus_dir, work / f"D{n}", n, args.robot)
    check_same(runs)
    if runs:
        first = {r["source"] + str(r["key"]): r["output_digest"] for r in runs[min(runs)]["rows"].values()}
        same = sum(first.get(c["path"] + str(c["key"])) == r["digest"] for c, r in zip(corpus, loop["rows"]))
        print(f"in-process loop outputs identical to the dataset run's: {same}/{len(corpus)}")
    report(cli, loop, runs)
    shutil.rmtree(work, ignore_errors=True)
    print("\nRerun:\n" + CMD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
