"""Questions asked of tiles and models: where the error comes from and which layer costs.

This layer sits above ``nn`` and ``wpo`` and below ``widgets``: it runs experiments on
models and tiles and returns plain results (dataclasses of tensors and floats, with a
``to_rows()`` for tables) that widgets only draw. Every error metric is one of
:mod:`anatile.analysis.metrics` (its TNMSE is ``anatile.analysis.metrics.tnmse``: the name
``anatile.analysis.tnmse`` is the module of :func:`tnmse_over_time`).
"""

from anatile.analysis.accuracy import (
    DEFAULT_TIME_SECONDS,
    DEFAULT_TIMES,
    AccuracyOverTime,
    accuracy_over_time,
    format_time,
)
from anatile.analysis.budget import (
    ATTRIBUTIONS,
    SOURCE_LABELS,
    SOURCES,
    BudgetTable,
    ErrorBudget,
    error_budget,
)
from anatile.analysis.diagnose import SEVERITIES, Finding, diagnose
from anatile.analysis.metrics import (
    METRICS,
    Metric,
    nmse,
    output_nrmse,
    weight_max_error,
    weight_nmse,
    weight_nrmse,
)
from anatile.analysis.sensitivity import LayerSensitivity, layer_sensitivity
from anatile.analysis.tiles import (
    LayerSummary,
    LayerWeightMap,
    TileSummary,
    layer_weight_map,
    tile_labels,
    tile_summaries,
    tile_weight_error,
)
from anatile.analysis.tnmse import tnmse_over_time
from anatile.analysis.trace import WeightTrace, WeightTracer, weight_trace

__all__ = [
    "ATTRIBUTIONS",
    "DEFAULT_TIMES",
    "DEFAULT_TIME_SECONDS",
    "METRICS",
    "SEVERITIES",
    "SOURCES",
    "SOURCE_LABELS",
    "AccuracyOverTime",
    "BudgetTable",
    "ErrorBudget",
    "Finding",
    "LayerSensitivity",
    "LayerSummary",
    "LayerWeightMap",
    "Metric",
    "TileSummary",
    "WeightTrace",
    "WeightTracer",
    "accuracy_over_time",
    "tile_labels",
    "tile_summaries",
    "diagnose",
    "error_budget",
    "format_time",
    "layer_sensitivity",
    "layer_weight_map",
    "nmse",
    "output_nrmse",
    "tile_weight_error",
    "tnmse_over_time",
    "weight_max_error",
    "weight_nmse",
    "weight_nrmse",
    "weight_trace",
]
