"""Helpers shared by the benchmarks: timing and writing a section of docs/performance.md."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["DOC", "markers", "times_ms", "write_section"]

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def markers(name: str) -> tuple[str, str]:
    """The start and end comments that delimit section ``name`` of the performance page."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def times_ms(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall times (ms) of ``repeats`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(1e3 * (time.perf_counter() - start))
    return out


def write_section(name: str, block: str, doc: Path = DOC) -> None:
    """Replace section ``name`` of ``doc`` by ``block`` (appended when missing).

    Other sections are left exactly as they are, so each benchmark owns its own part of
    the page.
    """
    start, end = markers(name)
    section = f"{start}\n{block.strip(chr(10))}\n{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Performance\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text, encoding="utf-8")
