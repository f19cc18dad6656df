"""A humanoid standing in for the real robot in the ``sim`` node: kinematic, no physics.

The composed humanoid model (:func:`handx_robot.retarget.humanoid.model.load_humanoid_model`: the body
fixed at its base pose, each arm carrying its hand) whose arm and hand joints are set, every tick, to
the positions the controllers are told (coupled hand joints follow their leaders as the model's joint
equalities say; velocities are the change over the tick). Nothing collides and nothing is dynamic: it
shows what the controllers are commanded, not how the robot's dynamics would follow. The rest of the
body does not move (its joints are not in the model).

Limbs are keyed as in the topics (:func:`handx_robot.ros.common.limb_name`): ``right`` is the right
hand, ``right_arm`` the right arm. Joint names: the arm joints as in the humanoid spec, the hand joints
as in the hand's own model (``joint_r_index_proximal``, not ``right_hand/joint_r_index_proximal``), so
they are the names the controllers and the safety streamers use. Units: rad (m for prismatic joints).

It offers the part of :class:`handx_robot.sim.scene.HandScene`'s interface the ``sim`` node uses:
``reset``, ``joint_names``, ``joint_limits``, ``joint_positions``, ``joint_velocities``, ``set_targets``,
``step``, ``model``, ``data``.
"""

from __future__ import annotations

import copy

import numpy as np
from handx_robot.ros.common import limb_name

__all__ = ["KinematicHumanoid"]


class KinematicHumanoid:
    """``KinematicHumanoid(spec, timestep)``: spec a :class:`~handx_robot.retarget.humanoid.HumanoidSpec`;
    ``timestep`` (s) is the length of one ``step``."""

    def __init__(self, spec, timestep: float = 0.002) -> None:
        import mujoco
        from handx_robot.retarget.humanoid.model import hand_prefix, load_humanoid_model

        self.spec = spec
        self.hm = load_humanoid_model(spec)
        self.model = copy.deepcopy(self.hm.model)  # ours to change: the loaded one is shared (cached)
        self.model.opt.timestep = timestep
        self.data = mujoco.MjData(self.model)
        #: limb -> {joint name -> qpos address}; limb -> the joints its controller commands
        self._qpos: dict[str, dict[str, int]] = {}
        self.commanded: dict[str, tuple[str, ...]] = {}
        self._range: dict[str, dict[str, tuple[float, float]]] = {}
        m = self.model
        for side in self.hm.sides:
            arm, hand = limb_name(side, "arm"), limb_name(side, "hand")
            arm_joints = tuple(spec.arms[side].arm_joints)
            self._qpos[arm] = {j: int(a) for j, a in zip(arm_joints, self.hm.arm_qpos[side])}
            self.commanded[arm] = arm_joints
            self._range[arm] = {j: tuple(map(float, m.jnt_range[m.joint(j).id])) for j in arm_joints}
            self._qpos[hand] = dict(self.hm.hand_qpos[side])
            self.commanded[hand] = tuple(self.hm.hands[side].joint_names)
            pre = hand_prefix(side)
            self._range[hand] = {j: tuple(map(float, m.jnt_range[m.joint(pre + j).id])) for j in self._qpos[hand]}
        self._qvel = np.zeros(m.nq)
        self._q_last = self.data.qpos.copy()  # at the last step, for the velocities

    @property
    def limbs(self) -> tuple[str, ...]:
        """Hands then arms, left before right (``left``, ``right``, ``left_arm``, ``right_arm``)."""
        return tuple(limb_name(s, limb) for limb in ("hand", "arm") for s in self.hm.sides)

    def reset(self) -> None:
        """Arms at the spec's rest pose, hands at zero (clipped into their ranges)."""
        import mujoco

        q = self.hm.rest_qpos()
        for limb, adr in self._qpos.items():
            for j, a in adr.items():
                q[a] = np.clip(q[a], *self._range[limb][j])
        self.data.qpos[:] = q
        self._q_last[:] = q
        self._qvel[:] = 0.0
        mujoco.mj_kinematics(self.model, self.data)

    def joint_names(self, limb: str) -> list[str]:
        """Every joint of the limb (a hand's coupled joints too)."""
        return list(self._qpos[limb])

    def joint_limits(self, limb: str) -> dict[str, tuple[float, float]]:
        return dict(self._range[limb])

    def joint_positions(self, limb: str) -> dict[str, float]:
        return {j: float(self.data.qpos[a]) for j, a in self._qpos[limb].items()}

    def joint_velocities(self, limb: str) -> dict[str, float]:
        return {j: float(self._qvel[a]) for j, a in self._qpos[limb].items()}

    def set_targets(self, limb: str, targets: dict[str, float]) -> None:
        """Put the limb's joints at ``targets`` (joint name -> position; unknown names are a KeyError)."""
        adr = self._qpos[limb]
        for j, q in targets.items():
            self.data.qpos[adr[j]] = q

    def step(self, n: int = 1) -> None:
        """Let ``n`` timesteps pass: couplings applied, velocities = change since the last step / time."""
        import mujoco
        from handx_robot.retarget.humanoid.model import apply_couplings

        apply_couplings(self.model, self.data.qpos)
        dt = n * self.model.opt.timestep
        self._qvel[:] = (self.data.qpos - self._q_last) / dt
        self._q_last[:] = self.data.qpos
        mujoco.mj_kinematics(self.model, self.data)
