#!/usr/bin/env bash
# Set up everything and run the whole test suite: lint (ruff), types (mypy), layers
# (import-linter, contracts in pyproject.toml), pytest
# (unit, statistical, training, notebook and real-browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_browser.sh
echo "== ruff"; .venv/bin/ruff check anatile tests benchmarks
echo "== mypy"; .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
echo "== pytest"; .venv/bin/python -m pytest -q "$@"
