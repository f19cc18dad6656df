"""Parametric hand model, named shapes, capsule geometry and the minimum-jerk profile."""

from __future__ import annotations

import numpy as np
import pytest

from handx_robot.errors import ConfigError
from handx_robot.generate.composer import min_jerk, orientation
from handx_robot.generate.geometry import hand_clearance, segment_distances
from handx_robot.generate.handmodel import (
    ANGLE_LIMITS,
    ANGLE_NAMES,
    LIMITS_HIGH,
    LIMITS_LOW,
    NUM_ANGLES,
    HandShape,
    forward_kinematics,
)
from handx_robot.generate.shapes import (
    PINCH_GAP_M,
    PINCH_OPEN_MIN_M,
    SHAPE_NAMES,
    derive_contact_shapes,
    hand_shape,
)
from handx_robot.handframe import wrist_rotation
from handx_robot.keypoints import FINGERTIPS


def test_flat_hand_has_adult_proportions() -> None:
    k = forward_kinematics(np.zeros(NUM_ANGLES))
    assert k.shape == (21, 3)
    assert 0.18 <= np.linalg.norm(k[FINGERTIPS["middle"]] - k[0]) <= 0.19
    assert abs(HandShape().hand_length - np.linalg.norm(k[18] - k[0])) < 1e-4  # splay shortens it a little
    breadth = np.linalg.norm(k[1] - k[7])  # index MCP to pinky MCP
    assert 0.05 <= breadth <= 0.07
    big = forward_kinematics(np.zeros(NUM_ANGLES), HandShape(1.1))
    np.testing.assert_allclose(big, 1.1 * k, atol=1e-12)


def test_hand_frame_matches_handframe_convention() -> None:
    """Our hand frame (x radial, y distal, z palmar) is handframe's (z forward, x palm normal)."""
    R = wrist_rotation(forward_kinematics(hand_shape("relaxed")), "right")
    assert R[:, 0] @ np.array([0, 0, 1.0]) > 0.9  # palm normal = +z
    assert R[:, 2] @ np.array([0, 1.0, 0]) > 0.9  # forward = +y


def test_flexion_moves_fingertips_toward_the_palm() -> None:
    q = np.zeros(NUM_ANGLES)
    q[ANGLE_NAMES.index("index_mcp")] = np.deg2rad(60)
    k0, k1 = forward_kinematics(np.zeros(NUM_ANGLES)), forward_kinematics(q)
    assert k1[17, 2] > k0[17, 2] + 0.03  # palmar
    np.testing.assert_allclose(k1[18], k0[18])  # other fingers untouched


def test_forward_kinematics_is_batched() -> None:
    rng = np.random.default_rng(0)
    qs = rng.uniform(LIMITS_LOW, LIMITS_HIGH, (4, 3, NUM_ANGLES))
    out = forward_kinematics(qs)
    assert out.shape == (4, 3, 21, 3)
    np.testing.assert_allclose(out[2, 1], forward_kinematics(qs[2, 1]), atol=1e-12)


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_shapes_are_within_anatomical_limits(name: str) -> None:
    q = hand_shape(name)
    assert q.shape == (NUM_ANGLES,)
    assert np.all(q >= LIMITS_LOW - 1e-9) and np.all(q <= LIMITS_HIGH + 1e-9)
    flex = [q[ANGLE_NAMES.index(n)] for n in ANGLE_NAMES if n.endswith(("_mcp", "_pip", "_dip"))]
    assert max(flex) <= np.deg2rad(110) and all(abs(q[ANGLE_NAMES.index(f"{f}_abd")]) <= np.deg2rad(20)
                                                for f in ("index", "middle", "ring", "pinky"))  # fmt: skip
    assert set(ANGLE_LIMITS) == set(ANGLE_NAMES)


@pytest.mark.parametrize("finger", ["index", "middle", "ring", "pinky"])
def test_pinches_close_and_open_clearly(finger: str) -> None:
    closed = forward_kinematics(hand_shape(f"pinch_{finger}"))
    opened = forward_kinematics(hand_shape(f"pinch_open_{finger}"))
    d_closed = np.linalg.norm(closed[16] - closed[FINGERTIPS[finger]])
    d_open = np.linalg.norm(opened[16] - opened[FINGERTIPS[finger]])
    assert abs(d_closed - PINCH_GAP_M) < 0.0015 and d_closed < 0.01
    assert d_open > PINCH_OPEN_MIN_M > 0.04
    others = [f for f in ("index", "middle", "ring", "pinky") if f != finger]
    assert min(np.linalg.norm(closed[16] - closed[FINGERTIPS[f]]) for f in others) > 0.025


def test_stored_contact_shapes_match_their_derivation() -> None:
    for name, q in derive_contact_shapes().items():
        np.testing.assert_allclose(np.rad2deg(hand_shape(name)), np.rad2deg(q), atol=0.05, err_msg=name)


def test_unknown_shape_and_bad_scale() -> None:
    with pytest.raises(ConfigError, match="known shapes"):
        hand_shape("jazz_hands")
    with pytest.raises(ConfigError, match="0.7..1.3"):
        HandShape(3.0)


def test_segment_distance_matches_dense_sampling() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        p0, p1, q0, q1 = rng.normal(size=(4, 3))
        s = np.linspace(0, 1, 401)[:, None]
        a, b = p0 + s * (p1 - p0), q0 + s * (q1 - q0)
        brute = np.linalg.norm(a[:, None] - b[None], axis=-1).min()
        assert abs(segment_distances(p0, p1, q0, q1) - brute) < 5e-3
    # parallel and degenerate segments
    assert abs(segment_distances(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([1.0, 1, 0])) - 1) < 1e-12
    assert abs(segment_distances(np.zeros(3), np.zeros(3), np.array([0, 2.0, 0]), np.array([0, 2.0, 0])) - 2) < 1e-12


def test_hand_clearance_sign() -> None:
    k = forward_kinematics(hand_shape("flat"))
    far = k + np.array([0.0, 0.0, 0.2])
    assert hand_clearance(k, far) > 0.1
    assert hand_clearance(k, k + np.array([0.0, 0.0, 0.005])) < -0.01


def test_min_jerk_profile() -> None:
    t = np.linspace(0, 1, 1001)
    s = min_jerk(t)
    assert s[0] == 0 and abs(s[-1] - 1) < 1e-12 and np.all(np.diff(s) >= 0)
    v = np.gradient(s, t)
    assert abs(v[0]) < 1e-3 and abs(v[-1]) < 1e-3 and abs(v.max() - 1.875) < 1e-3


def test_orientation_is_a_rotation() -> None:
    R = orientation((0.1, 0.3, -1.0), (-1.0, 0.2, 0.0))
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert abs(np.linalg.det(R) - 1) < 1e-12


def test_hand_model_uses_the_shared_rotations() -> None:
    from handx_robot import rotations
    from handx_robot.generate import handmodel

    assert (handmodel.rot_x, handmodel.rot_y, handmodel.rot_z) == (rotations.rot_x, rotations.rot_y, rotations.rot_z)
