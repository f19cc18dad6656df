"""Error types of handx-robot.

Every error is a :class:`HandXError`; each subclass also inherits the matching
built-in exception so callers can catch either. Messages name the file and
field, the value received, what is allowed, and the fix.
"""

from __future__ import annotations

__all__ = [
    "HandXError",
    "ConfigError",
    "MotionFormatError",
    "MotionValueError",
    "UnsafePickleError",
    "UnknownRobotError",
    "UnknownJointError",
    "ModelLoadError",
    "MissingDependencyError",
    "SolverError",
]


class HandXError(Exception):
    """Base class of every error handx-robot raises on purpose."""


class ConfigError(HandXError, ValueError):
    """A configuration value or command-line option is invalid."""


class MotionFormatError(HandXError, ValueError):
    """A motion file is malformed, of an unknown format, or has a wrong shape."""


class MotionValueError(HandXError, ValueError):
    """Motion values are invalid: NaN/inf, fps <= 0, too few frames, wrong units."""


class UnsafePickleError(HandXError, ValueError):
    """A pickle asked for something other than numpy arrays and plain containers."""


class UnknownRobotError(HandXError, KeyError):
    """A robot id is not in the registry."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownJointError(HandXError, KeyError):
    """Joint names do not match the robot model."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ModelLoadError(HandXError, RuntimeError):
    """A robot model (URDF/MJCF) or config could not be loaded."""


class MissingDependencyError(HandXError, ImportError):
    """An optional dependency or user-provided file (e.g. MANO model) is missing."""


class SolverError(HandXError, RuntimeError):
    """A solver failed in a way that cannot be reported per frame."""
