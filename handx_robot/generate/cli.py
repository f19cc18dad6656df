"""``handx-robot generate "PROMPT" [--generator NAME] [--seconds S] [--seed N] [--fps F] -o motion.npz``.

Several prompts (``generate "wave" "clap twice"``) are stitched into one long motion. Module-level
imports stay light; the generator is imported in :func:`run`.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


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
    if args.generator == "composer":
        kwargs.update(self_check=args.self_check, open_vocabulary=not args.no_open_vocabulary)
    elif args.generator == "library":
        kwargs.update(root=args.library)
    gen = get_generator(args.generator, **kwargs)
    prompt = args.prompt[0] if len(args.prompt) == 1 else list(args.prompt)
    report = None
    if args.generator == "composer":
        comp = gen.compose(prompt, seconds=args.seconds, seed=args.seed)
        motion = comp.motion
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
