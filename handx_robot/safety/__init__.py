"""Safety filter between joint commands and robot hardware (pure Python / NumPy, no ROS).

The ROS node ``handx_robot.ros.safety_streamer_node`` is a thin adapter over :class:`SafetyFilter`.

Units: positions in the robot model's units (rad for revolute, m for prismatic joints), velocities
per second, accelerations per second squared, times in seconds on the filter's own monotonic clock
(the node's ``time.monotonic()``). Every array is keyed by joint name: inputs carry their own
``names``; outputs are in ``SafetyConfig.joint_names`` order (the controller's joint order).

Each command goes through small checks in a fixed order (:meth:`SafetyFilter.filter`); the first
that fails rejects it and nothing is sent:

1. **names**: exactly the controller's joints, in any order, one number each (a subset with
   ``allow_partial``: the others keep their last target);
2. **finiteness**: every position and the requested duration finite;
3. **units**: no position more than ``max_outside_range`` joint ranges outside its range (such a
   command is in other units; clamping it would be a wrong move, not a safe one);
4. **position**: every target inside ``[lower, upper]`` (clipped in ``position_mode='clamp'``);
5. **velocity and acceleration**: the move sent is within ``max_velocity`` and
   ``max_acceleration`` of every joint along the execution model of the controller interface
   (:mod:`handx_robot.safety.moves`), timed by the filter's clock: the sender's duration
   (``time_from_start``) is a request, never a licence. In ``velocity_mode='scale'`` the move is
   slowed down (trajectory) or shortened (position stream, and a trajectory move that no duration
   can fit); in ``'reject'`` it is rejected;
6. **e-stop**: nothing at all is sent while the e-stop is latched (:meth:`SafetyFilter.estop`,
   :meth:`SafetyFilter.reset`).

The watchdog (:meth:`SafetyFilter.tick`): when no command was sent for ``watchdog_periods *
control_period_s``, the filter emits one *hold* (the last safe position, reached in what is left
of the move under way: no new velocity); when none came for ``watchdog_stop_s`` more, one *stop*.
After a stop the hand is taken to be where the last move had brought it, at rest. A fresh command
resumes. What is not bounded: the stop at the end of a move (the controller's own) and a hold or
stop that ends a stream.

Clock anomalies never raise from arithmetic: a command whose time is not finite or earlier than the
last move's start, or whose duration is over :data:`MAX_DURATION_S`, is rejected; a position-stream
command that comes within :data:`MIN_STEP_S` of the last step is dropped
(``deferred``); :meth:`SafetyFilter.tick` raises :class:`ClockError` for a non-finite time; an
e-stop always latches.

Hardware units (:class:`UnitMapping`): some controllers do not take URDF radians (the Inspire hand
takes ``[0, 1]`` with 1 = open). The filter works in model units and maps the output with
``hardware = offset + scale * q`` per joint, then clips to the hardware range.

Every guarantee above is checked, on generated hostile command streams, by an audit written apart
from the filter (:mod:`handx_robot.safety.audit`; ``tests/test_safety_properties.py``,
``benchmarks/safety_fuzz.py``).
"""

from handx_robot.safety.config import (
    INTERFACES,
    MAX_DURATION_S,
    MIN_DURATION_S,
    MIN_STEP_S,
    POSITION_MODES,
    POSITION_TOL,
    RATE_TOL,
    VELOCITY_MODES,
    SafetyConfig,
)
from handx_robot.safety.filter import COUNTER_NAMES, Action, ClockError, Decision, FilterState, SafetyFilter
from handx_robot.safety.limits import JointLimit, limits_from_mjcf, limits_from_model, limits_from_urdf
from handx_robot.safety.units import UNIT_MAPPINGS, UnitMapping, make_unit_mapping

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
    "ClockError",
    "limits_from_urdf",
    "limits_from_mjcf",
    "limits_from_model",
    "COUNTER_NAMES",
    "POSITION_MODES",
    "VELOCITY_MODES",
    "INTERFACES",
    "POSITION_TOL",
    "RATE_TOL",
    "MIN_DURATION_S",
    "MAX_DURATION_S",
    "MIN_STEP_S",
]
