"""Instruments, headless: pointer events on the figures (the dicts ipyevents sends), the
selection trait, zoom, opening on the tile's state, following outside drifts, export."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch
import traitlets
from PIL import Image
from torch import nn

from anatile.config import InferenceRPUConfig
from anatile.nn import convert_to_analog, drift_analog_weights
from anatile.tiles import InferenceTile, TileWithPeriphery
from anatile.widgets import ModelInspector, TileInspector
from anatile.widgets._interact import locate, pixel_of


def _inference_tile(out_size: int = 12, in_size: int = 20, seed: int = 3) -> InferenceTile:
    tile = InferenceTile(out_size, in_size, seed=seed)
    gen = torch.Generator().manual_seed(0)
    tile.set_weights(torch.randn(out_size, in_size, generator=gen) * 0.3)
    return tile


def _press(insp: TileInspector, x: float, y: float, dx: float = 0.0, dy: float = 0.0) -> None:
    """A user's press and release on the weights figure at image pixel (x, y)."""
    insp.events.handle({"type": "mousedown", "dataX": x, "dataY": y})
    insp.events.handle({"type": "mouseup", "dataX": x + dx, "dataY": y + dy})


def _heat_pixel(insp: TileInspector, row: int, col: int) -> tuple[float, float]:
    return pixel_of(insp.weights_view.axes[2], col, row)


def test_locate_inverts_pixel_of() -> None:
    insp = TileInspector(_inference_tile())
    ax = insp.weights_view.axes[2]
    x, y = pixel_of(ax, 7.0, 4.0)
    point = locate(insp.weights_panel.figure, x, y)
    assert point is not None and point.axes is ax
    assert (point.x, point.y) == pytest.approx((7.0, 4.0), abs=1e-9)
    assert locate(insp.weights_panel.figure, 1.0, 1.0) is None  # the figure's margin


def test_click_on_a_heatmap_pixel_selects_that_weight_and_highlights_every_view() -> None:
    tile = _inference_tile()
    tile.drift_weights(3600.0)
    calls: list[tuple] = []

    def fake_trace(t, row, col, t_steps):  # the view draws whatever the library returns
        calls.append((t, row, col, list(t_steps)))
        n = len(t_steps)
        return types.SimpleNamespace(
            row=row, col=col, t_steps=list(t_steps), device_names=["g+", "g-"],
            g_target=[5.0, 0.0], g_programmed=[5.2, 0.1],
            g_drifted=np.linspace(5.0, 4.0, 2 * n).reshape(n, 2), nu=[0.05, 0.06],
            g_read=np.linspace(5.0, 4.0, 2 * n).reshape(n, 2) + 0.01,
            weight_read=np.full(n, 0.2), weight_effective=np.full(n, 0.21), weight_target=0.2)

    insp = TileInspector(tile)
    insp.extra.trace_function = fake_trace
    weights_before = bytes(insp.weights_panel.image.value)
    cond_before = bytes(insp.extra.panel.image.value)
    _press(insp, *_heat_pixel(insp, 5, 11))

    assert insp.errors == []
    assert insp.selected == (5, 11)
    assert calls == [(tile, 5, 11, insp.extra.t_steps)]
    assert insp.trace.row == 5 and insp.trace.col == 11
    # every view of the tile marks the weight
    assert tuple(insp.weights_view.heat_marker.get_data()[0]) == (11,)
    view = insp.weights_view
    assert view.heat_marker.get_visible() and view.scatter_marker.get_visible()
    target = float(insp.target[5, 11])
    read = float(insp.read_weight[5, 11])
    assert insp.weights_view.scatter_marker.get_data()[0][0] == pytest.approx(target)
    assert insp.weights_view.scatter_marker.get_data()[1][0] == pytest.approx(read)
    assert insp.weights_view.hist_marker.get_xdata()[0] == pytest.approx(read - target)
    for k, (prog, drift) in enumerate(insp.extra._markers):
        assert prog.get_xdata()[0] == pytest.approx(float(tile.g_programmed[k, 5, 11]))
        assert drift.get_xdata()[0] == pytest.approx(float(tile.g_drifted[k, 5, 11]))
    assert bytes(insp.weights_panel.image.value) != weights_before
    assert bytes(insp.extra.panel.image.value) != cond_before
    # the selected weight's conductances, as stored in the tile
    html = insp.selection_readout.value
    assert "row 5, col 11" in html
    assert f"{float(tile.g_programmed[0, 5, 11]):.3f}" in html
    assert f"{float(tile.drift_nu[1, 5, 11]):.4f}" in html
    insp.refresh("trace")
    assert "weight (5, 11)" in insp.extra._trace_axes[0].get_title(loc="left")


