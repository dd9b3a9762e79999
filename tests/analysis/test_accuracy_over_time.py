"""accuracy_over_time: shapes, reproducibility, validation, and the effect of compensation."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from anatile.analysis import accuracy_over_time
from anatile.config import InferenceRPUConfig, IOParameters
from anatile.inference import (
    DualPairConductanceConverter,
    PCMLikeNoiseModel,
    PerColumnDriftCompensation,
    SinglePairConductanceConverter,
)


@functools.cache
def blobs(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A linearly separable 4-class problem and a trained linear classifier."""
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 16, generator=gen) * 2
    y = torch.randint(0, 4, (400,), generator=gen)
    x = centers[y] + 0.8 * torch.randn(400, 16, generator=gen)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), x, y


def test_table_shapes_reproducible_and_markdown() -> None:
    model, x, y = blobs()
    args = (model, SinglePairConductanceConverter(), [1.0, 86400.0], 3, 0)
    a = accuracy_over_time(*args, x_test=x, y_test=y)
    b = accuracy_over_time(*args, x_test=x, y_test=y)
    assert set(a.accuracies) == {"none", "global"}
    assert a.accuracies["global"].shape == (3, 2)
    for mode in a.accuracies:
        assert torch.equal(a.accuracies[mode], b.accuracies[mode])
    assert a.digital_accuracy > 0.95
    md = a.to_markdown("**x**")
    assert "| 1 day |" in md and "global compensation (%)" in md and "±" in md
    assert "SinglePairConductanceConverter" in a.converter


def test_zero_noise_equals_digital() -> None:
    model, x, y = blobs(1)
    noise = PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0)
    cfg = InferenceRPUConfig(forward=IOParameters(is_perfect=True), noise_model=noise)
    table = accuracy_over_time(
        model,
        DualPairConductanceConverter([1.0, 3.0]),
        [1.0, 3.15e7],
        2,
        0,
        x_test=x,
        y_test=y,
        rpu_config=cfg,
    )
    for acc in table.accuracies.values():
        assert torch.all(acc == table.digital_accuracy)
    assert "DualPair" in table.converter


def test_compensation_helps_after_a_year_and_config_unchanged() -> None:
    model, x, y = blobs(2)
    # strong drift, no other noise: without compensation the output shrinks; the hidden
    # ReLU layer's digital bias then dominates
    cfg = InferenceRPUConfig(
        forward=IOParameters(is_perfect=True),
        noise_model=PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=4.0),
        drift_compensation=PerColumnDriftCompensation(),
    )
    before = cfg.to_json()
    table = accuracy_over_time(model, None, [3.15e7], 2, 0, x_test=x, y_test=y, rpu_config=cfg)
    assert set(table.accuracies) == {"none", "percolumn"}
    assert float(table.mean["percolumn"][0]) > float(table.mean["none"][0]) + 0.3
    assert cfg.to_json() == before


def test_validation() -> None:
    model, x, y = blobs()
    with pytest.raises(ValueError, match="repetitions"):
        accuracy_over_time(model, None, [1.0], 0, x_test=x, y_test=y)
    with pytest.raises(ValueError, match="t_inference"):
        accuracy_over_time(model, None, [-1.0], 1, x_test=x, y_test=y)
    with pytest.raises(ValueError, match="x_test, y_test"):
        accuracy_over_time(model, None, [1.0], 1, x_test=x, y_test=y[:3])
    with pytest.raises(TypeError, match="g_converter"):
        accuracy_over_time(model, "pair", [1.0], 1, x_test=x, y_test=y)  # type: ignore[arg-type]
