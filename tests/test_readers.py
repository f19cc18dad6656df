"""Readers of every input format, the restricted unpickler, and bad-input errors (handx_robot.readers)."""

from __future__ import annotations

import os
import pickle
import subprocess

import numpy as np
import pytest
from test_features import make_hand, make_motion

from handx_robot.errors import ConfigError, HandXError, MotionFormatError, MotionValueError, UnsafePickleError
from handx_robot.frames import R_zup_yup
from handx_robot.keypoints import handx_to_mediapipe
from handx_robot.motion import BimanualMotion, save_motion
from handx_robot.readers import FORMATS, detect_format, handedness_score, read_motion
from handx_robot.safe_pickle import safe_load_pickle, safe_loads_pickle


@pytest.fixture
def motion() -> BimanualMotion:
    return make_motion(T=12)


def _right_mediapipe(T: int = 10) -> np.ndarray:
    """(T, 21, 3) right hand in MediaPipe order, metres, Y-up."""
    hands = np.stack([make_hand(0.3 + 0.02 * i, "right", t=(0.1, 1.0, 0.0)) for i in range(T)])
    return handx_to_mediapipe(hands)


# -- HandX skeletons --------------------------------------------------------------------------
def test_handx_npy_round_trip(tmp_path, motion):
    p = tmp_path / "seq.npy"
    np.save(p, motion.joints)
    assert detect_format(p) == "handx-npy"
    m = read_motion(p)
    np.testing.assert_array_equal(m.joints, motion.joints)
    assert m.fps == 30.0 and m.frame == "handx_yup" and m.present.all()
    assert read_motion(p, fps=20.0).fps == 20.0
    np.save(tmp_path / "flat.npy", motion.joints.reshape(12, 42, 3))  # (T, 42, 3): left then right
    np.testing.assert_array_equal(read_motion(tmp_path / "flat.npy").joints, motion.joints)


def test_handx_npz_collection_selects_by_key_and_index(tmp_path, motion):
    p = tmp_path / "train_can_pos_all.npz"
    other = motion.joints + np.float32(0.5)
    np.savez(p, seq_a=motion.joints, seq_b=other, meta=np.arange(3))
    assert detect_format(p) == "handx-npz"
    np.testing.assert_array_equal(read_motion(p, key="seq_b").joints, other)
    np.testing.assert_array_equal(read_motion(p, key="0").joints, motion.joints)
    np.testing.assert_array_equal(read_motion(p, key=1).joints, other)
    assert read_motion(p, key="seq_b").source.endswith("[seq_b]")
    with pytest.raises(ConfigError, match=r"2 sequences \(seq_a, seq_b\).*--key"):
        read_motion(p)
    with pytest.raises(ConfigError, match="not found; available sequences: seq_a, seq_b"):
        read_motion(p, key="seq_c")
    with pytest.raises(ConfigError, match="out of range"):
        read_motion(p, key="7")


def test_missing_hand_is_marked_absent(tmp_path, motion):
    J = motion.joints.copy()
    J[:, 0] = 0.0
    np.save(tmp_path / "right_only.npy", J)
    m = read_motion(tmp_path / "right_only.npy")
    np.testing.assert_array_equal(m.present, [False, True])
    with pytest.raises(MotionValueError, match="no left hand data"):
        read_motion(tmp_path / "right_only.npy", hand="left")
    only_right = read_motion(tmp_path / "right_only.npy", hand="right")
    assert only_right.present_sides == ("right",)
    np.save(tmp_path / "empty.npy", np.zeros_like(J))
    with pytest.raises(MotionValueError, match="no hand data"):
        read_motion(tmp_path / "empty.npy")


# -- single-hand MediaPipe-order inputs ----------------------------------------------------------
def test_mediapipe_npy_npz_pkl_give_the_same_handx_motion(tmp_path):
    mp = _right_mediapipe()
    np.save(tmp_path / "a.npy", mp)
    np.savez(tmp_path / "b.npz", joints=mp, extra=np.zeros(3))
    with open(tmp_path / "c.pkl", "wb") as f:
        pickle.dump([frame for frame in mp], f)  # dex-retargeting stores a list of (21, 3) arrays
    results = []
    for name, fmt in (("a.npy", "mediapipe-npy"), ("b.npz", "mediapipe-npz"), ("c.pkl", "mediapipe-pkl")):
        assert detect_format(tmp_path / name) == fmt
        m = read_motion(tmp_path / name, hand="right")
        np.testing.assert_array_equal(m.present, [False, True])
        results.append(m.joints)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    # HandX order: thumb tip (MediaPipe 4) lands at HandX 16, middle MCP (MediaPipe 9) at HandX 4
    np.testing.assert_array_equal(results[0][:, 1, 16], mp[:, 4])
    np.testing.assert_array_equal(results[0][:, 1, 4], mp[:, 9])


