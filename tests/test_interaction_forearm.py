"""The dex-urdf Shadows' forearms turned out of each other's way before the bimanual solve
(handx_robot.retarget.interaction.forearm): the palms and fingers stay where the per-hand solution put them, and a
press of the palms is then reached with the fingers straight, not bent around the other hand."""

from __future__ import annotations

import numpy as np
import pytest
from handx_robot.retarget.bimanual import retarget_hand, retarget_motion
from handx_robot.retarget.interaction import BimanualRefiner, forearm
from handx_robot.retarget.interaction.palm import wrist_poses
from hypothesis import given, settings
from hypothesis import strategies as st

from handx_robot.frames import FRAME_WORLD_ZUP
from handx_robot.generate import generate

PEN_MAX_M = 0.002


@pytest.fixture(scope="module")
def press(dex_urdf_dir):
    """The per-hand solution of both dex-urdf Shadows for "press the palms together" (seed 0): (refiner, T0, q0,
    fps)."""
    m = generate("press the palms together", seed=0).in_frame(FRAME_WORLD_ZUP)
    hands = {s: retarget_hand(m.joints[:, h], s, f"shadow_{s}", assets=dex_urdf_dir) for h, s in enumerate(("left", "right"))}
    refiner = BimanualRefiner({s: hr.problem for s, hr in hands.items()})
    return refiner, {s: hr.T_world_base for s, hr in hands.items()}, {s: hr.result.q for s, hr in hands.items()}, m.fps


def test_the_turn_keeps_the_palms_and_fingers_and_takes_the_forearms_apart(press, monkeypatch):
    refiner, T0, q0, fps = press
    T1, q1 = forearm.turn_forearms(refiner, T0, q0, fps)
    turned = np.zeros(len(q0["left"]), dtype=bool)
    for s in ("left", "right"):
        prob, wj = refiner.problems[s], refiner._wrist[s]
        np.testing.assert_allclose(wrist_poses(prob, T1[s], q1[s]), wrist_poses(prob, T0[s], q0[s]), atol=1e-9)
        wrist = refiner.world.dofs[s][wj.pos]
        others = np.setdiff1d(np.arange(q0[s].shape[1]), wrist)
        np.testing.assert_array_equal(q1[s][:, others], q0[s][:, others])  # the fingers as they were
        assert (q1[s] >= prob.lower - 1e-12).all() and (q1[s] <= prob.upper + 1e-12).all()
        turned |= np.abs(q1[s] - q0[s]).max(axis=1) > 0
        # the turn ramps in and out: the base's turn changes by a small part of a radian per frame
        step = [np.arccos(np.clip((np.trace(T1[s][t, :3, :3].T @ T1[s][t + 1, :3, :3]) - 1) / 2, -1, 1))
                - np.arccos(np.clip((np.trace(T0[s][t, :3, :3].T @ T0[s][t + 1, :3, :3]) - 1) / 2, -1, 1))
                for t in range(len(T0[s]) - 1)]  # fmt: skip
        assert max(step) < 0.1, max(step)
    assert turned.any()
    # where the palms are closest, moved apart until they just touch: the per-hand forearms pass into the other hand,
    # the turned ones do not
    palms = {s: wrist_poses(refiner.problems[s], T0[s], q0[s])[:, :3, 3] for s in ("left", "right")}
    t = int(np.argmin(np.linalg.norm(palms["left"] - palms["right"], axis=1)))
    u = (palms["right"][t] - palms["left"][t]) / np.linalg.norm(palms["right"][t] - palms["left"][t])
    tr = forearm._Turner(refiner)
    monkeypatch.setattr(forearm, "CLEAR_M", 0.0)
    for T, q, clear in ((T0, q0, False), (T1, q1, True)):
        qt = {s: q[s][t] for s in q}
        assert tr.clear(tr.apart({s: T[s][t] for s in T}, qt, u), qt, arms=True) is clear


@settings(max_examples=25, deadline=None)
@given(frame=st.integers(0, 200), angle=st.floats(-0.6, 0.6), k=st.integers(0, 1))
def test_turning_a_base_about_a_wrist_joint_and_the_joint_back_keeps_the_palm(press, frame, angle, k):
    refiner, T0, q0, _ = press
    tr = forearm._Turner(refiner)
    f = frame % len(q0["right"])
    T, q = {s: T0[s][f] for s in T0}, {s: q0[s][f].copy() for s in q0}
    anchor, axis = tr.axes(T, q)["right"][k]
    prob = refiner.problems["right"]
    T1 = tr.turned(T["right"], anchor, axis, angle)
    q1 = q["right"].copy()
    q1[tr.joints["right"][k][0]] -= angle
    np.testing.assert_allclose(wrist_poses(prob, T1[None], q1[None]), wrist_poses(prob, T["right"][None], q["right"][None]), atol=1e-9)


def test_palms_pressed_together_with_the_fingers_straight(dex_urdf_dir, monkeypatch):
    """Against the same solve without the turn: the fingertips' shape error and the joints' acceleration fall, the
    palms stay nearer the per-hand solution's, the contacts are reached alike and nothing penetrates. The report's
    objective (the fingers' shape in the palm frame) stays near the per-hand solution's: the forearms' turn is not
    counted as a change of the fingers' shape."""

    def solve():
        rm, rep = retarget_motion(motion, "shadow_left", "shadow_right", assets=dex_urdf_dir, interaction="auto")
        accel = np.mean([np.sqrt(np.mean(np.diff(h.qpos, 2, axis=0) ** 2)) for h in rm.hands.values()])
        return rep["interaction"], accel, rep

    motion = generate("press the palms together", seed=0)
    with_turn = solve()
    monkeypatch.setattr(forearm, "NEAR_M", 0.0)
    without = solve()
    sec1, sec0 = with_turn[0], without[0]
    tip = [float(np.mean([r["hands"][s]["fingertip_shape_error_m"]["mean"] for s in ("left", "right")]))
           for r in (with_turn[2], without[2])]  # fmt: skip
    assert tip[0] < tip[1], tip
    assert with_turn[1] < without[1], (with_turn[1], without[1])
    assert sec1["wrist_deviation_m"]["max"] < sec0["wrist_deviation_m"]["max"]
    assert sec1["contact_f1"]["inter_hand"]["recall"] >= sec0["contact_f1"]["inter_hand"]["recall"]
    assert sec1["hand_hand_penetration_m"]["max"] <= PEN_MAX_M and sec1["self_penetration_m"]["max"] <= PEN_MAX_M
    per_hand = retarget_motion(motion, "shadow_left", "shadow_right", assets=dex_urdf_dir, interaction="off")[1]
    objective = [float(np.mean([r["hands"][s]["objective"]["mean"] for s in ("left", "right")])) for r in (with_turn[2], per_hand)]
    assert objective[0] < 1.3 * objective[1], objective
