"""handx_robot.rotations against scipy's Rotation (xyzw) on random rotations, angles near 0 and pi."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from handx_robot import rotations as rot

RNG = np.random.default_rng(0)


def _random_quats(n: int) -> np.ndarray:
    q = RNG.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _special_rotvecs() -> np.ndarray:
    axes = RNG.normal(size=(6, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.array([0.0, 1e-12, 1e-7, 1.0, np.pi - 1e-9, np.pi])
    return axes * angles[:, None]


def _scipy(q_wxyz: np.ndarray) -> Rotation:
    return Rotation.from_quat(rot.wxyz_to_xyzw(q_wxyz))


def test_quaternion_products_matrices_and_rotations_match_scipy():
    a, b = _random_quats(50), _random_quats(50)
    np.testing.assert_allclose(rot.quat_to_matrix(rot.quat_mul(a, b)), (_scipy(a) * _scipy(b)).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_matrix(a), _scipy(a).as_matrix(), atol=1e-12)
    v = RNG.normal(size=(50, 3))
    np.testing.assert_allclose(rot.quat_rotate(a, v), _scipy(a).apply(v), atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_matrix(rot.quat_conj(a)), _scipy(a).inv().as_matrix(), atol=1e-12)


def test_matrix_to_quat_is_canonical_and_round_trips_at_every_angle():
    vecs = np.concatenate([_special_rotvecs(), RNG.normal(size=(30, 3))])
    R = Rotation.from_rotvec(vecs).as_matrix()
    q = rot.matrix_to_quat(R)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(rot.quat_to_matrix(q), R, atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_pose(rot.pose_to_matrix(np.c_[vecs, q]))[:, 3:], q, atol=1e-12)


@pytest.mark.parametrize("vecs", [_special_rotvecs(), RNG.uniform(-3, 3, size=(40, 3))])
def test_rotation_vectors_round_trip_and_match_scipy(vecs):
    q = rot.quat_from_rotvec(vecs)
    np.testing.assert_allclose(rot.quat_to_matrix(q), Rotation.from_rotvec(vecs).as_matrix(), atol=1e-12)
    back = rot.quat_to_rotvec(q)
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), Rotation.from_rotvec(vecs).as_matrix(), atol=1e-9)
    np.testing.assert_allclose(rot.rotvec_to_matrix(vecs), Rotation.from_rotvec(vecs).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_rotvec(rot.rotvec_to_matrix(back)), back, atol=1e-7)


def test_angles_small_and_large():
    a = _random_quats(20)
    for angle in (1e-10, 1e-5, 1.0, np.pi - 1e-6):
        axis = RNG.normal(size=(20, 3))
        b = rot.quat_mul(rot.quat_from_axis_angle(axis, np.full(20, angle)), a)
        np.testing.assert_allclose(rot.quat_angle(a, b), angle, rtol=1e-6, atol=1e-15)
        np.testing.assert_allclose(rot.quat_angle(a, -b), angle, rtol=1e-6, atol=1e-15)  # q and -q
        np.testing.assert_allclose(rot.matrix_angle(rot.quat_to_matrix(a), rot.quat_to_matrix(b)), angle,
                                   rtol=1e-6, atol=1e-7)


def test_slerp_continuity_and_euler_orders():
    a, b = _random_quats(10), _random_quats(10)
    t = np.linspace(0, 1, 7)
    s = rot.quat_slerp(a[:, None], b[:, None], t[None, :])
    np.testing.assert_allclose(np.abs(np.sum(s[:, 0] * a, axis=1)), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(s[:, -1] * b, axis=1)), 1.0, atol=1e-12)
    ref = Rotation.from_quat(rot.wxyz_to_xyzw(np.stack([a[0], b[0]])))
    from scipy.spatial.transform import Slerp
    np.testing.assert_allclose(rot.quat_to_matrix(s[0]), Slerp([0, 1], ref)(t).as_matrix(), atol=1e-12)
    flipped = np.stack([a[0], -a[0], a[0], -a[0]])
    c = rot.quat_continuous(flipped)
    assert np.all(np.sum(c[1:] * c[:-1], axis=-1) > 0)
    angles = RNG.uniform(-3, 3, size=(10, 3))
    np.testing.assert_allclose(rot.rpy_to_matrix(angles), Rotation.from_euler("xyz", angles).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot.xyz_to_matrix(angles), Rotation.from_euler("XYZ", angles).as_matrix(), atol=1e-12)
    axes = RNG.normal(size=(10, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(axes, angles[:, 0]),
                               Rotation.from_rotvec(axes * angles[:, :1]).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot.skew(axes) @ angles[..., None], np.cross(axes, angles)[..., None], atol=1e-12)


def test_poses_compose_and_invert_like_matrices():
    p1 = np.c_[RNG.normal(size=(15, 3)), _random_quats(15)]
    p2 = np.c_[RNG.normal(size=(15, 3)), _random_quats(15)]
    T1, T2 = rot.pose_to_matrix(p1), rot.pose_to_matrix(p2)
    np.testing.assert_allclose(rot.pose_to_matrix(rot.pose_compose(p1, p2)), T1 @ T2, atol=1e-12)
    np.testing.assert_allclose(rot.pose_to_matrix(rot.pose_inv(p1)), np.linalg.inv(T1), atol=1e-12)
    np.testing.assert_allclose(rot.transform_inv(T1), np.linalg.inv(T1), atol=1e-12)


def test_one_quaternion_or_matrix_takes_the_fast_path_with_the_batched_result():
    """The conversions of one element (Python floats: quat_normalize, quat_to_matrix, matrix_to_quat,
    quat_from_rotvec, quat_to_rotvec, rotvec_to_matrix, matrix_to_rotvec) equal the batched numpy path, edge
    cases included (identity, half turns, a zero quaternion, tiny and near-pi rotation vectors)."""
    rng = np.random.default_rng(7)
    q = rng.normal(size=(2000, 4)) * rng.uniform(1e-3, 1e3, size=(2000, 1))
    q[:4] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [-1, 0, 0, 0]]
    R = rot.quat_to_matrix(q)
    R[4:7] = [np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])]
    v = rng.normal(size=(2000, 3)) * rng.uniform(1e-8, 1.0, size=(2000, 1))
    v[:6] = _special_rotvecs()
    for batched, one in ((rot.quat_normalize(q), [rot.quat_normalize(x) for x in q]),
                         (rot.quat_to_matrix(q), [rot.quat_to_matrix(x) for x in q]),
                         (rot.matrix_to_quat(R), [rot.matrix_to_quat(x) for x in R]),
                         (rot.quat_from_rotvec(v), [rot.quat_from_rotvec(x) for x in v]),
                         (rot.quat_to_rotvec(q[4:]), [rot.quat_to_rotvec(x) for x in q[4:]]),
                         (rot.rotvec_to_matrix(v), [rot.rotvec_to_matrix(x) for x in v]),
                         (rot.matrix_to_rotvec(R[4:]), [rot.matrix_to_rotvec(x) for x in R[4:]])):  # fmt: skip
        np.testing.assert_allclose(np.array(one), batched, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(rot.quat_normalize(np.zeros(4)), [1.0, 0.0, 0.0, 0.0])
