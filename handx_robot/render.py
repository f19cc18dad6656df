"""Skeleton drawing of bimanual keypoints (matplotlib, Agg backend, no display needed).

:class:`SkeletonRenderer` owns one figure and updates its artists per frame, so drawing one frame of
``(2, 21, 3)`` keypoints to an ``(H, W, 3)`` uint8 RGB array takes a few milliseconds (the sim's
side-by-side video reuses it). Views are orthographic projections of the HandX Y-up frame:

========= ================ =====================
view      horizontal axis  vertical axis
========= ================ =====================
front     x                y (up)
side      z                y (up)
top       x                -z
========= ================ =====================

Any other view is a ``(2, 3)`` projection (rows: the horizontal and vertical image axes in the Y-up
frame) given by name in ``projections=`` (the sim's side-by-side video passes the robot camera's
axes, so both panels show the same viewpoint).

Left hand blue, right hand orange (``labels=True`` writes ``left`` / ``right`` under each wrist); contact points (fingertips / palm centres named as in
:mod:`handx_robot.features`) are drawn as red dots.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from handx_robot.errors import ConfigError, MissingDependencyError
from handx_robot.features import PALM_INDICES
from handx_robot.keypoints import FINGER_CHAINS, FINGERS, FINGERTIPS, WRIST
from handx_robot.motion import SIDES, BimanualMotion, atomic_write

__all__ = [
    "VIEWS",
    "HAND_COLOURS",
    "SkeletonRenderer",
    "active_contacts",
    "render_video",
    "plot_contact_timeline",
]

log = logging.getLogger(__name__)

#: view name -> (horizontal axis index, sign, vertical axis index, sign) in the Y-up frame
VIEWS: dict[str, tuple[int, float, int, float]] = {
    "front": (0, 1.0, 1, 1.0),
    "side": (2, 1.0, 1, 1.0),
    "top": (0, 1.0, 2, -1.0),
}
HAND_COLOURS = {"left": "#1f77b4", "right": "#ff7f0e"}
CONTACT_COLOUR = "#d62728"


def _figure(width: int, height: int, dpi: int):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a declared dependency
        raise MissingDependencyError("rendering needs matplotlib: pip install matplotlib") from exc
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    return fig, canvas


def _point(joints: np.ndarray, name: str) -> np.ndarray | None:
    """Position (3,) of a contact participant name in ``joints (2, 21, 3)``."""
    side, _, rest = name.partition("_")
    if side not in SIDES:
        return None
    h = SIDES.index(side)
    if rest == "palm":
        return joints[h, list(PALM_INDICES)].mean(axis=0)
    finger = rest[:-4] if rest.endswith("_tip") else rest
    if finger in FINGERTIPS:
        return joints[h, FINGERTIPS[finger]]
    return None


class SkeletonRenderer:
    """Draws bimanual keypoints to RGB arrays, reusing one matplotlib figure.

    width, height: output size in pixels. views: names from :data:`VIEWS`, one panel each.
    bounds: ``(lo (3,), hi (3,))`` metres in the Y-up frame; set them with :meth:`fit` so the camera
    stays still over a motion (otherwise every frame is framed on its own).
    projections: extra views, name -> ``(2, 3)`` orthographic projection (rows: unit horizontal and
    vertical image axes in the Y-up frame, orthogonal); ``views`` may then name them.
    labels: write each present hand's name (``left`` / ``right``) below its wrist.
    """

    def __init__(
        self,
        width: int = 960,
        height: int = 480,
        views: Sequence[str] = ("front", "side"),
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
        dpi: int = 100,
        projections: dict[str, np.ndarray] | None = None,
        labels: bool = False,
    ) -> None:
        if width < 64 or height < 64:
            raise ConfigError(f"render size must be at least 64x64 pixels, got {width}x{height}")
        self._proj: dict[str, np.ndarray] = {}
        for name, (ih, sh, iv, sv) in VIEWS.items():
            P = np.zeros((2, 3))
            P[0, ih], P[1, iv] = sh, sv
            self._proj[name] = P
        for name, P in (projections or {}).items():
            P = np.asarray(P, dtype=np.float64)
            if P.shape != (2, 3) or not np.allclose(P @ P.T, np.eye(2), atol=1e-5):
                raise ConfigError(
                    f"projection {name!r} must be (2, 3) with orthonormal rows (image right, image up in the "
                    f"Y-up frame), got {P.tolist()}"
                )
            self._proj[name] = P
        unknown = [v for v in views if v not in self._proj]
        if unknown or not views:
            raise ConfigError(f"unknown view(s) {unknown or views}; available: {', '.join(self._proj)}")
        self.width, self.height = int(width), int(height)
        self.views = tuple(views)
        self.fig, self.canvas = _figure(self.width, self.height, dpi)
        self.fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.88, wspace=0.05)
        self.axes = [self.fig.add_subplot(1, len(self.views), i + 1) for i in range(len(self.views))]
        self._bones: list[dict[tuple[int, str], object]] = []
        self._joints: list[dict[int, object]] = []
        self._contacts = []
        self._labels: list[dict[int, object]] = []
        self.labels = bool(labels)
        for ax, view in zip(self.axes, self.views):
            ax.set_aspect("equal", adjustable="box")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(view, fontsize=9)
            bones, dots = {}, {}
            for h, side in enumerate(SIDES):
                for f in FINGERS:
                    (bones[(h, f)],) = ax.plot([], [], "-", color=HAND_COLOURS[side], lw=2)
                (dots[h],) = ax.plot([], [], "o", color=HAND_COLOURS[side], ms=3)
            (contact,) = ax.plot([], [], "o", color=CONTACT_COLOUR, ms=8, alpha=0.8)
            self._labels.append(
                {h: ax.text(0, 0, "", color=HAND_COLOURS[side], fontsize=11, fontweight="bold", ha="center",
                            va="top", visible=False) for h, side in enumerate(SIDES)}
            )  # fmt: skip
            self._bones.append(bones)
            self._joints.append(dots)
            self._contacts.append(contact)
        self._title = self.fig.suptitle("", fontsize=10, y=0.985)
        self.bounds = None
        if bounds is not None:
            self.set_bounds(*bounds)

    def set_bounds(self, lo: np.ndarray, hi: np.ndarray, margin: float = 0.02) -> None:
        """Fix the axes to the box ``[lo, hi]`` (metres, Y-up frame) plus ``margin`` metres."""
        lo = np.asarray(lo, dtype=float) - margin
        hi = np.asarray(hi, dtype=float) + margin
        self.bounds = (lo, hi)
        corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
        for ax, view in zip(self.axes, self.views):
            uv = corners @ self._proj[view].T
            u0, v0 = uv.min(axis=0)
            u1, v1 = uv.max(axis=0)
            if self.labels:  # room for the hand names under the lowest wrist
                v0 -= 0.12 * max(v1 - v0, u1 - u0, 1e-3)
            ax.set_xlim(u0, u1)
            ax.set_ylim(v0, v1)

    def fit(self, joints: np.ndarray, present: Sequence[bool] = (True, True)) -> None:
        """Set bounds from all frames of ``joints (T, 2, 21, 3)`` (present hands only)."""
        pts = np.asarray(joints)[:, np.asarray(present, dtype=bool)].reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts):
            self.set_bounds(pts.min(axis=0), pts.max(axis=0))

    def draw(
        self,
        joints: np.ndarray,
        present: Sequence[bool] = (True, True),
        contacts: Iterable[str] = (),
        title: str = "",
    ) -> np.ndarray:
        """One frame ``(2, 21, 3)`` (metres, Y-up, HandX order) -> ``(height, width, 3)`` uint8 RGB.

        contacts: participant names to highlight (``right_thumb_tip``, ``left_palm``, ...).
        """
        joints = np.asarray(joints, dtype=np.float32)
        if joints.shape != (2, 21, 3):
            raise ConfigError(f"draw() needs keypoints of shape (2, 21, 3), got {joints.shape}")
        present = np.asarray(present, dtype=bool)
        if self.bounds is None:
            pts = joints[present].reshape(-1, 3)
            pts = pts[np.isfinite(pts).all(axis=1)]
            if len(pts):
                self.set_bounds(pts.min(axis=0), pts.max(axis=0))
                self.bounds = None
        cpts = [p for p in (_point(joints, n) for n in contacts) if p is not None]
        cpts = np.array(cpts).reshape(-1, 3)
        for ax_i, view in enumerate(self.views):
            P = self._proj[view]
            ylim = self.axes[ax_i].get_ylim()
            xlim = self.axes[ax_i].get_xlim()
            wrist_u = [float((joints[h, WRIST] @ P.T)[0]) for h in range(2)]
            # hands close on screen (a clap): the screen-left label ends at its wrist, the other starts there
            close = bool(present.all() and abs(wrist_u[0] - wrist_u[1]) < 0.25 * abs(xlim[1] - xlim[0]))
            for h in range(2):
                J = joints[h] @ P.T  # (21, 2) image coordinates
                for f in FINGERS:
                    chain = [WRIST, *FINGER_CHAINS[f]]
                    line = self._bones[ax_i][(h, f)]
                    if present[h]:
                        line.set_data(J[chain, 0], J[chain, 1])
                    else:
                        line.set_data([], [])
                dots = self._joints[ax_i][h]
                dots.set_data((J[:, 0], J[:, 1]) if present[h] else ([], []))
                label = self._labels[ax_i][h]
                show = bool(self.labels and present[h] and np.all(np.isfinite(J)))
                label.set_visible(show)
                if show:
                    gap = 0.03 * abs(ylim[1] - ylim[0])
                    label.set_position((float(J[WRIST, 0]), float(J[:, 1].min()) - gap))
                    label.set_text(SIDES[h])
                    if close:
                        label.set_ha("right" if wrist_u[h] <= wrist_u[1 - h] else "left")
                    else:
                        label.set_ha("center")
            cp = cpts @ P.T
            self._contacts[ax_i].set_data(cp[:, 0], cp[:, 1])
        self._title.set_text(title)
        self.canvas.draw()
        rgba = np.asarray(self.canvas.buffer_rgba())
        return rgba[..., :3].copy()

    def close(self) -> None:
        self.fig.clear()


def active_contacts(events: Sequence, t: float) -> set[str]:
    """Participant names of the events active at time ``t`` seconds (``start <= t < end``)."""
    out: set[str] = set()
    for ev in events:
        if ev.start <= t < ev.end:
            out.update((ev.a, ev.b))
    return out


def render_video(
    motion: BimanualMotion,
    path: str | os.PathLike,
    events: Sequence | None = None,
    width: int = 960,
    height: int = 480,
    views: Sequence[str] = ("front", "side"),
    progress: bool = True,
) -> Path:
    """Render ``motion``'s skeletons to an .mp4 (H.264 via imageio-ffmpeg) at the motion's fps.

    events: contact events to highlight (default: :func:`handx_robot.features.contact_events`).
    Written atomically: on error no file is left at ``path``.
    """
    try:
        import imageio.v2 as imageio
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("video output needs imageio and imageio-ffmpeg") from exc
    from tqdm import tqdm

    from handx_robot.features import contact_events

    if width % 2 or height % 2:
        raise ConfigError(f"video size must be even for H.264 (yuv420p), got {width}x{height}")
    m = motion.in_frame("handx_yup")
    evs = contact_events(m) if events is None else list(events)
    renderer = SkeletonRenderer(width, height, views)
    renderer.fit(m.joints, m.present)
    caption = (m.text[:80] + "…") if len(m.text) > 80 else m.text

    def write(tmp: str) -> None:
        writer = imageio.get_writer(tmp, fps=m.fps, codec="libx264", quality=7, macro_block_size=1, format="FFMPEG")
        try:
            for i in tqdm(range(m.num_frames), disable=not progress, desc="render", unit="frame"):
                t = i / m.fps
                frame = renderer.draw(m.joints[i], m.present, active_contacts(evs, t), f"{caption}  t={t:5.2f} s")
                writer.append_data(frame)
        finally:
            writer.close()

    out = atomic_write(path, write)
    renderer.close()
    log.info("wrote %s (%d frames, %dx%d)", out, m.num_frames, width, height)
    return out


def plot_contact_timeline(
    events: Sequence, duration: float, path: str | os.PathLike, title: str = "contact timeline"
) -> Path:
    """Draw one row per contact pair with a bar per event over ``[0, duration]`` s; save PNG atomically."""
    fig, canvas = _figure(900, 120 + 22 * max(1, len({(e.a, e.b) for e in events})), 100)
    ax = fig.add_subplot(1, 1, 1)
    rows: dict[tuple[str, str], int] = {}
    for ev in sorted(events, key=lambda e: (e.a, e.b)):
        rows.setdefault((ev.a, ev.b), len(rows))
    for ev in events:
        r = rows[(ev.a, ev.b)]
        side = ev.a.split("_")[0]
        colour = CONTACT_COLOUR if ev.kind == "palm_palm" else HAND_COLOURS.get(side, "grey")
        ax.broken_barh([(ev.start, ev.duration)], (r - 0.4, 0.8), color=colour)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{a} – {b}" for a, b in rows] or [])
    ax.set_xlim(0, max(duration, 1e-3))
    ax.set_ylim(-1, max(1, len(rows)))
    ax.set_xlabel("time (s)")
    ax.set_title(title if rows else f"{title}: no contacts")
    fig.tight_layout()
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"

    def write(tmp: str) -> None:
        canvas.print_figure(tmp, format=fmt)

    return atomic_write(path, write)
