"""Tracking policies on disk: save with metadata, load without unpickling, check, export to TorchScript.

A policy file is stable-baselines3's PPO ``.zip`` plus one member of ours, ``handx_tracking.json``:

================== ===============================================================================
key                meaning
================== ===============================================================================
format, version    ``handx-robot-tracking-policy``, 1
signature          what the policy depends on (:meth:`handx_robot.sim.tracking_env.TrackingTask.signature`): robots
                   per side, horizon K, control_dt (s), observation and action fields, action scales
tracking_config    the :class:`handx_robot.sim.tracking_env.TrackingConfig` it was trained with
net_arch, activation the actor MLP (hidden sizes; ``tanh`` / ``relu``)
obs_norm           running mean / var of the observations (VecNormalize), ``clip``, ``epsilon``; or null
training           motions, steps, seed, wall time, PPO settings
================== ===============================================================================

:func:`load_policy` reads only that JSON and ``policy.pth`` (``torch.load(weights_only=True)``): the
pickled parts of an SB3 zip are never executed, so a policy from elsewhere cannot run code here.
The deterministic action is ``clip(action_net(actor_mlp(normalize(obs))), -1, 1)`` (SB3's
``predict(deterministic=True)``); :func:`export_torchscript` writes exactly that as one module.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from handx_robot.errors import ConfigError, MissingDependencyError, ModelLoadError
from handx_robot.motion import atomic_write

__all__ = [
    "POLICY_FORMAT",
    "META_MEMBER",
    "PolicyMismatchError",
    "TrackingPolicy",
    "save_policy",
    "load_policy",
    "read_policy_metadata",
    "check_compatible",
    "export_torchscript",
]

log = logging.getLogger(__name__)

POLICY_FORMAT = "handx-robot-tracking-policy"
POLICY_VERSION = 1
META_MEMBER = "handx_tracking.json"
_ACTIVATIONS = ("tanh", "relu")


class PolicyMismatchError(ConfigError):
    """A policy was trained for another observation/action layout, horizon or control rate."""


# ------------------------------------------------------------------------------------------------ save
def save_policy(model, path: str | os.PathLike, signature: Mapping, tracking_config: Mapping, *,
                obs_rms=None, clip_obs: float = 10.0, epsilon: float = 1e-8, training: Mapping | None = None) -> Path:
    """Write ``model`` (an SB3 PPO) and our metadata to ``path`` atomically.

    obs_rms: SB3 ``RunningMeanStd`` of the observations (``VecNormalize.obs_rms``) or None.
    """
    import torch

    arch = model.policy.net_arch
    net_arch = list(arch["pi"] if isinstance(arch, dict) else arch)
    act = model.policy.activation_fn
    activation = {torch.nn.Tanh: "tanh", torch.nn.ReLU: "relu"}.get(act)
    if activation is None:
        raise ConfigError(f"save_policy: activation {act.__name__} is not supported; use one of {_ACTIVATIONS}")
    meta = {
        "format": POLICY_FORMAT,
        "version": POLICY_VERSION,
        "signature": dict(signature),
        "tracking_config": dict(tracking_config),
        "net_arch": [int(n) for n in net_arch],
        "activation": activation,
        "obs_norm": None if obs_rms is None else {
            "mean": np.asarray(obs_rms.mean, dtype=np.float64).tolist(),
            "var": np.asarray(obs_rms.var, dtype=np.float64).tolist(),
            "clip": float(clip_obs),
            "epsilon": float(epsilon),
        },
        "training": dict(training or {}),
    }

    def write(tmp: str) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(META_MEMBER, json.dumps(meta, indent=1))

    return atomic_write(Path(path), write)


# ------------------------------------------------------------------------------------------------ load
def read_policy_metadata(path: str | os.PathLike) -> dict:
    """The ``handx_tracking.json`` of a policy zip (errors name the file and what is wrong)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: policy file not found (--policy); train one with `handx-robot train-tracker`")
    try:
        with zipfile.ZipFile(path) as z:
            if META_MEMBER not in z.namelist():
                raise ModelLoadError(
                    f"{path}: no {META_MEMBER} inside; this is not a handx-robot tracking policy (a plain "
                    "stable-baselines3 zip has no observation layout to check). Retrain with `handx-robot train-tracker`."
                )
            meta = json.loads(z.read(META_MEMBER).decode("utf-8"))
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(f"{path}: not a zip file ({exc}); --policy expects a policy .zip") from exc
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}: {META_MEMBER} is not valid JSON ({exc})") from exc
    if meta.get("format") != POLICY_FORMAT:
        raise ModelLoadError(f"{path}: {META_MEMBER} format is {meta.get('format')!r}, expected {POLICY_FORMAT!r}")
    if int(meta.get("version", -1)) > POLICY_VERSION:
        raise ModelLoadError(
            f"{path}: policy format version {meta.get('version')} is newer than this handx-robot reads "
            f"({POLICY_VERSION}); upgrade handx-robot"
        )
    for key in ("signature", "tracking_config", "net_arch", "activation"):
        if key not in meta:
            raise ModelLoadError(f"{path}: {META_MEMBER} lacks {key!r}")
    if meta["activation"] not in _ACTIVATIONS:
        raise ModelLoadError(f"{path}: activation {meta['activation']!r}; allowed: {_ACTIVATIONS}")
    return meta


