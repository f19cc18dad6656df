"""The simulator backend interface under the tracking env: reset / set state / targets / step / read state.

The env logic (observations, rewards, reference sampling, termination) lives in
:mod:`handx_robot.sim.tracking_env` and talks only to this interface, so a new simulator needs one class. Every
array is batched over ``B = num_envs`` environments (a CPU backend may have ``B = 1``).

Units and frames: joint positions rad (m for slide joints), velocities rad/s (m/s); wrist poses are
``T_world_base`` of each hand as ``[x, y, z, qw, qx, qy, qz]`` (m, world Z-up); wrist velocities
``[vx, vy, vz, wx, wy, wz]`` (m/s, rad/s), both in the world frame; fingertip positions m, world.
Per-hand arrays are keyed by side (``left`` / ``right``); joint columns follow
:attr:`HandLayout.joint_names` (all joints) or :attr:`HandLayout.actuated` (targets).
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from handx_robot.errors import ConfigError

if TYPE_CHECKING:
    from handx_robot.sim.tracking.config import TrackingConfig

__all__ = ["HandLayout", "BackendLayout", "SimState", "KinematicsResult", "SimBackend", "TRACKING_FIELDS", "check_config"]

#: Backend config fields the tracking env sets (from :class:`handx_robot.sim.tracking.config.TrackingConfig`
#: and the motions: fps and extent), never from backend options.
TRACKING_FIELDS = ("control_dt", "substeps", "bandwidth_hz", "floor_height", "view_center", "view_distance")

_C = TypeVar("_C")


def check_config(owner: str, config: object, expected: type[_C]) -> _C:
    """``config``, or ``expected()`` when it is None; a config of another type raises
    :class:`ConfigError` naming the field, the types and the fix."""
    if config is None:
        return expected()
    if not isinstance(config, expected):
        raise ConfigError(
            f"{owner}: config is a {type(config).__name__}, this backend takes a {expected.__name__}; build one "
            f"with {expected.__name__}.from_tracking(tracking_config, control_dt=...) or {expected.__name__}(...), "
            "or pass config=None for its defaults"
        )
    return config


@dataclasses.dataclass(frozen=True)
class HandLayout:
    """What a backend simulates for one hand, by name.

    robot_id:    registry id (``shadow_builtin_right``).
    joint_names: (n,) every hinge/slide joint, the column order of ``qpos`` / ``qvel``.
    actuated:    (a,) joints with a position actuator, the column order of targets.
    mimic:       ``{follower: (leader, coeffs c0..c4)}``, ``q_f = c0 + c1 q_l + ...``.
    fingertips:  (k,) fingertip link names, the row order of fingertip arrays.
    ctrl_lo, ctrl_hi: (a,) target limits (the joint range), rad / m.
    """

    side: str
    robot_id: str
    joint_names: tuple[str, ...]
    actuated: tuple[str, ...]
    mimic: Mapping[str, tuple[str, np.ndarray]]
    fingertips: tuple[str, ...]
    ctrl_lo: np.ndarray
    ctrl_hi: np.ndarray

    def __post_init__(self) -> None:
        a = len(self.actuated)
        lo = np.asarray(self.ctrl_lo, dtype=np.float64).reshape(-1)
        hi = np.asarray(self.ctrl_hi, dtype=np.float64).reshape(-1)
        if lo.shape != (a,) or hi.shape != (a,) or np.any(lo > hi):
            raise ConfigError(
                f"HandLayout({self.side}, {self.robot_id}): ctrl_lo/ctrl_hi must be ({a},) with lo <= hi, "
                f"got {lo.shape} / {hi.shape}"
            )
        unknown = [n for n in self.actuated if n not in self.joint_names]
        if unknown:
            raise ConfigError(f"HandLayout({self.side}): actuated joints {unknown} are not in joint_names")
        if not self.fingertips:
            raise ConfigError(f"HandLayout({self.side}, {self.robot_id}): the hand has no fingertips")
        object.__setattr__(self, "ctrl_lo", lo)
        object.__setattr__(self, "ctrl_hi", hi)
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "actuated", tuple(self.actuated))
        object.__setattr__(self, "fingertips", tuple(self.fingertips))

    @functools.cached_property
    def actuated_index(self) -> np.ndarray:
        """(a,) column of each actuated joint in :attr:`joint_names` (computed once, read-only)."""
        index = np.array([self.joint_names.index(n) for n in self.actuated], dtype=np.int64)
        index.setflags(write=False)
        return index


@dataclasses.dataclass(frozen=True)
class BackendLayout:
    """The hands of a backend and its clock: ``control_dt = substeps * physics_dt`` (s)."""

    hands: Mapping[str, HandLayout]
    control_dt: float
    substeps: int

    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(s for s in ("left", "right") if s in self.hands)

    @property
    def physics_dt(self) -> float:
        return self.control_dt / self.substeps


@dataclasses.dataclass
class SimState:
    """Batched simulator state (``B`` envs); see the module docstring for units.

    qpos[side], qvel[side]: (B, n); wrist_pose[side]: (B, 7); wrist_vel[side]: (B, 6);
    fingertips[side]: (B, k, 3); hand_contact: (B,) bool, a left-hand geom touches a right-hand geom;
    hand_hand_depth: (B,) deepest hand-hand penetration, m; unstable: (B,) bool, the physics diverged
    (NaN/inf or MuJoCo's bad-acceleration warning) since the last reset of that env.
    """

    qpos: dict[str, np.ndarray]
    qvel: dict[str, np.ndarray]
    wrist_pose: dict[str, np.ndarray]
    wrist_vel: dict[str, np.ndarray]
    fingertips: dict[str, np.ndarray]
    hand_contact: np.ndarray
    hand_hand_depth: np.ndarray
    unstable: np.ndarray


@dataclasses.dataclass(frozen=True)
class KinematicsResult:
    """Kinematic (no dynamics) evaluation of ``T`` poses: fingertips[side] (T, k, 3) m world,
    hand_contact (T,) bool (hand-hand geometric contact), hand_hand_depth (T,) deepest hand-hand
    penetration, m (0 = none)."""

    fingertips: dict[str, np.ndarray]
    hand_contact: np.ndarray
    hand_hand_depth: np.ndarray


class SimBackend(abc.ABC):
    """A batch of ``num_envs`` identical hand scenes stepped together.

    Contract: ``set_state`` teleports (velocities given, targets set to the new pose); ``set_targets``
    holds PD targets, wrist targets and target velocities (feed-forward) for the next ``step``;
    ``step`` advances every env by ``layout.control_dt``; ``read_state`` returns copies.
    ``env_ids`` selects envs (``None`` = all); arrays passed for a selection have ``len(env_ids)`` rows.
    """

    layout: BackendLayout
    num_envs: int
    #: the config dataclass the backend takes (``config=``); it has a classmethod ``from_tracking``
    config_class: ClassVar[type]

    @classmethod
    def for_tracking(
        cls,
        hands: Any,
        tracking: TrackingConfig,
        num_envs: int = 1,
        *,
        control_dt: float,
        view_center: tuple[float, float, float] = (0.0, 0.0, 0.3),
        view_distance: float = 0.7,
        **backend_kwargs: Any,
    ) -> SimBackend:
        """The backend for the tracking env: its config built by ``config_class.from_tracking`` from
        ``tracking`` (substeps, bandwidth_hz, floor_height) and ``control_dt`` (s), ``view_center`` /
        ``view_distance`` (m, preset cameras). ``backend_kwargs`` are this backend's own options: other
        fields of its config (``wrist_kp`` ...) or its constructor's keywords (``device`` ...). Unknown
        options, and options that belong to the tracking config (:data:`TRACKING_FIELDS`), raise
        :class:`ConfigError` listing what this backend takes."""
        fields = {f.name for f in dataclasses.fields(cls.config_class)}
        ctor = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "hands", "num_envs", "config")]
        fixed = sorted(set(backend_kwargs) & set(TRACKING_FIELDS))
        if fixed:
            raise ConfigError(
                f"{cls.__name__}: {fixed} come from the tracking config and the motions' fps; set them in "
                "TrackingConfig (e.g. dataclasses.replace(config, substeps=8)), not as backend options"
            )
        unknown = sorted(set(backend_kwargs) - fields - set(ctor))
        if unknown:
            allowed = sorted((fields - set(TRACKING_FIELDS)) | set(ctor))
            raise ConfigError(f"{cls.__name__}: unknown backend options {unknown}; this backend takes {allowed}")
        config = cls.config_class.from_tracking(  # type: ignore[attr-defined]
            tracking, control_dt=control_dt, view_center=view_center, view_distance=view_distance,
            **{k: v for k, v in backend_kwargs.items() if k in fields},
        )
        return cls(hands, num_envs=num_envs, config=config, **{k: v for k, v in backend_kwargs.items() if k not in fields})

    @abc.abstractmethod
    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        """Home pose, zero velocities, clear the instability flag."""

    @abc.abstractmethod
    def set_state(
        self,
        env_ids: Sequence[int] | None,
        qpos: Mapping[str, np.ndarray],
        qvel: Mapping[str, np.ndarray],
        wrist_pose: Mapping[str, np.ndarray],
        wrist_vel: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Teleport: qpos/qvel[side] (b, n), wrist_pose[side] (b, 7), wrist_vel[side] (b, 6) or zero."""

    @abc.abstractmethod
    def set_targets(
        self,
        targets: Mapping[str, np.ndarray],
        wrist_targets: Mapping[str, np.ndarray],
        target_velocities: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """targets[side] (B, a) rad (clipped to the joint range), wrist_targets[side] (B, 7),
        target_velocities[side] (B, a) rad/s for velocity feed-forward (``None``: none)."""

    @abc.abstractmethod
    def step(self) -> None:
        """Advance every env by ``layout.control_dt`` (``layout.substeps`` physics steps)."""

    @abc.abstractmethod
    def read_state(self) -> SimState:
        """The current state of every env (copies), contacts included."""

    @abc.abstractmethod
    def kinematics(self, qpos: Mapping[str, np.ndarray], wrist_pose: Mapping[str, np.ndarray]) -> KinematicsResult:
        """Fingertips and hand-hand contact of ``T`` poses (qpos[side] (T, n), wrist_pose[side] (T, 7)),
        without dynamics: the reference's fingertips and contact events."""

    def render(self, env_id: int = 0, camera: str | None = None, width: int = 640, height: int = 480) -> np.ndarray:
        """(height, width, 3) uint8 image of one env; backends without a renderer raise ConfigError."""
        raise ConfigError(f"{type(self).__name__} cannot render; use the MuJoCo backend for videos")

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release simulator resources."""
