"""Pytest plugin: how long Python's cyclic garbage collector pauses, inside and outside ROS graphs.

Records every collection of the test session with its duration and whether a
:class:`ros_harness.RosGraph` (tests/ros_harness.py) was spinning (a thread named ``ros-spin``), and prints, at the end:
the collections while a graph ran (count, longest, how many over 20 ms) and the longest outside,
plus the full (generation 2) collections' median and longest. The graphs call ``gc.freeze()`` once
built (:func:`handx_robot.ros.common.freeze_gc`); full collections of the session's heap outside them are
what a graph would otherwise suffer.

Rerun: ``PYTHONPATH=benchmarks .venv/bin/pytest -q -s -p gc_pause_probe tests/ -k "not tracking_vec and not tracking_train"``
"""

from __future__ import annotations

import gc
import threading
import time

import numpy as np

_start: dict[str, float] = {}
_records: list[tuple[int, float, bool]] = []  # (generation, seconds, a ROS graph was spinning)


def _callback(phase: str, info: dict) -> None:
    if phase == "start":
        _start["t"] = time.perf_counter()
        return
    in_graph = any(t.name == "ros-spin" for t in threading.enumerate())
    _records.append((int(info["generation"]), time.perf_counter() - _start.get("t", time.perf_counter()), in_graph))


def pytest_configure(config) -> None:
    gc.callbacks.append(_callback)


def pytest_sessionfinish(session) -> None:
    inside = [d for _, d, g in _records if g]
    outside = [d for _, d, g in _records if not g]
    full = [d for gen, d, _ in _records if gen == 2]
    print(f"\nGC while a ROS graph ran: {len(inside)} collections, longest {1e3 * max(inside, default=0):.1f} ms, "
          f"{sum(d > 0.02 for d in inside)} over 20 ms; longest outside: {1e3 * max(outside, default=0):.1f} ms")
    if full:
        print(f"full (gen 2) collections: {len(full)}, median {1e3 * np.median(full):.1f} ms, longest {1e3 * max(full):.1f} ms")
