"""weight_trace agrees with the tile's own state and with the drift formula."""

from __future__ import annotations

import io

import pytest
import torch

from anatile.analysis import weight_trace
from anatile.config import InferenceRPUConfig, RPUConfig
from anatile.exceptions import TileError
from anatile.functional.pcm import pcm_drift_factor
from anatile.inference import (
    BaseConductanceConverter,
    DualPairConductanceConverter,
    PCMLikeNoiseModel,
)
from anatile.tiles import InferenceTile, TileWithPeriphery


def _programmed(converter: BaseConductanceConverter | None = None,
                columnwise: bool = False) -> InferenceTile:
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    cfg.mapping.weight_scaling_columnwise = columnwise
    if converter is not None:
        cfg.noise_model = PCMLikeNoiseModel(g_converter=converter)
    tile = InferenceTile(6, 10, rpu_config=cfg, seed=0)
    tile.set_weights(torch.randn(6, 10, generator=torch.Generator().manual_seed(4)))
    tile.program_weights()
    return tile


@pytest.mark.parametrize("converter", [None, DualPairConductanceConverter([1.0, 3.0])])
def test_trace_agrees_with_the_tile_state(converter: BaseConductanceConverter | None) -> None:
    tile = _programmed(converter, columnwise=True)
    tile.drift_weights(86400.0)
    row, col = 2, 7
    trace = weight_trace(tile, row, col, [0.0, 86400.0, 3e7])
    k = tile.noise_model.g_converter.n_devices
    assert trace.device_names == tile.noise_model.g_converter.device_names
    assert trace.g_target.shape == (k,) and trace.g_read.shape == (3, k)
    state = tile.device_state()
    for i, dev in enumerate(state.devices):
        assert trace.g_target[i].item() == pytest.approx(float(dev.target[row, col]))
        assert trace.g_programmed[i].item() == pytest.approx(float(dev.programmed[row, col]))
        assert trace.nu[i].item() == pytest.approx(float(dev.nu[row, col]))
        assert dev.drifted is not None
        # at the tile's own drift time the trace shows the tile's read
        assert trace.g_read[1, i].item() == pytest.approx(float(dev.drifted[row, col]))
    assert trace.alpha[1].item() == pytest.approx(float(tile.alpha.reshape(-1)[0]))
    effective = tile.effective_weights(apply_weight_scaling=True)
    assert trace.weight_effective[1].item() == pytest.approx(float(effective[row, col]),
                                                             rel=1e-5)
    logical = tile.get_weights()[0]
    assert trace.weight_read[1].item() == pytest.approx(float(logical[row, col]), rel=1e-5)
    scales, ref, prog = tile.get_scales(), tile.reference_weight, tile.programmed_weight
    assert scales is not None and ref is not None and prog is not None
    scale = float(scales[row])
    assert trace.weight_target == pytest.approx(float(ref[row, col]) * scale)
    assert trace.weight_programmed == pytest.approx(float(prog[row, col]) * scale)
    # drift without read noise is the formula, and no drift at t = 0
    factor = pcm_drift_factor(trace.nu, torch.tensor([[0.0], [86400.0], [3e7]]))
    torch.testing.assert_close(trace.g_drifted, trace.g_programmed * factor)
    torch.testing.assert_close(trace.g_drifted[0], trace.g_programmed)
    # compensation grows with time for a decaying array
    assert trace.alpha[2].item() > trace.alpha[1].item() > 1.0
    assert len(trace.to_rows()) == 3


def test_trace_changes_nothing_and_is_reproducible() -> None:
    tile = _programmed()
    tile.drift_weights(10.0)
    buf = io.BytesIO()
    torch.save(tile.state_dict(), buf)
    gen = tile.generator.get_state()
    a = weight_trace(tile, 0, 0, [1.0, 1e5], seed=3)
    b = weight_trace(tile, 0, 0, [1.0, 1e5], seed=3)
    assert torch.equal(a.g_read, b.g_read) and torch.equal(a.alpha, b.alpha)
    buf2 = io.BytesIO()
    torch.save(tile.state_dict(), buf2)
    assert buf.getvalue() == buf2.getvalue()
    assert torch.equal(tile.generator.get_state(), gen)


def test_trace_bad_input() -> None:
    training = TileWithPeriphery(2, 3, RPUConfig(), seed=0)
    with pytest.raises(TypeError, match="training tile"):
        weight_trace(training, 0, 0, [1.0])
    fresh = InferenceTile(2, 3, seed=0)
    with pytest.raises(TileError, match="program_weights"):
        weight_trace(fresh, 0, 0, [1.0])
    tile = _programmed()
    with pytest.raises(ValueError, match="row"):
        weight_trace(tile, 6, 0, [1.0])
    with pytest.raises(ValueError, match="col"):
        weight_trace(tile, 0, -1, [1.0])
    with pytest.raises(ValueError, match="t_steps"):
        weight_trace(tile, 0, 0, [float("nan")])
