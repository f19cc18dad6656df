"""Rotations and rigid transforms: the one implementation every layer uses.

Conventions (everywhere in handx-robot):

* quaternions are ``[w, x, y, z]`` (``quat_wxyz``), Hamilton product, unit norm; functions that
  return one give ``w >= 0`` where they say so (``canonical``);
* rotation matrices ``R_a_b`` map vectors in frame b to frame a; homogeneous transforms ``T_a_b``
  are ``(..., 4, 4)``; poses are 7-vectors ``[x, y, z, qw, qx, qy, qz]`` (``T_a_b`` as position and
  quaternion);
* rotation vectors (axis * angle, rad) are ``(..., 3)``;
* every function is numpy, float64, batched over leading dimensions, and imports nothing but numpy (and
  math: one quaternion or matrix takes a Python-float path with the same operations, for speed).

Kept apart on purpose (each tested against this module): the numba kernel of
:mod:`handx_robot.retarget.kinematics.fused` (and the forward kinematics' cached Rodrigues) and the
IsaacGym backend's torch maths.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "quat_mul",
    "quat_conj",
    "quat_normalize",
    "quat_canonical",
    "quat_continuous",
    "quat_rotate",
    "quat_to_matrix",
    "matrix_to_quat",
    "quat_from_rotvec",
    "quat_to_rotvec",
    "quat_from_axis_angle",
    "quat_angle",
    "quat_slerp",
    "wxyz_to_xyzw",
    "xyzw_to_wxyz",
    "skew",
    "rot_x",
    "rot_y",
    "rot_z",
    "axis_angle_to_matrix",
    "rotvec_to_matrix",
    "matrix_to_rotvec",
    "matrix_angle",
    "rpy_to_matrix",
    "xyz_to_matrix",
    "make_transform",
    "transform_inv",
    "pose_to_matrix",
    "matrix_to_pose",
    "pose_compose",
    "pose_inv",
]

#: Below this angle (rad) series expansions replace the closed forms (their relative error is < 1e-16).
SMALL_ANGLE = 1e-6


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


# -- quaternions -------------------------------------------------------------------------------
def _hamilton_table() -> np.ndarray:
    """(16, 4) signs: ``quat_mul(a, b) = (a_i b_j flattened over i, j) @ table``."""
    table = np.zeros((16, 4))
    for k, terms in enumerate((
        ((0, 0, 1), (1, 1, -1), (2, 2, -1), (3, 3, -1)),
        ((0, 1, 1), (1, 0, 1), (2, 3, 1), (3, 2, -1)),
        ((0, 2, 1), (1, 3, -1), (2, 0, 1), (3, 1, 1)),
        ((0, 3, 1), (1, 2, 1), (2, 1, -1), (3, 0, 1)),
    )):
        for i, j, sign in terms:
            table[4 * i + j, k] = sign
    return table


_HAMILTON = _hamilton_table()


def quat_mul(a, b) -> np.ndarray:
    """Hamilton product ``a * b`` of ``(..., 4)`` wxyz quaternions (rotation b, then a); broadcasts.
    One outer product and one matrix product with a sign table (cheap for the few quaternions of an
    RL env step)."""
    a, b = _f64(a), _f64(b)
    outer = a[..., :, None] * b[..., None, :]
    return outer.reshape(outer.shape[:-2] + (16,)) @ _HAMILTON


def quat_conj(q) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion), ``(..., 4)``."""
    q = _f64(q)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_normalize(q) -> np.ndarray:
    """Unit quaternions ``(..., 4)``; a zero quaternion becomes the identity."""
    q = _f64(q)
    if q.shape == (4,):  # one quaternion in Python floats (numpy's per-call overhead dominates)
        return np.array(_normalize_floats(*q.tolist()))
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    ident = np.zeros_like(q)
    ident[..., 0] = 1.0
    return np.where(n > 0, q / np.where(n > 0, n, 1.0), ident)


def quat_canonical(q) -> np.ndarray:
    """The same rotations with ``w >= 0``, ``(..., 4)``."""
    q = _f64(q)
    if q.shape == (4,):
        return -q if q[0] < 0 else q.copy()
    return np.where(q[..., :1] < 0, -q, q)


