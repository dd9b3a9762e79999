"""AnalogLinear and AnalogConv2d: exactness on perfect tiles, weights API, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anatile.nn import AnalogConv2d, AnalogLinear
from anatile.tiles import TileWithPeriphery
from tests.configs import perfect_config

pytestmark = pytest.mark.usefixtures("one_thread")



def test_linear_matches_torch_linear_on_perfect_tile() -> None:
    layer = AnalogLinear(5, 3, rpu_config=perfect_config(), seed=0)
    assert isinstance(layer.analog_tile, TileWithPeriphery) and layer.tile is layer.analog_tile
    w, b = torch.randn(3, 5), torch.randn(3)
    layer.set_weights(w, b)
    w2, b2 = layer.get_weights()
    assert torch.allclose(w2, w) and b2 is not None and torch.allclose(b2, b)
    x = torch.randn(2, 4, 5, requires_grad=True)
    y = layer(x)
    assert torch.allclose(y, F.linear(x, w, b), atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    assert x.grad is not None and torch.allclose(x.grad, g @ w, atol=1e-5)


def test_linear_default_init_and_no_bias() -> None:
    layer = AnalogLinear(16, 4, bias=False, seed=0)
    w, b = layer.get_weights()
    assert b is None and float(w.abs().max()) <= 1 / 4 + 1e-6
    assert "in_features=16" in repr(layer)


@pytest.mark.parametrize("stride,padding,dilation,bias", [
    (1, 0, 1, True), (2, 1, 1, False), (1, 2, 2, True), ((2, 1), (0, 1), (1, 2), True)])
def test_conv2d_matches_f_conv2d_on_perfect_tile(stride, padding, dilation,  # type: ignore[no-untyped-def]
                                                 bias) -> None:
    g = torch.Generator().manual_seed(0)
    conv = AnalogConv2d(3, 4, (3, 2), stride=stride, padding=padding, dilation=dilation,
                        bias=bias, rpu_config=perfect_config(), seed=0)
    k = torch.randn(4, 3, 3, 2, generator=g)
    b = torch.randn(4, generator=g) if bias else None
    conv.set_weights(k, b)
    kk, bb = conv.get_weights()
    assert torch.allclose(kk, k)
    x = torch.randn(2, 3, 9, 8, generator=g, requires_grad=True)
    y = conv(x)
    ref_x = x.detach().clone().requires_grad_(True)
    ref = F.conv2d(ref_x, k, b, stride=stride, padding=padding, dilation=dilation)
    assert torch.allclose(y, ref, atol=1e-4)
    d = torch.randn_like(y)
    y.backward(d)
    ref.backward(d)
    assert x.grad is not None and torch.allclose(x.grad, ref_x.grad, atol=1e-4)
    # another image size rebuilds the index matrix
    x2 = torch.randn(3, 12, 10, generator=g)
    assert torch.allclose(conv(x2), F.conv2d(x2.unsqueeze(0), k, b, stride=stride,
                                             padding=padding, dilation=dilation)[0], atol=1e-4)


def test_conv2d_rejects_groups_and_bad_inputs() -> None:
    with pytest.raises(ValueError, match="groups"):
        AnalogConv2d(2, 2, 3, groups=2)
    conv = AnalogConv2d(2, 2, 3, seed=0)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="weight"):
        conv.set_weights(torch.randn(2, 2, 2, 2))
    with pytest.raises(TypeError, match="kernel_size"):
        AnalogConv2d(2, 2, "3")  # type: ignore[arg-type]


def test_layers_with_an_inference_config_hold_inference_tiles() -> None:
    from anatile.config import InferenceRPUConfig
    from anatile.nn import AnalogConv2d, AnalogLinear
    from anatile.tiles import InferenceTile

    assert isinstance(AnalogLinear(3, 2, rpu_config=InferenceRPUConfig()).analog_tile,
                      InferenceTile)
    assert isinstance(AnalogConv2d(1, 2, 3, rpu_config=InferenceRPUConfig()).analog_tile,
                      InferenceTile)
    assert not isinstance(AnalogLinear(3, 2).analog_tile, InferenceTile)
