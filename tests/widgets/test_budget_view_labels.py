"""The budget view names tiles as the ModelInspector does and says how it attributes."""

from __future__ import annotations

import pytest
import torch

from anatile.analysis import error_budget
from anatile.config import InferenceRPUConfig
from anatile.nn import convert_to_analog
from anatile.widgets.budget_view import ErrorBudgetView


def test_selector_lists_layers_and_the_tiles_of_a_split_layer(one_thread: None) -> None:
    cfg = InferenceRPUConfig()
    cfg.mapping.max_input_size = 16
    net = torch.nn.Sequential(torch.nn.Linear(40, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    model = convert_to_analog(net, cfg, seed=0)
    view = ErrorBudgetView(model, t_steps=[1.0, 3600.0], compute=True)
    assert view.level.options == ("(whole)", "0", "0[0,0]", "0[0,1]", "0[0,2]", "2")
    assert "tile_array" not in view.findings_area.value  # findings name tiles the same way
    assert "<code>0[0,1]</code>" in view.findings_area.value
    view.level.value = "0[0,1]"
    expected = error_budget(model, [1.0, 3600.0], seed=0).children[0].children[1]
    torch.testing.assert_close(view._table().total, expected.weight.total)
    assert "Shapley values" in view.status.value
    # the total's marker stays inside the axes (a bar's sticky bottom no longer pins it)
    top = float(view._table().total.max())
    assert view._ax.get_ylim()[1] > top


def test_leave_one_out_view_says_so() -> None:
    tile = convert_to_analog(torch.nn.Sequential(torch.nn.Linear(8, 4)),
                             InferenceRPUConfig(), seed=0)
    view = ErrorBudgetView(tile, t_steps=[1.0], compute=True, attribution="leave_one_out")
    assert view.budget.weight.attribution == "leave_one_out"
    assert "leave-one-out parts;" in view.status.value
    with pytest.raises(ValueError, match="attribution"):
        ErrorBudgetView(tile, attribution="owen")
