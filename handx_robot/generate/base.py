"""The generator interface, generation constraints (HandX's modes) and the generator registry.

Every generator implements ``generate(prompt, seconds=None, seed=0, constraints=None) -> BimanualMotion``.
The modes of HandX map onto it:

===================== ==============================================================================
mode                  how to ask
===================== ==============================================================================
text-to-motion        ``generate("clap twice")``
in-betweening         ``constraints=GenerationConstraints(start_pose=..., end_pose=...)``
wrist trajectory      ``constraints=GenerationConstraints(wrist_trajectory={"right": (T, 3)})``
contact keyframes     ``constraints=GenerationConstraints(contact_keyframes=(ContactKeyframe(...),))``
hand reaction         ``constraints=GenerationConstraints(reaction_to=motion, reaction_side="left")``
long horizon          ``generate(["wave", "clap twice", "make a fist"])`` (a list of prompts)
===================== ==============================================================================

:class:`MotionGenerator` applies the constraints a generator does not handle itself, the same way
for every generator: wrist trajectories and keyframes by residual blending in keypoint space
(exact at the constrained frames, minimum-jerk fade), reactions by splicing the given hand in, long
horizons by stitching with minimum-jerk transitions.

Registry: built-in generators (``composer``, ``library``) and Python entry points of group
``handx_robot.generators`` (``name = package.module:Factory``), so a HandX checkpoint wrapper can be
installed separately. Arrays: ``(T, 2, 21, 3)`` float32 metres, frame ``handx_yup``, axis 1 = (left, right).
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import logging
import re
from collections.abc import Callable, Sequence
from importlib import metadata

import numpy as np

from handx_robot.errors import ConfigError, ModelLoadError
from handx_robot.frames import FRAME_HANDX_YUP
from handx_robot.motion import SIDES, BimanualMotion

__all__ = [
    "ENTRY_POINT_GROUP",
    "BUILTIN_GENERATORS",
    "MAX_SECONDS",
    "ContactKeyframe",
    "GenerationConstraints",
    "MotionGenerator",
    "available_generators",
    "get_generator",
    "validate_request",
    "blend_keyframes",
    "apply_wrist_trajectory",
    "splice_reaction",
    "stitch",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "handx_robot.generators"
#: name -> "module:factory" of the generators that ship with handx-robot.
BUILTIN_GENERATORS: dict[str, str] = {
    "composer": "handx_robot.generate.generators:ComposerGenerator",
    "library": "handx_robot.generate.library:LibraryGenerator",
}
#: Longest motion any generator is asked for, seconds (10 minutes).
MAX_SECONDS = 600.0
_PART = re.compile(r"^(left|right)_(thumb|index|middle|ring|pinky)_tip$|^(left|right)_palm$")


@dataclasses.dataclass(frozen=True)
class ContactKeyframe:
    """A contact the motion must make at ``time_s`` seconds between two parts.

    parts: names as in :mod:`handx_robot.features` (``right_thumb_tip``, ``left_palm`` ...). Supported
    pairs: a thumb tip with another fingertip of the same hand (pinch), ``left_palm``/``right_palm``
    (clap), a left fingertip with a right fingertip (fingertips touch).
    """

    time_s: float
    parts: tuple[str, str]

    def __post_init__(self) -> None:
        if not np.isfinite(self.time_s) or self.time_s < 0:
            raise ConfigError(f"ContactKeyframe.time_s is {self.time_s}; allowed: >= 0 seconds")
        parts = tuple(self.parts)
        if len(parts) != 2 or not all(isinstance(p, str) and _PART.match(p) for p in parts):
            raise ConfigError(
                f"ContactKeyframe.parts is {self.parts!r}; give two names like 'right_thumb_tip', "
                "'right_index_tip', 'left_palm' (side_finger_tip or side_palm)"
            )
        object.__setattr__(self, "parts", parts)


def _pose(value, name: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float32)
    if arr.shape != (2, 21, 3):
        raise ConfigError(
            f"GenerationConstraints.{name} must have shape (2, 21, 3) (left/right, HandX keypoints, xyz metres "
            f"in frame handx_yup), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"GenerationConstraints.{name} has NaN/inf values; give finite keypoints")
    return arr


@dataclasses.dataclass(frozen=True)
class GenerationConstraints:
    """Conditions of a generation beyond the prompt (all optional; metres, seconds, frame ``handx_yup``).

    start_pose, end_pose: (2, 21, 3) keypoints the motion starts / ends at (in-betweening).
    wrist_trajectory:     ``{side: (T, 3)}`` wrist positions per frame at the output fps; T sets the length.
    contact_keyframes:    contacts at given times (:class:`ContactKeyframe`).
    reaction_to:          a motion whose ``reaction_side``'s *other* hand is given; the generator makes
                          ``reaction_side`` react to it (duration and fps follow the given motion).
    blend_s:              fade length of keyframe residuals, seconds.
    """

    start_pose: np.ndarray | None = None
    end_pose: np.ndarray | None = None
    wrist_trajectory: dict[str, np.ndarray] | None = None
    contact_keyframes: tuple[ContactKeyframe, ...] = ()
    reaction_to: BimanualMotion | None = None
    reaction_side: str | None = None
    blend_s: float = 0.6

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_pose", _pose(self.start_pose, "start_pose"))
        object.__setattr__(self, "end_pose", _pose(self.end_pose, "end_pose"))
        if self.wrist_trajectory is not None:
            traj = {}
            for side, value in dict(self.wrist_trajectory).items():
                if side not in SIDES:
                    raise ConfigError(f"GenerationConstraints.wrist_trajectory key {side!r}; allowed: left, right")
                arr = np.asarray(value, dtype=np.float64)
                if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 2:
                    raise ConfigError(
                        f"GenerationConstraints.wrist_trajectory[{side!r}] must have shape (T >= 2, 3) metres, "
                        f"got {arr.shape}"
                    )
                if not np.all(np.isfinite(arr)):
                    raise ConfigError(f"GenerationConstraints.wrist_trajectory[{side!r}] has NaN/inf values")
                traj[side] = arr
            lengths = {len(v) for v in traj.values()}
            if len(lengths) > 1:
                raise ConfigError(f"GenerationConstraints.wrist_trajectory sides differ in length: {sorted(lengths)}")
            object.__setattr__(self, "wrist_trajectory", traj or None)
        kfs = tuple(self.contact_keyframes or ())
        if not all(isinstance(k, ContactKeyframe) for k in kfs):
            raise ConfigError("GenerationConstraints.contact_keyframes must be ContactKeyframe objects")
        object.__setattr__(self, "contact_keyframes", tuple(sorted(kfs, key=lambda k: k.time_s)))
        if (self.reaction_to is None) != (self.reaction_side is None):
            raise ConfigError(
                "GenerationConstraints: reaction_to and reaction_side go together (the given motion and the "
                "side to generate, 'left' or 'right')"
            )
        if self.reaction_to is not None:
            if not isinstance(self.reaction_to, BimanualMotion):
                raise ConfigError("GenerationConstraints.reaction_to must be a BimanualMotion")
            if self.reaction_side not in SIDES:
                raise ConfigError(f"GenerationConstraints.reaction_side is {self.reaction_side!r}; allowed: left, right")
            given = "left" if self.reaction_side == "right" else "right"
            if not self.reaction_to.present[SIDES.index(given)]:
                raise ConfigError(f"GenerationConstraints.reaction_to has no {given} hand to react to")
            if self.reaction_to.frame != FRAME_HANDX_YUP:
                object.__setattr__(self, "reaction_to", self.reaction_to.in_frame(FRAME_HANDX_YUP))
        if not (0.05 <= self.blend_s <= 10.0):
            raise ConfigError(f"GenerationConstraints.blend_s is {self.blend_s}; allowed 0.05..10 s")

    @property
    def given_side(self) -> str | None:
        """The hand a reaction is given (the other one is generated)."""
        if self.reaction_side is None:
            return None
        return "left" if self.reaction_side == "right" else "right"

    @property
    def wrist_frames(self) -> int | None:
        if not self.wrist_trajectory:
            return None
        return len(next(iter(self.wrist_trajectory.values())))


def validate_request(prompt, seconds, seed) -> tuple[str | list[str], float | None, int]:
    """Check the common arguments of :meth:`MotionGenerator.generate`; returns them normalised."""
    if isinstance(prompt, (list, tuple)):
        if not prompt:
            raise ConfigError("prompt list is empty; give at least one prompt for long-horizon generation")
        prompts = [validate_request(p, None, 0)[0] for p in prompt]
        prompt_out: str | list[str] = prompts  # type: ignore[assignment]
    else:
        if prompt is None or not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError(
                f"prompt is {prompt!r}; describe a hand action, e.g. 'pinch with the right thumb and index "
                "finger twice, then clap'"
            )
        if len(prompt) > 2000:
            raise ConfigError(f"prompt is {len(prompt)} characters long; the maximum is 2000")
        prompt_out = prompt.strip()
    if seconds is not None:
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            raise ConfigError(f"seconds is {seconds!r}; pass a number of seconds > 0") from None
        if not np.isfinite(seconds) or seconds <= 0:
            raise ConfigError(f"seconds is {seconds}; allowed: > 0 and <= {MAX_SECONDS:g} (10 minutes)")
        if seconds > MAX_SECONDS:
            raise ConfigError(
                f"seconds is {seconds:g}; the maximum is {MAX_SECONDS:g} s (10 minutes): generate shorter pieces "
                "and pass them as a list of prompts (long-horizon mode)"
            )
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise ConfigError(f"seed is {seed!r}; pass an integer") from None
    if seed < 0:
        raise ConfigError(f"seed is {seed}; pass an integer >= 0")
    return prompt_out, seconds, seed


class MotionGenerator(abc.ABC):
    """A text-to-motion generator.

    Subclasses implement :meth:`_generate` for one prompt (and may override :meth:`_generate_sequence`);
    they list the constraint modes they handle natively in ``native_modes`` (``"in_betweening"``,
    ``"wrist_trajectory"``, ``"contact_keyframes"``, ``"reaction"``); the rest is applied here.
    """

    #: registry name
    name: str = "generator"
    #: output frames per second
    fps: float = 30.0
    native_modes: frozenset[str] = frozenset()

    def generate(
        self,
        prompt: str | Sequence[str],
        seconds: float | None = None,
        seed: int = 0,
        constraints: GenerationConstraints | None = None,
    ) -> BimanualMotion:
        """A bimanual motion for ``prompt`` (a list of prompts = long horizon), ``seconds`` long if given."""
        prompt, seconds, seed = validate_request(prompt, seconds, seed)
        c = constraints
        if c is not None and not isinstance(c, GenerationConstraints):
            raise ConfigError(f"constraints must be a GenerationConstraints, got {type(c).__name__}")
        if c is not None and c.contact_keyframes and "contact_keyframes" not in self.native_modes:
            raise ConfigError(
                f"generator {self.name!r} does not support contact keyframes; use the 'composer' generator"
            )
        if c is not None and c.wrist_frames is not None:
            seconds = (c.wrist_frames - 1) / self.fps
        if c is not None and c.reaction_to is not None:
            seconds = c.reaction_to.duration
        if isinstance(prompt, list):
            motion = self._generate_sequence(prompt, seconds, seed, c)
        else:
            motion = self._generate(prompt, seconds, seed, c)
        return self._apply_constraints(motion, c)

    @abc.abstractmethod
    def _generate(
        self, prompt: str, seconds: float | None, seed: int, constraints: GenerationConstraints | None
    ) -> BimanualMotion:
        """One prompt -> motion (validated arguments)."""

    def _generate_sequence(
        self, prompts: list[str], seconds: float | None, seed: int, constraints: GenerationConstraints | None
    ) -> BimanualMotion:
        """Long horizon: one motion per prompt, stitched with minimum-jerk transitions."""
        each = None if seconds is None else seconds / len(prompts)
        parts = [self._generate(p, each, seed + i, None) for i, p in enumerate(prompts)]
        return stitch(parts, transition_s=0.5, text=" then ".join(prompts))

    def _apply_constraints(self, motion: BimanualMotion, c: GenerationConstraints | None) -> BimanualMotion:
        if c is None:
            return motion
        if c.reaction_to is not None and "reaction" not in self.native_modes:
            motion = splice_reaction(motion, c.reaction_to, c.reaction_side)
        if c.wrist_trajectory and "wrist_trajectory" not in self.native_modes:
            motion = apply_wrist_trajectory(motion, c.wrist_trajectory)
        if (c.start_pose is not None or c.end_pose is not None) and "in_betweening" not in self.native_modes:
            motion = blend_keyframes(motion, c.start_pose, c.end_pose, c.blend_s)
        return motion


# ---------------------------------------------------------------------------------------------
# generic constraint operations (keypoint space)


def _fade(n: int, fps: float, blend_s: float) -> np.ndarray:
    """(n,) weights 1 -> 0 over ``blend_s`` seconds with a minimum-jerk profile."""
    t = np.arange(n) / fps
    tau = np.clip(t / blend_s, 0.0, 1.0)
    return (1.0 - tau**3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)).astype(np.float32)


def blend_keyframes(
    motion: BimanualMotion, start_pose: np.ndarray | None, end_pose: np.ndarray | None, blend_s: float = 0.6
) -> BimanualMotion:
    """In-betweening: add the residual to ``start_pose`` / ``end_pose`` (2, 21, 3), faded over ``blend_s``.

    The result equals the keyframes exactly at the first / last frame and the generated motion in between.
    """
    J = motion.joints.astype(np.float32).copy()
    blend = min(blend_s, 0.5 * motion.duration)
    w = _fade(len(J), motion.fps, blend)
    if start_pose is not None:
        J += w[:, None, None, None] * (np.asarray(start_pose, np.float32) - J[0])[None]
    if end_pose is not None:
        J += w[::-1][:, None, None, None] * (np.asarray(end_pose, np.float32) - J[-1])[None]
    return motion.replace(joints=J, present=np.ones(2, dtype=bool), mano={})


def apply_wrist_trajectory(motion: BimanualMotion, trajectory: dict[str, np.ndarray]) -> BimanualMotion:
    """Translate each listed hand per frame so that its wrist follows ``trajectory[side]`` (T, 3) exactly."""
    J = motion.joints.astype(np.float32).copy()
    for side, traj in trajectory.items():
        if len(traj) != len(J):
            raise ConfigError(
                f"wrist_trajectory[{side!r}] has {len(traj)} frames, the motion {len(J)} (at {motion.fps:g} fps)"
            )
        h = SIDES.index(side)
        J[:, h] += (np.asarray(traj, np.float32) - J[:, h, 0])[:, None, :]
    return motion.replace(joints=J, mano={})


def splice_reaction(motion: BimanualMotion, given: BimanualMotion, reaction_side: str) -> BimanualMotion:
    """Put the given hand of ``given`` into ``motion`` (resampled to its fps, trimmed/padded to its length)."""
    given_side = "left" if reaction_side == "right" else "right"
    src = given.resample(motion.fps) if abs(given.fps - motion.fps) > 1e-9 else given
    hand = src.hand(given_side)
    n = motion.num_frames
    if len(hand) < n:
        hand = np.concatenate([hand, np.repeat(hand[-1:], n - len(hand), axis=0)])
    J = motion.joints.copy()
    J[:, SIDES.index(given_side)] = hand[:n]
    return motion.replace(joints=J, present=np.ones(2, dtype=bool), mano={})


def stitch(parts: Sequence[BimanualMotion], transition_s: float = 0.5, text: str | None = None) -> BimanualMotion:
    """Concatenate motions with minimum-jerk transitions of ``transition_s`` seconds between them.

    Each next part is blended in from the previous part's last frame (residual fade), so positions are
    continuous; all parts must share fps and frame.
    """
    if not parts:
        raise ConfigError("stitch needs at least one motion")
    fps, frame = parts[0].fps, parts[0].frame
    out = [parts[0].joints]
    for p in parts[1:]:
        if abs(p.fps - fps) > 1e-9 or p.frame != frame:
            raise ConfigError(f"stitch: parts differ in fps/frame ({p.fps} {p.frame} vs {fps} {frame})")
        J = p.joints.copy()
        w = _fade(len(J), fps, min(transition_s, 0.5 * p.duration))
        J += w[:, None, None, None] * (out[-1][-1] - J[0])[None]
        out.append(J[1:])
    joints = np.concatenate(out)
    present = np.logical_or.reduce([p.present for p in parts])
    return BimanualMotion(
        joints=joints, fps=fps, text=text if text is not None else " then ".join(p.text for p in parts),
        present=present, frame=frame, source=parts[0].source,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# registry


def _entry_points() -> dict[str, metadata.EntryPoint]:
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken distribution on the path must not hide the built-ins
        log.warning("could not read entry points of group %s: %s", ENTRY_POINT_GROUP, exc)
        return {}
    return {ep.name: ep for ep in eps}


def available_generators() -> dict[str, str]:
    """Generator name -> where it comes from (``module:factory``), built-ins first."""
    out = dict(BUILTIN_GENERATORS)
    for name, ep in sorted(_entry_points().items()):
        if name in out:
            log.warning("entry point %s = %s ignored: %r is a built-in generator", name, ep.value, name)
            continue
        out[name] = ep.value
    return out


def _load_target(target: str, name: str) -> Callable[..., MotionGenerator]:
    module_name, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"generator {name!r}: cannot import {target!r} ({exc}); reinstall the package providing it") from exc
    return obj  # type: ignore[return-value]


def get_generator(name: str = "composer", **kwargs) -> MotionGenerator:
    """Instantiate the generator registered as ``name`` with ``kwargs`` (see :func:`available_generators`)."""
    gens = available_generators()
    if name not in gens:
        raise ConfigError(
            f"unknown generator {name!r}; available generators: {', '.join(gens)} (plugins register under the "
            f"entry-point group {ENTRY_POINT_GROUP!r})"
        )
    factory = _load_target(gens[name], name)
    gen = factory(**kwargs)
    if not isinstance(gen, MotionGenerator):
        raise ModelLoadError(
            f"generator {name!r} ({gens[name]}) made a {type(gen).__name__}, not a handx_robot.generate.MotionGenerator"
        )
    return gen
