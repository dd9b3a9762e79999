"""Closed-loop programming of training tiles: anatile's averaged verify vs aihwkit's single read.

Run:  .venv/bin/python -m benchmarks.bench_programming  [--no-write] [--sizes 24x32 512x512]
      [--aihwkit-iters 300]

Every case programs a default :class:`~anatile.tiles.TileWithPeriphery` (aihwkit 1.2.0's
defaults: ω = 0, out_noise 0.06, 9-bit ADC, ConstantStepDevice) with the default arguments of
``program_weights`` (tolerance 1 %), once with anatile's defaults (multiplexed verify, reads
averaged adaptively) and once in aihwkit's mode (``verify_reads=1, multiplexed=False``, one
identity read per verify; capped at ``--aihwkit-iters`` iterations, because its error stays
at one read's floor and aihwkit's 10,000 iterations would take long without changing it).
Columns: iterations, reads of the verify inputs, wall time, the error the loop reports, the
true error ``mean|W_array − W_target| / max|W_target|`` and whether it converged. The table
replaces the ``programming`` section of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from anatile.nn import AnalogLinear
from anatile.tiles import TileWithPeriphery
from benchmarks._report import write_section

WEIGHTS = ("randn·0.1", "AnalogLinear init", "device range")


def target(kind: str, tile: TileWithPeriphery, seed: int = 0) -> torch.Tensor:
    """Target weights ``[out, in]`` of one case."""
    out_size, in_size = tile.out_size, tile.in_size
    gen = torch.Generator().manual_seed(seed)
    if kind == "randn·0.1":
        return torch.randn(out_size, in_size, generator=gen) * 0.1
    if kind == "AnalogLinear init":
        torch.manual_seed(seed)
        return AnalogLinear(in_size, out_size, bias=False).get_weights()[0].clone()
    params = tile.analog_core.device_parameters  # 90 % of each device's own bound
    assert params is not None
    u = torch.rand(out_size, in_size, generator=gen) * 2 - 1
    return 0.9 * torch.where(u > 0, u * params.w_max, -u * params.w_min)


def run_case(size: tuple[int, int], kind: str, mode: str, aihwkit_iters: int) -> dict:
    """Program one tile; return its row of the table."""
    tile = TileWithPeriphery(*size, seed=11)
    w = target(kind, tile)
    tile.set_weights(w)
    options: dict = {}
    if mode == "aihwkit":
        options = {"verify_reads": 1, "multiplexed": False, "max_iter": aihwkit_iters}
    start = time.perf_counter()
    tile.program_weights(**options)
    seconds = time.perf_counter() - start
    report = tile.last_programming
    assert report is not None
    array = tile.get_weights(apply_weight_scaling=False)[0]
    true_error = float((array - w).abs().mean() / w.abs().max())
    return {"size": f"{size[0]}×{size[1]}", "weights": kind, "mode": mode,
            "iterations": report.iterations, "reads": report.total_reads,
            "verify": report.verify_reads, "seconds": seconds, "error": report.error,
            "floor": report.noise_floor, "true": true_error, "converged": report.converged,
            "reason": report.reason.split(";")[0]}


def table(rows: list[dict]) -> str:
    lines = ["| tile | weights | mode | iterations | reads (last verify) | time | reported error "
             "(floor) | true error | converged |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['weights']} | {r['mode']} | {r['iterations']} | "
            f"{r['reads']} ({r['verify']}) | {r['seconds']:.1f} s | {r['error']:.4f} "
            f"({r['floor']:.4f}) | {r['true']:.4f} | "
            f"{'yes' if r['converged'] else 'no: ' + r['reason']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--sizes", nargs="+", default=["24x32", "128x128", "512x512"])
    parser.add_argument("--weights", nargs="+", default=list(WEIGHTS), choices=WEIGHTS)
    parser.add_argument("--aihwkit-iters", type=int, default=300)
    args = parser.parse_args()
    rows = []
    for text in args.sizes:
        out_size, in_size = (int(v) for v in text.split("x"))
        for kind in args.weights:
            for mode in ("anatile", "aihwkit"):
                rows.append(run_case((out_size, in_size), kind, mode, args.aihwkit_iters))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    threads = torch.get_num_threads()
    block = (f"## Closed-loop programming (training tiles)\n\n"
             f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"{threads} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}; "
             f"aihwkit mode capped at {args.aihwkit_iters} iterations.\n\n{table(rows)}\n")
    print(block)
    if not args.no_write:
        write_section("programming", block)


if __name__ == "__main__":
    main()
