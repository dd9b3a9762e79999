"""The hypercube encoding: dimensions, decoding rules, batch/scalar agreement, round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from anatile.wpo import (
    SearchSpace,
    decode_batch,
    denormalize,
    encode,
    partition_parameters,
    reformat_x_g,
    span_of_remaining_pairs,
)
from anatile.wpo.encoding import generate_bounds, n_dimensions


def space(f_lst=(None, None), symmetric=True, use_max_kw=False, nbins=6, g_err=0.0,
          max_abs=0.4) -> SearchSpace:
    grid = tuple(torch.linspace(-max_abs, max_abs, 2 * nbins - 1, dtype=torch.float64).tolist())
    return SearchSpace(tuple(f_lst), 0.1, 5.0, 0.0, 25.0, g_err, use_max_kw, symmetric,
                       max_abs, grid)


@pytest.mark.parametrize(
    ("f_lst", "symmetric", "use_max_kw", "expected"),
    [
        ((None, None), True, False, 2 + 1 + 6 * 3),  # the benchmark's 21 dimensions
        ((None, None), False, False, 2 + 1 + 11 * 3),
        ((1.0, 3.0), True, False, 1 + 6 * 3),
        ((1.0, 3.0), True, True, 6 * 3),
        ((None,), True, False, 1 + 1 + 6),
        ((None, 2.0, None), True, False, 2 + 1 + 6 * 5),
    ],
)
def test_bounds_count_and_shape(f_lst, symmetric, use_max_kw, expected):
    s = space(f_lst, symmetric, use_max_kw)
    bounds = generate_bounds(s)
    assert n_dimensions(s) == expected
    assert len(bounds) == expected
    assert all(b == (0.0, 1.0) for b in bounds)


def test_span_of_remaining_pairs():
    spans = [25.0, 50.0, 125.0]
    assert span_of_remaining_pairs(spans, 0) == 200.0
    assert span_of_remaining_pairs(spans, 1) == 175.0
    assert span_of_remaining_pairs(spans, 2) == 125.0
    assert span_of_remaining_pairs(spans, 3) == 0.0
    assert span_of_remaining_pairs(spans, 7) == 0.0


def test_reformat_x_g_blocks():
    x_g = list(range(18))
    blocks, g_len = reformat_x_g(x_g, 2, symmetric=True)
    assert [len(b) for b in blocks] == [6, 6, 6]
    assert blocks[1] == [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    assert g_len == 11
    _, g_len = reformat_x_g(list(range(33)), 2, symmetric=False)
    assert g_len == 11
    with pytest.raises(ValueError, match="multiple"):
        reformat_x_g(list(range(17)), 2, symmetric=True)


def test_partition_parameters_decodes_f_and_kw():
    s = space()
    x = np.zeros(21)
    x[0], x[1], x[2] = 0.0, 1.0, 1.0
    f_lst, k_w, x_g = partition_parameters(x, s)
    assert f_lst == pytest.approx([0.1, 5.0])
    assert k_w == pytest.approx((0.1 + 5.0) * 25.0 / 0.4)  # full range onto max|W|
    assert len(x_g) == 18
    x[2] = 0.0
    _, k_w_low, _ = partition_parameters(x, s)
    assert k_w_low == pytest.approx(0.05 * k_w)
    with pytest.raises(ValueError, match="coordinates"):
        partition_parameters(np.zeros(20), s)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("f_lst", [(None, None), (1.0, 3.0), (None, 2.0, None)])
def test_decoded_strategy_is_exact_and_in_range(symmetric, f_lst):
    s = space(f_lst, symmetric)
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.random(n_dimensions(s))
        f, g = denormalize(x, s)
        g_arr = np.array(g)
        assert g_arr.shape == (2 * len(f_lst), 11)
        assert g_arr.min() >= s.g_min - 1e-12 and g_arr.max() <= s.g_max + 1e-12
        w_us = sum(f[j] * (g_arr[2 * j] - g_arr[2 * j + 1]) for j in range(len(f)))
        _, k_w, _ = partition_parameters(x, s)
        # every grid weight is represented exactly: the strategy is a linear, invertible map
        np.testing.assert_allclose(w_us, k_w * np.array(s.weights_discretized_unitless),
                                   atol=1e-9 * k_w)


def test_symmetric_strategy_mirrors_devices():
    s = space()
    _, g = denormalize(np.random.default_rng(2).random(21), s)
    g_arr = np.array(g)
    mirrored = [i for i in range(11) if i != 5]  # the centre (w = 0) holds the swapped pair
    for j in range(2):
        np.testing.assert_allclose(g_arr[2 * j][mirrored], g_arr[2 * j + 1][::-1][mirrored])
        np.testing.assert_allclose(g_arr[2 * j][:5], g_arr[2 * j + 1][10:5:-1])


def _reference_decode(x, s):
    """The decoding of the module docstring, one grid weight and one pair at a time (an
    oracle written independently of the vectorized implementation)."""
    f_lst, k_w, x_g = partition_parameters(x, s)
    blocks, g_len = reformat_x_g(x_g, len(f_lst), s.symmetric)
    spans = [f * (s.g_max - s.g_min) for f in f_lst]
    g_lst = [[0.0] * g_len for _ in range(2 * len(f_lst))]
    for i, w in enumerate(s.weights_discretized_unitless[: s.n_programmed]):
        rest = k_w * w
        for j, f in enumerate(f_lst):
            x_dg = blocks[2 * j + 1][i] if j < len(f_lst) - 1 else 1.0
            reach = span_of_remaining_pairs(spans, j + 1)
            lo, hi = max(rest - reach, -spans[j]), min(rest + reach, spans[j])
            share = lo + x_dg * (hi - lo)
            rest -= share
            dg = share / f
            gp_lo = s.g_min + max(dg, 0.0) - s.g_err
            gp_hi = s.g_max + min(dg, 0.0) + s.g_err
            g_p = min(max(gp_lo + blocks[2 * j][i] * (gp_hi - gp_lo), s.g_min), s.g_max)
            g_m = min(max(g_p - dg, s.g_min), s.g_max)
            g_lst[2 * j][i], g_lst[2 * j + 1][i] = g_p, g_m
            if s.symmetric:
                g_lst[2 * j][g_len - 1 - i], g_lst[2 * j + 1][g_len - 1 - i] = g_m, g_p
    return f_lst, g_lst


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("g_err", [0.0, 1.5])
def test_decoding_matches_a_scalar_reference(symmetric, g_err):
    s = dataclasses.replace(space((None, 2.0, None), symmetric), g_err=g_err)
    x = np.random.default_rng(3).random((16, n_dimensions(s)))
    x[0] = 0.0
    x[1] = 1.0
    f_b, g_b = decode_batch(x, s)
    for i in range(x.shape[0]):
        f, g = _reference_decode(x[i], s)
        np.testing.assert_allclose(f_b[i].numpy(), f, rtol=1e-12)
        np.testing.assert_allclose(g_b[i].numpy(), np.array(g), atol=1e-9)
        f1, g1 = denormalize(x[i], s)
        assert f1 == f_b[i].tolist() and g1 == g_b[i].tolist()


def test_decode_accepts_a_mapping_like_the_seed_api():
    s = space()
    d = {name: getattr(s, name) for name in s.__dataclass_fields__}
    d["weights_discretized_unitless"] = torch.tensor(d["weights_discretized_unitless"],
                                                   dtype=torch.float64)
    x = np.random.default_rng(4).random(21)
    assert denormalize(x, d) == denormalize(x, s)


@pytest.mark.parametrize("symmetric", [True, False])
def test_encode_decode_round_trip(symmetric):
    s = space((None, None), symmetric)
    rng = np.random.default_rng(5)
    for _ in range(10):
        # keep away from degenerate corners where a coordinate has no effect
        x = 0.05 + 0.9 * rng.random(n_dimensions(s))
        f, g = denormalize(x, s)
        x_back = encode(f, g, s)
        f2, g2 = denormalize(x_back, s)
        np.testing.assert_allclose(f2, f, rtol=1e-9)
        np.testing.assert_allclose(np.array(g2), np.array(g), atol=1e-7)
