"""Solver settings and results: :class:`SolverOptions` (defaults in one place) and :class:`SolveResult`."""

from __future__ import annotations

import dataclasses

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
    method:            offline: 'segments' (default) — the chunk is cut into ~64 segments walked in
                       parallel, each frame warm-started from and regularised toward the previous
                       frame's solution (dex-retargeting's objective, one-sided temporal term);
                       'coupled' — the symmetric temporal term over all frames, solved jointly.
    """

    max_iterations: int = 40
    stream_iterations: int = 3
    temporal_weight: float | None = None
    ftol: float = 1e-6
    chunk_size: int = 2048
    damping: float = 1e-3
    low_pass: bool = True
    method: str = "segments"

    def __post_init__(self) -> None:
        for name in ("max_iterations", "stream_iterations", "chunk_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"solver option {name} must be >= 1, got {getattr(self, name)}")
        if self.temporal_weight is not None and not (self.temporal_weight >= 0):
            raise ConfigError(f"solver option temporal_weight must be >= 0, got {self.temporal_weight}")
        if not self.ftol > 0 or not self.damping > 0:
            raise ConfigError("solver options ftol and damping must be > 0")
        if self.method not in ("segments", "coupled"):
            raise ConfigError(f"solver option method is {self.method!r}; allowed: 'segments', 'coupled'")



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