def test_single_hand_needs_hand_option(tmp_path):
    np.save(tmp_path / "a.npy", _right_mediapipe())
    with pytest.raises(ConfigError, match="--hand left or --hand right"):
        read_motion(tmp_path / "a.npy")


def test_left_right_mix_up_is_detected(tmp_path):
    np.save(tmp_path / "a.npy", _right_mediapipe())
    with pytest.raises(MotionValueError, match="labelled 'left' looks like a right hand.*--hand right"):
        read_motion(tmp_path / "a.npy", hand="left")
    assert read_motion(tmp_path / "a.npy", hand="left", check_hands=False).present_sides == ("left",)
    # bimanual with the hand axis swapped: both flagged, --swap-hands fixes it
    m = make_motion(T=8)
    np.save(tmp_path / "swapped.npy", m.joints[:, ::-1])
    with pytest.raises(MotionValueError, match="--swap-hands"):
        read_motion(tmp_path / "swapped.npy")
    np.testing.assert_array_equal(read_motion(tmp_path / "swapped.npy", swap_hands=True).joints, m.joints)


def test_handedness_score_is_robust_to_pose_and_rotation():
    from test_features import random_rotation

    rng = np.random.default_rng(5)
    for curl in (0.0, 0.3, 1.0):
        R = random_rotation(rng)
        right = make_hand(curl, "right", R)[None].repeat(3, axis=0)
        left = make_hand(curl, "left", R)[None].repeat(3, axis=0)
        assert handedness_score(right, "right")[0] == 1.0
        assert handedness_score(right, "left")[0] == -1.0
        assert handedness_score(left, "left")[0] == 1.0


# -- units, frames, values -----------------------------------------------------------------------
def test_millimetres_detected_and_converted(tmp_path, motion):
    np.save(tmp_path / "mm.npy", motion.joints * 1000.0)
    with pytest.raises(MotionValueError, match="likely in millimetres.*--units mm"):
        read_motion(tmp_path / "mm.npy")
    m = read_motion(tmp_path / "mm.npy", units="mm")
    np.testing.assert_allclose(m.joints, motion.joints, atol=1e-6)
    np.save(tmp_path / "m.npy", motion.joints)
    with pytest.raises(MotionValueError, match="units are likely wrong"):
        read_motion(tmp_path / "m.npy", units="mm")
    with pytest.raises(ConfigError, match="--units"):
        read_motion(tmp_path / "m.npy", units="inch")


def test_input_frames_are_rotated_to_yup(tmp_path, motion):
    zup = motion.joints @ R_zup_yup.T.astype(np.float32)
    np.save(tmp_path / "z.npy", zup)
    np.testing.assert_allclose(read_motion(tmp_path / "z.npy", frame="zup").joints, motion.joints, atol=1e-6)
    cam = motion.joints * np.float32([1, -1, -1])
    np.save(tmp_path / "c.npy", cam)
    np.testing.assert_allclose(read_motion(tmp_path / "c.npy", frame="camera").joints, motion.joints, atol=1e-6)
    with pytest.raises(ConfigError, match="yup, zup, camera"):
        read_motion(tmp_path / "c.npy", frame="xdown")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_input_is_rejected(tmp_path, motion, bad):
    J = motion.joints.copy()
    J[5, 1, 3, 0] = bad
    np.save(tmp_path / "nan.npy", J)
    with pytest.raises(MotionValueError, match="NaN/inf.*frame 5"):
        read_motion(tmp_path / "nan.npy")


def test_shape_frames_fps_errors(tmp_path, motion):
    np.save(tmp_path / "one.npy", motion.joints[:1])
    with pytest.raises(MotionValueError, match="at least 2 frames"):
        read_motion(tmp_path / "one.npy")
    np.save(tmp_path / "odd.npy", np.zeros((5, 3, 21, 3), np.float32))
    with pytest.raises(MotionFormatError, match=r"\(5, 3, 21, 3\).*--format"):
        read_motion(tmp_path / "odd.npy")
    np.save(tmp_path / "ok.npy", motion.joints)
    with pytest.raises(MotionValueError, match="--fps must be > 0"):
        read_motion(tmp_path / "ok.npy", fps=0.0)
    with pytest.raises(MotionFormatError, match=r"\(T, 21, 3\)"):
        read_motion(tmp_path / "ok.npy", format="mediapipe-npy", hand="right")


