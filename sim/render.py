"""Offscreen rendering of a :class:`handx_robot.sim.scene.HandScene` to RGB frames and mp4 videos.

OpenGL backend: ``$MUJOCO_GL`` (``egl`` by default, the headless GPU/Mesa path), falling back to
``osmesa`` (pure software) when EGL cannot create a context. The backend must be chosen before PyOpenGL
is first imported, so a process that already rendered with one backend cannot switch: set
``MUJOCO_GL=osmesa`` in the environment to force the fallback. Frames are ``(H, W, 3)`` uint8 RGB.

Cameras: the scene's presets (:data:`handx_robot.sim.scene.CAMERA_PRESETS`) or any camera of the model, by name.
Side-by-side video: the robot on the left, the human skeleton (``source_joints`` of the robot motion,
drawn by :class:`handx_robot.render.SkeletonRenderer` from the robot camera's viewpoint) on the right;
both panels label the hands ``left`` (blue) / ``right`` (orange).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np

from handx_robot.errors import ConfigError, MissingDependencyError

__all__ = [
    "GL_BACKENDS",
    "LABEL_RGB",
    "OffscreenRenderer",
    "VideoWriter",
    "SideBySide",
    "camera_rotation",
    "default_gl_backend",
    "hand_labels",
    "has_display",
    "render_replay",
]

log = logging.getLogger(__name__)

GL_BACKENDS: tuple[str, ...] = ("egl", "osmesa")


def default_gl_backend() -> str:
    """``$MUJOCO_GL`` when it names an offscreen backend, else ``egl``."""
    env = os.environ.get("MUJOCO_GL", "").lower().strip()
    return env if env in GL_BACKENDS else "egl"


def has_display() -> bool:
    """Whether an X11 or Wayland display is available (for the interactive viewer)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _gl_context(backend: str, width: int, height: int):
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        raise ConfigError(f"unknown OpenGL backend {backend!r}; allowed: {', '.join(GL_BACKENDS)}")
    ctx = GLContext(width, height)
    ctx.make_current()
    return ctx


