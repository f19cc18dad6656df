"""MuJoCo scenes of one or two robot hands, built with ``MjSpec``, and the :class:`HandScene` wrapper.

A scene holds a floor, lights, preset cameras, an optional table and one robot hand per side
(``left`` / ``right``), each loaded from a URDF or MJCF model (the registry of :mod:`handx_robot.retarget.robots`
or a path). Units: SI (metres, radians, kg, N, s); world frame Z-up.

Floating wrist (design choice)
    Each hand's root body sits in a body ``handx/{side}/mount`` with a free joint. A mocap body
    ``handx/{side}/wrist_target`` carries the wrist target and a weld equality pulls the mount onto it
    (``SceneConfig.wrist_timeconst``, critically damped). This acts like a stiff arm holding the hand:
    physics moves the hand (contacts can stop it), there is no gimbal lock and no gains to tune for six
    extra joints. The hand feels gravity; the weld carries its weight (steady sag ~0.5 mm). Poses in the
    API are ``T_world_base`` of :class:`handx_robot.retarget.robot_motion.HandTrajectory`, the frame the retargeter's
    kinematics (:mod:`handx_robot.retarget.kinematics`) calls the base: the URDF root link, the MJCF root body. The
    mount is ``T_world_base @ T_base_root``, where ``T_base_root`` is identity except for a URDF whose root
    link is ``world`` (MuJoCo merges it into its world body; the dex-urdf Shadow's forearm is rotated 90
    deg from it). Code writing the free joint or mocap directly converts with
    :meth:`HandScene.base_to_mount`. The replay leads the wrist target by the weld's ramp lag
    (:class:`handx_robot.sim.replay.ReplayConfig`).

Finger actuators
    One position actuator per actuated joint (every hinge/slide joint that is not the follower of a
    mimic equality or coupling tendon; with a registry robot: its independent joints), named
    ``{side}/{joint}``, ``ctrlrange`` = the joint range. Gains come from link
    masses: ``kp = (2*pi*bandwidth_hz)**2 * I``, ``kv = 2 * damping_ratio * sqrt(kp * I)``, where ``I``
    is the joint's effective inertia (its diagonal of the joint-space mass matrix, the largest over a few
    sampled poses, including mimic followers and armature), floored at ``GainConfig.min_inertia``.
    Override per joint with ``GainConfig.overrides = {joint: (kp, kv)}``. URDF effort limits stay in force as joint actuator
    force limits (MuJoCo's URDF parser maps ``<limit effort>`` to ``actuatorfrcrange``).

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
    palms and thumbs are thicker than human hands, the targets overlap by up to ~26 mm) the welds pressed
    the hands ~10 mm into each other (capsule against capsule: thumbs, wrists); this stack of conflicting
    stiff constraints made the solver (at its iteration limit) return a wild velocity (1000+ rad/s on a
    free joint within one step) and MuJoCo reset the state (``mjWARN_BADQACC``). More solver iterations
    (50), the Euler integrator or the elliptic cone alone did not cure every case; stiffer contacts did.
    Every colliding geom therefore gets
    ``SceneConfig.contact_timeconst`` (default: the weld's time constant): as stiff as the arm, contacts
    stop the hands (penetration ~1-2 mm in the "clap" prompts), the weld stays stretched (the tracking
    error is reported by the replay metrics). Limit: the weld's force is not capped. It grows with its
    stretch, so targets that overlap by centimetres still press the hands together with forces no arm
    would produce (measured: ~600 N for a built-in Shadow clap with 25 mm overlap, ~19 kN for the dex-urdf
    Shadow "palms together" with ~10 cm overlap), although the replay stays stable and the penetration
    stays under ~1 cm. A force-limited wrist (site-transmission position actuators to the mocap site with
    ``forcerange``) would cap it; the retargeter should not produce such overlaps in the first place.

Cameras
    Presets :data:`CAMERA_PRESETS` look at ``SceneConfig.view_center``; ``front`` looks along +y from -y
    (from behind the operator's hands when the human reaches along +y, as the generated HandX motions
    do in the world frame; the left hand is then on the image's left), ``back`` the opposite way. :meth:`HandScene.frame_cameras`
    re-aims them all at a bounding box from the distance at which it fits the image
    (:func:`fit_camera_distance`); :func:`handx_robot.sim.replay.scene_for_motion` does so with the hands' box over
    the motion.

:class:`HandScene` API (used by the replay, the RL env and the ROS sim node), per side, by joint name:
``set_targets`` / ``set_target_array`` (position targets, optional velocity feed-forward),
``set_wrist_target``, ``step(n)``, ``joint_positions`` / ``joint_velocities`` / ``joint_efforts``,
``wrist_pose``, ``fingertip_positions``, ``contacts``, ``set_joint_positions`` + ``forward`` (kinematic),
``reset``; ``model`` / ``data`` are the MuJoCo objects.

URDF fixes (each logged): inertias violating the triangle inequality are balanced (``balanceinertia``);
``package://`` mesh paths are resolved next to the URDF; a visual mesh in a format MuJoCo cannot read
(``.glb``) is swapped for a same-name ``.obj`` / ``.stl`` when one exists, else the visual is dropped
(its link is then drawn with its collision geometry). Collision meshes that cannot be read are errors.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import types
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import mujoco
import numpy as np

from handx_robot.errors import ConfigError, ModelLoadError, MotionValueError, UnknownJointError
from handx_robot.motion import SIDES

__all__ = [
    "HandModel",
    "GainConfig",
    "TableConfig",
    "SceneConfig",
    "HandScene",
    "ContactSummary",
    "build_scene",
    "load_robot_spec",
    "CAMERA_PRESETS",
    "fit_camera_distance",
    "fingertips_from_config",
    "tip_positions",
    "quat_mul",
    "quat_rotate",
    "compose_poses",
    "invert_pose",
]

log = logging.getLogger(__name__)

#: contype / conaffinity bits
BIT_LEFT, BIT_RIGHT, BIT_ENV = 1, 2, 4
_SIDE_BIT = {"left": BIT_LEFT, "right": BIT_RIGHT}
#: default colour of untextured robot geoms per side (left bluish, right warm grey)
_SIDE_RGBA = {"left": [0.55, 0.62, 0.75, 1.0], "right": [0.78, 0.68, 0.58, 1.0]}
#: geom groups: 0 environment, 1 robot visual, 2 robot collision drawn (no visual), 3 hidden collision,
#: 4 markers (wrist targets)
GROUP_ENV, GROUP_VISUAL, GROUP_COLLISION_DRAWN, GROUP_COLLISION_HIDDEN = 0, 1, 2, 3
CAMERA_PRESETS: tuple[str, ...] = ("front", "back", "left", "right", "top", "closeup")
_READABLE_MESH = (".obj", ".stl", ".msh")
_MAX_MODEL_BYTES = 50_000_000


# --------------------------------------------------------------------------------------------- configs
@dataclasses.dataclass(frozen=True)
class HandModel:
    """One robot hand to put in a scene.

    robot_id:        registry id (``shadow_right``) or any label.
    side:            ``left`` or ``right``.
    model_path:      URDF or MJCF file.
    model_format:    ``urdf`` or ``mjcf``.
    fingertip_links: body or site names at the fingertips; empty = the model's leaf bodies (those
                     named ``*tip*`` when there are any).
    independent_joints: the joints a robot motion drives (registry ``joint_names``); the others follow
                     through mimic equalities or coupling tendons. Empty = every joint that is not a
                     mimic follower or the first joint of a coupling tendon.
    """

    robot_id: str
    side: str
    model_path: Path
    model_format: str
    fingertip_links: tuple[str, ...] = ()
    independent_joints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ConfigError(f"robot '{self.robot_id}': side {self.side!r} is not one of {SIDES}")
        fmt = str(self.model_format).lower()
        if fmt not in ("urdf", "mjcf"):
            raise ConfigError(
                f"robot '{self.robot_id}': model_format {self.model_format!r}; allowed: 'urdf', 'mjcf'"
            )
        object.__setattr__(self, "model_format", fmt)
        object.__setattr__(self, "model_path", Path(self.model_path))
        object.__setattr__(self, "fingertip_links", tuple(str(n) for n in self.fingertip_links))
        object.__setattr__(self, "independent_joints", tuple(str(n) for n in self.independent_joints))

    @classmethod
    def from_path(cls, path: str | Path, side: str, robot_id: str | None = None) -> HandModel:
        """A hand from a model file; the format follows the suffix (``.urdf`` or ``.xml``/``.mjcf``)."""
        path = Path(path)
        fmt = "urdf" if path.suffix.lower() == ".urdf" else "mjcf"
        return cls(robot_id=robot_id or path.stem, side=side, model_path=path, model_format=fmt)

    @classmethod
    def from_registry(cls, robot_id: str, assets: str | Path | None = None, side: str | None = None) -> HandModel:
        """A hand from :func:`handx_robot.retarget.robots.get_robot` (fingertips from its retargeting config).

        side: required for side-less robots (grippers, registry side ``any``); else must match.
        """
        try:
            from handx_robot.retarget.robots import fingertip_links, get_robot
        except ModuleNotFoundError as exc:  # the registry lands with the retargeting issue
            raise ModelLoadError(
                f"robot '{robot_id}': the robot registry (handx_robot.retarget.robots) is not available ({exc}); "
                "pass a model file with HandModel.from_path instead"
            ) from exc
        spec = get_robot(robot_id, assets=assets)
        if spec.side in SIDES and side is not None and side != spec.side:
            raise ConfigError(f"robot '{robot_id}' is a {spec.side} hand; it cannot be the {side} hand")
        hand_side = spec.side if spec.side in SIDES else side
        if hand_side is None:
            raise ConfigError(f"robot '{robot_id}' fits either side; say which (side='left' or 'right')")
        try:
            tips = tuple(fingertip_links(spec).values())
        except Exception as exc:  # a config without target links: fall back to the model's leaves
            log.debug("%s: no fingertip links from the config (%s)", robot_id, exc)
            tips = ()
        return cls(
            robot_id=spec.id,
            side=hand_side,
            model_path=Path(spec.model_path),
            model_format=spec.model_format,
            fingertip_links=tips or fingertips_from_config(spec.config or {}),
            independent_joints=tuple(spec.joint_names),
        )


def fingertips_from_config(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Fingertip link names from a dex-retargeting config dict (``finger_tip_link_names`` first,
    then ``target_task_link_names``, then ``target_link_names``); searched at any nesting depth."""

    def find(node: Any, key: str) -> list[str] | None:
        if isinstance(node, Mapping):
            if key in node and isinstance(node[key], (list, tuple)):
                return [str(v) for v in node[key]]
            for v in node.values():
                got = find(v, key)
                if got:
                    return got
        return None

    for key in ("finger_tip_link_names", "target_task_link_names", "target_link_names"):
        got = find(config, key)
        if got:
            return tuple(dict.fromkeys(got))
    return ()


