"""Error budgets: how much of a tile's, layer's or model's error each non-ideality causes.

Method (documented in ``docs/metrics.md``): the tile's target weights are programmed onto a
fresh simulated chip with the tile's own configuration and physics (its noise model,
converter, drift compensation and IO model), once with every source of error on and once
with each source made ideal in turn, on **common random numbers**: each ablation reuses
the same generator seeds, so the programming noise, drift exponents, read noise and IO
noise are the same draws in every run and differences come from the source alone. The
part of a source is how much the error drops when that source alone is made ideal
(leave-one-out, the actionable reading: "fixing this saves that much"); the interaction is
the rest, so ``sum(parts) + interaction == total`` to float rounding. Errors are NMSE
(:mod:`anatile.analysis.metrics`), the form in which independent errors add.

Sources and their ideal state:

* ``programming``: programming noise (programmed = target conductances);
* ``mean_drift``: the tile's mean drift, every device drifting with the tile's
  conductance-weighted mean ν̄ (ideal: ν − ν̄, the spread alone);
* ``drift_variability``: the device-to-device spread of ν (ideal: every ν = ν̄);
* ``read_noise``: 1/f read noise (ideal: off);
* ``compensation``: what the drift compensation leaves behind (ideal: the least-squares
  best factor of the same form, one per tile or per column, against the targets);
* ``io``: DAC/ADC quantization and input/output/weight noise (ideal: none, bounds kept);
* ``saturation``: weights at their device bounds (training tiles with a bounded device)
  and inputs/outputs clipped at the DAC/ADC bounds (ideal: unbounded, same steps).

A training tile has no PCM devices: its weight is its array weight clipped to each
device's bounds (a pulsed device holds nothing beyond them), its ``programming`` part is
the closed-loop programming residual; drift and read noise are absent and every time step
is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from anatile.analysis._ablation import ABLATIONS, SOURCES, TileStates, seed_of, tile_states
from anatile.analysis._layers import analog_layers, detached_copy, layer_tiles
from anatile.analysis.metrics import OUTPUT_NMSE, WEIGHT_NMSE, Metric, nmse
from anatile.analysis.trace import check_times
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = [
    "SOURCES",
    "SOURCE_LABELS",
    "BudgetTable",
    "ErrorBudget",
    "error_budget",
]

SOURCE_LABELS: dict[str, str] = {
    "programming": "programming noise",
    "mean_drift": "mean drift",
    "drift_variability": "drift variability",
    "read_noise": "read noise",
    "compensation": "compensation residual",
    "io": "IO quantization and noise",
    "saturation": "saturation / clipping",
    "interaction": "interaction",
}
"""Words for each source (and the interaction) in labels and tables."""


@dataclass(frozen=True)
class BudgetTable:
    """One metric split by source over time (float64 CPU tensors ``[T]``).

    Attributes:
        metric: the metric of every value (``anatile.analysis.metrics.WEIGHT_NMSE`` or
            ``anatile.analysis.metrics.OUTPUT_NMSE``).
        t_steps: the inference times (s).
        total: the error with every source on.
        parts: per source (keys :data:`SOURCES`), ``total − error with that source ideal``.
        interaction: ``total − sum(parts)``: what the sources do together beyond their
            parts (negative when they overlap).
        ideal: the error with every source ideal (float rounding; a check, not a part).
        count: number of values averaged (weights or outputs).
        scale: the normalization ``max|reference|`` (logical units).

    Example:
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 8, seed=0)
        >>> tile.set_weights(0.1 * torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        >>> table = error_budget(tile, [1.0, 86400.0]).weight
        >>> isinstance(table, BudgetTable), table.metric.symbol, table.total.shape
        (True, 'NMSE_W', torch.Size([2]))
        >>> table.top_source() in table.parts
        True
    """

    metric: Metric
    t_steps: Tensor
    total: Tensor
    parts: dict[str, Tensor]
    interaction: Tensor
    ideal: Tensor
    count: int
    scale: float

    def mean(self) -> dict[str, float]:
        """Time-averaged parts, interaction and total (``"total"``, sources, ``"interaction"``)."""
        out = {s: float(v.mean()) for s, v in self.parts.items()}
        out["interaction"] = float(self.interaction.mean())
        out["total"] = float(self.total.mean())
        return out

    def top_source(self) -> str:
        """The source with the largest time-averaged part."""
        means = {s: float(v.mean()) for s, v in self.parts.items()}
        return max(means, key=lambda s: means[s])

    def shares(self) -> dict[str, float]:
        """Time-averaged parts and interaction as fractions of the time-averaged total."""
        means = self.mean()
        total = means.pop("total")
        return {k: (v / total if total > 0 else 0.0) for k, v in means.items()}

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per source and the interaction and total: label, the value at each time,
        the time average and its share of the total (for tables and CSV)."""
        shares = self.shares()
        rows = []
        series = {**self.parts, "interaction": self.interaction, "total": self.total}
        for key, values in series.items():
            row: dict[str, Any] = {"source": SOURCE_LABELS.get(key, key)}
            for t, v in zip(self.t_steps.tolist(), values.tolist(), strict=True):
                row[f"{self.metric.symbol} at {t:g} s"] = v
            row[f"mean {self.metric.symbol}"] = float(values.mean())
            row["share of total"] = 1.0 if key == "total" else shares[key]
            rows.append(row)
        return rows


@dataclass(frozen=True)
class ErrorBudget:
    """Result of :func:`error_budget` for a tile, a layer or a model.

    Attributes:
        name: the tile's, layer's or model's name.
        level: ``"tile"``, ``"layer"`` or ``"model"``.
        weight: the weight error (NMSE_W) by source.
        output: the output error (NMSE_y) by source, when inputs were given (for tiles of a
            layer that spans several tiles: None, see the layer's).
        children: the layers of a model, the tiles of a layer (empty for a tile).
        seed: the seed of the common random numbers.

    Example:
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 8, seed=0)
        >>> tile.set_weights(0.1 * torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        >>> budget = error_budget(tile, [1.0, 86400.0])
        >>> isinstance(budget, ErrorBudget), budget.level
        (True, 'tile')
    """

    name: str
    level: str
    weight: BudgetTable
    output: BudgetTable | None
    children: list[ErrorBudget] = field(default_factory=list)
    seed: int = 0

    def top_source(self, output: bool = False) -> str:
        """The largest source of the weight error (or of the output error)."""
        table = self.output if output else self.weight
        if table is None:
            raise ValueError("output: this budget has no output error (no inputs were given)")
        return table.top_source()

    def to_rows(self, output: bool = False) -> list[dict[str, Any]]:
        """Rows of this budget and all its children, each with ``level`` and ``name``."""
        table = self.output if output else self.weight
        rows = [] if table is None else [
            {"level": self.level, "name": self.name, **row} for row in table.to_rows()
        ]
        for child in self.children:
            rows += child.to_rows(output)
        return rows


# ----------------------------------------------------------------------------- simulation

# ----------------------------------------------------------------------------- tables
def _table(metric: Metric, times: list[float], errors: dict[str, Tensor], count: int,
           scale: float) -> BudgetTable:
    total = errors["all"]
    parts = {s: total - errors[f"no_{s}"] for s in SOURCES}
    interaction = total - torch.stack(list(parts.values())).sum(0)
    return BudgetTable(metric, torch.tensor(times, dtype=torch.float64), total, parts,
                       interaction, errors["ideal"], count, scale)


def _combine(metric: Metric, tables: list[BudgetTable], *, renormalize: bool) -> BudgetTable:
    """Pool tables: sums of squared errors over a common ``max|W|`` (renormalize, for the
    tiles of one layer) or a count-weighted mean of the NMSEs (the layers of a model)."""
    counts = torch.tensor([t.count for t in tables], dtype=torch.float64)
    if renormalize:
        scale = max(t.scale for t in tables)
        weights = counts * torch.tensor([t.scale for t in tables], dtype=torch.float64) ** 2
        weights = weights / (counts.sum() * max(scale, 1e-30) ** 2)
    else:
        scale = float("nan")
        weights = counts / counts.sum()

    def pool(values: list[Tensor]) -> Tensor:
        return (torch.stack(values) * weights.unsqueeze(-1)).sum(0)

    total = pool([t.total for t in tables])
    parts = {s: pool([t.parts[s] for t in tables]) for s in SOURCES}
    interaction = total - torch.stack(list(parts.values())).sum(0)
    return BudgetTable(metric, tables[0].t_steps, total, parts, interaction,
                       pool([t.ideal for t in tables]), int(counts.sum()), scale)


def _weight_table(states: TileStates, times: list[float]) -> BudgetTable:
    reference = states.target * states.scales
    scale = float(reference.abs().max())
    errors = {a: nmse(states.effective(a), reference, scale=scale, batch_dims=1)
              for a in ABLATIONS}
    return _table(WEIGHT_NMSE, times, errors, reference.numel(), scale)


def _apply_states(tiles: list[TileWithPeriphery], states: list[TileStates], ablation: str,
                  i: int, seed: int) -> None:
    """Put every tile of a copy into the state of ``ablation`` at time ``i``, with the IO
    noise generator reseeded the same way for every ablation (common random numbers)."""
    for j, (tile, st) in enumerate(zip(tiles, states, strict=True)):
        tile.analog_core.set_weights(st.weights[ablation][i])
        if st.alpha is not None and isinstance(tile, InferenceTile):
            tile.alpha.copy_(st.alpha[ablation][i])
        tile.rpu_config.forward = st.io[ablation]  # the core shares this config object
        tile.manual_seed(seed_of(seed, j, 5, i))


@torch.no_grad()
def _output_tables(module: nn.Module, all_tiles: list[TileWithPeriphery],
                   states: list[TileStates], layers: list[nn.Module], times: list[float],
                   seed: int, inputs: Tensor) -> list[BudgetTable]:
    """Output budgets of ``module`` and of each of ``layers`` (each on its input in the
    ideal run, so a layer's budget holds its own errors, not those of the layers before)."""
    copy_ = detached_copy(module).eval()
    names = {id(m): n for n, m in module.named_modules()}
    copies = dict(copy_.named_modules())
    tiles = [copies[names[id(t)]] for t in all_tiles]
    for tile in tiles:
        assert tile.analog_core.rpu_config is tile.rpu_config
    probes = [copies[names[id(m)]] for m in layers]
    errors: list[dict[str, list[Tensor]]] = [
        {a: [] for a in ABLATIONS} for _ in range(1 + len(probes))
    ]
    for i in range(len(times)):
        captured: dict[int, Tensor] = {}
        handles = [
            probe.register_forward_pre_hook(
                lambda mod, args, k=k, into=captured: into.__setitem__(k, args[0]))
            for k, probe in enumerate(probes)
        ]
        try:
            _apply_states(tiles, states, "ideal", i, seed)
            refs = [copy_(inputs)]
        finally:
            for h in handles:
                h.remove()
        layer_inputs = [captured[k] for k in range(len(probes))]
        refs += [probe(x) for probe, x in zip(probes, layer_inputs, strict=True)]
        for ablation in ABLATIONS:
            _apply_states(tiles, states, ablation, i, seed)
            outs = [copy_(inputs)]
            for probe, x in zip(probes, layer_inputs, strict=True):
                outs.append(probe(x))
            for k, (out, ref) in enumerate(zip(outs, refs, strict=True)):
                errors[k][ablation].append(nmse(out, ref))
    tables = []
    for k, errs in enumerate(errors):
        ref = refs[k]
        tables.append(_table(OUTPUT_NMSE, times, {a: torch.stack(v) for a, v in errs.items()},
                             ref.numel(), float(ref.abs().max())))
    return tables


# ----------------------------------------------------------------------------- public
def _check_inputs(inputs: Any) -> Tensor | None:
    if inputs is None:
        return None
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        raise TypeError(f"inputs: expected a floating-point torch.Tensor or None, got "
                        f"{type(inputs).__name__}")
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise ValueError(f"inputs: expected a batch [N, ...] with N >= 1, got shape "
                         f"{tuple(inputs.shape)}")
    if not bool(torch.isfinite(inputs).all()):
        raise ValueError("inputs: expected finite values (no NaN/inf)")
    return inputs


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    return seed


@torch.no_grad()
def error_budget(
    tile_or_model: nn.Module,
    t_steps: Sequence[float] | float,
    inputs: Tensor | None = None,
    *,
    seed: int = 0,
) -> ErrorBudget:
    """Split the weight error (and, given inputs, the output error) by source.

    See the module docstring (and ``docs/metrics.md``) for the sources and the method:
    paired leave-one-out ablations on common random numbers, parts plus interaction equal
    the total. The tile or model is not changed: the budget simulates fresh chips with the
    tiles' configurations, target weights and the given ``seed``.

    Args:
        tile_or_model: a tile, an analog layer or a model with analog layers.
        t_steps: inference times (s, finite, ≥ 0).
        inputs: a batch for the tile or model (e.g. test data); adds the output error.
        seed: seed of the common random numbers.

    Returns:
        :class:`ErrorBudget`: a tile's, or a model's with one child per layer and one
        grandchild per tile.

    Raises:
        TypeError: if ``tile_or_model`` is not a module or ``inputs`` not a float tensor.
        TileError: if it holds no analog tile.
        ValueError: on bad times, inputs or seed.

    Example:
        >>> import torch
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(8, 16, seed=0)
        >>> tile.set_weights(torch.randn(8, 16))
        >>> budget = error_budget(tile, [1.0, 86400.0])
        >>> parts = sum(budget.weight.parts.values()) + budget.weight.interaction
        >>> bool(torch.allclose(parts, budget.weight.total))
        True
    """
    times = check_times(t_steps)
    inputs = _check_inputs(inputs)
    seed = _check_seed(seed)
    layers = analog_layers(tile_or_model)
    is_tile = isinstance(tile_or_model, TileWithPeriphery)
    tile_budgets: list[list[tuple[str, TileWithPeriphery, TileStates, BudgetTable]]] = []
    index = 0
    for _, layer in layers:
        entries = []
        for tname, tile in layer_tiles(layer):
            states = tile_states(tile, times, seed, index)
            index += 1
            entries.append((tname, tile, states, _weight_table(states, times)))
        tile_budgets.append(entries)
    all_tiles = [e[1] for entries in tile_budgets for e in entries]
    all_states = [e[2] for entries in tile_budgets for e in entries]
    outputs: list[BudgetTable] | None = None
    if inputs is not None:
        probes = [] if is_tile else [layer for _, layer in layers]
        outputs = _output_tables(tile_or_model, all_tiles, all_states, probes, times, seed,
                                 inputs)
    if is_tile:
        (_, _, _, table), = tile_budgets[0]
        return ErrorBudget(layers[0][0], "tile", table, outputs[0] if outputs else None,
                           seed=seed)
    layer_budgets = []
    for k, ((lname, _), entries) in enumerate(zip(layers, tile_budgets, strict=True)):
        single = len(entries) == 1
        children = [
            ErrorBudget(f"{lname}.{tname}" if tname else lname, "tile", table,
                        outputs[k + 1] if (outputs and single) else None, seed=seed)
            for tname, _, _, table in entries
        ]
        weight = _combine(WEIGHT_NMSE, [e[3] for e in entries], renormalize=True)
        layer_budgets.append(ErrorBudget(lname, "layer", weight,
                                         outputs[k + 1] if outputs else None, children, seed))
    model_weight = _combine(WEIGHT_NMSE, [b.weight for b in layer_budgets], renormalize=False)
    name = type(tile_or_model).__name__
    return ErrorBudget(name, "model", model_weight, outputs[0] if outputs else None,
                       layer_budgets, seed)