def quat_continuous(q, axis: int = 0) -> np.ndarray:
    """A sequence of quaternions along ``axis`` with signs flipped so that neighbours have a
    non-negative dot product (no jumps between q and -q), starting from the first one's sign."""
    q = np.moveaxis(_f64(q), axis, 0)
    if len(q) < 2:
        return np.moveaxis(q.copy(), 0, axis)
    flip = np.sum(q[1:] * q[:-1], axis=-1) < 0
    sign = np.concatenate([np.ones((1,) + flip.shape[1:]), np.cumprod(np.where(flip, -1.0, 1.0), axis=0)])
    return np.moveaxis(q * sign[..., None], 0, axis)


def quat_rotate(q, v) -> np.ndarray:
    """Rotate vectors ``v (..., 3)`` by unit quaternions ``q (..., 4)``."""
    q, v = _f64(q), _f64(v)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_to_matrix(q) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of quaternions ``(..., 4)`` (normalised first)."""
    q = _f64(q)
    if q.shape == (4,):  # one quaternion: the same operations in Python floats (same bits, less overhead)
        return _quat_to_matrix_floats(*_normalize_floats(*q.tolist()))
    qn = quat_normalize(q)
    w, x, y, z = np.moveaxis(qn, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=-2)


def matrix_to_quat(R) -> np.ndarray:
    """Quaternions ``(..., 4)``, ``w >= 0``, of rotation matrices ``(..., 3, 3)`` (Shepperd's method:
    the largest of the four candidates, so accurate for every angle)."""
    R = _f64(R)
    if R.shape == (3, 3):
        return _matrix_to_quat_one(R)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    trace = m00 + m11 + m22
    cands = np.stack([
        np.stack([1 + trace, R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1),
        np.stack([R[..., 2, 1] - R[..., 1, 2], 1 + m00 - m11 - m22, R[..., 0, 1] + R[..., 1, 0], R[..., 0, 2] + R[..., 2, 0]], -1),
        np.stack([R[..., 0, 2] - R[..., 2, 0], R[..., 0, 1] + R[..., 1, 0], 1 - m00 + m11 - m22, R[..., 1, 2] + R[..., 2, 1]], -1),
        np.stack([R[..., 1, 0] - R[..., 0, 1], R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1], 1 - m00 - m11 + m22], -1),
    ], axis=-2)  # (..., 4 candidates, 4); candidate k has its k-th entry = 4 q_k^2
    k = np.argmax(np.stack([1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1), axis=-1)
    q = np.take_along_axis(cands, k[..., None, None], axis=-2)[..., 0, :]
    return quat_canonical(quat_normalize(q))


def _matrix_to_quat_one(R: np.ndarray) -> np.ndarray:
    """:func:`matrix_to_quat` of one matrix in Python floats: the same operations in the same order, so
    the same bits, without numpy's per-call overhead (the bimanual solve converts thousands of poses)."""
    return np.array(_canonical_floats(*_normalize_floats(*_matrix_to_quat_candidate(R))))


def quat_from_rotvec(v) -> np.ndarray:
    """Quaternions ``(..., 4)`` of rotation vectors ``(..., 3)`` (rad)."""
    v = _f64(v)
    if v.shape == (3,):  # one vector in Python floats (numpy's per-call overhead dominates)
        return np.array(_quat_from_rotvec_floats(*v.tolist()))
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    small = angle < SMALL_ANGLE
    k = np.where(small, 0.5 - angle**2 / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([np.cos(half), k * v], axis=-1)


def quat_to_rotvec(q) -> np.ndarray:
    """Rotation vectors ``(..., 3)`` (angle in [0, pi]) of quaternions ``(..., 4)``."""
    q = _f64(q)
    if q.shape == (4,):  # one quaternion in Python floats
        return np.array(_quat_to_rotvec_floats(*_canonical_floats(*_normalize_floats(*q.tolist()))))
    q = quat_canonical(quat_normalize(q))
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    small = s < 0.5 * SMALL_ANGLE
    k = np.where(small, 2.0 / np.maximum(q[..., :1], 1e-300), angle / np.where(small, 1.0, s))
    return k * q[..., 1:]


def quat_from_axis_angle(axis, angle) -> np.ndarray:
    """Quaternions of rotations by ``angle (...)`` rad about ``axis (..., 3)`` (normalised)."""
    axis = _f64(axis)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    return quat_from_rotvec(axis * _f64(angle)[..., None])


def quat_angle(a, b) -> np.ndarray:
    """Angle (rad, in [0, pi]) of the rotation between ``a`` and ``b`` (q and -q count as the same)."""
    d = quat_mul(quat_normalize(a), quat_conj(quat_normalize(b)))
    return 2.0 * np.arctan2(np.linalg.norm(d[..., 1:], axis=-1), np.abs(d[..., 0]))


def quat_slerp(q0, q1, t) -> np.ndarray:
    """Shortest-arc spherical interpolation from ``q0`` to ``q1`` at fractions ``t``: broadcast
    ``q0, q1 (..., 4)`` against ``t (...)``; ``t`` 0 gives ``q0``, 1 gives ``q1`` (or ``-q1``)."""
    q0, q1, t = quat_normalize(q0), quat_normalize(q1), _f64(t)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    near = theta < SMALL_ANGLE
    sin_t = np.sin(np.where(near, 1.0, theta))
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / sin_t)
    w1 = np.where(near, t, np.sin(t * theta) / sin_t)
    return quat_normalize(w0 * q0 + w1 * q1)


