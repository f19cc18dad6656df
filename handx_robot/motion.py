"""The bimanual human motion type and its file format.

``BimanualMotion.joints``: ``(T, 2, 21, 3)`` float32, metres, in frame ``frame``
(``handx_yup`` by default); axis 1 = (left, right); axis 2 in HandX order
(:mod:`handx_robot.keypoints`). ``fps`` frames per second (HandX default 30).

Our motion file (``.npz``, the interchange format of the toolkit) holds:

============ ================= ==========================================
key          shape / type      meaning
============ ================= ==========================================
joints       (T, 2, 21, 3) f4  keypoints, metres, HandX order
fps          () float          frames per second
text         () str            caption / prompt ('' when unknown)
present      (2,) bool         which hands carry data (left, right)
frame        () str            frame name (``handx_yup`` or ``world_zup``)
format       () str            ``handx-robot-motion``
version      () int            file format version
{s}_pose     (T, 48) f4        MANO axis-angle, optional, s in left/right
{s}_shape    (T, 10) f4        MANO betas, optional
{s}_trans    (T, 3) f4         MANO translation, metres, optional
meta         () str            JSON object of ``BimanualMotion.meta``, optional
                               (written only when non-empty; older readers ignore it)
============ ================= ==========================================
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from handx_robot.errors import MotionFormatError, MotionValueError
from handx_robot.frames import FRAME_HANDX_YUP, KNOWN_FRAMES, change_frame

__all__ = [
    "SIDES",
    "ManoParams",
    "BimanualMotion",
    "MOTION_FORMAT",
    "MOTION_FORMAT_VERSION",
    "save_motion",
    "load_motion",
    "atomic_write",
]

SIDES: tuple[str, str] = ("left", "right")
MOTION_FORMAT = "handx-robot-motion"
MOTION_FORMAT_VERSION = 1
#: A hand wider than this (max pairwise keypoint distance) is not in metres.
MAX_HAND_SPAN_M = 0.3


@dataclasses.dataclass(frozen=True)
class ManoParams:
    """MANO parameters of one hand (smplx MANO, ``use_pca=False``, ``flat_hand_mean=False``).

    pose:  (T, 48) float32, axis-angle, radians: global orient (3) + 15 joints (45).
    shape: (T, 10) float32, betas.
    trans: (T, 3) float32, metres.
    """

    pose: np.ndarray
    shape: np.ndarray
    trans: np.ndarray

    def __post_init__(self) -> None:
        for name, width in (("pose", 48), ("shape", 10), ("trans", 3)):
            value = getattr(self, name)
            if value is None:
                raise MotionFormatError(f"MANO field '{name}' is missing")
            arr = np.asarray(value, dtype=np.float32)
            if arr.ndim == 1 and name == "shape" and arr.shape[0] == 10:
                arr = np.broadcast_to(arr, (len(self.pose), 10)).copy()
            if arr.ndim != 2 or arr.shape[1] != width:
                raise MotionFormatError(
                    f"MANO field '{name}' must have shape (T, {width}), got {arr.shape}"
                )
            if not np.all(np.isfinite(arr)):
                bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
                raise MotionValueError(f"MANO field '{name}' has NaN/inf at frame {bad}")
            object.__setattr__(self, name, arr)
        if not (len(self.pose) == len(self.shape) == len(self.trans)):
            raise MotionFormatError(
                f"MANO fields disagree on frame count: pose {len(self.pose)}, "
                f"shape {len(self.shape)}, trans {len(self.trans)}"
            )

    def __len__(self) -> int:
        return len(self.pose)

    def slice(self, index: slice | np.ndarray) -> ManoParams:
        return ManoParams(self.pose[index], self.shape[index], self.trans[index])


def _check_finite(joints: np.ndarray, present: np.ndarray, source: str) -> None:
    bad = ~np.isfinite(joints[:, present])
    if bad.any():
        t = int(np.argwhere(bad)[0, 0])
        raise MotionValueError(
            f"{source}: field 'joints' has NaN/inf values (first at frame {t}); "
            "clean or interpolate the input before use"
        )


@dataclasses.dataclass(frozen=True)
class BimanualMotion:
    """A bimanual human hand motion.

    joints:  (T, 2, 21, 3) float32, metres, frame ``frame``; axis 1 = (left, right), HandX order.
             A hand that is not present holds zeros.
    fps:     frames per second (> 0).
    text:    caption or prompt ('' when unknown).
    present: (2,) bool, which hands carry data (left, right).
    frame:   frame name, one of :data:`handx_robot.frames.KNOWN_FRAMES`.
    mano:    optional MANO parameters per side (``{'left': ManoParams, ...}``).
    source:  where the motion came from (file path or generator), for messages.
    meta:    free-form JSON metadata, e.g. ``meta['parse']`` of the text generator (what it understood
             of the prompt). A dict with str keys that :func:`json.dumps` accepts; saved with the motion
             and kept by every transform (:meth:`replace`, :meth:`in_frame`, :meth:`trim`, ...).
    """

    joints: np.ndarray
    fps: float = 30.0
    text: str = ""
    present: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(2, dtype=bool))
    frame: str = FRAME_HANDX_YUP
    mano: dict[str, ManoParams] = dataclasses.field(default_factory=dict)
    source: str = "<memory>"
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.source
        if self.joints is None:
            raise MotionFormatError(f"{src}: field 'joints' is missing")
        joints = np.asarray(self.joints, dtype=np.float32)
        if joints.ndim != 4 or joints.shape[1:] != (2, 21, 3):
            raise MotionFormatError(
                f"{src}: field 'joints' must have shape (T, 2, 21, 3) (frames, left/right, "
                f"21 HandX keypoints, xyz), got {joints.shape}"
            )
        if joints.shape[0] < 2:
            raise MotionValueError(f"{src}: a motion needs at least 2 frames, got {joints.shape[0]}")
        present = np.asarray(self.present, dtype=bool).reshape(-1)
        if present.shape != (2,):
            raise MotionFormatError(f"{src}: field 'present' must have shape (2,), got {present.shape}")
        if not present.any():
            raise MotionValueError(f"{src}: no hand is present (field 'present' is all False)")
        fps = float(self.fps)
        if not np.isfinite(fps) or fps <= 0:
            raise MotionValueError(f"{src}: field 'fps' must be > 0, got {self.fps}")
        if self.frame not in KNOWN_FRAMES:
            raise MotionFormatError(
                f"{src}: field 'frame' is {self.frame!r}; known frames: {', '.join(KNOWN_FRAMES)}"
            )
        _check_finite(joints, present, src)
        span = _hand_span(joints, present)
        if span > MAX_HAND_SPAN_M:
            raise MotionValueError(
                f"{src}: hand span is {span:.1f} (max keypoint distance within one hand); "
                f"a human hand spans < {MAX_HAND_SPAN_M} m, so the input is likely in millimetres: "
                "convert it with --units mm"
            )
        mano = dict(self.mano or {})
        for side, params in mano.items():
            if side not in SIDES:
                raise MotionFormatError(f"{src}: MANO side {side!r} is not one of {SIDES}")
            if len(params) != joints.shape[0]:
                raise MotionFormatError(
                    f"{src}: MANO '{side}' has {len(params)} frames, joints have {joints.shape[0]}"
                )
        joints = joints.copy()
        joints[:, ~present] = 0.0
        object.__setattr__(self, "joints", joints)
        object.__setattr__(self, "present", present)
        object.__setattr__(self, "fps", fps)
        object.__setattr__(self, "text", str(self.text))
        object.__setattr__(self, "mano", mano)
        object.__setattr__(self, "meta", _check_meta(self.meta, src))

    # -- basic properties -------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    @property
    def times(self) -> np.ndarray:
        """(T,) float64 seconds."""
        return np.arange(self.num_frames) / self.fps

    @property
    def present_sides(self) -> tuple[str, ...]:
        return tuple(s for s, p in zip(SIDES, self.present) if p)

    def hand(self, side: str) -> np.ndarray:
        """(T, 21, 3) keypoints of ``side`` ('left' or 'right')."""
        return self.joints[:, SIDES.index(_side(side))]

    # -- transforms ---------------------------------------------------------
    def replace(self, **changes) -> BimanualMotion:
        return dataclasses.replace(self, **changes)

    def in_frame(self, frame: str) -> BimanualMotion:
        """The same motion expressed in ``frame`` (MANO parameters are dropped if the frame changes)."""
        if frame == self.frame:
            return self
        return self.replace(joints=change_frame(self.joints, self.frame, frame), frame=frame, mano={})

    def trim(self, start: float = 0.0, end: float | None = None) -> BimanualMotion:
        """Frames with ``start <= t <= end`` seconds."""
        t = self.times
        end = self.duration if end is None else end
        keep = (t >= start - 1e-9) & (t <= end + 1e-9)
        if keep.sum() < 2:
            raise MotionValueError(
                f"{self.source}: trimming to [{start}, {end}] s keeps {int(keep.sum())} frames; need >= 2"
            )
        return self.replace(joints=self.joints[keep], mano={s: m.slice(keep) for s, m in self.mano.items()})

    def resample(self, fps: float) -> BimanualMotion:
        """Linear resampling of the keypoints to ``fps`` (MANO parameters are dropped unless fps is unchanged)."""
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise MotionValueError(f"target fps must be > 0, got {fps}")
        if abs(fps - self.fps) < 1e-9:
            return self
        n_new = max(2, int(round(self.duration * fps)) + 1)
        t_new = np.arange(n_new) / fps
        t_new = np.minimum(t_new, self.duration)
        x = t_new * self.fps
        i0 = np.clip(np.floor(x).astype(np.int64), 0, self.num_frames - 1)
        i1 = np.clip(i0 + 1, 0, self.num_frames - 1)
        w = (x - i0).astype(np.float32)[:, None, None, None]
        joints = (1.0 - w) * self.joints[i0] + w * self.joints[i1]
        return self.replace(joints=joints, fps=fps, mano={})

    def mirrored(self) -> BimanualMotion:
        """Mirror image across the frame's sagittal plane (x -> -x), swapping left and right.

        A left hand mirrored is a right hand, so the result is again a valid bimanual motion.
        """
        joints = self.joints[:, ::-1].copy()
        joints[..., 0] *= -1.0
        return self.replace(joints=joints, present=self.present[::-1].copy(), mano={})


def _check_meta(meta, source: str) -> dict:
    """A shallow copy of ``meta`` after checking it is a JSON object (dict with str keys, JSON values)."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise MotionFormatError(
            f"{source}: field 'meta' must be a dict (JSON object), got {type(meta).__name__}"
        )
    bad_keys = [k for k in meta if not isinstance(k, str)]
    if bad_keys:
        raise MotionFormatError(
            f"{source}: field 'meta' must have str keys, got {bad_keys[0]!r} ({type(bad_keys[0]).__name__}); "
            "convert the keys with str()"
        )
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise MotionFormatError(
            f"{source}: field 'meta' is not JSON-serialisable ({exc}); use plain dicts, lists, str, "
            "int, float, bool and None (convert numpy values with .tolist() / float())"
        ) from exc
    return dict(meta)


