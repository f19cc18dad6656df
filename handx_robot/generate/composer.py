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

Module map: :mod:`~handx_robot.generate.keyframes` (tracks and their sampling),
:mod:`~handx_robot.generate.placement` (rest pose, orientations, contact placement),
:mod:`~handx_robot.generate.context` (seeded state and shared moves),
:mod:`~handx_robot.generate.primitives` (one-handed actions), :mod:`~handx_robot.generate.bimanual`
(two-handed actions); this module sequences a plan's steps and renders the tracks.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.frames import FRAME_HANDX_YUP
from handx_robot.generate.base import ContactKeyframe
from handx_robot.generate.bimanual import BIMANUAL, CLAP_OPEN_M, bimanual
from handx_robot.generate.compositional import COMPOSITIONAL, apply_keep
from handx_robot.generate.context import ComposeContext
from handx_robot.generate.events import ExpectedEvent
from handx_robot.generate.handmodel import HandShape
from handx_robot.generate.keyframes import Key, Track, min_jerk, mirror_x, sample_track
from handx_robot.generate.parser import Action, Plan
from handx_robot.generate.placement import CONTACT_SQUEEZE_M, ORIENT, REST_WRIST_POS, orientation
from handx_robot.generate.primitives import AMPLITUDE_JITTER, one_handed
from handx_robot.motion import SIDES, BimanualMotion

__all__ = [
    "CLAP_OPEN_M",
    "CONTACT_SQUEEZE_M",
    "REST_WRIST_POS",
    "ComposerConfig",
    "Composition",
    "compose",
    "min_jerk",
    "orientation",
]

log = logging.getLogger(__name__)

#: Rest before the first action and after the last, seconds (jittered by ±LEAD_JITTER at variation 1).
LEAD_IN_S = 0.3
LEAD_OUT_S = 0.3
LEAD_JITTER = 0.2
#: Range of the time scale applied to the natural timing to reach a requested duration.
SECONDS_SCALE_RANGE = (0.5, 1.5)
#: Common body sway of both hands at variation 1: frequency range, Hz, and amplitude per axis, metres.
SWAY_FREQ_HZ = (0.12, 0.3)
SWAY_AMP_M = (0.002, 0.003, 0.002)


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
    step_times: tuple[tuple[float, float], ...] = ()

    def parse_report(self) -> dict:
        """What the prompt was understood as (JSON-able): per step its time and per hand its actions,
        the promised events, the unused words and the notes."""
        steps = []
        for i, step in enumerate(self.plan.steps):
            t0, t1 = self.step_times[i] if i < len(self.step_times) else (None, None)
            hands: dict[str, list] = {}
            for a in step.actions:
                for side in a.sides:
                    hands.setdefault(side, []).append(_action_dict(a, side))
            steps.append({"start_s": None if t0 is None else round(t0, 3), "end_s": None if t1 is None else round(t1, 3),
                          "hands": hands})  # fmt: skip
        return {
            "prompt": self.plan.prompt,
            "steps": steps,
            "events": [e.describe() for e in self.expected],
            "unused": list(self.plan.unused),
            "notes": list(self.plan.notes),
        }

    def parse_text(self) -> str:
        """:meth:`parse_report` as lines of text."""
        rep = self.parse_report()
        lines = ["understood:"]
        for i, st in enumerate(rep["steps"], 1):
            span = "" if st["start_s"] is None else f" ({st['start_s']:.2f}–{st['end_s']:.2f} s)"
            lines.append(f"  step {i}{span}:")
            for side, acts in st["hands"].items():
                lines.append(f"    {side} hand: " + "; ".join(a["summary"] for a in acts))
        lines.append("  promised events: " + ("none" if not rep["events"] else ""))
        lines.extend(f"    {e}" for e in rep["events"])
        lines.append("  not used: " + (", ".join(repr(w) for w in rep["unused"]) if rep["unused"] else "nothing"))
        lines.extend(f"  note: {n}" for n in rep["notes"])
        return "\n".join(lines)


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
    ctx = ComposeContext(cfg.variation, cfg.hand_scale, seed)
    tracks = {s: Track(_initial_key(ctx)) for s in SIDES}
    step_times: list[tuple[float, float]] = []
    lead = LEAD_IN_S * ctx.jit(LEAD_JITTER)
    for tr in tracks.values():
        tr.wait_until(lead)
    if contact_keyframes:
        expected = _keyframed(ctx, tracks, contact_keyframes)
    else:
        expected = _sequence(ctx, plan, tracks, step_times)
    natural = max(tr.end for tr in tracks.values()) + LEAD_OUT_S * ctx.jit(LEAD_JITTER)
    for tr in tracks.values():
        tr.wait_until(natural)
    total, scale, expected = _fit_seconds(plan, tracks, expected, natural, seconds, cfg, bool(contact_keyframes))
    motion = _render(ctx, tracks, total, cfg, plan.prompt)
    log.debug(
        "composed %d frames (%.2f s, natural %.2f s, scale %.2f) for %r",
        motion.num_frames, total, natural, scale, plan.prompt,
    )  # fmt: skip
    steps = tuple((t0 * scale, t1 * scale) for t0, t1 in step_times)
    return Composition(motion=motion, plan=plan, expected=tuple(expected), step_times=steps)


