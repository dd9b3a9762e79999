"""Realistic weight read-out: estimate a matrix from noisy forward passes by least squares."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["lstsq_weights", "readout_inputs"]


def readout_inputs(
    n: int,
    in_size: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """``n`` standard-normal input vectors ``[n, in_size]`` for the read-out."""
    return torch.randn(n, in_size, generator=generator, dtype=dtype, device=device)


def lstsq_weights(x: Tensor, y: Tensor, with_bias: bool = False) -> tuple[Tensor, Tensor | None]:
    """Least-squares estimate of ``W`` (and ``b``) from ``y ≈ x @ W.T (+ b)``.

    Args:
        x: inputs ``[N, in]``.
        y: outputs ``[N, out]``.
        with_bias: also fit a bias (a column of ones appended to ``x``).

    Returns:
        ``(W [out, in], b [out] or None)``.

    Raises:
        ValueError: if the shapes do not match.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x, y: expected [N, in] and [N, out], got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if with_bias:
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
    solution = torch.linalg.lstsq(x, y).solution.T.contiguous()
    if with_bias:
        return solution[:, :-1].contiguous(), solution[:, -1].contiguous()
    return solution, None
