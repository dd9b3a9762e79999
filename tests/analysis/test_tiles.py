"""Per-tile summaries and the layer weight map (the numbers the ModelInspector shows)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from anatile.analysis import layer_weight_map, tile_summaries, tile_weight_error
from anatile.config import InferenceRPUConfig, RPUConfig
from anatile.nn import AnalogLinear, convert_to_analog
from anatile.tiles import TileWithPeriphery

pytestmark = pytest.mark.usefixtures("one_thread")


def test_layers_tiles_and_weight_error_definition() -> None:
    cfg = InferenceRPUConfig()
    cfg.mapping.max_input_size, cfg.mapping.max_output_size = 4, 3
    model = convert_to_analog(nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 2)), cfg, seed=0)
    model.append(TileWithPeriphery(2, 2, seed=0))
    layers = tile_summaries(model)
    assert [(ly.name, ly.grid_shape) for ly in layers] == [("0", (2, 2)), ("1", (1, 2)),
                                                         ("2", (1, 1))]
    assert all(s.weight_error == 0.0 for ly in layers[:2] for s in ly.tiles)  # not programmed
    assert math.isnan(layers[2].tiles[0].weight_error)  # a bare tile with no weights set
    model[0].program_weights()
    model[0].drift_weights(3600.0)
    for s in tile_summaries(model)[0].tiles:
        tile = s.tile
        assert s.alpha is not None and torch.equal(s.alpha, tile.alpha)
        torch.testing.assert_close(s.mapping_scales, tile.get_mapping_scales())
        ref = tile.reference_weight.double()  # type: ignore[union-attr]
        now = tile.analog_core.weight.double() * tile.alpha.double()
        expected = 100 * math.sqrt(float((now - ref).pow(2).mean())) / float(ref.abs().max())
        assert s.weight_error == pytest.approx(expected, rel=1e-9) and s.weight_error > 0
    with pytest.raises(TypeError, match="model"):
        tile_summaries("x")  # type: ignore[arg-type]


def test_layer_weight_map_assembles_blocks_and_bounds() -> None:
    cfg = RPUConfig()
    cfg.mapping.max_input_size, cfg.mapping.max_output_size = 4, 3
    layer = AnalogLinear(11, 7, rpu_config=cfg, seed=0)
    w = torch.randn(7, 11, generator=torch.Generator().manual_seed(0))
    layer.set_weights(w)
    wmap = layer_weight_map(layer)
    assert wmap.row_bounds == [3, 5] and wmap.col_bounds == [4, 8]
    torch.testing.assert_close(wmap.weight, w)
    assert float(wmap.error.max()) < 1e-4
    # corrupt one tile: the error shows up in its block only
    tile = layer.tile_array.tile(1, 2)
    with torch.no_grad():
        tile.analog_core.weight.mul_(0.5)
    wmap = layer_weight_map(layer)
    block = wmap.error[3:5, 8:11]
    assert float(block.min()) >= 0 and float(block.max()) > 1.0
    rest = wmap.error.clone()
    rest[3:5, 8:11] = 0
    assert float(rest.max()) < 1e-4
    assert tile_weight_error(tile) > 1.0
    with pytest.raises(TypeError, match="layer"):
        layer_weight_map(nn.Linear(2, 2))
