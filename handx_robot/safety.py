"""Safety filter between joint commands and robot hardware (pure Python / NumPy, no ROS).

The ROS node :mod:`ros_nodes.safety_streamer_node` is a thin adapter over :class:`SafetyFilter`.

Units: positions in the robot model's units (rad for revolute, m for prismatic joints), velocities
per second, accelerations per second squared, times in seconds (any monotonic clock). Every array
is keyed by joint name: inputs carry their own ``names``; outputs are in ``SafetyConfig.joint_names``
order (the controller's joint order).

What the filter guarantees for every command it lets through (:class:`Decision` with ``forward``):

* all values finite (a NaN / inf anywhere rejects the whole command);
* joint names exactly the controller's joints (unknown, duplicate or missing names reject; with
  ``allow_partial=True`` missing joints are filled with the last safe position);
* positions inside ``[lower, upper]`` (``position_mode='clamp'`` clips, ``'reject'`` rejects);
* velocity ``|dq| / duration <= max_velocity`` and discrete acceleration
  ``|dq / duration - v_prev| / duration <= max_acceleration`` per joint, where ``dq`` is measured
  from where the last forwarded move has brought the hand by now (moves are modelled as straight
  segments, as a JointTrajectoryController starts each new trajectory from its current state) and
  ``v_prev`` is that move's velocity (0 once it has ended). ``velocity_mode='scale'`` slows the move
  down — a longer ``duration`` for trajectory controllers, a shorter step for position-streaming
  controllers — and ``'reject'`` rejects;
* nothing at all while the e-stop is latched (:meth:`SafetyFilter.estop` / :meth:`SafetyFilter.reset`).

The watchdog (:meth:`SafetyFilter.tick`): when no fresh command arrived for
``watchdog_periods * control_period_s``, the filter emits one *hold* (the last safe position, reached
in what is left of the last move, zero final velocity); when none arrived for ``watchdog_stop_s``
more, one *stop*. After a stop the hand is taken to be where the last move had brought it, at rest.
A fresh command resumes.

Hardware units (:class:`UnitMapping`): some controllers do not take URDF radians (the Inspire hand
takes ``[0, 1]`` with 1 = open). The filter works in model units and maps the output with
``hardware = offset + scale * q`` per joint, then clips to the hardware range.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from handx_robot.errors import ConfigError, ModelLoadError

__all__ = [
    "JointLimit",
    "UnitMapping",
    "UNIT_MAPPINGS",
    "make_unit_mapping",
    "SafetyConfig",
    "Action",
    "FilterState",
    "Decision",
    "SafetyFilter",
    "limits_from_urdf",
    "limits_from_mjcf",
    "limits_from_model",
    "COUNTER_NAMES",
]

log = logging.getLogger(__name__)

#: Tolerance (model units) on position limits, so that values at a limit up to float error pass.
POSITION_TOL = 1e-9
#: Relative tolerance on velocity / acceleration checks.
RATE_TOL = 1e-6
#: Hard cap on how much slower than requested a move may be time-scaled (``velocity_mode='scale'``).
MAX_TIME_SCALE = 1000.0


@dataclasses.dataclass(frozen=True)
class JointLimit:
    """Limits of one joint, model units.

    lower, upper:      position range (rad or m), ``lower <= upper``.
    max_velocity:      > 0 (rad/s or m/s).
    max_acceleration:  > 0 (rad/s^2 or m/s^2).
    """

    name: str
    lower: float
    upper: float
    max_velocity: float
    max_acceleration: float

    def __post_init__(self) -> None:
        for field in ("lower", "upper", "max_velocity", "max_acceleration"):
            value = float(getattr(self, field))
            if not math.isfinite(value):
                raise ConfigError(f"joint '{self.name}': field '{field}' must be finite, got {value}")
            object.__setattr__(self, field, value)
        if self.lower > self.upper:
            raise ConfigError(
                f"joint '{self.name}': lower limit {self.lower} > upper limit {self.upper}; swap them"
            )
        for field in ("max_velocity", "max_acceleration"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"joint '{self.name}': field '{field}' must be > 0, got {getattr(self, field)}")


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


# ---------------------------------------------------------------------------------------------
# Limits from robot models
# ---------------------------------------------------------------------------------------------


def limits_from_urdf(
    path: str | Path,
    default_velocity: float = 2.0,
    default_acceleration: float = 20.0,
    include_mimic: bool = False,
) -> tuple[JointLimit, ...]:
    """Actuated joints' limits of a URDF, in file order.

    Revolute and prismatic joints with a ``<limit lower upper>``; continuous joints have no
    position limit and are refused (a robot hand has none).
    Mimic joints are skipped unless ``include_mimic`` (controllers command the joint they follow).
    ``velocity`` missing or 0 -> ``default_velocity``; URDF has no acceleration limit ->
    ``default_acceleration``.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ModelLoadError(f"{path}: cannot read URDF ({exc}); check the robot's model path") from exc
    limits = []
    for joint in root.iter("joint"):
        jtype = joint.get("type", "")
        name = joint.get("name", "")
        if jtype in ("fixed", "floating", "planar"):
            continue
        if joint.find("mimic") is not None and not include_mimic:
            continue
        if jtype == "continuous":
            raise ModelLoadError(
                f"{path}: joint '{name}' is continuous (no position limits); the safety filter needs "
                "bounded joints: give it a <limit lower upper> in the URDF"
            )
        lim = joint.find("limit")
        if lim is None or lim.get("lower") is None or lim.get("upper") is None:
            raise ModelLoadError(f"{path}: joint '{name}' ({jtype}) has no <limit lower=... upper=...>")
        vel = float(lim.get("velocity", 0) or 0)
        limits.append(
            JointLimit(
                name=name,
                lower=float(lim.get("lower")),
                upper=float(lim.get("upper")),
                max_velocity=vel if vel > 0 else default_velocity,
                max_acceleration=default_acceleration,
            )
        )
    if not limits:
        raise ModelLoadError(f"{path}: no actuated (revolute/prismatic) joints found")
    return tuple(limits)