class OffscreenRenderer:
    """Renders a model's scenes offscreen at ``width x height`` pixels.

    The size must fit the model's offscreen buffer (``SceneConfig.width/height``). ``backend``: ``egl`` or
    ``osmesa`` (default :func:`default_gl_backend`, then the other one if it fails).
    """

    def __init__(self, model: mujoco.MjModel, width: int = 640, height: int = 480, backend: str | None = None):
        off_w, off_h = model.vis.global_.offwidth, model.vis.global_.offheight
        if not (16 <= width <= off_w and 16 <= height <= off_h):
            raise ConfigError(
                f"render size {width}x{height} does not fit the scene's offscreen buffer {off_w}x{off_h}; "
                "build the scene with SceneConfig(width=..., height=...) at least that large"
            )
        self.model, self.width, self.height = model, int(width), int(height)
        first = backend or default_gl_backend()
        order = [first] + [b for b in GL_BACKENDS if b != first]
        errors = []
        self._gl = None
        for b in order:
            try:
                self._gl = _gl_context(b, self.width, self.height)
                self.backend = b
                break
            except ConfigError:
                raise
            except Exception as exc:  # backend libraries missing or no device: try the next one
                errors.append(f"{b}: {type(exc).__name__}: {exc}")
                log.debug("OpenGL backend %s failed: %s", b, exc)
        if self._gl is None:
            raise MissingDependencyError(
                "no offscreen OpenGL backend works (" + "; ".join(errors) + "). Install EGL (apt: libegl1, "
                "libgl1-mesa-dri) or OSMesa (apt: libosmesa6) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa"
            )
        if errors:
            log.warning("rendering with %s (fallback): %s", self.backend, "; ".join(errors))
        self._con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        self.scene = mujoco.MjvScene(model, maxgeom=max(2000, 4 * model.ngeom))
        self.option = mujoco.MjvOption()
        self._cam = mujoco.MjvCamera()
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)
        self._rgb = np.empty((self.height, self.width, 3), dtype=np.uint8)

    def camera_id(self, camera: str | int) -> int:
        """Camera index by name (or index); :class:`ConfigError` lists the cameras for an unknown one."""
        names = [self.model.camera(i).name for i in range(self.model.ncam)]
        if isinstance(camera, (int, np.integer)) and 0 <= int(camera) < self.model.ncam:
            return int(camera)
        if camera in names:
            return names.index(camera)
        raise ConfigError(f"unknown camera {camera!r}; cameras: {', '.join(names) or '(none)'}")

    def project(self, data: mujoco.MjData, camera: str | int, points: np.ndarray) -> np.ndarray:
        """Pixel-relative image coordinates ``(n, 2)`` of world points ``(n, 3)`` (m) seen by ``camera``
        in ``data``: ``(0, 0)`` bottom-left, ``(1, 1)`` top-right (pinhole with the camera's ``fovy``
        and this renderer's aspect); points behind the camera get NaN."""
        cid = self.camera_id(camera)
        pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
        R = data.cam_xmat[cid].reshape(3, 3)
        pc = (pts - data.cam_xpos[cid]) @ R  # camera frame: x right, y up, looking along -z
        depth = -pc[:, 2]
        tan_v = np.tan(np.radians(self.model.cam_fovy[cid]) / 2)
        tan_h = tan_v * self.width / self.height
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([0.5 + 0.5 * pc[:, 0] / (depth * tan_h), 0.5 + 0.5 * pc[:, 1] / (depth * tan_v)], axis=1)
        uv[depth <= 1e-6] = np.nan
        return uv

    def render(
        self,
        data: mujoco.MjData,
        camera: str | int = "front",
        labels: Sequence[tuple[str, Sequence[float], Sequence[float]]] = (),
    ) -> np.ndarray:
        """One frame ``(height, width, 3)`` uint8 of ``data`` (call ``mj_forward`` first) from ``camera``.

        labels: ``(text, (u, v), (r, g, b))`` drawn over the image at pixel-relative ``(u, v)``
        (``(0, 0)`` bottom-left; see :meth:`project`), colour components in [0, 1]."""
        if self._con is None:
            raise RuntimeError("render() after close()")
        self._gl.make_current()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._cam.fixedcamid = self.camera_id(camera)
        mujoco.mjv_updateScene(self.model, data, self.option, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL, self.scene)
        mujoco.mjr_render(self._rect, self.scene, self._con)
        for text, (u, v), rgb in labels:
            if np.isfinite(u) and np.isfinite(v):
                mujoco.mjr_text(mujoco.mjtFont.mjFONT_BIG, text, self._con, float(u), float(v), *map(float, rgb))
        mujoco.mjr_readPixels(self._rgb, None, self._rect, self._con)
        return np.flipud(self._rgb).copy()

    def close(self) -> None:
        if self._con is not None:
            self._gl.make_current()
            self._con.free()
            self._con = None
        if self._gl is not None:
            self._gl.free()
            self._gl = None

    def __enter__(self) -> OffscreenRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """mp4 (H.264 via imageio-ffmpeg) writer of RGB frames; use :func:`handx_robot.motion.atomic_write`
    around it so a failed render leaves no file."""

    def __init__(self, path: str | os.PathLike, fps: float, quality: int = 7):
        try:
            import imageio.v2 as imageio
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise MissingDependencyError("video output needs imageio and imageio-ffmpeg (pip install)") from exc
        self.path = Path(path)
        self._w = imageio.get_writer(
            str(self.path), fps=float(fps), codec="libx264", quality=quality, macro_block_size=1, format="FFMPEG"
        )
        self.frames = 0

    def append(self, frame: np.ndarray) -> None:
        self._w.append_data(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        self._w.close()


#: contact event kinds (:mod:`handx_robot.features`) as the side-by-side title names them
_EVENT_NAMES = {"palm_palm": "palms (clap)", "inter_tip_tip": "fingertips L-R"}


def _event_name(ev) -> str:
    """``right thumb-index pinch``, ``palms (clap)``, ... for a :class:`handx_robot.features.ContactEvent`."""
    if ev.kind == "pinch":
        side, a = ev.a.split("_")[:2]
        b = ev.b.split("_")[1]
        return f"{side} {a}-{b} pinch"
    return _EVENT_NAMES.get(ev.kind, ev.kind)


class SideBySide:
    """Robot frame | human skeleton frame, same height. ``source_joints (T, 2, 21, 3)`` m, world Z-up.

    R_world_cam: (3, 3) orientation of the robot view's camera (columns: image right, image up, toward
    the viewer; MuJoCo's ``cam_xmat``). The skeleton is then drawn from that same viewpoint
    (orthographic projection onto the camera's image plane), so each hand is on the same side of
    both panels; without it the skeleton uses the ``front`` view of :data:`handx_robot.render.VIEWS`.
    Hands are labelled ``left`` / ``right`` (HandX hand 0 / 1). With ``fps``, the human's contacts
    (:func:`handx_robot.features.contact_events`: pinches, palm-palm, ...) are drawn as red dots while
    they last.
    """

    def __init__(
        self,
        source_joints: np.ndarray,
        height: int,
        width: int | None = None,
        present: Sequence[bool] | None = None,
        R_world_cam: np.ndarray | None = None,
        fps: float | None = None,
    ):
        from handx_robot.frames import FRAME_HANDX_YUP, FRAME_WORLD_ZUP, R_zup_yup, change_frame
        from handx_robot.render import SkeletonRenderer

        sj = np.asarray(source_joints, dtype=np.float32)
        if sj.ndim != 4 or sj.shape[1:] != (2, 21, 3):
            raise ConfigError(f"source_joints must have shape (T, 2, 21, 3), got {sj.shape}")
        self.joints = change_frame(sj, FRAME_WORLD_ZUP, FRAME_HANDX_YUP)
        self.present = (
            np.asarray(present, dtype=bool) if present is not None else np.array([np.any(sj[:, h] != 0) for h in range(2)])
        )
        projections = None
        view = "front"
        if R_world_cam is not None:
            R = np.asarray(R_world_cam, dtype=np.float64)
            if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-5):
                raise ConfigError(f"SideBySide: R_world_cam must be a (3, 3) rotation, got {R.tolist()}")
            # Y-up point -> world (R_zup_yup) -> camera image axes (x right, y up)
            projections = {"robot camera view": R[:, :2].T @ R_zup_yup}
            view = "robot camera view"
        self.skeleton = SkeletonRenderer(width or height, height, views=(view,), projections=projections, labels=True)
        self.skeleton.fit(self.joints, self.present)
        self.fps = fps
        self.events: list = []
        if fps is not None and self.present.any() and len(self.joints):
            from handx_robot.features import contact_events
            from handx_robot.motion import BimanualMotion

            self.events = contact_events(BimanualMotion(self.joints, fps=float(fps), present=self.present))

    def compose(self, robot_frame: np.ndarray, index: int, title: str = "human") -> np.ndarray:
        from handx_robot.render import active_contacts

        contacts: set[str] = set()
        if self.events:
            t = index / self.fps
            contacts = active_contacts(self.events, t)
            kinds = sorted({_event_name(e) for e in self.events if e.start <= t < e.end})
            if kinds:
                title = f"{title}   contact: {', '.join(kinds)}"
        human = self.skeleton.draw(self.joints[index], self.present, sorted(contacts), title)
        if human.shape[0] != robot_frame.shape[0]:
            raise ConfigError(f"side-by-side heights differ: {robot_frame.shape} vs {human.shape}")
        return np.concatenate([robot_frame, human], axis=1)

    def close(self) -> None:
        self.skeleton.close()


