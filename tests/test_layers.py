"""The layers import downward only: core -> retarget -> sim -> ros -> app (docs/ARCHITECTURE.md).

Every ``import``/``from`` statement (also inside functions) and every string that names a module
(``importlib.import_module("...")``, entry points) counts. No generic top-level name is imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: layer -> (its folder, the layers it must not reach)
LAYERS = {
    "core": (REPO / "handx_robot", ("retarget", "sim", "ros", "app")),
    "retarget": (REPO / "retarget", ("sim", "ros", "app")),
    "sim": (REPO / "sim", ("ros", "app")),
    "ros": (REPO / "ros_nodes", ("app",)),
}
#: the one allowed upward reference: the Gymnasium registration, entry points as strings (lazy)
ALLOWED = {("handx_robot/__init__.py", "handx_robot.sim.tracking_env")}
GENERIC = ("retarget", "sim", "ros_nodes")
NAME = re.compile(r"^handx_robot\.(retarget|sim|ros|app)\b")


def _modules_named(tree: ast.AST):
    """(line, module name) of every import and of every string that looks like a module path."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.match(node.value):
            yield node.lineno, node.value.split(":")[0]


def _files(folder: Path, layer: str):
    for path in sorted(folder.rglob("*.py")):
        if layer == "core" and path.relative_to(folder).parts[0] == "app":
            continue  # the app layer lives in handx_robot/app/, on top of everything
        yield path


@pytest.mark.parametrize("layer", list(LAYERS))
def test_imports_point_down(layer):
    folder, forbidden = LAYERS[layer]
    bad = []
    for path in _files(folder, layer):
        rel = str(path.relative_to(REPO))
        for line, name in _modules_named(ast.parse(path.read_text(), rel)):
            m = NAME.match(name)
            if m and m.group(1) in forbidden and (rel, name) not in ALLOWED:
                bad.append(f"{rel}:{line} -> {name}")
            if name.split(".")[0] in GENERIC:
                bad.append(f"{rel}:{line} imports the generic top-level name {name!r}")
    assert not bad, f"{layer} reaches up:\n" + "\n".join(bad)


def test_the_app_layer_exists_and_is_the_console_script():
    setup = (REPO / "setup.py").read_text()
    assert "handx-robot = handx_robot.app.cli:main" in setup
    assert (REPO / "handx_robot" / "app" / "pipeline.py").is_file()
