"""The analysis views: the trace a click shows is weight_trace's, the error budget panel
draws error_budget, the model table gains layer_sensitivity and diagnose's findings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from anatile.analysis import SOURCES, diagnose, error_budget, layer_sensitivity, weight_trace
from anatile.analysis.metrics import WEIGHT_NRMSE
from anatile.config import InferenceRPUConfig
from anatile.nn import convert_to_analog, drift_analog_weights
from anatile.tiles import InferenceTile
from anatile.widgets import ModelInspector, TileInspector
from anatile.widgets._interact import pixel_of
from anatile.widgets.budget_view import ErrorBudgetView


def _tile() -> InferenceTile:
    tile = InferenceTile(10, 16, seed=5)
    tile.set_weights(torch.randn(10, 16, generator=torch.Generator().manual_seed(2)) * 0.3)
    tile.drift_weights(3600.0)
    return tile


def test_a_click_shows_the_weight_trace_of_the_library() -> None:
    tile = _tile()
    insp = TileInspector(tile)
    x, y = pixel_of(insp.weights_view.axes[2], 7, 3)
    insp.events.handle({"type": "mousedown", "dataX": x, "dataY": y})
    insp.events.handle({"type": "mouseup", "dataX": x, "dataY": y})
    assert insp.selected == (3, 7) and insp.errors == []
    expected = weight_trace(tile, 3, 7, insp.extra.t_steps)
    got = insp.trace
    assert (got.row, got.col) == (3, 7)
    for name in ("t_steps", "g_target", "g_programmed", "nu", "g_drifted", "g_read", "alpha",
                 "weight_read", "weight_effective"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), rtol=0, atol=0)
    assert got.weight_target == expected.weight_target
    insp.refresh("trace")
    ax_g, ax_w = insp.extra._trace_axes
    assert "weight (3, 7)" in ax_g.get_title(loc="left")
    drawn = [line for line in ax_w.get_lines() if line.get_label().startswith("effective")]
    torch.testing.assert_close(torch.as_tensor(drawn[0].get_ydata(), dtype=torch.float64),
                               expected.weight_effective)


def test_budget_panel_draws_the_library_budget(tmp_path: Path) -> None:
    tile = _tile()
    t_steps = [1.0, 86400.0]
    view = ErrorBudgetView(tile, t_steps=t_steps, compute=True)
    assert view.errors == []
    expected = error_budget(tile, t_steps, seed=0)
    torch.testing.assert_close(view.budget.weight.total, expected.weight.total)
    bars = [p for p in view._ax.patches]
    assert len(bars) == (len(SOURCES) + 1) * len(t_steps)  # sources + interaction per time
    assert view._ax.get_ylabel() == expected.weight.metric.label
    assert "largest source" in view.status.value
    paths = view.export_data(tmp_path)
    assert paths[0].name == "ErrorBudgetView_weight.csv"
    assert "total" in paths[0].read_text()
    insp = TileInspector(tile)
    opened = insp.show_budget(compute=False)
    assert isinstance(opened, ErrorBudgetView) and insp.budget_box.children == (opened,)


def test_model_table_gains_sensitivity_metric_and_findings() -> None:
    torch.manual_seed(0)
    model = convert_to_analog(nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)),
                              InferenceRPUConfig())
    drift_analog_weights(model, 86400.0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 12, generator=gen)
    y = torch.randint(0, 3, (64,), generator=gen)
    mi = ModelInspector(model, x=x, y=y, t_inference=86400.0, chips=2)
    assert mi.errors == []
    header = mi.table.children[[k for k, _ in __import__(
        "anatile.widgets.model_inspector", fromlist=["COLUMNS"]).COLUMNS].index("error")]
    assert WEIGHT_NRMSE.label in header.value
    assert [f.message for f in mi.findings] == [f.message for f in diagnose(model, x)]
    sens = mi.compute_sensitivity()
    expected = layer_sensitivity(model, x, y, 86400.0, chips=2)
    torch.testing.assert_close(sens.values, expected.values)
    by_layer = dict(zip(expected.layers, expected.mean.tolist(), strict=True))
    for row in mi.rows:
        assert row["sensitivity"] == pytest.approx(by_layer[row["layer"]])
    with pytest.raises(ValueError, match="x, y"):
        ModelInspector(model, x=x)
    assert isinstance(mi.show_budget(compute=False), ErrorBudgetView)
