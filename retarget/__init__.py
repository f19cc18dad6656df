"""Robot hand models, kinematics and retargeting (pure Python / NumPy, no ROS).

Public API (imported lazily so ``handx-robot --help`` stays fast)::

    from handx_robot.retarget import get_robot, resolve_robot, retarget_motion, StreamingRetargeter
    spec = get_robot("shadow_builtin_right")                      # registry (handx_robot.retarget.robots)
    spec, note = resolve_robot("shadow_right", mode="sim")        # built-in stand-in without assets
    robot_motion, report = retarget_motion(motion, left_robot="shadow_builtin_left",
                                           right_robot="shadow_builtin_right")   # offline, both hands
    stream = StreamingRetargeter(spec)                            # one frame at a time (ROS)
    qpos, converged, objective = stream.step(kp_wrist)            # (21, 3) HandX, human wrist frame
"""

from __future__ import annotations

import importlib

__all__ = [
    "RobotSpec",
    "get_robot",
    "list_robots",
    "register_robot",
    "resolve_robot",
    "fingertip_links",
    "KinematicTree",
    "load_tree",
    "HandProblem",
    "SolverOptions",
    "SolveResult",
    "solve_sequence",
    "StreamingRetargeter",
    "retarget_motion",
    "retarget_hand",
]

_WHERE = {
    "RobotSpec": "handx_robot.retarget.robots",
    "get_robot": "handx_robot.retarget.robots",
    "list_robots": "handx_robot.retarget.robots",
    "register_robot": "handx_robot.retarget.robots",
    "resolve_robot": "handx_robot.retarget.robots",
    "fingertip_links": "handx_robot.retarget.robots",
    "KinematicTree": "handx_robot.retarget.kinematics",
    "load_tree": "handx_robot.retarget.kinematics",
    "HandProblem": "handx_robot.retarget.solver",
    "SolverOptions": "handx_robot.retarget.solver",
    "SolveResult": "handx_robot.retarget.solver",
    "solve_sequence": "handx_robot.retarget.solver",
    "StreamingRetargeter": "handx_robot.retarget.solver",
    "retarget_motion": "handx_robot.retarget.bimanual",
    "retarget_hand": "handx_robot.retarget.bimanual",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'retarget' has no attribute {name!r}")
