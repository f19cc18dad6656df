"""Features, contact events, metrics and skeleton rendering (handx_robot.features / metrics / render).

``make_hand`` / ``make_motion`` build exact synthetic hands (HandX order, metres) that the other test
modules of issue 3 import.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handx_robot.errors import ConfigError, MotionValueError
from handx_robot.features import (
    ContactConfig,
    ContactEvent,
    compute_features,
    contact_events,
    contact_mask_with_hysteresis,
    contact_pairs,
    describe,
    events_from_distances,
    finger_flexion,
    hand_openness,
    palm_centre,
    pinch_distances,
    segments_from_mask,
    wrist_speed,
)
from handx_robot.metrics import contact_stats, event_f1, jerk, mpjpe, temporal_iou
from handx_robot.motion import BimanualMotion

FPS = 30.0
_BASES = {"index": (1, 17, 0.025, 0.088), "middle": (4, 18, 0.0, 0.092),
          "ring": (10, 19, -0.017, 0.087), "pinky": (7, 20, -0.032, 0.080)}  # fmt: skip
_SEG = (0.040, 0.025, 0.020)
_THUMB_DIR = np.array([0.3, 0.6, 0.7]) / np.linalg.norm([0.3, 0.6, 0.7])


def make_hand(curl: float = 0.0, side: str = "right", R: np.ndarray | None = None, t=(0.0, 0.0, 0.0)) -> np.ndarray:
    """One hand ``(21, 3)`` HandX order. In its wrist frame (before ``R``, ``t``): x = palm normal,
    y = thumb side (right hand), z = toward the middle MCP, so ``wrist_rotation`` of it is exactly ``R``.
    ``curl`` bends each finger joint (MCP-PIP, PIP-DIP, DIP-tip bones) by ``curl`` radians toward the palm.
    """
    J = np.zeros((21, 3))
    for _finger, (i0, tip, y, z) in _BASES.items():
        p = np.array([0.0, y, z])
        J[i0] = p
        for k in range(3):
            a = curl * (k + 1)
            p = p + _SEG[k] * np.array([np.sin(a), 0.0, np.cos(a)])
            J[i0 + 1 + k if k < 2 else tip] = p
    cmc = np.array([0.01, 0.03, 0.02])
    for i, d in zip((13, 14, 15, 16), (0.0, 0.04, 0.072, 0.10)):
        J[i] = cmc + d * _THUMB_DIR
    if side == "left":
        J[:, 1] *= -1.0
    if R is not None:
        J = J @ np.asarray(R).T
    return (J + np.asarray(t)).astype(np.float32)


def make_motion(T: int = 30, curl: float = 0.2, fps: float = FPS, sep: float = 0.25) -> BimanualMotion:
    """Two static hands, palms facing down-ish, ``sep`` metres apart along x (HandX Y-up)."""
    R = _rot_x(-np.pi / 2)  # fingers forward (-z), palm normal down? any proper rotation works
    left = make_hand(curl, "left", R, (-sep / 2, 1.0, 0.0))
    right = make_hand(curl, "right", R, (sep / 2, 1.0, 0.0))
    joints = np.broadcast_to(np.stack([left, right]), (T, 2, 21, 3)).copy()
    return BimanualMotion(joints=joints, fps=fps)


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


# -- per-frame features ---------------------------------------------------------------------
def test_flexion_and_openness_of_known_curls():
    straight = make_hand(0.0)
    assert_flex = finger_flexion(straight)
    np.testing.assert_allclose(assert_flex[[0, 2]], 0.0, atol=1e-3)  # thumb and middle exactly straight
    np.testing.assert_allclose(hand_openness(straight), 1.0, atol=1e-6)
    for curl in (0.3, 0.7, 1.2):
        flex = finger_flexion(make_hand(curl))
        # middle finger: wrist->MCP is along z, so the three bends are curl, curl, curl
        np.testing.assert_allclose(flex[2], 3 * curl, atol=1e-4)
    opens = [float(hand_openness(make_hand(c))) for c in (0.0, 0.4, 0.8, 1.2)]
    assert all(a > b for a, b in zip(opens, opens[1:])), opens
    assert opens[-1] < 0.75


def test_features_are_rotation_and_translation_invariant():
    rng = np.random.default_rng(1)
    base = make_hand(0.5)
    moved = make_hand(0.5, R=random_rotation(rng), t=(0.3, -0.2, 1.0))
    np.testing.assert_allclose(finger_flexion(moved), finger_flexion(base), atol=2e-4)
    np.testing.assert_allclose(hand_openness(moved), hand_openness(base), atol=1e-5)
    np.testing.assert_allclose(pinch_distances(moved), pinch_distances(base), atol=1e-5)


def test_pinch_distances_and_palm_centre():
    hand = make_hand(0.3)
    hand[16] = hand[17] + np.array([0.003, 0.004, 0.0], dtype=np.float32)  # thumb tip 5 mm from index tip
    d = pinch_distances(hand)
    assert d.shape == (4,)
    np.testing.assert_allclose(d[0], 0.005, atol=1e-6)
    np.testing.assert_allclose(palm_centre(hand), hand[[0, 1, 4, 10, 7]].mean(axis=0), atol=1e-7)


def test_wrist_speed_of_constant_velocity():
    v = np.array([0.3, 0.0, 0.4])  # 0.5 m/s
    T = 10
    hand = make_hand(0.2)
    J = np.stack([hand + v * (i / FPS) for i in range(T)])
    np.testing.assert_allclose(wrist_speed(J, FPS), 0.5, rtol=1e-4)


def test_compute_features_shapes_and_absent_hand_is_nan():
    m = make_motion(T=12)
    m = m.replace(present=np.array([False, True]))
    f = compute_features(m)
    assert f.flexion.shape == (12, 2, 5) and f.openness.shape == (12, 2) and f.pinch.shape == (12, 2, 4)
    assert f.palm_centre.shape == (12, 2, 3) and f.wrist_speed.shape == (12, 2)
    assert np.all(np.isnan(f.flexion[:, 0])) and np.all(np.isfinite(f.flexion[:, 1]))
    assert set(f.summary()) == {"right"}


# -- contact machinery ----------------------------------------------------------------------
def _reference_hysteresis(d: np.ndarray, thr: float, ratio: float) -> np.ndarray:
    out = np.zeros(d.shape, dtype=bool)
    for p in range(d.shape[1]):
        on = False
        for i in range(d.shape[0]):
            on = bool(d[i, p] < thr or (on and d[i, p] < thr * ratio))
            out[i, p] = on
    return out


def test_hysteresis_matches_state_machine_on_random_data():
    rng = np.random.default_rng(0)
    # a random walk crossing the threshold band many times, across block boundaries (8192)
    d = 1.0 + np.cumsum(rng.normal(0, 0.05, (9000, 3)), axis=0) % 0.8 - 0.4 + 0.2 * (rng.random((9000, 3)) > 0.99)
    np.testing.assert_array_equal(contact_mask_with_hysteresis(d, 1.0, 1.2), _reference_hysteresis(d, 1.0, 1.2))


def test_hysteresis_does_not_start_in_the_band():
    # approaching through the band: not in contact until below the threshold; leaving through it: still in contact
    d = np.array([2.0, 1.1, 1.1, 0.9, 1.1, 1.15, 1.3, 1.1])[:, None]
    np.testing.assert_array_equal(contact_mask_with_hysteresis(d, 1.0, 1.2)[:, 0], [0, 0, 0, 1, 1, 1, 0, 0])
    assert not contact_mask_with_hysteresis(np.array([[np.nan], [np.nan]]), 1.0).any()


@pytest.mark.parametrize(
    ("mask", "min_dur", "gap", "expected"),
    [
        ([0, 0, 0], 0.0, 0.0, []),
        ([1, 1, 1], 0.0, 0.0, [(0.0, 3.0)]),
        ([0, 1, 1, 0, 1], 0.0, 0.0, [(1.0, 3.0), (4.0, 5.0)]),
        ([0, 1, 1, 0, 1], 0.0, 1.0, [(1.0, 5.0)]),  # 1-frame gap closed
        ([1, 0, 1, 1, 1, 0], 2.0, 0.0, [(2.0, 5.0)]),  # 1-frame run dropped
        ([1, 0, 0, 1], 0.0, 1.0, [(0.0, 1.0), (3.0, 4.0)]),  # 2-frame gap kept
    ],
)
def test_segments_from_mask(mask, min_dur, gap, expected):
    assert segments_from_mask(np.array(mask, dtype=bool), 1.0, min_dur, gap) == expected


def test_segments_from_mask_rejects_bad_input():
    with pytest.raises(MotionValueError, match=r"shape \(T,\)"):
        segments_from_mask(np.zeros((3, 2), dtype=bool), 30.0)
    with pytest.raises(MotionValueError, match="fps"):
        segments_from_mask(np.zeros(3, dtype=bool), 0.0)


def _pinch_motion(start: int, end: int, T: int = 60) -> BimanualMotion:
    m = make_motion(T=T)
    J = m.joints.copy()
    J[start:end, 1, 16] = J[start:end, 1, 17] + np.float32([0.004, 0, 0])  # right thumb tip 4 mm from index tip
    return m.replace(joints=J)


def test_pinch_event_times_and_description():
    m = _pinch_motion(12, 34)
    events = contact_events(m)
    pinches = [e for e in events if e.kind == "pinch"]
    assert len(pinches) == 1, events
    ev = pinches[0]
    assert (ev.a, ev.b) == ("right_thumb_tip", "right_index_tip")
    assert ev.start == pytest.approx(12 / FPS) and ev.end == pytest.approx(34 / FPS)
    assert ev.min_distance == pytest.approx(0.004, abs=1e-6)
    text = describe(m)
    assert "right thumb and index pinch 0.40–1.13 s" in text
    data = json.loads(describe(m, as_json=True))
    assert data["events"][0]["a"] == "right_thumb_tip" and data["frames"] == 60
    assert data["contact_stats"]["contact_ratio"] == pytest.approx(22 / 60)
    assert "contacts: 1 events, contact ratio 0.37" in text


def test_static_open_hands_have_no_contacts():
    m = make_motion(T=20)
    assert contact_events(m) == []
    assert "no contacts" in describe(m)


def test_short_blips_are_not_events_and_flicker_is_one_event():
    m = _pinch_motion(20, 22)  # 2 frames = 0.067 s < 0.1 s minimum
    assert [e for e in contact_events(m) if e.kind == "pinch"] == []
    # flicker: in contact with single-frame dropouts out of the band -> one event (gap closing)
    J = m.joints.copy()
    J[:, 1, 16] = J[0, 1, 16]
    for i in range(11, 40):  # dropouts at 15, 20, ..., 35
        J[i, 1, 16] = J[i, 1, 17] + np.float32([0.004 if i % 5 else 0.03, 0, 0])
    ev = [e for e in contact_events(m.replace(joints=J)) if e.kind == "pinch"]
    assert len(ev) == 1 and ev[0].start == pytest.approx(11 / FPS) and ev[0].end == pytest.approx(40 / FPS)
    assert len([e for e in contact_events(m.replace(joints=J), ContactConfig(max_gap=0.0)) if e.kind == "pinch"]) > 1


def test_clap_and_inter_hand_contacts():
    T = 30
    # right hand palm facing -x (toward the left hand), left palm facing +x, palms 3 cm apart
    R_right = np.array([[-1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=float)  # x->-x, y->z, z->y (det +1)
    R_left = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)  # x->x, z->y (det +1)
    assert np.linalg.det(R_right) == pytest.approx(1) and np.linalg.det(R_left) == pytest.approx(1)
    right = make_hand(0.0, "right", R_right, (0.015, 1.0, 0.0))
    left = make_hand(0.0, "left", R_left, (-0.015, 1.0, 0.0))
    far = np.array([0.5, 0, 0], dtype=np.float32)
    joints = np.stack([np.stack([left - far, right + far])] * T)
    joints[10:25] = np.stack([left, right])
    m = BimanualMotion(joints=joints, fps=FPS)
    events = contact_events(m)
    kinds = {e.kind for e in events}
    assert "palm_palm" in kinds, events
    clap = next(e for e in events if e.kind == "palm_palm")
    assert clap.start == pytest.approx(10 / FPS) and clap.end == pytest.approx(25 / FPS)
    assert kinds == {"palm_palm"}  # straight fingertips stay 3 cm apart: no tip contact
    assert "palms touch (clap) 0.33–0.83 s" in describe(m)
    # right hand moved so its index tip rests 1 cm from the left palm centre for 0.5 s
    J = joints.copy()
    J[:, 1] += np.float32([0.3, 0, 0])
    J[3:18, 1] += (palm_centre(J[3:18, 0]) + np.float32([0.0, 0.0, 0.01]) - J[3:18, 1, 17])[:, None]
    events = contact_events(m.replace(joints=J))
    assert ("inter_tip_palm", "right_index_tip", "left_palm") in [(e.kind, e.a, e.b) for e in events], events
    assert "right index tip touches left palm 0.10–0.60 s" in describe(m.replace(joints=J))


def test_contact_pairs_cover_both_hands_and_skip_neighbours():
    pairs = contact_pairs((True, True))
    names = {(a, b) for _, a, b, _ in pairs}
    assert ("right_thumb_tip", "right_index_tip") in names
    assert ("right_index_tip", "right_middle_tip") not in names
    assert ("left_palm", "right_palm") in names
    assert len(pairs) == 2 * (7 + 5) + 25 + 10 + 1
    assert len(contact_pairs((False, True))) == 12
    assert len(contact_pairs((True, True), ContactConfig(adjacent_tips=True))) == 2 * (10 + 5) + 36


def test_events_from_distances_generic_robot_names():
    d = np.full(30, 0.05)
    d[5:20] = 0.01
    ev = events_from_distances({("pinch", "right_thumb_tip", "right_index_tip"): d}, FPS)
    assert len(ev) == 1 and ev[0].start == pytest.approx(5 / FPS) and ev[0].end == pytest.approx(20 / FPS)
    ev2 = events_from_distances([("custom", "robot_a", "robot_b", d, 0.02)], FPS)
    assert ev2[0].kind == "custom" and ev2[0].duration == pytest.approx(15 / FPS)
    with pytest.raises(MotionValueError, match="no threshold for kind.*'grasp'"):
        events_from_distances({("grasp", "a", "b"): d}, FPS)
    assert events_from_distances({("grasp", "a", "b"): d}, FPS, thresholds={"grasp": 0.02})[0].kind == "grasp"


def test_contact_events_from_named_points_match_motion_events():
    from handx_robot.features import contact_events_from_points, contact_points

    m = _pinch_motion(12, 34)
    points = contact_points(m.joints)  # what a robot would provide: named fingertip / palm trajectories
    key = lambda evs: [(e.kind, e.a, e.b, e.start, e.end, round(e.min_distance, 6)) for e in evs]  # noqa: E731
    assert key(contact_events_from_points(points, m.fps)) == key(contact_events(m))
    # a robot hand with only thumb and index tips still gets its pinch
    sub = {k: v for k, v in points.items() if k in ("right_thumb_tip", "right_index_tip")}
    ev = contact_events_from_points(sub, m.fps)
    assert [(e.kind, e.a, e.b) for e in ev] == [("pinch", "right_thumb_tip", "right_index_tip")]
    assert event_f1(ev, contact_events(m))["f1"] == 1.0
    with pytest.raises(MotionValueError, match=r"\(T, 3\)"):
        contact_events_from_points({"right_thumb_tip": np.zeros((5, 3)), "right_index_tip": np.zeros((6, 3))}, FPS)


def test_contact_config_validation():
    with pytest.raises(MotionValueError, match="tip_tip"):
        ContactConfig(tip_tip=0.0)
    with pytest.raises(MotionValueError, match="exit_ratio"):
        ContactConfig(exit_ratio=0.5)


# -- metrics ---------------------------------------------------------------------------------
def _ev(a, b, s, e, kind="pinch"):
    return ContactEvent(kind, a, b, s, e)


def test_temporal_iou():
    assert temporal_iou(0, 2, 1, 3) == pytest.approx(1 / 3)
    assert temporal_iou(0, 1, 2, 3) == 0.0
    assert temporal_iou(0, 2, 0, 2) == 1.0


def test_contact_stats():
    evs = [_ev("a", "b", 0.0, 1.0), _ev("a", "c", 0.5, 1.5), _ev("a", "b", 3.0, 3.5)]
    s = contact_stats(evs, duration=5.0)
    assert s["contact_ratio"] == pytest.approx(2.0 / 5.0)
    assert s["mean_contact_duration"] == pytest.approx((1.0 + 1.0 + 0.5) / 3)
    assert s["contact_frequency"] == pytest.approx(3 / 5.0) and s["num_events"] == 3
    assert contact_stats([], 2.0)["contact_ratio"] == 0.0
    with pytest.raises(MotionValueError):
        contact_stats(evs, 0.0)


def test_event_f1():
    ref = [_ev("r_thumb", "r_index", 0.0, 1.0), _ev("l_palm", "r_palm", 2.0, 3.0)]
    assert event_f1(ref, ref)["f1"] == 1.0
    # swapped participant order still matches; shifted by 0.1 s still IoU > 0.5
    pred = [_ev("r_index", "r_thumb", 0.1, 1.1)]
    r = event_f1(pred, ref)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 1)
    assert r["precision"] == 1.0 and r["recall"] == 0.5 and r["f1"] == pytest.approx(2 / 3)
    # wrong participants or too little overlap: no match
    assert event_f1([_ev("r_thumb", "r_middle", 0.0, 1.0)], ref)["tp"] == 0
    assert event_f1([_ev("r_thumb", "r_index", 0.8, 2.0)], ref, iou_threshold=0.5)["tp"] == 0
    # one-to-one: two predictions for one reference -> 1 tp, 1 fp
    r = event_f1([_ev("r_thumb", "r_index", 0.0, 1.0), _ev("r_thumb", "r_index", 0.05, 1.0)], ref[:1])
    assert (r["tp"], r["fp"]) == (1, 1)
    # rename maps robot names onto human names
    robot = [_ev("thumb_link_tip", "r_index", 0.0, 1.0)]
    assert event_f1(robot, ref[:1], rename=lambda n: {"thumb_link_tip": "r_thumb"}.get(n, n))["f1"] == 1.0
    assert event_f1([], [])["f1"] == 1.0


def test_mpjpe_and_jerk():
    a = np.zeros((5, 21, 3))
    b = a.copy()
    b[..., 0] = 0.01
    assert mpjpe(b, a) == pytest.approx(0.01)
    assert mpjpe(b, a, root=0) == pytest.approx(0.0)
    with pytest.raises(MotionValueError):
        mpjpe(a[:, :20], a)
    t = np.arange(20) / FPS
    quad = np.stack([t**2, 0 * t, 0 * t], axis=1)[:, None]
    assert jerk(quad, FPS) == pytest.approx(0.0, abs=1e-6)
    cubic = np.stack([t**3, 0 * t, 0 * t], axis=1)[:, None]
    assert jerk(cubic, FPS) == pytest.approx(6.0, rel=1e-6)
    with pytest.raises(MotionValueError):
        jerk(quad[:3], FPS)


# -- rendering -------------------------------------------------------------------------------
def test_renderer_draws_frames_with_contacts(tmp_path):
    from handx_robot.render import SkeletonRenderer, plot_contact_timeline, render_video

    m = _pinch_motion(5, 15, T=20)
    r = SkeletonRenderer(320, 160, views=("front", "top"))
    r.fit(m.joints)
    fig = r.fig
    img = r.draw(m.joints[0], contacts=())
    assert img.shape == (160, 320, 3) and img.dtype == np.uint8
    assert (img < 250).any(), "blank frame"
    red = lambda im: int(((im[..., 0] > 180) & (im[..., 1] < 90) & (im[..., 2] < 90)).sum())  # noqa: E731
    img_c = r.draw(m.joints[6], contacts=("right_thumb_tip", "right_palm"))
    assert red(img_c) > red(img) + 10
    assert r.fig is fig  # one figure reused across draws
    with pytest.raises(ConfigError):
        SkeletonRenderer(320, 160, views=("diagonal",))

    video = render_video(m, tmp_path / "m.mp4", width=320, height=160, progress=False)
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(video))
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == 20 and frames[0].shape == (160, 320, 3)
    with pytest.raises(ConfigError, match="even"):
        render_video(m, tmp_path / "odd.mp4", width=321, height=160, progress=False)
    assert not (tmp_path / "odd.mp4").exists()
    png = plot_contact_timeline(contact_events(m), m.duration, tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _event_f1_all_pairs(pred, ref, iou_threshold, rename):
    """What event_f1 computes, scoring every predicted event against every reference event."""
    cands = sorted(((iou, i, j) for i, p in enumerate(pred) for j, r in enumerate(ref)
                    if frozenset((rename(p.a), rename(p.b))) == frozenset((r.a, r.b))
                    and (iou := temporal_iou(p.start, p.end, r.start, r.end)) >= iou_threshold and iou > 0),
                   key=lambda c: (-c[0], c[1], c[2]))  # fmt: skip
    used_p, used_r, matches = set(), set(), []
    for iou, i, j in cands:
        if i not in used_p and j not in used_r:
            used_p.add(i), used_r.add(j), matches.append((i, j, iou))
    return sorted(matches)


_EVENTS = st.lists(st.tuples(st.sampled_from([("r_thumb", "r_index"), ("r_index", "r_thumb"), ("l_palm", "r_palm"),
                                              ("thumb_link_tip", "r_index")]),
                             st.integers(0, 40), st.integers(0, 8)), max_size=25)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(_EVENTS, _EVENTS, st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_event_f1_scores_only_overlapping_events_and_matches_as_all_pairs_would(pred, ref, thr):
    """event_f1 looks up only the reference events that can overlap a predicted one: the matches are those
    of scoring all pairs, with zero-length, overlapping and repeated events, and renamed participants."""
    pe = [_ev(a, b, t / 10, (t + d) / 10) for (a, b), t, d in pred]
    re_ = [_ev(a, b, t / 10, (t + d) / 10) for (a, b), t, d in ref if a != "thumb_link_tip"]
    rename = {"thumb_link_tip": "r_thumb"}.get
    out = event_f1(pe, re_, iou_threshold=thr, rename=lambda n: rename(n, n))
    assert out["matches"] == _event_f1_all_pairs(pe, re_, thr, lambda n: rename(n, n))
    assert out["tp"] == len(out["matches"])
