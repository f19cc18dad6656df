"""Configuration of one hand's safety filter, and the filter's fixed tolerances."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from handx_robot.errors import ConfigError
from handx_robot.safety.limits import JointLimit
from handx_robot.safety.units import UnitMapping

__all__ = [
    "SafetyConfig",
    "POSITION_MODES",
    "VELOCITY_MODES",
    "INTERFACES",
    "POSITION_TOL",
    "RATE_TOL",
    "MIN_DURATION_S",
    "MAX_DURATION_S",
    "MIN_STEP_S",
]

#: Tolerance (model units) on position limits, so that values at a limit up to float error pass.
POSITION_TOL = 1e-9
#: Relative tolerance on velocity / acceleration checks (float error, not a margin).
RATE_TOL = 1e-9
#: Shortest move a trajectory command may ask for (s); shorter requests are taken as this.
MIN_DURATION_S = 1e-4
#: Longest move a trajectory command may ask for (s); longer requests are rejected as malformed.
MAX_DURATION_S = 3600.0
#: A position-stream command that comes less than this long (s) after the previous step is dropped:
#: the same instant, in which the hand cannot go anywhere new. Later ones, however close, are steps
#: of the time that really passed (a burst moves the hand no further than the time allows).
MIN_STEP_S = 1e-6

POSITION_MODES = ("clamp", "reject")
VELOCITY_MODES = ("scale", "reject")
INTERFACES = ("trajectory", "position_stream")


@dataclasses.dataclass(frozen=True)
class SafetyConfig:
    """Configuration of one hand's :class:`~handx_robot.safety.SafetyFilter`.

    joint_names:        the controller's joints, in the controller's order.
    limits:             one :class:`JointLimit` per joint in ``joint_names`` (model units); extra
                        limits for other joints are ignored.
    position_mode:      'clamp' (clip to limits) or 'reject'.
    velocity_mode:      'scale' (slow the move down / shorten the step) or 'reject'.
    interface:          'trajectory' (JointTrajectoryController: a target with a duration) or
                        'position_stream' (forward_command_controller: one position per period).
    control_period_s:   the controller's period and the expected command period (s), > 0.
    watchdog_periods:   no command for this many periods -> hold (> 0).
    watchdog_stop_s:    holding for this long without a command -> stop (>= 0).
    first_move_duration_s: shortest duration of a trajectory move while the hand's position is unknown
                        (no measured state, or such a move still under way); it also takes at least
                        the largest joint range / max_velocity, so it is within the velocity limits.
    allow_partial:      accept commands naming a subset of the joints (others hold).
    max_outside_range:  a position further outside its joint's range than this many ranges is taken
                        for wrong units (degrees, millimetres) and rejected, not clamped (>= 0; inf: never).
    unit_mapping:       model -> hardware units for the output.
    """

    joint_names: tuple[str, ...]
    limits: tuple[JointLimit, ...]
    position_mode: str = "clamp"
    velocity_mode: str = "scale"
    interface: str = "trajectory"
    control_period_s: float = 1.0 / 30.0
    watchdog_periods: float = 1.5
    watchdog_stop_s: float = 0.5
    first_move_duration_s: float = 1.0
    allow_partial: bool = False
    max_outside_range: float = 1.0
    unit_mapping: UnitMapping = dataclasses.field(default_factory=UnitMapping)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.joint_names)
        if not names:
            raise ConfigError("safety config: field 'joint_names' is empty; list the controller's joints")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"safety config: field 'joint_names' has duplicates {dup}")
        by_name = {lim.name: lim for lim in self.limits}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ConfigError(
                f"safety config: no limits for joints {missing}; the robot model has joints "
                f"{sorted(by_name)}: fix 'joint_names' (controller joints) or the robot model"
            )
        for field, allowed in (
            ("position_mode", POSITION_MODES),
            ("velocity_mode", VELOCITY_MODES),
            ("interface", INTERFACES),
        ):
            if getattr(self, field) not in allowed:
                raise ConfigError(
                    f"safety config: field '{field}' is {getattr(self, field)!r}; allowed: {', '.join(allowed)}"
                )
        for field, positive in (
            ("control_period_s", True),
            ("watchdog_periods", True),
            ("watchdog_stop_s", False),
            ("first_move_duration_s", True),
        ):
            value = float(getattr(self, field))
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                raise ConfigError(
                    f"safety config: field '{field}' must be {'> 0' if positive else '>= 0'} and finite, got {value}"
                )
            object.__setattr__(self, field, value)
        if not float(self.max_outside_range) >= 0:
            raise ConfigError(f"safety config: field 'max_outside_range' must be >= 0, got {self.max_outside_range}")
        object.__setattr__(self, "max_outside_range", float(self.max_outside_range))
        if not isinstance(self.unit_mapping, UnitMapping):
            raise ConfigError(f"safety config: field 'unit_mapping' must be a UnitMapping, got {type(self.unit_mapping)}")
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "limits", tuple(by_name[n] for n in names))

    @classmethod
    def from_limits(cls, limits: Sequence[JointLimit], joint_names: Sequence[str] | None = None, **kwargs) -> SafetyConfig:
        """Config for ``joint_names`` (default: every joint in ``limits``)."""
        names = tuple(joint_names) if joint_names else tuple(lim.name for lim in limits)
        return cls(joint_names=names, limits=tuple(limits), **kwargs)

    @property
    def watchdog_timeout_s(self) -> float:
        return self.watchdog_periods * self.control_period_s
