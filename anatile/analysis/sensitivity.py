"""Which layer costs the accuracy: each analog layer alone on several simulated chips."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from anatile.analysis._layers import analog_layers, detached_copy, layer_tiles
from anatile.config.parameters import IOParameters
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["LayerSensitivity", "layer_sensitivity"]

_METRICS = ("accuracy", "loss")


@dataclass(frozen=True)
class LayerSensitivity:
    """Result of :func:`layer_sensitivity` (CPU float64 tensors).

    Attributes:
        metric: ``"accuracy"`` (fraction correct) or ``"loss"`` (mean cross-entropy).
        t_inference: the inference time (s).
        layers: the analog layers' names, in module order.
        ideal: the metric with every layer ideal (exact weights, perfect IO).
        values: ``[n_layers, chips]``, the metric with that layer analog (programmed,
            drifted to ``t_inference``, full IO model) and every other layer ideal.
        all_analog: ``[chips]``, the metric with every layer analog on the same chips.
        seed: the seed the chips' seeds derive from.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog
        >>> cfg = InferenceRPUConfig()
        >>> cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
        >>> net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
        >>> model = convert_to_analog(net, cfg)
        >>> x, y = torch.randn(30, 12), torch.randint(0, 3, (30,))
        >>> result = layer_sensitivity(model, x, y, chips=2, seed=0)
        >>> isinstance(result, LayerSensitivity), len(result.layers)
        (True, 2)
    """

    metric: str
    t_inference: float
    layers: list[str]
    ideal: float
    values: Tensor
    all_analog: Tensor
    seed: int

    @property
    def cost(self) -> Tensor:
        """``[n_layers, chips]``: accuracy lost (``ideal − value``) or loss added
        (``value − ideal``) by each layer alone; accuracy in fractions (× 100 for points)."""
        return self.ideal - self.values if self.metric == "accuracy" else self.values - self.ideal

    @property
    def mean(self) -> Tensor:
        """Mean cost of each layer over the chips, ``[n_layers]``."""
        return self.cost.mean(dim=1)

    @property
    def std(self) -> Tensor:
        """Standard deviation of each layer's cost over the chips (0 for one chip)."""
        cost = self.cost
        return cost.std(dim=1) if cost.shape[1] > 1 else torch.zeros(cost.shape[0],
                                                                       dtype=cost.dtype)

    def worst(self) -> str:
        """The layer with the largest mean cost."""
        return self.layers[int(self.mean.argmax())]

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per layer: name, mean and std of the cost, the value of each chip."""
        unit = "accuracy drop Δacc (percentage points)" if self.metric == "accuracy" \
            else "loss increase (nats)"
        factor = 100.0 if self.metric == "accuracy" else 1.0
        rows = []
        for k, name in enumerate(self.layers):
            row: dict[str, Any] = {
                "layer": name,
                f"mean {unit}": factor * float(self.mean[k]),
                f"std {unit}": factor * float(self.std[k]),
            }
            for c in range(self.values.shape[1]):
                row[f"chip {c}"] = factor * float(self.cost[k, c])
            rows.append(row)
        return rows


def _score(model: nn.Module, x: Tensor, y: Tensor, metric: str) -> float:
    out = model(x)
    if metric == "accuracy":
        return float((out.argmax(dim=-1) == y).double().mean())
    return float(nn.functional.cross_entropy(out, y))


class _TileSwitch:
    """Puts one tile (of a private copy) into its ideal or its analog state."""

    def __init__(self, tile: TileWithPeriphery) -> None:
        self.tile = tile
        ref = tile.reference_weight
        self.target = (ref if ref is not None else tile.analog_core.weight).detach().clone()
        self.analog_io = tile.rpu_config.forward
        self.perfect_io = IOParameters(is_perfect=True)
        self.array = tile.analog_core.weight.detach().clone()

    def ideal(self) -> None:
        tile = self.tile
        tile.analog_core.set_weights(self.target)
        if isinstance(tile, InferenceTile):
            tile.alpha.fill_(1.0)
        tile.rpu_config.forward = self.perfect_io  # shared with the analog core

    def analog(self, seed: int, t_inference: float) -> None:
        tile = self.tile
        tile.rpu_config.forward = self.analog_io
        tile.manual_seed(seed)
        if isinstance(tile, InferenceTile):
            tile.program_weights()  # from the reference: a fresh chip
            tile.drift_weights(t_inference)
        else:  # a training tile has no chip to draw: its array, the IO noise of this seed
            tile.analog_core.set_weights(self.array)


def _chip_seed(seed: int, chip: int, tile: int) -> int:
    return (seed * 1_000_003 + chip * 7919 + tile * 104_729 + 1) % 2**62


@torch.no_grad()
def layer_sensitivity(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    t: float = 0.0,
    *,
    chips: int = 5,
    seed: int = 0,
    metric: str = "accuracy",
) -> LayerSensitivity:
    """Cost of each analog layer alone at time ``t``: every other layer ideal.

    On a private copy of ``model`` (eval mode), each chip draws fresh programming noise and
    drift exponents for the layer under test (seeded: chip ``c`` of tile ``i`` gets a
    fixed seed from ``seed``), drifts it to ``t`` with its drift compensation and runs the
    full IO model; every other layer holds its exact target weights with a perfect MVM. The
    same chips are also measured all together (``all_analog``). ``model`` is not changed.

    Args:
        model: a model with analog layers (see :func:`~anatile.nn.convert_to_analog`).
        x: inputs ``[N, ...]``.
        y: integer class labels ``[N]``.
        t: inference time (s, finite, ≥ 0).
        chips: number of simulated chips (≥ 1).
        seed: seed of the chips.
        metric: ``"accuracy"`` or ``"loss"`` (cross-entropy).

    Returns:
        :class:`LayerSensitivity`.

    Raises:
        TypeError: on a non-tensor ``x``/``y`` or a model that is not a module.
        TileError: if the model has no analog layer.
        ValueError: on mismatched ``x``/``y``, bad ``t``, ``chips``, ``seed`` or ``metric``.

    Example:
        >>> import torch
        >>> from anatile.nn import convert_to_analog
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
        ...                           torch.nn.Linear(8, 3))
        >>> analog = convert_to_analog(net, seed=0)
        >>> x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
        >>> result = layer_sensitivity(analog, x, y, 3600.0, chips=2)
        >>> result.values.shape
        torch.Size([2, 2])
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point torch.Tensor, got {type(x).__name__}")
    if not isinstance(y, Tensor) or y.dtype not in (torch.int64, torch.int32):
        raise TypeError("y: expected an integer torch.Tensor of class labels")
    if x.dim() == 0 or y.dim() != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"x, y: expected x [N, ...] and y [N] with N >= 1, got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
        raise ValueError(f"t: expected a finite time >= 0 s, got {t!r}")
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise ValueError(f"chips: expected an int >= 1, got {chips!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {_METRICS}, got {metric!r}")
    analog_layers(model)  # raises TileError without analog layers, before copying
    work = detached_copy(model).eval()
    layers = analog_layers(work)
    switches: list[list[tuple[int, _TileSwitch]]] = []
    index = 0
    for _, layer in layers:
        group = []
        for _, tile in layer_tiles(layer):
            group.append((index, _TileSwitch(tile)))
            index += 1
        switches.append(group)
    every = [s for group in switches for s in group]
    for _, switch in every:
        switch.ideal()
    ideal = _score(work, x, y, metric)
    values = torch.zeros(len(layers), chips, dtype=torch.float64)
    for k, group in enumerate(switches):
        for c in range(chips):
            for i, switch in group:
                switch.analog(_chip_seed(seed, c, i), float(t))
            values[k, c] = _score(work, x, y, metric)
        for _, switch in group:
            switch.ideal()
    all_analog = torch.zeros(chips, dtype=torch.float64)
    for c in range(chips):
        for i, switch in every:
            switch.analog(_chip_seed(seed, c, i), float(t))
        all_analog[c] = _score(work, x, y, metric)
    return LayerSensitivity(metric, float(t), [name for name, _ in layers], ideal, values,
                            all_analog, seed)
