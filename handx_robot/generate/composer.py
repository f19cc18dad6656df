"""The embedded text-to-motion generator (``composer``): parsed prompt -> keyframes -> FK -> motion.

Canonical placement (frame ``handx_yup``, metres): origin at the sternum, ``+y`` up, ``+x`` toward the
subject's right, ``-z`` forward (the subject looks along ``-z``). At rest the wrists are 0.26 m apart
(x = ±0.13), 0.08 m below the sternum and 0.30 m in front of it, fingers pointing forward, palms
turned down and inward.

Each hand is animated in its *side frame*: the world for the right hand, the world mirrored
(x -> -x) for the left hand, so that ``+x`` is always lateral (away from the body midline) and one
right-hand model (:mod:`handx_robot.generate.handmodel`) serves both hands. A hand's keyframe holds its
joint angles, wrist position, base orientation ``R_side_hand`` and two scalar wrist angles (forearm
``roll`` about the hand's distal axis, + = supination; ``dev`` about the palm normal). Keyframes are
joined by minimum-jerk segments (zero velocity and acceleration at every keyframe); continuous
paths (writing) ride on top of a segment as offsets.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.frames import FRAME_HANDX_YUP
from handx_robot.generate.base import ContactKeyframe
from handx_robot.generate.events import ExpectedEvent
from handx_robot.generate.geometry import hand_clearance
from handx_robot.generate.handmodel import (
    HandShape,
    angle_index,
    clip_angles,
    forward_kinematics,
    rot_y,
    rot_z,
)
from handx_robot.generate.parser import Action, Plan
from handx_robot.generate.shapes import hand_shape
from handx_robot.motion import SIDES, BimanualMotion

__all__ = [
    "REST_WRIST_POS",
    "ComposerConfig",
    "Composition",
    "compose",
    "min_jerk",
    "orientation",
]

log = logging.getLogger(__name__)

#: Right wrist at rest, side frame = world (the left wrist mirrors it), metres.
REST_WRIST_POS = np.array([0.13, -0.08, -0.30])
#: A clap opens the palms this far apart (each hand moves half), metres, at amplitude 1.
CLAP_OPEN_M = 0.22
#: Squeeze of a planned contact: hand volumes overlap this much (well under the 5 mm limit), metres.
CONTACT_SQUEEZE_M = 0.001


def min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile ``10τ³ − 15τ⁴ + 6τ⁵`` on ``τ ∈ [0, 1]`` (0 -> 0, 1 -> 1, zero vel/acc at both ends)."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)


def orientation(distal, palmar) -> np.ndarray:
    """``R_side_hand`` (3, 3) whose hand axes are (radial, distal, palmar), from distal and palmar directions."""
    d = np.asarray(distal, dtype=np.float64)
    d = d / np.linalg.norm(d)
    p = np.asarray(palmar, dtype=np.float64)
    p = p - (p @ d) * d
    p = p / np.linalg.norm(p)
    return np.stack([np.cross(d, p), d, p], axis=-1)


#: Named base orientations in the side frame (x lateral, y up, -z forward).
ORIENT: dict[str, np.ndarray] = {
    "neutral": orientation((-0.30, 0.20, -1.0), (-0.60, -0.80, 0.0)),
    "palm_down": orientation((-0.15, 0.05, -1.0), (0.0, -1.0, 0.0)),
    "palm_medial": orientation((0.0, 0.35, -1.0), (-1.0, 0.0, 0.0)),
    "steeple": orientation((-0.20, 0.60, -1.0), (-1.0, 0.0, 0.0)),
    "pray": orientation((0.0, 1.0, -0.35), (-1.0, 0.0, 0.0)),
    "show": orientation((-0.10, 1.0, 0.10), (0.0, 0.0, -1.0)),
    "thumb_up": orientation((-0.05, 0.70, -0.70), (-1.0, 0.0, 0.0)),  # fist forward-up: thumb vertical
    "point": orientation((-0.20, 0.15, -1.0), (-0.30, -1.0, 0.0)),
    "grasp_side": orientation((-0.15, 0.05, -1.0), (-1.0, -0.25, 0.0)),
}


@dataclasses.dataclass(frozen=True)
class ComposerConfig:
    """Settings of the composer.

    fps:        output frames per second (HandX: 30).
    variation:  size of the seeded variation (0 = none, 1 = natural: ±10 % timing and amplitude,
                ~2° joint angles, ~1 cm rest position).
    hand_scale: bone length multiplier (1 = 50th-percentile adult, wrist to middle tip 0.185 m).
    max_seconds: longest motion accepted, seconds.
    """

    fps: float = 30.0
    variation: float = 1.0
    hand_scale: float = 1.0
    max_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.fps) and 1.0 <= self.fps <= 1000.0):
            raise ConfigError(f"ComposerConfig.fps is {self.fps}; allowed 1..1000 (HandX uses 30)")
        if not (0.0 <= self.variation <= 3.0):
            raise ConfigError(f"ComposerConfig.variation is {self.variation}; allowed 0..3")
        HandShape(self.hand_scale)
        if not (0 < self.max_seconds <= 3600):
            raise ConfigError(f"ComposerConfig.max_seconds is {self.max_seconds}; allowed (0, 3600]")


@dataclasses.dataclass(frozen=True)
class Composition:
    """A composed motion with the plan it came from and the events it promises."""

    motion: BimanualMotion
    plan: Plan
    expected: tuple[ExpectedEvent, ...]


@dataclasses.dataclass
class _Key:
    t: float
    angles: np.ndarray
    pos: np.ndarray
    R: np.ndarray
    roll: float = 0.0
    dev: float = 0.0
    path: np.ndarray | None = None  # (N, 3) offsets along the segment that ends here; 0 at both ends


class _Track:
    """Keyframes of one hand in its side frame."""

    def __init__(self, key: _Key) -> None:
        self.keys = [key]

    @property
    def last(self) -> _Key:
        return self.keys[-1]

    @property
    def end(self) -> float:
        return self.last.t

    def to(self, dt: float, *, angles=None, pos=None, R=None, roll=None, dev=None, path=None) -> _Track:
        k = self.last
        self.keys.append(
            _Key(
                t=k.t + max(float(dt), 1e-3),
                angles=k.angles if angles is None else clip_angles(np.asarray(angles, dtype=np.float64)),
                pos=k.pos if pos is None else np.asarray(pos, dtype=np.float64),
                R=k.R if R is None else R,
                roll=k.roll if roll is None else float(roll),
                dev=k.dev if dev is None else float(dev),
                path=path,
            )
        )
        return self

    def hold(self, dt: float) -> _Track:
        return self.to(dt) if dt > 1e-6 else self

    def wait_until(self, t: float) -> _Track:
        return self.hold(t - self.end)


class _Ctx:
    """Per-generation state: random generator, hand size and the per-step clock."""

    def __init__(self, cfg: ComposerConfig, seed: int) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.var = float(cfg.variation)
        self.shape = HandShape(cfg.hand_scale)
        self.contact_times: list[float] = []  # when each planned contact closes, seconds

    def jit(self, scale: float) -> float:
        """A multiplicative jitter ``1 ± scale`` (uniform), scaled by the variation setting."""
        return float(1.0 + self.var * scale * self.rng.uniform(-1.0, 1.0))

    def dur(self, seconds: float, action: Action) -> float:
        return seconds / action.speed * self.jit(0.08)

    def shape_angles(self, name: str, jitter_deg: float = 2.0) -> np.ndarray:
        q = hand_shape(name)
        if jitter_deg > 0 and self.var > 0:
            q = q + np.deg2rad(self.var * jitter_deg) * self.rng.standard_normal(q.shape)
        return clip_angles(q)

    def pos_jitter(self, scale: float = 0.008) -> np.ndarray:
        return self.var * scale * self.rng.uniform(-1.0, 1.0, 3)

    def fk(self, angles: np.ndarray) -> np.ndarray:
        return forward_kinematics(angles, self.shape)


def _pose_points(ctx: _Ctx, angles, pos, R, roll=0.0, dev=0.0) -> np.ndarray:
    """(21, 3) keypoints in the side frame."""
    Rf = R @ rot_y(roll) @ rot_z(dev)
    return pos + ctx.fk(angles) @ Rf.T


def _mirror(points: np.ndarray) -> np.ndarray:
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] *= -1.0
    return out


def _place_lateral(ctx: _Ctx, angles, R, pos, roll=0.0, dev=0.0, target=-CONTACT_SQUEEZE_M,
                   offset_right=None) -> float:  # fmt: skip
    """Lateral wrist coordinate x (side frame, same for both hands) at which the mirrored hands touch.

    Both hands take the same pose with the wrist at ``(x, pos[1], pos[2])`` (+ ``offset_right`` for the
    right hand and minus it for the left, in the world); returns the smallest x whose clearance is
    ``target`` (negative = overlap), so palms / fingertips meet without passing through each other.
    """
    local = _pose_points(ctx, angles, np.zeros(3), R, roll, dev)
    xs = np.linspace(-0.10, 0.40, 101)
    off = np.zeros(3) if offset_right is None else np.asarray(offset_right, dtype=np.float64)
    right = local[None] + np.stack([xs, np.full_like(xs, pos[1]), np.full_like(xs, pos[2])], -1)[:, None, :]
    right = right + off
    left = _mirror(right - 2 * off)  # the left hand mirrors the right, offset the other way
    clear = hand_clearance(left, right)
    ok = clear >= target
    if ok.all() or not ok[-1]:
        raise ConfigError("bimanual placement failed: the hands cannot be brought into contact in this pose")
    i = int(np.nonzero(~ok)[0][-1])  # last overlapping sample; the next one is clear
    x0, x1 = xs[i], xs[i + 1]
    for _ in range(16):  # bisection to < 0.1 mm
        xm = 0.5 * (x0 + x1)
        rm = local + np.array([xm, pos[1], pos[2]]) + off
        cm = float(hand_clearance(_mirror(rm - 2 * off), rm))
        if cm >= target:
            x1 = xm
        else:
            x0 = xm
    return float(x1)


# ---------------------------------------------------------------------------------------------
# primitives: each appends keyframes to the tracks of its hands and returns the events it promises


def _transition(ctx: _Ctx, tr: _Track, action: Action, angles=None, pos=None, R=None) -> float:
    """Duration of a move from the track's last pose to a new one (longer for bigger moves)."""
    k = tr.last
    dp = 0.0 if pos is None else float(np.linalg.norm(np.asarray(pos) - k.pos))
    da = 0.0 if angles is None else float(np.abs(np.asarray(angles) - k.angles).max())
    dr = 0.0
    if R is not None:
        c = np.clip((np.trace(k.R.T @ R) - 1.0) / 2.0, -1.0, 1.0)
        dr = float(np.arccos(c))
    return ctx.dur(float(np.clip(0.35 + 1.8 * dp + 0.18 * da + 0.15 * dr, 0.35, 1.1)), action)


