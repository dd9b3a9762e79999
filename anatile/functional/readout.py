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
    """``n`` standard-normal input vectors ``[n, in_size]`` for the read-out.

    Example:
        >>> x = readout_inputs(4, 3, torch.Generator().manual_seed(0))
        >>> x.shape, x.dtype
        (torch.Size([4, 3]), torch.float32)
    """
    return torch.randn(n, in_size, generator=generator, dtype=dtype, device=device)


def _solve(x: Tensor, y: Tensor) -> Tensor:
    """Least-squares solution of ``x @ s ≈ y``.

    Well-conditioned problems (the random read-out: cond(x) ≈ 2) use the normal equations
    with a Cholesky factorization - two GEMMs, several times faster than a QR-based solve
    at the same accuracy here; otherwise ``torch.linalg.lstsq``.
    """
    gram = x.T @ x
    chol, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        diag = torch.diagonal(chol)
        if float(diag.min()) > 0 and float(diag.max() / diag.min()) < 100.0:  # cond < 1e4
            return torch.cholesky_solve(x.T @ y, chol)
    return torch.linalg.lstsq(x, y).solution


def lstsq_weights(x: Tensor, y: Tensor, with_bias: bool = False) -> tuple[Tensor, Tensor | None]:
    """Least-squares estimate of ``W`` (and ``b``) from ``y ≈ x @ W.T (+ b)``.

    Solved by the normal equations (Cholesky) when ``x`` is well conditioned, else by
    ``torch.linalg.lstsq``.

    Args:
        x: inputs ``[N, in]``.
        y: outputs ``[N, out]``.
        with_bias: also fit a bias (a column of ones appended to ``x``).

    Returns:
        ``(W [out, in], b [out] or None)``.

    Raises:
        ValueError: if the shapes do not match.

    Example:
        >>> w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
        >>> x = readout_inputs(16, 2, torch.Generator().manual_seed(0))
        >>> w_hat, b_hat = lstsq_weights(x, x @ w.T + 0.1, with_bias=True)
        >>> torch.allclose(w_hat, w, atol=1e-4), torch.allclose(b_hat, 0.1 * torch.ones(2))
        (True, True)
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x, y: expected [N, in] and [N, out], got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if with_bias:
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
    solution = _solve(x, y).T.contiguous()
    if with_bias:
        return solution[:, :-1].contiguous(), solution[:, -1].contiguous()
    return solution, None
