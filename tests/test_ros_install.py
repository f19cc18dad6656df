"""Installing where ROS users are: package.xml's rosdep keys match what setup.py installs and the
nodes import, the tests run beside launch_testing's pytest plugin (in every ROS 2 install), and the
README's ROS steps are the ones tests/test_ros2_launch.py runs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

#: setup.py's REQUIRES -> its rosdep key (ros/rosdistro rosdep/python.yaml), None: rosdistro has no key
#: (the README's pip step brings it)
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "PyYAML": "python3-yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "rich": "python3-rich",
    "imageio": "python3-imageio",
    "numba": "python3-numba",
    "mujoco": "python3-mujoco-pip",
    "gymnasium": "python3-gymnasium-pip",
    "gymnasium-robotics": "python3-gymnasium-robotics-pip",
    "threadpoolctl": None,
    "daqp": None,
    "imageio-ffmpeg": None,
}


def _setup_dict(repo_dir, name: str) -> dict:
    tree = ast.parse((repo_dir / "setup.py").read_text())
    return next(ast.literal_eval(n.value) for n in ast.walk(tree)
                if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == name for t in n.targets))


def test_package_xml_keys_are_what_setup_installs(repo_dir):
    requires = _setup_dict(repo_dir, "REQUIRES")
    assert set(requires) == set(ROSDEP_KEYS), "a package was added to setup.py's REQUIRES: give its rosdep key here"
    deps = {e.text for e in ET.parse(repo_dir / "package.xml").getroot().iter("exec_depend")}
    python_keys = {d for d in deps if d.startswith("python3-")}
    expected = {k for k in ROSDEP_KEYS.values() if k}
    assert python_keys == expected, (f"package.xml declares {sorted(python_keys - expected)} that setup.py does not "
                                     f"install and lacks {sorted(expected - python_keys)}")
    # keys that resolve to something the nodes do not import (rosdep would install the wrong thing)
    assert not deps & {"python3-torch", "pinocchio", "python3-six"}, deps


def test_nodes_import_only_what_setup_installs(repo_dir):
    """The ROS nodes' imports (ros_nodes/ and what they import of the package) are in REQUIRES or ROS."""
    code = (
        "import sys, handx_robot.ros.text_to_motion_node, handx_robot.ros.retarget_node, "
        "handx_robot.ros.safety_streamer_node, handx_robot.ros.sim_node, handx_robot.ros.graph\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=repo_dir)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = set(out.stdout.split())
    optional = {"torch", "jax", "sentence_transformers", "transformers", "dex_retargeting", "pinocchio", "smplx",
                "stable_baselines3", "tensorboard", "onnx", "onnxruntime"}
    assert not loaded & optional, f"the nodes import optional extras at start-up: {sorted(loaded & optional)}"


def test_tests_run_beside_launch_testing_plugin(repo_dir, tmp_path):
    """A ROS 2 install puts launch_testing's pytest plugin on the path; under pytest 9 it fails to load
    (its hook takes the removed ``path`` argument). A stand-in with the same entry point and the same
    hook signature: without the repository's pytest options pytest refuses to start, with them it runs."""
    site = tmp_path / "site"
    (site / "fake_launch_testing").mkdir(parents=True)
    (site / "fake_launch_testing" / "__init__.py").write_text("")
    (site / "fake_launch_testing" / "hooks.py").write_text(
        "def pytest_pycollect_makemodule(module_path, path, parent):\n    return None\n")
    dist = site / "launch_testing-1.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: launch_testing\nVersion: 1.0.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nlaunch_testing = fake_launch_testing.hooks\n")
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    args = [sys.executable, "-m", "pytest", "-q", "--co", "tests/test_motion.py"]
    bare = subprocess.run([*args, "-o", "addopts="], cwd=repo_dir, env=env, capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0 and "pytest_pycollect_makemodule" in bare.stdout + bare.stderr, (
        "the stand-in should break pytest like launch_testing does; it proves nothing otherwise")
    ours = subprocess.run(args, cwd=repo_dir, env=env, capture_output=True, text=True, timeout=120)
    assert ours.returncode == 0, ours.stdout[-2000:] + ours.stderr[-2000:]


def test_readme_ros_steps_are_the_tested_ones(repo_dir):
    from ros_launch_harness import BUILD_COMMAND, LAUNCH_FILE
    from test_ros2_launch import PROMPT, ROBOT

    text = (repo_dir / "README.md").read_text()
    section = text[text.index("## ROS 2"):]
    section = section[:section.index("\n## ", 5)]
    assert " ".join(BUILD_COMMAND) in section, "the README builds the package otherwise than the launch test"
    launch = f'ros2 launch handx_robot {LAUNCH_FILE} prompt:="{PROMPT}" robot:={ROBOT} mode:=sim'
    assert launch in section, f"the README's ROS steps should launch what the test launches: {launch}"
    for step in ("source install/setup.bash", "rosdep install", "--system-site-packages", "COLCON_IGNORE",
                 "pip install -r src/handx_robot/requirements-min.txt", "pip install --no-deps dex-retargeting=="):
        assert step in section, f"the README's ROS steps lack {step!r}"
    dex_pin = next(ln for ln in (repo_dir / "requirements.txt").read_text().splitlines() if ln.startswith("dex-retargeting=="))
    assert f"pip install --no-deps {dex_pin}" in section, f"the README should install {dex_pin}, the tested version"


