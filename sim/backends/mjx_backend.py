"""MuJoCo XLA (MJX) backend: ``num_envs`` copies of one :class:`handx_robot.sim.scene.HandScene` stepped as one
batched, jit-compiled JAX computation (``jax.vmap`` over envs), on a GPU where JAX has one, else on the CPU.

The scene, layout, reference kinematics and rendering are the MuJoCo CPU backend's
(:class:`handx_robot.sim.backends.mujoco_backend.MujocoBackend`, which this class extends): the same MjModel goes
to MJX with ``mjx.put_model``, so the env logic sees identical joint names, fingertips and limits.

What differs from the CPU backend (and why the two do not agree to the last digit):

* JAX computes in float32 unless ``jax_enable_x64`` is set; MJX's collision detection is its own
  (convex meshes, fixed-size contact buffer), its solver runs a fixed number of iterations.
* MuJoCo's bad-acceleration warning does not exist in MJX: an env is flagged ``unstable`` when its
  state turns NaN/inf or a joint speed exceeds ``MAX_SPEED`` (rad/s or m/s).
* ``reset`` / ``set_state`` are done on the CPU (MuJoCo's ``mj_forward``) and uploaded; ``step``
  and the state read-back run on the device. The first ``step`` compiles (once per process and batch
  size; its cost: see benchmarks/RESULTS.md (benchmarks/tracking_env_speed.py)).

Install: ``pip install 'handx_robot[rl]'`` brings ``jax`` (CPU) and ``mujoco-mjx``; for a GPU
install a CUDA build of jaxlib as JAX's documentation says. Units: see :mod:`handx_robot.sim.backends.base`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import mujoco
import numpy as np
from handx_robot.sim.backends.base import SimState
from handx_robot.sim.backends.mujoco_backend import MujocoBackend, MujocoBackendConfig
from handx_robot.sim.scene import HandModel

from handx_robot.errors import ConfigError

__all__ = ["MjxBackend", "MAX_SPEED"]

log = logging.getLogger(__name__)

#: |qvel| above this (rad/s, m/s) counts as diverged physics
MAX_SPEED = 1e3


def _import_mjx():
    import contextlib
    import io

    try:
        import jax

        with contextlib.redirect_stdout(io.StringIO()):  # mjx prints that its optional warp backend is absent
            from mujoco import mjx
    except ImportError as exc:  # pragma: no cover - both are in the rl extra
        raise ConfigError(
            f"the 'mjx' backend needs jax and mujoco-mjx ({exc}); pip install 'handx_robot[rl]', "
            "or use backend 'mujoco'"
        ) from exc
    return jax, mjx


def _jax_device(jax, device):
    """A JAX device from a device, a platform name (``cpu``, ``gpu``, ``cuda``) with an optional ``:index``,
    or None (JAX's default); an unknown name raises :class:`ConfigError` listing the devices there are."""
    if device is None:
        return jax.devices()[0]
    if not isinstance(device, str):
        return device
    platform, _, index = device.partition(":")
    try:
        devices = jax.devices(platform)
        return devices[int(index or 0)]
    except (RuntimeError, ValueError, IndexError) as exc:
        have = ", ".join(f"{d.platform}:{d.id}" for d in jax.devices())
        raise ConfigError(f"MjxBackend: device={device!r} is not available ({exc}); JAX has {have}") from exc


class MjxBackend(MujocoBackend):
    """Batched MJX backend. ``hands``: :class:`handx_robot.sim.scene.HandModel` per side; ``config``: a
    :class:`MujocoBackendConfig` (None: defaults); ``device``: a JAX device or its name (``"cpu"``,
    ``"gpu"``, ``"cuda:0"``; ``None``: JAX's default, the GPU when there is one)."""

    def __init__(
        self,
        hands: Mapping[str, HandModel] | Sequence[HandModel],
        num_envs: int = 1,
        config: MujocoBackendConfig | None = None,
        device=None,
    ):
        jax, mjx = _import_mjx()
        super().__init__(hands, num_envs=num_envs, config=config)  # CPU scene: layout, staging MjData per env
        self._jax, self._mjx = jax, mjx
        self.device = _jax_device(jax, device)
        m = self.model
        try:
            self._mx = jax.device_put(mjx.put_model(m), self.device)
        except NotImplementedError as exc:
            raise ConfigError(f"MJX cannot simulate this scene: {exc}; use backend 'mujoco'") from exc
        self._dx = self._stack([mjx.put_data(m, d) for d in self.datas])
        self._host_fresh = np.ones(self.num_envs, dtype=bool)  # staging MjData == device state (no step since)
        n = int(self.layout.substeps)
        jnp = jax.numpy

        def substeps(d):
            d = jax.lax.fori_loop(0, n, lambda _, x: mjx.step(self._mx, x), d)
            # positions and contacts at the end of the step (mjx.step leaves them one step old)
            return mjx.collision(self._mx, mjx.kinematics(self._mx, d))

        def readout(d):
            return {
                "qpos": d.qpos, "qvel": d.qvel, "xpos": d.xpos, "xquat": d.xquat, "xmat": d.xmat,
                # MJX's contact buffer: a row per candidate pair, a contact where dist <= includemargin (the sum of
                # the two geoms' margins, as mj_collision lists a pair)
                "dist": d._impl.contact.dist, "geom": d._impl.contact.geom,  # noqa: SLF001
                "margin": d._impl.contact.includemargin,  # noqa: SLF001
                "finite": jnp.isfinite(d.qpos).all() & jnp.isfinite(d.qvel).all(),
                "speed": jnp.abs(d.qvel).max(),
            }

        batched = jax.vmap(substeps)
        self._step_fn = jax.jit(lambda d: (lambda d2: (d2, jax.vmap(readout)(d2)))(batched(d)))
        self._last: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ helpers
    def _stack(self, datas: list):
        jax = self._jax
        return jax.device_put(jax.tree_util.tree_map(lambda *xs: jax.numpy.stack(xs), *datas), self.device)

    def _upload(self, ids: list[int]) -> None:
        """Replace envs ``ids`` of the device batch with their staging MjData (after reset / set_state)."""
        if not hasattr(self, "_dx"):  # during MujocoBackend.__init__ (its reset())
            return
        fresh = self._stack([self._mjx.put_data(self.model, self.datas[b]) for b in ids])
        idx = self._jax.numpy.asarray(ids)
        self._dx = self._jax.tree_util.tree_map(lambda full, part: full.at[idx].set(part), self._dx, fresh)
        self._host_fresh[ids] = True

    # ------------------------------------------------------------------ SimBackend
    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        super().reset(env_ids)
        self._upload(self._ids(env_ids))

    def set_state(self, env_ids, qpos, qvel, wrist_pose, wrist_vel=None) -> None:
        super().set_state(env_ids, qpos, qvel, wrist_pose, wrist_vel)
        self._upload(self._ids(env_ids))

    def step(self) -> None:
        jnp = self._jax.numpy
        ds = self.datas
        dx = self._dx.replace(
            ctrl=jnp.asarray(np.stack([d.ctrl for d in ds])),
            mocap_pos=jnp.asarray(np.stack([d.mocap_pos for d in ds])),
            mocap_quat=jnp.asarray(np.stack([d.mocap_quat for d in ds])),
            qfrc_applied=jnp.asarray(self._ff),
        )
        self._dx, out = self._step_fn(dx)
        self._last = {k: np.asarray(v) for k, v in out.items()}
        self._host_fresh[:] = False
        bad = ~self._last["finite"] | (self._last["speed"] > MAX_SPEED)
        for b in np.flatnonzero(bad & ~self._unstable):
            log.warning("env %d: the physics diverged (NaN/inf or a joint faster than %g); the episode ends", b, MAX_SPEED)
        self._unstable |= bad

    def read_state(self) -> SimState:
        if self._last is None or self._host_fresh.any():
            # some envs were teleported since the last step: their staging MjData are exact
            st = super().read_state()
            if self._last is None or self._host_fresh.all():
                return st
            dev = self._device_state()
            keep = self._host_fresh
            for field in ("qpos", "qvel", "wrist_pose", "wrist_vel", "fingertips"):
                for side in getattr(st, field):
                    getattr(dev, field)[side][keep] = getattr(st, field)[side][keep]
            dev.hand_contact[keep], dev.hand_hand_depth[keep] = st.hand_contact[keep], st.hand_hand_depth[keep]
            return dev
        return self._device_state()

    def _device_state(self) -> SimState:
        r = self._last
        assert r is not None
        B = self.num_envs
        qpos, qvel, wpose, wvel, tips = {}, {}, {}, {}, {}
        for side, ix in self._idx.items():
            qpos[side] = r["qpos"][:, ix.qadr].astype(np.float64)
            qvel[side] = r["qvel"][:, ix.vadr].astype(np.float64)
            wpose[side] = np.concatenate([r["xpos"][:, ix.mount_id], r["xquat"][:, ix.mount_id]], axis=1).astype(np.float64)
            rot = r["xmat"][:, ix.mount_id].reshape(B, 3, 3).astype(np.float64)
            v = r["qvel"][:, ix.free_vadr : ix.free_vadr + 6].astype(np.float64)
            wvel[side] = np.concatenate([v[:, :3], (rot @ v[:, 3:, None])[:, :, 0]], axis=1)
            wpose[side], wvel[side] = self._to_base(side, wpose[side], wvel[side])
        xmat = r["xmat"][:, self._tip_body].reshape(B, -1, 3, 3).astype(np.float64)
        all_tips = r["xpos"][:, self._tip_body].astype(np.float64) + (xmat @ self._tip_off[None, :, :, None])[..., 0]
        for side, sl in self._tip_slice.items():
            tips[side] = all_tips[:, sl]
        geom, dist = r["geom"], r["dist"].astype(np.float64)
        margin = r["margin"].astype(np.float64)
        s1, s2 = self._geom_side[geom[..., 0]], self._geom_side[geom[..., 1]]
        hh = (s1 >= 0) & (s2 >= 0) & (s1 != s2) & (dist <= margin)
        contact = hh.any(axis=1)
        depth = np.where(hh, np.maximum(-dist, 0.0), 0.0).max(axis=1) if hh.size else np.zeros(B)
        return SimState(qpos, qvel, wpose, wvel, tips, contact, depth, self._unstable.copy())

    def render(self, env_id: int = 0, camera: str | None = None, width: int = 640, height: int = 480) -> np.ndarray:
        b = self._ids([env_id])[0]
        if not self._host_fresh[b] and self._last is not None:
            d = self.datas[b]  # bring the device state of this env to its staging MjData to draw it
            d.qpos[:] = self._last["qpos"][b]
            d.qvel[:] = self._last["qvel"][b]
            mujoco.mj_forward(self.model, d)
        return super().render(env_id, camera, width, height)
