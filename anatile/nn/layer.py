"""What every analog layer shares: a :class:`TileArray` and the calls that reach its tiles."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from anatile.config.rpu_config import RPUConfig
from anatile.exceptions import TileError
from anatile.nn.tile_array import TileArray, TilePlacement
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["AnalogLayerBase"]


class AnalogLayerBase(nn.Module):
    """Base of :class:`~anatile.nn.AnalogLinear` and :class:`~anatile.nn.AnalogConv2d`.

    The layer's logical weight matrix ``[out_size, in_size]`` lives on
    :attr:`tile_array`, a :class:`TileArray` that splits it at
    ``rpu_config.mapping.max_output_size × max_input_size`` (one tile when it fits).

    Args:
        out_size: rows of the logical weight matrix.
        in_size: columns of the logical weight matrix.
        bias: whether the layer has a bias.
        rpu_config: tile configuration.
        seed: seed of the tiles (see :class:`TileArray`).

    Attributes:
        tile_array: the :class:`TileArray`.

    Example:
        >>> layer = AnalogLinear(16, 4, seed=0)
        >>> isinstance(layer, AnalogLayerBase), type(layer.analog_module).__name__
        (True, 'TileWithPeriphery')
        >>> layer.get_weights()[0].shape
        torch.Size([4, 16])
    """

    def __init__(self, out_size: int, in_size: int, bias: bool, rpu_config: RPUConfig | None,
                 seed: int | None) -> None:
        super().__init__()
        self.use_bias = bias
        self.tile_array = TileArray(out_size, in_size, rpu_config, bias, seed=seed)

    # ------------------------------------------------------------------ tiles
    @property
    def analog_tile(self) -> TileWithPeriphery:
        """The layer's tile when it has exactly one.

        Raises:
            TileError: if the layer spans several tiles (use :meth:`analog_tiles`).
        """
        if len(self.tile_array.tiles) != 1:
            rows, cols = self.tile_array.grid_shape
            raise TileError(f"this layer spans {rows}×{cols} tiles: use layer.analog_tiles() "
                            f"or layer.tile_array.tile(row, col)")
        return self.tile_array.tile(0, 0)

    @property
    def analog_module(self) -> TileWithPeriphery | TileArray:
        """The tile of a one-tile layer, else the :class:`TileArray` (aihwkit's name)."""
        if len(self.tile_array.tiles) == 1:
            return self.tile_array.tile(0, 0)
        return self.tile_array

    @property
    def tile(self) -> TileWithPeriphery:
        """Alias of ``analog_tile``."""
        return self.analog_tile

    def analog_tiles(self) -> list[TilePlacement]:
        """The tiles with their grid position and block of the weight matrix, row-major."""
        return self.tile_array.placements()

    def analog_tile_count(self) -> int:
        """Number of tiles."""
        return len(self.tile_array.tiles)

    # ------------------------------------------------------------------ weights
    def _init_uniform(self) -> None:
        """``torch.nn`` default init: uniform ``±1/sqrt(in_size)`` (weights and bias), drawn
        from tile ``(0, 0)``'s generator."""
        array = self.tile_array
        bound = 1.0 / math.sqrt(array.in_size)
        first = array.tile(0, 0)
        g = first.generator
        weight = torch.rand(array.out_size, array.in_size, generator=g) * 2 * bound - bound
        bias = (torch.rand(array.out_size, generator=g) * 2 * bound - bound
                if self.use_bias else None)
        array.set_weights(weight.to(first.device),
                          None if bias is None else bias.to(first.device))

    def _to_matrix(self, weight: Tensor) -> Tensor:
        """The layer's weight argument as the logical ``[out_size, in_size]`` matrix."""
        return weight

    def _from_matrix(self, weight: Tensor) -> Tensor:
        """The logical matrix in the layer's weight layout."""
        return weight

    def set_weights(self, weight: Tensor, bias: Tensor | None = None, **kwargs: Any) -> None:
        """Set the weights (and bias) on the tiles; each tile scales its own block.

        Args:
            weight: the weights in the layer's layout.
            bias: ``[out]`` or None (keep the current bias).
            **kwargs: ``apply_weight_scaling``, ``realistic``, ``weight_scaling_omega`` of
                :meth:`TileWithPeriphery.set_weights`.

        Raises:
            TypeError, ValueError: on bad tensors (the layer is unchanged then).
        """
        self.tile_array.set_weights(self._to_matrix(weight), bias, **kwargs)

    def get_weights(self, apply_weight_scaling: bool = True, realistic: bool = False
                    ) -> tuple[Tensor, Tensor | None]:
        """CPU copies of the weights (layer layout, assembled from the tiles) and the bias.

        Args:
            apply_weight_scaling, realistic: as :meth:`TileWithPeriphery.get_weights`.
        """
        weight, bias = self.tile_array.get_weights(apply_weight_scaling, realistic)
        return self._from_matrix(weight), bias

    def read_weights(self, apply_weight_scaling: bool = False, x_values: Tensor | None = None,
                     over_sampling: int = 10) -> tuple[Tensor, Tensor | None]:
        """Each tile's least-squares read-out (:meth:`TileWithPeriphery.read_weights`),
        assembled in the layer's weight layout.

        Args:
            apply_weight_scaling: logical weights (scales applied); False: each block in its
                tile's normalized units.
            x_values: ``[N, in_size]`` inputs of the logical matrix, or None (random).
            over_sampling: random inputs per input dimension of each tile.
        """
        weight, bias = self.tile_array.read_weights(apply_weight_scaling, x_values,
                                                       over_sampling)
        return self._from_matrix(weight), bias

    def program_weights(self, *args: Any, **kwargs: Any) -> None:
        """Program every tile (arguments of the tiles' ``program_weights``)."""
        self.tile_array.program_weights(*args, **kwargs)

    def drift_weights(self, t_inference: float = 0.0) -> None:
        """Drift every inference tile to ``t_inference`` seconds after programming."""
        self.tile_array.drift_weights(t_inference)
