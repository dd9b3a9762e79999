"""The widgets as instruments in a real JupyterLab + Chromium: hover shows the value under the
pointer, a click on a heatmap cell shows that weight's conductances, and the WPOMonitor's
TNMSE panel moves during a run (two screenshots taken mid-run differ).

The kernel prints where a heatmap cell lies in the figure's image (``pixel_of``); the test
turns that into page coordinates through the image's on-screen box, so the pointer lands on
the cell however the page scales the image. Screenshots are taken during the action; with
``ANATILE_WRITE_SCREENSHOTS=1`` they replace the ones in ``docs/img/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

IMG_DIR = Path(__file__).resolve().parents[2] / "docs" / "img"

INSPECTOR = """\
import json
import torch
from anatile.tiles import InferenceTile
from anatile.widgets import TileInspector
from anatile.widgets._interact import pixel_of
tile = InferenceTile(48, 64, seed=2)
tile.set_weights(torch.randn(48, 64, generator=torch.Generator().manual_seed(0)) * 0.3)
tile.drift_weights(86400.0)  # the inspector opens on this state
insp = TileInspector(tile)
insp.add_class("nb-insp")
insp
"""

WHERE = """\
ax = insp.weights_view.axes[2]
fig = insp.weights_panel.figure
cells = {f"{r},{c}": pixel_of(ax, c, r) for r, c in [(5, 11), (30, 40)]}
g = {k: [float(tile.g_programmed[d, 5, 11]) for d in range(2)] for k in ["5,11"]}
print("WHERE=" + json.dumps({"cells": cells, "size": [fig.bbox.width, fig.bbox.height],
                             "g": g}))
"""

WPO = """\
from anatile.config import InferenceRPUConfig
from anatile.inference import DualPairConductanceConverter
from anatile.widgets import WPOMonitor
from anatile.wpo import WeightProgrammingOptimizer
opt = WeightProgrammingOptimizer(
    torch.randn(20000, generator=torch.Generator().manual_seed(1)) * 0.1, [None, None],
    InferenceRPUConfig(), [1.0, 3600.0, 86400.0, 3e7], DualPairConductanceConverter([1.0, 1.0]),
    popsize=8, maxiter=5000, baseline_iterations=4, polish=False, callback=None, atol=0.0,
    test_in_features=128, test_out_features=8, seed=4, compile=False)
monitor = WPOMonitor(opt)
monitor.add_class("nb-wpo")
monitor
"""


def _where(page) -> dict:
    for text in page.locator(".jp-OutputArea-output").all_text_contents():
        if "WHERE=" in text:
            return json.loads(text.split("WHERE=", 1)[1].strip().splitlines()[0])
    raise AssertionError("the kernel did not print the cell positions")


def _page_point(page, image, where: dict, cell: str) -> tuple[float, float]:
    """Page coordinates of a heatmap cell: image pixel scaled by the image's on-screen box."""
    box = image.bounding_box()
    natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    x, y = where["cells"][cell]
    return box["x"] + x * box["width"] / natural[0], box["y"] + y * box["height"] / natural[1]


def _wait_text(page, selector: str, predicate_js: str, timeout: int = 60_000) -> None:
    page.wait_for_function(
        f"""() => {{
            const el = document.querySelector({selector!r});
            return !!el && ({predicate_js})(el.textContent);
        }}""",
        timeout=timeout,
    )