def _side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return side


def _hand_span(joints: np.ndarray, present: np.ndarray) -> float:
    """Max over frames (subsampled) and present hands of the max keypoint distance within a hand."""
    step = max(1, joints.shape[0] // 64)
    sub = joints[::step][:, present]  # (t, h, 21, 3)
    lo, hi = sub.min(axis=2), sub.max(axis=2)
    return float(np.linalg.norm(hi - lo, axis=-1).max()) if sub.size else 0.0


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` then rename to ``path``, so a failure leaves no half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_motion(motion: BimanualMotion, path: str | os.PathLike) -> Path:
    """Write ``motion`` to our ``.npz`` motion file (atomically)."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(MOTION_FORMAT),
        "version": np.array(MOTION_FORMAT_VERSION),
        "joints": motion.joints.astype(np.float32),
        "fps": np.array(motion.fps, dtype=np.float64),
        "text": np.array(motion.text),
        "present": motion.present.astype(bool),
        "frame": np.array(motion.frame),
    }
    for side, params in motion.mano.items():
        arrays[f"{side}_pose"] = params.pose
        arrays[f"{side}_shape"] = params.shape
        arrays[f"{side}_trans"] = params.trans
    if motion.meta:  # only when non-empty: files without metadata stay byte-compatible with older writers
        arrays["meta"] = np.array(json.dumps(motion.meta))

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return atomic_write(path, write)


def load_motion(path: str | os.PathLike) -> BimanualMotion:
    """Read our ``.npz`` motion file (no pickles are ever loaded)."""
    path = Path(path)
    if not path.exists():
        raise MotionFormatError(f"{path}: file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # zipfile/format errors
        raise MotionFormatError(f"{path}: not a readable .npz file ({exc})") from exc
    with data:
        keys = set(data.files)
        if "joints" not in keys:
            raise MotionFormatError(
                f"{path}: field 'joints' is missing (found keys: {sorted(keys)}); "
                "is this a handx-robot motion file? Convert other formats with `handx-robot convert`"
            )
        mano = {}
        for side in SIDES:
            if f"{side}_pose" in keys:
                mano[side] = ManoParams(
                    data[f"{side}_pose"], data[f"{side}_shape"], data[f"{side}_trans"]
                )
        meta = _load_meta(data, keys, path)
        return BimanualMotion(
            joints=data["joints"],
            fps=float(data["fps"]) if "fps" in keys else 30.0,
            text=str(data["text"]) if "text" in keys else "",
            present=data["present"] if "present" in keys else np.ones(2, dtype=bool),
            frame=str(data["frame"]) if "frame" in keys else FRAME_HANDX_YUP,
            mano=mano,
            source=str(path),
            meta=meta,
        )


def _load_meta(data, keys: set[str], path: Path) -> dict:
    """The ``meta`` field of an opened motion file: ``{}`` when absent, else its JSON object."""
    if "meta" not in keys:
        return {}
    raw = data["meta"]
    if raw.ndim != 0 or raw.dtype.kind not in "US":
        raise MotionFormatError(
            f"{path}: field 'meta' must be a JSON string (0-d str array), got dtype {raw.dtype} shape "
            f"{raw.shape}; rewrite the file with handx_robot.motion.save_motion"
        )
    text = raw.item()
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MotionFormatError(
            f"{path}: field 'meta' is not valid JSON ({exc}); rewrite the file with "
            "handx_robot.motion.save_motion, or delete the 'meta' entry to drop the metadata"
        ) from exc
    if not isinstance(meta, dict):
        raise MotionFormatError(
            f"{path}: field 'meta' must be a JSON object, got {type(meta).__name__}; rewrite the file with "
            "handx_robot.motion.save_motion, or delete the 'meta' entry to drop the metadata"
        )
    return meta
