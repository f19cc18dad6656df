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


def _setup_literal(repo_dir, name: str):
    """The literal value assigned to ``name`` in setup.py (first assignment)."""
    tree = ast.parse((repo_dir / "setup.py").read_text())
    return next(
        ast.literal_eval(n.value) for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == name for t in n.targets)
    )


def _ranges(repo_dir, *names: str) -> dict:
    """canonical package name -> SpecifierSet, from setup.py's REQUIRES / OPTIONAL."""
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    return {canonicalize_name(pkg): SpecifierSet(spec) for name in names
            for pkg, spec in _setup_literal(repo_dir, name).items()}


def _pins(path) -> dict:
    """canonical package name -> pinned Version of a requirements file (``-r`` lines and comments skipped)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _lower_bound(specifiers):
    from packaging.version import Version

    (low,) = [s for s in specifiers if s.operator == ">="]
    return Version(low.version)


def test_every_locked_package_is_declared_and_inside_its_range(repo_dir):
    ranges = _ranges(repo_dir, "REQUIRES", "OPTIONAL")
    lock = _pins(repo_dir / "requirements.txt")
    undeclared = sorted(set(lock) - set(ranges))
    assert not undeclared, f"requirements.txt pins {undeclared}, which setup.py declares nowhere"
    dev = {n: v for n, v in _pins(repo_dir / "requirements-dev.txt").items() if n in ranges}
    for name, version in {**lock, **dev}.items():
        assert version in ranges[name], f"the lock's {name}=={version} is outside setup.py's range {ranges[name]}"
    for name, spec in ranges.items():
        assert any(s.operator == ">=" for s in spec) and any(s.operator == "<" for s in spec), (
            f"{name}{spec}: declare a floor (>=) and a cap (<)"
        )


def test_min_requirements_pin_each_lower_bound(repo_dir):
    from packaging.version import Version

    required = _ranges(repo_dir, "REQUIRES")
    floor = _pins(repo_dir / "requirements-min.txt")
    assert set(floor) == set(required), (
        f"requirements-min.txt must pin exactly setup.py's REQUIRES: missing {sorted(set(required) - set(floor))}, "
        f"extra {sorted(set(floor) - set(required))}"
    )
    for name, spec in required.items():
        assert floor[name] == _lower_bound(spec), f"requirements-min.txt: {name}=={floor[name]}, range {spec}"
    assert floor["numpy"] < Version("2"), "the floor keeps numpy 1.x (Ubuntu 24.04 / ROS 2 Jazzy)"


def test_extras_name_declared_optional_packages(repo_dir):
    required, optional = _setup_literal(repo_dir, "REQUIRES"), _setup_literal(repo_dir, "OPTIONAL")
    extras = _setup_literal(repo_dir, "EXTRAS")
    assert {"rl", "text", "dex", "mano", "test"} <= set(extras)
    used = {pkg for group in extras.values() for pkg in group}
    assert used <= set(optional), f"extras name undeclared packages {sorted(used - set(optional))}"
    assert set(optional) <= used, f"OPTIONAL packages in no extra: {sorted(set(optional) - used)}"
    assert not set(required) & set(optional), "a package is either required or optional"
