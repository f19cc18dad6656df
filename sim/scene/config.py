"""Configuration of a hand scene: which hands (:class:`HandModel`), finger gains (:class:`GainConfig`), an
optional table (:class:`TableConfig`) and the scene options (:class:`SceneConfig`).

Frozen dataclasses validated in ``__post_init__``; override with ``dataclasses.replace``. Units: SI
(metres, radians, kg, N, s); world frame Z-up.
"""

from __future__ import annotations

import dataclasses
import logging
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from handx_robot.errors import ConfigError, ModelLoadError
from handx_robot.motion import SIDES

__all__ = ["HandModel", "GainConfig", "TableConfig", "SceneConfig", "fingertips_from_config"]

log = logging.getLogger(__package__)  # the package's logger: handx_robot.sim.scene


@dataclasses.dataclass(frozen=True)
class HandModel:
    """One robot hand to put in a scene.

    robot_id:        registry id (``shadow_right``) or any label.
    side:            ``left`` or ``right``.
    model_path:      URDF or MJCF file.
    model_format:    ``urdf`` or ``mjcf``.
    fingertip_links: body or site names at the fingertips; empty = the model's leaf bodies (those
                     named ``*tip*`` when there are any).
    independent_joints: the joints a robot motion drives (registry ``joint_names``); the others follow
                     through mimic equalities or coupling tendons. Empty = every joint that is not a
                     mimic follower or the first joint of a coupling tendon.
    """

    robot_id: str
    side: str
    model_path: Path
    model_format: str
    fingertip_links: tuple[str, ...] = ()
    independent_joints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ConfigError(f"robot '{self.robot_id}': side {self.side!r} is not one of {SIDES}")
        fmt = str(self.model_format).lower()
        if fmt not in ("urdf", "mjcf"):
            raise ConfigError(
                f"robot '{self.robot_id}': model_format {self.model_format!r}; allowed: 'urdf', 'mjcf'"
            )
        object.__setattr__(self, "model_format", fmt)
        object.__setattr__(self, "model_path", Path(self.model_path))
        object.__setattr__(self, "fingertip_links", tuple(str(n) for n in self.fingertip_links))
        object.__setattr__(self, "independent_joints", tuple(str(n) for n in self.independent_joints))

    @classmethod
    def from_path(cls, path: str | Path, side: str, robot_id: str | None = None) -> HandModel:
        """A hand from a model file; the format follows the suffix (``.urdf`` or ``.xml``/``.mjcf``)."""
        path = Path(path)
        fmt = "urdf" if path.suffix.lower() == ".urdf" else "mjcf"
        return cls(robot_id=robot_id or path.stem, side=side, model_path=path, model_format=fmt)

    @classmethod
    def from_registry(cls, robot_id: str, assets: str | Path | None = None, side: str | None = None) -> HandModel:
        """A hand from :func:`handx_robot.retarget.robots.get_robot` (fingertips from its retargeting config).

        side: required for side-less robots (grippers, registry side ``any``); else must match.
        """
        try:
            from handx_robot.retarget.robots import fingertip_links, get_robot
        except ModuleNotFoundError as exc:  # the registry lands with the retargeting issue
            raise ModelLoadError(
                f"robot '{robot_id}': the robot registry (handx_robot.retarget.robots) is not available ({exc}); "
                "pass a model file with HandModel.from_path instead"
            ) from exc
        spec = get_robot(robot_id, assets=assets)
        if spec.side in SIDES and side is not None and side != spec.side:
            raise ConfigError(f"robot '{robot_id}' is a {spec.side} hand; it cannot be the {side} hand")
        hand_side = spec.side if spec.side in SIDES else side
        if hand_side is None:
            raise ConfigError(f"robot '{robot_id}' fits either side; say which (side='left' or 'right')")
        try:
            tips = tuple(fingertip_links(spec).values())
        except Exception as exc:  # a config without target links: fall back to the model's leaves
            log.debug("%s: no fingertip links from the config (%s)", robot_id, exc)
            tips = ()
        return cls(
            robot_id=spec.id,
            side=hand_side,
            model_path=Path(spec.model_path),
            model_format=spec.model_format,
            fingertip_links=tips or fingertips_from_config(spec.config or {}),
            independent_joints=tuple(spec.joint_names),
        )