#: label colours of the robot view, as the skeleton's hand colours (left blue, right orange), RGB 0-1
LABEL_RGB = {"left": (0.12, 0.47, 0.71), "right": (1.0, 0.5, 0.05)}


def hand_labels(renderer: OffscreenRenderer, scene, camera: str | int) -> list[tuple[str, tuple[float, float], tuple]]:
    """``left`` / ``right`` labels for :meth:`OffscreenRenderer.render`, just under each hand (its geoms
    projected into ``camera``), kept inside the image. When the two hands are close on screen (a clap)
    the screen-left hand's label ends at its hand's centre and the other one starts there, so the
    labels never overlap."""
    char_w = 15.0 / renderer.width  # mjFONT_BIG at the renderer's font scale: ~15 px per character
    found = []
    for side in scene.sides:
        uv = renderer.project(scene.data, camera, scene.hand_geom_positions(side))
        uv = uv[np.all(np.isfinite(uv), axis=1)]
        if len(uv):
            found.append((float(np.median(uv[:, 0])), float(uv[:, 1].min()), side))
    found.sort()
    close = len(found) == 2 and found[1][0] - found[0][0] < 2.5 * char_w * 5
    out = []
    for k, (u, v, side) in enumerate(found):
        w = char_w * len(side)
        if close:
            u0 = u - w - 0.5 * char_w if k == 0 else u + 0.5 * char_w
        else:
            u0 = u - w / 2
        u0 = float(np.clip(u0, 0.01, 0.99 - w))
        v0 = float(np.clip(v - 0.11, 0.02, 0.93))  # text is drawn above (u0, v0), ~6 % of the height
        out.append((side, (u0, v0), LABEL_RGB.get(side, (1.0, 1.0, 1.0))))
    return out


