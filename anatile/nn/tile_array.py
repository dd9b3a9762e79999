"""A layer's weight matrix split over a grid of tiles, each with its own periphery.

Real crossbars have a fixed size. A logical weight matrix ``[out_size, in_size]`` larger than
``rpu_config.mapping.max_output_size × max_input_size`` is cut into a grid of tiles:

* grid **column** ``c`` receives the input slice ``in_slices[c]``; grid **row** ``r``
  produces the output slice ``out_slices[r]``;
* tile ``(r, c)`` holds the block ``W[out_slices[r], in_slices[c]]`` with its own DAC/ADC,
  mapping scales, learned out scales, input range, generator (noise draws) and - for an
  :class:`~anatile.tiles.InferenceTile` - its own programming, drift and drift
  compensation ``alpha``;
* the partial outputs of the tiles of one grid row are added in digital, after each tile's
  periphery (scales, ``alpha``); the bias lives on the tiles of grid column 0, so it is
  added exactly once per output.

Split rule (as aihwkit 1.2.0's ``TileModuleArray.get_split_sizes``): a size ``n`` with
maximum ``m > 0`` is cut into ``k = ceil(n / m)`` parts whose sizes differ by at most one,
the larger ones first (``divmod(n, k)``); ``m = 0`` means unlimited (one part).

This module is over 400 lines because the array mirrors every whole-matrix call of a tile
(passes, indexing, weights, reading, programming, drift, persistence) in one place. With an
analog bias (``mapping.digital_bias=False``) the bias column counts as one more input of
grid column 0, so no physical tile is wider than ``max_input_size``.

Example:
    >>> from anatile.config import RPUConfig
    >>> cfg = RPUConfig()
    >>> cfg.mapping.max_input_size = 512
    >>> array = TileArray(600, 1100, cfg, seed=0)
    >>> array.grid_shape, array.out_sizes, array.in_sizes
    ((2, 3), [300, 300], [367, 367, 366])
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from anatile.config.rpu_config import RPUConfig
from anatile.exceptions import ConfigError, TileError
from anatile.functional.threads import distinct_generators, run_jobs, worker_count
from anatile.nn.fused_forward import fusable, fused_forward
from anatile.tiles.checks import check_int, check_tensor
from anatile.tiles.factory import make_tile
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["TileArray", "TilePlacement", "split_sizes"]

_SEED_STRIDE = 1_000_003  # tile k > 0 of an array with seed s gets seed s * stride + k


def split_sizes(size: int, max_size: int) -> list[int]:
    """Cut ``size`` into the fewest parts of at most ``max_size``, as even as possible.

    Args:
        size: the size to split (≥ 1).
        max_size: largest part (≥ 0); 0 means unlimited.

    Returns:
        ``ceil(size / max_size)`` part sizes differing by at most one, larger parts first
        (``[size]`` when ``max_size`` is 0 or ≥ ``size``).

    Raises:
        TypeError, ValueError: if ``size`` < 1 or ``max_size`` < 0 or either is not an int.

    Example:
        >>> split_sizes(1100, 512)
        [367, 367, 366]
    """
    size = check_int("size", size, 1)
    max_size = check_int("max_size", max_size, 0)
    if max_size == 0:
        return [size]
    n_parts = -(-size // max_size)
    base, extra = divmod(size, n_parts)
    return [base + (i < extra) for i in range(n_parts)]


def _slices(sizes: Sequence[int]) -> list[slice]:
    out, start = [], 0
    for s in sizes:
        out.append(slice(start, start + s))
        start += s
    return out


@dataclass(frozen=True)
class TilePlacement:
    """Where one tile of a layer sits.

    Attributes:
        tile: the tile.
        row: grid row (which output slice).
        col: grid column (which input slice).
        out_slice: rows of the layer's weight matrix held by the tile.
        in_slice: columns of the layer's weight matrix held by the tile (without an analog
            bias column).

    Example:
        >>> from anatile.config import RPUConfig
        >>> cfg = RPUConfig()
        >>> cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
        >>> array = TileArray(12, 20, cfg, seed=0)
        >>> place = array.placements()[-1]  # the last tile: bottom right
        >>> place.row, place.col, place.out_slice, place.in_slice
        (1, 2, slice(6, 12, None), slice(14, 20, None))
    """

    tile: TileWithPeriphery
    row: int
    col: int
    out_slice: slice
    in_slice: slice

    @property
    def position(self) -> tuple[int, int]:
        """``(row, col)`` in the grid."""
        return (self.row, self.col)

    @property
    def shape(self) -> tuple[int, int]:
        """``(out, in)`` size of the tile's block of the weight matrix."""
        return (self.out_slice.stop - self.out_slice.start,
                self.in_slice.stop - self.in_slice.start)


