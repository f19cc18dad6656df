"""Events a prompt promises, as the composer plans them (checked by :mod:`handx_robot.generate.selfcheck`).

Part names follow ``{side}_{part}``: ``right_thumb_tip`` ... ``right_pinky_tip``, ``left_palm``.
A part ``{side}_any_tip`` stands for any fingertip of that hand.
"""

from __future__ import annotations

import dataclasses

from handx_robot.errors import ConfigError

__all__ = ["ExpectedEvent", "EVENT_KINDS"]

#: contact: ``count`` separate contacts between ``parts`` inside [start_s, end_s];
#: flexed / extended: the long fingers of ``side`` are flexed (fist) / extended (open) at ``end_s``.
EVENT_KINDS = ("contact", "flexed", "extended")


@dataclasses.dataclass(frozen=True)
class ExpectedEvent:
    """One promised event.

    kind:    one of :data:`EVENT_KINDS`.
    parts:   the two contacting parts (kind ``contact``), e.g. ``('right_thumb_tip', 'right_index_tip')``.
    side:    the hand of a state event (``flexed`` / ``extended``), else None.
    count:   number of separate contacts (kind ``contact``).
    start_s, end_s: the time window, seconds from the motion start.
    action:  the prompt clause that promised it.
    """

    kind: str
    parts: tuple[str, ...] = ()
    side: str | None = None
    count: int = 1
    start_s: float = 0.0
    end_s: float = 0.0
    action: str = ""

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ConfigError(f"ExpectedEvent.kind is {self.kind!r}; allowed: {', '.join(EVENT_KINDS)}")
        if self.kind == "contact" and len(self.parts) != 2:
            raise ConfigError(f"ExpectedEvent of kind 'contact' needs 2 parts, got {self.parts!r}")
        if self.kind != "contact" and self.side not in ("left", "right"):
            raise ConfigError(f"ExpectedEvent of kind {self.kind!r} needs side 'left' or 'right', got {self.side!r}")

    def describe(self) -> str:
        if self.kind == "contact":
            return f"{self.count} contact(s) {self.parts[0]}–{self.parts[1]} in [{self.start_s:.2f}, {self.end_s:.2f}] s"
        return f"{self.side} fingers {self.kind} at {self.end_s:.2f} s"
