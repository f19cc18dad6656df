"""An audit of what a safety filter sent, written apart from the filter.

:class:`SafetyAudit` is told every input the filter got (commands, watchdog ticks, e-stop and
reset) with the filter's answers, and checks each answer against limits the caller loads itself
from the robot model. It shares no code with :class:`~handx_robot.safety.SafetyFilter`: it
re-derives the execution models of :mod:`handx_robot.safety.moves` from their statement and
simulates where the hand is. Used by the property tests and ``benchmarks/safety_fuzz.py``; it can
audit a recorded command log as well.

Violation kinds (:data:`VIOLATION_KINDS`):

=================== =======================================================================
nonfinite           a sent position or duration is NaN / inf, or a duration is not > 0
bad_input_sent      a command with wrong joint names, a wrong length or a NaN / inf was sent
position            a sent position is outside [lower, upper]
velocity            a move's velocity is over max_velocity
acceleration        a move changes the velocity of the hand by more than the bound allows
blind_move          a move from an unknown position shorter than range / max_velocity (it could be
                    faster than the limit), or a hold that cuts such a move short
hold                a hold goes elsewhere than the last safe position, or faster than the hand moved
while_estopped      something other than the e-stop's own hold and stop was sent while latched
watchdog_early      a watchdog hold / stop came before its time
watchdog_late       a tick at or after the watchdog's time sent no hold / stop
estop               an e-stop did not answer with [hold,] stop, or a reset unlatched while engaged
=================== =======================================================================
"""

from __future__ import annotations

import collections
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["SafetyAudit", "VIOLATION_KINDS", "read_limits"]

VIOLATION_KINDS = (
    "nonfinite",
    "bad_input_sent",
    "position",
    "velocity",
    "acceleration",
    "blind_move",
    "hold",
    "while_estopped",
    "watchdog_early",
    "watchdog_late",
    "estop",
)

#: Slack of the watchdog's deadlines (s): a tick this much before its time may already act.
WATCHDOG_SLACK_S = 1e-9


