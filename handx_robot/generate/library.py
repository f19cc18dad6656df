"""Retrieval generator (``library``): the captured motion whose caption is nearest to the prompt.

A library is a folder (searched recursively) or a list of files:

* our motion files (``*.npz`` written by :func:`handx_robot.motion.save_motion`), captioned by their ``text``;
* HandX files any :func:`handx_robot.readers.read_motion` format reads (``*_can_pos_*.npz`` collections,
  ``.npy`` skeletons), captioned by a sidecar: ``<stem>.json`` mapping sequence key -> caption or list of
  captions (a collection), or ``<stem>.txt`` with one caption per line (a single sequence).

Captions are embedded once (all-MiniLM-L6-v2, :mod:`handx_robot.generate.embedding`); motions are read
only when retrieved. Similarity is cosine, in [-1, 1]; a prompt whose best similarity is under
``min_score`` is an error that lists the closest captions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handx_robot.errors import ConfigError, HandXError, MotionFormatError
from handx_robot.generate.base import MotionGenerator
from handx_robot.motion import BimanualMotion, load_motion

__all__ = ["LibraryEntry", "Match", "LibraryGenerator"]

log = logging.getLogger(__name__)

_SUFFIXES = (".npz", ".npy", ".pkl")


@dataclasses.dataclass(frozen=True)
class LibraryEntry:
    """One captioned motion: ``path`` (+ ``key`` inside a collection) and its caption."""

    path: Path
    key: str | None
    caption: str


@dataclasses.dataclass(frozen=True)
class Match:
    """A retrieval result: the entry and its cosine similarity to the prompt."""

    entry: LibraryEntry
    score: float


def _sidecar_captions(path: Path) -> dict[str | None, list[str]]:
    out: dict[str | None, list[str]] = {}
    js = path.with_suffix(".json")
    if js.is_file():
        try:
            data = json.loads(js.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MotionFormatError(f"{js}: not a readable JSON caption file ({exc}); it must map key -> caption(s)") from exc
        if not isinstance(data, dict):
            raise MotionFormatError(f"{js}: must map sequence key -> caption or list of captions, got {type(data).__name__}")
        for k, v in data.items():
            caps = [v] if isinstance(v, str) else list(v) if isinstance(v, list) else []
            out[str(k)] = [str(c).strip() for c in caps if str(c).strip()]
    txt = path.with_suffix(".txt")
    if txt.is_file():
        lines = [ln.strip() for ln in txt.read_text(encoding="utf-8").splitlines() if ln.strip()]
        out.setdefault(None, []).extend(lines)
    return out


def _npz_text(path: Path) -> str | None:
    """The ``text`` of one of our motion files, or None when ``path`` is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "joints" in data.files and "text" in data.files and data["joints"].ndim == 4:
                return str(data["text"])
    except Exception:  # not a plain npz: the reader decides later
        return None
    return None


class LibraryGenerator(MotionGenerator):
    """Retrieval over a captioned motion collection.

    root:      folder or list of files. fps: output fps (motions are resampled).
    min_score: similarity under which retrieval fails with the closest captions listed.
    embedder:  a :class:`~handx_robot.generate.embedding.SentenceEmbedder` (default: the shared one).
    """

    name = "library"

    def __init__(
        self,
        root: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        fps: float = 30.0,
        min_score: float = 0.3,
        embedder=None,
    ) -> None:
        if root is None:
            raise ConfigError(
                "the 'library' generator needs a motion collection: pass root=FOLDER (CLI: --library FOLDER) "
                "with motion .npz files that carry a caption (text) or HandX files with caption sidecars"
            )
        if not (np.isfinite(fps) and fps > 0):
            raise ConfigError(f"fps is {fps}; pass a frame rate > 0")
        self.fps = float(fps)
        self.min_score = float(min_score)
        self._embedder = embedder
        self.entries: list[LibraryEntry] = self._scan(root)
        if not self.entries:
            raise ConfigError(
                f"library {root}: no captioned motions found; give motion .npz files with a 'text' caption, or "
                "HandX files with a <stem>.json / <stem>.txt caption sidecar"
            )
        self._vecs: np.ndarray | None = None

    @staticmethod
    def _scan(root) -> list[LibraryEntry]:
        paths: list[Path] = []
        roots = [root] if isinstance(root, (str, os.PathLike)) else list(root)
        for r in roots:
            r = Path(r)
            if r.is_dir():
                paths.extend(sorted(p for p in r.rglob("*") if p.suffix in _SUFFIXES and p.is_file()))
            elif r.is_file():
                paths.append(r)
            else:
                raise ConfigError(f"library path {r} does not exist; pass a folder or motion files")
        entries = []
        for p in paths:
            sidecar = _sidecar_captions(p)
            text = _npz_text(p) if p.suffix == ".npz" else None
            caps: list[tuple[str | None, str]] = [(k, c) for k, cs in sidecar.items() for c in cs]
            if text:
                caps.append((None, text))
            if not caps:
                log.info("library: %s has no caption, skipped", p)
                continue
            entries.extend(LibraryEntry(p, k, c) for k, c in caps)
        return entries

    @property
    def embedder(self):
        if self._embedder is None:
            from handx_robot.generate.embedding import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    def retrieve(self, prompt: str, k: int = 5) -> list[Match]:
        """The ``k`` entries nearest to ``prompt``, best first."""
        if self._vecs is None:
            self._vecs = self.embedder.encode([e.caption for e in self.entries])
        sims = self._vecs @ self.embedder.encode([prompt])[0]
        order = np.argsort(-sims)[:k]
        return [Match(self.entries[i], float(sims[i])) for i in order]

    def load(self, entry: LibraryEntry) -> BimanualMotion:
        """Read one entry's motion (frame ``handx_yup``)."""
        try:
            motion = load_motion(entry.path)
        except MotionFormatError:
            from handx_robot.readers import read_motion

            motion = read_motion(entry.path, key=entry.key)
        return motion.in_frame("handx_yup")

    def _generate(self, prompt, seconds, seed, constraints) -> BimanualMotion:
        matches = self.retrieve(prompt, k=max(5, len(self.entries)))
        best = matches[0]
        if best.score < self.min_score:
            top = "; ".join(f"{m.entry.caption!r} ({m.score:.2f})" for m in matches[:3])
            raise ConfigError(
                f"no motion in the library matches {prompt!r} (best similarity {best.score:.2f} < {self.min_score}); "
                f"closest captions: {top}"
            )
        # the seed picks among near-ties, so that several takes of one caption all get used
        ties = [m for m in matches if m.score >= best.score - 0.02]
        chosen = ties[int(seed) % len(ties)]
        try:
            motion = self.load(chosen.entry)
        except HandXError:
            raise
        log.info("library: %r -> %s (%r, similarity %.3f)", prompt, chosen.entry.path, chosen.entry.caption, chosen.score)
        if abs(motion.fps - self.fps) > 1e-9:
            motion = motion.resample(self.fps)
        if seconds is not None:
            n = max(2, int(round(seconds * self.fps)) + 1)
            J = motion.joints
            if len(J) >= n:
                J = J[:n]
            else:  # hold the last frame
                J = np.concatenate([J, np.repeat(J[-1:], n - len(J), axis=0)])
            motion = motion.replace(joints=J, mano={})
        key = f"#{chosen.entry.key}" if chosen.entry.key else ""
        return motion.replace(
            text=chosen.entry.caption,
            source=f"library:{chosen.entry.path}{key} (similarity {chosen.score:.3f} to {prompt!r})",
        )
