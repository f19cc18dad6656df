"""Building a MuJoCo scene of one or two robot hands with ``MjSpec``: :func:`build_scene`.

A scene holds a floor, lights, preset cameras (:mod:`handx_robot.sim.scene.cameras`), an optional table and
one robot hand per side (``left`` / ``right``), each loaded by :func:`handx_robot.sim.scene.load_robot_spec`.
Units: SI (metres, radians, kg, N, s); world frame Z-up.

Floating wrist (design choice)
    Each hand's root body sits in a body ``handx/{side}/mount`` with a free joint. A mocap body
    ``handx/{side}/wrist_target`` carries the wrist target and a weld equality pulls the mount onto it
    (``SceneConfig.wrist_timeconst``, critically damped). This acts like a stiff arm holding the hand:
    physics moves the hand (contacts can stop it), there is no gimbal lock and no gains to tune for six
    extra joints. The hand feels gravity; the weld carries its weight (with a small steady sag). Poses in
    the API are ``T_world_base`` of :class:`handx_robot.retarget.robot_motion.HandTrajectory`, the frame the
    retargeter's kinematics (:mod:`handx_robot.retarget.kinematics`) calls the base: the URDF root link, the
    MJCF root body. The mount is ``T_world_base @ T_base_root``, where ``T_base_root`` is identity except for
    a URDF whose root link is ``world`` (MuJoCo merges it into its world body; the dex-urdf Shadow's forearm
    is rotated 90 deg from it). Code writing the free joint or mocap directly converts with
    :meth:`HandScene.base_to_mount`. The replay leads the wrist target by the weld's ramp lag
    (:class:`handx_robot.sim.replay.ReplayConfig`).

Finger actuators
    One position actuator per actuated joint (every hinge/slide joint that is not the follower of a
    mimic equality or coupling tendon; with a registry robot: its independent joints), named
    ``{side}/{joint}``, ``ctrlrange`` = the joint range. Gains come from link
    masses: ``kp = (2*pi*bandwidth_hz)**2 * I``, ``kv = 2 * damping_ratio * sqrt(kp * I)``, where ``I``
    is the joint's effective inertia (its diagonal of the joint-space mass matrix, the largest over a few
    sampled poses, including mimic followers and armature), floored at ``GainConfig.min_inertia``.
    Override per joint with ``GainConfig.overrides = {joint: (kp, kv)}``. URDF effort limits stay in force
    as joint actuator force limits (MuJoCo's URDF parser maps ``<limit effort>`` to ``actuatorfrcrange``).

Coupled joints
    URDF ``<mimic>`` tags become joint equality constraints (MuJoCo's URDF parser); MJCF tendons and
    equalities are kept, and a fixed tendon pinning two joints (the built-in Shadow's J0 = 1.14 J1, with
    the model's own +-0.14 rad slack) makes the first one a follower. MJCF actuators are replaced by ours.

Collisions
    Only between the two hands and between a hand and the environment (floor, table): bit 1 = left,
    bit 2 = right, bit 4 = environment (``contype`` / ``conaffinity``). No self-collision within a
    hand (the retargeter is responsible for that; it keeps physics fast), except the explicit ``<pair>``
    contacts an MJCF declares (the built-in Shadow's finger-thumb pairs), which are kept.

Contacts vs the wrist weld
    Both the weld and the contacts are soft constraints solved together; their time constants (``solref``)
    set who wins when they disagree. MuJoCo's default contact ``solref`` (0.02 s) is 4x slower, i.e. 16x
    softer, than the weld (0.005 s), so when the wrist targets interpenetrate (a retargeted clap: the robot
    palms and thumbs are thicker than human hands, so the targets overlap) the welds pressed the hands
    into each other (capsule against capsule: thumbs, wrists); this stack of conflicting stiff constraints
    made the solver (at its iteration limit) return a wild velocity on a free joint within one step and
    MuJoCo reset the state (``mjWARN_BADQACC``). More solver iterations, the Euler integrator or the
    elliptic cone alone did not cure every case; stiffer contacts did. Every colliding geom therefore gets
    ``SceneConfig.contact_timeconst`` (default: the weld's time constant): as stiff as the arm, contacts
    stop the hands with little penetration, the weld stays stretched (the tracking error is reported by the
    replay metrics). Limit: the weld's force is not capped. It grows with its stretch, so targets that
    overlap by centimetres still press the hands together with forces no arm would produce, although the
    replay stays stable. A force-limited wrist (site-transmission position actuators to the mocap site
    with ``forcerange``) would cap it; the retargeter should not produce such overlaps in the first place.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import mujoco
import numpy as np

from handx_robot.errors import ConfigError, ModelLoadError
from handx_robot.motion import SIDES

from .cameras import CAMERA_PRESETS, camera_pose
from .config import GainConfig, HandModel, SceneConfig
from .hand_scene import HandScene, _Hand
from .loading import compile_spec, load_robot_spec

__all__ = [
    "build_scene",
    "BIT_LEFT",
    "BIT_RIGHT",
    "BIT_ENV",
    "GROUP_ENV",
    "GROUP_VISUAL",
    "GROUP_COLLISION_DRAWN",
    "GROUP_COLLISION_HIDDEN",
    "HOME_POSITIONS",
]

log = logging.getLogger(__package__)  # the package's logger: handx_robot.sim.scene

#: contype / conaffinity bits
BIT_LEFT, BIT_RIGHT, BIT_ENV = 1, 2, 4
_SIDE_BIT = {"left": BIT_LEFT, "right": BIT_RIGHT}
#: default colour of untextured robot geoms per side (left bluish, right warm grey)
_SIDE_RGBA = {"left": [0.55, 0.62, 0.75, 1.0], "right": [0.78, 0.68, 0.58, 1.0]}
#: geom groups: 0 environment, 1 robot visual, 2 robot collision drawn (no visual), 3 hidden collision,
#: 4 markers (wrist targets)
GROUP_ENV, GROUP_VISUAL, GROUP_COLLISION_DRAWN, GROUP_COLLISION_HIDDEN = 0, 1, 2, 3


def _add_environment(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    """Physics options, offscreen buffer, textures, floor, optional table, lights and preset cameras."""
    spec.option.timestep = config.timestep
    spec.option.gravity = list(config.gravity)
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.iterations = config.solver_iterations
    spec.option.ls_iterations = config.ls_iterations
    spec.option.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    spec.visual.global_.offwidth = config.width
    spec.visual.global_.offheight = config.height
    spec.visual.quality.offsamples = config.msaa_samples
    spec.visual.headlight.ambient = [0.3, 0.3, 0.3]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    wb = spec.worldbody
    center = np.array(config.view_center)
    spec.add_texture(
        name="handx/grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.82, 0.84, 0.86], rgb2=[0.72, 0.74, 0.77], width=256, height=256,
    )
    spec.add_texture(
        name="handx/sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX, builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        rgb1=[0.75, 0.82, 0.9], rgb2=[0.35, 0.4, 0.48], width=64, height=64,
    )
    mat = spec.add_material(name="handx/floor", texrepeat=[8, 8], reflectance=0.0)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "handx/grid"
    if config.floor_height is not None:
        wb.add_geom(
            name="handx/floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05],
            pos=[center[0], center[1], config.floor_height], material="handx/floor",
            contype=BIT_ENV, conaffinity=BIT_LEFT | BIT_RIGHT, group=GROUP_ENV,
        )
    if config.table is not None:
        t = config.table
        wb.add_geom(
            name="handx/table", type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[t.size_xy[0] / 2, t.size_xy[1] / 2, t.thickness / 2],
            pos=[t.center_xy[0], t.center_xy[1], t.height - t.thickness / 2], rgba=[0.55, 0.42, 0.3, 1],
            contype=BIT_ENV, conaffinity=BIT_LEFT | BIT_RIGHT, group=GROUP_ENV,
        )
    top = center + np.array([0.0, 0.0, 1.5])
    for name, offset, direction, diffuse in (
        ("handx/key", [0.5, -0.5, 0], [-0.3, 0.3, -1.0], 0.6),
        ("handx/fill", [-0.5, 0.5, 0], [0.3, -0.3, -1.0], 0.3),
    ):
        light = wb.add_light(name=name, pos=list(top + offset), dir=direction, diffuse=[diffuse] * 3)
        light.castshadow = config.shadows
    for name in CAMERA_PRESETS:
        pos, quat = camera_pose(name, center, config.view_distance)
        wb.add_camera(name=name, pos=list(pos), quat=list(quat), fovy=45.0)


#: home position of each hand's mount (m, world) when the scene has both hands: 30 cm apart, so a
#: reset never starts the hands inside each other; a single hand sits at the centre
HOME_POSITIONS = {"left": (-0.15, 0.0, 0.3), "right": (0.15, 0.0, 0.3), "single": (0.0, 0.0, 0.3)}


def _subtree_has_joint(body) -> bool:
    if body.joints:
        return True
    return any(_subtree_has_joint(b) for b in body.bodies)


def _prepare_robot_spec(spec: mujoco.MjSpec, robot_spec: mujoco.MjSpec, side: str, config: SceneConfig) -> None:
    """Make a robot's spec ready to attach to the scene ``spec``: the scene's sizes and solver budget, no
    actuators of its own (ours replace them), no mocap bodies, collision bits and geom groups by side
    (see "Collisions" in the module docstring), untinted geoms coloured by side, capped convex hulls."""
    bit = _SIDE_BIT[side]
    other = (BIT_LEFT | BIT_RIGHT) & ~bit
    for attr in ("nuser_jnt", "nuser_site", "nuser_tendon", "nuser_actuator", "nuser_sensor", "nuser_body",
                 "nuser_geom", "nuser_cam", "njmax", "nconmax"):
        setattr(robot_spec, attr, getattr(spec, attr))  # the scene's sizes win; avoids attach warnings
    robot_spec.option.iterations = spec.option.iterations
    for act in list(robot_spec.actuators):  # ours replace the model's own
        robot_spec.delete(act)
    for body in list(robot_spec.bodies):
        body.mocap = False
    visual_bodies = set()
    for g in robot_spec.geoms:
        if not (g.contype or g.conaffinity):
            visual_bodies.add(g.parent.name)
    hull_meshes = set()
    for g in robot_spec.geoms:
        if g.contype or g.conaffinity:
            g.contype, g.conaffinity = bit, other | BIT_ENV
            if g.type == mujoco.mjtGeom.mjGEOM_MESH:
                hull_meshes.add(g.meshname)
            g.group = GROUP_COLLISION_HIDDEN if g.parent.name in visual_bodies else GROUP_COLLISION_DRAWN
        else:
            g.group = GROUP_VISUAL
        if not g.material and np.allclose(g.rgba, [0.5, 0.5, 0.5, 1.0]):  # untinted: colour by side
            g.rgba = _SIDE_RGBA[side]
    if config.max_hull_vertices:
        for mesh in robot_spec.meshes:
            if mesh.name in hull_meshes and (mesh.maxhullvert < 0 or mesh.maxhullvert > config.max_hull_vertices):
                mesh.maxhullvert = config.max_hull_vertices


def _add_mount(spec: mujoco.MjSpec, side: str, home: Sequence[float]):
    """The floating mount body (free joint) at ``home`` (m, world) and its mocap wrist target (see
    "Floating wrist" in the module docstring); returns the mount."""
    mount = spec.worldbody.add_body(name=f"handx/{side}/mount", pos=list(home), quat=[1, 0, 0, 0])
    mount.mass = 0.05
    mount.inertia = [1e-5, 1e-5, 1e-5]
    mount.explicitinertial = True
    mount.add_freejoint(name=f"handx/{side}/free")
    target = spec.worldbody.add_body(name=f"handx/{side}/wrist_target", mocap=True, pos=list(home))
    target.add_site(name=f"handx/{side}/wrist_target", size=[0.005, 0, 0], rgba=[1, 0.3, 0.1, 0.6], group=4)
    return mount


def _add_wrist_weld(spec: mujoco.MjSpec, side: str, config: SceneConfig) -> None:
    """The weld equality pulling the mount onto the wrist target (``SceneConfig.wrist_timeconst``,
    critically damped). Added after the robot's own equalities (the order of the constraints in the solver)."""
    weld = spec.add_equality(
        name=f"handx/{side}/wrist_weld", type=mujoco.mjtEq.mjEQ_WELD, objtype=mujoco.mjtObj.mjOBJ_BODY,
        name1=f"handx/{side}/mount", name2=f"handx/{side}/wrist_target",
    )
    data = np.zeros(len(weld.data))
    data[6] = 1.0  # relquat = identity, relpos = 0: the mount sits exactly at the target
    data[10] = 1.0  # torquescale
    weld.data = data
    weld.solref = [config.wrist_timeconst, 1.0]


