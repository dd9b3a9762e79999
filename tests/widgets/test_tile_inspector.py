"""TileInspector driven like a user: click Program / Read, move the drift slider."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anatile.analysis import weight_nrmse
from anatile.analysis.metrics import WEIGHT_NRMSE
from anatile.tiles import InferenceTile, TileEvent, TileWithPeriphery
from anatile.widgets import TileInspector
from anatile.widgets._plots import error_summary


def _tile(out_size: int = 8, in_size: int = 6, **kwargs) -> TileWithPeriphery:
    tile = TileWithPeriphery(out_size, in_size, seed=1, **kwargs)
    tile.set_weights(torch.randn(out_size, in_size, generator=torch.Generator().manual_seed(0)))
    return tile


def _record(tile: TileWithPeriphery, kind: str) -> list[TileEvent]:
    seen: list[TileEvent] = []
    tile.events.subscribe(lambda e: seen.append(e) if e.kind == kind else None)
    return seen


def test_program_click_fills_the_progress_bar_and_shows_the_read_back() -> None:
    tile = _tile()
    insp = TileInspector(tile)  # opens with one read of its own
    reads = _record(tile, "weights_read")
    progress = _record(tile, "programming_progress")
    insp.max_iter.value = 15
    insp.tolerance.value = 0.0
    insp.program_button.click()

    assert insp.errors == []
    assert len(progress) == 16  # iterations 0..15
    assert insp.progress.max == 15 and insp.progress.value == insp.progress.max
    assert tile.last_programming is not None and tile.last_programming.iterations == 15
    assert str(tile.last_programming.iterations) in insp.progress_label.value
    assert len(reads) == 1  # programming is followed by one read
    read = reads[0].data["weight"].double().reshape(-1).numpy()
    target = tile.reference_weight.double().reshape(-1).numpy()
    idx = insp.scatter_indices()
    np.testing.assert_allclose(insp.scatter_offsets(), np.c_[target[idx], read[idx]])
    assert idx.size == target.size  # a small tile is shown whole


def test_program_controls_are_passed_to_the_tile(monkeypatch: pytest.MonkeyPatch) -> None:
    tile = _tile()
    got: dict[str, float] = {}
    monkeypatch.setattr(tile, "program_weights", lambda **kw: got.update(kw))
    insp = TileInspector(tile)
    insp.learning_rate.value = 0.01
    insp.max_iter.value = 7
    insp.tolerance.value = 0.05
    insp.program_button.click()
    assert got == pytest.approx({"learning_rate": 0.01, "max_iter": 7, "tolerance": 0.05})


def test_read_click_uses_over_sampling_and_updates_the_readouts() -> None:
    tile = _tile()
    state = tile.generator.get_state()
    opening = _record(tile, "weights_read")
    insp = TileInspector(tile)
    # it opens on a read of its own, which leaves the tile's random stream where it was
    assert len(opening) == 1 and insp._read_label == "read (on opening)"
    torch.testing.assert_close(insp.read_weight, opening[0].data["weight"].double())
    assert torch.equal(tile.generator.get_state(), state)
    reads = _record(tile, "weights_read")
    insp.over_sampling.value = 3
    insp.read_button.click()

    assert insp.errors == [] and len(reads) == 1
    read = reads[0].data["weight"]
    torch.testing.assert_close(insp.read_weight, read.double())
    expected = error_summary(tile.reference_weight, read)
    assert {k: insp.stats[k] for k in expected} == pytest.approx(expected)
    # the readout is the library's weight error metric, with its unit and symbol
    nrmse = float(weight_nrmse(read.double(), tile.reference_weight.double()))
    assert insp.stats["weight_nrmse"] == pytest.approx(nrmse)
    assert f"{WEIGHT_NRMSE.format(nrmse)} (NRMSE_W)" in insp.weights_readout.value
    assert "anatile-shown'>read<" in insp.weights_readout.value
    np.testing.assert_allclose(insp.scatter_offsets()[:, 1], read.reshape(-1).double().numpy())


def test_read_uses_the_over_sampling_value(monkeypatch: pytest.MonkeyPatch) -> None:
    tile = _tile()
    calls: list[dict[str, object]] = []
    real = tile.read_weights

    def spy(**kw: object):
        calls.append(kw)
        return real(**kw)

    monkeypatch.setattr(tile, "read_weights", spy)
    insp = TileInspector(tile)
    calls.clear()  # the read on opening
    insp.over_sampling.value = 4
    insp.read_button.click()
    assert calls == [{"apply_weight_scaling": False, "over_sampling": 4}]


def test_large_tile_scatter_is_a_fixed_subsample() -> None:
    tile = _tile(128, 64)
    insp = TileInspector(tile, max_scatter_points=500)
    insp.read_button.click()
    idx = insp.scatter_indices()
    assert idx.size == 500 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, TileInspector(tile, max_scatter_points=500)
                                  .scatter_indices())
    read = insp.read_weight.reshape(-1).numpy()
    np.testing.assert_allclose(insp.scatter_offsets()[:, 1], read[idx])


def test_scales_panel_follows_the_tile_events() -> None:
    from anatile.config import RPUConfig

    cfg = RPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    cfg.mapping.weight_scaling_columnwise = True
    tile = _tile(rpu_config=cfg, bias=True)
    insp = TileInspector(tile)
    new_scales = torch.linspace(0.5, 2.0, tile.out_size)
    tile.set_scales(new_scales)  # emits scales_changed: a throttled redraw
    insp.refresh()
    np.testing.assert_allclose(insp.scales_view.map_line.get_ydata(), new_scales.numpy(), rtol=1e-6)
    assert "digital" in insp.scales_readout.value
    assert f"{2.0:.4g}" in insp.scales_readout.value


def test_weights_set_event_changes_the_target() -> None:
    tile = _tile()
    insp = TileInspector(tile)
    w = torch.full((tile.out_size, tile.in_size), 0.25)
    tile.set_weights(w, apply_weight_scaling=False)
    torch.testing.assert_close(insp.target, w.double())


def test_callback_exception_is_shown_in_the_log_area(monkeypatch: pytest.MonkeyPatch) -> None:
    tile = _tile()
    insp = TileInspector(tile)

    def broken(**kw: object):
        raise RuntimeError("ADC on fire")

    monkeypatch.setattr(tile, "read_weights", broken)
    insp.read_button.click()  # must not raise into the notebook
    assert len(insp.errors) == 1 and "ADC on fire" in insp.errors[0]
    assert any("RuntimeError: ADC on fire" in o["text"] for o in insp.log_area.outputs)
    assert not insp.read_button.disabled  # the buttons come back


def test_rejects_a_non_tile() -> None:
    with pytest.raises(TypeError, match="tile"):
        TileInspector(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


# ---------------------------------------------------------------- inference tiles
def _inference_tile() -> InferenceTile:
    tile = InferenceTile(16, 12, seed=3)
    tile.set_weights(torch.randn(16, 12, generator=torch.Generator().manual_seed(2)) * 0.2)
    return tile


def test_inference_program_button_programs_with_the_noise_model() -> None:
    tile = _inference_tile()
    insp = TileInspector(tile)
    assert insp.extra is not None
    assert insp.learning_rate not in insp.program_box.children[0].children  # no closed loop
    insp.program_button.click()
    assert insp.errors == []
    assert tile.is_programmed()
    assert insp.progress.value == insp.progress.max
    insp.refresh()
    state = tile.device_state()
    hist = insp.extra._prog_hist[0].get_data()
    assert hist.values.sum() == state.devices[0].programmed.numel()


def test_drift_slider_drifts_the_tile_and_shows_alpha_and_error() -> None:
    tile = _inference_tile()
    drifts = _record(tile, "drifted")
    insp = TileInspector(tile)
    insp.program_button.click()
    panel = insp.extra
    panel.t_slider.value = 1e5

    assert insp.errors == []
    assert drifts[-1].data["t_inference"] == pytest.approx(1e5)
    assert tile.t_inference == pytest.approx(1e5)
    torch.testing.assert_close(panel.alpha, tile.alpha)
    assert float(tile.alpha) > 1.0  # drift lowers conductances; compensation scales up
    assert f"{float(tile.alpha):.4f}" in panel.readout.value
    # what the eval forward applies: alpha (global here) times the drifted array weights
    effective = tile.device_state().current_weight * float(tile.alpha)
    expected = error_summary(tile.reference_weight, effective)
    assert {k: panel.drift_stats[k] for k in expected} == pytest.approx(expected)
    nrmse = float(weight_nrmse(effective.double(), tile.reference_weight.double()))
    assert WEIGHT_NRMSE.format(nrmse) in panel.readout.value
    insp.refresh()
    np.testing.assert_allclose(
        insp.scatter_offsets()[:, 1], effective.double().reshape(-1).numpy(), rtol=1e-6
    )

    panel.t_slider.value = 1e8  # later: more drift, alpha grows
    assert float(panel.alpha) == pytest.approx(float(tile.alpha))
    assert tile.t_inference == pytest.approx(1e8)


def test_tile_events_redraw_by_themselves_throttled() -> None:
    """Without refresh(): a burst of scale changes becomes one timer-driven redraw."""
    import time

    tile = _tile()
    insp = TileInspector(tile, min_interval=0.5)  # the burst fits in the quiet time
    before = bytes(insp.scales_panel.image.value)
    calls_before = insp._redraw.calls
    for s in torch.linspace(0.5, 2.0, 20):
        tile.set_scales(float(s))  # 20 events in a burst
    deadline = time.monotonic() + 5.0
    while insp._redraw.calls == calls_before and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let a (wrong) second redraw show up if there were one
    assert insp._redraw.calls - calls_before == 1
    assert bytes(insp.scales_panel.image.value) != before
    np.testing.assert_allclose(insp.scales_view.map_line.get_ydata(), np.full(tile.out_size, 2.0))
    assert insp.errors == []


def test_program_click_on_a_default_tile_says_converged_with_its_verify() -> None:
    """The default training tile reaches the 1 % tolerance (averaged verify reads): the bar
    turns green and the label says converged, with the reads and the noise floor."""
    tile = TileWithPeriphery(8, 6, seed=1)
    tile.set_weights(torch.randn(8, 6, generator=torch.Generator().manual_seed(0)) * 0.1)
    insp = TileInspector(tile)
    insp.program_button.click()
    report = tile.last_programming
    assert insp.errors == []
    assert report is not None and report.converged and report.verify_reads > 1
    assert insp.progress.bar_style == "success"
    label = insp.progress_label.value
    assert label.startswith(f"converged after {report.iterations} iterations")
    assert f"verify: {report.verify_reads} reads averaged" in label
