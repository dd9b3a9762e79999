"""The fused eval forward of a tile array: the tiles' own forwards, in one sweep."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from anatile.config import InferenceRPUConfig, IOParameters, RPUConfig
from anatile.config.parameters import BoundManagementType, NoiseManagementType
from anatile.inference import PerColumnDriftCompensation
from anatile.nn import AnalogConv2d, AnalogLinear
from anatile.nn.fused_forward import fusable
from anatile.nn.layer import AnalogLayerBase
from anatile.tiles import TileWithPeriphery

pytestmark = pytest.mark.usefixtures("one_thread")


def limited(cfg: RPUConfig, max_in: int = 4, max_out: int = 3) -> RPUConfig:
    cfg.mapping.max_input_size = max_in
    cfg.mapping.max_output_size = max_out
    return cfg


def _default() -> RPUConfig:
    return limited(RPUConfig())


def _analog_bias() -> RPUConfig:
    cfg = limited(RPUConfig())
    cfg.mapping.digital_bias = False
    return cfg


def _scaled() -> RPUConfig:
    cfg = limited(RPUConfig())
    cfg.mapping.weight_scaling_omega = 0.8
    cfg.mapping.weight_scaling_columnwise = True
    cfg.mapping.learn_out_scaling = True
    cfg.mapping.out_scaling_columnwise = True
    return cfg


def _random_dac_and_adc() -> RPUConfig:
    # input noise and stochastic rounding: each tile's DAC draws, so nothing is shared
    cfg = limited(RPUConfig())
    cfg.forward = IOParameters(inp_noise=0.05, inp_sto_round=True, out_sto_round=True,
                               w_noise=0.02)
    return cfg


def _clipping() -> RPUConfig:
    # a small ADC range: many rows clip, iterative bound management redoes them per tile
    cfg = limited(RPUConfig())
    cfg.forward = IOParameters(out_bound=0.5)
    return cfg


def _clipping_without_bm() -> RPUConfig:
    cfg = limited(RPUConfig())
    cfg.forward = IOParameters(out_bound=0.5, bound_management=BoundManagementType.NONE,
                               noise_management=NoiseManagementType.MAX)
    return cfg


def _perfect() -> RPUConfig:
    cfg = limited(RPUConfig())
    cfg.forward = IOParameters(is_perfect=True)
    return cfg


def _inference() -> RPUConfig:
    return limited(InferenceRPUConfig())


def _inference_per_column() -> RPUConfig:
    return limited(InferenceRPUConfig(drift_compensation=PerColumnDriftCompensation()))


CONFIGS: dict[str, Callable[[], RPUConfig]] = {
    "default": _default, "analog bias": _analog_bias, "scaled": _scaled,
    "random DAC and ADC": _random_dac_and_adc, "clipping": _clipping,
    "clipping without bound management": _clipping_without_bm, "perfect": _perfect,
    "inference": _inference, "inference per column": _inference_per_column,
}


def _prepared(layer: AnalogLayerBase) -> tuple[AnalogLayerBase, AnalogLayerBase]:
    """The layer (drifted, for inference tiles) and a twin that runs each tile's forward."""
    g = torch.Generator().manual_seed(1)
    for p in layer.analog_tiles():
        if p.tile.learned_out_scales is not None:
            p.tile.set_learned_out_scales(0.5 + torch.rand(p.shape[0], generator=g))
    if isinstance(layer.tile_array.tile(0, 0).rpu_config, InferenceRPUConfig):
        layer.program_weights()
        layer.drift_weights(3600.0)
    layer.eval()
    per_tile = copy.deepcopy(layer)
    per_tile.tile_array.fused = False
    return layer, per_tile


def _assert_same(fused: torch.Tensor, per_tile: torch.Tensor) -> None:
    # the same draws and ADC levels; only the order of the digital multiply-adds differs
    scale = float(per_tile.nan_to_num(0.0, 0.0, 0.0).abs().max())
    torch.testing.assert_close(fused, per_tile, rtol=1e-5, atol=1e-5 * scale, equal_nan=True)


def _generators_equal(a: AnalogLayerBase, b: AnalogLayerBase) -> bool:
    return all(torch.equal(p.tile.generator.get_state(), q.tile.generator.get_state())
               for p, q in zip(a.analog_tiles(), b.analog_tiles(), strict=True))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fused_linear_equals_the_tiles_own_forwards(name: str) -> None:
    layer, per_tile = _prepared(AnalogLinear(11, 7, rpu_config=CONFIGS[name](), seed=3))
    assert layer.tile_array.grid_shape == (3, 3)
    x = torch.randn(40, 11, generator=torch.Generator().manual_seed(2)) * 2.0
    x[3] = 0.0  # an undriven row: output exactly the bias
    x[5, 2] = float("inf")  # the DAC saturates
    x[6, 9] = float("nan")  # a NaN row stays NaN
    with torch.no_grad():
        assert fusable(list(layer.tile_array.tiles))
        for _ in range(2):  # the second call continues each tile's own random stream
            fused, ref = layer(x), per_tile(x)
            _assert_same(fused, ref)
    assert _generators_equal(layer, per_tile)
    assert torch.isnan(fused[6]).all() and not torch.isnan(fused[:6]).any()
    bias = layer.get_weights()[1]
    if name not in ("perfect", "analog bias", "random DAC and ADC"):
        assert bias is not None
        torch.testing.assert_close(fused[3], bias, rtol=0, atol=0)
    if name != "perfect":  # noisy: the same input twice gives other outputs
        with torch.no_grad():
            assert not torch.equal(layer(x[:3]), layer(x[:3]))


