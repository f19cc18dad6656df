"""Where hand models come from: the asset directory (dex-urdf), dex-retargeting's shipped configs.

Asset directory: ``assets=`` / ``--assets DIR`` / ``$HANDX_ROBOT_ASSETS``, laid out like dex-urdf
(``DIR/allegro_hand/...``) or like its repository (``DIR/robots/hands/allegro_hand/...``).
"""

from __future__ import annotations

import os
from pathlib import Path

from handx_robot.errors import ConfigError, ModelLoadError

__all__ = ["ASSETS_ENV", "dex_config_dir", "asset_roots", "find_model"]

ASSETS_ENV = "HANDX_ROBOT_ASSETS"


def dex_config_dir() -> Path:
    """The configs shipped inside the installed ``dex_retargeting`` package."""
    import importlib.util

    spec = importlib.util.find_spec("dex_retargeting")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the dex-urdf hands' retargeting configs ship with dex-retargeting, which is not installed "
            "(pip install 'handx_robot[dex]')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "configs"


def asset_roots(assets: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for hand models: ``assets`` (or ``$HANDX_ROBOT_ASSETS``) and its ``robots/hands``."""
    base = assets if assets is not None else os.environ.get(ASSETS_ENV)
    if not base:
        return []
    base = Path(base).expanduser()
    if not base.is_dir():
        raise ConfigError(
            f"asset directory {base} (from {'--assets' if assets is not None else '$' + ASSETS_ENV}) does not "
            "exist; give a dex-urdf checkout or its robots/hands folder"
        )
    return [base, base / "robots" / "hands"]


def find_model(rel: str, roots: list[Path]) -> Path | None:
    for r in roots:
        p = r / rel
        if p.is_file():
            return p
    return None

