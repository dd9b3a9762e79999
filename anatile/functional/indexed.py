"""Index matrices for convolutions on a tile (im2col as a gather, col2im as a scatter-add).

An index matrix ``indices`` of shape ``[in_size, L]`` (``in_size = C·k…``, ``L`` the number
of output positions) holds, for each kernel element and output position, the 1-based
position in the flattened input image ``[C·spatial]``, or 0 where the kernel covers padding.
This is the layout of the ``im2col`` index matrices analog simulators use; it describes
1D, 2D and 3D convolutions alike (any stride, padding and dilation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["conv2d_indices", "gather_patches", "scatter_patches"]


def conv2d_indices(
    in_channels: int,
    image_hw: tuple[int, int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[Tensor, list[int]]:
    """Index matrix and image sizes of a 2D convolution.

    Args:
        in_channels: C.
        image_hw: input height and width.
        kernel_size, stride, padding, dilation: as for :func:`torch.nn.functional.conv2d`.

    Returns:
        ``(indices [C·kh·kw, H_out·W_out] int64, [C, H, W, H_out, W_out])``.

    Raises:
        ValueError: if the kernel does not fit the (padded) image.

    Example:
        >>> idx, sizes = conv2d_indices(1, (3, 3), (2, 2), (1, 1), (0, 0), (1, 1))
        >>> idx.shape, sizes  # [in_size = C·kh·kw, L = 2·2 patches]; [C, H, W, H_out, W_out]
        (torch.Size([4, 4]), [1, 3, 3, 2, 2])
        >>> idx[:, 0]  # 1-based positions of the first patch in the flattened image
        tensor([1, 2, 4, 5])
    """
    h, w = image_hw
    sizes = []
    for dim in range(2):
        size = (image_hw[dim] + 2 * padding[dim] - dilation[dim] * (kernel_size[dim] - 1) - 1)
        out = size // stride[dim] + 1
        if size < 0 or out <= 0:
            raise ValueError(f"x: image of size {image_hw} is too small for kernel "
                             f"{kernel_size} with padding {padding} and dilation {dilation}")
        sizes.append(out)
    image = torch.arange(1, in_channels * h * w + 1, dtype=torch.float64)
    cols = F.unfold(image.view(1, in_channels, h, w), kernel_size, dilation=dilation,
                    padding=padding, stride=stride)
    indices = cols[0].round().to(torch.int64)
    return indices, [in_channels, h, w, sizes[0], sizes[1]]


def gather_patches(x: Tensor, indices: Tensor) -> Tensor:
    """im2col: ``[N, C, *spatial]`` images → ``[N·L, in_size]`` patch rows.

    Args:
        x: batch of images.
        indices: ``[in_size, L]`` index matrix (0 = padding).

    Returns:
        ``[N·L, in_size]`` rows ordered by image, then output position.

    Example:
        >>> idx, _ = conv2d_indices(1, (3, 3), (2, 2), (1, 1), (0, 0), (1, 1))
        >>> image = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> gather_patches(image, idx)  # one row per 2×2 patch
        tensor([[0., 1., 3., 4.],
                [1., 2., 4., 5.],
                [3., 4., 6., 7.],
                [4., 5., 7., 8.]])
    """
    n = x.shape[0]
    flat = torch.cat([x.new_zeros(n, 1), x.reshape(n, -1)], dim=1)
    patches = flat[:, indices]  # [N, in_size, L]
    return patches.transpose(1, 2).reshape(n * indices.shape[1], indices.shape[0])


def scatter_patches(rows: Tensor, indices: Tensor, image_shape: tuple[int, ...]) -> Tensor:
    """col2im (adjoint of :func:`gather_patches`): ``[N·L, in_size]`` → ``[N, *image_shape]``.

    Args:
        rows: patch-row gradients.
        indices: ``[in_size, L]`` index matrix.
        image_shape: ``(C, *spatial)`` of one image.

    Returns:
        The images, overlapping contributions summed.

    Example:
        >>> idx, _ = conv2d_indices(1, (3, 3), (2, 2), (1, 1), (0, 0), (1, 1))
        >>> scatter_patches(torch.ones(4, 4), idx, (1, 3, 3))  # how many patches cover a pixel
        tensor([[[[1., 2., 1.],
                  [2., 4., 2.],
                  [1., 2., 1.]]]])
    """
    in_size, length = indices.shape
    n = rows.shape[0] // length
    values = rows.reshape(n, length, in_size).transpose(1, 2).reshape(n, -1)
    flat = rows.new_zeros(n, 1 + math.prod(image_shape))
    flat.scatter_add_(1, indices.reshape(1, -1).expand(n, -1), values)
    return flat[:, 1:].reshape(n, *image_shape)
