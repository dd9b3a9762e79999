"""AnalogSGD: analog tiles get their own update, digital parameters plain SGD."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anatile.config import InferenceRPUConfig, IOParameters, WeightClipType, WeightRemapType
from anatile.nn import AnalogConv2d, AnalogLinear, AnalogSGD
from tests.configs import exact_float_config

pytestmark = pytest.mark.usefixtures("one_thread")



def test_float_update_equals_torch_sgd() -> None:
    torch.manual_seed(0)
    ref = torch.nn.Linear(5, 3)
    layer = AnalogLinear(5, 3, rpu_config=exact_float_config(), seed=0)
    layer.set_weights(ref.weight.detach(), ref.bias.detach())
    opt_a = AnalogSGD(layer.parameters(), lr=0.1)
    opt_r = torch.optim.SGD(ref.parameters(), lr=0.1)
    x, t = torch.randn(8, 5), torch.randn(8, 3)
    for _ in range(3):
        for model, opt in ((layer, opt_a), (ref, opt_r)):
            opt.zero_grad()
            F.mse_loss(model(x), t).backward()
            opt.step()
    w, b = layer.get_weights()
    assert torch.allclose(w, ref.weight.detach(), atol=1e-5)
    assert b is not None and torch.allclose(b, ref.bias.detach(), atol=1e-5)


def test_gradient_accumulation_and_zero_grad() -> None:
    layer = AnalogLinear(4, 2, rpu_config=exact_float_config(), seed=0)
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    x = torch.randn(3, 4)
    layer(x).sum().backward()
    layer(x).sum().backward()
    assert len(layer.analog_tile._pending) == 2  # accumulates like gradients
    opt.zero_grad()
    layer(x).sum().backward()
    assert len(layer.analog_tile._pending) == 1  # a new list after zero_grad
    opt.step()
    assert layer.analog_tile._pending == []


def test_inference_config_trains_with_float_updates() -> None:
    cfg = InferenceRPUConfig()
    cfg.forward = IOParameters(is_perfect=True)
    layer = AnalogLinear(3, 1, rpu_config=cfg, seed=0)
    assert not layer.analog_tile.analog_core.uses_pulses
    w0, _ = layer.get_weights()
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    x = torch.randn(4, 3)
    opt.zero_grad()
    out = layer(x)
    out.sum().backward()
    opt.step()
    w1, _ = layer.get_weights()
    assert torch.allclose(w1, w0 - 0.5 * x.sum(0, keepdim=True), atol=1e-5)


def test_pulsed_conv_training_step_changes_weights() -> None:
    conv = AnalogConv2d(1, 2, 2, seed=0)
    opt = AnalogSGD(conv.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    w0, _ = conv.get_weights()
    x = torch.randn(2, 1, 4, 4)
    opt.zero_grad()
    conv(x).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(conv.get_weights()[0], w0)


def test_bad_hyper_parameters() -> None:
    layer = AnalogLinear(2, 2, seed=0)
    with pytest.raises(ValueError, match="lr"):
        AnalogSGD(layer.parameters(), lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        AnalogSGD(layer.parameters(), momentum=-1.0)


def test_aihwkit_optimizer_names_regroup_and_learning_rate() -> None:
    model = torch.nn.Sequential(AnalogLinear(4, 3, seed=0), torch.nn.ReLU(),
                                AnalogLinear(3, 2, seed=1))
    opt = AnalogSGD(model.parameters(), lr=0.2)
    opt.regroup_param_groups(model)
    tiles = [model[0].analog_tile, model[2].analog_tile]
    # one group per tile plus the digital parameters (biases)
    assert len(opt.param_groups) == 3
    assert all(t.get_learning_rate() == pytest.approx(0.2) for t in tiles)
    opt.set_learning_rate(0.05)
    assert all(g["lr"] == 0.05 for g in opt.param_groups)
    assert all(t.get_learning_rate() == pytest.approx(0.05) for t in tiles)
    with pytest.raises(ValueError, match="learning_rate"):
        opt.set_learning_rate(0.0)
    assert all(g["lr"] == 0.05 for g in opt.param_groups)


def test_step_runs_post_update_step_clipping_and_remapping() -> None:
    cfg = InferenceRPUConfig()
    cfg.forward.is_perfect = True
    cfg.clip.type = WeightClipType.FIXED_VALUE
    cfg.clip.fixed_value = 0.3
    layer = AnalogLinear(4, 2, bias=False, rpu_config=cfg, seed=0)
    layer.set_weights(torch.tensor([[1.0, -1.0, 0.1, 0.2], [0.5, 0.0, -0.25, 0.3]]))
    opt = AnalogSGD(layer.parameters(), lr=1e-6)
    layer(torch.ones(1, 4)).sum().backward()
    opt.step()
    w = layer.analog_module.get_weights()[0]
    assert float(w.abs().max()) == pytest.approx(0.3)
    # remapping: the array maximum goes to 1, the logical weights stay
    cfg2 = InferenceRPUConfig()
    cfg2.forward.is_perfect = True
    cfg2.remap.type = WeightRemapType.LAYERWISE_SYMMETRIC
    layer2 = AnalogLinear(4, 2, bias=False, rpu_config=cfg2, seed=0)
    target = torch.tensor([[0.2, -0.4, 0.1, 0.2], [0.1, 0.0, -0.25, 0.3]])
    layer2.set_weights(target)
    opt2 = AnalogSGD(layer2.parameters(), lr=1e-9)
    layer2(torch.ones(1, 4)).sum().backward()
    opt2.step()
    tile = layer2.analog_module
    array = tile.get_weights(apply_weight_scaling=False)[0]
    assert float(array.abs().max()) == pytest.approx(1.0)
    torch.testing.assert_close(tile.get_weights()[0], target, atol=1e-6, rtol=0)
    assert tile.get_scales().numel() == 1
