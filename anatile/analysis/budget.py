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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from anatile.analysis._layers import analog_layers, detached_copy, layer_tiles
from anatile.analysis.metrics import OUTPUT_NMSE, WEIGHT_NMSE, Metric, nmse
from anatile.analysis.trace import check_times
from anatile.config.parameters import IOParameters
from anatile.functional.io_model import quantization_step
from anatile.inference.compensation import PerColumnDriftCompensation
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = [
    "SOURCES",
    "SOURCE_LABELS",
    "BudgetTable",
    "ErrorBudget",
    "error_budget",
]

SOURCES: tuple[str, ...] = (
    "programming",
    "mean_drift",
    "drift_variability",
    "read_noise",
    "compensation",
    "io",
    "saturation",
)
"""The error sources, in pipeline order."""

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

_ABLATIONS: tuple[str, ...] = ("all", "ideal", *(f"no_{s}" for s in SOURCES))
_UNBOUNDED = 1e6  # bound multiplier of the "no clipping" IO (steps are kept)


@dataclass(frozen=True)
class BudgetTable:
    """One metric split by source over time (float64 CPU tensors ``[T]``).

    Attributes:
        metric: the metric of every value (:data:`~anatile.analysis.metrics.WEIGHT_NMSE` or
            :data:`~anatile.analysis.metrics.OUTPUT_NMSE`).
        t_steps: the inference times (s).
        total: the error with every source on.
        parts: per source (keys :data:`SOURCES`), ``total − error with that source ideal``.
        interaction: ``total − sum(parts)``: what the sources do together beyond their
            parts (negative when they overlap).
        ideal: the error with every source ideal (float rounding; a check, not a part).
        count: number of values averaged (weights or outputs).
        scale: the normalization ``max|reference|`` (logical units).
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
def _seed(seed: int, *keys: int) -> int:
    value = seed
    for k in keys:
        value = (value * 1_000_003 + k + 1) % 2**62
    return value


def _gen(device: torch.device, seed: int, *keys: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(_seed(seed, *keys))


def _io_variants(io: IOParameters) -> dict[str, IOParameters]:
    """The tile's IO, without quantization and noise, without clipping, without both."""
    quiet = dataclasses.replace(io, inp_res=0.0, out_res=0.0, inp_noise=0.0, out_noise=0.0,
                                w_noise=0.0)
    def same_step(res: float, bound: float) -> float:
        """The resolution that keeps the step of (res, bound) over ±bound · _UNBOUNDED."""
        step = quantization_step(res, bound)
        return step / (2.0 * bound * _UNBOUNDED) if step > 0 else res

    unclipped = dataclasses.replace(
        io, inp_bound=io.inp_bound * _UNBOUNDED, inp_res=same_step(io.inp_res, io.inp_bound),
        out_bound=io.out_bound * _UNBOUNDED, out_res=same_step(io.out_res, io.out_bound))
    ideal = dataclasses.replace(quiet, inp_bound=io.inp_bound * _UNBOUNDED,
                                out_bound=io.out_bound * _UNBOUNDED)
    if io.is_perfect:
        return {"actual": io, "quiet": io, "unclipped": io, "ideal": io}
    return {"actual": io, "quiet": quiet, "unclipped": unclipped, "ideal": ideal}


_IO_OF = {"no_io": "quiet", "no_saturation": "unclipped", "ideal": "ideal"}


@dataclass
class _TileStates:
    """Array weights (normalized) ``[T, out, in']``, alpha ``[T, n]`` and IO per ablation."""

    target: Tensor
    scales: Tensor  # [out, 1] logical units per normalized unit
    weights: dict[str, Tensor]
    alpha: dict[str, Tensor] | None
    io: dict[str, IOParameters]

    def effective(self, ablation: str) -> Tensor:
        """Logical effective weights ``[T, out, in']``."""
        w = self.weights[ablation]
        if self.alpha is None:
            return w * self.scales
        return w * (self.alpha[ablation].unsqueeze(-1) * self.scales)  # [T, out, 1]: one pass


