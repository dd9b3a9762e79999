"""Forward/backward IO model of an analog matrix-vector product (DAC → crossbar → ADC).

One function, :func:`analog_mvm`, computes ``y ≈ x @ weight.T`` as a crossbar with its
converters would: per-row noise management, input quantization and clipping, the MVM with
optional weight noise, Gaussian output noise, output quantization and clipping, and
iterative bound management. The backward pass of a tile is the same function applied to
the transposed matrix (``analog_mvm(d, weight.T, io)``).

Units and conventions (documented in ``docs/tile.md``):

* the input quantization step is ``inp_res · inp_bound`` (so the default 1/126 gives 126
  levels per sign within ``±inp_bound``); the output step is ``out_res · out_bound``;
* noise management ``ABS_MAX`` divides each row by its absolute maximum (rows of zeros keep
  scale 1), ``MAX`` by its signed maximum when positive (else the absolute maximum);
* iterative bound management redoes only the rows whose output reached ``±out_bound``,
  with the input halved each round, until no row clips or the accumulated reduction would
  exceed ``max_bm_factor``; the loop runs over halvings, never over rows;
* weight noise ``w_noise`` (a fresh Gaussian weight perturbation per MVM) is applied in
  distribution: ``Σ_j ξ_ij x_j ~ N(0, ‖x‖²)``, so one Gaussian per output suffices;
* all scales are undone at the end, so the result is in the units of ``x @ weight.T``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from anatile.config.parameters import BoundManagementType, IOParameters, NoiseManagementType

__all__ = ["MVMResult", "analog_mvm", "analog_mvm_with_stats", "noise_management_scale"]


class MVMResult(NamedTuple):
    """Output of :func:`analog_mvm_with_stats`.

    Attributes:
        out: the result ``[N, out_size]``.
        clipped_fraction: fraction of outputs that reached ``±out_bound`` in the first pass
            (before bound management), a 0-dim tensor.
    """

    out: Tensor
    clipped_fraction: Tensor


def noise_management_scale(x: Tensor, io: IOParameters) -> Tensor:
    """Per-row input scale of the noise management.

    Args:
        x: inputs ``[N, in_size]``.
        io: the IO parameters.

    Returns:
        ``[N, 1]`` positive scales (1 where a row is all zeros or noise management is off).
    """
    if io.noise_management == NoiseManagementType.NONE:
        return torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    # amax/amin rather than aminmax: the fused CPU kernel is ~10x slower along a dim.
    low, high = x.amin(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)
    scale = torch.maximum(high, -low)
    if io.noise_management == NoiseManagementType.MAX:
        scale = torch.where(high > 0, high, scale)
    return scale.masked_fill_(scale <= 0, 1.0)


def _quantized_pass(
    x: Tensor,
    inv_scale: Tensor,
    weight: Tensor,
    io: IOParameters,
    generator: torch.Generator | None,
    unit: float,
) -> Tensor:
    """One DAC → MVM → ADC pass on rows divided by their scale (via ``inv_scale``).

    Returns the ADC output in units of ``unit`` (the ADC step, or 1 without ADC
    quantization), clipped at ``±out_bound / unit``. Working in integer DAC/ADC levels lets
    every scale fold into one multiply and the output noise into the GEMM's accumulator.
    """
    inp_step = io.inp_res * io.inp_bound
    if inp_step > 0:
        levels = x * (inv_scale / inp_step)
        if io.inp_sto_round:
            levels.add_(torch.rand(levels.shape, generator=generator, dtype=x.dtype,
                                   device=x.device)).floor_()
        else:
            levels.round_()
        max_level = float(round(io.inp_bound / inp_step))
        levels.clamp_(-max_level, max_level)
        in_mult = inp_step
    else:
        levels = x * inv_scale
        levels.clamp_(-io.inp_bound, io.inp_bound)
        in_mult = 1.0
    if io.inp_noise > 0:
        levels.add_(torch.randn(levels.shape, generator=generator, dtype=x.dtype,
                                device=x.device), alpha=io.inp_noise / in_mult)
    alpha = in_mult / unit
    if io.out_noise > 0:
        y = torch.empty(x.shape[0], weight.shape[0], dtype=x.dtype, device=x.device)
        y.normal_(0.0, io.out_noise / unit, generator=generator)
        y.addmm_(levels, weight.T, alpha=alpha)
    else:
        y = levels @ weight.T
        if alpha != 1.0:
            y.mul_(alpha)
    if io.w_noise > 0:
        norm = levels.norm(dim=1, keepdim=True)
        noise = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        y.addcmul_(noise, norm, value=io.w_noise * alpha)
    if io.out_res > 0:
        if io.out_sto_round:
            y.add_(torch.rand(y.shape, generator=generator, dtype=y.dtype,
                              device=y.device)).floor_()
        else:
            y.round_()
    bound = io.out_bound / unit
    return y.clamp_(-bound, bound)


def _clipping_rows(y: Tensor, bound: float) -> Tensor:
    low, high = y.amin(dim=1), y.amax(dim=1)
    return (high >= bound) | (low <= -bound)


def analog_mvm_with_stats(
    x: Tensor,
    weight: Tensor,
    io: IOParameters,
    generator: torch.Generator | None = None,
) -> MVMResult:
    """Analog MVM ``x @ weight.T`` through the IO model, with clipping statistics.

    Args:
        x: inputs ``[N, in_size]``.
        weight: matrix ``[out_size, in_size]`` (any strides; pass ``W.T`` for backward).
        io: the IO parameters (forward or backward).
        generator: source of all random numbers (None: torch's default generator).

    Returns:
        :class:`MVMResult` with the output ``[N, out_size]`` and the clipped fraction.

    Shape:
        ``x``: ``[N, in]``, ``weight``: ``[out, in]`` → ``out``: ``[N, out]``.
    """
    return _analog_mvm(x, weight, io, generator, stats=True)


def _analog_mvm(x: Tensor, weight: Tensor, io: IOParameters,
                generator: torch.Generator | None, stats: bool) -> MVMResult:
    if io.is_perfect:
        return MVMResult(x @ weight.T, x.new_zeros(()))
    unit = io.out_res * io.out_bound if io.out_res > 0 else 1.0
    bound = io.out_bound / unit
    scale = noise_management_scale(x, io)
    y = _quantized_pass(x, scale.reciprocal(), weight, io, generator, unit)
    clipped_fraction = x.new_zeros(())
    if stats:
        clipped_fraction = (y.abs() >= bound).sum().to(x.dtype) / max(y.numel(), 1)
    if io.bound_management == BoundManagementType.ITERATIVE:
        rows = _clipping_rows(y, bound)
        if bool(rows.any()):
            factor = 1.0
            idx = rows.nonzero().squeeze(1)
            final_factor = torch.ones_like(scale)
            while idx.numel() > 0 and factor * 2.0 <= io.max_bm_factor:
                factor *= 2.0
                sub_scale = scale.index_select(0, idx) * factor
                y_sub = _quantized_pass(x.index_select(0, idx), sub_scale.reciprocal(), weight,
                                        io, generator, unit)
                y.index_copy_(0, idx, y_sub)
                final_factor.index_fill_(0, idx, factor)
                idx = idx[_clipping_rows(y_sub, bound)]
            scale = scale * final_factor
    if unit != 1.0:
        scale = scale * unit
    return MVMResult(y.mul_(scale), clipped_fraction)


def analog_mvm(
    x: Tensor,
    weight: Tensor,
    io: IOParameters,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Analog MVM ``x @ weight.T`` through the IO model (see the module docstring).

    Args:
        x: inputs ``[N, in_size]``.
        weight: matrix ``[out_size, in_size]`` (pass ``W.T`` for the backward pass).
        io: the IO parameters.
        generator: source of all random numbers (None: torch's default generator).

    Returns:
        The output ``[N, out_size]``; exactly ``x @ weight.T`` when ``io.is_perfect``.

    Shape:
        ``x``: ``[N, in]``, ``weight``: ``[out, in]`` → ``[N, out]``.
    """
    return _analog_mvm(x, weight, io, generator, stats=False).out
