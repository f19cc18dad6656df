"""``handx-robot generate "PROMPT" [--generator NAME] [--seconds S] [--seed N] [--fps F] [--lenient] -o motion.npz``.

Several prompts (``generate "wave" "clap twice"``) are stitched into one long motion. Module-level
imports stay light; the generator is imported in :func:`run`.

The composer says what it understood: the parse (per hand: actions, parts, counts, times; and the
words it did not use) is printed before the self-check and stored in the motion file
(``meta['parse']``). A prompt it cannot perform is refused (exit code 1, no file written) with the
closest phrasings it can perform; ``--lenient`` generates what was understood and warns about the rest.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["EXIT_REFUSED", "add_arguments", "format_refusal", "print_parse", "refusal_message", "run", "with_parse"]

#: exit code of a refused prompt (the same as any other error of the command line)
EXIT_REFUSED = 1


def refusal_message(exc) -> str:
    """One line: why ``exc`` (a :class:`~handx_robot.generate.grammar.PromptRefused`) refused its prompt,
    without the suggestions (they come separately, see :func:`format_refusal`)."""
    reasons = tuple(getattr(exc, "reasons", ()) or ())
    prompt = getattr(exc, "prompt", None)
    if not reasons or prompt is None:
        return str(exc)
    return f"cannot perform {prompt!r}: " + "; ".join(reasons)


def format_refusal(exc, command: str = "generate") -> str:
    """The multi-line refusal the command line prints to stderr: message, unused words, suggestions."""
    lines = [f"handx-robot {command}: refused: {refusal_message(exc)}"]
    unused = tuple(getattr(exc, "unused", ()) or ())
    if unused:
        lines.append("  not used: " + ", ".join(repr(w) for w in unused))
    suggestions = tuple(getattr(exc, "suggestions", ()) or ())
    if suggestions:
        lines.append("  try instead:")
        lines.extend(f"    {s}" for s in suggestions)
    lines.append("  (--lenient generates what was understood and warns about the rest)")
    return "\n".join(lines)


def with_parse(comp):
    """``comp.motion`` with ``meta['parse']`` (what was understood), added if the generator did not."""
    motion = comp.motion
    if "parse" not in motion.meta:
        motion = motion.replace(meta={**motion.meta, "parse": comp.parse_report()})
    return motion


def print_parse(comp, file=None) -> None:
    """Print what the composer understood (``comp.parse_text()``) as an ``understood:`` block, and a
    ``warning: not performed: ...`` line on stderr when words of the prompt were not used (lenient)."""
    out = file or sys.stdout
    text = comp.parse_text().rstrip("\n")
    if text.lstrip().lower().startswith("understood"):
        print(text, file=out)
    else:
        print("understood:", file=out)
        for line in text.splitlines():
            print(f"  {line}", file=out)
    unused = tuple(getattr(comp.plan, "unused", ()) or ())
    if unused:
        print("warning: not performed: " + ", ".join(repr(w) for w in unused), file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="*", help="what the hands do; several prompts are played one after another")
    parser.add_argument("-o", "--output", help="motion file to write (.npz)")
    parser.add_argument("--generator", default="composer", help="generator name (default: composer); see --list")
    parser.add_argument("--seconds", type=float, default=None, help="duration in seconds (default: natural timing)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the variation (default 0)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30, as HandX)")
    parser.add_argument("--library", default=None, help="folder of captioned motions (generator 'library')")
    parser.add_argument(
        "--self-check", choices=("off", "warn", "raise"), default="warn",
        help="check the prompt's events in the result (composer): warn (default), raise, off",
    )  # fmt: skip
    parser.add_argument(
        "--no-open-vocabulary", action="store_true",
        help="composer: keywords only, never load the sentence-embedding model",
    )  # fmt: skip
    parser.add_argument(
        "--lenient", action="store_true",
        help="composer: generate what was understood of a prompt it cannot fully perform (and warn) "
        "instead of refusing it",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list generators and composer actions, then exit")


def run(args: argparse.Namespace) -> int:
    from handx_robot.errors import ConfigError
    from handx_robot.generate.base import available_generators, get_generator
    from handx_robot.motion import save_motion

    if args.list:
        print("generators:")
        for name, target in available_generators().items():
            print(f"  {name:12s} {target}")
        from handx_robot.generate.parser import PRIMITIVE_PHRASES

        print("composer actions:")
        for name, phrases in PRIMITIVE_PHRASES.items():
            print(f"  {name:18s} e.g. {phrases[0]!r}")
        return 0
    if not args.prompt:
        raise ConfigError("give a prompt, e.g. handx-robot generate \"clap three times\" -o clap.npz")
    if not args.output:
        raise ConfigError("give the output file with -o/--output, e.g. -o motion.npz")
    kwargs: dict = {"fps": args.fps}
    lenient = bool(getattr(args, "lenient", False))
    if lenient and args.generator != "composer":
        raise ConfigError(f"--lenient applies to the composer generator, not {args.generator!r}; drop --lenient")
    if args.generator == "composer":
        kwargs.update(self_check=args.self_check, open_vocabulary=not args.no_open_vocabulary, lenient=lenient)
    elif args.generator == "library":
        kwargs.update(root=args.library)
    gen = get_generator(args.generator, **kwargs)
    prompt = args.prompt[0] if len(args.prompt) == 1 else list(args.prompt)
    report = None
    if args.generator == "composer":
        from handx_robot.generate.grammar import PromptRefused

        try:
            comp = gen.compose(prompt, seconds=args.seconds, seed=args.seed)
        except PromptRefused as exc:  # nothing is written
            print(format_refusal(exc, "generate"), file=sys.stderr)
            return EXIT_REFUSED
        print_parse(comp)
        motion = with_parse(comp)
        if args.self_check != "off":
            report = gen.check(comp)
            if not report.ok and args.self_check == "raise":
                from handx_robot.generate.selfcheck import SelfCheckError

                raise SelfCheckError("self-check failed: " + "; ".join(report.failures()))
    else:
        motion = gen.generate(prompt, seconds=args.seconds, seed=args.seed)
    path = save_motion(motion, args.output)
    print(f"wrote {path}: {motion.num_frames} frames, {motion.duration:.2f} s at {motion.fps:g} fps ({motion.source})")
    if report is not None:
        print("self-check:")
        for line in report.summary().splitlines():
            print(f"  {line}")
    return 0
