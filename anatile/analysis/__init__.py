"""Questions asked of tiles and models: accuracy and TNMSE over time (more to come).

This layer sits above ``nn`` and ``wpo`` and below ``widgets``: it runs experiments on
models and tiles and returns plain results that widgets only draw.
"""

from anatile.analysis.accuracy import (
    DEFAULT_TIME_SECONDS,
    DEFAULT_TIMES,
    AccuracyOverTime,
    accuracy_over_time,
    format_time,
)
from anatile.analysis.tnmse import tnmse_over_time

__all__ = [
    "DEFAULT_TIMES",
    "DEFAULT_TIME_SECONDS",
    "AccuracyOverTime",
    "accuracy_over_time",
    "format_time",
    "tnmse_over_time",
]
