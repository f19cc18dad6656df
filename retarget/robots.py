"""The registry of robot hands: id -> model (URDF or MJCF) + retargeting config.

Every robot is a :class:`RobotSpec`: a kinematic model and a retargeting config in
dex-retargeting's YAML schema (``retargeting: {type, urdf_path, target_..., scaling_factor, ...}``),
plus an optional ``handx:`` section of our own (wrist calibration, keypoint order).

Ids (``s`` in ``right``, ``left``):

==================== ========================================================= ==========================
id                   model                                                     config
==================== ========================================================= ==========================
``allegro_s``        ``<assets>/allegro_hand/allegro_hand_s.urdf``              dex teleop (vector)
``leap_s``           ``<assets>/leap_hand/leap_hand_s.urdf``                    dex teleop (vector)
``inspire_s``        ``<assets>/inspire_hand/inspire_hand_s.urdf`` (mimic)      dex teleop (vector)
``shadow_s``         ``<assets>/shadow_hand/shadow_hand_s.urdf``                dex teleop (vector)
``ability_s``        ``<assets>/ability_hand/ability_hand_s.urdf``              dex teleop (vector)
``schunk_svh_s``     ``<assets>/schunk_hand/schunk_svh_hand_s.urdf``            dex teleop (vector)
``panda_gripper``    ``<assets>/panda_gripper/panda_gripper_glb.urdf``          dex teleop (vector)
``shadow_builtin_s`` Shadow Hand MJCF of the ``gymnasium-robotics`` wheel       ``retarget/configs/``
                     (left: mirrored copy generated in the cache directory)
==================== ========================================================= ==========================

Variants: ``ID@position`` (dex offline config, position objective with a free-floating base) and
``ID@dexpilot`` (dex teleop DexPilot config), where dex-retargeting ships them. A path to a YAML file
is also an id: its ``urdf_path`` is resolved against the YAML's folder, then the asset directory.

Asset directory: ``assets=`` / ``--assets DIR`` / ``$HANDX_ROBOT_ASSETS``, laid out like dex-urdf
(``DIR/allegro_hand/...``) or like its repository (``DIR/robots/hands/allegro_hand/...``).

Calibration (``handx:`` section of a config; defaults in brackets)::

    base_rpy_in_human_wrist: [r, p, y]   # R_wrist_base, URDF rpy (rad)  [0, 0, 0]
    base_xyz_in_human_wrist: [x, y, z]   # p_wrist_base (m)  [placed so wrist_match_link is at the wrist]
    wrist_match_link: NAME               # [vector origin link / DexPilot wrist_link_name / base]
    human_keypoint_order: mediapipe21    # order of the config's human indices  [mediapipe21]

The human wrist frame is :mod:`handx_robot.handframe`'s (x out of the palm, z toward the fingers,
y toward the thumb on a right hand, toward the pinky on a left one). It coincides with
dex-retargeting's MANO-convention frame, in which dex-urdf hands' base frames are defined, so their
rotation offset is the identity. ``T_world_base = T_world_wrist @ T_wrist_base``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from handx_robot.errors import ConfigError, ModelLoadError, UnknownRobotError
from handx_robot.keypoints import HANDX_TO_MEDIAPIPE

__all__ = [
    "RobotSpec",
    "RobotInfo",
    "Calibration",
    "RobotRegistry",
    "get_robot",
    "list_robots",
    "register_robot",
    "resolve_robot_ids",
    "fingertip_links",
    "wrist_link",
    "builtin_ids",
    "dex_config_dir",
    "asset_roots",
    "ASSETS_ENV",
    "BUILTIN_SHADOW_DROPPED_GEOMS",
    "BUILTIN_SHADOW_NONCOLLIDING_GEOMS",
]

log = logging.getLogger(__name__)

ASSETS_ENV = "HANDX_ROBOT_ASSETS"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SIDES = ("left", "right")
_TIP_MEDIAPIPE = {4: "thumb", 8: "index", 12: "middle", 16: "ring", 20: "pinky"}
_FINGER_ORDER = ("thumb", "index", "middle", "ring", "pinky")

# family -> (folder in the asset dir, urdf file template, dex config stem template)
_FAMILIES: dict[str, tuple[str, str, str]] = {
    "allegro": ("allegro_hand", "allegro_hand_{side}.urdf", "allegro_hand_{side}"),
    "leap": ("leap_hand", "leap_hand_{side}.urdf", "leap_hand_{side}"),
    "inspire": ("inspire_hand", "inspire_hand_{side}.urdf", "inspire_hand_{side}"),
    "shadow": ("shadow_hand", "shadow_hand_{side}.urdf", "shadow_hand_{side}"),
    "ability": ("ability_hand", "ability_hand_{side}.urdf", "ability_hand_{side}"),
    "schunk_svh": ("schunk_hand", "schunk_svh_hand_{side}.urdf", "schunk_svh_hand_{side}"),
}
_VARIANTS = ("vector", "position", "dexpilot")


# ----------------------------------------------------------------------------- types
@dataclasses.dataclass(frozen=True)
class Calibration:
    """Pose of the robot base in the human wrist frame.

    R_wrist_base: (3, 3) rotation. p_wrist_base: (3,) metres, or None = place ``wrist_match_link``
    at the human wrist keypoint. wrist_match_link: link name or None (see module docstring).
    """

    R_wrist_base: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))
    p_wrist_base: np.ndarray | None = None
    wrist_match_link: str | None = None

    def __post_init__(self) -> None:
        R = np.asarray(self.R_wrist_base, dtype=np.float64)
        if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise ConfigError(f"calibration R_wrist_base must be a proper rotation (3, 3), got {R.tolist()}")
        object.__setattr__(self, "R_wrist_base", R)
        if self.p_wrist_base is not None:
            p = np.asarray(self.p_wrist_base, dtype=np.float64)
            if p.shape != (3,) or not np.all(np.isfinite(p)):
                raise ConfigError(f"calibration p_wrist_base must be 3 finite numbers (m), got {p.tolist()}")
            object.__setattr__(self, "p_wrist_base", p)


@dataclasses.dataclass(frozen=True)
class RobotSpec:
    """One robot hand ready for retargeting.

    id:          registry id (``allegro_right``) or the YAML path for user robots.
    side:        'left', 'right' or 'any' (grippers).
    model_path:  URDF or MJCF file.
    model_format: 'urdf' or 'mjcf'.
    config:      the ``retargeting`` section (dex-retargeting schema), ``urdf_path`` made absolute.
    config_path: the YAML file it came from.
    joint_names: independent (actuated) joints in model order; coupled/mimic joints excluded.
    source:      'builtin:gymnasium-robotics', 'assets:/path', 'dex-retargeting:...' or 'user:/path'.
    calibration: wrist calibration (:class:`Calibration`).
    human_indices_order: 'mediapipe21' or 'handx21', the order of the config's human indices.
    """

    id: str
    side: str
    model_path: Path
    model_format: str
    config: Mapping[str, Any]
    config_path: Path
    joint_names: tuple[str, ...]
    source: str
    calibration: Calibration = dataclasses.field(default_factory=Calibration)
    human_indices_order: str = "mediapipe21"

    def __post_init__(self) -> None:
        if self.side not in ("left", "right", "any"):
            raise ConfigError(f"robot {self.id}: side must be 'left', 'right' or 'any', got {self.side!r}")
        if self.model_format not in ("urdf", "mjcf"):
            raise ConfigError(f"robot {self.id}: model_format must be 'urdf' or 'mjcf', got {self.model_format!r}")
        if self.human_indices_order not in ("mediapipe21", "handx21"):
            raise ConfigError(
                f"{self.config_path}: handx.human_keypoint_order is {self.human_indices_order!r}; "
                "allowed: 'mediapipe21', 'handx21'"
            )
        object.__setattr__(self, "model_path", Path(self.model_path))
        object.__setattr__(self, "config_path", Path(self.config_path))
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "joint_names", tuple(self.joint_names))

    @property
    def retargeting_type(self) -> str:
        return str(self.config["type"]).lower()

    def to_handx_index(self, indices: Any) -> np.ndarray:
        """The config's human indices converted to HandX order (same shape)."""
        idx = np.asarray(indices, dtype=np.int64)
        if np.any(idx < 0) or np.any(idx > 20):
            raise ConfigError(f"{self.config_path}: human indices must be in 0..20, got {idx.tolist()}")
        return HANDX_TO_MEDIAPIPE[idx] if self.human_indices_order == "mediapipe21" else idx