def check_compatible(meta: Mapping, env_signature: Mapping, path: str | os.PathLike = "policy") -> None:
    """Raise :class:`handx_robot.sim.tracking_env.RobotMismatchError` (robots) or :class:`PolicyMismatchError`
    (layout, horizon, control rate) when a policy does not fit an env."""
    from handx_robot.sim.tracking_env import RobotMismatchError

    sig = meta["signature"]
    if dict(sig.get("robots", {})) != dict(env_signature["robots"]):
        raise RobotMismatchError(
            f"{path}: the policy was trained for robots {sig.get('robots')}, the motion uses {env_signature['robots']}; "
            "track motions retargeted for the policy's robots, or train a policy for these robots"
        )
    diffs = []
    for key in ("layout_version", "horizon", "control_dt", "obs_fields", "act_fields", "action_scales"):
        a, b = sig.get(key), env_signature.get(key)
        if key == "control_dt" and a is not None and b is not None:
            same = abs(float(a) - float(b)) < 1e-9
        else:
            same = json.loads(json.dumps(a)) == json.loads(json.dumps(b))
        if not same:
            diffs.append(key if key in ("obs_fields", "act_fields") else f"{key} (policy {a}, env {b})")
    if diffs:
        raise PolicyMismatchError(
            f"{path}: the policy does not fit this env: {', '.join(diffs)} differ. It was trained with another "
            "observation/action layout (horizon K, robots' joints, frame rate); retrain it for these motions "
            "(`handx-robot train-tracker`) or use the env settings stored in the policy."
        )


def _build_actor(state: Mapping[str, Any], meta: Mapping, path: Path):
    import torch

    n_layers = len(meta["net_arch"])
    act_cls = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[meta["activation"]]
    layers: list[torch.nn.Module] = []
    try:
        for i in range(n_layers):
            w, b = state[f"mlp_extractor.policy_net.{2 * i}.weight"], state[f"mlp_extractor.policy_net.{2 * i}.bias"]
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            lin.weight.data.copy_(w)
            lin.bias.data.copy_(b)
            layers += [lin, act_cls()]
        w, b = state["action_net.weight"], state["action_net.bias"]
    except KeyError as exc:
        raise ModelLoadError(f"{path}: policy.pth lacks {exc}; net_arch {meta['net_arch']} does not match the weights") from exc
    head = torch.nn.Linear(w.shape[1], w.shape[0])
    head.weight.data.copy_(w)
    head.bias.data.copy_(b)
    layers.append(head)
    return torch.nn.Sequential(*layers)


