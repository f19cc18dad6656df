"""A long motion's bimanual solve in chunks, on several processes (:func:`refine_chunked`). Units: frames.

The offline solve (:meth:`.refine.BimanualRefiner.refine_sequence`) walks the frames in order: each frame starts
from the previous one's correction. A long motion (a dataset take, the 60 000 frames of #17's speed target) is cut
into chunks of :data:`CHUNK_FRAMES`; each chunk is solved on its own, as a motion of its own is:

* from :data:`WARMUP_FRAMES` before its first frame (where the motion has them), so it reaches its first frame with
  a correction of its own history, as the sequence would; and :data:`LEAD_FRAMES` (or the approach window, if
  longer) past its last frame, so a contact beginning just after it is seen coming;
* next to the previous chunk's result over those overlapping frames, the frame where the two results are nearest
  (the largest joint or wrist difference, radians and metres; the first of equals) is the *splice*: the previous
  chunk's result before it, this chunk's from it on. Where the two walks have reached the same state, the splice
  changes nothing. Only a frame after which this chunk's own result penetrates no deeper than the previous
  chunk's is a splice, so the solve's guarantee holds across it: once a result is free of penetration, every
  later one is (:mod:`.refine`). Where no frame of the overlap is (the warm-up still deep in penetration), the
  chunk is solved again in this process from the previous chunk's result at the frame before its first, as the
  sequence would go on, and spliced there.

The chunks are the same whatever the number of processes (``workers``), so the result is too: one process solves
them one after the other, several solve them side by side (``fork``: each worker inherits the solver and the
inputs; where ``fork`` is not available, one process). The splice takes one of the two results as a whole at
every frame; then the joints of the few frames before a splice ramp into its step, as before a step within a chunk
(:meth:`.pullback.PullBack._ramp_into`: kept only where no frame of it penetrates deeper, so the guarantee holds).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Mapping

import numpy as np
from handx_robot.retarget.solver.newton import blas_single_thread

from .state import Carry, FrameState

__all__ = ["CHUNK_FRAMES", "WARMUP_FRAMES", "LEAD_FRAMES", "chunk_starts", "refine_chunked", "default_workers"]

#: frames per chunk (a minute at 30 fps); a motion up to 1.5 times this is one chunk
CHUNK_FRAMES = 1800
#: frames each chunk solves before its first frame (two seconds at 30 fps): a correction fades by 5 % a frame
#: (:data:`.state.FADE`), so what the frames before that left is mostly gone
WARMUP_FRAMES = 60
#: frames each chunk solves past its last frame, at least (the approach window, if longer): with the warm-up, the
#: frames where the splice is chosen
LEAD_FRAMES = 30

log = logging.getLogger(__name__)

_JOB: dict = {}  # the work of a refine_chunked call, for its forked workers


def default_workers() -> int:
    """The processes the command line uses by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def chunk_starts(frames: int, chunk: int | None = None) -> list[int]:
    """The first frame of every chunk, then ``frames``: ``[0, chunk, 2 chunk, ..., frames]``, the last chunk at least
    half a chunk long (a shorter tail joins the chunk before it); ``chunk`` default :data:`CHUNK_FRAMES`."""
    chunk = CHUNK_FRAMES if chunk is None else int(chunk)
    starts = list(range(0, max(frames, 1), chunk))
    if len(starts) > 1 and frames - starts[-1] < chunk // 2:
        starts.pop()
    return starts + [frames]


def _solve_chunk(k: int) -> tuple[int, dict, dict, dict]:
    """Chunk ``k`` of the current job: its frames ``[lo, hi)`` solved (:func:`refine_chunked`)."""
    job = _JOB
    lo, hi = job["spans"][k]
    return k, *_solve_span(job["refiner"], job["T"], job["q"], job["refs"], job["touching"], job["fps"], lo, hi)


