"""Test-weight sampling: the distribution survives, the shuffle is a permutation."""

from __future__ import annotations

import pytest
import torch

from anatile.wpo import downsample_weight_distribution, shuffle_weights


def test_downsample_keeps_the_distribution():
    w = torch.randn(50_000, generator=torch.Generator().manual_seed(0)) * 0.2 + 0.05
    out = downsample_weight_distribution(w, torch.Size([512, 20]),
                                         generator=torch.Generator().manual_seed(1))
    assert out.shape == (512, 20)
    assert float(out.min()) == pytest.approx(float(w.min()))
    assert float(out.max()) == pytest.approx(float(w.max()))
    q = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95])
    torch.testing.assert_close(torch.quantile(out.flatten(), q), torch.quantile(w, q),
                               atol=5e-3, rtol=0)


def test_upsampling_and_shuffling():
    w = torch.arange(10, dtype=torch.float32)
    out = downsample_weight_distribution(w, (4, 10), generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 10)
    sorted_out = torch.sort(out.flatten())[0]
    torch.testing.assert_close(sorted_out, torch.linspace(0, 9, 40))
    assert not torch.equal(out.flatten(), sorted_out)  # shuffled, not left sorted


def test_shuffle_is_a_reproducible_permutation_of_all_entries():
    w = torch.arange(200.0).reshape(20, 10)
    a = shuffle_weights(w, generator=torch.Generator().manual_seed(3))
    b = shuffle_weights(w, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(torch.sort(a.flatten())[0], w.flatten())
    # entries move across rows, not only whole rows
    assert any(set(a[i].tolist()) != set(w[j].tolist()) for i in range(20) for j in [i])


def test_bad_weights_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        downsample_weight_distribution(torch.tensor([0.1, float("nan")]), (2, 2))
    with pytest.raises(ValueError, match="at least one"):
        downsample_weight_distribution(torch.tensor([]), (2, 2))
