"""From what a user typed to robot specs: ``--robot`` / ``--left-robot`` / ``--right-robot`` -> ids
(:func:`resolve_robot_ids`), and an id -> a spec with the built-in fallback of simulation
(:func:`resolve_robot`)."""

from __future__ import annotations

import logging
import os

from handx_robot.retarget.robots.assets import ASSETS_ENV, asset_roots
from handx_robot.retarget.robots.registry import FAMILIES, dex_family, get_robot, robot_side
from handx_robot.retarget.robots.spec import RobotSpec

from handx_robot.errors import ConfigError, ModelLoadError

__all__ = ["resolve_robot_ids", "resolve_robot", "resolve_robot_specs", "BUILTIN_FALLBACK", "RESOLVE_MODES"]

log = logging.getLogger(__name__)

#: dex-urdf family -> the built-in hand family that stands in for it in simulation without assets.
BUILTIN_FALLBACK: dict[str, str] = {"shadow": "shadow_builtin"}
#: Modes of :func:`resolve_robot`: 'sim' (simulation, replay, retargeting for simulation), 'real' (hardware).
RESOLVE_MODES = ("sim", "real")


def resolve_robot_ids(
    robot: str | None, left: str | None, right: str | None, assets=None, present=("left", "right")
) -> dict[str, str]:
    """Robot id per side from ``--robot`` / ``--left-robot`` / ``--right-robot``.

    ``robot`` may be a family shorthand (``shadow`` -> ``shadow_left`` + ``shadow_right``; without an
    asset directory ``shadow`` means the built-in ``shadow_builtin_*``), a sided id (used for its own
    side only) or a side-less id (``panda_gripper``: both sides).
    """
    out: dict[str, str] = {}
    if robot is not None and (left or right):
        raise ConfigError("give either --robot or --left-robot/--right-robot, not both")
    if robot is None and not (left or right):
        robot = "shadow"
    if robot is not None:
        base, at, variant = robot.partition("@")
        suffix = f"@{variant}" if at else ""
        if base in FAMILIES or base == "shadow_builtin":
            if base == "shadow" and not asset_roots(assets):
                log.info("no asset directory given: --robot shadow uses the built-in gymnasium-robotics Shadow hand")
                base = "shadow_builtin"
            out = {s: f"{base}_{s}{suffix}" for s in present}
        else:
            side = robot_side(robot)
            if side == "any":
                out = {s: robot for s in present}
            else:
                out = {side: robot}
    else:
        if left:
            out["left"] = left
        if right:
            out["right"] = right
    return out


def resolve_robot(
    robot_id: str, assets: str | os.PathLike | None = None, mode: str = "sim"
) -> tuple[RobotSpec, str | None]:
    """The spec of one robot id (``shadow_right``, ``allegro_left@dexpilot``, ``shadow_builtin_right``,
    a YAML path, ...), with the built-in stand-in of simulation; returns ``(spec, note)``.

    ``mode``: 'sim' (simulation, replay, retargeting for simulation) or 'real' (commands to hardware).
    ``assets``: the asset directory (``--assets DIR``); None reads ``$HANDX_ROBOT_ASSETS``.

    * An asset directory is given (``assets`` or the environment), or the id is not a dex-urdf hand
      (``shadow_builtin_*``, user robots, YAML paths): exactly :func:`get_robot` (its errors
      unchanged, e.g. a model missing from the given directory), ``note`` None.
    * A dex-urdf hand (``allegro_*``, ``leap_*``, ``inspire_*``, ``shadow_*``, ``ability_*``,
      ``schunk_svh_*``, ``panda_gripper``) without an asset directory:

      - 'sim', a family with a built-in hand (:data:`BUILTIN_FALLBACK`: ``shadow_s`` ->
        ``shadow_builtin_s``, any variant -> the built-in vector config): the built-in hand's spec
        (``spec.id`` is the built-in id) and a one-line ``note`` saying so, which the caller shows
        (log or stderr); nothing is logged here;
      - 'sim', any other family: :class:`~handx_robot.errors.ModelLoadError` naming the fix;
      - 'real': always :class:`~handx_robot.errors.ModelLoadError`: a stand-in model would command
        joints under other names and ranges than the hardware's.

    Raises ConfigError for an unknown ``mode`` or a missing asset directory, UnknownRobotError for
    an unknown id.
    """
    if mode not in RESOLVE_MODES:
        raise ConfigError(f"robot mode {mode!r} is unknown; allowed: {', '.join(RESOLVE_MODES)}")
    fam = dex_family(robot_id)
    if fam is None or asset_roots(assets):
        return get_robot(robot_id, assets), None
    family, side = fam
    missing = (
        f"robot {robot_id!r} is a dex-urdf hand and no asset directory is given; fix: --assets DIR "
        f"(a dex-urdf checkout) or set ${ASSETS_ENV}=DIR"
    )
    if mode == "real":
        raise ModelLoadError(
            f"{missing}. Mode 'real' never substitutes another hand model: a wrong model means wrong joint "
            "names (and ranges) in the commands sent to the hardware"
        )
    builtin = BUILTIN_FALLBACK.get(family)
    if builtin is None:
        stand_ins = ", ".join(f"{b}_left/right (for {f}_*)" for f, b in BUILTIN_FALLBACK.items())
        raise ModelLoadError(f"{missing}. There is no built-in {family} hand to simulate instead; built-in: {stand_ins}")
    builtin_id = f"{builtin}_{side}"
    spec = get_robot(builtin_id)
    variant = robot_id.partition("@")[2]
    other = f"; its {variant} variant needs the assets" if variant and variant != "vector" else ""
    note = (
        f"robot {robot_id!r}: no asset directory (--assets DIR or ${ASSETS_ENV}), so mode 'sim' uses the "
        f"built-in hand {builtin_id!r} ({spec.source}) instead{other}"
    )
    return spec, note


def resolve_robot_specs(
    robot: str | None, left: str | None, right: str | None, assets=None, present=("left", "right"),
    mode: str = "sim",
) -> dict[str, RobotSpec]:
    """:func:`resolve_robot_ids` then :func:`resolve_robot` for each side: the spec per side, each
    substitution said in one warning (``handx_robot.retarget.robots.resolve``)."""
    specs = {}
    for side, robot_id in resolve_robot_ids(robot, left, right, assets, present).items():
        specs[side], note = resolve_robot(robot_id, assets, mode)
        if note:
            log.warning(note)
    return specs
