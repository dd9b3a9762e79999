"""Helpers shared by the benchmarks: timing and writing a section of the performance page.

Each benchmark writes its results as a Markdown fragment, ``docs/_generated/perf_<name>.md``.
The documentation build puts every fragment into ``docs/performance.md`` (at the
``<!-- benchmark sections -->`` marker), so the numbers on the site are the benchmark's
own output, never retyped; other pages link to these sections instead of quoting them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["GENERATED", "fragment_path", "per_thread_count_main", "times_ms", "write_section"]

GENERATED = Path(__file__).resolve().parents[1] / "docs" / "_generated"


def fragment_path(name: str, directory: Path = GENERATED) -> Path:
    """Where the section ``name`` of the performance page is stored."""
    return directory / f"perf_{name}.md"


def times_ms(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall times (ms) of ``repeats`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(1e3 * (time.perf_counter() - start))
    return out


def paired_times_ms(ref: Callable[[], object], fn: Callable[[], object], repeats: int
                    ) -> tuple[list[float], list[float]]:
    """Alternate ``ref`` and ``fn`` (one warm-up each), so both see the same machine load;
    returns both lists of times in ms."""
    ref()
    fn()
    t_ref, t_fn = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ref()
        t_ref.append(1e3 * (time.perf_counter() - start))
        start = time.perf_counter()
        fn()
        t_fn.append(1e3 * (time.perf_counter() - start))
    return t_ref, t_fn


def write_section(name: str, block: str, directory: Path = GENERATED) -> Path:
    """Write section ``name`` of the performance page (replacing the previous results).

    Each benchmark owns its own fragment, so running one leaves the others untouched.
    """
    path = fragment_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.strip("\n") + "\n", encoding="utf-8")
    return path


R = TypeVar("R")


def per_thread_count_main(name: str, description: str, bench: Callable[[int], R],
                          render: Callable[[dict[int, R]], str],
                          default_repeats: int) -> None:
    """The command line of a benchmark measured per torch thread count (bars for 2).

    Parses ``--repeats``, ``--threads`` and ``--no-write``, runs ``bench(repeats)`` once per
    thread count, prints ``render(results)`` and writes it as section ``name``.
    """
    import torch  # only the benchmarks that measure thread counts need it here

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=default_repeats)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1],
                        help="torch thread counts to measure (the bars are for 2)")
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    args = parser.parse_args()
    results: dict[int, R] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        results[threads] = bench(args.repeats)
    text = render(results)
    print(text)
    if not args.no_write:
        write_section(name, text)
