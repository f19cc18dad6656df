"""Text -> bimanual hand motion: the generator interface, the embedded ``composer``, retrieval (``library``).

>>> from handx_robot.generate import generate
>>> motion = generate("pinch with the right thumb and index finger twice, then clap")

Module-level imports stay light (numpy): the sentence-embedding model loads only when a prompt needs it.
"""

from __future__ import annotations

from handx_robot.generate.base import (
    BUILTIN_GENERATORS,
    ENTRY_POINT_GROUP,
    MAX_SECONDS,
    ContactKeyframe,
    GenerationConstraints,
    MotionGenerator,
    available_generators,
    get_generator,
    stitch,
)
from handx_robot.generate.events import ExpectedEvent
from handx_robot.generate.generators import ComposerGenerator
from handx_robot.generate.parser import PRIMITIVES, Plan, parse_prompt
from handx_robot.generate.selfcheck import SelfCheckError, SelfCheckReport, self_check

__all__ = [
    "BUILTIN_GENERATORS",
    "ENTRY_POINT_GROUP",
    "MAX_SECONDS",
    "PRIMITIVES",
    "ComposerGenerator",
    "ContactKeyframe",
    "ExpectedEvent",
    "GenerationConstraints",
    "MotionGenerator",
    "Plan",
    "SelfCheckError",
    "SelfCheckReport",
    "available_generators",
    "generate",
    "get_generator",
    "parse_prompt",
    "self_check",
    "stitch",
]


def generate(
    prompt,
    seconds: float | None = None,
    seed: int = 0,
    constraints: GenerationConstraints | None = None,
    generator: str = "composer",
    **generator_kwargs,
):
    """``get_generator(generator, **generator_kwargs).generate(prompt, seconds, seed, constraints)``."""
    return get_generator(generator, **generator_kwargs).generate(prompt, seconds=seconds, seed=seed, constraints=constraints)
