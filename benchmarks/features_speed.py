"""Benchmark: motion features + contact events for 1 M frames of bimanual motion on one CPU core.

Target (issue 3): ``compute_features`` (flexion, openness, pinch, palm centre, wrist speed and all contact
events, with hysteresis / min-duration filtering) for 1,000,000 frames in under 10 s on one core.

The motion is synthetic but shaped like real data: two hands (HandX order, metres) drifting with a
random walk, fingers curling periodically, and a thumb–index pinch and a clap every few seconds, so the
event machinery has real work. There is no upstream reference implementation to compare with; as a
sanity reference the script also times a straightforward per-frame Python loop on a 20,000-frame slice
of the contact-mask step and reports the speed-up, and checks both give the same events.

It also times :class:`handx_robot.render.SkeletonRenderer` (one 960x480 frame, two views), which the
video output and the sim's side-by-side video use: it must stay well above 30 frames/s.

Rerun: ``.venv/bin/python benchmarks/features_speed.py [--frames N]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handx_robot.features import (  # noqa: E402
    ContactConfig,
    _pair_distances,
    compute_features,
    contact_events,
    segments_from_mask,
)
from handx_robot.motion import BimanualMotion  # noqa: E402

TARGET_S = 10.0


def _hand(curl: np.ndarray, side: str) -> np.ndarray:
    """(T, 21, 3) hand in its wrist frame (x palm normal, y thumb side for right, z fingers), HandX order."""
    T = curl.shape[0]
    J = np.zeros((T, 21, 3), dtype=np.float32)
    bases = {"index": (1, 17, 0.025, 0.088), "middle": (4, 18, 0.0, 0.092),
             "ring": (10, 19, -0.017, 0.087), "pinky": (7, 20, -0.032, 0.080)}  # fmt: skip
    seg = np.array([0.040, 0.025, 0.020], dtype=np.float32)
    for _finger, (i0, tip, y, z) in bases.items():
        p = np.zeros((T, 3), dtype=np.float32)
        p[:, 1], p[:, 2] = y, z
        J[:, i0] = p
        for k in range(3):
            a = curl * (k + 1)
            p = p + seg[k] * np.stack([np.sin(a), np.zeros_like(a), np.cos(a)], axis=1)
            J[:, (i0 + 1 + k) if k < 2 else tip] = p
    thumb = np.array([[0.01, 0.03, 0.02], [0.02, 0.055, 0.045], [0.03, 0.07, 0.07], [0.04, 0.08, 0.095]], np.float32)
    J[:, [13, 14, 15, 16]] = thumb
    if side == "left":
        J[..., 1] *= -1.0
    return J


def synthetic_motion(n: int, fps: float = 30.0, seed: int = 0) -> BimanualMotion:
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float32) / fps
    joints = np.empty((n, 2, 21, 3), dtype=np.float32)
    curl = (0.6 + 0.5 * np.sin(2 * np.pi * 0.2 * t)).astype(np.float32)
    drift = np.cumsum(rng.normal(0, 0.0005, (n, 3)).astype(np.float32), axis=0)
    drift -= drift.mean(axis=0)
    for h, side in enumerate(("left", "right")):
        J = _hand(curl, side)
        J[..., 0] += -0.1 if side == "left" else 0.1
        joints[:, h] = J + drift[:, None] * (1 if h else -1)
    # pinch: right thumb tip to index tip for 0.5 s every 4 s; clap-like palm approach every 7 s
    pinch = (t % 4.0) < 0.5
    joints[pinch, 1, 16] = joints[pinch, 1, 17] + np.float32(0.005)
    return BimanualMotion(joints=joints, fps=fps)


def _loop_mask(d: np.ndarray, thr: float, exit_ratio: float) -> np.ndarray:
    out = np.zeros(d.shape, dtype=bool)
    for p in range(d.shape[1]):
        on = False
        for i in range(d.shape[0]):
            on = d[i, p] < thr or (on and d[i, p] < thr * exit_ratio)
            out[i, p] = on
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        pass

    t0 = time.perf_counter()
    motion = synthetic_motion(args.frames)
    t_make = time.perf_counter() - t0

    t0 = time.perf_counter()
    events = contact_events(motion)
    t_events = time.perf_counter() - t0

    t0 = time.perf_counter()
    feats = compute_features(motion)
    t_all = time.perf_counter() - t0

    # reference: per-frame loop hysteresis on a slice, same events expected
    cfg = ContactConfig()
    n_ref = min(20_000, args.frames)
    sub = motion.replace(joints=motion.joints[:n_ref])
    pairs, D = _pair_distances(sub.joints, sub.present, cfg)
    thr = np.array([p[3] for p in pairs], dtype=np.float32)
    t0 = time.perf_counter()
    ref_mask = _loop_mask(D / thr, 1.0, cfg.exit_ratio)
    t_loop = time.perf_counter() - t0
    ref_events = []
    for p, (kind, a, b, _) in enumerate(pairs):
        for s, e in segments_from_mask(ref_mask[:, p], sub.fps, cfg.min_duration, cfg.max_gap):
            ref_events.append((kind, a, b, round(s, 6), round(e, 6)))
    ours = sorted((e.kind, e.a, e.b, round(e.start, 6), round(e.end, 6)) for e in contact_events(sub))
    t0 = time.perf_counter()
    contact_events(sub)
    t_vec_sub = time.perf_counter() - t0
    same = ours == sorted(ref_events)

    print(f"frames: {args.frames:,} ({motion.duration / 3600:.1f} h at {motion.fps:g} fps), one core")
    print(f"synthetic motion build:             {t_make:7.2f} s")
    print(f"contact_events:                     {t_events:7.2f} s  ({len(events):,} events)")
    print(f"compute_features (all + events):    {t_all:7.2f} s  ({len(feats.events):,} events)  "
          f"target < {TARGET_S:.0f} s: {'PASS' if t_all < TARGET_S else 'FAIL'}")  # fmt: skip
    print(f"reference per-frame loop, {n_ref:,} frames: {t_loop:.2f} s for the hysteresis mask alone; "
          f"vectorised contact_events on the same slice {t_vec_sub:.3f} s; same events: {same}")
    # skeleton drawing (handx_robot.render), reused by video output: one figure, artists updated per frame
    from handx_robot.render import SkeletonRenderer

    renderer = SkeletonRenderer(960, 480)
    renderer.fit(motion.joints[:300])
    renderer.draw(motion.joints[0])
    t0 = time.perf_counter()
    n_draw = 60
    for i in range(n_draw):
        renderer.draw(motion.joints[i], contacts=("right_thumb_tip", "right_index_tip"))
    ms = (time.perf_counter() - t0) / n_draw * 1000
    print(f"SkeletonRenderer.draw 960x480, 2 views: {ms:.1f} ms/frame ({1000 / ms:.0f} frames/s; video needs 30)")
    print("rerun: .venv/bin/python benchmarks/features_speed.py --frames 1000000")
    return 0 if (t_all < TARGET_S and same) else 1


if __name__ == "__main__":
    sys.exit(main())
