"""Smoke test of the real-browser pipeline with a plain ipywidgets slider and label."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_plain_ipywidgets_round_trip(lab_page) -> None:
    cells = [
        "import ipywidgets as w\n"
        "s = w.IntSlider(value=3, min=0, max=10, description='n')\n"
        "lab = w.Label(value='square=9')\n"
        "s.observe(lambda ch: setattr(lab, 'value', f'square={ch.new ** 2}'), 'value')\n"
        "w.VBox([s, lab])",
    ]
    lab_page.open_and_run("pipeline", cells)
    page = lab_page.page
    page.locator(".widget-slider").first.wait_for(state="visible", timeout=30_000)
    label = page.locator(".jp-OutputArea div.widget-label")
    assert label.inner_text() == "square=9"
    page.locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => document.querySelector('.jp-OutputArea div.widget-label')"
        ".textContent === 'square=16'",
        timeout=15_000,
    )
    assert lab_page.page_errors == []
    assert lab_page.external_requests == []
