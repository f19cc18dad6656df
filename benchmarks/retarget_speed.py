"""Retargeting speed and fidelity: handx-robot's solver vs dex-retargeting, same frames, same configs.

For each robot (dex-retargeting's teleop vector configs, dex-urdf models) and each input:

* dex-retargeting ``SeqRetargeting.retarget`` frame by frame (its own loop, warm-started), frames/s;
* our offline solver (``solve_sequence``, its default method 'sequential'), frames/s and ratio to dex;
* our streaming solver (``StreamingRetargeter.step``, one frame at a time, warm start), frames/s;
* dex-retargeting's objective evaluated *by dex-retargeting's own objective function* on both solutions
  (mean), and the fingertip-shape error |d_robot(i,j) - s d_human(i,j)| over wrist/fingertip pairs (mm);
  ratios ours / dex (target <= 1.05).

Inputs: ``/work/shared/data/dexmv_relocate_mustard_right.npz`` (real right hand, MediaPipe order, camera
frame; 122 frames, played forward-backward 5x = 610 frames for timing) and a generated bimanual motion
(handx_robot.generate when present, else the DexMV hand mirrored as a left hand) for the left hands.

Low-pass filters are off for both (they post-process the output identically). Timings interleave
the solvers and keep each one's best of ``--reps`` passes (default 2; the machine may be shared).
Our solver's compiled kernels (numba) are warmed up before timing, and the warm-up is timed (a compile
on a machine's first run, else a load from the ``__pycache__`` cache; ``NUMBA_CACHE_DIR=$(mktemp -d)``
forces a compile); ``HANDX_NUMBA=0`` times the numpy fallback. ``--coupled`` compares the offline methods
('sequential', 'coupled': frames/s and jerk) and the coupled method's banded Cholesky with one BLAS
thread (as shipped) and with the BLAS library's default threads. Run::

    .venv/bin/python benchmarks/retarget_speed.py [--assets DIR] [--robots allegro leap inspire shadow]
        [--reps N] [--long N] [--coupled]   # --long: stream N frames through the offline solver in chunks
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handx_robot.retarget.reference import build_dex_retargeting, dex_reference_values  # noqa: E402
from handx_robot.retarget.robots import fingertip_links, get_robot, wrist_link  # noqa: E402
from handx_robot.retarget.solver import (  # noqa: E402
    HandProblem,
    SolverOptions,
    StreamingRetargeter,
    check_convergence,
    solve_sequence,
)

from handx_robot.handframe import to_wrist_frame  # noqa: E402
from handx_robot.keypoints import FINGERTIPS, WRIST, mediapipe_to_handx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))
CMD = "  .venv/bin/python benchmarks/retarget_speed.py " + " ".join(sys.argv[1:])


def dexmv_right() -> np.ndarray:
    d = np.load(SHARED / "data" / "dexmv_relocate_mustard_right.npz")
    return mediapipe_to_handx(np.asarray(d["joints"], dtype=np.float64))


def generated_bimanual() -> tuple[np.ndarray, str]:
    """(T, 2, 21, 3) world keypoints of a generated bimanual motion (or the DexMV hand mirrored)."""
    try:
        from handx_robot.generate import generate  # type: ignore[attr-defined]

        m = generate("pass a cup from the left hand to the right hand")
        return np.asarray(m.in_frame("world_zup").joints, dtype=np.float64), "generated"
    except Exception as exc:  # generator not in this tree yet
        r = dexmv_right()
        left = r.copy()
        left[..., 0] *= -1.0
        return np.stack([left, r], axis=1), f"dexmv mirrored (generator unavailable: {type(exc).__name__})"


def dex_objective_both(rt, prob: HandProblem, kp_wrist: np.ndarray, solutions: list[np.ndarray]) -> list[float]:
    """Mean of dex-retargeting's own objective function on each solution (dof arrays (T, n))."""
    opt = rt.optimizer
    ref = dex_reference_values(rt, prob, kp_wrist)
    names = list(opt.robot.dof_joint_names)
    tgt = [prob.tree.dof_names.index(n) for n in opt.target_joint_names]
    fixed_names = [names[i] for i in opt.idx_pin2fixed]
    fixed = [prob.tree.dof_names.index(n) for n in fixed_names]
    out = []
    for q in solutions:
        vals = []
        for t in range(len(q)):
            f = opt.get_objective_function(
                ref[t].astype(np.float32), q[t, fixed].astype(np.float32), q[t, tgt].astype(np.float32)
            )
            vals.append(f(q[t, tgt].astype(np.float64), np.empty(0)))
        out.append(float(np.mean(vals)))
    return out


