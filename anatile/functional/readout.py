"""Realistic weight read-out: estimate a matrix from noisy forward passes by least squares,
and the noise of one read (what averaging repeated reads can and cannot remove)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from anatile.config.parameters import IOParameters
from anatile.functional.io_model import noise_management_scale, quantization_step

__all__ = ["adc_rounding_bias", "lstsq_weights", "read_noise_std", "readout_inputs"]


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


def read_noise_std(x: Tensor, io: IOParameters) -> Tensor:
    """Standard deviation of the read-to-read noise of one analog MVM, per input row.

    The zero-mean part of an output of :func:`~anatile.functional.analog_mvm` that changes
    from one read of ``x`` to the next (in the units of ``x @ weight.T``, before any bound
    management): Gaussian output noise ``out_noise``, the ADC rounding it dithers
    (variance ``step²/12``, ``step`` = :func:`~anatile.functional.quantization_step` of
    the output), both times the row's noise-management scale, and weight noise
    ``w_noise·‖x‖``. Averaging ``R`` reads divides it by ``√R``. Input noise is not
    included (it scales with the weights).

    Args:
        x: inputs ``[N, in_size]``.
        io: the IO parameters of the reads.

    Returns:
        ``[N]`` standard deviations (zeros when ``io.is_perfect``).

    Example:
        >>> from anatile.config import IOParameters
        >>> s = read_noise_std(torch.eye(3), IOParameters())
        >>> round(float(s[0]), 4)  # sqrt(0.06² + (24/510)²/12)
        0.0615
    """
    if io.is_perfect:
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    scale = noise_management_scale(x, io).squeeze(1)
    step = quantization_step(io.out_res, io.out_bound)
    var = (io.out_noise**2 + step**2 / 12.0) * scale**2
    if io.w_noise > 0:
        var = var + io.w_noise**2 * x.pow(2).sum(dim=1)
    return var.sqrt()


def adc_rounding_bias(io: IOParameters) -> float:
    """Mean absolute error of the ADC rounding that averaging reads cannot remove.

    Rounding to the step ``q`` (:func:`~anatile.functional.quantization_step`) has the
    mean error ``E[Q(y + n)] − y``, periodic in ``y``; Gaussian output noise ``n`` of
    standard deviation ``σ`` damps its first harmonic to ``(q/π)·exp(−2π²σ²/q²)``, whose
    mean absolute value over the phase of ``y`` is ``2/π`` of that; without noise it is the
    sawtooth's ``q/4``. Stochastic rounding (``out_sto_round``) and no quantization give 0.
    In the units of the ADC's input (multiply by the noise-management scale).

    Args:
        io: the IO parameters of the reads.

    Returns:
        The mean absolute bias of an average of many reads (≥ 0).

    Example:
        >>> from anatile.config import IOParameters
        >>> adc_rounding_bias(IOParameters(out_noise=0.0)) == 24 / 510 / 4
        True
        >>> adc_rounding_bias(IOParameters()) < 1e-12  # out_noise 0.06 dithers a 0.047 step
        True
    """
    step = quantization_step(io.out_res, io.out_bound)
    if io.is_perfect or step <= 0 or io.out_sto_round:
        return 0.0
    if io.out_noise <= 0:
        return step / 4.0
    harmonic = step / math.pi * math.exp(-2.0 * math.pi**2 * io.out_noise**2 / step**2)
    return min(step / 4.0, 2.0 / math.pi * harmonic)
