"""Inference benchmark: program + drift of a 512×512 InferenceTile and the digits table.

Run:  .venv/bin/python -m benchmarks.bench_inference  [--no-write] [--repeats 30]

Bars (docs/performance.md): program + drift of a 512×512 tile < 50 ms; the whole
accuracy-over-time table of ``experiments/digits_drift.py`` (training, 2 converters,
5 times, 10 chips, with and without compensation) < 60 s. Results replace the
``inference`` section of ``docs/performance.md`` (created if missing).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from anatile.tiles import InferenceTile
from benchmarks._report import times_ms, write_section

TILE_BAR_MS = 50.0
TABLE_BAR_S = 60.0



def bench_tile(repeats: int) -> dict[str, list[float]]:
    """Times (ms) of program, drift and program + drift of a 512×512 tile (default config)."""
    tile = InferenceTile(512, 512, seed=0)
    tile.set_weights(torch.randn(512, 512, generator=torch.Generator().manual_seed(0)) * 0.1)
    tile.program_weights()
    result = {
        "program_weights()": times_ms(tile.program_weights, repeats),
        "drift_weights(t)": times_ms(lambda: tile.drift_weights(86400.0), repeats),
    }

    def both() -> None:
        tile.program_weights()
        tile.drift_weights(86400.0)

    result["program + drift"] = times_ms(both, repeats)
    return result


def bench_table() -> float:
    """Wall time (s) of the full digits accuracy-over-time table."""
    from experiments.digits_drift import run

    start = time.perf_counter()
    run(reps=10, seed=0)
    return time.perf_counter() - start


def render(tile_ms: dict[str, list[float]], table_s: float) -> str:
    """Markdown of the results."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [
        "## Inference physics",
        "",
        "512×512 `InferenceTile`, default `InferenceRPUConfig` (SinglePair, `PCMLikeNoiseModel`,",
        "global drift compensation with its identity readout through the forward IO model).",
        "",
        "| what | median | min | bar |",
        "|---|---:|---:|---:|",
    ]
    for name, ts in tile_ms.items():
        bar = f"< {TILE_BAR_MS:.0f} ms" if name == "program + drift" else ""
        rows.append(f"| {name} | {statistics.median(ts):.1f} ms | {min(ts):.1f} ms | {bar} |")
    rows.append(
        f"| digits accuracy table (experiments/digits_drift.py, 10 chips) | {table_s:.1f} s | "
        f"| < {TABLE_BAR_S:.0f} s |"
    )
    rows += [
        "",
        f"Measured by `python -m benchmarks.bench_inference` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}; 1-min load average at the end {load:.1f} (the machine is "
        "shared, so medians include interference; min is the undisturbed cost).",
    ]
    return "\n".join(rows)



def main() -> None:
    parser = argparse.ArgumentParser(description="inference benchmark")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    tile_ms = bench_tile(args.repeats)
    table_s = bench_table()
    block = render(tile_ms, table_s)
    print(block)
    if not args.no_write:
        write_section("inference", block)


if __name__ == "__main__":
    main()
