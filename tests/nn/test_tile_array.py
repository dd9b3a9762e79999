"""Layers larger than one crossbar: a grid of tiles, each with its own periphery."""

from __future__ import annotations

import copy
import io
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from anatile.config import ConstantStepDevice, InferenceRPUConfig, IOParameters, RPUConfig
from anatile.exceptions import ConfigError, TileError
from anatile.inference import PCMLikeNoiseModel
from anatile.nn import (
    AnalogConv2d,
    AnalogLinear,
    AnalogSGD,
    TileArray,
    analog_tiles,
    convert_to_analog,
    drift_analog_weights,
    program_analog_weights,
    split_sizes,
)
from anatile.tiles import InferenceTile
from tests.configs import exact_float_config, perfect_config

pytestmark = pytest.mark.usefixtures("one_thread")


def limited(cfg: RPUConfig, max_in: int, max_out: int) -> RPUConfig:
    cfg.mapping.max_input_size = max_in
    cfg.mapping.max_output_size = max_out
    return cfg


def quiet_inference(max_in: int = 0, max_out: int = 0, *, drift: float = 1.0
                    ) -> InferenceRPUConfig:
    """Exact IO, no programming or read noise: only the drift exponents are random."""
    noise = PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=drift)
    cfg = InferenceRPUConfig(forward=IOParameters(is_perfect=True), noise_model=noise)
    limited(cfg, max_in, max_out)
    return cfg


# ---------------------------------------------------------------------- split rule
@pytest.mark.parametrize("size,max_size,expected", [
    (1100, 512, [367, 367, 366]), (1024, 512, [512, 512]), (512, 512, [512]),
    (513, 512, [257, 256]), (7, 3, [3, 2, 2]), (5, 0, [5]), (3, 100, [3])])
def test_split_sizes_rule(size: int, max_size: int, expected: list[int]) -> None:
    parts = split_sizes(size, max_size)
    assert parts == expected
    assert sum(parts) == size and max(parts) - min(parts) <= 1
    if max_size:
        assert max(parts) <= max_size and len(parts) == math.ceil(size / max_size)


@pytest.mark.parametrize("field", ["max_input_size", "max_output_size"])
@pytest.mark.parametrize("value", [-1, 2.5, "512", True])
def test_bad_sizes_raise_naming_the_field(field: str, value: object) -> None:
    cfg = RPUConfig()
    setattr(cfg.mapping, field, value)
    with pytest.raises(ConfigError, match=field):
        AnalogLinear(8, 4, rpu_config=cfg)
    with pytest.raises(ConfigError, match=field):
        AnalogConv2d(2, 4, 3, rpu_config=cfg)
    digital = nn.Sequential(nn.Linear(8, 4))
    before = copy.deepcopy(digital.state_dict())
    with pytest.raises(ConfigError, match=field):
        convert_to_analog(digital, cfg, inplace=True)
    assert isinstance(digital[0], nn.Linear)
    for k, v in digital.state_dict().items():
        assert torch.equal(v, before[k])


def test_default_limits_split_large_layers_and_expose_placements() -> None:
    layer = AnalogLinear(1100, 600, rpu_config=RPUConfig(), seed=0)
    assert layer.tile_array.grid_shape == (2, 3)
    placed = layer.analog_tiles()
    assert [p.position for p in placed] == [(r, c) for r in range(2) for c in range(3)]
    for p in placed:
        assert (p.tile.out_size, p.tile.in_size) == p.shape
        assert p.tile.in_size <= 512 and p.tile.out_size <= 512
    assert placed[4].out_slice == slice(300, 600) and placed[4].in_slice == slice(367, 734)
    with pytest.raises(TileError, match="analog_tiles"):
        _ = layer.analog_tile
    assert AnalogLinear(512, 512, seed=0).analog_tile_count() == 1
    unlimited = limited(RPUConfig(), 0, 0)
    assert AnalogLinear(1100, 600, rpu_config=unlimited, seed=0).analog_tile_count() == 1


# ---------------------------------------------------------------------- exactness
@pytest.mark.parametrize("in_f,out_f,max_in,max_out", [
    (8, 6, 4, 3),     # the tile size divides both sizes: 2×2 tiles of 3×4
    (11, 7, 4, 3),    # it divides neither: in 4+4+3, out 3+2+2
    (11, 7, 0, 0)])   # one tile (reference of the rule)
