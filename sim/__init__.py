"""MuJoCo scenes, replay, rendering and the Gymnasium tracking env."""

__all__: list[str] = []