def wxyz_to_xyzw(q):
    """``[w, x, y, z]`` -> ``[x, y, z, w]`` (indexing only: works on numpy and torch tensors)."""
    return q[..., [1, 2, 3, 0]]


def xyzw_to_wxyz(q):
    """``[x, y, z, w]`` -> ``[w, x, y, z]`` (indexing only: works on numpy and torch tensors)."""
    return q[..., [3, 0, 1, 2]]


# -- rotation matrices -------------------------------------------------------------------------
def skew(v) -> np.ndarray:
    """Cross-product matrices ``(..., 3, 3)`` of ``v (..., 3)``: ``skew(v) @ u == cross(v, u)``."""
    v = _f64(v)
    x, y, z = np.moveaxis(v, -1, 0)
    o = np.zeros_like(x)
    return np.stack([np.stack([o, -z, y], -1), np.stack([z, o, -x], -1), np.stack([-y, x, o], -1)], -2)


def _axis_rotation(angle, i: int, j: int) -> np.ndarray:
    angle = _f64(angle)
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(angle.shape + (3, 3))
    R[..., i, i], R[..., j, j] = c, c
    R[..., i, j], R[..., j, i] = -s, s
    R[..., 3 - i - j, 3 - i - j] = 1.0
    return R


def rot_x(angle) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` by ``angle (...)`` rad about x."""
    return _axis_rotation(angle, 1, 2)


def rot_y(angle) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` by ``angle (...)`` rad about y."""
    return _axis_rotation(angle, 2, 0)


def rot_z(angle) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` by ``angle (...)`` rad about z."""
    return _axis_rotation(angle, 0, 1)


def axis_angle_to_matrix(axis, angle) -> np.ndarray:
    """Rodrigues: rotations ``(..., 3, 3)`` by ``angle (...)`` about unit axes ``axis (..., 3)``."""
    axis, angle = _f64(axis), _f64(angle)[..., None, None]
    K = skew(axis)
    return np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * (K @ K)


def rotvec_to_matrix(v) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of rotation vectors ``(..., 3)``."""
    v = _f64(v)
    if v.shape == (3,):  # one vector: the same operations in Python floats, in one call (the bimanual solve's steps)
        return _quat_to_matrix_floats(*_normalize_floats(*_quat_from_rotvec_floats(*v.tolist())))
    return quat_to_matrix(quat_from_rotvec(v))


def matrix_to_rotvec(R) -> np.ndarray:
    """Rotation vectors ``(..., 3)`` (angle in [0, pi]) of rotation matrices, accurate near pi."""
    R = _f64(R)
    if R.shape == (3, 3):  # one matrix: the same operations in Python floats, in one call
        q = _canonical_floats(*_normalize_floats(*_matrix_to_quat_candidate(R)))  # matrix_to_quat
        return np.array(_quat_to_rotvec_floats(*_canonical_floats(*_normalize_floats(*q))))  # quat_to_rotvec
    return quat_to_rotvec(matrix_to_quat(R))


# one rotation in Python floats: the operations of the numpy functions above in the same order (the same bits), for
# the callers that convert one value at a time, where numpy's per-call overhead is most of the time
def _normalize_floats(w: float, x: float, y: float, z: float) -> tuple[float, float, float, float]:
    n = math.sqrt(((w * w + x * x) + y * y) + z * z)
    return (w / n, x / n, y / n, z / n) if n > 0 else (1.0, 0.0, 0.0, 0.0)


def _canonical_floats(w: float, x: float, y: float, z: float) -> tuple[float, float, float, float]:
    return (-w, -x, -y, -z) if w < 0 else (w, x, y, z)


def _quat_from_rotvec_floats(x: float, y: float, z: float) -> tuple[float, float, float, float]:
    angle = math.sqrt((x * x + y * y) + z * z)
    half = 0.5 * angle
    k = 0.5 - angle**2 / 48.0 if angle < SMALL_ANGLE else math.sin(half) / angle
    return math.cos(half), k * x, k * y, k * z


def _quat_to_matrix_floats(w: float, x: float, y: float, z: float) -> np.ndarray:
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])  # fmt: skip


def _quat_to_rotvec_floats(w: float, x: float, y: float, z: float) -> tuple[float, float, float]:
    s = math.sqrt((x * x + y * y) + z * z)
    k = 2.0 / max(w, 1e-300) if s < 0.5 * SMALL_ANGLE else 2.0 * math.atan2(s, w) / s
    return k * x, k * y, k * z


def _matrix_to_quat_candidate(R: np.ndarray) -> tuple[float, float, float, float]:
    """Shepperd's candidate of :func:`matrix_to_quat` for one matrix, before it is normalised."""
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = R.tolist()
    trace = m00 + m11 + m22
    diag = (1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22)
    k = diag.index(max(diag))  # the first largest, as np.argmax
    return (
        (1 + trace, m21 - m12, m02 - m20, m10 - m01),
        (m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20),
        (m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21),
        (m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22),
    )[k]


