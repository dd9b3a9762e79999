"""Convert a digital ``torch.nn`` model to analog layers, then program and drift all its tiles.

Example:
    >>> import torch
    >>> from anatile.config import InferenceRPUConfig
    >>> digital = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
    ...                               torch.nn.Linear(8, 2))
    >>> analog = convert_to_analog(digital, InferenceRPUConfig(), seed=0).eval()
    >>> program_analog_weights(analog)
    >>> drift_analog_weights(analog, 3600.0)
    >>> analog(torch.ones(3, 4)).shape
    torch.Size([3, 2])
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from anatile.config.rpu_config import InferenceRPUConfig, RPUConfig
from anatile.exceptions import TileError
from anatile.inference.noise import BaseNoiseModel
from anatile.nn.conv import AnalogConv2d
from anatile.nn.linear import AnalogLinear
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = [
    "analog_tiles",
    "convert_to_analog",
    "drift_analog_weights",
    "inference_tiles",
    "program_analog_weights",
]

_SEED_STRIDE = 1_000_003  # tile i of a conversion with seed s gets seed s * stride + i


def _tile_seed(seed: int | None, index: int) -> int | None:
    return None if seed is None else (seed * _SEED_STRIDE + index) % 2**62


def _convert_linear(mod: nn.Linear, rpu_config: RPUConfig, seed: int | None) -> AnalogLinear:
    layer = AnalogLinear(
        mod.in_features, mod.out_features, mod.bias is not None, rpu_config, seed=seed
    )
    bias = None if mod.bias is None else mod.bias.detach()
    layer.set_weights(mod.weight.detach(), bias)
    return layer


def _convert_conv2d(
    mod: nn.Conv2d, name: str, rpu_config: RPUConfig, seed: int | None
) -> AnalogConv2d:
    if mod.groups != 1:
        raise ValueError(f"{name}: Conv2d with groups={mod.groups} is not supported (groups=1)")
    if isinstance(mod.padding, str) or mod.padding_mode != "zeros":
        raise ValueError(
            f"{name}: Conv2d needs integer zero padding, got padding={mod.padding!r}, "
            f"padding_mode={mod.padding_mode!r}"
        )
    layer = AnalogConv2d(
        mod.in_channels,
        mod.out_channels,
        (int(mod.kernel_size[0]), int(mod.kernel_size[1])),
        (int(mod.stride[0]), int(mod.stride[1])),
        (int(mod.padding[0]), int(mod.padding[1])),
        (int(mod.dilation[0]), int(mod.dilation[1])),
        1,
        mod.bias is not None,
        rpu_config,
        seed=seed,
    )
    bias = None if mod.bias is None else mod.bias.detach()
    layer.set_weights(mod.weight.detach(), bias)
    return layer


def convert_to_analog(
    module: nn.Module,
    rpu_config: RPUConfig | None = None,
    *,
    inplace: bool = False,
    exclude_modules: Iterable[str] = (),
    seed: int | None = None,
) -> nn.Module:
    """Replace every ``nn.Linear`` / ``nn.Conv2d`` by its analog twin, weights copied.

    With an :class:`~anatile.config.InferenceRPUConfig` the layers hold
    :class:`~anatile.tiles.InferenceTile` s (program and drift them with
    :func:`program_analog_weights` / :func:`drift_analog_weights`). The training/eval mode
    of each module is kept.

    Args:
        module: the digital model (or a single ``Linear``/``Conv2d``).
        rpu_config: configuration of every tile (default ``InferenceRPUConfig()``); each
            tile validates and copies it.
        inplace: modify ``module`` itself instead of a deep copy.
        exclude_modules: qualified names (as in ``named_modules()``) to keep digital.
        seed: if given, tile ``i`` (in ``named_modules()`` order) gets the seed
            ``seed · 1000003 + i``, so a conversion is reproducible.

    Returns:
        The converted model (``module`` itself when ``inplace``).

    Raises:
        TypeError: if ``module`` is not an ``nn.Module`` or ``rpu_config`` not an RPUConfig.
        ValueError: for a ``Conv2d`` with groups, string padding or non-zero padding mode
            (the input model is left unchanged).

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog
        >>> model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> analog = convert_to_analog(model, InferenceRPUConfig(), seed=0)
        >>> [type(m).__name__ for m in analog]
        ['AnalogLinear', 'ReLU', 'AnalogLinear']
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    if rpu_config is None:
        rpu_config = InferenceRPUConfig()
    if not isinstance(rpu_config, RPUConfig):
        raise TypeError(f"rpu_config: expected an RPUConfig, got {type(rpu_config).__name__}")
    excluded = set(exclude_modules)
    model = module if inplace else copy.deepcopy(module)
    # Build every replacement first, so an unsupported layer leaves the model untouched.
    replacements: list[tuple[str, nn.Module]] = []
    index = 0
    for name, mod in model.named_modules():
        if name in excluded or type(mod) not in (nn.Linear, nn.Conv2d):
            continue
        label = name or type(mod).__name__
        seed_i = _tile_seed(seed, index)
        index += 1
        new: nn.Module
        if isinstance(mod, nn.Linear):
            new = _convert_linear(mod, rpu_config, seed_i)
        else:
            assert isinstance(mod, nn.Conv2d)
            new = _convert_conv2d(mod, label, rpu_config, seed_i)
        new.to(mod.weight.device)
        new.train(mod.training)
        replacements.append((name, new))
    for name, new in replacements:
        if name == "":
            return new
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
    return model