class TileArray(nn.Module):
    """A logical weight matrix on a grid of tiles (see the module docstring).

    Args:
        out_size: outputs of the logical matrix.
        in_size: inputs of the logical matrix.
        rpu_config: configuration of every tile (default ``RPUConfig()``); an
            :class:`~anatile.config.InferenceRPUConfig` makes
            :class:`~anatile.tiles.InferenceTile` s. Validated before anything is built.
        bias: whether the layer has a bias (held by the tiles of grid column 0).
        seed: seed of tile ``(0, 0)``; tile ``k > 0`` (row-major) gets
            ``(seed · 1000003 + k) mod 2⁶²``. None: every tile draws its own seed.

    Attributes:
        tiles: ``nn.ModuleList`` of the tiles, row-major.
        fused: without autograd, compute the forward in one sweep over the grid
            (``anatile.nn.fused_forward``: the same numbers and draws as the tiles' own
            forwards, faster); False always calls each tile's forward.
        parallel: on the CPU, let independent tiles work on ``torch.get_num_threads()``
            threads at once: the fused forward draws the tiles' output noise so, and
            :meth:`program_weights`/:meth:`drift_weights` run whole tiles so
            (``anatile.functional.threads``). Every tile keeps its own generator, so the
            numbers are those of the serial loop; False runs everything on the calling
            thread. Both switches take a bool: anything else raises ``TypeError`` naming
            the switch and leaves the array unchanged.
        out_sizes, in_sizes: sizes of the grid rows / columns (``in_sizes`` count only
            data inputs, not an analog bias column).

    Raises:
        ConfigError: on bad mapping sizes (the message names the field).

    Shape:
        ``[..., in_size]`` → ``[..., out_size]``; indexed (after :meth:`set_indexed`):
        ``[N, C, *spatial]`` → ``[N, out_size, *out_spatial]``.

    Example:
        >>> from anatile.config import RPUConfig
        >>> cfg = RPUConfig()
        >>> cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
        >>> array = TileArray(12, 20, cfg, seed=0)  # 12 outputs on 2 rows, 20 inputs on 3 columns
        >>> array.grid_shape
        (2, 3)
        >>> array(torch.randn(5, 20)).shape
        torch.Size([5, 12])
    """

    fused: bool = True
    parallel: bool = True

    def __setattr__(self, name: str, value: Any) -> None:
        # the two switches take a bool: a typo such as ``parallel = "no"`` (truthy) would
        # otherwise silently keep them on; checked before anything is set
        if name in ("fused", "parallel") and not isinstance(value, bool):
            raise TypeError(f"{name}: expected a bool (True or False), got {value!r} "
                            f"({type(value).__name__})")
        super().__setattr__(name, value)

    def __init__(self, out_size: int, in_size: int, rpu_config: RPUConfig | None = None,
                 bias: bool = False, *, seed: int | None = None) -> None:
        super().__init__()
        out_size = check_int("out_size", out_size, 1)
        in_size = check_int("in_size", in_size, 1)
        if not isinstance(bias, bool):
            raise TypeError(f"bias: expected a bool, got {type(bias).__name__}")
        if rpu_config is None:
            rpu_config = RPUConfig()
        if not isinstance(rpu_config, RPUConfig):
            raise TypeError(f"rpu_config: expected an RPUConfig, got {type(rpu_config).__name__}")
        rpu_config.validate()
        mapping = rpu_config.mapping
        analog_bias = bias and not mapping.digital_bias
        physical = split_sizes(in_size + int(analog_bias), mapping.max_input_size)
        in_sizes = [physical[0] - int(analog_bias), *physical[1:]]
        if in_sizes[0] < 1:
            raise ConfigError(f"MappingParameter.max_input_size: {mapping.max_input_size} "
                              f"leaves no data input next to the analog bias column")
        self.out_size = out_size
        self.in_size = in_size
        self.out_sizes = split_sizes(out_size, mapping.max_output_size)
        self.in_sizes = in_sizes
        self.use_bias = bias
        tiles = []
        for r, n_out in enumerate(self.out_sizes):
            for c, n_in in enumerate(self.in_sizes):
                k = r * len(self.in_sizes) + c
                tiles.append(make_tile(n_out, n_in, rpu_config, bias=bias and c == 0,
                                       seed=_tile_seed(seed, k)))
        self.tiles = nn.ModuleList(tiles)

    # ------------------------------------------------------------------ structure
    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the grid."""
        return (len(self.out_sizes), len(self.in_sizes))

    @property
    def out_slices(self) -> list[slice]:
        """Output slice of each grid row."""
        return _slices(self.out_sizes)

    @property
    def in_slices(self) -> list[slice]:
        """Input slice of each grid column."""
        return _slices(self.in_sizes)

    def tile(self, row: int, col: int) -> TileWithPeriphery:
        """The tile at grid position ``(row, col)``.

        Raises:
            IndexError: outside the grid.
        """
        rows, cols = self.grid_shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise IndexError(f"(row, col): expected a position in a {rows}×{cols} grid, "
                             f"got ({row}, {col})")
        tile = self.tiles[row * cols + col]
        assert isinstance(tile, TileWithPeriphery)
        return tile

    def placements(self) -> list[TilePlacement]:
        """Every tile with its grid position and its block of the weight matrix, row-major."""
        outs, ins = self.out_slices, self.in_slices
        return [TilePlacement(self.tile(r, c), r, c, outs[r], ins[c])
                for r in range(len(outs)) for c in range(len(ins))]

    def _grid(self) -> Iterator[tuple[int, int, TileWithPeriphery]]:
        cols = len(self.in_sizes)
        for k, tile in enumerate(self.tiles):
            assert isinstance(tile, TileWithPeriphery)
            yield k // cols, k % cols, tile

    # ------------------------------------------------------------------ passes
    def forward(self, x: Tensor) -> Tensor:
        """Each tile's forward on its input slice; partial sums of a grid row added.

        Without autograd (``torch.no_grad()``) and with :attr:`fused` set, the same numbers
        (each tile's own draws) come from one sweep over the grid
        (``anatile.nn.fused_forward``).

        Args:
            x: ``[..., in_size]``, or ``[N, C, *spatial]`` when indexed.

        Returns:
            ``[..., out_size]``, or ``[N, out_size, *out_spatial]`` when indexed.

        Raises:
            TypeError, ValueError: on a wrong input.
        """
        if len(self.tiles) == 1:
            return self.tiles[0](x)
        rows, cols = self.grid_shape
        tiles = list(self.tiles)
        if self.fused:
            grid = [tile for _, _, tile in self._grid()]
            if fusable(grid):
                return fused_forward(grid, (rows, cols), self.in_sizes, x, self.parallel)
        if self.is_indexed():
            parts = [x] * cols  # each tile gathers its own patch columns from the image
            out_dim = 1
        else:
            if not isinstance(x, Tensor):
                raise TypeError(f"x_input: expected a torch.Tensor, got {type(x).__name__}")
            if x.ndim < 1 or x.shape[-1] != self.in_size:
                raise ValueError(f"x_input: expected shape [..., {self.in_size}], "
                                 f"got {tuple(x.shape)}")
            parts = list(x.split(self.in_sizes, dim=-1))
            out_dim = -1
        outputs = []
        for r in range(rows):
            y = tiles[r * cols](parts[0])
            for c in range(1, cols):
                y = y + tiles[r * cols + c](parts[c])
            outputs.append(y)
        return torch.cat(outputs, dim=out_dim)

    # ------------------------------------------------------------------ indexed
    def is_indexed(self) -> bool:
        """Whether :meth:`set_indexed` has been called (on every tile)."""
        return all(t.is_indexed() for _, _, t in self._grid())

    def set_indexed(self, indices: Tensor, image_sizes: Sequence[int]) -> None:
        """Give each tile the rows of the im2col index matrix of its input slice.

        Args:
            indices: ``[in_size, L]`` index matrix (see
                :meth:`TileWithPeriphery.set_indexed`).
            image_sizes: 3, 5 or 7 image sizes.

        Raises:
            TypeError, ValueError: as :meth:`TileWithPeriphery.set_indexed` (no tile is
                changed then).
        """
        if not isinstance(indices, Tensor):
            raise TypeError(f"indices: expected a torch.Tensor, got {type(indices).__name__}")
        if indices.ndim != 2 or indices.shape[0] != self.in_size:
            raise ValueError(f"indices: expected shape [{self.in_size}, L], "
                             f"got {tuple(indices.shape)}")
        ins = self.in_slices
        grid = list(self._grid())
        for _, c, tile in grid:  # check every tile's rows before any tile changes
            tile.indexing.check(indices[ins[c]], image_sizes)
        for _, c, tile in grid:
            tile.set_indexed(indices[ins[c]], image_sizes)

    # ------------------------------------------------------------------ weights
    @torch.no_grad()
    def set_weights(self, weight: Tensor, bias: Tensor | None = None,
                    apply_weight_scaling: bool = True, realistic: bool = False,
                    weight_scaling_omega: float | None = None) -> None:
        """Write each tile's block (and the bias slice of the grid-column-0 tiles).

        Each tile computes its own mapping scales from its own block.

        Args:
            weight: ``[out_size, in_size]`` logical weights.
            bias: ``[out_size]`` or None (keep the current bias).
            apply_weight_scaling, realistic, weight_scaling_omega: passed to each tile's
                :meth:`~TileWithPeriphery.set_weights`.

        Raises:
            TypeError, ValueError: on bad tensors (no tile is changed then).
        """
        weight = check_tensor("weight", weight, (self.out_size, self.in_size))
        if bias is not None and self.use_bias:
            bias = check_tensor("bias", bias, (self.out_size,))
        outs, ins = self.out_slices, self.in_slices
        for r, c, tile in self._grid():
            b = bias[outs[r]] if (bias is not None and self.use_bias and c == 0) else None
            tile.set_weights(weight[outs[r], ins[c]], b, apply_weight_scaling, realistic,
                             weight_scaling_omega)

    def _assemble(self, blocks: dict[tuple[int, int], tuple[Tensor, Tensor | None]]
                  ) -> tuple[Tensor, Tensor | None]:
        rows, cols = self.grid_shape
        weight = torch.cat([torch.cat([blocks[(r, c)][0] for c in range(cols)], dim=1)
                            for r in range(rows)], dim=0)
        if not self.use_bias:
            return weight, None
        biases = [blocks[(r, 0)][1] for r in range(rows)]
        if any(b is None for b in biases):
            return weight, None
        return weight, torch.cat([b for b in biases if b is not None])

    def get_weights(self, apply_weight_scaling: bool = True, realistic: bool = False
                    ) -> tuple[Tensor, Tensor | None]:
        """The full weight matrix and bias assembled from the tiles (CPU copies).

        Args:
            apply_weight_scaling, realistic: as :meth:`TileWithPeriphery.get_weights`
                (without weight scaling each block is in its own tile's normalized units).

        Returns:
            ``(weight [out_size, in_size], bias [out_size] or None)``.
        """
        return self._assemble({(r, c): tile.get_weights(apply_weight_scaling, realistic)
                               for r, c, tile in self._grid()})

    def read_weights(self, apply_weight_scaling: bool = False, x_values: Tensor | None = None,
                     over_sampling: int = 10) -> tuple[Tensor, Tensor | None]:
        """Each tile's least-squares read-out, assembled into the full matrix.

        Args:
            apply_weight_scaling, over_sampling: as :meth:`TileWithPeriphery.read_weights`.
            x_values: ``[N, in_size]`` inputs of the whole layer (each tile reads its
                columns), default random normal per tile.

        Returns:
            ``(weight [out_size, in_size], bias or None)`` on CPU.

        Raises:
            TypeError, ValueError: on bad arguments.
        """
        if x_values is not None:
            x_values = check_tensor("x_values", x_values)
            if x_values.ndim != 2 or x_values.shape[1] != self.in_size:
                raise ValueError(f"x_values: expected shape [N, {self.in_size}], "
                                 f"got {tuple(x_values.shape)}")
        ins = self.in_slices
        blocks = {}
        for r, c, tile in self._grid():
            x = None if x_values is None else x_values[:, ins[c]]
            blocks[(r, c)] = tile.read_weights(apply_weight_scaling, x, over_sampling)
        return self._assemble(blocks)

    def program_weights(self, *args: Any, **kwargs: Any) -> None:
        """Call every tile's ``program_weights`` with these arguments.

        Inference tiles draw programming noise and ν (arguments of
        :meth:`InferenceTile.program_weights`); training tiles run the closed loop of
        :meth:`TileWithPeriphery.program_weights`. Inference tiles on the CPU that each
        draw from their own generator (no ``generator`` or ``callback`` argument, no event
        subscribers) are programmed on ``torch.get_num_threads()`` threads at once, with
        the numbers of the serial loop (see :attr:`parallel`).
        """
        tiles = [t for _, _, t in self._grid()]
        parallel = not args and set(kwargs) <= {"from_reference", "noise_model"}
        run_jobs([functools.partial(t.program_weights, *args, **kwargs) for t in tiles],
                 self._workers(tiles) if parallel else 1)

    def drift_weights(self, t_inference: float = 0.0) -> None:
        """Drift every inference tile to ``t_inference`` s; each updates its own ``alpha``.

        Raises:
            TileError: if the tiles are not inference tiles.
            ValueError: on a bad time (nothing is drifted).
        """
        tiles = [t for _, _, t in self._grid()]
        if not all(isinstance(t, InferenceTile) for t in tiles):
            raise TileError("drift_weights: the tiles are not InferenceTiles "
                            "(build the layer with an InferenceRPUConfig)")
        jobs = []
        for tile in tiles:
            assert isinstance(tile, InferenceTile)
            jobs.append(functools.partial(tile.drift_weights, t_inference))
        run_jobs(jobs, self._workers(tiles))

    def _workers(self, tiles: Sequence[TileWithPeriphery]) -> int:
        """Threads to program or drift the tiles on (1: the serial loop).

        More than one only for :attr:`parallel` arrays of CPU inference tiles with their
        own generators and no event subscribers (a subscriber, e.g. a widget, is called
        on the thread that emits).
        """
        if not self.parallel or not all(type(t) is InferenceTile and len(t.events) == 0
                                        for t in tiles):
            return 1
        weight = tiles[0].analog_core.weight
        workers = worker_count(weight.device, len(tiles), 2 * weight.numel())
        return workers if distinct_generators([t.generator for t in tiles]) else 1

    # ------------------------------------------------------------------ persistence
    def get_extra_state(self) -> dict[str, Any]:
        return {"out_sizes": list(self.out_sizes), "in_sizes": list(self.in_sizes)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        pass  # checked (and equal) in _load_from_state_dict

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        saved = state_dict.get(prefix + "_extra_state")
        if isinstance(saved, dict) and (
            list(saved.get("out_sizes", [])) != self.out_sizes
            or list(saved.get("in_sizes", [])) != self.in_sizes
        ):
            where = prefix.rstrip(".") or "(root)"
            raise TileError(
                f"{where}: the state dict was saved from a layer split into "
                f"{len(saved.get('out_sizes', []))}×{len(saved.get('in_sizes', []))} tiles "
                f"(out sizes {saved.get('out_sizes')}, in sizes {saved.get('in_sizes')}), "
                f"this layer is split into {self.grid_shape[0]}×{self.grid_shape[1]} "
                f"(out sizes {self.out_sizes}, in sizes {self.in_sizes}); build it with the "
                f"same rpu_config.mapping.max_input_size / max_output_size"
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        rows, cols = self.grid_shape
        return (f"out_size={self.out_size}, in_size={self.in_size}, grid={rows}×{cols}, "
                f"out_sizes={self.out_sizes}, in_sizes={self.in_sizes}")


def _tile_seed(seed: int | None, k: int) -> int | None:
    if seed is None:
        return None
    return seed if k == 0 else (seed * _SEED_STRIDE + k) % 2**62

