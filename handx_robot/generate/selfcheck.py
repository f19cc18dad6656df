"""Self-check: does a generated motion contain the events its prompt promised?

The motion is run through the motion-data feature extractor (:mod:`handx_robot.features`:
``contact_events``, ``compute_features``, ``describe``), never through a detector of our own, and each
:class:`~handx_robot.generate.events.ExpectedEvent` is compared with what it finds:

* ``contact``: the number of detected contact events between the two parts that start inside the
  promised window (± :data:`WINDOW_MARGIN_S`) equals ``count``; ``{side}_any_tip`` matches any fingertip;
* ``flexed`` / ``extended``: the hand's openness (1 = straight fingers, ~0.3 = fist) at the window end
  is below :data:`FLEXED_OPENNESS` / above :data:`EXTENDED_OPENNESS`.
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
    for exp in expected:
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