def _go(ctx: _Ctx, tr: _Track, action: Action, angles=None, pos=None, R=None, roll=0.0, dev=0.0) -> None:
    tr.to(_transition(ctx, tr, action, angles, pos, R), angles=angles, pos=pos, R=R, roll=roll, dev=dev)


def _rest_pos(ctx: _Ctx, dy=0.0, dz=0.0, dx=0.0) -> np.ndarray:
    return REST_WRIST_POS + np.array([dx, dy, dz]) + ctx.pos_jitter()


def _single(ctx: _Ctx, a: Action, side: str, tr: _Track) -> list[ExpectedEvent]:
    p = a.primitive
    t0 = tr.end
    amp = a.amplitude * ctx.jit(0.1)
    ev: list[ExpectedEvent] = []
    if p == "pinch":
        finger = a.finger or "index"
        q_open, q_closed = ctx.shape_angles(f"pinch_open_{finger}", 1.0), hand_shape(f"pinch_{finger}")
        _go(ctx, tr, a, q_open, _rest_pos(ctx, dy=0.03), ORIENT["neutral"])
        for _ in range(a.reps):
            tr.to(ctx.dur(0.32, a), angles=q_closed)
            ctx.contact_times.append(tr.end)
            tr.hold(ctx.dur(0.2, a))
            tr.to(ctx.dur(0.32, a), angles=q_open).hold(ctx.dur(0.12, a))
        ev.append(ExpectedEvent("contact", (f"{side}_thumb_tip", f"{side}_{finger}_tip"), count=a.reps,
                                start_s=t0, end_s=tr.end, action=a.text))  # fmt: skip
    elif p in ("fist", "open_hand"):
        shape = "fist" if p == "fist" else "open"
        other = "open" if p == "fist" else "fist"
        _go(ctx, tr, a, ctx.shape_angles(shape), _rest_pos(ctx, dy=0.03), ORIENT["neutral"])
        for _ in range(a.reps - 1):
            tr.hold(ctx.dur(0.25, a)).to(ctx.dur(0.45, a), angles=ctx.shape_angles(other))
            tr.hold(ctx.dur(0.2, a)).to(ctx.dur(0.45, a), angles=ctx.shape_angles(shape))
        tr.hold(_hold_seconds(a, ctx.dur(0.6, a)))
        ev.append(ExpectedEvent("flexed" if p == "fist" else "extended", side=side, start_s=tr.end, end_s=tr.end,
                                action=a.text))  # fmt: skip
    elif p == "point":
        _go(ctx, tr, a, ctx.shape_angles("point"), _rest_pos(ctx, dy=0.06, dz=-0.08), ORIENT["point"])
        tr.hold(_hold_seconds(a, ctx.dur(0.8, a) * a.reps))
    elif p == "thumbs_up":
        _go(ctx, tr, a, ctx.shape_angles("thumbs_up"), _rest_pos(ctx, dy=0.06, dz=-0.03), ORIENT["thumb_up"])
        for _ in range(a.reps - 1):  # pump
            tr.to(ctx.dur(0.25, a), pos=tr.last.pos + [0, 0.03 * amp, 0]).to(ctx.dur(0.25, a), pos=tr.last.pos)
        tr.hold(_hold_seconds(a, ctx.dur(0.8, a)))
    elif p == "ok_sign":
        _go(ctx, tr, a, hand_shape("ok"), _rest_pos(ctx, dy=0.17, dz=0.03, dx=0.05), ORIENT["show"])
        tr.hold(_hold_seconds(a, ctx.dur(0.9, a) * a.reps))
        ev.append(ExpectedEvent("contact", (f"{side}_thumb_tip", f"{side}_index_tip"), count=1,
                                start_s=t0, end_s=tr.end, action=a.text))  # fmt: skip
    elif p == "count":
        pos = _rest_pos(ctx, dy=0.17, dz=0.03, dx=0.05)
        variant = a.variant or "5"
        if variant.startswith("show"):
            _go(ctx, tr, a, ctx.shape_angles(f"count_{variant[4:]}"), pos, ORIENT["show"])
            tr.hold(_hold_seconds(a, ctx.dur(1.0, a)))
        else:
            _go(ctx, tr, a, ctx.shape_angles("fist"), pos, ORIENT["show"])
            for n in range(1, int(variant) + 1):
                tr.to(ctx.dur(0.35, a), angles=ctx.shape_angles(f"count_{n}")).hold(ctx.dur(0.35, a))
    elif p == "wave":
        pos = _rest_pos(ctx, dy=0.20, dz=0.04, dx=0.07)
        _go(ctx, tr, a, ctx.shape_angles("open"), pos, ORIENT["show"])
        swing = np.deg2rad(22.0) * amp
        for _ in range(a.reps):
            tr.to(ctx.dur(0.28, a), dev=swing).to(ctx.dur(0.28, a), dev=-swing)
        tr.to(ctx.dur(0.2, a), dev=0.0)
    elif p == "piano":
        base = ctx.shape_angles("piano")
        _go(ctx, tr, a, base, _rest_pos(ctx, dy=-0.05, dz=-0.04), ORIENT["palm_down"])
        fingers = ["index", "middle", "ring", "pinky"]
        for r in range(a.reps):
            for f in fingers if r % 2 == 0 else fingers[::-1]:
                down = base.copy()
                down[angle_index(f"{f}_mcp")] += np.deg2rad(28.0) * amp
                down[angle_index(f"{f}_pip")] += np.deg2rad(8.0) * amp
                tr.to(ctx.dur(0.13, a), angles=down).to(ctx.dur(0.13, a), angles=base)
    elif p == "rub_fingers":
        _go(ctx, tr, a, hand_shape("rub_index"), _rest_pos(ctx, dy=0.02), orientation((-0.3, 0.3, -1), (-0.8, 0.3, 0)))
        for _ in range(a.reps):
            tr.to(ctx.dur(0.3, a), angles=hand_shape("rub_middle")).to(ctx.dur(0.3, a), angles=hand_shape("rub_index"))
        # the thumb slides index -> middle -> index: reps + 1 index contacts, reps middle contacts
        ev.append(ExpectedEvent("contact", (f"{side}_thumb_tip", f"{side}_index_tip"), count=a.reps + 1,
                                start_s=t0, end_s=tr.end, action=a.text))  # fmt: skip
        ev.append(ExpectedEvent("contact", (f"{side}_thumb_tip", f"{side}_middle_tip"), count=a.reps,
                                start_s=t0, end_s=tr.end, action=a.text))  # fmt: skip
    elif p == "flip":
        _go(ctx, tr, a, ctx.shape_angles("relaxed"), _rest_pos(ctx, dy=0.03), ORIENT["palm_down"])
        if a.variant == "up":
            tr.to(ctx.dur(0.7, a), roll=np.pi).hold(ctx.dur(0.4, a))
        else:
            for r in range(a.reps):
                tr.to(ctx.dur(0.65, a), roll=np.pi if r % 2 == 0 else 0.0).hold(ctx.dur(0.15, a))
    elif p == "rotate_wrist":
        _go(ctx, tr, a, ctx.shape_angles("relaxed"), _rest_pos(ctx, dy=0.03), ORIENT["neutral"])
        swing = np.deg2rad(55.0) * amp
        for _ in range(a.reps):
            tr.to(ctx.dur(0.45, a), roll=swing).to(ctx.dur(0.45, a), roll=-swing)
        tr.to(ctx.dur(0.35, a), roll=0.0)
    elif p == "write":
        pos = _rest_pos(ctx, dy=0.08, dz=-0.06)
        _go(ctx, tr, a, ctx.shape_angles("write"), pos, ORIENT["point"])
        size = 0.05 * amp
        for _ in range(a.reps):
            path = _write_path(a.variant or "scribble", size, ctx)
            tr.to(ctx.dur(2.2, a) if a.variant != "circle" else ctx.dur(1.6, a), path=path)
        tr.hold(ctx.dur(0.2, a))
    elif p == "grasp":
        variant = a.variant or "cylindrical"
        R = {"cylindrical": ORIENT["grasp_side"], "spherical": ORIENT["palm_down"], "lateral": ORIENT["grasp_side"]}[variant]
        reach = _rest_pos(ctx, dy=-0.04, dz=-0.08, dx=-0.02)
        _go(ctx, tr, a, ctx.shape_angles("open"), reach + [0, 0.05, 0.04], R)
        for r in range(a.reps):
            tr.to(ctx.dur(0.5, a), pos=reach)
            tr.to(ctx.dur(0.45, a), angles=ctx.shape_angles(f"grasp_{variant}", 1.0))
            tr.to(ctx.dur(0.55, a), pos=reach + [0, 0.07 * amp, 0]).hold(ctx.dur(0.3, a))
            if r < a.reps - 1:
                tr.to(ctx.dur(0.5, a), pos=reach).to(ctx.dur(0.35, a), angles=ctx.shape_angles("open"))
    elif p == "hold_still":
        tr.hold(_hold_seconds(a))
    else:  # pragma: no cover - the parser only produces known primitives
        raise ConfigError(f"primitive {p!r} is not one-handed")
    return ev


