"""Realistic read-out of a tile's weights: eval forward passes and least squares."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from anatile.checks import check_int, check_tensor
from anatile.functional.readout import lstsq_weights, readout_inputs

__all__ = ["read_weights_lstsq"]


def read_weights_lstsq(
    eval_forward: Callable[[Tensor], Tensor],
    in_size: int,
    x_values: Tensor | None,
    over_sampling: int,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
    with_bias: bool,
) -> tuple[Tensor, Tensor | None]:
    """Estimate ``(weight, analog bias)`` from ``eval_forward`` by least squares.

    Args:
        eval_forward: eval-mode forward of ``[N, in_size]`` rows (all IO non-idealities).
        in_size: logical inputs of the tile.
        x_values: ``[N, in_size]`` probe inputs; None draws ``over_sampling · in_size``
            standard-normal rows from ``generator``.
        over_sampling: number of random inputs per input dimension (>= 1).
        generator: random source of the probe inputs.
        dtype, device: of the probe inputs.
        with_bias: also estimate a bias (the tile's analog bias column).

    Returns:
        ``(weight [out, in_size], bias [out] or None)`` on ``device``.

    Raises:
        TypeError, ValueError: on bad ``x_values`` (also: fewer linearly independent rows
            than unknowns) / ``over_sampling``.
    """
    if x_values is None:
        n = check_int("over_sampling", over_sampling, 1) * in_size
        x = readout_inputs(n, in_size, generator, dtype, device)
    else:
        x = check_tensor("x_values", x_values)
        if x.ndim != 2 or x.shape[1] != in_size:
            raise ValueError(f"x_values: expected shape [N, {in_size}], "
                             f"got {tuple(x.shape)}")
        x = x.detach().to(dtype=dtype, device=device)
        # fewer independent probes than unknowns gives an underdetermined (or all-zero)
        # estimate without any error from lstsq: refuse it
        n_unknown = in_size + int(with_bias)
        if x.shape[0] < n_unknown:
            raise ValueError(f"x_values: expected at least {n_unknown} rows (one per unknown "
                             f"weight of a row), got {x.shape[0]}")
        probe = torch.cat([x, torch.ones_like(x[:, :1])], dim=1) if with_bias else x
        rank = int(torch.linalg.matrix_rank(probe.double()))
        if rank < n_unknown:
            raise ValueError(f"x_values: expected {n_unknown} linearly independent rows, "
                             f"got rank {rank} (e.g. all-zero or repeated rows)")
    return lstsq_weights(x, eval_forward(x), with_bias=with_bias)
