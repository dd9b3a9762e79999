"""PanelHost: what a widget that hosts a panel of another module provides to it.

The :class:`~anatile.widgets.tile_inspector.TileInspector` hosts the
:class:`~anatile.widgets.inference_panel.InferencePanel` through this protocol, so the panel
does not import the inspector (no cycle between the two modules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from torch import Tensor

from anatile.widgets._base import F, FigurePanel

__all__ = ["PanelHost"]


class PanelHost(Protocol):
    """What the widget hosting an :class:`InferencePanel` provides (the TileInspector).

    Its traits ``selected``, ``t_inference`` and ``alpha`` are the state the panel observes
    and sets; ``trace`` holds the selected weight's trace.
    """

    #: RMSE, max |error| and relative error of the last weights shown.
    stats: dict[str, float]
    selected: Any
    t_inference: Any
    alpha: Any
    trace: Any

    def add_panel(
        self, name: str, figsize: tuple[float, float], update: Callable[[], None]
    ) -> FigurePanel:
        """A figure panel redrawn by the host (``update`` runs before each redraw)."""
        ...

    def guarded(self, fn: F) -> F:
        """``fn`` wrapped so that its exceptions land in the host's log area."""
        ...

    def invalidate(self, *names: str) -> None:
        """Ask for a throttled redraw of the named panels."""
        ...

    def refresh(self, *names: str) -> None:
        """Redraw the named panels now."""
        ...

    def observe(self, handler: Callable[[Any], None], names: Any = ...) -> None:
        """traitlets' observe on the host's traits."""
        ...

    def show_weights(self, weight: Tensor, label: str = "read", defer: bool = False) -> None:
        """Compare ``weight`` with the host's target weights and redraw."""
        ...