class SafetyAudit:
    """Checks a filter's answers (objects with ``action`` in forward/reject/hold/stop, ``positions``
    (n,) model units in ``names`` order, ``duration_s``) against the limits.

    names:                 the controller's joints, in the order of the answers' positions.
    lower, upper, vmax, amax: (n,) limits in model units, loaded by the caller.
    interface:             'trajectory' or 'position_stream'.
    control_period_s, watchdog_timeout_s, watchdog_stop_s: the filter's settings.
    rel_tol:               relative tolerance on the velocity and acceleration bounds (float error).
    pos_tol:               absolute tolerance on positions (model units).
    """

    def __init__(
        self,
        names: Sequence[str],
        lower: Sequence[float],
        upper: Sequence[float],
        vmax: Sequence[float],
        amax: Sequence[float],
        *,
        interface: str,
        control_period_s: float,
        watchdog_timeout_s: float,
        watchdog_stop_s: float,
        allow_partial: bool = False,
        rel_tol: float = 1e-6,
        pos_tol: float = 1e-9,
    ) -> None:
        self.names = list(names)
        self.lower, self.upper = np.asarray(lower, float), np.asarray(upper, float)
        self.vmax, self.amax = np.asarray(vmax, float), np.asarray(amax, float)
        self.interface = interface
        self.period = float(control_period_s)
        self.timeout = float(watchdog_timeout_s)
        self.stop_after = float(watchdog_stop_s)
        self.allow_partial = allow_partial
        self.rel_tol, self.pos_tol = rel_tol, pos_tol
        self.violations: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}
        self.checked = 0  # answers checked
        # the hand as the audit sees it
        self.q: np.ndarray | None = None  # last position sent (or measured)
        self.seg: tuple[np.ndarray | None, np.ndarray, float, float] | None = None  # start, target, t0, T
        self.u = np.zeros(len(self.names))  # position stream: velocity of the last step
        self.t_prev = -math.inf  # position stream: time of the last step
        self.state = "idle"  # idle, active, holding, stopped
        self.latched = False
        self.estop_input = False
        self.last_sent_t: float | None = None
        self.hold_t: float | None = None

    # -- the inputs -----------------------------------------------------------------------------
    def measured(self, names: Sequence[str], positions: Sequence[float], used: bool) -> None:
        """The filter was given a measured joint state; ``used``: it said it took it."""
        if used:
            pos = dict(zip(names, positions))
            self.q = np.clip([float(pos[n]) for n in self.names], self.lower, self.upper)
            self.seg = None

    def command(self, t: float, names: Sequence[str], positions, duration_s, answer) -> None:
        self.checked += 1
        action = _action(answer)
        if action == "reject":
            return
        if action != "forward":
            self._flag("bad_input_sent", f"a command was answered with {action}")
            return
        why = self._bad_input(t, names, positions, duration_s)
        if why:
            self._flag("bad_input_sent", why)
        if self.latched:
            self._flag("while_estopped", f"command forwarded at t={t} while the e-stop is latched")
        q, duration = self._sent(answer)
        if q is None:
            return
        if self.interface == "trajectory":
            self._trajectory_move(t, q, duration)
        else:
            self._stream_step(t, q)
        self.q = q
        self.state = "active"
        self.last_sent_t = t

    def tick(self, t: float, answer) -> None:
        self.checked += 1
        action = None if answer is None else _action(answer)
        hold_due = self.state == "active" and t - self.last_sent_t >= self.timeout - WATCHDOG_SLACK_S
        stop_due = self.state == "holding" and t - self.hold_t >= self.stop_after - WATCHDOG_SLACK_S
        if hold_due and action != "hold":
            self._flag("watchdog_late", f"no hold at t={t}, {t - self.last_sent_t:.6f} s after the last command")
        if stop_due and action != "stop":
            self._flag("watchdog_late", f"no stop at t={t}, {t - self.hold_t:.6f} s after the hold")
        if action == "hold" and not hold_due:
            self._flag("watchdog_early", f"hold at t={t} before the watchdog's time")
        if action == "stop" and not stop_due:
            self._flag("watchdog_early", f"stop at t={t} before its time")
        if action == "hold":
            self._hold(t, answer)
            self.state, self.hold_t = "holding", t
        elif action == "stop":
            self._stop(t)
            self.state = "stopped"
        elif action is not None:
            self._flag("watchdog_early", f"a tick answered {action}")

    def estop(self, t: float, engaged: bool, answers: Sequence) -> None:
        self.checked += 1
        self.estop_input = bool(engaged)
        actions = [_action(a) for a in answers]
        if not engaged or self.latched:
            if actions:
                self._flag("estop", f"e-stop {'release' if not engaged else 'repeat'} answered {actions}")
            return
        expected = ["stop"] if self.q is None else ["hold", "stop"]
        if actions != expected:
            self._flag("estop", f"e-stop answered {actions}, expected {expected}")
        t_eff = t if math.isfinite(t) else (self.last_sent_t or 0.0)
        for a, action in zip(answers, actions):
            if action == "hold":
                self._hold(t_eff, a)
            elif action == "stop":
                self._stop(t_eff)
        self.latched = True
        self.state = "stopped"

    def reset(self, t: float, ok: bool) -> None:
        self.checked += 1
        if ok and self.latched:
            if self.estop_input:
                self._flag("estop", "reset unlatched the e-stop while its signal was still engaged")
            self.latched = False

    # -- summaries ------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return sum(self.violations.values())

    def report(self) -> dict[str, int]:
        """Violations by kind (every kind, 0 included)."""
        return {k: self.violations.get(k, 0) for k in VIOLATION_KINDS}

    # -- the execution models -------------------------------------------------------------------
    def _blind(self, t: float) -> bool:
        """Is where the hand is unknown at ``t`` (nothing measured, or a blind move under way)?"""
        if self.q is None:
            return True
        return self.seg is not None and self.seg[0] is None and t < self.seg[2] + self.seg[3]

    def _trajectory_move(self, t: float, q: np.ndarray, T: float) -> None:
        if self._blind(t):  # from anywhere in the range, within max_velocity only if long enough
            slowest = float(np.max((self.upper - self.lower) / self.vmax))
            if T < slowest * (1 - self.rel_tol):
                self._flag("blind_move", f"t={t}: move from an unknown position in {T} s < {slowest} s")
            self.seg = (None, q, t, T)
            return
        p, u, since = self._where(t)
        v = (q - p) / T
        slack = self.pos_tol / T
        self._bound("velocity", np.abs(v), self.vmax * (1 + self.rel_tol) + slack, t)
        self._bound("acceleration", np.abs(v - u), self.amax * min(T, since) * (1 + self.rel_tol) + slack, t)
        self.seg = (p, q, t, T)

    def _stream_step(self, t: float, q: np.ndarray) -> None:
        if self.q is None:
            self._flag("blind_move", f"position-stream step at t={t} from an unknown position")
            return
        gap = t - self.t_prev
        in_stream = self.state == "active" and gap < self.timeout
        dt = min(gap, self.period) if in_stream else self.period
        u = self.u if in_stream else np.zeros_like(q)
        if dt <= 0:
            self._flag("velocity", f"step at t={t} with no time since the previous one")
            return
        v = (q - self.q) / dt
        slack = self.pos_tol / dt
        self._bound("velocity", np.abs(v), self.vmax * (1 + self.rel_tol) + slack, t)
        self._bound("acceleration", np.abs(v - u), self.amax * dt * (1 + self.rel_tol) + 2 * slack, t)
        self.u, self.t_prev = v, t

    def _where(self, t: float) -> tuple[np.ndarray, np.ndarray, float]:
        """(position, velocity, time since that velocity began) of the hand at ``t``."""
        rest = np.zeros(len(self.names))
        if self.seg is None:
            return self.q, rest, math.inf
        start, target, t0, T = self.seg
        if start is None or t >= t0 + T:
            return target, rest, math.inf
        a = min(max((t - t0) / T, 0.0), 1.0)
        return start + a * (target - start), (target - start) / T, max(t - t0, 0.0)

    def _hold(self, t: float, answer) -> None:
        q, T = self._sent(answer)
        if q is None:
            return
        if self.q is not None and np.any(np.abs(q - self.q) > self.pos_tol):
            self._flag("hold", f"hold at t={t} goes to {q}, not to the last safe position {self.q}")
        if self.interface == "trajectory" and self._blind(t):
            end = self.seg[2] + self.seg[3] if self.seg is not None else t
            if T < (end - t) * (1 - self.rel_tol):
                self._flag("blind_move", f"hold at t={t} in {T} s cuts short a move from an unknown position")
        elif self.interface == "trajectory" and self.q is not None:
            p, u, _ = self._where(t)
            v = (q - p) / T
            self._bound("hold", np.abs(v), np.abs(u) * (1 + self.rel_tol) + self.pos_tol / T, t)
            # no new velocity: the hand goes on along the move under way (or rests), as before
        else:
            self.u = np.zeros_like(self.u)

    def _stop(self, t: float) -> None:
        if self.interface == "trajectory" and self.q is not None and self.seg is not None:
            self.q = None if self._blind(t) else self._where(t)[0]
            self.seg = None
        self.u = np.zeros_like(self.u)

    # -- helpers --------------------------------------------------------------------------------
    def _sent(self, answer) -> tuple[np.ndarray | None, float]:
        """(positions, duration) of a hold / forward, checked finite and inside the limits."""
        q = None if answer.positions is None else np.asarray(answer.positions, dtype=float)
        T = float(answer.duration_s)
        if q is None or q.shape != (len(self.names),):
            self._flag("nonfinite", f"{_action(answer)} without {len(self.names)} positions: {answer.positions}")
            return None, T
        if not (np.all(np.isfinite(q)) and math.isfinite(T) and T > 0):
            self._flag("nonfinite", f"{_action(answer)} sent positions {q} in {T} s")
            return None, T
        hw = getattr(answer, "hw_positions", None)
        if hw is not None and not np.all(np.isfinite(np.asarray(hw, dtype=float))):
            self._flag("nonfinite", f"hardware positions {hw}")
        outside = np.maximum(self.lower - q, q - self.upper)
        if np.any(outside > self.pos_tol):
            i = int(np.argmax(outside))
            self._flag("position", f"{self.names[i]}={q[i]!r} outside [{self.lower[i]}, {self.upper[i]}]")
        return q, T

    def _bad_input(self, t, names, positions, duration_s) -> str:
        """Why a command must not be forwarded ('' when it may be)."""
        try:
            values = np.asarray(positions, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            return f"positions {positions!r} are not numbers"
        names = list(names)
        if len(values) != len(names):
            return f"{len(names)} names, {len(values)} positions"
        if len(set(names)) != len(names) or any(n not in self.names for n in names):
            return f"joint names {names}"
        if not self.allow_partial and len(names) != len(self.names):
            return f"joint names {names} miss some joints"
        if not np.all(np.isfinite(values)):
            return f"non-finite positions {values}"
        if duration_s is not None and not math.isfinite(duration_s):
            return f"non-finite duration {duration_s}"
        if not isinstance(t, (int, float)) or not math.isfinite(t):
            return f"non-finite time {t}"
        return ""

    def _bound(self, kind: str, value: np.ndarray, bound: np.ndarray, t: float) -> None:
        excess = value - bound
        if np.any(excess > 0):
            i = int(np.argmax(excess))
            self._flag(kind, f"t={t}: {self.names[i]} {value[i]:.9g} > bound {bound[i]:.9g}")

    def _flag(self, kind: str, detail: str) -> None:
        self.violations[kind] += 1
        self.examples.setdefault(kind, detail)


def _action(answer) -> str:
    action = answer.action
    return str(getattr(action, "value", action))


def read_limits(
    model_path: str | Path, names: Sequence[str], default_velocity: float, max_acceleration: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, vmax, amax) of ``names`` read from a URDF (its ``<limit>``; velocity 0 or
    missing -> ``default_velocity``) or an MJCF (MuJoCo's joint ranges; ``default_velocity``).
    The audit's own reading of the model, kept apart from the filter's loaders."""
    path = Path(model_path)
    if "<mujoco" in path.read_text(errors="replace")[:4096]:
        import mujoco

        model = mujoco.MjModel.from_xml_path(str(path))
        ranges = {}
        for j in range(model.njnt):
            ranges[mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)] = (
                *(float(x) for x in model.jnt_range[j]), default_velocity)
    else:
        ranges = {}
        for joint in ET.parse(path).getroot().iter("joint"):
            lim = joint.find("limit")
            if lim is not None and lim.get("lower") is not None:
                vel = float(lim.get("velocity") or 0.0)
                ranges[joint.get("name")] = (float(lim.get("lower")), float(lim.get("upper")),
                                             vel if vel > 0 else default_velocity)
    rows = np.array([ranges[n] for n in names], dtype=float)
    return rows[:, 0], rows[:, 1], rows[:, 2], np.full(len(names), float(max_acceleration))
