"""Robot hand models, kinematics and retargeting (pure Python / NumPy / torch, no ROS)."""

__all__: list[str] = []
