"""The safety filter of one hand: small named checks in a fixed order, then the move it forwards.

See :mod:`handx_robot.safety` for the guarantees and :mod:`handx_robot.safety.moves` for the
execution models they are stated on.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence

import numpy as np

from handx_robot.errors import HandXError
from handx_robot.safety.config import (
    MAX_DURATION_S,
    MIN_DURATION_S,
    MIN_STEP_S,
    POSITION_TOL,
    SafetyConfig,
)
from handx_robot.safety.moves import LimitArrays, Move, MoveUnderWay, plan_stream_step, plan_trajectory_move

__all__ = ["Action", "FilterState", "Decision", "SafetyFilter", "ClockError", "COUNTER_NAMES"]


class ClockError(HandXError, ValueError):
    """A time given to the filter is not a finite number of seconds."""


class Action(str, enum.Enum):
    """What the filter decided."""

    FORWARD = "forward"  # send ``positions`` (possibly clamped / time-scaled / step-limited)
    REJECT = "reject"  # send nothing; ``reason`` says why
    HOLD = "hold"  # watchdog / e-stop: finish the move under way at the last safe position, no new velocity
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
    "step_limited",
    "rejected",
    "rejected_joint_names",
    "rejected_nonfinite",
    "rejected_units",
    "rejected_position",
    "rejected_velocity",
    "rejected_time",
    "rejected_no_state",
    "deferred",
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
    time_scale:    duration_s / requested duration (> 1 when slowed; 1 when not).
    limited:       velocity / acceleration limits let the hand only part of the way to the target.
    """

    action: Action
    positions: np.ndarray | None = None
    hw_positions: np.ndarray | None = None
    duration_s: float = 0.0
    reason: str = ""
    clamped: bool = False
    time_scale: float = 1.0
    limited: bool = False

    @property
    def sends(self) -> bool:
        return self.action is not Action.REJECT


class _Rejected(Exception):
    """A check failed: ``counter`` is the filter counter to raise, ``reason`` the message."""

    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter, self.reason = counter, reason


@dataclasses.dataclass(slots=True)
class _Sent:
    """The last move sent: ``start`` (None when the hand's position was unknown) to ``target``,
    from ``t0`` for ``duration`` s at ``velocity`` (for a position stream: its last step)."""

    start: np.ndarray | None
    target: np.ndarray
    t0: float
    duration: float
    velocity: np.ndarray

    def position(self, t: float) -> np.ndarray:
        """Where the hand is at ``t`` on this trajectory move (at its target once it has ended)."""
        if self.start is None or t >= self.t0 + self.duration:
            return self.target
        return self.start + self.velocity * max(0.0, t - self.t0)

    def under_way(self, t: float) -> MoveUnderWay | None:
        if self.start is None or t >= self.t0 + self.duration:
            return None
        return MoveUnderWay(self.velocity, max(0.0, t - self.t0), self.t0 + self.duration - t)


