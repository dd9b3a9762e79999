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
        return loss

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
