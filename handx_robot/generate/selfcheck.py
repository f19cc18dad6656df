"""Self-check: does a generated motion contain the events its prompt promised?

The motion is run through the motion-data feature extractor (:mod:`handx_robot.features`:
``contact_events``, ``compute_features``, ``describe``), never through a detector of our own, and each
:class:`~handx_robot.generate.events.ExpectedEvent` is compared with what it finds:

* ``contact``: the number of detected contact events between the two parts that start inside the
  promised window (± :data:`WINDOW_MARGIN_S`) equals ``count``; ``{side}_any_tip`` matches any fingertip;
* ``flexed`` / ``extended``: the hand's openness (1 = straight fingers, ~0.3 = fist) at the window end
  is below :data:`FLEXED_OPENNESS` / above :data:`EXTENDED_OPENNESS`.

The events of the compositional grammar are checked against the gesture observer
(:func:`handx_robot.gestures.observe`, :func:`handx_robot.gestures.finger_states`), which reads the same
keypoints without knowing how they were made:

* ``shape``: each named finger is in its state on at least :data:`SHAPE_MIN_SHARE` of the frames of the
  middle of the window (thumbs up / down: the thumb tip above / below its MCP);
* ``motion``: a move in the promised direction of at least ``value`` metres, or ``count`` cycles of the
  circle / wave / shake / twist / flip, observed overlapping the window;
* ``palm``: the palm observed facing ``detail`` overlapping the window's second half;
* ``grip`` / ``spacing``: a grip aperture / palm spacing within :data:`SIZE_TOLERANCE` of ``value``;
* ``contact`` with a style (tap, touch, press, rub, slide): ``count`` observed contacts of the two parts
  starting in the window; press: each lasts ``min_hold_s``; rub / slide: it slides ``slide_m``; hold: a
  contact of the two parts lasts through the window (however long before it began).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from handx_robot.errors import HandXError
from handx_robot.generate.events import ExpectedEvent
from handx_robot.motion import SIDES, BimanualMotion

__all__ = [
    "WINDOW_MARGIN_S",
    "FLEXED_OPENNESS",
    "EXTENDED_OPENNESS",
    "CheckResult",
    "SelfCheckReport",
    "SelfCheckError",
    "self_check",
]

log = logging.getLogger(__name__)

WINDOW_MARGIN_S = 0.25
#: An observed oscillation may start this long before its promised window (the observer dates it from
#: its first extremum minus one swing).
OSCILLATION_LEAD_S = 0.6
#: Share of the window's middle frames on which a promised finger state must hold.
SHAPE_MIN_SHARE = 0.8
#: A pointing index (MCP -> tip) must be at least this aligned (cosine) with the promised direction.
POINT_MIN_COS = 0.7
_POINT_DIRECTIONS = {"forward": (0, 0, -1), "up": (0, 1, 0), "down": (0, -1, 0), "right": (1, 0, 0), "left": (-1, 0, 0)}
#: Relative tolerance of a promised grip aperture or palm spacing.
SIZE_TOLERANCE = 0.35
FLEXED_OPENNESS = 0.55
EXTENDED_OPENNESS = 0.85


class SelfCheckError(HandXError, RuntimeError):
    """A generated motion does not contain the events its prompt promised."""


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One promised event and what the feature extractor found."""

    expected: ExpectedEvent
    ok: bool
    found: float
    message: str


@dataclasses.dataclass(frozen=True)
class SelfCheckReport:
    """Results of :func:`self_check`; ``description`` is :func:`handx_robot.features.describe` of the motion."""

    results: tuple[CheckResult, ...]
    description: str

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def failures(self) -> list[str]:
        return [r.message for r in self.results if not r.ok]

    def summary(self) -> str:
        lines = [("ok   " if r.ok else "FAIL ") + r.message for r in self.results]
        return "\n".join(lines) if lines else "no events promised"


def _matches(part: str, name: str) -> bool:
    if part.endswith("_any_tip"):
        return name.startswith(part.removesuffix("any_tip")) and name.endswith("_tip")
    return part == name


