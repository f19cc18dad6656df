"""Simulator backends of the tracking env (:mod:`handx_robot.sim.tracking_env`).

============== ============================================ ===========================================
backend        module                                       status
============== ============================================ ===========================================
``mujoco``     :mod:`handx_robot.sim.backends.mujoco_backend`           CPU, ``B`` MjData stepped in turn; tested
``isaacgym``   :mod:`handx_robot.sim.backends.isaacgym_backend`         PhysX GPU tensor API; experimental: not run
                                                            here (no GPU, not on PyPI); type-checked
                                                            against isaacgym-stubs
                                                            (``scripts/typecheck_isaacgym.sh``)
``mjx``        :mod:`handx_robot.sim.backends.mjx_backend`              MuJoCo XLA, ``B`` envs in one jit-compiled
                                                            ``vmap`` (GPU where JAX has one); tested on
                                                            the CPU at small batch
============== ============================================ ===========================================

Backends are imported lazily by :func:`make_backend` / :func:`backend_class`; importing this package
imports no simulator. Each backend takes its own config dataclass (``config_class``: MuJoCo and MJX
:class:`~handx_robot.sim.backends.mujoco_backend.MujocoBackendConfig`, Isaac Gym
:class:`~handx_robot.sim.backends.isaacgym_backend.IsaacGymConfig`), built for the tracking env by
``config_class.from_tracking``; a config of the wrong type raises :class:`handx_robot.errors.ConfigError`.
"""

from __future__ import annotations

from handx_robot.sim.backends.base import BackendLayout, HandLayout, KinematicsResult, SimBackend, SimState

__all__ = [
    "SimBackend", "SimState", "HandLayout", "BackendLayout", "KinematicsResult", "BACKENDS", "backend_class", "make_backend",
]

#: backend name -> "module:class"
BACKENDS: dict[str, str] = {
    "mujoco": "handx_robot.sim.backends.mujoco_backend:MujocoBackend",
    "isaacgym": "handx_robot.sim.backends.isaacgym_backend:IsaacGymBackend",
    "mjx": "handx_robot.sim.backends.mjx_backend:MjxBackend",
}


def backend_class(name: str) -> type[SimBackend]:
    """The class of backend ``name`` (a key of :data:`BACKENDS`), importing its module (not its simulator)."""
    import importlib

    from handx_robot.errors import ConfigError

    if name not in BACKENDS:
        raise ConfigError(f"unknown simulator backend {name!r}; available: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_backend(name: str, hands, num_envs: int = 1, config=None, **kwargs) -> SimBackend:
    """Build backend ``name`` (a key of :data:`BACKENDS`) for ``hands`` (:class:`handx_robot.sim.scene.HandModel`
    per side), importing its simulator only now. ``config``: the backend's config (its ``config_class``:
    :class:`handx_robot.sim.backends.mujoco_backend.MujocoBackendConfig` for ``mujoco`` and ``mjx``,
    :class:`handx_robot.sim.backends.isaacgym_backend.IsaacGymConfig` for ``isaacgym``); ``kwargs``: the
    backend constructor's other keywords (``device`` for ``mjx``)."""
    return backend_class(name)(hands, num_envs=num_envs, config=config, **kwargs)
