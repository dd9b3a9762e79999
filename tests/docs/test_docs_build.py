"""The documentation site builds with warnings treated as errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("sphinx", reason="the docs extra is not installed")
pytest.importorskip("myst_parser", reason="the docs extra is not installed")


def test_sphinx_build_has_no_warnings(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "sphinx",
        "-W", "--keep-going",  # every warning is an error, but report all of them
        "-E", "-q",
        "-b", "html",
        "-d", str(tmp_path / "doctrees"),
        str(ROOT / "docs"), str(tmp_path / "html"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    index = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    assert "anatile" in index
    for page in ("getting_started", "aihwkit", "gallery", "api/index", "concepts/wpo"):
        assert (tmp_path / "html" / f"{page}.html").exists(), page
