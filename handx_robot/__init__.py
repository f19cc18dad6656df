"""handx-robot core: bimanual human hand motion data, formats, text-to-motion and the CLI.

Pure Python / NumPy (torch where needed); no ROS and no simulator imports here.
"""

from handx_robot.errors import HandXError
from handx_robot.keypoints import HANDX_21, MEDIAPIPE_21, KeypointOrder
from handx_robot.motion import BimanualMotion, ManoParams, load_motion, save_motion

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "HandXError",
    "BimanualMotion",
    "ManoParams",
    "load_motion",
    "save_motion",
    "KeypointOrder",
    "HANDX_21",
    "MEDIAPIPE_21",
]
