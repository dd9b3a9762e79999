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
cat <<'GUIDE'

anatile tutorials (open them in order in the JupyterLab that starts now):
  01_tile_periphery      TileInspector: mapping scales, input range, programmed vs read-back weights.
                         Try: change rpu_config.mapping.weight_scaling_omega and press Program.
  02_inference_drift     PCM drift: conductance histograms over time, alpha, accuracy vs time.
                         Try: drift_compensation=None and watch the accuracy fall after a day.
  03_weight_programming  WPOMonitor: TNMSE per generation against the baseline converter.
                         Try: a larger popsize, or another baseline converter.
  04_model_inspection    ModelInspector: every analog layer of a converted model, tile by tile.
  05_debugging_a_mapping Find which layer, tile, weight and non-ideality cost the accuracy.
No browser? `bash scripts/demo.sh` prints the same story as text.

GUIDE
exec .venv/bin/jupyter lab --ServerApp.root_dir="$PWD/notebooks" "${extra[@]}" "$@"
