"""Tile-array benchmark: a 2048×2048 layer on 4×4 tiles of 512 against the same layer on one tile.

Run ``python -m benchmarks.bench_tile_array``. Bars (issue #13, SPEC §6): eval forward of an
``AnalogLinear(2048, 2048)`` split into 4×4 tiles of 512×512 (default mapping limits),
batch 256, default IO model, ≤ 1.5× the same layer on one tile (``max_input_size =
max_output_size = 0``), measured side by side in one loop; program + drift of the split
layer with the default ``InferenceRPUConfig`` < 0.5 s. The split layer runs its tiles on
torch's threads (``TileArray.parallel``); the same loop also times it with the tiles one
after the other, for reference. Writes the ``tile_array`` section of
``docs/performance.md``.
"""

from __future__ import annotations

import copy
import functools
import os
import platform
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_tile.py

import torch

from anatile.config import InferenceRPUConfig, RPUConfig
from anatile.nn import AnalogLinear
from benchmarks._report import per_thread_count_main

SIZE, BATCH = 2048, 256



def _layers(cfg: RPUConfig, w: torch.Tensor) -> tuple[AnalogLinear, AnalogLinear]:
    one_cfg = copy.deepcopy(cfg)
    one_cfg.mapping.max_input_size = one_cfg.mapping.max_output_size = 0
    split = AnalogLinear(SIZE, SIZE, bias=True, rpu_config=cfg, seed=0)
    one = AnalogLinear(SIZE, SIZE, bias=True, rpu_config=one_cfg, seed=0)
    assert split.tile_array.grid_shape == (4, 4) and one.analog_tile_count() == 1
    for layer in (split, one):
        layer.set_weights(w)
        layer.eval()
    return split, one


SERIAL = "tiles one after the other"


def _alternating_times_ms(fns: list[Callable[[], object]], repeats: int) -> list[list[float]]:
    """Call the functions in turn (one warm-up each), so all see the same machine load."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            out.append(1e3 * (time.perf_counter() - start))
    return times


def _in_turn(split: AnalogLinear, fn: Callable[[], object], parallel: bool) -> Callable[[], None]:
    def run() -> None:
        split.tile_array.parallel = parallel
        fn()
    return run


def _row(what: str, t_one: list[float], t_split: list[float], digits: int, bar: str
         ) -> tuple[str, str, str, str, str]:
    med = statistics.median(t_split) / statistics.median(t_one)
    return (what, f"{statistics.median(t_one):.{digits}f} ms",
            f"{statistics.median(t_split):.{digits}f} ms",
            f"{med:.2f}× / {min(t_split) / min(t_one):.2f}×", bar)


def bench(repeats: int) -> list[tuple[str, str, str, str, str]]:
    """Rows: (what, one tile, 4×4 tiles, ratio medians / minima, bar).

    The split layer runs its tiles on torch's threads (``TileArray.parallel``); each
    comparison also times it with the tiles one after the other, in the same loop.
    """
    g = torch.Generator().manual_seed(0)
    w = torch.randn(SIZE, SIZE, generator=g) * 0.05
    x = torch.randn(BATCH, SIZE, generator=g)
    rows = []
    for name, cfg in (("RPUConfig", RPUConfig()), ("InferenceRPUConfig", InferenceRPUConfig())):
        split, one = _layers(cfg, w)
        if isinstance(cfg, InferenceRPUConfig):
            for layer in (split, one):
                layer.program_weights()
                layer.drift_weights(3600.0)
        forward = functools.partial(split, x)
        with torch.no_grad():
            t_one, t_split, t_serial = _alternating_times_ms(
                [functools.partial(one, x), _in_turn(split, forward, True),
                 _in_turn(split, forward, False)], repeats)
        what = f"eval forward 2048×2048, batch 256, default IO ({name})"
        rows.append(_row(what, t_one, t_split, 1, "≤ 1.5×"))
        rows.append(_row(f"{what}: {SERIAL}", t_one, t_serial, 1, "(reference)"))

    split, one = _layers(InferenceRPUConfig(), w)

    def program_drift(layer: AnalogLinear) -> Callable[[], None]:
        def run() -> None:
            layer.program_weights()
            layer.drift_weights(3600.0)
        return run

    n = max(repeats // 4, 3)
    t_one, t_split, t_serial = _alternating_times_ms(
        [program_drift(one), _in_turn(split, program_drift(split), True),
         _in_turn(split, program_drift(split), False)], n)
    what = "program + drift 2048×2048 (InferenceRPUConfig)"
    rows.append(_row(what, t_one, t_split, 0, "4×4 tiles < 500 ms"))
    rows.append(_row(f"{what}: {SERIAL}", t_one, t_serial, 0, "(reference)"))
    return rows


def render(results: dict[int, list[tuple[str, str, str, str, str]]]) -> str:
    lines = ["## Tile arrays", "",
             "`AnalogLinear(2048, 2048)` with the default mapping limits (4×4 tiles of 512×512, "
             "each with its own periphery) against the same layer on one 2048×2048 tile "
             "(`max_input_size = max_output_size = 0`); same weights, all alternate in one "
             "loop. The split layer runs its tiles on torch's threads at once "
             "(`TileArray.parallel`, the default); the rows marked *tiles one after the other* "
             "time the same layer with `TileArray.parallel = False`, for reference.", ""]
    for threads, rows in results.items():
        lines += [f"**{threads} torch thread{'s' if threads > 1 else ''}**", "",
                  "| what | one tile (median) | 4×4 tiles (median) | ratio (medians / minima) "
                  "| bar |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
        lines.append("")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines.append(f"Measured by `python -m benchmarks.bench_tile_array` on {platform.machine()}, "
                 f"{os.cpu_count()} CPUs, torch {torch.__version__}; 1-min load average at the "
                 f"end {load:.1f} (shared machine: medians include interference, minima are "
                 "closer to the undisturbed cost).")
    return "\n".join(lines)


def main() -> None:
    per_thread_count_main("tile_array", (__doc__ or "").splitlines()[0], bench, render,
                          default_repeats=20)


if __name__ == "__main__":
    main()