def _solve_span(refiner, T0, q0, refs, touching, fps, lo: int, hi: int, start: Carry | None = None) -> tuple:
    """:meth:`.refine.BimanualRefiner.refine_sequence` of frames ``[lo, hi)`` of the motion (``start``: what the
    frame before left)."""
    return refiner.refine_sequence({s: v[lo:hi] for s, v in T0.items()}, {s: v[lo:hi] for s, v in q0.items()},
                                   {s: (r[lo:hi], None if w is None else w[lo:hi]) for s, (r, w) in refs.items()},
                                   touching[lo:hi], fps=fps, start=start)  # fmt: skip


def _depth(info: dict) -> np.ndarray:
    """(n,) a chunk result's deepest penetration per frame, hand-hand or finger-finger (metres, >= 0)."""
    return np.maximum(info["measured"]["hand_hand"], info["measured"]["self"])


def _splice(prev: tuple, cur: tuple, lo: int, hi: int, base_prev: int, base_cur: int) -> int | None:
    """The splice frame in ``[lo, hi)`` (absolute frames) between two chunks' results ``(T, q, info)`` that start at
    absolute frames ``base_prev`` and ``base_cur``: where the larger of the joints' and the wrists' largest
    difference is smallest, the first such frame, among the frames ``s`` after which the current chunk's own
    frame ``s - 1`` penetrates no deeper than the previous chunk's (so the solve's guarantee, a frame no deeper than
    the one before it, holds across the splice as within a chunk); None where there is no such frame."""
    Tp, qp, ip = prev
    Tc, qc, ic = cur
    a, b = slice(lo - base_prev, hi - base_prev), slice(lo - base_cur, hi - base_cur)
    gap = np.zeros(hi - lo)
    for s in Tp:
        gap = np.maximum(gap, np.abs(qp[s][a] - qc[s][b]).max(axis=1))
        gap = np.maximum(gap, np.abs(Tp[s][a] - Tc[s][b]).reshape(hi - lo, -1).max(axis=1))
    ok = np.zeros(hi - lo, dtype=bool)
    t = np.arange(lo + 1, hi)  # s - 1 within both results
    ok[1:] = _depth(ic)[t - 1 - base_cur] <= _depth(ip)[t - 1 - base_prev]
    if not ok.any():
        return None
    return lo + int(np.argmin(np.where(ok, gap, np.inf)))


def refine_chunked(refiner, T_world_base: Mapping[str, np.ndarray], q: Mapping[str, np.ndarray], ref: Mapping,
                   touching: np.ndarray, fps: float, workers: int = 1,
                   progress: Callable[[int], None] | None = None) -> tuple[dict, dict, dict]:
    """:meth:`.refine.BimanualRefiner.refine_sequence` of a whole motion in chunks (the module docstring), on up
    to ``workers`` processes; same arguments and results (``info`` gains ``splices``: the splice frames). A motion
    of one chunk is solved as one sequence, in this process. numpy's BLAS runs on one thread meanwhile."""
    with blas_single_thread():  # its matrices are small: more BLAS threads only spin, beside the other workers
        return _refine_chunked(refiner, T_world_base, q, ref, touching, fps, workers, progress)


