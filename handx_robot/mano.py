"""MANO forward kinematics (smplx) for user-provided, licensed MANO model files.

The MANO model (``MANO_LEFT.pkl`` / ``MANO_RIGHT.pkl`` from https://mano.is.tue.mpg.de) is licensed:
handx-robot never ships or downloads it. Point ``--mano-dir`` (or ``HANDX_MANO_DIR``) at the folder that
holds both files (``mano_v1_2/models`` in the official release).

Model files are read with :func:`handx_robot.safe_pickle.safe_load_pickle` (``allow_model_stubs``):
chumpy ``Ch`` values and scipy sparse matrices become numpy arrays and no code from the file runs; the
arrays are handed to ``smplx.MANO`` as its ``data_struct``, so smplx never unpickles anything itself.

HandX convention: smplx MANO with ``use_pca=False`` (45 axis-angle hand-pose values) and
``flat_hand_mean=False`` (the pose is relative to the mean hand, ``hands_mean`` is added).
``pose (T, 48)`` = global orient (3) + hand pose (45), radians; ``shape (T, 10)`` betas;
``trans (T, 3)`` metres. Output keypoints ``(T, 21, 3)`` float32, metres, in the parameters' frame,
HandX order: the 16 MANO joints (wrist, index 1-3, middle 4-6, pinky 7-9, ring 10-12, thumb 13-15 — the
same order as HandX) followed by the fingertip vertices :data:`MANO_TIP_VERTEX_IDS` (thumb, index,
middle, ring, pinky).

Official MANO_LEFT.pkl ships with the x-row of ``shapedirs`` not mirrored (a known bug of the
release); when the right model is available and the left ``shapedirs[:, 0]`` equals the right's, it is
negated (``fix_left_shapedirs``), as the MANO community fixes do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
from pathlib import Path

import numpy as np

from handx_robot.errors import MissingDependencyError, ModelLoadError, MotionFormatError
from handx_robot.motion import SIDES, ManoParams
from handx_robot.safe_pickle import safe_load_pickle

__all__ = [
    "MANO_TIP_VERTEX_IDS",
    "MANO_ENV_VAR",
    "ManoModelData",
    "ManoLayer",
    "find_mano_files",
    "mano_keypoints",
    "missing_mano_message",
]

log = logging.getLogger(__name__)

#: Fingertip vertex ids of the MANO mesh (778 vertices), HandX tip order 16-20.
MANO_TIP_VERTEX_IDS: dict[str, int] = {"thumb": 745, "index": 317, "middle": 444, "ring": 556, "pinky": 673}
MANO_ENV_VAR = "HANDX_MANO_DIR"
_FILES = {"left": "MANO_LEFT.pkl", "right": "MANO_RIGHT.pkl"}
_CHUNK = 4096


def missing_mano_message(what: str, mano_dir: str | os.PathLike | None) -> str:
    where = f"--mano-dir {mano_dir} does not hold them" if mano_dir else "no --mano-dir was given"
    return (
        f"{what} holds MANO parameters only; turning them into keypoints needs the MANO hand model files "
        f"MANO_LEFT.pkl and MANO_RIGHT.pkl, and {where}. MANO is licensed and never shipped or downloaded by "
        "handx-robot: register at https://mano.is.tue.mpg.de, download mano_v1_2.zip, unzip it, and pass "
        f"--mano-dir /path/to/mano_v1_2/models (or set {MANO_ENV_VAR})."
    )


def find_mano_files(mano_dir: str | os.PathLike | None, sides=SIDES, what: str = "this file") -> dict[str, Path]:
    """``{side: path}`` of the MANO model files in ``mano_dir`` (or ``$HANDX_MANO_DIR``) for ``sides``."""
    d = mano_dir or os.environ.get(MANO_ENV_VAR)
    if not d or not Path(d).is_dir():
        raise MissingDependencyError(missing_mano_message(what, d))
    out = {}
    for side in sides:
        p = Path(d) / _FILES[side]
        if not p.is_file():
            raise MissingDependencyError(missing_mano_message(what, d) + f" (missing: {p})")
        out[side] = p
    return out


@dataclasses.dataclass(frozen=True)
class ManoModelData:
    """Arrays of a MANO model file (numpy, float64 unless noted).

    v_template (V, 3) m; shapedirs (V, 3, S); posedirs (V, 3, 135); J_regressor (16, V);
    weights (V, 16); kintree_table (2, 16) int; f (F, 3) int; hands_mean (45,); hands_components (45, 45).
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    kintree_table: np.ndarray
    f: np.ndarray
    hands_mean: np.ndarray
    hands_components: np.ndarray
    source: str = "<memory>"

    def __post_init__(self) -> None:
        src = self.source
        arrs = {}
        for field in dataclasses.fields(self):
            if field.name == "source":
                continue
            value = getattr(self, field.name)
            if value is None:
                raise ModelLoadError(f"{src}: MANO model field '{field.name}' is missing")
            arrs[field.name] = np.asarray(value)
        V = arrs["v_template"].shape[0] if arrs["v_template"].ndim == 2 else -1
        expect = {
            "v_template": (V, 3),
            "J_regressor": (16, V),
            "weights": (V, 16),
            "kintree_table": (2, 16),
            "hands_mean": (45,),
        }
        for name, shape in expect.items():
            if arrs[name].shape != shape or V < 1:
                raise ModelLoadError(f"{src}: MANO model field '{name}' must have shape {shape}, got {arrs[name].shape}")
        if arrs["shapedirs"].ndim != 3 or arrs["shapedirs"].shape[:2] != (V, 3) or arrs["shapedirs"].shape[2] < 10:
            raise ModelLoadError(f"{src}: MANO 'shapedirs' must have shape ({V}, 3, >=10), got {arrs['shapedirs'].shape}")
        if arrs["posedirs"].shape != (V, 3, 135):
            raise ModelLoadError(f"{src}: MANO 'posedirs' must have shape ({V}, 3, 135), got {arrs['posedirs'].shape}")
        if V <= max(MANO_TIP_VERTEX_IDS.values()):
            raise ModelLoadError(f"{src}: MANO mesh has {V} vertices; fingertip ids need at least 746 (MANO has 778)")
        for name, a in arrs.items():
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                raise ModelLoadError(f"{src}: MANO model field '{name}' has NaN/inf")
        for name, a in arrs.items():
            kind = np.int64 if name in ("kintree_table", "f") else np.float64
            object.__setattr__(self, name, a.astype(kind))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ManoModelData:
        """Read a MANO ``.pkl`` (official release or plain-numpy re-save) without executing code."""
        path = Path(path)
        data = safe_load_pickle(path, allow_model_stubs=True)
        if not isinstance(data, dict):
            raise ModelLoadError(f"{path}: a MANO model file holds a dict, got {type(data).__name__}")
        missing = [k for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f", "hands_mean") if k not in data]
        if missing:
            raise ModelLoadError(f"{path}: not a MANO model file: missing keys {missing} (found {sorted(data)})")
        comps = data.get("hands_components", np.eye(45))
        return cls(
            v_template=data["v_template"],
            shapedirs=data["shapedirs"],
            posedirs=data["posedirs"],
            J_regressor=data["J_regressor"],
            weights=data["weights"],
            kintree_table=data["kintree_table"],
            f=data["f"],
            hands_mean=np.asarray(data["hands_mean"]).reshape(-1),
            hands_components=comps,
            source=str(path),
        )


class ManoLayer:
    """smplx MANO (``use_pca=False``, ``flat_hand_mean=False``) of one side, from user model files.

    ``keypoints(pose (T,48), shape (T,10), trans (T,3))`` -> ``(T, 21, 3)`` float32 metres, HandX order.
    """

    def __init__(self, model: ManoModelData, side: str) -> None:
        if side not in SIDES:
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        try:
            import smplx
            import torch
            from smplx.utils import Struct
        except ImportError as exc:
            raise MissingDependencyError(f"MANO forward kinematics needs smplx and torch: pip install 'handx_robot[mano]' ({exc})") from exc
        self.side = side
        self.model = model
        self._torch = torch
        struct = Struct(**{f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name != "source"})
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning about 10 betas
            self._mano = smplx.MANO(
                model_path=str(Path(model.source).parent),
                is_rhand=side == "right",
                data_struct=struct,
                use_pca=False,
                flat_hand_mean=False,
                num_pca_comps=45,
                batch_size=1,
                dtype=torch.float64,
            )
        self._mano.eval()
        self._tips = torch.tensor(list(MANO_TIP_VERTEX_IDS.values()), dtype=torch.long)
        self.num_betas = int(self._mano.num_betas)

    @classmethod
    def from_dir(cls, mano_dir: str | os.PathLike | None, side: str, fix_left_shapedirs: bool = True) -> ManoLayer:
        """Load ``MANO_{LEFT,RIGHT}.pkl`` of ``side`` from ``mano_dir`` (see the module docstring)."""
        paths = find_mano_files(mano_dir, (side,))
        model = ManoModelData.from_file(paths[side])
        if side == "left" and fix_left_shapedirs:
            right_path = paths[side].parent / _FILES["right"]
            if right_path.is_file():
                right = ManoModelData.from_file(right_path)
                if right.shapedirs.shape == model.shapedirs.shape and np.abs(model.shapedirs[:, 0] - right.shapedirs[:, 0]).sum() < 1.0:
                    log.info("%s: negating shapedirs[:, 0] (known MANO_LEFT release bug)", paths[side])
                    sd = model.shapedirs.copy()
                    sd[:, 0] *= -1.0
                    model = dataclasses.replace(model, shapedirs=sd)
        return cls(model, side)

    def forward(self, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray, return_vertices: bool = False):
        """Keypoints ``(T, 21, 3)`` float32 (and vertices ``(T, V, 3)`` with ``return_vertices``)."""
        torch = self._torch
        p = ManoParams(pose, shape, trans)  # validates shapes and finiteness
        T = len(p)
        kps = np.empty((T, 21, 3), dtype=np.float32)
        verts = np.empty((T, self.model.v_template.shape[0], 3), dtype=np.float32) if return_vertices else None
        betas = p.shape[:, : self.num_betas]
        with torch.no_grad():
            for s in range(0, T, _CHUNK):
                e = min(T, s + _CHUNK)
                out = self._mano(
                    betas=torch.from_numpy(betas[s:e].astype(np.float64)),
                    global_orient=torch.from_numpy(p.pose[s:e, :3].astype(np.float64)),
                    hand_pose=torch.from_numpy(p.pose[s:e, 3:].astype(np.float64)),
                    transl=torch.from_numpy(p.trans[s:e].astype(np.float64)),
                )
                j = torch.cat([out.joints[:, :16], out.vertices[:, self._tips]], dim=1)
                kps[s:e] = j.numpy()
                if verts is not None:
                    verts[s:e] = out.vertices.numpy()
        return (kps, verts) if return_vertices else kps

    def keypoints(self, params: ManoParams) -> np.ndarray:
        return self.forward(params.pose, params.shape, params.trans)


def mano_keypoints(mano: dict[str, ManoParams], mano_dir: str | os.PathLike | None, what: str = "this file") -> tuple[np.ndarray, np.ndarray]:
    """``(joints (T, 2, 21, 3) float32, present (2,) bool)`` from per-side MANO parameters."""
    if not mano:
        raise MotionFormatError(f"{what}: no MANO parameters for either hand")
    T = {len(p) for p in mano.values()}
    if len(T) != 1:
        raise MotionFormatError(f"{what}: MANO hands have different frame counts {sorted(T)}")
    n = T.pop()
    find_mano_files(mano_dir, tuple(mano), what)  # one clear error before any work
    joints = np.zeros((n, 2, 21, 3), dtype=np.float32)
    present = np.zeros(2, dtype=bool)
    for side, params in mano.items():
        layer = ManoLayer.from_dir(mano_dir, side)
        joints[:, SIDES.index(side)] = layer.keypoints(params)
        present[SIDES.index(side)] = True
    return joints, present
