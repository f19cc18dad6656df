"""handx-robot core: bimanual human hand motion data, formats, text-to-motion and the CLI.

Pure Python / NumPy (torch where needed); no ROS and no simulator imports here. Importing the package
registers the Gymnasium id :data:`TRACKING_ENV_ID` (``gym.make("HandXTracking-v0", motions=[...])``).
"""

import gymnasium

from handx_robot.errors import HandXError
from handx_robot.keypoints import HANDX_21, MEDIAPIPE_21, KeypointOrder
from handx_robot.motion import BimanualMotion, ManoParams, load_motion, save_motion

__version__ = "0.1.0"

#: The Gymnasium id of the RL tracking env (:mod:`handx_robot.sim.tracking_env`), registered on import
#: of this package (entry points are strings: nothing of ``handx_robot.sim`` is imported until ``make``).
TRACKING_ENV_ID = "HandXTracking-v0"
if TRACKING_ENV_ID not in gymnasium.registry:
    gymnasium.register(id=TRACKING_ENV_ID, entry_point="handx_robot.sim.tracking_env:HandXTrackingEnv",
                       vector_entry_point="handx_robot.sim.tracking_env:HandXTrackingVecEnv")

__all__ = [
    "__version__",
    "TRACKING_ENV_ID",
    "HandXError",
    "BimanualMotion",
    "ManoParams",
    "load_motion",
    "save_motion",
    "KeypointOrder",
    "HANDX_21",
    "MEDIAPIPE_21",
]
