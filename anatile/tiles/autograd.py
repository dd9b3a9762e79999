"""Autograd glue of a tile: the analog MVM function, the input range and the context marker.

* :class:`AnalogContext` is a 0-dim ``Parameter`` each tile owns. It is passed into the
  autograd graph so that analog optimizers (:class:`anatile.nn.AnalogSGD`) find the tiles
  among ``model.parameters()``; its ``analog_tile`` attribute points back to the tile and
  is dropped on copies/pickles (the tile re-binds it).
* :class:`AnalogFunction` runs the tile's forward without autograd and, in backward, the
  tile's *analog* backward pass; it records ``(x, d)`` on the tile so that the optimizer
  step can apply the (pulsed) update. Records accumulate like gradients: the first
  backward after ``zero_grad`` starts a new list.
* :class:`InputRangeFunction` clips at ``±r`` with the straight-through gradient of ``r``.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from anatile.config.rpu_config import RPUConfig
from anatile.functional.input_range import clip_input, input_range_gradient

__all__ = ["AnalogContext", "AnalogFunction", "AutogradTile", "InputRangeFunction"]


class AutogradTile(Protocol):
    """What the autograd functions need of a tile (``AutogradTile`` provides it)."""

    training: bool
    rpu_config: RPUConfig
    last_unclipped_output_fraction: float | None

    def joint_forward(self, x_input: Tensor, is_test: bool = False) -> Tensor: ...

    def joint_forward_indexed(self, x_input: Tensor, is_test: bool = False) -> Tensor: ...

    def backward(self, d_input: Tensor) -> Tensor: ...

    def backward_indexed(self, d_input: Tensor) -> Tensor: ...

    def clear_pending_updates(self) -> None: ...

    def record_update(self, x: Tensor, d: Tensor, indexed: bool) -> None: ...


class AnalogContext(nn.Parameter):
    """Marker parameter of a tile (a 0-dim zero); ``analog_tile`` is the owning tile.

    Example:
        >>> tile = TileWithPeriphery(2, 3, seed=0)
        >>> ctx = next(p for p in tile.parameters() if isinstance(p, AnalogContext))
        >>> ctx.analog_tile is tile, ctx.shape
        (True, torch.Size([]))
    """

    analog_tile: Any  # the owning TileWithPeriphery (tiles/periphery.py imports this module)

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.analog_tile = None


class AnalogFunction(torch.autograd.Function):
    """Forward through the tile's IO model; backward through its transposed analog MVM."""

    @staticmethod
    def forward(
        ctx: Any, analog_ctx: Tensor, x: Tensor, tile: AutogradTile, indexed: bool
    ) -> Tensor:
        ctx.tile = tile
        ctx.indexed = indexed
        ctx.analog_ctx = analog_ctx
        ctx.save_for_backward(x)
        is_test = not tile.training
        if indexed:
            return tile.joint_forward_indexed(x, is_test=is_test)
        return tile.joint_forward(x, is_test=is_test)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        (x,) = ctx.saved_tensors
        tile: AutogradTile = ctx.tile
        grad_output = grad_output.contiguous()
        grad_x: Tensor | None = None
        if ctx.needs_input_grad[1]:
            grad_x = tile.backward_indexed(grad_output) if ctx.indexed else tile.backward(
                grad_output)
            grad_x = grad_x.to(x.dtype)  # the tile computes in its own dtype
        grad_ctx: Tensor | None = None
        if ctx.needs_input_grad[0]:
            if ctx.analog_ctx.grad is None:  # first backward since zero_grad
                tile.clear_pending_updates()
            tile.record_update(x.detach(), grad_output.detach(), ctx.indexed)
            grad_ctx = torch.zeros_like(ctx.analog_ctx)
        return grad_ctx, grad_x, None, None


class InputRangeFunction(torch.autograd.Function):
    """``clamp(x, −r, r)``; gradient of x passes where ``|x| < r``, of r by the STE rule."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, r: Tensor, tile: AutogradTile
    ) -> Tensor:
        ctx.tile = tile
        ctx.save_for_backward(x, r)
        return clip_input(x, r)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x, r = ctx.saved_tensors
        tile: AutogradTile = ctx.tile
        grad_x = grad_output * (x.abs() < r) if ctx.needs_input_grad[0] else None
        grad_r = None
        if ctx.needs_input_grad[1]:
            cfg = tile.rpu_config.pre_post.input_range
            grad_r = input_range_gradient(x, grad_output, r, cfg,
                                          tile.last_unclipped_output_fraction)
        return grad_x, grad_r, None