def _target(tile: TileWithPeriphery) -> Tensor:
    ref = tile.reference_weight
    return (ref if ref is not None else tile.analog_core.weight).detach().clone()


def _row_scales(tile: TileWithPeriphery) -> Tensor:
    scales = tile.get_scales()
    n = tile.out_size
    if scales is None:
        return torch.ones(n, 1, dtype=tile.analog_core.weight.dtype, device=tile.device)
    return scales.detach().to(tile.device).reshape(-1, 1).expand(n, 1).clone()


def _oracle_alpha(tile: InferenceTile, drifted: Tensor, target: Tensor) -> Tensor:
    """Least-squares best factor of the compensation's form: ``[T, n_alpha]``."""
    num = (drifted * target).to(torch.float64)
    den = drifted.to(torch.float64).square()
    if isinstance(tile.rpu_config.drift_compensation, PerColumnDriftCompensation):
        num_s, den_s = num.sum(-1), den.sum(-1)
    else:
        num_s, den_s = num.sum((-2, -1)).unsqueeze(-1), den.sum((-2, -1)).unsqueeze(-1)
    ok = den_s > 0
    alpha = torch.where(ok, num_s / torch.where(ok, den_s, torch.ones_like(den_s)),
                        torch.ones_like(den_s))
    return alpha.to(drifted.dtype)


@torch.no_grad()
def _inference_states(tile: InferenceTile, times: list[float], seed: int,
                      index: int) -> _TileStates:
    model = tile.noise_model
    converter = model.g_converter
    device = tile.device
    target = _target(tile)
    targets, params = converter.convert_to_conductances(target)
    g_target = torch.stack(targets)
    g_prog = model.apply_programming_noise_to_conductance(g_target, _gen(device, seed, index, 0))
    nu = model.generate_drift_coefficients(g_target, _gen(device, seed, index, 1))
    weight_sum = g_target.sum()
    nu_bar = (nu * g_target).sum() / weight_sum if float(weight_sum) > 0 else nu.mean()
    silent = model.replace(read_noise_scale=0.0)
    variants = {  # (programmed conductances, ν, read noise on)
        "all": (g_prog, nu, True),
        "no_programming": (g_target, nu, True),
        "no_mean_drift": (g_prog, nu - nu_bar, True),
        "no_drift_variability": (g_prog, torch.full_like(nu, float(nu_bar)), True),
        "no_read_noise": (g_prog, nu, False),
        "ideal": (g_target, torch.zeros_like(nu), False),
    }
    dtype = tile.analog_core.weight.dtype

    def back(g: Tensor) -> Tensor:
        return converter.convert_back_to_weights(list(g.unbind(0)), params).to(dtype)

    def back_t(g: Tensor) -> Tensor:  # [T, K, ...] -> [T, ...]
        return converter.convert_back_to_weights(list(g.unbind(1)), params).to(dtype)

    # all times in one call: t broadcasts over a leading time dimension, so the read noise
    # of every variant is one draw of the same shape from the same seed
    t = torch.tensor(times, dtype=torch.float64, device=device).reshape(-1, 1, 1, 1)
    stacked: dict[str, Tensor] = {}
    for name, (gp, nu_v, read) in variants.items():
        if name == "ideal":  # no drift, no noise: the targets at every time
            stacked[name] = back(g_target).unsqueeze(0).expand(len(times), *target.shape)
            continue
        phys = model if read else silent
        g_t = phys.apply_drift_noise_to_conductance(gp, nu_v, t, _gen(device, seed, index, 2))
        stacked[name] = back_t(g_t)
    for name in ("no_compensation", "no_io", "no_saturation"):
        stacked[name] = stacked["all"]
    io = _io_variants(tile.rpu_config.forward)
    io_of = {a: io[_IO_OF.get(a, "actual")] for a in _ABLATIONS}

    # drift compensation: each ablation reads its own chip (baseline at programming, then
    # at each time) through its IO, on the same IO noise draws
    alpha: dict[str, Tensor] = {}
    programmed = {name: back(gp) for name, (gp, _, _) in variants.items()}
    comp = tile.rpu_config.drift_compensation
    for ablation in _ABLATIONS:
        if ablation == "no_compensation":
            continue
        if comp is None or ablation == "ideal":
            # the ideal chip reads its programmed weights again through a noise-free IO: the
            # two readouts are identical, so alpha is exactly 1
            alpha[ablation] = torch.ones(len(times), tile.alpha.numel(), dtype=dtype,
                                         device=device)
            continue
        prog_name = ablation if ablation in programmed else "all"
        base = tile.compensation_baseline(programmed[prog_name], io=io_of[ablation],
                                          generator=_gen(device, seed, index, 3))
        alpha[ablation] = torch.stack([
            tile.compensation_alpha(stacked[ablation][i], baseline=base, io=io_of[ablation],
                                    generator=_gen(device, seed, index, 4, i))
            for i in range(len(times))
        ])
    if comp is None:
        alpha["no_compensation"] = alpha["all"]
    else:
        alpha["no_compensation"] = _oracle_alpha(tile, stacked["all"], target)
    return _TileStates(target, _row_scales(tile), stacked, alpha, io_of)


