"""Settings of the bimanual solve (:mod:`.refine`): :class:`InteractionOptions`."""

from __future__ import annotations

import dataclasses

from handx_robot.errors import ConfigError

__all__ = ["InteractionOptions", "INTERACTION_MODES"]

INTERACTION_MODES = ("auto", "off")


@dataclasses.dataclass(frozen=True)
class InteractionOptions:
    """Settings of the bimanual solve (metres, radians; weights relative to the shape objective).

    mode:             'auto' (bimanual terms where the hands interact) or 'off' (per-hand only).
    margin_m:         geom pairs across the hands closer than this enter the solve's constraints (what switches
                      the solve on is the gate's, :meth:`.refine.BimanualRefiner.needs_solve`). Wider than a
                      step of the solve, so that it sees a pair coming: the default lists what the solve was
                      tuned with (until 2026-12-05 each geom had a 12 mm margin, which MuJoCo sums over a pair).
                      Pairs within a hand are listed below ``apart_m``.
    finger_margin_m:  pairs within a hand of which neither geom is a part's (a fingertip's, the palm's) are
                      listed below this, and a part's geom with another below the mean of this and ``apart_m``:
                      the non-penetration constraint is all that acts on them (LEAP's boxes side by side, each
                      finger's against the next, made most of a query's rows; ``benchmarks/bimanual_cost.py``).
    clearance_m:      hard lower bound on every geom pair's distance (non-penetration).
    touch_m:          target gap of a part pair the human is touching.
    robot_contact_m:  a robot part pair closer than this is in contact (the report's robot events).
    apart_m:          part pairs the human is not touching are pushed at least this far apart.
    w_contact / w_contact_palm: the contact term's weight, and the palm-palm pair's. Palms are the largest
                      parts and the hardest to bring together on a robot: the wrists and the thumbs' bases
                      meet first (the built-in Shadow's clap kept its palms 5-7 mm apart at ``w_contact``).
    wrist_budget_m / wrist_budget_rad: the wrist deviation a unit of ``w_wrist`` pays for; beyond the
                      budget the penalty grows ten times faster.
    max_iterations:   SQP iterations per frame offline (more, up to 3x, while the geoms still penetrate or a
                      pair the human touches is not yet in contact).
    stream_iterations: the same for the streaming :meth:`BimanualRefiner.step`: each frame starts from the
                      previous one's correction, so what one frame leaves the next goes on with (fewer
                      iterations keep a 30 Hz stream within its period; penetration stays within the
                      target: ``benchmarks/bimanual_streaming.py``). The stream goes past them only while
                      geoms penetrate, not to reach a contact: the next frame goes on with it.
    approach_s:       offline, how long before a pair's human contact begins the robot pair starts closing in on it
                      (seconds; 0: the contact term switches on at the event's first frame, a step of the joints).
    workers:          offline, the processes that solve a long motion's chunks side by side (:mod:`.chunks`; the
                      chunks, and so the result, are the same for any number).
    stream_budget_s:  wall time one streamed frame's bimanual step may take (seconds), None: no limit. Past
                      it the step ends: the latest iterate no deeper in penetration than the frame's start
                      is the result, or the previous frame's result (the module docstring's guarantee holds
                      either way). Not on a stream's first frame, which has no previous result. The ROS
                      ``retarget`` node sets half its input period.
    """

    mode: str = "auto"
    margin_m: float = 0.024
    clearance_m: float = 0.001
    touch_m: float = 0.001
    robot_contact_m: float = 0.005
    apart_m: float = 0.008
    finger_margin_m: float = 0.004
    wrist_budget_m: float = 0.04
    wrist_budget_rad: float = 0.35
    w_wrist: float = 0.02
    w_smooth: float = 0.5
    w_contact: float = 4.0
    w_contact_palm: float = 20.0
    w_apart: float = 10.0
    w_shape: float = 1.0
    max_iterations: int = 8
    stream_iterations: int = 4
    stream_budget_s: float | None = None
    workers: int = 1
    approach_s: float = 0.3
    trust_m: float = 0.01
    trust_rad: float = 0.15

    def __post_init__(self) -> None:
        if self.mode not in INTERACTION_MODES:
            raise ConfigError(f"interaction mode {self.mode!r} is unknown; allowed: {', '.join(INTERACTION_MODES)}")
        for name in ("margin_m", "robot_contact_m", "apart_m", "wrist_budget_m", "wrist_budget_rad", "trust_m", "trust_rad"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"interaction option {name} must be > 0, got {getattr(self, name)}")
        if not self.touch_m < self.robot_contact_m < self.apart_m <= self.margin_m:
            raise ConfigError(
                "interaction options must satisfy touch_m < robot_contact_m < apart_m <= margin_m, got "
                f"{self.touch_m}, {self.robot_contact_m}, {self.apart_m}, {self.margin_m}"
            )
        if not self.clearance_m < self.finger_margin_m <= self.apart_m:
            raise ConfigError("interaction options must satisfy clearance_m < finger_margin_m <= apart_m, got "
                              f"{self.clearance_m}, {self.finger_margin_m}, {self.apart_m}")
        if not self.approach_s >= 0:
            raise ConfigError(f"interaction option approach_s must be >= 0, got {self.approach_s}")
        if self.stream_budget_s is not None and not self.stream_budget_s > 0:
            raise ConfigError(f"interaction option stream_budget_s must be > 0 or None, got {self.stream_budget_s}")
        for name in ("max_iterations", "stream_iterations", "workers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"interaction option {name} must be >= 1, got {getattr(self, name)}")
