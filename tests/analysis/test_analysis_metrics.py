"""The error metric family: formulas, units, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anatile.analysis import (
    METRICS,
    nmse,
    output_nrmse,
    weight_max_error,
    weight_nmse,
    weight_nrmse,
)
from anatile.analysis.metrics import TNMSE, WEIGHT_NRMSE, tnmse


def test_weight_metrics_match_their_formulas() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(7, 9, generator=gen)
    noisy = w + 0.05 * torch.randn(7, 9, generator=gen)
    wn, nn_ = w.double().numpy(), noisy.double().numpy()
    peak = np.abs(wn).max()
    assert float(weight_nmse(noisy, w)) == pytest.approx(((nn_ - wn) ** 2).mean() / peak**2,
                                                         rel=1e-6)
    assert float(weight_nrmse(noisy, w)) == pytest.approx(
        math.sqrt(((nn_ - wn) ** 2).mean()) / peak, rel=1e-6)
    assert float(weight_max_error(noisy, w)) == pytest.approx(np.abs(nn_ - wn).max() / peak,
                                                              rel=1e-6)
    assert float(output_nrmse(noisy, w)) == pytest.approx(float(weight_nrmse(noisy, w)))


def test_tnmse_is_the_wpo_objective() -> None:
    """TNMSE = Σ_t Σ_ij (10·(W_t − W)_ij / max|W|)² / (n·T), as docs/wpo/loss.md defines it."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(5, 6, generator=gen)
    over_time = torch.stack([w * (1 - 0.1 * k) for k in range(3)])
    peak = float(w.abs().max())
    expected = sum(
        float(((10 * (over_time[k] - w) / peak) ** 2).sum()) for k in range(3)
    ) / (w.numel() * 3)
    assert float(tnmse(over_time, w)) == pytest.approx(expected, rel=1e-6)
    assert float(tnmse(list(over_time), w)) == pytest.approx(expected, rel=1e-6)


def test_batch_dims_and_scale() -> None:
    ref = torch.ones(2, 3)
    est = torch.stack([ref, ref + 1.0, ref - 2.0])
    out = nmse(est, ref, batch_dims=1)
    assert out.tolist() == pytest.approx([0.0, 1.0, 4.0], rel=1e-6)
    assert nmse(est, ref, scale=2.0, batch_dims=1).tolist() == pytest.approx([0.0, 0.25, 1.0],
                                                                             rel=1e-6)
    assert nmse(ref, ref).dtype == torch.float64


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(TypeError, match="estimate"):
        nmse(np.ones(3), torch.ones(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reference"):
        nmse(torch.ones(3), torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="do not broadcast"):
        nmse(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="batch_dims"):
        nmse(torch.ones(3), torch.ones(3), batch_dims=2)
    with pytest.raises(ValueError, match="weights_over_time"):
        tnmse(torch.ones(3), torch.ones(3))


def test_labels_carry_name_symbol_and_unit() -> None:
    assert WEIGHT_NRMSE.label == "weight error NRMSE_W (% of max|W|)"
    assert WEIGHT_NRMSE.format(0.0421) == "4.21 % of max|W|"
    assert TNMSE.format(0.5) == "0.5 (max|W|/10)²"
    assert all(m.unit and m.symbol and m.name for m in METRICS.values())
    assert len({m.symbol for m in METRICS.values()}) == len(METRICS)
