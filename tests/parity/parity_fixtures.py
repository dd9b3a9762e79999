"""Helpers of the parity tests with IBM aihwkit 1.2.0 (fixtures recorded by
``record_aihwkit.py``, see its docstring); these tests never import aihwkit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_fixture(name: str) -> dict[str, Any]:
    """The recorded fixture ``fixtures/<name>.json``."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    assert data["aihwkit"].startswith("1.2"), data["aihwkit"]
    return data


def combined_se(*ses: float) -> float:
    """Standard error of a difference of independent estimates."""
    return math.sqrt(sum(s * s for s in ses))
