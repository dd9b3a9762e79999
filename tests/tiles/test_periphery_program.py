"""TileWithPeriphery: program_weights, read_weights, events, persistence, devices."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch

from anatile.config import (
    ConstantStepDevice,
    InputRangeParameter,
    IOParameters,
    MappingParameter,
    PrePostProcessingParameter,
    RPUConfig,
)
from anatile.functional import quantization_step
from anatile.tiles import ProgrammingReport, TileEvent, TileWithPeriphery

pytestmark = pytest.mark.usefixtures("one_thread")


def programmable_config() -> RPUConfig:
    """Noise-free 10-bit ADC (quantization kept) and devices whose bounds hold |w| <= 1.

    The identity readout sees each weight through the ADC, whose rounding alone leaves a
    mean error of a quarter step: with the default 9-bit ADC (24/510) that is 1.2 % of a
    full-scale weight, above the 1 % default tolerance, so these tests use 1/1022.
    """
    cfg = RPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0  # max|W| on the array is 1
    cfg.forward.out_noise = 0.0
    cfg.forward.out_res = 1 / 1022
    cfg.device = ConstantStepDevice(w_max=1.5, w_min=-1.5, w_max_dtod=0.05, w_min_dtod=0.05)
    return cfg


def _target(seed: int = 0) -> torch.Tensor:
    return torch.randn(4, 6, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("from_reference", [True, False])
@pytest.mark.parametrize("given_x", [False, True])
def test_program_weights_converges_in_every_combination(from_reference: bool,
                                                        given_x: bool) -> None:
    tile = TileWithPeriphery(4, 6, programmable_config(), seed=1)
    w = _target()
    tile.set_weights(w)
    x_values = torch.randn(24, 6, generator=torch.Generator().manual_seed(9)) if given_x else None
    calls: list[tuple[int, int, float]] = []
    events: list[TileEvent] = []
    tile.events.subscribe(events.append)
    for round_ in range(2):  # called repeatedly
        calls.clear()
        target = w if from_reference else tile.get_weights()[0]
        tile.program_weights(from_reference=from_reference, x_values=x_values,
                             tolerance=0.02, max_iter=400,
                             callback=lambda i, m, e: calls.append((i, m, e)))
        report = tile.last_programming
        assert isinstance(report, ProgrammingReport)
        assert report.converged and report.error < 0.02, (round_, report)
        assert report.iterations < 400 and len(calls) == report.iterations + 1
        assert calls[-1][2] == report.error and calls[0][1] == 400
        # the logical weights are close to this round's target (relative to max |w|)
        err = (tile.get_weights()[0] - target).abs().mean() / target.abs().max()
        # (with random x_values the criterion is on outputs ~sqrt(in) larger than weights)
        assert float(err) < (0.08 if given_x else 0.03)
    kinds = [e.kind for e in events]
    assert kinds.count("programmed") == 2 and "programming_progress" in kinds
    assert events[-1].data["report"] == tile.last_programming


def test_program_weights_reference_kept_and_w_init_tensor() -> None:
    tile = TileWithPeriphery(4, 6, programmable_config(), seed=2)
    w = _target(3)
    tile.set_weights(w)
    ref = tile.reference_weight.clone()  # type: ignore[union-attr]
    start = torch.zeros(4, 6)
    tile.program_weights(w_init=start, max_iter=1, tolerance=None)
    assert tile.last_programming == ProgrammingReport(1, tile.last_programming.error, False)
    assert torch.equal(tile.reference_weight, ref)  # type: ignore[arg-type]


def test_program_weights_stops_when_callback_returns_true() -> None:
    tile = TileWithPeriphery(4, 6, programmable_config(), seed=2)
    tile.set_weights(_target())
    tile.program_weights(callback=lambda i, m, e: i >= 3, tolerance=0.0)
    assert tile.last_programming is not None and tile.last_programming.iterations == 3


def test_set_weights_realistic_programs() -> None:
    tile = TileWithPeriphery(4, 6, programmable_config(), seed=4)
    w = _target(5)
    tile.set_weights(w, realistic=True)
    assert tile.last_programming is not None and tile.last_programming.converged


def test_read_weights_is_exact_on_perfect_tiles() -> None:
    cfg = RPUConfig(mapping=MappingParameter(weight_scaling_columnwise=True,
                                             learn_out_scaling=True))
    cfg.forward = IOParameters(is_perfect=True)
    tile = TileWithPeriphery(5, 7, cfg, bias=True, seed=0)
    w, b = torch.randn(5, 7), torch.randn(5)
    tile.set_weights(w, b)
    tile.set_learned_out_scales(torch.tensor([2.0]))
    events: list[TileEvent] = []
    tile.events.subscribe(events.append)
    rw, rb = tile.read_weights(apply_weight_scaling=True)
    assert torch.allclose(rw, 2 * w, atol=1e-4)
    assert rb is not None and torch.allclose(rb, b)
    nw, _ = tile.read_weights(apply_weight_scaling=False)
    assert torch.allclose(nw, tile.get_weights(apply_weight_scaling=False)[0], atol=1e-5)
    gw, _ = tile.get_weights(realistic=True)
    assert torch.allclose(gw, tile.get_weights()[0], atol=1e-4)
    assert [e.kind for e in events] == ["weights_read"] * 3
    x = torch.randn(30, 7)
    xw, _ = tile.read_weights(apply_weight_scaling=True, x_values=x)
    assert torch.allclose(xw, 2 * w, atol=1e-4)


def test_read_weights_analog_bias_on_perfect_tile() -> None:
    cfg = RPUConfig(mapping=MappingParameter(digital_bias=False))
    cfg.forward = IOParameters(is_perfect=True)
    tile = TileWithPeriphery(3, 4, cfg, bias=True)
    w, b = torch.randn(3, 4), torch.randn(3)
    tile.set_weights(w, b)
    rw, rb = tile.read_weights(apply_weight_scaling=True)
    assert torch.allclose(rw, w, atol=1e-4) and rb is not None
    assert torch.allclose(rb, b, atol=1e-4)


def test_read_weights_error_under_default_io_matches_noise_level() -> None:
    in_size, out_size, os_ = 16, 8, 10
    tile = TileWithPeriphery(out_size, in_size, seed=3)
    w = torch.randn(out_size, in_size, generator=torch.Generator().manual_seed(0)) * 0.5
    tile.set_weights(w)
    io = tile.rpu_config.forward
    est, _ = tile.read_weights(apply_weight_scaling=False, over_sampling=os_)
    arr = tile.get_weights(apply_weight_scaling=False)[0]
    rmse = float((est - arr).pow(2).mean().sqrt())
    # Noise per read (normalized units, before undoing the abs-max input scale s):
    # output noise, ADC and DAC rounding; least squares over N = os·in standard-normal
    # rows divides the variance by N. E[s²] for the max of 16 |N(0,1)| is ≈ 4.
    out_step = quantization_step(io.out_res, io.out_bound)
    inp_step = quantization_step(io.inp_res, io.inp_bound)
    per_read = math.sqrt(io.out_noise**2 + out_step**2 / 12
                         + float(arr.pow(2).sum(1).mean()) * inp_step**2 / 12)
    predicted = per_read * math.sqrt(4.0) / math.sqrt(os_ * in_size)
    assert rmse < 2.0 * predicted, (rmse, predicted)
    assert rmse > 0.3 * predicted  # noise is really simulated
    assert float((est - arr).abs().max()) < 0.1


def test_read_weights_speed_reasonable() -> None:
    tile = TileWithPeriphery(128, 128, seed=0)
    tile.set_weights(torch.randn(128, 128))
    est, _ = tile.read_weights(apply_weight_scaling=True)
    assert est.shape == (128, 128)


def _make_tile() -> TileWithPeriphery:
    cfg = RPUConfig(
        mapping=MappingParameter(learn_out_scaling=True, weight_scaling_columnwise=True),
        pre_post=PrePostProcessingParameter(input_range=InputRangeParameter(enable=True)),
    )
    tile = TileWithPeriphery(3, 5, cfg, bias=True, seed=11)
    tile.set_weights(torch.randn(3, 5), torch.randn(3))
    tile.set_learning_rate(0.05)
    tile.train()
    tile(torch.randn(4, 5)).sum().backward()
    tile.apply_pending_updates()
    tile.set_indexed(torch.ones(5, 2, dtype=torch.int64), [1, 5, 2])
    tile.joint_forward(torch.randn(2, 5))  # advance the generator
    return tile


def _assert_equal_tiles(a: TileWithPeriphery, b: TileWithPeriphery) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, sb[k]), k
    assert a.get_learning_rate() == pytest.approx(b.get_learning_rate())
    assert a.image_sizes == b.image_sizes and a.seed == b.seed
    # same generator state: the same noisy forward
    x = torch.randn(6, 5)
    assert torch.equal(a.joint_forward(x), b.joint_forward(x))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_deepcopy_and_pickle_round_trip(how: str) -> None:
    tile = _make_tile()
    events: list[TileEvent] = []
    tile.events.subscribe(events.append)
    other = copy.deepcopy(tile) if how == "deepcopy" else pickle.loads(pickle.dumps(tile))
    assert other.analog_ctx.analog_tile is other
    assert len(other.events) == 0
    _assert_equal_tiles(tile, other)


def test_state_dict_round_trip_into_a_fresh_tile() -> None:
    tile = _make_tile()
    fresh = TileWithPeriphery(3, 5, tile.rpu_config, bias=True, seed=99)
    fresh.load_state_dict(tile.state_dict())
    assert fresh.is_indexed() and fresh.reference_weight is not None
    _assert_equal_tiles(tile, fresh)


def test_cpu_keeps_everything_and_cuda_when_available() -> None:
    tile = _make_tile()
    assert tile.cpu() is tile and tile.generator.device.type == "cpu"
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    tile.cuda()
    assert tile.analog_core.weight.is_cuda and tile.generator.device.type == "cuda"
    assert tile.get_weights()[0].device.type == "cpu"
    y = tile(torch.randn(2, 5, device="cuda"))
    assert y.is_cuda


def test_events_for_weights_scales_and_input_range() -> None:
    cfg = RPUConfig(pre_post=PrePostProcessingParameter(input_range=InputRangeParameter(
        enable=True)))
    tile = TileWithPeriphery(2, 2, cfg)
    seen: list[TileEvent] = []
    tile.events.subscribe(seen.append)
    tile.set_weights(torch.ones(2, 2))
    tile.set_scales(2.0)
    tile.set_input_range(2.0)
    kinds = [e.kind for e in seen]
    assert "weights_set" in kinds and "scales_changed" in kinds and "input_range_changed" in kinds
    assert all(e.source is tile for e in seen)


def test_program_weights_with_analog_bias_and_given_inputs() -> None:
    cfg = programmable_config()
    cfg.mapping = MappingParameter(digital_bias=False, weight_scaling_omega=1.0)
    tile = TileWithPeriphery(3, 4, cfg, bias=True, seed=5)
    w, b = torch.randn(3, 4), torch.randn(3)
    tile.set_weights(w, b)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))  # bias input appended
    tile.program_weights(x_values=x, tolerance=0.02, max_iter=400)
    assert tile.last_programming is not None and tile.last_programming.converged
    w2, b2 = tile.get_weights()
    assert b2 is not None
    scale = float(torch.cat([w, b[:, None]], 1).abs().max())
    assert float((w2 - w).abs().mean()) / scale < 0.08
    assert float((b2 - b).abs().mean()) / scale < 0.08


def test_default_training_tile_programs_its_weights_without_clipping() -> None:
    """aihwkit's defaults (omega = 0): weights that fit the devices are written as they are
    (no mapping scale pushing max|W| to 1 on devices that saturate at 0.6, which clipped
    every weight above 0.6·max|W| before) and the closed loop reaches its noise floor."""
    tile = TileWithPeriphery(24, 32, seed=11)
    w = torch.randn(24, 32, generator=torch.Generator().manual_seed(0)) * 0.1
    tile.set_weights(w)
    assert torch.equal(tile.get_scales(), torch.ones(1))
    tile.program_weights(max_iter=200)
    arr = tile.get_weights(apply_weight_scaling=False)[0]
    core = tile.analog_core
    assert core.w_max_device is not None and core.w_min_device is not None
    # targets the devices can hold (device-to-device bounds vary by 30 %)
    inside = (w < core.w_max_device - 0.05) & (w > core.w_min_device + 0.05)
    assert float(inside.float().mean()) > 0.98
    at_bound = (arr >= core.w_max_device - 1e-3) | (arr <= core.w_min_device + 1e-3)
    assert not bool((at_bound & inside).any())
    # closed loop with gain lr = 0.1 on a readout with noise s (output noise 0.06 and the
    # ADC's 24/510 step): stationary weight error sd s·sqrt(lr/(2 − lr)), mean |.| 0.8 sd
    io = tile.rpu_config.forward
    s = math.sqrt(io.out_noise**2 + quantization_step(io.out_res, io.out_bound) ** 2 / 12)
    floor = 0.8 * s * math.sqrt(0.1 / 1.9)
    err = float((arr - w).abs()[inside].mean())
    assert err < 1.5 * floor, (err, floor)
    # the readout criterion itself stays at that floor: the default 1 % tolerance needs a
    # quieter readout (documented in docs/aihwkit.md)
    report = tile.last_programming
    assert report is not None and not report.converged
