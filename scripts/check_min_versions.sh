#!/usr/bin/env bash
# The core and ROS tests at the oldest supported versions (`make test-min`): .venv-min gets
# requirements-min.txt (every lower bound of setup.py's REQUIRES), the ROS 2 wheels and test tools at
# requirements-dev.txt's pins, and the package itself without dependencies. Idempotent: a stamp records
# the hash of the files the environment is made from; when they change, .venv-min is made anew (nothing
# newer may linger in it).
set -euo pipefail
cd "$(dirname "$0")/.."
# Python 3.11: matplotlib 3.6.3 (Ubuntu 24.04's) has no wheel for a newer Python on PyPI
PY=${PYTHON:-python3.11}
VENV=.venv-min
STAMP=$VENV/.handx-min-installed
LAUNCH_WHEELS=${HANDX_ROS2_LAUNCH_WHEELS:-../shared/ros2-launch}
HASH=$( (cat requirements-min.txt requirements-dev.txt requirements-ros-launch.txt setup.py setup.cfg;
         ls "$LAUNCH_WHEELS"/*.whl 2>/dev/null || true) | sha256sum | cut -d' ' -f1)
#: from requirements-dev.txt, at its pins: the ROS 2 wheels and the test tools
DEV_PINS='^(ros-rclpy\[fastrtps\]|ros-(std|sensor|trajectory|geometry|visualization|diagnostic)-msgs|ros-std-srvs|pytest|pytest-timeout|hypothesis)=='
#: tests that need only install_requires (an optional extra's test skips itself)
TESTS=(
  tests/test_motion.py tests/test_readers.py tests/test_rotations.py tests/test_keypoints_frames.py
  tests/test_features.py tests/test_cli.py tests/test_cli_data.py tests/test_skeleton_views.py
  tests/test_generate_parser.py tests/test_generate_events.py tests/test_generate_handmodel.py
  tests/test_generate_modes.py tests/test_layers.py tests/test_package_metadata.py
  tests/test_safety.py tests/test_safety_properties.py
  tests/test_kinematics.py tests/test_robots.py tests/test_retarget.py tests/test_interaction.py tests/test_pool.py
  tests/test_dataset_report.py
  tests/test_sim_scene.py tests/test_sim_replay.py tests/test_sim_contacts.py tests/test_sim_render.py
  tests/test_pipeline.py tests/test_ros_*.py tests/test_colcon.py tests/test_ros2_launch.py
)

command -v "$PY" >/dev/null || { echo "[test-min] $PY not found (set PYTHON=python3.11)" >&2; exit 1; }
if ! { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; }; then
  echo "[test-min] setting up $VENV with the oldest supported versions (takes a minute)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
  # shellcheck disable=SC2046  # one argument per pin
  "$VENV/bin/python" -m pip install -q -r requirements-min.txt $(grep -E "$DEV_PINS" requirements-dev.txt)
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
  "$VENV/bin/python" -m pip check
  # as the README's Jazzy steps: dex-retargeting for its hands' retargeting configs (YAML files) only;
  # its solver needs numpy 2 and is not used by the nodes, so none of its dependencies
  "$VENV/bin/python" -m pip install -q --no-deps "$(grep -E '^dex-retargeting==' requirements.txt)"
  # colcon and the ROS 2 launch tools: the real `ros2 launch` test runs at the floor too
  # shellcheck disable=SC2046
  "$VENV/bin/python" -m pip install -q $(grep -E '^(colcon-common-extensions|colcon-ros|ros-ament-package)==' requirements-dev.txt) \
    -r requirements-ros-launch.txt
  if ls "$LAUNCH_WHEELS"/*.whl >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install -q --no-deps "$LAUNCH_WHEELS"/*.whl
  fi
  echo "$HASH" > "$STAMP"
fi
"$VENV/bin/python" -m pip list 2>/dev/null | grep -iE '^(numpy|mujoco|scipy) '
"$VENV/bin/python" -m pytest -q "${TESTS[@]}"