def test_unknown_formats_list_the_choices(tmp_path):
    (tmp_path / "x.csv").write_text("1,2,3\n")
    with pytest.raises(MotionFormatError, match="unknown extension.*handx-npy.*mediapipe-pkl"):
        read_motion(tmp_path / "x.csv")
    np.savez(tmp_path / "y.npz", foo=np.zeros((3, 4)))
    with pytest.raises(MotionFormatError, match=r"cannot tell.*foo \(3, 4\).*--format"):
        read_motion(tmp_path / "y.npz")
    with pytest.raises(MotionFormatError, match="unknown format 'bvh'"):
        read_motion(tmp_path / "y.npz", format="bvh")
    with pytest.raises(MotionFormatError, match="not found"):
        read_motion(tmp_path / "missing.npy")
    assert set(FORMATS) >= {"motion", "handx-npy", "handx-npz", "handx-mano-pkl", "handx-mano-npz"}


def test_our_motion_file_reads_losslessly(tmp_path, motion):
    m = motion.replace(text="wave", fps=24.0)
    save_motion(m, tmp_path / "m.npz")
    assert detect_format(tmp_path / "m.npz") == "motion"
    back = read_motion(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.joints, m.joints)
    assert back.fps == 24.0 and back.text == "wave"
    with pytest.raises(ConfigError, match="stores fps 24"):
        read_motion(tmp_path / "m.npz", fps=30.0)
    with pytest.raises(ConfigError, match="metres"):
        read_motion(tmp_path / "m.npz", units="mm")


# -- pickles never run code -------------------------------------------------------------------------
class _Payload:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _PopenPayload:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (subprocess.Popen, (["touch", self.target],))


class _EvalPayload:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (eval, (f"open({self.target!r}, 'w')",))


@pytest.mark.parametrize("payload", [_Payload, _PopenPayload, _EvalPayload])
@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload, protocol):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pkl"
    # hidden inside an otherwise valid MediaPipe-style list
    frames = [np.zeros((21, 3), np.float32), payload(str(marker))]
    p.write_bytes(pickle.dumps(frames, protocol=protocol))
    with pytest.raises(UnsafePickleError, match="refusing to load pickle") as info:
        safe_load_pickle(p)
    assert "evil.pkl" in str(info.value)
    with pytest.raises(UnsafePickleError):
        read_motion(p, hand="right")
    with pytest.raises(UnsafePickleError):
        read_motion(p, format="mediapipe-pkl", hand="right")
    assert not marker.exists()
    assert isinstance(info.value, HandXError) and isinstance(info.value, ValueError)


def test_safe_pickle_loads_plain_data_and_refuses_objects(tmp_path):
    import collections

    data = {"a": np.arange(6.0).reshape(2, 3), "b": [np.float32(1.5), "x", (1, 2)], "c": collections.OrderedDict(k=1)}
    for protocol in (2, 4, 5):
        back = safe_loads_pickle(pickle.dumps(data, protocol=protocol))
        np.testing.assert_array_equal(back["a"], data["a"])
        assert back["b"][1:] == ["x", (1, 2)] and back["c"] == {"k": 1}
    with pytest.raises(UnsafePickleError, match="collections.Counter"):
        safe_loads_pickle(pickle.dumps(collections.Counter("ab")))
    # scipy sparse / chumpy need allow_model_stubs (MANO files); refused otherwise
    import scipy.sparse as sp

    blob = pickle.dumps(sp.csc_matrix(np.eye(3)))
    with pytest.raises(UnsafePickleError, match="scipy.sparse"):
        safe_loads_pickle(blob)
    np.testing.assert_array_equal(safe_loads_pickle(blob, allow_model_stubs=True), np.eye(3))
    (tmp_path / "trunc.pkl").write_bytes(pickle.dumps(data)[:20])
    with pytest.raises(MotionFormatError, match="not a readable pickle"):
        safe_load_pickle(tmp_path / "trunc.pkl")


