"""Forward/backward IO model of an analog matrix-vector product (DAC → crossbar → ADC).

One function, :func:`analog_mvm`, computes ``y ≈ x @ weight.T`` as a crossbar with its
converters would: per-row noise management, input quantization and clipping, the MVM with
optional weight noise, Gaussian output noise, output quantization and clipping, and
iterative bound management. The backward pass of a tile is the same function applied to
the transposed matrix (``analog_mvm(d, weight.T, io)``).

Units and conventions (documented in ``docs/tile/io_model.md``):

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

This module is over 400 lines because :func:`analog_mvm_grid` (a grid of crossbars, a tile
array) runs through the same private stages (DAC, crossbar and ADC, bound management) as
:func:`analog_mvm`: each formula of the IO model stays in one place.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from anatile.config.parameters import BoundManagementType, IOParameters, NoiseManagementType
from anatile.functional.threads import distinct_generators, run_jobs, worker_count

__all__ = [
    "MVMResult",
    "analog_mvm",
    "analog_mvm_grid",
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

    Example:
        >>> from anatile.config import IOParameters
        >>> io = IOParameters(is_perfect=True)
        >>> res = analog_mvm_with_stats(torch.ones(2, 4), torch.ones(3, 4), io)
        >>> res.out
        tensor([[4., 4., 4.],
                [4., 4., 4.]])
        >>> float(res.clipped_fraction)
        0.0
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

    Example:
        >>> from anatile.config import IOParameters
        >>> noise_management_scale(torch.tensor([[0.5, -2.0], [0.0, 0.0]]), IOParameters())
        tensor([[2.],
                [1.]])
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


def _input_levels(
    x: Tensor,
    inv_scale: Tensor,
    io: IOParameters,
    generator: torch.Generator | None,
) -> tuple[Tensor, float]:
    """The DAC: rows divided by their scale (via ``inv_scale``), quantized, clipped, noisy.

    Returns the input levels (a new tensor, in units of the DAC step, or of 1 without input
    quantization) and that unit. Random only with ``inp_sto_round`` or ``inp_noise``.
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
    return levels, in_mult


def _output_levels(
    levels: Tensor,
    in_mult: float,
    weight: Tensor,
    io: IOParameters,
    generator: torch.Generator | None,
    unit: float,
) -> Tensor:
    """The crossbar and the ADC: MVM of the input levels, output noise, rounding.

    Returns the ADC output in units of ``unit`` (the ADC step, or 1 without ADC
    quantization), rounded but not yet clipped.
    """
    alpha = in_mult / unit
    if io.out_noise > 0:
        y = torch.empty(levels.shape[0], weight.shape[0], dtype=levels.dtype,
                        device=levels.device)
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
    levels, in_mult = _input_levels(x, inv_scale, io, generator)
    return _output_levels(levels, in_mult, weight, io, generator, unit)


def _clipping_rows(y: Tensor, bound: float) -> Tensor:
    """Rows with an output beyond ``±bound`` (before clipping: a value on the bound passes)."""
    low, high = y.amin(dim=1), y.amax(dim=1)
    return (high > bound) | (low < -bound)


def _last_bm_round(reduction: float, io: IOParameters, inp_step: float) -> bool:
    """aihwkit's stop rule of iterative bound management, checked after a round."""
    if reduction > io.max_bm_factor:
        return True
    return inp_step > 0 and reduction > io.max_bm_res / inp_step


