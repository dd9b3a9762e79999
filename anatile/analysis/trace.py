"""The life of one weight: its devices' conductances, ν, read value and effective weight."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from anatile.exceptions import TileError
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["WeightTrace", "WeightTracer", "check_times", "weight_trace"]


def check_times(t_steps: Sequence[float] | float, name: str = "t_steps") -> list[float]:
    """``t_steps`` as a non-empty list of finite times ≥ 0 (s).

    Raises:
        ValueError: naming ``name`` otherwise.
    """
    items: Sequence[float] = [t_steps] if isinstance(t_steps, (int, float)) else t_steps
    try:
        times = [float(t) for t in items]
        if isinstance(t_steps, bool) or any(isinstance(t, bool) for t in items):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a sequence of times in seconds, got {t_steps!r}")\
            from None
    if not times or any(not (math.isfinite(t) and t >= 0) for t in times):
        raise ValueError(f"{name}: expected finite times >= 0 s, got {t_steps!r}")
    return times


@dataclass(frozen=True)
class WeightTrace:
    """Result of :func:`weight_trace` (CPU float64 tensors).

    ``K`` is the number of devices per weight, ``T`` the number of times.

    Attributes:
        row, col: the weight's index in the tile (``[out_size, in_size]``).
        t_steps: the times (s), ``[T]``.
        device_names: converter labels of the devices (``"g+"``, ``"g-"``...), ``[K]``.
        g_target: target conductance of each device (µS), ``[K]``.
        g_programmed: conductance after programming noise (µS), ``[K]``.
        nu: drift exponent of each device, ``[K]``.
        g_drifted: drifted conductance without read noise, ``g_prog·((t+t_0)/t_0)^−ν``
            (µS), ``[T, K]``.
        g_read: conductance read at each time, drift plus 1/f read noise (µS), ``[T, K]``;
            at the tile's own drift time it is the tile's read (:attr:`InferenceTile.g_drifted`).
        alpha: drift compensation factor of the weight's output at each time, ``[T]``.
        weight_target: the target weight (logical units).
        weight_programmed: the weight right after programming (logical units).
        weight_read: the weight the read conductances encode (logical units), ``[T]``.
        weight_effective: ``alpha · weight_read``, what the eval forward pass applies
            (logical units), ``[T]``.
        scale: logical units per normalized unit of this weight's row (mapping and learned
            out scales).

    Example:
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 8, seed=0)
        >>> tile.set_weights(0.1 * torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        >>> tile.program_weights()
        >>> trace = weight_trace(tile, 0, 0, [1.0, 86400.0])
        >>> isinstance(trace, WeightTrace), trace.device_names, trace.g_drifted.shape
        (True, ['g+', 'g-'], torch.Size([2, 2]))
    """

    row: int
    col: int
    t_steps: Tensor
    device_names: list[str]
    g_target: Tensor
    g_programmed: Tensor
    nu: Tensor
    g_drifted: Tensor
    g_read: Tensor
    alpha: Tensor
    weight_target: float
    weight_programmed: float
    weight_read: Tensor
    weight_effective: Tensor
    scale: float

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per time: ``t``, ``alpha``, the read/effective weight and each device's
        drifted and read conductance (``"g+ drifted (µS)"``...), for tables and CSV."""
        rows = []
        for i, t in enumerate(self.t_steps.tolist()):
            row: dict[str, Any] = {
                "t (s)": t,
                "alpha": float(self.alpha[i]),
                "weight read": float(self.weight_read[i]),
                "weight effective": float(self.weight_effective[i]),
                "weight target": self.weight_target,
            }
            for k, name in enumerate(self.device_names):
                row[f"{name} drifted (µS)"] = float(self.g_drifted[i, k])
                row[f"{name} read (µS)"] = float(self.g_read[i, k])
            rows.append(row)
        return rows


def _index(name: str, value: Any, size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise ValueError(f"{name}: expected an int in [0, {size}), got {value!r}")
    return value


@torch.no_grad()
def weight_trace(
    tile: TileWithPeriphery,
    row: int,
    col: int,
    t_steps: Sequence[float] | float,
    *,
    seed: int = 0,
) -> WeightTrace:
    """Target, programmed, drifted and read conductances of every device of one weight.

    Uses the tile's programmed state (its devices and their ν, never re-drawn). At each time
    the drifted conductances are exact, the read noise is drawn from a generator seeded
    with ``seed`` (except at the tile's own drift time, where the tile's read values are
    used), and ``alpha`` is what the tile's drift compensation reads from the whole array
    drifted to that time (:meth:`InferenceTile.compensation_alpha`; the tile's own
    ``alpha`` at its drift time). The tile is not changed.

    Args:
        tile: a programmed :class:`~anatile.tiles.InferenceTile`.
        row: output index (``0 ≤ row < out_size``).
        col: input index (``0 ≤ col < in_size``; the analog bias column is ``in_size``).
        t_steps: inference times (s, finite, ≥ 0).
        seed: seed of the read noise and readouts at the other times.

    Returns:
        :class:`WeightTrace`.

    Raises:
        TypeError: for a tile without PCM devices (a training tile has no conductances,
            drift or ν: inspect its weights with ``get_weights`` instead).
        TileError: if the inference tile has not been programmed yet.
        ValueError: on an index out of range or bad times.

    Example:
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 8, seed=0)
        >>> tile.set_weights(0.1 * torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        >>> tile.program_weights()
        >>> trace = weight_trace(tile, row=1, col=2, t_steps=[1.0, 3600.0, 86400.0], seed=0)
        >>> trace.t_steps.tolist(), trace.weight_effective.shape
        ([1.0, 3600.0, 86400.0], torch.Size([3]))
    """
    return WeightTracer(tile, t_steps, seed=seed).trace(row, col)


class WeightTracer:
    """:func:`weight_trace` for many weights of one tile: the array-wide part done once.

    Each time of a trace needs the whole array drifted with read noise (the read noise of
    one weight is a draw of the array's stream, and the drift compensation ``alpha`` reads
    the whole array). That part does not depend on the weight, so the tracer computes it
    once per tile state and :meth:`trace` only picks the weight out of it: the same numbers
    as :func:`weight_trace` with the same ``seed``. When the tile is programmed or drifted
    again (its conductance buffers change), the next :meth:`trace` recomputes it.

    Args:
        tile: a programmed :class:`~anatile.tiles.InferenceTile`.
        t_steps: inference times (s, finite, ≥ 0).
        seed: seed of the read noise and readouts at the other times.

    Raises:
        TypeError, TileError, ValueError: as :func:`weight_trace`.

    Example:
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 8, seed=0)
        >>> tile.set_weights(0.1 * torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        >>> tile.program_weights()
        >>> tracer = WeightTracer(tile, [1.0, 86400.0], seed=0)
        >>> a, b = tracer.trace(1, 2), weight_trace(tile, 1, 2, [1.0, 86400.0], seed=0)
        >>> bool(torch.equal(a.g_read, b.g_read)), bool(torch.equal(a.alpha, b.alpha))
        (True, True)
    """

    def __init__(self, tile: TileWithPeriphery, t_steps: Sequence[float] | float, *,
                 seed: int = 0) -> None:
        if not isinstance(tile, InferenceTile):
            raise TypeError(
                f"tile: expected a programmed InferenceTile, got {type(tile).__name__}; a "
                "training tile stores weights, not PCM conductances, so it has no "
                "conductance trace"
            )
        self.times = check_times(t_steps)
        if not tile.is_programmed():
            raise TileError("tile: not programmed yet; call tile.program_weights() first")
        self.tile = tile
        self.seed = seed
        self._key: tuple[Any, ...] | None = None
        self._simulated: dict[float, tuple[Tensor, Tensor, Tensor]] = {}

    def _state_key(self) -> tuple[Any, ...]:
        """Identity and in-place version of every buffer the array-wide part reads."""
        tile = self.tile
        buffers = (tile.g_programmed, tile.drift_nu, tile.g_drifted,
                   tile.analog_core.weight, tile.alpha)
        return (tile.t_inference, *((id(b), None if b is None else b._version)
                                    for b in buffers))

    @torch.no_grad()
    def _simulate(self) -> None:
        tile = self.tile
        if not tile.is_programmed():
            raise TileError("tile: not programmed yet; call tile.program_weights() first")
        assert tile.g_programmed is not None and tile.drift_nu is not None
        own = tile.t_inference if tile.g_drifted is not None else None
        others = [t for t in self.times if t != own]
        simulated: dict[float, tuple[Tensor, Tensor, Tensor]] = {}
        if others:
            model = tile.noise_model
            generator = torch.Generator(device=tile.device).manual_seed(self.seed)
            # every other time in one broadcast call (t along a leading dimension)
            t_col = torch.tensor(others, dtype=torch.float64, device=tile.device)
            g_all = model.apply_drift_noise_to_conductance(
                tile.g_programmed, tile.drift_nu, t_col.reshape(-1, 1, 1, 1), generator)
            w_all = model.g_converter.convert_back_to_weights(list(g_all.unbind(1)),
                                                              tile.conversion_params)
            for k, t in enumerate(others):
                weights = w_all[k].to(tile.analog_core.weight.dtype)
                alpha = tile.compensation_alpha(weights, generator=generator)
                simulated[t] = (g_all[k], weights, alpha)
        self._simulated = simulated
        self._key = self._state_key()

    @torch.no_grad()
    def trace(self, row: int, col: int) -> WeightTrace:
        """The :class:`WeightTrace` of weight ``(row, col)`` (as :func:`weight_trace`).

        Raises:
            TileError: if the tile is no longer programmed.
            ValueError: on an index out of range.
        """
        tile = self.tile
        row = _index("row", row, tile.out_size)
        col = _index("col", col, tile.in_size + int(tile.analog_bias))
        if self._key != self._state_key():
            self._simulate()
        assert tile.g_target is not None and tile.g_programmed is not None
        assert tile.drift_nu is not None and tile.programmed_weight is not None
        times = self.times
        model = tile.noise_model
        scales = tile.get_scales()
        scale = (1.0 if scales is None
                 else float(scales.reshape(-1)[row if scales.numel() > 1 else 0]))
        alpha_idx = row if tile.alpha.numel() > 1 else 0
        g_prog, nu = tile.g_programmed, tile.drift_nu
        own = tile.t_inference if tile.g_drifted is not None else None
        t_all = torch.tensor(times, dtype=torch.float64, device=tile.device).reshape(-1, 1)
        g_det = model.replace(read_noise_scale=0.0).apply_drift_noise_to_conductance(
            g_prog[:, row, col], nu[:, row, col], t_all)
        read, alphas, w_read = [], [], []
        for t in times:
            if t == own and tile.g_drifted is not None:
                g_t, weights, alpha = tile.g_drifted, tile.analog_core.weight, tile.alpha
            else:
                g_t, weights, alpha = self._simulated[t]
            read.append(g_t[:, row, col].to("cpu", torch.float64))
            alphas.append(float(alpha.reshape(-1)[alpha_idx]))
            w_read.append(float(weights[row, col]) * scale)
        target = tile.reference_weight
        w_target = float(target[row, col]) * scale if target is not None else math.nan
        w_read_t = torch.tensor(w_read, dtype=torch.float64)
        alpha_t = torch.tensor(alphas, dtype=torch.float64)
        return WeightTrace(
            row=row,
            col=col,
            t_steps=torch.tensor(times, dtype=torch.float64),
            device_names=list(model.g_converter.device_names),
            g_target=tile.g_target[:, row, col].to("cpu", torch.float64),
            g_programmed=g_prog[:, row, col].to("cpu", torch.float64),
            nu=nu[:, row, col].to("cpu", torch.float64),
            g_drifted=g_det.to("cpu", torch.float64),
            g_read=torch.stack(read),
            alpha=alpha_t,
            weight_target=w_target,
            weight_programmed=float(tile.programmed_weight[row, col]) * scale,
            weight_read=w_read_t,
            weight_effective=alpha_t * w_read_t,
            scale=scale,
        )
