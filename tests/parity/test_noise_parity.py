"""PCM noise statistics equal aihwkit 1.2.0's (``fixtures/noise.json``): programming
noise, drift exponents ν and drifted-plus-read conductances, 200,000 samples each.

aihwkit draws from torch's global generator; anatile from the generator it is given. With
the same seed and the same order of calls the two draw the same numbers, so the statistics
agree to float32 rounding, a far stronger check than agreement within standard errors.
"""

from __future__ import annotations

import pytest
import torch
from parity_fixtures import load_fixture

from anatile.inference import PCMLikeNoiseModel

DATA = load_fixture("noise")
N = DATA["samples"]


def _check(sample: torch.Tensor, rec: dict[str, float], what: str) -> None:
    x = sample.double().flatten()
    assert x.numel() == rec["n"]
    assert float(x.mean()) == pytest.approx(rec["mean"], rel=1e-6), what
    assert float(x.std()) == pytest.approx(rec["std"], rel=1e-5), what


@pytest.mark.parametrize("g", ["0.5", "2.0", "10.0", "20.0"])
def test_programming_noise_and_drift_exponents(g: str) -> None:
    model = PCMLikeNoiseModel()
    target = torch.full((N,), float(g))
    gen = torch.Generator().manual_seed(0)  # the recorder's torch.manual_seed(0)
    _check(model.apply_programming_noise_to_conductance(target, gen), DATA["prog"][g],
           f"g_prog at {g} µS")
    _check(model.generate_drift_coefficients(target, gen), DATA["nu"][g], f"nu at {g} µS")


def test_drifted_conductance_statistics() -> None:
    model = PCMLikeNoiseModel()
    gen = torch.Generator().manual_seed(1)
    target = torch.full((N,), 10.0)
    g_prog = model.apply_programming_noise_to_conductance(target, gen)
    nu = model.generate_drift_coefficients(target, gen)
    for t in ("1.0", "3600.0", "86400.0", "31536000.0"):
        drifted = model.apply_drift_noise_to_conductance(g_prog, nu, float(t), gen)
        _check(drifted, DATA["drifted"][t], f"g(t={t} s) from 10 µS")