def test_hover_click_and_a_live_monitor_in_jupyterlab(lab_page, tmp_path: Path) -> None:
    out_dir = IMG_DIR if os.environ.get("ANATILE_WRITE_SCREENSHOTS") == "1" else tmp_path
    page = lab_page.page
    page.set_viewport_size({"width": 1280, "height": 2600})
    lab_page.open_and_run("anatile_instruments", [INSPECTOR, WHERE, WPO], timeout_ms=120_000)
    insp = page.locator(".nb-insp")
    insp.wait_for(state="attached", timeout=90_000)
    insp.scroll_into_view_if_needed()
    # it opened on the tile's drift: 1 day, with its alpha
    _wait_text(page, ".nb-insp .anatile-t", "t => t.includes('8.64e+04')")
    where = _where(page)
    image = insp.locator("img").nth(1)  # scales, weights, ...: the weights figure
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.nb-insp img'))"
        ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)

    # --- hover: the value under the pointer -------------------------------------------
    x, y = _page_point(page, image, where, "30,40")
    page.mouse.move(x - 3, y)
    page.mouse.move(x, y)
    # the first move already lands in row 30 (column 39); the throttled browser events
    # deliver the last position shortly after, so wait for both coordinates
    _wait_text(page, ".nb-insp .anatile-hover .anatile-row", "t => t.trim() === '30'")
    _wait_text(page, ".nb-insp .anatile-hover .anatile-col", "t => t.trim() === '40'")
    hover_value = page.locator(".nb-insp .anatile-hover .anatile-error").text_content()
    assert float(hover_value) >= 0.0
    insp.screenshot(path=str(out_dir / "inspector_hover.png"))

    # --- click: that weight's conductances ----------------------------------------------
    before = image.evaluate("img => img.src")
    trace_before = page.evaluate(
        "() => document.querySelector('.nb-insp .anatile-panel-trace').src")
    x, y = _page_point(page, image, where, "5,11")
    start = page.evaluate("() => performance.now()")
    page.mouse.click(x, y)
    _wait_text(page, ".nb-insp .anatile-selected", "t => t.includes('row 5, col 11')")
    click_ms = page.evaluate("() => performance.now()") - start
    print(f"click -> selection shown in the page: {click_ms:.0f} ms")
    table = insp.locator(".anatile-conductances")
    table.wait_for(state="visible", timeout=30_000)
    text = table.text_content() or ""
    for g in where["g"]["5,11"]:
        assert f"{g:.3f}" in text  # the programmed conductance of each device
    page.wait_for_function(
        f"() => document.querySelectorAll('.nb-insp img')[1].src !== {before!r}",
        timeout=30_000)  # the heatmap now marks the weight
    page.wait_for_function(  # and the trace panel shows the weight's conductances over time
        f"() => document.querySelector('.nb-insp .anatile-panel-trace').src !== "
        f"{trace_before!r}", timeout=30_000)
    page.wait_for_timeout(300)
    insp.screenshot(path=str(out_dir / "inspector_click.png"))

    # --- WPOMonitor: the TNMSE panel moves during the run -------------------------------
    wpo = page.locator(".nb-wpo")
    wpo.scroll_into_view_if_needed()
    wpo.locator("button:has-text('Start')").click()
    _wait_text(page, ".nb-wpo .anatile-generation",
               "t => parseInt(t) >= 2", timeout=120_000)
    loss_img = wpo.locator(".anatile-panel-loss")
    # the panel redraws after the counter: wait for a frame drawn with two generations
    for _ in range(2):  # the first new frame may still be the baseline's (no generation)
        shown = loss_img.evaluate("img => img.src")
        page.wait_for_function(
            f"() => document.querySelector('.nb-wpo .anatile-panel-loss').src !== {shown!r}",
            timeout=60_000)
    first = loss_img.screenshot(path=str(out_dir / "wpo_loss_midrun_1.png"))
    gen_first = page.locator(".nb-wpo .anatile-generation").text_content()
    page.wait_for_timeout(4000)  # several frame intervals
    second = loss_img.screenshot(path=str(out_dir / "wpo_loss_midrun_2.png"))
    state = (page.locator(".nb-wpo .anatile-state").text_content() or "").strip()
    gen_second = page.locator(".nb-wpo .anatile-generation").text_content()
    wpo.screenshot(path=str(out_dir / "wpo_monitor_midrun.png"))
    assert state == "running", "the run ended before the second mid-run screenshot"
    assert gen_second != gen_first
    assert first != second  # the figure changed while the optimizer was running
    wpo.locator("button:has-text('Stop')").click()
    _wait_text(page, ".nb-wpo .anatile-state", "t => t.trim() === 'stopped'", timeout=120_000)
    status = page.locator(".nb-wpo .anatile-state").locator("xpath=../..").text_content() or ""
    assert "ETA" not in status

    assert lab_page.page_errors == []
    assert lab_page.external_requests == []
