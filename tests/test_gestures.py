"""The gesture observer (handx_robot.gestures) on synthetic motions built with the composer's hand model.

Every motion here is made from ``forward_kinematics`` of named shapes, a wrist pose and a few min-jerk
keyframes; the observer sees only the keypoints. Frame ``handx_yup``: +y up, +x the subject's right,
-z forward; a left hand is built in its side frame and mirrored (x -> -x).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from handx_robot.app.cli import main
from handx_robot.errors import ConfigError
from handx_robot.frames import FRAME_WORLD_ZUP, change_frame
from handx_robot.generate.handmodel import LIMITS_HIGH, LIMITS_LOW, angle_index, forward_kinematics
from handx_robot.generate.keyframes import min_jerk, mirror_x
from handx_robot.generate.placement import ORIENT, orientation
from handx_robot.generate.shapes import _same, hand_shape, shape_from_degrees
from handx_robot.gestures import (
    FINGER_NAMES,
    SHAPE_PATTERNS,
    GestureConfig,
    Observation,
    finger_states,
    hand_axes,
    observation_lines,
    observe,
    part_points,
    reach_ratios,
)
from handx_robot.motion import BimanualMotion, save_motion
from handx_robot.rotations import rot_y, rot_z

FPS = 30.0
REST = np.array([0.13, -0.08, -0.30])  # right wrist at rest, side frame = world for the right hand
CLAW = shape_from_degrees(_same((0.0, 0.0, 70.0, 45.0)), (0.0, 10.0, 0.0, 0.0))
CUPPED = shape_from_degrees(_same((0.0, 45.0, 40.0, 20.0)), (0.0, 10.0, 0.0, 0.0))
PALM_UP = orientation((-0.2, 0.0, -1.0), (0.0, 1.0, 0.0))
PALM_DOWN = ORIENT["palm_down"]

# measured reach ratios (thumb, index, middle, ring, pinky) and the states they must read (E/H/C, ? ambiguous)
CALIBRATION = {
    "open": ((1.000, 1.000, 1.000, 1.000, 1.000), "EEEEE"),
    "flat": ((0.990, 1.000, 1.000, 1.000, 1.000), "EEEEE"),
    "point": ((0.741, 0.999, 0.433, 0.433, 0.410), "CECCC"),
    "count_2": ((0.860, 1.000, 1.000, 0.433, 0.410), "CEECC"),
    "count_3": ((0.860, 1.000, 1.000, 1.000, 0.410), "CEEEC"),
    "count_4": ((0.860, 1.000, 1.000, 1.000, 1.000), "CEEEE"),
    "fist": ((0.741, 0.425, 0.433, 0.433, 0.410), "CCCCC"),
    "thumbs_up": ((1.000, 0.425, 0.433, 0.433, 0.410), "ECCCC"),
    "claw": ((1.000, 0.670, 0.675, 0.675, 0.660), "EHHHH"),
    "cupped": ((1.000, 0.901, 0.902, 0.902, 0.898), "EHHHH"),
    "grasp_cylindrical": ((0.997, 0.847, 0.849, 0.849, 0.843), "EHHHH"),
    "grasp_spherical": ((1.000, 0.880, 0.882, 0.882, 0.877), "EHHHH"),
    "grasp_lateral": ((0.935, 0.671, 0.633, 0.634, 0.620), "HHHHH"),
    "relaxed": ((0.997, 0.954, 0.955, 0.955, 0.953), "E????"),
}
_CODE = {"E": 2, "H": 1, "C": 0, "?": -1}


def _angles(name: str) -> np.ndarray:
    return {"claw": CLAW, "cupped": CUPPED}[name] if name in ("claw", "cupped") else hand_shape(name)


# -- synthetic motion builders ---------------------------------------------------------------------------
def keys(t: np.ndarray, knots) -> np.ndarray:
    """Min-jerk interpolation of ``knots [(time, value), ...]`` at times ``t`` -> (T, ...) values."""
    kt = np.array([k[0] for k in knots], dtype=float)
    kv = np.array([np.asarray(k[1], dtype=float) for k in knots])
    seg = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 2)
    s = min_jerk((t - kt[seg]) / np.maximum(kt[seg + 1] - kt[seg], 1e-9))
    s = s.reshape((-1,) + (1,) * (kv.ndim - 1))
    return kv[seg] + s * (kv[seg + 1] - kv[seg])


def track(T: int, angles, R, pos, roll=0.0, dev=0.0, side: str = "right") -> np.ndarray:
    """(T, 21, 3) world keypoints of a hand built in its side frame (mirrored for the left hand)."""
    angles = np.broadcast_to(np.asarray(angles, dtype=float), (T, 20))
    pos = np.broadcast_to(np.asarray(pos, dtype=float), (T, 3))
    roll = np.broadcast_to(np.asarray(roll, dtype=float), (T,))
    dev = np.broadcast_to(np.asarray(dev, dtype=float), (T,))
    Rf = np.asarray(R) @ rot_y(roll) @ rot_z(dev)
    pts = pos[:, None, :] + np.einsum("tij,tkj->tki", Rf, forward_kinematics(angles))
    return mirror_x(pts) if side == "left" else pts


def motion(left=None, right=None, T: int | None = None) -> BimanualMotion:
    T = T or len(left if left is not None else right)
    J = np.zeros((T, 2, 21, 3), dtype=np.float32)
    for h, pts in enumerate((left, right)):
        if pts is not None:
            J[:, h] = pts
    return BimanualMotion(J, fps=FPS, present=np.array([left is not None, right is not None]))


def rest(T: int, side: str = "left") -> np.ndarray:
    return track(T, hand_shape("relaxed"), ORIENT["neutral"], REST, side=side)


def times(seconds: float) -> np.ndarray:
    return np.arange(int(round(seconds * FPS)) + 1) / FPS


def of(obs, kind: str, side: str | None = "right", **match) -> list[Observation]:
    return [
        o
        for o in obs
        if o.kind == kind and o.side == side and all(getattr(o, k) == v for k, v in match.items())
    ]


def held(
    angles, R=None, pos=None, seconds: float = 1.0, side: str = "right", lead: float = 0.0
) -> np.ndarray:
    """A shape held still for ``seconds`` after ``lead`` seconds of the relaxed rest shape."""
    t = times(lead + seconds)
    q = np.where((t >= lead)[:, None], angles, hand_shape("relaxed"))
    return track(
        len(t),
        q,
        ORIENT["show"] if R is None else R,
        REST + [0.0, 0.2, 0.0] if pos is None else pos,
        side=side,
    )


# -- finger states ---------------------------------------------------------------------------------
def test_reach_ratio_calibration_table():
    rows = []
    for name, (ratios, states) in CALIBRATION.items():
        J = forward_kinematics(_angles(name))
        r = reach_ratios(J)
        rows.append(f"{name:18s} " + " ".join(f"{v:.3f}" for v in r) + f"  {states}")
        np.testing.assert_allclose(r, ratios, atol=0.002, err_msg=name)
        assert finger_states(J).tolist() == [_CODE[c] for c in states], name
    print("\nshape              thumb index middle ring pinky  states\n" + "\n".join(rows))


def test_finger_states_dead_bands_and_nan():
    J = forward_kinematics(np.stack([hand_shape("relaxed"), hand_shape("piano")]))
    assert (finger_states(J)[:, 1:] == -1).all()  # a resting hand is neither open nor half-curled
    bad = forward_kinematics(hand_shape("open"))
    bad[17] = np.nan
    assert finger_states(bad).tolist() == [2, -1, 2, 2, 2]
    assert finger_states(np.zeros((21, 3))).tolist() == [-1] * 5
    # bent 90 deg at the MCP only: the reach ratio says straight, the MCP cap says not extended
    q = hand_shape("open")
    q[angle_index("index_mcp")] = np.deg2rad(90)
    assert finger_states(forward_kinematics(q))[1] == -1


def test_hand_axes_right_left_mirror():
    J = forward_kinematics(hand_shape("open"))  # hand frame: x radial, y distal, z palmar (right hand)
    n, d = hand_axes(J, "right")
    np.testing.assert_allclose(n, [0, 0, 1], atol=0.05)
    assert d[1] > 0.99
    n_left, _ = hand_axes(mirror_x(J), "left")
    np.testing.assert_allclose(n_left, [0, 0, 1], atol=0.05)  # mirror of +z is +z
    assert hand_axes(mirror_x(J), "right")[0][2] < -0.99  # the wrong side flips the normal
    with pytest.raises(ConfigError):
        hand_axes(J, "middle")
    assert np.isnan(hand_axes(np.full((21, 3), np.nan), "right")[0]).all()


def test_part_points():
    J = track(4, hand_shape("open"), PALM_UP, REST)
    parts = part_points(J, "right")
    assert set(parts) == {f"right_{f}_tip" for f in FINGER_NAMES} | {
        "right_palm",
        "right_knuckles",
        "right_wrist",
    }
    assert parts["right_knuckles"].shape == (4, 4, 3) and parts["right_palm"].shape == (4, 3)
    np.testing.assert_array_equal(parts["right_index_tip"], J[:, 17])


# -- held shapes -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("angles", "name"),
    [
        (hand_shape("count_2"), "peace"),
        (hand_shape("fist"), "fist"),
        (hand_shape("point"), "point"),
        (hand_shape("count_3"), "three"),
        (hand_shape("count_4"), "four"),
        (hand_shape("open"), "open"),
        (hand_shape("ok"), "ok"),
        (CLAW, "half_curled"),
        (CUPPED, "half_curled"),
    ],
)
def test_held_shape_is_named(angles, name):
    obs = observe(motion(left=rest(int(1.5 * FPS) + 1), right=held(angles, seconds=1.0, lead=0.5)))
    shapes = of(obs, "shape")
    assert [o.detail for o in shapes] == [name]
    o = shapes[0]
    assert o.start == pytest.approx(0.5, abs=0.25) and o.end == pytest.approx(1.5 + 1 / FPS, abs=0.05)
    assert [f for f, _ in o.fingers] == list(FINGER_NAMES)
    pattern = SHAPE_PATTERNS[name]
    assert all(p in ("any", s) for p, (_, s) in zip(pattern, o.fingers))
    assert not of(obs, "shape", "left")  # the resting hand shows no shape


def test_peace_text_and_unnamed_pattern():
    obs = observe(motion(right=held(hand_shape("count_2"), seconds=1.0, lead=0.4)))
    assert (
        of(obs, "shape")[0]
        .text()
        .endswith(
            "right hand: peace (thumb curled, index extended, middle extended, ring curled, pinky curled)"
        )
    )
    q = hand_shape("fist")
    for f in ("index", "ring"):  # C E C E C has no name
        q[[angle_index(f"{f}_{j}") for j in ("mcp", "pip", "dip")]] = np.deg2rad(2.0)
    shape = of(observe(motion(right=held(q, seconds=1.0))), "shape")[0]
    assert (
        shape.detail == ""
        and "right hand: thumb curled, index extended, middle curled, ring extended" in shape.text()
    )


def test_thumbs_up_down_out_by_thumb_direction():
    q = hand_shape("thumbs_up")
    details = []
    for R in (
        ORIENT["thumb_up"],
        orientation((0.0, -0.3, -1.0), (1.0, 0.0, 0.0)),
        orientation((0, 0.0, -1.0), (0, 1, 0)),
    ):
        details.append([o.detail for o in of(observe(motion(right=held(q, R=R))), "shape")])
    assert details == [["thumbs_up"], ["thumbs_down"], ["thumb_out"]]


def test_short_or_moving_shapes_are_not_held():
    assert not of(observe(motion(right=held(hand_shape("count_2"), seconds=0.2, lead=0.5))), "shape")
    t = times(1.6)  # relaxed -> fist over 0.6 s passes through "half" but never holds it
    q = keys(
        t,
        [
            (0.0, hand_shape("relaxed")),
            (0.4, hand_shape("relaxed")),
            (1.0, hand_shape("fist")),
            (1.6, hand_shape("fist")),
        ],
    )
    shapes = of(observe(motion(right=track(len(t), q, ORIENT["neutral"], REST))), "shape")
    assert [o.detail for o in shapes] == ["fist"]


def test_noisy_peace_still_reads_peace():
    m = motion(right=held(hand_shape("count_2"), seconds=1.5, lead=0.3))
    noisy = m.replace(
        joints=m.joints + np.random.default_rng(0).normal(0, 0.002, m.joints.shape).astype(np.float32)
    )
    obs = observe(noisy)
    assert {o.detail for o in of(obs, "shape")} == {"peace"}
    assert sum(o.duration for o in of(obs, "shape")) > 1.2
    assert not {o.kind for o in obs} & {"grip", "wave", "twist", "shake", "move", "flip", "circle"}


# -- wrist rotations --------------------------------------------------------------------------------
def _swings(t, amp, n, swing_s, lead=0.5):
    knots = [(0.0, 0.0), (lead, 0.0)]
    for k in range(2 * n):
        knots.append((lead + (k + 1) * swing_s, amp if k % 2 == 0 else -amp))
    knots += [(knots[-1][0] + 0.25, 0.0), (t[-1] + 1, 0.0)]
    return keys(t, knots)


def test_wave_three_times():
    t = times(3.0)
    dev = _swings(t, np.deg2rad(22), 3, 0.28)
    obs = observe(
        motion(right=track(len(t), hand_shape("open"), ORIENT["show"], REST + [0.07, 0.2, 0.04], dev=dev))
    )
    waves = of(obs, "wave")
    assert [(o.count, o.text().split("  ")[1]) for o in waves] == [(3, "right hand waves 3 times")]
    assert waves[0].value == pytest.approx(22, abs=2)
    assert 0.3 < waves[0].start < 0.6 and 2.2 < waves[0].end < 2.7  # swings 0.5-2.18 s, settled 2.43 s
    assert not of(obs, "twist") and not of(obs, "move") and not of(obs, "shake")
    assert [o.detail for o in of(obs, "palm")] == ["forward"]


def test_small_wiggle_is_no_wave():
    t = times(3.0)
    dev = _swings(t, np.deg2rad(8), 3, 0.28)  # 8 deg each way < 15 deg
    assert not of(
        observe(motion(right=track(len(t), hand_shape("open"), ORIENT["show"], REST, dev=dev))), "wave"
    )


def test_twist_twice_not_a_wave():
    t = times(3.0)
    roll = _swings(t, np.deg2rad(55), 2, 0.45)
    obs = observe(motion(right=track(len(t), hand_shape("relaxed"), ORIENT["neutral"], REST, roll=roll)))
    assert [o.count for o in of(obs, "twist")] == [2]
    assert not of(obs, "wave") and not of(obs, "flip")


def test_flip_three_times_and_palm_up_down():
    t = times(3.6)
    roll = keys(
        t, [(0, 0), (0.4, 0), (1.05, np.pi), (1.3, np.pi), (1.95, 0), (2.2, 0), (2.85, np.pi), (3.6, np.pi)]
    )
    obs = observe(motion(right=track(len(t), hand_shape("relaxed"), PALM_DOWN, REST, roll=roll)))
    flips = of(obs, "flip")
    assert [o.count for o in flips] == [3] and flips[0].text().endswith("right hand flips 3 times")
    assert [o.detail for o in of(obs, "palm")] == ["down", "up", "down", "up"]
    assert not of(obs, "twist")


def test_palm_up_hold():
    obs = observe(motion(right=held(hand_shape("open"), R=PALM_UP, seconds=1.0)))
    palms = of(obs, "palm")
    assert [o.detail for o in palms] == ["up"] and palms[0].duration > 0.9
    assert palms[0].text().endswith("right palm faces up")


# -- wrist translation ------------------------------------------------------------------------------
def test_move_up_12cm_and_left_hand_moves_left():
    t = times(2.0)
    up = keys(t, [(0, REST), (0.5, REST), (1.3, REST + [0, 0.12, 0]), (2.0, REST + [0, 0.12, 0])])
    lateral = keys(t, [(0, REST), (0.6, REST), (1.4, REST + [0.10, 0, 0]), (2.0, REST + [0.10, 0, 0])])
    obs = observe(motion(left=track(len(t), hand_shape("relaxed"), ORIENT["neutral"], lateral, side="left"),
                         right=track(len(t), hand_shape("relaxed"), ORIENT["neutral"], up)))  # fmt: skip
    (move,) = of(obs, "move")
    assert move.detail == "up" and move.value == pytest.approx(0.12, abs=0.005)
    assert 0.4 < move.start < 0.7 and 1.1 < move.end < 1.5
    assert move.text().endswith("right hand moves up 12 cm")
    (left,) = of(obs, "move", "left")
    assert left.detail == "left" and left.value == pytest.approx(
        0.10, abs=0.005
    )  # lateral = the subject's left


def test_forward_and_small_moves():
    t = times(2.0)
    fwd = keys(t, [(0, REST), (0.5, REST), (1.3, REST + [0, 0, -0.10]), (2.0, REST + [0, 0, -0.10])])
    assert [
        o.detail
        for o in of(
            observe(motion(right=track(len(t), hand_shape("relaxed"), ORIENT["neutral"], fwd))), "move"
        )
    ] == ["forward"]
    small = keys(t, [(0, REST), (0.5, REST), (1.3, REST + [0, 0.03, 0]), (2.0, REST + [0, 0.03, 0])])
    assert not of(
        observe(motion(right=track(len(t), hand_shape("relaxed"), ORIENT["neutral"], small))), "move"
    )


@pytest.mark.parametrize("turns", [1, 2])
def test_circle(turns):
    t = times(1.0 + 1.6 * turns)
    phase = 2 * np.pi * turns * min_jerk((t - 0.5) / (1.6 * turns))
    pos = REST + 0.05 * np.stack([np.cos(phase) - 1, np.sin(phase), 0 * phase], -1)
    obs = observe(motion(right=track(len(t), hand_shape("point"), ORIENT["point"], pos)))
    (circle,) = of(obs, "circle")
    assert circle.count == turns and circle.value == pytest.approx(0.05, abs=0.01)
    assert not of(obs, "move") and not of(obs, "shake")


def test_shake_left_right():
    t = times(2.5)
    env = np.clip((t - 0.5) / 0.2, 0, 1) * np.clip((2.3 - t) / 0.2, 0, 1)
    pos = REST + np.stack([0.025 * np.sin(2 * np.pi * 2.0 * (t - 0.5)) * env, 0 * t, 0 * t], -1)
    obs = observe(motion(right=track(len(t), hand_shape("fist"), ORIENT["neutral"], pos)))
    (shake,) = of(obs, "shake")
    assert (
        shake.detail == "left-right" and shake.count >= 3 and shake.value == pytest.approx(0.025, abs=0.006)
    )
    assert not of(obs, "move") and not of(obs, "wave")


def test_still_open_hand_shows_nothing_moving():
    obs = observe(motion(left=rest(61), right=held(hand_shape("open"), seconds=2.0)))
    assert {o.kind for o in obs} <= {"shape", "palm"}


# -- contacts ----------------------------------------------------------------------------------------
LEFT_PALM_POS = np.array([0.10, -0.10, -0.32])  # side frame of the left hand


def _target_hand(R_left):
    left = track(1, hand_shape("open"), R_left, LEFT_PALM_POS, side="left")
    return left, part_points(left, "left")["left_palm"][0]


def _pointer(t, tip_target, height):
    """Right hand pointing down whose index tip is at ``tip_target + (0, height(t), 0)``."""
    R = orientation((0.0, -1.0, -0.3), (0.0, 0.0, 1.0))
    local = track(1, hand_shape("point"), R, np.zeros(3))[0]
    wrist = tip_target - local[17] + np.stack([0 * t, height, 0 * t], -1)
    return track(len(t), hand_shape("point"), R, wrist)


def _taps(t, n, low, high=0.07, start=0.4, down=0.25, hold=0.15, up=0.25, pause=0.1):
    knots = [(0.0, high), (start, high)]
    for _ in range(n):
        s = knots[-1][0]
        knots += [
            (s + down, low),
            (s + down + hold, low),
            (s + down + hold + up, high),
            (s + down + hold + up + pause, high),
        ]
    knots.append((t[-1] + 1, high))
    return keys(t, knots)


def test_index_taps_left_palm_three_times():
    t = times(3.0)
    left, c = _target_hand(PALM_UP)
    obs = observe(motion(left=np.repeat(left, len(t), 0), right=_pointer(t, c, _taps(t, 3, 0.018))))
    contacts = of(obs, "contact", None)
    assert [(o.parts, o.detail) for o in contacts] == [(("right_index_tip", "left_palm"), "tap")] * 3
    assert all(o.slide_m < 0.005 and o.value < 0.02 for o in contacts)
    assert contacts[0].text().endswith("right index fingertip taps the left palm")
    assert not of(obs, "shake")  # tapping up and down is not a shake


def test_tap_on_the_back_of_the_hand():
    t = times(3.0)
    left, c = _target_hand(orientation((-0.2, 0.0, -1.0), (0.0, -1.0, 0.0)))  # palm down: its back faces up
    obs = observe(motion(left=np.repeat(left, len(t), 0), right=_pointer(t, c, _taps(t, 2, 0.02))))
    parts = {o.parts for o in of(obs, "contact", None)}
    assert parts == {("right_index_tip", "left_back")}


def test_press_and_rub_and_no_contact_at_4cm():
    t = times(2.5)
    left, c = _target_hand(PALM_UP)
    press = keys(t, [(0, 0.07), (0.4, 0.07), (0.7, 0.018), (1.9, 0.018), (2.2, 0.07), (2.5, 0.07)])
    (o,) = of(observe(motion(left=np.repeat(left, len(t), 0), right=_pointer(t, c, press))), "contact", None)
    assert (
        o.detail == "press"
        and o.duration > 1.0
        and o.text().endswith("right index fingertip presses the left palm")
    )
    # rub: the tip slides back and forth along the palm, 1.8 cm each way, twice
    x = 0.018 * np.sin(2 * np.pi * np.clip(t - 0.7, 0, 1.2) / 0.6)
    right = _pointer(t, c, press) + np.stack([x, 0 * t, 0 * t], -1)[:, None]
    (o,) = of(observe(motion(left=np.repeat(left, len(t), 0), right=right)), "contact", None)
    assert o.detail == "rub" and o.slide_m > 0.1
    away = keys(t, [(0, 0.07), (0.4, 0.07), (0.7, 0.04), (1.9, 0.04), (2.2, 0.07), (2.5, 0.07)])
    assert not of(
        observe(motion(left=np.repeat(left, len(t), 0), right=_pointer(t, c, away))), "contact", None
    )


def test_clap_palm_to_palm_and_pinch_within_a_hand():
    t = times(2.0)
    R = ORIENT["palm_medial"]  # palm toward the body midline
    local = track(1, hand_shape("open"), R, np.zeros(3))[0]
    from handx_robot.features import palm_centre

    x_touch = 0.015 - palm_centre(local)[0]  # right palm centre at x = +1.5 cm: centres 3 cm apart
    x = keys(t, [(0, 0.15), (0.4, 0.15), (0.8, x_touch), (1.1, x_touch), (1.5, 0.15), (2.0, 0.15)])
    pos = np.stack([x, 0 * t - 0.05, 0 * t - 0.35], -1)
    obs = observe(motion(left=track(len(t), hand_shape("open"), R, pos, side="left"),
                         right=track(len(t), hand_shape("open"), R, pos)))  # fmt: skip
    assert ("left_palm", "right_palm") in [o.parts for o in of(obs, "contact", None)]
    spacing = of(obs, "spacing", None)
    assert spacing and all(o.value >= 0.08 for o in spacing)
    pinch = of(observe(motion(right=held(hand_shape("pinch_index"), seconds=1.0))), "contact")
    assert [o.parts for o in pinch] == [("right_thumb_tip", "right_index_tip")] and pinch[0].side == "right"


# -- grip and spacing --------------------------------------------------------------------------------
def _grip_angles(D: float) -> np.ndarray:
    """grasp_spherical with the long fingers opened / closed and the thumb moved so that the thumb tip is
    ``D`` from the index and the middle tips, the thumb tip 0.6 palm lengths in front of the palm."""
    from scipy.optimize import least_squares

    from handx_robot.features import palm_centre

    base = hand_shape("grasp_spherical")
    th = [angle_index(f"thumb_{j}") for j in ("cmc_opp", "cmc_abd", "mcp", "ip")]
    flex = [
        angle_index(f"{f}_{j}") for f in ("index", "middle", "ring", "pinky") for j in ("mcp", "pip", "dip")
    ]

    def q(x):
        a = base.copy()
        a[flex] *= x[0]
        a[th] = x[1:]
        return a

    def res(x):
        J = forward_kinematics(q(x))
        return [np.linalg.norm(J[16] - J[17]) - D, np.linalg.norm(J[16] - J[18]) - D,
                0.2 * ((J[16] - palm_centre(J))[2] / np.linalg.norm(J[4] - J[0]) - 0.6)]  # fmt: skip

    x0 = np.r_[0.9, np.deg2rad([5.0, 40.0, 40.0, 20.0])]
    r = least_squares(res, x0, bounds=(np.r_[0.6, LIMITS_LOW[th]], np.r_[1.4, LIMITS_HIGH[th]]))
    assert np.abs(r.fun[:2]).max() < 1e-3
    return q(r.x)


def test_grip_of_a_7cm_object():
    obs = observe(motion(right=held(_grip_angles(0.07), R=ORIENT["grasp_side"], seconds=1.0, lead=0.3)))
    (grip,) = of(obs, "grip")
    assert grip.value == pytest.approx(0.07, abs=0.003) and grip.duration > 0.8
    assert grip.text().endswith("right hand grips a 7 cm object")
    cyl = of(observe(motion(right=held(hand_shape("grasp_cylindrical"), seconds=1.0))), "grip")
    assert len(cyl) == 1 and 0.02 < cyl[0].value < 0.05


@pytest.mark.parametrize("name", ["fist", "open", "relaxed", "pinch_index", "ok", "point"])
def test_no_grip(name):
    assert not of(observe(motion(right=held(hand_shape(name), seconds=1.0))), "grip")


def test_spacing_holding_a_box_and_backs_facing():
    T = 31
    facing = motion(left=track(T, hand_shape("open"), ORIENT["palm_medial"], [0.10, 0.0, -0.3], side="left"),
                    right=track(T, hand_shape("open"), ORIENT["palm_medial"], [0.10, 0.0, -0.3]))  # fmt: skip
    (sp,) = of(observe(facing), "spacing", None)
    L, R = facing.joints[0, 0], facing.joints[0, 1]
    from handx_robot.features import palm_centre

    assert (
        sp.value == pytest.approx(float(np.linalg.norm(palm_centre(L) - palm_centre(R))), abs=1e-4)
        and sp.value > 0.08
    )
    assert sp.text().endswith(f"the palms face each other {sp.value * 100:.0f} cm apart")
    away = orientation((0.0, 0.35, -1.0), (1.0, 0.0, 0.0))  # palms turned outward: backs face each other
    backs = motion(left=track(T, hand_shape("open"), away, [0.10, 0.0, -0.3], side="left"),
                   right=track(T, hand_shape("open"), away, [0.10, 0.0, -0.3]))  # fmt: skip
    assert not of(observe(backs), "spacing", None)


# -- symmetry, frames, absent hands ----------------------------------------------------------------
def _swap(name: str) -> str:
    return ("right" + name[4:]) if name.startswith("left") else ("left" + name[5:])


def test_left_right_mirror_symmetry():
    t = times(3.0)
    left, c = _target_hand(PALM_UP)
    dev = _swings(t, np.deg2rad(22), 2, 0.28)
    m = motion(left=np.repeat(left, len(t), 0), right=_pointer(t, c, _taps(t, 2, 0.018)))
    m2 = motion(left=track(len(t), hand_shape("open"), ORIENT["show"], REST + [0.07, 0.2, 0.04], dev=dev, side="left"),
                right=track(len(t), hand_shape("count_2"), ORIENT["show"], REST + [0, 0.2, 0]))  # fmt: skip
    for mo in (m, m2):
        a = observe(mo)
        b = observe(mo.mirrored())
        key_a = sorted((o.kind, o.side, round(o.start, 3), o.detail, o.count, frozenset(o.parts)) for o in a)
        swap = {"left": "right", "right": "left", None: None}
        key_b = sorted((o.kind, swap[o.side], round(o.start, 3), o.detail, o.count, frozenset(map(_swap, o.parts)))
                       for o in b)  # fmt: skip
        assert key_a == key_b and len(a) > 3


def test_world_zup_motion_gives_the_same_observations():
    t = times(2.0)
    up = keys(t, [(0, REST), (0.5, REST), (1.3, REST + [0, 0.12, 0]), (2.0, REST + [0, 0.12, 0])])
    m = motion(right=track(len(t), hand_shape("count_2"), PALM_UP, up))
    z = m.replace(joints=change_frame(m.joints, m.frame, FRAME_WORLD_ZUP), frame=FRAME_WORLD_ZUP)
    assert observation_lines(observe(z)) == observation_lines(observe(m))
    assert [o.detail for o in of(observe(z), "move")] == ["up"]


def test_absent_and_degenerate_hands_give_no_observations():
    t = times(3.0)
    dev = _swings(t, np.deg2rad(22), 3, 0.28)
    wave = track(len(t), hand_shape("open"), ORIENT["show"], REST + [0.07, 0.2, 0.04], dev=dev, side="left")
    obs = observe(motion(left=wave))  # right hand absent
    assert obs and all(o.side == "left" for o in obs) and of(obs, "wave", "left")
    flat = np.zeros((len(t), 21, 3))  # a "present" hand that is all zeros: no valid frame
    obs2 = observe(motion(left=wave, right=flat))
    assert observation_lines(obs2) == observation_lines(obs)
    gappy = wave.copy()
    gappy[40:45] = 0.0  # a few missing (zero) frames inside the wave
    assert of(observe(motion(left=gappy)), "wave", "left")


# -- API details ---------------------------------------------------------------------------------------
def test_config_validation():
    GestureConfig()
    for bad in ({"long_half_min": 0.5}, {"tap_max_s": 0.0}, {"move_speed": -1.0}, {"palm_stay_cos": 0.8},
                {"thumb_extended_min": 1.5}, {"shake_min_cycles": 1.5}, {"tip_tip_m": float("nan")}):  # fmt: skip
        with pytest.raises(ConfigError):
            GestureConfig(**bad)
    loose = GestureConfig(wave_min_deg=5.0)
    t = times(3.0)
    dev = _swings(t, np.deg2rad(8), 3, 0.28)
    assert of(
        observe(motion(right=track(len(t), hand_shape("open"), ORIENT["show"], REST, dev=dev)), loose), "wave"
    )


def test_observation_text_and_dict():
    o = Observation(
        "contact",
        None,
        1.2,
        1.35,
        detail="tap",
        parts=("right_index_tip", "left_palm"),
        value=0.018,
        slide_m=0.002,
    )
    assert o.text() == "1.20–1.35 s  right index fingertip taps the left palm"
    d = json.loads(json.dumps(o.to_dict()))
    assert d["parts"] == ["right_index_tip", "left_palm"] and d["detail"] == "tap" and d["value"] == 0.018
    m = Observation("move", "left", 2.0, 2.9, detail="up", value=0.12)
    assert m.text() == "2.00–2.90 s  left hand moves up 12 cm" and np.isnan(m.slide_m)
    assert json.loads(json.dumps(m.to_dict()))["slide_m"] is None
    assert Observation("wave", "right", 0, 1, count=3).text().endswith("right hand waves 3 times")
    with pytest.raises(ConfigError):
        Observation("dance", "right", 0.0, 1.0)
    with pytest.raises(ConfigError):
        Observation("move", "right", 1.0, 0.5)


def test_observe_is_sorted_and_fast():
    t = times(10.0)
    dev = _swings(t, np.deg2rad(22), 8, 0.28)
    roll = _swings(t, np.deg2rad(55), 5, 0.45, lead=1.0)
    m = motion(left=track(len(t), hand_shape("open"), ORIENT["show"], REST + [0.07, 0.2, 0.04], dev=dev, side="left"),
               right=track(len(t), hand_shape("relaxed"), ORIENT["neutral"], REST, roll=roll))  # fmt: skip
    obs = observe(m)
    assert [(o.start, o.kind, o.side or "") for o in obs] == sorted(
        (o.start, o.kind, o.side or "") for o in obs
    )
    best = min(_timed(observe, m) for _ in range(3))
    assert best < 0.25, f"observe took {best * 1000:.0f} ms for 10 s of two hands"


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


# -- CLI --------------------------------------------------------------------------------------------------
def test_cli_describe_prints_observations(tmp_path, capsys):
    path = tmp_path / "peace.npz"
    save_motion(motion(left=rest(46), right=held(hand_shape("count_2"), seconds=1.0, lead=0.5)), path)
    assert main(["describe", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    shapes = [o for o in data["observations"] if o["kind"] == "shape"]
    assert [(o["side"], o["detail"]) for o in shapes] == [("right", "peace")]
    assert data["observations"][0]["text"] and "events" in data
    assert main(["describe", str(path)]) == 0
    text = capsys.readouterr().out
    head, _, observed = text.partition("observed:\n")
    assert "hands: left, right" in head and "right hand: peace (thumb curled" in observed