def test_select_from_code_is_the_same_trait_and_is_validated() -> None:
    tile = _inference_tile()
    insp = TileInspector(tile)
    seen: list[object] = []
    insp.observe(lambda change: seen.append(change["new"]), names="selected")
    insp.select(2, 3)
    assert insp.selected == (2, 3) and seen == [(2, 3)]
    insp.selected = (np.int64(4), 1)  # numpy integers are fine
    assert insp.selected == (4, 1)
    for bad in [(12, 0), (0, 20), (-1, 0), (1.5, 2), (1,), "ab"]:
        with pytest.raises(traitlets.TraitError, match="selected: expected"):
            insp.selected = bad
        assert insp.selected == (4, 1)
    insp.select(None)
    assert insp.selected is None and not insp.weights_view.heat_marker.get_visible()


def test_hover_shows_the_value_under_the_pointer() -> None:
    tile = TileWithPeriphery(10, 14, seed=2)
    tile.set_weights(torch.randn(10, 14, generator=torch.Generator().manual_seed(1)) * 0.2)
    insp = TileInspector(tile)
    x, y = _heat_pixel(insp, 6, 9)
    insp.events.handle({"type": "mousemove", "dataX": x, "dataY": y})
    html = insp.hover_readout.value
    err = abs(float(insp.read_weight[6, 9]) - float(insp.target[6, 9]))
    assert "anatile-row'>6<" in html and "anatile-col'>9<" in html
    assert f"{err:.4g}" in html
    # hovering the scatter names the nearest drawn point
    ax_sc = insp.weights_view.axes[0]
    flat = int(insp.scatter_indices()[17])
    row, col = divmod(flat, 14)
    px = pixel_of(ax_sc, float(insp.target[row, col]), float(insp.read_weight[row, col]))
    insp.events.handle({"type": "mousemove", "dataX": px[0], "dataY": px[1]})
    assert f"anatile-row'>{row}<" in insp.hover_readout.value


def test_wheel_zooms_drag_pans_and_zoom_resets_the_heatmap() -> None:
    tile = _inference_tile(40, 60)
    insp = TileInspector(tile)
    ax = insp.weights_view.axes[2]
    full_x = ax.get_xlim()
    x, y = _heat_pixel(insp, 20, 30)
    insp.events.handle({"type": "wheel", "dataX": x, "dataY": y, "deltaY": -100})
    x0, x1 = ax.get_xlim()
    assert x1 - x0 == pytest.approx((full_x[1] - full_x[0]) / 1.25)
    assert x0 < 30 < x1
    insp.zoom(rows=(10, 19), cols=(0, 9))
    assert ax.get_xlim() == pytest.approx((-0.5, 9.5))
    assert ax.get_ylim() == pytest.approx((19.5, 9.5))  # rows run downwards
    # a drag to the left by 3 cells pans right by 3 cells
    sx, sy = pixel_of(ax, 5.0, 15.0)
    ex, _ = pixel_of(ax, 2.0, 15.0)
    _press(insp, sx, sy, dx=ex - sx)
    assert ax.get_xlim() == pytest.approx((2.5, 12.5), abs=1e-6)
    assert insp.selected is None  # a drag is not a click
    insp.zoom()
    assert ax.get_xlim() == pytest.approx((-0.5, 59.5))
    with pytest.raises(ValueError, match="rows: expected"):
        insp.zoom(rows=(5, 40))
    assert insp.errors == []


