"""The launch file builds the graph of handx_robot.ros.graph (imported for real when launch_ros is
installed; its structure is checked without ROS launch tools too)."""

from __future__ import annotations

import ast
import importlib.util

import pytest
from handx_robot.ros.graph import LAUNCH_ARGUMENTS, GraphConfig, build_graph


def _launch_path(repo_dir):
    return repo_dir / "launch" / "text_to_hand.launch.py"


def test_launch_file_uses_graph_and_describes_arguments(repo_dir):
    tree = ast.parse(_launch_path(repo_dir).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "handx_robot.ros.graph"
                for a in n.names}
    assert {"LAUNCH_ARGUMENTS", "GraphConfig", "build_graph"} <= imported
    funcs = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    for name in ("prompt", "robot", "mode", "controller", "rate"):
        default, description = LAUNCH_ARGUMENTS[name]
        assert description.strip(), f"launch argument {name} has no description"
    GraphConfig.from_strings({k: v[0] for k, v in LAUNCH_ARGUMENTS.items()})  # defaults are valid


def test_launch_description_matches_graph(repo_dir):
    pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location("text_to_hand_launch", _launch_path(repo_dir))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ld = module.generate_launch_description()
    declared = {e.name: e for e in ld.entities if isinstance(e, DeclareLaunchArgument)}
    assert set(declared) == set(LAUNCH_ARGUMENTS)
    assert all(e.description for e in declared.values())
    context = LaunchContext()
    for name, (default, _) in LAUNCH_ARGUMENTS.items():
        context.launch_configurations[name] = default
    opaque = next(e for e in ld.entities if isinstance(e, OpaqueFunction))
    nodes = opaque.execute(context)  # what ros2 launch runs
    expected = build_graph(GraphConfig())
    assert [n.node_executable for n in nodes] == [s.executable for s in expected]
