"""The pure safety filter (no ROS): limits, NaN, joint names, watchdog, e-stop, unit mapping."""

from __future__ import annotations

import numpy as np
import pytest

from handx_robot.errors import ConfigError, ModelLoadError
from handx_robot.safety import (
    Action,
    FilterState,
    JointLimit,
    SafetyConfig,
    SafetyFilter,
    UnitMapping,
    limits_from_model,
    limits_from_urdf,
    make_unit_mapping,
)

NAMES = ("j1", "j2", "j3")
PERIOD = 0.01


def _limits(vmax: float = 2.0, amax: float = 1000.0) -> tuple[JointLimit, ...]:
    return (
        JointLimit("j1", -1.0, 1.0, vmax, amax),
        JointLimit("j2", 0.0, 1.5, vmax, amax),
        JointLimit("j3", -0.5, 0.5, vmax, amax),
    )


def _filter(**kw) -> SafetyFilter:
    limits = kw.pop("limits", _limits())
    cfg = SafetyConfig.from_limits(limits, control_period_s=PERIOD, **kw)
    f = SafetyFilter(cfg)
    assert f.set_measured(NAMES, [0.0, 0.0, 0.0])
    return f


def test_in_limits_forwarded_unchanged():
    f = _filter()
    d = f.filter(NAMES, [0.01, 0.01, -0.01], t=0.0)
    assert d.action is Action.FORWARD and not d.clamped and d.time_scale == 1.0
    np.testing.assert_allclose(d.positions, [0.01, 0.01, -0.01], atol=0)
    assert d.duration_s == pytest.approx(PERIOD)
    assert f.counters["forwarded"] == 1 and f.counters["rejected"] == 0


def test_order_by_name_not_position():
    f = _filter()
    d = f.filter(["j3", "j1", "j2"], [-0.01, 0.01, 0.005], t=0.0)
    np.testing.assert_allclose(d.positions, [0.01, 0.005, -0.01])


def test_clamp_mode_clips_to_limits_and_counts():
    f = _filter(limits=_limits(vmax=1e3))
    d = f.filter(NAMES, [1.5, -1.0, 0.2], t=0.0)
    assert d.action is Action.FORWARD and d.clamped
    np.testing.assert_allclose(d.positions, [1.0, 0.0, 0.2])
    assert f.counters["clamped"] == 1
    assert "j1=1.5000" in d.reason


def test_positions_in_other_units_are_rejected_not_clamped():
    """45 (degrees) for a joint whose range is [-0.5, 0.5] rad: clamping it would be a full-range
    move nobody asked for."""
    f = _filter(limits=_limits(vmax=1e3))
    d = f.filter(NAMES, [0.0, 0.0, 45.0], t=0.0)
    assert d.action is Action.REJECT and "wrong units" in d.reason and "j3=45" in d.reason
    assert f.counters["rejected_units"] == 1 and f.counters["forwarded"] == 0
    # one range outside is still a clamp; max_outside_range=inf turns the check off
    assert f.filter(NAMES, [0.0, 0.0, 1.4], t=0.0).clamped
    g = _filter(limits=_limits(vmax=1e3), max_outside_range=float("inf"))
    np.testing.assert_allclose(g.filter(NAMES, [0.0, 0.0, 45.0], t=0.0).positions, [0.0, 0.0, 0.5])


