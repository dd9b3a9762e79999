"""ModelInspector: a dropdown of a model's analog layers, each with its TileInspector."""

from __future__ import annotations

import ipywidgets as widgets
import pytest
import torch
from torch import nn

from anatile.config import InferenceRPUConfig
from anatile.nn import AnalogLinear, convert_to_analog
from anatile.widgets import ModelInspector, TileInspector


def _model() -> nn.Module:
    return nn.Sequential(AnalogLinear(8, 6, seed=0), nn.ReLU(), AnalogLinear(6, 3, seed=1))


def test_dropdown_lists_the_analog_layers_and_switches_inspectors() -> None:
    model = _model()
    mi = ModelInspector(model)
    assert mi.errors == []
    assert [n.split(" ")[0] for n in mi.layer_names] == ["0", "2"]
    assert "AnalogLinear" in mi.layer_names[0] and "6×8" in mi.layer_names[0]
    first = mi.inspector
    assert isinstance(first, TileInspector) and first.tile is model[0].tile
    assert mi.container.children == (first,)

    mi.layer.value = mi.layer_names[1]  # the user picks the second layer
    second = mi.inspector
    assert second.tile is model[2].tile and mi.container.children == (second,)
    second.read_button.click()
    assert second.read_weight is not None and second.read_weight.shape == (3, 6)

    mi.layer.value = mi.layer_names[0]  # switching back keeps the first inspector
    assert mi.inspector is first


def test_converted_inference_model_gets_the_drift_panel() -> None:
    torch.manual_seed(0)
    model = convert_to_analog(nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2)),
                              InferenceRPUConfig())
    mi = ModelInspector(model)
    assert len(mi.layer_names) == 2
    assert mi.inspector.extra is not None  # InferenceTile → conductances + drift slider
    assert mi._repr_png_().startswith(b"\x89PNG")


def test_bad_models() -> None:
    with pytest.raises(TypeError, match="model"):
        ModelInspector("not a model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="analog"):
        ModelInspector(nn.Linear(2, 2))


def _inference_model() -> nn.Module:
    torch.manual_seed(0)
    return convert_to_analog(nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4)),
                             InferenceRPUConfig())


def test_table_lists_layers_with_their_state_and_sorts_and_opens_on_click() -> None:
    from anatile.nn import drift_analog_weights

    model = _inference_model()
    drift_analog_weights(model, 86400.0)
    mi = ModelInspector(model)
    assert mi.errors == []
    assert [r["layer"] for r in mi.rows] == ["0", "2"]
    tiles = [model[0].analog_tile, model[2].analog_tile]
    for row, tile in zip(mi.rows, tiles, strict=True):
        assert row["t"] == pytest.approx(86400.0)
        assert row["alpha"] == pytest.approx(float(tile.alpha))
        assert row["shape"] == f"{tile.out_size}×{tile.in_size}"
        assert row["error"] > 0
    mi.sort_by.value = "error"
    mi.descending.value = True
    errors = [r["error"] for r in mi.rows]
    assert errors == sorted(errors, reverse=True)
    # a click on a layer's button opens that layer
    buttons = [c for c in mi.table.children if isinstance(c, widgets.Button)]
    target = buttons[[r["layer"] for r in mi.rows].index("2")]
    target.click()
    assert mi.inspector.tile is model[2].analog_tile
    assert mi.inspector.t_inference == pytest.approx(86400.0)  # opened on the layer's state


def test_model_drift_is_a_named_model_wide_action_and_layer_controls_say_what_they_change() -> None:
    model = _inference_model()
    mi = ModelInspector(model)
    insp = mi.inspector
    assert insp.extra.t_slider.layout.display == "none"  # no silent per-layer re-drift
    assert "Re-program layer 0" in insp.program_button.description
    assert "whole model" in mi.drift_button.description
    mi.t_model.value = 1e4  # moving the model slider alone changes nothing
    assert all(t.t_inference is None for t in (model[0].analog_tile, model[2].analog_tile))
    mi.drift_button.click()
    assert mi.errors == []
    for tile in (model[0].analog_tile, model[2].analog_tile):
        assert tile.t_inference == pytest.approx(1e4)
    assert insp.t_inference == pytest.approx(1e4)
    assert [r["t"] for r in mi.rows] == pytest.approx([1e4, 1e4])


def test_diagnosis_follows_the_model() -> None:
    from anatile.analysis import diagnose
    from anatile.nn import program_analog_weights

    model = _inference_model()
    mi = ModelInspector(model)
    assert any("not programmed" in f.message for f in mi.findings)
    program_analog_weights(model)
    mi._table_throttle.flush()  # what the tiles' events schedule
    assert [f.message for f in mi.findings] == [f.message for f in diagnose(model)]
    assert not any("not programmed" in f.message for f in mi.findings)


def test_split_layer_has_one_row_per_tile_and_opens_any_tile() -> None:
    from anatile.nn import drift_analog_weights, program_analog_weights

    cfg = InferenceRPUConfig()
    cfg.mapping.max_input_size, cfg.mapping.max_output_size = 4, 3
    torch.manual_seed(0)
    model = convert_to_analog(nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2)), cfg,
                              seed=0).eval()
    mi = ModelInspector(model)
    assert mi.errors == []
    assert [r["layer"] for r in mi.rows] == ["0[0,0]", "0[0,1]", "0[1,0]", "0[1,1]",
                                             "2[0,0]", "2[0,1]"]
    assert "3×4 of 6×8" in mi.layer_names[0] and "AnalogLinear, InferenceTile" in mi.layer_names[0]
    assert mi.inspector.tile is model[0].tile_array.tile(0, 0)
    before = mi._map.image.value
    assert before[:8] == b"\x89PNG\r\n\x1a\n"  # the layer view is drawn
    # a click on tile (1, 0) opens its TileInspector; the layer view redraws (outline moves)
    insp = mi.open_layer(mi.layer_names[2])
    assert insp.tile is model[0].tile_array.tile(1, 0)
    assert mi.container.children == (insp,)
    assert mi._map.image.value != before
    # programming and drift reach every tile's row: own alpha, own error; sortable
    program_analog_weights(model)
    drift_analog_weights(model, 86400.0)
    mi.refresh_table()
    by_name = {r["layer"]: r for r in mi.rows}
    for p in model[0].analog_tiles():
        row = by_name[f"0[{p.row},{p.col}]"]
        assert row["alpha"] == pytest.approx(float(p.tile.alpha))
        assert row["error"] > 0 and row["shape"] == f"{p.shape[0]}×{p.shape[1]}"
    mi.sort_by.value = "error"
    mi.descending.value = True
    errors = [r["error"] for r in mi.rows]
    assert errors == sorted(errors, reverse=True)
    assert mi.errors == [] and mi._repr_png_().startswith(b"\x89PNG")
