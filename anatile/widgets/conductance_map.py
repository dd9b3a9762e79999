"""ConductanceMapView: programming strategies side by side, and their error over time."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch

from anatile.analysis import tnmse_over_time
from anatile.analysis.metrics import TNMSE
from anatile.checks import check_times
from anatile.config.base import config_to_dict
from anatile.inference import BaseConductanceConverter, BaseNoiseModel
from anatile.widgets._base import AnatileWidget, tight_layout
from anatile.widgets._plots import axis_label, converter_title, plot_conductance_curves

__all__ = ["ConductanceMapView"]

DEFAULT_T_STEPS = (1.0, 60.0, 3600.0, 86400.0, 30 * 86400.0, 365 * 86400.0)


class ConductanceMapView(AnatileWidget):
    """g(w) of every device of each converter side by side, and TNMSE over time.

    Args:
        *converters: the conductance converters to compare (e.g. a baseline and the
            optimizer's result).
        noise_model: a noise model (e.g. ``PCMLikeNoiseModel()``); when given, a second panel
            shows the TNMSE of each converter at each of ``t_steps``, computed by
            :func:`anatile.wpo.loss.loss_weights` (the optimizer's own loss).
        weights: the weights the TNMSE is measured on, 2-D in tile layout (a 1-D tensor is
            one row); default a fixed-seed Gaussian ``20 × 512`` matrix, the WPO test-layer
            shape. :meth:`from_optimizer` uses the optimizer's own test weights.
        t_steps: inference times (s) of the TNMSE panel.
        names: labels of the converters (default: class name and f factors).
        seed: seed of the first noise draw; every converter sees the same draws, and each
            **Recompute** draws new noise (seed + 1, + 2, …, shown in the panel title).

    Raises:
        TypeError: if a positional argument is not a conductance converter,
            ``noise_model`` is not a noise model, or ``t_steps`` is not a list of numbers.
        ValueError: if no converter is given, ``names`` has the wrong length, or a time
            step is negative or not finite.

    Example:
        >>> from anatile.inference import SinglePairConductanceConverter
        >>> view = ConductanceMapView(SinglePairConductanceConverter())
        >>> len(view.curves[0])  # g+ and g−
        2
    """

    def __init__(
        self,
        *converters: BaseConductanceConverter,
        noise_model: BaseNoiseModel | None = None,
        weights: Any = None,
        t_steps: Sequence[float] = DEFAULT_T_STEPS,
        names: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        if not converters:
            raise ValueError("converters: expected at least one conductance converter")
        for i, conv in enumerate(converters):
            if not isinstance(conv, BaseConductanceConverter):
                raise TypeError(
                    f"converters[{i}]: expected a conductance converter, "
                    f"got {type(conv).__name__}"
                )
        if noise_model is not None and not isinstance(noise_model, BaseNoiseModel):
            raise TypeError(
                f"noise_model: expected a noise model or None, got {type(noise_model).__name__}"
            )
        t_list = check_times("t_steps", t_steps)
        if names is not None and len(names) != len(converters):
            raise ValueError(
                f"names: expected {len(converters)} names, got {len(names)}"
            )
        super().__init__()
        self._holding = True
        self.converters = list(converters)
        self.names = list(names) if names is not None else [converter_title(c) for c in converters]
        self.noise_model = noise_model
        self.t_steps = t_list
        self.seed = seed
        #: how many noise draws were made (Recompute adds one); the last used seed + draw.
        self.draws = 0
        self.weights = weights
        self._thread: threading.Thread | None = None
        #: TNMSE per converter (rows) and time step (columns), or None without a noise model.
        self.tnmse: np.ndarray | None = None
        #: the noise seed of :attr:`tnmse`.
        self.tnmse_seed: int | None = None

        n = len(self.converters)
        self.map_panel = self._panel("map", (3.4 * n + 0.6, 3.2))
        axes = self.map_panel.figure.subplots(1, n, sharey=True, squeeze=False)[0]
        #: the g(w) lines of each converter, one per device
        self.curves = []
        for i, (ax, conv, name) in enumerate(zip(axes, self.converters, self.names,
                                                  strict=True)):
            self.curves.append(plot_conductance_curves(ax, conv))
            if i:
                ax.set_ylabel("")
            ax.set_title(name, fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
        tight_layout(self.map_panel.figure)
        children: list[widgets.Widget] = [self.map_panel.image]

        if noise_model is not None:
            # as wide as the g(w) panel: both images are shown at one scale (same font size)
            self.tnmse_panel = self._panel("tnmse", (3.4 * n + 0.6, 3.2), self._update_tnmse)
            ax = self.tnmse_panel.figure.subplots()
            ax.set_xscale("log")
            ax.set_xlabel("t_inference (s)")
            ax.set_ylabel(axis_label(TNMSE), fontsize=8)
            ax.set_title("TNMSE over time", fontsize=9)  # room for the title in the layout
            ax.grid(alpha=0.3, which="both")
            self._tnmse_ax = ax
            self._tnmse_lines = [
                ax.plot([], [], marker="o", label=name)[0] for name in self.names
            ]
            ax.legend(fontsize=8)
            tight_layout(self.tnmse_panel.figure)
            self.compute_button = widgets.Button(description="Recompute TNMSE (new noise)",
                                                 icon="refresh",
                                                 layout=widgets.Layout(width="auto"))
            self.compute_button.on_click(
                self._guarded(lambda _b: self.compute_tnmse(background=True)))
            self.progress = widgets.IntProgress(value=0, min=0, max=1,
                                                description="TNMSE")
            self.progress_label = widgets.HTML("")
            self.progress_label.add_class("anatile-progress-label")
            children += [self.tnmse_panel.image,
                         widgets.HBox([self.compute_button, self.progress,
                                       self.progress_label])]
            self._guarded(self.compute_tnmse)()
        self.export_box = self._export_controls()
        children += [self.export_box, self._error_label, self.log_area]
        self.children = children
        self.refresh("map", *(["tnmse"] if noise_model is not None else []))

    @classmethod
    def from_optimizer(
        cls,
        optimizer: Any,
        *converters: BaseConductanceConverter,
        names: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> ConductanceMapView:
        """A view measuring TNMSE exactly where ``optimizer`` does: its test weights, noise
        model and time steps.

        Args:
            optimizer: a ``WeightProgrammingOptimizer``.
            *converters: the converters to compare (default: the optimizer's baseline and,
                once it has run, its result).
            names: labels of the converters.
            seed: seed of the first noise draw (default the optimizer's seed).
        """
        if not converters:
            converters = (optimizer.g_converter_baseline,)
            result = getattr(optimizer, "result", None)
            if result is not None:
                converters += (result.converter,)
                if names is None:
                    names = ["baseline", "optimized"]
        return cls(*converters, noise_model=optimizer.noise_model,
                   weights=optimizer.test_weights, t_steps=list(optimizer.t_steps),
                   names=names, seed=optimizer.options.seed if seed is None else seed)

    def compute_tnmse(self, background: bool = False) -> np.ndarray | None:
        """Draw new noise and compute the TNMSE of every converter at every time step.

        The numbers come from :func:`anatile.analysis.tnmse_over_time` (the same seed for
        every converter, so the same draws), one converter at a time so that the progress
        bar moves.

        Args:
            background: run in a thread (the notebook stays usable; the button does this).

        Returns:
            ``[n_converters, len(t_steps)]`` TNMSE values (also in :attr:`tnmse`); None when
            started in the background.

        Raises:
            ValueError: without a noise model.
            RuntimeError: while a computation is already running.
        """
        if self.noise_model is None:
            raise ValueError("noise_model: the TNMSE panel needs a noise model")
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("a TNMSE computation is already running")
        seed = self.seed + self.draws
        self.draws += 1
        self.compute_button.disabled = True
        self.compute_button.description = "Computing…"
        self.progress.max = len(self.converters) * len(self.t_steps)
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.progress_label.value = f"noise seed {seed}"
        if background:
            self._thread = threading.Thread(target=self._guarded(self._compute), args=(seed,),
                                            name="anatile-tnmse", daemon=True)
            self._thread.start()
            return None
        return self._compute(seed)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background computation ends; False on timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _compute(self, seed: int) -> np.ndarray:
        assert self.noise_model is not None
        try:
            weights = self._test_weights()
            rows = []
            for conv in self.converters:  # one converter at a time: the progress bar moves
                rows.append(tnmse_over_time([conv], self.noise_model, weights, self.t_steps,
                                            seed)[0])
                self.progress.value += len(self.t_steps)
            self.tnmse = np.asarray(rows, dtype=np.float64)
            self.tnmse_seed = seed
            self.progress.bar_style = "success"
            self.progress_label.value = (
                f"noise seed {seed} (draw {self.draws}), {weights.shape[0]}×{weights.shape[1]} "
                "weights")
            self.refresh("tnmse")
            return self.tnmse
        finally:
            self.compute_button.disabled = False
            self.compute_button.description = "Recompute TNMSE (new noise)"

    def _test_weights(self) -> torch.Tensor:
        if self.weights is None:
            gen = torch.Generator().manual_seed(self.seed)
            return torch.randn(20, 512, generator=gen)
        w = torch.as_tensor(self.weights, dtype=torch.float32).detach()
        return w.reshape(1, -1) if w.dim() == 1 else w

    def _update_tnmse(self) -> None:
        if self.tnmse is None:
            return
        self._tnmse_ax.set_title(f"TNMSE over time (noise seed {self.tnmse_seed})",
                                 fontsize=9)
        t = np.asarray(self.t_steps)
        for line, row in zip(self._tnmse_lines, self.tnmse, strict=True):
            line.set_data(t, row)
        self._tnmse_ax.relim()
        self._tnmse_ax.autoscale_view()

    def export_data(self, directory: str | Path, stem: str | None = None) -> list[Path]:
        """The converters as JSON (``to_dict`` with their type) and, with a noise model, the
        TNMSE table as CSV (one row per converter, one column per time step)."""
        stem = stem or type(self).__name__
        folder = Path(directory)
        conv_path = folder / f"{stem}_converters.json"
        conv_path.write_text(json.dumps(
            [{"name": name, "converter": config_to_dict(conv)}
             for name, conv in zip(self.names, self.converters, strict=True)], indent=2))
        written = [conv_path]
        if self.tnmse is not None:
            table = folder / f"{stem}_tnmse.csv"
            with table.open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["converter", *(f"tnmse_t={t:g}s" for t in self.t_steps)])
                for name, row in zip(self.names, self.tnmse, strict=True):
                    writer.writerow([name, *(repr(float(v)) for v in row)])
            written.append(table)
        return written
