"""rclpy nodes: thin adapters between ROS 2 messages and the handx-robot core."""

__all__: list[str] = []
