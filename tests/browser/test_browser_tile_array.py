"""The per-tile view of a split layer in a real JupyterLab + Chromium.

A notebook converts a model whose first layer spans 2×3 tiles, programs and drifts it and
shows a ModelInspector. The test checks that the table has one row per tile with its own
alpha, that the layer view (full weight matrix with tile boundaries) is a decoded image,
clicks a tile's row and sees that tile's TileInspector open and the layer view redraw.
No page errors, no request leaving 127.0.0.1. With ``ANATILE_WRITE_SCREENSHOTS=1`` the
screenshot replaces
``docs/img/model_inspector_tiles.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

IMG_DIR = Path(__file__).resolve().parents[2] / "docs" / "img"

CELL = """\
import torch
from torch import nn
from anatile.config import InferenceRPUConfig
from anatile.nn import convert_to_analog, drift_analog_weights, program_analog_weights
from anatile.widgets import ModelInspector
torch.manual_seed(0)
cfg = InferenceRPUConfig()
cfg.mapping.max_input_size, cfg.mapping.max_output_size = 24, 20
model = convert_to_analog(nn.Sequential(nn.Linear(70, 40), nn.ReLU(), nn.Linear(40, 10)), cfg,
                          seed=0).eval()
with torch.no_grad():  # one block with much smaller weights: its tile drifts differently
    model[0].set_weights(torch.cat([model[0].get_weights()[0][:, :47],
                                    0.05 * model[0].get_weights()[0][:, 47:]], dim=1))
program_analog_weights(model)
drift_analog_weights(model, 86400.0)
mi = ModelInspector(model)
mi.add_class("nb-tiles")
mi
"""


def test_tile_table_layer_view_and_tile_inspector(lab_page, tmp_path: Path) -> None:
    out_dir = IMG_DIR if os.environ.get("ANATILE_WRITE_SCREENSHOTS") == "1" else tmp_path
    # tall enough for the whole widget (table, diagnosis, layer map, tile inspector)
    lab_page.page.set_viewport_size({"width": 1280, "height": 3200})
    lab_page.open_and_run("anatile_tiles", [CELL], timeout_ms=90_000)
    page = lab_page.page
    widget = page.locator(".nb-tiles")
    widget.wait_for(state="attached", timeout=90_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('.nb-tiles .anatile-layer-map');"
        " return !!i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
    assert page.locator("text=VBox(children=").count() == 0
    # one table row per tile of the split layer, then the 1×2 tiles of the last layer
    buttons = widget.locator(".anatile-layer-table .anatile-layer-button")
    names = [n.replace("\xa0", " ").strip() for n in buttons.all_inner_texts()]
    assert names == ["0[0,0]", "0[0,1]", "0[0,2]", "0[1,0]", "0[1,1]", "0[1,2]", "2[0,0]",
                     "2[0,1]"]
    alphas = widget.locator(".anatile-layer-table .anatile-cell-alpha").all_inner_texts()
    # each tile has its own compensation: a small tile's alpha can fall below 1 on read
    # noise, but the drifted layer's alphas are finite, positive and above 1 on average
    values = [float(a) for a in alphas]
    assert len(values) == 8 and all(v > 0.0 for v in values)
    assert sum(values) / len(values) > 1.0
    title = widget.locator(".anatile-title").first
    assert "20×24" in (title.text_content() or "")  # tile (0, 0) is open
    before = page.evaluate("() => document.querySelector('.nb-tiles .anatile-layer-map').src")
    buttons.nth(4).click()  # the user clicks tile (1, 1): 20×23
    page.wait_for_function(
        "() => { const t = document.querySelector('.nb-tiles .anatile-title');"
        " return !!t && t.textContent.includes('20×23'); }", timeout=30_000)
    # the layer view redraws with the new tile outlined
    page.wait_for_function(
        f"() => document.querySelector('.nb-tiles .anatile-layer-map').src !== {before!r}",
        timeout=30_000)
    lab_page.wait_idle()
    page.wait_for_timeout(400)
    assert lab_page.page_errors == [] and lab_page.external_requests == []
    widget.scroll_into_view_if_needed()
    png = widget.screenshot(path=str(out_dir / "model_inspector_tiles.png"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    # --- a drift in another cell updates the open inspector ------------------------------
    panels = [".anatile-layer-map", ".anatile-panel-weights", ".anatile-panel-conductance"]
    before = {p: page.evaluate(f"() => document.querySelector('.nb-tiles {p}').src")
              for p in panels}
    lab_page.add_and_run_cell("drift_analog_weights(model, 3e7)  # one year, from code")
    page.wait_for_function(  # the table follows: every tile's drift time is one year now
        "() => { const c = document.querySelectorAll('.nb-tiles .anatile-cell-t');"
        " return c.length === 8 && Array.from(c).every(e => e.textContent.includes('3e+07')); }",
        timeout=60_000)
    page.wait_for_function(  # the open tile's inspector shows that time
        "() => { const t = document.querySelector('.nb-tiles .anatile-drift-readout');"
        " return !!t && t.textContent.includes('3e+07'); }", timeout=60_000)
    page.wait_for_function(  # and its weights panel: the compensated weights at one year
        "() => { const t = document.querySelector('.nb-tiles .anatile-shown');"
        " return !!t && t.textContent.includes('3e+07'); }", timeout=60_000)
    for panel, src in before.items():  # the layer map and the open tile's figures redraw
        page.wait_for_function(
            f"() => document.querySelector('.nb-tiles {panel}').src !== {src!r}",
            timeout=30_000)
    lab_page.wait_idle()
    page.wait_for_timeout(1000)
    # the model-wide time control (the widget's first slider) shows the model's time
    t_readout = (widget.locator(".widget-readout").first.text_content() or "").strip()
    assert float(t_readout) == 3e7, t_readout
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(out_dir / "model_inspector_external_drift.png"))
    assert lab_page.page_errors == [] and lab_page.external_requests == []
