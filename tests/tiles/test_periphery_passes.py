"""TileWithPeriphery: passes, autograd, input range, hooks, indexed interface, trans."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anatile.config import (
    InputRangeParameter,
    IOParameters,
    MappingParameter,
    PrePostProcessingParameter,
    PulseType,
    RPUConfig,
    UpdateParameters,
)
from anatile.exceptions import ConfigError, TileError
from anatile.functional import conv2d_indices
from anatile.tiles import TileWithPeriphery
from tests.configs import exact_float_config, perfect_config

pytestmark = pytest.mark.usefixtures("one_thread")




def test_joint_forward_backward_update_exact() -> None:
    tile = TileWithPeriphery(3, 4, exact_float_config(), seed=0)
    w = torch.randn(3, 4)
    tile.set_weights(w)
    x, d = torch.randn(5, 4), torch.randn(5, 3)
    assert torch.allclose(tile.joint_forward(x), x @ w.T, atol=1e-6)
    assert torch.allclose(tile.backward(d), d @ w, atol=1e-6)
    tile.set_learning_rate(0.1)
    tile.update(x, d)
    assert torch.allclose(tile.get_weights()[0], w - 0.1 * d.T @ x, atol=1e-5)


def test_leading_dimensions_and_transposed_io() -> None:
    w = torch.randn(3, 4)
    tile = TileWithPeriphery(3, 4, perfect_config())
    tile.set_weights(w)
    x = torch.randn(2, 5, 4)
    assert torch.allclose(tile.joint_forward(x), x @ w.T, atol=1e-6)
    tt = TileWithPeriphery(3, 4, perfect_config(), in_trans=True, out_trans=True)
    tt.set_weights(w)
    xt = torch.randn(4, 6)
    assert torch.allclose(tt.joint_forward(xt), (xt.T @ w.T).T, atol=1e-6)
    assert tt.backward(torch.randn(3, 6)).shape == (4, 6)
    with pytest.raises(TileError):
        tt.set_indexed(torch.zeros(4, 1, dtype=torch.int64), [1, 2, 2, 1, 1])


def test_forward_autograd_uses_analog_backward_and_records_update() -> None:
    tile = TileWithPeriphery(3, 4, perfect_config(), bias=True, seed=0)
    w, b = torch.randn(3, 4), torch.randn(3)
    tile.set_weights(w, b)
    x = torch.randn(5, 4, requires_grad=True)
    y = tile(x)
    assert torch.allclose(y, x @ w.T + b, atol=1e-5)
    g = torch.randn(5, 3)
    y.backward(g)
    assert x.grad is not None and torch.allclose(x.grad, g @ w, atol=1e-5)
    assert tile.bias is not None and torch.allclose(tile.bias.grad, g.sum(0))
    assert len(tile._pending) == 1
    before = tile.get_weights()[0]
    tile.set_learning_rate(0.01)
    tile.apply_pending_updates()
    assert not torch.equal(tile.get_weights()[0], before) and tile._pending == []


def test_backward_default_io_is_noisy_but_close() -> None:
    tile = TileWithPeriphery(8, 16, seed=0)
    w = torch.randn(8, 16) * 0.3
    tile.set_weights(w)
    d = torch.randn(64, 8)
    err = tile.backward(d) - d @ w
    assert float(err.abs().mean()) < 0.1 * float((d @ w).abs().mean()) + 0.05


def test_generator_reproducibility_and_manual_seed() -> None:
    a, b = TileWithPeriphery(4, 4, seed=7), TileWithPeriphery(4, 4, seed=7)
    w = torch.randn(4, 4)
    a.set_weights(w)
    b.set_weights(w)
    x = torch.randn(3, 4)
    assert torch.equal(a.joint_forward(x), b.joint_forward(x))
    assert torch.equal(a.analog_core.dw_up, b.analog_core.dw_up)
    y1 = a.joint_forward(x)
    a.manual_seed(7)
    b.manual_seed(7)
    assert torch.equal(a.joint_forward(x), b.joint_forward(x))
    assert not torch.equal(TileWithPeriphery(4, 4, seed=8).analog_core.dw_up,
                           a.analog_core.dw_up)
    assert y1.shape == (3, 4)


def test_hooks_follow_the_seed_semantics() -> None:
    cfg = perfect_config()
    cfg.mapping = MappingParameter(weight_scaling_omega=1.0, weight_scaling_columnwise=True)
    tile = TileWithPeriphery(2, 3, cfg)
    tile.set_weights(torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0]]))
    y = torch.ones(4, 2)
    assert torch.equal(tile.pre_forward(torch.ones(4, 3), 1), torch.ones(4, 3))
    assert torch.equal(tile.post_forward(y, 1), torch.tensor([[2.0, 0.5]] * 4))
    assert torch.equal(tile.pre_backward(y, 1), torch.tensor([[2.0, 0.5]] * 4))
    assert torch.equal(tile.post_backward(torch.ones(4, 3), 1), torch.ones(4, 3))
    x2, d2 = tile.pre_update(torch.ones(4, 3), 1, y, 1)
    assert torch.equal(x2, torch.ones(4, 3)) and torch.equal(d2, torch.tensor([[0.5, 2.0]] * 4))


def _ir_config(**kw: object) -> RPUConfig:
    cfg = perfect_config()
    cfg.update = UpdateParameters(pulse_type=PulseType.NONE)
    cfg.pre_post = PrePostProcessingParameter(
        input_range=InputRangeParameter(enable=True, **kw))  # type: ignore[arg-type]
    return cfg


def test_input_range_clips_and_initializes_from_data() -> None:
    tile = TileWithPeriphery(2, 4, _ir_config(init_from_data=3, init_std_alpha=2.0), seed=0)
    assert tile.init_input_processing() is True
    w = torch.randn(2, 4)
    tile.set_weights(w)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, 4, generator=g) * s for s in (1.0, 2.0, 3.0, 4.0)]
    tile.train()
    for xb in batches:
        tile(xb)
    expected = sum(2.0 * float(xb.std()) for xb in batches[:3]) / 3
    assert tile.input_range is not None
    assert float(tile.input_range.detach()) == pytest.approx(expected, rel=1e-5)
    r = float(tile.input_range.detach())
    tile.eval()
    x = torch.randn(8, 4) * 10
    with torch.no_grad():
        y = tile(x)
    assert torch.allclose(y, x.clamp(-r, r) @ w.T, atol=1e-4)
    tile.set_input_range(1.5)
    assert float(tile.input_range.detach()) == 1.5
    with pytest.raises(ValueError, match="value"):
        tile.set_input_range(-1.0)


def test_input_range_gradient_through_the_tile_matches_finite_difference() -> None:
    tile = TileWithPeriphery(1, 6, _ir_config(decay=0.0, gradient_relative=False,
                                              init_from_data=0), seed=0)
    w = torch.tensor([[1.0, 1.0, 1.0, 1.0, -1.0, 1.0]])
    tile.set_weights(w)
    tile.set_input_range(1.0)
    x = torch.tensor([[2.0, 1.5, 0.5, -0.2, -3.0, -0.4]])
    tile.train()
    # loss = -y: the gradient is negative at x >= r and positive at x <= -r (w = -1), so
    # the straight-through estimate equals the true derivative of the clipped loss.
    (-tile(x).sum()).backward()
    assert tile.input_range is not None and tile.input_range.grad is not None
    ste = float(tile.input_range.grad)

    def loss(r: float) -> float:
        return -float((x.clamp(-r, r) @ w.T).sum())

    fd = (loss(1.001) - loss(0.999)) / 0.002
    assert ste == pytest.approx(fd, abs=1e-3)
    assert ste == pytest.approx(-3.0)


def test_manage_output_clipping_requires_no_bound_management() -> None:
    cfg = RPUConfig(pre_post=PrePostProcessingParameter(
        input_range=InputRangeParameter(enable=True, manage_output_clipping=True)))
    with pytest.raises(ConfigError, match="manage_output_clipping"):
        TileWithPeriphery(2, 2, cfg)
    cfg.forward = IOParameters(bound_management="none")  # type: ignore[arg-type]
    tile = TileWithPeriphery(2, 2, cfg)
    tile.set_weights(torch.ones(2, 2))
    tile(torch.ones(3, 2))
    assert tile.last_unclipped_output_fraction == pytest.approx(1.0)


def test_indexed_interface_equals_conv2d() -> None:
    g = torch.Generator().manual_seed(0)
    kernel = torch.randn(4, 2, 3, 3, generator=g)
    tile = TileWithPeriphery(4, 18, perfect_config(), seed=0)
    tile.set_weights(kernel.reshape(4, -1))
    assert not tile.is_indexed() and tile.supports_indexed
    with pytest.raises(TileError):
        tile.joint_forward_indexed(torch.randn(1, 2, 5, 5))
    with pytest.raises(TileError):
        tile.backward_indexed(torch.randn(1, 4, 3, 3))
    with pytest.raises(TileError):
        tile.update_indexed(torch.randn(1, 2, 5, 5), torch.randn(1, 4, 3, 3))
    idx, sizes = conv2d_indices(2, (5, 6), (3, 3), (1, 1), (1, 1), (1, 1))
    tile.set_indexed(idx, sizes)
    assert tile.is_indexed()
    x = torch.randn(3, 2, 5, 6, generator=g, requires_grad=True)
    y = tile.joint_forward_indexed(x)
    assert torch.allclose(y, F.conv2d(x, kernel, padding=1), atol=1e-5)
    d = torch.randn_like(y)
    ref = torch.autograd.grad(F.conv2d(x, kernel, padding=1), x, d)[0]
    assert torch.allclose(tile.backward_indexed(d), ref, atol=1e-5)
    with pytest.raises(ValueError, match="x_input"):
        tile.joint_forward_indexed(torch.randn(3, 2, 4, 6))


def test_update_indexed_equals_conv_weight_gradient_step() -> None:
    g = torch.Generator().manual_seed(1)
    kernel = torch.randn(3, 1, 2, 2, generator=g)
    tile = TileWithPeriphery(3, 4, exact_float_config(), seed=0)
    tile.set_weights(kernel.reshape(3, -1), apply_weight_scaling=False)
    idx, sizes = conv2d_indices(1, (4, 4), (2, 2), (1, 1), (0, 0), (1, 1))
    tile.set_indexed(idx, sizes)
    x = torch.randn(2, 1, 4, 4, generator=g)
    k = kernel.clone().requires_grad_(True)
    out = F.conv2d(x, k)
    d = torch.randn_like(out)
    (grad_k,) = torch.autograd.grad(out, k, d)
    tile.set_learning_rate(0.1)
    tile.update_indexed(x, d)
    assert torch.allclose(tile.get_weights(apply_weight_scaling=False)[0],
                          (kernel - 0.1 * grad_k).reshape(3, -1), atol=1e-5)


@pytest.mark.parametrize("sizes", [[1, 4, 3], [1, 2, 2, 2, 2, 2, 2]])
def test_set_indexed_accepts_1d_and_3d(sizes: list[int]) -> None:
    n_sp = (len(sizes) - 1) // 2
    n_out = 1
    for s in sizes[1 + n_sp:]:
        n_out *= s
    tile = TileWithPeriphery(2, 2, perfect_config())
    idx = torch.ones(2, n_out, dtype=torch.int64)
    tile.set_indexed(idx, sizes)
    assert tile.is_indexed() and tile.image_sizes == sizes
    x = torch.randn(2, *sizes[:1 + n_sp])
    assert tile.joint_forward_indexed(x).shape == (2, 2, *sizes[1 + n_sp:])


def test_transposed_tile_autograd_and_update() -> None:
    tile = TileWithPeriphery(3, 4, exact_float_config(), in_trans=True, out_trans=True)
    w = torch.randn(3, 4)
    tile.set_weights(w, apply_weight_scaling=False)
    xt = torch.randn(4, 6, requires_grad=True)
    y = tile(xt)
    assert torch.allclose(y, w @ xt, atol=1e-5)
    g = torch.randn(3, 6)
    y.backward(g)
    assert xt.grad is not None and torch.allclose(xt.grad, w.T @ g, atol=1e-5)
    tile.set_learning_rate(0.1)
    tile.apply_pending_updates()
    assert torch.allclose(tile.get_weights()[0], w - 0.1 * g @ xt.detach().T, atol=1e-5)


def test_update_with_input_range_and_scales_is_logical_sgd() -> None:
    cfg = _ir_config(init_from_data=0)
    cfg.mapping = MappingParameter(weight_scaling_omega=0.5, weight_scaling_columnwise=True)
    tile = TileWithPeriphery(2, 3, cfg)
    w = torch.tensor([[1.0, -2.0, 0.5], [0.2, 0.1, -0.4]])
    tile.set_weights(w)
    tile.set_input_range(1.5)
    x = torch.tensor([[0.5, -3.0, 1.0]])
    d = torch.tensor([[0.3, -0.7]])
    tile.set_learning_rate(0.1)
    tile.update(x, d)  # x is taken as already clipped (forward records the clipped input)
    assert torch.allclose(tile.get_weights()[0], w - 0.1 * d.T @ x, atol=1e-5)


def test_double_input_gets_a_double_gradient() -> None:
    tile = TileWithPeriphery(2, 3, perfect_config())
    tile.set_weights(torch.ones(2, 3))
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    tile(x).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float64
    assert torch.allclose(x.grad, torch.full((4, 3), 2.0, dtype=torch.float64))
