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


NODES = {
    "text_to_motion_node": "ros_nodes.text_to_motion_node:main",
    "retarget_node": "ros_nodes.retarget_node:main",
    "sim_node": "ros_nodes.sim_node:main",
    "safety_streamer_node": "ros_nodes.safety_streamer_node:main",
}

setup(
    name="handx_robot",
    version=version(),
    description="Text -> bimanual human hand motion -> dexterous robot hands: retargeting, MuJoCo, RL, ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[
        "handx_robot",
        "handx_robot.generate",
        "handx_robot.safety",
        "retarget",
        "sim",
        "sim.backends",
        "ros_nodes",
    ],
    package_data={"retarget": ["configs/*.yml", "configs/*.yaml"]},
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
            "handx-robot = handx_robot.cli:main",
            *[f"{name} = {target}" for name, target in NODES.items()],
        ],
    },
)