def matrix_angle(Ra, Rb) -> np.ndarray:
    """Angle (rad) of the rotation between ``Ra`` and ``Rb`` ``(..., 3, 3)``."""
    return quat_angle(matrix_to_quat(Ra), matrix_to_quat(Rb))


def rpy_to_matrix(rpy) -> np.ndarray:
    """URDF roll-pitch-yaw ``(..., 3)`` -> ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    rpy = _f64(rpy)
    return rot_z(rpy[..., 2]) @ rot_y(rpy[..., 1]) @ rot_x(rpy[..., 0])


def xyz_to_matrix(angles) -> np.ndarray:
    """Body-fixed x-y-z angles ``(..., 3)`` -> ``Rx(a) @ Ry(b) @ Rz(c)``."""
    angles = _f64(angles)
    return rot_x(angles[..., 0]) @ rot_y(angles[..., 1]) @ rot_z(angles[..., 2])


# -- transforms and poses -----------------------------------------------------------------------
def make_transform(R, p) -> np.ndarray:
    """``T (..., 4, 4)`` from ``R (..., 3, 3)`` and ``p (..., 3)``."""
    R, p = _f64(R), _f64(p)
    shape = np.broadcast_shapes(R.shape[:-2], p.shape[:-1])
    T = np.zeros(shape + (4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = p
    T[..., 3, 3] = 1.0
    return T


def transform_inv(T) -> np.ndarray:
    """Inverse of rigid transforms ``T_a_b (..., 4, 4)``: ``T_b_a``."""
    T = _f64(T)
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    return make_transform(Rt, -(Rt @ T[..., :3, 3:4])[..., 0])


def pose_to_matrix(pose) -> np.ndarray:
    """``[x, y, z, qw, qx, qy, qz] (..., 7)`` -> ``T (..., 4, 4)``."""
    pose = _f64(pose)
    return make_transform(quat_to_matrix(pose[..., 3:]), pose[..., :3])


def matrix_to_pose(T) -> np.ndarray:
    """``T (..., 4, 4)`` -> ``[x, y, z, qw, qx, qy, qz] (..., 7)`` with ``qw >= 0``."""
    T = _f64(T)
    return np.concatenate([T[..., :3, 3], matrix_to_quat(T[..., :3, :3])], axis=-1)


def pose_compose(T_ab, T_bc) -> np.ndarray:
    """Compose 7-vector poses: ``T_a_c = T_a_b * T_b_c``, ``(..., 7)``."""
    T_ab, T_bc = _f64(T_ab), _f64(T_bc)
    q = quat_mul(T_ab[..., 3:], T_bc[..., 3:])
    return np.concatenate([T_ab[..., :3] + quat_rotate(T_ab[..., 3:], T_bc[..., :3]), q], axis=-1)


def pose_inv(T_ab) -> np.ndarray:
    """Inverse of 7-vector poses: ``T_b_a``, ``(..., 7)``."""
    T_ab = _f64(T_ab)
    q_inv = quat_conj(T_ab[..., 3:])
    return np.concatenate([-quat_rotate(q_inv, T_ab[..., :3]), q_inv], axis=-1)