def _bound_management(x: Tensor, scale: Tensor, y: Tensor, weight: Tensor, io: IOParameters,
                      generator: torch.Generator | None, unit: float) -> Tensor:
    """Iterative bound management: redo the rows of ``y`` beyond the ADC bound (in place).

    Each round halves the input of the rows that still clip and overwrites their outputs.

    Returns:
        the per-row scale ``[N, 1]`` times each row's final input reduction.
    """
    bound = io.out_bound / unit
    rows = _clipping_rows(y, bound)
    if not bool(rows.any()):
        return scale
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
    return scale * final_factor


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

    Example:
        >>> from anatile.config import BoundManagementType, IOParameters
        >>> io = IOParameters(out_bound=1.0, bound_management=BoundManagementType.NONE)
        >>> res = analog_mvm_with_stats(torch.ones(1, 4), torch.ones(2, 4), io,
        ...                             torch.Generator().manual_seed(0))
        >>> float(res.clipped_fraction)  # 4 > out_bound: every output clips
        1.0
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
        scale = _bound_management(x, scale, y, weight, io, generator, unit)
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

    Example:
        >>> from anatile.config import IOParameters
        >>> x, w = torch.randn(5, 8), 0.1 * torch.randn(3, 8)
        >>> exact = analog_mvm(x, w, IOParameters(is_perfect=True))
        >>> torch.allclose(exact, x @ w.T)
        True
        >>> y = analog_mvm(x, w, IOParameters(), torch.Generator().manual_seed(0))
        >>> y.shape, bool((y - exact).abs().max() < 0.5)
        (torch.Size([5, 3]), True)
    """
    return _analog_mvm(x, weight, io, generator, stats=False).out


def analog_mvm_grid(
    x_cols: Sequence[Tensor],
    weights: Sequence[Sequence[Tensor]],
    io: IOParameters,
    generators: Sequence[Sequence[torch.Generator | None]],
    out_scales: Sequence[Sequence[Tensor]],
    offset: Tensor | None = None,
    *,
    parallel: bool = True,
) -> Tensor:
    """Analog MVMs of a grid of crossbars, each scaled, summed along the grid rows.

    Grid row ``r`` gives ``offset[out_r] + Σ_c out_scales[r][c] · analog_mvm(x_cols[c],
    weights[r][c], io, generators[r][c])`` and the rows are concatenated: the same numbers
    in distribution as the separate calls, and the same random draws from each generator
    in the same order (each crossbar's own DAC, noise and ADC). Faster than the separate
    calls: what is deterministic on the input side (noise management, DAC quantization) is
    computed once per grid column, the outputs are only clipped when some value exceeds
    the ADC bound, and each crossbar's digital scaling and the summation are one
    multiply-accumulate.

    Args:
        x_cols: ``[N, in_c]`` inputs of each grid column ``c``.
        weights: ``weights[r][c]``: ``[out_r, in_c]`` matrix of the crossbar at ``(r, c)``.
        io: the IO parameters of every crossbar.
        generators: ``generators[r][c]``: random source of the crossbar at ``(r, c)``.
        out_scales: ``out_scales[r][c]``: digital multiplier of its output, ``[1]`` or
            ``[out_r]``.
        offset: ``[Σ out_r]`` added to the result (e.g. a digital bias), or None.
        parallel: on the CPU, with a generator per crossbar, run the crossbars on
            ``torch.get_num_threads()`` threads of one torch thread each (a grid row per
            thread; for a single row, a crossbar per thread): the same numbers, each
            generator used in the same order as the serial loop.

    Returns:
        ``[N, Σ_r out_r]``.

    Shape:
        ``x_cols[c]``: ``[N, in_c]``, ``weights[r][c]``: ``[out_r, in_c]`` →
        ``[N, Σ out_r]``.

    Example:
        >>> from anatile.config import IOParameters
        >>> w = torch.ones(2, 3)
        >>> analog_mvm_grid([torch.ones(1, 3), torch.ones(1, 3)], [[w, w]],
        ...                 IOParameters(is_perfect=True), [[None, None]],
        ...                 [[torch.ones(1), torch.full((1,), 0.5)]])
        tensor([[4.5000, 4.5000]])
    """
    x0 = x_cols[0]
    n, dtype, device = x0.shape[0], x0.dtype, x0.device
    sizes = [w[0].shape[0] for w in weights]
    result = torch.empty(n, sum(sizes), dtype=dtype, device=device)
    if offset is None:
        result.zero_()
    else:
        result.copy_(offset.reshape(1, -1).expand_as(result))
    perfect = io.is_perfect
    unit = 1.0 if perfect else quantization_step(io.out_res, io.out_bound) or 1.0
    bound = io.out_bound / unit
    shared_dac = not io.inp_sto_round and io.inp_noise == 0
    # per grid column: noise-management scale, the digital factor of each output row
    # (0 for an undriven all-zero row, as analog_mvm) and, when deterministic, the DAC levels
    columns: list[tuple[Tensor, Tensor, Tensor, tuple[Tensor, float] | None]] = []
    for x in x_cols:
        if perfect:
            ones = torch.ones(n, 1, dtype=dtype, device=device)
            columns.append((ones, ones, ones, (x, 1.0)))
            continue
        scale = _raw_noise_management_scale(x, io)
        zero_rows = scale <= 0
        scale.masked_fill_(zero_rows, 1.0)
        inv_scale = scale.reciprocal()
        row_factor = scale * unit
        if io.noise_management != NoiseManagementType.NONE and io.inp_noise == 0:
            row_factor.masked_fill_(zero_rows, 0.0)
        dac = _input_levels(x, inv_scale, io, None) if shared_dac else None
        columns.append((scale, inv_scale, row_factor, dac))
    def tile_output(r: int, c: int) -> tuple[Tensor, Tensor]:
        """Crossbar ``(r, c)``: its ADC output and the factor of its multiply-add."""
        x = x_cols[c]
        scale, inv_scale, row_factor, dac = columns[c]
        weight, generator = weights[r][c], generators[r][c]
        levels, in_mult = dac if dac is not None else _input_levels(x, inv_scale, io,
                                                                      generator)
        if perfect:
            y = levels @ weight.T
        else:
            y = _output_levels(levels, in_mult, weight, io, generator, unit)
            # two reductions tell whether nothing clips (a NaN row makes them NaN:
            # then the rows are checked one by one, as analog_mvm does);
            # vector_norm(y, inf) would be one reduction, but is 20x slower on CPU
            if not bool((y.amax() <= bound) & (y.amin() >= -bound)):
                if io.bound_management == BoundManagementType.ITERATIVE:
                    reduced = _bound_management(x, scale, y, weight, io, generator, unit)
                    row_factor = torch.where(row_factor == 0, row_factor, reduced * unit)
                y.clamp_(-bound, bound)
        s = out_scales[r][c].to(dtype)
        if s.numel() == 1:
            return y, row_factor * s.reshape(())
        return y.mul_(s.reshape(1, -1)), row_factor

    starts = [sum(sizes[:r]) for r in range(len(sizes))]

    def grid_row(r: int) -> None:
        acc = result[:, starts[r]:starts[r] + sizes[r]]
        for c in range(len(x_cols)):
            acc.addcmul_(*tile_output(r, c))

    # the crossbars are independent and each draws from its own generator: on the CPU they
    # can run on several threads (see threads.py) with the numbers of the serial loop, a
    # grid row per job (its own slice of the result), or, for one row, a crossbar per job
    # with the partial sums added here in column order
    rows, cols = len(sizes), len(x_cols)
    workers = 1
    if parallel:
        workers = worker_count(device, rows if rows > 1 else cols,
                               n * (max(sizes) * cols if rows > 1 else sizes[0]))
        if workers > 1 and not distinct_generators([g for row in generators for g in row]):
            workers = 1
    if workers > 1 and rows == 1:  # a crossbar per thread, `workers` outputs alive at once
        for first in range(0, cols, workers):
            jobs = [functools.partial(tile_output, 0, c)
                    for c in range(first, min(first + workers, cols))]
            for y, factor in run_jobs(jobs, workers):
                result.addcmul_(y, factor)
    else:
        run_jobs([functools.partial(grid_row, r) for r in range(rows)], workers)
    return result
