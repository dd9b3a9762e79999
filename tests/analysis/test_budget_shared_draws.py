"""The error budget's shared draws give exactly the values of the tile's own physics.

For speed, the simulated chips of a budget make each common random draw once (the read
noise of the drift, the output noise of the compensation readout), share the readout
levels between IO variants and work time by time. Every chip state and every alpha must
equal, bit for bit, what calling the noise model and the tile's ``compensation_alpha``
per coalition and time with the seeded generators gives (the computation before the
speed-up), for the IO models and compensations that take each path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch

from anatile.analysis._ablation import (
    _CHIP,
    _COMP,
    _IO,
    _MEAN,
    _PROG,
    _READ,
    _SAT,
    _VAR,
    _gen,
    _noisy,
    tile_game,
)
from anatile.analysis._attribution import subsets
from anatile.config import InferenceRPUConfig, IOParameters
from anatile.functional.pcm import apply_pcm_drift_and_read_noise
from anatile.inference import PCMLikeNoiseModel, PerColumnDriftCompensation
from anatile.inference.compensation import one_hot_adc, one_hot_levels
from anatile.inference.physics import OneHotReadout
from anatile.tiles import InferenceTile

TIMES = [1.0, 3600.0, 30 * 86400.0]
SEED = 5


def _cfg(change: Callable[[InferenceRPUConfig], None]) -> InferenceRPUConfig:
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    change(cfg)
    return cfg


class _OwnDrift(PCMLikeNoiseModel):
    """A user's model that overrides the public drift (the budget must call it)."""

    def apply_drift_noise_to_conductance(self, g_prog: torch.Tensor,
                                         drift_noise_param: torch.Tensor,
                                         t_inference: float | torch.Tensor,
                                         generator: torch.Generator | None = None,
                                         ) -> torch.Tensor:
        return super().apply_drift_noise_to_conductance(g_prog, 0.5 * drift_noise_param,
                                                        t_inference, generator)


CONFIGS: dict[str, Callable[[InferenceRPUConfig], None]] = {
    "global": lambda c: None,
    "per_column": lambda c: setattr(c, "drift_compensation", PerColumnDriftCompensation()),
    # outputs beyond the ADC bound: iterative bound management redoes rows (the MVM)
    "adc_overflow": lambda c: setattr(c, "forward", dataclasses.replace(c.forward,
                                                                         out_bound=0.3)),
    "perfect_io": lambda c: setattr(c, "forward", IOParameters(is_perfect=True)),
    # input noise: not a one-hot readout (the MVM); weight noise folds into the output's
    "input_noise": lambda c: setattr(c, "forward", dataclasses.replace(c.forward,
                                                                        inp_noise=0.02)),
    "weight_noise": lambda c: setattr(c, "forward", dataclasses.replace(c.forward,
                                                                         w_noise=0.03)),
    "own_drift_model": lambda c: setattr(c, "noise_model", _OwnDrift()),
}


def _tile(name: str) -> InferenceTile:
    tile = InferenceTile(12, 20, rpu_config=_cfg(CONFIGS[name]), seed=0)
    tile.set_weights(0.3 * torch.randn(12, 20, generator=torch.Generator().manual_seed(1)))
    return tile


def _nu(game: Any, mask: int) -> torch.Tensor:
    mean, var = bool(mask & _MEAN), bool(mask & _VAR)
    if mean and var:
        return game.nu
    if var:
        return game.nu - game.nu_bar
    return torch.full_like(game.nu, float(game.nu_bar)) if mean else torch.zeros_like(game.nu)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_chip_state_is_the_noise_models_drift_call(name: str) -> None:
    tile = _tile(name)
    game: Any = tile_game(tile, TIMES, SEED, 0)  # the inference game's internals
    assert (game._pcm is None) == (name == "own_drift_model")
    t = torch.tensor(TIMES, dtype=torch.float64).reshape(-1, 1, 1, 1)
    for mask in subsets(_CHIP):
        if not mask & (_MEAN | _VAR | _READ):
            continue  # the programmed weights, not drifted
        model = game.model if mask & _READ else game.silent
        g = game.g_prog if mask & _PROG else game.g_target
        g_t = model.apply_drift_noise_to_conductance(g, _nu(game, mask), t,
                                                     _gen(g.device, SEED, 0, 2))
        expected = game._back(g_t, dim=1)
        torch.testing.assert_close(game.weights(mask), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_alpha_is_the_tiles_compensation_readout(name: str) -> None:
    tile = _tile(name)
    game: Any = tile_game(tile, TIMES, SEED, 0)  # the inference game's internals
    checked = 0
    for mask in subsets(game.relevant):
        io = game.io(mask)
        if not mask & _COMP or (not mask & (_MEAN | _VAR | _READ) and not _noisy(io)):
            continue  # the oracle factor, or exactly 1 (not a readout)
        base = tile.compensation_baseline(game.programmed(bool(mask & _PROG)), io=io,
                                          generator=_gen(tile.device, SEED, 0, 3))
        weights = game.weights(mask)
        expected = torch.stack([
            tile.compensation_alpha(weights[i], baseline=base, io=io,
                                    generator=_gen(tile.device, SEED, 0, 4, i))
            for i in range(len(TIMES))
        ])
        alpha = game.alpha(mask)
        assert alpha is not None
        torch.testing.assert_close(alpha, expected, rtol=0, atol=0)
        checked += 1
    # every chip state with drift or noise, in each IO variant the tile has
    n_io = 4 if game.relevant & (_IO | _SAT) else 1
    assert checked >= 14 * n_io


def test_the_overflow_case_really_takes_the_mvm() -> None:
    """The ``adc_overflow`` tile's readouts exceed the ADC bound (so its alphas above come
    through the iterative MVM), the default tile's do not."""
    for name, beyond in (("adc_overflow", True), ("global", False)):
        tile = _tile(name)
        io = tile.rpu_config.forward
        model = OneHotReadout.from_io(io)
        assert model is not None
        levels = one_hot_levels(tile.analog_core.weight.T.contiguous(), model, 0.0)
        assert (one_hot_adc(levels, model, check_bound=True) is None) == beyond


def test_drift_with_given_noise_is_the_generator_draw() -> None:
    g = 25.0 * torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(0))
    nu = 0.05 + 0.01 * torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([10.0, 1e5]).reshape(-1, 1, 1, 1)
    drawn = apply_pcm_drift_and_read_noise(g, nu, t, 25.0,
                                           generator=torch.Generator().manual_seed(2))
    noise = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(2))
    given = apply_pcm_drift_and_read_noise(g, nu, t, 25.0, noise=noise)
    torch.testing.assert_close(given, drawn, rtol=0, atol=0)
    silent = apply_pcm_drift_and_read_noise(g, nu, t, 25.0, read_noise_scale=0.0, noise=noise)
    drawn_silent = apply_pcm_drift_and_read_noise(g, nu, t, 25.0, read_noise_scale=0.0,
                                                  generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(silent, drawn_silent, rtol=0, atol=0)
    with pytest.raises(ValueError, match="noise: expected the shape"):
        apply_pcm_drift_and_read_noise(g, nu, t, 25.0, noise=noise[:1])


def test_budget_of_each_path_adds_up() -> None:
    from anatile.analysis import error_budget

    for name in CONFIGS:
        table = error_budget(_tile(name), TIMES, seed=SEED).weight
        summed = torch.stack(list(table.parts.values())).sum(0) + table.interaction
        torch.testing.assert_close(summed, table.total, rtol=1e-12, atol=1e-15)
