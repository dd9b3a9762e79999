"""Error budgets: parts add up, sources are attributed where they come from, no side effects."""

from __future__ import annotations

import io
import math

import pytest
import torch

from anatile.analysis import SOURCES, BudgetTable, diagnose, error_budget
from anatile.config import InferenceRPUConfig, IOParameters, RPUConfig
from anatile.exceptions import TileError
from anatile.functional.pcm import pcm_prog_noise_std
from anatile.inference import PCMLikeNoiseModel
from anatile.nn import convert_to_analog
from anatile.tiles import InferenceTile, TileWithPeriphery

TIMES = [1.0, 3600.0, 30 * 86400.0]


def _tile(cfg: InferenceRPUConfig | None = None, shape: tuple[int, int] = (24, 40),
          seed: int = 0) -> InferenceTile:
    if cfg is None:
        cfg = InferenceRPUConfig()
        cfg.mapping.weight_scaling_omega = 1.0
    tile = InferenceTile(*shape, rpu_config=cfg, seed=seed)
    tile.set_weights(torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 1)))
    return tile


def _snapshot(module: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getvalue()


def _assert_adds_up(table: BudgetTable | None) -> None:
    assert table is not None
    summed = torch.stack(list(table.parts.values())).sum(0) + table.interaction
    torch.testing.assert_close(summed, table.total, rtol=1e-12, atol=1e-15)


def test_parts_plus_interaction_equal_the_total(one_thread: None) -> None:
    tile = _tile()
    budget = error_budget(tile, TIMES, inputs=torch.randn(32, 40))
    assert set(budget.weight.parts) == set(SOURCES)
    for table in (budget.weight, budget.output):
        assert table is not None
        _assert_adds_up(table)
        assert table.total.shape == (len(TIMES),)
        assert bool((table.total > 0).all())
        assert float(table.ideal.abs().max()) < 1e-12  # every source ideal: no error left
    rows = budget.weight.to_rows()
    assert rows[-1]["source"] == "total"
    assert sum(r["share of total"] for r in rows[:-1]) == pytest.approx(1.0)


def test_layers_and_model_add_up_and_hold_their_tiles(one_thread: None) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(12, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    model = convert_to_analog(net, cfg, seed=3).eval()
    budget = error_budget(model, TIMES[:2], inputs=torch.randn(16, 12))
    assert budget.level == "model" and [c.name for c in budget.children] == ["0", "2"]
    for node in (budget, *budget.children, *(g for c in budget.children for g in c.children)):
        _assert_adds_up(node.weight)
        assert node.output is not None
        _assert_adds_up(node.output)
    # one tile per layer: the layer's weight budget is its tile's
    layer = budget.children[1]
    torch.testing.assert_close(layer.weight.total, layer.children[0].weight.total)
    # the model's weight error is the weight-count-weighted mean of its layers'
    n0, n1 = 12 * 20, 20 * 5
    expected = (n0 * budget.children[0].weight.total + n1 * budget.children[1].weight.total) \
        / (n0 + n1)
    torch.testing.assert_close(budget.weight.total, expected)


def test_same_seed_same_numbers_and_tile_untouched(one_thread: None) -> None:
    tile = _tile()
    tile.program_weights()
    tile.drift_weights(3600.0)
    before = _snapshot(tile)
    gen_before = tile.generator.get_state()
    a = error_budget(tile, TIMES, seed=5)
    b = error_budget(tile, TIMES, seed=5)
    c = error_budget(tile, TIMES, seed=6)
    assert torch.equal(a.weight.total, b.weight.total)
    assert all(torch.equal(a.weight.parts[s], b.weight.parts[s]) for s in SOURCES)
    assert not torch.equal(a.weight.total, c.weight.total)
    assert _snapshot(tile) == before
    assert torch.equal(tile.generator.get_state(), gen_before)


def test_omega_above_device_bound_makes_saturation_the_top_source(one_thread: None) -> None:
    """The default training device saturates at ±0.6; ω = 1 maps max|W| to 1."""
    cfg = RPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    tile = TileWithPeriphery(32, 48, cfg, seed=0)
    tile.set_weights(torch.randn(32, 48, generator=torch.Generator().manual_seed(0)))
    budget = error_budget(tile, [0.0], inputs=torch.randn(64, 48))
    assert budget.top_source() == "saturation"
    assert budget.top_source(output=True) == "saturation"
    assert budget.weight.shares()["saturation"] > 0.9
    findings = diagnose(tile)
    assert findings[0].code == "omega_above_device_bound"
    assert findings[0].severity == "error"
    assert "weight_scaling_omega" in findings[0].fix

    # control: the same weights at an ω the device holds have (next to) no saturation
    safe = RPUConfig()
    safe.mapping.weight_scaling_omega = 0.3
    ok = TileWithPeriphery(32, 48, safe, seed=0)
    ok.set_weights(torch.randn(32, 48, generator=torch.Generator().manual_seed(0)))
    ok_budget = error_budget(ok, [0.0])
    assert ok_budget.weight.parts["saturation"].item() < 0.1 * budget.weight.total.item()
    assert "omega_above_device_bound" not in {f.code for f in diagnose(ok)}


def _only(**scales: float) -> InferenceRPUConfig:
    """A config with only the given noise-model scales on, perfect IO, no compensation."""
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    cfg.forward = IOParameters(is_perfect=True)
    cfg.drift_compensation = None
    cfg.noise_model = PCMLikeNoiseModel(
        prog_noise_scale=scales.get("prog_noise_scale", 0.0),
        read_noise_scale=scales.get("read_noise_scale", 0.0),
        drift_scale=scales.get("drift_scale", 0.0))
    return cfg


def test_programming_noise_alone_matches_its_expected_nmse(one_thread: None) -> None:
    """With only programming noise the total is the programming part, and its value is the
    model's σ_prog² averaged over the devices (weights in [0.5, 1]·max keep g+ off the 0 µS
    floor; each g− = 0 target is clipped: a half-normal with E[x²] = σ(0)²/2)."""
    n_out, n_in = 128, 128
    cfg = _only(prog_noise_scale=1.0)
    tile = InferenceTile(n_out, n_in, rpu_config=cfg, seed=0)
    gen = torch.Generator().manual_seed(2)
    w = 0.5 + 0.5 * torch.rand(n_out, n_in, generator=gen)
    w[0, 0] = 1.0
    tile.set_weights(w)
    budget = error_budget(tile, [0.0], seed=3)
    table = budget.weight
    # leave-one-out: without programming noise nothing is left
    assert table.leave_one_out["programming"].item() == pytest.approx(table.total.item(),
                                                                     rel=1e-12)
    # Shapley: the clipped g− devices bias the weights, which a drift-compensation factor
    # would partly undo; the tile has none, so "compensation" gets half that (small) gain
    shared = table.parts["programming"] + table.parts["compensation"]
    assert shared.item() == pytest.approx(table.total.item(), rel=1e-12)
    assert 0.0 <= table.parts["compensation"].item() < 0.01 * table.total.item()
    assert table.interaction.abs().item() < 1e-15
    g_max = 25.0
    g_plus = w.double() / float(w.max()) * g_max
    sigma_plus = pcm_prog_noise_std(g_plus, g_max)
    sigma_zero = pcm_prog_noise_std(torch.zeros(1, dtype=torch.float64), g_max)
    expected = float((sigma_plus.square() + sigma_zero.square() / 2).mean()) / g_max**2
    n = w.numel()
    tol = 5 * math.sqrt(3.0 / n)  # e² has relative std ≤ sqrt(3/n) for Gaussian-like e
    assert table.total.item() == pytest.approx(expected, rel=tol)


def test_drift_without_compensation_is_mean_drift_and_compensation_removes_it(
    one_thread: None,
) -> None:
    bare = _tile(_only(drift_scale=1.0), shape=(48, 64))
    budget = error_budget(bare, [30 * 86400.0])
    # the common decay needs both the mean drift and a missing compensation: leave-one-out
    # gives it to each (and a negative interaction), Shapley halves it between them
    loo = budget.weight.leave_one_out
    assert loo["mean_drift"].item() > 0.8 * budget.weight.total.item()
    assert loo["compensation"].item() > 0.8 * budget.weight.total.item()
    shares = budget.weight.shares()
    assert budget.top_source() in ("mean_drift", "compensation")
    assert shares["mean_drift"] + shares["compensation"] > 0.9
    assert 0.4 < shares["mean_drift"] < 0.6

    cfg = _only(drift_scale=1.0)
    cfg.drift_compensation = InferenceRPUConfig().drift_compensation
    compensated = _tile(cfg, shape=(48, 64))
    comp_budget = error_budget(compensated, [30 * 86400.0])
    # a noise-free global readout undoes the common decay: what is left is the spread
    assert comp_budget.top_source() == "drift_variability"
    assert comp_budget.weight.parts["drift_variability"].item() > 0
    assert comp_budget.weight.total.item() < 0.2 * budget.weight.total.item()
    # and a perfect IO has no IO and no clipping part, exactly
    assert comp_budget.weight.parts["io"].item() == 0.0
    assert comp_budget.weight.parts["saturation"].item() == 0.0


def test_output_noise_is_attributed_to_io(one_thread: None) -> None:
    cfg = _only()
    cfg.forward = IOParameters(out_noise=0.2)
    tile = _tile(cfg)
    budget = error_budget(tile, [1.0], inputs=torch.randn(64, 40))
    assert budget.output is not None
    assert budget.top_source(output=True) == "io"
    assert budget.weight.total.item() < 1e-12  # noise-free devices: the weights are exact


def test_bad_arguments_raise_naming_them() -> None:
    tile = _tile()
    with pytest.raises(ValueError, match="t_steps"):
        error_budget(tile, [-1.0])
    with pytest.raises(ValueError, match="t_steps"):
        error_budget(tile, [])
    with pytest.raises(TypeError, match="inputs"):
        error_budget(tile, [1.0], inputs=[1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        error_budget(tile, [1.0], seed=-1)
    with pytest.raises(TileError, match="no analog tile"):
        error_budget(torch.nn.Linear(3, 2), [1.0])
    with pytest.raises(ValueError, match="top_source|output"):
        error_budget(tile, [1.0]).top_source(output=True)


def test_convolution_layers_add_up(one_thread: None) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 3))
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    model = convert_to_analog(net, cfg, seed=0).eval()
    budget = error_budget(model, [1.0, 3600.0], inputs=torch.randn(8, 2, 8, 8))
    assert [c.name for c in budget.children] == ["0", "3"]
    for node in (budget, *budget.children):
        _assert_adds_up(node.weight)
        _assert_adds_up(node.output)
        assert node.output is not None and float(node.output.total.min()) > 0
