"""Hardware units: the affine map from model units to what a hand's controller takes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.safety.limits import JointLimit

__all__ = ["UnitMapping", "UNIT_MAPPINGS", "make_unit_mapping"]


@dataclasses.dataclass(frozen=True)
class UnitMapping:
    """Affine map from model units to hardware units, per joint: ``hw = offset + scale * q``.

    name:     mapping name (for messages and diagnostics).
    scale:    joint name -> scale (non-zero); joints not listed map with scale 1, offset 0.
    offset:   joint name -> offset.
    hw_range: optional (low, high) hardware range the output is clipped to (e.g. (0, 1)).
    """

    name: str = "identity"
    scale: Mapping[str, float] = dataclasses.field(default_factory=dict)
    offset: Mapping[str, float] = dataclasses.field(default_factory=dict)
    hw_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        scale = {str(k): float(v) for k, v in dict(self.scale).items()}
        offset = {str(k): float(v) for k, v in dict(self.offset).items()}
        for joint, s in scale.items():
            if s == 0 or not math.isfinite(s):
                raise ConfigError(f"unit mapping '{self.name}': scale of joint '{joint}' must be finite and non-zero, got {s}")
        for joint, o in offset.items():
            if not math.isfinite(o):
                raise ConfigError(f"unit mapping '{self.name}': offset of joint '{joint}' must be finite, got {o}")
        if self.hw_range is not None:
            lo, hi = (float(v) for v in self.hw_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ConfigError(f"unit mapping '{self.name}': hw_range must be finite (low < high), got {self.hw_range}")
            object.__setattr__(self, "hw_range", (lo, hi))
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "offset", offset)

    def coefficients(self, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(scale (n,), offset (n,)) float64 in ``joint_names`` order."""
        s = np.array([self.scale.get(n, 1.0) for n in joint_names], dtype=np.float64)
        o = np.array([self.offset.get(n, 0.0) for n in joint_names], dtype=np.float64)
        return s, o

    def to_hardware(self, joint_names: Sequence[str], q: np.ndarray) -> np.ndarray:
        """Model units (n,) -> hardware units (n,), clipped to ``hw_range``."""
        s, o = self.coefficients(joint_names)
        hw = o + s * np.asarray(q, dtype=np.float64)
        if self.hw_range is not None:
            hw = np.clip(hw, *self.hw_range)
        return hw

    def to_model(self, joint_names: Sequence[str], hw: np.ndarray) -> np.ndarray:
        """Hardware units (n,) -> model units (n,) (e.g. to read a measured joint state)."""
        s, o = self.coefficients(joint_names)
        return (np.asarray(hw, dtype=np.float64) - o) / s


def _normalized_open_is_one(limits: Sequence[JointLimit]) -> UnitMapping:
    # Inspire RH56 hands take 0..1000 / 0..1 per actuator with 1 = fully open; in the URDF the
    # lower limit is open and the upper limit closed: hw = (upper - q) / (upper - lower).
    scale, offset = {}, {}
    for lim in limits:
        span = lim.upper - lim.lower
        if span <= 0:
            raise ConfigError(f"unit mapping 'normalized_open1': joint '{lim.name}' has an empty range")
        scale[lim.name] = -1.0 / span
        offset[lim.name] = lim.upper / span
    return UnitMapping("normalized_open1", scale, offset, (0.0, 1.0))


def _normalized_closed_is_one(limits: Sequence[JointLimit]) -> UnitMapping:
    scale, offset = {}, {}
    for lim in limits:
        span = lim.upper - lim.lower
        if span <= 0:
            raise ConfigError(f"unit mapping 'normalized_closed1': joint '{lim.name}' has an empty range")
        scale[lim.name] = 1.0 / span
        offset[lim.name] = -lim.lower / span
    return UnitMapping("normalized_closed1", scale, offset, (0.0, 1.0))


#: Named mappings: name -> builder(limits) -> UnitMapping. 'inspire' is 'normalized_open1'.
UNIT_MAPPINGS = {
    "identity": lambda limits: UnitMapping("identity"),
    "normalized_open1": _normalized_open_is_one,
    "normalized_closed1": _normalized_closed_is_one,
    "inspire": _normalized_open_is_one,
}


def make_unit_mapping(name: str, limits: Sequence[JointLimit]) -> UnitMapping:
    """Build the named mapping (:data:`UNIT_MAPPINGS`) for ``limits``."""
    if name not in UNIT_MAPPINGS:
        raise ConfigError(
            f"unknown unit mapping {name!r}; available: {', '.join(UNIT_MAPPINGS)} "
            "(set parameter 'unit_mapping')"
        )
    return UNIT_MAPPINGS[name](limits)
