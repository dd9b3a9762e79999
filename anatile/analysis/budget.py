"""Error budgets: how much of a tile's, layer's or model's error each non-ideality causes.

Method (documented in ``docs/metrics.md``): the tile's target weights are programmed onto
fresh simulated chips with the tile's own configuration and physics (its noise model,
converter, drift compensation and IO model), once for every **coalition** of error sources
(a subset switched on, the others ideal), on **common random numbers**: every coalition
reuses the same generator seeds, so the programming noise, drift exponents, read noise and
IO noise are the same draws and differences come from the sources alone. The error of each
coalition is one value of a cooperative game; the part of a source is

* ``attribution="shapley"`` (default): its **Shapley value**, its marginal contribution
  averaged over all orders in which the sources can be switched on (exact: all ``2^n``
  coalitions of the ``n`` sources that can act on the tiles). The parts add up to the total
  (less the all-ideal error, float rounding), and one error that several sources each
  remove on their own (for example the compensation readout's IO noise, amplified by the
  mean drift) is shared between them instead of counted once per source;
* ``attribution="leave_one_out"``: how much the error drops when that source alone is made
  ideal ("fixing this saves that much"; always in ``BudgetTable.leave_one_out``).
  Overlapping sources each claim the shared error: the interaction is then negative.

Errors are NMSE (:mod:`anatile.analysis.metrics`), the form in which independent errors add.

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

A training tile's weight is its array weight clipped to each device's bounds; its
``programming`` part is the closed-loop programming residual; it has no drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from anatile.analysis._ablation import SOURCES, TileGame, bit, tile_game
from anatile.analysis._attribution import (
    coalitions,
    output_values,
    shapley_values,
    weight_values,
)
from anatile.analysis._layers import analog_layers, layer_tiles
from anatile.analysis.metrics import OUTPUT_NMSE, WEIGHT_NMSE, Metric
from anatile.analysis.tiles import tile_labels
from anatile.analysis.trace import check_times
from anatile.tiles.periphery import TileWithPeriphery

__all__ = [
    "ATTRIBUTIONS",
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

ATTRIBUTIONS: tuple[str, ...] = ("shapley", "leave_one_out")
"""How :func:`error_budget` splits the error among the sources (see ``docs/metrics.md``)."""


@dataclass(frozen=True)
class BudgetTable:
    """One metric split by source over time (float64 CPU tensors ``[T]``).

    Attributes:
        metric: the metric of every value (``anatile.analysis.metrics.WEIGHT_NMSE`` or
            ``anatile.analysis.metrics.OUTPUT_NMSE``).
        t_steps: the inference times (s).
        total: the error with every source on.
        parts: per source (keys :data:`SOURCES`): its Shapley value (``attribution
            "shapley"``: its marginal contribution averaged over every order in which the
            sources can be switched on) or its leave-one-out part.
        interaction: ``total − sum(parts)``: the error no source is given (Shapley: the
            all-ideal error, float rounding; leave-one-out: what the sources do together
            beyond their parts, negative when they overlap).
        ideal: the error with every source ideal (float rounding; a check, not a part).
        count: number of values averaged (weights or outputs).
        scale: the normalization ``max|reference|`` (logical units).
        attribution: ``"shapley"`` or ``"leave_one_out"``.
        leave_one_out: per source, ``total − error with that source alone ideal``
            (whatever ``attribution`` is: what fixing only that source saves).

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
    attribution: str = "shapley"
    leave_one_out: dict[str, Tensor] = field(default_factory=dict)

    @property
    def overlap(self) -> Tensor:
        """``total − sum(leave_one_out)``: the leave-one-out interaction, negative where
        sources overlap (one error that several sources each remove on their own)."""
        return self.total - torch.stack(list(self.leave_one_out.values())).sum(0)

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
        name: the tile's, layer's or model's name as users see it: a layer's module name,
            a tile's layer name plus its ``[row,col]`` grid position when the layer spans
            several tiles (as the ``ModelInspector`` table names it), the class name of a
            model or of a bare tile.
        level: ``"tile"``, ``"layer"`` or ``"model"``.
        weight: the weight error (NMSE_W) by source.
        output: the output error (NMSE_y) by source, when inputs were given (for tiles of a
            layer that spans several tiles: None, see the layer's).
        children: the layers of a model, the tiles of a layer (empty for a tile).
        seed: the seed of the common random numbers.
        path: the module path below the budget's root (``"0.tile_array.tiles.0"``; ``""``
            for the root), for code.

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
    path: str = ""

    def top_source(self, output: bool = False) -> str:
        """The largest source of the weight error (or of the output error)."""
        table = self.output if output else self.weight
        if table is None:
            raise ValueError("output: this budget has no output error (no inputs were given)")
        return table.top_source()

    def to_rows(self, output: bool = False) -> list[dict[str, Any]]:
        """Rows of this budget and all its children, each with ``level``, ``name`` and
        the module ``path``."""
        table = self.output if output else self.weight
        rows = [] if table is None else [
            {"level": self.level, "name": self.name, "path": self.path, **row}
            for row in table.to_rows()
        ]
        for child in self.children:
            rows += child.to_rows(output)
        return rows


# ----------------------------------------------------------------------------- attribution
def _table(metric: Metric, times: list[float], values: dict[int, Tensor], relevant: int,
           attribution: str, count: int, scale: float) -> BudgetTable:
    values = {m: v.to("cpu", torch.float64) for m, v in values.items()}  # from any device
    total, ideal = values[relevant], values[0]
    zero = torch.zeros_like(total)
    loo = {s: (total - values[relevant & ~bit(s)]) if relevant & bit(s) else zero.clone()
           for s in SOURCES}
    if attribution == "shapley":
        phi = shapley_values(values, relevant)
        parts = {s: phi.get(bit(s), zero.clone()) for s in SOURCES}
    else:
        parts = dict(loo)
    interaction = total - torch.stack(list(parts.values())).sum(0)
    return BudgetTable(metric, torch.tensor(times, dtype=torch.float64), total, parts,
                       interaction, ideal, count, scale, attribution, loo)


