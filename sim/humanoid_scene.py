"""The MuJoCo scene of a humanoid (:mod:`handx_robot.retarget.humanoid`) for replay and video.

:func:`build_humanoid_scene` starts from the composed humanoid (``HumanoidModel.path``: pelvis fixed,
only arm and hand joints) and adds a floor at z = 0 (the pelvis stands at its ``base_pose``), lights,
cameras :data:`HUMANOID_CAMERAS` (aimed at the torso and the hands over a motion by
:meth:`HumanoidScene.frame_cameras`), an offscreen framebuffer and position actuators:

Actuators
    One per arm joint and one per hand joint (``HumanoidSceneConfig.drive_followers``, the default) or
    per leader joint of the hands' couplings only. robosuite's hand actuators (kp = 2..4 N m/rad, also on
    the followers) are removed. A follower is coupled to its leader by a joint equality, whose pull on
    the follower is weak next to the hands' joint damping (1 N m s/rad on links of ~5e-5 kg m^2): left to
    the equality alone, the distal joints lag their coupled position by tenths of a radian. Driven, each
    follower tracks the target its coupling gives (what ``model_qpos`` computes), consistent with the
    equality (figures: ``benchmarks/humanoid_replay.py``). Names: the joint's (``r_elbow_pitch``,
    ``right_hand/joint_r_index_distal``); ``ctrlrange`` = the joint range; no torque limits (the GR1
    file states none).
Gains
    From link masses, as :mod:`handx_robot.sim.scene.builder` sizes the finger gains:
    ``kp = (2 pi f)^2 I``, ``kv = 2 zeta sqrt(kp I)``, ``I`` the joint's effective inertia (the largest
    diagonal entry of the joint-space mass matrix over the rest pose, the mid-range pose and 6 random
    poses, seed 0; an undriven follower's inertia is carried by its leader), ``f`` =
    ``arm_bandwidth_hz`` or ``hand_bandwidth_hz``.
Gravity compensation
    ``gravcomp = 1`` on every arm and hand body: MuJoCo applies the exact gravity wrench of those bodies
    as a passive force, as the robot's controller cancels gravity, so the PD loops only track.
Contacts
    The composed model's collision geometry, convex hulls of the meshes (the retargeter's clearance
    checks use the same). :attr:`HumanoidScene.pair_label` sorts contacts into :data:`CONTACT_PAIRS`: the
    pairs the retargeter keeps apart (``HumanoidModel.geom_pairs``), ``arm-self`` (the links of one arm
    against each other or against their own hand; the retargeter does not check them, and a deep elbow
    flexion presses the forearm's hull into the upper arm's) and ``hand-hand`` (a clap).
    ``HumanoidSceneConfig.arm_self_collision=False`` excludes the ``arm-self`` contacts (to tell a
    controller's tracking from the motion's self-collisions). MuJoCo skips parent-child pairs and the
    model excludes pairs touching at rest. robosuite's marker sites are hidden.

Units: metres, radians, kg, seconds; world frame Z-up, the robot faces +x.
"""

from __future__ import annotations

import dataclasses
import math

import mujoco
import numpy as np
from handx_robot.retarget.humanoid.model import HumanoidModel, hand_prefix, load_humanoid_model
from handx_robot.retarget.humanoid.spec import get_humanoid
from handx_robot.retarget.robots.config import fingertip_links

from handx_robot.errors import ConfigError

__all__ = ["HUMANOID_CAMERAS", "CONTACT_PAIRS", "UNWANTED_CONTACTS", "HumanoidSceneConfig", "HumanoidScene",
           "build_humanoid_scene"]  # fmt: skip

#: camera name -> direction from the framed points to the camera, world (the robot faces +x): ``front``
#: sees the robot from in front and slightly above (its left hand on the image's right), ``top`` from above
HUMANOID_CAMERAS = {
    "front": (1.0, 0.0, 0.2),
    "left": (0.0, 1.0, 0.2),
    "right": (0.0, -1.0, 0.2),
    "top": (0.3, 0.0, 1.0),
}
#: contact labels: the part pairs that must not touch (the retargeter's clearance pairs, then one arm's links
#: against each other or its own hand), then hand-hand
CONTACT_PAIRS = ("arm-arm", "arm-hand", "arm-body", "hand-body", "arm-self", "hand-hand")
#: the labels of :data:`CONTACT_PAIRS` counted as parts that must not touch
UNWANTED_CONTACTS = CONTACT_PAIRS[:5]
_FOVY_DEG = 45.0


