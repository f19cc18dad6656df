"""Readers of bimanual / single-hand motion files into :class:`handx_robot.motion.BimanualMotion`.

Formats (:data:`FORMATS`; detected from extension and content when unambiguous):

================ ========================================================================================
name             file
================ ========================================================================================
motion           our ``.npz`` (:func:`handx_robot.motion.save_motion`), lossless
handx-npy        HandX skeleton ``.npy`` ``(T, 2, 21, 3)`` (or ``(T, 42, 3)``), left first, HandX order
handx-npz        HandX ``*_can_pos_*.npz`` collection: one ``(T, 2, 21, 3)`` array per sequence (``key``)
handx-mano-pkl   HandX simulation ``.pkl``: ``{'left': {'pose' (T,48), 'shape' (T,10), 'trans' (T,3)},
                 'right': {...}}`` (needs the MANO model files, ``mano_dir``)
handx-mano-npz   HandX ``*_mano.npz``: ``left_pose``, ``left_shape``, ``left_trans``, ``right_...``;
                 collections with prefixed keys (``NAME/left_pose`` or ``NAME_left_pose``) or a leading
                 sequence axis ``(N, T, 48)`` are selected with ``key``
mediapipe-npy    one hand ``(T, 21, 3)`` in MediaPipe order (``hand`` says which)
mediapipe-npz    ``.npz`` with key ``joints`` ``(T, 21, 3)`` MediaPipe order (e.g. DexMV files)
mediapipe-pkl    pickled list of ``(21, 3)`` arrays (dex-retargeting examples; also under a ``joints`` or
                 ``data`` key of a dict) or a ``(T, 21, 3)`` array
================ ========================================================================================

Every pickle goes through :func:`handx_robot.safe_pickle.safe_load_pickle` and every ``.npy``/``.npz``
is read with ``allow_pickle=False``: no file can run code.

Options applied to every format, in this order: ``units`` (``m``, ``cm``, ``mm``) scale the keypoints;
``frame`` names the input's frame and the keypoints are rotated into HandX's Y-up frame:

* ``yup`` (HandX canonical, default), ``zup`` (robot world, Z up: (x, y, z) -> (x, z, -y)),
* ``camera`` (OpenCV camera: x right, y down, z forward, e.g. DexMV / MediaPipe world landmarks:
  (x, y, z) -> (x, -y, -z), a 180° turn about x; the hand then faces the viewer of a front view).

All are proper rotations, so handedness is kept. (MediaPipe labels hands as seen in a mirrored selfie
image, so its "Left" is often the user's right hand: the handedness check below catches that mix-up.) ``fps`` declares the input's frame rate where the
file stores none (30 by default). Then the motion is validated (:class:`BimanualMotion`: shapes, NaN,
>= 2 frames, likely millimetres) and each hand's handedness is checked (:func:`handedness_score`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from handx_robot.errors import ConfigError, MotionFormatError, MotionValueError
from handx_robot.frames import R_yup_zup
from handx_robot.handedness import check_handedness, handedness_score
from handx_robot.keypoints import mediapipe_to_handx
from handx_robot.motion import SIDES, BimanualMotion, ManoParams, load_motion
from handx_robot.safe_pickle import safe_load_pickle

__all__ = [
    "FORMATS",
    "INPUT_FRAMES",
    "UNITS",
    "read_motion",
    "detect_format",
    "sequence_keys",
    "handedness_score",
    "check_handedness",
]

log = logging.getLogger(__name__)

FORMATS: dict[str, str] = {
    "motion": "handx-robot motion .npz (save_motion)",
    "handx-npy": "HandX skeleton .npy (T, 2, 21, 3), left first, HandX order",
    "handx-npz": "HandX *_can_pos_*.npz collection of (T, 2, 21, 3) arrays (select with --key)",
    "handx-mano-pkl": "HandX simulation .pkl {'left'|'right': {'pose','shape','trans'}} (needs --mano-dir)",
    "handx-mano-npz": "HandX *_mano.npz with left_pose/left_shape/left_trans/right_* (needs --mano-dir)",
    "mediapipe-npy": "single hand (T, 21, 3) .npy, MediaPipe order (needs --hand)",
    "mediapipe-npz": ".npz with key 'joints' (T, 21, 3), MediaPipe order (needs --hand)",
    "mediapipe-pkl": "pickled list of (21, 3) arrays or a (T, 21, 3) array, MediaPipe order (needs --hand)",
}
SINGLE_HAND_FORMATS = ("mediapipe-npy", "mediapipe-npz", "mediapipe-pkl")

#: input frame name -> rotation R_yup_input (points: p_yup = R @ p_input)
INPUT_FRAMES: dict[str, np.ndarray] = {
    "yup": np.eye(3),
    "zup": R_yup_zup,
    "camera": np.diag([1.0, -1.0, -1.0]),
}
_FRAME_ALIASES = {"handx_yup": "yup", "world_zup": "zup", "opencv": "camera", "cam": "camera"}
UNITS: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001}
#: A hand smaller than this (max keypoint distance) is not in metres.
MIN_HAND_SPAN_M = 0.03
_MANO_KEYS = ("pose", "shape", "trans")


# -- detection ----------------------------------------------------------------------------
def _choices() -> str:
    return "; ".join(f"{k}: {v}" for k, v in FORMATS.items())


def _npz_files(path: Path) -> tuple[list[str], dict[str, tuple | None]]:
    """Array names and shapes of an ``.npz``, read from the .npy headers only (no data is loaded).

    Object arrays (which would need pickle) get shape ``None`` and are never loaded.
    """
    try:
        names, shapes = [], {}
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename[: -len(".npy")]
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                names.append(name)
                shapes[name] = None if dtype.hasobject else tuple(shape)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise MotionFormatError(f"{path}: not a readable .npz file ({exc})") from exc
    return names, shapes


def _is_handx_shape(shape) -> bool:
    return shape is not None and len(shape) in (3, 4) and (shape[1:] == (2, 21, 3) or shape[1:] == (42, 3))


def _is_single_shape(shape) -> bool:
    return shape is not None and len(shape) == 3 and shape[1:] == (21, 3)


def _mano_prefixes(names: list[str]) -> list[str]:
    """Sequence prefixes of MANO npz keys: '' for flat ``left_pose``; ``NAME/`` or ``NAME_`` otherwise."""
    prefixes: list[str] = []
    for n in names:
        for side in SIDES:
            suffix = f"{side}_pose"
            if n.endswith(suffix):
                pre = n[: -len(suffix)]
                if (pre == "" or pre[-1] in "/_") and pre not in prefixes:
                    prefixes.append(pre)
    return prefixes


def detect_format(path: str | os.PathLike) -> str:
    """Name in :data:`FORMATS` of the file at ``path``, from its extension and content."""
    path = Path(path)
    if not path.is_file():
        raise MotionFormatError(f"{path}: file not found")
    ext = path.suffix.lower()
    if ext == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise MotionFormatError(f"{path}: .npy holds Python objects (pickled); refusing to load it ({exc})") from exc
        except OSError as exc:
            raise MotionFormatError(f"{path}: not a readable .npy file ({exc})") from exc
        if _is_handx_shape(arr.shape):
            return "handx-npy"
        if _is_single_shape(arr.shape):
            return "mediapipe-npy"
        raise MotionFormatError(
            f"{path}: array of shape {arr.shape} is neither a HandX skeleton (T, 2, 21, 3) nor a single hand "
            "(T, 21, 3); reshape it, or pass --format. Formats: " + _choices()
        )
    if ext == ".npz":
        names, shapes = _npz_files(path)
        if "format" in names or ("joints" in names and _is_handx_shape(shapes.get("joints")) and "fps" in names):
            return "motion"
        if _mano_prefixes(names):
            return "handx-mano-npz"
        if "joints" in names and _is_single_shape(shapes["joints"]):
            return "mediapipe-npz"
        if any(_is_handx_shape(s) for s in shapes.values()):
            return "handx-npz"
        listing = ", ".join(f"{n} {shapes[n]}" for n in names[:12])
        raise MotionFormatError(
            f"{path}: cannot tell the format of this .npz (arrays: {listing}); pass --format. Formats: " + _choices()
        )
    if ext in (".pkl", ".pickle"):
        obj = safe_load_pickle(path)
        if isinstance(obj, dict) and any(isinstance(obj.get(s), dict) and "pose" in obj[s] for s in SIDES):
            return "handx-mano-pkl"
        if isinstance(obj, dict):
            obj = obj.get("joints", obj.get("data", obj))
        if isinstance(obj, (list, tuple)) and obj and all(np.shape(x) == (21, 3) for x in obj):
            return "mediapipe-pkl"
        if isinstance(obj, np.ndarray) and _is_single_shape(obj.shape):
            return "mediapipe-pkl"
        raise MotionFormatError(
            f"{path}: cannot tell the format of this pickle (holds {type(obj).__name__}); pass --format. "
            "Formats: " + _choices()
        )
    raise MotionFormatError(f"{path}: unknown extension {ext!r}; expected .npy, .npz or .pkl. Formats: " + _choices())


def sequence_keys(path: str | os.PathLike, format: str | None = None) -> list[str | None]:  # noqa: A002
    """The sequences a file holds, as ``key`` values for :func:`read_motion`: the array names of a HandX
    ``*_can_pos_*.npz`` collection, the prefixes (or indices along a leading sequence axis) of a MANO
    ``.npz`` collection, and ``[None]`` for a file that holds one motion. Reads headers only, no data."""
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise ConfigError(f"{path}: unknown format {fmt!r}; formats: {_choices()}")
    if fmt == "handx-npz":
        names, shapes = _npz_files(path)
        return [n for n in names if _is_handx_shape(shapes[n])] or [None]
    if fmt == "handx-mano-npz":
        names, shapes = _npz_files(path)
        prefixes = _mano_prefixes(names)
        if prefixes != [""]:
            return [p.rstrip("/_") for p in prefixes]
        stacked = [shapes[f"{s}_pose"] for s in SIDES if len(shapes.get(f"{s}_pose") or ()) == 3]
        return [str(i) for i in range(max(sh[0] for sh in stacked))] if stacked else [None]
    return [None]


# -- per-format readers: return (joints (T,2,21,3), present, fps or None, text, mano) ---------
def _bimanual(arr: np.ndarray, src: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise MotionFormatError(f"{src}: field '{field}' must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[1:] == (42, 3):
        arr = arr.reshape(arr.shape[0], 2, 21, 3)
    if arr.ndim != 4 or arr.shape[1:] != (2, 21, 3):
        raise MotionFormatError(
            f"{src}: field '{field}' must have shape (T, 2, 21, 3) (frames, left/right, 21 HandX keypoints, xyz), "
            f"got {arr.shape}"
        )
    arr = arr.astype(np.float32)
    # a hand that is all zeros (or all NaN) carries no data
    present = np.array([bool(np.any(np.nan_to_num(arr[:, h], nan=0.0) != 0)) for h in range(2)])
    if not present.any():
        raise MotionValueError(f"{src}: field '{field}' has no hand data (both hands are all zeros/NaN)")
    return arr, present


def _single(arr, src: str, field: str, hand: str | None, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    if hand not in SIDES:
        raise ConfigError(
            f"{src}: format {fmt} holds one hand and does not say which; pass --hand left or --hand right "
            f"(got {hand!r})"
        )
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise MotionFormatError(f"{src}: field '{field}' must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[1:] != (21, 3):
        raise MotionFormatError(
            f"{src}: field '{field}' must have shape (T, 21, 3) (frames, 21 MediaPipe keypoints, xyz), got {arr.shape}"
        )
    joints = np.zeros((arr.shape[0], 2, 21, 3), dtype=np.float32)
    joints[:, SIDES.index(hand)] = mediapipe_to_handx(arr.astype(np.float32))
    present = np.array([s == hand for s in SIDES])
    return joints, present


def _select_key(names: list[str], key: str | int | None, src: str, what: str) -> str:
    if key is None:
        if len(names) == 1:
            return names[0]
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise ConfigError(f"{src}: holds {len(names)} {what} ({shown}); pass --key NAME or --key INDEX")
    if str(key) in names:
        return str(key)
    if re.fullmatch(r"-?\d+", str(key)):
        i = int(key)
        if -len(names) <= i < len(names):
            return names[i]
        raise ConfigError(f"{src}: --key {key} is out of range: {len(names)} {what} (0..{len(names) - 1})")
    shown = ", ".join(names[:20])
    raise ConfigError(f"{src}: --key {key!r} not found; available {what}: {shown}")


def _read_handx_npz(path: Path, key) -> tuple[np.ndarray, np.ndarray, str]:
    names, shapes = _npz_files(path)
    seqs = [n for n in names if _is_handx_shape(shapes[n])]
    if not seqs:
        raise MotionFormatError(f"{path}: no (T, 2, 21, 3) array in this .npz (arrays: {shapes})")
    name = _select_key(seqs, key, str(path), "sequences")
    with np.load(path, allow_pickle=False) as data:
        arr = data[name]
    joints, present = _bimanual(arr, str(path), name)
    return joints, present, name


def _mano_from_dict(d: dict, src: str, where: str) -> ManoParams:
    missing = [k for k in _MANO_KEYS if k not in d]
    if missing:
        raise MotionFormatError(f"{src}: {where} lacks MANO field(s) {missing} (needs pose (T,48), shape (T,10), trans (T,3))")
    pose = np.asarray(d["pose"])
    if pose.ndim == 3 and pose.shape[1:] == (16, 3):
        pose = pose.reshape(len(pose), 48)
    try:
        return ManoParams(pose, d["shape"], d["trans"])
    except MotionFormatError as exc:
        raise MotionFormatError(f"{src}: {where}: {exc}") from exc
    except MotionValueError as exc:
        raise MotionValueError(f"{src}: {where}: {exc}") from exc


def _read_mano_pkl(path: Path) -> dict[str, ManoParams]:
    obj = safe_load_pickle(path)
    if not isinstance(obj, dict):
        raise MotionFormatError(f"{path}: a HandX MANO .pkl holds a dict with 'left'/'right', got {type(obj).__name__}")
    mano = {s: _mano_from_dict(obj[s], str(path), f"hand '{s}'") for s in SIDES if isinstance(obj.get(s), dict)}
    if not mano:
        raise MotionValueError(f"{path}: no hand in this MANO file (keys: {sorted(map(str, obj))}; expected 'left'/'right')")
    return mano


def _read_mano_npz(path: Path, key) -> tuple[dict[str, ManoParams], str]:
    names, shapes = _npz_files(path)
    prefixes = _mano_prefixes(names)
    with np.load(path, allow_pickle=False) as data:
        if prefixes == [""]:
            pre, label = "", ""
            stacked = any(len(shapes.get(f"{s}_pose") or ()) == 3 for s in SIDES)
            if stacked:  # (N, T, 48): a collection along axis 0
                n = max(shapes[f"{s}_pose"][0] for s in SIDES if f"{s}_pose" in names)
                idx = int(_select_key([str(i) for i in range(n)], key, str(path), "sequences"))
                label = str(idx)
                get = lambda k: data[k][idx]  # noqa: E731
            else:
                get = lambda k: data[k]  # noqa: E731
        else:
            shown = [p.rstrip("/_") for p in prefixes]
            label = _select_key(shown, key, str(path), "sequences")
            pre = prefixes[shown.index(label)]
            get = lambda k: data[k]  # noqa: E731
        mano = {}
        for s in SIDES:
            if f"{pre}{s}_pose" in names:
                fields = {k: get(f"{pre}{s}_{k}") for k in _MANO_KEYS if f"{pre}{s}_{k}" in names}
                mano[s] = _mano_from_dict(fields, str(path), f"hand '{s}'")
    if not mano:
        raise MotionValueError(f"{path}: no hand in this MANO file")
    return mano, label


def _read_mediapipe_pkl(path: Path):
    obj = safe_load_pickle(path)
    if isinstance(obj, dict):
        obj = obj.get("joints", obj.get("data", obj))
    if isinstance(obj, (list, tuple)):
        if not obj:
            raise MotionValueError(f"{path}: the pickled list of keypoints is empty")
        shapes = {np.shape(x) for x in obj}
        if shapes != {(21, 3)}:
            raise MotionFormatError(f"{path}: every list item must be a (21, 3) array, found shapes {sorted(shapes)}")
        return np.stack([np.asarray(x, dtype=np.float32) for x in obj])
    if isinstance(obj, np.ndarray):
        return obj
    raise MotionFormatError(f"{path}: expected a list of (21, 3) arrays or a (T, 21, 3) array, got {type(obj).__name__}")


# -- entry point -------------------------------------------------------------------------------
def _input_frame(frame: str | None) -> str:
    f = _FRAME_ALIASES.get(frame, frame) if frame else "yup"
    if f not in INPUT_FRAMES:
        raise ConfigError(f"--frame {frame!r} is not known; choose one of: {', '.join(INPUT_FRAMES)}")
    return f


def read_motion(
    path: str | os.PathLike,
    format: str | None = None,  # noqa: A002 - the documented name
    hand: str | None = None,
    fps: float | None = None,
    frame: str | None = None,
    units: str = "m",
    mano_dir: str | os.PathLike | None = None,
    key: str | int | None = None,
    swap_hands: bool = False,
    check_hands: bool = True,
    fill_gaps: float = 0.0,
) -> BimanualMotion:
    """Read any supported file (see :data:`FORMATS`) into a validated :class:`BimanualMotion` (HandX Y-up).

    hand:  for single-hand formats, which hand it is (required); for bimanual ones, keep only this hand.
    fps:   the input's frame rate where the file stores none (default 30).
    frame: the input's frame (``yup``, ``zup``, ``camera``); units: ``m``, ``cm`` or ``mm``.
    key:   sequence name or index in collections. swap_hands: exchange left and right (axis 1).
    check_hands: run :func:`check_handedness`.
    fill_gaps: interpolate missing frames of a present hand (NaN/inf or all-zero keypoints, as trackers
           write them) linearly over gaps of at most this many seconds (gaps at the start or end hold the
           nearest valid frame); 0 = any missing frame is an error.
    """
    path = Path(path)
    fmt = _check_read_arguments(path, format, units, hand, fps)
    in_frame = _input_frame(frame)
    raw = _read_raw(path, fmt, hand, key, mano_dir, units)
    if fmt == "motion":
        in_frame = _check_motion_file_arguments(path, raw, frame, in_frame, units, fps)
    joints, present, mano = _to_handx_frame(path, fmt, raw, in_frame, units, hand, swap_hands)
    source = f"{path}[{raw.label}]" if raw.label else str(path)
    joints = _fill_gaps(joints, present, fill_gaps, raw.fps or fps or 30.0, source)
    motion = BimanualMotion(
        joints=joints, fps=raw.fps or fps or 30.0, text=raw.text, present=present, frame="handx_yup",
        mano=mano, source=source, meta=raw.meta,
    )  # fmt: skip
    span = _min_hand_span(motion)
    if span < MIN_HAND_SPAN_M:
        raise MotionValueError(
            f"{source}: hand span is only {span:.4f} m (max keypoint distance within one hand); a human hand spans "
            f"~0.15-0.25 m, so the units are likely wrong (--units {units} was used; the keypoints must end up in metres)"
        )
    if check_hands:
        check_handedness(motion)
    if fmt != "motion" or format is not None:
        log.info("%s: read as %s, %d frames at %g fps, hands: %s", source, fmt, motion.num_frames, motion.fps,
                 ", ".join(motion.present_sides))
    return motion


@dataclasses.dataclass
class _Raw:
    """What a reader found in a file, before frames, units and hands are applied: ``joints``
    (T, 2, 21, 3) in the file's own units and frame, ``present (2,)``, the file's ``fps`` (None when
    it stores none), ``text``, MANO ``mano`` per side, the sequence ``label`` in a collection, and for
    our own motion files the file's ``frame`` and ``meta``."""

    joints: np.ndarray
    present: np.ndarray
    fps: float | None = None
    text: str = ""
    mano: dict = dataclasses.field(default_factory=dict)
    label: str = ""
    frame: str = ""
    meta: dict = dataclasses.field(default_factory=dict)


