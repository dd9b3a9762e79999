"""PCM physics functions against the formulas of SPEC §4.

Statistical checks use fixed seeds and tolerances from the sample size n: a mean lies within
4·σ/√n of its expectation, a standard deviation within a relative 4/√(2n).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anatile.functional.pcm import (
    DEFAULT_PROG_COEFF,
    apply_pcm_drift_and_read_noise,
    apply_pcm_programming_noise,
    interpolate_custom_pair,
    pcm_drift_nu_stats,
    pcm_prog_noise_std,
    pcm_read_noise_qs,
    sample_pcm_drift_nu,
)

N = 200_000


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_mean_std(x: torch.Tensor, mean: float, std: float) -> None:
    n = x.numel()
    x = x.double()
    assert abs(float(x.mean()) - mean) < 4 * std / math.sqrt(n) + 1e-12
    assert abs(float(x.std()) / std - 1) < 4 / math.sqrt(2 * n)


def prog_sigma(g: float, g_max: float = 25.0) -> float:
    c0, c1, c2 = DEFAULT_PROG_COEFF
    r = g / g_max
    return (c0 + c1 * r + c2 * r * r) * g_max / 25.0


def nu_stats(g: float, g_max: float = 25.0) -> tuple[float, float]:
    r = max(g / g_max, 1e-7)
    mu = min(max(-0.0155 * math.log(r) + 0.0244, 0.049), 0.1)
    sig = min(max(-0.0125 * math.log(r) - 0.0059, 0.008), 0.045)
    return mu, sig


def qs(g: float, g_max: float = 25.0) -> float:
    return min(0.0088 / max((abs(g) / g_max) ** 0.65, 1e-3), 0.2)


@pytest.mark.parametrize("g_max", [25.0, 50.0])
def test_prog_noise_std_formula(g_max: float) -> None:
    g = torch.linspace(0, g_max, 11, dtype=torch.float64)
    got = pcm_prog_noise_std(g, g_max, scale=2.0)
    want = [2.0 * prog_sigma(float(v), g_max) for v in g]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("g_target", [10.0, 25.0])
def test_programming_noise_statistics(g_target: float) -> None:
    g = torch.full((N,), g_target)
    out = apply_pcm_programming_noise(g, 25.0, DEFAULT_PROG_COEFF, 1.5, gen(1))
    assert_mean_std(out, g_target, 1.5 * prog_sigma(g_target))


def test_programming_noise_clipped_at_zero() -> None:
    out = apply_pcm_programming_noise(torch.zeros(N), 25.0, generator=gen(2))
    assert float(out.min()) == 0.0
    frac_zero = float((out == 0).double().mean())
    assert abs(frac_zero - 0.5) < 4 * 0.5 / math.sqrt(N)


def test_programming_noise_scale_zero_is_exact() -> None:
    g = torch.rand(100, generator=gen(3)) * 25
    assert torch.equal(apply_pcm_programming_noise(g, 25.0, scale=0.0, generator=gen(4)), g)


def test_nu_stats_formula_and_zero_conductance() -> None:
    g = torch.tensor([0.0, 1e-3, 0.1, 1.0, 5.0, 12.5, 25.0], dtype=torch.float64)
    mu, sig = pcm_drift_nu_stats(g, 25.0)
    assert torch.isfinite(mu).all() and torch.isfinite(sig).all()
    for i, v in enumerate(g.tolist()):
        m, s = nu_stats(v)
        assert mu[i].item() == pytest.approx(m, rel=1e-12)
        assert sig[i].item() == pytest.approx(s, rel=1e-12)
    assert mu[0].item() == pytest.approx(0.1) and sig[0].item() == pytest.approx(0.045)


def folded_normal(mu: float, sig: float) -> tuple[float, float]:
    """Mean and standard deviation of |N(mu, sig)|."""
    z = mu / sig
    mean = sig * math.sqrt(2 / math.pi) * math.exp(-z * z / 2) + mu * math.erf(z / math.sqrt(2))
    return mean, math.sqrt(mu * mu + sig * sig - mean * mean)


@pytest.mark.parametrize("g_target", [25.0, 2.0, 0.0])
def test_nu_sample_statistics(g_target: float) -> None:
    mu, sig = nu_stats(g_target)
    mean, std = folded_normal(mu, sig)
    nu = sample_pcm_drift_nu(torch.full((N,), g_target), 25.0, drift_scale=2.0, generator=gen(5))
    assert float(nu.min()) >= 0
    assert_mean_std(nu, 2.0 * mean, 2.0 * std)


def test_drift_closed_form_without_read_noise() -> None:
    g = torch.rand(3, 50, generator=gen(7), dtype=torch.float64) * 25
    nu = torch.rand(3, 50, generator=gen(8), dtype=torch.float64) * 0.1
    for t in (0.0, 1.0, 3600.0, 3.15e7):
        out = apply_pcm_drift_and_read_noise(g, nu, t, 25.0, read_noise_scale=0.0)
        want = g * ((t + 20.0) / 20.0) ** (-nu)
        torch.testing.assert_close(out, want, rtol=1e-12, atol=0)


def test_read_noise_qs_formula() -> None:
    g = torch.tensor([0.0, 1e-6, 0.5, 5.0, 25.0, 40.0], dtype=torch.float64)
    got = pcm_read_noise_qs(g, 25.0)
    np.testing.assert_allclose(got.numpy(), [qs(v) for v in g.tolist()], rtol=1e-12)
    assert got[0].item() == 0.2


@pytest.mark.parametrize("t", [0.0, 86400.0])
def test_read_noise_statistics(t: float) -> None:
    g0 = 10.0
    out = apply_pcm_drift_and_read_noise(
        torch.full((N,), g0), torch.zeros(N), t, 25.0, read_noise_scale=3.0, generator=gen(9)
    )
    sigma = g0 * 3.0 * qs(g0) * math.sqrt(math.log((t + 20.0 + 250e-9) / (2 * 250e-9)))
    assert_mean_std(out, g0, sigma)


def test_read_noise_uses_drifted_magnitude() -> None:
    g0, nu, t = 10.0, 0.05, 3.15e7
    g_t = g0 * ((t + 20.0) / 20.0) ** (-nu)
    out = apply_pcm_drift_and_read_noise(
        torch.full((N,), g0), torch.full((N,), nu), t, 25.0, generator=gen(10)
    )
    sigma = g_t * qs(g0) * math.sqrt(math.log((t + 20.0 + 250e-9) / 5e-7))
    assert_mean_std(out, g_t, sigma)


def test_broadcast_batch_and_tensor_time() -> None:
    g = torch.rand(4, 6, generator=gen(11)) * 25
    nu = torch.full((4, 6), 0.05)
    t = torch.tensor([0.0, 1.0, 3600.0, 86400.0]).reshape(4, 1)
    out = apply_pcm_drift_and_read_noise(g, nu, t, 25.0, read_noise_scale=0.0)
    for i in range(4):
        row = apply_pcm_drift_and_read_noise(g[i], nu[i], float(t[i]), 25.0, read_noise_scale=0.0)
        torch.testing.assert_close(out[i], row)
    assert pcm_prog_noise_std(torch.zeros(2, 3, 4), 25.0).shape == (2, 3, 4)


def test_generator_repeatability_and_dtype() -> None:
    g = torch.rand(64, 32, dtype=torch.float64, generator=gen(12)) * 25
    a = apply_pcm_programming_noise(g, 25.0, generator=gen(13))
    b = apply_pcm_programming_noise(g, 25.0, generator=gen(13))
    assert torch.equal(a, b) and a.dtype == torch.float64
    nu = sample_pcm_drift_nu(g, 25.0, generator=gen(14))
    assert nu.dtype == torch.float64
    out = apply_pcm_drift_and_read_noise(g, nu, 100.0, 25.0, generator=gen(15))
    assert out.dtype == torch.float64 and float(out.min()) >= 0


def test_bad_arguments_name_themselves() -> None:
    g = torch.ones(3)
    with pytest.raises(ValueError, match="g_max"):
        pcm_prog_noise_std(g, 0.0)
    with pytest.raises(ValueError, match="g_max"):
        pcm_drift_nu_stats(g, -1.0)
    with pytest.raises(ValueError, match="t_inference"):
        apply_pcm_drift_and_read_noise(g, g, -1.0, 25.0)
    with pytest.raises(ValueError, match="t_read"):
        apply_pcm_drift_and_read_noise(g, g, 1.0, 25.0, t_read=0.0)
    with pytest.raises(ValueError, match="w_grid"):
        interpolate_custom_pair(g, torch.ones(1), torch.ones(2, 1))
    with pytest.raises(ValueError, match="g_table"):
        interpolate_custom_pair(g, torch.linspace(0, 1, 3), torch.ones(2, 4))


def test_interpolate_matches_numpy_batched() -> None:
    rng = np.random.default_rng(0)
    n_grid, n_dev, batch, m = 7, 4, 5, 300
    grid = np.sort(rng.uniform(-1, 1, n_grid))
    table = rng.uniform(0, 25, (batch, n_dev, n_grid))
    w = rng.uniform(-1.2, 1.2, m)
    got = interpolate_custom_pair(
        torch.from_numpy(w), torch.from_numpy(grid), torch.from_numpy(table)
    )
    assert got.shape == (batch, n_dev, m)
    for b in range(batch):
        for k in range(n_dev):
            np.testing.assert_allclose(
                got[b, k].numpy(), np.interp(w, grid, table[b, k]), atol=1e-12
            )


def test_interpolate_per_batch_grid() -> None:
    grids = torch.stack([torch.linspace(-1, 1, 3), torch.linspace(-2, 2, 3)])  # (2, 3)
    table = torch.tensor([[0.0, 5.0, 10.0]]).expand(2, 1, 3)
    out = interpolate_custom_pair(torch.tensor([0.5, 1.0]), grids, table)
    torch.testing.assert_close(out, torch.tensor([[[7.5, 10.0]], [[6.25, 7.5]]]))
