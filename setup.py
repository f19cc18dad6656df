"""handx-robot: an ament_python ROS 2 package that is also pip-installable.

``colcon build`` installs the launch files to ``share/handx_robot/launch`` and the node
executables to ``lib/handx_robot`` (see setup.cfg), where ``ros2 launch`` finds them.
"""

from glob import glob
from pathlib import Path

from setuptools import setup

PACKAGE = "handx_robot"
HERE = Path(__file__).parent


def requirements() -> list[str]:
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("#", "-"))]


def version() -> str:
    for line in (HERE / "handx_robot" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip("\"'")
    raise RuntimeError("__version__ not found")


#: import name under ``handx_robot`` -> the repository folder that holds it
LAYERS = {"retarget": "retarget", "sim": "sim", "ros": "ros_nodes"}


def packages() -> list[str]:
    """``handx_robot`` and its subpackages, the layer folders mapped under it (every folder with an
    ``__init__.py``)."""
    roots = {PACKAGE: HERE / PACKAGE, **{f"{PACKAGE}.{name}": HERE / folder for name, folder in LAYERS.items()}}
    found = []
    for name, root in roots.items():
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root).parts
            found.append(".".join((name, *rel)))
    return found


NODES = {
    "text_to_motion_node": "handx_robot.ros.text_to_motion_node:main",
    "retarget_node": "handx_robot.ros.retarget_node:main",
    "sim_node": "handx_robot.ros.sim_node:main",
    "safety_streamer_node": "handx_robot.ros.safety_streamer_node:main",
}

setup(
    name="handx_robot",
    version=version(),
    description="Text -> bimanual human hand motion -> dexterous robot hands: retargeting, MuJoCo, RL, ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    # one import namespace; the folders stay where the product's layout puts them
    packages=packages(),
    package_dir={f"{PACKAGE}.{name}": folder for name, folder in LAYERS.items()},
    package_data={"handx_robot.retarget": ["configs/*.yml", "configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
    ],
    install_requires=requirements(),
    extras_require={"test": ["pytest", "pytest-timeout", "ruff"]},
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "handx-robot = handx_robot.app.cli:main",
            *[f"{name} = {target}" for name, target in NODES.items()],
        ],
    },
)
