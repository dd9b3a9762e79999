#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh) and open JupyterLab on the tutorials in notebooks/.
# Arguments go to JupyterLab, e.g. `bash scripts/lab.sh --port 8899 --no-browser`.
# ANATILE_QUICK=1 bash scripts/lab.sh runs the tutorials with reduced settings.
# No browser on this machine? `bash scripts/demo.sh` runs a headless demo instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
extra=()
if [ "$(id -u)" = 0 ]; then
    extra+=(--allow-root)  # containers often run as root; JupyterLab refuses without this
fi
exec .venv/bin/jupyter lab --ServerApp.root_dir="$PWD/notebooks" "${extra[@]}" "$@"
