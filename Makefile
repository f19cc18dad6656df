# The README's two commands: `make demo` (main job on the embedded default) and `make test` (whole suite).
# Both create .venv and install everything on first use.
.PHONY: demo test test-min env bench clean
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

env:
	@bash scripts/ensure_env.sh

demo: env
	@bash scripts/demo.sh

test: env
	.venv/bin/ruff check .
	bash scripts/typecheck_isaacgym.sh
	.venv/bin/python -m pytest -q

# The core and ROS tests at the oldest supported versions (requirements-min.txt) in .venv-min.
test-min:
	bash scripts/check_min_versions.sh

bench: env
	@for b in benchmarks/*.py; do grep -q '__main__' $$b || continue; echo "== $$b"; .venv/bin/python $$b || exit 1; done

clean:
	rm -rf out build install log .pytest_cache
