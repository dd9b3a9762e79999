"""Everything runs on CUDA when a GPU is there.

These tests need a GPU. On a machine without one they are skipped with that reason; the
project checks them on a GPU machine (see docs/performance.md for the last run).
"""

from __future__ import annotations

import pickle

import pytest
import torch

from anatile.config import InferenceRPUConfig, RPUConfig
from anatile.inference import DualPairConductanceConverter, PCMLikeNoiseModel
from anatile.nn import AnalogLinear
from anatile.tiles import InferenceTile, TileWithPeriphery

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_tile_forward_backward_update_read_on_cuda() -> None:
    tile = TileWithPeriphery(32, 48, RPUConfig(), seed=1).cuda()
    w = torch.randn(32, 48) * 0.1
    tile.set_weights(w)
    assert tile.analog_core.weight.is_cuda
    x = torch.randn(16, 48, device="cuda")
    y = tile.joint_forward(x, is_test=True)
    assert y.is_cuda and y.shape == (16, 32)
    d = tile.backward(torch.randn(16, 32, device="cuda"))
    assert d.is_cuda and d.shape == (16, 48)
    before = tile.analog_core.weight.clone()
    tile.update(x, torch.randn(16, 32, device="cuda"))
    assert not torch.equal(before, tile.analog_core.weight)
    read, _ = tile.read_weights()
    assert read.device.type == "cpu"  # get/read return CPU copies, as the seed page says
    rel = (read - w).norm() / w.norm()
    assert rel < 0.1


def test_tile_program_weights_on_cuda() -> None:
    tile = TileWithPeriphery(16, 16, RPUConfig(), seed=2).cuda()
    tile.set_weights(torch.randn(16, 16) * 0.2)
    tile.program_weights(max_iter=300)
    report = tile.last_programming
    assert report is not None and report.iterations >= 1


def test_cuda_tile_pickles_back_to_same_weights() -> None:
    tile = TileWithPeriphery(8, 8, RPUConfig(), seed=3).cuda()
    tile.set_weights(torch.randn(8, 8) * 0.1)
    clone = pickle.loads(pickle.dumps(tile))
    assert torch.equal(clone.get_weights()[0], tile.get_weights()[0])


def test_inference_tile_program_and_drift_on_cuda() -> None:
    cfg = InferenceRPUConfig()
    cfg.noise_model = PCMLikeNoiseModel(g_converter=DualPairConductanceConverter([1.0, 1.0]))
    tile = InferenceTile(64, 64, cfg, seed=4).cuda()
    tile.set_weights(torch.randn(64, 64) * 0.1)
    tile.eval()
    tile.program_weights()
    tile.drift_weights(3600.0)
    assert tile.analog_core.weight.is_cuda
    assert float(tile.alpha.cpu()) > 1.0  # drift lowers conductances; alpha compensates
    y = tile(torch.randn(4, 64, device="cuda"))
    assert y.is_cuda


def test_analog_linear_trains_on_cuda() -> None:
    torch.manual_seed(0)
    layer = AnalogLinear(8, 4, bias=True, rpu_config=InferenceRPUConfig()).cuda()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.randn(64, 8, device="cuda")
    target = x @ torch.randn(8, 4, device="cuda") * 0.1
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(layer(x), target)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_wpo_batched_loss_on_cuda_matches_cpu_statistically() -> None:
    from anatile.wpo import WeightProgrammingOptimizer

    weights = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    results = {}
    for device in ("cpu", "cuda"):
        opt = WeightProgrammingOptimizer(
            weights, [1.0, 1.0], InferenceRPUConfig(), [1.0, 3600.0],
            DualPairConductanceConverter([1.0, 1.0]),
            device=device, baseline_iterations=40, maxiter=1, popsize=2,
        )
        results[device] = opt.get_loss_baseline()
    # Same physics on both devices: baselines agree within the Monte-Carlo spread
    # (40 repetitions of a noisy TNMSE; 10 % is > 4 standard errors here).
    assert results["cuda"] == pytest.approx(results["cpu"], rel=0.1)


def test_split_layer_on_cuda() -> None:
    from anatile.nn import AnalogConv2d

    cfg = InferenceRPUConfig()
    cfg.mapping.max_input_size, cfg.mapping.max_output_size = 16, 8
    layer = AnalogLinear(40, 20, rpu_config=cfg, seed=0).cuda().eval()
    assert layer.tile_array.grid_shape == (3, 3)
    assert all(p.tile.analog_core.weight.is_cuda for p in layer.analog_tiles())
    layer.program_weights()
    layer.drift_weights(3600.0)
    y = layer(torch.randn(8, 40, device="cuda"))
    assert y.is_cuda and y.shape == (8, 20)
    conv = AnalogConv2d(10, 7, 1, rpu_config=cfg, seed=3).cuda()
    lin = AnalogLinear(10, 7, rpu_config=cfg, seed=3).cuda()
    x = torch.randn(2, 10, 5, 4, device="cuda")
    rows = x.permute(0, 2, 3, 1).reshape(-1, 10)
    torch.testing.assert_close(conv(x), lin(rows).reshape(2, 5, 4, 7).permute(0, 3, 1, 2))
    twin = pickle.loads(pickle.dumps(layer))
    assert torch.equal(twin(y.new_ones(2, 40)), layer(y.new_ones(2, 40)))
