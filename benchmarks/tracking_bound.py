"""How far can any residual on the PD targets lower the fingertip error? An acausal upper bound.

Iterative learning control (ILC) per clip (:func:`handx_robot.sim.ilc.ilc_clip`): replay the clip with a
residual action sequence ``U``, measure the joint, wrist-position and wrist-rotation errors at every
frame, add ``gain x error`` (in action units) to ``U`` and replay again. ``U`` sees the whole clip's errors (not causal), so the
error it reaches bounds what a causal residual policy of ``HandXTracking-v0`` can reach on that clip
(up to the clip's non-repeatable dynamics). Clips: the held-out clips of ``benchmarks/tracking_eval.py``.

It also splits the open-loop fingertip error: with the simulated joints and the reference wrist,
with the reference joints and the simulated wrist, and with Shadow's coupled distal joints (J0,
passive within +-0.14 rad of 1.14 x J1 in the gymnasium-robotics model) put back on their coupling.

Rerun: ``MUJOCO_GL=egl .venv/bin/python benchmarks/tracking_bound.py [--clips 6] [--iterations 10]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from handx_robot.sim.backends.mujoco_backend import MujocoBackend  # noqa: E402
from handx_robot.sim.ilc import ilc_clip  # noqa: E402
from handx_robot.sim.scene import HandModel  # noqa: E402
from handx_robot.sim.tracking_env import HandXTrackingEnv, TrackingConfig, rollout  # noqa: E402
from tracking_eval import ROBOTS, synthetic_clip  # noqa: E402


def open_loop_states(env: HandXTrackingEnv, clip: int) -> dict:
    """Open-loop replay of ``clip`` from frame 0: joint positions and wrist poses per step, and frames."""
    out: dict[str, list] = {"q": [], "w": []}

    def record(e: HandXTrackingEnv) -> None:
        st = e._state  # noqa: SLF001 - the state the reset / step just read
        out["q"].append({s: st.qpos[s][0].copy() for s in e.backend.layout.sides})
        out["w"].append({s: st.wrist_pose[s][0].copy() for s in e.backend.layout.sides})

    r = rollout(env, None, clip=clip, on_step=record)
    return {"q": out["q"][1:], "w": out["w"][1:], "frame": r.frames}  # [0]: the state at the reset


def split_open_loop(env: HandXTrackingEnv, clip: int, r: dict) -> dict:
    """Open-loop fingertip error (m) recomputed kinematically with parts of the state swapped."""
    b, lay = env.bank, env.backend.layout
    F = r["frame"]
    Q = {s: np.array([x[s] for x in r["q"]]) for s in lay.sides}
    W = {s: np.array([x[s] for x in r["w"]]) for s in lay.sides}
    Qref = {s: b.q[clip, F][:, b.joint_slice[s]] for s in lay.sides}
    Wref = {s: b.wrist[clip, F][:, i] for i, s in enumerate(lay.sides)}
    Qc = {s: Q[s].copy() for s in lay.sides}
    for s in lay.sides:
        names = list(lay.hands[s].joint_names)
        for follower, (leader, coef) in lay.hands[s].mimic.items():
            Qc[s][:, names.index(follower)] = np.polyval(np.asarray(coef)[::-1], Q[s][:, names.index(leader)])

    def tip(QQ, WW):
        k = env.backend.kinematics(QQ, WW)
        return float(np.mean(np.concatenate(
            [np.linalg.norm(k.fingertips[s] - b.tips[clip, F][:, b.tip_slice[s]], axis=-1) for s in lay.sides], axis=1)))

    return {"sim": tip(Q, W), "sim_joints_ref_wrist": tip(Q, Wref), "ref_joints_sim_wrist": tip(Qref, W),
            "coupling_restored": tip(Qc, W)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--gain", type=float, default=0.7)
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args(argv)
    hands = [HandModel.from_registry(r) for r in ROBOTS]
    backend = MujocoBackend(hands)
    scene = backend.scene  # the clips read only joint names and limits from it
    clips = [synthetic_clip(scene, 1000 + s, args.seconds, backend=backend) for s in range(args.clips)]
    cfg = dataclasses.replace(TrackingConfig(), random_start=False)
    env = HandXTrackingEnv(clips, config=cfg)
    rows = []
    print(f"{'clip':>4} {'open-loop':>9} {'ILC best':>8} {'reduction':>9} | open-loop split (mm): sim joints+ref wrist, "
          f"ref joints+sim wrist, J0 coupling restored")
    for c in range(args.clips):
        split = split_open_loop(env, c, open_loop_states(env, c))
        _, errs = ilc_clip(env, c, args.iterations, args.gain)
        best = min(errs[1:])
        rows.append((errs[0], best))
        print(f"{c:4d} {1e3 * errs[0]:9.2f} {1e3 * best:8.2f} {1 - best / errs[0]:9.0%} | "
              f"{1e3 * split['sim_joints_ref_wrist']:.2f}, {1e3 * split['ref_joints_sim_wrist']:.2f}, "
              f"{1e3 * split['coupling_restored']:.2f}")
    ol, best = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
    print(f"mean fingertip error: open-loop {1e3 * ol:.2f} mm, acausal ILC bound {1e3 * best:.2f} mm "
          f"({1 - best / ol:.0%} lower; a causal policy's target is 30 %)")
    print("rerun: MUJOCO_GL=egl .venv/bin/python benchmarks/tracking_bound.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
