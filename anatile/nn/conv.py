"""Analog 2D convolution on one tile through the indexed (im2col) interface."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from anatile.checks import check_int, check_tensor
from anatile.config.rpu_config import RPUConfig
from anatile.functional.indexed import conv2d_indices
from anatile.tiles.factory import make_tile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["AnalogConv2d"]


def _pair(name: str, value: int | tuple[int, int], lo: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if any(v < lo for v in pair):
        raise ValueError(f"{name}: expected values >= {lo}, got {value!r}")
    return (pair[0], pair[1])


class AnalogConv2d(nn.Module):
    """2D convolution computed on one analog tile (like :class:`torch.nn.Conv2d`).

    The kernel ``[out_channels, in_channels, kh, kw]`` is stored as the tile's
    ``[out_channels, in_channels·kh·kw]`` weight; each forward gathers the image patches
    with the tile's index matrix (rebuilt when the image size changes).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation: as for
            :class:`torch.nn.Conv2d` (integer padding only).
        groups: only 1 is supported.
        bias: whether to learn a bias.
        rpu_config: tile configuration.
        seed: seed of the tile's generator (keyword only).

    Raises:
        ValueError: for ``groups != 1`` or non-positive sizes.

    Shape:
        ``[N, C_in, H, W]`` (or ``[C_in, H, W]``) → ``[N, C_out, H_out, W_out]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        rpu_config: RPUConfig | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        if groups != 1:
            raise ValueError(f"groups: only groups=1 is supported, got {groups!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.dilation = _pair("dilation", dilation, 1)
        self.groups = groups
        self.use_bias = bias
        in_size = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.analog_tile = make_tile(out_channels, in_size, rpu_config, bias=bias, seed=seed)
        self._image_hw: tuple[int, int] | None = None
        self.reset_parameters()

    @property
    def tile(self) -> TileWithPeriphery:
        """Alias of ``analog_tile``."""
        return self.analog_tile

    def reset_parameters(self) -> None:
        """Initialize like ``torch.nn.Conv2d`` (uniform ``±1/sqrt(fan_in)``)."""
        fan_in = self.analog_tile.in_size
        bound = 1.0 / math.sqrt(fan_in)
        g = self.analog_tile.generator
        weight = torch.rand(self.out_channels, fan_in, generator=g) * 2 * bound - bound
        bias = (torch.rand(self.out_channels, generator=g) * 2 * bound - bound
                if self.use_bias else None)
        self.analog_tile.set_weights(weight.to(self.analog_tile.device),
                                     None if bias is None else bias.to(self.analog_tile.device))

    def set_weights(self, weight: Tensor, bias: Tensor | None = None) -> None:
        """Set the kernel ``[out, in, kh, kw]`` (or flattened ``[out, in·kh·kw]``) and bias.

        Args:
            weight: the kernel.
            bias: ``[out_channels]`` or None (keep the current bias).

        Raises:
            TypeError, ValueError: on bad tensors (the layer is unchanged then).
        """
        if isinstance(weight, Tensor) and weight.ndim == 4:
            expected = (self.out_channels, self.in_channels, *self.kernel_size)
            if tuple(weight.shape) != expected:
                raise ValueError(f"weight: expected shape {expected}, got {tuple(weight.shape)}")
            weight = weight.reshape(self.out_channels, -1)
        self.analog_tile.set_weights(weight, bias)

    def get_weights(self) -> tuple[Tensor, Tensor | None]:
        """Return CPU copies of the kernel ``[out, in, kh, kw]`` and the bias (or None)."""
        weight, bias = self.analog_tile.get_weights()
        return weight.reshape(self.out_channels, self.in_channels, *self.kernel_size), bias

    def _ensure_indexed(self, hw: tuple[int, int]) -> None:
        if self._image_hw == hw and self.analog_tile.is_indexed():
            return
        indices, sizes = conv2d_indices(self.in_channels, hw, self.kernel_size, self.stride,
                                        self.padding, self.dilation)
        self.analog_tile.set_indexed(indices, sizes)
        self._image_hw = hw

    def forward(self, x: Tensor) -> Tensor:
        """Analog convolution of ``x``.

        Args:
            x: ``[N, C_in, H, W]`` or ``[C_in, H, W]``.

        Returns:
            ``[N, C_out, H_out, W_out]`` (or ``[C_out, H_out, W_out]``).

        Raises:
            TypeError: if ``x`` is not a floating-point tensor.
            ValueError: on a wrong number of channels or dimensions, a meta tensor, or
                NaN/inf in training mode (the layer is unchanged then).
        """
        # checked before the index matrix is rebuilt for a new image size
        check_tensor("x", x, finite=False)
        unbatched = x.ndim == 3
        if unbatched:
            x = x.unsqueeze(0)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected shape [N, {self.in_channels}, H, W], "
                             f"got {tuple(x.shape)}")
        self._ensure_indexed((int(x.shape[2]), int(x.shape[3])))
        y = self.analog_tile(x)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.use_bias}")
