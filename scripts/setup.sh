#!/usr/bin/env bash
# Create .venv and install anatile with its test and dev extras.
# torch is pinned to the CPU build first, so that pip does not pull several GB of CUDA
# packages on a machine without a GPU (set ANATILE_TORCH to override, e.g. "torch").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "${ANATILE_TORCH:-torch==2.13.0}" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import anatile, torch; print('anatile', anatile.__version__, 'torch', torch.__version__)"