def _attach_hand(
    spec: mujoco.MjSpec, hand: HandModel, robot_spec: mujoco.MjSpec, robot_model: mujoco.MjModel, config: SceneConfig,
    home: Sequence[float] = HOME_POSITIONS["single"],
) -> np.ndarray:
    """Attach the robot under a floating mount; returns ``T_base_root`` (7,): the pose of the robot's
    root body in its model frame. The mount is placed at the root body (so the weld acts there, not at
    a far-away model origin) and poses are converted with ``T_world_mount = T_world_base @ T_base_root``."""
    side = hand.side
    _prepare_robot_spec(spec, robot_spec, side, config)
    frame = _add_mount(spec, side, home).add_frame()
    top_bodies = [b for b in robot_spec.worldbody.bodies if _subtree_has_joint(b)]
    if not top_bodies:
        raise ModelLoadError(f"{hand.model_path}: the model has no moving joints; is it a robot hand?")
    T_base_root = np.array([0.0, 0, 0, 1, 0, 0, 0])
    if len(top_bodies) == 1:
        root = top_bodies[0]
        rid = robot_model.body(root.name).id
        if hand.model_format == "urdf":
            # the URDF root link is the base; MuJoCo merges a root link named "world" into its world body,
            # leaving the first real link offset from it (the dex-urdf Shadow: rotated 90 deg about z)
            T_base_root = np.concatenate([robot_model.body_pos[rid], robot_model.body_quat[rid]])
        # MJCF: the base is the root body itself (as in handx_robot.retarget.kinematics.load_mjcf_tree)
        root.alt.type = mujoco.mjtOrientation.mjORIENTATION_QUAT
        root.pos = [0.0, 0.0, 0.0]
        root.quat = [1.0, 0.0, 0.0, 0.0]
    for b in top_bodies:
        frame.attach_body(b, f"{side}/", "")
    for g in robot_spec.worldbody.geoms:  # geoms of a root link merged into the URDF world
        if g.contype or g.conaffinity:
            log.debug("%s: world-level geom %s of the robot model is not attached", hand.robot_id, g.name)
    _add_wrist_weld(spec, side, config)
    return T_base_root


