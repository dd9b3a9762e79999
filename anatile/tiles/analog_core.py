"""The crossbar itself: weights in normalized conductance units and the device model.

:class:`AnalogCore` knows nothing about scales, biases or input ranges: it stores the array
weights (an analog bias column, when used, is simply the last column), the per-device
parameters drawn once at construction, and performs the noisy forward and backward MVMs
and the weight update through :mod:`anatile.functional`. Every random draw uses the
generator its owner passes in.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from anatile.checks import all_finite
from anatile.config.devices import ConstantStepDevice
from anatile.config.parameters import BoundManagementType, IOParameters, PulseType
from anatile.config.rpu_config import RPUConfig
from anatile.exceptions import TileError
from anatile.functional.io_model import MVMResult, analog_mvm, analog_mvm_with_stats
from anatile.functional.pulsed_update import (
    DeviceParameters,
    float_update,
    pulsed_update,
    sample_device_parameters,
)

__all__ = ["AnalogCore"]


class AnalogCore(nn.Module):
    """A crossbar array of resistive devices.

    Args:
        out_size: number of rows (outputs).
        in_size: number of columns (inputs, including an analog bias column if any).
        rpu_config: the (already validated) tile configuration; the core keeps a reference.
        generator: random source for the device-to-device variations.

    Attributes:
        weight: buffer ``[out_size, in_size]`` in normalized conductance units.
        dw_up: per-device up-step buffer ``[out_size, in_size]`` of a
            :class:`~anatile.config.ConstantStepDevice` with pulsed updates (else None).
        dw_down: per-device down-step buffer, as ``dw_up``.
        w_max_device: per-device upper weight bound, as ``dw_up``.
        w_min_device: per-device lower weight bound, as ``dw_up``.

    Shape:
        forward: ``[N, in_size]`` → ``[N, out_size]``; backward: ``[N, out_size]`` →
        ``[N, in_size]``.

    Example:
        >>> from anatile.config import RPUConfig
        >>> core = AnalogCore(2, 3, RPUConfig(), torch.Generator().manual_seed(0))
        >>> core.weight.shape, core.dw_up.shape
        (torch.Size([2, 3]), torch.Size([2, 3]))
        >>> tile = TileWithPeriphery(2, 3, seed=0)
        >>> isinstance(tile.analog_core, AnalogCore)
        True
    """

    weight: Tensor
    dw_up: Tensor | None
    dw_down: Tensor | None
    w_max_device: Tensor | None
    w_min_device: Tensor | None

    def __init__(
        self,
        out_size: int,
        in_size: int,
        rpu_config: RPUConfig,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.out_size = out_size
        self.in_size = in_size
        self.rpu_config = rpu_config
        self.register_buffer("weight", torch.zeros(out_size, in_size))
        params: DeviceParameters | None = None
        if self.uses_pulses:
            assert isinstance(rpu_config.device, ConstantStepDevice)
            params = sample_device_parameters((out_size, in_size), rpu_config.device, generator)
        self.register_buffer("dw_up", None if params is None else params.dw_up)
        self.register_buffer("dw_down", None if params is None else params.dw_down)
        self.register_buffer("w_max_device", None if params is None else params.w_max)
        self.register_buffer("w_min_device", None if params is None else params.w_min)

    @property
    def uses_pulses(self) -> bool:
        """Whether updates are stochastic pulses on a constant-step device (else exact)."""
        return (
            self.rpu_config.update.pulse_type == PulseType.STOCHASTIC_COMPRESSED
            and isinstance(self.rpu_config.device, ConstantStepDevice)
        )

    @property
    def device_parameters(self) -> DeviceParameters | None:
        """The per-device parameters, or None for exact updates."""
        if self.dw_up is None or self.dw_down is None or self.w_max_device is None \
                or self.w_min_device is None:
            return None
        return DeviceParameters(self.dw_up, self.dw_down, self.w_max_device, self.w_min_device)

    _HIDDEN_NAMES = (("max_bound", "w_max_device"), ("min_bound", "w_min_device"),
                     ("dwmin_up", "dw_up"), ("dwmin_down", "dw_down"))

    def get_hidden_parameters(self) -> OrderedDict[str, Tensor]:
        """The per-device parameters under aihwkit's names (copies, ``[out, in]`` each).

        ``max_bound``/``min_bound`` are the weight bounds, ``dwmin_up``/``dwmin_down`` the
        up and down step sizes of each device (the constant-step device's hidden
        parameters that anatile models); empty for exact (non-pulsed) updates.
        """
        params: OrderedDict[str, Tensor] = OrderedDict()
        if self.device_parameters is None:
            return params
        for name, attr in self._HIDDEN_NAMES:
            params[name] = getattr(self, attr).detach().clone()
        return params

    def set_hidden_parameters(self, params: Mapping[str, Tensor]) -> None:
        """Set the per-device parameters from :meth:`get_hidden_parameters`' layout.

        Raises:
            TileError: if the names are not exactly those of :meth:`get_hidden_parameters`.
            ValueError: on a wrong shape or non-finite values (nothing is changed then).
        """
        expected = [name for name, _ in self._HIDDEN_NAMES] \
            if self.device_parameters is not None else []
        if list(params.keys()) != expected:
            raise TileError(f"set_hidden_parameters: expected the names {expected}, got "
                            f"{list(params.keys())}")
        values = []
        for name in expected:
            value = params[name]
            if not isinstance(value, Tensor):
                raise TypeError(f"{name}: expected a tensor, got {type(value).__name__}")
            if tuple(value.shape) != (self.out_size, self.in_size):
                raise ValueError(f"{name}: expected shape {(self.out_size, self.in_size)}, "
                                 f"got {tuple(value.shape)}")
            if not all_finite(value):
                raise ValueError(f"{name}: expected finite values (no NaN/inf)")
            values.append(value)
        for (_, attr), value in zip(self._HIDDEN_NAMES[:len(values)], values, strict=True):
            getattr(self, attr).copy_(value.detach())

    def get_weights(self) -> Tensor:
        """Return a detached copy of the array weights ``[out_size, in_size]`` (same device)."""
        return self.weight.detach().clone()

    def set_weights(self, weight: Tensor, *, check_values: bool = True) -> None:
        """Write the array weights exactly (no scaling, no clipping).

        Args:
            weight: ``[out_size, in_size]`` tensor (copied).
            check_values: test for NaN/inf; the tile passes False for weights anatile
                computed itself from checked inputs (its noise model's programmed and
                drifted weights), which spares a pass over the matrix on every write.

        Raises:
            ValueError: on a wrong shape or (with ``check_values``) non-finite values.
        """
        if tuple(weight.shape) != (self.out_size, self.in_size):
            raise ValueError(f"weight: expected shape {(self.out_size, self.in_size)}, "
                             f"got {tuple(weight.shape)}")
        if check_values and not all_finite(weight):
            raise ValueError("weight: expected finite values (no NaN/inf)")
        self.weight.copy_(weight.detach().to(self.weight.dtype))

    def forward(self, x: Tensor, generator: torch.Generator | None = None,
                io: IOParameters | None = None) -> Tensor:
        """Noisy analog MVM ``x @ weight.T`` with the forward IO model.

        Args:
            x: ``[N, in_size]``.
            generator: random source.
            io: IO parameters (default ``rpu_config.forward``).

        Returns:
            ``[N, out_size]``.
        """
        return analog_mvm(x, self.weight, io or self.rpu_config.forward, generator)

    def forward_with_stats(self, x: Tensor, generator: torch.Generator | None = None,
                           io: IOParameters | None = None) -> MVMResult:
        """Like :meth:`forward` but also returns the output clipping fraction."""
        return analog_mvm_with_stats(x, self.weight, io or self.rpu_config.forward, generator)

    def backward(self, d: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Noisy transposed MVM ``d @ weight`` with the backward IO model.

        Args:
            d: ``[N, out_size]``.
            generator: random source.

        Returns:
            ``[N, in_size]``.
        """
        io = self.rpu_config.backward
        if io.bound_management != BoundManagementType.NONE:
            # as in aihwkit, whose backward pass silently switches bound management off
            io = dataclasses.replace(io, bound_management=BoundManagementType.NONE)
        return analog_mvm(d, self.weight.T, io, generator)

    def update(self, x: Tensor, d: Tensor, learning_rate: float,
               generator: torch.Generator | None = None) -> None:
        """Update ``weight ≈ weight − lr · d.T @ x`` (pulsed or exact, per the config).

        Args:
            x: ``[N, in_size]``.
            d: ``[N, out_size]``.
            learning_rate: positive learning rate.
            generator: random source.
        """
        params = self.device_parameters
        if params is None:
            float_update(self.weight, x.to(self.weight.dtype), d.to(self.weight.dtype),
                         learning_rate)
            return
        device = self.rpu_config.device
        assert isinstance(device, ConstantStepDevice)
        pulsed_update(self.weight, x.to(self.weight.dtype), d.to(self.weight.dtype),
                      learning_rate, params, device, self.rpu_config.update, generator)

    def extra_repr(self) -> str:
        return f"out_size={self.out_size}, in_size={self.in_size}, pulsed={self.uses_pulses}"
