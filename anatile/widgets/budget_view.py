"""ErrorBudgetView: where the error of a tile, a layer or a model comes from, over time.

It draws :func:`anatile.analysis.error_budget` as stacked bars per inference time (one
segment per source, the unassigned rest as its own segment, the total as a black marker)
and lists :func:`anatile.analysis.diagnose`'s findings. The numbers are the library's;
tiles are named as the ModelInspector table names them (``0``, ``0[0,1]``).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
from torch import Tensor, nn

from anatile.analysis import (
    ATTRIBUTIONS,
    SOURCE_LABELS,
    SOURCES,
    diagnose,
    error_budget,
    format_time,
)
from anatile.widgets._base import AnatileWidget, tight_layout

__all__ = ["BUDGET_T_STEPS", "ErrorBudgetView", "findings_html"]

#: default inference times of the budget: 1 s, 1 h, 1 day, 1 month, 1 year
BUDGET_T_STEPS = (1.0, 3600.0, 86400.0, 30 * 86400.0, 365 * 86400.0)
#: one colour per source, in pipeline order, then the interaction
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f"]
_ATTRIBUTION_WORDS = {"shapley": "Shapley values", "leave_one_out": "leave-one-out parts"}
_SEVERITY = {"error": "#b00", "warning": "#b60", "info": "#555"}


def _finding_html(f: Any) -> str:
    return (f"<b style='color:{_SEVERITY.get(f.severity, '#555')}'>{f.severity}</b> "
            f"{'<code>' + f.where + '</code>: ' if f.where else ''}{f.message} "
            f"<i>fix:</i> <code>{f.fix}</code>")


def findings_html(findings: Sequence[Any], shown_per_kind: int = 2) -> str:
    """A list of :func:`~anatile.analysis.diagnose` findings: where, what, and the fix.

    Findings of one kind (severity and code) are listed together, worst first as
    ``diagnose`` orders them: the first ``shown_per_kind`` in full, the others (the same
    finding on further tiles, e.g. every tile of a split layer) folded under one
    expandable line naming the tiles, so a model of many tiles gets a readable list.
    """
    if not findings:
        return "<div class='anatile-findings'>diagnosis: nothing found</div>"
    kinds: dict[tuple[str, str], list[Any]] = {}
    for f in findings:
        kinds.setdefault((f.severity, f.code), []).append(f)
    items = []
    for group in kinds.values():
        items += [f"<li>{_finding_html(f)}</li>" for f in group[:shown_per_kind]]
        rest = group[shown_per_kind:]
        if rest:
            where = ", ".join(f"<code>{f.where}</code>" for f in rest if f.where)
            inner = "".join(f"<li>{_finding_html(f)}</li>" for f in rest)
            items.append(
                f"<li><details><summary>the same on {len(rest)} more tile(s): {where}"
                f"</summary><ul>{inner}</ul></details></li>")
    return f"<div class='anatile-findings'><b>diagnosis</b><ul>{''.join(items)}</ul></div>"


class ErrorBudgetView(AnatileWidget):
    """Stacked error budget over time of a tile, a layer or a model, with a diagnosis.

    Nothing is computed on opening (a budget simulates several chips); **Compute** runs
    :func:`~anatile.analysis.error_budget` off the kernel thread and then
    :func:`~anatile.analysis.diagnose`. For a model, a dropdown picks the model or one of
    its layers. With ``inputs`` the output error can be shown instead of the weight error.

    Args:
        target: a tile, an analog layer or a model.
        t_steps: inference times (s).
        inputs: a batch for ``target`` (adds the output error and the clipping checks).
        seed: seed of the budget's common random numbers.
        compute: compute at once (blocking) instead of waiting for the button.
        attribution: how the error is split among the sources (``"shapley"`` or
            ``"leave_one_out"``, see :func:`~anatile.analysis.error_budget`).

    Example:
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 8, seed=0)
        >>> tile.set_weights(0.1 * torch.randn(4, 8))
        >>> view = ErrorBudgetView(tile, t_steps=[1.0, 3600.0], compute=True)
        >>> view.budget.weight.total.shape
        torch.Size([2])
    """

    def __init__(self, target: nn.Module, t_steps: Sequence[float] = BUDGET_T_STEPS,
                 inputs: Tensor | None = None, seed: int = 0, compute: bool = False,
                 attribution: str = "shapley") -> None:
        if not isinstance(target, nn.Module):
            raise TypeError(f"target: expected a tile, a layer or a model, got "
                            f"{type(target).__name__}")
        if attribution not in ATTRIBUTIONS:
            raise ValueError(f"attribution: expected one of {ATTRIBUTIONS}, got "
                             f"{attribution!r}")
        super().__init__()
        self._holding = True
        self.target = target
        self.t_steps = [float(t) for t in t_steps]
        self.inputs = inputs
        self.seed = seed
        self.attribution = attribution
        #: the last :class:`~anatile.analysis.ErrorBudget` (None before Compute).
        self.budget: Any = None
        #: the last diagnosis (list of findings).
        self.findings: list[Any] = []
        self._thread: threading.Thread | None = None
        self.panel = self._panel("budget", (11.0, 3.0), self._update)
        self._ax = self.panel.figure.subplots()
        self._ax.set_xlabel("t_inference")
        self._ax.text(0.5, 0.5, "press Compute", transform=self._ax.transAxes, ha="center",
                      va="center", color="#777")
        tight_layout(self.panel.figure)
        self.compute_button = widgets.Button(description="Compute error budget",
                                             icon="calculator",  # not shrunk to "Compute er…"
                                             layout=widgets.Layout(width="auto",
                                                                   min_width="200px"))
        self.compute_button.on_click(self._guarded(lambda _b: self.compute(background=True)))
        self.level = widgets.Dropdown(options=["(whole)"], value="(whole)", description="show",
                                      layout=widgets.Layout(width="320px"))
        self.level.observe(self._guarded(lambda _c: self.refresh("budget")), names="value")
        self.which = widgets.ToggleButtons(options=["weight error", "output error"],
                                           value="weight error",
                                           disabled=inputs is None)
        self.which.observe(self._guarded(lambda _c: self.refresh("budget")), names="value")
        self.status = widgets.HTML("")
        self.status.add_class("anatile-budget-status")
        self.findings_area = widgets.HTML("")
        self.export_box = self._export_controls()
        self.children = [
            widgets.HBox([self.compute_button, self.level, self.which, self.status]),
            self.panel.image, self.findings_area, self.export_box, self._error_label,
            self.log_area,
        ]
        if compute:
            self._guarded(self.compute)()
        self.refresh("budget")

    # ------------------------------------------------------------------ compute
    def compute(self, background: bool = False) -> Any:
        """Compute the budget and the diagnosis (in a thread when ``background``)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("an error budget is already being computed")
        self.compute_button.disabled = True
        self.compute_button.description = "Computing…"
        self.status.value = "simulating chips…"
        if background:
            self._thread = threading.Thread(target=self._guarded(self._compute),
                                            name="anatile-budget", daemon=True)
            self._thread.start()
            return None
        return self._compute()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background computation ends; False on timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _compute(self) -> Any:
        try:
            budget = error_budget(self.target, self.t_steps, self.inputs, seed=self.seed,
                                  attribution=self.attribution)
            findings = diagnose(self.target, self.inputs)
            self.budget = budget
            self.findings = list(findings)
            self.level.options = ["(whole)", *(node.name for node in self._nodes())]
            self.level.value = "(whole)"
            self.findings_area.value = findings_html(self.findings)
            top = budget.weight.top_source()
            weight = budget.weight
            loo = sum(float(v.mean()) for v in weight.leave_one_out.values())
            ratio = loo / max(float(weight.total.mean()), 1e-300)
            self.status.value = (
                f"largest source of the weight error: <b>{SOURCE_LABELS.get(top, top)}</b> "
                f"(seed {self.seed})<br><small>{_ATTRIBUTION_WORDS[self.attribution]}; "
                f"the leave-one-out parts would add up to {ratio:.0%} of the total</small>")
            self.refresh("budget")
            return budget
        finally:
            self.compute_button.disabled = False
            self.compute_button.description = "Compute error budget"

    # ------------------------------------------------------------------ drawing
    def _nodes(self) -> list[Any]:
        """The budgets the dropdown offers below the whole: each layer, and the tiles of a
        layer that spans several (a one-tile layer's tile is the layer)."""
        nodes = []
        for child in self.budget.children if self.budget is not None else []:
            nodes.append(child)
            if len(child.children) > 1:
                nodes += child.children
        return nodes

    def _table(self) -> Any:
        if self.budget is None:
            return None
        node = self.budget
        if self.level.value != "(whole)":
            node = next((c for c in self._nodes() if c.name == self.level.value), node)
        if self.which.value == "output error" and node.output is not None:
            return node.output
        return node.weight

    def _update(self) -> None:
        table = self._table()
        ax = self._ax
        if table is None:
            return
        ax.clear()
        times = table.t_steps.tolist()
        x = np.arange(len(times))
        series = [(SOURCE_LABELS.get(s, s), table.parts[s].numpy()) for s in SOURCES
                  if s in table.parts]
        rest = ("interaction" if table.attribution == "leave_one_out"
                else "unassigned (all ideal)")
        series.append((rest, table.interaction.numpy()))
        up = np.zeros(len(times))
        down = np.zeros(len(times))
        for (label, values), color in zip(series, _COLORS, strict=False):
            bottom = np.where(values >= 0, up, down)
            ax.bar(x, values, bottom=bottom, color=color, label=label, width=0.6)
            up += np.clip(values, 0, None)
            down += np.clip(values, None, 0)
        ax.plot(x, table.total.numpy(), "k_", markersize=22, markeredgewidth=2,
                label="total")
        ax.axhline(0.0, color="k", linewidth=0.6)
        # a bar's bottom is a sticky edge: the top segment (the remainder, ~0 with Shapley)
        # would pin the axis to the total and clip its marker
        ax.use_sticky_edges = False
        ax.margins(y=0.08)
        ax.set_xticks(x, [format_time(t) for t in times])
        ax.set_xlabel("t_inference")
        ax.set_ylabel(table.metric.label, fontsize=8)
        how = ("Shapley values: parts add up to the total" if table.attribution == "shapley"
               else "leave-one-out parts + interaction = total")
        ax.set_title(f"{self.level.value if self.level.value != '(whole)' else 'whole'}: "
                     f"{table.metric.name} by source ({how})", fontsize=9)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        tight_layout(self.panel.figure)

    def export_data(self, directory: str | Path, stem: str | None = None) -> list[Path]:
        """The budget (every level, weight and output error) and the findings as CSV."""
        stem = stem or type(self).__name__
        written = []
        if self.budget is not None:
            for output in (False, True):
                rows = self.budget.to_rows(output)
                if not rows:
                    continue
                path = Path(directory) / f"{stem}_{'output' if output else 'weight'}.csv"
                with path.open("w", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(rows)
                written.append(path)
        if self.findings:
            path = Path(directory) / f"{stem}_findings.csv"
            rows = [f.to_row() for f in self.findings]
            with path.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            written.append(path)
        return written
