"""Global drift-compensation alpha agrees with aihwkit 1.2.0's (``fixtures/drift_alpha.json``):
a 64×128 inference layer, identity readout through the noisy forward path, with and
without programming/read noise, at ω = 0 (aihwkit's default) and ω = 1.

Noise-free programming: within 2 standard errors of the difference. With programming and
read noise a documented difference remains (docs/aihwkit.md: aihwkit drifts conductances
re-derived from the programmed weights, folding a zero-target device's programming noise
into its partner; anatile drifts each device's own conductance): within 2 SE + 2 %
(measured with 40 repeats against the C++ InferenceTile: at most 0.53 %). With aihwkit's
convention (``rederive_conductances=True``) within 2 SE in every case."""

from __future__ import annotations

import numpy as np
import pytest
from parity_fixtures import combined_se, load_fixture
from record_aihwkit import alpha_weights

from anatile.config import InferenceRPUConfig
from anatile.inference import GlobalDriftCompensation, PCMLikeNoiseModel
from anatile.nn import AnalogLinear, drift_analog_weights, program_analog_weights

DATA = load_fixture("drift_alpha")
REPEATS = 40


def _alphas(omega: float, noisy: bool, rederive: bool = False) -> dict[str, list[float]]:
    scale = 1.0 if noisy else 0.0
    cfg = InferenceRPUConfig(
        noise_model=PCMLikeNoiseModel(prog_noise_scale=scale, read_noise_scale=scale,
                                      rederive_conductances=rederive),
        drift_compensation=GlobalDriftCompensation(),
    )
    cfg.mapping.weight_scaling_omega = omega
    w = alpha_weights()
    out: dict[str, list[float]] = {str(t): [] for t in DATA["t"]}
    for rep in range(REPEATS):
        layer = AnalogLinear(w.shape[1], w.shape[0], bias=False, rpu_config=cfg, seed=rep)
        layer.set_weights(w)
        layer.eval()
        for t in DATA["t"]:
            program_analog_weights(layer)
            drift_analog_weights(layer, t)
            out[str(t)].append(float(layer.analog_module.alpha.mean()))
    return out


@pytest.mark.parametrize("rederive", [False, True], ids=["own", "aihwkit_drift"])
@pytest.mark.parametrize("case", sorted(DATA["cases"]))
def test_alpha_agrees_with_aihwkit(case: str, rederive: bool) -> None:
    rec = DATA["cases"][case]
    alphas = _alphas(rec["omega"], rec["noisy"], rederive)
    for t, values in alphas.items():
        arr = np.asarray(values)
        mean, se = float(arr.mean()), float(arr.std(ddof=1) / np.sqrt(arr.size))
        theirs = rec["alpha"][t]
        tol = 2 * combined_se(se, theirs["se"])
        if rec["noisy"] and not rederive:
            tol += 0.02 * theirs["mean"]
        assert abs(mean - theirs["mean"]) <= tol, (case, t, mean, theirs, tol)
