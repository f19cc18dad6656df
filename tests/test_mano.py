"""MANO model files and forward kinematics (handx_robot.mano) and the HandX MANO readers.

The real MANO model is licensed and never in the repo; these tests write model files in MANO's
structure (778 vertices, 16 joints, chumpy ``Ch`` arrays and a scipy sparse ``J_regressor`` as in the
official pickles) whose rest pose is a synthetic hand, so FK results are known exactly.
"""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest
from test_features import make_hand, random_rotation

from handx_robot.errors import MissingDependencyError, ModelLoadError, UnsafePickleError
from handx_robot.mano import MANO_TIP_VERTEX_IDS, ManoLayer, ManoModelData, find_mano_files
from handx_robot.motion import ManoParams, load_motion, save_motion
from handx_robot.readers import detect_format, read_motion

pytest.importorskip("smplx")

V = 778
PARENTS = [2**32 - 1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]  # MANO kintree (root = uint32 max)
TIPS = list(MANO_TIP_VERTEX_IDS.values())  # thumb, index, middle, ring, pinky = HandX 16..20
TIP_PARENT_JOINTS = [15, 3, 6, 12, 9]  # thumb IP, index DIP, middle DIP, ring DIP, pinky DIP


class _FakeCh:
    """Pickles like chumpy.ch.Ch (module 'chumpy.ch', state dict with the value in 'x')."""

    def __init__(self, x):
        self.x = np.asarray(x)
        self._dirty_vars = set()


@pytest.fixture
def chumpy_module(monkeypatch):
    mod = types.ModuleType("chumpy.ch")
    _FakeCh.__module__ = "chumpy.ch"
    _FakeCh.__qualname__ = "Ch"
    mod.Ch = _FakeCh
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", mod)
    return mod


def _model_dict(side: str, seed: int = 0, hands_mean: np.ndarray | None = None, chumpy: bool = True) -> dict:
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    hand = make_hand(0.3, side).astype(np.float64)
    v = hand[0] + rng.normal(0, 0.02, (V, 3))
    v[:16] = hand[:16]
    v[TIPS] = hand[16:]
    J = np.zeros((16, V))
    J[np.arange(16), np.arange(16)] = 1.0
    W = rng.random((V, 16))
    W /= W.sum(axis=1, keepdims=True)
    for tip, joint in zip(TIPS, TIP_PARENT_JOINTS):  # fingertips skinned rigidly to their last joint
        W[tip] = np.eye(16)[joint]
    posedirs = rng.normal(0, 1e-4, (V, 3, 135))
    posedirs[TIPS] = 0.0
    wrap = _FakeCh if chumpy else (lambda a: a)
    return {
        "v_template": wrap(v),
        "shapedirs": wrap(rng.normal(0, 1e-3, (V, 3, 10))),
        "posedirs": posedirs,
        "J_regressor": sp.csc_matrix(J),
        "weights": W,
        "kintree_table": np.array([PARENTS, list(range(16))], dtype=np.int64),
        "f": rng.integers(0, V, (1538, 3)).astype(np.uint32),
        "hands_mean": np.zeros(45) if hands_mean is None else hands_mean,
        "hands_components": np.eye(45),
        "bs_style": "lbs",
    }


def _write_models(d, chumpy: bool = True, **kw):
    d.mkdir(parents=True, exist_ok=True)
    for side, name in (("left", "MANO_LEFT.pkl"), ("right", "MANO_RIGHT.pkl")):
        (d / name).write_bytes(pickle.dumps(_model_dict(side, chumpy=chumpy, **kw), protocol=2))
    return d


@pytest.fixture
def mano_dir(tmp_path, chumpy_module):
    return _write_models(tmp_path / "mano")


def _params(T: int, rng=None, pose_scale: float = 0.0) -> ManoParams:
    rng = rng or np.random.default_rng(0)
    return ManoParams(rng.normal(0, pose_scale, (T, 48)), np.zeros((T, 10)), np.zeros((T, 3)))


def test_model_file_with_chumpy_and_sparse_loads_as_numpy(mano_dir):
    model = ManoModelData.from_file(mano_dir / "MANO_RIGHT.pkl")
    ref = _model_dict("right", chumpy=False)
    np.testing.assert_array_equal(model.v_template, ref["v_template"])
    np.testing.assert_array_equal(model.shapedirs, ref["shapedirs"])
    np.testing.assert_array_equal(model.J_regressor, ref["J_regressor"].toarray())
    assert model.J_regressor.shape == (16, V) and model.kintree_table.dtype == np.int64