def _hold_seconds(a: Action, default: float | None = None) -> float:
    """'for 3 seconds' in the clause, else ``default`` (else one second per repetition)."""
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:s|sec|secs|second|seconds)\b", a.text)
    if m:
        return float(m.group(1))
    return 1.0 * a.reps if default is None else default


def _write_path(kind: str, size: float, ctx: _Ctx) -> np.ndarray:
    """(N, 3) closed path offsets in the frontal plane (x lateral, y up), starting and ending at 0."""
    s = np.linspace(0.0, 1.0, 97)
    if kind == "circle":
        ang = 2 * np.pi * s
        xy = np.stack([size * (np.cos(ang) - 1.0), size * np.sin(ang)], -1)
    elif kind == "square":
        corners = size * np.array([[0, 0], [-2, 0], [-2, 2], [0, 2], [0, 0]], dtype=np.float64)
        u = s * 4
        i = np.minimum(u.astype(int), 3)
        w = (u - i)[:, None]
        xy = (1 - w) * corners[i] + w * corners[i + 1]
    else:  # scribble: a smooth cursive-like stroke, seeded
        freqs = np.array([1.0, 2.0, 3.0, 5.0])
        ph = ctx.rng.uniform(0, 2 * np.pi, (2, 4))
        amps = size * np.array([[0.9, 0.45, 0.3, 0.15], [0.5, 0.6, 0.3, 0.2]])
        xy = np.stack(
            [np.sum(amps[j] * np.sin(2 * np.pi * freqs * s[:, None] + ph[j]), -1) for j in range(2)], -1
        )
        xy[:, 0] -= 2.2 * size * s  # writing moves across, toward the body midline
        xy = xy - xy[0] - s[:, None] * (xy[-1] - xy[0])  # closed: 0 at both ends
    return np.concatenate([xy, np.zeros((len(s), 1))], -1)


