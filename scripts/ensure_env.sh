#!/usr/bin/env bash
# Create .venv (if missing) and install everything handx-robot needs; fast when already done.
# Called by `make test` and `make demo`. Idempotent: a stamp records the hash of the dependency files.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.handx-installed
# The ROS 2 launch tools are not on PyPI: ../shared/ros2-launch holds wheels of them (its README). Where
# that folder exists they are installed too, so `ros2 launch` runs in the tests (tests/test_ros2_launch.py).
LAUNCH_WHEELS=${HANDX_ROS2_LAUNCH_WHEELS:-../shared/ros2-launch}
HASH=$( (cat requirements.txt requirements-dev.txt requirements-ros-launch.txt requirements-models.txt setup.py setup.cfg package.xml;
         ls "$LAUNCH_WHEELS"/*.whl 2>/dev/null || true) | sha256sum | cut -d' ' -f1)

# System libraries: headless OpenGL for MuJoCo rendering (EGL, OSMesa fallback).
need_apt=()
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || need_apt+=(libegl1)
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || need_apt+=(libgl1)
ldconfig -p 2>/dev/null | grep -q 'libOSMesa' || need_apt+=(libosmesa6)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[ensure_env] installing system packages: ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null \
      || echo "[ensure_env] warning: apt-get failed; rendering may be unavailable" >&2
  else
    echo "[ensure_env] warning: missing ${need_apt[*]} (install them for headless rendering)" >&2
  fi
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && [ -x "$VENV/bin/handx-robot" ]; then
  exit 0
fi
echo "[ensure_env] setting up $VENV (first run takes a few minutes)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
"$VENV/bin/python" -m pip install -q -r requirements-dev.txt
# model files only (robosuite's MJCFs of the GR1 humanoid and its hands): no dependencies, see the file
"$VENV/bin/python" -m pip install -q --no-deps -r requirements-models.txt
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
if ls "$LAUNCH_WHEELS"/*.whl >/dev/null 2>&1; then
  echo "[ensure_env] installing the ROS 2 launch tools from $LAUNCH_WHEELS"
  "$VENV/bin/python" -m pip install -q -r requirements-ros-launch.txt
  "$VENV/bin/python" -m pip install -q --no-deps "$LAUNCH_WHEELS"/*.whl
else
  echo "[ensure_env] no $LAUNCH_WHEELS: the real 'ros2 launch' tests will skip" >&2
fi
"$VENV/bin/python" -c "import handx_robot, handx_robot.retarget, handx_robot.sim, handx_robot.ros, handx_robot.app, mujoco, torch, rclpy, dex_retargeting"
echo "$HASH" > "$STAMP"
echo "[ensure_env] ready: $VENV"