def self_check(motion: BimanualMotion, expected: tuple[ExpectedEvent, ...] | list[ExpectedEvent]) -> SelfCheckReport:
    """Check ``expected`` events against the feature extractor's view of ``motion``."""
    from handx_robot import features

    feats = features.compute_features(motion)
    events = list(feats.events)
    results = []
    observed = None
    for exp in expected:
        if exp.kind in _OBSERVED_KINDS or (exp.kind == "contact" and (exp.style or _grammar_parts(exp.parts))):
            if observed is None:
                from handx_robot import gestures

                observed = gestures.observe(motion)
            results.append(_check_observed(motion, exp, observed))
            continue
        if exp.kind == "contact":
            pa, pb = exp.parts
            lo, hi = exp.start_s - WINDOW_MARGIN_S, exp.end_s + WINDOW_MARGIN_S
            hits = [
                ev
                for ev in events
                if lo <= ev.start <= hi
                and ((_matches(pa, ev.a) and _matches(pb, ev.b)) or (_matches(pa, ev.b) and _matches(pb, ev.a)))
            ]
            # several fingertip pairs touching at once are one touch of the hands
            n = len(_merge_overlapping(hits)) if (pa.endswith("_any_tip") or pb.endswith("_any_tip")) else len(hits)
            ok = n == exp.count
            msg = f"{exp.describe()}: found {n}"
            results.append(CheckResult(exp, ok, float(n), msg))
        else:
            h = SIDES.index(exp.side)
            i = int(np.clip(round(exp.end_s * motion.fps), 0, motion.num_frames - 1))
            value = float(feats.openness[i, h])
            ok = value < FLEXED_OPENNESS if exp.kind == "flexed" else value > EXTENDED_OPENNESS
            bound = f"< {FLEXED_OPENNESS}" if exp.kind == "flexed" else f"> {EXTENDED_OPENNESS}"
            msg = f"{exp.describe()}: openness {value:.2f} (needs {bound})"
            results.append(CheckResult(exp, ok, value, msg))
    report = SelfCheckReport(tuple(results), features.describe(motion, feats))
    for r in results:
        if not r.ok:
            log.debug("self-check failed: %s", r.message)
    return report


def _merge_overlapping(events: list) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    for ev in sorted(events, key=lambda e: e.start):
        if spans and ev.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], ev.end))
        else:
            spans.append((ev.start, ev.end))
    return spans


def _grammar_parts(parts) -> bool:
    """Parts only the gesture observer monitors (back of the hand, knuckles, wrist)."""
    return any(p.endswith(("_back", "_knuckles", "_wrist")) for p in parts)


_OBSERVED_KINDS = frozenset({"shape", "motion", "palm", "grip", "spacing"})
_COUNTED = frozenset({"circle", "wave", "shake", "twist", "flip"})


def _overlaps(o, exp: ExpectedEvent, margin: float = WINDOW_MARGIN_S) -> bool:
    return o.start <= exp.end_s + margin and o.end >= exp.start_s - margin


