"""Built-in robosuite hands (``inspire_builtin_*``, ``fourier_builtin_*``): the generated models keep
robosuite's names and root body, couple the under-actuated joints, carry fingertip sites, the configs'
calibration is the one the model implies, and retargeting generated motion reproduces a pinch and a fist."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET

import numpy as np
import pytest

if importlib.util.find_spec("robosuite") is None:
    pytest.skip(
        "robosuite's model files are not installed (pip install --no-deps robosuite==1.5.2)", allow_module_level=True
    )

from handx_robot.retarget.bimanual import retarget_motion
from handx_robot.retarget.kinematics import load_tree
from handx_robot.retarget.robots import (
    ASSETS_ENV,
    builtin_ids,
    fingertip_links,
    get_robot,
    list_robots,
    robosuite_hand_model,
)
from handx_robot.retarget.robots import robosuite_hands as rh

from handx_robot.errors import ModelLoadError
from handx_robot.generate import generate
from handx_robot.handframe import wrist_rotation
from handx_robot.keypoints import FINGERS

FAMILIES = ("inspire", "fourier")
SIDES = ("right", "left")
HANDS = [(fam, side) for fam in FAMILIES for side in SIDES]
IDS = [f"{fam}_builtin_{side}" for fam, side in HANDS]

#: the six actuated joints, the order of the model (thumb yaw, thumb pitch, index .. pinky flexion)
ACTUATED = {
    ("inspire", "right"): ("joint_r_thumb_proximal_1", "joint_r_thumb_proximal_2", "joint_r_index_proximal",
                           "joint_r_middle_proximal", "joint_r_ring_proximal", "joint_r_pinky_proximal"),
    ("inspire", "left"): ("joint_l_thumb_proximal_1", "joint_l_thumb_proximal_2", "joint_l_index_proximal",
                          "joint_l_middle_proximal", "joint_l_ring_proximal", "joint_l_pinky_proximal"),
    ("fourier", "right"): ("R_thumb_proximal_yaw_joint", "R_thumb_proximal_pitch_joint", "R_index_proximal_joint",
                           "R_middle_proximal_joint", "R_ring_proximal_joint", "R_pinky_proximal_joint"),
    ("fourier", "left"): ("L_thumb_proximal_yaw_joint", "L_thumb_proximal_pitch_joint", "L_index_proximal_joint",
                          "L_middle_proximal_joint", "L_ring_proximal_joint", "L_pinky_proximal_joint"),
}  # fmt: skip
#: MCP-like body per finger (origin = the proximal joint's anchor) and the palm body (origin = wrist)
MCP_BODY = {"inspire": "{s}_{f}_proximal", "fourier": "{S}_{f}_proximal_link"}

#: fingertip-shape error bound (m, mean over frames and pairs): about 1.3x what these prompts gave when written
SHAPE_ERROR_BOUND_M = 0.015


def _compile(path):
    import mujoco

    return mujoco.MjModel.from_xml_path(str(path))


def _names(m, kind: str, n: int) -> set[str]:
    return {getattr(m, kind)(i).name for i in range(n)}


@pytest.mark.parametrize("robot_id", IDS)
def test_resolves_without_assets_with_the_actuated_joints(robot_id, monkeypatch):
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    fam, _, side = robot_id.partition("_builtin_")
    spec = get_robot(robot_id)
    assert robot_id in builtin_ids()
    assert spec.source == "builtin:robosuite" and spec.model_format == "mjcf" and spec.side == side
    assert spec.joint_names == ACTUATED[fam, side]  # 6 actuated; the coupled joints are not independent
    assert set(spec.config["target_joint_names"]) == set(spec.joint_names)
    assert fingertip_links(spec) == {f: f"{side}_{f}_tip" for f in FINGERS}
    info = {i.id: i for i in list_robots()}[robot_id]
    assert info.available and info.source == "builtin:robosuite" and info.model_path.endswith(f"{fam}_{side}_hand.xml")


@pytest.mark.parametrize(("family", "side"), HANDS)
def test_generated_model_keeps_robosuite_names_root_and_actuators(family, side):
    """What robosuite mounts on the GR1 wrist is unchanged: root body, bodies, joints, actuators."""
    src, gen = _compile(rh.robosuite_hand_xml(family, side)), _compile(robosuite_hand_model(family, side))
    for kind, n in (("body", "nbody"), ("joint", "njnt"), ("actuator", "nu"), ("sensor", "nsensor")):
        assert _names(gen, kind, getattr(gen, n)) == _names(src, kind, getattr(src, n)), kind
    root = [b for b in range(1, gen.nbody) if gen.body_parentid[b] == 0]
    assert [gen.body(b).name for b in root] == [f"{side}_hand"]
    np.testing.assert_allclose(gen.body(f"{side}_hand").quat, src.body(f"{side}_hand").quat)
    assert load_tree(robosuite_hand_model(family, side)).base_name == f"{side}_hand"
    for a in range(src.nu):
        name = src.actuator(a).name
        np.testing.assert_allclose(gen.actuator(name).ctrlrange, src.actuator(a).ctrlrange)
        assert gen.actuator(name).trnid[0] == gen.joint(src.joint(src.actuator(a).trnid[0]).name).id
    # the fingertip sites sit on the distal bodies
    for finger, body in rh.robosuite_fingertip_bodies(family, side).items():
        assert gen.site(rh.fingertip_site(side, finger)).bodyid[0] == gen.body(body).id


@pytest.mark.parametrize(("family", "side"), HANDS)
def test_couplings_are_joint_equalities_over_the_leaders_whole_range(family, side):
    m = _compile(robosuite_hand_model(family, side))
    tree = load_tree(robosuite_hand_model(family, side))
    couplings = rh.robosuite_hand_couplings(family, side)
    assert m.neq == len(couplings) == 6 - (family == "fourier")  # fourier: no thumb middle joint
    q = np.random.default_rng(0).uniform(tree.dof_lower, tree.dof_upper, (16, tree.num_dof))
    np.testing.assert_allclose(tree.dof_lower, [m.joint(j).range[0] for j in tree.dof_names])  # leaders keep
    np.testing.assert_allclose(tree.dof_upper, [m.joint(j).range[1] for j in tree.dof_names])  # their ranges
    qm = tree.model_q(q)
    for c in couplings:
        f, ld = tree.joint_names.index(c.follower), tree.joint_names.index(c.leader)
        np.testing.assert_allclose(qm[:, f], c.multiplier * qm[:, ld] + c.offset, atol=1e-12)
        lo, hi = m.joint(c.leader).range
        image = sorted([c.multiplier * lo + c.offset, c.multiplier * hi + c.offset])
        f_lo, f_hi = m.joint(c.follower).range  # the image, rounded outward to 1e-5 rad
        assert image[0] - 1e-5 <= f_lo <= image[0] + 1e-9 and image[1] - 1e-9 <= f_hi <= image[1] + 1e-5, (c, f_lo, f_hi)


def _urdf_mimics_and_tips(path):
    root = ET.parse(path).getroot()
    mimic, tips = {}, {}
    for j in root.iter("joint"):
        mm = j.find("mimic")
        if mm is not None:
            mimic[j.get("name")] = (mm.get("joint"), float(mm.get("multiplier")), float(mm.get("offset", 0.0)))
        if j.get("name").endswith("_tip_joint"):
            tips[j.get("name").split("_")[0]] = np.array([float(v) for v in j.find("origin").get("xyz").split()])
    return mimic, tips


@pytest.mark.parametrize("side", SIDES)
def test_inspire_couplings_and_tips_agree_with_dex_urdf(side, dex_urdf_models):
    """dex-urdf's Inspire URDF (the real hand's mimic tags, hand-placed tip links) vs the generated MJCF."""
    mimic, tips = _urdf_mimics_and_tips(dex_urdf_models / "inspire_hand" / f"inspire_hand_{side}.urdf")
    s = side[0]
    dex_name = {f"joint_{s}_thumb_proximal_2": "thumb_proximal_pitch_joint",
                f"joint_{s}_thumb_middle": "thumb_intermediate_joint", f"joint_{s}_thumb_distal": "thumb_distal_joint"}
    for f in FINGERS[1:]:
        dex_name |= {f"joint_{s}_{f}_proximal": f"{f}_proximal_joint", f"joint_{s}_{f}_distal": f"{f}_intermediate_joint"}
    couplings = rh.robosuite_hand_couplings("inspire", side)
    assert {dex_name[c.follower]: (dex_name[c.leader], c.multiplier, c.offset) for c in couplings} == mimic
    # the mesh-derived fingertip sites land where dex-urdf places its tip links (same distal-link frames)
    m = _compile(robosuite_hand_model("inspire", side))
    for finger in FINGERS:
        site = m.site(rh.fingertip_site(side, finger)).pos
        assert np.linalg.norm(site - tips[finger]) < 0.004, (finger, site, tips[finger])  # metres


@pytest.mark.parametrize("robot_id", IDS)
def test_calibration_is_the_one_the_model_implies(robot_id):
    """base_rpy_in_human_wrist = the human wrist frame's definition applied to the robot at q = 0, and
    independently: flexing a finger moves its tip out of the palm (+x), the middle finger points along +z,
    the thumb and index are on +y (right hand) / -y (left hand: y toward the pinky)."""
    fam, _, side = robot_id.partition("_builtin_")
    spec = get_robot(robot_id)
    tree = load_tree(spec.model_path)
    q0 = np.zeros((1, tree.num_dof))
    p = tree.forward(q0)[1][0]
    s, S = side[0], side[0].upper()
    wrist = p[tree.link_index(spec.calibration.wrist_match_link)]
    assert spec.calibration.wrist_match_link == f"{s}_palm"
    kp = np.zeros((21, 3))  # HandX order: wrist 0, index MCP 1, middle MCP 4, pinky MCP 7, ring MCP 10
    kp[0] = wrist
    for f, i in (("index", 1), ("middle", 4), ("pinky", 7), ("ring", 10)):
        kp[i] = p[tree.link_index(MCP_BODY[fam].format(s=s, S=S, f=f))]
    R_wrist_base = spec.calibration.R_wrist_base
    np.testing.assert_allclose(R_wrist_base, wrist_rotation(kp, side).T, atol=1e-5)  # rpy has 6 decimals

    def tip(q, finger):
        return R_wrist_base @ (tree.forward(q)[1][0][tree.link_index(rh.fingertip_site(side, finger))] - wrist)

    for k, finger in enumerate(FINGERS[1:], start=2):
        q = q0.copy()
        q[0, k] = 1e-4  # the finger's proximal joint (ACTUATED order)
        v = tip(q, finger) - tip(q0, finger)
        assert v[0] / np.linalg.norm(v) > np.cos(np.radians(10)), (finger, v)  # flexion toward +x
    d = tip(q0, "middle")
    assert d[2] / np.linalg.norm(d) > np.cos(np.radians(10)), d  # the straight middle finger points along +z
    toward_thumb = 1 if side == "right" else -1
    assert np.sign(tip(q0, "thumb")[1]) == toward_thumb
    assert np.sign(tip(q0, "index")[1] - tip(q0, "pinky")[1]) == toward_thumb


def _check_couplings(rm, family):
    for side in SIDES:
        traj = rm.hands[side]
        names = list(traj.joint_names)
        for c in rh.robosuite_hand_couplings(family, side):
            q_f, q_l = traj.qpos[:, names.index(c.follower)], traj.qpos[:, names.index(c.leader)]
            np.testing.assert_allclose(q_f, c.multiplier * q_l + c.offset, atol=1e-6)  # rad (float32 output)


@pytest.fixture(scope="module")
def pinch_motion():
    return generate("pinch with the right thumb and index finger twice", seed=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_retargeted_pinch_is_a_robot_pinch(family, pinch_motion):
    """The thumb tip -> fingertip vectors close the robot's thumb and index tips when the human's close."""
    rm, report = retarget_motion(pinch_motion, left_robot=f"{family}_builtin_left",
                                 right_robot=f"{family}_builtin_right", interaction="off")  # fmt: skip
    right = report["hands"]["right"]
    f1 = right["contact_f1"]
    assert f1["human_events"] == 2  # "twice"
    assert f1["robot_events"] == f1["human_events"] and f1["f1"] == pytest.approx(1.0)
    for side in SIDES:
        h = report["hands"][side]
        assert h["fingertip_shape_error_m"]["mean"] < SHAPE_ERROR_BOUND_M, (side, h["fingertip_shape_error_m"])
        assert h["joint_limit_violations"]["count"] == 0 and h["non_converged_frames"]["count"] == 0
        assert tuple(rm.hands[side].joint_names) == tuple(load_tree(get_robot(h["robot"]).model_path).joint_names)
    _check_couplings(rm, family)


@pytest.mark.parametrize("family", FAMILIES)
def test_retargeted_fist_closes_every_finger(family):
    motion = generate("make a fist with both hands", seed=0)
    rm, report = retarget_motion(motion, left_robot=f"{family}_builtin_left",
                                 right_robot=f"{family}_builtin_right", interaction="off")  # fmt: skip
    for side in SIDES:
        h = report["hands"][side]
        assert h["fingertip_shape_error_m"]["mean"] < SHAPE_ERROR_BOUND_M, (side, h["fingertip_shape_error_m"])
        spec = get_robot(f"{family}_builtin_{side}")
        tree = load_tree(spec.model_path)
        names = list(rm.hands[side].joint_names)
        flex = list(spec.joint_names[2:])  # index .. pinky proximal
        q = rm.hands[side].qpos[:, [names.index(j) for j in flex]]
        closure = q / tree.dof_upper[[tree.dof_names.index(j) for j in flex]]  # 0 open .. 1 closed
        assert closure.min(axis=1).max() > 0.9  # some frame has all four fingers closed (the fist)
        assert closure.max(axis=1).min() < 0.5  # and some frame has none closed (before/after it)
    _check_couplings(rm, family)


def test_missing_robosuite_names_the_fix(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(rh.importlib.util, "find_spec", lambda name, *a: None if name == "robosuite" else find_spec(name, *a))
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps robosuite==1\.5\.2"):
        get_robot("inspire_builtin_right")
    infos = {i.id: i for i in list_robots()}
    assert not infos["fourier_builtin_left"].available and "robosuite==1.5.2" in infos["fourier_builtin_left"].reason
    assert infos["shadow_builtin_right"].available  # the other built-in hands are unaffected