def test_zero_pose_gives_the_template_hand_in_handx_order(mano_dir):
    layer = ManoLayer.from_dir(mano_dir, "right")
    trans = np.tile([0.1, 0.9, -0.2], (3, 1))
    kp = layer.forward(np.zeros((3, 48)), np.zeros((3, 10)), trans)
    assert kp.shape == (3, 21, 3) and kp.dtype == np.float32
    expected = make_hand(0.3, "right") + np.float32([0.1, 0.9, -0.2])
    np.testing.assert_allclose(kp[0], expected, atol=1e-6)


def test_global_orient_rotates_about_the_wrist(mano_dir):
    from scipy.spatial.transform import Rotation

    layer = ManoLayer.from_dir(mano_dir, "right")
    rng = np.random.default_rng(1)
    R = random_rotation(rng)
    pose = np.zeros((2, 48))
    pose[:, :3] = Rotation.from_matrix(R).as_rotvec()
    trans = np.array([[0.0, 0.0, 0.0], [0.2, 0.1, 0.0]])
    kp = layer.forward(pose, np.zeros((2, 10)), trans)
    hand = make_hand(0.3, "right").astype(np.float64)
    expected = (hand - hand[0]) @ R.T + hand[0]
    np.testing.assert_allclose(kp[0], expected, atol=1e-5)
    np.testing.assert_allclose(kp[1], expected + trans[1], atol=1e-5)


def test_hand_pose_slot_rotates_its_finger_about_its_joint(mano_dir):
    """hand_pose[0:3] is joint 1 (index MCP): the index chain turns about it, nothing else moves."""
    from scipy.spatial.transform import Rotation

    layer = ManoLayer.from_dir(mano_dir, "right")
    rotvec = np.array([0.0, 0.6, 0.0])
    pose = np.zeros((1, 48))
    pose[0, 3:6] = rotvec
    kp = layer.forward(pose, np.zeros((1, 10)), np.zeros((1, 3)))[0]
    hand = make_hand(0.3, "right").astype(np.float64)
    R = Rotation.from_rotvec(rotvec).as_matrix()
    index_chain = [2, 3, 17]
    np.testing.assert_allclose(kp[index_chain], (hand[index_chain] - hand[1]) @ R.T + hand[1], atol=1e-6)
    others = [i for i in range(21) if i not in index_chain]
    np.testing.assert_allclose(kp[others], hand[others], atol=1e-6)


def test_betas_move_the_hand_along_shapedirs(mano_dir):
    layer = ManoLayer.from_dir(mano_dir, "right")
    betas = np.zeros((1, 10))
    betas[0, 2] = 2.0
    kp = layer.forward(np.zeros((1, 48)), betas, np.zeros((1, 3)))
    sd = _model_dict("right", chumpy=False)["shapedirs"]
    ids = list(range(16)) + TIPS
    expected = make_hand(0.3, "right") + sd[ids] @ betas[0]
    np.testing.assert_allclose(kp[0], expected, atol=1e-6)


def test_pose_is_relative_to_the_mean_hand(tmp_path, chumpy_module):
    """flat_hand_mean=False: zero pose on a model with hands_mean m == pose m on a zero-mean model."""
    m = np.random.default_rng(2).normal(0, 0.2, 45)
    with_mean = ManoLayer.from_dir(_write_models(tmp_path / "a", hands_mean=m), "right")
    flat = ManoLayer.from_dir(_write_models(tmp_path / "b"), "right")
    pose = np.zeros((1, 48))
    pose_m = pose.copy()
    pose_m[0, 3:] = m
    a = with_mean.forward(pose, np.zeros((1, 10)), np.zeros((1, 3)))
    b = flat.forward(pose_m, np.zeros((1, 10)), np.zeros((1, 3)))
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.abs(a - flat.forward(pose, np.zeros((1, 10)), np.zeros((1, 3)))).max() > 1e-3


