"""The built-in ``composer`` generator: prompt parser + keyframe composer + self-check.

``ComposerGenerator().generate("pinch with the right thumb and index finger twice, then clap")`` needs
no download and no GPU. Keywords are read by :mod:`handx_robot.generate.parser`; clauses with no keyword
go to the sentence-embedding matcher (:mod:`handx_robot.generate.embedding`, loaded on first use) when
``open_vocabulary`` is on. Each motion is checked against the events its prompt promised
(:mod:`handx_robot.generate.selfcheck`) according to ``self_check``: ``"off"``, ``"warn"`` (log) or
``"raise"`` (:class:`~handx_robot.generate.selfcheck.SelfCheckError`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from handx_robot.errors import ConfigError
from handx_robot.generate.base import GenerationConstraints, MotionGenerator, validate_request
from handx_robot.generate.composer import ComposerConfig, Composition, compose
from handx_robot.generate.parser import BIMANUAL_PRIMITIVES, Plan, Step, parse_prompt
from handx_robot.generate.selfcheck import SelfCheckError, SelfCheckReport, self_check
from handx_robot.motion import SIDES, BimanualMotion

__all__ = ["SELF_CHECK_MODES", "ComposerGenerator"]

log = logging.getLogger(__name__)

SELF_CHECK_MODES = ("off", "warn", "raise")
#: primitives whose two hands mirror each other, so a reacting hand is the mirror of the given one
_SYMMETRIC = BIMANUAL_PRIMITIVES - {"handover"}


class ComposerGenerator(MotionGenerator):
    """Rule-based composer of bimanual motions (the embedded default generator).

    fps, variation, hand_scale: see :class:`~handx_robot.generate.composer.ComposerConfig`.
    open_vocabulary: map clauses with no keyword to the nearest action by sentence embedding.
    similarity_threshold: below it such a clause is refused (default
                          :data:`~handx_robot.generate.embedding.OPEN_VOCABULARY_THRESHOLD`, calibrated).
    self_check: ``off`` / ``warn`` / ``raise``.
    lenient: generate what was understood of a prompt the grammar cannot fully perform (the plan's
             ``unused`` and ``notes`` say what was left out) instead of refusing it with
             :class:`~handx_robot.generate.grammar.PromptRefused`.
    """

    name = "composer"
    native_modes = frozenset({"contact_keyframes", "reaction"})

    def __init__(
        self,
        fps: float = 30.0,
        variation: float = 1.0,
        hand_scale: float = 1.0,
        open_vocabulary: bool = True,
        similarity_threshold: float | None = None,
        self_check: str = "warn",
        lenient: bool = False,
    ) -> None:
        self.config = ComposerConfig(fps=float(fps), variation=float(variation), hand_scale=float(hand_scale))
        self.fps = self.config.fps
        if self_check not in SELF_CHECK_MODES:
            raise ConfigError(f"self_check is {self_check!r}; allowed: {', '.join(SELF_CHECK_MODES)}")
        self.self_check = self_check
        self.open_vocabulary = bool(open_vocabulary)
        self.similarity_threshold = similarity_threshold
        self.lenient = bool(lenient)

    # -- parsing ------------------------------------------------------------------------------
    def _matcher(self):
        if not self.open_vocabulary:
            return None
        from handx_robot.generate.embedding import OPEN_VOCABULARY_THRESHOLD, default_matcher

        return default_matcher(self.similarity_threshold or OPEN_VOCABULARY_THRESHOLD)

    def parse(self, prompt: str | list[str]) -> Plan:
        """The plan of ``prompt``; a list of prompts is one plan with their steps in order."""
        prompts = prompt if isinstance(prompt, list) else [prompt]
        matcher = self._matcher()
        plans = [parse_prompt(p, matcher, lenient=self.lenient) for p in prompts]
        steps: tuple[Step, ...] = tuple(s for p in plans for s in p.steps)
        return Plan(prompt=" then ".join(prompts), steps=steps, unused=tuple(w for p in plans for w in p.unused),
                    notes=tuple(n for p in plans for n in p.notes))  # fmt: skip

    # -- generation ---------------------------------------------------------------------------
    def compose(
        self,
        prompt: str | list[str],
        seconds: float | None = None,
        seed: int = 0,
        constraints: GenerationConstraints | None = None,
    ) -> Composition:
        """Like :meth:`generate`, also returning the plan and the promised events (no self-check)."""
        prompt, seconds, seed = validate_request(prompt, seconds, seed)
        plan = self.parse(prompt)
        kfs = constraints.contact_keyframes if constraints is not None else ()
        if constraints is not None and constraints.wrist_frames is not None:
            seconds = (constraints.wrist_frames - 1) / self.fps
        if constraints is not None and constraints.reaction_to is not None:
            seconds = constraints.reaction_to.duration
        comp = compose(plan, seed=seed, seconds=seconds, config=self.config, contact_keyframes=kfs)
        # what the prompt was understood as travels with the motion (saved in the motion file)
        comp = dataclasses.replace(comp, motion=comp.motion.replace(meta={**comp.motion.meta, "parse": comp.parse_report()}))
        if constraints is not None and constraints.reaction_to is not None:
            comp = dataclasses.replace(comp, motion=self._react(comp, constraints))
        return comp

    def _generate(self, prompt, seconds, seed, constraints) -> BimanualMotion:
        comp = self.compose(prompt, seconds, seed, constraints)
        self._check(comp, constraints)
        return comp.motion

    def _generate_sequence(self, prompts, seconds, seed, constraints) -> BimanualMotion:
        # one plan for all prompts: transitions are planned like any other step
        return self._generate(prompts, seconds, seed, constraints)

    def check(self, comp: Composition) -> SelfCheckReport:
        """Run the self-check of a composition (see :mod:`handx_robot.generate.selfcheck`)."""
        return self_check(comp.motion, comp.expected)

    def _check(self, comp: Composition, constraints: GenerationConstraints | None) -> None:
        if self.self_check == "off" or not comp.expected:
            return
        if constraints is not None and (constraints.reaction_to is not None):
            return  # the given hand is not ours to promise anything about
        report = self.check(comp)
        if report.ok:
            return
        msg = f"generated motion for {comp.plan.prompt!r} misses promised events: " + "; ".join(report.failures())
        if self.self_check == "raise":
            raise SelfCheckError(msg)
        log.warning(msg)

    def _react(self, comp: Composition, c: GenerationConstraints) -> BimanualMotion:
        """Reaction: mirror the given hand for mirror-symmetric bimanual actions, else splice it in."""
        from handx_robot.generate.base import splice_reaction

        motion = comp.motion
        given = c.reaction_to.resample(motion.fps) if abs(c.reaction_to.fps - motion.fps) > 1e-9 else c.reaction_to
        prims = {a.primitive for a in comp.plan.actions}
        if prims and prims <= _SYMMETRIC:
            given_side = c.given_side
            n = motion.num_frames
            hand = given.hand(given_side)
            if len(hand) < n:
                hand = np.concatenate([hand, np.repeat(hand[-1:], n - len(hand), axis=0)])
            hand = hand[:n]
            mirrored = hand.copy()
            mirrored[..., 0] *= -1.0
            J = np.empty_like(motion.joints)
            J[:, SIDES.index(given_side)] = hand
            J[:, SIDES.index(c.reaction_side)] = mirrored
            log.info("reaction: %s hand mirrors the given %s hand (symmetric action)", c.reaction_side, given_side)
            return motion.replace(joints=J, present=np.ones(2, dtype=bool))
        return splice_reaction(motion, given, c.reaction_side)
