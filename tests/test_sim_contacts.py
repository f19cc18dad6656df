"""Hands driven into each other (a retargeted clap whose wrist targets interpenetrate) stay stable.

Regression test for "physics diverged before motion frame 53" on ``handx-robot run "clap twice" --seed 2``:
the built-in Shadow hands, palms facing along world x, wrist targets that overlap by up to ~25 mm (the
pose of frame 35 of the seed-3 clap, fingers as retargeted there, lifted 0.4 m above the floor).
"""

from __future__ import annotations

import numpy as np
import pytest
from handx_robot.retarget.robot_motion import HandTrajectory, RobotMotion
from handx_robot.sim.replay import replay
from handx_robot.sim.scene import HandModel, SceneConfig, build_scene

#: T_world_base of the two built-in Shadow hands at the deepest clap frame (x: across the palms)
_CLAP_WRIST = {
    "left": np.array([-0.0055, 0.0565, -0.1234, 0.5987, -0.4004, 0.3912, 0.5729]),
    "right": np.array([0.0041, 0.0565, -0.1234, 0.5987, -0.4004, -0.3912, -0.5729]),
}
_CLAP_FINGERS = {
    "robot0:FFJ3": -0.08, "robot0:FFJ2": 0.01, "robot0:FFJ1": 0.08, "robot0:FFJ0": 0.09,
    "robot0:MFJ3": -0.19, "robot0:MFJ2": 0.01, "robot0:MFJ1": 0.04, "robot0:MFJ0": 0.05,
    "robot0:RFJ3": -0.28, "robot0:RFJ1": 0.01, "robot0:RFJ0": 0.01, "robot0:LFJ3": -0.35,
    "robot0:LFJ1": 0.07, "robot0:LFJ0": 0.08, "robot0:THJ4": 1.04, "robot0:THJ3": 0.2,
    "robot0:THJ2": -0.1, "robot0:THJ1": -0.36, "robot0:THJ0": -0.01,
}


@pytest.fixture(scope="module")
def shadow_pair():
    return [HandModel.from_registry(f"shadow_builtin_{s}") for s in ("left", "right")]


def clap_motion(scene, seconds: float = 1.0, fps: float = 30.0, overshoot_m: float = 0.002) -> RobotMotion:
    """Two claps: each wrist moves 30 mm out and back along x, ``overshoot_m`` past the (already
    interpenetrating) clap pose, as the retargeter's wrists do when the robot hands are thicker than
    the human's."""
    T = int(round(seconds * fps))
    t = np.arange(T) / fps
    gap = 0.015 * (1 + np.cos(2 * np.pi * 2 * t / seconds)) - overshoot_m  # per hand, m
    hands = {}
    for side, sign in (("left", -1.0), ("right", 1.0)):
        names = scene.actuated_joint_names(side)
        q = np.array([[_CLAP_FINGERS.get(n, 0.0) for n in names]] * T)
        w = np.tile(_CLAP_WRIST[side], (T, 1))
        w[:, 0] += sign * gap
        w[:, 2] += 0.4  # above the floor (z = 0)
        hands[side] = HandTrajectory(
            robot=scene.robot_id(side), joint_names=names, qpos=q, wrist_pose=w, converged=np.ones(T, bool)
        )
    return RobotMotion(fps=fps, hands=hands, text="clap twice (interpenetrating targets)")