def _bimanual(ctx: _Ctx, a: Action, tracks: dict[str, _Track]) -> list[ExpectedEvent]:
    """Both hands, mirror-symmetric about the body midline; contacts placed with the capsule model.

    Known limit: ``interlock`` offsets the hands by half a finger spacing and brings them together until
    the capsules touch, which stops at the fingertips; fully interleaved fingers would need the soft
    tissue between the fingers to compress by more than the 5 mm interpenetration the composer allows.
    """
    p = a.primitive
    L, Rt = tracks["left"], tracks["right"]
    ev: list[ExpectedEvent] = []
    amp = a.amplitude * ctx.jit(0.1)

    def both(method: str, *args, **kwargs) -> None:
        getattr(L, method)(*args, **kwargs)
        getattr(Rt, method)(*args, **kwargs)

    if p in ("clap", "palms_together"):
        R = ORIENT["palm_medial"] if p == "clap" else ORIENT["pray"]
        q = ctx.shape_angles("flat", 1.0)
        y, z = -0.02 + ctx.pos_jitter()[1], -0.32 + ctx.pos_jitter()[2]
        if p == "palms_together":
            y += 0.06
        x_c = _place_lateral(ctx, q, R, np.array([0.0, y, z]))
        closed = np.array([x_c, y, z])
        opened = closed + [0.5 * CLAP_OPEN_M * amp, 0.0, 0.0]
        if p == "clap":
            dt = max(_transition(ctx, L, a, q, opened, R), _transition(ctx, Rt, a, q, opened, R))
            both("to", dt, angles=q, pos=opened, R=R, roll=0.0, dev=0.0)
            t_first = L.end
            for _ in range(a.reps):
                both("to", ctx.dur(0.2, a), pos=closed)
                ctx.contact_times.append(L.end)
                both("hold", 0.1)
                both("to", ctx.dur(0.26, a), pos=opened)
                both("hold", ctx.dur(0.06, a))
            ev.append(ExpectedEvent("contact", ("left_palm", "right_palm"), count=a.reps, start_s=t_first,
                                    end_s=L.end, action=a.text))  # fmt: skip
        else:
            dt = max(_transition(ctx, L, a, q, opened, R), _transition(ctx, Rt, a, q, opened, R))
            both("to", dt, angles=q, pos=opened, R=R, roll=0.0, dev=0.0)
            t_first = L.end
            both("to", ctx.dur(0.5, a), pos=closed)
            both("hold", _hold_seconds(a, max(ctx.dur(1.2, a), 0.3) * a.reps))
            both("to", ctx.dur(0.4, a), pos=opened)
            ev.append(ExpectedEvent("contact", ("left_palm", "right_palm"), count=1, start_s=t_first,
                                    end_s=L.end, action=a.text))  # fmt: skip
    elif p in ("touch_fingertips", "interlock"):
        R = ORIENT["steeple"]
        shape = "steeple" if p == "touch_fingertips" else "interlock"
        q = ctx.shape_angles(shape, 1.0)
        y, z = 0.0 + ctx.pos_jitter()[1], -0.30 + ctx.pos_jitter()[2]
        # interlocked fingers sit between each other: shift the hands by half a finger spacing
        off = None if p == "touch_fingertips" else np.array([0.0, 0.0095, 0.0])
        x_c = _place_lateral(ctx, q, R, np.array([0.0, y, z]), offset_right=off)
        closed = np.array([x_c, y, z])
        opened = closed + [0.06 * amp if p == "touch_fingertips" else 0.10, 0.0, 0.0]
        offs = {"left": np.zeros(3), "right": np.zeros(3)}
        if off is not None:
            offs = {"left": _mirror(-off), "right": off}
        dt = max(_transition(ctx, L, a, q, opened, R), _transition(ctx, Rt, a, q, opened, R))
        for s, tr in tracks.items():
            tr.to(dt, angles=q, pos=opened + offs[s], R=R, roll=0.0, dev=0.0)
        t_first = L.end
        reps = a.reps if p == "touch_fingertips" else 1
        for _ in range(reps):
            for s, tr in tracks.items():
                tr.to(ctx.dur(0.45, a), pos=closed + offs[s])
            ctx.contact_times.append(L.end)
            both("hold", ctx.dur(0.6, a) if p == "touch_fingertips" else ctx.dur(1.2, a))
            for s, tr in tracks.items():
                tr.to(ctx.dur(0.4, a), pos=opened + offs[s])
        if p == "touch_fingertips":
            ev.append(ExpectedEvent("contact", ("left_any_tip", "right_any_tip"), count=reps, start_s=t_first,
                                    end_s=L.end, action=a.text))  # fmt: skip
    elif p == "handover":
        ev.extend(_handover(ctx, a, tracks))
    else:  # pragma: no cover
        raise ConfigError(f"primitive {p!r} is not bimanual")
    return ev


