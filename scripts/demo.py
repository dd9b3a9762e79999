"""Headless anatile demo: a tile, a drifting PCM inference tile and a tiny WPO run.

Run it through ``bash scripts/demo.sh`` (which sets up .venv first) or directly with
``.venv/bin/python scripts/demo.py``. ``ANATILE_QUICK=1`` (or ``--quick``) shrinks every
step. Prints a short summary of each step; takes well under a minute on a laptop CPU.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from anatile.analysis.metrics import OUTPUT_NRMSE, WEIGHT_NRMSE, output_nrmse, weight_nrmse
from anatile.config import InferenceRPUConfig, RPUConfig
from anatile.inference import SinglePairConductanceConverter
from anatile.tiles import InferenceTile, TileWithPeriphery
from anatile.wpo import BaselineMeasured, GenerationFinished, WeightProgrammingOptimizer


def rel_rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    """The weight error NRMSE_W (``anatile.analysis.metrics``) of ``a`` against target ``b``."""
    return float(weight_nrmse(a, b))


def explain(meaning: str, try_next: str) -> None:
    """Print what a step's numbers mean and what to try next."""
    print(f"   what it means: {meaning}")
    print(f"   try next: {try_next}")


def demo_tile(size: int, max_iter: int) -> None:
    print(f"1. TileWithPeriphery {size}×{size}: program in closed loop, then read back")
    cfg = RPUConfig()
    cfg.mapping.weight_scaling_omega = 0.5  # stay inside the devices' ±0.6 range
    cfg.forward.out_noise = 0.02
    tile = TileWithPeriphery(size, size, rpu_config=cfg, seed=0)
    w = torch.randn(size, size, generator=torch.Generator().manual_seed(0)) * 0.1
    tile.set_weights(w)
    start = time.perf_counter()
    tile.program_weights(learning_rate=0.05, max_iter=max_iter, tolerance=0.01)
    report = tile.last_programming
    assert report is not None
    w_prog, _ = tile.get_weights()
    start_read = time.perf_counter()
    w_read, _ = tile.read_weights(apply_weight_scaling=True, over_sampling=10)
    end = time.perf_counter()
    print(f"   mapping scale {float(tile.get_mapping_scales().mean()):.3f}; "
          f"programming: {report.iterations} iterations, converged {report.converged} "
          f"({start_read - start:.2f} s)")
    print(f"   {WEIGHT_NRMSE.label}: programmed {WEIGHT_NRMSE.format(rel_rmse(w_prog, w))}, "
          f"read back {WEIGHT_NRMSE.format(rel_rmse(w_read, w))} "
          f"(read in {end - start_read:.3f} s)")
    explain("the closed loop programs the array until the read-back weights match; the "
            "read-back error includes the output noise of every read.",
            "cfg.forward.out_noise = 0.0 and see the read-back error fall to the programming "
            "error; TileInspector(tile) shows scales, weights and read-back (tutorial 01).")


def demo_drift(size: int) -> None:
    print(f"2. InferenceTile {size}×{size} on PCM: output error over time")
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(size, size, generator=gen) * 0.1
    x = torch.randn(256, size, generator=gen)
    y_ideal = x @ w.T
    times = [("1 s", 1.0), ("1 h", 3600.0), ("1 day", 86400.0), ("1 year", 365 * 86400.0)]
    rows = {}
    for name, comp in (("no comp.", None), ("global comp.", "default")):
        cfg = InferenceRPUConfig() if comp else InferenceRPUConfig(drift_compensation=None)
        cfg.mapping.weight_scaling_omega = 1.0  # as aihwkit's inference presets
        tile = InferenceTile(size, size, rpu_config=cfg, seed=1).eval()
        tile.set_weights(w)
        tile.program_weights()
        errs = []
        with torch.no_grad():
            for _, t in times:
                tile.drift_weights(t)
                errs.append((float(output_nrmse(tile(x), y_ideal)), float(tile.alpha.mean())))
        rows[name] = errs
    print(f"   {OUTPUT_NRMSE.label:32s}" + "".join(f"{label:>9s}" for label, _ in times))
    for name, errs in rows.items():
        print(f"   {name:32s}" + "".join(f"{100 * e:7.2f} %" for e, _ in errs))
    print(f"   {'alpha (global comp.)':32s}"
          + "".join(f"{a:9.2f}" for _, a in rows["global comp."]))
    explain("conductances decay as g0·((t+t0)/t0)^-nu, so without compensation every output "
            "shrinks; global compensation rescales by alpha and leaves the device-to-device "
            "spread of nu.",
            "PerColumnDriftCompensation(), or anatile.analysis.error_budget(tile, times) to "
            "split the error by source (tutorial 05).")


def demo_wpo(quick: bool) -> None:
    print("3. Weight Programming Optimizer: beat a single-pair baseline")
    weights = torch.randn(20_000, generator=torch.Generator().manual_seed(2)) * 0.05
    options = dict(popsize=5, maxiter=10, nbins=4, test_in_features=128, baseline_iterations=10)
    if not quick:
        options.update(popsize=8, maxiter=30, nbins=6, test_in_features=256,
                       baseline_iterations=30)
    wpo = WeightProgrammingOptimizer(
        weights, [None, None], InferenceRPUConfig(), [1.0, 3600.0, 86400.0],
        SinglePairConductanceConverter(), seed=3, polish=False, compile=False, **options)

    def report(event: object) -> None:
        if isinstance(event, BaselineMeasured):
            print(f"   baseline TNMSE {event.baseline_tnmse:.4f}, "
                  f"target {event.target_tnmse:.4f}")
        elif isinstance(event, GenerationFinished):
            print(f"   generation {event.generation:3d}: best TNMSE {event.best_tnmse:.4f} "
                  f"(loss {event.best_loss:+.3f}, {event.elapsed_s:.1f} s)")

    wpo.events.subscribe(report)
    converter, success = wpo.run_optimizer()
    result = wpo.result
    assert result is not None
    print(f"   {result.n_evaluations} candidates in {result.elapsed_s:.1f} s; "
          f"success {success}; TNMSE {result.baseline_tnmse:.4f} -> {result.best_tnmse:.4f}")
    print(f"   optimized converter: f_lst {[round(f, 3) for f in converter.f_lst]}, "
          f"{len(converter.g_lst)} devices × {len(converter.g_lst[0])} grid weights")
    explain("TNMSE is the time-averaged normalized weight error of the test layer over the "
            "time steps; the optimizer searches a converter whose weights stay accurate while "
            "the devices drift.",
            "WPOMonitor(wpo) in JupyterLab shows it live (tutorial 03).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller settings (also: ANATILE_QUICK=1)")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("ANATILE_QUICK") == "1"
    start = time.perf_counter()
    print(f"anatile demo (torch {torch.__version__}, {torch.get_num_threads()} threads"
          f"{', quick' if quick else ''})")
    demo_tile(32 if quick else 64, 100 if quick else 300)
    demo_drift(32 if quick else 128)
    demo_wpo(quick)
    print("next: `bash scripts/lab.sh` opens the five tutorials in JupyterLab; tutorial 05 "
          "walks through finding which layer, tile, weight and error source cost accuracy.")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