def test_reject_mode_rejects_out_of_limits():
    f = _filter(position_mode="reject")
    d = f.filter(NAMES, [0.0, 1.6, 0.0], t=0.0)
    assert d.action is Action.REJECT and "j2" in d.reason
    assert f.counters["rejected_position"] == 1
    np.testing.assert_allclose(f.last_safe_position, [0, 0, 0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_rejected(bad):
    f = _filter()
    d = f.filter(NAMES, [0.0, bad, 0.0], t=0.0)
    assert d.action is Action.REJECT and "j2" in d.reason
    assert f.counters["rejected_nonfinite"] == 1 and f.counters["forwarded"] == 0


@pytest.mark.parametrize(
    "names,values",
    [
        (["j1", "j2", "bogus"], [0, 0, 0]),
        (["j1", "j2"], [0, 0]),  # missing j3, partial not allowed
        (["j1", "j1", "j2"], [0, 0, 0]),
        (["j1", "j2", "j3"], [0, 0]),
    ],
)
def test_wrong_joint_names_rejected(names, values):
    f = _filter()
    d = f.filter(names, values, t=0.0)
    assert d.action is Action.REJECT
    assert f.counters["rejected_joint_names"] == 1


def test_partial_allowed_fills_from_last_safe():
    f = _filter(allow_partial=True)
    f.filter(NAMES, [0.01, 0.02, 0.0], t=0.0)
    d = f.filter(["j2"], [0.03], t=PERIOD)
    np.testing.assert_allclose(d.positions, [0.01, 0.03, 0.0])


def test_velocity_time_scaling_trajectory():
    f = _filter(limits=_limits(vmax=1.0))
    d = f.filter(NAMES, [0.5, 0.0, 0.0], t=0.0, duration_s=0.1)  # needs 0.5 s at 1 rad/s
    assert d.action is Action.FORWARD
    np.testing.assert_allclose(d.positions, [0.5, 0.0, 0.0])
    assert d.duration_s == pytest.approx(0.5, rel=0.02) and d.time_scale > 4.9
    assert np.max(np.abs(d.positions) / d.duration_s) <= 1.0 + 1e-6
    assert f.counters["time_scaled"] == 1


def test_acceleration_limit_time_scaling():
    f = _filter(limits=_limits(vmax=100.0, amax=10.0))
    # from rest, reaching 1 rad/s in 0.01 s would be 100 rad/s^2
    d = f.filter(NAMES, [0.01, 0.0, 0.0], t=0.0, duration_s=0.01)
    v = 0.01 / d.duration_s
    assert v / d.duration_s <= 10.0 * (1 + 1e-6)
    assert d.duration_s > 0.01


def test_velocity_reject_mode():
    f = _filter(limits=_limits(vmax=1.0), velocity_mode="reject")
    d = f.filter(NAMES, [0.5, 0.0, 0.0], t=0.0, duration_s=0.1)
    assert d.action is Action.REJECT and f.counters["rejected_velocity"] == 1


def test_position_stream_step_limited():
    f = _filter(limits=_limits(vmax=1.0, amax=1e6), interface="position_stream")
    q = np.zeros(3)
    for k in range(5):
        d = f.filter(NAMES, [0.5, 0.0, 0.0], t=k * PERIOD)
        assert d.action is Action.FORWARD
        assert np.all(np.abs(d.positions - q) <= 1.0 * PERIOD + 1e-9)
        q = d.positions
    assert q[0] == pytest.approx(5 * PERIOD, rel=1e-6)


def test_position_stream_needs_known_state():
    cfg = SafetyConfig.from_limits(_limits(), interface="position_stream", control_period_s=PERIOD)
    f = SafetyFilter(cfg)
    d = f.filter(NAMES, [0.1, 0.1, 0.1], t=0.0)
    assert d.action is Action.REJECT and f.counters["rejected_no_state"] == 1
    assert f.set_measured(["j3", "j2", "j1", "other"], [0.0, 0.0, 0.0, 9.0])
    assert f.filter(NAMES, [0.005, 0.0, 0.0], t=0.0).action is Action.FORWARD


def test_first_trajectory_move_unknown_state_is_slow():
    cfg = SafetyConfig.from_limits(_limits(), control_period_s=PERIOD, first_move_duration_s=2.0)
    d = SafetyFilter(cfg).filter(NAMES, [0.5, 0.5, 0.5], t=0.0)
    assert d.action is Action.FORWARD and d.duration_s == pytest.approx(2.0)


def test_watchdog_hold_then_stop_then_resume():
    f = _filter(watchdog_periods=1.5, watchdog_stop_s=0.05)
    assert f.tick(0.0) is None  # idle: nothing to hold
    f.filter(NAMES, [0.01, 0.0, 0.0], t=1.0)
    assert f.tick(1.0 + PERIOD) is None
    hold = f.tick(1.0 + 2 * PERIOD)
    assert hold is not None and hold.action is Action.HOLD
    np.testing.assert_allclose(hold.positions, [0.01, 0.0, 0.0])
    assert f.state is FilterState.HOLDING and f.counters["held"] == 1
    assert f.tick(1.0 + 3 * PERIOD) is None  # hold is sent once
    stop = f.tick(1.0 + 2 * PERIOD + 0.05)
    assert stop is not None and stop.action is Action.STOP and f.state is FilterState.STOPPED
    assert f.tick(2.0) is None
    d = f.filter(NAMES, [0.02, 0.0, 0.0], t=2.0)
    assert d.action is Action.FORWARD and f.state is FilterState.ACTIVE


def test_estop_latches_until_reset():
    f = _filter()
    f.filter(NAMES, [0.01, 0.0, 0.0], t=0.0)
    out = f.estop(True, t=0.01)
    assert [d.action for d in out] == [Action.HOLD, Action.STOP]
    assert f.estopped
    assert f.filter(NAMES, [0.01, 0.0, 0.0], t=0.02).action is Action.REJECT
    f.estop(False, t=0.03)  # releasing the button does not unlatch
    assert f.filter(NAMES, [0.01, 0.0, 0.0], t=0.04).action is Action.REJECT
    assert f.counters["blocked_estop"] == 2
    assert f.tick(10.0) is None  # no watchdog output while e-stopped
    ok, msg = f.reset(t=0.05)
    assert ok and not f.estopped
    assert f.filter(NAMES, [0.012, 0.0, 0.0], t=0.06).action is Action.FORWARD


def test_reset_refused_while_estop_engaged():
    f = _filter()
    f.estop(True, t=0.0)
    ok, msg = f.reset(t=0.1)
    assert not ok and "still engaged" in msg and f.estopped


def test_unit_mapping_inspire_open_is_one():
    limits = (JointLimit("a", 0.0, 1.5, 1e3, 1e6), JointLimit("b", 0.0, 0.5, 1e3, 1e6))
    m = make_unit_mapping("inspire", limits)
    np.testing.assert_allclose(m.to_hardware(["a", "b"], [0.0, 0.5]), [1.0, 0.0])
    np.testing.assert_allclose(m.to_hardware(["a", "b"], [0.75, 0.25]), [0.5, 0.5])
    np.testing.assert_allclose(m.to_model(["a", "b"], [1.0, 0.0]), [0.0, 0.5])
    cfg = SafetyConfig.from_limits(limits, unit_mapping=m, control_period_s=PERIOD)
    f = SafetyFilter(cfg)
    assert f.set_measured(["a", "b"], [1.0, 1.0], hardware_units=True)  # fully open
    np.testing.assert_allclose(f.last_safe_position, [0.0, 0.0])
    d = f.filter(["a", "b"], [0.3, 0.1], t=0.0)
    np.testing.assert_allclose(d.hw_positions, [0.8, 0.8])


def test_config_validation_messages():
    with pytest.raises(ConfigError, match="no limits for joints"):
        SafetyConfig(joint_names=("j1", "zz"), limits=_limits())
    with pytest.raises(ConfigError, match="position_mode"):
        SafetyConfig.from_limits(_limits(), position_mode="ignore")
    with pytest.raises(ConfigError, match="control_period_s"):
        SafetyConfig.from_limits(_limits(), control_period_s=0.0)
    with pytest.raises(ConfigError, match="lower limit"):
        JointLimit("x", 1.0, 0.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="unknown unit mapping"):
        make_unit_mapping("furlongs", _limits())
    with pytest.raises(ConfigError, match="non-zero"):
        UnitMapping("bad", scale={"j1": 0.0})


def test_limits_from_urdf_inline(tmp_path):
    urdf = tmp_path / "r.urdf"
    urdf.write_text(
        """<robot name="r"><link name="a"/><link name="b"/><link name="c"/><link name="d"/>
        <joint name="fixed0" type="fixed"><parent link="a"/><child link="b"/></joint>
        <joint name="j1" type="revolute"><parent link="a"/><child link="c"/>
          <limit lower="-0.5" upper="1.0" effort="1" velocity="3.0"/></joint>
        <joint name="j2" type="revolute"><parent link="c"/><child link="d"/>
          <limit lower="0" upper="1.0" effort="1" velocity="0"/><mimic joint="j1"/></joint>
        </robot>"""
    )
    limits = limits_from_urdf(urdf, default_velocity=1.5)
    assert [lim.name for lim in limits] == ["j1"]
    assert (limits[0].lower, limits[0].upper, limits[0].max_velocity) == (-0.5, 1.0, 3.0)
    both = limits_from_urdf(urdf, default_velocity=1.5, include_mimic=True)
    assert both[1].max_velocity == 1.5
    with pytest.raises(ModelLoadError, match="not found"):
        limits_from_model(tmp_path / "missing.urdf")


def test_limits_from_real_inspire(dex_urdf_models):
    limits = limits_from_model(dex_urdf_models / "inspire_hand" / "inspire_hand_right.urdf")
    names = [lim.name for lim in limits]
    assert len(names) == 6 and "index_proximal_joint" in names and "index_intermediate_joint" not in names
    assert all(lim.lower < lim.upper for lim in limits)


def test_hold_never_shortens_a_time_scaled_move():
    f = _filter(limits=_limits(vmax=1.0), watchdog_periods=1.5)
    d = f.filter(NAMES, [0.5, 0.0, 0.0], t=0.0, duration_s=PERIOD)  # time-scaled to 0.5 s
    assert d.duration_s == pytest.approx(0.5, rel=0.02)
    hold = f.tick(2 * PERIOD)
    assert hold.action is Action.HOLD
    assert hold.duration_s == pytest.approx(d.duration_s - 2 * PERIOD, rel=1e-6)  # the rest of the move
    out = f.estop(True, t=0.1)
    assert out[0].duration_s == pytest.approx(d.duration_s - 0.1, rel=1e-6)


def test_huge_finite_values_are_rejected_as_units_not_mistaken_for_nan():
    f = _filter(limits=_limits(vmax=1e4, amax=1e7))
    d = f.filter(NAMES, [1e308, 1e308, 0.0], t=0.0)  # their sum overflows to inf
    assert d.action is Action.REJECT and f.counters["rejected_units"] == 1
    assert f.counters["rejected_nonfinite"] == 0


def test_limits_from_inline_mjcf(tmp_path):
    xml = tmp_path / "m.xml"
    xml.write_text(
        """<mujoco><worldbody><body><joint name="h1" type="hinge" range="-30 45" limited="true"/>
        <geom size="0.01"/><body><joint name="s1" type="slide" range="0 0.02" limited="true"/><geom size="0.01"/>
        </body></body></worldbody></mujoco>"""
    )
    limits = limits_from_model(xml)
    # MJCF hinge ranges are in degrees by default; the limits are radians
    assert [lim.name for lim in limits] == ["h1", "s1"]
    np.testing.assert_allclose([limits[0].lower, limits[0].upper], np.radians([-30, 45]), rtol=1e-9)
    np.testing.assert_allclose([limits[1].lower, limits[1].upper], [0.0, 0.02], rtol=1e-9)


def test_next_move_starts_from_where_a_slow_move_has_got_to():
    """A time-scaled move is still under way when the next command comes: the new move is checked
    from the expected position, not from the last target (which the hand has not reached)."""
    f = _filter(limits=_limits(vmax=1.0, amax=1e6))
    d1 = f.filter(NAMES, [0.5, 0.0, 0.0], t=0.0, duration_s=PERIOD)  # takes 0.5 s
    assert d1.duration_s == pytest.approx(0.5, rel=0.02)
    # 0.1 s later the hand is near 0.1 rad; going back to 0 must take >= 0.1 s, not 0.5 s and not 10 ms
    d2 = f.filter(NAMES, [0.0, 0.0, 0.0], t=0.1, duration_s=PERIOD)
    assert 0.09 <= d2.duration_s <= 0.12, d2.duration_s


def test_stop_leaves_the_hand_where_it_got_to():
    f = _filter(limits=_limits(vmax=1.0, amax=1e6), watchdog_periods=1.5, watchdog_stop_s=0.0)
    f.filter(NAMES, [0.5, 0.0, 0.0], t=0.0, duration_s=PERIOD)  # 0.5 s move
    assert f.tick(0.1).action is Action.HOLD
    assert f.tick(0.2).action is Action.STOP
    np.testing.assert_allclose(f.last_safe_position, [0.2, 0.0, 0.0], atol=0.01)


def test_moves_from_an_unknown_position_are_slow_enough_for_any_start():
    """No measured state: every trajectory move until one has ended takes at least the largest
    range / max_velocity (within the velocity limit from anywhere) and first_move_duration_s; a
    watchdog stop during such a move makes the position unknown again."""
    cfg = SafetyConfig.from_limits(_limits(vmax=0.5), control_period_s=PERIOD, first_move_duration_s=0.1,
                                   watchdog_periods=1.5, watchdog_stop_s=0.0)
    f = SafetyFilter(cfg)
    slowest = 2.0 / 0.5  # j1's range [-1, 1] at 0.5 rad/s
    first = f.filter(NAMES, [0.5, 0.5, 0.0], t=0.0)
    assert first.action is Action.FORWARD and first.duration_s == pytest.approx(slowest)
    second = f.filter(NAMES, [0.4, 0.5, 0.0], t=PERIOD)  # the first is still under way: still blind
    assert second.duration_s == pytest.approx(slowest)
    hold = f.tick(3 * PERIOD)
    assert hold.action is Action.HOLD and hold.duration_s == pytest.approx(slowest - 2 * PERIOD)
    assert f.tick(3 * PERIOD).action is Action.STOP
    assert f.last_safe_position is None  # stopped somewhere on a blind move: unknown again
    assert f.set_measured(NAMES, [0.1, 0.2, 0.0])  # and a measured state is taken again
    assert f.filter(NAMES, [0.1, 0.2, 0.0], t=4 * PERIOD).duration_s == pytest.approx(PERIOD)


def test_malformed_arguments_are_rejected_not_raised():
    f = _filter()
    for names, positions, t, duration in [
        (None, [0.0, 0.0, 0.0], 0.0, None),
        (NAMES, None, 0.0, None),
        ([["j1"], "j2", "j3"], [0.0, 0.0, 0.0], 0.0, None),
        (NAMES, [0.0, 0.0, 0.0], None, None),
        (NAMES, [0.0, 0.0, 0.0], "now", None),
        (NAMES, [0.0, 0.0, 0.0], 0.0, "soon"),
        (NAMES, [[0.0], [0.0], [0.0, 1.0]], 0.0, None),
    ]:
        d = f.filter(names, positions, t, duration_s=duration)
        assert d.action is Action.REJECT and d.reason, (names, positions, t, duration)
    assert f.counters["rejected"] == 7 and f.counters["forwarded"] == 0
