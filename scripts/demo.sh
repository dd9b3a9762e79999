#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh) and run a short headless demo that prints a summary:
# program and read back a tile, drift a PCM inference tile over a day with and without
# drift compensation, and run a tiny weight-programming optimization against a baseline.
# ANATILE_QUICK=1 shrinks it further; ANATILE_SKIP_SETUP=1 skips the setup step.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${ANATILE_SKIP_SETUP:-0}" != "1" ]; then
    bash scripts/setup.sh
fi
exec .venv/bin/python scripts/demo.py "$@"
