"""Forward/backward IO model of an analog matrix-vector product (DAC → crossbar → ADC).

One function, :func:`analog_mvm`, computes ``y ≈ x @ weight.T`` as a crossbar with its
converters would: per-row noise management, input quantization and clipping, the MVM with
optional weight noise, Gaussian output noise, output quantization and clipping, and
iterative bound management. The backward pass of a tile is the same function applied to
the transposed matrix (``analog_mvm(d, weight.T, io)``).

Units and conventions (documented in ``docs/tile.md``):

* a resolution is a fraction of the full range ``2 · bound``, as in aihwkit: the input
  quantization step is ``inp_res · 2 · inp_bound`` (the default 1/126 gives 126 steps over
  ``±inp_bound``, a 7-bit DAC) and the output step ``out_res · 2 · out_bound`` (1/510: 510
  steps over ``±out_bound``, a 9-bit ADC); a resolution above 1 is the number of steps over
  the range (``inp_res = 256`` means a step of ``2 · inp_bound / 256``) and one ≤ 0 means no
  quantization (:func:`quantization_step`). Values are rounded half to even onto the steps,
  then clipped at ``±bound``;
* noise management ``ABS_MAX`` divides each row by its absolute maximum (a row of zeros
  gives an output of exactly 0 when there is no input noise, as in aihwkit), ``MAX`` by its
  signed maximum when positive (else the absolute maximum);
* the DAC clips: an input of ``±inf`` is driven at ``±inp_bound`` (the noise-management
  scale is taken over the finite entries of its row); a NaN input makes its row's outputs
  NaN (rows are independent); ``is_perfect`` has no DAC and computes ``x @ weight.T`` as is;
* iterative bound management redoes only the rows whose output exceeded ``±out_bound``
  (before clipping), with the input halved each round; as in aihwkit, a round at reduction
  ``f`` is the last one when ``f > max_bm_factor`` or, with input quantization,
  ``f > max_bm_res / inp_step`` (with the defaults the input is reduced at most 16-fold);
  the loop runs over halvings, never over rows;
* weight noise ``w_noise`` (a fresh Gaussian weight perturbation per MVM) is applied in
  distribution: ``Σ_j ξ_ij x_j ~ N(0, ‖x‖²)``, so one Gaussian per output suffices;
* all scales are undone at the end, so the result is in the units of ``x @ weight.T``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from anatile.config.parameters import BoundManagementType, IOParameters, NoiseManagementType

__all__ = [
    "MVMResult",
    "analog_mvm",
    "analog_mvm_with_stats",
    "noise_management_scale",
    "quantization_step",
]


class MVMResult(NamedTuple):
    """Output of :func:`analog_mvm_with_stats`.

    Attributes:
        out: the result ``[N, out_size]``.
        clipped_fraction: fraction of outputs that reached ``±out_bound`` in the first pass
            (before bound management), a 0-dim tensor.
    """

    out: Tensor
    clipped_fraction: Tensor


def quantization_step(res: float, bound: float) -> float:
    """Step of a DAC/ADC with resolution ``res`` over the range ``±bound`` (aihwkit's rule).

    Args:
        res: resolution. ``0 < res ≤ 1``: a fraction of the full range ``2 · bound``
            (1/126 → 126 steps); ``res > 1``: the number of steps over the range (so 126 and
            1/126 are the same converter); ``res ≤ 0``: no quantization.
        bound: the converter's bound (inputs or outputs clip at ``±bound``).

    Returns:
        The step ``res · 2 · bound`` (with ``res`` replaced by ``1 / res`` when above 1), or
        0.0 for no quantization.

    Example:
        >>> quantization_step(1 / 510, 12.0) == 24.0 / 510
        True
        >>> quantization_step(-1.0, 12.0)
        0.0
    """
    if not res > 0.0:
        return 0.0
    fraction = 1.0 / res if res > 1.0 else res
    return fraction * 2.0 * bound


def noise_management_scale(x: Tensor, io: IOParameters) -> Tensor:
    """Per-row input scale of the noise management.

    Args:
        x: inputs ``[N, in_size]``.
        io: the IO parameters.

    Returns:
        ``[N, 1]`` positive scales (1 where a row is all zeros or noise management is off).
    """
    scale = _raw_noise_management_scale(x, io)
    return scale.masked_fill_(scale <= 0, 1.0)


def _raw_noise_management_scale(x: Tensor, io: IOParameters) -> Tensor:
    """Per-row scale before zero rows are given scale 1 (``[N, 1]``)."""
    if io.noise_management == NoiseManagementType.NONE:
        return torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    # amax/amin rather than aminmax: the fused CPU kernel is ~10x slower along a dim.
    low, high = x.amin(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)
    inf_rows = None
    if bool(torch.isinf(high).any() | torch.isinf(low).any()):
        # ±inf inputs saturate the DAC at ±inp_bound: the scale comes from the finite
        # values of the row (1 if there are none), and the clip of the quantizer does the rest
        inf = torch.isinf(x)
        inf_rows = inf.any(dim=1, keepdim=True)
        finite = torch.where(inf, torch.zeros_like(x), x)
        low, high = finite.amin(dim=1, keepdim=True), finite.amax(dim=1, keepdim=True)
    scale = torch.maximum(high, -low)
    if io.noise_management == NoiseManagementType.MAX:
        scale = torch.where(high > 0, high, scale)
    if inf_rows is not None:
        scale = torch.where(inf_rows & (scale <= 0), torch.ones_like(scale), scale)
    return scale


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
    quantization), rounded but not yet clipped (the caller tests it against the bound, as
    aihwkit does, then clips). Working in integer DAC/ADC levels lets every scale fold into
    one multiply and the output noise into the GEMM's accumulator.
    """
    inp_step = quantization_step(io.inp_res, io.inp_bound)
    if inp_step > 0:
        levels = x * (inv_scale / inp_step)
        if io.inp_sto_round:
            levels.add_(torch.rand(levels.shape, generator=generator, dtype=x.dtype,
                                   device=x.device)).floor_()
        else:
            levels.round_()
        # clipped at the bound itself, which need not be a whole number of steps
        max_level = io.inp_bound / inp_step
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
    if quantization_step(io.out_res, io.out_bound) > 0:
        if io.out_sto_round:
            y.add_(torch.rand(y.shape, generator=generator, dtype=y.dtype,
                              device=y.device)).floor_()
        else:
            y.round_()
    return y


def _clipping_rows(y: Tensor, bound: float) -> Tensor:
    """Rows with an output beyond ``±bound`` (before clipping: a value on the bound passes)."""
    low, high = y.amin(dim=1), y.amax(dim=1)
    return (high > bound) | (low < -bound)


def _last_bm_round(reduction: float, io: IOParameters, inp_step: float) -> bool:
    """aihwkit's stop rule of iterative bound management, checked after a round."""
    if reduction > io.max_bm_factor:
        return True
    return inp_step > 0 and reduction > io.max_bm_res / inp_step


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
    unit = quantization_step(io.out_res, io.out_bound) or 1.0
    bound = io.out_bound / unit
    scale = _raw_noise_management_scale(x, io)
    zero_rows = scale <= 0
    scale.masked_fill_(zero_rows, 1.0)
    y = _quantized_pass(x, scale.reciprocal(), weight, io, generator, unit)
    clipped_fraction = x.new_zeros(())
    if stats:
        clipped_fraction = (y.abs() >= bound).sum().to(x.dtype) / max(y.numel(), 1)
    if io.bound_management == BoundManagementType.ITERATIVE:
        rows = _clipping_rows(y, bound)
        if bool(rows.any()):
            inp_step = quantization_step(io.inp_res, io.inp_bound)
            factor = 1.0
            idx = rows.nonzero().squeeze(1)
            final_factor = torch.ones_like(scale)
            while idx.numel() > 0 and not _last_bm_round(factor, io, inp_step):
                factor *= 2.0
                sub_scale = scale.index_select(0, idx) * factor
                y_sub = _quantized_pass(x.index_select(0, idx), sub_scale.reciprocal(), weight,
                                        io, generator, unit)
                clipping = _clipping_rows(y_sub, bound)
                y.index_copy_(0, idx, y_sub)
                final_factor.index_fill_(0, idx, factor)
                idx = idx[clipping]
            scale = scale * final_factor
    y.clamp_(-bound, bound)
    if io.noise_management != NoiseManagementType.NONE and io.inp_noise == 0:
        # an all-zero input row is not driven at all: its output is exactly 0 (as in aihwkit)
        y.masked_fill_(zero_rows, 0.0)
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