def test_split_linear_equals_torch_linear_with_gradients(in_f: int, out_f: int, max_in: int,
                                                         max_out: int) -> None:
    g = torch.Generator().manual_seed(0)
    layer = AnalogLinear(in_f, out_f, rpu_config=limited(exact_float_config(), max_in, max_out),
                         seed=0)
    ref = nn.Linear(in_f, out_f)
    w, b = torch.randn(out_f, in_f, generator=g), torch.randn(out_f, generator=g)
    layer.set_weights(w, b)
    with torch.no_grad():
        ref.weight.copy_(w)
        ref.bias.copy_(b)
    w2, b2 = layer.get_weights()
    torch.testing.assert_close(w2, w)
    assert b2 is not None
    torch.testing.assert_close(b2, b)
    x = torch.randn(5, 3, in_f, generator=g, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = layer(x), ref(x_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    d = torch.randn_like(y)
    y.backward(d)
    y_ref.backward(d)
    assert x.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    # one SGD step through the tiles' own updates equals torch's SGD step
    AnalogSGD(layer.parameters(), lr=0.1).step()
    torch.optim.SGD(ref.parameters(), lr=0.1).step()
    w3, b3 = layer.get_weights()
    torch.testing.assert_close(w3, ref.weight.detach(), rtol=1e-5, atol=1e-5)
    assert b3 is not None
    torch.testing.assert_close(b3, ref.bias.detach(), rtol=1e-5, atol=1e-5)


def test_pulsed_update_reaches_every_tile() -> None:
    layer = AnalogLinear(10, 6, rpu_config=limited(RPUConfig(), 4, 3), seed=1)
    before = [p.tile.analog_core.weight.clone() for p in layer.analog_tiles()]
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    x = torch.randn(32, 10, generator=torch.Generator().manual_seed(2))
    layer(x).pow(2).sum().backward()
    opt.step()
    for p, w0 in zip(layer.analog_tiles(), before, strict=True):
        assert not torch.equal(p.tile.analog_core.weight, w0), p.position


@pytest.mark.parametrize("stride,padding,dilation,bias", [
    (1, 0, 1, True), (2, 1, 1, False), ((2, 1), (0, 1), (1, 2), True)])
def test_split_conv2d_equals_f_conv2d_with_gradients(stride, padding, dilation,  # type: ignore[no-untyped-def]
                                                     bias) -> None:
    g = torch.Generator().manual_seed(0)
    # in_size 3·3·3 = 27 → 10+9+8 ... with max 10: 9+9+9; out 5 with max 2: 2+2+1
    conv = AnalogConv2d(3, 5, 3, stride=stride, padding=padding, dilation=dilation, bias=bias,
                        rpu_config=limited(perfect_config(), 10, 2), seed=0)
    assert conv.tile_array.grid_shape == (3, 3)
    k = torch.randn(5, 3, 3, 3, generator=g)
    b = torch.randn(5, generator=g) if bias else None
    conv.set_weights(k, b)
    torch.testing.assert_close(conv.get_weights()[0], k)
    x = torch.randn(2, 3, 9, 8, generator=g, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y = conv(x)
    ref = F.conv2d(x_ref, k, b, stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)
    d = torch.randn_like(y)
    y.backward(d)
    ref.backward(d)
    assert x.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
    # another image size rebuilds every tile's index rows; unbatched input works
    x2 = torch.randn(3, 12, 10, generator=g)
    torch.testing.assert_close(conv(x2), F.conv2d(x2[None], k, b, stride=stride, padding=padding,
                                                  dilation=dilation)[0], rtol=1e-4, atol=1e-4)


def test_analog_bias_sits_on_grid_column_zero_within_the_tile_size() -> None:
    cfg = limited(perfect_config(), 4, 3)
    cfg.mapping.digital_bias = False
    layer = AnalogLinear(11, 7, rpu_config=cfg, seed=0)
    # 11 inputs + the bias column = 12 physical columns: 4 + 4 + 4
    assert layer.tile_array.in_sizes == [3, 4, 4]
    for p in layer.analog_tiles():
        assert p.tile.analog_bias == (p.col == 0)
        assert p.tile.analog_core.in_size <= 4
    g = torch.Generator().manual_seed(3)
    w, b = torch.randn(7, 11, generator=g), torch.randn(7, generator=g)
    layer.set_weights(w, b)
    x = torch.randn(4, 11, generator=g)
    torch.testing.assert_close(layer(x), F.linear(x, w, b), rtol=1e-5, atol=1e-5)
    w2, b2 = layer.get_weights()
    torch.testing.assert_close(w2, w)
    assert b2 is not None
    torch.testing.assert_close(b2, b)


# ---------------------------------------------------------------------- periphery per tile
@pytest.mark.parametrize("columnwise", [False, True])
def test_each_tile_scales_its_own_block(columnwise: bool) -> None:
    cfg = limited(perfect_config(), 4, 3)
    cfg.mapping.weight_scaling_omega = 0.5  # explicit: independent of the default
    cfg.mapping.weight_scaling_columnwise = columnwise
    layer = AnalogLinear(8, 6, rpu_config=cfg, seed=0)
    g = torch.Generator().manual_seed(4)
    w = torch.randn(6, 8, generator=g)
    w[:3, :4] *= 10.0  # one block much larger than the others
    layer.set_weights(w, None)
    for p in layer.analog_tiles():
        block = w[p.out_slice, p.in_slice]
        expected = (block.abs().amax(dim=1) if columnwise else block.abs().max().reshape(1)) / 0.5
        torch.testing.assert_close(p.tile.get_mapping_scales(), expected)
        normalized, _ = p.tile.get_weights(apply_weight_scaling=False)
        assert float(normalized.abs().max()) == pytest.approx(0.5, rel=1e-6)
    torch.testing.assert_close(layer.get_weights()[0], w, rtol=1e-6, atol=1e-6)


def test_each_tile_has_its_own_input_range_and_generator() -> None:
    cfg = limited(RPUConfig(), 4, 3)
    cfg.pre_post.input_range.enable = True
    layer = AnalogLinear(8, 6, rpu_config=cfg, seed=7)
    tiles = [p.tile for p in layer.analog_tiles()]
    assert len({id(t.input_range) for t in tiles}) == len(tiles)
    assert len({t.seed for t in tiles}) == len(tiles) and tiles[0].seed == 7
    layer.train()
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(5))
    x[:, 4:] *= 10.0  # grid column 1 sees larger inputs: its ranges learn larger values
    layer(x)
    r = {p.position: float(p.tile.input_range.detach()) for p in layer.analog_tiles()}
    assert r[(0, 1)] > r[(0, 0)] and r[(1, 1)] > r[(1, 0)]


def test_read_and_program_weights_assemble_the_full_matrix() -> None:
    layer = AnalogLinear(9, 5, rpu_config=limited(perfect_config(), 4, 3), seed=0)
    g = torch.Generator().manual_seed(6)
    w, b = torch.randn(5, 9, generator=g) * 0.3, torch.randn(5, generator=g)
    layer.set_weights(w, b)
    read, rb = layer.read_weights(apply_weight_scaling=True)
    torch.testing.assert_close(read, w, rtol=1e-4, atol=1e-4)
    assert rb is not None
    torch.testing.assert_close(rb, b)

    # closed-loop pulsed programming of every tile (noise-free ADC, wide device bounds)
    cfg = limited(RPUConfig(), 4, 3)
    cfg.forward.out_noise = 0.0
    cfg.mapping.weight_scaling_omega = 1.0
    cfg.device = ConstantStepDevice(w_max=1.5, w_min=-1.5, w_max_dtod=0.05, w_min_dtod=0.05)
    layer = AnalogLinear(8, 6, rpu_config=cfg, seed=0)
    w = torch.randn(6, 8, generator=g)
    layer.set_weights(w)
    layer.program_weights(tolerance=0.02, max_iter=400)
    for p in layer.analog_tiles():
        report = p.tile.last_programming
        assert report is not None and report.converged, (p.position, report)
    err = (layer.get_weights()[0] - w).abs().mean() / w.abs().max()
    assert float(err) < 0.03


# ---------------------------------------------------------------------- inference
def test_program_and_drift_reach_every_tile_with_own_alpha() -> None:
    digital = nn.Sequential(nn.Linear(20, 12), nn.ReLU(), nn.Linear(12, 3))
    cfg = InferenceRPUConfig()
    limited(cfg, 8, 5)
    analog = convert_to_analog(digital, cfg, seed=0).eval()
    assert analog[0].tile_array.grid_shape == (3, 3)
    program_analog_weights(analog)
    assert all(t.is_programmed() for t in analog_tiles(analog))
    drift_analog_weights(analog, 86400.0)
    alphas = [float(p.tile.alpha) for p in analog[0].analog_tiles()]
    assert all(a > 1.0 for a in alphas) and len(set(alphas)) == len(alphas)
    assert analog(torch.randn(4, 20)).shape == (4, 3)
    with pytest.raises(TileError, match="InferenceTile"):
        AnalogLinear(8, 4, rpu_config=limited(RPUConfig(), 4, 2)).drift_weights(1.0)


def test_per_tile_drift_compensation_follows_the_formula() -> None:
    """Global compensation: ``alpha = mean|W_prog| / mean|W_t|`` over the weights a tile
    holds. A layer on two tiles gets one alpha per tile from its own block; one tile over the
    whole layer gets ``1/alpha = Σ_k S_t,k / Σ_k S_0,k`` (sums of |W| per block): the
    per-tile ratios combined harmonically, weighted by programmed magnitude."""
    out_f, in_f, t = 128, 64, 86400.0
    g = torch.Generator().manual_seed(11)
    sign = torch.sign(torch.randn(out_f, in_f, generator=g))
    w = torch.zeros(out_f, in_f)
    # block 0: 3 % of the weights at max|W| (g_max, slow drift), the rest 0;
    # block 1: every weight at 0.03·max|W| (low g, fast drift) and one at max|W|, so both
    # blocks map max|W| to g_max as the single tile does. Equal programmed magnitudes.
    w[:64] = (torch.rand(64, in_f, generator=g) < 0.03).float()
    w[64:] = 0.03
    w[64, 0] = 1.0
    w = w * sign
    split = AnalogLinear(in_f, out_f, bias=False, rpu_config=quiet_inference(0, 64), seed=1)
    single = AnalogLinear(in_f, out_f, bias=False, rpu_config=quiet_inference(0, 0), seed=2)
    assert split.analog_tile_count() == 2 and single.analog_tile_count() == 1
    for layer in (split, single):
        layer.set_weights(w)
        layer.program_weights()
        layer.drift_weights(t)

    # 1. each tile's alpha comes from its own block (exact IO: an identity)
    s0, st, var_sum = 0.0, 0.0, 0.0
    for p in split.analog_tiles():
        tile = p.tile
        assert isinstance(tile, InferenceTile) and tile.programmed_weight is not None
        prog = tile.programmed_weight.double().abs()
        now = tile.analog_core.weight.double().abs()
        assert float(tile.alpha) == pytest.approx(float(prog.sum() / now.sum()), rel=1e-5)
        s0, st = s0 + float(prog.sum()), st + float(now.sum())
        # conditional variance given the weights: ν is drawn per device, its statistics
        # depend on the conductance, i.e. on |W|: group the devices by |W_prog|
        for value in prog.unique():
            group = now[prog == value]
            if group.numel() > 1:
                var_sum += float(group.var()) * group.numel()
    a0, a1 = (float(p.tile.alpha) for p in split.analog_tiles())
    assert a1 > a0 * 1.2  # the low-conductance block drifts faster

    # 2. the single tile's alpha is that combination, within the sampling error of its own,
    #    independent ν draws (two independent sums of per-device terms: variance 2·Σ var)
    sigma = math.sqrt(2 * var_sum) / s0
    alpha_single = float(single.analog_tile.alpha)
    assert abs(1 / alpha_single - st / s0) < 5 * sigma
    # ... and it lies between the per-tile alphas, far from both
    assert 1 / a1 + 10 * sigma < 1 / alpha_single < 1 / a0 - 10 * sigma


def test_linear_and_1x1_conv_match_under_noise_with_the_same_seeds() -> None:
    """aihwkit#627: mapped linear and convolution layers disagree. Here a 1×1 convolution
    is the linear layer applied at each pixel, on the same tiles with the same draws."""
    cfg = InferenceRPUConfig()  # all default noise sources on
    limited(cfg, 4, 3)
    lin = AnalogLinear(10, 7, rpu_config=cfg, seed=3)
    conv = AnalogConv2d(10, 7, 1, rpu_config=cfg, seed=3)
    w, b = lin.get_weights()
    torch.testing.assert_close(conv.get_weights()[0].reshape(7, 10), w, rtol=0, atol=0)
    assert b is not None
    x = torch.randn(2, 10, 5, 4, generator=torch.Generator().manual_seed(9))
    rows = x.permute(0, 2, 3, 1).reshape(-1, 10)

    def as_image(y: torch.Tensor) -> torch.Tensor:
        return y.reshape(2, 5, 4, 7).permute(0, 3, 1, 2)

    lin.train()
    conv.train()
    torch.testing.assert_close(conv(x), as_image(lin(rows)), rtol=1e-6, atol=1e-6)
    for layer in (lin, conv):
        layer.eval()
        layer.program_weights()
        layer.drift_weights(3600.0)
    torch.testing.assert_close(conv(x), as_image(lin(rows)), rtol=1e-6, atol=1e-6)
    alphas = [[float(p.tile.alpha) for p in m.analog_tiles()] for m in (lin, conv)]
    assert alphas[0] == alphas[1]
    # and it is noisy: the same input twice gives another output
    assert not torch.equal(lin(rows), lin(rows))


# ---------------------------------------------------------------------- persistence
def _programmed_split_layer(seed: int) -> AnalogLinear:
    cfg = InferenceRPUConfig()
    limited(cfg, 4, 3)
    layer = AnalogLinear(10, 7, rpu_config=cfg, seed=seed).eval()
    layer.program_weights()
    layer.drift_weights(1000.0)
    return layer


def test_state_dict_round_trip_is_exact() -> None:
    layer = _programmed_split_layer(0)
    buf = io.BytesIO()
    torch.save(layer.state_dict(), buf)
    buf.seek(0)
    other = _programmed_split_layer(1)
    other.load_state_dict(torch.load(buf, weights_only=False))
    sd_a, sd_b = layer.state_dict(), other.state_dict()
    assert sd_a.keys() == sd_b.keys()
    for k, v in sd_a.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, sd_b[k]), k
    for pa, pb in zip(layer.analog_tiles(), other.analog_tiles(), strict=True):
        assert torch.equal(pa.tile.alpha, pb.tile.alpha)
        assert pa.tile.t_inference == pb.tile.t_inference
    x = torch.randn(3, 10)
    assert torch.equal(layer(x), other(x))  # the generators' states came along


def test_loading_into_another_split_raises_clearly() -> None:
    layer = _programmed_split_layer(0)
    cfg = InferenceRPUConfig()
    limited(cfg, 5, 3)
    other = AnalogLinear(10, 7, rpu_config=cfg, seed=0)
    before = copy.deepcopy(other.state_dict())
    with pytest.raises(TileError, match="split into"):
        other.load_state_dict(layer.state_dict())
    for k, v in other.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, before[k]), k
    with pytest.raises(TileError, match="max_input_size"):
        nn.Sequential(other).load_state_dict(nn.Sequential(layer).state_dict())