def _check_observed(motion: BimanualMotion, exp: ExpectedEvent, observed) -> CheckResult:
    """One promised event of the grammar against the gesture observer."""
    if exp.kind == "shape":
        return _check_shape(motion, exp)
    if exp.kind == "contact":
        pair = set(exp.parts)
        if exp.style == "hold":  # a contact held over the window, however long before it began
            held = [o for o in observed if o.kind == "contact" and set(o.parts) == pair and _overlaps(o, exp, 0.0)]
            return CheckResult(exp, bool(held), float(len(held)), f"{exp.describe()}: held {'yes' if held else 'no'}")
        hits = [o for o in observed if o.kind == "contact" and set(o.parts) == pair
                and exp.start_s - WINDOW_MARGIN_S <= o.start <= exp.end_s + WINDOW_MARGIN_S]  # fmt: skip
        n = len(hits)
        ok = n == exp.count
        extra = ""
        if ok and exp.min_hold_s > 0:
            shortest = min(o.end - o.start for o in hits)
            ok = shortest >= exp.min_hold_s
            extra = f", shortest {shortest:.2f} s (needs >= {exp.min_hold_s:.2f})"
        if ok and exp.slide_m > 0:
            slide = max(o.slide_m for o in hits)
            ok = slide >= exp.slide_m
            extra = f", slides {slide * 100:.1f} cm (needs >= {exp.slide_m * 100:.1f})"
        return CheckResult(exp, ok, float(n), f"{exp.describe()}: found {n}{extra}")
    if exp.kind == "motion":
        if exp.detail in _COUNTED:
            hits = [o for o in observed if o.kind == exp.detail and o.side == exp.side
                    and exp.start_s - OSCILLATION_LEAD_S <= o.start <= exp.end_s]  # fmt: skip
            n = sum(o.count for o in hits)
            ok = n == exp.count
            return CheckResult(exp, ok, float(n), f"{exp.describe()}: observed {n}")
        hits = [o for o in observed if o.kind == "move" and o.side == exp.side and o.detail == exp.detail
                and _overlaps(o, exp, 0.1)]  # fmt: skip
        best = max((o.value for o in hits), default=0.0)
        ok = best >= exp.value
        return CheckResult(exp, ok, best, f"{exp.describe()}: moved {best * 100:.1f} cm {exp.detail}")
    if exp.kind == "palm":
        late = dataclasses.replace(exp, start_s=0.5 * (exp.start_s + exp.end_s))
        hits = [o for o in observed if o.kind == "palm" and o.side == exp.side and _overlaps(o, late, 0.0)]
        facing = sorted({o.detail for o in hits})
        ok = exp.detail in facing
        return CheckResult(exp, ok, float(ok), f"{exp.describe()}: observed facing {', '.join(facing) or 'nothing'}")
    kind = exp.kind
    hits = [o for o in observed if o.kind == kind and (kind == "spacing" or o.side == exp.side) and _overlaps(o, exp)]
    values = [o.value for o in hits]
    ok = any(abs(v - exp.value) <= SIZE_TOLERANCE * exp.value for v in values)
    seen = ", ".join(f"{v * 100:.1f} cm" for v in values) or "none"
    return CheckResult(exp, ok, values[0] if values else float("nan"), f"{exp.describe()}: observed {seen}")


def _check_shape(motion: BimanualMotion, exp: ExpectedEvent) -> CheckResult:
    from handx_robot import gestures
    from handx_robot.frames import FRAME_HANDX_YUP

    h = SIDES.index(exp.side)
    n = motion.num_frames
    i0, i1 = (int(np.clip(round(t * motion.fps), 0, n - 1)) for t in (exp.start_s, exp.end_s))
    pad = (i1 - i0) // 5
    idx = np.arange(i0 + pad, max(i0 + pad, i1 - pad) + 1)
    J = motion.in_frame(FRAME_HANDX_YUP).joints[idx, h]
    states = gestures.finger_states(J)
    code = {"curled": 0, "half": 1, "extended": 2}
    bad = []
    for finger, state in exp.fingers:
        share = float(np.mean(states[:, gestures.FINGER_NAMES.index(finger)] == code[state]))
        if share < SHAPE_MIN_SHARE:
            bad.append(f"{finger} {state} on {share:.0%}")
    if exp.detail in ("thumbs_up", "thumbs_down"):
        rise = float(np.median(J[:, 16, 1] - J[:, 14, 1]))
        if (rise > 0.01) != (exp.detail == "thumbs_up") or abs(rise) <= 0.01:
            bad.append(f"thumb tip {rise * 100:+.1f} cm above its MCP")
    if exp.detail.startswith("point_"):
        want = np.array(_POINT_DIRECTIONS[exp.detail.removeprefix("point_")], dtype=np.float64)
        v = np.median(J[:, 17] - J[:, 1], axis=0)
        cos = float(v @ want / max(np.linalg.norm(v), 1e-9))
        if cos < POINT_MIN_COS:
            bad.append(f"the index points {cos:.2f} along {exp.detail.removeprefix('point_')} (needs >= {POINT_MIN_COS})")
    ok = not bad
    msg = f"{exp.describe()}: " + ("states hold" if ok else "; ".join(bad))
    return CheckResult(exp, ok, float(ok), msg)
