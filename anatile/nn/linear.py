"""Analog fully connected layer."""

from __future__ import annotations

from torch import Tensor

from anatile.checks import check_int
from anatile.config.rpu_config import RPUConfig
from anatile.nn.layer import AnalogLayerBase

__all__ = ["AnalogLinear"]


class AnalogLinear(AnalogLayerBase):
    """``y = x Wᵀ + b`` computed on analog tiles (like :class:`torch.nn.Linear`).

    The weight matrix ``[out_features, in_features]`` is split into a grid of tiles of at
    most ``rpu_config.mapping.max_output_size × max_input_size`` (aihwkit's 512 × 512 by
    default, 0 = unlimited; see :class:`~anatile.nn.TileArray`): each tile computes its
    block with its own periphery and the partial sums are added in digital.

    Args:
        in_features: input size.
        out_features: output size.
        bias: whether to learn a bias.
        rpu_config: tile configuration (default ``RPUConfig()``).
        seed: seed of the tiles' generators (keyword only).

    Attributes:
        tile_array: the :class:`~anatile.nn.TileArray`.
        analog_tile: the tile, when the layer has exactly one (also ``tile``).

    Shape:
        ``[..., in_features]`` → ``[..., out_features]``.

    Example:
        >>> layer = AnalogLinear(4, 2, seed=0)
        >>> layer(torch.ones(3, 4)).shape
        torch.Size([3, 2])
        >>> from anatile.config import RPUConfig
        >>> cfg = RPUConfig()
        >>> big = AnalogLinear(1100, 600, rpu_config=cfg, seed=0)
        >>> [p.position for p in big.analog_tiles()][:4]
        [(0, 0), (0, 1), (0, 2), (1, 0)]
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rpu_config: RPUConfig | None = None, *, seed: int | None = None) -> None:
        check_int("in_features", in_features, 1)
        check_int("out_features", out_features, 1)
        super().__init__(out_features, in_features, bias, rpu_config, seed)
        self.in_features = in_features
        self.out_features = out_features
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialize like ``torch.nn.Linear`` (uniform ``±1/sqrt(in_features)``)."""
        self._init_uniform()

    def forward(self, x: Tensor) -> Tensor:
        """Analog forward pass (each tile: :meth:`TileWithPeriphery.forward`).

        Args:
            x: ``[..., in_features]``.

        Returns:
            ``[..., out_features]``.

        Raises:
            TypeError, ValueError: on a wrong dtype or shape.
        """
        return self.tile_array(x)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.use_bias}")