@dataclasses.dataclass(frozen=True)
class RobotInfo:
    """A registry entry as listed by ``handx-robot robots``."""

    id: str
    side: str
    available: bool
    model_path: str | None
    config_path: str
    source: str
    reason: str = ""


# ----------------------------------------------------------------------------- assets
def dex_config_dir() -> Path:
    """The configs shipped inside the installed ``dex_retargeting`` package."""
    import importlib.util

    spec = importlib.util.find_spec("dex_retargeting")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("dex_retargeting is not installed (pip install dex-retargeting==0.5.0)")
    return Path(next(iter(spec.submodule_search_locations))) / "configs"


def asset_roots(assets: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for hand models: ``assets`` (or ``$HANDX_ROBOT_ASSETS``) and its ``robots/hands``."""
    base = assets if assets is not None else os.environ.get(ASSETS_ENV)
    if not base:
        return []
    base = Path(base).expanduser()
    if not base.is_dir():
        raise ConfigError(
            f"asset directory {base} (from {'--assets' if assets is not None else '$' + ASSETS_ENV}) does not "
            "exist; give a dex-urdf checkout or its robots/hands folder"
        )
    return [base, base / "robots" / "hands"]


def _find_model(rel: str, roots: list[Path]) -> Path | None:
    for r in roots:
        p = r / rel
        if p.is_file():
            return p
    return None


def _gym_hand_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("gymnasium-robotics is not installed (pip install gymnasium-robotics==1.4.2)")
    return Path(next(iter(spec.submodule_search_locations))) / "envs" / "assets" / "hand"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "handx-robot" / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


#: geoms of the gymnasium-robotics Shadow MJCF removed from the built-in model (see builtin_shadow_model)
BUILTIN_SHADOW_DROPPED_GEOMS: tuple[str, ...] = ("robot0:V_forearm", "robot0:C_forearm")
#: placeholder geoms of that MJCF (1 mm boxes at the thumb base joints, no class, so colliding) made visual-only
BUILTIN_SHADOW_NONCOLLIDING_GEOMS: tuple[str, ...] = ("robot0:V_thbase", "robot0:V_thhub")


def builtin_shadow_model(side: str) -> Path:
    """MJCF of the gymnasium-robotics Shadow hand alone (no floor, no targets); left = mirrored copy.

    The model is the hand from the wrist up: the forearm shell (visual mesh ``robot0:V_forearm`` and
    collision hull ``robot0:C_forearm``, a 0.26 m x 0.12 m cylinder standing in for the motor housing
    the real hand is mounted on) is removed. Retargeting places the palm at the human wrist keypoint,
    so that shell would sit where the operator's forearm is: it hid the fingers in renders and, when
    two hands meet (a clap), the two shells interpenetrated although the humans' hands did not.
    The kinematic chain is unchanged: the bodies ``robot0:hand mount`` and ``robot0:forearm`` (with
    their masses and inertias, 0.1 kg and 4 kg), the wrist joints WRJ1/WRJ0, the wrist housing and
    everything distal. On a real arm, check clearance against the real forearm/arm geometry yourself:
    no interpenetration metric here covers it. The two 1 mm placeholder boxes ``robot0:V_thbase`` and
    ``robot0:V_thhub`` (no class in the MJCF, so they collided) are made visual-only.

    Written once to the cache directory (``$XDG_CACHE_HOME/handx-robot/models``); the file refers to
    the wheel's meshes by absolute path.
    """
    import mujoco

    from handx_robot.motion import atomic_write

    g = _gym_hand_dir()
    if not (g / "robot.xml").is_file():
        raise ModelLoadError(f"gymnasium-robotics' Shadow hand MJCF not found under {g}")
    xml = (
        f'<mujoco model="shadow_builtin_right">\n'
        f'  <compiler angle="radian" coordinate="local" meshdir="{g.parent / "stls" / "hand"}" '
        f'texturedir="{g.parent / "textures"}"/>\n'
        f'  <include file="{g / "shared.xml"}"/>\n'
        f'  <asset><include file="{g / "shared_asset.xml"}"/></asset>\n'
        f'  <worldbody><include file="{g / "robot.xml"}"/></worldbody>\n'
        f"</mujoco>\n"
    )
    key = hashlib.sha1((xml + side + "v3-no-forearm-shell").encode()).hexdigest()[:10]
    out = _cache_dir() / f"shadow_builtin_{side}_{key}.xml"
    if out.is_file():
        return out
    if side == "right":
        full = _cache_dir() / f"shadow_builtin_right_full_{key}.xml"
        atomic_write(full, lambda tmp: Path(tmp).write_text(xml))
        try:
            spec = mujoco.MjSpec.from_file(str(full))
            dropped = []
            for geom in list(spec.geoms):
                if geom.name in BUILTIN_SHADOW_DROPPED_GEOMS:
                    spec.delete(geom)
                    dropped.append(geom.name)
            for geom in spec.geoms:  # 1 mm placeholder boxes inside the thumb base, colliding by default
                if geom.name in BUILTIN_SHADOW_NONCOLLIDING_GEOMS:
                    geom.contype, geom.conaffinity = 0, 0
            if sorted(dropped) != sorted(BUILTIN_SHADOW_DROPPED_GEOMS):
                raise ModelLoadError(
                    f"{g / 'robot.xml'}: expected forearm geoms {list(BUILTIN_SHADOW_DROPPED_GEOMS)}, found {dropped}; "
                    "unsupported gymnasium-robotics version (pin gymnasium-robotics==1.4.2)"
                )
            spec.compile()
            text = spec.to_xml()
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"{full}: MuJoCo rejected the built-in Shadow hand model: {exc}") from exc
        finally:
            full.unlink(missing_ok=True)
        atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    else:
        right = builtin_shadow_model("right")
        from handx_robot.retarget.mirror import mirror_mjcf

        text = mirror_mjcf(right, model_name="shadow_builtin_left")
        atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return out


# ----------------------------------------------------------------------------- configs
def _read_yaml(path: Path) -> dict:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)  # safe_load: never constructs Python objects
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the YAML config ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("retargeting"), dict):
        raise ConfigError(
            f"{path}: a retargeting config needs a top-level 'retargeting:' mapping (dex-retargeting schema: "
            "type, urdf_path, target_... )"
        )
    return data


def _calibration(handx: Mapping, path: Path) -> Calibration:
    from handx_robot.retarget.kinematics import rpy_to_matrix

    allowed = {"base_rpy_in_human_wrist", "base_xyz_in_human_wrist", "wrist_match_link", "human_keypoint_order"}
    extra = set(handx) - allowed
    if extra:
        raise ConfigError(f"{path}: unknown keys {sorted(extra)} in 'handx:'; allowed: {sorted(allowed)}")
    rpy = handx.get("base_rpy_in_human_wrist", [0.0, 0.0, 0.0])
    xyz = handx.get("base_xyz_in_human_wrist")
    try:
        R = rpy_to_matrix([float(v) for v in rpy])
        p = None if xyz is None else np.array([float(v) for v in xyz])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: handx calibration values must be 3 numbers ({exc})") from exc
    return Calibration(R, p, handx.get("wrist_match_link"))


_REQUIRED = {
    "vector": ("target_origin_link_names", "target_task_link_names", "target_link_human_indices"),
    "position": ("target_link_names", "target_link_human_indices"),
    "dexpilot": ("finger_tip_link_names", "wrist_link_name"),
}
_KNOWN_KEYS = {
    "type", "urdf_path", "add_dummy_free_joint", "target_link_human_indices", "wrist_link_name",
    "target_link_names", "target_joint_names", "target_origin_link_names", "target_task_link_names",
    "finger_tip_link_names", "scaling_factor", "normal_delta", "huber_delta", "project_dist", "escape_dist",
    "has_joint_limits", "ignore_mimic_joint", "low_pass_alpha",
}  # fmt: skip


def validate_config(cfg: Mapping, path: Path) -> dict:
    """Check a ``retargeting`` section (dex-retargeting schema); returns a normalised copy."""
    cfg = dict(cfg)
    unknown = set(cfg) - _KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown retargeting keys {sorted(unknown)}; known: {sorted(_KNOWN_KEYS)}")
    t = str(cfg.get("type", "")).lower()
    if t not in _REQUIRED:
        raise ConfigError(f"{path}: retargeting.type is {cfg.get('type')!r}; allowed: vector, position, DexPilot")
    cfg["type"] = t
    missing = [k for k in _REQUIRED[t] if cfg.get(k) is None]
    if missing:
        raise ConfigError(f"{path}: {t} retargeting needs {missing}")
    if "urdf_path" not in cfg:
        raise ConfigError(f"{path}: retargeting.urdf_path is missing")
    hi = cfg.get("target_link_human_indices")
    if t == "vector":
        n = len(cfg["target_origin_link_names"])
        if len(cfg["target_task_link_names"]) != n or np.shape(hi) != (2, n):
            raise ConfigError(
                f"{path}: vector retargeting needs as many origin as task links and human indices of shape "
                f"(2, {n}); got {len(cfg['target_task_link_names'])} task links, indices {np.shape(hi)}"
            )
    elif t == "position":
        n = len(cfg["target_link_names"])
        if np.asarray(hi).reshape(-1).shape != (n,):
            raise ConfigError(f"{path}: position retargeting needs {n} human indices, got shape {np.shape(hi)}")
    else:
        k = len(cfg["finger_tip_link_names"])
        if not 2 <= k <= 5:
            raise ConfigError(f"{path}: DexPilot needs 2-5 finger_tip_link_names, got {k}")
    for key in ("scaling_factor", "normal_delta", "huber_delta", "low_pass_alpha", "project_dist", "escape_dist"):
        if key in cfg and cfg[key] is not None:
            v = float(cfg[key])
            if not np.isfinite(v) or (key != "low_pass_alpha" and v <= 0):
                raise ConfigError(f"{path}: retargeting.{key} must be a positive number, got {cfg[key]!r}")
    return cfg


def wrist_link(spec: RobotSpec) -> str | None:
    """The robot link the config pairs with the human wrist keypoint (None if none does)."""
    cfg = spec.config
    t = spec.retargeting_type
    if t == "dexpilot":
        return cfg.get("wrist_link_name")
    if t == "vector":
        hi = np.asarray(cfg["target_link_human_indices"])
        for row, names in ((hi[0], cfg["target_origin_link_names"]), (hi[1], cfg["target_task_link_names"])):
            for idx, link in zip(row.tolist(), names):
                if idx == 0:
                    return link
        return None
    for idx, link in zip(np.asarray(cfg["target_link_human_indices"]).reshape(-1).tolist(), cfg["target_link_names"]):
        if idx == 0:
            return link
    return None


def fingertip_links(spec: RobotSpec) -> dict[str, str]:
    """Fingertip link per finger (``{'thumb': 'link_15.0_tip', ...}``), from the config's targets."""
    cfg = spec.config
    t = spec.retargeting_type
    out: dict[str, str] = {}
    if t == "dexpilot":
        tips = list(cfg["finger_tip_link_names"])
        if cfg.get("target_link_human_indices") is None:
            return dict(zip(_FINGER_ORDER, tips))
        pairs = []
    elif t == "vector":
        hi = np.asarray(cfg["target_link_human_indices"])
        pairs = list(zip(hi[1].tolist(), cfg["target_task_link_names"]))
        pairs += list(zip(hi[0].tolist(), cfg["target_origin_link_names"]))
    else:
        pairs = list(zip(np.asarray(cfg["target_link_human_indices"]).reshape(-1).tolist(), cfg["target_link_names"]))
    mp_tip = {4: "thumb", 8: "index", 12: "middle", 16: "ring", 20: "pinky"}
    hx_tip = {16: "thumb", 17: "index", 18: "middle", 19: "ring", 20: "pinky"}
    table = mp_tip if spec.human_indices_order == "mediapipe21" else hx_tip
    for idx, link in pairs:
        if idx in table and table[idx] not in out:
            out[table[idx]] = link
    return {f: out[f] for f in _FINGER_ORDER if f in out}


# ----------------------------------------------------------------------------- registry
@dataclasses.dataclass(frozen=True)
class _Entry:
    id: str
    side: str
    config_path: Path
    model_rel: str | None  # relative to an asset root; None = builtin / user (absolute in config)
    model_abs: Path | None
    source_kind: str  # 'assets', 'builtin', 'user'


def builtin_ids() -> list[str]:
    """All ids the registry knows (variants excluded)."""
    ids = [f"{fam}_{s}" for fam in _FAMILIES for s in ("right", "left")]
    return ids + ["panda_gripper", "shadow_builtin_right", "shadow_builtin_left"]


class RobotRegistry:
    """Known robots: the built-in table plus robots added with :meth:`register`."""

    def __init__(self) -> None:
        self._user: dict[str, _Entry] = {}

    def register(
        self, robot_id: str, model_path: str | os.PathLike, config_path: str | os.PathLike, side: str = "right"
    ) -> None:
        """Add a user robot: any URDF/MJCF with a YAML config in dex-retargeting's schema."""
        model_path, config_path = Path(model_path), Path(config_path)
        for p, what in ((model_path, "model"), (config_path, "config")):
            if not p.is_file():
                raise ConfigError(f"register_robot({robot_id!r}): {what} file {p} not found")
        if side not in ("left", "right", "any"):
            raise ConfigError(f"register_robot({robot_id!r}): side must be left/right/any, got {side!r}")
        self._user[robot_id] = _Entry(robot_id, side, config_path, None, model_path, "user")

    def _entry(self, robot_id: str) -> _Entry:
        if robot_id in self._user:
            return self._user[robot_id]
        base, _, variant = robot_id.partition("@")
        variant = variant or "vector"
        if variant not in _VARIANTS:
            raise UnknownRobotError(
                f"robot id {robot_id!r}: unknown variant {variant!r}; variants: {', '.join(_VARIANTS)}"
            )
        if base.startswith("shadow_builtin_"):
            side = base.rsplit("_", 1)[1]
            if side in SIDES and variant == "vector":
                return _Entry(robot_id, side, CONFIG_DIR / f"{base}.yml", None, None, "builtin")
        if base == "panda_gripper":
            stem = "panda_gripper" + ("_dexpilot" if variant == "dexpilot" else "")
            sub = "offline" if variant == "position" else "teleop"
            return _Entry(robot_id, "any", dex_config_dir() / sub / f"{stem}.yml", None, None, "assets")
        fam, _, side = base.rpartition("_")
        if fam in _FAMILIES and side in SIDES:
            folder, urdf, stem = _FAMILIES[fam]
            stem = stem.format(side=side) + ("_dexpilot" if variant == "dexpilot" else "")
            sub = "offline" if variant == "position" else "teleop"
            cfg = dex_config_dir() / sub / f"{stem}.yml"
            if cfg.is_file():
                return _Entry(robot_id, side, cfg, f"{folder}/{urdf.format(side=side)}", None, "assets")
        if robot_id.endswith((".yml", ".yaml")) and Path(robot_id).is_file():
            return _Entry(robot_id, _guess_side(robot_id), Path(robot_id), None, None, "user")
        known = builtin_ids() + sorted(self._user)
        raise UnknownRobotError(
            f"unknown robot id {robot_id!r}; known ids: {', '.join(known)} (variants: ID@position, ID@dexpilot; "
            "or a path to a YAML config in dex-retargeting's schema). `handx-robot robots` lists what is available."
        )

    def get(self, robot_id: str, assets: str | os.PathLike | None = None) -> RobotSpec:
        """Resolve a robot: model file, config, joint names. Errors say what is missing and where."""
        e = self._entry(robot_id)
        data = _read_yaml(e.config_path)
        cfg = validate_config(data["retargeting"], e.config_path)
        handx = data.get("handx") or {}
        if not isinstance(handx, Mapping):
            raise ConfigError(f"{e.config_path}: 'handx:' must be a mapping")
        roots = asset_roots(assets)
        if e.source_kind == "builtin":
            model = builtin_shadow_model(e.side)
            source = "builtin:gymnasium-robotics" + (" (mirrored)" if e.side == "left" else "")
        elif e.model_abs is not None:
            model, source = e.model_abs, f"user:{e.config_path}"
        else:
            rel = str(cfg["urdf_path"])
            cands = [e.config_path.parent / rel] if e.source_kind == "user" else []
            found = next((c for c in cands if c.is_file()), None) or _find_model(rel, roots)
            if found is None:
                where = ", ".join(str(r) for r in roots) or f"no asset directory (give --assets DIR or ${ASSETS_ENV})"
                raise ModelLoadError(
                    f"robot {robot_id!r}: model {rel!r} (from {e.config_path}) not found; searched: {where}"
                    + (f", {cands[0]}" if cands else "")
                )
            model = found.resolve()
            source = f"user:{e.config_path}" if e.source_kind == "user" else f"assets:{model.parent.parent}"
        cfg["urdf_path"] = str(model)
        fmt = "urdf" if model.suffix.lower() == ".urdf" else "mjcf"
        tree = load_tree_cached(model, fmt)
        spec = RobotSpec(
            id=robot_id, side=e.side, model_path=model, model_format=fmt, config=cfg, config_path=e.config_path,
            joint_names=tree.dof_names, source=source, calibration=_calibration(handx, e.config_path),
            human_indices_order=str(handx.get("human_keypoint_order", "mediapipe21")),
        )  # fmt: skip
        check_config_links(spec, tree)
        return spec

    def list(self, assets: str | os.PathLike | None = None) -> list[RobotInfo]:
        """Every known robot with its availability (model file present?) and origin."""
        out = []
        roots = asset_roots(assets)
        for rid in builtin_ids() + sorted(self._user):
            e = self._entry(rid)
            if e.source_kind == "builtin":
                try:
                    g = _gym_hand_dir()
                    ok = (g / "robot.xml").is_file()
                    out.append(RobotInfo(rid, e.side, ok, str(g / "robot.xml"), str(e.config_path),
                                         "builtin:gymnasium-robotics" + (" (mirrored)" if e.side == "left" else ""),
                                         "" if ok else "gymnasium-robotics lacks the hand assets"))  # fmt: skip
                except ModelLoadError as exc:
                    out.append(RobotInfo(rid, e.side, False, None, str(e.config_path), "builtin", str(exc)))
                continue
            if e.model_abs is not None:
                out.append(RobotInfo(rid, e.side, e.model_abs.is_file(), str(e.model_abs), str(e.config_path),
                                     f"user:{e.config_path}"))  # fmt: skip
                continue
            rel = str(_read_yaml(e.config_path)["retargeting"].get("urdf_path"))
            found = _find_model(rel, roots)
            reason = "" if found else (f"{rel} not in the asset directory" if roots else "needs --assets DIR")
            src = f"assets:{found.parent.parent}" if found else "assets"
            out.append(RobotInfo(rid, e.side, found is not None, str(found) if found else rel,
                                 str(e.config_path), src, reason))  # fmt: skip
        return out


def _guess_side(name: str) -> str:
    low = Path(name).stem.lower()
    if "left" in low:
        return "left"
    if "right" in low:
        return "right"
    return "any"


_TREES: dict[tuple[str, str, float], Any] = {}


def load_tree_cached(model: Path, fmt: str):
    """:func:`handx_robot.retarget.kinematics.load_tree`, memoised on (path, format, mtime)."""
    from handx_robot.retarget.kinematics import load_tree

    key = (str(model), fmt, model.stat().st_mtime)
    if key not in _TREES:
        _TREES[key] = load_tree(model, fmt)
    return _TREES[key]


def check_config_links(spec: RobotSpec, tree) -> None:
    """Every link and joint the config names must exist in the model (errors name link and files)."""
    cfg = spec.config
    where = f"{spec.config_path} (model {spec.model_path})"
    names: list[tuple[str, str]] = []
    for key in ("target_origin_link_names", "target_task_link_names", "target_link_names", "finger_tip_link_names"):
        names += [(key, n) for n in cfg.get(key) or []]
    if cfg.get("wrist_link_name"):
        names.append(("wrist_link_name", cfg["wrist_link_name"]))
    if spec.calibration.wrist_match_link:
        names.append(("handx.wrist_match_link", spec.calibration.wrist_match_link))
    for key, n in names:
        if n not in tree.link_names:
            raise ModelLoadError(
                f"{where}: {key} names link {n!r}, which the model does not have; links: {', '.join(tree.link_names)}"
            )
    for n in cfg.get("target_joint_names") or []:
        if n not in tree.joint_names:
            raise ModelLoadError(
                f"{where}: target_joint_names names joint {n!r}, which the model does not have; "
                f"joints: {', '.join(tree.joint_names)}"
            )


_DEFAULT = RobotRegistry()


def get_robot(robot_id: str, assets: str | os.PathLike | None = None) -> RobotSpec:
    """The :class:`RobotSpec` of ``robot_id`` (see the module docstring for ids and assets)."""
    return _DEFAULT.get(robot_id, assets)


def list_robots(assets: str | os.PathLike | None = None) -> list[RobotInfo]:
    """Every known robot and whether it is available with ``assets``."""
    return _DEFAULT.list(assets)


def register_robot(robot_id: str, model_path, config_path, side: str = "right") -> None:
    """Register a user URDF/MJCF + YAML config under ``robot_id`` in the default registry."""
    _DEFAULT.register(robot_id, model_path, config_path, side)


def resolve_robot_ids(
    robot: str | None, left: str | None, right: str | None, assets=None, present=("left", "right")
) -> dict[str, str]:
    """Robot id per side from ``--robot`` / ``--left-robot`` / ``--right-robot``.

    ``robot`` may be a family shorthand (``shadow`` -> ``shadow_left`` + ``shadow_right``; without an
    asset directory ``shadow`` means the built-in ``shadow_builtin_*``), a sided id (used for its own
    side only) or a side-less id (``panda_gripper``: both sides).
    """
    out: dict[str, str] = {}
    if robot is not None and (left or right):
        raise ConfigError("give either --robot or --left-robot/--right-robot, not both")
    if robot is None and not (left or right):
        robot = "shadow"
    if robot is not None:
        base, at, variant = robot.partition("@")
        suffix = f"@{variant}" if at else ""
        if base in _FAMILIES or base == "shadow_builtin":
            if base == "shadow" and not asset_roots(assets):
                log.info("no asset directory given: --robot shadow uses the built-in gymnasium-robotics Shadow hand")
                base = "shadow_builtin"
            out = {s: f"{base}_{s}{suffix}" for s in present}
        else:
            side = _DEFAULT._entry(robot).side
            if side == "any":
                out = {s: robot for s in present}
            else:
                out = {side: robot}
    else:
        if left:
            out["left"] = left
        if right:
            out["right"] = right
    return out
