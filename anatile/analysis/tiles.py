"""Per-layer and per-tile summaries of a model's analog layers (the numbers views show).

The weight error of a tile is the weight error NRMSE_W of :mod:`anatile.analysis.metrics`
in % of ``max|W|``: ``100 · sqrt(mean((alpha · W_now − W_ref)²)) / max|W_ref|`` over the
tile's weights, where ``W_ref`` is the reference (the weights last set), ``W_now`` the
weights on the array now (after programming noise and drift, for an inference tile) and
``alpha`` the drift compensation (1 for a training tile). It is scale free, so it is the
same in normalized and logical units.

Example:
    >>> from anatile.config import RPUConfig
    >>> from anatile.nn import AnalogLinear
    >>> cfg = RPUConfig()
    >>> cfg.mapping.max_input_size = 4
    >>> model = torch.nn.Sequential(AnalogLinear(8, 3, rpu_config=cfg, seed=0))
    >>> [(t.position, t.shape) for t in tile_summaries(model)[0].tiles]
    [((0, 0), (3, 4)), ((0, 1), (3, 4))]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from anatile.analysis.metrics import weight_nrmse
from anatile.nn import AnalogLayerBase, TileArray, TilePlacement
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = [
    "LayerSummary",
    "LayerWeightMap",
    "TileSummary",
    "tile_label",
    "tile_labels",
    "tile_summaries",
    "layer_weight_map",
    "tile_weight_error",
]


@dataclass(frozen=True)
class TileSummary:
    """One tile of a layer, as it is now.

    Attributes:
        placement: the tile, its grid position and its block of the weight matrix.
        mapping_scales: CPU copy of the mapping scales (``[1]`` or ``[out]``).
        weight_error: relative RMS weight error (% of ``max|W_ref|``, see the module doc).
        alpha: drift compensation factor(s) (CPU copy), or None for a training tile.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog
        >>> cfg = InferenceRPUConfig()
        >>> cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
        >>> net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
        >>> model = convert_to_analog(net, cfg)
        >>> tile = tile_summaries(model)[0].tiles[0]
        >>> isinstance(tile, TileSummary), (tile.placement.row, tile.placement.col)
        (True, (0, 0))
    """

    placement: TilePlacement
    mapping_scales: Tensor
    weight_error: float
    alpha: Tensor | None

    @property
    def tile(self) -> TileWithPeriphery:
        """The tile."""
        return self.placement.tile

    @property
    def position(self) -> tuple[int, int]:
        """``(row, col)`` in the layer's grid."""
        return self.placement.position

    @property
    def shape(self) -> tuple[int, int]:
        """``(out, in)`` size of the tile's block."""
        return self.placement.shape


@dataclass(frozen=True)
class LayerSummary:
    """An analog layer (or a bare tile) of a model.

    Attributes:
        name: qualified module name (``""`` for the model itself).
        module: the layer (or the bare tile).
        shape: ``(out, in)`` of the logical weight matrix.
        grid_shape: ``(rows, cols)`` of its tile grid.
        tiles: one :class:`TileSummary` per tile, row-major.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog
        >>> cfg = InferenceRPUConfig()
        >>> cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
        >>> net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
        >>> model = convert_to_analog(net, cfg)
        >>> first = tile_summaries(model)[0]
        >>> isinstance(first, LayerSummary), first.shape, first.grid_shape, len(first.tiles)
        (True, (10, 12), (2, 2), 4)
    """

    name: str
    module: nn.Module
    shape: tuple[int, int]
    grid_shape: tuple[int, int]
    tiles: list[TileSummary]


def _weights_now(tile: TileWithPeriphery) -> tuple[Tensor, Tensor | None]:
    """``(alpha · W_now, W_ref)`` in normalized units, data columns only, CPU float64."""
    n_in = tile.in_size
    now = tile.analog_core.weight.detach()[:, :n_in].to("cpu", torch.float64)
    if isinstance(tile, InferenceTile) and tile.rpu_config.drift_compensation is not None:
        now = now * tile.alpha.detach().to("cpu", torch.float64).reshape(-1, 1)
    ref = tile.reference_weight
    return now, None if ref is None else ref.detach()[:, :n_in].to("cpu", torch.float64)


def tile_weight_error(tile: TileWithPeriphery) -> float:
    """Weight error NRMSE_W of ``tile`` now, in % of ``max|W_ref|`` (NaN before any weights
    were set).

    Example:
        >>> from anatile.config import RPUConfig
        >>> from anatile.tiles import TileWithPeriphery
        >>> tile = TileWithPeriphery(4, 8, RPUConfig(), seed=0)
        >>> tile.set_weights(0.3 * torch.ones(4, 8))
        >>> tile_weight_error(tile)  # nothing programmed yet: the weights are exact
        0.0
    """
    now, ref = _weights_now(tile)
    if ref is None:
        return float("nan")
    return 100.0 * float(weight_nrmse(now, ref))


def _summarize(placement: TilePlacement) -> TileSummary:
    tile = placement.tile
    alpha = (tile.alpha.detach().to("cpu", copy=True)
             if isinstance(tile, InferenceTile) else None)
    return TileSummary(placement, tile.get_mapping_scales().to("cpu"),
                       tile_weight_error(tile), alpha)