def test_interpenetrating_clap_stays_stable_and_apart(shadow_pair):
    scene = build_scene(shadow_pair)
    motion = clap_motion(scene)
    kin = replay(motion, scene, physics=False)
    assert kin.metrics.hand_hand_penetration.max() > 0.02  # the targets drive the hands ~2.5 cm into each other
    res = replay(motion, scene, physics=True)  # used to raise SolverError (MuJoCo bad qacc)
    m = res.metrics
    assert m.hand_hand_contact.sum() >= 6  # the hands do meet, twice
    assert m.hand_hand_penetration.max() < 0.003  # contacts stop them (0.5 mm; 4.8 mm with contacts 4x softer than the weld)
    for side in ("left", "right"):
        assert np.isfinite(res.qpos[side]).all()
        assert m.wrist_pos_error[side].max() < 0.03  # held back by the other hand, not thrown away
        assert m.fingertip_error[side].max() < 0.04  # the fingers yield to the other hand (PD-compliant)
        # away from the claps the hands track their targets again
        apart = ~m.hand_hand_contact & ~kin.metrics.hand_hand_contact
        assert apart.sum() >= 10
        assert m.wrist_pos_error[side][apart].max() < 0.003
        assert m.fingertip_error[side][apart].mean() < 0.005


def test_contact_timeconst_defaults_to_the_wrist_and_is_validated(shadow_pair):
    from handx_robot.errors import ConfigError

    scene = build_scene(shadow_pair, SceneConfig(wrist_timeconst=0.006))
    m = scene.model
    hand_geoms = [g for g in range(m.ngeom) if m.geom_contype[g] or m.geom_conaffinity[g]]
    np.testing.assert_allclose(m.geom_solref[hand_geoms, 0], 0.006)
    assert m.npair > 0  # the MJCF's own finger-thumb pairs keep the model's solref
    np.testing.assert_allclose(m.pair_solref[:, 0], 0.02)
    with pytest.raises(ConfigError, match="contact_timeconst"):
        SceneConfig(timestep=0.002, contact_timeconst=0.003)


def test_reset_places_the_two_hands_apart_and_holding_is_stable(shadow_pair):
    """After reset() the hands stand 30 cm apart (not inside each other) and hold still under PD."""
    import mujoco

    scene = build_scene(shadow_pair)
    scene.reset()
    m, d = scene.model, scene.data
    pos = {s: d.xpos[m.body(f"handx/{s}/mount").id].copy() for s in ("left", "right")}
    assert pos["right"][0] - pos["left"][0] == pytest.approx(0.30)
    assert not scene.contacts().hand_hand
    start = d.qpos.copy()
    bad0 = d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number
    mujoco.mj_step(m, d, nstep=int(round(1.0 / m.opt.timestep)))
    assert d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number == bad0 and np.isfinite(d.qpos).all()
    for s in ("left", "right"):  # the mounts stayed where the weld holds them
        np.testing.assert_allclose(d.xpos[m.body(f"handx/{s}/mount").id], pos[s], atol=2e-3)
    assert np.abs(d.qpos - start).max() < 0.2
    single = build_scene(shadow_pair[1:])
    single.reset()
    np.testing.assert_allclose(single.data.xpos[single.model.body("handx/right/mount").id], [0, 0, 0.3], atol=1e-9)


def test_hand_gap_is_mujocos_distance_within_the_bound():
    """:func:`hand_gap`: the smallest distance between two geom sets as MuJoCo measures it, negative when
    they overlap, ``inf`` beyond ``within`` (the bounding-sphere prefilter must not drop a near pair)."""
    import mujoco
    from handx_robot.sim.metrics import HAND_CONTACT_M, hand_gap

    xml = """<mujoco><worldbody>
      <body name="a"><freejoint/><geom type="box" size="0.03 0.01 0.05"/><geom type="sphere" size="0.01" pos="0 0 0.2"/></body>
      <body name="b"><freejoint/><geom type="capsule" size="0.01 0.04"/></body></worldbody></mujoco>"""
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    left, right = np.array([0, 1]), np.array([2])
    for x, expected in ((0.043, 0.003), (0.035, -0.005), (0.06, np.inf)):  # box face at 0.03, capsule radius 0.01
        d.qpos[:] = 0
        d.qpos[3] = d.qpos[10] = 1.0
        d.qpos[7] = x
        mujoco.mj_kinematics(m, d)
        gap = hand_gap(m, d, left, right, HAND_CONTACT_M)
        assert gap == pytest.approx(expected, abs=1e-6) if np.isfinite(expected) else gap == np.inf, (x, gap)