def _action_dict(a: Action, side: str) -> dict:
    """One action of one hand, JSON-able, with a one-line summary in the grammar's words."""
    bits = [a.primitive.replace("_", " ")]
    if a.variant and a.primitive in ("shape", "grasp", "write", "count"):
        bits.append(a.variant.replace("_", " "))
    if a.parts:
        bits.append(f"{a.style or 'touch'}: " + " on ".join(p.replace("_", " ") for p in a.parts))
    if a.fingers and a.primitive in ("fingers", "keep", "shape"):
        bits.append("(" + ", ".join(f"{f} {s}" for f, s in a.fingers) + ")")
    if a.finger:
        bits.append(f"thumb with {a.finger}")
    if a.direction:
        bits.append(a.direction)
    if a.obj:
        bits.append(f"a {a.obj}")
    if a.primitive == "handover":
        bits.append("gives" if side == a.sides[0] else "takes")
    if a.reps > 1:
        bits.append(f"x{a.reps}")
    if a.hold_s:
        bits.append(f"for {a.hold_s:g} s")
    if a.speed != 1.0:
        bits.append(f"speed x{a.speed:.2g}")
    if a.amplitude != 1.0:
        bits.append(f"size x{a.amplitude:.2g}")
    if a.matched_by != "keyword":
        bits.append(f"(by similarity {a.score:.2f})")
    return {
        "primitive": a.primitive, "reps": a.reps, "parts": list(a.parts), "fingers": [list(f) for f in a.fingers],
        "direction": a.direction, "object": a.obj, "style": a.style, "variant": a.variant, "finger": a.finger,
        "hold_s": a.hold_s, "speed": a.speed, "amplitude": a.amplitude, "clause": a.text, "summary": " ".join(bits),
    }  # fmt: skip


def _initial_key(ctx: ComposeContext) -> Key:
    return Key(t=0.0, angles=ctx.shape_angles("relaxed"), pos=REST_WRIST_POS + ctx.pos_jitter(), R=ORIENT["neutral"])


def _sync(tracks: dict[str, Track]) -> None:
    """Both tracks wait until the later one ends (the start of the next step)."""
    t_step = max(tr.end for tr in tracks.values())
    for tr in tracks.values():
        tr.wait_until(t_step)


def _perform(ctx: ComposeContext, action: Action, tracks: dict[str, Track]) -> list[ExpectedEvent]:
    """Animate one action: a two-handed primitive on both tracks, else the primitive on each of its hands."""
    if action.primitive in COMPOSITIONAL:
        kind, fn = COMPOSITIONAL[action.primitive]
        amp = action.amplitude * ctx.jit(AMPLITUDE_JITTER)
        if kind == "two":
            return fn(ctx, action, tracks, amp)
        return [e for side in action.sides for e in fn(ctx, action, side, tracks[side], amp)]
    if len(action.sides) == 2 and action.primitive in BIMANUAL:
        return bimanual(ctx, action, tracks)
    events: list[ExpectedEvent] = []
    for side in action.sides:
        events.extend(one_handed(ctx, action, side, tracks[side]))
    return events


