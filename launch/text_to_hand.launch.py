"""``ros2 launch handx_robot text_to_hand.launch.py prompt:="..." robot:=shadow_right mode:=sim``

A prompt goes in, safe joint commands stream to the hand's controller (``mode:=real``) or to a MuJoCo
hand standing in for it (``mode:=sim``). The node list and every parameter come from
:mod:`handx_robot.ros.graph` (the same graph ``handx-robot ros-run`` starts in one process).
Arguments (``ros2 launch handx_robot text_to_hand.launch.py --show-args``): see
:data:`handx_robot.ros.graph.LAUNCH_ARGUMENTS`.
"""

from launch import LaunchDescription  # noqa: I001 (ruff takes the repo's launch/ folder for this package)
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from handx_robot.ros.graph import LAUNCH_ARGUMENTS, GraphConfig, build_graph

PACKAGE = "handx_robot"


def launch_nodes(context, *args, **kwargs) -> list:
    """The graph's nodes for the launch arguments given (evaluated at launch time)."""
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    cfg = GraphConfig.from_strings(values)
    return [
        Node(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.name,
            parameters=[dict(spec.parameters)],
            remappings=list(spec.remappings),
            output="screen",
            emulate_tty=True,
        )
        for spec in build_graph(cfg)
    ]


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, (default, description) in LAUNCH_ARGUMENTS.items()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_nodes)])
