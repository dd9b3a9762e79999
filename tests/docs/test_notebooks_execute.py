"""Every tutorial notebook executes from top to bottom within its stated time budget.

Notebooks run with ``ANATILE_QUICK=1`` (reduced settings: smaller populations, fewer time
points, fewer epochs). Each notebook states its budget in seconds in its metadata,
``metadata["anatile"]["quick_time_budget_s"]``; the test fails when execution takes longer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
DEFAULT_BUDGET_S = 120.0


def _budget(nb: nbformat.NotebookNode) -> float:
    return float(nb.metadata.get("anatile", {}).get("quick_time_budget_s", DEFAULT_BUDGET_S))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_within_budget(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANATILE_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # the tutorials' tensors are small: one thread is faster than two fighting for a
    # shared 2-core CI machine (measured: 4 s vs 15 s to train the digits MLP under load)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(path, as_version=4)
    budget = _budget(nb)
    client = nbclient.NotebookClient(
        nb,
        timeout=int(budget * 2),  # per cell; the total is checked below
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    assert elapsed <= budget, f"{path.name}: {elapsed:.1f} s, budget {budget:.0f} s"