def tip_shape_error(prob: HandProblem, q: np.ndarray, kp_wrist: np.ndarray) -> float:
    """Mean |d_robot - s d_human| (m) over wrist/fingertip pairs."""
    tips = fingertip_links(prob.spec)
    fingers = list(tips)
    _, p = prob.tree.forward(q)
    wl = wrist_link(prob.spec)
    rp = np.concatenate([p[:, [prob.tree.link_index(wl)]], p[:, [prob.tree.link_index(tips[f]) for f in fingers]]], 1)
    hp = np.concatenate([kp_wrist[:, [WRIST]], kp_wrist[:, [FINGERTIPS[f] for f in fingers]]], 1)
    i, j = np.triu_indices(rp.shape[1], 1)
    dr = np.linalg.norm(rp[:, i] - rp[:, j], axis=-1)
    dh = np.linalg.norm(hp[:, i] - hp[:, j], axis=-1)
    return float(np.abs(dr - prob.scaling * dh).mean())


REPS = 2


def bench_one(robot_id: str, assets, kp_world: np.ndarray, side: str, reps: int | None = None) -> dict:
    spec = get_robot(robot_id, assets)
    prob = HandProblem(spec)
    kp_wrist = to_wrist_frame(kp_world, side)
    T = len(kp_wrist)
    rt = build_dex_retargeting(prob)
    ref = dex_reference_values(rt, prob, kp_wrist)
    solve_sequence(prob, kp_wrist[:40], SolverOptions(low_pass=False))  # warm-up (imports, caches)
    names = list(rt.joint_names)
    cols = np.array([names.index(n) for n in prob.tree.dof_names])
    # the machine may be shared: timings interleave dex / ours / streaming and keep each one's best
    dex_s = best = st_s = np.inf
    opts = SolverOptions(low_pass=False)
    for _ in range(reps or REPS):
        rt = build_dex_retargeting(prob)  # fresh: its warm start and filter state from scratch
        q_dex = np.zeros((T, prob.tree.num_dof))
        t0 = time.perf_counter()
        for t in range(T):  # dex-retargeting's own per-frame loop
            q_dex[t] = rt.retarget(ref[t])[cols]
        dex_s = min(dex_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = solve_sequence(prob, kp_wrist, opts)
        best = min(best, time.perf_counter() - t0)
        st = StreamingRetargeter(prob, SolverOptions(low_pass=False))
        q_st = np.zeros((T, prob.tree.num_dof))
        t0 = time.perf_counter()
        for t in range(T):
            st.step(kp_wrist[t])
            q_st[t] = st.q[0]
        st_s = min(st_s, time.perf_counter() - t0)
    rt2 = build_dex_retargeting(prob)
    obj_dex, obj_ours, obj_st = dex_objective_both(rt2, prob, kp_wrist, [q_dex, res.q, q_st])
    e_dex, e_ours, e_st = (tip_shape_error(prob, q, kp_wrist) for q in (q_dex, res.q, q_st))
    lim_viol = int(((res.q < prob.lower - 1e-9) | (res.q > prob.upper + 1e-9)).sum())
    return {
        "robot": robot_id, "frames": T, "dex_fps": T / dex_s, "ours_fps": T / best, "stream_fps": T / st_s,
        "obj_dex": obj_dex, "obj_ours": obj_ours, "obj_stream": obj_st,
        "tip_dex_mm": e_dex * 1e3, "tip_ours_mm": e_ours * 1e3, "tip_stream_mm": e_st * 1e3,
        "non_converged": res.num_failed, "stream_failed": st.num_failed, "limit_violations": lim_viol,
        "dex_nonconv": int((~check_convergence(prob, q_dex, kp_wrist)).sum()),
        "dex_limit_violations": int(((q_dex < prob.lower - 1e-9) | (q_dex > prob.upper + 1e-9)).sum()),
    }  # fmt: skip


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n== {title}")
    print(
        f"{'robot':<15}{'frames':>7}{'dex f/s':>9}{'ours f/s':>10}{'x dex':>7}{'stream f/s':>11}"
        f"{'obj dex':>10}{'obj ours':>10}{'ratio':>7}{'obj strm':>10}{'tip dex':>9}{'tip ours':>9}{'ratio':>7}"
        f"{'tip strm':>9}{'nonconv':>8}{'strm nc':>8}{'dex nc':>7}{'limits':>7}{'dex lim':>8}"
    )
    for r in rows:
        print(
            f"{r['robot']:<15}{r['frames']:>7}{r['dex_fps']:>9.0f}{r['ours_fps']:>10.0f}"
            f"{r['ours_fps'] / r['dex_fps']:>7.1f}{r['stream_fps']:>11.0f}{r['obj_dex']:>10.5f}{r['obj_ours']:>10.5f}"
            f"{r['obj_ours'] / r['obj_dex']:>7.3f}{r['obj_stream']:>10.5f}{r['tip_dex_mm']:>8.2f}m{r['tip_ours_mm']:>8.2f}m"
            f"{r['tip_ours_mm'] / r['tip_dex_mm']:>7.3f}{r['tip_stream_mm']:>8.2f}m{r['non_converged']:>8}"
            f"{r['stream_failed']:>8}{r['dex_nonconv']:>7}{r['limit_violations']:>7}{r['dex_limit_violations']:>8}"
        )


def long_run(robot_id: str, assets, n: int) -> None:
    """Solve ``n`` frames in chunks of 2048 and report peak memory beyond the input/output arrays."""
    spec = get_robot(robot_id, assets)
    prob = HandProblem(spec)
    base = to_wrist_frame(dexmv_right(), "right")
    reps = int(np.ceil(n / (2 * len(base))))
    kp = np.concatenate([base, base[::-1]] * reps)[:n]
    solve_sequence(prob, kp[:64], SolverOptions(low_pass=False))  # warm-up
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    res = solve_sequence(prob, kp, SolverOptions(low_pass=False, chunk_size=2048))
    dt = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_mib = (res.q.nbytes + res.qpos.nbytes + res.objective.nbytes + res.converged.nbytes) / 2**20
    print(
        f"\n== long run {robot_id}: {n} frames in {dt:.1f} s ({n / dt:.0f} frames/s), chunks of 2048; "
        f"peak RSS {rss0:.0f} -> {rss1:.0f} MiB: +{rss1 - rss0:.0f} MiB while the result arrays are "
        f"{out_mib:.0f} MiB (input keypoints {kp.nbytes / 2**20:.0f} MiB, held before); non-converged {res.num_failed}"
    )


def coupled_run(robot_id: str, assets, kp_world: np.ndarray, side: str) -> None:
    """Offline methods: 'sequential' vs 'coupled' (frames/s, mean |third difference| of q), and the
    coupled method's banded Cholesky with one BLAS thread (as shipped) vs the BLAS default threads."""
    from contextlib import nullcontext

    from handx_robot.retarget.solver import newton

    prob = HandProblem(get_robot(robot_id, assets))
    kp = to_wrist_frame(kp_world, side)
    T = len(kp)
    print(f"\n== offline methods, {robot_id}, {T} frames")
    for label, method, one_thread in (("sequential", "sequential", True), ("coupled", "coupled", True),
                                      ("coupled, BLAS default threads", "coupled", False)):  # fmt: skip
        opts = SolverOptions(low_pass=False, method=method)
        shipped = newton.blas_single_thread
        if not one_thread:
            newton.blas_single_thread = nullcontext
        try:
            solve_sequence(prob, kp[:40], opts)  # warm-up
            best = np.inf
            for _ in range(REPS):
                t0 = time.perf_counter()
                res = solve_sequence(prob, kp, opts)
                best = min(best, time.perf_counter() - t0)
        finally:
            newton.blas_single_thread = shipped
        jerk = float(np.abs(np.diff(res.q, n=3, axis=0)).mean())
        print(f"{label:<32}{T / best:>9.0f} frames/s  mean |d3q| {jerk:.3e} rad/frame^3  non-converged {res.num_failed}")


def warm_up(robot_id: str, assets) -> float:
    """Seconds to make the compiled kernels ready (compile, or load them from the cache)."""
    t0 = time.perf_counter()
    prob = HandProblem(get_robot(robot_id, assets))
    StreamingRetargeter(prob)  # the objective pass
    solve_sequence(prob, to_wrist_frame(dexmv_right()[:40], "right"), SolverOptions(low_pass=False))  # the step
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", default=str(SHARED / "assets" / "dex-urdf"))
    ap.add_argument("--robots", nargs="+", default=["allegro", "leap", "inspire", "shadow"])
    ap.add_argument("--long", type=int, default=0, help="frames for the chunked long run (0: skip)")
    ap.add_argument("--reps", type=int, default=2, help="timed passes per solver (best kept)")
    ap.add_argument("--coupled", action="store_true", help="also compare the offline methods (allegro_right)")
    args = ap.parse_args()
    global REPS
    REPS = max(1, args.reps)
    from handx_robot.retarget.kinematics import HAVE_FUSED

    if HAVE_FUSED:
        import numba

        secs = warm_up(f"{args.robots[0]}_right", args.assets)
        print(f"kernels: numba {numba.__version__}, compiled; warm-up (compile or cache load) {secs:.1f} s")
    else:
        print("kernels: numpy fallback (numba missing or HANDX_NUMBA=0)")
    right = dexmv_right()
    right610 = np.concatenate([right, right[::-1]] * 3)[:610]
    rows = [bench_one(f"{r}_right", args.assets, right610, "right") for r in args.robots]
    print_rows("DexMV relocate-mustard right hand, 610 frames (122 played forward/backward)", rows)
    bi, what = generated_bimanual()
    rows_l = [bench_one(f"{r}_left", args.assets, bi[:, 0], "left") for r in args.robots]
    rows_r = [bench_one(f"{r}_right", args.assets, bi[:, 1], "right") for r in args.robots]
    print_rows(f"bimanual ({what}), left hands, {bi.shape[0]} frames", rows_l)
    print_rows(f"bimanual ({what}), right hands, {bi.shape[0]} frames", rows_r)
    if args.long:
        long_run("allegro_right", args.assets, args.long)
    if args.coupled:
        coupled_run("allegro_right", args.assets, right610, "right")
    print("\nobj = dex-retargeting's objective (its own function) on each solution; tip = fingertip-shape error;")
    print("nonconv / strm nc / dex nc = frames failing our convergence test (ours offline, streaming, dex's);")
    print("limits / dex lim = (frame, joint) entries outside the URDF limits (dex-retargeting allows 1e-3 rad slack).")
    print("targets: ours/dex speed >= 20x, streaming >= 1000 f/s, obj and tip ratios <= 1.05. Rerun:\n" + CMD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
