"""Moves within joint limits: the one place that turns "where the hand is, where it was told to go,
how long it may take" into a move that respects position, velocity and acceleration limits.

Every bound is a closed form (no search). Arrays are ``(n,)`` float64 in the controller's joint
order, model units (rad, m); times are seconds on the filter's clock, never the sender's.

Two execution models, one per controller interface; the guarantees of :mod:`handx_robot.safety`
are stated on them.

**Trajectory** (a JointTrajectoryController interpolating linearly). A forwarded move starts when
it is sent, from the point ``p`` the hand has reached on the move before, and goes in a straight
line at constant velocity ``v = (q - p) / T`` to its target ``q``, reached after ``T``; the hand
then rests there. A move that replaces one still under way (velocity ``u``, started ``since``
seconds ago) changes the velocity by at most ``amax * min(T, since)``; a move from rest by at most
``amax * T``. The bound uses ``since`` so that a sender cannot buy large velocity changes by asking
for long moves and replacing them at once.

**Position stream** (a forward_command_controller). Each forwarded position is one step of a
stream: from the previous position ``q`` it moves by ``v * dt``, ``dt`` being the time since the
previous step, at most one control period. ``v`` differs from the previous step's velocity ``u``
by at most ``amax * dt`` (``u = 0`` when a stream starts). Each step also leaves the hand able to
stop inside its range at ``amax`` (``q + v dt + v|v| / (2 amax)`` in range), which is what makes
a next step within all the limits always exist.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from handx_robot.safety.config import MAX_DURATION_S, RATE_TOL
from handx_robot.safety.limits import JointLimit

__all__ = ["LimitArrays", "Move", "MoveUnderWay", "plan_trajectory_move", "plan_stream_step", "braking_speed"]


@dataclasses.dataclass(frozen=True)
class LimitArrays:
    """Joint limits as ``(n,)`` float64 arrays in controller order (model units); ``vmax_tol`` and
    ``amax_tol`` are the velocity and acceleration limits with the float tolerance :data:`RATE_TOL`."""

    lower: np.ndarray
    upper: np.ndarray
    vmax: np.ndarray
    amax: np.ndarray
    vmax_tol: np.ndarray = dataclasses.field(init=False, repr=False)
    amax_tol: np.ndarray = dataclasses.field(init=False, repr=False)
    braking_at_vmax: np.ndarray = dataclasses.field(init=False, repr=False)  # vmax^2 / (2 amax)
    neg_vmax: np.ndarray = dataclasses.field(init=False, repr=False)
    middle: np.ndarray = dataclasses.field(init=False, repr=False)  # of the range
    half_range: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        derived = {
            "vmax_tol": self.vmax * (1.0 + RATE_TOL),
            "amax_tol": self.amax * (1.0 + RATE_TOL),
            "braking_at_vmax": self.vmax**2 / (2.0 * self.amax),
            "neg_vmax": -self.vmax,
            "middle": 0.5 * (self.lower + self.upper),
            "half_range": 0.5 * (self.upper - self.lower),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_limits(cls, limits: Sequence[JointLimit]) -> LimitArrays:
        def column(field: str) -> np.ndarray:
            return np.array([getattr(lim, field) for lim in limits], dtype=np.float64)

        return cls(column("lower"), column("upper"), column("max_velocity"), column("max_acceleration"))


@dataclasses.dataclass(slots=True)
class Move:
    """A move the limits allow.

    target:     (n,) where the move ends, inside the position limits.
    duration_s: how long it takes (trajectory) / the step's time (position stream), > 0.
    velocity:   (n,) its constant velocity.
    limited:    the target is not the one asked for: the limits allowed only part of the way.
    """

    target: np.ndarray
    duration_s: float
    velocity: np.ndarray
    limited: bool = False


@dataclasses.dataclass(slots=True)
class MoveUnderWay:
    """The trajectory move the hand is on when a new one replaces it.

    velocity: (n,) its velocity; since_s: time since it started (>= 0); remaining_s: time it had
    left (> 0).
    """

    velocity: np.ndarray
    since_s: float
    remaining_s: float


def plan_trajectory_move(
    p: np.ndarray,
    under_way: MoveUnderWay | None,
    target: np.ndarray,
    t_req: float,
    lim: LimitArrays,
    may_change: bool,
) -> Move | None:
    """A straight move from ``p`` to ``target`` (inside the position limits) asked to take ``t_req``.

    Within the limits as asked: forwarded as asked. Otherwise, with ``may_change``: the shortest
    duration that is within them (time scaling); where no duration is (the hand is on a move
    and the new target needs a larger velocity change than the time since that move started
    allows), the move goes as far toward the target as the limits allow in at most what the move
    under way had left. Without ``may_change``: None.
    """
    dq = target - p
    u = np.zeros_like(p) if under_way is None else under_way.velocity
    since = math.inf if under_way is None else under_way.since_s
    if _within_limits(dq, u, since, t_req, lim):
        return Move(target, t_req, dq / t_req)
    if not may_change:
        return None
    t = _shortest_duration(dq, u, since, t_req, lim)
    if t is not None:
        return Move(target, t, dq / t)
    t = t_req if under_way is None else min(t_req, under_way.remaining_s)
    window = min(t, since)
    lo = np.maximum(np.maximum(u - lim.amax * window, -lim.vmax), (lim.lower - p) / t)
    hi = np.minimum(np.minimum(u + lim.amax * window, lim.vmax), (lim.upper - p) / t)
    v = np.minimum(np.maximum(dq / t, lo), hi)
    return Move(np.minimum(np.maximum(p + v * t, lim.lower), lim.upper), t, v, limited=True)


def plan_stream_step(
    q: np.ndarray, u: np.ndarray, dt: float, target: np.ndarray, lim: LimitArrays, may_change: bool
) -> Move | None:
    """One position-stream step of ``dt`` (> 0) s from ``q`` (previous step's velocity ``u``)
    toward ``target``: the whole way when the limits allow it; else, with ``may_change``, as far as
    they allow; without it, None."""
    v_wanted = (target - q) / dt
    dv = lim.amax * dt
    lo = np.maximum(lim.neg_vmax, u - dv)
    hi = np.minimum(lim.vmax, u + dv)
    room = lim.vmax * dt + lim.braking_at_vmax  # farther than this from both limits, braking never binds
    if (np.abs(q - lim.middle) > lim.half_range - room).any():
        lo = np.maximum(lo, -braking_speed(q - lim.lower, dt, lim.amax))
        hi = np.minimum(hi, braking_speed(lim.upper - q, dt, lim.amax))
    v = np.minimum(np.maximum(v_wanted, lo), hi)
    limited = bool((v != v_wanted).any())
    if limited:  # by more than float error?
        limited = bool((np.abs(v - v_wanted) > RATE_TOL * (np.abs(v_wanted) + lim.vmax)).any())
        if limited and not may_change:
            return None
    return Move(np.minimum(np.maximum(q + v * dt, lim.lower), lim.upper), dt, v, limited)


def braking_speed(distance: np.ndarray, dt: float, amax: np.ndarray) -> np.ndarray:
    """Fastest speed toward a limit ``distance`` (>= 0) away from which one step of ``dt`` still
    leaves room to stop at ``amax``: the largest ``v`` with ``v dt + v^2 / (2 amax) <= distance``."""
    d = np.maximum(distance, 0.0)
    return 2.0 * d / (dt + np.sqrt(dt * dt + 2.0 * d / amax))


def _within_limits(dq: np.ndarray, u: np.ndarray, since: float, t: float, lim: LimitArrays) -> bool:
    """Does the straight move ``dq`` in ``t`` keep |v| <= vmax and |v - u| <= amax min(t, since)?"""
    v = dq / t
    return not ((np.abs(v) > lim.vmax_tol) | (np.abs(v - u) > lim.amax_tol * min(t, since))).any()


def _shortest_duration(dq: np.ndarray, u: np.ndarray, since: float, t_min: float, lim: LimitArrays) -> float | None:
    """Shortest duration ``T >= t_min`` (at most :data:`MAX_DURATION_S`) of the straight move ``dq``
    from velocity ``u`` within the limits; None when there is none.

    Per joint, velocity needs ``T >= |dq| / vmax``. From rest (``since`` infinite), acceleration
    needs ``|dq| <= amax T^2``. On a move under way, while ``T <= since`` it needs
    ``|dq - u T| <= amax T^2``: two upward parabolas in ``T``, both >= 0 beyond their larger roots;
    for ``T >= since`` it needs ``dq / T`` within ``u +- amax since``: an interval of ``1 / T`` per
    joint, and the shortest ``T`` is one over the smallest upper end. (A few durations below the
    larger roots may be within the limits too; they are not looked for, which only makes the move
    slower.)
    """
    a = lim.amax
    adq = np.abs(dq)
    t_velocity = (adq / lim.vmax).max()
    if since == math.inf:
        t = max(t_min, t_velocity, np.sqrt(adq / a).max())
        return t if t <= MAX_DURATION_S else None
    if since > t_min and _within_limits(dq, u, since, since, lim):  # else nothing in (t_min, since] fits
        t = max(t_min, t_velocity, _larger_root_max(a, -u, dq), _larger_root_max(a, u, -dq))
        if t <= since:
            return t if t <= MAX_DURATION_S else None
    c = a * since
    # where dq = 0 the interval is (-inf, inf) when |u| < c (any T), empty when |u| > c (it would
    # have to stop at once): division by zero gives exactly that (0/0 = nan counts as no bound)
    with np.errstate(divide="ignore", invalid="ignore"):
        w1, w2 = (u - c) / dq, (u + c) / dq
    w_lowest = np.fmax.reduce(np.fmin(w1, w2))
    w_highest = min(np.fmin.reduce(np.fmax(w1, w2)), 1.0 / max(t_min, since, t_velocity))
    if not (w_highest > 0 and w_highest >= w_lowest) or 1.0 / w_highest > MAX_DURATION_S:
        return None
    return 1.0 / w_highest


def _larger_root_max(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Largest over joints of the larger real root of ``a x^2 + b x + c`` (a > 0); 0 where there is
    none (the parabola is then > 0 everywhere)."""
    disc = b * b - 4.0 * a * c
    return float(((np.sqrt(np.maximum(disc, 0.0)) - b) / (2.0 * a) * (disc >= 0)).max())