@pytest.mark.parametrize("clone", [copy.deepcopy,
                                   lambda m: pickle.loads(pickle.dumps(m))])
def test_deepcopy_and_pickle_keep_every_tile(clone) -> None:  # type: ignore[no-untyped-def]
    layer = _programmed_split_layer(0)
    twin = clone(layer)
    assert twin.tile_array.grid_shape == layer.tile_array.grid_shape
    x = torch.randn(3, 10)
    assert torch.equal(layer(x), twin(x))
    for p in twin.analog_tiles():
        assert p.tile.analog_ctx.analog_tile is p.tile


def test_tile_positions_and_indexed_errors_leave_the_array_unchanged() -> None:
    array = TileArray(7, 11, limited(RPUConfig(), 4, 3), seed=0)
    assert array.grid_shape == (3, 3) and array.tile(2, 2).in_size == 3
    with pytest.raises(IndexError, match="3×3"):
        array.tile(3, 0)
    with pytest.raises(ValueError, match="indices"):
        array.set_indexed(torch.zeros(10, 4, dtype=torch.int64), [1, 2, 2, 2, 2])
    with pytest.raises(ValueError, match="image_sizes"):
        array.set_indexed(torch.zeros(11, 4, dtype=torch.int64), [1, 2, 2, 2])
    assert not any(p.tile.is_indexed() for p in array.placements())


def test_wpo_test_layer_stays_one_tile() -> None:
    from anatile.wpo.loss import LossContext, loss_rpu_config, loss_weights

    cfg = InferenceRPUConfig()
    limited(cfg, 512, 512)
    w = torch.randn(20, 520, generator=torch.Generator().manual_seed(0))
    ctx = LossContext(space=None, rpu_config=cfg, t_steps=(1.0,), test_weights=w,
                      max_abs_weight_unitless=float(w.abs().max()), get_baseline=True)
    # a test layer wider than max_input_size is still one tile (the seed page's test layer)
    assert math.isfinite(loss_rpu_config(ctx))
    assert cfg.mapping.max_input_size == 512  # the caller's config is untouched
    with pytest.raises(TypeError, match="exactly one InferenceTile"):
        loss_weights(AnalogLinear(520, 20, bias=False, rpu_config=cfg, seed=0), [1.0], w,
                     float(w.abs().max()), 1.0, 0.0)
