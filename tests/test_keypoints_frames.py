"""Keypoint orders, frames and wrist-frame estimation (keypoints.py, frames.py, handframe.py)."""

from __future__ import annotations

import numpy as np
import pytest
from test_features import make_hand, random_rotation

from handx_robot.errors import MotionValueError
from handx_robot.frames import FRAME_HANDX_YUP, FRAME_WORLD_ZUP, R_yup_zup, R_zup_yup, change_frame
from handx_robot.handframe import palm_normal, to_wrist_frame, wrist_rotation, wrist_transform
from handx_robot.keypoints import (
    FINGER_CHAINS,
    FINGERTIPS,
    HANDX_JOINT_NAMES,
    HANDX_TO_MEDIAPIPE,
    MEDIAPIPE_JOINT_NAMES,
    MEDIAPIPE_TO_HANDX,
    KeypointOrder,
    convert_order,
    handx_to_mediapipe,
    mediapipe_to_handx,
)

ISSUE_MAP = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]


# -- keypoint orders ---------------------------------------------------------------------------
def test_handx_to_mediapipe_map_is_the_documented_one():
    np.testing.assert_array_equal(HANDX_TO_MEDIAPIPE, ISSUE_MAP)
    # the map agrees with the names, joint by joint
    for mp_i, hx_i in enumerate(HANDX_TO_MEDIAPIPE):
        assert MEDIAPIPE_JOINT_NAMES[mp_i] == HANDX_JOINT_NAMES[hx_i]


def test_converters_round_trip_and_move_the_right_joints():
    rng = np.random.default_rng(0)
    hx = rng.normal(size=(4, 2, 21, 3)).astype(np.float32)
    mp = handx_to_mediapipe(hx)
    np.testing.assert_array_equal(mediapipe_to_handx(mp), hx)
    np.testing.assert_array_equal(mp[..., 4, :], hx[..., 16, :])  # MediaPipe 4 = thumb tip = HandX 16
    np.testing.assert_array_equal(mp[..., 9, :], hx[..., 4, :])  # MediaPipe 9 = middle MCP = HandX 4
    np.testing.assert_array_equal(convert_order(hx, "handx21", KeypointOrder.HANDX_21), hx)
    np.testing.assert_array_equal(MEDIAPIPE_TO_HANDX[HANDX_TO_MEDIAPIPE], np.arange(21))


def test_convert_order_rejects_wrong_shape():
    with pytest.raises(ValueError, match="21"):
        convert_order(np.zeros((5, 20, 3)), "handx21", "mediapipe21")
    with pytest.raises(ValueError):
        convert_order(np.zeros((5, 21, 3)), "handx21", "openpose")


def test_finger_tables_are_consistent():
    assert FINGERTIPS == {"thumb": 16, "index": 17, "middle": 18, "ring": 19, "pinky": 20}
    for finger, chain in FINGER_CHAINS.items():
        assert all(HANDX_JOINT_NAMES[i].startswith(finger) for i in chain)
    assert sorted(i for c in FINGER_CHAINS.values() for i in c) == list(range(1, 21))


# -- frames ------------------------------------------------------------------------------------
def test_frame_rotations_are_proper_and_map_up_to_up():
    assert np.linalg.det(R_zup_yup) == pytest.approx(1.0)
    np.testing.assert_allclose(R_zup_yup @ R_yup_zup, np.eye(3), atol=1e-12)
    up_yup = np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(change_frame(up_yup, FRAME_HANDX_YUP, FRAME_WORLD_ZUP), [0, 0, 1], atol=1e-12)
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(7, 3)).astype(np.float32)
    back = change_frame(change_frame(pts, FRAME_HANDX_YUP, FRAME_WORLD_ZUP), FRAME_WORLD_ZUP, FRAME_HANDX_YUP)
    np.testing.assert_allclose(back, pts, atol=1e-6)
    assert back.dtype == np.float32
    with pytest.raises(ValueError, match="known frames"):
        change_frame(pts, "camera", FRAME_HANDX_YUP)


# -- wrist frames ------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["left", "right"])
def test_wrist_rotation_recovers_known_rotations(side):
    rng = np.random.default_rng(3)
    Rs = np.stack([random_rotation(rng) for _ in range(20)])
    hands = np.stack([make_hand(0.4, side, R, rng.normal(size=3)) for R in Rs])
    R_est = wrist_rotation(hands, side)
    # make_hand's left hand mirrors local y (thumb to -y); handframe's left convention (y toward the
    # pinky) makes that local frame the identity too, so both sides recover R exactly
    np.testing.assert_allclose(R_est, Rs, atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R_est), 1.0, atol=1e-6)


def test_wrist_transform_and_to_wrist_frame_invert_each_other():
    rng = np.random.default_rng(4)
    R, t = random_rotation(rng), np.array([0.2, 1.1, -0.3])
    local = make_hand(0.6, "right")
    world = make_hand(0.6, "right", R, t)
    T_world_wrist = wrist_transform(world, "right")
    np.testing.assert_allclose(T_world_wrist[:3, :3], R, atol=1e-5)
    np.testing.assert_allclose(T_world_wrist[:3, 3], t, atol=1e-6)
    np.testing.assert_allclose(to_wrist_frame(world, "right"), local, atol=1e-5)
    homog = np.c_[local, np.ones(21)] @ T_world_wrist.T
    np.testing.assert_allclose(homog[:, :3], world, atol=1e-5)


def test_palm_normal_points_out_of_the_palm():
    hand = make_hand(1.0, "right")  # fingers curl toward local +x
    n = palm_normal(hand, "right")
    np.testing.assert_allclose(n, [1, 0, 0], atol=1e-6)
    tips = hand[[17, 18, 19, 20]] - hand[0]
    assert np.all(tips @ n > 0)  # curled fingertips are on the palm side
    np.testing.assert_allclose(palm_normal(make_hand(1.0, "left"), "left"), [1, 0, 0], atol=1e-6)
    with pytest.raises(ValueError):
        palm_normal(hand, "middle")


def test_degenerate_hand_raises():
    with pytest.raises(MotionValueError, match="degenerate"):
        wrist_rotation(np.zeros((21, 3)), "right")
