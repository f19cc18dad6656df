"""The observation and action layouts of the tracking task: named blocks (:class:`Field`) of flat vectors.

Vectors are grouped by quantity, each group by hand (``left`` then ``right``) and, for reference
look-ahead, by horizon step. :func:`build_layouts` makes both layouts from the backend's hands and
the :class:`~handx_robot.sim.tracking.config.TrackingConfig`; :func:`group_slices` gives the
contiguous slice of each quantity over all hands, which the task reads and writes in one go.
The rows with units are printed by :func:`layout_table` (and documented on
:class:`handx_robot.sim.tracking_env.HandXTrackingEnv`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from handx_robot.sim.backends.base import BackendLayout, HandLayout
from handx_robot.sim.tracking.config import LAYOUT_VERSION, TrackingConfig

__all__ = ["Field", "build_layouts", "group_slices", "layout_table", "layout_signature"]


@dataclasses.dataclass(frozen=True)
class Field:
    """One named block of a flat vector: ``vec[start : start + size]``."""

    name: str
    start: int
    size: int
    unit: str
    description: str

    @property
    def stop(self) -> int:
        return self.start + self.size


def _fields(items: Sequence[tuple[str, int, str, str]]) -> tuple[Field, ...]:
    out, i = [], 0
    for name, size, unit, desc in items:
        out.append(Field(name, i, size, unit, desc))
        i += size
    return tuple(out)


def _obs_items(H: Mapping[str, HandLayout], K: int) -> list[tuple[str, int, str, str]]:
    S = tuple(H)
    n = {s: len(H[s].joint_names) for s in S}
    a = {s: len(H[s].actuated) for s in S}
    k = {s: len(H[s].fingertips) for s in S}
    steps = range(1, K + 1)
    return [
        *[(f"{s}_q", n[s], "rad", f"joint positions ({', '.join(H[s].joint_names)})") for s in S],
        *[(f"{s}_qd", n[s], "rad/s", "joint velocities") for s in S],
        *[(f"{s}_wrist_pos", 3, "m", "wrist position (T_world_base), world") for s in S],
        *[(f"{s}_wrist_quat", 4, "1", "wrist orientation wxyz (w >= 0), world") for s in S],
        *[(f"{s}_wrist_vel", 6, "m/s, rad/s", "wrist linear and angular velocity, world") for s in S],
        *[(f"{s}_tips", 3 * k[s], "m", f"fingertips minus wrist position, world axes ({', '.join(H[s].fingertips)})")
          for s in S],
        *[(f"{s}_tip_err", 3 * k[s], "m", "reference fingertips (frame t) minus simulated, world") for s in S],
        *[(f"ref{j}_{s}_dq", a[s], "rad", f"reference actuated joints at t+{j} minus current") for j in steps for s in S],
        *[(f"ref{j}_{s}_dpos", 3, "m", f"reference wrist position at t+{j} minus current, world") for j in steps for s in S],
        *[(f"ref{j}_{s}_drot", 3, "rad", f"rotation vector current -> reference wrist at t+{j}, world")
          for j in steps for s in S],
        ("contact", 1, "0/1", "simulated hand-hand contact"),
        ("ref_contact", K, "0/1", "reference hand-hand contact at t+1..t+K"),
        ("phase", 1, "1", "frame / (clip frames - 1)"),
    ]


def build_layouts(layout: BackendLayout, config: TrackingConfig) -> tuple[tuple[Field, ...], tuple[Field, ...]]:
    """``(observation fields, action fields)`` for the backend's hands (in ``layout.sides`` order)."""
    H = {s: layout.hands[s] for s in layout.sides}
    act = [
        *[(f"{s}_dq", len(H[s].actuated), f"x{config.finger_action_scale:g} rad", "residual on each actuated joint target")
          for s in H],
        *[(f"{s}_dpos", 3, f"x{config.wrist_pos_action_scale:g} m", "residual on the wrist target position, world")
          for s in H],
        *[(f"{s}_drot", 3, f"x{config.wrist_rot_action_scale:g} rad", "residual wrist rotation vector, world") for s in H],
    ]
    return _fields(_obs_items(H, int(config.horizon))), _fields(act)


def group_slices(fields: Sequence[Field], sides: Sequence[str]) -> dict[str, slice]:
    """Contiguous slice of each quantity over all hands (and horizon steps): ``q``, ``dq``, ``ref_drot``..."""
    groups: dict[str, list[Field]] = {}
    for f in fields:
        parts = f.name.split("_")
        if parts[0].startswith("ref") and parts[0][3:].isdigit():
            key = "ref_" + "_".join(parts[2:])
        elif parts[0] in sides:
            key = "_".join(parts[1:])
        else:
            key = f.name
        groups.setdefault(key, []).append(f)
    out = {}
    for key, fs in groups.items():
        if any(fs[i].stop != fs[i + 1].start for i in range(len(fs) - 1)):
            raise AssertionError(f"layout group {key} is not contiguous")
        out[key] = slice(fs[0].start, fs[-1].stop)
    return out


def layout_table(fields: Sequence[Field]) -> str:
    """One line per field: index range, name, unit, meaning."""
    lines = [f"{'index':>9}  {'name':<18} {'unit':<14} meaning"]
    for f in fields:
        lines.append(f"{f.start:>4}-{f.stop - 1:<4}  {f.name:<18} {f.unit:<14} {f.description}")
    return "\n".join(lines)


def layout_signature(layout: BackendLayout, config: TrackingConfig, obs_fields: Sequence[Field],
                     act_fields: Sequence[Field]) -> dict:
    """What a policy depends on: layout version, robots per side, K, control rate (s), observation and
    action layouts, action scales."""
    return {
        "layout_version": LAYOUT_VERSION,
        "robots": {s: layout.hands[s].robot_id for s in layout.sides},
        "horizon": int(config.horizon),
        "control_dt": float(layout.control_dt),
        "obs_fields": [[f.name, f.size] for f in obs_fields],
        "act_fields": [[f.name, f.size] for f in act_fields],
        "action_scales": [config.finger_action_scale, config.wrist_pos_action_scale, config.wrist_rot_action_scale],
    }
