"""The live-frame machinery: kept frames give the pixels a full redraw gives, the heatmap is
max-pooled for display while the pointer resolves exact cells, exports are full quality,
the PNG encoder is lossless, the redraw limiter keeps its duty, the per-click trace
equals the library's and its axes (live y ticks) fit each weight without a new frame."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.ticker import MaxNLocator
from PIL import Image

from anatile.analysis.trace import WeightTracer, weight_trace
from anatile.tiles import InferenceTile, TileWithPeriphery
from anatile.widgets import TileInspector
from anatile.widgets._figure import FigurePanel, encode_png, rgb_of
from anatile.widgets._interact import pixel_of
from anatile.widgets._live_ticks import LiveYTicks, tick_labels
from anatile.widgets._plots import max_pool, nice_ceil, nice_range
from anatile.widgets._throttle import Throttle


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _forced(panel) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The same layers drawn from scratch (no kept frame, none cached)."""
    panel._frame = panel._frame_key = None
    panel._frames.clear()
    return _pixels(panel.png())


def _inference_tile(n: int = 64, seed: int = 3) -> InferenceTile:
    tile = InferenceTile(n, n, seed=seed)
    tile.set_weights(torch.randn(n, n, generator=torch.Generator().manual_seed(0)) * 0.1)
    tile.drift_weights(3600.0)
    return tile


def test_kept_frame_gives_the_pixels_of_a_full_redraw() -> None:
    tile = TileWithPeriphery(256, 256, seed=0)
    gen = torch.Generator().manual_seed(1)
    tile.set_weights(torch.randn(256, 256, generator=gen) * 0.1)
    insp = TileInspector(tile)
    panel = insp.weights_panel
    base = insp.target
    draws = panel.frame_draws
    for k in range(3):  # reads of about the same spread: the axes are kept
        insp.show_weights(base + 0.01 * torch.randn(256, 256, generator=gen,
                                                    dtype=torch.float64))
        fast = _pixels(bytes(panel.image.value))
        np.testing.assert_array_equal(fast, _forced(panel), err_msg=f"read {k}")
    assert panel.frame_draws - draws <= 3 + 1  # 3 forced + at most one for a new limit
    # a read with a 10x larger error changes the limits: the frame is redrawn, not reused
    before = panel.frame_draws + panel.axes_draws
    insp.show_weights(base + 0.1 * torch.randn(256, 256, generator=gen, dtype=torch.float64))
    assert panel.frame_draws + panel.axes_draws > before
    np.testing.assert_array_equal(_pixels(bytes(panel.image.value)), _forced(panel))