def analog_tiles(model: nn.Module) -> Iterator[TileWithPeriphery]:
    """Every tile of ``model`` (analog layers' tiles and bare tiles), in module order.

    Example:
        >>> from anatile.nn import AnalogLinear, analog_tiles
        >>> model = nn.Sequential(AnalogLinear(8, 4), nn.ReLU(), AnalogLinear(4, 2))
        >>> [tuple(t.get_weights()[0].shape) for t in analog_tiles(model)]
        [(4, 8), (2, 4)]
    """
    for mod in model.modules():
        if isinstance(mod, TileWithPeriphery):
            yield mod


def inference_tiles(model: nn.Module) -> Iterator[InferenceTile]:
    """Every :class:`~anatile.tiles.InferenceTile` of ``model``, in module order.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import AnalogLinear, inference_tiles
        >>> model = nn.Sequential(AnalogLinear(8, 4, rpu_config=InferenceRPUConfig()),
        ...                       AnalogLinear(4, 2))
        >>> len(list(inference_tiles(model)))  # the second layer has a training tile
        1
    """
    for mod in model.modules():
        if isinstance(mod, InferenceTile):
            yield mod


@torch.no_grad()
def program_analog_weights(model: nn.Module, noise_model: BaseNoiseModel | None = None) -> None:
    """Program every tile of ``model`` from its reference weights.

    Inference tiles draw programming noise and drift exponents (through their noise
    model); other tiles run their closed-loop pulsed programming; both through
    :meth:`TileWithPeriphery.program_weights` with its defaults.

    Args:
        model: a model with analog layers.
        noise_model: overrides each inference tile's configured noise model.

    Raises:
        TileError: if ``model`` has no analog tile.
        TypeError: if ``noise_model`` is not a noise model.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog, inference_tiles, program_analog_weights
        >>> analog = convert_to_analog(nn.Sequential(nn.Linear(8, 4)), InferenceRPUConfig(), seed=0)
        >>> program_analog_weights(analog)
        >>> [tile.g_programmed is not None for tile in inference_tiles(analog)]
        [True]
    """
    tiles = list(analog_tiles(model))
    if not tiles:
        raise TileError("model: no analog tile found (convert it with convert_to_analog first)")
    if noise_model is not None and not isinstance(noise_model, BaseNoiseModel):
        raise TypeError(
            f"noise_model: expected a noise model such as PCMLikeNoiseModel, "
            f"got {type(noise_model).__name__}"
        )
    for tile in tiles:
        if isinstance(tile, InferenceTile):
            tile.program_weights(noise_model=noise_model)
        else:
            tile.program_weights()


@torch.no_grad()
def drift_analog_weights(model: nn.Module, t_inference: float = 0.0) -> None:
    """Drift every inference tile of ``model`` to ``t_inference`` seconds after programming.

    Tiles not yet programmed are programmed first. Each call starts from the programmed
    state, so a time sweep ages the same chip.

    Args:
        model: a model with inference tiles.
        t_inference: seconds since programming (finite, ≥ 0).

    Raises:
        TileError: if ``model`` has no inference tile.
        ValueError: if ``t_inference`` is negative or not finite (nothing is drifted).

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.nn import convert_to_analog, drift_analog_weights, inference_tiles
        >>> analog = convert_to_analog(nn.Sequential(nn.Linear(8, 4)), InferenceRPUConfig(), seed=0)
        >>> drift_analog_weights(analog, 3600.0)  # programs first, then one hour of drift
        >>> [tile.t_inference for tile in inference_tiles(analog)]
        [3600.0]
    """
    tiles = list(inference_tiles(model))
    if not tiles:
        raise TileError(
            "model: no InferenceTile found (convert it with an InferenceRPUConfig first)"
        )
    for tile in tiles:
        tile.drift_weights(t_inference)