class SafetyFilter:
    """Stateful safety filter of one hand (see :mod:`handx_robot.safety` for the guarantees).

    Not thread-safe: callers serialize access (the ROS node holds a lock).
    """

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.joint_names = config.joint_names
        self._names = list(config.joint_names)
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self._lim = LimitArrays.from_limits(config.limits)
        span = self._lim.upper - self._lim.lower
        # a move from an unknown position that takes this long is within max_velocity from anywhere
        self._blind_duration = float((span / self._lim.vmax).max())
        # how far outside its range a position may lie before it is taken for other units
        with np.errstate(invalid="ignore"):  # inf * 0: a zero range with the check off
            self._units_margin = np.nan_to_num(config.max_outside_range * span, nan=np.inf) + POSITION_TOL
        self._scale, self._offset = config.unit_mapping.coefficients(self.joint_names)
        self._model_units_out = (config.unit_mapping.hw_range is None and bool(np.all(self._scale == 1.0))
                                 and bool(np.all(self._offset == 0.0)))
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.state = FilterState.IDLE
        self.estop_input = False  # last e-stop signal (True = pressed)
        self.last_reason = ""
        self._q: np.ndarray | None = None  # last safe position: the last target sent (model units)
        self._sent: _Sent | None = None  # the last move sent (None: the hand rests at _q)
        self._last_input_t: float | None = None
        self._hold_t: float | None = None
        self._last_t = -math.inf  # latest time seen (for the e-stop when its own time is bad)

    # -- state --------------------------------------------------------------------------------
    @property
    def last_safe_position(self) -> np.ndarray | None:
        """(n,) model units, controller order; None before the first command / measured state."""
        return None if self._q is None else self._q.copy()

    @property
    def estopped(self) -> bool:
        return self.state is FilterState.ESTOPPED

    def to_hardware(self, q: np.ndarray) -> np.ndarray:
        """Model units (n,) -> hardware units (n,) of the unit mapping, clipped to its range (a new array)."""
        if self._model_units_out:
            return np.array(q, dtype=np.float64)
        hw = self._offset + self._scale * q
        rng = self.config.unit_mapping.hw_range
        return np.minimum(np.maximum(hw, rng[0]), rng[1]) if rng is not None else hw

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
        self._q = np.clip(q, self._lim.lower, self._lim.upper)
        self._sent = None
        return True

    # -- commands -----------------------------------------------------------------------------
    def filter(
        self, names: Sequence[str], positions: Sequence[float], t: float, duration_s: float | None = None
    ) -> Decision:
        """Filter one command: ``positions`` (len(names),) model units, received at time ``t`` (s,
        the filter's monotonic clock). ``duration_s``: the sender's requested time to reach the
        target (trajectory ``time_from_start``; default one control period), a request only."""
        self.counters["received"] += 1
        try:
            values = self._check_joint_names(names, positions)
            self._check_finite(names, values, duration_s)
            target = self._full_target(names, values)
            outside = np.maximum(self._lim.lower - target, target - self._lim.upper)  # > 0: that far outside
            self._check_units(target, outside)
            target, clamped = self._check_position(target, outside)
            t = self._check_clock(t)
            start, move, t_req = self._check_motion(target, t, duration_s)
            self._check_estop()
        except _Rejected as rejected:
            self.counters[rejected.counter] += 1
            self.counters["rejected"] += 1
            self.last_reason = rejected.reason
            return Decision(Action.REJECT, reason=rejected.reason)
        return self._send(start, move, t, t_req, clamped)

    def _check_joint_names(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """Names: exactly the controller's joints (any order), or a subset with ``allow_partial``;
        one number per name. Returns the positions as a float64 array."""
        try:
            values = np.asarray(positions, dtype=np.float64).reshape(-1)
            count = len(names)
        except (TypeError, ValueError):
            raise _Rejected("rejected_joint_names", f"positions {positions!r} are not a list of numbers, "
                                                    f"or joint names {names!r} not a list") from None
        if len(values) != count:
            raise _Rejected("rejected_joint_names", f"{len(names)} joint names but {len(values)} positions")
        if list(names) == self._names:
            return values
        names = [str(n) for n in names]
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise _Rejected("rejected_joint_names", f"unknown joints {unknown}; the controller's joints are {self._names}")
        if len(set(names)) != len(names):
            raise _Rejected("rejected_joint_names", f"duplicate joint names in {list(names)}")
        if len(names) != len(self._names) and not self.config.allow_partial:
            missing = [n for n in self._names if n not in names]
            raise _Rejected("rejected_joint_names", f"joints {missing} missing (allow_partial is off)")
        return values

    def _check_finite(self, names: Sequence[str], values: np.ndarray, duration_s: float | None) -> None:
        """Finiteness: every position and the requested duration are finite numbers."""
        if not np.isfinite(values).all():
            bad = [n for n, v in zip(names, values) if not math.isfinite(v)]
            raise _Rejected("rejected_nonfinite", f"non-finite positions for joints {bad}")
        if duration_s is not None and not math.isfinite(duration_s if type(duration_s) is float else _seconds(duration_s)):
            raise _Rejected("rejected_nonfinite", f"non-finite duration {duration_s}")

    def _full_target(self, names: Sequence[str], values: np.ndarray) -> np.ndarray:
        """The command in controller order; joints a partial command leaves out keep the last target."""
        if list(names) == self._names:
            return values.copy()
        if self._q is None and len(names) != len(self._names):
            raise _Rejected("rejected_no_state", "partial command before any full command or measured state")
        target = self._q.copy() if self._q is not None else np.empty(len(self._names))
        target[[self._index[n] for n in names]] = values
        return target

    def _check_units(self, target: np.ndarray, outside: np.ndarray) -> None:
        """Units: no position lies further outside its range than ``max_outside_range`` ranges
        (such a command is in other units, degrees or millimetres: clamping it would be a wrong move)."""
        lim = self._lim
        bad = outside > self._units_margin
        if bad.any():
            detail = "; ".join(f"{self.joint_names[i]}={target[i]:.6g} (range [{lim.lower[i]:.4f}, "
                               f"{lim.upper[i]:.4f}])" for i in np.flatnonzero(bad))
            raise _Rejected("rejected_units", f"positions far outside their joints' ranges, wrong units? {detail}")

    def _check_position(self, target: np.ndarray, outside: np.ndarray) -> tuple[np.ndarray, str]:
        """Position: every target inside [lower, upper] (clipped in 'clamp' mode, else rejected).
        Returns the target and what was clamped ('' when nothing)."""
        lim = self._lim
        if not (outside > 0).any():
            return target, ""
        outside = outside > POSITION_TOL
        if not outside.any():  # at a limit up to float error: exactly on it
            return np.minimum(np.maximum(target, lim.lower), lim.upper), ""
        detail = "; ".join(f"{self.joint_names[i]}={target[i]:.4f} not in [{lim.lower[i]:.4f}, {lim.upper[i]:.4f}]"
                           for i in np.flatnonzero(outside))
        if self.config.position_mode == "reject":
            raise _Rejected("rejected_position", "position limits: " + detail)
        return np.clip(target, lim.lower, lim.upper), "clamped " + detail

    def _check_motion(
        self, target: np.ndarray, t: float, duration_s: float | None
    ) -> tuple[np.ndarray | None, Move, float]:
        """Velocity and acceleration, on the filter's clock: (start, move, requested duration)."""
        if self.config.interface == "trajectory":
            return self._trajectory_move(target, t, duration_s)
        return self._stream_step(target, t)

    def _check_clock(self, t: float) -> float:
        """Time: a finite number of seconds, not before the last move sent started."""
        t = _seconds(t)
        if not math.isfinite(t):
            raise _Rejected("rejected_time", f"command time {t} is not a finite number of seconds")
        if self._sent is not None and t < self._sent.t0:
            raise _Rejected("rejected_time", f"clock went back {self._sent.t0 - t:.6g} s; command dropped")
        self._last_t = max(self._last_t, t)
        return t

    def _trajectory_move(self, target: np.ndarray, t: float, duration_s: float | None):
        cfg = self.config
        duration_s = None if duration_s is None else _seconds(duration_s)
        t_req = cfg.control_period_s if duration_s is None or duration_s <= 0 else max(duration_s, MIN_DURATION_S)
        if t_req > MAX_DURATION_S:
            raise _Rejected("rejected_time", f"requested duration {duration_s:.6g} s is longer than "
                                             f"{MAX_DURATION_S:.0f} s: not a move a hand makes")
        if self._position_unknown(t):  # a blind move: no faster than vmax from anywhere in the range
            t_blind = max(t_req, cfg.first_move_duration_s, self._blind_duration)
            return None, Move(target, t_blind, np.zeros_like(target)), t_req
        start = self._sent.position(t) if self._sent is not None else self._q
        under_way = self._sent.under_way(t) if self._sent is not None else None
        move = plan_trajectory_move(start, under_way, target, t_req, self._lim, cfg.velocity_mode == "scale")
        if move is None:
            raise _Rejected("rejected_velocity", f"velocity/acceleration limits: the move cannot take {t_req:.4f} s")
        return start, move, t_req

    def _position_unknown(self, t: float) -> bool:
        """Where the hand is is unknown: no measured state and no move yet, or a move from an unknown
        position (a blind move) still under way."""
        if self._q is None:
            return True
        return self._sent is not None and self._sent.start is None and t < self._sent.t0 + self._sent.duration

    def _stream_step(self, target: np.ndarray, t: float):
        cfg = self.config
        period = cfg.control_period_s
        if self._q is None:
            raise _Rejected("rejected_no_state", "current position unknown: a position-streaming controller would "
                                                 "jump; publish the measured joint states (parameter 'state_topic') "
                                                 "before streaming")
        gap = math.inf if self._sent is None else t - self._sent.t0
        in_stream = self.state is FilterState.ACTIVE and gap < cfg.watchdog_timeout_s
        if in_stream and gap < MIN_STEP_S:
            raise _Rejected("deferred", f"came {gap * 1e6:.3f} us after the previous step, the same instant: "
                                        "dropped, the next command goes on from there")
        u = self._sent.velocity if in_stream else np.zeros_like(target)
        dt = min(gap, period) if in_stream else period
        move = plan_stream_step(self._q, u, dt, target, self._lim, cfg.velocity_mode == "scale")
        if move is None:
            raise _Rejected("rejected_velocity", "velocity/acceleration limits: the step is too large for "
                                                 f"{dt * 1e3:.3f} ms")
        return self._q, move, period

    def _check_estop(self) -> None:
        """E-stop: nothing at all is sent while it is latched."""
        if self.state is FilterState.ESTOPPED:
            raise _Rejected("blocked_estop", "e-stop latched: call the reset service after releasing the e-stop")

    def _send(self, start: np.ndarray | None, move: Move, t: float, t_req: float, clamped: str) -> Decision:
        reasons = [clamped] if clamped else []
        time_scale = move.duration_s / t_req if self.config.interface == "trajectory" else 1.0
        if move.limited:
            self.counters["step_limited"] += 1
            reasons.append(f"step-limited: velocity/acceleration limits allow only part of the way in "
                           f"{move.duration_s:.4f} s")
        elif time_scale > 1.0:
            self.counters["time_scaled"] += 1
            reasons.append(f"time-scaled: velocity/acceleration limits need {move.duration_s:.4f} s for a "
                           f"{t_req:.4f} s move")
        self._sent = _Sent(start, move.target, t, move.duration_s, move.velocity)
        self._q = move.target
        self._last_input_t = t
        self._hold_t = None
        self.state = FilterState.ACTIVE
        self.counters["forwarded"] += 1
        self.counters["clamped"] += int(bool(clamped))
        self.last_reason = "; ".join(reasons)
        return Decision(Action.FORWARD, move.target.copy(), self.to_hardware(move.target), move.duration_s,
                        self.last_reason, bool(clamped), time_scale, move.limited)

    # -- watchdog -----------------------------------------------------------------------------
    def tick(self, t: float) -> Decision | None:
        """Watchdog check at time ``t``: HOLD once after the timeout, STOP once ``watchdog_stop_s`` later.

        Raises :class:`ClockError` when ``t`` is not finite."""
        t = _seconds(t)
        if not math.isfinite(t):
            raise ClockError(f"watchdog time {t} is not finite: pass the filter's monotonic clock in seconds")
        self._last_t = max(self._last_t, t)
        cfg = self.config
        if self.state is FilterState.ACTIVE and t - self._last_input_t >= cfg.watchdog_timeout_s - 1e-9:
            self.state = FilterState.HOLDING
            self._hold_t = t
            self.counters["held"] += 1
            self.last_reason = f"watchdog: no command for {t - self._last_input_t:.4f} s"
            return self._hold(t, self.last_reason)
        if self.state is FilterState.HOLDING and t - self._hold_t >= cfg.watchdog_stop_s - 1e-9:
            self.state = FilterState.STOPPED
            self.counters["stopped"] += 1
            self.last_reason = f"watchdog: stopped after {t - self._last_input_t:.4f} s without a command"
            self._stop_at(t)
            return Decision(Action.STOP, reason=self.last_reason)
        return None

    def watchdog_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (same clock as the ``t`` passed in), or None
        when it has nothing pending (idle, stopped, e-stopped)."""
        if self.state is FilterState.ACTIVE:
            return self._last_input_t + self.config.watchdog_timeout_s
        if self.state is FilterState.HOLDING:
            return self._hold_t + self.config.watchdog_stop_s
        return None

    def seconds_since_input(self, t: float) -> float | None:
        return None if self._last_input_t is None else t - self._last_input_t

    def _hold(self, t: float, reason: str) -> Decision:
        """HOLD at ``t``: the last safe position, reached in what is left of the move under way (no
        new velocity; one control period when it has ended). A position stream ends there."""
        q = self._q.copy()
        remaining = 0.0 if self._sent is None else self._sent.t0 + self._sent.duration - t
        duration = remaining if remaining > 0 else self.config.control_period_s
        if self.config.interface == "position_stream":
            self._sent = None  # the stream has ended: the next step starts from rest
        return Decision(Action.HOLD, q, self.to_hardware(q), duration, reason)

    def _stop_at(self, t: float) -> None:
        """A stop leaves the hand where the move under way had brought it by ``t``, at rest (unknown
        when that was a blind move)."""
        if self._sent is not None and self.config.interface == "trajectory":
            self._q = None if self._position_unknown(t) else self._sent.position(t).copy()
        self._sent = None

    # -- e-stop ------------------------------------------------------------------------------
    def estop(self, engaged: bool, t: float) -> list[Decision]:
        """Feed the e-stop signal. A rising edge latches: returns [HOLD, STOP] to send now.

        ``engaged=False`` only records the release; the latch stays until :meth:`reset`. Never
        raises: a non-finite or earlier ``t`` is taken as the latest time the filter has seen.
        """
        engaged = bool(engaged)
        self.estop_input = engaged
        if not engaged or self.state is FilterState.ESTOPPED:
            return []
        t = _seconds(t)
        t = t if math.isfinite(t) and t >= self._last_t else self._last_t
        self.state = FilterState.ESTOPPED
        self.counters["estops"] += 1
        self.last_reason = "e-stop engaged"
        out = [] if self._q is None else [self._hold(t, "e-stop: hold")]
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


def _seconds(t) -> float:
    """``t`` as a float, NaN when it is not a number."""
    try:
        return float(t)
    except (TypeError, ValueError):
        return math.nan
