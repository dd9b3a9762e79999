"""Plotting helpers shared by the widgets: device names, g(w) curves, deterministic
subsampling, histograms and summary readouts. Presentation only: every conductance comes
from a converter, every weight from a tile."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from anatile.inference import (
    BaseConductanceConverter,
    CustomPairConductanceConverter,
    NPairConductanceConverter,
)

__all__ = [
    "DEVICE_COLORS",
    "axis_label",
    "conductance_curves",
    "converter_title",
    "device_style",
    "few_ticks",
    "error_summary",
    "format_readouts",
    "histogram",
    "subsample_indices",
]

#: one colour per pair; the + device is drawn solid, the − device dashed.
DEVICE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def few_ticks(axes: Iterable[Axes], n: int = 4) -> None:
    """At most ``n`` ticks per linear axis: tick-label layout is most of a redraw's cost."""
    for ax in axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale == "linear":
                axis.set_major_locator(MaxNLocator(n))


def axis_label(metric: Any) -> str:
    """A metric's label on two lines (name, then symbol and unit): a long label such as the
    TNMSE's fits beside a short axis instead of running past the figure's edge."""
    return f"{metric.name}\n{metric.symbol} ({metric.unit})"


def device_style(index: int, n_devices: int) -> dict[str, Any]:
    """Colour and line style of device ``index``: one colour per pair, the − device dashed."""
    return {
        "color": DEVICE_COLORS[(index // 2) % len(DEVICE_COLORS)],
        "linestyle": "--" if n_devices > 1 and index % 2 == 1 else "-",
    }


def converter_title(converter: BaseConductanceConverter) -> str:
    """Short description: class name without the common suffix, plus its f factors."""
    name = type(converter).__name__.replace("ConductanceConverter", "")
    if isinstance(converter, (NPairConductanceConverter, CustomPairConductanceConverter)):
        f_lst = converter.f_lst
        name += " f=[" + ", ".join(f"{f:.3g}" for f in f_lst) + "]"
    return name


def conductance_curves(
    converter: BaseConductanceConverter, n_points: int = 201
) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    """g(w) of every device of ``converter`` over normalized weights ``w ∈ [−1, 1]``.

    Returns:
        ``(w, [g_device...])`` as numpy arrays (µS), from ``device_conductances``.
    """
    w = torch.linspace(-1.0, 1.0, n_points, dtype=torch.float64)
    conductances, _ = converter.device_conductances(w)
    return w.numpy(), [g.detach().cpu().double().numpy() for g in conductances]


def plot_conductance_curves(
    ax: Axes, converter: BaseConductanceConverter, n_points: int = 201
) -> list[Line2D]:
    """Draw g(w) per device on ``ax`` (one line per device, labelled); returns the lines."""
    w, gs = conductance_curves(converter, n_points)
    lines = []
    for i, (label, g) in enumerate(zip(converter.device_names, gs, strict=True)):
        (line,) = ax.plot(w, g, label=label, **device_style(i, len(gs)))
        lines.append(line)
    ax.set_xlabel("weight / max|W|")
    ax.set_ylabel("conductance (µS)")
    return lines


def subsample_indices(n: int, k: int, seed: int = 0) -> NDArray[np.int64]:
    """``min(n, k)`` distinct indices of ``range(n)``, sorted, the same for the same inputs.

    A fixed-seed uniform draw (not a stride, which would alias with matrix rows/columns).
    """
    if n <= k:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)


def histogram(
    values: NDArray[Any], bins: int = 60, span: float | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Counts and edges over ``[−span, span]`` (default: the largest |value|)."""
    finite = values[np.isfinite(values)]
    if span is None:
        span = float(np.abs(finite).max()) if finite.size else 1.0
    span = span if span > 0 else 1.0
    counts, edges = np.histogram(finite, bins=bins, range=(-span, span))
    return counts.astype(np.float64), edges


def error_summary(target: Any, read: Any) -> dict[str, float]:
    """RMSE, max |error| and relative error ``‖read − target‖ / ‖target‖`` (Frobenius).

    Accepts tensors or arrays of the same shape; computed in float64 numpy (one pass over
    the error, which is what a 512×512 redraw can afford).
    """
    t = np.asarray(target.detach().cpu() if isinstance(target, torch.Tensor) else target,
                   dtype=np.float64)
    r = np.asarray(read.detach().cpu() if isinstance(read, torch.Tensor) else read,
                   dtype=np.float64)
    err = (r - t).reshape(-1)
    # plain ufunc reductions: a BLAS dot spins up its thread pool, which on a busy 2-core
    # machine costs more than the whole 512×512 reduction
    sq = float(np.square(err).sum())
    norm_t = float(np.sqrt(np.square(t).sum()))
    return {
        "rmse": float(np.sqrt(sq / err.size)),
        "max_error": float(np.abs(err).max()),
        "relative_error": float(np.sqrt(sq)) / norm_t if norm_t > 0 else float("nan"),
    }


def format_readouts(items: dict[str, str]) -> str:
    """Named readouts in one wrapping row; each value has the CSS class ``anatile-<name>``."""
    cells = "".join(
        f"<span style='white-space:nowrap'><b>{k}</b>&nbsp;"
        f"<span class='anatile-{_slug(k)}'>{v}</span></span>"
        for k, v in items.items()
    )
    return f"<div style='display:flex;flex-wrap:wrap;gap:2px 14px'>{cells}</div>"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