def test_inspector_opened_on_a_drifted_tile_shows_its_time_and_alpha() -> None:
    tile = _inference_tile()
    tile.drift_weights(86400.0)
    state = tile.generator.get_state()
    insp = TileInspector(tile)
    panel = insp.extra
    assert insp.t_inference == pytest.approx(86400.0)
    torch.testing.assert_close(insp.alpha, tile.alpha)
    assert panel.t_slider.value == pytest.approx(86400.0)
    assert f"{float(tile.alpha):.4f}" in panel.readout.value
    assert "8.64e+04 s" in panel.readout.value
    # opening showed the state without drifting or reading again
    assert tile.t_inference == pytest.approx(86400.0)
    assert torch.equal(tile.generator.get_state(), state)
    torch.testing.assert_close(insp.read_weight, tile.effective_weights().double())


def test_an_outside_drift_updates_an_open_model_inspector() -> None:
    torch.manual_seed(0)
    model = convert_to_analog(nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4)),
                              InferenceRPUConfig())
    mi = ModelInspector(model)
    insp = mi.inspector
    drift_analog_weights(model, 3600.0)  # "another cell"
    tile = insp.tile
    assert insp.t_inference == pytest.approx(3600.0)
    assert insp.extra.t_slider.value == pytest.approx(3600.0)
    torch.testing.assert_close(insp.alpha, tile.alpha)
    assert f"{float(tile.alpha):.4f}" in insp.extra.readout.value
    torch.testing.assert_close(insp.read_weight, tile.effective_weights().double())
    assert insp.errors == [] and mi.errors == []


def test_export_writes_png_at_the_chosen_dpi_and_svg(tmp_path: Path) -> None:
    insp = TileInspector(_inference_tile())
    low = insp.export(tmp_path, formats=("png",), dpi=50, stem="low")
    high = insp.export(tmp_path, formats=("png", "svg"), dpi=100, stem="high")
    names = sorted(p.name for p in high)
    assert names == sorted(f"high_{panel}.{fmt}" for panel in insp._panels
                           for fmt in ("png", "svg"))
    w_low = Image.open(tmp_path / "low_weights.png").width
    w_high = Image.open(tmp_path / "high_weights.png").width
    assert w_high == pytest.approx(2 * w_low, abs=2)
    assert (tmp_path / "high_weights.svg").read_text().lstrip().startswith("<?xml")
    assert len(low) == len(insp._panels)
    before = sorted(tmp_path.iterdir())
    for kwargs, match in [({"formats": ("gif",)}, "formats"), ({"dpi": 0}, "dpi"),
                          ({"directory": tmp_path / "missing"}, "directory")]:
        with pytest.raises(ValueError, match=match):
            insp.export(**{"directory": tmp_path, **kwargs})
    assert sorted(tmp_path.iterdir()) == before
    # the button does the same with the controls' values
    insp.export_folder.value = str(tmp_path)
    insp.export_format.value = "svg"
    insp.export_button.click()
    assert insp.errors == [] and "TileInspector_weights.svg" in insp.export_result.value


def test_compare_two_tiles_shares_axes_and_colour_scale() -> None:
    from anatile.widgets import TileComparison, compare

    a = _inference_tile(seed=3)
    b = _inference_tile(seed=4)
    a.drift_weights(10.0)
    b.drift_weights(3e7)
    view = compare(a, b, names=["early", "late"])
    assert isinstance(view, TileComparison) and view.errors == []
    ax = view.axes
    assert ax[0, 0].get_xlim() == ax[1, 0].get_xlim() and ax[0, 0].get_ylim() == ax[1, 0].get_ylim()
    assert ax[0, 1].get_ylim() == ax[1, 1].get_ylim()
    clims = [im.get_clim() for row in ax[:, 2] for im in row.get_images()]
    assert clims[0] == clims[1]
    errs = [float((w - t).abs().max()) for t, w in zip(view.targets, view.weights, strict=True)]
    assert clims[0][1] == pytest.approx(max(errs))
    torch.testing.assert_close(view.weights[1], b.effective_weights().double())
    assert "late" in view.readout.value
    with pytest.raises(TypeError, match="two tiles or two conductance converters"):
        compare(a, "b")