def fingertips_from_config(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Fingertip link names from a dex-retargeting config dict (``finger_tip_link_names`` first,
    then ``target_task_link_names``, then ``target_link_names``); searched at any nesting depth."""

    def find(node: Any, key: str) -> list[str] | None:
        if isinstance(node, Mapping):
            if key in node and isinstance(node[key], (list, tuple)):
                return [str(v) for v in node[key]]
            for v in node.values():
                got = find(v, key)
                if got:
                    return got
        return None

    for key in ("finger_tip_link_names", "target_task_link_names", "target_link_names"):
        got = find(config, key)
        if got:
            return tuple(dict.fromkeys(got))
    return ()


def _frozen_mapping(value: Mapping | None) -> types.MappingProxyType:
    return types.MappingProxyType(dict(value or {}))


@dataclasses.dataclass(frozen=True)
class GainConfig:
    """Finger position-actuator gains (the formula: "Finger actuators" in :mod:`handx_robot.sim.scene.builder`).

    bandwidth_hz:  natural frequency of each joint's PD loop, Hz (> 0; keep ``2*pi*f*timestep < 0.5``).
    damping_ratio: 1 = critically damped.
    min_inertia:   floor of the effective inertia, kg m^2 (very light links).
    overrides:     ``{joint_name: (kp, kv)}`` (robot joint names, N m/rad and N m s/rad).
    """

    bandwidth_hz: float = 20.0
    damping_ratio: float = 1.0
    min_inertia: float = 1e-6
    overrides: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("bandwidth_hz", "damping_ratio", "min_inertia"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ConfigError(f"GainConfig.{name} must be a finite number > 0, got {v!r}")
        for joint, pair in dict(self.overrides).items():
            if len(pair) != 2 or not all(np.isfinite(p) and p >= 0 for p in pair):
                raise ConfigError(f"GainConfig.overrides[{joint!r}] must be (kp, kv) >= 0, got {pair!r}")
        object.__setattr__(self, "overrides", _frozen_mapping(self.overrides))


@dataclasses.dataclass(frozen=True)
class TableConfig:
    """A box table: top surface at ``height`` (m, world z), centred at ``center_xy``, ``size_xy`` full extents (m)."""

    height: float
    center_xy: tuple[float, float] = (0.0, 0.0)
    size_xy: tuple[float, float] = (1.0, 0.7)
    thickness: float = 0.04

    def __post_init__(self) -> None:
        vals = (self.height, *self.center_xy, *self.size_xy, self.thickness)
        if not all(np.isfinite(v) for v in vals) or min(*self.size_xy, self.thickness) <= 0:
            raise ConfigError(f"TableConfig: height/center must be finite and sizes > 0, got {self!r}")


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """Scene options (SI units, world Z-up).

    timestep:        physics step, s (<= 0.002 for replay).
    gains:           finger actuator gains.
    wrist_timeconst: weld time constant pulling each hand onto its wrist target, s (>= 2 * timestep).
    contact_timeconst: time constant of the hand-hand and hand-environment contacts (geom ``solref``; an
                     MJCF's own ``<pair>`` contacts keep theirs), s (>= 2 * timestep); ``None`` =
                     ``wrist_timeconst``. Keep it <= the wrist's:
                     contacts softer than the weld let the arm push one hand through the other (see
                     "Contacts vs the wrist weld" in :mod:`handx_robot.sim.scene.builder`).
    floor_height:    floor plane z, m (``None``: no floor).
    table:           optional table.
    view_center:     point the preset cameras look at, m, world.
    view_distance:   preset camera distance from ``view_center``, m.
    solver_iterations / ls_iterations: MuJoCo Newton solver budget per step.
    width, height:   offscreen framebuffer size, pixels (largest video you will render).
    gravity:         m/s^2, world.
    shadows:         lights cast shadows (prettier, but software rendering gets much slower).
    max_hull_vertices: cap on the convex-hull vertices of collision meshes (MuJoCo ``maxhullvert``; coarser
                     hulls make contacts cheaper for meshes with many vertices; ``None`` = exact hulls).
    msaa_samples:    offscreen multisampling (0 = off: with samples, reading pixels back costs several times
                     more on software GL; use 4 on a GPU for smoother edges).
    """

    timestep: float = 0.002
    gains: GainConfig = dataclasses.field(default_factory=GainConfig)
    wrist_timeconst: float = 0.005
    contact_timeconst: float | None = None
    floor_height: float | None = 0.0
    table: TableConfig | None = None
    view_center: tuple[float, float, float] = (0.0, 0.0, 0.3)
    view_distance: float = 0.7
    solver_iterations: int = 8
    ls_iterations: int = 4
    width: int = 1280
    height: int = 960
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    shadows: bool = False
    msaa_samples: int = 0
    max_hull_vertices: int | None = 32

    def __post_init__(self) -> None:
        if not (np.isfinite(self.timestep) and 0 < self.timestep <= 0.01):
            raise ConfigError(f"SceneConfig.timestep must be in (0, 0.01] s, got {self.timestep!r}")
        if not (np.isfinite(self.wrist_timeconst) and self.wrist_timeconst >= 2 * self.timestep):
            raise ConfigError(
                f"SceneConfig.wrist_timeconst must be >= 2 * timestep = {2 * self.timestep} s, "
                f"got {self.wrist_timeconst!r}"
            )
        if self.contact_timeconst is not None and not (
            np.isfinite(self.contact_timeconst) and self.contact_timeconst >= 2 * self.timestep
        ):
            raise ConfigError(
                f"SceneConfig.contact_timeconst must be None or >= 2 * timestep = {2 * self.timestep} s, "
                f"got {self.contact_timeconst!r}"
            )
        if self.floor_height is not None and not np.isfinite(self.floor_height):
            raise ConfigError(f"SceneConfig.floor_height must be finite or None, got {self.floor_height!r}")
        if len(self.view_center) != 3 or not all(np.isfinite(self.view_center)):
            raise ConfigError(f"SceneConfig.view_center must be 3 finite numbers, got {self.view_center!r}")
        if not (np.isfinite(self.view_distance) and self.view_distance > 0):
            raise ConfigError(f"SceneConfig.view_distance must be > 0, got {self.view_distance!r}")
        if self.solver_iterations < 1 or self.ls_iterations < 1:
            raise ConfigError("SceneConfig.solver_iterations and ls_iterations must be >= 1")
        if self.max_hull_vertices is not None and self.max_hull_vertices < 4:
            raise ConfigError(f"SceneConfig.max_hull_vertices must be >= 4 or None, got {self.max_hull_vertices!r}")
        if self.msaa_samples not in (0, 1, 2, 4, 8, 16):
            raise ConfigError(f"SceneConfig.msaa_samples must be one of 0, 1, 2, 4, 8, 16, got {self.msaa_samples!r}")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ConfigError(f"SceneConfig width/height must be in [16, 8192], got {self.width}x{self.height}")
        object.__setattr__(self, "view_center", tuple(float(v) for v in self.view_center))
        object.__setattr__(self, "gravity", tuple(float(v) for v in self.gravity))