def _actor_module(actor, obs_dim: int, norm: Mapping | None):
    import torch

    class TrackingActor(torch.nn.Module):
        """obs (B, obs_dim) float32 -> action (B, act_dim) in [-1, 1] (normalization included)."""

        def __init__(self):
            super().__init__()
            self.actor = actor
            mean = np.zeros(obs_dim) if norm is None else np.asarray(norm["mean"])
            std = np.ones(obs_dim) if norm is None else np.sqrt(np.asarray(norm["var"]) + norm["epsilon"])
            self.register_buffer("obs_mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("obs_std", torch.as_tensor(std, dtype=torch.float32))
            self.clip = float(1e9 if norm is None else norm["clip"])

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            x = torch.clamp((obs - self.obs_mean) / self.obs_std, -self.clip, self.clip)
            return torch.clamp(self.actor(x), -1.0, 1.0)

    module = TrackingActor().eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module


@dataclasses.dataclass
class TrackingPolicy:
    """A loaded policy: ``policy(obs)`` -> deterministic action (numpy), ``meta`` its metadata."""

    module: Any
    meta: dict
    path: Path

    @property
    def obs_dim(self) -> int:
        return int(sum(n for _, n in self.meta["signature"]["obs_fields"]))

    @property
    def act_dim(self) -> int:
        return int(sum(n for _, n in self.meta["signature"]["act_fields"]))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        import torch

        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        if x.shape[-1] != self.obs_dim:
            raise PolicyMismatchError(f"{self.path}: observation has {x.shape[-1]} values, the policy takes {self.obs_dim}")
        with torch.no_grad():
            out = self.module(torch.as_tensor(x[None] if single else x)).numpy()
        return out[0] if single else out


def load_policy(path: str | os.PathLike) -> TrackingPolicy:
    """Load a policy zip (metadata + ``policy.pth`` weights only; nothing is unpickled)."""
    import torch

    path = Path(path)
    meta = read_policy_metadata(path)
    with zipfile.ZipFile(path) as z:
        if "policy.pth" not in z.namelist():
            raise ModelLoadError(f"{path}: no policy.pth inside; the zip is incomplete")
        with z.open("policy.pth") as f:
            try:
                state = torch.load(f, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise ModelLoadError(f"{path}: policy.pth cannot be read as plain weights ({exc})") from exc
    actor = _build_actor(state, meta, path)
    obs_dim = int(sum(n for _, n in meta["signature"]["obs_fields"]))
    act_dim = int(sum(n for _, n in meta["signature"]["act_fields"]))
    first, last = actor[0], actor[-1]
    if first.in_features != obs_dim or last.out_features != act_dim:
        raise ModelLoadError(
            f"{path}: weights take {first.in_features} observations -> {last.out_features} actions, the stored "
            f"layout says {obs_dim} -> {act_dim}; the file is inconsistent"
        )
    norm = meta.get("obs_norm")
    if norm is not None and (len(norm["mean"]) != obs_dim or len(norm["var"]) != obs_dim):
        raise ModelLoadError(f"{path}: obs_norm has {len(norm['mean'])} values, the layout has {obs_dim}")
    return TrackingPolicy(_actor_module(actor, obs_dim, norm), meta, path)


# ---------------------------------------------------------------------------------------------- export
def _write_sidecar(path: Path, meta: dict) -> None:
    """The policy's metadata (the ``handx_tracking.json`` member) as ``<path>.json`` next to an export."""
    atomic_write(path.with_name(path.name + ".json"), lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1)))


def export_torchscript(policy: TrackingPolicy, path: str | os.PathLike) -> Path:
    """Write the deterministic actor (normalization and clipping included) as TorchScript; the
    metadata goes to ``<path>.json`` next to it. Load with ``torch.jit.load(path)``;
    input ``(B, obs_dim)`` float32, output ``(B, act_dim)`` in [-1, 1]."""
    import torch

    path = Path(path)
    try:
        scripted = torch.jit.script(policy.module)
    except Exception as exc:  # pragma: no cover - depends on the torch build
        raise MissingDependencyError(f"TorchScript export failed with torch {torch.__version__}: {exc}") from exc
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp))
    _write_sidecar(path, policy.meta)
    return path


def export_onnx(policy: TrackingPolicy, path: str | os.PathLike) -> Path:
    """Write the deterministic actor (normalization and clipping included) as ONNX (opset 18, dynamic
    batch); the metadata goes to ``<path>.json``. Input ``obs`` ``(B, obs_dim)`` float32, output
    ``action`` ``(B, act_dim)`` in [-1, 1]; runs in onnxruntime or any ONNX runtime on the robot."""
    import torch

    path = Path(path)
    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it
    except ImportError as exc:
        raise MissingDependencyError(f"ONNX export needs the onnx package ({exc}); pip install onnx") from exc
    example = torch.zeros(1, policy.obs_dim, dtype=torch.float32)

    def write(tmp: str) -> None:
        torch.onnx.export(policy.module, (example,), tmp, input_names=["obs"], output_names=["action"],
                          dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, opset_version=18, dynamo=False)

    atomic_write(path, write)
    _write_sidecar(path, policy.meta)
    return path
