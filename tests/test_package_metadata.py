"""package.xml is a valid format-3 ROS package manifest (REP 149), checked structurally offline
(no XSD here): root, required elements, their order, and the ament_python build type; plus the
consistency of setup.py's entry points with the node modules."""

from __future__ import annotations

import ast
import importlib
import re
import xml.etree.ElementTree as ET

#: REP 149 element order: name, version, description, maintainer+, license+, url*, author*, then deps/export
HEAD = ("name", "version", "description", "maintainer", "license")
OPTIONAL_META = ("url", "author")
DEPENDS = {
    "buildtool_depend", "buildtool_export_depend", "build_depend", "build_export_depend", "depend",
    "exec_depend", "test_depend", "doc_depend", "conflict", "replace", "group_depend", "member_of_group",
}


def _root(repo_dir):
    return ET.parse(repo_dir / "package.xml").getroot()


def test_package_xml_is_format_3(repo_dir):
    text = (repo_dir / "package.xml").read_text()
    assert text.lstrip().startswith("<?xml"), "package.xml must start with an XML declaration"
    assert "package_format3.xsd" in text, "the xml-model processing instruction should name the format 3 schema"
    root = _root(repo_dir)
    assert root.tag == "package" and root.get("format") == "3"
    tags = [child.tag for child in root if isinstance(child.tag, str)]
    # required head in order, each once except maintainer/license (1..n)
    i = 0
    for tag in HEAD:
        assert i < len(tags) and tags[i] == tag, f"expected <{tag}> at position {i}, got {tags[i:i + 1]}"
        i += 1
        while tag in ("maintainer", "license") and i < len(tags) and tags[i] == tag:
            i += 1
    while i < len(tags) and tags[i] in OPTIONAL_META:
        i += 1
    rest = tags[i:]
    assert rest and rest[-1] == "export", "<export> must come last"
    unknown = [t for t in rest[:-1] if t not in DEPENDS]
    assert not unknown, f"unexpected elements {unknown}; allowed: {sorted(DEPENDS)}"
    for tag in ("name", "version", "description"):
        assert len(root.findall(tag)) == 1
    assert root.findtext("name") == "handx_robot"
    assert re.fullmatch(r"\d+\.\d+\.\d+", root.findtext("version")), root.findtext("version")
    for m in root.findall("maintainer"):
        assert m.get("email") and "@" in m.get("email") and m.text.strip()
    assert root.find("export/build_type").text == "ament_python"


def test_package_xml_declares_ros_dependencies(repo_dir):
    deps = {e.text for e in _root(repo_dir).iter("exec_depend")}
    for dep in ("rclpy", "std_msgs", "sensor_msgs", "trajectory_msgs", "geometry_msgs", "visualization_msgs",
                "std_srvs", "diagnostic_msgs", "launch", "launch_ros"):
        assert dep in deps, f"package.xml lacks <exec_depend>{dep}</exec_depend>"


def test_version_matches_python_package(repo_dir):
    import handx_robot

    assert _root(repo_dir).findtext("version") == handx_robot.__version__


def test_setup_entry_points_resolve(repo_dir):
    tree = ast.parse((repo_dir / "setup.py").read_text())
    nodes = next(
        ast.literal_eval(n.value) for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "NODES" for t in n.targets)
    )
    assert set(nodes) == {"text_to_motion_node", "retarget_node", "sim_node", "safety_streamer_node"}
    for name, target in nodes.items():
        module, func = target.split(":")
        assert module == f"handx_robot.ros.{name}"
        assert callable(getattr(importlib.import_module(module), func))
