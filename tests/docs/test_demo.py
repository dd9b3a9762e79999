"""The headless demo behind ``scripts/demo.sh`` runs and prints its summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_quick() -> None:
    env = {**os.environ, "ANATILE_QUICK": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for heading in ("1. TileWithPeriphery", "2. InferenceTile", "3. Weight Programming Optimizer",
                    "done in"):
        assert heading in out, out
    assert "global comp." in out and "candidates in" in out, out
