"""WPO baseline TNMSE agrees with aihwkit 1.2.0's (``fixtures/wpo_tnmse.json``, 20 repeats
there): 512×512 N(0, 0.05²) weights, the 512×20 test layer, six times from 1 s to 1 year,
PCMLikeNoiseModel, global drift compensation, ω = 0 during the search; four baseline
strategies; three readouts of the drift-compensation reference:

* ``aihwkit_objective``: aihwkit's own (the identity through the noisy forward path);
* ``noise_free_readout``: ``forward.is_perfect`` (anatile's ``perfect_readout=True``);
* ``quantization_only``: the forward path with ``out_noise = 0``.

With aihwkit's convention for what drifts (``PCMLikeNoiseModel(rederive_conductances=True)``:
conductances re-derived from the programmed weights) the per-candidate path must agree within
2 standard errors of the difference, nothing more (measured against the C++ InferenceTile:
within 1.3 SE in all 12 cases).

With anatile's default (each device's own programmed conductance drifts; the batched loss
always does this) both paths must agree within 2 SE plus the documented difference that
remains (``docs/aihwkit.md``): 2 % with the noisy readouts, 3 % with the noise-free one,
where it shows most (measured 0.8–2.6 % higher, as the issue's own measurement of 1–3 %).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from parity_fixtures import combined_se, load_fixture
from record_aihwkit import WPO_STRATEGIES, wpo_weights

from anatile.config import InferenceRPUConfig
from anatile.exceptions import ConfigError
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


def _tnmse(strategy: str, mode: str, vectorized: bool, rederive: bool = False
           ) -> tuple[float, float]:
    kind, f_lst = WPO_STRATEGIES[strategy]
    baseline = _converter(kind, f_lst)
    noise = PCMLikeNoiseModel(g_converter=baseline, rederive_conductances=rederive)
    cfg = InferenceRPUConfig(noise_model=noise, drift_compensation=GlobalDriftCompensation())
    if mode == "quantization_only":
        cfg.forward.out_noise = 0.0
    values = []
    for rep in range(REPEATS):
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


def test_batched_path_refuses_rederived_conductances() -> None:
    noise = PCMLikeNoiseModel(rederive_conductances=True)
    cfg = InferenceRPUConfig(noise_model=noise, drift_compensation=GlobalDriftCompensation())
    wpo = WeightProgrammingOptimizer(WEIGHTS[:64, :64], [1.0], cfg, DATA["t_steps"],
                                     DualPairConductanceConverter([1.0, 1.0], g_max=25.0),
                                     seed=0, vectorized=True, device="cpu")
    with pytest.raises(ConfigError, match="rederive_conductances"):
        wpo.get_loss_baseline()


@pytest.mark.parametrize(("strategy", "mode"), CASES)
def test_batched_path_agrees_with_aihwkit(strategy: str, mode: str) -> None:
    # the batched loss models the noisy readout through the IO model (OneHotReadout)
    _assert_agrees(strategy, mode, vectorized=True)


@pytest.mark.parametrize("vectorized", [False, True])
def test_baseline_measures_the_converter_it_is_given(vectorized: bool) -> None:
    """Issue 15 item 6: aihwkit's get_loss_baseline measures the noise model's converter;
    anatile's measures ``g_converter_baseline`` whatever the noise model holds."""
    def baseline(noise_model_converter: Any, given: Any) -> float:
        cfg = InferenceRPUConfig(noise_model=PCMLikeNoiseModel(g_converter=noise_model_converter))
        wpo = WeightProgrammingOptimizer(
            WEIGHTS, [1.0, 3.0], cfg, DATA["t_steps"], given, baseline_iterations=2,
            test_in_features=128, seed=1, vectorized=vectorized, device="cpu")
        return wpo.get_loss_baseline()

    single = SinglePairConductanceConverter(g_max=25.0, g_min=0.0)
    dual = DualPairConductanceConverter(f_lst=[1.0, 3.0], g_max=25.0, g_min=0.0)
    # DualPair [1,3] has about a third of SinglePair's TNMSE (0.051 vs 0.154 at full size)
    measured = baseline(single, dual)
    assert measured == pytest.approx(baseline(dual, dual), rel=0.15)
    assert measured < 0.6 * baseline(single, single)
