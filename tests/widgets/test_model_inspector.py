"""ModelInspector: a dropdown of a model's analog layers, each with its TileInspector."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from anatile.config import InferenceRPUConfig
from anatile.nn import AnalogLinear, convert_to_analog
from anatile.widgets import ModelInspector, TileInspector


def _model() -> nn.Module:
    return nn.Sequential(AnalogLinear(8, 6, seed=0), nn.ReLU(), AnalogLinear(6, 3, seed=1))


def test_dropdown_lists_the_analog_layers_and_switches_inspectors() -> None:
    model = _model()
    mi = ModelInspector(model)
    assert mi.errors == []
    assert [n.split(" ")[0] for n in mi.layer_names] == ["0", "2"]
    assert "AnalogLinear" in mi.layer_names[0] and "6×8" in mi.layer_names[0]
    first = mi.inspector
    assert isinstance(first, TileInspector) and first.tile is model[0].tile
    assert mi.container.children == (first,)

    mi.layer.value = mi.layer_names[1]  # the user picks the second layer
    second = mi.inspector
    assert second.tile is model[2].tile and mi.container.children == (second,)
    second.read_button.click()
    assert second.read_weight is not None and second.read_weight.shape == (3, 6)

    mi.layer.value = mi.layer_names[0]  # switching back keeps the first inspector
    assert mi.inspector is first


def test_converted_inference_model_gets_the_drift_panel() -> None:
    torch.manual_seed(0)
    model = convert_to_analog(nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2)),
                              InferenceRPUConfig())
    mi = ModelInspector(model)
    assert len(mi.layer_names) == 2
    assert mi.inspector.extra is not None  # InferenceTile → conductances + drift slider
    assert mi._repr_png_().startswith(b"\x89PNG")


def test_bad_models() -> None:
    with pytest.raises(TypeError, match="model"):
        ModelInspector("not a model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="analog"):
        ModelInspector(nn.Linear(2, 2))
