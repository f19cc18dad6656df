"""Physics replay of retargeted humanoid motions (:mod:`handx_robot.sim.humanoid_replay`): tracking, clearance, speed.

For each humanoid: the prompt is generated, retargeted (:func:`retarget_humanoid`) and replayed with physics
in the default scene and, for comparison, with the hands' coupled followers left to their joint equalities
(``HumanoidSceneConfig(drive_followers=False)``). Printed per replay: hand-root position / rotation error
vs the motion's ``wrist_pose`` and arm / hand joint errors (mean, p95, max), fingertip error vs the
kinematic replay, the deepest contact per part pair, divergence, and speed (frames/s and real-time
factor of the physics loop, on one core; the kinematic replay's frames/s). ``--still PNG`` renders the
frame where the hands are closest (the clap) from the ``front`` camera of the default physics replay.

Run:  MUJOCO_GL=egl .venv/bin/python benchmarks/humanoid_replay.py \\
          [--prompt "wave with the right hand, then clap twice"] [--robots gr1_inspire gr1_fourier] \\
          [--still /tmp/humanoid_clap.png]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import numpy as np  # noqa: E402
from handx_robot.retarget.humanoid.retarget import retarget_humanoid  # noqa: E402
from handx_robot.sim.humanoid_replay import humanoid_replay  # noqa: E402
from handx_robot.sim.humanoid_scene import HumanoidSceneConfig, build_humanoid_scene  # noqa: E402

from handx_robot.generate import generate  # noqa: E402


def one_core() -> str:
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return "not pinned"


def mm(s: dict) -> str:
    return f"{1000 * s['mean']:.1f} / {1000 * s['p95']:.1f} / {1000 * s['max']:.1f} mm"


def rad(s: dict) -> str:
    return f"{s['mean']:.4f} / {s['p95']:.4f} / {s['max']:.4f} rad"


def report(label: str, summary: dict) -> None:
    s = summary
    print(f"  {label}: {s['frames']} frames, timestep {1000 * s['timestep_s']:.2f} ms, {s['frames_per_second']:.0f} "
          f"frames/s, real-time factor {s['real_time_factor']:.1f}, diverged: {s['diverged']}, max joint speed "
          f"{s['max_joint_speed_rad_s']:.1f} rad/s")  # fmt: skip
    for side, h in s["sides"].items():
        print(f"    {side:5s} hand root {mm(h['hand_root_position_error_m'])}, {rad(h['hand_root_rotation_error_rad'])} "
              f"(mean / p95 / max)")  # fmt: skip
        print(f"          arm joints {rad(h['arm_joint_error_rad'])}; hand joints {rad(h['hand_joint_error_rad'])}; "
              f"fingertips vs kinematic {mm(h['fingertip_error_m'])}")  # fmt: skip
    c = s["contacts"]
    print("    deepest contact: " + ", ".join(f"{k} {1000 * v['max_depth_m']:.1f} mm ({v['frames']} frames)"
                                             for k, v in c.items()))  # fmt: skip


def still(motion, scene, path: str, width: int = 960, height: int = 720) -> int:
    import imageio.v2 as imageio
    from handx_robot.sim.render import OffscreenRenderer, hand_labels

    gap = np.linalg.norm(motion.hands["left"].wrist_pose[:, :3] - motion.hands["right"].wrist_pose[:, :3], axis=1)
    frame = int(np.argmin(gap))
    renderer = OffscreenRenderer(scene.model, width, height)

    def grab(k: int, sc) -> None:
        if k == frame:
            imageio.imwrite(path, renderer.render(sc.data, "front", hand_labels(renderer, sc, "front")))

    try:
        humanoid_replay(motion, scene, physics=True, on_frame=grab, aspect=width / height)
    finally:
        renderer.close()
    return frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", default="wave with the right hand, then clap twice")
    ap.add_argument("--robots", nargs="+", default=["gr1_inspire", "gr1_fourier"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--still", metavar="PNG", help="render the closest-hands frame of the first robot's physics replay")
    args = ap.parse_args()
    motion = generate(args.prompt, seed=args.seed)
    print(f"prompt {args.prompt!r}: {motion.num_frames} frames at {motion.fps:g} fps")
    for k, robot in enumerate(args.robots):
        t0 = time.perf_counter()
        rm, _ = retarget_humanoid(motion, robot)
        print(f"{robot}: retargeted in {time.perf_counter() - t0:.1f} s; {one_core()}")
        scene = build_humanoid_scene(robot, HumanoidSceneConfig())
        kin = humanoid_replay(rm, scene).metrics.summary()
        print(f"  kinematic: {kin['frames_per_second']:.0f} frames/s")
        report("physics, followers driven (default)", humanoid_replay(rm, scene, physics=True).metrics.summary())
        loose = build_humanoid_scene(robot, HumanoidSceneConfig(drive_followers=False))
        report("physics, followers by their equalities only", humanoid_replay(rm, loose, physics=True).metrics.summary())
        if args.still and k == 0:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
            print(f"  still: {args.still} (frame {still(rm, scene, args.still)})")


if __name__ == "__main__":
    main()