def limits_from_mjcf(
    path: str | Path, default_velocity: float = 2.0, default_acceleration: float = 20.0
) -> tuple[JointLimit, ...]:
    """Limited hinge/slide joints of an MJCF (via MuJoCo), in model order."""
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover - mujoco is a hard dependency
        raise ModelLoadError("mujoco is required to read MJCF joint limits") from exc
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except Exception as exc:
        raise ModelLoadError(f"{path}: cannot load MJCF ({exc})") from exc
    limits = []
    for j in range(model.njnt):
        if int(model.jnt_type[j]) not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            continue
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
        if not model.jnt_limited[j]:
            raise ModelLoadError(f"{path}: joint '{name}' is not limited; set limited/range in the MJCF")
        lo, hi = model.jnt_range[j]
        limits.append(JointLimit(name, float(lo), float(hi), default_velocity, default_acceleration))
    if not limits:
        raise ModelLoadError(f"{path}: no hinge/slide joints found")
    return tuple(limits)


def limits_from_model(path: str | Path, model_format: str | None = None, **kwargs) -> tuple[JointLimit, ...]:
    """Limits from a URDF or MJCF file (format from ``model_format`` or the file's content)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: robot model file not found")
    fmt = model_format
    if fmt is None:
        head = path.read_text(errors="replace")[:4096]
        fmt = "mjcf" if "<mujoco" in head else "urdf"
    if fmt == "urdf":
        return limits_from_urdf(path, **kwargs)
    if fmt == "mjcf":
        kwargs.pop("include_mimic", None)
        return limits_from_mjcf(path, **kwargs)
    raise ConfigError(f"{path}: model_format {fmt!r} is not 'urdf' or 'mjcf'")


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------

POSITION_MODES = ("clamp", "reject")
VELOCITY_MODES = ("scale", "reject")
INTERFACES = ("trajectory", "position_stream")


@dataclasses.dataclass(frozen=True)
class SafetyConfig:
    """Configuration of one hand's :class:`SafetyFilter`.

    joint_names:        the controller's joints, in the controller's order.
    limits:             one :class:`JointLimit` per joint in ``joint_names`` (model units); extra
                        limits for other joints are ignored.
    position_mode:      'clamp' (clip to limits) or 'reject'.
    velocity_mode:      'scale' (slow the move) or 'reject'.
    interface:          'trajectory' (JointTrajectoryController: a target with a duration) or
                        'position_stream' (forward_command_controller: one position per period).
    control_period_s:   expected period of the command stream (s), > 0.
    watchdog_periods:   no command for this many periods -> hold (> 0).
    watchdog_stop_s:    holding for this long without a command -> stop (>= 0).
    first_move_duration_s: duration of the first trajectory move when the current position is unknown.
    allow_partial:      accept commands naming a subset of the joints (others hold).
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


