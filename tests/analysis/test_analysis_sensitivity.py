"""layer_sensitivity: reproducible, finds a bad layer, leaves the model alone."""

from __future__ import annotations

import io

import pytest
import torch

from anatile.analysis import layer_sensitivity
from anatile.config import InferenceRPUConfig, IOParameters
from anatile.exceptions import TileError
from anatile.nn import AnalogLinear, convert_to_analog

MLP = tuple[torch.nn.Module, torch.Tensor, torch.Tensor]


def _digital(model: torch.nn.Module) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for m in model.children():
        if isinstance(m, AnalogLinear):
            w, b = m.get_weights()
            digital = torch.nn.Linear(m.in_features, m.out_features)
            digital.weight.data.copy_(w)
            assert b is not None
            digital.bias.data.copy_(b)
            layers.append(digital)
        else:
            layers.append(m)
    return torch.nn.Sequential(*layers)


@pytest.fixture(scope="module")
def mlp() -> MLP:
    """A 3-layer MLP trained on a synthetic 5-class problem (a second, fixed seed)."""
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(5, 16, generator=gen) * 1.0
    y = torch.randint(0, 5, (600,), generator=gen)
    x = centers[y] + torch.randn(600, 16, generator=gen)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 5))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[:400]), y[:400]).backward()
        opt.step()
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    return convert_to_analog(net.eval(), cfg, seed=0).eval(), x[400:], y[400:]


def test_reproducible_with_the_seed(mlp: MLP, one_thread: None) -> None:
    model, x, y = mlp
    a = layer_sensitivity(model, x, y, 86400.0, chips=3, seed=1, metric="loss")
    b = layer_sensitivity(model, x, y, 86400.0, chips=3, seed=1, metric="loss")
    c = layer_sensitivity(model, x, y, 86400.0, chips=3, seed=2, metric="loss")
    assert a.layers == ["0", "2", "4"]
    assert torch.equal(a.values, b.values) and torch.equal(a.all_analog, b.all_analog)
    assert not torch.equal(a.values, c.values)
    assert a.values.shape == (3, 3)
    with torch.no_grad():
        digital = float(torch.nn.functional.cross_entropy(_digital(model)(x), y))
    assert a.ideal == pytest.approx(digital, rel=1e-5)  # every layer ideal: the digital network
    assert len(a.to_rows()) == 3


def test_finds_an_injected_bad_layer_and_leaves_the_model_alone(
    mlp: MLP, one_thread: None
) -> None:
    model, x, y = mlp
    layer = model.get_submodule("2")
    assert isinstance(layer, AnalogLinear)
    bad = layer.analog_tile
    original = bad.rpu_config.forward
    bad.rpu_config.forward = IOParameters(out_noise=3.0)  # a noisy ADC on the middle layer
    try:
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        result = layer_sensitivity(model, x, y, 3600.0, chips=5, seed=0)
        after = io.BytesIO()
        torch.save(model.state_dict(), after)
        assert buf.getvalue() == after.getvalue()
    finally:
        bad.rpu_config.forward = original
    assert result.worst() == "2"
    mean, std = result.mean, result.std
    others = [0, 2]
    # the bad layer's cost exceeds every other layer's by more than 3 standard errors
    se = (std.square() / 5).sqrt()
    for k in others:
        assert float(mean[1] - mean[k]) > 3 * float((se[1].square() + se[k].square()).sqrt())


def test_bad_arguments(mlp: MLP) -> None:
    model, x, y = mlp
    with pytest.raises(ValueError, match="x, y"):
        layer_sensitivity(model, x, y[:-1], 1.0)
    with pytest.raises(TypeError, match="y"):
        layer_sensitivity(model, x, y.float(), 1.0)
    with pytest.raises(ValueError, match="chips"):
        layer_sensitivity(model, x, y, 1.0, chips=0)
    with pytest.raises(ValueError, match="metric"):
        layer_sensitivity(model, x, y, 1.0, metric="f1")
    with pytest.raises(ValueError, match="t"):
        layer_sensitivity(model, x, y, -5.0)
    with pytest.raises(TileError):
        layer_sensitivity(torch.nn.Linear(16, 5), x, y, 1.0)
