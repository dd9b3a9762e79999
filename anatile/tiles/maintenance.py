"""Once-per-step maintenance of a tile: aihwkit's weight clipping and remapping.

The body of :meth:`TileWithPeriphery.post_update_step`; the math is in
:mod:`anatile.functional.post_update`.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

from anatile.config.parameters import (
    WeightClipParameter,
    WeightClipType,
    WeightRemapParameter,
    WeightRemapType,
)
from anatile.functional.post_update import clip_weights, remap_weights
from anatile.tiles.analog_core import AnalogCore

__all__ = ["MaintainedTile", "post_update_step"]


class MaintainedTile(Protocol):
    """What the maintenance needs of a tile (``TileWithPeriphery`` provides it)."""

    rpu_config: Any
    analog_core: AnalogCore
    mapping_scales: Tensor

    def get_scales(self) -> Tensor | None: ...

    def set_scales(self, scales: Tensor | float) -> None: ...


def post_update_step(tile: MaintainedTile) -> None:
    """Clip, then remap the array weights of ``tile`` per its config's ``clip``/``remap``."""
    clip = getattr(tile.rpu_config, "clip", None)
    remap = getattr(tile.rpu_config, "remap", None)
    core = tile.analog_core
    with torch.no_grad():
        if isinstance(clip, WeightClipParameter) and clip.type != WeightClipType.NONE:
            core.set_weights(clip_weights(core.weight.detach(), clip))
        if isinstance(remap, WeightRemapParameter) and remap.type != WeightRemapType.NONE:
            scales = tile.get_scales()
            if scales is None:
                scales = torch.ones(1, dtype=core.weight.dtype, device=core.weight.device)
            weights, new_scales = remap_weights(core.weight.detach(), scales, remap)
            if tile.mapping_scales.numel() == 1 and bool((new_scales == new_scales[0]).all()):
                new_scales = new_scales[:1]  # keep a layer-wise scale layer-wise
            core.set_weights(weights)
            tile.set_scales(new_scales)
