"""BimanualMotion validation, transforms, and our motion file (handx_robot.motion)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_features import make_motion

from handx_robot.errors import MotionFormatError, MotionValueError
from handx_robot.motion import BimanualMotion, ManoParams, atomic_write, load_motion, save_motion
from handx_robot.readers import check_handedness


def _mano(T: int, seed: int = 0) -> ManoParams:
    rng = np.random.default_rng(seed)
    return ManoParams(rng.normal(0, 0.3, (T, 48)), rng.normal(0, 1, (T, 10)), rng.normal(0, 0.1, (T, 3)))


# -- validation ------------------------------------------------------------------------------
def test_valid_motion_properties():
    m = make_motion(T=31, fps=30.0)
    assert m.num_frames == 31 and m.duration == pytest.approx(1.0)
    assert m.joints.dtype == np.float32 and m.present_sides == ("left", "right")
    np.testing.assert_allclose(m.times[-1], 1.0)
    np.testing.assert_array_equal(m.hand("right"), m.joints[:, 1])
    with pytest.raises(ValueError):
        m.hand("both")


@pytest.mark.parametrize(
    ("joints", "kwargs", "error", "match"),
    [
        (None, {}, MotionFormatError, "missing"),
        (np.zeros((5, 21, 3)), {}, MotionFormatError, r"\(T, 2, 21, 3\)"),
        (np.zeros((5, 2, 20, 3)), {}, MotionFormatError, r"\(T, 2, 21, 3\)"),
        ("one_frame", {}, MotionValueError, "at least 2 frames"),
        ("ok", {"fps": 0.0}, MotionValueError, "fps"),
        ("ok", {"fps": -30.0}, MotionValueError, "fps"),
        ("ok", {"fps": float("nan")}, MotionValueError, "fps"),
        ("ok", {"frame": "camera"}, MotionFormatError, "known frames"),
        ("ok", {"present": [False, False]}, MotionValueError, "no hand"),
        ("ok", {"present": [True]}, MotionFormatError, "present"),
    ],
)
def test_invalid_motions_raise_clear_errors(joints, kwargs, error, match):
    ok = make_motion(T=4).joints
    joints = {"ok": ok, "one_frame": ok[:1]}.get(joints, joints) if isinstance(joints, str) else joints
    with pytest.raises(error, match=match):
        BimanualMotion(joints=joints, source="clip.npz", **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected_with_frame(bad):
    J = make_motion(T=6).joints.copy()
    J[3, 1, 7, 2] = bad
    with pytest.raises(MotionValueError, match=r"clip\.npz.*NaN/inf.*frame 3"):
        BimanualMotion(joints=J, source="clip.npz")


def test_absent_hand_may_hold_nan_and_is_zeroed():
    J = make_motion(T=4).joints.copy()
    J[:, 0] = np.nan
    m = BimanualMotion(joints=J, present=[False, True])
    assert np.all(m.joints[:, 0] == 0.0)


def test_millimetres_are_detected():
    J = make_motion(T=4).joints * 1000.0
    with pytest.raises(MotionValueError, match="--units mm"):
        BimanualMotion(joints=J, source="mm.npy")


# -- transforms -------------------------------------------------------------------------------
def test_trim_keeps_frames_in_range():
    m = make_motion(T=31)
    J = m.joints.copy()
    J[:, :, :, 0] += np.arange(31, dtype=np.float32)[:, None, None] * 0.001
    m = m.replace(joints=J, mano={"right": _mano(31)})
    t = m.trim(0.5, 0.8)
    assert t.num_frames == 10  # frames 15..24
    np.testing.assert_array_equal(t.joints, m.joints[15:25])
    np.testing.assert_array_equal(t.mano["right"].pose, m.mano["right"].pose[15:25])
    assert m.trim(0.9).num_frames == 4
    with pytest.raises(MotionValueError, match="keeps 1 frames"):
        m.trim(0.99, 1.0)


def test_resample_is_exact_for_linear_motion():
    T, fps = 31, 30.0
    m = make_motion(T=T, fps=fps)
    v = np.float32([0.1, -0.05, 0.02])  # m/s
    J = m.joints + (np.arange(T, dtype=np.float32) / fps)[:, None, None, None] * v
    m = m.replace(joints=J)
    up = m.resample(60.0)
    assert up.fps == 60.0 and up.num_frames == 61 and up.duration == pytest.approx(m.duration)
    expected = m.joints[0] + (np.arange(61, dtype=np.float32) / 60.0)[:, None, None, None] * v
    np.testing.assert_allclose(up.joints, expected, atol=1e-6)
    down = m.resample(10.0)
    assert down.num_frames == 11
    np.testing.assert_allclose(down.joints, m.joints[::3], atol=1e-6)
    assert m.resample(30.0) is m
    with pytest.raises(MotionValueError):
        m.resample(0.0)


def test_mirrored_swaps_hands_and_stays_a_valid_pair():
    m = make_motion(T=5)
    m = m.replace(present=np.array([False, True]))
    mm = m.mirrored()
    np.testing.assert_array_equal(mm.present, [True, False])
    np.testing.assert_allclose(mm.joints[:, 0, :, 0], -m.joints[:, 1, :, 0])
    np.testing.assert_allclose(mm.joints[:, 0, :, 1:], m.joints[:, 1, :, 1:])
    check_handedness(mm)  # a mirrored right hand is a proper left hand
    np.testing.assert_array_equal(mm.mirrored().joints, m.joints)


def test_in_frame_round_trip_drops_mano():
    m = make_motion(T=4).replace(mano={"left": _mano(4)})
    z = m.in_frame("world_zup")
    assert z.frame == "world_zup" and z.mano == {}
    np.testing.assert_allclose(z.in_frame("handx_yup").joints, m.joints, atol=1e-6)
    # Y-up height becomes Z-up height
    np.testing.assert_allclose(z.joints[..., 2], m.joints[..., 1], atol=1e-6)


# -- file format ---------------------------------------------------------------------------------
def test_save_load_round_trip_is_lossless(tmp_path):
    rng = np.random.default_rng(0)
    m = make_motion(T=9, fps=24.0)
    J = m.joints + rng.normal(0, 0.001, m.joints.shape).astype(np.float32)
    m = BimanualMotion(joints=J, fps=24.0, text="clap twice — fast ✋", present=[True, True],
                       mano={"left": _mano(9, 1), "right": _mano(9, 2)})  # fmt: skip
    path = save_motion(m, tmp_path / "sub" / "m.npz")
    back = load_motion(path)
    np.testing.assert_array_equal(back.joints, m.joints)
    assert back.fps == 24.0 and back.text == m.text and back.frame == "handx_yup"
    np.testing.assert_array_equal(back.present, m.present)
    for side in ("left", "right"):
        for field in ("pose", "shape", "trans"):
            np.testing.assert_array_equal(getattr(back.mano[side], field), getattr(m.mano[side], field))
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert str(data["format"]) == "handx-robot-motion"
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)


def test_load_motion_errors(tmp_path):
    with pytest.raises(MotionFormatError, match="not found"):
        load_motion(tmp_path / "nope.npz")
    np.savez(tmp_path / "other.npz", positions=np.zeros((3, 2, 21, 3)))
    with pytest.raises(MotionFormatError, match="'joints' is missing.*handx-robot convert"):
        load_motion(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(MotionFormatError, match="not a readable"):
        load_motion(tmp_path / "junk.npz")


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")

    def failing(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "new.npz", failing)
    assert not (tmp_path / "new.npz").exists()


# -- free-form metadata (meta) ----------------------------------------------------------------
_PARSE = {
    "parse": {
        "prompt": "clap twice",
        "steps": [{"left": [{"action": "clap", "count": 2, "start_s": 0.0}]}],
        "unused": ["loudly"],
        "notes": [],
    }
}


def test_meta_defaults_to_empty_and_is_not_written(tmp_path):
    m = make_motion(T=5)
    assert m.meta == {}
    path = save_motion(m, tmp_path / "plain.npz")
    with np.load(path) as data:
        assert "meta" not in data.files  # older readers see the same keys as before
    assert load_motion(path).meta == {}


def test_meta_round_trip(tmp_path):
    m = make_motion(T=5).replace(meta=_PARSE, text="clap twice")
    path = save_motion(m, tmp_path / "clap.npz")
    with np.load(path, allow_pickle=False) as data:
        assert data["meta"].dtype.kind == "U"  # a plain JSON string, no pickle
    back = load_motion(path)
    assert back.meta == _PARSE
    assert back.text == "clap twice"


def test_meta_is_copied_not_shared():
    src = {"a": 1}
    m = make_motion(T=4).replace(meta=src)
    src["a"] = 2
    assert m.meta == {"a": 1}


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        (["not", "a", "dict"], "must be a dict"),
        ({1: "int key"}, "str keys"),
        ({"arr": np.zeros(3)}, "not JSON-serialisable"),
        ({"obj": object()}, "not JSON-serialisable"),
    ],
)
def test_non_json_meta_is_rejected(meta, match):
    with pytest.raises(MotionFormatError, match=rf"clip\.npz.*'meta'.*{match}"):
        BimanualMotion(joints=make_motion(T=4).joints, source="clip.npz", meta=meta)


@pytest.mark.parametrize(
    ("stored", "match"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"), (np.zeros(3), "JSON string")],
)
def test_malformed_meta_in_file_names_file_field_and_fix(tmp_path, stored, match):
    m = make_motion(T=4)
    path = tmp_path / "bad.npz"
    np.savez(path, joints=m.joints, fps=np.array(30.0), meta=np.asarray(stored))
    with pytest.raises(MotionFormatError, match=rf"bad\.npz.*'meta'.*{match}") as info:
        load_motion(path)
    assert "save_motion" in str(info.value)


def test_meta_kept_by_transforms():
    m = make_motion(T=31, fps=30.0).replace(meta=_PARSE)
    assert m.in_frame("world_zup").meta == _PARSE
    assert m.in_frame("world_zup").in_frame(m.frame).meta == _PARSE
    assert m.resample(60.0).meta == _PARSE
    assert m.trim(0.2, 0.8).meta == _PARSE
    assert m.mirrored().meta == _PARSE
    assert m.replace(text="x").meta == _PARSE
