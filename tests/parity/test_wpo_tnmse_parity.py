"""WPO baseline TNMSE agrees with aihwkit 1.2.0's (``fixtures/wpo_tnmse.json``, 20 repeats
there): 512×512 N(0, 0.05²) weights, the 512×20 test layer, six times from 1 s to 1 year,
PCMLikeNoiseModel, global drift compensation, ω = 0 during the search; four baseline
strategies; three readouts of the drift-compensation reference:

* ``aihwkit_objective``: aihwkit's own (the identity through the noisy forward path);
* ``noise_free_readout``: ``forward.is_perfect`` (anatile's ``perfect_readout=True``);
* ``quantization_only``: the forward path with ``out_noise = 0``.

With aihwkit's convention for what drifts (``PCMLikeNoiseModel(rederive_conductances=True)``:
conductances re-derived from the programmed weights) both paths, per-candidate and batched,
must agree within 2 standard errors of the difference, nothing more (measured against the
C++ InferenceTile: within 1.3 SE in all 12 cases per candidate).

With anatile's default (each device's own programmed conductance drifts) both paths must
agree within 2 SE plus the documented difference that remains (``docs/aihwkit.md``): 2 % with
the noisy readouts, 3 % with the noise-free one, where it shows most (measured 0.8–2.6 %
higher, as the issue's own measurement of 1–3 %).

The two paths must also agree with each other on many repeats (SinglePair, aihwkit's
objective, where a batched-only gap of about 1 % had been suspected from 20 repeats).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from parity_fixtures import combined_se, load_fixture
from record_aihwkit import WPO_STRATEGIES, wpo_weights

from anatile.config import InferenceRPUConfig
from anatile.inference import (
    DualPairConductanceConverter,
    GlobalDriftCompensation,
    NPairConductanceConverter,
    PCMLikeNoiseModel,
    SinglePairConductanceConverter,
)
from anatile.wpo import WeightProgrammingOptimizer

DATA = load_fixture("wpo_tnmse")
REPEATS = 6
WEIGHTS = wpo_weights()
# the remaining relative difference allowed on top of 2 SE (see the module docstring)
DOCUMENTED_DIFFERENCE = {"aihwkit_objective": 0.02, "quantization_only": 0.02,
                         "noise_free_readout": 0.03}


def _converter(kind: str, f_lst: list[float] | None) -> Any:
    if kind == "SinglePair":
        return SinglePairConductanceConverter(g_max=25.0, g_min=0.0)
    if kind == "DualPair":
        return DualPairConductanceConverter(f_lst=f_lst, g_max=25.0, g_min=0.0)
    return NPairConductanceConverter(f_lst=f_lst, g_max=25.0, g_min=0.0)


def _tnmse(strategy: str, mode: str, vectorized: bool, rederive: bool = False,
           repeats: int = REPEATS) -> tuple[float, float]:
    kind, f_lst = WPO_STRATEGIES[strategy]
    baseline = _converter(kind, f_lst)
    noise = PCMLikeNoiseModel(g_converter=baseline, rederive_conductances=rederive)
    cfg = InferenceRPUConfig(noise_model=noise, drift_compensation=GlobalDriftCompensation())
    if mode == "quantization_only":
        cfg.forward.out_noise = 0.0
    values = []
    for rep in range(repeats):
        wpo = WeightProgrammingOptimizer(
            WEIGHTS, f_lst or [1.0], cfg, DATA["t_steps"], baseline,
            baseline_iterations=1, seed=rep + 1, vectorized=vectorized, device="cpu",
            perfect_readout=(mode == "noise_free_readout"))
        values.append(wpo.get_loss_baseline())
    arr = np.asarray(values)
    return float(arr.mean()), float(arr.std(ddof=1) / np.sqrt(arr.size))


def _assert_agrees(strategy: str, mode: str, vectorized: bool, rederive: bool = False
                   ) -> None:
    mean, se = _tnmse(strategy, mode, vectorized, rederive)
    rec = DATA["tnmse"][mode][strategy]
    tol = 2 * combined_se(se, rec["se"])
    if not rederive:
        tol += DOCUMENTED_DIFFERENCE[mode] * rec["mean"]
    assert abs(mean - rec["mean"]) <= tol, (strategy, mode, vectorized, mean, se, rec)


CASES = [(s, m) for m in ("aihwkit_objective", "noise_free_readout", "quantization_only")
         for s in WPO_STRATEGIES]


@pytest.mark.parametrize(("strategy", "mode"), CASES)
def test_per_candidate_path_agrees_with_aihwkit(strategy: str, mode: str) -> None:
    _assert_agrees(strategy, mode, vectorized=False)


@pytest.mark.parametrize(("strategy", "mode"), CASES)
def test_per_candidate_path_with_aihwkit_drift_convention_matches(strategy: str, mode: str
                                                                  ) -> None:
    _assert_agrees(strategy, mode, vectorized=False, rederive=True)


@pytest.mark.parametrize(("strategy", "mode"), CASES)
def test_batched_path_with_aihwkit_drift_convention_matches(strategy: str, mode: str) -> None:
    _assert_agrees(strategy, mode, vectorized=True, rederive=True)


# repeats per path: the standard error of the difference is then about 0.25 % of the
# SinglePair TNMSE, so the tolerance of 3 SE below is 0.7 %: a gap of 1 % fails
PATHS_REPEATS = 120


@pytest.mark.parametrize("rederive", [False, True])
def test_batched_and_per_candidate_paths_agree_statistically(rederive: bool) -> None:
    """SinglePair with aihwkit's objective, where it is most sensitive (its zero-target
    devices, the noisy readout at omega 0): both paths, independent repeats, fixed seeds."""
    kind, f_lst = WPO_STRATEGIES["SinglePair"]
    baseline = _converter(kind, f_lst)
    noise = PCMLikeNoiseModel(g_converter=baseline, rederive_conductances=rederive)
    cfg = InferenceRPUConfig(noise_model=noise, drift_compensation=GlobalDriftCompensation())
    values = []
    for vectorized in (True, False):
        wpo = WeightProgrammingOptimizer(
            WEIGHTS, [1.0], cfg, DATA["t_steps"], baseline, seed=3, vectorized=vectorized,
            device="cpu", perfect_readout=False)
        values.append(wpo.objective.baseline_values(PATHS_REPEATS, wpo.generator))
    (mean_b, se_b), (mean_s, se_s) = (
        (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))) for v in values)
    # the SE is what the tolerance claims: about 0.25 % of the TNMSE
    assert combined_se(se_b, se_s) < 0.004 * mean_s
    assert abs(mean_b - mean_s) <= 3 * combined_se(se_b, se_s), (mean_b, se_b, mean_s, se_s)
