"""Figures of the caption suite (issue 20): how many sentences are performed with every promised event
verified, which are not and why, how many must-refuse sentences are refused, and how the suite is made.

The suite is ``tests/data/text_suite.yaml``; ``tests/test_text_grammar.py`` asserts the target (>= 95 %
of the sentences produce every promised event; every must-refuse sentence is refused). This script prints
the figures behind it. With ``--calibration`` (needs the sentence-embedding model) it also prints the best
similarity any verb-less clause of a must-refuse sentence reaches, which the open-vocabulary threshold
(``handx_robot.generate.embedding.OPEN_VOCABULARY_THRESHOLD``) must stay above.

Rerun: ``.venv/bin/python benchmarks/text_suite.py [--calibration]``
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

SUITE = Path(__file__).resolve().parents[1] / "tests" / "data" / "text_suite.yaml"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibration", action="store_true", help="also the embedding calibration (loads the model)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    from handx_robot.errors import ConfigError
    from handx_robot.generate import ComposerGenerator
    from handx_robot.generate.grammar import PromptRefused

    suite = yaml.safe_load(SUITE.read_text())
    sentences, refuse = suite["sentences"], suite["refuse"]
    tags = collections.Counter(t for e in sentences for t in e.get("covers", ()))
    print(f"suite: {len(sentences)} sentences to perform, {len(refuse)} to refuse "
          f"({tags['imperative']} imperative, {tags['third_person']} third person; "
          f"{sum('left' in e['text'].lower() for e in sentences)} name the left hand, "
          f"{sum('right' in e['text'].lower() for e in sentences)} the right)")  # fmt: skip
    gen = ComposerGenerator(self_check="off", open_vocabulary=False)
    outcome: collections.Counter = collections.Counter()
    misses = []
    t0 = time.perf_counter()
    for i, entry in enumerate(sentences):
        try:
            comp = gen.compose(entry["text"], seed=i)
        except PromptRefused as exc:
            outcome["refused"] += 1
            misses.append(("refused", entry["text"], "; ".join(exc.reasons)))
            continue
        except ConfigError as exc:
            outcome["error"] += 1
            misses.append(("error", entry["text"], str(exc)))
            continue
        report = gen.check(comp)
        if not report.ok:
            outcome["missed"] += 1
            misses.append(("missed", entry["text"], "; ".join(report.failures())))
        elif comp.expected:
            outcome["verified"] += 1
        else:
            outcome["nothing promised"] += 1
        outcome["unused words"] += bool(comp.plan.unused)
    seconds = time.perf_counter() - t0
    ok = outcome["verified"] + outcome["nothing promised"]
    print(f"performed with every promised event: {ok} / {len(sentences)} ({ok / len(sentences):.1%}; "
          f"{outcome['verified']} promise at least one event, {outcome['nothing promised']} promise none)")
    print(f"not performed: {outcome['missed']} missed an event, {outcome['refused']} refused, "
          f"{outcome['error']} could not be composed; performed with an unused word: {outcome['unused words']}")
    for kind, text, why in misses:
        print(f"  {kind:8s} {text}  ::  {why[:160]}")
    refused = 0
    for entry in refuse:
        try:
            gen.compose(entry["text"])
        except ConfigError:
            refused += 1
        else:
            print(f"  NOT REFUSED  {entry['text']}")
    print(f"must-refuse sentences refused: {refused} / {len(refuse)}")
    print(f"time: {seconds:.1f} s for the {len(sentences)} sentences (compose + self-check), one process")
    if args.calibration:
        from handx_robot.generate import grammar as g
        from handx_robot.generate.embedding import OPEN_VOCABULARY_THRESHOLD, default_matcher

        matcher = default_matcher(0.01)
        best = (0.0, "", "")
        for entry in refuse:
            for step in g.split(g.normalize(entry["text"])):
                for clause in step:
                    if not g.has_known_verb(clause):
                        label, score = next(iter(matcher.scores(clause).items()))
                        best = max(best, (score, label, clause))
        print(f"open vocabulary: best must-refuse clause {best[0]:.2f} ({best[2]!r} -> {best[1]}); "
              f"threshold {OPEN_VOCABULARY_THRESHOLD:.2f}")
    print("\nrerun: .venv/bin/python benchmarks/text_suite.py" + (" --calibration" if args.calibration else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