def _set_contact_softness(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    """Give every colliding geom (hand-hand and hand-environment contacts) the contact time constant
    (``solref``, critically damped; see "Contacts vs the wrist weld" in the module docstring). An MJCF's
    explicit ``<pair>`` contacts (within one hand) keep the model's own ``solref``."""
    tc = config.wrist_timeconst if config.contact_timeconst is None else config.contact_timeconst
    for g in spec.geoms:
        if g.contype or g.conaffinity:
            g.solref = [tc, 1.0]


def build_scene(hands: Sequence[HandModel] | Mapping[str, HandModel], config: SceneConfig | None = None) -> HandScene:
    """Build a scene with one or two hands (at most one per side) and return its :class:`HandScene`.

    Raises :class:`ModelLoadError` for unreadable models, :class:`ConfigError` for bad options.
    """
    config = config or SceneConfig()
    hand_list = list(hands.values()) if isinstance(hands, Mapping) else list(hands)
    if not hand_list:
        raise ConfigError("build_scene needs at least one hand")
    sides = [h.side for h in hand_list]
    if len(set(sides)) != len(sides):
        raise ConfigError(f"build_scene: one hand per side, got sides {sides}")
    spec = mujoco.MjSpec()
    spec.modelname = "handx_scene"
    spec.compiler.autolimits = True
    _add_environment(spec, config)
    fixes: dict[str, list[str]] = {}
    root_pose: dict[str, np.ndarray] = {}
    for hand in sorted(hand_list, key=lambda h: SIDES.index(h.side)):
        robot_spec, robot_model, fixes[hand.side] = load_robot_spec(hand)
        home = HOME_POSITIONS[hand.side if len(hand_list) == 2 else "single"]
        root_pose[hand.side] = _attach_hand(spec, hand, robot_spec, robot_model, config, home)
    _set_contact_softness(spec, config)
    try:
        model = compile_spec(spec, "scene")
    except Exception as exc:
        raise ModelLoadError(f"cannot compile the scene of {[h.robot_id for h in hand_list]}: {exc}") from exc
    indices = {h.side: _index_hand(model, h, fixes[h.side], root_pose[h.side]) for h in hand_list}
    _add_actuators(spec, model, indices, config.gains)
    try:
        model = compile_spec(spec, "scene")
    except Exception as exc:
        raise ModelLoadError(f"cannot compile the scene with actuators: {exc}") from exc
    for side, h in indices.items():
        h.act_ids = np.array([model.actuator(f"{side}/{n}").id for n in h.actuated], dtype=np.int64)
    return HandScene(model, indices, config, spec)


def _leaf_bodies(model: mujoco.MjModel, root: int) -> list[int]:
    """Leaf bodies under ``root`` that move relative to it (a hinge/slide joint on the way)."""
    children: dict[int, list[int]] = {i: [] for i in range(model.nbody)}
    for b in range(1, model.nbody):
        children[int(model.body_parentid[b])].append(b)
    leaves, stack = [], [root]
    while stack:
        b = stack.pop()
        if children[b]:
            stack.extend(sorted(children[b], reverse=True))
        else:
            leaves.append(b)

    def moves(b: int) -> bool:
        while b != root and b > 0:
            if model.body_jntnum[b] > 0:
                return True
            b = int(model.body_parentid[b])
        return False

    return [b for b in leaves if moves(b)]


def _tendon_couplings(model: mujoco.MjModel, joints: list[int]) -> list[tuple[int, int, float]]:
    """Fixed tendons pinning two joints (limited, range width <= 4 mm around 0): ``(first, second,
    ratio)`` with ``q_first = ratio * q_second`` (Shadow's coupled J0 = c * J1)."""
    out = []
    for t in range(model.ntendon):
        adr, num = int(model.tendon_adr[t]), int(model.tendon_num[t])
        lo, hi = model.tendon_range[t]
        if num != 2 or not model.tendon_limited[t] or hi - lo > 0.004 or not (lo <= 0 <= hi):
            continue
        if any(int(model.wrap_type[adr + i]) != int(mujoco.mjtWrap.mjWRAP_JOINT) for i in range(2)):
            continue
        (j1, j2), (c1, c2) = model.wrap_objid[adr : adr + 2], model.wrap_prm[adr : adr + 2]
        if j1 in joints and j2 in joints and c1 != 0:
            out.append((int(j1), int(j2), float(-c2 / c1)))
    return out


def _hand_joints(model: mujoco.MjModel, side: str) -> tuple[list[int], tuple[str, ...]]:
    """Ids of the ``side`` hand's hinge/slide joints (model order) and their robot names (prefix removed)."""
    prefix = f"{side}/"
    joints = [
        j for j in range(model.njnt)
        if model.joint(j).name.startswith(prefix)
        and int(model.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    ]
    return joints, tuple(model.joint(j).name[len(prefix):] for j in joints)


def _mimic_joints(
    model: mujoco.MjModel, hand: HandModel, joints: list[int], names: tuple[str, ...]
) -> dict[str, tuple[str, np.ndarray]]:
    """``{follower: (leader, poly coeffs c0..c4)}`` from joint equalities and coupling tendons (see
    "Coupled joints" in the module docstring); the hand's independent joints are never followers."""
    mimic: dict[str, tuple[str, np.ndarray]] = {}
    for e in range(model.neq):
        if int(model.eq_type[e]) != int(mujoco.mjtEq.mjEQ_JOINT):
            continue
        j1, j2 = int(model.eq_obj1id[e]), int(model.eq_obj2id[e])
        if j1 in joints and j2 in joints:
            mimic[names[joints.index(j1)]] = (names[joints.index(j2)], model.eq_data[e, :5].copy())
    independent = set(hand.independent_joints)
    for j1, j2, ratio in _tendon_couplings(model, joints):
        a, b = names[joints.index(j1)], names[joints.index(j2)]
        if independent and a in independent and b not in independent:
            a, b, ratio = b, a, 1.0 / ratio
        mimic[a] = (b, np.array([0.0, ratio, 0.0, 0.0, 0.0]))
    if not independent:
        return mimic
    unknown = [n for n in hand.independent_joints if n not in names]
    if unknown:
        raise ModelLoadError(
            f"{hand.model_path}: independent joints {unknown} of robot '{hand.robot_id}' are not in the "
            f"model; model joints: {', '.join(names)}"
        )
    uncovered = [n for n in names if n not in independent and n not in mimic]
    if uncovered:
        log.warning("%s: joints %s are neither independent nor coupled; actuating them too", hand.robot_id, uncovered)
    return {k: v for k, v in mimic.items() if k not in independent}


def _fingertips(model: mujoco.MjModel, hand: HandModel, mount: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``(names, body ids (k,), offsets (k, 3) m in those bodies' frames)`` of the hand's fingertips: its
    ``fingertip_links`` (bodies or sites), else the moving leaf bodies under ``mount`` (those named
    ``*tip*`` when there are any)."""
    prefix = f"{hand.side}/"
    if hand.fingertip_links:
        tips = hand.fingertip_links
    else:
        leaves = [model.body(b).name[len(prefix):] for b in _leaf_bodies(model, mount)]
        tips = tuple(n for n in leaves if "tip" in n.lower()) or tuple(leaves)
    tip_ids, tip_off, missing = [], [], []
    for n in tips:
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, prefix + n)
        site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, prefix + n)
        if b >= 0:
            tip_ids.append(b)
            tip_off.append(np.zeros(3))
        elif site >= 0:
            tip_ids.append(int(model.site_bodyid[site]))
            tip_off.append(model.site_pos[site].copy())
        else:
            missing.append(n)
    if missing:
        raise ModelLoadError(
            f"{hand.model_path}: fingertip links {missing} are neither bodies nor sites of the model; bodies: "
            + ", ".join(model.body(b).name[len(prefix):] for b in range(model.nbody) if model.body(b).name.startswith(prefix))
        )
    return tuple(tips), np.array(tip_ids, dtype=np.int64), np.array(tip_off, dtype=np.float64).reshape(-1, 3)


def _index_hand(model: mujoco.MjModel, hand: HandModel, fixes: list[str], T_base_root: np.ndarray) -> _Hand:
    """The index tables of one hand in the compiled scene (by name, once); actuator ids and gains are
    filled in by :func:`_add_actuators`."""
    side = hand.side
    joints, names = _hand_joints(model, side)
    mimic = _mimic_joints(model, hand, joints, names)
    actuated = tuple(n for n in names if n not in mimic)
    lo = model.jnt_range[joints, 0].copy()
    hi = model.jnt_range[joints, 1].copy()
    limited = model.jnt_limited[joints].astype(bool)
    home = np.where(limited, np.clip(0.0, lo, hi), 0.0)
    mount = model.body(f"handx/{side}/mount").id
    tips, tip_ids, tip_off = _fingertips(model, hand, mount)
    free = model.joint(f"handx/{side}/free").id
    aidx = [names.index(n) for n in actuated]
    qadr = model.jnt_qposadr[joints].astype(np.int64)
    vadr = model.jnt_dofadr[joints].astype(np.int64)
    ctrl_lo = np.where(limited, lo, -1e3)[aidx]
    ctrl_hi = np.where(limited, hi, 1e3)[aidx]
    return _Hand(
        robot_id=hand.robot_id, side=side, joint_names=names, actuated=actuated, mimic=mimic,
        qadr=qadr, vadr=vadr, act_ids=np.zeros(0, dtype=np.int64), act_qadr=qadr[aidx], act_vadr=vadr[aidx],
        kp=np.zeros(len(actuated)), kv=np.zeros(len(actuated)), damping=model.dof_damping[vadr[aidx]].copy(),
        ctrl_lo=ctrl_lo, ctrl_hi=ctrl_hi,
        fingertips=tips, tip_body_ids=tip_ids,
        tip_offsets=tip_off, mount_id=mount, free_qadr=int(model.jnt_qposadr[free]),
        free_vadr=int(model.jnt_dofadr[free]), mocap_id=int(model.body_mocapid[model.body(f"handx/{side}/wrist_target").id]),
        home=home, T_base_root=np.asarray(T_base_root, dtype=np.float64), fixes=tuple(fixes),
    )


def _add_actuators(spec: mujoco.MjSpec, model: mujoco.MjModel, hands: dict[str, _Hand], gains: GainConfig) -> None:
    """Position actuators with gains from the effective joint inertias: the largest diagonal entry of
    the joint-space mass matrix over the home pose, the mid-range pose and 6 random poses (seed 0), so a
    joint is stiff enough in every posture (e.g. a thumb rotation whose inertia depends on the flexion)."""
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    full = np.zeros((model.nv, model.nv))
    diag = np.zeros(model.nv)
    for k in range(8):
        for h in hands.values():
            lo, hi = model.jnt_range[[model.dof_jntid[v] for v in h.vadr]].T
            lim = hi > lo
            if k == 0:
                q = h.home
            elif k == 1:
                q = np.where(lim, (lo + hi) / 2, 0.0)
            else:
                q = np.where(lim, rng.uniform(lo, np.where(lim, hi, lo + 1)), 0.0)
            data.qpos[h.qadr] = q
        mujoco.mj_forward(model, data)
        mujoco.mj_fullM(model, data, full)
        diag = np.maximum(diag, np.diag(full))  # effective inertia of each dof (incl. armature), kg m^2
    omega = 2 * math.pi * gains.bandwidth_hz
    unknown = [n for n in gains.overrides if not any(n in h.actuated for h in hands.values())]
    if unknown:
        raise ConfigError(
            f"GainConfig.overrides names {unknown}, which are not actuated joints; actuated: "
            + "; ".join(f"{h.side}: {', '.join(h.actuated)}" for h in hands.values())
        )
    for side, h in hands.items():
        for k, name in enumerate(h.actuated):
            i = h.joint_names.index(name)
            inertia = diag[h.vadr[i]]
            for follower, (leader, coef) in h.mimic.items():
                if leader == name:
                    inertia += coef[1] ** 2 * diag[h.vadr[h.joint_names.index(follower)]]
            inertia = max(float(inertia), gains.min_inertia)
            kp = omega**2 * inertia
            kv = 2 * gains.damping_ratio * math.sqrt(kp * inertia)
            if name in gains.overrides:
                kp, kv = (float(v) for v in gains.overrides[name])
            act = spec.add_actuator(name=f"{side}/{name}", target=f"{side}/{name}", trntype=mujoco.mjtTrn.mjTRN_JOINT)
            act.set_to_position(kp=kp, kv=kv)
            act.ctrllimited = True
            act.ctrlrange = [h.ctrl_lo[k], h.ctrl_hi[k]]
            h.kp[k], h.kv[k] = kp, kv
