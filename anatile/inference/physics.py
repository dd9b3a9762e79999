"""Typed descriptions of the inference physics, handed from a noise model to an evaluator.

A noise model describes itself with :meth:`~anatile.inference.BaseNoiseModel.physics`
(a :class:`PCMPhysics`); the batched WPO loss and its kernels evaluate the formulas of
:mod:`anatile.functional.pcm_formulas` with those parameters. Nothing here inspects class
names or probes attributes: a model that has no such description raises
``NotImplementedError`` from ``physics()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from anatile.config.parameters import IOParameters
from anatile.exceptions import ConfigError
from anatile.functional import pcm_formulas as F
from anatile.functional.io_model import quantization_step
from anatile.functional.pcm import (
    DEFAULT_PROG_COEFF,
    PROG_COEFF_G_MAX_REFERENCE,
    interpolate_custom_pair,
)

__all__ = ["OneHotReadout", "PCMPhysics"]


@dataclass(frozen=True)
class PCMPhysics:
    """The parameters of a PCM-like noise model (every field required but the drift table).

    Attributes:
        g_max: conductance (µS) that the noise statistics are relative to.
        prog_coeff: programming-noise polynomial (µS), lowest order first.
        g_max_reference: ``g_max`` at which ``prog_coeff`` was fitted (µS).
        prog_noise_scale: multiplier of the programming noise.
        read_noise_scale: multiplier of the read noise.
        drift_scale: multiplier of the drift exponent.
        t_0: drift reference time (s).
        t_read: read duration (s).
        custom_drift: ``(g_lst, nu_mean_lst, nu_std_lst)`` of a measured drift model (ν
            statistics interpolated over g, ends held), or None for the PCM formulas.

    Example:
        >>> PCMPhysics(g_max=25.0).prog_noise_factor
        1.0
    """

    g_max: float
    prog_coeff: tuple[float, ...] = DEFAULT_PROG_COEFF
    g_max_reference: float = PROG_COEFF_G_MAX_REFERENCE
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    t_0: float = 20.0
    t_read: float = 250e-9
    custom_drift: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]] | None = None

    @property
    def prog_noise_factor(self) -> float:
        """``g_max / g_max_reference · prog_noise_scale``, the ``factor`` of
        :func:`~anatile.functional.pcm_formulas.prog_noise_std`."""
        return self.g_max / self.g_max_reference * self.prog_noise_scale

    def drift_log_ratio(self, t: float) -> float:
        """``ln((t + t_0)/t_0)`` at time ``t`` (s)."""
        return float(F.drift_log_ratio(torch.tensor(float(t), dtype=torch.float64), self.t_0))

    def read_amplitude(self, t: float) -> float:
        """``read_noise_scale · sqrt(ln((t + t_0 + t_read)/(2·t_read)))`` at time ``t``."""
        factor = F.read_time_factor(torch.tensor(float(t), dtype=torch.float64), self.t_0,
                                    self.t_read)
        return float(factor) * self.read_noise_scale

    def nu_stats(self, g_target: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of ν (before ``drift_scale``) at ``g_target``."""
        if self.custom_drift is None:
            log_rel = F.log_relative(g_target, self.g_max)
            return F.nu_mean(log_rel), F.nu_std(log_rel)
        g = g_target if g_target.is_floating_point() else g_target.float()
        g_lst, mean_lst, std_lst = self.custom_drift
        grid = torch.tensor(g_lst, dtype=g.dtype, device=g.device)
        table = torch.tensor([mean_lst, std_lst], dtype=g.dtype, device=g.device)
        stats = interpolate_custom_pair(g.reshape(-1), grid, table).to(g.dtype)
        return stats[0].reshape(g.shape), stats[1].reshape(g.shape)


@dataclass(frozen=True)
class OneHotReadout:
    """The drift-compensation readout of a tile through its forward IO model.

    The readout drives the identity (one input row per array row) through the tile: with
    noise management each one-hot row is its own scale, the DAC turns its 1 into
    :attr:`amplitude`, and each output is ``amplitude·w`` (``w`` the array weight) plus
    Gaussian output noise, rounded onto the ADC steps and clipped at ``±bound`` — the
    conventions of :func:`anatile.functional.io_model.analog_mvm`
    (:func:`~anatile.functional.io_model.quantization_step` included).

    Attributes:
        amplitude: the DAC value of the one-hot input.
        noise_std: standard deviation of the output noise (output noise and, for a one-hot
            input, weight noise combined).
        step: ADC step (0: no output quantization).
        bound: ADC bound.
    """

    amplitude: float
    noise_std: float
    step: float
    bound: float

    @classmethod
    def from_io(cls, io: IOParameters) -> OneHotReadout | None:
        """The readout of a forward IO model, or None when it is perfect (exact readout).

        Raises:
            ConfigError: for what the one-hot readout model does not represent: input
                noise (it couples the inputs) and stochastic rounding.
        """
        if io.is_perfect:
            return None
        for name in ("inp_noise",):
            if getattr(io, name) != 0:
                raise ConfigError(f"IOParameters.{name}: the batched WPO readout model needs "
                                  f"{name} = 0; use vectorized=False")
        for name in ("inp_sto_round", "out_sto_round"):
            if getattr(io, name):
                raise ConfigError(f"IOParameters.{name}: the batched WPO readout model needs "
                                  f"deterministic rounding; use vectorized=False")
        inp_step = quantization_step(io.inp_res, io.inp_bound)
        if inp_step > 0:
            level = min(float(round(1.0 / inp_step)), io.inp_bound / inp_step)
            amplitude = level * inp_step
        else:
            amplitude = min(1.0, io.inp_bound)
        return cls(
            amplitude=amplitude,
            noise_std=math.hypot(io.out_noise, io.w_noise * amplitude),
            step=quantization_step(io.out_res, io.out_bound),
            bound=float(io.out_bound),
        )