def _trace_values(trace) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Every conductance and every weight value a trace draws."""
    g = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in (
        trace.g_drifted, trace.g_target, trace.g_programmed, trace.g_read)])
    w = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in (
        trace.weight_effective, trace.weight_read, [trace.weight_target])])
    return g, w


def test_trace_axes_fit_each_weight_and_a_click_never_lays_the_frame_out_again() -> None:
    tile = _inference_tile()
    insp = TileInspector(tile)
    view = insp.extra.trace_view
    panel = view.panel
    w = tile.get_weights()[0]
    n = w.shape[1]
    cells = [divmod(int(i), n) for i in (w.abs().flatten().argmin(), w.flatten().argmax(),
                                         w.flatten().argmin())] + [(10, 20), (63, 63)]
    insp.select(*cells[-1])  # the first trace: the frame is drawn once
    limits = set()
    for cell in cells:
        draws = panel.frame_draws + panel.axes_draws
        insp.select(*cell)
        assert panel.frame_draws + panel.axes_draws == draws, cell  # kept frame, no layout
        g, wv = _trace_values(insp.trace)
        for ax, ticks, values in zip(view.axes, view.y_ticks, (g, wv), strict=True):
            lo, hi = ax.get_ylim()
            assert lo <= values.min() and values.max() <= hi, cell  # the weight fits
            if ax is view.axes[1]:  # the weight's own range, not the tile's: drift shows
                span = max(values.max() - values.min(), 1e-3 * np.abs(values).max())
                assert hi - lo <= 4 * span, cell
            else:  # from 0 to just above its largest conductance
                assert hi <= 1.5 * values.max(), cell
            shown = [t for t in ticks.labels if t.get_visible()]
            assert len(ticks.values) >= 2 and len(shown) == len(ticks.values)
            assert all(lo <= v <= hi for v in ticks.values)
            assert [t.get_text() for t in shown] == tick_labels(ticks.values)
            assert [t.get_position()[1] for t in shown] == ticks.values
        limits.add(view.axes[1].get_ylim())
        np.testing.assert_array_equal(_pixels(bytes(panel.image.value)), _forced(panel),
                                      err_msg=f"{cell}")
    assert len(limits) >= 3  # the weights' axes differ, their frame is the same


def test_tick_label_stamps_draw_each_label_where_its_text_stands(tmp_path: Path) -> None:
    tile = _inference_tile()
    insp = TileInspector(tile)
    view = insp.extra.trace_view
    panel = view.panel
    for cell in [(3, 5), (40, 2), (10, 20)]:  # kept stamps, copied to new places
        insp.select(*cell)
    warm = _pixels(bytes(panel.image.value))
    stamped = [ticks.stamps.stamped for ticks in view.y_ticks]
    for ticks in view.y_ticks:  # drawn as texts at the same anchors: the same pixels
        ticks.stamps._kept.clear()
    np.testing.assert_array_equal(_forced(panel), warm)
    assert all(ticks.stamps.stamped > n for ticks, n in zip(view.y_ticks, stamped, strict=True))
    height = warm.shape[0]
    for ticks in view.y_ticks:
        for text in ticks.labels:
            if not text.get_visible():
                continue
            x, y = text.get_transform().transform(text.get_unitless_position())
            row, col = int(round(height - y)), int(round(x))
            box = warm[row - 4:row + 5, col - 12:col]  # left of the anchor (right-aligned)
            assert box.min() < 100, text.get_text()  # dark glyph pixels on white
    # an export draws the labels as texts
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        svg = panel.export(tmp_path / "trace.svg").read_text()
    for ticks in view.y_ticks:
        for label in tick_labels(ticks.values):
            assert f">{label}<" in svg


def test_y_limits_leave_the_frame_key_only_while_nothing_in_the_frame_depends_on_them() -> None:
    panel = FigurePanel((4.0, 2.0))
    ax = panel.figure.subplots()
    ax.set_xlim(0.0, 1.0)
    ticks = LiveYTicks(panel, ax)
    ticks.set_ylim(0.0, 1.0)
    key = panel.frame_key()
    ticks.set_ylim(-3.0, 7.0)
    assert panel.frame_key() == key and ticks.values[0] >= -3.0 and ticks.values[-1] <= 7.0
    (line,) = ax.plot([0, 1], [0, 1])  # a static line in data coordinates: ylim counts
    assert panel.frame_key() != key
    line.remove()
    assert panel.frame_key() == key
    ax.yaxis.set_major_locator(MaxNLocator(3))  # locator ticks in the frame: ylim counts
    assert panel.frame_key() != key


def test_tick_labels_use_the_fewest_exact_decimals() -> None:
    assert tick_labels([0.0, 2.5, 5.0, 7.5]) == ["0.0", "2.5", "5.0", "7.5"]
    assert tick_labels([-0.1, 0.0, 0.1, 0.2]) == ["\u22120.1", "0.0", "0.1", "0.2"]
    assert tick_labels([-0.005, -0.0025, 1e-19]) == ["\u22120.0050", "\u22120.0025", "0.0000"]
    assert tick_labels([10.0, 20.0]) == ["10", "20"] and tick_labels([]) == []


def test_limits_seen_before_restore_their_cached_frame_with_the_same_pixels() -> None:
    tile = TileWithPeriphery(64, 64, seed=0)
    gen = torch.Generator().manual_seed(1)
    tile.set_weights(torch.randn(64, 64, generator=gen) * 0.1)
    insp = TileInspector(tile)
    panel = insp.weights_panel
    base = insp.target
    small = base + 0.01 * torch.randn(64, 64, generator=gen, dtype=torch.float64)
    large = base + 0.1 * torch.randn(64, 64, generator=gen, dtype=torch.float64)
    insp.show_weights(small)
    key_small = panel._frame_key
    insp.show_weights(large)  # other limits: another frame
    assert panel._frame_key != key_small
    hits, draws = panel.frame_hits, panel.frame_draws + panel.axes_draws
    insp.show_weights(small)  # back to the first limits: their frame comes from the cache
    assert panel._frame_key == key_small
    assert panel.frame_hits == hits + 1
    assert panel.frame_draws + panel.axes_draws == draws
    np.testing.assert_array_equal(_pixels(bytes(panel.image.value)), _forced(panel))
    insp.show_weights(large)
    np.testing.assert_array_equal(_pixels(bytes(panel.image.value)), _forced(panel))


def test_heatmap_is_max_pooled_for_display_and_a_click_still_hits_the_exact_cell() -> None:
    tile = TileWithPeriphery(512, 512, seed=0)
    tile.set_weights(torch.zeros(512, 512))
    insp = TileInspector(tile)
    read = insp.target.clone()
    read[301, 77] = 0.5  # one bad weight
    insp.show_weights(read)
    view = insp.weights_view
    fr, fc = view.heat_pool
    assert fr > 1 and fc > 1  # 512 cells on ~200 pixels
    shown = np.asarray(view.heat.get_array())
    assert shown.shape == (-(-512 // fr), -(-512 // fc))
    # the bad cell survives the reduction, in its block
    assert shown[301 // fr, 77 // fc] == pytest.approx(0.5)
    assert np.count_nonzero(np.nan_to_num(shown)) == 1
    # the pointer resolves the exact cell, not the block
    for row, col in [(301, 77), (300, 78), (0, 511)]:
        x, y = pixel_of(view.axes[2], col, row)
        insp.events.handle({"type": "mousedown", "dataX": x, "dataY": y})
        insp.events.handle({"type": "mouseup", "dataX": x, "dataY": y})
        assert insp.selected == (row, col)
    # zoomed in, every cell is drawn
    insp.zoom(rows=(290, 320), cols=(60, 90))
    assert view.heat_pool == (1, 1)
    assert np.asarray(view.heat.get_array()).shape == (31, 31)


def test_export_draws_the_heatmap_at_the_export_resolution(tmp_path: Path) -> None:
    tile = TileWithPeriphery(512, 512, seed=0)
    tile.set_weights(torch.randn(512, 512, generator=torch.Generator().manual_seed(0)) * 0.1)
    insp = TileInspector(tile)
    view = insp.weights_view
    live_pool = view.heat_pool
    seen: list[tuple[int, int]] = []
    draw = view.draw_heatmap

    def spy(scale: float = 1.0) -> None:
        draw(scale)
        seen.append(view.heat_pool)

    insp.weights_panel.prepare_export = spy
    insp.weights_panel.export(tmp_path / "w.svg")
    insp.weights_panel.export(tmp_path / "w.png", dpi=400)
    assert seen[0] == (1, 1)  # SVG: every cell
    assert seen[2][0] < live_pool[0]  # 5x the live dpi: finer blocks
    assert view.heat_pool == live_pool  # the live frame is back
    with Image.open(tmp_path / "w.png") as im:
        assert im.size == (11 * 400, round(3.3 * 400))


def test_encode_png_is_lossless() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_pixels(encode_png(rgb)), rgb)
    rgba = np.random.default_rng(1).integers(0, 256, (37, 53, 4), dtype=np.uint8)
    got = rgb_of(rgba)
    assert got.flags.c_contiguous and got.shape == (37, 53, 3)
    np.testing.assert_array_equal(got, rgba[:, :, :3])
    with pytest.raises(ValueError, match="rgb"):
        encode_png(rgb[:, :, :2])


def test_nice_limits_and_max_pool() -> None:
    assert nice_ceil(0.37) == pytest.approx(0.4)
    assert nice_ceil(1.0) == 1.0 and nice_ceil(101.0) == 125.0
    assert nice_ceil(-1.0) == 1.0 and nice_ceil(float("nan")) == 1.0
    lo, hi = nice_range(np.array([0.013, 0.087]))
    assert lo < 0.013 and hi > 0.087 and nice_range(np.array([0.0131, 0.0869])) == (lo, hi)
    values = np.arange(20, dtype=float).reshape(4, 5)
    pooled = max_pool(values, 2, 2)
    np.testing.assert_array_equal(pooled, [[6, 8, 9], [16, 18, 19]])


def test_throttle_requests_during_a_call_wait_for_the_duty_gap() -> None:
    """A request arriving while a slow call runs is served after the duty gap, not right
    after the call (that doubled the WPOMonitor's frame rate and its overhead)."""
    starts: list[float] = []
    running = threading.Event()

    def slow() -> None:
        starts.append(time.monotonic())
        running.set()
        end = time.thread_time() + 0.05  # CPU: the duty limit counts CPU time
        while time.thread_time() < end:
            pass

    throttle = Throttle(slow, min_interval=0.0, max_duty=0.2)  # gap >= 4 x 0.05 s
    throttle.request()
    assert running.wait(2.0)
    throttle.request()  # during the call
    deadline = time.monotonic() + 3.0
    while len(starts) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(starts) == 2
    assert starts[1] - starts[0] >= 0.05 + 4 * 0.05 * 0.9 - 0.01


def test_weight_tracer_is_weight_trace_and_follows_a_new_drift() -> None:
    tile = _inference_tile(32)
    times = [1.0, 3600.0, 86400.0, 3e7]
    tracer = WeightTracer(tile, times, seed=4)
    for row, col in [(0, 0), (5, 17), (31, 31)]:
        got, expected = tracer.trace(row, col), weight_trace(tile, row, col, times, seed=4)
        for name in ("g_drifted", "g_read", "alpha", "weight_read", "weight_effective"):
            torch.testing.assert_close(getattr(got, name), getattr(expected, name),
                                       rtol=0, atol=0)
    before = tracer.trace(5, 17)
    tile.drift_weights(1e5)  # a new tile state: the array-wide part is recomputed
    after, expected = tracer.trace(5, 17), weight_trace(tile, 5, 17, times, seed=4)
    torch.testing.assert_close(after.alpha, expected.alpha, rtol=0, atol=0)
    torch.testing.assert_close(after.g_read, expected.g_read, rtol=0, atol=0)
    assert not torch.equal(after.g_read, before.g_read)
