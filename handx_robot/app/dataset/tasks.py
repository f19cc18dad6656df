"""What a dataset run has to do: the input files, their sequences, and each task's identity.

A **task** is one sequence of one input file retargeted with one configuration. Its identity
(:func:`task_id`) hashes what determines its result and nothing else: the input file's content
(SHA-256 of its bytes, so a renamed or copied file is the same task), the sequence key in a
collection, the robot ids, the configuration hash (every option of the run, :func:`config_hash`) and
the code version (:func:`code_version`: the package version and a digest of the source files that
compute results). A rerun skips every task whose identity has a finished row in the manifest.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from handx_robot.errors import ConfigError, HandXError

__all__ = ["Task", "find_files", "list_tasks", "task_id", "config_hash", "code_version", "file_sha256", "clip_name", "InputFile", "scan"]

#: Suffixes of the files a folder is searched for (what :func:`handx_robot.readers.read_motion` reads).
INPUT_SUFFIXES = (".npy", ".npz", ".pkl", ".pickle")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclasses.dataclass(frozen=True)
class Task:
    """One sequence of one input file. ``error``: why the file cannot be read at all (format not
    recognised, not a motion file): the task is recorded as rejected without running."""

    source: str  # absolute path
    key: str | None  # sequence key in a collection, None for a file with one motion
    format: str | None  # reader format name (None when it could not be detected)
    input_sha256: str
    clip: str
    id: str
    error: str | None = None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def config_hash(config: dict) -> str:
    """12-hex hash of a run's configuration (canonical JSON of every option)."""
    return _digest(config)[:12]


def task_id(input_sha256: str, key: str | None, robots: dict, config: str, code: str) -> str:
    """16-hex identity of a task (see the module docstring)."""
    return _digest({"input": input_sha256, "key": key, "robots": robots, "config": config, "code": code})[:16]


def code_version() -> str:
    """``VERSION+DIGEST``: the package version and a digest of the source and config files of the layers
    that compute a task's result (core, retarget, sim, and the dataset worker); the command line, ROS
    nodes and text generator are left out."""
    import handx_robot
    import handx_robot.retarget
    import handx_robot.sim

    core = Path(handx_robot.__file__).parent
    roots = [(core, ("app", "ros", "generate")), (Path(handx_robot.retarget.__file__).parent, ()),
             (Path(handx_robot.sim.__file__).parent, ())]  # fmt: skip
    h = hashlib.sha256()
    for root, skip in roots:
        for f in sorted(root.rglob("*")):
            rel = f.relative_to(root)
            if f.suffix in (".py", ".yml", ".yaml", ".xml") and rel.parts[0] not in skip and "__pycache__" not in rel.parts:
                h.update(str(rel).encode() + b"\0" + f.read_bytes())
    h.update((core / "app" / "dataset" / "worker.py").read_bytes())
    return f"{handx_robot.__version__}+{h.hexdigest()[:10]}"


def _under(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def find_files(sources: Iterable[str], exclude: str | os.PathLike | None = None) -> list[Path]:
    """Input files of ``sources`` (files, folders searched recursively for :data:`INPUT_SUFFIXES`, and
    globs, ``**`` included), absolute, in a stable order, each once; hidden files and anything under
    ``exclude`` (the output folder) are left out. A source that names nothing is an error."""
    excl = Path(exclude).resolve() if exclude is not None else None
    found: dict[Path, None] = {}
    for src in sources:
        if _GLOB_CHARS.search(src):
            hits = [Path(p) for p in sorted(glob.glob(src, recursive=True)) if Path(p).is_file()]
        elif Path(src).is_dir():
            hits = sorted(p for p in Path(src).rglob("*") if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
        elif Path(src).is_file():
            hits = [Path(src)]
        else:
            raise ConfigError(f"{src}: no such file or folder, and no file matches it as a glob")
        hits = [p.resolve() for p in hits if not any(part.startswith(".") for part in p.parts[-1:])]
        hits = [p for p in hits if not _under(p, excl)]
        if not hits:
            raise ConfigError(f"{src}: holds no motion file ({', '.join(INPUT_SUFFIXES)})")
        found.update(dict.fromkeys(hits))
    return list(found)


def clip_name(path: Path, key: str | None) -> str:
    """``STEM[__KEY]-HASH6``: readable, and unique per (path, key) (HASH6 hashes the absolute path)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)
    if key is not None:
        safe += "__" + re.sub(r"[^A-Za-z0-9._-]+", "_", str(key))
    return f"{safe}-{hashlib.sha1(str(path).encode()).hexdigest()[:6]}"


@dataclasses.dataclass(frozen=True)
class InputFile:
    """An input file, its reader format and the sequence keys it holds (``[None]``: one motion);
    ``error``: why it cannot be read (then ``keys == [None]``)."""

    path: Path
    format: str | None
    keys: tuple[str | None, ...]
    error: str | None = None


def scan(files: Iterable[Path], fmt: str | None = None) -> list[InputFile]:
    """Format and sequence keys of each file (headers only for ``.npy``/``.npz``)."""
    from handx_robot.readers import detect_format, sequence_keys

    out = []
    for path in files:
        try:
            form = fmt or detect_format(path)
            out.append(InputFile(path, form, tuple(sequence_keys(path, form))))
        except HandXError as exc:
            out.append(InputFile(path, fmt, (None,), f"{type(exc).__name__}: {exc}"))
    return out


def list_tasks(inputs: Iterable[InputFile], robots: dict, config: str, code: str) -> Iterator[Task]:
    """The tasks of ``inputs`` in order, one per sequence; each file is hashed once, when reached."""
    for f in inputs:
        sha = file_sha256(f.path)
        for key in f.keys:
            yield Task(source=str(f.path), key=key, format=f.format, input_sha256=sha, clip=clip_name(f.path, key),
                       id=task_id(sha, key, robots, config, code), error=f.error)  # fmt: skip
