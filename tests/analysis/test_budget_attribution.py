"""Error-budget attribution: exact Shapley values, the leave-one-out view next to them, and
why leave-one-out overlaps (the compensation readout's IO noise, amplified by mean drift)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from anatile.analysis import SOURCES, error_budget
from anatile.analysis._ablation import ALL, bit, tile_game
from anatile.analysis._attribution import shapley_values, weight_values
from anatile.analysis.metrics import nmse
from anatile.config import InferenceRPUConfig
from anatile.nn import convert_to_analog
from anatile.tiles import InferenceTile

MONTH = 30 * 86400.0


def test_shapley_values_equal_the_average_over_every_order() -> None:
    """On a random 5-player game, the subset formula equals the marginal contributions
    averaged over all 120 orders in which the players can join."""
    gen = torch.Generator().manual_seed(0)
    relevant = bit("programming") | bit("mean_drift") | bit("read_noise") | bit("io") \
        | bit("saturation")
    players = [b for b in (1 << k for k in range(len(SOURCES))) if relevant & b]
    values = {}
    for mask in range(1 << len(SOURCES)):
        if mask & ~relevant == 0:
            values[mask] = torch.rand(3, generator=gen, dtype=torch.float64)
    phi = shapley_values(values, relevant)
    expected = {b: torch.zeros(3, dtype=torch.float64) for b in players}
    orders = list(itertools.permutations(players))
    for order in orders:
        mask = 0
        for b in order:
            expected[b] += (values[mask | b] - values[mask]) / len(orders)
            mask |= b
    for b in players:
        torch.testing.assert_close(phi[b], expected[b], rtol=1e-12, atol=1e-15)
    # efficiency: they add up to v(all) − v(none)
    torch.testing.assert_close(sum(phi.values()), values[relevant] - values[0])


def _small_weight_model(seed: int = 0) -> torch.nn.Module:
    """The docs screenshot's first layer: torch's default init (max|W| ≈ 0.18), no weight
    scaling (ω = 0), the default IO (out_noise 0.06) and global drift compensation."""
    torch.manual_seed(seed)
    return convert_to_analog(torch.nn.Sequential(torch.nn.Linear(32, 16)),
                             InferenceRPUConfig())


def test_weight_error_of_every_coalition_is_the_metric_of_its_effective_weights() -> None:
    """The per-row sums give the same NMSE_W as ``nmse`` on alpha · W · scales."""
    tile = _small_weight_model()[0].tile_array.tiles[0]
    times = [1.0, MONTH]
    game = tile_game(tile, times, seed=0, index=0)
    masks = [ALL, 0, ALL & ~bit("io"), ALL & ~bit("compensation"), bit("mean_drift")]
    values, _, scale = weight_values(game, masks)
    for mask in masks:
        alpha = game.alpha(mask)
        assert alpha is not None
        eff = game.weights(mask) * alpha.unsqueeze(-1) * game.scales
        expected = nmse(eff, game.target * game.scales, scale=scale, batch_dims=1)
        torch.testing.assert_close(values[mask], expected, rtol=1e-6, atol=1e-12)


def test_both_attributions_come_from_one_game_and_add_up() -> None:
    model = _small_weight_model()
    times = [1.0, MONTH]
    x = torch.randn(20, 32, generator=torch.Generator().manual_seed(1))
    shap = error_budget(model, times, inputs=x, seed=2)
    loo = error_budget(model, times, inputs=x, seed=2, attribution="leave_one_out")
    for a, b in ((shap.weight, loo.weight), (shap.output, loo.output)):
        assert a is not None and b is not None
        assert a.attribution == "shapley" and b.attribution == "leave_one_out"
        torch.testing.assert_close(a.total, b.total, rtol=0, atol=0)
        for s in SOURCES:
            torch.testing.assert_close(a.leave_one_out[s], b.parts[s], rtol=0, atol=0)
        torch.testing.assert_close(a.overlap, b.interaction, rtol=1e-12, atol=1e-15)
        for table in (a, b):
            summed = torch.stack(list(table.parts.values())).sum(0) + table.interaction
            torch.testing.assert_close(summed, table.total, rtol=1e-12, atol=1e-15)
        # Shapley leaves nothing but the all-ideal error (float rounding) unassigned
        assert float(a.interaction.abs().max()) < 1e-12
    with pytest.raises(ValueError, match="attribution"):
        error_budget(model, times, attribution="sequential")


def test_budget_names_tiles_as_users_see_them_and_keeps_the_path() -> None:
    cfg = InferenceRPUConfig()
    cfg.mapping.max_input_size = 16
    net = torch.nn.Sequential(torch.nn.Linear(40, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    budget = error_budget(convert_to_analog(net, cfg, seed=0), [1.0])
    first, second = budget.children
    assert [t.name for t in first.children] == ["0[0,0]", "0[0,1]", "0[0,2]"]
    assert [t.path for t in first.children] == [f"0.tile_array.tiles.{k}" for k in range(3)]
    assert [t.name for t in second.children] == ["2"]
    rows = budget.to_rows()
    assert {r["name"] for r in rows if r["level"] == "tile"} == {"0[0,0]", "0[0,1]", "0[0,2]",
                                                                   "2"}
    assert "2.tile_array.tiles.0" in {r["path"] for r in rows}


def test_leave_one_out_overlap_is_the_compensation_readouts_noise_floor(
    one_thread: None,
) -> None:
    """Why leave-one-out's interaction dominates at a month (the docs screenshot): with
    weights at 0.18 of the range, the global compensation reads mean|w + output noise|,
    whose noise floor pulls baseline/readout towards 1, so alpha under-compensates the
    mean decay. Removing the IO noise, or the compensation's error, or the mean drift
    each removes that one error, so leave-one-out counts it three times. Over 12 chips
    (seeds), the bias and the overlap are significant (> 4 standard errors); Shapley's
    remainder is float rounding; with full-range weights (ω = 1) the overlap shrinks."""
    tile = _small_weight_model()[0].tile_array.tiles[0]
    n = 12
    ratio, overlap, shap_rest, parts = [], [], [], []
    for seed in range(n):
        game = tile_game(tile, [MONTH], seed=seed, index=0)
        noisy, oracle = game.alpha(ALL), game.alpha(ALL & ~bit("compensation"))
        assert noisy is not None and oracle is not None
        ratio.append(float(noisy[0, 0] / oracle[0, 0]))
        table = error_budget(tile, [MONTH], seed=seed).weight
        overlap.append(float(table.overlap[0] / table.total[0]))
        shap_rest.append(float(table.interaction.abs()[0]))
        parts.append([float(table.parts[s][0] / table.total[0])
                      for s in ("mean_drift", "compensation", "io")])

    def mean_se(xs: list[float]) -> tuple[float, float]:
        m = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
        return m, sd / math.sqrt(len(xs))

    m, se = mean_se(ratio)
    assert m < 1 - 4 * se, (m, se)  # alpha below the least-squares factor: under-compensated
    m, se = mean_se(overlap)
    assert m < -4 * se and m < -0.3, (m, se)  # leave-one-out over-counts by > 30 % of the total
    assert max(shap_rest) < 1e-12
    for k in range(3):  # each of the three overlapping sources gets a positive share
        m, se = mean_se([p[k] for p in parts])
        assert m > 4 * se, (k, m, se)

    # control: the same weights on the full range (ω = 1) leave far less overlap
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    full = InferenceTile(16, 32, rpu_config=cfg, seed=0)
    full.set_weights(tile.reference_weight * tile.get_scales())
    full_overlap = [float(t.overlap[0] / t.total[0]) for t in
                    (error_budget(full, [MONTH], seed=s).weight for s in range(n))]
    m_full, se_full = mean_se(full_overlap)
    m_small, se_small = mean_se(overlap)
    assert m_full - m_small > 4 * math.hypot(se_full, se_small), (m_full, m_small)
