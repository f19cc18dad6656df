"""Reuse of costly objects between calls in one process: compiled MuJoCo worlds of the same robots.

Building a two-hand MuJoCo world compiles both hand models (tenths of a second); a dataset worker or a
long-running node retargets many clips with the same robots. :class:`Pool` keeps built objects by key.
:meth:`Pool.borrow` hands one object to one caller at a time (another caller at the same moment gets a
new one), so a pooled object is never shared between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["Pool"]

T = TypeVar("T")


class Pool(Generic[T]):
    """Objects built by ``build()`` kept per ``key``: at most ``per_key`` idle ones per key and
    ``max_keys`` keys (the oldest key is dropped first)."""

    def __init__(self, per_key: int = 2, max_keys: int = 8) -> None:
        self.per_key, self.max_keys = per_key, max_keys
        self._idle: dict[Hashable, list[T]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self, key: Hashable, build: Callable[[], T]) -> Iterator[T]:
        """An idle object of ``key``, or a new one from ``build()``; returned to the pool afterwards."""
        with self._lock:
            idle = self._idle.get(key)
            obj = idle.pop() if idle else None
        if obj is None:
            obj = build()
        yield obj
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.per_key:
                idle.append(obj)
            while len(self._idle) > self.max_keys:
                self._idle.pop(next(iter(self._idle)))

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()
