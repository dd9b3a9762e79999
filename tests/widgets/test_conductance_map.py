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
        gs, _ = conv.convert_to_conductances(w)
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


def test_recompute_button_redraws() -> None:
    view = ConductanceMapView(SinglePairConductanceConverter(), noise_model=PCMLikeNoiseModel(),
                              weights=torch.ones(2, 8) * 0.5, t_steps=[1.0, 100.0])
    before = view.tnmse.copy()
    view.seed = 99
    view.compute_button.click()
    assert view.errors == []
    assert view.tnmse.shape == before.shape and not np.array_equal(view.tnmse, before)


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