def test_left_shapedirs_release_bug_is_fixed(mano_dir):
    right = ManoLayer.from_dir(mano_dir, "right").model
    left = ManoLayer.from_dir(mano_dir, "left").model  # test files share shapedirs, as the buggy release does
    np.testing.assert_array_equal(left.shapedirs[:, 0], -right.shapedirs[:, 0])
    np.testing.assert_array_equal(left.shapedirs[:, 1:], right.shapedirs[:, 1:])
    kept = ManoLayer.from_dir(mano_dir, "left", fix_left_shapedirs=False).model
    np.testing.assert_array_equal(kept.shapedirs, right.shapedirs)


def test_handx_mano_pkl_and_npz_read_into_motion(tmp_path, mano_dir):
    T = 6
    rng = np.random.default_rng(3)
    sides = {}
    for side in ("left", "right"):
        pose = rng.normal(0, 0.05, (T, 48))
        sides[side] = {"pose": pose, "shape": rng.normal(0, 0.5, (T, 10)), "trans": np.tile([0.0, 1.0, 0.0], (T, 1))}
    sides["left"]["trans"][:, 0] = -0.15
    sides["right"]["trans"][:, 0] = 0.15
    pkl = tmp_path / "sim.pkl"
    pkl.write_bytes(pickle.dumps(sides))
    npz = tmp_path / "clip_mano.npz"
    np.savez(npz, **{f"{s}_{k}": v for s, d in sides.items() for k, v in d.items()})
    assert detect_format(pkl) == "handx-mano-pkl" and detect_format(npz) == "handx-mano-npz"
    a = read_motion(pkl, mano_dir=mano_dir)
    b = read_motion(npz, mano_dir=mano_dir)
    np.testing.assert_array_equal(a.joints, b.joints)
    direct = ManoLayer.from_dir(mano_dir, "right").forward(**sides["right"])
    np.testing.assert_allclose(a.joints[:, 1], direct, atol=1e-6)
    assert set(a.mano) == {"left", "right"}
    np.testing.assert_allclose(a.mano["right"].pose, sides["right"]["pose"], atol=1e-6)
    save_motion(a, tmp_path / "out.npz")
    back = load_motion(tmp_path / "out.npz")
    np.testing.assert_array_equal(back.mano["left"].shape, a.mano["left"].shape)
    # a collection with a leading sequence axis, selected by index
    coll = tmp_path / "all_mano.npz"
    np.savez(coll, **{f"{s}_{k}": np.stack([v, v]) for s, d in sides.items() for k, v in d.items()})
    np.testing.assert_array_equal(read_motion(coll, mano_dir=mano_dir, key=1).joints, a.joints)


def test_mano_input_without_model_files_says_what_to_provide(tmp_path, monkeypatch):
    monkeypatch.delenv("HANDX_MANO_DIR", raising=False)
    T = 3
    data = {"right": {"pose": np.zeros((T, 48)), "shape": np.zeros((T, 10)), "trans": np.zeros((T, 3))}}
    p = tmp_path / "sim.pkl"
    p.write_bytes(pickle.dumps(data))
    with pytest.raises(MissingDependencyError) as info:
        read_motion(p)
    msg = str(info.value)
    for needed in ("sim.pkl", "MANO_LEFT.pkl", "MANO_RIGHT.pkl", "--mano-dir", "mano.is.tue.mpg.de", "HANDX_MANO_DIR"):
        assert needed in msg, needed
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingDependencyError, match="missing: .*MANO_RIGHT.pkl"):
        read_motion(p, mano_dir=tmp_path / "empty")
    with pytest.raises(MissingDependencyError):
        find_mano_files(None)


def test_malicious_or_broken_model_files_are_refused(tmp_path, chumpy_module):
    d = tmp_path / "evil"
    d.mkdir()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (d / "MANO_RIGHT.pkl").write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(UnsafePickleError):
        ManoLayer.from_dir(d, "right")
    assert not marker.exists()
    # a chumpy expression (no stored value) cannot be evaluated without chumpy
    expr = _FakeCh(np.zeros(3))
    del expr.x
    (d / "MANO_RIGHT.pkl").write_bytes(pickle.dumps({"v_template": expr}, protocol=2))
    with pytest.raises(UnsafePickleError, match="expression"):
        ManoLayer.from_dir(d, "right")
    bad = _model_dict("right", chumpy=False)
    bad["posedirs"] = bad["posedirs"][:, :, :10]
    (d / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ModelLoadError, match="posedirs"):
        ManoLayer.from_dir(d, "right")