def _check_read_arguments(path: Path, format: str | None, units: str, hand: str | None, fps: float | None) -> str:  # noqa: A002
    """The input's format, after checking the file exists and the arguments are known."""
    if not path.is_file():
        raise MotionFormatError(f"{path}: file not found")
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise MotionFormatError(f"{path}: unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    if units not in UNITS:
        raise ConfigError(f"--units {units!r} is not known; choose one of: {', '.join(UNITS)}")
    if hand is not None and hand not in SIDES:
        raise ConfigError(f"--hand must be 'left' or 'right', got {hand!r}")
    if fps is not None and (not np.isfinite(fps) or fps <= 0):
        raise MotionValueError(f"{path}: --fps must be > 0, got {fps}")
    return fmt


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise MotionFormatError(f"{path}: .npy holds Python objects (pickled); refusing to load it") from exc


def _read_raw(path: Path, fmt: str, hand: str | None, key, mano_dir, units: str) -> _Raw:
    """Read the file as its format says (MANO parameters through the licensed MANO model)."""
    src = str(path)
    if fmt == "motion":
        m = load_motion(path)
        stated = m.frame
        if m.frame != "handx_yup":
            m = m.in_frame("handx_yup")
        return _Raw(m.joints, m.present, m.fps, m.text, dict(m.mano), frame=stated, meta=dict(m.meta))
    if fmt == "handx-npy":
        return _Raw(*_bimanual(_load_npy(path), src, "array"))
    if fmt == "handx-npz":
        joints, present, label = _read_handx_npz(path, key)
        return _Raw(joints, present, label=label)
    if fmt.startswith("handx-mano"):
        if units != "m":
            raise ConfigError(f"{path}: MANO parameters are in metres by definition; --units {units} does not apply")
        mano, label = (_read_mano_pkl(path), "") if fmt == "handx-mano-pkl" else _read_mano_npz(path, key)
        from handx_robot.mano import mano_keypoints

        joints, present = mano_keypoints(mano, mano_dir, what=src)
        return _Raw(joints, present, mano=mano, label=label)
    if fmt == "mediapipe-npy":
        return _Raw(*_single(_load_npy(path), src, "array", hand, fmt))
    if fmt == "mediapipe-npz":
        names, _ = _npz_files(path)
        if "joints" not in names:
            raise MotionFormatError(f"{path}: field 'joints' is missing (found keys: {names})")
        with np.load(path, allow_pickle=False) as data:
            arr = data["joints"]
        return _Raw(*_single(arr, src, "joints", hand, fmt))
    return _Raw(*_single(_read_mediapipe_pkl(path), src, "joints", hand, fmt))  # mediapipe-pkl


def _check_motion_file_arguments(path: Path, raw: _Raw, frame, in_frame: str, units: str, fps) -> str:
    """Our own motion files state frame, units and fps: the arguments may not contradict them."""
    if frame is not None and in_frame != {"handx_yup": "yup", "world_zup": "zup"}[raw.frame]:
        raise ConfigError(f"{path}: this motion file states its frame ({raw.frame}); --frame {frame} does not apply")
    if units != "m":
        raise ConfigError(f"{path}: motion files are in metres; --units {units} does not apply")
    if fps is not None and abs(fps - raw.fps) > 1e-9:
        raise ConfigError(f"{path}: the motion file stores fps {raw.fps:g}; --fps {fps:g} would relabel its timing "
                          "(resample instead with `convert --resample FPS`)")
    return "yup"


def _to_handx_frame(path: Path, fmt: str, raw: _Raw, in_frame: str, units: str, hand: str | None, swap_hands: bool):
    """(joints (T, 2, 21, 3) float32 metres in the HandX Y-up frame, present (2,), mano): units and
    frame applied (MANO parameters dropped where they no longer match), hands swapped or selected."""
    joints = np.asarray(raw.joints, dtype=np.float32)
    present, mano = raw.present, raw.mano
    if units != "m":
        joints = joints * np.float32(UNITS[units])
        mano = {}
    if in_frame != "yup":
        joints = (joints.astype(np.float64) @ INPUT_FRAMES[in_frame].T).astype(np.float32)
        if mano:
            log.info("%s: MANO parameters dropped (they are in the %s input frame)", path, in_frame)
        mano = {}
    if swap_hands:
        joints = joints[:, ::-1].copy()
        present = np.asarray(present)[::-1].copy()
        mano = {("left" if s == "right" else "right"): p for s, p in mano.items()}
    if hand is not None and fmt not in SINGLE_HAND_FORMATS:
        h = SIDES.index(hand)
        if not present[h]:
            raise MotionValueError(f"{path}: --hand {hand}: this file has no {hand} hand data (present: "
                                   f"{', '.join(s for s, p in zip(SIDES, present) if p)})")
        present = np.array([i == h for i in range(2)])
        mano = {s: p for s, p in mano.items() if s == hand}
    return joints, present, mano


def _fill_gaps(joints: np.ndarray, present, max_gap_s: float, fps: float, source: str) -> np.ndarray:
    """Interpolate missing frames (non-finite or all-zero keypoints) of present hands over short gaps."""
    if not np.isfinite(max_gap_s) or max_gap_s < 0:
        raise ConfigError(f"--fill-gaps must be >= 0 seconds, got {max_gap_s}")
    out = joints
    for h, side in enumerate(SIDES):
        if not present[h]:
            continue
        hand = joints[:, h]
        missing = ~np.isfinite(hand).all(axis=(1, 2)) | (np.nan_to_num(hand) == 0).all(axis=(1, 2))
        if not missing.any():
            continue
        m = np.concatenate([[False], missing, [False]])
        edges = np.flatnonzero(m[1:] != m[:-1])
        starts, ends = edges[0::2], edges[1::2]
        longest = int((ends - starts).max())
        max_frames = int(np.floor(max_gap_s * fps + 1e-9))
        if longest > max_frames or (~missing).sum() < 2:
            raise MotionValueError(
                f"{source}: the {side} hand has missing keypoints (NaN/inf or all zeros) in {int(missing.sum())} "
                f"frames (first at frame {int(starts[0])}, longest gap {longest} frames = {longest / fps:.2f} s); "
                "interpolate gaps of up to N seconds with --fill-gaps N, or clean the input"
            )
        if out is joints:
            out = joints.copy()
        valid = np.flatnonzero(~missing)
        flat = hand[valid].reshape(len(valid), -1).astype(np.float64)
        gaps = np.flatnonzero(missing)
        filled = np.stack([np.interp(gaps, valid, flat[:, k]) for k in range(flat.shape[1])], axis=1)
        out[gaps, h] = filled.reshape(len(gaps), 21, 3).astype(np.float32)
        log.info("%s: interpolated %d missing frames of the %s hand (longest gap %d frames)", source, len(gaps), side, longest)
    return out


def _min_hand_span(motion: BimanualMotion) -> float:
    J = motion.joints[:: max(1, motion.num_frames // 64)]
    spans = [float(np.linalg.norm(J[:, h].max(axis=1) - J[:, h].min(axis=1), axis=-1).max())
             for h in range(2) if motion.present[h]]  # fmt: skip
    return min(spans)

