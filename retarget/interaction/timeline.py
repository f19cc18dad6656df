"""A picture of a two-hand result: where the robot hands touch against where the human's touched, pair by pair,
and how deep anything passes through anything, frame by frame (``handx-robot retarget --plot PNG``).

It needs only the robot motion (:class:`~handx_robot.retarget.robot_motion.RobotMotion`, what ``retarget``
writes): its hands are posed in the two-hand world (MuJoCo, the robots' collision geometry), every monitored pair's
distance is measured (:func:`.measure.measure_frames`), the robot's contact events are taken from those distances
as the report takes them (:func:`.measure.robot_events`), the human's from the file's ``source_joints``. So the
timeline of a bimanual result counts the events its report counts, and a per-hand result of the same motion
(``--interaction off``) can be drawn beside it. Metres in, millimetres drawn.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from handx_robot.errors import ConfigError, MotionFormatError
from handx_robot.rotations import quat_to_matrix

__all__ = ["InteractionTimeline", "interaction_timeline", "plot_interaction_timeline"]

HUMAN_COLOUR = "#9e9e9e"
MATCHED_COLOUR = "#2ca02c"  # a robot event overlapping a human event of the same pair
UNMATCHED_COLOUR = "#d62728"  # a robot event with none: a contact the human did not make
PENETRATION_LIMIT_M = 0.002  # #17's bound, drawn as a line


@dataclasses.dataclass(frozen=True)
class InteractionTimeline:
    """One robot motion's contacts and penetration over time.

    fps: frames per second. pairs: ``(kind, a, b)`` of every monitored pair (participant names as in
    :func:`handx_robot.features.contact_pairs`). human_events / robot_events: :class:`~handx_robot.features.ContactEvent`
    lists. hand_hand / finger_finger: (T,) the deepest penetration across the hands / between parts of one hand
    (metres, >= 0).
    """

    fps: float
    pairs: tuple[tuple[str, str, str], ...]
    human_events: list
    robot_events: list
    hand_hand: np.ndarray
    finger_finger: np.ndarray


def _problems(robot_motion, assets) -> dict:
    from handx_robot.retarget.robots import get_robot
    from handx_robot.retarget.solver import HandProblem

    if robot_motion.body is not None:
        raise ConfigError("--plot draws robot hands' contacts; a humanoid's report has its own figures (drop --plot)")
    return {s: HandProblem(get_robot(h.robot, assets)) for s, h in robot_motion.hands.items()}


def _dofs(problem, hand) -> np.ndarray:
    """(T, D) the problem's tree dofs from the trajectory's columns, by joint name (dex-retargeting's dummy free-base
    dofs 0: the file's wrist pose is the base's, those included)."""
    from .world import DUMMY_JOINTS

    tree = problem.tree
    q = np.zeros((hand.num_frames, tree.num_dof))
    for k, name in enumerate(tree.dof_names):
        if name in hand.joint_names:
            q[:, k] = hand.column(name)
        elif name not in DUMMY_JOINTS:
            raise MotionFormatError(f"robot '{hand.robot}': the motion has no column for its joint {name!r}; "
                                    "retarget the motion again with this robot")  # fmt: skip
    return q


def _base_poses(hand) -> np.ndarray:
    """(T, 4, 4) T_world_base from the trajectory's ``wrist_pose`` [x, y, z, qw, qx, qy, qz]."""
    T = np.tile(np.eye(4), (hand.num_frames, 1, 1))
    T[:, :3, :3] = quat_to_matrix(hand.wrist_pose[:, 3:])
    T[:, :3, 3] = hand.wrist_pose[:, :3]
    return T


