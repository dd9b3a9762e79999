"""What a tile's state dict may hold, checked in full before ``load_state_dict`` touches it.

``torch.nn.Module.load_state_dict`` copies tensor after tensor and reports shape mismatches
and missing keys only at the end, so a failed load leaves a module half-overwritten. A tile
instead describes every entry it accepts (:class:`Entry`), and
:func:`check_state_dict` checks the whole local state dict (own tensors, the analog core's,
the extra state) before anything is copied: a load either applies completely or raises and
leaves the tile bit-identical.

Errors: missing or unexpected keys (``strict=True``) raise ``RuntimeError`` as torch does;
a tensor of the wrong kind raises ``TypeError`` and a wrong shape or value ``ValueError``,
each naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from anatile.checks import all_finite, check_float, check_int
from anatile.config.base import config_from_dict, config_to_dict
from anatile.exceptions import ConfigError
from anatile.inference.noise import BaseNoiseModel
from anatile.tiles.analog_core import AnalogCore


class StatefulTile(Protocol):
    """What the checks read of a tile (:class:`anatile.tiles.TileWithPeriphery` has it)."""

    @property
    def out_size(self) -> int: ...

    @property
    def in_size(self) -> int: ...

    @property
    def analog_core(self) -> AnalogCore: ...

    @property
    def bias(self) -> nn.Parameter | None: ...

    @property
    def learned_out_scales(self) -> nn.Parameter | None: ...

    @property
    def input_range(self) -> nn.Parameter | None: ...

    @property
    def generator(self) -> torch.Generator: ...

    def _state_entries(self) -> dict[str, Entry]: ...

    def _check_extra_state(self, state: Any) -> None: ...

__all__ = [
    "Entry",
    "StatefulTile",
    "check_inference_extra_state",
    "check_state_dict",
    "apply_inference_extra_state",
    "check_tile_extra_state",
    "inference_entries",
    "inference_extra_state",
    "noise_model_from_state",
    "tile_entries",
]

EXTRA_STATE = "_extra_state"


@dataclass(frozen=True)
class Entry:
    """One tensor a tile's state dict may hold.

    Attributes:
        shape: expected shape; ``None`` in a dimension accepts any size; ``None`` as a
            whole accepts any shape.
        numel: accepted element counts of a 1-d tensor instead of ``shape`` (scales that
            may be per tile or per output).
        required: must be present with ``strict=True``.
        integer: an integer tensor (else floating point, finite).
        positive: every value must be > 0.
    """

    shape: tuple[int | None, ...] | None = None
    numel: tuple[int, ...] | None = None
    required: bool = True
    integer: bool = False
    positive: bool = False


def tile_entries(tile: StatefulTile) -> dict[str, Entry]:
    """The entries of a :class:`TileWithPeriphery` (own tensors and its analog core's)."""
    out, cols = tile.out_size, tile.analog_core.in_size
    entries = {  # the array first: a state of another tile size is named by it
        "analog_core.weight": Entry((out, cols)),
        "analog_ctx": Entry(()),
        "mapping_scales": Entry(numel=(1, out), positive=True),
        "input_range_update_idx": Entry((), integer=True),
        "reference_weight": Entry((out, cols), required=False),
        "indices": Entry((tile.in_size, None), required=False, integer=True),
    }
    if tile.bias is not None:
        entries["bias"] = Entry((out,))
    if tile.learned_out_scales is not None:
        entries["learned_out_scales"] = Entry(numel=(1, out))
    if tile.input_range is not None:
        entries["input_range"] = Entry((1,), positive=True)
    for name in ("dw_up", "dw_down", "w_max_device", "w_min_device"):
        if getattr(tile.analog_core, name) is not None:
            entries[f"analog_core.{name}"] = Entry((out, cols))
    return entries


def _check_entry(key: str, value: Any, entry: Entry) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"state_dict[{key!r}]: expected a torch.Tensor, "
                        f"got {type(value).__name__}")
    if value.is_meta:
        raise ValueError(f"state_dict[{key!r}]: expected a tensor with data, got a meta tensor")
    if entry.integer:
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"state_dict[{key!r}]: expected an integer tensor, "
                            f"got dtype {value.dtype}")
    elif not value.is_floating_point():
        raise TypeError(f"state_dict[{key!r}]: expected a floating-point tensor, "
                        f"got dtype {value.dtype}")
    shape = tuple(value.shape)
    if entry.numel is not None:
        if value.ndim != 1 or value.numel() not in entry.numel:
            raise ValueError(f"state_dict[{key!r}]: expected a 1-d tensor of "
                             f"{' or '.join(map(str, sorted(set(entry.numel))))} elements, "
                             f"got shape {shape}")
    elif entry.shape is not None:
        ok = len(shape) == len(entry.shape) and all(
            want is None or want == got for want, got in zip(entry.shape, shape, strict=True))
        if not ok:
            want_s = "(" + ", ".join("N" if d is None else str(d) for d in entry.shape) + ")"
            raise ValueError(f"state_dict[{key!r}]: expected shape {want_s}, got {shape}")
    if value.numel() == 0:
        return
    if entry.integer:
        if int(value.min()) < 0:
            raise ValueError(f"state_dict[{key!r}]: expected values >= 0")
        return
    if not all_finite(value):
        raise ValueError(f"state_dict[{key!r}]: expected finite values (found NaN or inf)")
    if entry.positive and not bool((value > 0).all()):
        raise ValueError(f"state_dict[{key!r}]: expected values > 0, got {value.tolist()}")


