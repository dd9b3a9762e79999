"""Plotting helpers shared by the widgets: device names, g(w) curves, deterministic
subsampling, histograms and summary readouts. Presentation only: every conductance comes
from a converter, every weight from a tile."""

from __future__ import annotations

import math
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
    "format_seconds",
    "histogram",
    "log_range",
    "max_pool",
    "nice_ceil",
    "nice_range",
    "subsample_indices",
    "warm_up_custom_pair_curves",
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


def warm_up_custom_pair_curves() -> None:
    """Evaluate one custom-pair g(w) (what the WPOMonitor draws per best strategy). The
    first evaluation in a process imports torch's symbolic machinery (~0.8 s of CPU): a
    live view pays it when it is built, not in a frame during the run it watches."""
    conv = CustomPairConductanceConverter(
        [1.0, 1.0], [[0.0, 12.5, 25.0], [0.0, 0.0, 0.0], [0.0, 0.0, 25.0], [0.0, 0.0, 0.0]],
        invertibility_test=False)
    conductance_curves(conv, 3)


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


#: mantissas of :func:`nice_ceil` (steps of at most 25 %).
NICE_STEPS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceil(value: float, steps: tuple[float, ...] = NICE_STEPS) -> float:
    """The smallest ``m · 10^k ≥ value`` with ``m`` in ``steps`` (value > 0; the steps
    ascend from 1.0 to 10.0).

    Axis limits and colour scales are rounded up to these, so that a new frame whose data
    span moved by a few % keeps the previous frame's axes (and the panel redraws only its
    data, see :class:`~anatile.widgets._figure.FigurePanel`). Non-positive or non-finite
    values give 1.0.
    """
    if not (math.isfinite(value) and value > 0):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in steps:
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-12):
            return float(candidate)
    return float(10.0 ** (exponent + 1))


def nice_range(values: NDArray[Any], intervals: int = 4) -> tuple[float, float]:
    """Axis limits around the finite ``values``, snapped outwards to multiples of a nice
    step (:func:`nice_ceil` of the span / ``intervals``): data of about the same range keep
    the same limits (and the panel its kept axes). ``(0, 1)`` without finite values."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo if hi > lo else max(abs(hi), 1e-12) * 0.1
    step = nice_ceil(span / intervals)
    lo_s, hi_s = math.floor(lo / step) * step, math.ceil(hi / step) * step
    # keep a margin: a value on the edge would sit on the frame
    if lo - lo_s < 0.02 * span:
        lo_s -= step
    if hi_s - hi < 0.02 * span:
        hi_s += step
    return float(lo_s), float(hi_s)


def max_pool(values: NDArray[Any], factor_rows: int, factor_cols: int) -> NDArray[np.float64]:
    """Block maxima of a 2-D array (NaN ignored), blocks of ``factor_rows × factor_cols``.

    A heatmap drawn on fewer screen pixels than it has cells shows one cell per pixel and
    drops the others; the block maximum keeps a single bad cell visible. Edge blocks that
    run past the array are padded with NaN.
    """
    rows, cols = values.shape
    fr, fc = max(1, int(factor_rows)), max(1, int(factor_cols))
    if fr == 1 and fc == 1:
        return np.asarray(values, dtype=np.float64)
    n_r, n_c = -(-rows // fr), -(-cols // fc)
    padded = np.full((n_r * fr, n_c * fc), np.nan)
    padded[:rows, :cols] = values
    blocks = padded.reshape(n_r, fr, n_c, fc)
    return np.asarray(np.fmax.reduce(np.fmax.reduce(blocks, axis=3), axis=1))


def format_seconds(seconds: float | None) -> str:
    """A duration for a status line: ``12.3 s``, ``4:05``, ``1:02:03``; ``–`` when unknown."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    seconds = max(0.0, float(seconds))
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


def log_range(lo: float, hi: float, per_decade: int = 2) -> tuple[float, float]:
    """``[lo, hi]`` widened to ``1 / per_decade`` decades (so a log axis keeps its limits
    while the values move a little)."""
    q_lo = np.floor(per_decade * np.log10(lo)) / per_decade
    q_hi = np.ceil(per_decade * np.log10(hi)) / per_decade
    return float(10.0**q_lo), float(10.0**max(q_hi, q_lo + 1 / per_decade))


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
