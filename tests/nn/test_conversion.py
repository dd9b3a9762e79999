"""Model conversion and program/drift helpers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from anatile.config import InferenceRPUConfig, IOParameters, RPUConfig
from anatile.exceptions import TileError
from anatile.inference import PCMLikeNoiseModel
from anatile.nn import (
    AnalogConv2d,
    AnalogLinear,
    analog_tiles,
    convert_to_analog,
    drift_analog_weights,
    inference_tiles,
    program_analog_weights,
)
from anatile.tiles import InferenceTile


def quiet_perfect() -> InferenceRPUConfig:
    noise = PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0)
    return InferenceRPUConfig(forward=IOParameters(is_perfect=True), noise_model=noise)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_convert_copies_weights_and_keeps_original() -> None:
    digital = mlp()
    before = [p.detach().clone() for p in digital.parameters()]
    analog = convert_to_analog(digital, seed=0)
    assert isinstance(analog[0], AnalogLinear) and isinstance(analog[2], AnalogLinear)
    assert all(isinstance(t, InferenceTile) for t in analog_tiles(analog))
    assert len(list(inference_tiles(analog))) == 2
    for p, q in zip(before, digital.parameters(), strict=True):
        assert torch.equal(p, q)  # deep copy: the digital model is untouched
    w, b = analog[0].get_weights()
    torch.testing.assert_close(w, digital[0].weight.detach())
    torch.testing.assert_close(b, digital[0].bias.detach())


def test_single_layer_and_training_config() -> None:
    layer = convert_to_analog(nn.Linear(3, 2), RPUConfig(), seed=0)
    assert isinstance(layer, AnalogLinear)
    assert not isinstance(layer.analog_tile, InferenceTile)
    with pytest.raises(TileError, match="InferenceTile"):
        drift_analog_weights(layer, 1.0)


def test_zero_noise_perfect_io_matches_digital_exactly() -> None:
    digital = mlp().eval()
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(1))
    analog = convert_to_analog(digital, quiet_perfect(), seed=0).eval()
    program_analog_weights(analog)
    drift_analog_weights(analog, 3.15e7)
    with torch.no_grad():
        y_d, y_a = digital(x), analog(x)
    torch.testing.assert_close(y_a, y_d, rtol=1e-5, atol=1e-5)
    assert torch.equal(y_a.argmax(-1), y_d.argmax(-1))  # same accuracy, exactly


def test_conv2d_conversion() -> None:
    torch.manual_seed(0)
    digital = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.ReLU()).eval()
    analog = convert_to_analog(digital, quiet_perfect(), seed=0).eval()
    assert isinstance(analog[0], AnalogConv2d)
    program_analog_weights(analog)
    drift_analog_weights(analog, 60.0)
    x = torch.randn(2, 2, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(analog(x), digital(x), rtol=1e-5, atol=1e-5)


def test_unsupported_conv_leaves_model_untouched() -> None:
    digital = nn.Sequential(nn.Linear(4, 4), nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="groups"):
        convert_to_analog(digital, inplace=True)
    assert isinstance(digital[0], nn.Linear)


def test_exclude_inplace_and_seed() -> None:
    digital = mlp()
    analog = convert_to_analog(digital, exclude_modules=["2"], inplace=True, seed=3)
    assert analog is digital
    assert isinstance(analog[0], AnalogLinear) and isinstance(analog[2], nn.Linear)
    a = convert_to_analog(mlp(), seed=7)
    b = convert_to_analog(mlp(), seed=7)
    for m in (a, b):
        program_analog_weights(m)
    for ta, tb in zip(analog_tiles(a), analog_tiles(b), strict=True):
        assert torch.equal(ta.analog_core.weight, tb.analog_core.weight)


def test_program_and_drift_helpers_validate() -> None:
    with pytest.raises(TileError, match="no analog tile"):
        program_analog_weights(mlp())
    analog = convert_to_analog(mlp(), seed=0)
    with pytest.raises(TypeError, match="noise_model"):
        program_analog_weights(analog, noise_model=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t_inference"):
        drift_analog_weights(analog, -5.0)
    assert not any(t.is_programmed() for t in inference_tiles(analog))
    with pytest.raises(TypeError, match="module"):
        convert_to_analog("model")  # type: ignore[arg-type]


def test_training_mode_is_kept() -> None:
    digital = mlp().train()
    digital[2].eval()
    analog = convert_to_analog(digital, seed=0)
    assert analog[0].training and not analog[2].training
