"""Arm IK of a humanoid, one frame at a time (mink: differential IK on the MuJoCo model, QP by daqp).

Per frame, both arms together, the hands' finger joints held at the hand retargeting's values:

- tasks: each hand root body to its target ``T_world_hand`` (position and orientation), and a posture
  term pulling the arms to the spec's rest pose (elbows natural, weak);
- limits: joint position limits; the arm joints' speed limits as a box around the previous frame's
  arm pose (``|q_t - q_{t-1}| <= v_max / fps``, whatever the number of iterations in the frame); and
  clearance (``min_clearance_m``) on every checked geom pair of :class:`HumanoidModel` (arm-arm,
  arm-other hand, arm-body, hand-body);
- every joint that is not an arm joint is frozen (equality constraint).

A target the arms cannot reach gets the nearest feasible pose under these limits; its error is in
the :class:`FrameSolution`, never hidden. The first frame of a motion is solved without the speed box,
from several starts (the robot is assumed to start there; moving it there from wherever it is is the
safety streamer's first move).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from handx_robot.retarget.humanoid.model import HumanoidModel, apply_couplings, pair_distances

from handx_robot.errors import ConfigError

__all__ = ["IKOptions", "FrameSolution", "ArmIK"]


@dataclasses.dataclass(frozen=True)
class IKOptions:
    """Arm IK settings (costs are relative weights; errors in metres and radians)."""

    position_cost: float = 1.0
    orientation_cost: float = 0.3
    posture_cost: float = 0.01
    damping: float = 1e-4
    max_iterations: int = 8
    first_frame_iterations: int = 100
    first_frame_starts: int = 8
    tolerance_m: float = 5e-4
    tolerance_rad: float = 5e-3
    step_tolerance_rad: float = 1e-3
    replan_m: float = 0.02
    replan_rad: float = 0.2
    replan_every: int = 10
    min_clearance_m: float = 0.004
    detection_distance_m: float = 0.04
    solver: str = "daqp"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and not (np.isfinite(v) and v >= 0):
                raise ConfigError(f"IKOptions.{f.name} must be a finite number >= 0, got {v!r}")
        if self.max_iterations < 1:
            raise ConfigError(f"IKOptions.max_iterations must be >= 1, got {self.max_iterations}")


@dataclasses.dataclass(frozen=True)
class FrameSolution:
    """One frame's IK result: ``qpos`` (nq,) of the model; per side the achieved ``T_world_hand``
    (4, 4), the position error (m) and rotation error (rad) to the target; iterations used."""

    qpos: np.ndarray
    T_world_hand: dict[str, np.ndarray]
    position_error: dict[str, float]
    rotation_error: dict[str, float]
    iterations: int


def _step_box_limit(mink, indices: np.ndarray, nv: int):
    """A mink limit ``anchor - r <= q + dq <= anchor + r`` on the arm dofs (``r = v_max / fps``)."""

    class StepBox(mink.Limit):
        def __init__(self) -> None:
            self.P = np.eye(nv)[indices]
            self.lo = self.hi = None

        def set(self, anchor: np.ndarray, radius: np.ndarray) -> None:
            self.lo, self.hi = anchor - radius, anchor + radius

        def clear(self) -> None:
            self.lo = self.hi = None

        def compute_qp_inequalities(self, configuration, dt):
            if self.lo is None:
                return mink.Constraint()
            q = configuration.q[indices]  # arm joints are hinges: qpos address order = dof order here
            # a tiny slack keeps the QP feasible when the pose sits on the box's edge after integration
            return mink.Constraint(G=np.vstack([self.P, -self.P]),
                                   h=np.concatenate([self.hi - q, q - self.lo]) + 1e-9)  # fmt: skip

    return StepBox()


class ArmIK:
    """Both arms of ``hm`` to hand-root targets, frame after frame (warm-started).

    fps: the motion's frame rate (the speed box is ``v_max / fps`` per frame).
    """

    def __init__(self, hm: HumanoidModel, fps: float, options: IKOptions | None = None) -> None:
        import mink

        self.hm, self.fps, self.opts = hm, float(fps), options or IKOptions()
        m = hm.model
        self.model = m
        sides = hm.sides
        self.arm_dof = np.concatenate([hm.arm_dof[s] for s in sides])
        self.arm_qpos = np.concatenate([hm.arm_qpos[s] for s in sides])
        if not np.array_equal(self.arm_dof, self.arm_qpos):
            # true for hinge-only models without free joints; the step box relies on it
            raise ConfigError(f"{hm.spec.config_path}: arm joints must be hinges of a fixed-base model")
        self._arm_jnt = np.array([m.joint(j).id for s in sides for j in hm.spec.arms[s].arm_joints])
        self.vmax = np.concatenate([[hm.spec.velocity_limits[j] for j in hm.spec.arms[s].arm_joints] for s in sides])
        self.config = mink.Configuration(m)
        o = self.opts
        self.tasks = {s: mink.FrameTask(hm.hand_root[s], "body", position_cost=o.position_cost,
                                        orientation_cost=o.orientation_cost, lm_damping=1e-3) for s in sides}  # fmt: skip
        cost = np.zeros(m.nv)
        cost[self.arm_dof] = o.posture_cost
        self.posture = mink.PostureTask(m, cost=cost)
        self.rest = hm.rest_qpos()
        self.posture.set_target(self.rest)
        guide = np.zeros(m.nv)
        guide[self.arm_dof] = 1.0
        self.guide = mink.PostureTask(m, cost=guide)  # toward a replanned pose, see _replan
        frozen = [i for i in range(m.nv) if i not in set(self.arm_dof.tolist())]
        self.constraints = [mink.DofFreezingTask(m, dof_indices=frozen)] if frozen else []
        self.box = _step_box_limit(mink, self.arm_dof, m.nv)
        self._pairs = np.array(hm.geom_pairs(), dtype=np.int64).reshape(-1, 2)
        pairs = [([a], [b]) for a, b in self._pairs.tolist()]
        self.limits = [mink.ConfigurationLimit(m), self.box]
        if pairs and o.min_clearance_m > 0:
            self.limits.append(mink.CollisionAvoidanceLimit(
                m, geom_pairs=pairs, minimum_distance_from_collisions=o.min_clearance_m,
                collision_detection_distance=o.detection_distance_m))  # fmt: skip
        self._mink = mink
        #: QP solves with contradictory limits (the pose was kept for that iteration); global replans (_replan)
        self.infeasible = self.replans = 0
        self.reset()

    def reset(self, qpos: np.ndarray | None = None) -> None:
        """Start again from ``qpos`` (nq,) or the rest pose; the next frame is solved without the speed box."""
        self.config.update(self.rest.copy() if qpos is None else np.asarray(qpos, dtype=np.float64).copy())
        self._first = True
        self._guided, self._since_plan = False, 0

    def set_hand(self, side: str, hand_qpos: dict[str, float]) -> None:
        """Hold a hand's finger joints (hand model names -> rad/m) at the given values."""
        q = self.config.q.copy()
        addr = self.hm.hand_qpos[side]
        for name, v in hand_qpos.items():
            q[addr[name]] = v
        apply_couplings(self.model, q)
        self.config.update(q)

    def _errors(self, targets: dict[str, np.ndarray]) -> tuple[dict, dict]:
        pos, rot = {}, {}
        for s, T in targets.items():
            X = self.config.get_transform_frame_to_world(self.hm.hand_root[s], "body").as_matrix()
            pos[s] = float(np.linalg.norm(X[:3, 3] - T[:3, 3]))
            c = (np.trace(X[:3, :3].T @ T[:3, :3]) - 1) / 2
            rot[s] = float(np.arccos(np.clip(c, -1.0, 1.0)))
        return pos, rot

    def step(self, targets: dict[str, np.ndarray]) -> FrameSolution:
        """Solve one frame: ``targets`` side -> ``T_world_hand`` (4, 4), world frame, metres."""
        mink, o = self._mink, self.opts
        for s, T in targets.items():
            self.tasks[s].set_target(mink.SE3.from_matrix(np.asarray(T, dtype=np.float64)))
        tasks = [self.tasks[s] for s in targets] + [self.posture]
        if self._first:
            self.box.clear()
            it = self._first_frame(targets, tasks)
        else:
            self.box.set(self.config.q[self.arm_qpos].copy(), self.vmax / self.fps)
            it = self._iterate(targets, tasks + ([self.guide] if self._guided else []), o.max_iterations)
            it += self._replan(targets, tasks)
        self._first = False
        pos, rot = self._errors(targets)
        achieved = {s: self.config.get_transform_frame_to_world(self.hm.hand_root[s], "body").as_matrix()
                    for s in self.hm.sides}  # fmt: skip
        return FrameSolution(self.config.q.copy(), achieved, pos, rot, it)

    def _replan(self, targets: dict[str, np.ndarray], tasks: list) -> int:
        """Local IK can get stuck on a limit while the target moves on (an arm that should have turned its
        elbow the other way). When a frame misses by more than ``replan_m`` / ``replan_rad``, a global
        solve (the first frame's multi-start, no speed box) finds a pose that reaches the target; a guide
        task then pulls the arm there, within the speed box, until the frames are tracked again."""
        o = self.opts
        pos, rot = self._errors(targets)
        miss = any(pos[s] > o.replan_m or rot[s] > o.replan_rad for s in targets)
        if not miss:
            if self._guided and all(pos[s] < o.replan_m / 2 and rot[s] < o.replan_rad / 2 for s in targets):
                self._guided = False
            return 0
        self._since_plan += 1
        if self._guided and self._since_plan < o.replan_every:
            return 0
        q_now = self.config.q.copy()
        err_now = sum(pos.values()) + 0.1 * sum(rot.values())
        self.box.clear()
        it = self._first_frame(targets, tasks)
        pos2, rot2 = self._errors(targets)
        q_goal = self.config.q.copy()
        self.config.update(q_now)
        self._since_plan = 0
        if sum(pos2.values()) + 0.1 * sum(rot2.values()) < 0.7 * err_now:
            self.guide.set_target(q_goal)
            self._guided = True
            self.replans += 1
        return it

    def _first_frame(self, targets: dict[str, np.ndarray], tasks: list) -> int:
        """The first frame from several starts (the current pose, the rest pose, then seeded perturbations
        of each): a single start can settle in a poor local minimum (an elbow on its limit) the speed box
        then keeps."""
        o = self.opts
        q0 = self.config.q.copy()
        lo, hi = self.model.jnt_range[self._arm_jnt].T
        rng = np.random.default_rng(0)
        best, total = None, 0
        for k in range(o.first_frame_starts):
            q = q0.copy()
            if k:  # alternately around the current pose and around the rest pose
                base = q0[self.arm_qpos] if k % 2 else self.rest[self.arm_qpos]
                q[self.arm_qpos] = np.clip(base + rng.normal(0.0, 0.6 if k > 2 else 0.0, len(self.arm_qpos)), lo, hi)
            self.config.update(q)
            total += self._iterate(targets, tasks, o.first_frame_iterations)
            pos, rot = self._errors(targets)
            # a start that ends inside the body or the other arm loses to any that does not
            depth = max(0.0, -float(pair_distances(self.model, self.config.data, self._pairs).min(initial=1.0)))
            cost = (depth > 5e-4, sum(pos.values()) + 0.1 * sum(rot.values()))
            if best is None or cost < best[0]:
                best = (cost, self.config.q.copy())
            if not cost[0] and all(pos[s] < o.tolerance_m and rot[s] < o.tolerance_rad for s in targets):
                break
        self.config.update(best[1])
        return total

    def _iterate(self, targets: dict[str, np.ndarray], tasks: list, n_iter: int) -> int:
        mink, o = self._mink, self.opts
        it = 0
        for it in range(1, n_iter + 1):  # noqa: B007 (it is reported)
            try:
                dq = mink.solve_ik(self.config, tasks, 1.0, o.solver, damping=o.damping, limits=self.limits,
                                   constraints=self.constraints)  # fmt: skip
            except mink.NoSolutionFound:  # limits contradict (a start inside a collision): keep the pose
                self.infeasible += 1
                break
            self.config.integrate_inplace(dq, 1.0)
            pos, rot = self._errors(targets)
            if all(pos[s] < o.tolerance_m and rot[s] < o.tolerance_rad for s in targets):
                break
            if np.max(np.abs(dq)) < o.step_tolerance_rad:  # at the weighted optimum (task vs posture, limits)
                break
        return it