# ---------------------------------------------------------------------------------------------
# Filter
# ---------------------------------------------------------------------------------------------


class Action(str, enum.Enum):
    """What the filter decided."""

    FORWARD = "forward"  # send ``positions`` (possibly clamped / time-scaled)
    REJECT = "reject"  # send nothing; ``reason`` says why
    HOLD = "hold"  # watchdog / e-stop: send the last safe position, zero velocity
    STOP = "stop"  # watchdog / e-stop: send the controller's stop


class FilterState(str, enum.Enum):
    IDLE = "idle"  # no command yet
    ACTIVE = "active"
    HOLDING = "holding"  # watchdog tripped, holding the last safe position
    STOPPED = "stopped"  # watchdog stop sent
    ESTOPPED = "estopped"  # e-stop latched


#: Counters kept by the filter (also the diagnostics keys of the node).
COUNTER_NAMES = (
    "received",
    "forwarded",
    "clamped",
    "time_scaled",
    "rejected",
    "rejected_nonfinite",
    "rejected_joint_names",
    "rejected_position",
    "rejected_velocity",
    "rejected_no_state",
    "blocked_estop",
    "held",
    "stopped",
    "estops",
)


@dataclasses.dataclass(frozen=True)
class Decision:
    """The filter's answer to one command or tick.

    action:        :class:`Action`.
    positions:     (n,) float64 model units, controller order (``None`` for REJECT / STOP).
    hw_positions:  (n,) float64 hardware units (unit mapping applied), ``None`` when ``positions`` is.
    duration_s:    time the controller should take to reach ``positions`` (trajectory interface).
    reason:        why the command was rejected / clamped / scaled ('' when forwarded untouched).
    clamped:       position limits clipped at least one joint.
    time_scale:    duration_s / requested duration (>= 1 when slowed; 1 when not).
    """

    action: Action
    positions: np.ndarray | None = None
    hw_positions: np.ndarray | None = None
    duration_s: float = 0.0
    reason: str = ""
    clamped: bool = False
    time_scale: float = 1.0

    @property
    def sends(self) -> bool:
        return self.action is not Action.REJECT


