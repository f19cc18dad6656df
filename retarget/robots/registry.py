"""The registry of robot hands: id -> model file + retargeting config -> :class:`RobotSpec`.

Ids, variants and asset layouts: :mod:`handx_robot.retarget.robots`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from handx_robot.retarget.robots.assets import ASSETS_ENV, asset_roots, dex_config_dir, find_model
from handx_robot.retarget.robots.builtin import builtin_shadow_model, gym_hand_dir
from handx_robot.retarget.robots.config import (
    calibration_from_handx,
    check_config_links,
    read_yaml,
    validate_config,
)
from handx_robot.retarget.robots.robosuite_hands import (
    ROBOSUITE_FAMILIES,
    robosuite_hand_model,
    robosuite_hand_xml,
)
from handx_robot.retarget.robots.spec import RobotInfo, RobotSpec

from handx_robot.errors import ConfigError, ModelLoadError, UnknownRobotError

__all__ = [
    "RobotRegistry",
    "builtin_ids",
    "get_robot",
    "list_robots",
    "register_robot",
    "robot_side",
    "load_tree_cached",
    "dex_family",
    "FAMILIES",
    "BUILTIN_FAMILIES",
    "SIDES",
    "CONFIG_DIR",
]

#: The configs of the built-in hands (``retarget/configs/``).
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SIDES = ("left", "right")

#: dex-urdf hand family -> (folder in the asset dir, urdf file template, dex config stem template)
FAMILIES: dict[str, tuple[str, str, str]] = {
    "allegro": ("allegro_hand", "allegro_hand_{side}.urdf", "allegro_hand_{side}"),
    "leap": ("leap_hand", "leap_hand_{side}.urdf", "leap_hand_{side}"),
    "inspire": ("inspire_hand", "inspire_hand_{side}.urdf", "inspire_hand_{side}"),
    "shadow": ("shadow_hand", "shadow_hand_{side}.urdf", "shadow_hand_{side}"),
    "ability": ("ability_hand", "ability_hand_{side}.urdf", "ability_hand_{side}"),
    "schunk_svh": ("schunk_hand", "schunk_svh_hand_{side}.urdf", "schunk_svh_hand_{side}"),
}
_VARIANTS = ("vector", "position", "dexpilot")
#: built-in hands (``{family}_builtin_{side}``, vector config in CONFIG_DIR): family -> the wheel of its model
BUILTIN_FAMILIES: dict[str, str] = {"shadow": "gymnasium-robotics", **dict.fromkeys(ROBOSUITE_FAMILIES, "robosuite")}


def dex_family(robot_id: str) -> tuple[str, str] | None:
    """``(family, side)`` when ``robot_id`` (variant suffix allowed) names a dex-urdf hand, else None.

    ``shadow_right@dexpilot`` -> ``('shadow', 'right')``; ``panda_gripper`` -> ``('panda_gripper', 'any')``;
    ``shadow_builtin_right``, user ids and YAML paths -> None.
    """
    base = robot_id.partition("@")[0]
    if base == "panda_gripper":
        return "panda_gripper", "any"
    fam, _, side = base.rpartition("_")
    return (fam, side) if fam in FAMILIES and side in SIDES else None


@dataclasses.dataclass(frozen=True)
class _Entry:
    id: str
    side: str
    config_path: Path
    model_rel: str | None  # relative to an asset root; None = builtin / user (absolute in config)
    model_abs: Path | None
    source_kind: str  # 'assets', 'builtin', 'user'
    builtin_family: str | None = None  # 'shadow', 'inspire', 'fourier' for source_kind 'builtin'


def builtin_ids() -> list[str]:
    """All ids the registry knows (variants excluded)."""
    ids = [f"{fam}_{s}" for fam in FAMILIES for s in ("right", "left")]
    return ids + ["panda_gripper"] + [f"{fam}_builtin_{s}" for fam in BUILTIN_FAMILIES for s in ("right", "left")]


def _builtin_source(e: _Entry) -> str:
    """``RobotSpec.source`` / ``RobotInfo.source`` of a built-in hand."""
    mirrored = " (mirrored)" if e.builtin_family == "shadow" and e.side == "left" else ""
    return f"builtin:{BUILTIN_FAMILIES[e.builtin_family]}{mirrored}"


def _builtin_model(e: _Entry) -> Path:
    """The generated model file of a built-in hand (written once to the cache directory)."""
    if e.builtin_family == "shadow":
        return builtin_shadow_model(e.side)
    return robosuite_hand_model(e.builtin_family, e.side)


def _builtin_source_file(e: _Entry) -> Path:
    """The file a built-in hand is generated from (ModelLoadError with the fix when its wheel is missing)."""
    if e.builtin_family == "shadow":
        return gym_hand_dir() / "robot.xml"
    return robosuite_hand_xml(e.builtin_family, e.side)


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
        fam, sep, side = base.partition("_builtin_")
        if sep and fam in BUILTIN_FAMILIES and side in SIDES and variant == "vector":
            return _Entry(robot_id, side, CONFIG_DIR / f"{base}.yml", None, None, "builtin", fam)
        if base == "panda_gripper":
            stem = "panda_gripper" + ("_dexpilot" if variant == "dexpilot" else "")
            sub = "offline" if variant == "position" else "teleop"
            return _Entry(robot_id, "any", dex_config_dir() / sub / f"{stem}.yml", None, None, "assets")
        fam, _, side = base.rpartition("_")
        if fam in FAMILIES and side in SIDES:
            folder, urdf, stem = FAMILIES[fam]
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

    def side(self, robot_id: str) -> str:
        """'left', 'right' or 'any' (grippers) for a known id (UnknownRobotError otherwise)."""
        try:
            return self._entry(robot_id).side
        except ModelLoadError:  # dex-retargeting (its configs) not installed: a dex-urdf id names its side
            fam = dex_family(robot_id)
            if fam is None:
                raise
            return fam[1]

    def get(self, robot_id: str, assets: str | os.PathLike | None = None) -> RobotSpec:
        """Resolve a robot: model file, config, joint names. Errors say what is missing and where."""
        e = self._entry(robot_id)
        data = read_yaml(e.config_path)
        cfg = validate_config(data["retargeting"], e.config_path)
        handx = data.get("handx") or {}
        if not isinstance(handx, Mapping):
            raise ConfigError(f"{e.config_path}: 'handx:' must be a mapping")
        roots = asset_roots(assets)
        if e.source_kind == "builtin":
            model, source = _builtin_model(e), _builtin_source(e)
        elif e.model_abs is not None:
            model, source = e.model_abs, f"user:{e.config_path}"
        else:
            rel = str(cfg["urdf_path"])
            cands = [e.config_path.parent / rel] if e.source_kind == "user" else []
            found = next((c for c in cands if c.is_file()), None) or find_model(rel, roots)
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
            joint_names=tree.dof_names, source=source, calibration=calibration_from_handx(handx, e.config_path),
            human_indices_order=str(handx.get("human_keypoint_order", "mediapipe21")),
        )  # fmt: skip
        check_config_links(spec, tree)
        return spec

    def list(self, assets: str | os.PathLike | None = None) -> list[RobotInfo]:
        """Every known robot with its availability (model file present?) and origin."""
        out = []
        roots = asset_roots(assets)
        for rid in builtin_ids() + sorted(self._user):
            try:
                e = self._entry(rid)
            except ModelLoadError as exc:  # a dex-urdf hand without dex-retargeting's configs
                out.append(RobotInfo(rid, self.side(rid), False, None, "", "assets", str(exc)))
                continue
            if e.source_kind == "builtin":
                try:
                    src = _builtin_source_file(e)
                    ok = src.is_file()
                    reason = "" if ok else f"{BUILTIN_FAMILIES[e.builtin_family]} lacks the hand assets"
                    out.append(RobotInfo(rid, e.side, ok, str(src), str(e.config_path), _builtin_source(e), reason))
                except ModelLoadError as exc:
                    out.append(RobotInfo(rid, e.side, False, None, str(e.config_path), "builtin", str(exc)))
                continue
            if e.model_abs is not None:
                out.append(RobotInfo(rid, e.side, e.model_abs.is_file(), str(e.model_abs), str(e.config_path),
                                     f"user:{e.config_path}"))  # fmt: skip
                continue
            rel = str(read_yaml(e.config_path)["retargeting"].get("urdf_path"))
            found = find_model(rel, roots)
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


_DEFAULT = RobotRegistry()


def get_robot(robot_id: str, assets: str | os.PathLike | None = None) -> RobotSpec:
    """The :class:`RobotSpec` of ``robot_id`` (see the module docstring for ids and assets)."""
    return _DEFAULT.get(robot_id, assets)


def list_robots(assets: str | os.PathLike | None = None) -> list[RobotInfo]:
    """Every known robot and whether it is available with ``assets``."""
    return _DEFAULT.list(assets)


def robot_side(robot_id: str) -> str:
    """'left', 'right' or 'any' of ``robot_id`` in the default registry."""
    return _DEFAULT.side(robot_id)


def register_robot(robot_id: str, model_path, config_path, side: str = "right") -> None:
    """Register a user URDF/MJCF + YAML config under ``robot_id`` in the default registry."""
    _DEFAULT.register(robot_id, model_path, config_path, side)