def _combine(metric: Metric, tables: list[BudgetTable], *, renormalize: bool) -> BudgetTable:
    """Pool tables: sums of squared errors over a common ``max|W|`` (renormalize, for the
    tiles of one layer) or a count-weighted mean of the NMSEs (the layers of a model).
    Both are linear, and so are both attributions: the pooled parts are the parts of the
    pooled errors."""
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
    loo = {s: pool([t.leave_one_out[s] for t in tables]) for s in SOURCES}
    interaction = total - torch.stack(list(parts.values())).sum(0)
    return BudgetTable(metric, tables[0].t_steps, total, parts, interaction,
                       pool([t.ideal for t in tables]), int(counts.sum()), scale,
                       tables[0].attribution, loo)


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


def _check_attribution(attribution: Any) -> str:
    if attribution not in ATTRIBUTIONS:
        raise ValueError(f"attribution: expected one of {ATTRIBUTIONS}, got {attribution!r}")
    return str(attribution)


@torch.no_grad()
def error_budget(
    tile_or_model: nn.Module,
    t_steps: Sequence[float] | float,
    inputs: Tensor | None = None,
    *,
    seed: int = 0,
    attribution: str = "shapley",
) -> ErrorBudget:
    """Split the weight error (and, given inputs, the output error) by source.

    See the module docstring (and ``docs/metrics.md``) for the sources and the method:
    ablations on common random numbers, attributed by Shapley values (default) or by
    leave-one-out; parts plus interaction equal the total. The tile or model is not
    changed: the budget simulates fresh chips with the tiles' configurations, target
    weights and the given ``seed``.

    Args:
        tile_or_model: a tile, an analog layer or a model with analog layers.
        t_steps: inference times (s, finite, ≥ 0).
        inputs: a batch for the tile or model (e.g. test data); adds the output error.
        seed: seed of the common random numbers.
        attribution: ``"shapley"`` (parts add up to the total, the interaction is float
            rounding) or ``"leave_one_out"`` (each part is what making that source alone
            ideal saves; overlapping sources leave a negative interaction). Both are
            always reported: ``BudgetTable.leave_one_out`` holds the latter.

    Returns:
        :class:`ErrorBudget`: a tile's, or a model's with one child per layer and one
        grandchild per tile; tiles are named as users see them (layer name, plus the
        ``[row,col]`` grid position in a layer of several tiles), their module path is
        ``ErrorBudget.path``.

    Raises:
        TypeError: if ``tile_or_model`` is not a module or ``inputs`` not a float tensor.
        TileError: if it holds no analog tile.
        ValueError: on bad times, inputs, seed or attribution.

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
    attribution = _check_attribution(attribution)
    layers = analog_layers(tile_or_model)
    is_tile = isinstance(tile_or_model, TileWithPeriphery)
    paths = {id(m): n for n, m in tile_or_model.named_modules()}
    labels = tile_labels(tile_or_model)
    games: list[list[tuple[TileWithPeriphery, TileGame]]] = []
    index = 0
    for _, layer in layers:
        entries = []
        for _tname, tile in layer_tiles(layer):
            entries.append((tile, tile_game(tile, times, seed, index)))
            index += 1
        games.append(entries)
    all_tiles = [t for entries in games for t, _ in entries]
    all_games = [g for entries in games for _, g in entries]
    relevant = 0
    for game in all_games:
        relevant |= game.relevant
    masks = coalitions(relevant, attribution)
    tables: list[list[BudgetTable]] = []
    for entries in games:
        row = []
        for _, game in entries:
            values, count, scale = weight_values(game, masks)
            row.append(_table(WEIGHT_NMSE, times, values, relevant, attribution, count, scale))
        tables.append(row)
    outputs: list[BudgetTable] | None = None
    if inputs is not None:
        probes = [] if is_tile else [layer for _, layer in layers]
        outputs = [
            _table(OUTPUT_NMSE, times, values, relevant, attribution, count, scale)
            for values, count, scale in output_values(tile_or_model, all_tiles, all_games,
                                                      probes, times, seed, inputs, masks)
        ]
    if is_tile:
        return ErrorBudget(layers[0][0], "tile", tables[0][0],
                           outputs[0] if outputs else None, seed=seed, path="")
    layer_budgets = []
    for k, ((lname, layer), entries, row) in enumerate(zip(layers, games, tables,
                                                           strict=True)):
        single = len(entries) == 1
        children = [
            ErrorBudget(labels.get(paths[id(tile)], lname) or lname, "tile", table,
                        outputs[k + 1] if (outputs and single) else None, seed=seed,
                        path=paths[id(tile)])
            for (tile, _), table in zip(entries, row, strict=True)
        ]
        weight = _combine(WEIGHT_NMSE, row, renormalize=True)
        layer_budgets.append(ErrorBudget(lname, "layer", weight,
                                         outputs[k + 1] if outputs else None, children, seed,
                                         paths[id(layer)]))
    model_weight = _combine(WEIGHT_NMSE, [b.weight for b in layer_budgets], renormalize=False)
    name = type(tile_or_model).__name__
    return ErrorBudget(name, "model", model_weight, outputs[0] if outputs else None,
                       layer_budgets, seed, "")
