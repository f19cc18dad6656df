"""The built-in hand: gymnasium-robotics' Shadow hand MJCF (right) and its mirrored copy (left),
written once to the cache directory; no asset directory needed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from handx_robot.errors import ModelLoadError

__all__ = ["builtin_shadow_model", "gym_hand_dir", "cache_dir", "BUILTIN_SHADOW_DROPPED_GEOMS", "BUILTIN_SHADOW_NONCOLLIDING_GEOMS"]


def gym_hand_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("gymnasium-robotics is not installed (pip install 'gymnasium-robotics>=1.4,<2')")
    return Path(next(iter(spec.submodule_search_locations))) / "envs" / "assets" / "hand"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "handx-robot" / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


#: geoms of the gymnasium-robotics Shadow MJCF removed from the built-in model (see builtin_shadow_model)
BUILTIN_SHADOW_DROPPED_GEOMS: tuple[str, ...] = ("robot0:V_forearm", "robot0:C_forearm")
#: placeholder geoms of that MJCF (1 mm boxes at the thumb base joints, no class, so colliding) made visual-only
BUILTIN_SHADOW_NONCOLLIDING_GEOMS: tuple[str, ...] = ("robot0:V_thbase", "robot0:V_thhub")


def builtin_shadow_model(side: str) -> Path:
    """MJCF of the gymnasium-robotics Shadow hand alone (no floor, no targets); left = mirrored copy.

    The model is the hand from the wrist up: the forearm shell (visual mesh ``robot0:V_forearm`` and
    collision hull ``robot0:C_forearm``, a 0.26 m x 0.12 m cylinder standing in for the motor housing
    the real hand is mounted on) is removed. Retargeting places the palm at the human wrist keypoint,
    so that shell would sit where the operator's forearm is: it hid the fingers in renders and, when
    two hands meet (a clap), the two shells interpenetrated although the humans' hands did not.
    The kinematic chain is unchanged: the bodies ``robot0:hand mount`` and ``robot0:forearm`` (with
    their masses and inertias, 0.1 kg and 4 kg), the wrist joints WRJ1/WRJ0, the wrist housing and
    everything distal. On a real arm, check clearance against the real forearm/arm geometry yourself:
    no interpenetration metric here covers it. The two 1 mm placeholder boxes ``robot0:V_thbase`` and
    ``robot0:V_thhub`` (no class in the MJCF, so they collided) are made visual-only.

    Written once to the cache directory (``$XDG_CACHE_HOME/handx-robot/models``); the file refers to
    the wheel's meshes by absolute path.
    """
    import mujoco

    from handx_robot.motion import atomic_write

    g = gym_hand_dir()
    if not (g / "robot.xml").is_file():
        raise ModelLoadError(f"gymnasium-robotics' Shadow hand MJCF not found under {g}")
    xml = (
        f'<mujoco model="shadow_builtin_right">\n'
        f'  <compiler angle="radian" coordinate="local" meshdir="{g.parent / "stls" / "hand"}" '
        f'texturedir="{g.parent / "textures"}"/>\n'
        f'  <include file="{g / "shared.xml"}"/>\n'
        f'  <asset><include file="{g / "shared_asset.xml"}"/></asset>\n'
        f'  <worldbody><include file="{g / "robot.xml"}"/></worldbody>\n'
        f"</mujoco>\n"
    )
    key = hashlib.sha1((xml + side + "v3-no-forearm-shell").encode()).hexdigest()[:10]
    out = cache_dir() / f"shadow_builtin_{side}_{key}.xml"
    if out.is_file():
        return out
    if side == "right":
        full = cache_dir() / f"shadow_builtin_right_full_{key}.xml"
        atomic_write(full, lambda tmp: Path(tmp).write_text(xml))
        try:
            spec = mujoco.MjSpec.from_file(str(full))
            dropped = []
            for geom in list(spec.geoms):
                if geom.name in BUILTIN_SHADOW_DROPPED_GEOMS:
                    spec.delete(geom)
                    dropped.append(geom.name)
            for geom in spec.geoms:  # 1 mm placeholder boxes inside the thumb base, colliding by default
                if geom.name in BUILTIN_SHADOW_NONCOLLIDING_GEOMS:
                    geom.contype, geom.conaffinity = 0, 0
            if sorted(dropped) != sorted(BUILTIN_SHADOW_DROPPED_GEOMS):
                raise ModelLoadError(
                    f"{g / 'robot.xml'}: expected forearm geoms {list(BUILTIN_SHADOW_DROPPED_GEOMS)}, found {dropped}; "
                    "unsupported gymnasium-robotics version (pip install 'gymnasium-robotics>=1.4,<2')"
                )
            spec.compile()
            text = spec.to_xml()
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"{full}: MuJoCo rejected the built-in Shadow hand model: {exc}") from exc
        finally:
            full.unlink(missing_ok=True)
        atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    else:
        right = builtin_shadow_model("right")
        from handx_robot.retarget.mirror import mirror_mjcf

        text = mirror_mjcf(right, model_name="shadow_builtin_left")
        atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return out

