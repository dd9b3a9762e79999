"""Conductance converters: how a weight is stored on one device, one pair or N pairs.

A converter maps a weight tensor to a list of conductance tensors (µS), one per device, plus
a ``params`` dictionary with what the inverse needs (the weight-to-µS ``scale_ratio``), and
back. The mapping is deterministic; the noise models add the physics on the conductances.

Why this module is over 400 lines and not split: it is one small class hierarchy (the base
contract, the N-pair family with its single- and dual-pair presets, the custom pair and the
single device), each class a page of mapping code plus its argument checks; the classes
share the private checks at the top and the N-pair presets subclass each other, so one file
per converter would scatter one concept (how a weight becomes conductances) over five
modules that import each other's helpers.

Example:
    >>> import torch
    >>> conv = SinglePairConductanceConverter(g_max=25.0)
    >>> (g_plus, g_minus), params = conv.convert_to_conductances(torch.tensor([0.5, -1.0]))
    >>> g_plus.tolist(), g_minus.tolist()
    ([12.5, 0.0], [0.0, 25.0])
    >>> conv.convert_back_to_weights([g_plus, g_minus], params).tolist()
    [0.5, -1.0]
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from anatile.checks import check_float_list, check_non_negative, check_positive, check_tensor
from anatile.config.base import register_config_type
from anatile.functional.pcm import interpolate_custom_pair
from anatile.inference._serialization import InitFieldsMixin

__all__ = [
    "BaseConductanceConverter",
    "CustomPairConductanceConverter",
    "DualPairConductanceConverter",
    "NPairConductanceConverter",
    "SingleDeviceConductanceConverter",
    "SinglePairConductanceConverter",
]

# max|W| below this is treated as this, so an all-zero matrix maps to g_min everywhere.
_ZERO_CLIP = 1e-7


def _check_weights(weights: Any) -> Tensor:
    check_tensor("weights", weights)
    if weights.numel() == 0:
        raise ValueError("weights: expected a non-empty tensor")
    return weights


def _check_range(
    g_max: Any, g_min: Any, default_max: float, default_min: float
) -> tuple[float, float]:
    g_max = default_max if g_max is None else check_positive("g_max", g_max)
    g_min = default_min if g_min is None else check_non_negative("g_min", g_min)
    if g_min >= g_max:
        raise ValueError(f"g_min: expected g_min < g_max, got g_min={g_min}, g_max={g_max}")
    return g_max, g_min


def _check_conductances(conductances: Any, n_devices: int) -> list[Tensor]:
    if isinstance(conductances, Tensor):
        conductances = list(conductances) if n_devices > 1 else [conductances]
    if not isinstance(conductances, (list, tuple)) or len(conductances) != n_devices:
        got = len(conductances) if isinstance(conductances, (list, tuple)) else conductances
        raise ValueError(f"conductances: expected a list of {n_devices} tensors, got {got!r}")
    for i, g in enumerate(conductances):
        check_tensor(f"conductances[{i}]", g)
    return list(conductances)


def _param(params: dict[str, Any], key: str) -> Any:
    if not isinstance(params, dict) or key not in params:
        raise ValueError(f"params: expected the dict returned by the conversion, missing {key!r}")
    value = params[key]
    # A Python float is much faster than a 0-dim tensor in elementwise ops on the CPU.
    if isinstance(value, Tensor) and value.numel() == 1:
        return float(value)
    return value


def _as_param(value: float, like: Tensor) -> Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def _pairs_to_weights(gs: list[Tensor], f_lst: list[float], scale_ratio: Any) -> Tensor:
    """``Σ_k f_k · (g+_k − g−_k) / scale_ratio``, the way back of every pair converter.

    Written as ``((0 + f_0·d_0) + f_1·d_1 + ...) / scale_ratio`` with the exact no-ops (the
    leading ``0 +``, a factor 1) skipped, so the result is bit-identical to that sum.
    """
    w_us: Tensor | None = None
    for k, f in enumerate(f_lst):
        diff = torch.sub(gs[2 * k], gs[2 * k + 1])
        if f != 1.0:
            diff.mul_(f)
        w_us = diff if w_us is None else w_us.add_(diff)
    assert w_us is not None
    return w_us.div_(scale_ratio)


#: (public method, its unchecked counterpart) of the converters; see __init_subclass__.
_ROUTES = (("convert_to_conductances", "_to_conductances"),
           ("convert_back_to_weights", "_to_weights"))


class BaseConductanceConverter(InitFieldsMixin):
    """Interface of all converters.

    Attributes:
        g_max: maximal conductance (µS).
        g_min: minimal conductance (µS); the logical zero of a pair.

    Example:
        >>> conv = SinglePairConductanceConverter(g_max=25.0)
        >>> isinstance(conv, BaseConductanceConverter), conv.device_names
        (True, ['g+', 'g-'])
        >>> w = torch.tensor([-1.0, 0.0, 0.5])
        >>> gs, params = conv.convert_to_conductances(w)
        >>> torch.allclose(conv.convert_back_to_weights(gs, params), w)
        True
    """

    g_max: float
    g_min: float

    @property
    def n_devices(self) -> int:
        """Number of devices (conductance tensors) per weight."""
        raise NotImplementedError

    @property
    def device_names(self) -> list[str]:
        """A short label per device, in the order of the conductance list (for plots)."""
        if self.n_devices == 1:
            return ["g"]
        pairs = self.n_devices // 2
        names = []
        for k in range(pairs):
            suffix = "" if pairs == 1 else f"[{k}]"
            names += [f"g+{suffix}", f"g-{suffix}"]
        return names

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A converter that overrides a public method (as aihwkit's are written) but not its
        # unchecked counterpart gets that counterpart routed back to its public method, so
        # the noise models' path runs the override (with its checks). The public methods of
        # the converters here name their class's unchecked method, so an override that calls
        # super() does not come back to itself.
        for public, private in _ROUTES:
            if public in cls.__dict__ and private not in cls.__dict__:
                setattr(cls, private, getattr(BaseConductanceConverter, private))

    def device_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict[str, Any]]:
        """:meth:`convert_to_conductances` with the conductances always as a list.

        (:class:`SingleDeviceConductanceConverter` returns one tensor, as in aihwkit.)

        Raises:
            TypeError, ValueError: as :meth:`convert_to_conductances`.
        """
        return self._to_conductances(_check_weights(weights))

    # The unchecked mapping, for weights and conductances anatile checked or computed
    # itself (a noise model's program/read): the public methods check their arguments and
    # call these. The base versions call the public methods of a converter that defines
    # only those (see __init_subclass__).
    def _to_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict[str, Any]]:
        conductances, params = self.convert_to_conductances(weights)
        return _check_conductances(conductances, self.n_devices), params

    def _to_weights(self, conductances: list[Tensor], params: dict[str, Any]) -> Tensor:
        return self.convert_back_to_weights(conductances, params)

    def convert_to_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict[str, Any]]:
        """Map weights to conductances.

        Args:
            weights: weights of any shape (finite, floating point).

        Returns:
            ``(conductances, params)``: one tensor per device, each shaped like ``weights``
            (µS), and the parameters :meth:`convert_back_to_weights` needs.

        Raises:
            TypeError: if ``weights`` is not a floating-point tensor.
            ValueError: if ``weights`` is empty or holds NaN/inf.
        """
        raise NotImplementedError

    def convert_back_to_weights(self, conductances: list[Tensor], params: dict[str, Any]) -> Tensor:
        """Map conductances back to weights.

        Args:
            conductances: one tensor per device, as returned by the forward conversion
                (possibly noisy or drifted).
            params: the dictionary returned by :meth:`convert_to_conductances`.

        Returns:
            Weights shaped like each conductance tensor.

        Raises:
            ValueError: on a wrong number of tensors or incomplete ``params``.
        """
        raise NotImplementedError


@register_config_type
class NPairConductanceConverter(BaseConductanceConverter):
    """N differential pairs per weight with significance factors ``f_lst``.

    A weight ``w`` becomes ``w_µS = w · scale_ratio`` with
    ``scale_ratio = Σ f · (g_max − g_min) / max|W|``. The pairs are filled in list order
    (``f_lst`` runs from the least to the most significant pair): pair ``k`` holds
    ``clamp((|w_µS| − L_k) / f_k, 0, g_max − g_min) + g_min`` on its positive device
    (negative device for ``w < 0``; the other device sits at ``g_min``), where ``L_k`` is the
    µS range of the pairs before it. Back: ``Σ f_k · (g+_k − g−_k) / scale_ratio``.

    Args:
        f_lst: significance factors, least significant first (positive numbers).
        g_max: maximal conductance in µS (default 25).
        g_min: minimal conductance in µS (default 0).

    Raises:
        ValueError: on an empty or non-positive ``f_lst``, ``g_min < 0`` or ``g_min ≥ g_max``.

    Example:
        >>> conv = NPairConductanceConverter([1.0, 3.0])
        >>> gs, params = conv.convert_to_conductances(torch.tensor([0.1, -1.0]))
        >>> [round(g[0].item(), 3) for g in gs]
        [10.0, 0.0, 0.0, 0.0]
    """

    _init_fields: ClassVar[tuple[str, ...]] = ("f_lst", "g_max", "g_min")
    _n_pairs: ClassVar[int | None] = None

    def __init__(
        self,
        f_lst: list[float] | None = None,
        g_max: float | None = None,
        g_min: float | None = None,
    ) -> None:
        f = [1.0] if f_lst is None else check_float_list("f_lst", f_lst)
        if self._n_pairs is not None and len(f) != self._n_pairs:
            raise ValueError(
                f"f_lst: {type(self).__name__} expects exactly {self._n_pairs} factors, "
                f"got {len(f)}"
            )
        if any(v <= 0 for v in f):
            raise ValueError(f"f_lst: expected positive factors, got {f}")
        self.f_lst = f
        self.g_max, self.g_min = _check_range(g_max, g_min, 25.0, 0.0)

    @property
    def n_devices(self) -> int:
        return 2 * len(self.f_lst)

    @torch.no_grad()
    def convert_to_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict[str, Any]]:
        return NPairConductanceConverter._to_conductances(self, _check_weights(weights))

    @torch.no_grad()
    def convert_back_to_weights(self, conductances: list[Tensor], params: dict[str, Any]) -> Tensor:
        gs = _check_conductances(conductances, self.n_devices)
        return NPairConductanceConverter._to_weights(self, gs, params)

    @torch.no_grad()
    def _to_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict[str, Any]]:
        g_span = self.g_max - self.g_min
        abs_max = max(float(weights.abs().max()), _ZERO_CLIP)
        scale_ratio = sum(self.f_lst) * g_span / abs_max
        w_us = weights * scale_ratio
        conductances: list[Tensor] = []
        lower = 0.0
        for f in self.f_lst:
            for sign in (1.0, -1.0):
                # clamp((±w_µS − lower) / f, 0, g_span) + g_min, skipping the steps that
                # are exact no-ops (lower = 0, f = 1, g_min = 0: the first pair's usual case)
                part = w_us if sign > 0 else torch.neg(w_us)
                if lower != 0.0:
                    part = part - lower
                if f != 1.0:
                    part = part / f
                part = part.clamp(0.0, g_span) if part is w_us else part.clamp_(0.0, g_span)
                if self.g_min != 0.0:
                    part.add_(self.g_min)
                conductances.append(part)
            lower += f * g_span
        params = {"scale_ratio": _as_param(scale_ratio, weights), "f_lst": list(self.f_lst)}
        return conductances, params

    @torch.no_grad()
    def _to_weights(self, conductances: list[Tensor], params: dict[str, Any]) -> Tensor:
        scale_ratio = _param(params, "scale_ratio")
        return _pairs_to_weights(conductances, self.f_lst, scale_ratio)


@register_config_type
class SinglePairConductanceConverter(NPairConductanceConverter):
    """One differential pair per weight: ``g± = clamp(±W · scale, 0, g_max) + g_min``.

    ``scale = (g_max − g_min) / max|W|``; back: ``(g+ − g−) / scale``. This is
    :class:`NPairConductanceConverter` with ``f_lst=[1]``.

    Args:
        g_max: maximal conductance in µS (default 25).
        g_min: minimal conductance in µS (default 0).

    Raises:
        ValueError: if ``g_min < 0`` or ``g_min ≥ g_max``.

    Example:
        >>> from anatile.inference import SinglePairConductanceConverter
        >>> conv = SinglePairConductanceConverter()  # g_max 25 µS
        >>> (g_plus, g_minus), params = conv.convert_to_conductances(torch.tensor([0.5, -1.0]))
        >>> g_plus.tolist(), g_minus.tolist()
        ([12.5, 0.0], [0.0, 25.0])
        >>> conv.convert_back_to_weights([g_plus, g_minus], params).tolist()
        [0.5, -1.0]
    """

    _init_fields: ClassVar[tuple[str, ...]] = ("g_max", "g_min")

    def __init__(self, g_max: float | None = None, g_min: float | None = None) -> None:
        super().__init__([1.0], g_max, g_min)


@register_config_type
class DualPairConductanceConverter(NPairConductanceConverter):
    """Two differential pairs per weight (``f_lst`` must hold exactly 2 factors).

    See :class:`NPairConductanceConverter` for the mapping; e.g. ``f_lst=[1, 3]`` keeps small
    weights on the less significant pair only.

    Raises:
        ValueError: if ``f_lst`` does not hold exactly 2 positive factors, or on a bad range.

    Example:
        >>> from anatile.inference import DualPairConductanceConverter
        >>> conv = DualPairConductanceConverter(f_lst=[1.0, 3.0])
        >>> gs, params = conv.convert_to_conductances(torch.tensor([0.1, 1.0]))
        >>> [round(float(g[1]), 2) for g in gs]  # the largest weight fills both pairs
        [25.0, 0.0, 25.0, 0.0]
    """

    _n_pairs = 2

    def __init__(
        self, f_lst: list[float], g_max: float | None = None, g_min: float | None = None
    ) -> None:
        super().__init__(f_lst, g_max, g_min)


@register_config_type
class CustomPairConductanceConverter(BaseConductanceConverter):
    """Arbitrary programming strategy given as a table of conductances per device.

    ``g_lst`` holds ``2 · len(f_lst)`` lists of equal length ``n ≥ 2``, ordered
    ``[g+_0, g−_0, g+_1, g−_1, ...]``: the conductance (µS) of each device at ``n`` weights
    evenly spaced over ``[−max|W|, max|W|]``; weights in between interpolate linearly. The
    µS value of grid point ``j`` is ``Σ f_k (g+_k[j] − g−_k[j])`` and
    ``scale_ratio = max_j |µS_j| / max|W|``. This is what the Weight Programming Optimizer
    produces.

    Args:
        f_lst: significance factor of each pair.
        g_lst: ``2 · len(f_lst)`` lists of ``n`` conductances (µS, within ``[g_min, g_max]``).
        g_max: maximal conductance in µS (default 25).
        g_min: minimal conductance in µS (default 0).
        invertibility_test: check at construction that convert → back returns the weights.

    Raises:
        ValueError: on bad list shapes, conductances outside ``[g_min, g_max]`` or
            non-finite, a table whose µS values are all 0, or a bad ``g_min``/``g_max``.
        ArithmeticError: if ``invertibility_test`` and the table is not invertible (the µS
            value is not linear in the grid weight).

    Example:
        >>> from anatile.inference import CustomPairConductanceConverter
        >>> # g+ and g- at three weights: -max|W|, 0, max|W|
        >>> conv = CustomPairConductanceConverter(f_lst=[1.0], g_lst=[[0, 0, 25.0], [25.0, 0, 0]])
        >>> gs, params = conv.convert_to_conductances(torch.tensor([-1.0, -0.5, 0.5, 1.0]))
        >>> [g.tolist() for g in gs]  # the table spans [-max|W|, max|W|], here [-1, 1]
        [[0.0, 0.0, 12.5, 25.0], [25.0, 12.5, 0.0, 0.0]]
    """

    _init_fields: ClassVar[tuple[str, ...]] = (
        "f_lst",
        "g_lst",
        "g_max",
        "g_min",
        "invertibility_test",
    )

    def __init__(
        self,
        f_lst: list[float],
        g_lst: list[list[float]],
        g_max: float | None = None,
        g_min: float | None = None,
        invertibility_test: bool = True,
    ) -> None:
        f = check_float_list("f_lst", f_lst)
        if any(v <= 0 for v in f):
            raise ValueError(f"f_lst: expected positive factors, got {f}")
        if hasattr(g_lst, "tolist") and not isinstance(g_lst, list):
            g_lst = g_lst.tolist()
        if not isinstance(g_lst, (list, tuple)) or not all(
            isinstance(row, (list, tuple)) or hasattr(row, "tolist") for row in g_lst
        ):
            raise ValueError("g_lst: expected a list of lists of conductances")
        if len(g_lst) != 2 * len(f):
            raise ValueError(
                f"g_lst: expected 2 * len(f_lst) = {2 * len(f)} lists, got {len(g_lst)}"
            )
        rows = [check_float_list(f"g_lst[{i}]", row, min_len=2) for i, row in enumerate(g_lst)]
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"g_lst: expected lists of equal length, got {[len(r) for r in rows]}")
        g_max, g_min = _check_range(g_max, g_min, 25.0, 0.0)
        for i, row in enumerate(rows):
            low, high = min(row), max(row)
            if low < g_min or high > g_max:
                bad = low if low < g_min else high
                raise ValueError(f"g_lst[{i}]: expected conductances in [g_min, g_max] = "
                                 f"[{g_min:g}, {g_max:g}] µS, got {bad:g}")
        self.f_lst = f
        self.g_lst = rows
        self.g_max, self.g_min = g_max, g_min
        self.invertibility_test = bool(invertibility_test)
        table = torch.tensor(rows, dtype=torch.float64)
        self._grid_us = (
            torch.tensor(f, dtype=torch.float64)[:, None] * (table[0::2] - table[1::2])
        ).sum(0)
        if float(self._grid_us.abs().max()) <= 0:
            message = "g_lst: every grid point maps to 0 µS; the weight range is empty"
            if self.invertibility_test:
                # the invertibility test fails for any non-invertible table (as in aihwkit)
                raise ArithmeticError(f"{type(self).__name__}: {message}")
            raise ValueError(message)
        if self.invertibility_test:
            self.check_invertibility()

    @property
    def n_devices(self) -> int:
        return 2 * len(self.f_lst)

    def check_invertibility(self, atol: float = 1e-4) -> None:
        """Raise ``ArithmeticError`` unless convert → back returns weights in ``[−1, 1]``.

        Args:
            atol: tolerance, relative to the maximal weight.
        """
        n = len(self.g_lst[0])
        weights = torch.linspace(-1.0, 1.0, 4 * (n - 1) + 1, dtype=torch.float64)
        gs, params = self.convert_to_conductances(weights)
        back = self.convert_back_to_weights(gs, params)
        err = float((back - weights).abs().max())
        if err > atol:
            raise ArithmeticError(
                f"{type(self).__name__}: g_lst is not invertible (convert -> back differs by "
                f"up to {err:.3g} of max|W|); the µS value Σ f·(g+ − g−) must grow linearly "
                "from −max to +max over the grid"
            )

    @torch.no_grad()
    def convert_to_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict[str, Any]]:
        return CustomPairConductanceConverter._to_conductances(self, _check_weights(weights))

    @torch.no_grad()
    def convert_back_to_weights(self, conductances: list[Tensor], params: dict[str, Any]) -> Tensor:
        gs = _check_conductances(conductances, self.n_devices)
        return CustomPairConductanceConverter._to_weights(self, gs, params)

    @torch.no_grad()
    def _to_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict[str, Any]]:
        dtype, device = weights.dtype, weights.device
        abs_max = max(float(weights.abs().max()), _ZERO_CLIP)
        grid_us_max = float(self._grid_us.abs().max())
        scale_ratio = grid_us_max / abs_max
        n = len(self.g_lst[0])
        w_grid = torch.linspace(-1.0, 1.0, n, dtype=dtype, device=device) * abs_max
        table = torch.tensor(self.g_lst, dtype=dtype, device=device)
        g = interpolate_custom_pair(weights.reshape(-1), w_grid, table)
        conductances = [g[k].reshape(weights.shape).to(dtype) for k in range(self.n_devices)]
        params = {"scale_ratio": _as_param(scale_ratio, weights), "f_lst": list(self.f_lst)}
        return conductances, params

    @torch.no_grad()
    def _to_weights(self, conductances: list[Tensor], params: dict[str, Any]) -> Tensor:
        scale_ratio = _param(params, "scale_ratio")
        return _pairs_to_weights(conductances, params.get("f_lst", self.f_lst), scale_ratio)


@register_config_type
class SingleDeviceConductanceConverter(BaseConductanceConverter):
    """One device per weight, affine from ``[min W, max W]`` onto ``[g_min, g_max]``.

    ``g = (W − min W) · scale + g_min`` with ``scale = (g_max − g_min) / (max W − min W)``;
    back: ``min W + (g − g_min) / scale``. A constant matrix maps to ``g_min``.

    Args:
        g_max: maximal conductance in µS (default 88.2).
        g_min: minimal conductance in µS (default 9.0).

    Raises:
        ValueError: if ``g_min < 0`` or ``g_min ≥ g_max``.

    Example:
        >>> from anatile.inference import SingleDeviceConductanceConverter
        >>> conv = SingleDeviceConductanceConverter()
        >>> g, params = conv.convert_to_conductances(torch.tensor([-1.0, 1.0]))
        >>> [round(v, 1) for v in g.tolist()]  # [min W, max W] onto [g_min, g_max]
        [9.0, 88.2]
    """

    _init_fields: ClassVar[tuple[str, ...]] = ("g_max", "g_min")

    def __init__(self, g_max: float | None = None, g_min: float | None = None) -> None:
        self.g_max, self.g_min = _check_range(g_max, g_min, 88.2, 9.0)

    @property
    def n_devices(self) -> int:
        return 1

    @torch.no_grad()
    def convert_to_conductances(  # type: ignore[override]
        self, weights: Tensor
    ) -> tuple[Tensor, dict[str, Any]]:
        """Map weights to conductances: one tensor shaped like ``weights`` (as aihwkit).

        :meth:`device_conductances` gives it as a one-element list.
        """
        weights = _check_weights(weights)
        (g,), params = SingleDeviceConductanceConverter._to_conductances(self, weights)
        return g, params

    @torch.no_grad()
    def convert_back_to_weights(self, conductances: list[Tensor], params: dict[str, Any]) -> Tensor:
        gs = _check_conductances(conductances, 1)
        return SingleDeviceConductanceConverter._to_weights(self, gs, params)

    @torch.no_grad()
    def _to_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict[str, Any]]:
        w_min = float(weights.min())
        span = max(float(weights.max()) - w_min, _ZERO_CLIP)
        scale_ratio = (self.g_max - self.g_min) / span
        g = (weights - w_min) * scale_ratio + self.g_min
        params = {"scale_ratio": _as_param(scale_ratio, weights), "min": _as_param(w_min, weights)}
        return [g], params

    @torch.no_grad()
    def _to_weights(self, conductances: list[Tensor], params: dict[str, Any]) -> Tensor:
        (g,) = conductances
        return _param(params, "min") + (g - self.g_min) / _param(params, "scale_ratio")
