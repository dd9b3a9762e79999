#!/usr/bin/env bash
# Create .venv and install anatile with its test and dev extras.
# torch is pinned to the CPU build first, so that pip does not pull several GB of CUDA
# packages on a machine without a GPU (set ANATILE_TORCH to override, e.g. "torch").
# The step is skipped when nothing it depends on changed since the last successful run
# (pyproject.toml, this script, the torch spec, and where the editable install points);
# ANATILE_FORCE_SETUP=1 runs it anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC="${ANATILE_TORCH:-torch==2.13.0}"
STAMP=.venv/.anatile-setup-stamp
want=$( { cat pyproject.toml scripts/setup.sh; echo "$TORCH_SPEC"; pwd; } | sha256sum | cut -d' ' -f1)
if [ "${ANATILE_FORCE_SETUP:-0}" != "1" ] && [ -x .venv/bin/python ] && [ -f "$STAMP" ] \
    && [ "$(cat "$STAMP")" = "$want" ] \
    && .venv/bin/python -c "import anatile, os, sys; sys.exit(os.path.dirname(os.path.dirname(anatile.__file__)) != os.getcwd())" 2>/dev/null; then
    echo "setup: .venv is up to date (skipped; ANATILE_FORCE_SETUP=1 reinstalls)"
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
pip_install() {
    # pip's own exit status decides; its "WARNING: Location" noise is filtered out
    local log rc=0
    log=$(mktemp)
    .venv/bin/python -m pip install -q "$@" >"$log" 2>&1 || rc=$?
    grep -v '^WARNING: Location' "$log" || true
    rm -f "$log"
    return "$rc"
}
pip_install "$TORCH_SPEC"
pip_install -e ".[dev]"
.venv/bin/python -c "import anatile, torch; print('anatile', anatile.__version__, 'torch', torch.__version__)"
echo "$want" > "$STAMP"
