"""The WPO baseline TNMSE with each drift-compensation readout on both loss paths, next to
aihwkit 1.2.0's figures (``docs/wpo/loss.md``, "Measured against aihwkit").

Setup of ``shared/parity/aihwkit-1.2.0.md``: ``W = randn(512, 512, seed 0) · 0.05``, a
512×20 test layer, 6 time steps (1 s … 1 year), default ``InferenceRPUConfig`` with
``PCMLikeNoiseModel`` and global drift compensation, 20 repeats (mean ± standard error).

Run:  .venv/bin/python -m benchmarks.wpo_readout_table [--repeats 20]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time
from typing import Any

import numpy as np
import torch

from anatile.config import InferenceRPUConfig
from anatile.inference import DualPairConductanceConverter, SinglePairConductanceConverter
from anatile.wpo import WeightProgrammingOptimizer, loss_rpu_config
from anatile.wpo.objective import linear_coefficients

T_STEPS = [1.0, 60.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
# aihwkit 1.2.0, measured from its source build (shared/parity/aihwkit-1.2.0.md)
AIHWKIT = {
    ("aihwkit objective", "DualPair"): (0.3231, 0.0014),
    ("aihwkit objective", "SinglePair"): (0.3862, 0.0013),
    ("noise-free, ω = 0", "DualPair"): (0.0719, 0.0002),
    ("noise-free, ω = 0", "SinglePair"): (0.1540, 0.0004),
    ("noise-free, ω = 1", "DualPair"): (0.0724, 0.0001),
    ("noise-free, ω = 1", "SinglePair"): (0.1541, 0.0003),
    ("noisy, ω = 1", "DualPair"): (0.0800, 0.0002),
    ("noisy, ω = 1", "SinglePair"): (0.1542, 0.0004),
}
MODES: dict[str, tuple[float, dict[str, Any]]] = {
    "aihwkit objective": (0.0, {"aihwkit_objective": True}),
    "noise-free, ω = 0": (0.0, {}),
    "noise-free, ω = 1": (1.0, {}),
    "noisy, ω = 1": (1.0, {"perfect_readout": False}),
}


def _stats(values: list[float] | np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def measure(mode: str, strategy: str, repeats: int) -> dict[str, Any]:
    omega, opts = MODES[mode]
    w = torch.randn(512, 512, generator=torch.Generator().manual_seed(0)) * 0.05
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = omega
    conv = (DualPairConductanceConverter([1.0, 1.0]) if strategy == "DualPair"
            else SinglePairConductanceConverter())
    wpo = WeightProgrammingOptimizer(w, [None, None], cfg, T_STEPS, conv,
                                     test_in_features=512, test_out_features=20,
                                     baseline_iterations=repeats, **opts)
    engine = wpo.batched_engine()
    targets, params = conv.convert_to_conductances(wpo.test_weights.to(torch.float64))
    g = torch.stack([t.reshape(-1) for t in targets])
    t0 = time.perf_counter()
    batched = engine.evaluate_targets(g, linear_coefficients(conv, params, g.shape[0]),
                                      repeats, torch.Generator().manual_seed(1)).numpy()
    t_batched = time.perf_counter() - t0
    rpu = copy.deepcopy(wpo.search_rpu_config)
    rpu.noise_model.g_converter = copy.deepcopy(conv)
    ctx = dataclasses.replace(wpo.loss_context(get_baseline=True), rpu_config=rpu)
    t0 = time.perf_counter()
    tile = [loss_rpu_config(dataclasses.replace(ctx, seed=9000 + i)) for i in range(repeats)]
    t_tile = time.perf_counter() - t0
    return {"batched": _stats(batched), "tile": _stats(tile), "t_batched": t_batched,
            "t_tile": t_tile, "kernel": engine.kernel_name}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES),
                    help="readouts to measure (default: all)")
    ap.add_argument("--strategies", nargs="*", default=["DualPair", "SinglePair"],
                    choices=["DualPair", "SinglePair"])
    args = ap.parse_args()
    rows = ["| readout (WPO option) | strategy | aihwkit 1.2.0 | anatile per candidate | "
            "anatile batched | per candidate − aihwkit | batched − aihwkit |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for mode in args.modes:
        for strategy in args.strategies:
            r = measure(mode, strategy, args.repeats)
            a, sa = AIHWKIT[(mode, strategy)]
            (t, st), (b, sb) = r["tile"], r["batched"]
            zt, zb = (t - a) / math.hypot(sa, st), (b - a) / math.hypot(sa, sb)
            rows.append(f"| {mode} | {strategy} | {a:.4f} ± {sa:.4f} | {t:.4f} ± {st:.4f} | "
                        f"{b:.4f} ± {sb:.4f} | {zt:+.1f} SE | {zb:+.1f} SE |")
            print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