def camera_rotation(model: mujoco.MjModel, camera: str | int) -> np.ndarray:
    """(3, 3) world orientation of a camera of ``model`` in its default pose (``cam_xmat``)."""
    names = [model.camera(i).name for i in range(model.ncam)]
    if isinstance(camera, str):
        if camera not in names:
            raise ConfigError(f"unknown camera {camera!r}; cameras: {', '.join(names) or '(none)'}")
        camera = names.index(camera)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)
    return data.cam_xmat[int(camera)].reshape(3, 3).copy()


def render_replay(motion, scene, config, path, *, camera: str = "front", width: int = 640, height: int = 480,
                  side_by_side: bool = False, on_frame=None, label_hands: bool = True):
    """Replay ``motion`` in ``scene`` (:func:`handx_robot.sim.replay.replay` with ``config``) while writing an mp4 to ``path``.

    side_by_side: put the human skeleton (``motion.source_joints``) next to the robot view, drawn from
    the robot camera's viewpoint (:class:`SideBySide`).
    label_hands: write ``left`` / ``right`` under each robot hand (:func:`hand_labels`).
    on_frame: extra ``(frame_index, scene)`` callback (progress). The file is written atomically:
    a failed replay leaves no video. Returns the :class:`handx_robot.sim.replay.ReplayResult`.
    """
    from handx_robot.sim.replay import replay

    return record_replay(
        path, scene.model, motion.fps, lambda each: replay(motion, scene, config=config, on_frame=each),
        camera=camera, width=width, height=height, source_joints=motion.source_joints if side_by_side else None,
        label_hands=label_hands, on_frame=on_frame,
    )  # fmt: skip


def record_replay(path, model, fps: float, play, *, camera: str, width: int, height: int, source_joints=None,
                  t0: float = 0.0, label_hands: bool = True, on_frame=None):
    """``play(each)`` (a replay calling ``each(frame_index, scene)`` per frame; returns its result) while
    each frame is rendered from ``camera`` into an mp4 at ``path`` (atomically: a failed replay leaves no
    file). source_joints: (T, 2, 21, 3) the human skeleton drawn next to the robot (:class:`SideBySide`),
    from the camera's viewpoint once the replay has framed its cameras; ``t0``: its clock's start (s)."""
    from handx_robot.motion import atomic_write

    out = {}

    def write(tmp: str) -> None:
        renderer = OffscreenRenderer(model, width, height)
        renderer.camera_id(camera)
        writer = VideoWriter(tmp, fps)
        sbs = None
        try:

            def each(k: int, sc) -> None:
                nonlocal sbs
                if sbs is None and source_joints is not None:  # the cameras are framed once the replay starts
                    sbs = SideBySide(source_joints, height, R_world_cam=camera_rotation(sc.model, camera), fps=fps)
                frame = renderer.render(sc.data, camera, hand_labels(renderer, sc, camera) if label_hands else ())
                if sbs is not None:
                    frame = sbs.compose(frame, k, f"human  t={t0 + k / fps:5.2f} s")
                writer.append(frame)
                if on_frame is not None:
                    on_frame(k, sc)

            out["result"] = play(each)
        finally:
            writer.close()
            renderer.close()
            if sbs is not None:
                sbs.close()

    atomic_write(path, write)
    return out["result"]
