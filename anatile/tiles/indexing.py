"""Convolution indexing of a tile: im2col index matrices, image checks, patch reshapes.

A tile that is *indexed* (``tile.set_indexed(indices, image_sizes)``) takes image batches
``[N, C, *spatial]``: the patches are gathered into rows, the tile's row passes run on them,
and the results are reshaped (forward) or scatter-added (backward) into images. The
tile keeps the ``indices`` buffer (it is part of its state dict); this object keeps the
image sizes and does the index arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from anatile.checks import check_int
from anatile.exceptions import TileError
from anatile.functional.indexed import gather_patches, scatter_patches

__all__ = ["ConvolutionIndexing"]


class ConvolutionIndexing:
    """Image sizes of an indexed tile and the reshapes of its indexed passes.

    Args:
        in_size: inputs of the tile (rows of the index matrix).
        out_size: outputs of the tile (channels of the output images).

    Attributes:
        image_sizes: ``[C, L_in, L_out]`` (1D), ``[C, H, W, H_out, W_out]`` (2D),
            ``[C, D, H, W, D_out, H_out, W_out]`` (3D), or None when not indexed.
    """

    def __init__(self, in_size: int, out_size: int) -> None:
        self.in_size = in_size
        self.out_size = out_size
        self.image_sizes: list[int] | None = None

    def check(self, indices: Any, image_sizes: Any) -> tuple[Tensor, list[int]]:
        """Validate an index matrix and its image sizes (see ``TileWithPeriphery.set_indexed``).

        Returns:
            ``(indices as int64, image sizes as ints)``.

        Raises:
            TypeError, ValueError: naming ``indices`` or ``image_sizes``.
        """
        if isinstance(image_sizes, (str, bytes)) or not isinstance(image_sizes, Sequence):
            raise TypeError("image_sizes: expected a list of ints")
        sizes = [int(check_int("image_sizes", s, 1)) for s in image_sizes]
        if len(sizes) not in (3, 5, 7):
            raise ValueError(f"image_sizes: expected 3, 5 or 7 sizes (1D/2D/3D), "
                             f"got {len(sizes)}")
        if not isinstance(indices, Tensor):
            raise TypeError(f"indices: expected a torch.Tensor, got {type(indices).__name__}")
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise TypeError(f"indices: expected an integer tensor, got dtype {indices.dtype}")
        n_spatial = (len(sizes) - 1) // 2
        n_out = math.prod(sizes[1 + n_spatial:])
        n_in = math.prod(sizes[:1 + n_spatial])
        if tuple(indices.shape) != (self.in_size, n_out):
            raise ValueError(f"indices: expected shape {(self.in_size, n_out)}, "
                             f"got {tuple(indices.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) > n_in):
            raise ValueError(f"indices: expected values in [0, {n_in}]")
        return indices.detach().to(dtype=torch.int64), sizes

    def _sizes(self, indices: Tensor | None) -> tuple[Tensor, list[int], int]:
        if indices is None or self.image_sizes is None:
            raise TileError("indexed pass: call set_indexed first")
        n_spatial = (len(self.image_sizes) - 1) // 2
        if n_spatial not in (1, 2, 3):
            raise TileError(f"image_sizes: invalid length {len(self.image_sizes)}")
        return indices, self.image_sizes, n_spatial

    @staticmethod
    def _check_image(x: Any, name: str, channels: int, spatial: list[int]) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
        if x.ndim != 2 + len(spatial) or list(x.shape[1:]) != [channels, *spatial]:
            raise ValueError(f"{name}: expected shape [N, {channels}, "
                             f"{', '.join(map(str, spatial))}], got {tuple(x.shape)}")

    def input_rows(self, x_input: Tensor, indices: Tensor | None, dtype: torch.dtype) -> Tensor:
        """Patches of the images ``[N, C, *spatial_in]`` as rows ``[N·L_out, in_size]``."""
        idx, sizes, n_sp = self._sizes(indices)
        self._check_image(x_input, "x_input", sizes[0], sizes[1:1 + n_sp])
        return gather_patches(x_input.to(dtype), idx)

    def grad_rows(self, d_input: Tensor, indices: Tensor | None) -> Tensor:
        """Output gradients ``[N, out_size, *spatial_out]`` as rows ``[N·L_out, out_size]``."""
        _, sizes, n_sp = self._sizes(indices)
        self._check_image(d_input, "d_input", self.out_size, sizes[1 + n_sp:])
        n = d_input.shape[0]
        return d_input.reshape(n, self.out_size, -1).transpose(1, 2).reshape(-1, self.out_size)

    def forward(self, x_input: Tensor, indices: Tensor | None, dtype: torch.dtype,
                rows_forward: Callable[[Tensor], Tensor]) -> Tensor:
        """Gather patches, run ``rows_forward`` on them, reshape to output images."""
        _, sizes, n_sp = self._sizes(indices)
        rows = self.input_rows(x_input, indices, dtype)
        y = rows_forward(rows)
        n = x_input.shape[0]
        return y.reshape(n, -1, self.out_size).transpose(1, 2).reshape(
            n, self.out_size, *sizes[1 + n_sp:])

    def backward(self, d_input: Tensor, indices: Tensor | None,
                 rows_backward: Callable[[Tensor], Tensor]) -> Tensor:
        """Run ``rows_backward`` on the gradient rows and scatter-add them into images."""
        idx, sizes, n_sp = self._sizes(indices)
        dx = rows_backward(self.grad_rows(d_input, indices))
        return scatter_patches(dx, idx, tuple(sizes[:1 + n_sp]))
