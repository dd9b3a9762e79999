"""Drift compensation: rescale the output so its magnitude does not shrink as PCM drifts.

Protocol (as in aihwkit): right after programming, the tile drives a fixed readout input
(:meth:`BaseDriftCompensation.get_readout_tensor`, the identity) through its array and keeps
``baseline = init_baseline(output)``. After drifting it drives the same input again and sets
``alpha = apply(output, baseline) = readout(baseline output) / readout(output now)``, which
multiplies the eval-mode output.

Example:
    >>> import torch
    >>> comp = GlobalDriftCompensation()
    >>> w = torch.randn(3, 5)
    >>> x = comp.get_readout_tensor(5)
    >>> base = comp.init_baseline(x @ w.T)
    >>> float(comp.apply(x @ (0.5 * w).T, base))
    2.0
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from anatile.config.base import register_config_type
from anatile.config.parameters import BoundManagementType, IOParameters
from anatile.exceptions import ConfigError
from anatile.functional import pcm_formulas as F
from anatile.functional.io_model import analog_mvm
from anatile.inference._serialization import InitFieldsMixin
from anatile.inference.physics import OneHotReadout

__all__ = [
    "BaseDriftCompensation",
    "GlobalDriftCompensation",
    "PerColumnDriftCompensation",
    "identity_readout",
    "one_hot_adc",
    "one_hot_levels",
]

# A readout below this (an all-zero array) gives alpha = 1 instead of a division by zero.
_TINY = 1e-30


class BaseDriftCompensation(InitFieldsMixin):
    """Interface of drift compensations: a readout statistic and the ratio to its baseline.

    Attributes:
        grouping: which outputs share one ``alpha`` when the statistic is the mean
            absolute readout (``"global"``: all; ``"per_column"``: each output column), as
            the batched WPO loss evaluates it; None for any other statistic.

    Example:
        >>> comp = GlobalDriftCompensation()
        >>> ref = torch.tensor([[1.0, -2.0], [0.5, 0.5]])  # readout right after programming
        >>> base = comp.init_baseline(ref)
        >>> comp.apply(0.5 * ref, base)  # the outputs drifted to half: alpha = 2
        tensor(2.)
    """

    _init_fields: ClassVar[tuple[str, ...]] = ()
    grouping: ClassVar[str | None] = None

    def get_readout_tensor(
        self,
        in_size: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """The fixed readout input: the ``in_size × in_size`` identity (one input per row).

        Raises:
            ValueError: if ``in_size`` is not a positive integer.

        Shape:
            output: ``(in_size, in_size)``.
        """
        if isinstance(in_size, bool) or not isinstance(in_size, int) or in_size <= 0:
            raise ValueError(f"in_size: expected a positive integer, got {in_size!r}")
        return torch.eye(in_size, dtype=dtype, device=device)

    @torch.no_grad()
    def read_array(
        self, weight: Tensor, io: IOParameters, generator: torch.Generator | None = None
    ) -> Tensor:
        """The readout input driven through ``weight`` with the forward IO model ``io``.

        ``analog_mvm(get_readout_tensor(in_size), weight, io, generator)``; for the identity
        of this class computed by ``identity_readout`` of this module (elementwise, no GEMM).

        Args:
            weight: array weights ``[out_size, in_size]`` (normalized units).
            io: forward IO parameters of the tile.
            generator: random source of the noise.

        Returns:
            The readout output ``[in_size, out_size]`` (the argument of :meth:`readout`).
        """
        in_size = int(weight.shape[1])
        if type(self).get_readout_tensor is BaseDriftCompensation.get_readout_tensor:
            return identity_readout(weight, io, generator)
        x = self.get_readout_tensor(in_size, weight.dtype, weight.device)
        return analog_mvm(x, weight, io, generator)

    def readout(self, out_tensor: Tensor) -> Tensor:
        """The statistic of the readout output that drift compensation keeps constant."""
        raise NotImplementedError

    @torch.no_grad()
    def init_baseline(self, forward_output: Tensor) -> Tensor:
        """Baseline readout from the output of the readout input right after programming.

        Args:
            forward_output: output of :meth:`get_readout_tensor` through the array,
                ``(in_size, out_size)``.

        Returns:
            The baseline (a scalar or one value per column).
        """
        return self.readout(forward_output).detach().clone()

    @torch.no_grad()
    def apply(self, forward_output: Tensor, drift_baseline: Tensor) -> Tensor:
        """``alpha = baseline / readout(forward_output)`` (1 where the readout is 0).

        Args:
            forward_output: output of the readout input through the drifted array.
            drift_baseline: from :meth:`init_baseline`.

        Returns:
            The compensation factor(s) ``alpha`` to multiply onto the output.
        """
        now = self.readout(forward_output)
        base = drift_baseline.to(dtype=now.dtype, device=now.device)
        ok = now.abs() > _TINY
        return torch.where(
            ok, base / torch.where(ok, now, torch.ones_like(now)), torch.ones_like(now)
        )


@torch.no_grad()
def identity_readout(
    weight: Tensor, io: IOParameters, generator: torch.Generator | None = None
) -> Tensor:
    """``analog_mvm(eye(in_size), weight, io, generator)``, without the ``in_size³`` GEMM.

    Each one-hot input row reads one weight per output: the DAC turns its 1 into the
    amplitude of :class:`~anatile.inference.physics.OneHotReadout`, the output is
    ``amplitude·w`` plus Gaussian output noise, rounded onto the ADC steps and clipped
    (:func:`~anatile.functional.pcm_formulas.readout_level` and ``adc``, the formulas the
    batched WPO loss evaluates too). The output noise is drawn as the MVM draws it (one
    normal per output, in the same order), so for the same generator state the result
    equals the MVM's but where ``amplitude·w`` rounds differently in its last bit at an ADC
    tie (one step, at a rate of order 1e-7 per output). With weight noise its normal is
    folded into the output noise's (the same distribution, one draw fewer).

    The MVM itself is used where this model does not hold: input noise or stochastic
    rounding, no generator, or iterative bound management redoing a row (an output beyond
    the ADC bound; the generator is then rewound, so the result is the MVM's exactly).

    Args:
        weight: array weights ``[out_size, in_size]``.
        io: forward IO parameters.
        generator: random source.

    Returns:
        ``[in_size, out_size]``.
    """
    in_size = int(weight.shape[1])
    if io.is_perfect:
        return weight.T.contiguous()  # eye @ weight.T adds exact zeros: the same values
    try:
        model = OneHotReadout.from_io(io)
    except ConfigError:  # input noise or stochastic rounding: not a one-hot readout
        model = None
    if model is None or generator is None:
        eye = torch.eye(in_size, dtype=weight.dtype, device=weight.device)
        return analog_mvm(eye, weight, io, generator)
    iterative = io.bound_management == BoundManagementType.ITERATIVE
    state = generator.get_state() if iterative else None
    # one transposed copy, so that every elementwise step below runs on contiguous memory
    # (on a transposed view they are several times slower) and the output is laid out as
    # the MVM's
    w = weight.T.contiguous()
    z: Tensor | float = 0.0
    if model.noise_std > 0:
        z = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
    out = one_hot_adc(one_hot_levels(w, model, z), model, check_bound=iterative, out=True)
    if out is None:  # a row the MVM would redo
        assert state is not None
        generator.set_state(state)
        eye = torch.eye(in_size, dtype=weight.dtype, device=weight.device)
        return analog_mvm(eye, weight, io, generator)
    return out


@torch.no_grad()
def one_hot_levels(weight_t: Tensor, model: OneHotReadout, noise: Tensor | float) -> Tensor:
    """The one-hot readout of :func:`identity_readout` in ADC steps, before the ADC clips:
    ``rint((amplitude·w + noise_std·z) / step)`` (no rounding without output quantization),
    with the standard normal ``noise`` drawn by the caller.

    :func:`identity_readout` draws the noise from its generator; an evaluator that reads
    many weight states with one draw (common random numbers, the error budget) passes it
    to all of them, and IO variants that differ only in their bound share these levels
    (:func:`one_hot_adc` clips them).

    Args:
        weight_t: transposed array weights ``[..., in_size, out_size]`` (contiguous for
            speed).
        model: the readout of the forward IO model (:meth:`OneHotReadout.from_io`).
        noise: standard normals broadcastable to ``weight_t`` (``0.0`` when
            ``model.noise_std`` is 0).

    Returns:
        A new tensor shaped like ``weight_t``.

    Example:
        >>> model = OneHotReadout(amplitude=1.0, noise_std=0.0, step=0.5, bound=1.0)
        >>> one_hot_levels(torch.tensor([[0.2, 0.4], [-0.9, 3.0]]), model, 0.0).tolist()
        [[0.0, 1.0], [-2.0, 6.0]]
    """
    inv_step = 1.0 / model.step if model.step > 0 else 1.0
    level = F.readout_level(weight_t, model.amplitude, model.noise_std, noise, inv_step)
    return level.round_() if model.step > 0 else level


@torch.no_grad()
def one_hot_adc(
    levels: Tensor, model: OneHotReadout, *, check_bound: bool = False, out: bool = False
) -> Tensor | None:
    """The ADC outputs of the one-hot readout from its :func:`one_hot_levels`: clipped at
    the ADC bound and scaled back by the step.

    Args:
        levels: from :func:`one_hot_levels` (of a model with the same step).
        model: the readout of the forward IO model (its ``bound`` and ``step``).
        check_bound: iterative bound management: return None if any level lies beyond
            the ADC bound (the MVM would redo that row; the caller then runs the MVM).
        out: write the result into ``levels`` (else ``levels`` is left as it is).

    Returns:
        The outputs, shaped like ``levels``, or None (see ``check_bound``).

    Example:
        >>> model = OneHotReadout(amplitude=1.0, noise_std=0.0, step=0.5, bound=1.0)
        >>> levels = one_hot_levels(torch.tensor([[0.2, 0.4], [-0.9, 3.0]]), model, 0.0)
        >>> one_hot_adc(levels, model).tolist()
        [[0.0, 0.5], [-1.0, 1.0]]
        >>> one_hot_adc(levels, model, check_bound=True) is None
        True
    """
    inv_step = 1.0 / model.step if model.step > 0 else 1.0
    bound = model.bound * inv_step  # in ADC steps (the MVM's units)
    if check_bound:
        low, high = torch.aminmax(levels)
        if float(high) > bound or float(low) < -bound:
            return None
    level = levels.clamp_(-bound, bound) if out else levels.clamp(-bound, bound)
    return level.mul_(model.step) if model.step > 0 else level


@register_config_type
class GlobalDriftCompensation(BaseDriftCompensation):
    """One factor for the whole tile; the readout is the mean absolute output.

    Shape:
        ``readout``: ``(in_size, out_size)`` → scalar tensor.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import GlobalDriftCompensation
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 8, rpu_config=InferenceRPUConfig(
        ...     drift_compensation=GlobalDriftCompensation()), seed=0)
        >>> tile.set_weights(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        >>> tile.program_weights(); tile.drift_weights(86400.0)
        >>> tile.alpha.shape, bool(tile.alpha > 1)  # one gain for the tile, undoing the decay
        (torch.Size([1]), True)
    """

    grouping: ClassVar[str | None] = "global"

    def readout(self, out_tensor: Tensor) -> Tensor:
        return out_tensor.abs().mean()


@register_config_type
class PerColumnDriftCompensation(BaseDriftCompensation):
    """One factor per output column; the readout is the mean absolute output per column.

    Shape:
        ``readout``: ``(in_size, out_size)`` → ``(out_size,)``.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import PerColumnDriftCompensation
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 8, rpu_config=InferenceRPUConfig(
        ...     drift_compensation=PerColumnDriftCompensation()), seed=0)
        >>> tile.set_weights(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        >>> tile.program_weights(); tile.drift_weights(86400.0)
        >>> tile.alpha.shape  # one gain per output
        torch.Size([4])
    """

    grouping: ClassVar[str | None] = "per_column"

    def readout(self, out_tensor: Tensor) -> Tensor:
        return out_tensor.abs().reshape(-1, out_tensor.shape[-1]).mean(dim=0)
