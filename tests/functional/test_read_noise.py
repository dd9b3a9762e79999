"""The noise of one read (read_noise_std) and what averaging cannot remove (adc_rounding_bias),
checked against the IO model itself with fixed seeds."""

from __future__ import annotations

import math

import pytest
import torch

from anatile.config import IOParameters
from anatile.functional import (
    adc_rounding_bias,
    analog_mvm,
    quantization_step,
    read_noise_std,
)
from anatile.tiles.verify import hadamard_inputs

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("w_noise", [0.0, 0.02])
def test_read_noise_std_is_the_spread_of_repeated_reads(w_noise: float) -> None:
    """Rows with different abs-max scales and norms, read 2000 times: the pooled sample
    variance of each row (2000·8 values) has a relative standard error of
    sqrt(2/16000) = 1.1 %, so the standard deviations agree within 3 % (≈ 5 SE)."""
    io = IOParameters(w_noise=w_noise)
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(8, 16, generator=gen) * 0.6 - 0.3
    x = torch.randn(5, 16, generator=gen) * torch.tensor([[0.2], [0.5], [1.0], [2.0], [4.0]])
    reads = analog_mvm(x.repeat(2000, 1), w, io, gen).view(2000, 5, 8)
    spread = reads.var(dim=0).mean(dim=1).sqrt()
    predicted = read_noise_std(x, io)
    torch.testing.assert_close(spread, predicted, rtol=0.03, atol=0.0)


def test_read_noise_std_is_zero_for_perfect_io() -> None:
    assert torch.equal(read_noise_std(torch.eye(3), IOParameters(is_perfect=True)),
                       torch.zeros(3))


@pytest.mark.parametrize("noise_in_steps", [0.0, 0.2, 0.4])
def test_adc_rounding_bias_is_what_averaging_leaves(noise_in_steps: float) -> None:
    """Identity reads of 4096 weights spread over many ADC steps, averaged over 400 reads.

    The averaged error is the rounding bias b(w) plus noise of sd σ_tot/20 (σ_tot² =
    σ² + q²/12, at most 0.42 q here), i.e. at most 0.021 q: for the predicted mean |b| of
    0.25 q (no noise), 0.092 q (σ = 0.2 q) and 0.0086 q (σ = 0.4 q) the residual noise adds
    in quadrature. Both are compared on a grid of phases (4096 values) and with the formula
    mean|b + n| ≈ sqrt(b² + (0.8·σ_tot/20)²), within 10 % (the neglected second harmonic
    is 5 % of the first at σ = 0.2 q, negligible at 0.4 q).
    """
    q = quantization_step(1 / 510, 12.0)
    io = IOParameters(out_noise=noise_in_steps * q, inp_res=-1.0)
    n = 4096
    w = (torch.arange(n, dtype=torch.float32) / n * 37.0 * q).view(64, 64)  # uniform phases
    gen = torch.Generator().manual_seed(3)
    x = torch.eye(64)
    total = torch.zeros(64, 64)
    for _ in range(400):
        total += analog_mvm(x, w, io, gen)
    measured = float((total / 400 - w.T).abs().mean())
    bias = adc_rounding_bias(io)
    residual = math.sqrt(2 / math.pi) * math.sqrt(io.out_noise**2 + q**2 / 12) / 20
    expected = math.hypot(bias, residual) if noise_in_steps > 0 else bias
    assert measured == pytest.approx(expected, rel=0.10), (measured, expected, bias)


def test_adc_rounding_bias_vanishes_with_stochastic_rounding_or_no_adc() -> None:
    assert adc_rounding_bias(IOParameters(out_noise=0.0, out_sto_round=True)) == 0.0
    assert adc_rounding_bias(IOParameters(out_noise=0.0, out_res=-1.0)) == 0.0
    assert adc_rounding_bias(IOParameters(is_perfect=True)) == 0.0


@pytest.mark.parametrize("n", [1, 6, 8, 33])
def test_hadamard_inputs_are_orthogonal_signs(n: int) -> None:
    v = hadamard_inputs(n, torch.Generator().manual_seed(n))
    m = v.shape[0]
    assert m >= n and m & (m - 1) == 0 and m < 2 * n + 1
    assert bool((v.abs() == 1).all())
    assert torch.equal(v.T @ v, m * torch.eye(n))
