"""Robot-robot interpenetration of two posed hands, with MuJoCo's collision detection.

Both hand models are loaded into one MuJoCo world (URDFs through MuJoCo's URDF importer with static
links kept and meshes resolved next to the file), each top-level body on a free joint placed at the
hand's ``T_world_base``; per frame the joints are set by name and ``mj_kinematics`` +
``mj_collision`` run on the collision geoms (an MJCF's visual geoms, contype = conaffinity = 0, do not
count). Only contacts between a geom of the left hand and one of the right hand count;
the penetration depth is ``-dist`` of such contacts (metres).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from handx_robot.errors import ModelLoadError
from handx_robot.rotations import make_transform, matrix_to_quat, quat_to_matrix

__all__ = ["HandPairCollider", "load_hand_spec", "SIZE_ATTRS"]

log = logging.getLogger(__name__)


def load_hand_spec(model_path: Path, model_format: str):
    """``mujoco.MjSpec`` of a hand model (URDF: static links kept, mesh paths made absolute)."""
    import mujoco

    model_path = Path(model_path)
    if model_format == "mjcf":
        try:
            return mujoco.MjSpec.from_file(str(model_path))
        except Exception as exc:
            raise ModelLoadError(f"{model_path}: MuJoCo rejected the model: {exc}") from exc
    text = model_path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"<robot\b[^>]*>", text)
    if m is None:
        raise ModelLoadError(f"{model_path}: no <robot> element; is this a URDF?")
    d = str(model_path.resolve().parent) + "/"
    tag = f'<mujoco><compiler discardvisual="true" fusestatic="false" strippath="false" meshdir={quoteattr(d)}/></mujoco>'
    text = text[: m.end()] + tag + text[m.end() :]
    text = re.sub(r'filename="package://[^/"]+/', 'filename="', text)
    try:
        return mujoco.MjSpec.from_string(text)
    except Exception as exc:
        raise ModelLoadError(f"{model_path}: MuJoCo rejected the URDF: {exc}") from exc


class HandPairCollider:
    """Two hands in one MuJoCo world. ``hands``: ``{side: (model_path, model_format, base_name)}``.

    ``base_name`` is the kinematic tree's base frame name (its poses are ``T_world_base``).
    """

    def __init__(self, hands: dict[str, tuple[Path, str, str]]) -> None:
        import mujoco

        self._mj = mujoco
        world = mujoco.MjSpec()
        world.option.gravity = [0.0, 0.0, 0.0]
        world.compiler.balanceinertia = True  # collision only: inertias do not matter
        self.roots: dict[str, list[tuple[str, np.ndarray]]] = {}
        for side, (path, fmt, base_name) in hands.items():
            child = load_hand_spec(path, fmt)
            child.compiler.balanceinertia = True
            model = child.compile()
            for attr in SIZE_ATTRS:  # same sizes as the child: no attach conflicts
                setattr(world, attr, max(getattr(world, attr), getattr(child, attr)))
            tops = [i for i in range(1, model.nbody) if model.body_parentid[i] == 0]
            roots = []
            for b in tops:
                name = model.body(b).name
                if name == base_name:
                    T = np.eye(4)  # the base itself
                else:  # the base is MuJoCo's world (URDF root link 'world'): keep the placement
                    T = make_transform(quat_to_matrix(model.body_quat[b]), model.body_pos[b])
                roots.append((name, T))
                body = child.body(name)
                body.add_freejoint(name=f"{name}_free")
            for g in child.geoms:  # hands collide with each other only, on their collision geoms
                if g.contype or g.conaffinity:  # an MJCF's visual geoms (contype = conaffinity = 0) stay out
                    g.contype, g.conaffinity = (1, 2) if side == "left" else (2, 1)
            frame = world.worldbody.add_frame()
            world.attach(child, prefix=f"{side}/", frame=frame)
            self.roots[side] = roots
        try:
            self.model = world.compile()
        except Exception as exc:
            raise ModelLoadError(f"cannot build the two-hand collision world: {exc}") from exc
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._joint_names = {m.joint(j).name for j in range(m.njnt)}
        self._side_of_body = np.full(m.nbody, "", dtype=object)
        for b in range(1, m.nbody):
            nm = m.body(b).name
            self._side_of_body[b] = nm.split("/", 1)[0] if "/" in nm else ""

    def _qadr(self, name: str) -> int:
        return int(self.model.joint(name).qposadr[0])

    def penetration(
        self, poses: dict[str, np.ndarray], qpos: dict[str, tuple[tuple[str, ...], np.ndarray]], frames: np.ndarray
    ) -> np.ndarray:
        """Max penetration depth (m, >= 0) per frame in ``frames``.

        poses: ``{side: (T, 4, 4) T_world_base}``; qpos: ``{side: (joint_names, (T, J))}``.
        """
        mj, m, d = self._mj, self.model, self.data
        cols = {}
        for side, (names, _) in qpos.items():
            cols[side] = [(k, self._qadr(f"{side}/{n}")) for k, n in enumerate(names) if f"{side}/{n}" in self._joint_names]
        depth = np.zeros(len(frames))
        for i, t in enumerate(frames):
            for side, roots in self.roots.items():
                for name, T_base_body in roots:
                    T = poses[side][t] @ T_base_body
                    a = self._qadr(f"{side}/{name}_free")
                    d.qpos[a : a + 3] = T[:3, 3]
                    d.qpos[a + 3 : a + 7] = matrix_to_quat(T[:3, :3])
                q = qpos[side][1][t]
                for k, a in cols[side]:
                    d.qpos[a] = q[k]
            mj.mj_kinematics(m, d)
            mj.mj_collision(m, d)
            best = 0.0
            for c in d.contact[: d.ncon]:
                b1, b2 = m.geom_bodyid[c.geom[0]], m.geom_bodyid[c.geom[1]]
                if self._side_of_body[b1] != self._side_of_body[b2] and c.dist < 0:
                    best = max(best, -float(c.dist))
            depth[i] = best
        return depth


#: MjSpec sizes a world takes over from each attached hand model (no attach conflicts)
SIZE_ATTRS = ("njmax", "nconmax", "nuser_jnt", "nuser_site", "nuser_tendon", "nuser_actuator", "nuser_sensor",
               "nuser_body", "nuser_geom", "nuser_cam")  # fmt: skip
