"""What a tile saves besides its tensors, and how optional slots follow a loaded state.

* :func:`generator_state` / :func:`restore_generator`: a ``torch.Generator`` as plain data
  (device name and state bytes), used for the extra state and for pickling.
* :func:`match_optional_slots`: before ``load_state_dict``, make the tile's optional buffers
  (None until used, e.g. ``reference_weight``) and size-adaptive tensors match the saved
  ones, so that the state dict of a tile in another state loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["generator_state", "match_optional_slots", "restore_generator"]


def generator_state(generator: torch.Generator) -> tuple[str, Tensor]:
    """``(device name, state)`` of ``generator``."""
    return str(generator.device), generator.get_state()


def restore_generator(device: str, state: Tensor) -> torch.Generator:
    """A new generator on ``device`` with ``state``."""
    generator = torch.Generator(device=device)
    generator.set_state(state)
    return generator


def match_optional_slots(
    module: nn.Module,
    state_dict: Mapping[str, Any],
    prefix: str,
    device: torch.device,
    optional: Iterable[str],
    resizable: Iterable[str] = (),
) -> None:
    """Create, drop or resize ``module``'s tensors so they match the slots of ``state_dict``.

    Args:
        module: the tile being loaded.
        state_dict: the state dict (keys with ``prefix``).
        prefix: the module's key prefix.
        device: where new tensors are made.
        optional: buffers that are None until used: created empty when saved, set to None
            when not saved.
        resizable: tensors (buffers or parameters) whose size follows the saved one.
    """
    for name in optional:
        key = prefix + name
        if key in state_dict and getattr(module, name) is None:
            setattr(module, name, torch.empty_like(state_dict[key], device=device))
        elif key not in state_dict and getattr(module, name) is not None:
            setattr(module, name, None)
    for name in resizable:
        key = prefix + name
        current = getattr(module, name)
        if key in state_dict and current is not None and state_dict[key].shape != current.shape:
            empty = torch.empty_like(state_dict[key], device=device)
            if isinstance(current, nn.Parameter):
                current.data = empty
            else:
                setattr(module, name, empty)
