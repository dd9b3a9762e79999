"""Shapes at the tile boundary: (transposed) batches to ``[M, size]`` rows and back."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from anatile.checks import check_tensor

__all__ = ["along", "from_rows", "out_view", "to_rows"]


def to_rows(x: Any, size: int, trans: bool, name: str) -> tuple[Tensor, Any]:
    """Bring a (possibly transposed) batch to ``[M, size]``; return it and how to undo it.

    Raises:
        TypeError: if ``x`` is not a floating-point tensor.
        ValueError: if it is a meta tensor or its shape does not end in ``size``
            (``[size, N]`` when ``trans``).
    """
    check_tensor(name, x, finite=False)
    if trans:
        if x.ndim != 2 or x.shape[0] != size:
            raise ValueError(f"{name}: expected shape [{size}, N] (transposed), "
                             f"got {tuple(x.shape)}")
        return x.T, None
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name}: expected shape [..., {size}], got {tuple(x.shape)}")
    return x.reshape(-1, size), x.shape[:-1]


def from_rows(y: Tensor, lead: Any, trans: bool) -> Tensor:
    """Undo :func:`to_rows` on the result ``y`` (``[M, out]``)."""
    if trans:
        return y.T
    return y.reshape(*lead, y.shape[-1])


def out_view(ndim: int, out_trans: bool, indexed: bool = False) -> tuple[int, ...]:
    """View that broadcasts per-output values over an ``ndim``-dimensional output."""
    if indexed:
        return (1, -1) + (1,) * (ndim - 2)
    if out_trans:
        return (-1,) + (1,) * (ndim - 1)
    return (1,) * (ndim - 1) + (-1,)


def along(scales: Tensor, dim: int, ndim: int) -> Tensor:
    """View 1- or n-element ``scales`` so they broadcast along dimension ``dim``."""
    if scales.numel() == 1:
        return scales.reshape(())
    shape = [1] * ndim
    shape[dim] = -1
    return scales.view(shape)
