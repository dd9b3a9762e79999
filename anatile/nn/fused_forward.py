"""A tile array's forward without autograd in one sweep over the grid.

:meth:`TileArray.forward <anatile.nn.TileArray.forward>` calls each tile's own forward
and adds the partial sums; when no autograd graph is needed (``torch.no_grad()``, the usual
way to evaluate), it computes the same numbers here with
:func:`~anatile.functional.analog_mvm_grid` instead. Every tile keeps its own
periphery: its DAC/ADC, its output noise drawn from its own generator (the same draws, in
the same order, as its own forward), bound management of its own clipping rows, its
mapping scales, drift compensation ``alpha`` and learned out scales. What is shared is only
what is equal anyway: the input is checked once, split (or, for a convolution, gathered)
once per grid column, and the deterministic DAC work is done once per grid column; the
digital scaling and the summation of the partial sums are one multiply-accumulate per
tile.

The sweep is used when every tile is a plain :class:`~anatile.tiles.TileWithPeriphery` or
:class:`~anatile.tiles.InferenceTile` (a subclass may override the hooks), without an input
range (each tile's range would clip its own copy of the input), with equal forward IO
parameters, one dtype and device, the same mode and no forward hooks on the tiles (the
analysis tools hook tiles to record what they receive); otherwise the array runs each
tile's forward. ``TileArray.fused = False`` always does the latter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.modules import module as _module

from anatile.checks import check_tensor
from anatile.functional.io_model import analog_mvm_grid
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["fused_forward", "fusable"]

_PLAIN_TILES = (TileWithPeriphery, InferenceTile)


def fusable(tiles: Sequence[TileWithPeriphery]) -> bool:
    """Whether :func:`fused_forward` computes what the tiles' own forwards would.

    Args:
        tiles: the tiles of the array, row-major.

    Returns:
        True when no autograd graph is needed and the tiles qualify (see the module
        docstring).
    """
    if torch.is_grad_enabled() or _module._global_forward_hooks \
            or _module._global_forward_pre_hooks:
        return False
    first = tiles[0]
    io = first.analog_core.rpu_config.forward
    weight = first.analog_core.weight
    for tile in tiles:
        core = tile.analog_core
        if (type(tile) not in _PLAIN_TILES or tile.training != first.training
                or tile.in_trans or tile.out_trans or tile.input_range is not None
                or tile._forward_hooks or tile._forward_pre_hooks
                or "forward" in vars(core)  # an instance-level wrapper records the rows
                or core.weight.dtype != weight.dtype or core.weight.device != weight.device
                or tile.is_indexed() != first.is_indexed()):
            return False
        if core.rpu_config.forward is not io and core.rpu_config.forward != io:
            return False
    return True


def fused_forward(tiles: Sequence[TileWithPeriphery], grid_shape: tuple[int, int],
                  in_sizes: Sequence[int], x: Tensor, parallel: bool = True) -> Tensor:
    """The array's forward (outputs of each grid row summed), for :func:`fusable` tiles.

    Args:
        tiles: the tiles, row-major; the tiles of grid column 0 hold the bias, the tiles
            of one grid column the same rows of the index matrix when indexed.
        grid_shape: ``(rows, cols)``.
        in_sizes: data inputs of each grid column.
        x: ``[..., Σ in_sizes]``, or ``[N, C, *spatial]`` when indexed.
        parallel: draw the tiles' output noise on several CPU threads (the same numbers).

    Returns:
        ``[..., out_size]``, or ``[N, out_size, *out_spatial]`` when indexed, in the dtype
        of ``x``.

    Raises:
        TypeError, ValueError: on a wrong input (as the tiles' forward).
    """
    rows, cols = grid_shape
    grid = [list(tiles[r * cols:(r + 1) * cols]) for r in range(rows)]
    first = grid[0][0]
    dtype = first.analog_core.weight.dtype
    indexed = first.is_indexed()
    check_tensor("x_input", x, finite=first.training)
    if indexed:
        x_cols = [t.indexing.input_rows(x, t.indices, dtype) for t in grid[0]]
    else:
        in_size = sum(in_sizes)
        if x.ndim < 1 or x.shape[-1] != in_size:
            raise ValueError(f"x_input: expected shape [..., {in_size}], got {tuple(x.shape)}")
        x_cols = list(x.reshape(-1, in_size).to(dtype).split(list(in_sizes), dim=1))
    if first.analog_bias:  # the bias column of the grid-column-0 tiles is driven by 1
        x_cols[0] = torch.cat([x_cols[0], torch.ones_like(x_cols[0][:, :1])], dim=1)
    is_test = not first.training
    out_scales = [[_output_scale(t, is_test) for t in row] for row in grid]
    offset = None
    if first.bias is not None:
        offset = torch.cat([row[0].bias.detach() for row in grid if row[0].bias is not None])
    y = analog_mvm_grid(x_cols, [[t.analog_core.weight for t in row] for row in grid],
                        first.analog_core.rpu_config.forward,
                        [[t.generator for t in row] for row in grid], out_scales, offset,
                        parallel=parallel)
    if indexed:
        sizes = first.image_sizes
        assert sizes is not None
        n, n_spatial = x.shape[0], (len(sizes) - 1) // 2
        y = y.reshape(n, -1, y.shape[1]).transpose(1, 2).reshape(
            n, y.shape[1], *sizes[1 + n_spatial:])
    else:
        y = y.reshape(*x.shape[:-1], y.shape[-1])
    return y if y.dtype == x.dtype else y.to(x.dtype)


def _output_scale(tile: TileWithPeriphery, is_test: bool) -> Tensor:
    """All digital factors of a tile's output (post-forward scales, learned out scales)."""
    factors = tile.output_scales(is_test)
    if tile.learned_out_scales is not None:
        factors.append(tile.learned_out_scales.detach())
    scale = factors[0]
    for factor in factors[1:]:
        scale = scale * factor
    return scale
