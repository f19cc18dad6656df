"""Solver settings and results: :class:`SolverOptions` (defaults in one place) and :class:`SolveResult`."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from handx_robot.errors import ConfigError

__all__ = ["SolverOptions", "SolveResult"]


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """Solver settings (defaults in one place; override with ``dataclasses.replace``).

    max_iterations:    LM iterations per chunk (offline).
    stream_iterations: LM iterations per frame when streaming (warm start).
    temporal_weight:   lambda of ``lambda |q_t - q_{t-1}|^2``; None = the config's ``normal_delta``.
    ftol:              convergence: predicted objective decrease of another step below this.
    chunk_size:        frames per batch offline.
    damping:           initial LM damping (relative to the Gauss-Newton Hessian's diagonal).
    low_pass:          apply the config's ``low_pass_alpha`` filter to the output (as dex-retargeting).
    method:            offline: 'sequential' (default) — the frames one after the other, each
                       warm-started from and regularised toward the previous frame's solution
                       (dex-retargeting's objective, one-sided temporal term; compiled);
                       'coupled' — the symmetric temporal term over all frames, solved jointly.
                       'segments' (the default until 2026-12) is read as 'sequential', with a warning.
    """

    max_iterations: int = 40
    stream_iterations: int = 3
    temporal_weight: float | None = None
    ftol: float = 1e-6
    chunk_size: int = 2048
    damping: float = 1e-3
    low_pass: bool = True
    method: str = "sequential"

    def __post_init__(self) -> None:
        for name in ("max_iterations", "stream_iterations", "chunk_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"solver option {name} must be >= 1, got {getattr(self, name)}")
        if self.temporal_weight is not None and not (self.temporal_weight >= 0):
            raise ConfigError(f"solver option temporal_weight must be >= 0, got {self.temporal_weight}")
        if not self.ftol > 0 or not self.damping > 0:
            raise ConfigError("solver options ftol and damping must be > 0")
        if self.method == "segments":  # its segments' starts made the joints jump: the walk replaced it
            warnings.warn("solver option method 'segments' is now 'sequential' (same objective, no segment starts)",
                          FutureWarning, stacklevel=3)  # fmt: skip
            object.__setattr__(self, "method", "sequential")
        if self.method not in ("sequential", "coupled"):
            raise ConfigError(f"solver option method is {self.method!r}; allowed: 'sequential', 'coupled'")



@dataclasses.dataclass(frozen=True)
class SolveResult:
    """Solver output for N frames.

    q:          (N, n) dofs (``problem.tree.dof_names`` order), radians / metres.
    qpos:       (N, J) model joint positions in ``problem.joint_names`` order (mimic included).
    converged:  (N,) bool.
    objective:  (N,) dex-retargeting's objective at the solution.
    iterations: (N,) LM iterations spent on the frame's chunk.
    """

    q: np.ndarray
    qpos: np.ndarray
    converged: np.ndarray
    objective: np.ndarray
    iterations: np.ndarray

    @property
    def num_failed(self) -> int:
        return int((~self.converged).sum())

