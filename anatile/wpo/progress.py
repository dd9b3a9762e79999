"""A ready-made progress bar subscriber (``tqdm.auto``: a widget in Jupyter, text elsewhere)."""

from __future__ import annotations

from typing import Any

from anatile.wpo.events import (
    BaselineMeasured,
    GenerationFinished,
    OptimizerFinished,
    OptimizerStarted,
)

__all__ = ["TqdmProgress"]


class TqdmProgress:
    """Show optimizer progress with a tqdm bar: one step per generation.

    ``tqdm`` is imported when the run starts, so anatile does not depend on it.

    Args:
        stop_after: optional generation count after which the subscriber asks the
            optimizer to stop (returns True), handy in demos.
        **tqdm_kwargs: passed to ``tqdm.auto.tqdm`` (e.g. ``leave=False``, ``file=...``).

    Example:
        >>> progress = TqdmProgress()
        >>> # optimizer.events.subscribe(progress)
    """

    def __init__(self, stop_after: int | None = None, **tqdm_kwargs: Any) -> None:
        self.stop_after = stop_after
        self.tqdm_kwargs = tqdm_kwargs
        self.bar: Any = None
        self.baseline: float | None = None

    def __call__(self, event: Any) -> bool:
        """Handle one optimizer event; returns True to request a stop."""
        if isinstance(event, OptimizerStarted):
            from tqdm.auto import tqdm

            kwargs = {"desc": "WPO", "unit": "gen", **self.tqdm_kwargs}
            self.bar = tqdm(total=event.maxiter, **kwargs)
        elif isinstance(event, BaselineMeasured):
            self.baseline = event.baseline_tnmse
        elif isinstance(event, GenerationFinished) and self.bar is not None:
            self.bar.update(event.generation - self.bar.n)
            postfix = {"loss": f"{event.best_loss:+.4f}", "tnmse": f"{event.best_tnmse:.4g}"}
            if self.baseline is not None:
                postfix["baseline"] = f"{self.baseline:.4g}"
            self.bar.set_postfix(postfix, refresh=False)
            if self.stop_after is not None and event.generation >= self.stop_after:
                return True
        elif isinstance(event, OptimizerFinished) and self.bar is not None:
            self.bar.close()
            self.bar = None
        return False
