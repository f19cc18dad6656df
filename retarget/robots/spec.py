"""Robot specs: the :class:`RobotSpec` a retargeting problem is built from, its wrist
:class:`Calibration`, and the :class:`RobotInfo` rows of ``handx-robot robots``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.keypoints import HANDX_TO_MEDIAPIPE

__all__ = ["Calibration", "RobotSpec", "RobotInfo"]


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