def _handover(ctx: _Ctx, a: Action, tracks: dict[str, _Track]) -> list[ExpectedEvent]:
    """The first side of ``a.sides`` carries an object to the body midline and the other side takes it."""
    giver, taker = a.sides
    G, T = tracks[giver], tracks[taker]
    R = ORIENT["grasp_side"]
    q_grasp = ctx.shape_angles("grasp_cylindrical", 1.0)
    k = ctx.fk(q_grasp)
    centre_h = np.mean(k[[2, 5, 11, 16]], axis=0)  # inside the grip, hand frame
    centre_side = R @ centre_h
    obj_y, obj_z = -0.03, -0.36
    # giver holds the upper part of the object; the taker grips below it, as close as the hands allow
    at_mid = {giver: np.array([-centre_side[0], obj_y + 0.04 - centre_side[1], obj_z - centre_side[2]])}
    g_world = _pose_points(ctx, q_grasp, at_mid[giver], R)
    if giver == "left":
        g_world = _mirror(g_world)
    drops = np.linspace(0.04, 0.20, 41)  # 4 mm steps
    drop = 0.0
    q_open = ctx.shape_angles("open")
    for q, dx in ((q_grasp, 0.0), (q_open, 0.0), (q_open, 0.05)):  # gripping, and opened on the way in
        t_side = _pose_points(ctx, q, at_mid[giver] + [dx, 0.0, 0.0], R)[None] - np.stack(
            [np.zeros_like(drops), drops, np.zeros_like(drops)], -1
        )[:, None, :]
        t_world = _mirror(t_side) if taker == "left" else t_side
        ok = hand_clearance(np.broadcast_to(g_world, t_world.shape), t_world) >= 0.003
        drop = max(drop, float(drops[np.argmax(ok)]) if ok.any() else float(drops[-1]))
    at_mid[taker] = at_mid[giver] - np.array([0.0, drop, 0.0])
    start = at_mid[giver] + [0.14, 0.0, 0.03]
    _go(ctx, G, a, q_grasp, start, R)
    G.hold(ctx.dur(0.3, a))
    T.wait_until(G.end)
    G.to(ctx.dur(0.8, a), pos=at_mid[giver])
    T.to(ctx.dur(0.8, a), angles=q_open, pos=at_mid[taker] + [0.05, 0.0, 0.0], R=R, roll=0.0, dev=0.0)
    T.to(ctx.dur(0.4, a), pos=at_mid[taker]).to(ctx.dur(0.4, a), angles=q_grasp)
    G.wait_until(T.end)
    G.to(ctx.dur(0.4, a), angles=ctx.shape_angles("open"))
    T.hold(ctx.dur(0.4, a))
    G.to(ctx.dur(0.6, a), pos=REST_WRIST_POS + ctx.pos_jitter(), angles=ctx.shape_angles("relaxed"), R=ORIENT["neutral"])
    T.to(ctx.dur(0.6, a), pos=at_mid[taker] + [0.12, 0.0, 0.03])
    return []


