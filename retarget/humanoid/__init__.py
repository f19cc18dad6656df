"""Humanoids: two arms with a dexterous hand each, retargeted together (arms by IK, hands as everywhere).

Modules: :mod:`.spec` (the YAML schema, shipped ids), :mod:`.model` (the composed MuJoCo model),
:mod:`.workspace` (placing the body-less human motion in front of the robot), :mod:`.ik` (the arm IK,
mink), :mod:`.retarget` (motion -> robot motion with arm joints, and the report).
"""

from __future__ import annotations

from handx_robot.retarget.humanoid.spec import (
    ArmSpec,
    HumanoidSpec,
    WorkspaceSpec,
    get_humanoid,
    humanoid_ids,
    is_humanoid,
)

__all__ = ["ArmSpec", "HumanoidSpec", "WorkspaceSpec", "get_humanoid", "humanoid_ids", "is_humanoid"]
