"""Property-based tests of the safety filter: generated hostile command streams on real hand models,
every answer checked by the independent audit (:mod:`handx_robot.safety.audit`) against limits it
reads from the URDF / MJCF itself. Plus the three guarantees once broken, as regression tests.

``benchmarks/safety_fuzz.py`` runs the same audit over 10^6 commands.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handx_robot.safety import (
    Action,
    ClockError,
    SafetyConfig,
    SafetyFilter,
    limits_from_model,
    make_unit_mapping,
)
from handx_robot.safety.audit import SafetyAudit, read_limits

DEFAULT_VELOCITY = 2.0
RATES = (30.0, 100.0, 500.0)
PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def hands(request) -> dict:
    """robot id -> (model path, controller joint names): the built-in Shadow hand always, Allegro and
    Inspire where ../shared has dex-urdf."""
    from handx_robot.retarget.robots import get_robot

    out = {}
    for robot in ("shadow_builtin_right", "allegro_right", "inspire_right"):
        try:
            assets = None if robot.startswith("shadow_builtin") else str(request.getfixturevalue("dex_urdf_dir"))
        except pytest.skip.Exception:
            continue
        spec = get_robot(robot, assets)
        limited = {lim.name for lim in limits_from_model(spec.model_path)}
        out[robot] = (str(spec.model_path), [n for n in spec.joint_names if n in limited])
    return out


def _setup(model: str, names: list[str], robot: str, interface: str, rate: float, amax: float, **kw):
    limits = limits_from_model(model, default_velocity=DEFAULT_VELOCITY, default_acceleration=amax)
    config = SafetyConfig(
        joint_names=tuple(names), limits=limits, interface=interface, control_period_s=1.0 / rate,
        unit_mapping=make_unit_mapping("inspire" if robot.startswith("inspire") else "identity", limits), **kw)
    lower, upper, vmax, amax_arr = read_limits(model, names, DEFAULT_VELOCITY, amax)
    audit = SafetyAudit(names, lower, upper, vmax, amax_arr, interface=interface,
                        control_period_s=config.control_period_s, watchdog_timeout_s=config.watchdog_timeout_s,
                        watchdog_stop_s=config.watchdog_stop_s, allow_partial=config.allow_partial)
    return SafetyFilter(config), audit, lower, upper


# -- strategies ------------------------------------------------------------------------------------
SPECIAL_VALUES = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 57.3, -1000.0])
DURATIONS = st.one_of(  # ("s", seconds) or ("periods", control periods)
    st.tuples(st.just("s"), st.none()),
    st.tuples(st.just("s"), st.sampled_from([0.0, -1.0, 1e-12, 1e-300, 1e-9, 1e300, 1e6, math.nan, math.inf, -math.inf])),
    st.tuples(st.just("s"), st.floats(1e-12, 1e4)),
    st.tuples(st.just("periods"), st.floats(0.2, 40.0)),
    st.tuples(st.just("periods"), st.just(1.0)),
)
TIME_STEPS = st.one_of(
    st.sampled_from([0.0, 1e-12, 1e-9, 1e-6]),  # bursts
    st.floats(0.0, 3.0),  # in control periods: jitter, early, late
    st.floats(3.0, 200.0),  # stalls: the watchdog holds and stops
    st.sampled_from([-1e-9, -0.5, -1e6]),  # the clock goes back for one command
    st.sampled_from([math.nan, math.inf]),  # a time that is not one
)


@st.composite
def commands(draw, n_joints: int):
    """(time step in periods, fractions of each joint's range (or special values), names kind, duration)."""
    fractions = draw(st.lists(st.one_of(st.floats(-0.6, 1.6), st.sampled_from([0.0, 1.0])),
                              min_size=n_joints, max_size=n_joints))
    if draw(st.integers(0, 9)) == 0:  # one joint NaN / inf / in other units
        fractions[draw(st.integers(0, n_joints - 1))] = draw(SPECIAL_VALUES)
    names = draw(st.sampled_from(["ok"] * 6 + ["permuted", "subset", "duplicate", "extra", "short", "text"]))
    repeat = draw(st.sampled_from([1, 1, 1, 4, 15, 60]))  # the same command again every period: speed builds up
    return ("command", draw(TIME_STEPS), fractions, names, draw(DURATIONS), draw(st.integers(0, 2**32 - 1)), repeat)


@st.composite
def episodes(draw, n_joints: int):
    events = draw(st.lists(st.one_of(
        commands(n_joints),
        commands(n_joints),
        commands(n_joints),
        st.tuples(st.just("tick"), st.floats(0.0, 4.0)),
        st.tuples(st.just("estop"), st.booleans()),
        st.tuples(st.just("reset")),
    ), min_size=5, max_size=60))
    config = {
        "rate": draw(st.sampled_from(RATES)),
        "amax": draw(st.sampled_from([50.0, 5.0, 800.0])),
        "position_mode": draw(st.sampled_from(["clamp", "clamp", "reject"])),
        "velocity_mode": draw(st.sampled_from(["scale", "scale", "reject"])),
        "allow_partial": draw(st.booleans()),
        "watchdog_periods": draw(st.sampled_from([1.5, 0.5, 3.0])),
        "watchdog_stop_s": draw(st.sampled_from([0.5, 0.0, 0.05])),
        "measured": draw(st.sampled_from([None, 0.0, 0.5, 1.0])),  # start as a fraction of the range
    }
    return config, events


def _positions(fractions, lower, upper) -> list[float]:
    return [f if abs(f) > 10 or not math.isfinite(f) else lo + f * (hi - lo)
            for f, lo, hi in zip(fractions, lower, upper)]


def _names_and_values(kind: str, names: list[str], values: list[float], seed: int):
    rng = np.random.default_rng(seed)
    if kind == "permuted":
        order = rng.permutation(len(names))
        return [names[i] for i in order], [values[i] for i in order]
    if kind == "subset":
        keep = sorted(rng.choice(len(names), size=int(rng.integers(1, len(names))), replace=False))
        return [names[i] for i in keep], [values[i] for i in keep]
    if kind == "duplicate":
        return names + names[:1], values + values[:1]
    if kind == "extra":
        return names + ["wrist_yaw_of_another_robot"], values + [0.0]
    if kind == "short":
        return names, values[:-1]
    if kind == "text":
        return names, ["0.1"] * len(names)
    return names, values


def _run(flt: SafetyFilter, audit: SafetyAudit, lower, upper, names, config: dict, events) -> None:
    period = flt.config.control_period_s
    t = 1000.0
    if config["measured"] is not None:
        q0 = list(lower + config["measured"] * (upper - lower))
        audit.measured(names, q0, flt.set_measured(names, q0))
    for event in events:
        kind = event[0]
        if kind == "command":
            _, step, fractions, names_kind, (unit, duration), seed, repeat = event
            if unit == "periods":
                duration *= period
            cmd_names, values = _names_and_values(names_kind, list(names), _positions(fractions, lower, upper), seed)
            for k in range(repeat):
                t_cmd = t + (step if k == 0 else 1.0) * period if math.isfinite(step) else step
                if math.isfinite(step) and step >= 0:
                    t = t_cmd
                answer = flt.filter(cmd_names, values, t_cmd, duration_s=duration)
                audit.command(t_cmd, cmd_names, values, duration, answer)
        elif kind == "tick":
            t += event[1] * period
            audit.tick(t, flt.tick(t))
        elif kind == "estop":
            audit.estop(t, event[1], flt.estop(event[1], t))
        else:
            audit.reset(t, flt.reset(t)[0])


@pytest.mark.parametrize("interface", ["trajectory", "position_stream"])
@pytest.mark.parametrize("robot", ["shadow_builtin_right", "allegro_right", "inspire_right"])
def test_every_guarantee_holds_on_generated_streams(hands, robot, interface):
    if robot not in hands:
        pytest.skip(f"{robot}: needs ../shared's dex-urdf assets and dex-retargeting's configs")
    model, names = hands[robot]

    @PROPERTY_SETTINGS
    @given(episodes(len(names)))
    def check(episode):
        config, events = episode
        flt, audit, lower, upper = _setup(
            model, names, robot, interface, config["rate"], config["amax"],
            position_mode=config["position_mode"], velocity_mode=config["velocity_mode"],
            allow_partial=config["allow_partial"], watchdog_periods=config["watchdog_periods"],
            watchdog_stop_s=config["watchdog_stop_s"])
        _run(flt, audit, lower, upper, names, config, events)
        assert audit.total == 0, f"{audit.report()}: {audit.examples}"

    check()


# -- the three guarantees once broken, as regression tests -------------------------------------------
@pytest.fixture
def shadow(hands):
    return hands["shadow_builtin_right"]


def test_tiny_time_from_start_cannot_buy_speed(shadow):
    """Trajectory interface, velocities 'scale': a full-range move asked in 1 ns (and 1e-12 s) goes
    out no faster than the velocity limit; the move after it too."""
    model, names = shadow
    flt, audit, lower, upper = _setup(model, names, "shadow", "trajectory", 30.0, 50.0)
    audit.measured(names, lower, flt.set_measured(names, lower))
    for k, (target, duration) in enumerate([(upper, 1e-9), (lower, 1e-12), (upper, 1e-9)]):
        t = 10.0 + 0.001 * k
        d = flt.filter(names, target, t, duration_s=duration)
        audit.command(t, names, target, duration, d)
        assert d.action is Action.FORWARD
    assert audit.total == 0, audit.examples
    fresh = SafetyFilter(flt.config)
    fresh.set_measured(names, lower)
    move = fresh.filter(names, upper, 0.0, duration_s=1e-9)  # the full range at 2 rad/s takes range / 2 s
    assert move.duration_s >= np.max((upper - lower) / DEFAULT_VELOCITY) * (1 - 1e-9)


def test_long_time_from_start_replaced_at_once_cannot_buy_acceleration(shadow):
    """Trajectory interface: moves asked to take 1 s but replaced every 2 ms, back and forth. The
    velocity change of each is bounded by amax times the 2 ms the move before really lasted, not by
    amax times the 1 s the sender claimed."""
    model, names = shadow
    flt, audit, lower, upper = _setup(model, names, "shadow", "trajectory", 500.0, 50.0)
    mid = (lower + upper) / 2
    audit.measured(names, mid, flt.set_measured(names, mid))
    for k in range(200):
        t = 2.0 + 0.002 * k
        target = upper if k % 2 == 0 else lower
        d = flt.filter(names, target, t, duration_s=1.0)
        audit.command(t, names, target, 1.0, d)
        assert d.action is Action.FORWARD
    assert audit.total == 0, audit.examples
    assert flt.counters["step_limited"] >= 90  # every other move: back at once, only part of the way


def test_position_stream_near_a_limit_with_jitter_stays_inside(shadow):
    """Position stream at 30 Hz with 2 % timing jitter toward a target at the upper limit: the
    acceleration limit never pushes a step past the limit, and the last safe position stays inside."""
    model, names = shadow
    flt, audit, lower, upper = _setup(model, names, "shadow", "position_stream", 30.0, 50.0)
    start = lower + 0.5 * (upper - lower)
    audit.measured(names, start, flt.set_measured(names, start))
    rng = np.random.default_rng(0)
    t = 5.0
    for k in range(300):
        t += (1.0 + rng.normal(0.0, 0.02)) / 30.0
        target = upper + 0.05 if k % 40 < 30 else lower  # overshoot the limit, then back
        target = np.broadcast_to(target, upper.shape)
        d = flt.filter(names, target, t, duration_s=1 / 30)
        audit.command(t, names, target, 1 / 30, d)
        assert np.all(flt.last_safe_position <= upper + 1e-12) and np.all(flt.last_safe_position >= lower - 1e-12)
    assert audit.total == 0, audit.examples
    assert flt.counters["forwarded"] > 250


def test_position_stream_ignores_a_long_time_from_start(shadow):
    """Position stream: a command saying "10 s from now" still moves one control period's worth."""
    model, names = shadow
    flt, audit, lower, upper = _setup(model, names, "position_stream", "position_stream", 30.0, 1e4)
    audit.measured(names, lower, flt.set_measured(names, lower))
    d = flt.filter(names, upper, 1.0, duration_s=10.0)
    audit.command(1.0, names, upper, 10.0, d)
    assert d.action is Action.FORWARD and d.limited
    assert np.all(np.abs(d.positions - lower) <= DEFAULT_VELOCITY / 30.0 * (1 + 1e-9))
    back = flt.filter(names, lower, 1.0 + 1 / 30, duration_s=10.0)
    audit.command(1.0 + 1 / 30, names, lower, 10.0, back)
    assert audit.total == 0, audit.examples


def test_clock_anomalies_never_raise_from_arithmetic(shadow):
    """Time going back right after a very short move, zero and huge durations, a NaN time: clean
    rejections, and the e-stop still holds and stops."""
    model, names = shadow
    flt, _, lower, upper = _setup(model, names, "shadow", "trajectory", 500.0, 50.0)
    flt.set_measured(names, lower)
    mid = (lower + upper) / 2
    assert flt.filter(names, lower + 1e-6, 1.0, duration_s=1e-12).action is Action.FORWARD
    back = flt.filter(names, mid, 1.0 - 1e-9, duration_s=0.0)
    assert back.action is Action.REJECT and flt.counters["rejected_time"] == 1
    assert flt.filter(names, mid, 1.001, duration_s=1e300).action is Action.REJECT
    assert flt.filter(names, mid, math.nan).action is Action.REJECT
    assert flt.counters["rejected_time"] == 3
    out = flt.estop(True, 1.0 - 5.0)  # an e-stop with a time from the past still latches
    assert [d.action for d in out] == [Action.HOLD, Action.STOP] and flt.estopped
    with pytest.raises(ClockError):
        flt.tick(math.nan)


def test_one_call_is_closed_form_not_a_search(shadow):
    """The slow-down is computed, not searched for: a move that used to need thousands of 1 % steps
    (amax tiny, from a fast move to the other end) gets its duration from one formula, within limits."""
    model, names = shadow
    flt, audit, lower, upper = _setup(model, names, "shadow", "trajectory", 500.0, 0.01)
    audit.measured(names, lower, flt.set_measured(names, lower))
    for k, target in enumerate([upper, lower, upper]):
        t = 1.0 + 0.002 * k
        d = flt.filter(names, target, t, duration_s=0.002)
        audit.command(t, names, target, 0.002, d)
        assert d.action is Action.FORWARD
    assert audit.total == 0, audit.examples