# ---------------------------------------------------------------------------------------------


def _initial_key(ctx: _Ctx) -> _Key:
    return _Key(t=0.0, angles=ctx.shape_angles("relaxed"), pos=REST_WRIST_POS + ctx.pos_jitter(), R=ORIENT["neutral"])


def compose(
    plan: Plan,
    seed: int = 0,
    seconds: float | None = None,
    config: ComposerConfig | None = None,
    contact_keyframes: Sequence[ContactKeyframe] = (),
) -> Composition:
    """Turn a parsed plan into a motion (both hands present; a hand the prompt leaves idle rests).

    seconds: total duration; the natural timing is stretched or compressed (0.5x..1.5x) and the end
    held to reach it. Raises :class:`ConfigError` if the actions cannot fit.
    contact_keyframes: when given, the motion is made of exactly these contacts, each closing at its
    ``time_s`` (timing is exact: ``seconds`` may only extend the motion); the prompt is the caption.
    """
    cfg = config or ComposerConfig()
    ctx = _Ctx(cfg, seed)
    tracks = {s: _Track(_initial_key(ctx)) for s in SIDES}
    lead = 0.3 * ctx.jit(0.2)
    for tr in tracks.values():
        tr.wait_until(lead)
    expected: list[ExpectedEvent] = []
    if contact_keyframes:
        expected = _keyframed(ctx, tracks, contact_keyframes)
    for step in plan.steps if not contact_keyframes else ():
        t_step = max(tr.end for tr in tracks.values())
        for tr in tracks.values():
            tr.wait_until(t_step)
        for action in step.actions:
            if len(action.sides) == 2 and action.primitive in (
                "clap", "palms_together", "touch_fingertips", "interlock", "handover"
            ):  # fmt: skip
                expected.extend(_bimanual(ctx, action, tracks))
            else:
                for side in action.sides:
                    expected.extend(_single(ctx, action, side, tracks[side]))
    t_end = max(tr.end for tr in tracks.values()) + 0.3 * ctx.jit(0.2)
    for tr in tracks.values():
        tr.wait_until(t_end)

    natural = t_end
    scale = 1.0
    if seconds is not None:
        seconds = _check_seconds(seconds, cfg)
        scale = 1.0 if contact_keyframes else float(np.clip(seconds / natural, 0.5, 1.5))
        if natural * scale > seconds + 1e-9:
            least = natural if contact_keyframes else natural * 0.5
            raise ConfigError(
                f"prompt {plan.prompt!r} needs at least {least:.1f} s (natural {natural:.1f} s) but "
                f"seconds={seconds:g} was asked; ask for more time or fewer repetitions"
            )
        for tr in tracks.values():
            for k in tr.keys:
                k.t *= scale
            tr.wait_until(seconds)
        expected = [dataclasses.replace(e, start_s=e.start_s * scale, end_s=e.end_s * scale) for e in expected]
    total = seconds if seconds is not None else natural
    if total > cfg.max_seconds:
        raise ConfigError(
            f"prompt {plan.prompt!r} makes a {total:.0f} s motion; the maximum is {cfg.max_seconds:.0f} s: "
            "ask for fewer repetitions or split the prompt"
        )
    n = max(2, int(round(total * cfg.fps)) + 1)
    times = np.arange(n) / cfg.fps
    joints = np.zeros((n, 2, 21, 3), dtype=np.float32)
    for h, side in enumerate(SIDES):
        pts = _sample_track(ctx, tracks[side], times)
        joints[:, h] = _mirror(pts) if side == "left" else pts
    joints += _body_sway(ctx, times)[:, None, None, :]
    motion = BimanualMotion(
        joints=joints, fps=cfg.fps, text=plan.prompt, frame=FRAME_HANDX_YUP, source="generator:composer"
    )
    log.debug("composed %d frames (%.2f s, natural %.2f s, scale %.2f) for %r", n, total, natural, scale, plan.prompt)
    return Composition(motion=motion, plan=plan, expected=tuple(expected))