class SafetyFilter:
    """Stateful safety filter of one hand (see the module docstring for the guarantees).

    Not thread-safe: callers serialize access (the ROS node holds a lock).
    """

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.joint_names = config.joint_names
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self._lower = np.array([lim.lower for lim in config.limits])
        self._upper = np.array([lim.upper for lim in config.limits])
        self._vmax = np.array([lim.max_velocity for lim in config.limits])
        self._amax = np.array([lim.max_acceleration for lim in config.limits])
        self._names_list = list(self.joint_names)
        self._lower_tol = self._lower - POSITION_TOL
        self._upper_tol = self._upper + POSITION_TOL
        self._vmax_tol = self._vmax * (1.0 + RATE_TOL)
        self._amax_tol = self._amax * (1.0 + RATE_TOL)
        self._scale, self._offset = config.unit_mapping.coefficients(self.joint_names)
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.state = FilterState.IDLE
        self.estop_input = False  # last e-stop signal (True = pressed)
        self.last_reason = ""
        self._q: np.ndarray | None = None  # last safe position (model units), controller order
        self._v = np.zeros(len(self.joint_names))  # velocity of the last safe move
        self._last_input_t: float | None = None
        # the last forwarded move, a straight segment _seg_q0 (at _seg_t0) -> _q (at _move_end_t):
        # the expected position in between is what the controller starts the next move from
        self._seg_q0: np.ndarray | None = None
        self._seg_t0 = -math.inf
        self._move_end_t = -math.inf
        self._hold_t: float | None = None

    # -- state --------------------------------------------------------------------------------
    @property
    def last_safe_position(self) -> np.ndarray | None:
        """(n,) model units, controller order; None before the first command / measured state."""
        return None if self._q is None else self._q.copy()

    @property
    def estopped(self) -> bool:
        return self.state is FilterState.ESTOPPED

    def set_measured(self, names: Sequence[str], positions: Sequence[float], hardware_units: bool = False) -> bool:
        """Seed the start position from a measured joint state (only while no command was sent).

        Returns True when the state was used. Names not in the controller's joints are ignored;
        all controller joints must be present and finite.
        """
        if self._q is not None:
            return False
        pos = dict(zip(names, positions))
        if any(n not in pos for n in self.joint_names):
            return False
        q = np.array([float(pos[n]) for n in self.joint_names])
        if hardware_units:
            q = (q - self._offset) / self._scale
        if not np.all(np.isfinite(q)):
            return False
        self._q = np.clip(q, self._lower, self._upper)
        self._v[:] = 0.0
        return True

    def _hw(self, q: np.ndarray) -> np.ndarray:
        hw = self._offset + self._scale * q
        rng = self.config.unit_mapping.hw_range
        return np.clip(hw, *rng) if rng is not None else hw

    def _reject(self, counter: str, reason: str) -> Decision:
        self.counters[counter] += 1
        self.counters["rejected"] += 1
        self.last_reason = reason
        return Decision(Action.REJECT, reason=reason)

    # -- commands -----------------------------------------------------------------------------
    def filter(
        self, names: Sequence[str], positions: Sequence[float], t: float, duration_s: float | None = None
    ) -> Decision:
        """Filter one command: ``positions`` (len(names),) model units, received at time ``t`` (s).

        ``duration_s``: the requested time to reach the target (trajectory ``time_from_start``);
        default one control period.
        """
        cfg = self.config
        self.counters["received"] += 1
        if self.state is FilterState.ESTOPPED:
            self.counters["blocked_estop"] += 1
            self.last_reason = "e-stop latched: call the reset service after releasing the e-stop"
            return Decision(Action.REJECT, reason=self.last_reason)
        names = list(names)
        try:
            values = np.array(positions, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return self._reject("rejected_nonfinite", f"positions are not numbers: {positions!r}")
        if len(values) != len(names):
            return self._reject(
                "rejected_joint_names", f"{len(names)} joint names but {len(values)} positions"
            )
        in_order = names == self._names_list  # the fast path: exactly the controller's joints, in order
        if not in_order:
            unknown = [n for n in names if n not in self._index]
            if unknown:
                return self._reject(
                    "rejected_joint_names",
                    f"unknown joints {unknown}; the controller's joints are {self._names_list}",
                )
            if len(set(names)) != len(names):
                return self._reject("rejected_joint_names", f"duplicate joint names in {names}")
            if len(names) != len(self.joint_names) and not cfg.allow_partial:
                missing = [n for n in self.joint_names if n not in names]
                return self._reject(
                    "rejected_joint_names", f"joints {missing} missing (allow_partial is off)"
                )
        if not math.isfinite(float(np.add.reduce(values))):  # one reduction; NaN/inf propagate
            bad = [n for n, v in zip(names, values) if not math.isfinite(v)]
            if bad:
                return self._reject("rejected_nonfinite", f"non-finite positions for joints {bad}")
        req = cfg.control_period_s if duration_s is None or not duration_s > 0 else float(duration_s)
        if not math.isfinite(req):
            return self._reject("rejected_nonfinite", f"non-finite duration {duration_s}")

        if in_order:
            target = values
        else:
            if self._q is None and len(names) != len(self.joint_names):
                return self._reject(
                    "rejected_no_state", "partial command before any full command or measured state"
                )
            target = self._q.copy() if self._q is not None else np.zeros(len(self.joint_names))
            for n, v in zip(names, values):
                target[self._index[n]] = v

        # position limits
        clamped = bool(np.maximum.reduce(np.maximum(self._lower_tol - target, target - self._upper_tol)) > 0)
        reasons = []
        if clamped:
            outside = (target < self._lower_tol) | (target > self._upper_tol)
            bad = [
                f"{self.joint_names[i]}={target[i]:.4f} not in [{self._lower[i]:.4f}, {self._upper[i]:.4f}]"
                for i in np.flatnonzero(outside)
            ]
            if cfg.position_mode == "reject":
                return self._reject("rejected_position", "position limits: " + "; ".join(bad))
            reasons.append("clamped " + "; ".join(bad))
            target = np.clip(target, self._lower, self._upper)

        # velocity / acceleration limits, from the last safe position
        duration, scale = req, 1.0
        if self._q is None:
            if cfg.interface == "position_stream":
                return self._reject(
                    "rejected_no_state",
                    "current position unknown: a position-streaming controller would jump; publish the "
                    "measured joint states (parameter 'state_topic') before streaming",
                )
            duration = max(req, cfg.first_move_duration_s)
            scale = duration / req
            new_v = np.zeros_like(target)
        else:
            q_now, v_now = self._expected(t)
            dq = target - q_now
            need = self._required_duration(dq, req, v_now)
            if need > req * (1.0 + RATE_TOL):
                msg = f"velocity/acceleration limits need {need:.4f} s for a {req:.4f} s move"
                if cfg.velocity_mode == "reject":
                    return self._reject("rejected_velocity", msg)
                if cfg.interface == "trajectory":
                    duration, scale = need, need / req
                else:
                    target = q_now + self._limit_step(dq, req, v_now)
                    scale = need / req
                reasons.append(("time-scaled: " if cfg.interface == "trajectory" else "step-limited: ") + msg)
            new_v = (target - q_now) / duration

        # a first move from an unknown position has no known segment: it counts as at its target
        self._seg_q0 = None if self._q is None else q_now
        self._seg_t0 = t
        self._q = target
        self._v = new_v
        self._move_end_t = t + duration
        self._last_input_t = t
        self._hold_t = None
        self.state = FilterState.ACTIVE
        self.counters["forwarded"] += 1
        if clamped:
            self.counters["clamped"] += 1
        if scale > 1.0 + RATE_TOL:
            self.counters["time_scaled"] += 1
        self.last_reason = "; ".join(reasons)
        return Decision(
            Action.FORWARD,
            positions=target.copy(),
            hw_positions=self._hw(target),
            duration_s=float(duration),
            reason=self.last_reason,
            clamped=clamped,
            time_scale=float(scale),
        )

    def _expected(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Expected (position, velocity) at ``t`` along the last forwarded move (linear segment;
        at rest at its target once it has ended). Model units, controller order."""
        if self._seg_q0 is None or t >= self._move_end_t:
            return self._q, np.zeros_like(self._q)
        a = max(0.0, (t - self._seg_t0) / (self._move_end_t - self._seg_t0))
        return self._seg_q0 + a * (self._q - self._seg_q0), self._v

    def _feasible(self, dq: np.ndarray, dt: float, v0: np.ndarray) -> bool:
        v = dq / dt
        if np.maximum.reduce(np.abs(v) - self._vmax_tol) > 0:
            return False
        return bool(np.maximum.reduce(np.abs(v - v0) - self._amax_tol * dt) <= 1e-12)

    def _required_duration(self, dq: np.ndarray, req: float, v0: np.ndarray) -> float:
        """Smallest duration >= req (to 1 %) meeting velocity and acceleration limits from velocity ``v0``."""
        if self._feasible(dq, req, v0):
            return req
        dt = max(req, float(np.max(np.abs(dq) / self._vmax)))
        while not self._feasible(dq, dt, v0) and dt < req * MAX_TIME_SCALE:
            dt *= 1.01
        return min(dt, req * MAX_TIME_SCALE)

    def _limit_step(self, dq: np.ndarray, dt: float, v0: np.ndarray) -> np.ndarray:
        """Per-joint step of one period inside the velocity and acceleration bounds, from velocity ``v0``."""
        lo = np.maximum(-self._vmax * dt, (v0 - self._amax * dt) * dt)
        hi = np.minimum(self._vmax * dt, (v0 + self._amax * dt) * dt)
        # if |v_prev| was above vmax (cannot happen from this filter), the bounds may cross: stay in vmax
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        return np.clip(dq, lo, hi)

    # -- watchdog -----------------------------------------------------------------------------
    def tick(self, t: float) -> Decision | None:
        """Watchdog check at time ``t``: HOLD once after the timeout, STOP once ``watchdog_stop_s`` later."""
        cfg = self.config
        if self.state is FilterState.ACTIVE and self._last_input_t is not None:
            if t - self._last_input_t >= cfg.watchdog_timeout_s - 1e-9:
                self.state = FilterState.HOLDING
                self._hold_t = t
                self.counters["held"] += 1
                self.last_reason = f"watchdog: no command for {t - self._last_input_t:.4f} s"
                q = self._q.copy()
                return Decision(Action.HOLD, q, self._hw(q), self._hold_duration(t), self.last_reason)
        elif self.state is FilterState.HOLDING and self._hold_t is not None:
            if t - self._hold_t >= cfg.watchdog_stop_s - 1e-9:
                self.state = FilterState.STOPPED
                self.counters["stopped"] += 1
                self.last_reason = f"watchdog: stopped after {t - self._last_input_t:.4f} s without a command"
                self._stop_at(t)
                return Decision(Action.STOP, reason=self.last_reason)
        return None

    def watchdog_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (same clock as the ``t`` passed in), or None
        when it has nothing pending (idle, stopped, e-stopped)."""
        if self.state is FilterState.ACTIVE and self._last_input_t is not None:
            return self._last_input_t + self.config.watchdog_timeout_s
        if self.state is FilterState.HOLDING and self._hold_t is not None:
            return self._hold_t + self.config.watchdog_stop_s
        return None

    def _stop_at(self, t: float) -> None:
        """A stop leaves the hand where the last move had brought it by ``t``, at rest."""
        if self._q is not None:
            self._q = self._expected(t)[0].copy()
        self._seg_q0 = None
        self._move_end_t = t
        self._v = np.zeros(len(self.joint_names))

    def _hold_duration(self, t: float) -> float:
        """Duration of a HOLD at ``t``: what is left of the last (possibly time-scaled) move, so that
        holding never asks for a faster move than the limits allowed; at least one period."""
        return max(self.config.control_period_s, self._move_end_t - t)

    def seconds_since_input(self, t: float) -> float | None:
        return None if self._last_input_t is None else t - self._last_input_t

    # -- e-stop ------------------------------------------------------------------------------
    def estop(self, engaged: bool, t: float) -> list[Decision]:
        """Feed the e-stop signal. A rising edge latches: returns [HOLD, STOP] to send now.

        ``engaged=False`` only records the release; the latch stays until :meth:`reset`.
        """
        engaged = bool(engaged)
        self.estop_input = engaged
        if not engaged or self.state is FilterState.ESTOPPED:
            return []
        self.state = FilterState.ESTOPPED
        self.counters["estops"] += 1
        self.last_reason = "e-stop engaged"
        out = []
        if self._q is not None:
            q = self._q.copy()
            out.append(Decision(Action.HOLD, q, self._hw(q), self._hold_duration(t), "e-stop: hold"))
        out.append(Decision(Action.STOP, reason="e-stop: stop"))
        self._stop_at(t)
        return out

    def reset(self, t: float) -> tuple[bool, str]:
        """Release the e-stop latch. Refused while the e-stop signal is still engaged."""
        if self.state is not FilterState.ESTOPPED:
            return True, f"not e-stopped (state {self.state.value}); nothing to reset"
        if self.estop_input:
            return False, "e-stop signal is still engaged: release it (publish false) before resetting"
        self.state = FilterState.IDLE if self._q is None else FilterState.STOPPED
        self.last_reason = "e-stop reset"
        return True, "e-stop reset; commands are accepted again from the last safe position"
