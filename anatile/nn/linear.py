"""Analog fully connected layer."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from anatile.checks import check_int
from anatile.config.rpu_config import RPUConfig
from anatile.tiles.factory import make_tile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["AnalogLinear"]


class AnalogLinear(nn.Module):
    """``y = x Wᵀ + b`` computed on one analog tile (like :class:`torch.nn.Linear`).

    The whole weight matrix lives on a single :class:`TileWithPeriphery` (no splitting at
    ``mapping.max_input_size``); the bias is the tile's (digital by default).

    Args:
        in_features: input size.
        out_features: output size.
        bias: whether to learn a bias.
        rpu_config: tile configuration (default ``RPUConfig()``).
        seed: seed of the tile's generator (keyword only).

    Attributes:
        analog_tile: the tile (also available as ``tile`` and, as in aihwkit,
            ``analog_module``).

    Shape:
        ``[..., in_features]`` → ``[..., out_features]``.

    Example:
        >>> layer = AnalogLinear(4, 2, seed=0)
        >>> layer(torch.ones(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rpu_config: RPUConfig | None = None, *, seed: int | None = None) -> None:
        super().__init__()
        check_int("in_features", in_features, 1)
        check_int("out_features", out_features, 1)
        self.in_features = in_features
        self.out_features = out_features
        self.use_bias = bias
        self.analog_tile = make_tile(out_features, in_features, rpu_config, bias=bias, seed=seed)
        self.reset_parameters()

    @property
    def tile(self) -> TileWithPeriphery:
        """Alias of ``analog_tile``."""
        return self.analog_tile

    @property
    def analog_module(self) -> TileWithPeriphery:
        """Alias of :attr:`analog_tile` under aihwkit's name (``layer.analog_module``)."""
        return self.analog_tile

    def reset_parameters(self) -> None:
        """Initialize like ``torch.nn.Linear`` (uniform ``±1/sqrt(in_features)``)."""
        bound = 1.0 / math.sqrt(self.in_features)
        g = self.analog_tile.generator
        weight = torch.rand(self.out_features, self.in_features, generator=g) * 2 * bound - bound
        bias = (torch.rand(self.out_features, generator=g) * 2 * bound - bound
                if self.use_bias else None)
        self.analog_tile.set_weights(weight.to(self.analog_tile.device),
                                     None if bias is None else bias.to(self.analog_tile.device))

    def set_weights(self, weight: Tensor, bias: Tensor | None = None) -> None:
        """Set the logical weight ``[out_features, in_features]`` and bias ``[out_features]``.

        Args:
            weight: ``[out_features, in_features]``.
            bias: ``[out_features]`` or None (keep the current bias).

        Raises:
            TypeError, ValueError: on bad tensors (the layer is unchanged then).
        """
        self.analog_tile.set_weights(weight, bias)

    def get_weights(self) -> tuple[Tensor, Tensor | None]:
        """Return CPU copies of the logical weight and the bias (or None)."""
        return self.analog_tile.get_weights()

    def forward(self, x: Tensor) -> Tensor:
        """Analog forward pass (see :meth:`TileWithPeriphery.forward`).

        Args:
            x: ``[..., in_features]``.

        Returns:
            ``[..., out_features]``.

        Raises:
            TypeError, ValueError: on a wrong dtype or shape.
        """
        return self.analog_tile(x)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.use_bias}")
