"""The game of an error budget: the error of every coalition of sources, and its split.

A coalition (a bit mask over :data:`~anatile.analysis._ablation.SOURCES`) switches some
sources on and makes the others ideal; :mod:`anatile.analysis._ablation` gives each tile's
states per coalition. Here the weight error (NMSE_W) and output error (NMSE_y) of each
coalition are evaluated, and :func:`shapley_values` splits the total among the sources.
:mod:`anatile.analysis.budget` turns the values into tables.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from anatile.analysis._ablation import SOURCES, TileGame, seed_of
from anatile.analysis._layers import detached_copy
from anatile.analysis.metrics import nmse
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["coalitions", "output_values", "players", "shapley_values", "subsets",
           "weight_values"]


def subsets(mask: int) -> list[int]:
    """Every subset of ``mask`` (as masks), ``mask`` first, 0 last."""
    out, sub = [], mask
    while True:
        out.append(sub)
        if sub == 0:
            return out
        sub = (sub - 1) & mask


def players(mask: int) -> list[int]:
    """The single-source bits of ``mask``."""
    return [b for b in (1 << k for k in range(len(SOURCES))) if mask & b]


def coalitions(relevant: int, attribution: str) -> list[int]:
    """The coalitions an attribution evaluates (leave-one-out's are always included)."""
    if attribution == "shapley":
        return subsets(relevant)
    return [relevant, *(relevant & ~b for b in players(relevant)), 0]


def shapley_values(values: dict[int, Tensor], relevant: int) -> dict[int, Tensor]:
    """Exact Shapley values of the game ``values`` (error of each coalition mask of the
    players in ``relevant``): ``φ_k = Σ_S |S|!(n−|S|−1)!/n! · (v(S ∪ {k}) − v(S))`` over
    the coalitions ``S`` without ``k``. They add up to ``v(all) − v(none)``."""
    members = players(relevant)
    n = len(members)
    weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
              for s in range(n)]
    out = {}
    for b in members:
        acc = torch.zeros_like(values[relevant])
        for sub in subsets(relevant & ~b):
            acc = acc + weight[sub.bit_count()] * (values[sub | b] - values[sub])
        out[b] = acc
    return out


def weight_values(game: TileGame, masks: list[int]) -> tuple[dict[int, Tensor], int, float]:
    """NMSE_W of every coalition in ``masks``: the metric's ``mean((W_eff − W_ref)²) /
    max|W_ref|²`` in logical units, evaluated from per-row sums of each weight state
    (:meth:`TileGame.weight_sums`) so that every alpha costs ``O(T · out)``."""
    s2 = game.scales.to(torch.float64).reshape(-1).square()  # [out]
    scale = float((game.target * game.scales).abs().max())
    count = game.target.numel()
    denom = count * max(scale, 1e-300) ** 2
    values = {}
    for mask in masks:
        sdd, srd, srr = game.weight_sums(mask)
        alpha = game.alpha(mask)
        if alpha is None:
            err = sdd
        else:
            a = alpha.to(torch.float64)  # [T, 1] or [T, out]
            err = (a - 1).square() * srr + 2 * a * (a - 1) * srd + a.square() * sdd
        values[mask] = (err * s2).sum(-1) / denom
    return values, count, scale


def _apply_states(tiles: list[TileWithPeriphery], games: list[TileGame], mask: int,
                  i: int, seed: int) -> None:
    """Put every tile of a copy into the state of coalition ``mask`` at time ``i``, with
    the IO noise generator reseeded the same way for every coalition (common random
    numbers)."""
    for j, (tile, game) in enumerate(zip(tiles, games, strict=True)):
        tile.analog_core.set_weights(game.weights(mask)[i])
        alpha = game.alpha(mask)
        if alpha is not None and isinstance(tile, InferenceTile):
            tile.alpha.copy_(alpha[i])
        tile.rpu_config.forward = game.io(mask)  # the core shares this config object
        tile.manual_seed(seed_of(seed, j, 5, i))


@torch.no_grad()
def output_values(module: nn.Module, all_tiles: list[TileWithPeriphery],
                  games: list[TileGame], layers: list[nn.Module], times: list[float],
                  seed: int, inputs: Tensor, masks: list[int],
                  ) -> list[tuple[dict[int, Tensor], int, float]]:
    """NMSE_y of every coalition in ``masks`` (``[T]`` each), its count and scale, for
    ``module`` and for each of ``layers`` (each on its input in the ideal run, so a layer's
    values hold its own errors, not those of the layers before)."""
    copy_ = detached_copy(module).eval()
    names = {id(m): n for n, m in module.named_modules()}
    copies = dict(copy_.named_modules())
    tiles = [copies[names[id(t)]] for t in all_tiles]
    for tile in tiles:
        assert tile.analog_core.rpu_config is tile.rpu_config
    probes = [copies[names[id(m)]] for m in layers]
    errors: list[dict[int, list[Tensor]]] = [
        {m: [] for m in masks} for _ in range(1 + len(probes))
    ]
    for i in range(len(times)):
        captured: dict[int, Tensor] = {}
        handles = [
            probe.register_forward_pre_hook(
                lambda mod, args, k=k, into=captured: into.__setitem__(k, args[0]))
            for k, probe in enumerate(probes)
        ]
        try:
            _apply_states(tiles, games, 0, i, seed)
            refs = [copy_(inputs)]
        finally:
            for h in handles:
                h.remove()
        layer_inputs = [captured[k] for k in range(len(probes))]
        refs += [probe(x) for probe, x in zip(probes, layer_inputs, strict=True)]
        for mask in masks:
            _apply_states(tiles, games, mask, i, seed)
            outs = [copy_(inputs)]
            for probe, x in zip(probes, layer_inputs, strict=True):
                outs.append(probe(x))
            for k, (out, ref) in enumerate(zip(outs, refs, strict=True)):
                errors[k][mask].append(nmse(out, ref))
    return [({m: torch.stack(v) for m, v in errs.items()}, ref.numel(),
             float(ref.abs().max())) for errs, ref in zip(errors, refs, strict=True)]


