"""``ros2 launch handx_robot text_to_hand.launch.py prompt:="..." robot:=shadow_right mode:=sim``

A prompt goes in, safe joint commands stream to the hand's controller (``mode:=real``) or to a MuJoCo
hand standing in for it (``mode:=sim``). With a humanoid (``robot:=gr1_inspire``) the arms' commands
stream too, each through a safety streamer of its own, to ``/<side>_arm_controller/...`` (in
``mode:=sim`` the humanoid is posed kinematically). The node list and every parameter come from
:mod:`handx_robot.ros.graph` (the same graph ``handx-robot ros-run`` starts in one process).
Arguments (``ros2 launch handx_robot text_to_hand.launch.py --show-args``): see
:data:`handx_robot.ros.graph.LAUNCH_ARGUMENTS`.

Lifecycle: the prompt streams once every node says ``ready`` (:mod:`handx_robot.ros.readiness`), so a
cold launch performs it from the first frame. A node that exits by itself ends the launch; one that
fails (it could not start: unknown robot, missing model, bad parameter; its log says why) makes
``ros2 launch`` exit non-zero instead of running on half a graph. Ctrl-C stops every node within 2 s.
"""

from launch import LaunchDescription  # noqa: I001 (ruff takes the repo's launch/ folder for this package)
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from handx_robot.ros.graph import LAUNCH_ARGUMENTS, GraphConfig, build_graph

PACKAGE = "handx_robot"


class NodeFailed(RuntimeError):
    """A node of the graph exited with an error: ``ros2 launch`` shuts the graph down and exits 1."""


#: the exit code asyncio reports when it could not read a child's status ("Unknown child process pid
#: ..., will report returncode 255": the child was reaped elsewhere); seen once in 20 loaded launches
UNKNOWN_EXIT_CODE = 255


def node_exited(event, context):
    """``on_exit`` of every node. Exit code 0 during a shutdown is the normal end. A node that exits
    on its own with 0 ends the launch (the graph needs all of its nodes); one that exits non-zero
    raises :class:`NodeFailed`: launch logs it, shuts the rest down and returns 1. During a shutdown
    an exit status that asyncio could not read (255) is logged, not taken for a failure."""
    if event.returncode != 0:
        if context.is_shutdown and event.returncode == UNKNOWN_EXIT_CODE:
            return [LogInfo(msg=f"node '{event.process_name}' ended; launch could not read its exit status")]
        raise NodeFailed(f"node '{event.process_name}' exited with code {event.returncode} (its log above says "
                         "why); the text-to-hand graph cannot run without it")
    if not context.is_shutdown:
        return [EmitEvent(event=Shutdown(reason=f"node '{event.process_name}' exited"))]
    return None


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
            on_exit=node_exited,
        )
        for spec in build_graph(cfg)
    ]


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, (default, description) in LAUNCH_ARGUMENTS.items()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_nodes)])
