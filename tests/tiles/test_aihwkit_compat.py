"""aihwkit's conventions on the tile: the input-range hook, hidden parameters, the backward
pass without bound management, the layer's ``analog_module``."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from anatile.config import (
    InputRangeParameter,
    IOParameters,
    PrePostProcessingParameter,
    RPUConfig,
)
from anatile.exceptions import TileError
from anatile.nn import AnalogLinear
from anatile.tiles import TileWithPeriphery


def test_pre_forward_clips_then_divides_by_the_input_range() -> None:
    cfg = RPUConfig(pre_post=PrePostProcessingParameter(
        input_range=InputRangeParameter(enable=True, init_value=3.0)))
    tile = TileWithPeriphery(2, 3, cfg, seed=0)
    x = torch.tensor([[5.0, -4.0, 1.5]])
    # aihwkit: clamp at ±3, then divide by 3 (a 5.0 is seen as 1.0, not 5/3)
    torch.testing.assert_close(tile.pre_forward(x, -1), torch.tensor([[1.0, -1.0, 0.5]]))


def test_hidden_parameters_round_trip_and_validation() -> None:
    tile = TileWithPeriphery(3, 4, seed=0)
    hidden = tile.get_hidden_parameters()
    assert isinstance(hidden, OrderedDict)
    assert list(hidden) == ["max_bound", "min_bound", "dwmin_up", "dwmin_down"]
    changed = OrderedDict((k, v * 0.5) for k, v in hidden.items())
    tile.set_hidden_parameters(changed)
    for k, v in tile.get_hidden_parameters().items():
        assert torch.equal(v, changed[k])
    before = {k: v.clone() for k, v in tile.get_hidden_parameters().items()}
    with pytest.raises(TileError, match="names"):
        tile.set_hidden_parameters(OrderedDict(list(changed.items())[:2]))
    bad = OrderedDict(changed)
    bad["dwmin_down"] = torch.ones(2, 2)
    with pytest.raises(ValueError, match="dwmin_down"):
        tile.set_hidden_parameters(bad)
    for k, v in tile.get_hidden_parameters().items():  # nothing half-applied
        assert torch.equal(v, before[k])


def test_exact_update_tiles_have_no_hidden_parameters() -> None:
    from anatile.config import InferenceRPUConfig
    from anatile.tiles import InferenceTile

    tile = InferenceTile(2, 2, InferenceRPUConfig(), seed=0)
    assert tile.get_hidden_parameters() == OrderedDict()
    tile.set_hidden_parameters(OrderedDict())


def test_backward_pass_has_no_bound_management() -> None:
    # aihwkit switches bound management off in the backward pass: large gradients clip
    cfg = RPUConfig()
    cfg.backward = IOParameters(out_noise=0.0)
    tile = TileWithPeriphery(64, 32, cfg, seed=0)
    tile.set_weights(torch.full((64, 32), 0.5))
    d = torch.ones(1, 64)
    dx = tile.backward(d)
    # 64 · 0.5 = 32 > out_bound 12: clipped at 12 (iterative BM would recover 32)
    torch.testing.assert_close(dx, torch.full((1, 32), 12.0))


def test_layer_analog_module_is_its_tile() -> None:
    layer = AnalogLinear(3, 2, seed=0)
    assert layer.analog_module is layer.analog_tile
