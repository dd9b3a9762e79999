"""Closed-loop weight programming and realistic read-out of a tile (used by its methods).

Both work through the tile's public state and its analog core; see
:meth:`TileWithPeriphery.program_weights` and :meth:`TileWithPeriphery.read_weights`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from anatile.functional.readout import lstsq_weights, readout_inputs
from anatile.tiles.checks import check_float, check_int, check_tensor
from anatile.tiles.events import ProgrammingReport

if TYPE_CHECKING:
    from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["ProgressCallback", "program_tile", "read_tile"]

ProgressCallback = Callable[[int, int, float], Any]


def read_tile(
    tile: TileWithPeriphery,
    apply_weight_scaling: bool,
    x_values: Tensor | None,
    over_sampling: int,
) -> tuple[Tensor, Tensor | None]:
    """Body of :meth:`TileWithPeriphery.read_weights` (same arguments and result)."""
    if x_values is None:
        n = check_int("over_sampling", over_sampling, 1) * tile.in_size
        x = readout_inputs(n, tile.in_size, tile.generator, tile.analog_core.weight.dtype,
                           tile.device)
    else:
        x = check_tensor("x_values", x_values)
        if x.ndim != 2 or x.shape[1] != tile.in_size:
            raise ValueError(f"x_values: expected shape [N, {tile.in_size}], "
                             f"got {tuple(x.shape)}")
        x = x.detach().to(dtype=tile.analog_core.weight.dtype, device=tile.device)
    y = tile._logical_eval_forward(x)
    weight, bias = lstsq_weights(x, y, with_bias=tile.analog_bias)
    if not apply_weight_scaling:
        scales = tile.get_scales()
        assert scales is not None
        weight = weight / scales.reshape(-1, 1)
        if bias is not None:
            bias = bias / scales.reshape(-1)
    weight = weight.to("cpu")
    if bias is not None:
        bias = bias.to("cpu")
    elif tile.bias is not None:
        bias = tile.bias.detach().to("cpu", copy=True)
    tile._emit("weights_read", weight=weight, bias=bias)
    return weight, bias


def program_tile(
    tile: TileWithPeriphery,
    from_reference: bool,
    x_values: Tensor | None,
    learning_rate: float,
    max_iter: int,
    tolerance: float | None,
    w_init: float | Tensor,
    callback: ProgressCallback | None,
) -> None:
    """Body of :meth:`TileWithPeriphery.program_weights` (same arguments)."""
    core = tile.analog_core
    n_cols = core.in_size
    dtype, device = core.weight.dtype, tile.device
    lr = check_float("learning_rate", learning_rate, lo=0.0, lo_open=True)
    max_iter = check_int("max_iter", max_iter, 1)
    tol = None if tolerance is None else check_float("tolerance", tolerance)
    if x_values is None:
        x = torch.eye(n_cols, dtype=dtype, device=device)
    else:
        x = check_tensor("x_values", x_values)
        if x.ndim != 2 or x.shape[1] not in (tile.in_size, n_cols):
            raise ValueError(f"x_values: expected shape [N, {tile.in_size}] or "
                             f"[N, {n_cols}], got {tuple(x.shape)}")
        x = x.detach().to(dtype=dtype, device=device)
        if x.shape[1] != n_cols:
            x = tile._with_bias_column(x)
    if isinstance(w_init, Tensor):
        start = check_tensor("w_init", w_init, (core.out_size, n_cols)).detach()
        start = start.to(dtype=dtype, device=device).clone()
    else:
        amp = check_float("w_init", w_init)
        start = torch.rand(core.out_size, n_cols, generator=tile.generator, dtype=dtype,
                           device=device).mul_(2.0 * amp).sub_(amp)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
    if from_reference and tile.reference_weight is not None:
        target = tile.reference_weight.detach().clone()
    else:
        target = core.weight.detach().clone()
    target_out = x @ target.T
    # Normalize the step so that lr means the same for any x_values: the closed loop is
    # gradient descent on |x Wᵀ − target|², whose curvature is λ_max(xᵀx) (1 for the
    # identity, ~N for N random rows; without this, lr = 0.1 would diverge there).
    curvature = float(torch.linalg.matrix_norm(x, ord=2)) ** 2
    lr = lr / curvature if curvature > 0 else lr
    denom = float(target_out.abs().max())
    denom = denom if denom > 0 else 1.0
    core.set_weights(start)

    def measure() -> tuple[Tensor, float]:
        with torch.no_grad():
            err = core.forward(x, tile.generator) - target_out
        return err, float(err.abs().mean()) / denom

    iterations, converged = 0, False
    err, rel = measure()
    while True:
        stop = tile._emit("programming_progress", iteration=iterations,
                          max_iter=max_iter, error=rel)
        if callback is not None:
            try:
                stop = (callback(iterations, max_iter, rel) is True) or stop
            except StopIteration:
                stop = True
        if tol is not None and rel < tol:
            converged = True
            break
        if stop or iterations >= max_iter:
            break
        with torch.no_grad():
            core.update(x, err, lr, tile.generator)
        iterations += 1
        err, rel = measure()
    tile.last_programming = ProgrammingReport(iterations, rel, converged)
    tile._emit("programmed", report=tile.last_programming)