@dataclasses.dataclass(frozen=True)
class HumanoidSceneConfig:
    """Scene options (SI units).

    timestep: the model's timestep, s: the largest physics step of a replay. arm_bandwidth_hz /
    hand_bandwidth_hz: natural frequency of the arm / finger PD loops, Hz (``2 pi f timestep <= 0.5``).
    damping_ratio: 1 = critically damped. gravity_compensation: ``gravcomp`` on the arm and hand bodies.
    drive_followers: actuate the coupled follower joints too. arm_self_collision: the links of one arm
    collide with each other and with their hand (Contacts, module docstring). solver_iterations: MuJoCo's Newton solver
    budget per step. width / height: offscreen framebuffer, pixels (the largest video). shadows: lights
    cast shadows.
    """

    timestep: float = 0.002
    arm_bandwidth_hz: float = 10.0
    hand_bandwidth_hz: float = 20.0
    damping_ratio: float = 1.0
    gravity_compensation: bool = True
    drive_followers: bool = True
    arm_self_collision: bool = True
    solver_iterations: int = 20
    width: int = 1280
    height: int = 960
    shadows: bool = False

    def __post_init__(self) -> None:
        if not (np.isfinite(self.timestep) and 0 < self.timestep <= 0.01):
            raise ConfigError(f"HumanoidSceneConfig.timestep must be in (0, 0.01] s, got {self.timestep!r}")
        for name in ("arm_bandwidth_hz", "hand_bandwidth_hz", "damping_ratio"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ConfigError(f"HumanoidSceneConfig.{name} must be a finite number > 0, got {v!r}")
            if name != "damping_ratio" and 2 * math.pi * v * self.timestep > 0.5:
                raise ConfigError(f"HumanoidSceneConfig.{name} = {v} Hz is too stiff for the timestep "
                                  f"{self.timestep} s: keep 2 pi f timestep <= 0.5")  # fmt: skip
        if self.solver_iterations < 1:
            raise ConfigError(f"HumanoidSceneConfig.solver_iterations must be >= 1, got {self.solver_iterations}")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ConfigError(f"HumanoidSceneConfig width/height must be in [16, 8192], got {self.width}x{self.height}")


def _subtree(m: mujoco.MjModel, root: int) -> np.ndarray:
    """(nbody,) bool: the bodies of ``root``'s subtree (bodies are numbered depth-first)."""
    inside = np.zeros(m.nbody, dtype=bool)
    inside[root] = True
    for b in range(root + 1, m.nbody):
        inside[b] = inside[m.body_parentid[b]]
    return inside


def _common_ancestor(m: mujoco.MjModel, bodies: list[int]) -> int:
    chains = []
    for b in bodies:
        chain = [b]
        while chain[-1] != 0:
            chain.append(int(m.body_parentid[chain[-1]]))
        chains.append(chain)
    common = set(chains[0]).intersection(*chains[1:])
    return next(b for b in chains[0] if b in common)


def _followers(m: mujoco.MjModel) -> dict[int, tuple[int, float]]:
    """``{follower joint: (leader joint, d follower / d leader at 0)}`` of the active joint equalities."""
    out = {}
    for e in range(m.neq):
        if m.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT and m.eq_active0[e] and m.eq_obj2id[e] >= 0:
            out[int(m.eq_obj1id[e])] = (int(m.eq_obj2id[e]), float(m.eq_data[e, 1]))
    return out


def _add_environment(spec: mujoco.MjSpec, config: HumanoidSceneConfig) -> None:
    spec.option.timestep = config.timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.iterations = config.solver_iterations
    spec.option.ls_iterations = max(config.solver_iterations // 2, 4)
    spec.visual.global_.offwidth = config.width
    spec.visual.global_.offheight = config.height
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.45, 0.45, 0.45]
    spec.add_texture(name="handx/grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                     rgb1=[0.82, 0.84, 0.86], rgb2=[0.72, 0.74, 0.77], width=256, height=256)  # fmt: skip
    spec.add_texture(name="handx/sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX, builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
                     rgb1=[0.75, 0.82, 0.9], rgb2=[0.35, 0.4, 0.48], width=64, height=64)  # fmt: skip
    mat = spec.add_material(name="handx/floor", texrepeat=[4, 4])
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "handx/grid"
    wb = spec.worldbody
    wb.add_geom(name="handx/floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.05], material="handx/floor")
    for name, pos, direction, diffuse in (("handx/key", [2.0, -1.0, 3.0], [-2.0, 1.0, -2.5], 0.55),
                                          ("handx/fill", [1.5, 1.5, 2.5], [-1.5, -1.5, -1.5], 0.3)):  # fmt: skip
        light = wb.add_light(name=name, pos=pos, dir=direction, diffuse=[diffuse] * 3)
        light.castshadow = config.shadows
    for name in HUMANOID_CAMERAS:  # aimed by HumanoidScene.frame_cameras
        wb.add_camera(name=name, pos=[2.0, 0.0, 1.3], quat=[0.5, 0.5, 0.5, 0.5], fovy=_FOVY_DEG)


def _effective_inertia(m: mujoco.MjModel, hm: HumanoidModel) -> np.ndarray:
    """(nv,) the largest diagonal of the joint-space mass matrix over the rest pose, the mid-range pose
    and 6 random poses (seed 0), kg m^2."""
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    lo, hi = m.jnt_range[:, 0], m.jnt_range[:, 1]
    full = np.zeros((m.nv, m.nv))
    diag = np.zeros(m.nv)
    for k in range(8):
        if k == 0:
            d.qpos[:] = hm.rest_qpos()
        else:  # hinge joints only: one qpos per joint
            d.qpos[m.jnt_qposadr] = (lo + hi) / 2 if k == 1 else rng.uniform(lo, hi)
        mujoco.mj_forward(m, d)
        mujoco.mj_fullM(m, d, full)
        diag = np.maximum(diag, np.diag(full))
    return diag


def _add_actuators(spec: mujoco.MjSpec, m: mujoco.MjModel, hm: HumanoidModel, config: HumanoidSceneConfig) -> None:
    """Position actuators ``{joint}`` on the arm joints and the hands' leader joints (and followers with
    ``drive_followers``), gains from the effective inertias (module docstring)."""
    inertia = _effective_inertia(m, hm)
    followers = _followers(m)
    arm = {str(j) for s in hm.sides for j in hm.spec.arms[s].arm_joints}
    hand = {hand_prefix(s) + n for s in hm.sides for n in hm.hand_qpos[s]}
    for j in range(m.njnt):
        name = m.joint(j).name
        if name not in arm and name not in hand:
            continue
        if j in followers and not config.drive_followers:
            continue
        mass = float(inertia[m.jnt_dofadr[j]])  # kg m^2
        if not config.drive_followers:
            mass += sum(c**2 * inertia[m.jnt_dofadr[f]] for f, (lead, c) in followers.items() if lead == j)
        mass = max(mass, 1e-6)
        omega = 2 * math.pi * (config.arm_bandwidth_hz if name in arm else config.hand_bandwidth_hz)
        kp = omega**2 * mass
        kv = 2 * config.damping_ratio * math.sqrt(kp * mass)
        act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=kp, kv=kv)
        act.ctrllimited = True
        act.ctrlrange = list(m.jnt_range[j])


class HumanoidScene:
    """A compiled humanoid scene (:func:`build_humanoid_scene`) with its names resolved once.

    model / data: MuJoCo; its qpos layout is ``hm.model``'s (``model_qpos`` rows fit). act_qadr / act_vadr
    (nu,): each actuator's joint qpos / dof address; act_kv, act_damping (nu,): its kv and the joint's
    damping, N m s/rad. hand_root[side]: body id of the hand root (``T_world_base``). tips[side]: fingertip
    site ids. arm_qadr[side] (7,), hand_qadr[side] (n,): qpos addresses (hand joints in ``hm.hand_qpos``'s
    order, followers included). pair_label (ngeom, ngeom) int: index into :data:`CONTACT_PAIRS`, -1 = not tracked.
    """

    def __init__(self, hm: HumanoidModel, model: mujoco.MjModel, config: HumanoidSceneConfig):
        self.hm, self.model, self.config = hm, model, config
        self.data = mujoco.MjData(model)
        m = model
        if m.nq != hm.model.nq or any(m.joint(j).name != hm.model.joint(j).name for j in range(m.njnt)):
            raise ConfigError(f"{hm.path}: the scene's joints differ from the humanoid model's")
        self.act_qadr = m.jnt_qposadr[m.actuator_trnid[:, 0]].astype(np.int64)
        self.act_vadr = m.jnt_dofadr[m.actuator_trnid[:, 0]].astype(np.int64)
        self.act_kv = -m.actuator_biasprm[:, 2].copy()
        self.act_damping = m.dof_damping[self.act_vadr].copy()
        self.ctrl_lo, self.ctrl_hi = m.actuator_ctrlrange[:, 0].copy(), m.actuator_ctrlrange[:, 1].copy()
        self.hand_root = {s: int(m.body(hm.hand_root[s]).id) for s in hm.sides}
        self.tips = {s: np.array([m.site(hand_prefix(s) + n).id for n in fingertip_links(hm.hands[s]).values()],
                                 dtype=np.int64) for s in hm.sides}  # fmt: skip
        self.arm_qadr = {s: hm.arm_qpos[s] for s in hm.sides}
        self.hand_qadr = {s: np.array(list(hm.hand_qpos[s].values()), dtype=np.int64) for s in hm.sides}
        self._geom_map = self._map_geoms()
        self.pair_label = self._pair_labels()
        self._hand_geoms = {s: self._geom_map[hm.geoms[f"hand_{s}"]] for s in hm.sides}
        # framed: the torso (the arms' common ancestor body) and the hands
        torso = _common_ancestor(m, [m.body(hm.spec.arms[s].arm_root_body).id for s in hm.sides])
        framed = np.arange(m.nbody) == torso
        for s in hm.sides:
            framed |= _subtree(m, m.body(hm.hand_root[s]).id)
        visible = (m.geom_group < 3) & (m.geom_rgba[:, 3] > 0)
        self._framed_geoms = np.flatnonzero(visible & framed[m.geom_bodyid])

    def _map_geoms(self) -> np.ndarray:
        """(hm.model.ngeom,) this model's geom id of each geom of ``hm.model`` (same body, same rank)."""
        a, b = self.hm.model, self.model
        ids = np.arange(a.ngeom)
        body = a.geom_bodyid[ids]
        out = b.body_geomadr[body] + ids - a.body_geomadr[body]
        if not (np.array_equal(b.geom_bodyid[out], body) and np.array_equal(b.geom_type[out], a.geom_type[ids])):
            raise ConfigError(f"{self.hm.path}: cannot match the scene's geoms with the humanoid model's")
        return out

    def _pair_labels(self) -> np.ndarray:
        m, hm = self.model, self.hm
        lab = np.full((m.ngeom, m.ngeom), -1, dtype=np.int64)
        group = {}
        for name, ids in hm.geoms.items():
            for g in self._geom_map[ids]:
                group[int(g)] = name.split("_")[0]
        for g1, g2 in hm.geom_pairs():
            a, b = int(self._geom_map[g1]), int(self._geom_map[g2])
            kinds = sorted((group[a], group[b]))
            label = "arm-arm" if kinds == ["arm", "arm"] else f"{kinds[0]}-body" if kinds[1] == "body" else "arm-hand"
            lab[a, b] = lab[b, a] = CONTACT_PAIRS.index(label)
        collidable = np.flatnonzero((m.geom_contype != 0) | (m.geom_conaffinity != 0))
        for b1, b2 in _arm_self_pairs(hm):  # body ids agree (the scene adds no bodies)
            g1, g2 = collidable[m.geom_bodyid[collidable] == b1], collidable[m.geom_bodyid[collidable] == b2]
            lab[np.ix_(g1, g2)] = lab[np.ix_(g2, g1)] = CONTACT_PAIRS.index("arm-self")
        if len(hm.sides) == 2:
            left, right = self._geom_map[hm.geoms["hand_left"]], self._geom_map[hm.geoms["hand_right"]]
            lab[np.ix_(left, right)] = lab[np.ix_(right, left)] = CONTACT_PAIRS.index("hand-hand")
        return lab

    @property
    def sides(self) -> tuple[str, ...]:
        return self.hm.sides

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self.model.camera(i).name for i in range(self.model.ncam))

    def hand_hand_gap(self, qpos: np.ndarray, within: float) -> np.ndarray:
        """(T,) m: :func:`handx_robot.sim.metrics.hand_gap` of the two hands' collision geoms at each row of
        ``qpos`` (T, nq); ``inf`` where no pair is nearer than ``within``. A separate ``MjData``: the scene's
        own is left as it is."""
        from handx_robot.sim.metrics import hand_gap

        m = self.model
        out = np.full(len(qpos), np.inf)
        if len(self.sides) < 2:
            return out
        d = mujoco.MjData(m)
        collidable = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
        left, right = (g[collidable[g]] for g in (self._hand_geoms["left"], self._hand_geoms["right"]))
        for k, q in enumerate(qpos):
            d.qpos[:] = q
            mujoco.mj_kinematics(m, d)
            out[k] = hand_gap(m, d, left, right, within)
        return out

    def hand_geom_positions(self, side: str, data: mujoco.MjData | None = None) -> np.ndarray:
        """(n, 3) centres of the ``side`` hand's collision geoms, m, world (for the video's labels)."""
        d = self.data if data is None else data
        return d.geom_xpos[self._hand_geoms[side]].copy()

    def framed_points(self, qpos: np.ndarray, max_frames: int = 60) -> np.ndarray:
        """(n, 3) m, world: the bounding-box corners of the visible geoms of the torso (the arms' common
        ancestor body) and of both hands at the rows of ``qpos`` (T, nq) (at most ``max_frames`` of them,
        evenly spaced): what the cameras frame."""
        m = self.model
        d = mujoco.MjData(m)
        g = self._framed_geoms
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        local = m.geom_aabb[g, None, :3] + signs[None] * m.geom_aabb[g, None, 3:]  # (n, 8, 3) geom frames
        rows = np.unique(np.linspace(0, len(qpos) - 1, min(len(qpos), max_frames)).round().astype(int))
        out = []
        for q in qpos[rows]:
            d.qpos[:] = q
            mujoco.mj_kinematics(m, d)
            out.append(d.geom_xpos[g, None] + np.einsum("nij,nkj->nki", d.geom_xmat[g].reshape(-1, 3, 3), local))
        return np.concatenate(out).reshape(-1, 3)

    def frame_cameras(self, points: np.ndarray, aspect: float = 4 / 3, margin: float = 1.08) -> None:
        """Aim every camera of :data:`HUMANOID_CAMERAS` so that all ``points`` (n, 3) (m, world) fill its
        image (``aspect`` = width / height) with ``margin`` to spare (:func:`_fit_view`)."""
        for name, direction in HUMANOID_CAMERAS.items():
            pos, quat = _fit_view(points, direction, _FOVY_DEG, aspect, margin)
            cid = self.model.camera(name).id
            self.model.cam_pos[cid], self.model.cam_quat[cid] = pos, quat
        mujoco.mj_forward(self.model, self.data)


def _fit_view(points: np.ndarray, direction, fovy_deg: float, aspect: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) and orientation wxyz (4,) of a pinhole camera looking along ``-direction`` (image up
    toward world +z, or +x when looking straight down) whose image holds every point with ``margin``.

    The aim point is the points' centre shifted so their image-plane extent is centred; a point at image
    coordinates ``(X, Y)`` and ``Z`` toward the camera, seen from distance ``D``, is inside when
    ``margin * |X| <= tan_h * (D - Z)`` (and likewise ``Y``): ``D`` is the largest such bound.
    """
    back = np.asarray(direction, dtype=np.float64)
    back /= np.linalg.norm(back)
    up = np.array([0.0, 0.0, 1.0]) if abs(back[2]) < 0.99 else np.array([1.0, 0.0, 0.0])
    x = np.cross(up, back)
    x /= np.linalg.norm(x)
    R_world_cam = np.stack([x, np.cross(back, x), back], axis=1)  # columns: image right, image up, backward
    c = points.mean(axis=0)
    p = (points - c) @ R_world_cam
    shift = (p[:, :2].max(axis=0) + p[:, :2].min(axis=0)) / 2
    c = c + R_world_cam[:, :2] @ shift
    p[:, :2] -= shift
    tan_v = math.tan(math.radians(fovy_deg) / 2)
    need = p[:, 2] + margin * np.maximum(np.abs(p[:, 0]) / (tan_v * aspect), np.abs(p[:, 1]) / tan_v)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, R_world_cam.reshape(-1))
    return c + float(need.max()) * back, quat


def _exclude_within_arms(spec: mujoco.MjSpec, hm: HumanoidModel) -> None:
    """Exclude the ``arm-self`` contacts: one arm's links against each other and against their hand."""
    for a, b in _arm_self_pairs(hm):
        spec.add_exclude(bodyname1=hm.model.body(a).name, bodyname2=hm.model.body(b).name)


def _arm_self_pairs(hm: HumanoidModel) -> list[tuple[int, int]]:
    """Body pairs (ids of ``hm.model``) of one side: arm link - arm link and arm link - own hand body, with
    collidable geoms, not parent-child, not excluded by the model."""
    m = hm.model
    sig = np.asarray(m.exclude_signature, dtype=np.int64)  # (body1 << 16) + body2
    excluded = {tuple(sorted((int(x >> 16), int(x & 0xFFFF)))) for x in sig}
    has_geom = np.zeros(m.nbody, dtype=bool)
    has_geom[m.geom_bodyid[(m.geom_contype != 0) | (m.geom_conaffinity != 0)]] = True
    out = []
    for s in hm.sides:
        chain = _subtree(m, m.body(hm.spec.arms[s].arm_root_body).id) & has_geom
        hand = _subtree(m, m.body(hm.hand_root[s]).id)
        ids = np.flatnonzero(chain)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if (hand[a] and hand[b]) or m.body_parentid[b] == a or (a, b) in excluded:
                    continue
                out.append((int(a), int(b)))
    return out


def build_humanoid_scene(humanoid: HumanoidModel | str, config: HumanoidSceneConfig | None = None) -> HumanoidScene:
    """The scene of the module docstring for a humanoid (loaded, or its id / YAML path); its cameras are
    framed on a motion by :meth:`HumanoidScene.frame_cameras`. Raises :class:`ModelLoadError` /
    :class:`UnknownRobotError` as :func:`~handx_robot.retarget.humanoid.model.load_humanoid_model` does."""
    config = config or HumanoidSceneConfig()
    hm = humanoid if isinstance(humanoid, HumanoidModel) else load_humanoid_model(get_humanoid(humanoid))
    spec = mujoco.MjSpec.from_file(str(hm.path))
    _add_environment(spec, config)
    for act in list(spec.actuators):  # robosuite's hand actuators; ours replace them
        spec.delete(act)
    if config.gravity_compensation:
        stack = [spec.body(hm.spec.arms[s].arm_root_body) for s in hm.sides]
        while stack:
            body = stack.pop()
            body.gravcomp = 1.0
            stack.extend(body.bodies)
    for site in spec.sites:  # robosuite's markers (grip cylinders, frames): hidden (group 4)
        site.group = 4
    if not config.arm_self_collision:
        _exclude_within_arms(spec, hm)
    _add_actuators(spec, hm.model, hm, config)  # same joints and inertias as the scene
    return HumanoidScene(hm, spec.compile(), config)
