"""Offscreen rendering of a :class:`sim.scene.HandScene` to RGB frames and mp4 videos.

OpenGL backend: ``$MUJOCO_GL`` (``egl`` by default, the headless GPU/Mesa path), falling back to
``osmesa`` (pure software) when EGL cannot create a context. The backend must be chosen before PyOpenGL
is first imported, so a process that already rendered with one backend cannot switch: set
``MUJOCO_GL=osmesa`` in the environment to force the fallback. Frames are ``(H, W, 3)`` uint8 RGB.

Cameras: the scene's presets (:data:`sim.scene.CAMERA_PRESETS`) or any camera of the model, by name.
Side-by-side video: the robot on the left, the human skeleton (``source_joints`` of the robot motion,
drawn by :class:`handx_robot.render.SkeletonRenderer`) on the right.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np

from handx_robot.errors import ConfigError, MissingDependencyError

__all__ = ["GL_BACKENDS", "OffscreenRenderer", "VideoWriter", "SideBySide", "default_gl_backend", "has_display", "render_replay"]

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

    def render(self, data: mujoco.MjData, camera: str | int = "front") -> np.ndarray:
        """One frame ``(height, width, 3)`` uint8 of ``data`` (call ``mj_forward`` first) from ``camera``."""
        if self._con is None:
            raise RuntimeError("render() after close()")
        self._gl.make_current()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._cam.fixedcamid = self.camera_id(camera)
        mujoco.mjv_updateScene(self.model, data, self.option, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL, self.scene)
        mujoco.mjr_render(self._rect, self.scene, self._con)
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


class SideBySide:
    """Robot frame | human skeleton frame, same height. ``source_joints (T, 2, 21, 3)`` m, world Z-up."""

    def __init__(self, source_joints: np.ndarray, height: int, width: int | None = None, present: Sequence[bool] | None = None):
        from handx_robot.frames import FRAME_HANDX_YUP, FRAME_WORLD_ZUP, change_frame
        from handx_robot.render import SkeletonRenderer

        sj = np.asarray(source_joints, dtype=np.float32)
        if sj.ndim != 4 or sj.shape[1:] != (2, 21, 3):
            raise ConfigError(f"source_joints must have shape (T, 2, 21, 3), got {sj.shape}")
        self.joints = change_frame(sj, FRAME_WORLD_ZUP, FRAME_HANDX_YUP)
        self.present = (
            np.asarray(present, dtype=bool) if present is not None else np.array([np.any(sj[:, h] != 0) for h in range(2)])
        )
        self.skeleton = SkeletonRenderer(width or height, height, views=("front",))
        self.skeleton.fit(self.joints, self.present)

    def compose(self, robot_frame: np.ndarray, index: int, title: str = "human") -> np.ndarray:
        human = self.skeleton.draw(self.joints[index], self.present, (), title)
        if human.shape[0] != robot_frame.shape[0]:
            raise ConfigError(f"side-by-side heights differ: {robot_frame.shape} vs {human.shape}")
        return np.concatenate([robot_frame, human], axis=1)

    def close(self) -> None:
        self.skeleton.close()


def render_replay(motion, scene, config, path, *, camera: str = "front", width: int = 640, height: int = 480,
                  side_by_side: bool = False, on_frame=None):
    """Replay ``motion`` in ``scene`` (:func:`sim.replay.replay` with ``config``) while writing an mp4 to ``path``.

    side_by_side: put the human skeleton (``motion.source_joints``) next to the robot view.
    on_frame: extra ``(frame_index, scene)`` callback (progress). The file is written atomically:
    a failed replay leaves no video. Returns the :class:`sim.replay.ReplayResult`.
    """
    from handx_robot.motion import atomic_write
    from sim.replay import replay

    out = {}

    def write(tmp: str) -> None:
        renderer = OffscreenRenderer(scene.model, width, height)
        renderer.camera_id(camera)
        writer = VideoWriter(tmp, motion.fps)
        sbs = SideBySide(motion.source_joints, height) if side_by_side else None
        try:

            def each(k: int, sc) -> None:
                frame = renderer.render(sc.data, camera)
                if sbs is not None:
                    frame = sbs.compose(frame, k, f"human  t={k / motion.fps:5.2f} s")
                writer.append(frame)
                if on_frame is not None:
                    on_frame(k, sc)

            out["result"] = replay(motion, scene, config=config, on_frame=each)
        finally:
            writer.close()
            renderer.close()
            if sbs is not None:
                sbs.close()

    atomic_write(path, write)
    return out["result"]
