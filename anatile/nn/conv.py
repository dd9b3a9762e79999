"""Analog 2D convolution on a grid of tiles through the indexed (im2col) interface."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from anatile.checks import check_int, check_tensor
from anatile.config.rpu_config import RPUConfig
from anatile.functional.indexed import conv2d_indices
from anatile.nn.layer import AnalogLayerBase

__all__ = ["AnalogConv2d"]


def _pair(name: str, value: int | tuple[int, int], lo: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if any(v < lo for v in pair):
        raise ValueError(f"{name}: expected values >= {lo}, got {value!r}")
    return (pair[0], pair[1])


class AnalogConv2d(AnalogLayerBase):
    """2D convolution computed on analog tiles (like :class:`torch.nn.Conv2d`).

    The kernel ``[out_channels, in_channels, kh, kw]`` is the logical weight matrix
    ``[out_channels, in_channels·kh·kw]`` (torch's flattening order), split into a grid of
    tiles exactly as :class:`~anatile.nn.AnalogLinear` splits its matrix (so a 1×1
    convolution and the equivalent linear layer use the same tiles). Each forward gathers
    the image patches of each tile's input slice with that tile's rows of the index matrix
    (rebuilt when the image size changes) and adds the partial sums of a grid row.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation: as for
            :class:`torch.nn.Conv2d` (integer padding only).
        groups: only 1 is supported.
        bias: whether to learn a bias.
        rpu_config: tile configuration.
        seed: seed of the tiles' generators (keyword only).

    Raises:
        ValueError: for ``groups != 1`` or non-positive sizes.

    Shape:
        ``[N, C_in, H, W]`` (or ``[C_in, H, W]``) → ``[N, C_out, H_out, W_out]``.

    Example:
        >>> conv = AnalogConv2d(1, 4, kernel_size=3, padding=1, seed=0)
        >>> conv(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 4, 8, 8])
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
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        if groups != 1:
            raise ValueError(f"groups: only groups=1 is supported, got {groups!r}")
        kernel = _pair("kernel_size", kernel_size, 1)
        strides = _pair("stride", stride, 1)
        pads = _pair("padding", padding, 0)
        dilations = _pair("dilation", dilation, 1)
        super().__init__(out_channels, in_channels * kernel[0] * kernel[1], bias, rpu_config,
                         seed)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel
        self.stride = strides
        self.padding = pads
        self.dilation = dilations
        self.groups = groups
        self._image_hw: tuple[int, int] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialize like ``torch.nn.Conv2d`` (uniform ``±1/sqrt(fan_in)``)."""
        self._init_uniform()

    def _to_matrix(self, weight: Tensor) -> Tensor:
        if isinstance(weight, Tensor) and weight.ndim == 4:
            expected = (self.out_channels, self.in_channels, *self.kernel_size)
            if tuple(weight.shape) != expected:
                raise ValueError(f"weight: expected shape {expected}, got {tuple(weight.shape)}")
            weight = weight.reshape(self.out_channels, -1)
        return weight

    def _from_matrix(self, weight: Tensor) -> Tensor:
        return weight.reshape(self.out_channels, self.in_channels, *self.kernel_size)

    def set_weights(self, weight: Tensor, bias: Tensor | None = None, **kwargs: Any) -> None:
        """Set the kernel ``[out, in, kh, kw]`` (or flattened ``[out, in·kh·kw]``) and bias.

        Args:
            weight: the kernel.
            bias: ``[out_channels]`` or None (keep the current bias).
            **kwargs: as :meth:`TileWithPeriphery.set_weights`.

        Raises:
            TypeError, ValueError: on bad tensors (the layer is unchanged then).
        """
        super().set_weights(weight, bias, **kwargs)

    def _ensure_indexed(self, hw: tuple[int, int]) -> None:
        if self._image_hw == hw and self.tile_array.is_indexed():
            return
        indices, sizes = conv2d_indices(self.in_channels, hw, self.kernel_size, self.stride,
                                        self.padding, self.dilation)
        self.tile_array.set_indexed(indices, sizes)
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
        y = self.tile_array(x)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.use_bias}")
