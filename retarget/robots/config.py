"""Retargeting configs (dex-retargeting's YAML schema plus our ``handx:`` section): reading,
validation, the wrist calibration, and the links a config names (wrist, fingertips)."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml
from handx_robot.retarget.robots.spec import Calibration, RobotSpec

from handx_robot.errors import ConfigError, ModelLoadError
from handx_robot.rotations import rpy_to_matrix

__all__ = ["read_yaml", "calibration_from_handx", "validate_config", "wrist_link", "fingertip_links",
           "check_config_links"]  # fmt: skip

_TIP_MEDIAPIPE = {4: "thumb", 8: "index", 12: "middle", 16: "ring", 20: "pinky"}
_TIP_HANDX = {16: "thumb", 17: "index", 18: "middle", 19: "ring", 20: "pinky"}
_FINGER_ORDER = ("thumb", "index", "middle", "ring", "pinky")


@functools.lru_cache(maxsize=64)
def _parse_yaml(path: str, size: int, mtime_ns: int):
    with open(path) as f:
        return yaml.safe_load(f)  # safe_load: never constructs Python objects


def read_yaml(path: Path) -> dict:
    """A retargeting config file (safe YAML) with its top-level ``retargeting:`` mapping checked. Parsed
    once per file version (path, size, modification time); each call gets its own copy."""
    try:
        st = os.stat(path)
        data = copy.deepcopy(_parse_yaml(str(path), st.st_size, st.st_mtime_ns))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the YAML config ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("retargeting"), dict):
        raise ConfigError(
            f"{path}: a retargeting config needs a top-level 'retargeting:' mapping (dex-retargeting schema: "
            "type, urdf_path, target_... )"
        )
    return data


def calibration_from_handx(handx: Mapping, path: Path) -> Calibration:
    """The :class:`Calibration` of a config's ``handx:`` section (``path``: the config, for errors)."""
    allowed = {"base_rpy_in_human_wrist", "base_xyz_in_human_wrist", "wrist_match_link", "human_keypoint_order"}
    extra = set(handx) - allowed
    if extra:
        raise ConfigError(f"{path}: unknown keys {sorted(extra)} in 'handx:'; allowed: {sorted(allowed)}")
    rpy = handx.get("base_rpy_in_human_wrist", [0.0, 0.0, 0.0])
    xyz = handx.get("base_xyz_in_human_wrist")
    try:
        rpy = [float(v) for v in rpy]
        if len(rpy) != 3:
            raise ValueError(f"base_rpy_in_human_wrist has {len(rpy)} values")
        R = rpy_to_matrix(rpy)
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


def human_wrist_link(spec: RobotSpec) -> str | None:
    """The robot link standing for the human wrist: the config's (:func:`wrist_link`), else the calibration's
    ``wrist_match_link``; None when neither names one."""
    return wrist_link(spec) or spec.calibration.wrist_match_link


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
    table = _TIP_MEDIAPIPE if spec.human_indices_order == "mediapipe21" else _TIP_HANDX
    for idx, link in pairs:
        if idx in table and table[idx] not in out:
            out[table[idx]] = link
    return {f: out[f] for f in _FINGER_ORDER if f in out}



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

