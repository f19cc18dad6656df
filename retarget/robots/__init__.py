"""The registry of robot hands: id -> model (URDF or MJCF) + retargeting config.

Every robot is a :class:`RobotSpec`: a kinematic model and a retargeting config in
dex-retargeting's YAML schema (``retargeting: {type, urdf_path, target_..., scaling_factor, ...}``),
plus an optional ``handx:`` section of our own (wrist calibration, keypoint order).

Ids (``s`` in ``right``, ``left``):

===================== ======================================================== =====================
id                    model                                                    config
===================== ======================================================== =====================
``allegro_s``         ``<assets>/allegro_hand/allegro_hand_s.urdf``            dex teleop (vector)
``leap_s``            ``<assets>/leap_hand/leap_hand_s.urdf``                  dex teleop (vector)
``inspire_s``         ``<assets>/inspire_hand/inspire_hand_s.urdf`` (mimic)    dex teleop (vector)
``shadow_s``          ``<assets>/shadow_hand/shadow_hand_s.urdf``              dex teleop (vector)
``ability_s``         ``<assets>/ability_hand/ability_hand_s.urdf``            dex teleop (vector)
``schunk_svh_s``      ``<assets>/schunk_hand/schunk_svh_hand_s.urdf``          dex teleop (vector)
``panda_gripper``     ``<assets>/panda_gripper/panda_gripper_glb.urdf``        dex teleop (vector)
``shadow_builtin_s``  Shadow Hand MJCF of the ``gymnasium-robotics`` wheel     ``retarget/configs/``
                      (left: mirrored copy generated in the cache directory)
``inspire_builtin_s`` Inspire hand MJCF of the ``robosuite`` wheel, with       ``retarget/configs/``
                      fingertip sites and joint couplings (6 actuated joints)
``fourier_builtin_s`` Fourier (GR1) hand MJCF of the ``robosuite`` wheel, idem ``retarget/configs/``
===================== ======================================================== =====================

Variants: ``ID@position`` (dex offline config, position objective with a free-floating base) and
``ID@dexpilot`` (dex teleop DexPilot config), where dex-retargeting ships them. A path to a YAML file
is also an id: its ``urdf_path`` is resolved against the YAML's folder, then the asset directory.

Asset directory: ``assets=`` / ``--assets DIR`` / ``$HANDX_ROBOT_ASSETS``, laid out like dex-urdf
(``DIR/allegro_hand/...``) or like its repository (``DIR/robots/hands/allegro_hand/...``).

Calibration (``handx:`` section of a config; defaults in brackets)::

    base_rpy_in_human_wrist: [r, p, y]   # R_wrist_base, URDF rpy (rad)  [0, 0, 0]
    base_xyz_in_human_wrist: [x, y, z]   # p_wrist_base (m)  [placed so wrist_match_link is at the wrist]
    wrist_match_link: NAME               # [vector origin link / DexPilot wrist_link_name / base]
    human_keypoint_order: mediapipe21    # order of the config's human indices  [mediapipe21]

The human wrist frame is :mod:`handx_robot.handframe`'s (x out of the palm, z toward the fingers,
y toward the thumb on a right hand, toward the pinky on a left one). It coincides with
dex-retargeting's MANO-convention frame, in which dex-urdf hands' base frames are defined, so their
rotation offset is the identity. ``T_world_base = T_world_wrist @ T_wrist_base``.

Without an asset directory, :func:`resolve_robot` lets simulation use the built-in hand of a
dex-urdf family (``shadow_s`` -> ``shadow_builtin_s``) and says so; hardware never does.

Modules: :mod:`.spec` (types), :mod:`.assets` (asset directory, dex-retargeting's configs),
:mod:`.builtin` (the built-in Shadow MJCF), :mod:`.robosuite_hands` (the built-in Inspire and
Fourier MJCFs), :mod:`.config` (config validation, calibration, links),
:mod:`.registry` (ids -> specs), :mod:`.resolve` (command-line choices -> ids -> specs).
"""

from __future__ import annotations

from handx_robot.retarget.robots.assets import ASSETS_ENV, asset_roots, dex_config_dir
from handx_robot.retarget.robots.builtin import (
    BUILTIN_SHADOW_DROPPED_GEOMS,
    BUILTIN_SHADOW_NONCOLLIDING_GEOMS,
    builtin_shadow_model,
)
from handx_robot.retarget.robots.config import (
    check_config_links,
    fingertip_links,
    human_wrist_link,
    validate_config,
    wrist_link,
)
from handx_robot.retarget.robots.registry import (
    CONFIG_DIR,
    SIDES,
    RobotRegistry,
    builtin_ids,
    dex_family,
    get_robot,
    list_robots,
    load_tree_cached,
    register_robot,
    robot_side,
)
from handx_robot.retarget.robots.resolve import resolve_robot, resolve_robot_ids, resolve_robot_specs
from handx_robot.retarget.robots.robosuite_hands import robosuite_hand_model
from handx_robot.retarget.robots.spec import Calibration, RobotInfo, RobotSpec

__all__ = [
    "RobotSpec",
    "RobotInfo",
    "Calibration",
    "RobotRegistry",
    "get_robot",
    "list_robots",
    "register_robot",
    "resolve_robot_ids",
    "resolve_robot",
    "resolve_robot_specs",
    "robot_side",
    "dex_family",
    "fingertip_links",
    "wrist_link",
    "human_wrist_link",
    "builtin_ids",
    "builtin_shadow_model",
    "robosuite_hand_model",
    "dex_config_dir",
    "asset_roots",
    "load_tree_cached",
    "check_config_links",
    "validate_config",
    "ASSETS_ENV",
    "CONFIG_DIR",
    "SIDES",
    "BUILTIN_SHADOW_DROPPED_GEOMS",
    "BUILTIN_SHADOW_NONCOLLIDING_GEOMS",
]
