"""Inference tile: a tile with periphery whose weights live on PCM devices that drift.

Life cycle (as in aihwkit): ``set_weights`` (the reference), ``program_weights``
(programming noise and the drift exponents ν are drawn **once**, from the reference),
then any number of :meth:`InferenceTile.drift_weights` calls, each reading the devices at
``t_inference`` seconds after programming (drift plus fresh 1/f read noise) starting from
the same programmed state, so a sweep over t shows one chip ageing. Drift compensation
sets ``alpha``, which multiplies the eval-mode output.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from anatile.config.parameters import IOParameters
from anatile.config.rpu_config import InferenceRPUConfig
from anatile.inference.compensation import PerColumnDriftCompensation
from anatile.inference.noise import BaseNoiseModel, ProgrammedState
from anatile.tiles import state as tile_state
from anatile.tiles.device_state import DeviceSlice, InferenceDeviceState, cpu_copy
from anatile.tiles.periphery import TileWithPeriphery
from anatile.tiles.persistence import match_optional_slots
from anatile.tiles.programming import (
    NoiseModelProgramming,
    ProgrammingContext,
    ProgrammingStrategy,
)

__all__ = ["DeviceSlice", "InferenceDeviceState", "InferenceTile"]

_STATE_BUFFERS = ("g_target", "g_programmed", "drift_nu", "g_drifted")


class InferenceTile(TileWithPeriphery):
    """Tile with PCM programming noise, drift, read noise and drift compensation.

    Args:
        out_size: number of outputs.
        in_size: number of inputs.
        rpu_config: an :class:`~anatile.config.InferenceRPUConfig` (default one).
        bias, in_trans, out_trans, seed: as :class:`TileWithPeriphery`.

    Attributes:
        alpha: drift compensation factor(s), buffer ``[1]`` (global) or ``[out_size]``
            (per column); multiplies the output in eval mode.
        drift_baseline: the readout of the compensation taken right after programming.
        g_target: target conductances (µS), buffer ``[n_devices, out_size, in_size (+1)]``
            (None until programmed).
        g_programmed: conductances after programming noise (µS), same shape (None until
            programmed).
        drift_nu: drift exponent of each device, same shape (None until programmed).
        g_drifted: conductances at ``t_inference`` after drift and read noise (µS), same
            shape (None until drifted).
        t_inference: seconds of the last :meth:`drift_weights`, or None.

    Events:
        ``"programmed_noise"`` (data: ``weights``, the programmed normalized weights) and
        ``"drifted"`` (data: ``t_inference``, ``alpha``).

    Raises:
        TypeError: if ``rpu_config`` is not an ``InferenceRPUConfig``.

    Example:
        >>> tile = InferenceTile(3, 4, seed=0)
        >>> tile.set_weights(torch.randn(3, 4))
        >>> tile.program_weights()
        >>> for t in (1.0, 3600.0, 86400.0):
        ...     tile.drift_weights(t)
        >>> float(tile.alpha) > 1.0
        True
    """

    rpu_config: InferenceRPUConfig
    alpha: Tensor
    drift_baseline: Tensor
    g_target: Tensor | None
    g_programmed: Tensor | None
    drift_nu: Tensor | None
    g_drifted: Tensor | None

    def __init__(
        self,
        out_size: int,
        in_size: int,
        rpu_config: InferenceRPUConfig | None = None,
        bias: bool = False,
        in_trans: bool = False,
        out_trans: bool = False,
        *,
        seed: int | None = None,
    ) -> None:
        if rpu_config is None:
            rpu_config = InferenceRPUConfig()
        if not isinstance(rpu_config, InferenceRPUConfig):
            raise TypeError(
                f"rpu_config: expected an InferenceRPUConfig, got {type(rpu_config).__name__}"
            )
        super().__init__(out_size, in_size, rpu_config, bias, in_trans, out_trans, seed=seed)
        n_alpha = (
            self.out_size
            if isinstance(self.rpu_config.drift_compensation, PerColumnDriftCompensation)
            else 1
        )
        self.register_buffer("alpha", torch.ones(n_alpha))
        self.register_buffer("drift_baseline", torch.ones(n_alpha))
        for name in _STATE_BUFFERS:
            self.register_buffer(name, None)
        self.register_buffer("programmed_weight", None)
        self.conversion_params: dict[str, Any] = {}
        self.programmed_noise_model: BaseNoiseModel | None = None
        self.t_inference: float | None = None

    # ------------------------------------------------------------------ state
    @property
    def noise_model(self) -> BaseNoiseModel:
        """The noise model of the last programming, else the one of the config."""
        return self.programmed_noise_model or self.rpu_config.noise_model

    def is_programmed(self) -> bool:
        """Whether :meth:`program_weights` has been called."""
        return self.g_programmed is not None

    def _programmed_state(self) -> ProgrammedState:
        assert self.g_target is not None and self.g_programmed is not None
        assert self.drift_nu is not None and self.programmed_weight is not None
        return ProgrammedState(
            self.g_target,
            self.g_programmed,
            self.drift_nu,
            self.conversion_params,
            self.programmed_weight,
        )

    def _readout(self, generator: torch.Generator) -> Tensor:
        comp = self.rpu_config.drift_compensation
        assert comp is not None
        return comp.read_array(self.analog_core.weight, self.rpu_config.forward, generator)

    def compensation_baseline(
        self,
        weights: Tensor,
        *,
        io: IOParameters | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The drift-compensation baseline a chip programmed to ``weights`` would read.

        The readout :meth:`program_weights` takes right after programming, on ``weights``
        instead of the array. Nothing in the tile changes.

        Args:
            weights: array weights ``[out_size, in_size (+1)]`` (normalized units).
            io: IO parameters of the readout (default ``rpu_config.forward``).
            generator: random source of the readout (default the tile's).

        Returns:
            The baseline (ones without a drift compensation).
        """
        comp = self.rpu_config.drift_compensation
        if comp is None:
            return torch.ones_like(self.drift_baseline)
        return comp.init_baseline(self._readout_of(weights, io, generator))

    def compensation_alpha(
        self,
        weights: Tensor,
        *,
        baseline: Tensor | None = None,
        io: IOParameters | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The ``alpha`` the drift compensation would set if the array held ``weights``.

        Reads the compensation's readout input through the forward IO model on
        ``weights``, as :meth:`drift_weights` does on the array, and divides it into the
        baseline. Nothing in the tile changes.

        Args:
            weights: array weights ``[out_size, in_size (+1)]`` (normalized units).
            baseline: the baseline readout (default the tile's :attr:`drift_baseline`; see
                :meth:`compensation_baseline` for another chip's).
            io: IO parameters of the readout (default ``rpu_config.forward``).
            generator: random source of the readout (default the tile's).

        Returns:
            ``alpha`` shaped like :attr:`alpha` (ones without a drift compensation).
        """
        comp = self.rpu_config.drift_compensation
        if comp is None:
            return torch.ones_like(self.alpha)
        base = self.drift_baseline if baseline is None else baseline
        alpha = comp.apply(self._readout_of(weights, io, generator), base)
        return alpha.expand_as(self.alpha).clone()

    def _readout_of(self, weights: Tensor, io: IOParameters | None,
                    generator: torch.Generator | None) -> Tensor:
        comp = self.rpu_config.drift_compensation
        assert comp is not None
        gen = self.generator if generator is None else generator
        return comp.read_array(weights.to(self.analog_core.weight.dtype),
                               self.rpu_config.forward if io is None else io, gen)

    # ------------------------------------------------------------------ programming
    def set_weights(
        self,
        weight: Tensor,
        bias: Tensor | None = None,
        apply_weight_scaling: bool = True,
        realistic: bool = False,
        weight_scaling_omega: float | None = None,
    ) -> None:
        """Set new reference weights; forgets the programmed state (``alpha`` back to 1).

        As :meth:`TileWithPeriphery.set_weights`; with ``realistic=True`` the weights are
        then programmed with the noise model (:meth:`program_weights`).

        Raises:
            TypeError, ValueError: on bad arguments; the tile is then left unchanged.
        """
        super().set_weights(weight, bias, apply_weight_scaling, False, weight_scaling_omega)
        self._forget_programming()
        if realistic:
            self.program_weights()

    def _forget_programming(self) -> None:
        for name in (*_STATE_BUFFERS, "programmed_weight"):
            setattr(self, name, None)
        self.conversion_params = {}
        self.programmed_noise_model = None
        self.t_inference = None
        self.alpha.fill_(1.0)
        self.drift_baseline.fill_(1.0)

    def default_programming(self) -> ProgrammingStrategy:
        """Inference tiles program through their noise model (:class:`NoiseModelProgramming`).

        ``program_weights(from_reference=True, noise_model=None, *, generator=None)`` then
        programs the weights onto PCM devices: the target (reference weights, else the
        current array weights) is mapped to conductances by the converter, programming
        noise is added and one drift exponent per device is drawn from its target
        conductance. The array then holds the programmed weights, ``alpha`` is reset to 1
        and the drift-compensation baseline is read. A ``noise_model`` given there
        overrides ``rpu_config.noise_model`` and is kept for later drifts; ``generator``
        defaults to the tile's.
        """
        return NoiseModelProgramming()

    def _record_programming(
        self, strategy: ProgrammingStrategy, context: ProgrammingContext, outcome: Any
    ) -> None:
        state: ProgrammedState = outcome
        self.g_target = state.g_target
        self.g_programmed = state.g_prog
        self.drift_nu = state.nu
        self.g_drifted = None
        self.programmed_weight = state.weights.to(self.analog_core.weight.dtype).clone()
        self.conversion_params = dict(state.params)
        self.programmed_noise_model = (
            strategy.noise_model if isinstance(strategy, NoiseModelProgramming) else None
        )
        self.t_inference = None
        self.alpha.fill_(1.0)
        comp = self.rpu_config.drift_compensation
        if comp is not None:
            baseline = comp.init_baseline(self._readout(context.generator))
            self.drift_baseline.copy_(baseline.expand_as(self.drift_baseline))
        if self.events:  # the copy for subscribers only
            self._emit("programmed_noise", weights=self.programmed_weight.clone())

    def drift_weights(
        self, t_inference: float = 0.0, *, generator: torch.Generator | None = None
    ) -> None:
        """Drift the programmed devices to ``t_inference`` and update ``alpha``.

        Each call starts from the programmed state (programming it first if needed), so
        calls with increasing or decreasing times describe the same devices. Fresh read
        noise is drawn each call.

        Args:
            t_inference: seconds since programming (finite, ≥ 0).
            generator: random source (default the tile's ``generator``).

        Raises:
            ValueError: if ``t_inference`` is negative or not finite (nothing changes).
        """
        if isinstance(t_inference, bool) or not isinstance(t_inference, (int, float)):
            raise ValueError(f"t_inference: expected a number of seconds, got {t_inference!r}")
        if not math.isfinite(t_inference) or t_inference < 0:
            raise ValueError(f"t_inference: expected a finite time >= 0 s, got {t_inference!r}")
        gen = self.generator if generator is None else generator
        if not self.is_programmed():
            self.program_weights(generator=gen)
        drifted = self.noise_model.read(self._programmed_state(), float(t_inference), gen)
        # computed by the noise model from the checked programmed state: no NaN/inf pass
        self.analog_core.set_weights(drifted.weights.to(self.analog_core.weight.dtype),
                                     check_values=False)
        self.g_drifted = drifted.g_drift
        self.t_inference = float(t_inference)
        comp = self.rpu_config.drift_compensation
        if comp is not None:
            alpha = comp.apply(self._readout(gen), self.drift_baseline)
            self.alpha.copy_(alpha.expand_as(self.alpha))
        self._emit("drifted", t_inference=self.t_inference, alpha=self.alpha.detach().clone())

    def output_scales(self, is_test: bool = False) -> list[Tensor]:
        """Periphery scales, then (in eval mode) the drift compensation ``alpha``.

        Args:
            is_test: eval mode.

        Returns:
            The factors :meth:`post_forward` multiplies onto the analog output, in order.
        """
        scales = super().output_scales(is_test)
        if is_test and self.rpu_config.drift_compensation is not None:
            scales.append(self.alpha)
        return scales

    def effective_weights(self, apply_weight_scaling: bool = False) -> Tensor:
        """The weights the eval forward pass applies: ``alpha`` times the array weights.

        ``alpha`` is the drift compensation (one value, or one per output), exactly as
        :meth:`post_forward` scales the eval output. No IO noise is involved (use
        :meth:`read_weights` for a realistic read-out).

        Args:
            apply_weight_scaling: also apply the mapping and learned out scales (logical
                weights); default: normalized conductance units, like the array.

        Returns:
            CPU copy ``[out_size, in_size]``.
        """
        weight = self.get_weights(apply_weight_scaling=apply_weight_scaling)[0]
        return weight * self.alpha.detach().to("cpu", weight.dtype).reshape(-1, 1)

    def device_state(self) -> InferenceDeviceState:
        """Snapshot of targets, programmed and drifted conductances and ν (CPU copies).

        Returns:
            :class:`InferenceDeviceState`; ``devices`` is empty before programming.
        """
        converter = self.noise_model.g_converter
        devices: list[DeviceSlice] = []
        if self.is_programmed():
            assert self.g_target is not None and self.g_programmed is not None
            assert self.drift_nu is not None
            for k, name in enumerate(converter.device_names):
                drifted = None if self.g_drifted is None else cpu_copy(self.g_drifted[k])
                devices.append(
                    DeviceSlice(
                        name,
                        self.g_target[k].detach().to("cpu", copy=True),
                        self.g_programmed[k].detach().to("cpu", copy=True),
                        drifted,
                        self.drift_nu[k].detach().to("cpu", copy=True),
                    )
                )
        current = self.analog_core.get_weights().to("cpu")
        return InferenceDeviceState(
            programmed=self.is_programmed(),
            t_inference=self.t_inference,
            alpha=self.alpha.detach().to("cpu", copy=True),
            g_max=converter.g_max,
            g_min=converter.g_min,
            devices=devices,
            reference_weight=cpu_copy(self.reference_weight),
            programmed_weight=cpu_copy(self.programmed_weight),
            current_weight=current,
        )

    # ------------------------------------------------------------------ persistence
    def _apply(self, fn: Any, recurse: bool = True) -> InferenceTile:
        super()._apply(fn, recurse)
        self.conversion_params = {
            k: fn(v) if isinstance(v, Tensor) else v for k, v in self.conversion_params.items()
        }
        return self

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), **tile_state.inference_extra_state(self)}

    def _state_entries(self) -> dict[str, tile_state.Entry]:
        return {**super()._state_entries(), **tile_state.inference_entries(self, _STATE_BUFFERS)}

    def _check_extra_state(self, state: Any) -> None:
        super()._check_extra_state(state)
        tile_state.check_inference_extra_state(state)

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)  # checks all of it (this class's part too) first
        tile_state.apply_inference_extra_state(self, state)

    def _match_slots(self, state_dict: dict[str, Any], prefix: str) -> None:
        super()._match_slots(state_dict, prefix)
        names = (*_STATE_BUFFERS, "programmed_weight")
        match_optional_slots(self, state_dict, prefix, self.device, names, resizable=names)

    def extra_repr(self) -> str:
        state = "programmed" if self.is_programmed() else "not programmed"
        if self.t_inference is not None:
            state += f", t_inference={self.t_inference:g}s"
        return f"{super().extra_repr()}, {state}"