def tile_summaries(model: nn.Module) -> list[LayerSummary]:
    """Every analog layer of ``model`` with a summary of each of its tiles, module order.

    A layer is an :class:`AnalogLayerBase` (``AnalogLinear``, ``AnalogConv2d``);
    a tile outside any array (a bare ``TileWithPeriphery`` in the model) counts as a
    one-tile layer.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog
        >>> cfg = InferenceRPUConfig()
        >>> cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
        >>> net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
        >>> model = convert_to_analog(net, cfg)
        >>> [(layer.name, layer.grid_shape) for layer in tile_summaries(model)]
        [('0', (2, 2)), ('2', (1, 2))]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    in_arrays: set[int] = set()
    for mod in model.modules():
        if isinstance(mod, TileArray):
            in_arrays.update(id(t) for t in mod.tiles)
    layers = []
    for name, mod in model.named_modules():
        if isinstance(mod, AnalogLayerBase):
            array = mod.tile_array
            placements = array.placements()
            shape = (array.out_size, array.in_size)
            grid = array.grid_shape
        elif isinstance(mod, TileWithPeriphery) and id(mod) not in in_arrays:
            full = slice(0, mod.out_size), slice(0, mod.in_size)
            placements = [TilePlacement(mod, 0, 0, *full)]
            shape, grid = (mod.out_size, mod.in_size), (1, 1)
        else:
            continue
        layers.append(LayerSummary(name, mod, shape, grid, [_summarize(p) for p in placements]))
    return layers


def tile_label(layer_name: str, position: tuple[int, int], split: bool) -> str:
    """A tile's name for users: its layer's name, plus ``[row,col]`` when the layer spans
    several tiles (``"0[1,2]"``).

    Example:
        >>> tile_label("0", (1, 2), split=True), tile_label("fc", (0, 0), split=False)
        ('0[1,2]', 'fc')
    """
    return f"{layer_name}[{position[0]},{position[1]}]" if split else layer_name


def tile_labels(model: nn.Module) -> dict[str, str]:
    """Module path of every tile of ``model`` -> its name for users (``tile_label``).

    Findings, error budgets and tables name tiles this way; the module path
    (``"0.tile_array.tiles.1"``) stays available for code (``Finding.path``,
    ``ErrorBudget.path``). A bare tile passed as ``model`` is named ``""``.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog
        >>> cfg = InferenceRPUConfig()
        >>> cfg.mapping.max_input_size = 8
        >>> net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
        >>> tile_labels(convert_to_analog(net, cfg))
        {'0.tile_array.tiles.0': '0[0,0]', '0.tile_array.tiles.1': '0[0,1]', \
'2.tile_array.tiles.0': '2[0,0]', '2.tile_array.tiles.1': '2[0,1]'}
    """
    paths = {id(m): n for n, m in model.named_modules()}
    out = {}
    for layer in tile_summaries(model):
        split = len(layer.tiles) > 1
        for s in layer.tiles:
            out[paths[id(s.tile)]] = tile_label(layer.name, s.position, split)
    return out


@dataclass(frozen=True)
class LayerWeightMap:
    """The full weight matrix of a layer as it acts now, and where its tiles meet.

    Attributes:
        weight: ``[out, in]`` effective logical weights (``alpha`` and all scales applied).
        error: ``[out, in]`` ``|W_eff − W_ref| / max|W_ref|`` in % (the layer's max).
        row_bounds: output indices where a new grid row starts (without 0).
        col_bounds: input indices where a new grid column starts (without 0).

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog
        >>> cfg = InferenceRPUConfig()
        >>> cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
        >>> net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
        >>> model = convert_to_analog(net, cfg)
        >>> wmap = layer_weight_map(model[0])  # 10 × 12 on 2 × 2 tiles, split at 5 and 6
        >>> isinstance(wmap, LayerWeightMap), wmap.weight.shape, wmap.row_bounds, wmap.col_bounds
        (True, torch.Size([10, 12]), [5], [6])
    """

    weight: Tensor
    error: Tensor
    row_bounds: list[int]
    col_bounds: list[int]


def layer_weight_map(layer: nn.Module) -> LayerWeightMap:
    """Assemble the effective and reference weights of every tile of ``layer``.

    Args:
        layer: an analog layer (:class:`AnalogLayerBase`) or a tile.

    Raises:
        TypeError: for another module.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog
        >>> cfg = InferenceRPUConfig()
        >>> cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
        >>> net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
        >>> model = convert_to_analog(net, cfg)
        >>> wmap = layer_weight_map(model[2])  # 3 × 10 on one row of two tiles
        >>> wmap.error.shape, wmap.col_bounds
        (torch.Size([3, 10]), [5])
    """
    if isinstance(layer, AnalogLayerBase):
        array = layer.tile_array
        placements = array.placements()
        out_size, in_size = array.out_size, array.in_size
    elif isinstance(layer, TileWithPeriphery):
        placements = [TilePlacement(layer, 0, 0, slice(0, layer.out_size),
                                    slice(0, layer.in_size))]
        out_size, in_size = layer.out_size, layer.in_size
    else:
        raise TypeError(f"layer: expected an analog layer or a tile, got {type(layer).__name__}")
    weight = torch.zeros(out_size, in_size, dtype=torch.float64)
    ref = torch.zeros(out_size, in_size, dtype=torch.float64)
    for p in placements:
        now, r = _weights_now(p.tile)
        scales = p.tile.get_scales()
        assert scales is not None
        s = scales.detach().to("cpu", torch.float64).reshape(-1, 1)
        weight[p.out_slice, p.in_slice] = now * s
        if r is not None:
            ref[p.out_slice, p.in_slice] = r * s
    scale = float(ref.abs().max()) or 1.0
    error = 100.0 * (weight - ref).abs() / scale
    rows = sorted({p.out_slice.start for p in placements} - {0})
    cols = sorted({p.in_slice.start for p in placements} - {0})
    return LayerWeightMap(weight.float(), error.float(), rows, cols)
