"""TileWithPeriphery: weights, scales, learning rate, bias, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from anatile.config import MappingParameter, RPUConfig
from anatile.exceptions import ConfigError
from anatile.tiles import TileWithPeriphery


def _state(tile: TileWithPeriphery) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in tile.state_dict().items() if isinstance(v, torch.Tensor)}


def _assert_same_state(tile: TileWithPeriphery, before: dict[str, torch.Tensor]) -> None:
    after = _state(tile)
    assert after.keys() == before.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k


@settings(max_examples=40, deadline=None)
@given(
    out_size=st.integers(1, 9),
    in_size=st.integers(1, 9),
    omega=st.sampled_from([0.0, 0.3, 1.0, 2.5]),
    columnwise=st.booleans(),
    digital_bias=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_get_weights_inverts_set_weights(out_size: int, in_size: int, omega: float,
                                         columnwise: bool, digital_bias: bool,
                                         seed: int) -> None:
    cfg = RPUConfig(mapping=MappingParameter(weight_scaling_omega=omega,
                                             weight_scaling_columnwise=columnwise,
                                             digital_bias=digital_bias))
    tile = TileWithPeriphery(out_size, in_size, cfg, bias=True, seed=1)
    g = torch.Generator().manual_seed(seed)
    w, b = torch.randn(out_size, in_size, generator=g), torch.randn(out_size, generator=g)
    tile.set_weights(w, b)
    w2, b2 = tile.get_weights()
    assert torch.allclose(w2, w, rtol=1e-5, atol=1e-6)
    assert b2 is not None and torch.allclose(b2, b, rtol=1e-5, atol=1e-6)
    # the array holds W / alpha: max |array| is omega (per row when column-wise)
    arr, _ = tile.get_weights(apply_weight_scaling=False)
    combined = torch.cat([arr, tile.analog_core.weight[:, -1:]], 1) if tile.analog_bias else arr
    if omega > 0:
        peak = combined.abs().amax(dim=1) if columnwise else combined.abs().amax().reshape(1)
        assert torch.allclose(peak, torch.full_like(peak, omega), rtol=1e-5)
    # the unscaled set/get round trip
    tile.set_weights(w, b, apply_weight_scaling=False)
    w3, _ = tile.get_weights(apply_weight_scaling=False)
    assert torch.allclose(w3, w)


def test_get_weights_returns_cpu_detached_copies() -> None:
    tile = TileWithPeriphery(2, 3, seed=0)
    tile.set_weights(torch.ones(2, 3, requires_grad=True))
    w, b = tile.get_weights()
    assert b is None and not w.requires_grad and w.device.type == "cpu"
    w.zero_()
    assert float(tile.get_weights()[0].abs().sum()) == 6.0


def test_layer_and_column_wise_mapping_scales() -> None:
    w = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    layer = TileWithPeriphery(2, 2, RPUConfig(mapping=MappingParameter(weight_scaling_omega=0.5)))
    layer.set_weights(w)
    assert torch.equal(layer.get_mapping_scales(), torch.tensor([4.0]))
    col = TileWithPeriphery(2, 2, RPUConfig(mapping=MappingParameter(
        weight_scaling_omega=0.5, weight_scaling_columnwise=True)))
    col.set_weights(w)
    assert torch.equal(col.get_mapping_scales(), torch.tensor([4.0, 1.0]))
    assert torch.equal(col.get_weights(apply_weight_scaling=False)[0],
                       torch.tensor([[0.25, -0.5], [0.5, 0.25]]))


def test_apply_weight_scaling_returns_scaled_weights_and_sets_scales() -> None:
    tile = TileWithPeriphery(2, 2)
    out = tile.apply_weight_scaling(torch.tensor([[2.0, 1.0], [0.0, -4.0]]), 2.0)
    assert torch.equal(tile.get_mapping_scales(), torch.tensor([2.0]))
    assert torch.equal(out, torch.tensor([[1.0, 0.5], [0.0, -2.0]]))


def test_scales_set_get_and_learned_out_scales() -> None:
    cfg = RPUConfig(mapping=MappingParameter(learn_out_scaling=True, out_scaling_columnwise=True))
    tile = TileWithPeriphery(3, 2, cfg)
    los = tile.get_learned_out_scales()
    assert isinstance(los, torch.nn.Parameter) and los.shape == (3,)
    tile.set_learned_out_scales(torch.tensor([1.0, 2.0, 3.0]))
    tile.set_mapping_scales(2.0)
    assert torch.equal(tile.get_scales(), torch.tensor([2.0, 4.0, 6.0]))
    tile.set_scales(torch.tensor([5.0]))
    assert torch.equal(tile.get_mapping_scales(), torch.tensor([5.0]))
    assert torch.equal(tile.get_learned_out_scales().detach(), torch.ones(3))
    tile.set_mapping_scales(None)
    assert torch.equal(tile.get_scales(), torch.ones(3))
    # learned out scales are trainable and act at the output
    tile.set_weights(torch.ones(3, 2) * 0.1)
    tile.forward(torch.ones(1, 2)).sum().backward()
    assert los.grad is not None
    plain = TileWithPeriphery(3, 2)
    assert plain.get_learned_out_scales() is None
    plain.set_learned_out_scales(3.0)  # no-op
    assert torch.equal(plain.apply_out_scaling(torch.ones(2, 3)), torch.ones(2, 3))
    y = tile.apply_out_scaling(torch.ones(2, 3), (1, 3))
    assert y.shape == (2, 3)


def test_learning_rate_and_compensation() -> None:
    tile = TileWithPeriphery(2, 2)
    tile.set_learning_rate(0.3)
    assert tile.get_learning_rate() == pytest.approx(0.3)
    tile.set_learning_rate(None)
    assert tile.get_learning_rate() == pytest.approx(0.3)
    cfg = RPUConfig(mapping=MappingParameter(weight_scaling_lr_compensation=True,
                                             weight_scaling_omega=1.0))
    comp = TileWithPeriphery(2, 2, cfg)
    comp.set_weights(torch.tensor([[4.0, 0.0], [0.0, 1.0]]))
    comp.set_learning_rate(0.2)
    assert comp.get_learning_rate() == pytest.approx(0.2)
    assert comp._learning_rate == pytest.approx(0.2 / 4.0)  # stored lr·(1/mean scale)
    with pytest.raises(ValueError, match="learning_rate"):
        comp.set_learning_rate(-1.0)


def test_remap_weights_keeps_logical_weights() -> None:
    tile = TileWithPeriphery(2, 3, RPUConfig(mapping=MappingParameter(weight_scaling_omega=0.0)))
    w = torch.tensor([[0.5, -2.0, 1.0], [0.1, 0.2, 0.3]])
    tile.set_weights(w)
    assert torch.equal(tile.get_mapping_scales(), torch.ones(1))
    tile.remap_weights(0.5)
    assert torch.allclose(tile.get_weights()[0], w)
    assert torch.allclose(tile.get_mapping_scales(), torch.tensor([4.0]))
    assert float(tile.get_weights(apply_weight_scaling=False)[0].abs().max()) == pytest.approx(0.5)


def test_analog_bias_column() -> None:
    cfg = RPUConfig(mapping=MappingParameter(digital_bias=False))
    cfg.forward.is_perfect = True
    tile = TileWithPeriphery(2, 3, cfg, bias=True)
    assert tile.analog_bias and not tile.digital_bias and tile.bias is None
    assert tile.analog_core.weight.shape == (2, 4)
    w, b = torch.randn(2, 3), torch.randn(2)
    tile.set_weights(w, b)
    x = torch.randn(5, 3)
    assert torch.allclose(tile(x), x @ w.T + b, atol=1e-5)
    w2, b2 = tile.get_weights()
    assert torch.allclose(w2, w) and b2 is not None and torch.allclose(b2, b)


@pytest.mark.parametrize(
    "call,exc,name",
    [
        (lambda t: t.set_weights(torch.ones(3, 3)), ValueError, "weight"),
        (lambda t: t.set_weights(torch.ones(2, 3, dtype=torch.int64)), TypeError, "weight"),
        (lambda t: t.set_weights([[1.0] * 3] * 2), TypeError, "weight"),
        (lambda t: t.set_weights(torch.full((2, 3), float("nan"))), ValueError, "weight"),
        (lambda t: t.set_weights(torch.full((2, 3), float("inf"))), ValueError, "weight"),
        (lambda t: t.set_weights(torch.ones(2, 3), torch.ones(3)), ValueError, "bias"),
        (lambda t: t.set_weights(torch.ones(2, 3), weight_scaling_omega=-1.0), ValueError,
         "weight_scaling_omega"),
        (lambda t: t.set_mapping_scales(torch.ones(5)), ValueError, "mapping_scales"),
        (lambda t: t.set_mapping_scales(torch.zeros(1)), ValueError, "mapping_scales"),
        (lambda t: t.set_scales(torch.tensor([float("nan")])), ValueError, "scales"),
        (lambda t: t.joint_forward(torch.ones(4, 4)), ValueError, "x_input"),
        (lambda t: t.joint_forward(torch.ones(4, 3, dtype=torch.int32)), TypeError, "x_input"),
        (lambda t: t.backward(torch.ones(4, 3)), ValueError, "d_input"),
        (lambda t: t.update(torch.ones(4, 3), torch.ones(5, 2)), ValueError, "batch"),
        (lambda t: t.set_learning_rate("fast"), TypeError, "learning_rate"),
        (lambda t: t.read_weights(x_values=torch.ones(4, 2)), ValueError, "x_values"),
        (lambda t: t.read_weights(over_sampling=0), ValueError, "over_sampling"),
        (lambda t: t.program_weights(learning_rate=0.0), ValueError, "learning_rate"),
        (lambda t: t.program_weights(w_init=torch.ones(3, 3)), ValueError, "w_init"),
        (lambda t: t.program_weights(x_values=torch.ones(2, 7)), ValueError, "x_values"),
        (lambda t: t.program_weights(max_iter=0), ValueError, "max_iter"),
        (lambda t: t.set_indexed(torch.zeros(3, 4, dtype=torch.int64), [1, 2, 2, 2]),
         ValueError, "image_sizes"),
        (lambda t: t.set_indexed(torch.zeros(3, 4), [1, 2, 2, 2, 2]), TypeError, "indices"),
        (lambda t: t.set_indexed(torch.zeros(2, 4, dtype=torch.int64), [1, 2, 2, 2, 2]),
         ValueError, "indices"),
        (lambda t: t.set_input_range(2.0), ConfigError, "input_range"),
    ],
)
def test_bad_input_raises_and_leaves_tile_unchanged(call, exc, name) -> None:  # type: ignore[no-untyped-def]
    tile = TileWithPeriphery(2, 3, bias=True, seed=3)
    tile.set_weights(torch.randn(2, 3), torch.randn(2))
    before = _state(tile)
    lr = tile.get_learning_rate()
    with pytest.raises(exc, match=name):
        call(tile)
    _assert_same_state(tile, before)
    assert tile.get_learning_rate() == lr
    assert not tile.is_indexed()


def test_constructor_validates_arguments() -> None:
    with pytest.raises(TypeError, match="rpu_config"):
        TileWithPeriphery(2, 2, rpu_config="default")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out_size"):
        TileWithPeriphery(0, 2)
    with pytest.raises(TypeError, match="in_size"):
        TileWithPeriphery(2, 2.5)  # type: ignore[arg-type]
    cfg = RPUConfig()
    cfg.forward.out_noise = -1.0  # edited in place after construction: validated by the tile
    with pytest.raises(ConfigError, match="out_noise"):
        TileWithPeriphery(2, 2, cfg)


def test_config_is_copied() -> None:
    cfg = RPUConfig()
    tile = TileWithPeriphery(2, 2, cfg)
    cfg.forward.out_noise = 0.5
    assert tile.rpu_config.forward.out_noise == 0.06


@settings(max_examples=25, deadline=None)
@given(
    out_size=st.integers(1, 7),
    in_size=st.integers(1, 7),
    omega=st.sampled_from([0.0, 0.5, 1.0]),
    columnwise=st.booleans(),
    digital_bias=st.booleans(),
    learned=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_perfect_tile_computes_the_logical_layer(out_size: int, in_size: int, omega: float,
                                                 columnwise: bool, digital_bias: bool,
                                                 learned: bool, seed: int) -> None:
    cfg = RPUConfig(mapping=MappingParameter(
        weight_scaling_omega=omega, weight_scaling_columnwise=columnwise,
        digital_bias=digital_bias, learn_out_scaling=learned, out_scaling_columnwise=True))
    cfg.forward.is_perfect = True
    cfg.backward.is_perfect = True
    tile = TileWithPeriphery(out_size, in_size, cfg, bias=True, seed=0)
    g = torch.Generator().manual_seed(seed)
    w, b = torch.randn(out_size, in_size, generator=g), torch.randn(out_size, generator=g)
    tile.set_weights(w, b)
    if learned:
        tile.set_learned_out_scales(torch.rand(out_size, generator=g) + 0.5)
    lw, lb = tile.get_weights()
    x = torch.randn(3, in_size, generator=g)
    expected = x @ lw.T + (lb if lb is not None else 0)
    assert torch.allclose(tile(x), expected, atol=1e-4, rtol=1e-4)
    rw, _ = tile.read_weights(apply_weight_scaling=True)
    assert torch.allclose(rw, lw, atol=1e-3, rtol=1e-3)
