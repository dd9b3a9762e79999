"""Print the WPO baseline TNMSE parity table of ``docs/aihwkit.md`` (markdown) from the
recorded aihwkit fixture and anatile's two paths, with the tests' own settings and seeds
(``test_wpo_tnmse_parity._tnmse``), so the page's figures are pasted, never retyped::

    OMP_NUM_THREADS=1 python tests/parity/wpo_parity_table.py > table.md
    OMP_NUM_THREADS=1 python tests/parity/wpo_parity_table.py --repeats 300

Needs no aihwkit (a few minutes on one core). ``--repeats N`` prints instead both paths
with ``N`` independent repeats each (aihwkit's objective; SinglePair and DualPair [1,1];
both drift conventions), for the paths' agreement with each other.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from parity_fixtures import combined_se
from record_aihwkit import WPO_STRATEGIES
from test_wpo_tnmse_parity import CASES, DATA, WEIGHTS, _converter, _tnmse

from anatile.config import InferenceRPUConfig
from anatile.inference import GlobalDriftCompensation, PCMLikeNoiseModel
from anatile.wpo import WeightProgrammingOptimizer

READOUTS = {"aihwkit_objective": "aihwkit's objective (noisy readout)",
            "noise_free_readout": "noise-free readout",
            "quantization_only": "readout with `out_noise = 0`"}
STRATEGIES = {"DualPair_1_1": "DualPair [1,1]", "SinglePair": "SinglePair",
              "DualPair_1_3": "DualPair [1,3]", "NPair_1_2_3": "NPair [1,2,3]"}
# (vectorized, rederive) of each anatile column
COLUMNS = {
    "anatile per-candidate, `rederive_conductances=True`": (False, True),
    "anatile batched, `rederive_conductances=True`": (True, True),
    "anatile per-candidate (default)": (False, False),
    "anatile batched (default)": (True, False),
}


def _cell(mean: float, se: float, ref_mean: float, ref_se: float) -> str:
    z = (mean - ref_mean) / combined_se(se, ref_se)
    return f"{mean:.4f} ± {se:.4f} ({z:+.1f} SE, {100 * (mean / ref_mean - 1):+.1f} %)"


def paths(repeats: int) -> None:
    """Both paths, ``repeats`` independent runs each, aihwkit's objective."""
    for strategy in ("SinglePair", "DualPair_1_1"):
        rec = DATA["tnmse"]["aihwkit_objective"][strategy]
        for rederive in (True, False):
            kind, f_lst = WPO_STRATEGIES[strategy]
            baseline = _converter(kind, f_lst)
            cfg = InferenceRPUConfig(
                noise_model=PCMLikeNoiseModel(g_converter=baseline,
                                              rederive_conductances=rederive),
                drift_compensation=GlobalDriftCompensation())
            stats = {}
            for name, vectorized in (("per-candidate", False), ("batched", True)):
                wpo = WeightProgrammingOptimizer(
                    WEIGHTS, f_lst or [1.0], cfg, DATA["t_steps"], baseline, seed=1,
                    vectorized=vectorized, device="cpu", perfect_readout=False)
                v = wpo.objective.baseline_values(repeats, wpo.generator)
                stats[name] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)))
            (m_p, s_p), (m_b, s_b) = stats["per-candidate"], stats["batched"]
            print(f"{STRATEGIES[strategy]}, rederive_conductances={rederive}, {repeats} "
                  f"repeats: per-candidate {m_p:.4f} ± {s_p:.4f} "
                  f"({(m_p - rec['mean']) / combined_se(s_p, rec['se']):+.1f} SE to aihwkit), "
                  f"batched {m_b:.4f} ± {s_b:.4f} "
                  f"({(m_b - rec['mean']) / combined_se(s_b, rec['se']):+.1f} SE to aihwkit); "
                  f"batched - per-candidate {(m_b - m_p) / combined_se(s_p, s_b):+.1f} SE; "
                  f"aihwkit {rec['mean']:.4f} ± {rec['se']:.4f}", flush=True)


def main() -> None:
    print(f"| readout | strategy | aihwkit {DATA['aihwkit']} (C++ tile, {DATA['repeats']} "
          f"repeats) | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for strategy, mode in CASES:
        rec = DATA["tnmse"][mode][strategy]
        cells = [_cell(*_tnmse(strategy, mode, vec, red), rec["mean"], rec["se"])
                 for vec, red in COLUMNS.values()]
        print(f"| {READOUTS[mode]} | {STRATEGIES[strategy]} | {rec['mean']:.4f} ± "
              f"{rec['se']:.4f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--repeats":
        paths(int(sys.argv[2]))
    else:
        main()
