"""Analysis benchmark: error_budget of a 512×512 tile, layer_sensitivity of the digits MLP.

Run:  .venv/bin/python -m benchmarks.bench_analysis  [--no-write] [--repeats 5]

Bars (docs/performance.md, SPEC §6): ``error_budget`` of a 512×512 inference tile over 6
times < 2 s; ``layer_sensitivity`` of the digits MLP (``experiments/digits_drift.py``) with
5 chips < 10 s. Each is measured next to a reference cost in the same run (one
``program_weights`` + ``drift_weights`` of the same tile, one eval forward of the MLP), so
the ratios can be compared across machines. Results replace the ``analysis`` section of
``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import torch

from anatile.analysis import error_budget, layer_sensitivity, weight_trace
from anatile.config import InferenceRPUConfig
from anatile.nn import convert_to_analog
from anatile.tiles import InferenceTile
from benchmarks._report import times_ms, write_section

BUDGET_BAR_S = 2.0
SENSITIVITY_BAR_S = 10.0
TIMES = [1.0, 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0, 365 * 86400.0]


def _tile(device: str) -> InferenceTile:
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    tile = InferenceTile(512, 512, rpu_config=cfg, seed=0)
    tile.set_weights(torch.randn(512, 512, generator=torch.Generator().manual_seed(0)) * 0.1)
    return tile.to(device)


def bench_budget(repeats: int, device: str) -> dict[str, list[float]]:
    """Times (ms) of the 512×512 budget (weights; and with 256 inputs) and references."""
    tile = _tile(device)
    x = torch.randn(256, 512, generator=torch.Generator().manual_seed(1)).to(device)

    def program_drift() -> None:
        tile.program_weights()
        tile.drift_weights(86400.0)

    out = {
        "error_budget(tile, 6 times)": times_ms(lambda: error_budget(tile, TIMES), repeats),
        "error_budget(tile, 6 times, leave-one-out)": times_ms(
            lambda: error_budget(tile, TIMES, attribution="leave_one_out"), repeats),
        "error_budget(tile, 6 times, inputs 256×512)": times_ms(
            lambda: error_budget(tile, TIMES, inputs=x), repeats),
        "reference: program_weights + drift_weights": times_ms(program_drift, repeats),
    }
    out["weight_trace(tile, r, c, 6 times)"] = times_ms(
        lambda: weight_trace(tile, 3, 5, TIMES), repeats)
    return out


def bench_sensitivity(repeats: int) -> dict[str, list[float]]:
    """Times (ms) of layer_sensitivity of the digits MLP (5 chips, 1 month) and a forward."""
    from experiments.digits_drift import trained_digits_mlp

    model, x, y = trained_digits_mlp(0)
    analog = convert_to_analog(model, InferenceRPUConfig(), seed=0).eval()

    def forward() -> None:
        with torch.no_grad():
            analog(x)

    return {
        "layer_sensitivity(digits MLP, 5 chips)": times_ms(
            lambda: layer_sensitivity(analog, x, y, 30 * 86400.0, chips=5), repeats),
        "reference: one eval forward of the 450 test digits": times_ms(forward, repeats),
    }


def render(budget: dict[str, list[float]], sens: dict[str, list[float]], device: str) -> str:
    """Markdown of the results."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    bars = {
        "error_budget(tile, 6 times)": f"< {BUDGET_BAR_S:g} s",
        "layer_sensitivity(digits MLP, 5 chips)": f"< {SENSITIVITY_BAR_S:g} s",
    }
    ref_budget = statistics.median(budget["reference: program_weights + drift_weights"])
    ref_sens = statistics.median(sens["reference: one eval forward of the 450 test digits"])
    rows = [
        "## Analysis",
        "",
        "`error_budget` of a 512×512 `InferenceTile` (default `InferenceRPUConfig`, ω = 1,",
        "SinglePair, global compensation), times 1 s, 1 h, 1 day, 1 week, 1 month, 1 year;",
        "`layer_sensitivity` of the 64-64-10 digits MLP of `experiments/digits_drift.py` at",
        "1 month, 5 chips, 450 test images.",
        "",
        "| what | median | min | × reference (median) | bar |",
        "|---|---:|---:|---:|---:|",
    ]
    for group, ref in ((budget, ref_budget), (sens, ref_sens)):
        for name, ts in group.items():
            med = statistics.median(ts)
            ratio = "" if name.startswith("reference") else f"{med / ref:.0f}×"
            rows.append(f"| {name} | {med:.0f} ms | {min(ts):.0f} ms | {ratio} | "
                        f"{bars.get(name, '')} |")
    budget_min = min(budget["error_budget(tile, 6 times)"]) / 1e3
    sens_min = min(sens["layer_sensitivity(digits MLP, 5 chips)"]) / 1e3
    rows += [
        "",
        f"Bars in this run (min): error_budget {budget_min:.2f} s — "
        f"{'met' if budget_min < BUDGET_BAR_S else 'NOT met'} (< {BUDGET_BAR_S:g} s); "
        f"layer_sensitivity {sens_min:.2f} s — "
        f"{'met' if sens_min < SENSITIVITY_BAR_S else 'NOT met'} (< {SENSITIVITY_BAR_S:g} s). "
        "The × reference column carries across machines and loads better than the absolute "
        "times: the reference (one program + drift of the same tile) is measured in the "
        "inference section above.",
        "",
        "The default (Shapley) budget evaluates all 128 coalitions of the 7 sources: 16 "
        "drift-and-read variants of the chip (14 drift calls, 2 are the programmed "
        "weights; one read-noise draw shared by all of them), 60 compensation readouts per "
        "time (16 chip states × 4 IO variants, 4 of them exactly 1) through the forward "
        "IO model with the identity readout (one output-noise draw per time shared by all; "
        "IO variants that differ only in their bounds share the levels before the ADC), "
        "time by time so that each step stays in the cache, and the weight error of every "
        "coalition from per-row sums of each chip state; the output budget adds 128 "
        "forward passes per time. The values are those of the per-coalition computation, "
        "bit for bit (tests/analysis/test_budget_shared_draws.py). "
        "Leave-one-out evaluates 9 coalitions (5 drift calls).",
        "",
        f"Measured by `python -m benchmarks.bench_analysis` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, device {device}, "
        f"torch {torch.__version__}; 1-min load average at the end {load:.1f} (the machine "
        "is shared, so medians include interference; min is the undisturbed cost).",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="analysis benchmark")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    budget = bench_budget(args.repeats, args.device)
    sens = bench_sensitivity(args.repeats)
    block = render(budget, sens, args.device)
    print(block)
    if not args.no_write:
        write_section("analysis", block)


if __name__ == "__main__":
    main()
