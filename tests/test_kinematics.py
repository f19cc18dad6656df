"""Batched kinematics: FK against pinocchio, Jacobians and second-order terms against finite differences,
mimic joints and MJCF couplings resolved by name."""

from __future__ import annotations

import numpy as np
import pytest
from handx_robot.retarget.kinematics import (
    REVOLUTE,
    KinematicTree,
    fused_plan,
    fused_terms,
    load_tree,
    matrix_to_quat_wxyz,
    quat_wxyz_to_matrix,
    rpy_to_matrix,
)
from handx_robot.retarget.robots import builtin_shadow_model

from handx_robot import rotations
from handx_robot.errors import ModelLoadError

HANDS = ["allegro_hand/allegro_hand_right.urdf", "inspire_hand/inspire_hand_right.urdf", "leap_hand/leap_hand_left.urdf"]


def _random_q(tree, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(np.maximum(tree.dof_lower, -3), np.minimum(tree.dof_upper, 3), (n, tree.num_dof))


@pytest.mark.parametrize("rel", HANDS)
def test_fk_matches_pinocchio(dex_urdf_models, rel):
    pin = pytest.importorskip("pinocchio")
    path = dex_urdf_models / rel
    tree = load_tree(path)
    model = pin.buildModelFromUrdf(str(path))
    data = model.createData()
    q = _random_q(tree, 3)
    R, p = tree.forward(q)
    qm = tree.model_q(q)
    for n in range(3):
        qp = np.zeros(model.nq)
        for k, name in enumerate(tree.joint_names):  # by name, never by position
            qp[model.idx_qs[model.getJointId(name)]] = qm[n, k]
        pin.forwardKinematics(model, data, qp)
        pin.updateFramePlacements(model, data)
        for i, link in enumerate(tree.link_names):
            f = data.oMf[model.getFrameId(link, pin.BODY)]
            np.testing.assert_allclose(p[n, i], f.translation, atol=1e-12)  # metres
            np.testing.assert_allclose(R[n, i], f.rotation, atol=1e-12)


def _fd_jacobian(tree, q, links, eps=1e-6):
    J = np.zeros((q.shape[0], len(links), 3, tree.num_dof))
    for k in range(tree.num_dof):
        dq = np.zeros(tree.num_dof)
        dq[k] = eps
        J[..., k] = (tree.forward(q + dq)[1][:, links] - tree.forward(q - dq)[1][:, links]) / (2 * eps)
    return J


@pytest.mark.parametrize("rel", HANDS)
def test_jacobian_and_hessian_term_match_finite_differences(dex_urdf_models, rel):
    tree = load_tree(dex_urdf_models / rel)
    q = _random_q(tree, 2, seed=1)
    links = np.arange(1, len(tree.link_names), 3)
    R, p = tree.forward(q)
    _, J = tree.point_jacobian(R, p, links)
    np.testing.assert_allclose(J, _fd_jacobian(tree, q, links), atol=1e-8)
    G = np.random.default_rng(2).normal(size=(2, len(links), 3))
    H = tree.point_hessian_term(R, p, links, G)

    def grad(qq):
        R_, p_ = tree.forward(qq)
        return np.einsum("nka,nkad->nd", G, tree.point_jacobian(R_, p_, links)[1])

    Hfd = np.zeros_like(H)
    for k in range(tree.num_dof):
        dq = np.zeros(tree.num_dof)
        dq[k] = 1e-6
        Hfd[:, :, k] = (grad(q + dq) - grad(q - dq)) / 2e-6
    np.testing.assert_allclose(H, Hfd, atol=1e-7)


def test_inspire_mimic_from_urdf(dex_urdf_models):
    tree = load_tree(dex_urdf_models / "inspire_hand" / "inspire_hand_right.urdf")
    assert len(tree.joint_names) == 12 and tree.num_dof == 6
    # every mimic joint follows its source with the URDF's multiplier/offset
    q = _random_q(tree, 1)
    qm = tree.model_q(q)[0]
    for j, name in enumerate(tree.joint_names):
        if name in tree.dof_names:
            assert qm[j] == q[0, tree.dof_names.index(name)]
    assert np.any(np.abs(tree.A).sum(1) > 0) and np.all((np.abs(tree.A) > 0).sum(1) == 1)


def test_builtin_shadow_couplings_and_sites():
    import mujoco

    path = builtin_shadow_model("right")
    tree = load_tree(path)
    assert "robot0:FFJ0" in tree.joint_names and "robot0:FFJ0" not in tree.dof_names
    j0, j1 = tree.joint_names.index("robot0:FFJ0"), tree.dof_names.index("robot0:FFJ1")
    assert tree.A[j0, j1] == pytest.approx(0.00805 / 0.00705)  # the fixed tendon T_FFJ1c
    m = mujoco.MjModel.from_xml_path(str(path))
    d = mujoco.MjData(m)
    q = _random_q(tree, 1, seed=3)
    qm = tree.model_q(q)[0]
    for k, name in enumerate(tree.joint_names):
        d.qpos[m.joint(name).qposadr[0]] = qm[k]
    mujoco.mj_kinematics(m, d)
    _, p = tree.forward(q)
    base = m.body(tree.link_names[0]).id
    Rw, pw = d.xmat[base].reshape(3, 3), d.xpos[base]
    for site in ("robot0:S_thtip", "robot0:S_fftip", "robot0:S_lftip"):
        np.testing.assert_allclose(Rw @ p[0, tree.link_index(site)] + pw, d.site(site).xpos, atol=1e-9)


def test_rotation_helpers_round_trip():
    R = rpy_to_matrix([0.3, -1.1, 2.0])
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    q = matrix_to_quat_wxyz(R[None])[0]
    assert q[0] >= 0
    np.testing.assert_allclose(quat_wxyz_to_matrix(q), R, atol=1e-12)


def test_rotation_aliases_are_the_rotations_module():
    """The old helpers of this module are handx_robot.rotations' functions (one implementation)."""
    assert rpy_to_matrix is rotations.rpy_to_matrix
    assert quat_wxyz_to_matrix is rotations.quat_to_matrix and matrix_to_quat_wxyz is rotations.matrix_to_quat


def _fan_tree(axes: np.ndarray) -> KinematicTree:
    """A base with one revolute joint per axis, each on its own branch, moving a link with three rigid
    child frames at the unit vectors: their positions in the base frame are the columns of the joint's
    rotation."""
    J = len(axes)
    names, parent, link_joint, p = ["base"], [-1], [-1], [np.zeros(3)]
    for j in range(J):
        names.append(f"link{j}")
        parent.append(0)
        link_joint.append(j)
        p.append(np.zeros(3))
        for c in range(3):
            names.append(f"link{j}_e{c}")
            parent.append(1 + 4 * j)  # link j
            link_joint.append(-1)
            p.append(np.eye(3)[c])
    joints = tuple(f"j{j}" for j in range(J))
    return KinematicTree(
        link_names=tuple(names), parent=np.array(parent), R_parent_link=np.tile(np.eye(3), (len(names), 1, 1)),
        p_parent_link=np.array(p), link_joint=np.array(link_joint), joint_names=joints,
        joint_type=np.full(J, REVOLUTE), joint_axis=axes, joint_anchor=np.zeros((J, 3)),
        joint_lower=np.full(J, -10.0), joint_upper=np.full(J, 10.0), dof_names=joints, A=np.eye(J), b=np.zeros(J),
    )  # fmt: skip


def test_inline_rodrigues_match_rotations_module():
    """The two Rodrigues kept inline for speed (cached numpy FK, numba kernel) equal
    handx_robot.rotations.axis_angle_to_matrix on random axes and angles (small, pi, beyond 2 pi)."""
    rng = np.random.default_rng(11)
    J, N = 6, 16
    axes = rng.normal(size=(J, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    q = rng.uniform(-7.0, 7.0, (N, J))
    q[0], q[1], q[2] = 0.0, 1e-9, np.pi
    expected = rotations.axis_angle_to_matrix(axes, q)  # (N, J, 3, 3)
    tree = _fan_tree(axes)
    R, _ = tree.forward(q)
    links = [tree.link_index(f"link{j}") for j in range(J)]
    np.testing.assert_allclose(R[:, links], expected, rtol=0, atol=1e-14)
    # the compiled pass: a position objective (elementwise Huber, beta 1: cost = sum 0.5 r^2) whose
    # targets are the expected columns is zero exactly when the kernel's rotations equal them
    tips = np.array([tree.link_index(f"link{j}_e{c}") for j in range(J) for c in range(3)])
    ref = np.swapaxes(expected, -1, -2).reshape(N, 3 * J, 3)  # row c of R^T = column c of R
    plan = fused_plan(tree, tips, np.arange(J))
    K = len(tips)
    cost = fused_terms(q, ref, np.ones((N, K)), 1.0, True, np.arange(K), np.full(K, -1), plan, need_grad=False)[0]
    assert cost.max() < 1e-28, cost.max()  # every coordinate within ~1e-14 m
    off = fused_terms(q, ref + 1e-6, np.ones((N, K)), 1.0, True, np.arange(K), np.full(K, -1), plan, False)[0]
    np.testing.assert_allclose(off, 0.5 * 3 * K * 1e-12, rtol=1e-3)  # the check sees a 1 um error


def test_bad_urdfs_name_the_file(tmp_path):
    bad = tmp_path / "two_roots.urdf"
    bad.write_text("<robot name='x'><link name='a'/><link name='b'/></robot>")
    with pytest.raises(ModelLoadError, match="two_roots.urdf"):
        load_tree(bad)
    ball = tmp_path / "ball.urdf"
    ball.write_text(
        "<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='floating'>"
        "<parent link='a'/><child link='b'/></joint></robot>"
    )
    with pytest.raises(ModelLoadError, match="floating"):
        load_tree(ball)
    with pytest.raises(ModelLoadError, match="not found"):
        load_tree(tmp_path / "missing.urdf")
    mj = tmp_path / "broken.xml"
    mj.write_text("<mujoco><worldbody><body><joint type='hinge' range='1'/></body></worldbody></mujoco>")
    with pytest.raises(ModelLoadError, match="broken.xml"):
        load_tree(mj)
