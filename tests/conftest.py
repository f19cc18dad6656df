"""Shared fixtures: paths to ../shared test data (skip cleanly when absent)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HANDX_SHARED", REPO.parent / "shared"))

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def dex_urdf_models(shared_dir: Path) -> Path:
    """The dex-urdf asset directory, for tests that load its model files directly."""
    d = shared_dir / "assets" / "dex-urdf"
    if not d.is_dir():
        pytest.skip(f"dex-urdf assets not found at {d}")
    return d


@pytest.fixture(scope="session")
def dex_urdf_dir(dex_urdf_models: Path) -> Path:
    """The dex-urdf asset directory as the robot registry serves it (``allegro_right``, ``shadow_right``
    ...): those hands' retargeting configs ship with dex-retargeting, the ``dex`` extra."""
    if importlib.util.find_spec("dex_retargeting") is None:
        pytest.skip("the dex-urdf hands' configs need dex-retargeting (pip install 'handx_robot[dex]')")
    return dex_urdf_models


@pytest.fixture(scope="session")
def dexmv_npz(shared_dir: Path) -> Path:
    p = shared_dir / "data" / "dexmv_relocate_mustard_right.npz"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return p
