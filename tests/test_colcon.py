"""``colcon build`` of the ament_python package into a temporary workspace installs what
``ros2 launch`` / ``ros2 run`` look for."""

from __future__ import annotations

import os

import pytest
from ros_launch_harness import build_workspace, colcon_executable

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

NODES = ("text_to_motion_node", "retarget_node", "sim_node", "safety_streamer_node")


def test_colcon_build_installs_package(tmp_path):
    if colcon_executable() is None:
        pytest.skip("colcon is not installed (pip install -r requirements-dev.txt)")
    proc = build_workspace(tmp_path, timeout=100)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    prefix = tmp_path / "install" / "handx_robot"
    expected = [
        prefix / "share" / "handx_robot" / "launch" / "text_to_hand.launch.py",
        prefix / "share" / "ament_index" / "resource_index" / "packages" / "handx_robot",
        prefix / "share" / "handx_robot" / "package.xml",
        *[prefix / "lib" / "handx_robot" / n for n in NODES],
    ]
    missing = [str(p.relative_to(prefix)) for p in expected if not p.exists()]
    assert not missing, f"colcon install lacks {missing}"
    # one import namespace: the layers install under handx_robot, no generic top-level package
    site = next(prefix.rglob("site-packages"))
    for layer in ("retarget", "sim", "sim/backends", "ros", "safety", "generate"):
        assert (site / "handx_robot" / layer / "__init__.py").is_file(), f"handx_robot/{layer} not installed"
    for generic in ("retarget", "sim", "ros_nodes"):
        assert not (site / generic).exists(), f"a top-level package '{generic}' was installed"
    assert list(site.rglob("handx_robot/retarget/configs/*.yml")), "retargeting configs not installed"
    entry_points = "\n".join(p.read_text() for p in prefix.rglob("entry_points.txt"))
    for n in NODES:
        assert f"{n} = handx_robot.ros.{n}:main" in entry_points, entry_points
        assert os.access(prefix / "lib" / "handx_robot" / n, os.X_OK)
