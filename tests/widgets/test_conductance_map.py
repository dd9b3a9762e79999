"""ConductanceMapView: g(w) curves from the converters, TNMSE over time from the WPO loss."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from anatile.config import InferenceRPUConfig
from anatile.inference import (
    DualPairConductanceConverter,
    PCMLikeNoiseModel,
    SingleDeviceConductanceConverter,
    SinglePairConductanceConverter,
)
from anatile.tiles import InferenceTile
from anatile.widgets import ConductanceMapView


def test_curves_are_the_converters_conductances() -> None:
    convs = [SinglePairConductanceConverter(), DualPairConductanceConverter([1.0, 3.0]),
             SingleDeviceConductanceConverter()]
    view = ConductanceMapView(*convs)
    assert view.errors == []
    assert [len(lines) for lines in view.curves] == [2, 4, 1]
    for conv, lines in zip(convs, view.curves, strict=True):
        w = torch.as_tensor(lines[0].get_xdata(), dtype=torch.float64)
        gs, _ = conv.device_conductances(w)
        for line, g in zip(lines, gs, strict=True):
            np.testing.assert_allclose(line.get_ydata(), g.numpy())
        assert [line.get_label() for line in lines] == conv.device_names
    assert not hasattr(view, "tnmse_panel")  # no noise model, no TNMSE panel


def test_tnmse_over_time_comes_from_the_wpo_loss() -> None:
    from anatile.wpo.loss import loss_weights

    weights = torch.randn(4, 64, generator=torch.Generator().manual_seed(5))
    convs = [SinglePairConductanceConverter(), DualPairConductanceConverter([1.0, 3.0])]
    noise = PCMLikeNoiseModel()
    t_steps = [1.0, 3600.0, 1e7]
    view = ConductanceMapView(*convs, noise_model=noise, weights=weights, t_steps=t_steps,
                              seed=7, names=["single", "dual"])
    assert view.errors == []
    assert view.tnmse is not None and view.tnmse.shape == (2, 3)
    assert np.isfinite(view.tnmse).all()
    for row, line in zip(view.tnmse, view._tnmse_lines, strict=True):
        np.testing.assert_allclose(line.get_ydata(), row)
        np.testing.assert_allclose(line.get_xdata(), t_steps)
    # the same computation done by hand, for the dual pair at the last time
    cfg = InferenceRPUConfig()
    cfg.noise_model = copy.deepcopy(noise)
    cfg.noise_model.g_converter = convs[1]
    tile = InferenceTile(4, 64, rpu_config=cfg, seed=7)
    tile.eval()
    expected = [loss_weights(tile, [t], weights, float(weights.abs().max()), math.inf, 0.0,
                             get_baseline=True) for t in t_steps]
    np.testing.assert_allclose(view.tnmse[1], expected)


def test_recompute_button_draws_new_noise_in_the_background_with_progress() -> None:
    view = ConductanceMapView(SinglePairConductanceConverter(), noise_model=PCMLikeNoiseModel(),
                              weights=torch.ones(2, 8) * 0.5, t_steps=[1.0, 100.0], seed=4)
    before = view.tnmse.copy()
    assert view.tnmse_seed == 4
    view.compute_button.click()
    assert view.wait(60)
    assert view.errors == []
    assert view.tnmse_seed == 5 and "noise seed 5" in view.progress_label.value
    assert view.tnmse.shape == before.shape and not np.array_equal(view.tnmse, before)
    assert view.progress.value == view.progress.max == 2
    assert view.compute_button.description == "Recompute TNMSE (new noise)"
    assert not view.compute_button.disabled


def test_from_optimizer_measures_on_the_optimizers_own_test_weights(tmp_path) -> None:
    import json

    from anatile.wpo import WeightProgrammingOptimizer

    weights = torch.randn(3000, generator=torch.Generator().manual_seed(0)) * 0.1
    opt = WeightProgrammingOptimizer(
        weights, [None, None], InferenceRPUConfig(), [1.0, 3600.0],
        DualPairConductanceConverter([1.0, 1.0]), test_in_features=32, test_out_features=3,
        seed=11, compile=False)
    view = ConductanceMapView.from_optimizer(opt)
    assert view.errors == []
    assert torch.equal(view._test_weights(), opt.test_weights.float())
    assert view.t_steps == list(opt.t_steps) and view.tnmse_seed == 11
    paths = view.export_data(tmp_path)
    data = json.loads(paths[0].read_text())
    assert data[0]["converter"]["__type__"] == "DualPairConductanceConverter"
    assert paths[1].read_text().splitlines()[0] == "converter,tnmse_t=1s,tnmse_t=3600s"


@pytest.mark.parametrize(
    ("args", "kwargs", "exc"),
    [
        ((), {}, ValueError),
        ((object(),), {}, TypeError),
        ((SinglePairConductanceConverter(),), {"noise_model": "pcm"}, TypeError),
        ((SinglePairConductanceConverter(),), {"names": ["a", "b"]}, ValueError),
    ],
)
def test_bad_arguments(args: tuple, kwargs: dict, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        ConductanceMapView(*args, **kwargs)