def check_state_dict(
    tile: StatefulTile,
    state_dict: Mapping[str, Any],
    prefix: str,
    strict: bool,
) -> None:
    """Check a tile's local state dict in full; raise before anything is loaded.

    Args:
        tile: the tile that is about to load.
        state_dict: the (local) state dict torch passes to ``_load_from_state_dict``.
        prefix: the tile's key prefix.
        strict: also require every required key and reject unknown ones.

    Raises:
        RuntimeError: (``strict``) missing or unexpected keys.
        TypeError: a value of the wrong kind (naming its key).
        ValueError: a wrong shape, NaN/inf, a non-positive scale, malformed extra state.
    """
    entries = tile._state_entries()
    local = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if strict:
        missing = sorted(prefix + k for k, e in entries.items() if e.required and k not in local)
        if EXTRA_STATE not in local:
            missing.append(prefix + EXTRA_STATE)
        unexpected = sorted(prefix + k for k in local if k not in entries and k != EXTRA_STATE)
        if missing or unexpected:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(tile).__name__}: missing keys "
                f"{missing}, unexpected keys {unexpected} (nothing was loaded)")
    for key, entry in entries.items():
        if key in local:
            _check_entry(prefix + key, local[key], entry)
    if EXTRA_STATE in local:
        tile._check_extra_state(local[EXTRA_STATE])
    if "indices" in local and EXTRA_STATE in local:
        sizes = local[EXTRA_STATE].get("image_sizes")
        if sizes is None:
            raise ValueError(f"state_dict[{prefix + EXTRA_STATE!r}]['image_sizes']: "
                             "expected the image sizes of the saved 'indices', got None")


def _extra(state: Any, key: str) -> Any:
    if key not in state:
        raise ValueError(f"extra_state: missing key {key!r} (expected the dict written by "
                         "get_extra_state)")
    return state[key]


