#!/usr/bin/env bash
# Install the *minimum* versions of anatile's runtime dependencies (the floors in
# pyproject.toml) into a fresh temporary venv and run a smoke subset of the tests there.
#
#   bash scripts/check_floors.sh            # floors from pyproject.toml
#   KEEP=1 bash scripts/check_floors.sh     # keep the venv (path printed at the end)
#
# Wheels come from pip's configured indexes (the local wheel mirror first, PyPI for the
# rest); binary wheels only, so nothing is compiled. Takes a few minutes (no GPU needed).
# Not run by CI (.ci/run): the installs do not fit its time budget; CI runs the cheap
# tests/test_dependency_floors.py, which checks the floors against the features used.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=$(mktemp -d /tmp/anatile-floors.XXXXXX)
cleanup() { if [ -z "${KEEP:-}" ]; then rm -rf "$VENV"; fi; }
trap cleanup EXIT

# runtime floors: "name>=X" -> "name==X"
mapfile -t PINS < <("$PY" - <<'PYEOF'
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for dep in deps:
    name, _, floor = dep.partition(">=")
    print(f"{name.strip()}=={floor.strip()}")
PYEOF
)
echo "floors: ${PINS[*]}"
"$PY" -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install -q --only-binary=:all: "${PINS[@]}" \
    pytest hypothesis tqdm 2>&1 | grep -v '^WARNING: Location' || true
# anatile itself without resolving its dependencies again (they are pinned above)
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . 2>&1 \
    | grep -v '^WARNING: Location' || true
"$VENV/bin/python" - <<'PYEOF'
import importlib.metadata as md
for name in ("torch", "numpy", "scipy", "ipywidgets", "ipyevents", "matplotlib"):
    print(f"  {name} {md.version(name)}")
PYEOF
# the smoke subset: every layer of the package, the scipy optimizer path (rng=, qmc)
# and the state-dict/weights_only path
OMP_NUM_THREADS=1 PYTHONPATH=$PWD "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    -m "not slow and not browser" \
    tests/test_checks.py tests/test_fuzz_bad_inputs.py tests/test_dependency_floors.py \
    tests/config tests/inference/test_inference_converters.py tests/tiles/test_seed_api.py \
    tests/wpo/test_sampling.py tests/wpo/test_optimizer.py tests/widgets/test_conductance_map.py
if [ -n "${KEEP:-}" ]; then echo "venv kept at $VENV"; fi