def _keyframe_action(kf: ContactKeyframe) -> Action:
    (sa, pa), (sb, pb) = (p.split("_", 1) for p in kf.parts)
    if sa == sb and {pa, pb} != {"palm"} and "thumb_tip" in (pa, pb) and "palm" not in (pa, pb):
        finger = (pb if pa == "thumb_tip" else pa).removesuffix("_tip")
        if finger != "thumb":
            return Action("pinch", (sa,), finger=finger, text=f"keyframe {kf.parts}")
    if sa != sb and pa == pb == "palm":
        return Action("clap", ("left", "right"), text=f"keyframe {kf.parts}")
    if sa != sb and pa.endswith("_tip") and pb.endswith("_tip"):
        return Action("touch_fingertips", ("left", "right"), text=f"keyframe {kf.parts}")
    raise ConfigError(
        f"contact keyframe {kf.parts} at {kf.time_s:g} s is not supported; supported pairs: a thumb tip with "
        "another fingertip of the same hand, left_palm + right_palm, a left fingertip + a right fingertip"
    )


def _keyframed(ctx: _Ctx, tracks: dict[str, _Track], keyframes: Sequence[ContactKeyframe]) -> list[ExpectedEvent]:
    """Build one contact per keyframe and shift it in time so that the contact closes at ``time_s``."""
    expected: list[ExpectedEvent] = []
    for kf in keyframes:
        action = _keyframe_action(kf)
        t_step = max(tr.end for tr in tracks.values())
        for tr in tracks.values():
            tr.wait_until(t_step)
        n_before = {s: len(tr.keys) for s, tr in tracks.items()}
        n_contacts = len(ctx.contact_times)
        if len(action.sides) == 2:
            events = _bimanual(ctx, action, tracks)
        else:
            events = _single(ctx, action, action.sides[0], tracks[action.sides[0]])
        shift = kf.time_s - ctx.contact_times[n_contacts]
        if shift < -1e-6:
            raise ConfigError(
                f"contact keyframe {kf.parts} at {kf.time_s:g} s is too early: reaching it from the previous "
                f"contact takes until {ctx.contact_times[n_contacts]:.2f} s; space the keyframes further apart"
            )
        for s, tr in tracks.items():
            for k in tr.keys[n_before[s]:]:
                k.t += shift
        ctx.contact_times[n_contacts:] = [t + shift for t in ctx.contact_times[n_contacts:]]
        expected.extend(dataclasses.replace(e, start_s=e.start_s + shift, end_s=e.end_s + shift) for e in events)
    return expected


