"""Events a prompt promises, as the composer plans them (checked by :mod:`handx_robot.generate.selfcheck`).

Part names follow ``{side}_{part}``: ``right_thumb_tip`` ... ``right_pinky_tip``, ``left_palm``.
A part ``{side}_any_tip`` stands for any fingertip of that hand.
"""

from __future__ import annotations

import dataclasses

from handx_robot.errors import ConfigError

__all__ = ["ExpectedEvent", "EVENT_KINDS"]

#: contact: ``count`` separate contacts between ``parts`` inside [start_s, end_s] (``style`` rub / slide:
#: one contact sliding ``slide_m``; ``min_hold_s``: the contact lasts at least this long);
#: flexed / extended: the long fingers of ``side`` are flexed (fist) / extended (open) at ``end_s``;
#: shape: the ``fingers`` states of ``side`` hold over the window (``detail`` thumbs_up / thumbs_down:
#: the thumb points up / down); motion: ``side`` moves ``detail`` (up, down, left, right, forward, back:
#: at least ``value`` metres; circle, wave, shake, twist, flip: ``count`` cycles) inside the window;
#: palm: the palm of ``side`` faces ``detail`` (up, down, forward, back, in, out) over the window;
#: grip: ``side`` grips an object of ``value`` metres; spacing: the palms face each other ``value`` apart.
EVENT_KINDS = ("contact", "flexed", "extended", "shape", "motion", "palm", "grip", "spacing")


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
    detail: str = ""
    fingers: tuple[tuple[str, str], ...] = ()
    value: float = 0.0
    style: str = ""
    min_hold_s: float = 0.0
    slide_m: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ConfigError(f"ExpectedEvent.kind is {self.kind!r}; allowed: {', '.join(EVENT_KINDS)}")
        if self.kind == "contact" and len(self.parts) != 2:
            raise ConfigError(f"ExpectedEvent of kind 'contact' needs 2 parts, got {self.parts!r}")
        if self.kind not in ("contact", "spacing") and self.side not in ("left", "right"):
            raise ConfigError(f"ExpectedEvent of kind {self.kind!r} needs side 'left' or 'right', got {self.side!r}")

    def describe(self) -> str:
        span = f"[{self.start_s:.2f}, {self.end_s:.2f}] s"
        if self.kind == "contact":
            style = f" ({self.style})" if self.style else ""
            return f"{self.count} contact(s){style} {self.parts[0]}–{self.parts[1]} in {span}"
        if self.kind == "shape":
            states = ", ".join(f"{f} {s}" for f, s in self.fingers)
            name = f"{self.detail}: " if self.detail else ""
            return f"{self.side} hand {name}{states} over {span}"
        if self.kind == "motion":
            what = f"{self.detail} x{self.count}" if self.detail in ("circle", "wave", "shake", "twist", "flip") else (
                f"moves {self.detail} >= {self.value * 100:.0f} cm")
            return f"{self.side} hand {what} in {span}"
        if self.kind == "palm":
            return f"{self.side} palm faces {self.detail} over {span}"
        if self.kind == "grip":
            return f"{self.side} hand grips a {self.value * 100:.1f} cm object over {span}"
        if self.kind == "spacing":
            return f"palms face each other {self.value * 100:.0f} cm apart over {span}"
        return f"{self.side} fingers {self.kind} at {self.end_s:.2f} s"