def _sequence(ctx: ComposeContext, plan: Plan, tracks: dict[str, Track], step_times: list) -> list[ExpectedEvent]:
    """The plan's steps one after another; the actions of a step run at the same time."""
    expected: list[ExpectedEvent] = []
    for step in plan.steps:
        _sync(tracks)
        start = {s: len(tr.keys) for s, tr in tracks.items()}
        keeps = [a for a in step.actions if a.primitive == "keep"]
        for action in step.actions:
            if action.primitive != "keep":
                expected.extend(_perform(ctx, action, tracks))
        if keeps:
            _sync(tracks)
            for a in keeps:
                for side in a.sides:
                    expected.extend(apply_keep(a, side, tracks[side], start[side]))
        step_times.append((min(tracks[s].keys[start[s] - 1].t for s in tracks), max(tr.end for tr in tracks.values())))
    return expected


def _fit_seconds(plan: Plan, tracks: dict[str, Track], expected: list[ExpectedEvent], natural: float,
                 seconds: float | None, cfg: ComposerConfig, keyframed: bool):  # fmt: skip
    """Scale the tracks' timing (not for keyframes) and hold the end to reach ``seconds``.

    Returns ``(total seconds, time scale, expected events on the new timing)``; raises
    :class:`ConfigError` when the motion cannot fit ``seconds`` or is longer than ``cfg.max_seconds``.
    """
    scale = 1.0
    if seconds is not None:
        seconds = _check_seconds(seconds, cfg)
        scale = 1.0 if keyframed else float(np.clip(seconds / natural, *SECONDS_SCALE_RANGE))
        if natural * scale > seconds + 1e-9:
            least = natural if keyframed else natural * SECONDS_SCALE_RANGE[0]
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
    return total, scale, expected


def _render(ctx: ComposeContext, tracks: dict[str, Track], total: float, cfg: ComposerConfig,
            prompt: str) -> BimanualMotion:  # fmt: skip
    """Sample both tracks at ``cfg.fps`` over ``total`` seconds, in the world, with the body sway added.

    joints: (T, 2, 21, 3) float32, metres, HandX frame (Y-up); axis 1 = (left, right).
    """
    n = max(2, int(round(total * cfg.fps)) + 1)
    times = np.arange(n) / cfg.fps
    joints = np.zeros((n, 2, 21, 3), dtype=np.float32)
    for h, side in enumerate(SIDES):
        pts = sample_track(tracks[side], times, ctx.shape)
        joints[:, h] = mirror_x(pts) if side == "left" else pts
    joints += _body_sway(ctx, times)[:, None, None, :]
    return BimanualMotion(joints=joints, fps=cfg.fps, text=prompt, frame=FRAME_HANDX_YUP, source="generator:composer")


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


def _keyframed(ctx: ComposeContext, tracks: dict[str, Track], keyframes: Sequence[ContactKeyframe]) -> list[ExpectedEvent]:
    """Build one contact per keyframe and shift it in time so that the contact closes at ``time_s``."""
    expected: list[ExpectedEvent] = []
    for kf in keyframes:
        action = _keyframe_action(kf)
        _sync(tracks)
        n_before = {s: len(tr.keys) for s, tr in tracks.items()}
        n_contacts = len(ctx.contact_times)
        events = _perform(ctx, action, tracks)
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


def _body_sway(ctx: ComposeContext, times: np.ndarray) -> np.ndarray:
    """(T, 3) slow common sway of both hands (breathing, posture), a few millimetres, seeded.

    The same translation for both hands keeps every contact, within and between the hands, intact.
    """
    if ctx.var <= 0:
        return np.zeros((len(times), 3), dtype=np.float32)
    freq = ctx.rng.uniform(*SWAY_FREQ_HZ, 3)
    phase = ctx.rng.uniform(0.0, 2 * np.pi, 3)
    amp = ctx.var * np.array(SWAY_AMP_M)
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
