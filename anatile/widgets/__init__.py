"""Live Jupyter views over anatile objects (ipywidgets + matplotlib, pointer input through
ipyevents).

Thin views: each widget subscribes to its model's events, stores what they carry and redraws
in place, throttled; the physics stays in the library. Every widget shows callback errors in
its own log area and has a static fallback (``_repr_png_`` and ``save(path)``).
"""

from anatile.widgets.budget_view import ErrorBudgetView
from anatile.widgets.compare import TileComparison, compare
from anatile.widgets.conductance_map import ConductanceMapView
from anatile.widgets.model_inspector import ModelInspector
from anatile.widgets.tile_inspector import TileInspector
from anatile.widgets.wpo_monitor import WPOMonitor

__all__ = [
    "ConductanceMapView",
    "ErrorBudgetView",
    "ModelInspector",
    "TileComparison",
    "TileInspector",
    "WPOMonitor",
    "compare",
]