def check_tile_extra_state(tile: StatefulTile, state: Any) -> None:
    """Check the extra state of a :class:`TileWithPeriphery` (see ``get_extra_state``).

    Raises:
        TypeError: not a dict, or an entry of the wrong kind.
        ValueError: a missing key or a bad value (naming it).
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"extra_state: expected a dict (from get_extra_state), "
                        f"got {type(state).__name__}")
    check_int("extra_state['seed']", _extra(state, "seed"), 0)
    lr = _extra(state, "learning_rate")
    check_float("extra_state['learning_rate']", lr)
    device = _extra(state, "generator_device")
    if not isinstance(device, str):
        raise TypeError(f"extra_state['generator_device']: expected a str, got {device!r}")
    gen_state = _extra(state, "generator_state")
    if not isinstance(gen_state, Tensor) or gen_state.dtype != torch.uint8:
        raise TypeError("extra_state['generator_state']: expected a uint8 tensor "
                        "(torch.Generator.get_state())")
    if device == str(tile.generator.device):
        probe = torch.Generator(device=tile.generator.device)
        try:
            probe.set_state(gen_state)
        except (RuntimeError, ValueError) as err:
            raise ValueError(f"extra_state['generator_state']: not a state of a {device} "
                             f"generator ({err})") from err
    sizes = state.get("image_sizes")
    if sizes is not None:
        if not isinstance(sizes, (list, tuple)) or len(sizes) not in (3, 5, 7):
            raise ValueError(f"extra_state['image_sizes']: expected None or 3, 5 or 7 sizes, "
                             f"got {sizes!r}")
        for s in sizes:
            check_int("extra_state['image_sizes']", s, 1)


def check_time(name: str, value: Any) -> None:
    """``value`` is None or a finite number of seconds >= 0."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected None or a finite time >= 0 s, got {value!r}")


def inference_entries(tile: Any, device_buffers: tuple[str, ...]) -> dict[str, Entry]:
    """The entries an :class:`~anatile.tiles.InferenceTile` adds to :func:`tile_entries`."""
    out, cols = tile.out_size, tile.analog_core.in_size
    entries = {
        "alpha": Entry(tuple(tile.alpha.shape)),
        "drift_baseline": Entry(tuple(tile.drift_baseline.shape)),
        "programmed_weight": Entry((out, cols), required=False),
    }
    for name in device_buffers:
        entries[name] = Entry((None, out, cols), required=False)
    return entries


def inference_extra_state(tile: Any) -> dict[str, Any]:
    """What an inference tile adds to its extra state: plain data only (tensors, numbers,
    strings, lists, dicts), so that ``torch.load(..., weights_only=True)`` reads it; the
    noise model is stored as its tagged dict and rebuilt on load."""
    model = tile.programmed_noise_model
    return {
        "conversion_params": dict(tile.conversion_params),
        "t_inference": tile.t_inference,
        "programmed_noise_model": None if model is None else config_to_dict(model),
    }


def apply_inference_extra_state(tile: Any, state: Mapping[str, Any]) -> None:
    """Set an inference tile's part of an (already checked) extra state."""
    tile.conversion_params = dict(state.get("conversion_params", {}))
    t_inference = state.get("t_inference")
    tile.t_inference = None if t_inference is None else float(t_inference)
    tile.programmed_noise_model = noise_model_from_state(state.get("programmed_noise_model"))


def check_inference_extra_state(state: Any) -> None:
    """Check what an inference tile adds to the extra state (after the tile's part)."""
    params = state.get("conversion_params", {})
    if not isinstance(params, dict):
        raise TypeError(f"extra_state['conversion_params']: expected a dict, "
                        f"got {type(params).__name__}")
    check_time("extra_state['t_inference']", state.get("t_inference"))
    noise_model_from_state(state.get("programmed_noise_model"))


def noise_model_from_state(data: Any) -> BaseNoiseModel | None:
    """Rebuild the programmed noise model saved in the extra state (None stays None)."""
    if data is None or isinstance(data, BaseNoiseModel):  # objects: states saved before
        return data
    if not isinstance(data, dict):
        raise TypeError("extra_state['programmed_noise_model']: expected None or the dict of "
                        f"a noise model's to_dict(), got {type(data).__name__}")
    try:
        model = config_from_dict(data)
    except (ConfigError, TypeError, ValueError) as err:
        raise ValueError(f"extra_state['programmed_noise_model']: {err}") from err
    if not isinstance(model, BaseNoiseModel):
        raise TypeError("extra_state['programmed_noise_model']: expected a noise model, "
                        f"got {type(model).__name__}")
    return model