def interaction_timeline(robot_motion, assets: str | os.PathLike | None = None,
                         progress: Callable[[int], None] | None = None) -> InteractionTimeline:
    """Measure ``robot_motion``'s hands frame by frame (one collision query a frame; ``progress(1)`` after each).
    ``assets``: the robots' asset directory, as for ``retarget``."""
    from .measure import measure_frames, robot_events
    from .pairs import human_contact_mask
    from .refine import BimanualRefiner

    if robot_motion.source_joints is None:
        raise MotionFormatError("the robot motion has no source_joints (the human keypoints): the human's contacts "
                                "cannot be drawn; retarget the motion again")  # fmt: skip
    problems = _problems(robot_motion, assets)
    refiner = BimanualRefiner(problems)
    sides = list(problems)
    T = {s: _base_poses(robot_motion.hands[s]) for s in sides}
    q = {s: _dofs(problems[s], robot_motion.hands[s]) for s in sides}
    measured = measure_frames(refiner, T, q, progress=progress)
    kp = {s: np.asarray(robot_motion.source_joints)[:, ("left", "right").index(s)] for s in sides}
    _, human = human_contact_mask(kp, refiner.pairs, robot_motion.fps)
    return InteractionTimeline(
        fps=float(robot_motion.fps), pairs=tuple((p.kind, p.a, p.b) for p in refiner.pairs), human_events=human,
        robot_events=robot_events(refiner, measured["pair_distance"], robot_motion.fps),
        hand_hand=measured["hand_hand"], finger_finger=measured["self"],
    )  # fmt: skip


def _overlaps(ev, others) -> bool:
    return any(o.a == ev.a and o.b == ev.b and o.start < ev.end and ev.start < o.end for o in others)


def plot_interaction_timeline(timeline: InteractionTimeline, path: str | os.PathLike, title: str = "") -> Path:
    """Draw ``timeline`` to an image (PNG, or the format ``path``'s suffix names), atomically: per pair with any
    event a row, the human's events (grey, upper half) over the robot's (lower half: green where a human event of the
    pair overlaps it, red where none does); below, the deepest penetration per frame, across the hands and within
    one, with #17's 2 mm bound."""
    from handx_robot.motion import atomic_write
    from handx_robot.render import _figure

    tl = timeline
    names = sorted({(e.a, e.b) for e in tl.human_events + tl.robot_events})
    rows = {ab: i for i, ab in enumerate(names)}
    n = max(1, len(rows))
    fig, canvas = _figure(1000, 260 + 24 * n, 100)
    gs = fig.add_gridspec(2, 1, height_ratios=(max(2.0, 0.35 * n), 1.6))
    ax = fig.add_subplot(gs[0])
    for ev in tl.human_events:  # the rows run down (the axis is inverted below): the human's half above
        ax.broken_barh([(ev.start, ev.end - ev.start)], (rows[(ev.a, ev.b)] - 0.42, 0.4), color=HUMAN_COLOUR)
    for ev in tl.robot_events:
        colour = MATCHED_COLOUR if _overlaps(ev, tl.human_events) else UNMATCHED_COLOUR
        ax.broken_barh([(ev.start, ev.end - ev.start)], (rows[(ev.a, ev.b)] + 0.02, 0.4), color=colour)
    duration = len(tl.hand_hand) / tl.fps
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{a} – {b}" for a, b in names], fontsize=8)
    ax.set_xlim(0, max(duration, 1e-3))
    ax.set_ylim(-0.6, n - 0.4)
    ax.invert_yaxis()
    n_unmatched = sum(not _overlaps(e, tl.human_events) for e in tl.robot_events)
    head = f"{title}\n" if title else ""
    ax.set_title(f"{head}contacts: human (grey) over robot (green: the human's too; red: not the human's, "
                 f"{n_unmatched} of {len(tl.robot_events)})" if rows else f"{head}no contact, human or robot",
                 fontsize=9)  # fmt: skip
    ax2 = fig.add_subplot(gs[1], sharex=ax)
    t = np.arange(len(tl.hand_hand)) / tl.fps
    ax2.plot(t, 1e3 * tl.hand_hand, color="#1f77b4", lw=1.2, label="hand-hand")
    ax2.plot(t, 1e3 * tl.finger_finger, color="#ff7f0e", lw=1.2, label="finger-finger (one hand)")
    ax2.axhline(1e3 * PENETRATION_LIMIT_M, color="k", lw=0.8, ls="--", label="2 mm")
    top = max(3.0, 1.1e3 * max(float(tl.hand_hand.max(initial=0.0)), float(tl.finger_finger.max(initial=0.0))))
    ax2.set_ylim(0, top)
    ax2.set_ylabel("penetration (mm)")
    ax2.set_xlabel("time (s)")
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda tmp: canvas.print_figure(tmp, format=fmt))
