"""The import-linter contracts of pyproject.toml hold (layers import one way, no cycles)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from importlinter import cli as importlinter_cli

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # lint-imports reads pyproject.toml from the working directory
    monkeypatch.syspath_prepend(os.fspath(ROOT))
    assert importlinter_cli.lint_imports(no_cache=True) == 0