def _body_sway(ctx: _Ctx, times: np.ndarray) -> np.ndarray:
    """(T, 3) slow common sway of both hands (breathing, posture), a few millimetres, seeded.

    The same translation for both hands keeps every contact, within and between the hands, intact.
    """
    if ctx.var <= 0:
        return np.zeros((len(times), 3), dtype=np.float32)
    freq = ctx.rng.uniform(0.12, 0.3, 3)
    phase = ctx.rng.uniform(0.0, 2 * np.pi, 3)
    amp = ctx.var * np.array([0.002, 0.003, 0.002])
    # starts at zero so that a motion begins exactly in its first keyframe
    sway = amp * (np.sin(2 * np.pi * freq * times[:, None] + phase) - np.sin(phase))
    return sway.astype(np.float32)


def _check_seconds(seconds: float, cfg: ComposerConfig) -> float:
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise ConfigError(f"seconds is {seconds!r}; pass a number of seconds > 0") from None
    if not np.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"seconds is {seconds}; allowed: > 0 and <= {cfg.max_seconds:g}")
    if seconds > cfg.max_seconds:
        raise ConfigError(
            f"seconds is {seconds:g}; the maximum is {cfg.max_seconds:g} s ({cfg.max_seconds / 60:g} min): "
            "generate shorter pieces and stitch them (long-horizon mode)"
        )
    return seconds


def _so3_log(R: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(..., 3)`` (axis * angle, radians) of rotation matrices ``(..., 3, 3)``."""
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    theta = np.arccos(cos)
    v = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    sin = np.sin(theta)
    scale = np.where(sin > 1e-6, theta / (2.0 * np.maximum(sin, 1e-12)), 0.5)
    out = v * scale[..., None]
    near_pi = theta > np.pi - 1e-4
    if np.any(near_pi):  # axis from the symmetric part: R + I = 2 a a^T at theta = pi
        B = (R[near_pi] + np.eye(3)) / 2.0
        i = np.argmax(np.diagonal(B, axis1=-2, axis2=-1), axis=-1)
        col = np.take_along_axis(B, i[:, None, None].repeat(3, axis=1), axis=2)[..., 0]
        axis = col / np.linalg.norm(col, axis=-1, keepdims=True)
        out[near_pi] = axis * theta[near_pi][:, None]
    return out


def _so3_exp(w: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of rotation vectors ``(..., 3)`` (Rodrigues)."""
    theta = np.linalg.norm(w, axis=-1)
    safe = np.maximum(theta, 1e-12)
    k = w / safe[..., None]
    K = np.zeros(w.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
    s, c = np.sin(theta)[..., None, None], np.cos(theta)[..., None, None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def _sample_track(ctx: _Ctx, tr: _Track, times: np.ndarray) -> np.ndarray:
    """(T, 21, 3) side-frame keypoints of a track sampled at ``times`` (seconds)."""
    keys = tr.keys
    kt = np.array([k.t for k in keys])
    seg = np.clip(np.searchsorted(kt, times, side="right") - 1, 0, len(keys) - 2)
    span = np.maximum(kt[seg + 1] - kt[seg], 1e-9)
    s = min_jerk((times - kt[seg]) / span)[:, None]
    A = np.stack([k.angles for k in keys])
    P = np.stack([k.pos for k in keys])
    sc = np.array([[k.roll, k.dev] for k in keys])
    angles = A[seg] + s * (A[seg + 1] - A[seg])
    pos = P[seg] + s * (P[seg + 1] - P[seg])
    roll_dev = sc[seg] + s * (sc[seg + 1] - sc[seg])
    for j in np.unique(seg):
        path = keys[j + 1].path
        if path is not None:
            m = seg == j
            u = s[m, 0] * (len(path) - 1)
            i0 = np.clip(np.floor(u).astype(int), 0, len(path) - 2)
            w = (u - i0)[:, None]
            pos[m] += (1 - w) * path[i0] + w * path[i0 + 1]
    Rk = np.stack([k.R for k in keys])
    rel = _so3_log(np.swapaxes(Rk[:-1], -1, -2) @ Rk[1:])  # (K-1, 3) segment rotations, start key's frame
    R_base = Rk[seg] @ _so3_exp(rel[seg] * s)
    R = R_base @ rot_y(roll_dev[:, 0]) @ rot_z(roll_dev[:, 1])
    local = forward_kinematics(angles, ctx.shape)
    return pos[:, None, :] + np.einsum("tij,tkj->tki", R, local)