def test_object_npy_is_refused(tmp_path):
    arr = np.empty(2, dtype=object)
    arr[:] = [np.zeros(3), np.zeros(3)]
    np.save(tmp_path / "obj.npy", arr, allow_pickle=True)
    with pytest.raises(MotionFormatError, match="Python objects"):
        read_motion(tmp_path / "obj.npy")


# -- real data -------------------------------------------------------------------------------------
def test_dexmv_real_right_hand(dexmv_npz):
    assert detect_format(dexmv_npz) == "mediapipe-npz"
    m = read_motion(dexmv_npz, hand="right", frame="camera")
    assert m.num_frames == 122 and m.present_sides == ("right",)
    with np.load(dexmv_npz) as d:
        raw = d["joints"]
    # camera frame (y down, z forward) -> Y-up: y and z negated; thumb tip MediaPipe 4 -> HandX 16
    np.testing.assert_allclose(m.joints[:, 1, 16], raw[:, 4] * np.float32([1, -1, -1]), atol=1e-6)
    with pytest.raises(MotionValueError, match="looks like a right hand"):
        read_motion(dexmv_npz, hand="left", frame="camera")
    with pytest.raises(ConfigError, match="--hand"):
        read_motion(dexmv_npz)


def test_fill_gaps_interpolates_short_tracking_dropouts(tmp_path):
    mp = _right_mediapipe(T=12)
    mp[4:6] = np.nan  # two lost frames
    mp[9] = 0.0  # a tracker that writes zeros when it loses the hand
    np.save(tmp_path / "gaps.npy", mp)
    with pytest.raises(MotionValueError, match=r"missing keypoints.*3 frames.*first at frame 4.*--fill-gaps"):
        read_motion(tmp_path / "gaps.npy", hand="right")
    m = read_motion(tmp_path / "gaps.npy", hand="right", fill_gaps=0.1)  # 0.1 s = 3 frames at 30 fps
    full = read_motion(_save(tmp_path / "full.npy", _right_mediapipe(T=12)), hand="right")
    # curl varies linearly over frames, so interpolation is close to the true hands
    np.testing.assert_allclose(m.joints[4:6], full.joints[4:6], atol=2e-3)
    np.testing.assert_allclose(m.joints[9], full.joints[9], atol=2e-3)
    np.testing.assert_array_equal(m.joints[:4], full.joints[:4])
    with pytest.raises(MotionValueError, match="longest gap 2 frames"):
        read_motion(tmp_path / "gaps.npy", hand="right", fill_gaps=1 / 30)
    mp[:3] = np.nan  # gap at the start: held from the first valid frame
    np.save(tmp_path / "start.npy", mp)
    m = read_motion(tmp_path / "start.npy", hand="right", fill_gaps=0.2)
    np.testing.assert_array_equal(m.joints[0], m.joints[3])


def _save(path, arr):
    np.save(path, arr)
    return path


def test_pickle_dict_with_data_key_and_motion_frame_conflict(tmp_path, motion):
    mp = _right_mediapipe()
    with open(tmp_path / "d.pkl", "wb") as f:
        pickle.dump({"data": list(mp), "meta_data": {"fps": 30}}, f)
    assert detect_format(tmp_path / "d.pkl") == "mediapipe-pkl"
    assert read_motion(tmp_path / "d.pkl", hand="right").num_frames == len(mp)
    save_motion(motion.in_frame("world_zup"), tmp_path / "z.npz")
    back = read_motion(tmp_path / "z.npz")  # stored Z-up, read back in HandX Y-up
    np.testing.assert_allclose(back.joints, motion.joints, atol=1e-6)
    assert read_motion(tmp_path / "z.npz", frame="zup").frame == "handx_yup"
    with pytest.raises(ConfigError, match="states its frame"):
        read_motion(tmp_path / "z.npz", frame="camera")


def test_read_motion_keeps_the_motion_files_meta(tmp_path):
    """The text generator's parse (meta['parse']) survives convert / retarget's reader."""
    from handx_robot.motion import BimanualMotion, save_motion
    from handx_robot.readers import read_motion

    J = np.zeros((4, 2, 21, 3), np.float32)
    J[..., 0] = np.linspace(0, 0.18, 21)  # a hand-sized span
    path = save_motion(BimanualMotion(J, meta={"parse": {"prompt": "clap"}}), tmp_path / "m.npz")
    assert read_motion(path, check_hands=False).meta == {"parse": {"prompt": "clap"}}