def test_fused_path_really_clips_and_redoes_rows() -> None:
    """The clipping configuration is not vacuous: some tile outputs exceed the ADC bound."""
    layer, _ = _prepared(AnalogLinear(11, 7, rpu_config=_clipping(), seed=3))
    x = torch.randn(40, 11, generator=torch.Generator().manual_seed(2)) * 2.0
    tile = layer.tile_array.tile(0, 0)
    rows = x[:, :4]
    y = rows / rows.abs().amax(dim=1, keepdim=True) @ tile.analog_core.weight.T
    assert float(y.abs().max()) > 0.5


def test_fused_conv_equals_the_tiles_own_forwards() -> None:
    cfg = limited(InferenceRPUConfig(), 10, 3)
    layer, per_tile = _prepared(AnalogConv2d(4, 7, 3, padding=1, stride=(1, 2), rpu_config=cfg,
                                             seed=5))
    assert layer.tile_array.grid_shape == (3, 4)
    x = torch.randn(2, 4, 6, 7, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        for _ in range(2):
            _assert_same(layer(x), per_tile(x))
    assert _generators_equal(layer, per_tile)


def test_fused_linear_and_1x1_conv_match_under_noise() -> None:
    cfg = limited(InferenceRPUConfig())
    lin, _ = _prepared(AnalogLinear(10, 7, rpu_config=cfg, seed=3))
    conv, _ = _prepared(AnalogConv2d(10, 7, 1, rpu_config=cfg, seed=3))
    x = torch.randn(2, 10, 5, 4, generator=torch.Generator().manual_seed(9))
    rows = x.permute(0, 2, 3, 1).reshape(-1, 10)
    with torch.no_grad():
        y = lin(rows).reshape(2, 5, 4, 7).permute(0, 3, 1, 2)
        torch.testing.assert_close(conv(x), y, rtol=1e-6, atol=1e-6)


def test_float64_input_and_leading_dims() -> None:
    layer, per_tile = _prepared(AnalogLinear(11, 7, rpu_config=_default(), seed=3))
    x = torch.randn(2, 3, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fused = layer(x)
        assert fused.dtype == torch.float64 and fused.shape == (2, 3, 7)
        _assert_same(fused, per_tile(x))


def test_bad_input_raises_and_leaves_the_tiles_unchanged() -> None:
    layer, _ = _prepared(AnalogLinear(11, 7, rpu_config=_default(), seed=3))
    before = copy.deepcopy(layer)
    with torch.no_grad():
        with pytest.raises(ValueError, match=r"x_input: expected shape \[\.\.\., 11\]"):
            layer(torch.randn(4, 10))
        with pytest.raises(TypeError, match="x_input"):
            layer(torch.ones(4, 11, dtype=torch.int64))
        layer.train()
        with pytest.raises(ValueError, match="x_input"):  # training mode refuses NaN
            layer(torch.full((4, 11), float("nan")))
    assert _generators_equal(layer, before)
    for k, v in layer.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, before.state_dict()[k]), k


class _ShiftedTile(TileWithPeriphery):
    def post_forward(self, x_output: torch.Tensor, dim: int, is_test: bool = False,
                     ctx: object = None) -> torch.Tensor:
        return super().post_forward(x_output, dim, is_test, ctx) + 1.0


def test_what_the_sweep_cannot_reproduce_runs_each_tile() -> None:
    layer, _ = _prepared(AnalogLinear(11, 7, rpu_config=_default(), seed=3))
    tiles = list(layer.tile_array.tiles)
    with torch.no_grad():
        assert fusable(tiles)
    assert not fusable(tiles)  # autograd on: each tile's autograd function

    # a forward hook on one tile sees its input (the analysis tools record tiles so)
    seen: list[torch.Tensor] = []
    handle = tiles[4].register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    with torch.no_grad():
        assert not fusable(tiles)
        layer(torch.randn(5, 11))
    handle.remove()
    assert len(seen) == 1 and seen[0].shape == (5, 4)

    with torch.no_grad():
        other = copy.deepcopy(layer)
        other.tile_array.tile(1, 1).rpu_config.forward.out_noise = 0.0  # differs from the rest
        assert not fusable(list(other.tile_array.tiles))
        ranged = _default()
        ranged.pre_post.input_range.enable = True
        assert not fusable(list(AnalogLinear(11, 7, rpu_config=ranged).eval().tile_array.tiles))
        tiles[0].__class__ = _ShiftedTile  # a subclass may change any hook
        try:
            assert not fusable(tiles)
        finally:
            tiles[0].__class__ = TileWithPeriphery