def _frozen_mapping(value: Mapping | None) -> types.MappingProxyType:
    return types.MappingProxyType(dict(value or {}))


@dataclasses.dataclass(frozen=True)
class GainConfig:
    """Finger position-actuator gains (see the module docstring for the formula).

    bandwidth_hz:  natural frequency of each joint's PD loop, Hz (> 0; keep ``2*pi*f*timestep < 0.5``).
    damping_ratio: 1 = critically damped.
    min_inertia:   floor of the effective inertia, kg m^2 (very light links).
    overrides:     ``{joint_name: (kp, kv)}`` (robot joint names, N m/rad and N m s/rad).
    """

    bandwidth_hz: float = 20.0
    damping_ratio: float = 1.0
    min_inertia: float = 1e-6
    overrides: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("bandwidth_hz", "damping_ratio", "min_inertia"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ConfigError(f"GainConfig.{name} must be a finite number > 0, got {v!r}")
        for joint, pair in dict(self.overrides).items():
            if len(pair) != 2 or not all(np.isfinite(p) and p >= 0 for p in pair):
                raise ConfigError(f"GainConfig.overrides[{joint!r}] must be (kp, kv) >= 0, got {pair!r}")
        object.__setattr__(self, "overrides", _frozen_mapping(self.overrides))


@dataclasses.dataclass(frozen=True)
class TableConfig:
    """A box table: top surface at ``height`` (m, world z), centred at ``center_xy``, ``size_xy`` full extents (m)."""

    height: float
    center_xy: tuple[float, float] = (0.0, 0.0)
    size_xy: tuple[float, float] = (1.0, 0.7)
    thickness: float = 0.04

    def __post_init__(self) -> None:
        vals = (self.height, *self.center_xy, *self.size_xy, self.thickness)
        if not all(np.isfinite(v) for v in vals) or min(*self.size_xy, self.thickness) <= 0:
            raise ConfigError(f"TableConfig: height/center must be finite and sizes > 0, got {self!r}")


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """Scene options (SI units, world Z-up).

    timestep:        physics step, s (<= 0.002 for replay).
    gains:           finger actuator gains.
    wrist_timeconst: weld time constant pulling each hand onto its wrist target, s (>= 2 * timestep).
    contact_timeconst: time constant of the hand-hand and hand-environment contacts (geom ``solref``; an
                     MJCF's own ``<pair>`` contacts keep theirs), s (>= 2 * timestep); ``None`` =
                     ``wrist_timeconst``. Keep it <= the wrist's:
                     contacts softer than the weld let the arm push one hand through the other (see
                     "Contacts vs the wrist weld" in the module docstring).
    floor_height:    floor plane z, m (``None``: no floor).
    table:           optional table.
    view_center:     point the preset cameras look at, m, world.
    view_distance:   preset camera distance from ``view_center``, m.
    solver_iterations / ls_iterations: MuJoCo Newton solver budget per step.
    width, height:   offscreen framebuffer size, pixels (largest video you will render).
    gravity:         m/s^2, world.
    shadows:         lights cast shadows (prettier, ~3x slower software rendering).
    max_hull_vertices: cap on the convex-hull vertices of collision meshes (MuJoCo ``maxhullvert``; ~10%
                     faster contacts for the Shadow URDF at 32; ``None`` = exact hulls).
    msaa_samples:    offscreen multisampling (0 = off: reading pixels back costs 3-6x more with 4 samples on
                     software GL; use 4 on a GPU for smoother edges).
    """

    timestep: float = 0.002
    gains: GainConfig = dataclasses.field(default_factory=GainConfig)
    wrist_timeconst: float = 0.005
    contact_timeconst: float | None = None
    floor_height: float | None = 0.0
    table: TableConfig | None = None
    view_center: tuple[float, float, float] = (0.0, 0.0, 0.3)
    view_distance: float = 0.7
    solver_iterations: int = 8
    ls_iterations: int = 4
    width: int = 1280
    height: int = 960
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    shadows: bool = False
    msaa_samples: int = 0
    max_hull_vertices: int | None = 32

    def __post_init__(self) -> None:
        if not (np.isfinite(self.timestep) and 0 < self.timestep <= 0.01):
            raise ConfigError(f"SceneConfig.timestep must be in (0, 0.01] s, got {self.timestep!r}")
        if not (np.isfinite(self.wrist_timeconst) and self.wrist_timeconst >= 2 * self.timestep):
            raise ConfigError(
                f"SceneConfig.wrist_timeconst must be >= 2 * timestep = {2 * self.timestep} s, "
                f"got {self.wrist_timeconst!r}"
            )
        if self.contact_timeconst is not None and not (
            np.isfinite(self.contact_timeconst) and self.contact_timeconst >= 2 * self.timestep
        ):
            raise ConfigError(
                f"SceneConfig.contact_timeconst must be None or >= 2 * timestep = {2 * self.timestep} s, "
                f"got {self.contact_timeconst!r}"
            )
        if self.floor_height is not None and not np.isfinite(self.floor_height):
            raise ConfigError(f"SceneConfig.floor_height must be finite or None, got {self.floor_height!r}")
        if len(self.view_center) != 3 or not all(np.isfinite(self.view_center)):
            raise ConfigError(f"SceneConfig.view_center must be 3 finite numbers, got {self.view_center!r}")
        if not (np.isfinite(self.view_distance) and self.view_distance > 0):
            raise ConfigError(f"SceneConfig.view_distance must be > 0, got {self.view_distance!r}")
        if self.solver_iterations < 1 or self.ls_iterations < 1:
            raise ConfigError("SceneConfig.solver_iterations and ls_iterations must be >= 1")
        if self.max_hull_vertices is not None and self.max_hull_vertices < 4:
            raise ConfigError(f"SceneConfig.max_hull_vertices must be >= 4 or None, got {self.max_hull_vertices!r}")
        if self.msaa_samples not in (0, 1, 2, 4, 8, 16):
            raise ConfigError(f"SceneConfig.msaa_samples must be one of 0, 1, 2, 4, 8, 16, got {self.msaa_samples!r}")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ConfigError(f"SceneConfig width/height must be in [16, 8192], got {self.width}x{self.height}")
        object.__setattr__(self, "view_center", tuple(float(v) for v in self.view_center))
        object.__setattr__(self, "gravity", tuple(float(v) for v in self.gravity))


# ------------------------------------------------------------------------------------------ model load
def _resolve_package_path(filename: str, model_dir: Path) -> str:
    """``package://pkg/rest`` -> an existing ``rest`` next to (or above) the model file, else unchanged."""
    if not filename.startswith("package://"):
        return filename
    rest = filename[len("package://") :].split("/", 1)
    tail = rest[1] if len(rest) == 2 else rest[0]
    for base in (model_dir, *model_dir.parents[:3]):
        if (base / tail).is_file():
            return str(base / tail)
    return filename


def _read_urdf(path: Path) -> mujoco.MjSpec:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the robot model ({exc}); check the path or --assets") from exc
    if size > _MAX_MODEL_BYTES:
        raise ModelLoadError(f"{path}: {size} bytes is too large for a URDF (limit {_MAX_MODEL_BYTES})")
    text = path.read_text(encoding="utf-8", errors="replace")
    match = re.search(r"<robot\b[^>]*>", text)
    if match is None:
        raise ModelLoadError(f"{path}: no <robot> element; is this a URDF file?")
    model_dir = path.resolve().parent
    # keep visuals and fixed tip links; mesh paths relative to the URDF; inertia fixes are decided below
    tag = (
        '<mujoco><compiler discardvisual="false" fusestatic="false" strippath="false" '
        f"meshdir={quoteattr(str(model_dir) + '/')}/></mujoco>"
    )
    text = text[: match.end()] + tag + text[match.end() :]
    text = re.sub(
        r'filename="(package://[^"]+)"',
        lambda m: f'filename="{_resolve_package_path(m.group(1), model_dir)}"',
        text,
    )
    try:
        return mujoco.MjSpec.from_string(text)
    except Exception as exc:
        raise ModelLoadError(f"{path}: MuJoCo cannot parse this URDF: {exc}") from exc


def _fix_meshes(spec: mujoco.MjSpec, path: Path) -> list[str]:
    """Swap or drop meshes MuJoCo cannot read (see the module docstring); returns the fixes made."""
    fixes: list[str] = []
    meshdir = Path(spec.meshdir) if spec.meshdir else path.resolve().parent
    if not meshdir.is_absolute():
        meshdir = path.resolve().parent / meshdir
    geoms_by_mesh: dict[str, list] = {}
    for g in spec.geoms:
        if g.type == mujoco.mjtGeom.mjGEOM_MESH:
            geoms_by_mesh.setdefault(g.meshname, []).append(g)
    for mesh in list(spec.meshes):
        if not mesh.file:
            continue
        f = Path(mesh.file)
        full = f if f.is_absolute() else meshdir / f
        if full.suffix.lower() in _READABLE_MESH and full.is_file():
            continue
        swap = next(
            (full.with_suffix(s) for s in _READABLE_MESH if full.with_suffix(s).is_file()),
            None,
        )
        if swap is not None:
            mesh.file = str(swap)
            fixes.append(f"mesh '{mesh.name}': {f.name} -> {swap.name} (MuJoCo reads .obj/.stl/.msh)")
            continue
        users = geoms_by_mesh.get(mesh.name, [])
        if any(g.contype or g.conaffinity for g in users):
            raise ModelLoadError(
                f"{path}: collision mesh '{mesh.name}' file {full} is missing or not readable by MuJoCo "
                f"(allowed: {', '.join(_READABLE_MESH)}); convert it to .obj or fix the path"
            )
        for g in users:
            spec.delete(g)
        spec.delete(mesh)
        fixes.append(f"visual mesh '{mesh.name}' dropped ({full.name} missing or unreadable); collision shown")
    return fixes


def _compile(spec: mujoco.MjSpec, what: str) -> mujoco.MjModel:
    """``spec.compile()`` with MuJoCo's decoder warnings (e.g. OBJ texture coordinates) sent to the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = spec.compile()
    for w in {str(c.message) for c in caught}:
        log.debug("%s: %s", what, w)
    return model


def load_robot_spec(hand: HandModel) -> tuple[mujoco.MjSpec, mujoco.MjModel, list[str]]:
    """Parse a hand model into an ``MjSpec`` and apply the URDF fixes; returns ``(spec, model, fixes)``.

    Raises :class:`ModelLoadError` naming the file when the model cannot be read or compiled.
    """
    path = hand.model_path
    if not path.is_file():
        raise ModelLoadError(
            f"robot '{hand.robot_id}': model file {path} not found; check --assets or the registry entry"
        )
    if hand.model_format == "urdf":
        spec = _read_urdf(path)
    else:
        try:
            spec = mujoco.MjSpec.from_file(str(path))
        except Exception as exc:
            raise ModelLoadError(f"{path}: MuJoCo cannot parse this MJCF: {exc}") from exc
    fixes = _fix_meshes(spec, path)
    try:
        model = _compile(spec, str(path))
    except Exception as exc:
        if "balanceinertia" not in str(exc):
            raise ModelLoadError(f"{path}: MuJoCo cannot compile this model: {exc}") from exc
        spec.compiler.balanceinertia = True
        fixes.append(f"inertias balanced (balanceinertia): {str(exc).splitlines()[0]}")
        try:
            model = _compile(spec, str(path))
        except Exception as exc2:
            raise ModelLoadError(f"{path}: MuJoCo cannot compile this model: {exc2}") from exc2
    for fix in fixes:
        log.info("%s (%s): %s", hand.robot_id, path.name, fix)
    return spec, model, fixes


def _subtree_has_joint(body) -> bool:
    if body.joints:
        return True
    return any(_subtree_has_joint(b) for b in body.bodies)


# ------------------------------------------------------------------------------------------ poses
def _hamilton_table() -> np.ndarray:
    """(16, 4): ``quat_mul(a, b) = outer(a, b).reshape(16) @ table``."""
    table = np.zeros((4, 4, 4))
    # (i, j) -> (component of the product, sign): rows a_i, columns b_j, w x y z
    terms = {
        (0, 0): (0, 1), (1, 1): (0, -1), (2, 2): (0, -1), (3, 3): (0, -1),
        (0, 1): (1, 1), (1, 0): (1, 1), (2, 3): (1, 1), (3, 2): (1, -1),
        (0, 2): (2, 1), (1, 3): (2, -1), (2, 0): (2, 1), (3, 1): (2, 1),
        (0, 3): (3, 1), (1, 2): (3, 1), (2, 1): (3, -1), (3, 0): (3, 1),
    }
    for (i, j), (k, sign) in terms.items():
        table[i, j, k] = sign
    return table.reshape(16, 4)


_HAMILTON = _hamilton_table()


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of ``(..., 4)`` wxyz quaternions (broadcasting; one matrix product with a
    sign table, cheaper than component-wise code for the few quaternions of an RL env step)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    outer = a[..., :, None] * b[..., None, :]
    return outer.reshape(outer.shape[:-2] + (16,)) @ _HAMILTON


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v (..., 3)`` by unit quaternions ``q (..., 4)`` wxyz."""
    q = np.asarray(q, dtype=np.float64)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def compose_poses(T_a_b: np.ndarray, T_b_c: np.ndarray) -> np.ndarray:
    """``T_a_c = T_a_b @ T_b_c`` for poses ``[x, y, z, qw, qx, qy, qz]`` (..., 7) (broadcast)."""
    T_a_b, T_b_c = np.asarray(T_a_b, dtype=np.float64), np.asarray(T_b_c, dtype=np.float64)
    p = T_a_b[..., :3] + quat_rotate(T_a_b[..., 3:], np.broadcast_to(T_b_c[..., :3], T_a_b[..., :3].shape))
    q = quat_mul(T_a_b[..., 3:], T_b_c[..., 3:])
    return np.concatenate([p, q / np.linalg.norm(q, axis=-1, keepdims=True)], axis=-1)


def invert_pose(T_a_b: np.ndarray) -> np.ndarray:
    """``T_b_a`` of a pose (7,)."""
    T_a_b = np.asarray(T_a_b, dtype=np.float64)
    q_inv = T_a_b[3:] * np.array([1.0, -1.0, -1.0, -1.0])
    return np.concatenate([-quat_rotate(q_inv, T_a_b[:3]), q_inv])


# --------------------------------------------------------------------------------------------- scene
@dataclasses.dataclass(frozen=True)
class ContactSummary:
    """Contacts at one instant. Depths are penetration depths, metres (>= 0; 0 = none).

    hand_hand:       a left-hand geom touches a right-hand geom.
    hand_hand_depth: deepest hand-hand penetration.
    hand_env_depth:  deepest hand-floor/table penetration.
    """

    hand_hand: bool
    hand_hand_depth: float
    hand_env_depth: float


@dataclasses.dataclass
class _Hand:
    """Indices of one hand inside the compiled scene (computed once, by name)."""

    robot_id: str
    side: str
    joint_names: tuple[str, ...]  # every hinge/slide joint, model order
    actuated: tuple[str, ...]  # joints with an actuator (not mimic followers)
    mimic: dict[str, tuple[str, np.ndarray]]  # follower -> (leader, poly coeffs c0..c4)
    qadr: np.ndarray  # (n,) qpos address per joint_names
    vadr: np.ndarray  # (n,) dof address per joint_names
    act_ids: np.ndarray  # (a,) actuator id per actuated
    act_qadr: np.ndarray
    act_vadr: np.ndarray
    kp: np.ndarray
    kv: np.ndarray
    damping: np.ndarray  # (a,) passive joint damping of the actuated joints, N m s/rad
    ctrl_lo: np.ndarray
    ctrl_hi: np.ndarray
    fingertips: tuple[str, ...]
    tip_body_ids: np.ndarray  # (k,) body carrying each fingertip (a body or a site's body)
    tip_offsets: np.ndarray  # (k, 3) fingertip position in that body's frame, m (0 for bodies)
    mount_id: int
    free_qadr: int
    free_vadr: int
    mocap_id: int
    home: np.ndarray  # (n,) home joint positions: 0 clipped into the range
    T_base_root: np.ndarray  # (7,) robot root body in the model frame (see _attach_hand)
    fixes: tuple[str, ...] = ()

    def base_to_mount(self, poses: np.ndarray) -> np.ndarray:
        """``T_world_base`` poses (..., 7) -> mount poses ``T_world_base @ T_base_root`` (..., 7)."""
        return compose_poses(poses, self.T_base_root)

    def mount_to_base(self, poses: np.ndarray) -> np.ndarray:
        """Mount poses (..., 7) -> ``T_world_base`` (..., 7)."""
        return compose_poses(poses, invert_pose(self.T_base_root))


class HandScene:
    """A compiled MuJoCo scene with one or two hands; the API the replay, RL env and ROS sim node use.

    Joints are addressed by the robot's own joint names, per side. Arrays: joint positions in rad (m for
    slide joints); wrist poses ``T_world_base`` as ``[x, y, z, qw, qx, qy, qz]`` (m, world Z-up);
    fingertip positions (k, 3) m, world.
    """

    def __init__(self, model: mujoco.MjModel, hands: dict[str, _Hand], config: SceneConfig, spec: mujoco.MjSpec):
        self.model = model
        self.data = mujoco.MjData(model)
        self.config = config
        self.spec = spec
        self._hands = hands
        self._vel_ff = np.zeros(model.nv)
        geom_side = np.full(model.ngeom, -1, dtype=np.int64)  # -1 environment, 0 left, 1 right
        roots = model.body_rootid[model.geom_bodyid]
        for side, h in hands.items():
            geom_side[roots == h.mount_id] = SIDES.index(side)
        self._geom_side = geom_side
        self.reset()

    # ------------------------------------------------------------------ introspection
    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(s for s in SIDES if s in self._hands)

    def _hand(self, side: str) -> _Hand:
        try:
            return self._hands[side]
        except KeyError:
            raise ConfigError(f"the scene has no {side!r} hand; hands: {', '.join(self.sides)}") from None

    def robot_id(self, side: str) -> str:
        return self._hand(side).robot_id

    def joint_names(self, side: str) -> tuple[str, ...]:
        """Every joint of the hand (hinge/slide), model order, robot names."""
        return self._hand(side).joint_names

    def actuated_joint_names(self, side: str) -> tuple[str, ...]:
        """Joints with a position actuator (the others follow through mimic equalities)."""
        return self._hand(side).actuated

    def mimic_joints(self, side: str) -> dict[str, tuple[str, np.ndarray]]:
        """``{follower: (leader, coeffs)}``: ``q_follower = c0 + c1 q + c2 q^2 + ...`` of the leader."""
        return dict(self._hand(side).mimic)

    def fingertip_names(self, side: str) -> tuple[str, ...]:
        return self._hand(side).fingertips

    def gains(self, side: str) -> dict[str, tuple[float, float]]:
        """``{joint: (kp, kv)}`` of the actuated joints."""
        h = self._hand(side)
        return {n: (float(p), float(v)) for n, p, v in zip(h.actuated, h.kp, h.kv)}

    def base_to_mount(self, side: str, poses: np.ndarray) -> np.ndarray:
        """``T_world_base`` poses (..., 7) -> poses of the floating mount (free joint qpos / mocap target),
        ``T_world_base @ T_base_root``. Code that writes the free joint or the mocap body directly must
        convert with this (identity only when the model's root body sits at its model frame origin)."""
        return self._hand(side).base_to_mount(np.asarray(poses, dtype=np.float64))

    def mount_to_base(self, side: str, poses: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`base_to_mount`: mount poses (..., 7) -> ``T_world_base``."""
        return self._hand(side).mount_to_base(np.asarray(poses, dtype=np.float64))

    def T_base_root(self, side: str) -> np.ndarray:
        """(7,) pose of the robot's root body in its model frame (``[x, y, z, qw, qx, qy, qz]``)."""
        return self._hand(side).T_base_root.copy()

    def joint_limits(self, side: str) -> dict[str, tuple[float, float]]:
        h = self._hand(side)
        out = {}
        for name in h.joint_names:
            jid = self.model.joint(f"{side}/{name}").id
            lo, hi = self.model.jnt_range[jid]
            out[name] = (float(lo), float(hi)) if self.model.jnt_limited[jid] else (-math.inf, math.inf)
        return out

    def aim_cameras(self, center: Sequence[float], distance: float) -> None:
        """Point the preset cameras at ``center`` (m, world) from ``distance`` m."""
        if distance <= 0 or len(center) != 3 or not np.all(np.isfinite(center)):
            raise ConfigError(f"aim_cameras: need a finite centre (3,) and distance > 0, got {center}, {distance}")
        for name in CAMERA_PRESETS:
            cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
            if cid >= 0:
                self.model.cam_pos[cid], self.model.cam_quat[cid] = camera_pose(name, center, distance)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def frame_cameras(
        self, lo: Sequence[float], hi: Sequence[float], aspect: float | None = None, margin: float = 1.1
    ) -> dict[str, float]:
        """Aim every preset camera at the centre of the box ``[lo, hi]`` (m, world) from the distance at
        which the whole box fits in its image (:func:`fit_camera_distance`; ``aspect`` = width / height,
        default the offscreen buffer's; ``margin`` >= 1 leaves that much room). Returns the distances, m."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if lo.shape != (3,) or hi.shape != (3,) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ConfigError(f"frame_cameras: need finite lo, hi (3,) in metres, got {lo.tolist()}, {hi.tolist()}")
        if aspect is None:
            aspect = self.model.vis.global_.offwidth / self.model.vis.global_.offheight
        center = (lo + hi) / 2
        out = {}
        for name in CAMERA_PRESETS:
            cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
            if cid < 0:
                continue
            d = fit_camera_distance(name, lo, hi, float(self.model.cam_fovy[cid]), aspect, margin)
            self.model.cam_pos[cid], self.model.cam_quat[cid] = camera_pose(name, center, d)
            out[name] = d
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        return out

    def set_floor_height(self, z: float) -> None:
        """Move the floor plane to height ``z`` (m, world); no-op without a floor. MuJoCo treats world
        geoms as static, so this recompiles the scene (same indices) and resets the state."""
        if not np.isfinite(z):
            raise ConfigError(f"floor height must be finite, got {z!r}")
        try:
            geom = self.spec.geom("handx/floor")
        except Exception:
            geom = None
        if geom is None:
            return
        geom.pos = [geom.pos[0], geom.pos[1], float(z)]
        cams = {n: (self.model.cam_pos[i].copy(), self.model.cam_quat[i].copy()) for i, n in enumerate(self.camera_names)}
        self.model = _compile(self.spec, "scene")
        for i, n in enumerate(self.camera_names):
            self.model.cam_pos[i], self.model.cam_quat[i] = cams[n]
        self.data = mujoco.MjData(self.model)
        self._vel_ff = np.zeros(self.model.nv)
        self.reset()

    def robot_extent(self, data: mujoco.MjData | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(lo (3,), hi (3,))`` bounding box of every hand's geoms (their local boxes ``geom_aabb``
        turned into world-axis boxes), m, world."""
        d = self.data if data is None else data
        mounts = [h.mount_id for h in self._hands.values()]
        geoms = np.isin(self.model.body_rootid[self.model.geom_bodyid], mounts)
        aabb = self.model.geom_aabb[geoms]  # (n, 6): centre, half sizes in the geom frame
        R = d.geom_xmat[geoms].reshape(-1, 3, 3)
        c = d.geom_xpos[geoms] + np.einsum("nij,nj->ni", R, aabb[:, :3])
        h = np.einsum("nij,nj->ni", np.abs(R), aabb[:, 3:])
        return (c - h).min(axis=0), (c + h).max(axis=0)

    def hand_geom_positions(self, side: str, data: mujoco.MjData | None = None) -> np.ndarray:
        """(n, 3) centres of the geoms of the ``side`` hand, m, world (of ``data``, default the scene's)."""
        self._hand(side)
        d = self.data if data is None else data
        return d.geom_xpos[self._geom_side == SIDES.index(side)].copy()

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self.model.camera(i).name for i in range(self.model.ncam))

    @property
    def fixes(self) -> dict[str, tuple[str, ...]]:
        """URDF fixes applied per side (also logged)."""
        return {s: h.fixes for s, h in self._hands.items()}

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Zero velocities, joints at home (0 clipped into the joint range), hands at their mount pose."""
        mujoco.mj_resetData(self.model, self.data)
        self._vel_ff[:] = 0.0
        for h in self._hands.values():
            self.data.qpos[h.qadr] = h.home
            self.data.ctrl[h.act_ids] = h.home[[h.joint_names.index(n) for n in h.actuated]]
            pose = np.concatenate([self.model.body_pos[h.mount_id], self.model.body_quat[h.mount_id]])
            self.data.qpos[h.free_qadr : h.free_qadr + 7] = pose
            self.data.mocap_pos[h.mocap_id] = pose[:3]
            self.data.mocap_quat[h.mocap_id] = pose[3:]
        mujoco.mj_forward(self.model, self.data)

    def _names_to_index(self, side: str, names: Sequence[str]) -> list[int]:
        h = self._hand(side)
        lookup = {n: i for i, n in enumerate(h.joint_names)}
        unknown = [n for n in names if n not in lookup]
        if unknown:
            raise UnknownJointError(
                f"robot '{h.robot_id}' ({side}) has no joints {unknown}; its joints: {', '.join(h.joint_names)}"
            )
        return [lookup[n] for n in names]

    def set_joint_positions(self, side: str, qpos: Mapping[str, float], wrist_pose: Sequence[float] | None = None) -> None:
        """Kinematic set: joint positions by name (mimic followers computed from their leaders unless
        given), optional wrist pose ``[x, y, z, qw, qx, qy, qz]``; zeroes velocities. Call
        :meth:`forward` afterwards to update positions and contacts."""
        h = self._hand(side)
        names = list(qpos)
        values = np.array([qpos[n] for n in names], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = [n for n, v in zip(names, values) if not np.isfinite(v)]
            raise MotionValueError(f"{side} hand: joint positions of {bad} are NaN/inf")
        idx = self._names_to_index(side, names)
        self.data.qpos[h.qadr[idx]] = values
        given = set(names)
        for follower, (leader, coef) in h.mimic.items():
            if follower not in given:
                q = self.data.qpos[h.qadr[h.joint_names.index(leader)]]
                self.data.qpos[h.qadr[h.joint_names.index(follower)]] = np.polyval(coef[::-1], q)
        self.data.qvel[h.vadr] = 0.0
        if wrist_pose is not None:
            pose = h.base_to_mount(self._check_pose(side, wrist_pose))
            self.data.qpos[h.free_qadr : h.free_qadr + 7] = pose
            self.data.qvel[h.free_vadr : h.free_vadr + 6] = 0.0
            self.data.mocap_pos[h.mocap_id] = pose[:3]
            self.data.mocap_quat[h.mocap_id] = pose[3:]

    @property
    def time(self) -> float:
        """Simulation time, s."""
        return float(self.data.time)

    def forward(self) -> None:
        """Recompute positions, contacts and forces from the current state (no time step)."""
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, side: str, targets: Mapping[str, float], velocities: Mapping[str, float] | None = None) -> None:
        """Position targets of actuated joints by name (rad / m), clamped to the joint range, and
        optional target velocities (feed-forward ``(kv + joint damping) * qdot_target``, rad/s)."""
        h = self._hand(side)
        lookup = {n: i for i, n in enumerate(h.actuated)}
        unknown = [n for n in targets if n not in lookup]
        if unknown:
            raise UnknownJointError(
                f"robot '{h.robot_id}' ({side}): {unknown} are not actuated joints; "
                f"actuated: {', '.join(h.actuated)}"
                + (f"; mimic followers (driven by their leaders): {', '.join(h.mimic)}" if h.mimic else "")
            )
        idx = np.array([lookup[n] for n in targets], dtype=np.int64)
        values = np.array(list(targets.values()), dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = [n for n, v in zip(targets, values) if not np.isfinite(v)]
            raise MotionValueError(f"{side} hand: targets of {bad} are NaN/inf; refusing to command them")
        self.data.ctrl[h.act_ids[idx]] = np.clip(values, h.ctrl_lo[idx], h.ctrl_hi[idx])
        if velocities is not None:
            vidx = np.array([lookup[n] for n in velocities], dtype=np.int64)
            v = np.array(list(velocities.values()), dtype=np.float64)
            self._vel_ff[h.act_vadr[vidx]] = np.where(np.isfinite(v), (h.kv[vidx] + h.damping[vidx]) * v, 0.0)

    def set_target_array(self, side: str, q: np.ndarray, qdot: np.ndarray | None = None) -> None:
        """Fast path of :meth:`set_targets`: ``q`` (a,) in :meth:`actuated_joint_names` order."""
        h = self._hand(side)
        self.data.ctrl[h.act_ids] = np.clip(q, h.ctrl_lo, h.ctrl_hi)
        if qdot is not None:
            self._vel_ff[h.act_vadr] = (h.kv + h.damping) * qdot

    def _check_pose(self, side: str, pose: Sequence[float]) -> np.ndarray:
        p = np.asarray(pose, dtype=np.float64).reshape(-1)
        if p.shape != (7,) or not np.all(np.isfinite(p)):
            raise MotionValueError(
                f"{side} wrist pose must be 7 finite numbers [x, y, z, qw, qx, qy, qz], got {np.asarray(pose)!r}"
            )
        n = np.linalg.norm(p[3:])
        if n < 1e-9:
            raise MotionValueError(f"{side} wrist quaternion is zero: {p[3:]}")
        p[3:] /= n
        return p

    def set_wrist_target(self, side: str, pose: Sequence[float]) -> None:
        """Wrist target ``T_world_base`` ``[x, y, z, qw, qx, qy, qz]`` (m, world); the weld pulls the hand there."""
        h = self._hand(side)
        p = h.base_to_mount(self._check_pose(side, pose))
        self.data.mocap_pos[h.mocap_id] = p[:3]
        self.data.mocap_quat[h.mocap_id] = p[3:]

    def step(self, n: int = 1) -> None:
        """Advance physics by ``n`` timesteps (targets held). ``data.qfrc_applied`` is overwritten with the
        velocity feed-forward of :meth:`set_targets`."""
        self.data.qfrc_applied[:] = self._vel_ff
        mujoco.mj_step(self.model, self.data, nstep=int(n))

    def joint_positions(self, side: str) -> dict[str, float]:
        h = self._hand(side)
        return dict(zip(h.joint_names, self.data.qpos[h.qadr].tolist()))

    def joint_velocities(self, side: str) -> dict[str, float]:
        h = self._hand(side)
        return dict(zip(h.joint_names, self.data.qvel[h.vadr].tolist()))

    def joint_efforts(self, side: str) -> dict[str, float]:
        """Actuator torque (N m; N for slide joints) of each actuated joint, after the last step."""
        h = self._hand(side)
        return dict(zip(h.actuated, self.data.actuator_force[h.act_ids].tolist()))

    def joint_position_array(self, side: str) -> np.ndarray:
        """(n,) joint positions in :meth:`joint_names` order."""
        h = self._hand(side)
        return self.data.qpos[h.qadr].copy()

    def wrist_pose(self, side: str) -> np.ndarray:
        """(7,) ``T_world_base`` of the simulated hand, [x, y, z, qw, qx, qy, qz]."""
        h = self._hand(side)
        return h.mount_to_base(np.concatenate([self.data.xpos[h.mount_id], self.data.xquat[h.mount_id]]))

    def fingertip_positions(self, side: str) -> dict[str, np.ndarray]:
        """``{link: (3,)}`` fingertip positions, m, world (after a step or :meth:`forward`)."""
        return dict(zip(self._hand(side).fingertips, self.fingertip_array(side)))

    def fingertip_array(self, side: str, data: mujoco.MjData | None = None) -> np.ndarray:
        """(k, 3) fingertip positions in :meth:`fingertip_names` order, m, world (of ``data``, default
        the scene's)."""
        return tip_positions(self._hand(side), self.data if data is None else data)

    def contacts(self) -> ContactSummary:
        """Hand-hand and hand-environment contacts of the current state."""
        d = self.data
        n = d.ncon
        if n == 0:
            return ContactSummary(False, 0.0, 0.0)
        geoms = d.contact.geom[:n]
        dist = d.contact.dist[:n]
        s1, s2 = self._geom_side[geoms[:, 0]], self._geom_side[geoms[:, 1]]
        hh = (s1 >= 0) & (s2 >= 0) & (s1 != s2)
        he = (s1 >= 0) ^ (s2 >= 0)
        depth = np.maximum(-dist, 0.0)
        return ContactSummary(
            hand_hand=bool(hh.any()),
            hand_hand_depth=float(depth[hh].max()) if hh.any() else 0.0,
            hand_env_depth=float(depth[he].max()) if he.any() else 0.0,
        )


def tip_positions(hand: _Hand, data: mujoco.MjData) -> np.ndarray:
    """(k, 3) fingertip positions of ``hand`` in ``data`` (after kinematics), m, world."""
    xmat = data.xmat[hand.tip_body_ids].reshape(-1, 3, 3)
    return data.xpos[hand.tip_body_ids] + np.einsum("kij,kj->ki", xmat, hand.tip_offsets)


# --------------------------------------------------------------------------------------------- builder
#: preset camera direction from the view centre (unit-free, scaled by the view distance)
_CAMERA_OFFSETS = {
    "front": (0.0, -1.0, 0.35),
    "back": (0.0, 1.0, 0.35),
    "left": (-1.0, 0.0, 0.35),
    "right": (1.0, 0.0, 0.35),
    "top": (0.0, -0.05, 1.0),
    "closeup": (0.0, -0.5, 0.25),
}


def camera_pose(name: str, center: Sequence[float], distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) and orientation quaternion wxyz (4,) of preset camera ``name`` looking at ``center``
    from ``distance`` m (MuJoCo cameras look along their -z axis, y up)."""
    center = np.asarray(center, dtype=np.float64)
    pos = center + distance * np.asarray(_CAMERA_OFFSETS[name])
    fwd = center - pos
    fwd /= np.linalg.norm(fwd)
    up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
    x = np.cross(fwd, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, fwd)
    R_world_cam = np.stack([x, y, -fwd], axis=1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, R_world_cam.reshape(-1))
    return pos, quat


def fit_camera_distance(
    name: str,
    lo: Sequence[float],
    hi: Sequence[float],
    fovy_deg: float = 45.0,
    aspect: float = 4 / 3,
    margin: float = 1.1,
    min_distance: float = 0.15,
) -> float:
    """The ``distance`` argument of :func:`camera_pose` at which preset ``name``, aimed at the centre
    of the box ``[lo, hi]`` (m, world), sees all 8 corners of the box inside its image (pinhole,
    vertical field of view ``fovy_deg``, ``aspect`` = width / height) with ``margin`` (>= 1) to spare.

    A corner ``c`` (relative to the centre) at camera coordinates ``(X, Y)`` and depth ``d - c . o``
    (``o``: unit direction centre -> camera) is inside when ``margin * |X| <= tan_h * depth`` and
    ``margin * |Y| <= tan_v * depth``; the smallest such ``d`` is closed-form.
    """
    if name not in _CAMERA_OFFSETS:
        raise ConfigError(f"unknown camera preset {name!r}; presets: {', '.join(CAMERA_PRESETS)}")
    if not (0 < fovy_deg < 180 and aspect > 0 and margin >= 1):
        raise ConfigError(f"fit_camera_distance: need 0 < fovy < 180, aspect > 0, margin >= 1; got "
                          f"{fovy_deg}, {aspect}, {margin}")  # fmt: skip
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    center = (lo + hi) / 2
    offset = np.asarray(_CAMERA_OFFSETS[name], dtype=np.float64)
    scale = float(np.linalg.norm(offset))
    _, quat = camera_pose(name, center, 1.0)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, quat)
    R = R.reshape(3, 3)  # columns: camera x (right), y (up), z (backward = toward the camera)
    half = (hi - lo) / 2
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    cam = corners @ R  # (8, 3): X, Y, and the component toward the camera
    tan_v = math.tan(math.radians(fovy_deg) / 2)
    tan_h = tan_v * aspect
    need = cam[:, 2] + margin * np.maximum(np.abs(cam[:, 0]) / tan_h, np.abs(cam[:, 1]) / tan_v)
    return max(float(need.max()), min_distance) / scale


def _add_environment(spec: mujoco.MjSpec, config: SceneConfig) -> None:
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


def _attach_hand(
    spec: mujoco.MjSpec, hand: HandModel, robot_spec: mujoco.MjSpec, robot_model: mujoco.MjModel, config: SceneConfig,
    home: Sequence[float] = HOME_POSITIONS["single"],
) -> np.ndarray:
    """Attach the robot under a floating mount; returns ``T_base_root`` (7,): the pose of the robot's
    root body in its model frame. The mount is placed at the root body (so the weld acts there, not at
    a far-away model origin) and poses are converted with ``T_world_mount = T_world_base @ T_base_root``."""
    side = hand.side
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
    mount = spec.worldbody.add_body(name=f"handx/{side}/mount", pos=list(home), quat=[1, 0, 0, 0])
    mount.mass = 0.05
    mount.inertia = [1e-5, 1e-5, 1e-5]
    mount.explicitinertial = True
    mount.add_freejoint(name=f"handx/{side}/free")
    target = spec.worldbody.add_body(name=f"handx/{side}/wrist_target", mocap=True, pos=list(home))
    target.add_site(name=f"handx/{side}/wrist_target", size=[0.005, 0, 0], rgba=[1, 0.3, 0.1, 0.6], group=4)
    frame = mount.add_frame()
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
    weld = spec.add_equality(
        name=f"handx/{side}/wrist_weld", type=mujoco.mjtEq.mjEQ_WELD, objtype=mujoco.mjtObj.mjOBJ_BODY,
        name1=f"handx/{side}/mount", name2=f"handx/{side}/wrist_target",
    )
    data = np.zeros(len(weld.data))
    data[6] = 1.0  # relquat = identity, relpos = 0: the mount sits exactly at the target
    data[10] = 1.0  # torquescale
    weld.data = data
    weld.solref = [config.wrist_timeconst, 1.0]
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
        model = _compile(spec, "scene")
    except Exception as exc:
        raise ModelLoadError(f"cannot compile the scene of {[h.robot_id for h in hand_list]}: {exc}") from exc
    indices = {h.side: _index_hand(model, h, fixes[h.side], root_pose[h.side]) for h in hand_list}
    _add_actuators(spec, model, indices, config.gains)
    try:
        model = _compile(spec, "scene")
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


def _index_hand(model: mujoco.MjModel, hand: HandModel, fixes: list[str], T_base_root: np.ndarray) -> _Hand:
    side = hand.side
    prefix = f"{side}/"
    joints = [
        j for j in range(model.njnt)
        if model.joint(j).name.startswith(prefix)
        and int(model.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    ]
    names = tuple(model.joint(j).name[len(prefix):] for j in joints)
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
    if independent:
        unknown = [n for n in hand.independent_joints if n not in names]
        if unknown:
            raise ModelLoadError(
                f"{hand.model_path}: independent joints {unknown} of robot '{hand.robot_id}' are not in the "
                f"model; model joints: {', '.join(names)}"
            )
        uncovered = [n for n in names if n not in independent and n not in mimic]
        if uncovered:
            log.warning("%s: joints %s are neither independent nor coupled; actuating them too", hand.robot_id, uncovered)
        mimic = {k: v for k, v in mimic.items() if k not in independent}
    actuated = tuple(n for n in names if n not in mimic)
    lo = model.jnt_range[joints, 0].copy()
    hi = model.jnt_range[joints, 1].copy()
    limited = model.jnt_limited[joints].astype(bool)
    home = np.where(limited, np.clip(0.0, lo, hi), 0.0)
    mount = model.body(f"handx/{side}/mount").id
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
        fingertips=tuple(tips), tip_body_ids=np.array(tip_ids, dtype=np.int64),
        tip_offsets=np.array(tip_off, dtype=np.float64).reshape(-1, 3), mount_id=mount, free_qadr=int(model.jnt_qposadr[free]),
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
