"""Snapshots of an inference tile's devices for views (``InferenceTile.device_state()``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["DeviceSlice", "InferenceDeviceState", "cpu_copy"]


@dataclass(frozen=True)
class DeviceSlice:
    """One device of every cross-point (e.g. the ``g+`` of the first pair), CPU copies.

    Attributes:
        name: label from the converter (``"g+"``, ``"g-[1]"``, ``"g"``...).
        target: target conductances ``[out_size, in_size (+1)]`` (µS).
        programmed: conductances after programming noise (µS).
        drifted: conductances read at the last ``drift_weights`` time (µS), or None.
        nu: drift exponents.

    Example:
        >>> tile = InferenceTile(2, 3, seed=0)
        >>> tile.set_weights(0.1 * torch.ones(2, 3))
        >>> tile.program_weights()
        >>> first = tile.device_state().devices[0]
        >>> isinstance(first, DeviceSlice), first.programmed.shape
        (True, torch.Size([2, 3]))
    """

    name: str
    target: Tensor
    programmed: Tensor
    drifted: Tensor | None
    nu: Tensor


@dataclass(frozen=True)
class InferenceDeviceState:
    """Snapshot of an inference tile's devices for views.

    Returned by :meth:`~anatile.tiles.InferenceTile.device_state`.

    Attributes:
        programmed: whether the tile's ``program_weights()`` has run.
        t_inference: time of the last drift (s), or None.
        alpha: drift compensation factor(s) (``[1]`` global or ``[out_size]``).
        g_max: maximal conductance of the converter (µS).
        g_min: minimal conductance of the converter (µS).
        devices: one :class:`DeviceSlice` per device (empty before programming).
        reference_weight: the target weights (normalized units) or None.
        programmed_weight: the weights right after programming, or None.
        current_weight: the weights now on the array (drifted, if drifted).

    Example:
        >>> tile = InferenceTile(2, 3, seed=0)
        >>> tile.set_weights(0.1 * torch.ones(2, 3))
        >>> tile.program_weights()
        >>> tile.drift_weights(3600.0)
        >>> state = tile.device_state()
        >>> state.programmed, state.t_inference, len(state.devices) > 0
        (True, 3600.0, True)
    """

    programmed: bool
    t_inference: float | None
    alpha: Tensor
    g_max: float
    g_min: float
    devices: list[DeviceSlice]
    reference_weight: Tensor | None
    programmed_weight: Tensor | None
    current_weight: Tensor


def cpu_copy(t: Tensor | None) -> Tensor | None:
    """A detached CPU copy of ``t`` (None stays None)."""
    return None if t is None else t.detach().to("cpu", copy=True)
