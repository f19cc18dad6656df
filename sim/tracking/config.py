"""Options of the tracking task (:class:`TrackingConfig`), the layout version and the mismatch error.

Units: SI (m, rad, s). Defaults live here only; override with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from handx_robot.errors import ConfigError

__all__ = ["LAYOUT_VERSION", "TrackingConfig", "RobotMismatchError"]

#: Version of the observation / action layout, stored with policies (checked on load).
#: 2: ``{side}_wrist_quat`` is canonical (w >= 0); version 1 flipped it by the sign of the wrist's x position.
LAYOUT_VERSION = 2


class RobotMismatchError(ConfigError):
    """A motion, policy or backend was made for other robots, sides or layout than the env's."""


_POSITIVE = (
    "finger_action_scale", "wrist_pos_action_scale", "wrist_rot_action_scale", "sigma_joint", "sigma_tip",
    "sigma_wrist_pos", "sigma_wrist_rot", "terminate_tip_error", "terminate_wrist_error", "terminate_after_s",
)
_WEIGHTS = ("w_joint", "w_tip", "w_wrist", "w_contact", "w_smooth")


@dataclasses.dataclass(frozen=True)
class TrackingConfig:
    """Options of the tracking task (SI units). Override with ``dataclasses.replace``.

    horizon:                   K, reference frames ahead in the observation (>= 1).
    finger_action_scale:       rad per unit action on each actuated joint target.
    wrist_pos_action_scale:    m per unit action on each wrist-target axis.
    wrist_rot_action_scale:    rad per unit action on each wrist-target rotation-vector axis (world).
    sigma_joint, sigma_tip, sigma_wrist_pos, sigma_wrist_rot: widths of the exponential kernels
                               (rad, m, m, rad).
    w_joint, w_tip, w_wrist, w_contact, w_smooth: reward weights.
    terminate_tip_error:       m, mean fingertip error that counts as "lost".
    terminate_wrist_error:     m, mean wrist position error that counts as "lost".
    terminate_after_s:         s, how long "lost" must last to end the episode.
    random_start:              start episodes at a uniformly random frame (else frame 0).
    episode_frames:            at most this many steps per episode (None: until the clip ends).
    velocity_feedforward:      feed the reference joint velocity forward (``(kv + damping) qdot_ref``).
    substeps, bandwidth_hz, floor_height: simulator options every backend takes (physics steps per
                               env step, finger PD bandwidth in Hz, floor height in m or None); each
                               backend's config is built from them (``<BackendConfig>.from_tracking``).
    """

    horizon: int = 3
    finger_action_scale: float = 0.2
    wrist_pos_action_scale: float = 0.01
    wrist_rot_action_scale: float = 0.1
    sigma_joint: float = 0.15
    sigma_tip: float = 0.015
    sigma_wrist_pos: float = 0.015
    sigma_wrist_rot: float = 0.15
    w_joint: float = 0.2
    w_tip: float = 0.4
    w_wrist: float = 0.2
    w_contact: float = 0.1
    w_smooth: float = 0.1
    terminate_tip_error: float = 0.04
    terminate_wrist_error: float = 0.05
    terminate_after_s: float = 0.2
    random_start: bool = True
    episode_frames: int | None = None
    velocity_feedforward: bool = True
    substeps: int = 6
    bandwidth_hz: float = 10.0
    floor_height: float | None = None

    def __post_init__(self) -> None:
        if int(self.horizon) < 1:
            raise ConfigError(f"TrackingConfig.horizon must be >= 1, got {self.horizon!r}")
        for name in _POSITIVE:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"TrackingConfig.{name} must be a finite number > 0, got {v!r}")
        for name in _WEIGHTS:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"TrackingConfig.{name} must be a finite number >= 0, got {v!r}")
        if self.episode_frames is not None and int(self.episode_frames) < 1:
            raise ConfigError(f"TrackingConfig.episode_frames must be >= 1 or None, got {self.episode_frames!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackingConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"TrackingConfig: unknown fields {unknown}; fields: {sorted(names)}")
        return cls(**dict(data))
