"""Simulator backends of the tracking env (:mod:`sim.tracking_env`).

============== ============================================ ===========================================
backend        module                                       status
============== ============================================ ===========================================
``mujoco``     :mod:`sim.backends.mujoco_backend`           CPU, ``B`` MjData stepped in turn; tested
``isaacgym``   :mod:`sim.backends.isaacgym_backend`         GPU tensor API; experimental, untested
``mjx``        --                                           not done: no ``mujoco-mjx`` release matches
                                                            mujoco 4.0.0 (latest 3.17.0, Nov 2026)
============== ============================================ ===========================================

Backends are imported lazily by :func:`make_backend`; importing this package imports no simulator.
"""

from __future__ import annotations

from sim.backends.base import BackendLayout, HandLayout, KinematicsResult, SimBackend, SimState

__all__ = ["SimBackend", "SimState", "HandLayout", "BackendLayout", "KinematicsResult", "BACKENDS"]

#: backend name -> "module:class"
BACKENDS: dict[str, str] = {
    "mujoco": "sim.backends.mujoco_backend:MujocoBackend",
    "isaacgym": "sim.backends.isaacgym_backend:IsaacGymBackend",
}
