"""Optimizer for models with analog tiles."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from anatile.checks import check_float
from anatile.tiles.autograd import AnalogContext

__all__ = ["AnalogSGD"]


class AnalogSGD(torch.optim.Optimizer):
    """SGD whose step applies each analog tile's own (pulsed) update.

    For every tile of the model (found through its :class:`AnalogContext` parameter) the
    step sets the tile learning rate to the group's ``lr`` and applies the updates recorded
    by the backward passes since the last ``zero_grad``; with a pulsed ``RPUConfig`` this
    is the stochastic pulse update, with ``InferenceRPUConfig`` (``PulseType.NONE``) an
    exact float SGD step of the weights. All other (digital) parameters - biases, learned
    out scales, input ranges, ordinary ``torch.nn`` layers - get plain SGD with optional
    momentum and weight decay.

    Args:
        params: ``model.parameters()`` or parameter groups.
        lr: learning rate (finite, > 0).
        momentum: momentum of the digital parameters (finite, >= 0).
        weight_decay: L2 penalty of the digital parameters (finite, >= 0).

    Raises:
        TypeError: a non-number option.
        ValueError: a NaN, infinite or out-of-range option (naming it).

    Example:
        >>> from anatile.nn import AnalogLinear
        >>> model = AnalogLinear(4, 2, seed=0)
        >>> opt = AnalogSGD(model.parameters(), lr=0.1)
        >>> model(torch.ones(3, 4)).sum().backward()
        >>> opt.step()
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        lr = check_float("lr", lr, lo=0.0, lo_open=True)
        momentum = check_float("momentum", momentum)
        weight_decay = check_float("weight_decay", weight_decay)
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one update to every parameter (analog tiles: their pulsed update).

        Args:
            closure: optional closure re-evaluating the model and returning the loss.

        Returns:
            The closure's loss or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if isinstance(p, AnalogContext):
                    tile = getattr(p, "analog_tile", None)
                    if tile is not None:
                        tile.set_learning_rate(lr)
                        tile.apply_pending_updates()
                    continue
                self._digital_step(p, group)
        # once-per-step tile maintenance (weight clipping/remapping), after every update,
        # for every tile (as aihwkit)
        for tile in self._analog_tiles():
            tile.post_update_step()
        return loss

    def _analog_tiles(self) -> list[Any]:
        tiles: list[Any] = []
        for group in self.param_groups:
            for p in group["params"]:
                tile = getattr(p, "analog_tile", None) if isinstance(p, AnalogContext) else None
                if tile is not None and all(tile is not t for t in tiles):
                    tiles.append(tile)
        return tiles

    def regroup_param_groups(self, *_: Any) -> None:
        """Give each analog tile its own parameter group (aihwkit's method, kept for its
        scripts; anatile's :meth:`step` needs no regrouping).

        Each tile's learning rate is set to the optimizer's default ``lr``; groups left
        without parameters are dropped.
        """
        analog_groups: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        for group in self.param_groups:
            analog = [p for p in group["params"] if isinstance(p, AnalogContext)]
            for p in analog:
                tile = getattr(p, "analog_tile", None)
                if tile is not None:
                    tile.set_learning_rate(self.defaults["lr"])
                analog_groups.append({"params": [p]})
            group["params"] = [p for p in group["params"] if not isinstance(p, AnalogContext)]
            if group["params"]:
                kept.append(group)
        self.param_groups = kept
        for new_group in analog_groups:
            self.add_param_group(new_group)

    def set_learning_rate(self, learning_rate: float = 0.1) -> None:
        """Set the learning rate of every parameter group and of every analog tile.

        Args:
            learning_rate: the new learning rate (> 0).

        Raises:
            ValueError: if ``learning_rate`` is not positive (nothing is changed then).
        """
        if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
            raise ValueError(f"learning_rate: expected a number > 0, got {learning_rate!r}")
        for group in self.param_groups:
            group["lr"] = float(learning_rate)
        for tile in self._analog_tiles():
            tile.set_learning_rate(float(learning_rate))

    def _digital_step(self, p: Tensor, group: dict[str, Any]) -> None:
        grad = p.grad
        assert grad is not None
        if group["weight_decay"]:
            grad = grad.add(p, alpha=group["weight_decay"])
        if group["momentum"]:
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(group["momentum"]).add_(grad)
            grad = buf
        p.add_(grad, alpha=-group["lr"])
