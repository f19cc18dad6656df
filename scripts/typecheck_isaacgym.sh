#!/usr/bin/env bash
# Type-check the Isaac Gym backend (sim/backends/isaacgym_backend.py) against the isaacgym-stubs package.
#
# Isaac Gym is not on PyPI and needs an NVIDIA GPU, so the backend cannot run in tests; mypy checks
# its calls instead: Gym method names, argument counts and types, gymapi attribute names and
# constants. torch is checked with its own annotations; gymtorch has no published stub, so this
# script writes one for the two functions the backend uses (wrap_tensor, unwrap_tensor; the
# signatures of Isaac Gym's python/isaacgym/gymtorch.py). Errors in the other modules the backend
# imports are not reported (follow_imports = silent).
#
# Needs (requirements-dev.txt): isaacgym-stubs==1.1rc4 mypy==2.4.1. Idempotent: the installed stub
# declares a property named `lambda` (a Python keyword, so the file does not parse); it is renamed
# `lambda_` in the installed copy inside the environment, every run (no-op once done).
#
# Usage: scripts/typecheck_isaacgym.sh   (PYTHON=path/to/python to use another environment)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

if ! "$PY" -c "import mypy" 2>/dev/null; then
    echo "typecheck_isaacgym: mypy is not installed in $PY; pip install -r requirements-dev.txt" >&2
    exit 2
fi
STUB_DIR="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/isaacgym-stubs"
if [ ! -f "$STUB_DIR/gymapi.pyi" ]; then
    echo "typecheck_isaacgym: isaacgym-stubs is not installed in $PY; pip install -r requirements-dev.txt" >&2
    exit 2
fi
sed -i -E 's/^([[:space:]]+def )lambda\(self\)/\1lambda_(self)/' "$STUB_DIR/gymapi.pyi"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# mypy does not follow setuptools' editable import hook: lay the import namespace out as files
# (handx_robot/ with sim -> sim/, retarget -> retarget/, ros -> ros_nodes/, as setup.py maps them)
mkdir "$WORK/handx_robot"
for entry in "$ROOT"/handx_robot/*; do
    case "$(basename "$entry")" in __pycache__) continue ;; esac
    ln -s "$entry" "$WORK/handx_robot/$(basename "$entry")"
done
ln -s "$ROOT/sim" "$WORK/handx_robot/sim"
ln -s "$ROOT/retarget" "$WORK/handx_robot/retarget"
ln -s "$ROOT/ros_nodes" "$WORK/handx_robot/ros"

# the stub package ships __init__.py where mypy wants __init__.pyi, and no gymtorch: lay out
# `isaacgym` with the installed gymapi.pyi, an __init__.pyi and gymtorch.pyi
mkdir "$WORK/isaacgym"
ln -s "$STUB_DIR/gymapi.pyi" "$WORK/isaacgym/gymapi.pyi"
printf '%s\n' 'from . import gymapi as gymapi, gymtorch as gymtorch' > "$WORK/isaacgym/__init__.pyi"
printf '%s\n' \
    'from typing import Any' \
    'import torch' \
    'from .gymapi import Tensor' \
    'def wrap_tensor(gym_tensor: Tensor, offsets: Any = ..., counts: Any = ...) -> torch.Tensor: ...' \
    'def unwrap_tensor(torch_tensor: torch.Tensor) -> Tensor: ...' \
    > "$WORK/isaacgym/gymtorch.pyi"

# the stub itself does not pass mypy with numpy 2 (ndarray[float32], undefined names): used, not checked
printf '%s\n' \
    '[mypy]' \
    'python_version = 3.11' \
    'follow_imports = silent' \
    'check_untyped_defs = True' \
    'warn_unused_ignores = True' \
    'warn_redundant_casts = True' \
    'strict_equality = True' \
    'cache_dir = /dev/null' \
    '[mypy-isaacgym.*]' \
    'ignore_errors = True' \
    > "$WORK/mypy.ini"

cd "$WORK"
MYPYPATH="$WORK" "$PY" -m mypy --config-file "$WORK/mypy.ini" -m handx_robot.sim.backends.isaacgym_backend
