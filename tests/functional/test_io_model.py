"""Forward/backward IO model: exactness, noise level, quantization, clipping, bound management."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from anatile.config import BoundManagementType, IOParameters, NoiseManagementType
from anatile.functional import (
    analog_mvm,
    analog_mvm_with_stats,
    noise_management_scale,
    quantization_step,
)


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
    inp_step = quantization_step(io.inp_res, io.inp_bound)
    out_step = quantization_step(io.out_res, io.out_bound)
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
    # aihwkit's rule: the round whose reduction first exceeds max_bm_factor (4 > 2) is the
    # last; 64 / 4 = 16 still clips at out_bound, times the undone reduction 4
    assert torch.allclose(y, torch.full((1, 2), 4 * io.out_bound))


def test_max_bm_res_limits_halving_to_16_by_default() -> None:
    io = IOParameters(out_noise=0.0)
    w = torch.full((1, 512), 1.0)
    y = analog_mvm(torch.ones(1, 512), w, io)
    # 0.25 / (2/126) = 15.75: the round at reduction 16 is the last; 512/16 = 32 clips at 12
    assert torch.allclose(y, torch.full((1, 1), 16 * io.out_bound))
    y = analog_mvm(torch.ones(1, 512), w, IOParameters(out_noise=0.0, max_bm_res=1.0))
    # 1 / (2/126) = 63: reductions up to 64, 512/64 = 8 fits (1/64 is one DAC step, 2/126)
    assert float(y) == pytest.approx(512 * 64 / 63, rel=2e-3)


def test_output_on_the_bound_does_not_trigger_bound_management() -> None:
    # 12 is exactly on the ADC bound (255 steps of 24/510): aihwkit tests value > bound
    io = IOParameters(out_noise=0.0)
    w = torch.full((1, 12), 1.0)
    result = analog_mvm_with_stats(torch.ones(1, 12), w, io)
    assert torch.equal(result.out, torch.full((1, 1), 12.0))


@pytest.mark.parametrize(("res", "bound", "step"), [
    (1 / 126, 1.0, 2 / 126),
    (1 / 510, 12.0, 24 / 510),
    (126.0, 1.0, 2 / 126),  # above 1: number of steps over the range
    (256.0, 2.0, 4 / 256),
    (1.0, 3.0, 6.0),
    (0.0, 1.0, 0.0),
    (-1.0, 12.0, 0.0),  # aihwkit's tests use -1 for "no quantization"
])
def test_quantization_step_is_a_fraction_of_the_full_range(res: float, bound: float,
                                                           step: float) -> None:
    assert quantization_step(res, bound) == pytest.approx(step, rel=1e-12)


def _dac_only(inp_res: float) -> IOParameters:
    return IOParameters(inp_res=inp_res, out_res=0.0, out_noise=0.0,
                        bound_management=BoundManagementType.NONE)


def test_dac_levels_are_aihwkit_steps() -> None:
    x = torch.linspace(-1.0, 1.0, 2001).unsqueeze(0)  # abs-max 1: no rescaling
    y = analog_mvm(x, torch.eye(2001), _dac_only(1 / 126)).squeeze(0)
    step = 2 / 126
    levels = y / step
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    # 63 steps per sign (127 levels), errors up to half a step
    assert sorted(set(levels.round().int().tolist())) == list(range(-63, 64))
    assert float((y - x).abs().max()) <= step / 2 + 1e-6
    assert float((y - x).abs().max()) > 0.45 * step
    assert torch.equal(analog_mvm(x, torch.eye(2001), _dac_only(126.0)), y.unsqueeze(0))


def test_dac_clips_at_the_bound_between_levels() -> None:
    # step 2/101: 50.5 steps fit in the bound; 1.02 rounds to 52 steps and clips at the bound
    io = replace(_dac_only(1 / 101), noise_management=NoiseManagementType.NONE)
    x = torch.tensor([[1.02, -1.02, 0.5]])
    y = analog_mvm(x, torch.eye(3), io)
    assert torch.allclose(y, torch.tensor([[1.0, -1.0, 25 * 2 / 101]]))


@pytest.mark.parametrize("res", [0.0, -1.0])
def test_non_positive_resolution_means_no_quantization(res: float) -> None:
    g = _gen(4)
    x, w = torch.rand(5, 8, generator=g) - 0.5, torch.randn(3, 8, generator=g) * 0.1
    io = IOParameters(inp_res=res, out_res=res, out_noise=0.0)
    y = analog_mvm(x, w, io)
    assert torch.allclose(y, x @ w.T, atol=1e-6)


def test_adc_levels_are_aihwkit_steps() -> None:
    g = _gen(5)
    io = IOParameters(inp_res=0.0, out_noise=0.0, bound_management=BoundManagementType.NONE)
    x = torch.ones(1, 256)
    w = (torch.rand(64, 256, generator=g) - 0.5) * 0.1
    y = analog_mvm(x, w, io)
    step = 24 / 510
    levels = y / step
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert float((y - x @ w.T).abs().max()) <= step / 2 + 1e-5
    assert float((y - x @ w.T).abs().max()) > 0.3 * step


def test_all_zero_row_gives_exact_zero() -> None:
    x = torch.zeros(3, 8)
    x[1] = 1.0
    y = analog_mvm(x, torch.ones(2, 8), IOParameters(), _gen(6))
    assert torch.equal(y[0], torch.zeros(2))
    assert torch.equal(y[2], torch.zeros(2))
    assert not torch.equal(y[1], torch.zeros(2))


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
