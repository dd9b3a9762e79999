"""Weight scaling, input range gradient, least-squares read-out and im2col index helpers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anatile.config import InputRangeParameter
from anatile.functional import (
    clip_input,
    conv2d_indices,
    gather_patches,
    input_range_data_init,
    input_range_gradient,
    learning_rate_scale,
    lstsq_weights,
    mapping_scales,
    scatter_patches,
)


def test_mapping_scales_layer_and_column_wise() -> None:
    w = torch.tensor([[1.0, -4.0], [0.0, 0.0], [2.0, 0.5]])
    assert torch.equal(mapping_scales(w, 2.0, False), torch.tensor([2.0]))
    assert torch.equal(mapping_scales(w, 2.0, True), torch.tensor([2.0, 1.0, 1.0]))
    assert torch.equal(mapping_scales(w, 0.0, True), torch.ones(3))
    assert torch.equal(mapping_scales(torch.zeros(2, 2), 1.0, False), torch.ones(1))


def test_learning_rate_scale() -> None:
    s = torch.tensor([2.0, 4.0])
    assert learning_rate_scale(s, False) == 1.0
    assert learning_rate_scale(s, True) == pytest.approx(1 / 3)


def test_input_range_gradient_equals_finite_difference_when_signs_push_outward() -> None:
    # With the gradient negative above r and positive below -r the STE equals the true
    # derivative of sum(g · clamp(x, -r, r)) w.r.t. r.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, generator=g) * 2
    r = torch.tensor([1.3])
    grad_out = torch.where(x >= 0, -torch.rand(200, generator=g), torch.rand(200, generator=g))
    cfg = InputRangeParameter(enable=True, decay=0.0, gradient_relative=False)
    ste = input_range_gradient(x, grad_out, r, cfg)
    eps = 1e-3

    def f(rv: float) -> float:
        return float((grad_out * clip_input(x, torch.tensor([rv]))).sum())

    fd = (f(1.3 + eps) - f(1.3 - eps)) / (2 * eps)
    assert float(ste) == pytest.approx(fd, rel=1e-3)


def test_input_range_gradient_terms() -> None:
    x = torch.tensor([2.0, -2.0, 0.1, 0.2])
    grad = torch.tensor([-1.0, 1.0, 5.0, 5.0])
    r = torch.tensor([1.0])
    base = InputRangeParameter(enable=True, decay=0.0, gradient_relative=False)
    assert float(input_range_gradient(x, grad, r, base)) == -2.0
    # only the negative part above r and the positive part below -r count
    assert float(input_range_gradient(x, -grad, r, base)) == 0.0
    rel = InputRangeParameter(enable=True, decay=0.0, gradient_relative=True, gradient_scale=2.0)
    assert float(input_range_gradient(x, grad, torch.tensor([0.5]) * 2, rel)) == -4.0
    # decay applies when more than input_min_percentage of the inputs pass unclipped
    decay = InputRangeParameter(enable=True, decay=0.1, input_min_percentage=0.4,
                                gradient_relative=False)
    assert float(input_range_gradient(x, grad, r, decay)) == pytest.approx(-2.0 + 0.1)
    out = InputRangeParameter(enable=True, decay=0.0, gradient_relative=False,
                              manage_output_clipping=True, output_min_percentage=0.9)
    assert float(input_range_gradient(x, grad, r, out, 0.5)) == pytest.approx(-2.0 - 0.5)


def test_input_range_data_init_is_running_mean() -> None:
    a, b = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 4.0, 8.0])
    r = input_range_data_init(torch.tensor([99.0]), a, 0, 2.0)
    assert float(r) == pytest.approx(2.0 * float(a.std()))
    r = input_range_data_init(r, b, 1, 2.0)
    assert float(r) == pytest.approx((2 * float(a.std()) + 2 * float(b.std())) / 2)


def test_lstsq_recovers_weights_and_bias() -> None:
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(3, 5, generator=g), torch.randn(3, generator=g)
    x = torch.randn(50, 5, generator=g)
    west, best = lstsq_weights(x, x @ w.T + b, with_bias=True)
    assert torch.allclose(west, w, atol=1e-4) and best is not None
    assert torch.allclose(best, b, atol=1e-4)
    with pytest.raises(ValueError, match="x, y"):
        lstsq_weights(x, torch.zeros(49, 3))


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2)])
def test_gather_matches_unfold_and_scatter_is_adjoint(stride: int, padding: int,
                                                      dilation: int) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 7, 6, generator=g)
    k = (3, 2)
    idx, sizes = conv2d_indices(3, (7, 6), k, (stride,) * 2, (padding,) * 2, (dilation,) * 2)
    rows = gather_patches(x, idx)
    ref = F.unfold(x, k, dilation=dilation, padding=padding, stride=stride)  # [N, in, L]
    assert torch.allclose(rows, ref.transpose(1, 2).reshape(-1, ref.shape[1]))
    assert sizes[:3] == [3, 7, 6] and sizes[3] * sizes[4] == ref.shape[2]
    r = torch.randn(rows.shape, generator=g)
    back = scatter_patches(r, idx, (3, 7, 6))
    assert float((rows * r).sum()) == pytest.approx(float((x * back).sum()), rel=1e-4)


def test_conv2d_indices_rejects_too_small_images() -> None:
    with pytest.raises(ValueError, match="too small"):
        conv2d_indices(1, (2, 2), (3, 3), (1, 1), (0, 0), (1, 1))