@torch.no_grad()
def _training_states(tile: TileWithPeriphery, times: list[float]) -> _TileStates:
    target = _target(tile)
    array = tile.analog_core.weight.detach().clone()
    params = tile.analog_core.device_parameters
    if params is None:
        clamped_array, clamped_target = array, target
    else:
        clamped_array = torch.minimum(torch.maximum(array, params.w_min), params.w_max)
        clamped_target = torch.minimum(torch.maximum(target, params.w_min), params.w_max)
    per = {
        "all": clamped_array,
        "no_programming": clamped_target,
        "no_saturation": target + (clamped_array - clamped_target),
        "ideal": target,
    }
    n = len(times)
    weights = {a: per.get(a, clamped_array).unsqueeze(0).expand(n, *array.shape)
               for a in _ABLATIONS}
    io = _io_variants(tile.rpu_config.forward)
    io_of = {a: io[_IO_OF.get(a, "actual")] for a in _ABLATIONS}
    return _TileStates(target, _row_scales(tile), weights, None, io_of)


def _states(tile: TileWithPeriphery, times: list[float], seed: int, index: int) -> _TileStates:
    if isinstance(tile, InferenceTile):
        return _inference_states(tile, times, seed, index)
    return _training_states(tile, times)


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


def _weight_table(states: _TileStates, times: list[float]) -> BudgetTable:
    reference = states.target * states.scales
    scale = float(reference.abs().max())
    errors = {a: nmse(states.effective(a), reference, scale=scale, batch_dims=1)
              for a in _ABLATIONS}
    return _table(WEIGHT_NMSE, times, errors, reference.numel(), scale)


def _apply_states(tiles: list[TileWithPeriphery], states: list[_TileStates], ablation: str,
                  i: int, seed: int) -> None:
    """Put every tile of a copy into the state of ``ablation`` at time ``i``, with the IO
    noise generator reseeded the same way for every ablation (common random numbers)."""
    for j, (tile, st) in enumerate(zip(tiles, states, strict=True)):
        tile.analog_core.set_weights(st.weights[ablation][i])
        if st.alpha is not None and isinstance(tile, InferenceTile):
            tile.alpha.copy_(st.alpha[ablation][i])
        tile.rpu_config.forward = st.io[ablation]  # the core shares this config object
        tile.manual_seed(_seed(seed, j, 5, i))


@torch.no_grad()
def _output_tables(module: nn.Module, all_tiles: list[TileWithPeriphery],
                   states: list[_TileStates], layers: list[nn.Module], times: list[float],
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
        {a: [] for a in _ABLATIONS} for _ in range(1 + len(probes))
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
        for ablation in _ABLATIONS:
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
    tile_budgets: list[list[tuple[str, TileWithPeriphery, _TileStates, BudgetTable]]] = []
    index = 0
    for _, layer in layers:
        entries = []
        for tname, tile in layer_tiles(layer):
            states = _states(tile, times, seed, index)
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