def _refine_chunked(refiner, T_world_base, q, ref, touching, fps, workers, progress):
    T = len(touching)
    starts = chunk_starts(T)
    if len(starts) <= 2:
        return refiner.refine_sequence(T_world_base, q, ref, touching, progress=progress, fps=fps)
    ahead = max(LEAD_FRAMES, int(round(refiner.options.approach_s * fps)) + 1)
    spans = [(max(0, a - WARMUP_FRAMES), min(T, b + ahead)) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    _JOB.update(refiner=refiner, T=T_world_base, q=q, refs=ref, touching=touching, fps=fps, spans=spans)
    t0 = time.perf_counter()
    results: dict[int, tuple] = {}
    try:
        workers = min(int(workers), len(spans))
        ctx = _fork_context() if workers > 1 else None
        if ctx is None:
            for k in range(len(spans)):
                results[k] = _solve_chunk(k)[1:]
                if progress:
                    progress(starts[k + 1] - starts[k])
        else:
            longest_first = sorted(range(len(spans)), key=lambda k: spans[k][0] - spans[k][1])  # the last chunk is
            with ctx.Pool(workers, initializer=_ignore_sigint) as pool:  # up to 1.5 long: started last, it would
                # finish last alone
                for k, *res in pool.imap_unordered(_solve_chunk, longest_first):
                    results[k] = tuple(res)
                    if progress:
                        progress(starts[k + 1] - starts[k])
    finally:
        _JOB.clear()
    # splice: chunk k's result from its splice frame on
    cut = [0]
    for k in range(1, len(spans)):
        lo = spans[k][0]
        hi = min(spans[k - 1][1], spans[k][1])
        s = _splice(results[k - 1], results[k], lo, hi, spans[k - 1][0], spans[k][0])
        if s is None:  # chunk k solved again from chunk k - 1's result at frame lo - 1, spliced at lo
            results[k] = _continue(refiner, results[k - 1], spans[k - 1][0], lo, spans[k][1], T_world_base, q, ref,
                                   touching, fps)  # fmt: skip
            log.info("frames %d-%d solved again from the previous chunk's result: no splice kept the guarantee", lo,
                     spans[k][1] - 1)  # fmt: skip
            s = lo
        cut.append(s)
    cut.append(T)
    pieces = [(results[k], slice(cut[k] - spans[k][0], cut[k + 1] - spans[k][0])) for k in range(len(spans))]
    sides = list(T_world_base)
    T1 = {s: np.concatenate([r[0][s][sl] for r, sl in pieces]) for s in sides}
    q1 = {s: np.concatenate([r[1][s][sl] for r, sl in pieces]) for s in sides}
    info = {key: np.concatenate([r[2][key][sl] for r, sl in pieces])
            for key in ("solved", "gate", "iterations", "converged", "second_start", "untangled", "pulled_back")}  # fmt: skip
    info["measured"] = {key: np.concatenate([r[2]["measured"][key][sl] for r, sl in pieces])
                        for key in results[0][2]["measured"]}  # fmt: skip
    info["splices"] = np.array(cut[1:-1], dtype=np.int64)
    for s in info["splices"]:  # a splice steps from one solve to another: spread over the frames before it too
        info["pulled_back"][refiner._ramp_into(int(s), q, touching, T1, q1, info["measured"])] = True
    info["seconds"] = time.perf_counter() - t0
    return T1, q1, info


def _continue(refiner, prev: tuple, base_prev: int, lo: int, hi: int, T0, q0, refs, touching, fps) -> tuple:
    """Frames ``[lo, hi)`` (a chunk's span) solved on from the previous chunk's result ``prev`` (``(T, q, info)``,
    from absolute frame ``base_prev``) at frame ``lo - 1``, as the sequence would go on from there (the approach's
    windows begun before ``lo`` excepted): what the splice falls back on."""
    Tp, qp, ip = prev
    t = lo - 1 - base_prev
    result = FrameState({s: Tp[s][t] for s in Tp}, {s: qp[s][t] for s in qp})
    anchor = FrameState({s: T0[s][lo - 1] for s in T0}, {s: q0[s][lo - 1] for s in q0})
    corr = refiner.correction(result, anchor, refiner.world.dofs)
    moved = any(np.abs(v).max(initial=0.0) > 0 for parts in corr.values() for v in parts)
    start = Carry(corr if moved else None, result, -float(_depth(ip)[t]) if _depth(ip)[t] > 0 else np.inf)
    return _solve_span(refiner, T0, q0, refs, touching, fps, lo, hi, start)


def _ignore_sigint() -> None:
    """A worker's start: Ctrl-C (SIGINT to the terminal's whole process group) is the main process's to handle, which
    stops the workers (the pool's terminate). Handled in the workers too, each printed its name and the start of a
    traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _fork_context():
    """multiprocessing's ``fork`` context, or None where there is none (Windows, macOS's default)."""
    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return None
