"""Forward/backward IO model: exactness, noise level, quantization, clipping, bound management."""

from __future__ import annotations

import math

import pytest
import torch

from anatile.config import BoundManagementType, IOParameters, NoiseManagementType
from anatile.functional import analog_mvm, analog_mvm_with_stats, noise_management_scale


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_perfect_is_exact_matmul() -> None:
    g = _gen()
    x, w = torch.randn(7, 5, generator=g), torch.randn(3, 5, generator=g)
    assert torch.equal(analog_mvm(x, w, IOParameters(is_perfect=True)), x @ w.T)


def test_backward_on_transposed_matrix() -> None:
    g = _gen()
    d, w = torch.randn(7, 3, generator=g), torch.randn(3, 5, generator=g)
    io = IOParameters(is_perfect=True)
    assert torch.allclose(analog_mvm(d, w.T, io), d @ w)


def test_noise_free_error_is_quantization_only() -> None:
    g = _gen()
    x, w = torch.randn(64, 32, generator=g), torch.randn(16, 32, generator=g) * 0.1
    io = IOParameters(out_noise=0.0)
    y = analog_mvm(x, w, io)
    scale = x.abs().amax(dim=1, keepdim=True)
    # input error ≤ half a DAC step per element, output error ≤ half an ADC step
    inp_step, out_step = io.inp_res * io.inp_bound, io.out_res * io.out_bound
    bound = scale * (0.5 * inp_step * w.abs().sum(dim=1) + 0.5 * out_step) + 1e-5
    assert bool(((y - x @ w.T).abs() <= bound).all())


def test_output_noise_level_matches_out_noise() -> None:
    g = _gen(1)
    w = torch.zeros(64, 16)
    x = torch.ones(2000, 16)  # abs-max scale 1: the output noise is seen unscaled
    io = IOParameters(out_noise=0.1, out_res=0.0)
    y = analog_mvm(x, w, io, g)
    n = y.numel()
    assert abs(float(y.mean())) < 5 * 0.1 / math.sqrt(n)
    # std of the sample std ≈ σ/sqrt(2n)
    assert abs(float(y.std()) - 0.1) < 5 * 0.1 / math.sqrt(2 * n)


def test_output_is_quantized_and_clipped_without_bound_management() -> None:
    io = IOParameters(out_noise=0.0, bound_management=BoundManagementType.NONE)
    w = torch.full((4, 32), 1.0)
    x = torch.ones(3, 32)
    result = analog_mvm_with_stats(x, w, io)
    # analog output 32 > out_bound 12: clipped to 12 (times the input scale 1)
    assert torch.allclose(result.out, torch.full((3, 4), io.out_bound))
    assert float(result.clipped_fraction) == 1.0
    y = analog_mvm(torch.randn(10, 32) * 0.01, torch.randn(4, 32) * 0.1, io)
    levels = y / (y.abs().amax(dim=1, keepdim=True).clamp(min=1e-12))
    assert torch.isfinite(levels).all()


def test_iterative_bound_management_recovers_large_outputs() -> None:
    g = _gen(2)
    w = torch.full((4, 32), 1.0)
    x = torch.rand(6, 32, generator=g) + 0.5
    io = IOParameters(out_noise=0.0)
    y = analog_mvm(x, w, io)
    exact = x @ w.T
    assert bool((exact.abs() > io.out_bound).all())
    # after halving the input enough times nothing clips: relative error is small
    assert torch.allclose(y, exact, rtol=0.05)


def test_bound_management_only_redoes_clipping_rows() -> None:
    io = IOParameters(out_noise=0.0)
    w = torch.full((2, 32), 1.0)
    x = torch.cat([torch.ones(1, 32), torch.full((1, 32), 0.01) * torch.linspace(0.1, 1, 32)])
    y = analog_mvm(x, w, io)
    small = analog_mvm(x[1:], w, io)
    assert torch.equal(y[1:], small)


def test_max_bm_factor_limits_halving() -> None:
    io = IOParameters(out_noise=0.0, max_bm_factor=2.0)
    w = torch.full((2, 64), 1.0)
    y = analog_mvm(torch.ones(1, 64), w, io)
    # one halving allowed: output clips at out_bound × 2 (scale undone)
    assert torch.allclose(y, torch.full((1, 2), 2 * io.out_bound))


@pytest.mark.parametrize("nm", list(NoiseManagementType))
def test_noise_management_scales(nm: NoiseManagementType) -> None:
    x = torch.tensor([[1.0, -3.0], [0.0, 0.0], [-2.0, -1.0]])
    s = noise_management_scale(x, IOParameters(noise_management=nm)).squeeze(1)
    if nm == NoiseManagementType.NONE:
        assert torch.equal(s, torch.ones(3))
    elif nm == NoiseManagementType.ABS_MAX:
        assert torch.equal(s, torch.tensor([3.0, 1.0, 2.0]))
    else:
        assert torch.equal(s, torch.tensor([1.0, 1.0, 2.0]))


def test_weight_noise_std() -> None:
    g = _gen(3)
    io = IOParameters(out_noise=0.0, out_res=0.0, inp_res=0.0, w_noise=0.05)
    x = torch.ones(4000, 16)
    y = analog_mvm(x, torch.zeros(1, 16), io, g)
    # Σ_j ξ_j x_j with |x|=1 per element: std w_noise·sqrt(16)
    assert abs(float(y.std()) - 0.05 * 4) < 0.02


def test_same_seed_same_result() -> None:
    x, w = torch.randn(8, 6), torch.randn(3, 6)
    io = IOParameters(inp_noise=0.01, inp_sto_round=True, out_sto_round=True)
    assert torch.equal(analog_mvm(x, w, io, _gen(5)), analog_mvm(x, w, io, _gen(5)))
    assert not torch.equal(analog_mvm(x, w, io, _gen(5)), analog_mvm(x, w, io, _gen(6)))
