"""ConductanceMapView: programming strategies side by side, and their error over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch

from anatile.analysis import tnmse_over_time
from anatile.inference import BaseConductanceConverter, BaseNoiseModel
from anatile.widgets._base import AnatileWidget
from anatile.widgets._plots import converter_title, plot_conductance_curves

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
            shape.
        t_steps: inference times (s) of the TNMSE panel.
        names: labels of the converters (default: class name and f factors).
        seed: seed of the noise draws, so that the converters see the same draws.

    Raises:
        TypeError: if a positional argument is not a conductance converter, or
            ``noise_model`` is not a noise model.
        ValueError: if no converter is given or ``names`` has the wrong length.

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
        if names is not None and len(names) != len(converters):
            raise ValueError(
                f"names: expected {len(converters)} names, got {len(names)}"
            )
        super().__init__()
        self.converters = list(converters)
        self.names = list(names) if names is not None else [converter_title(c) for c in converters]
        self.noise_model = noise_model
        self.t_steps = [float(t) for t in t_steps]
        self.seed = seed
        self.weights = weights
        #: TNMSE per converter and time step (rows: converters), or None without a noise model.
        self.tnmse: np.ndarray | None = None

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
            ax.legend(fontsize=7, loc="upper center")
        self.map_panel.figure.tight_layout()
        children: list[widgets.Widget] = [self.map_panel.image]

        if noise_model is not None:
            self.tnmse_panel = self._panel("tnmse", (6.0, 3.0), self._update_tnmse)
            ax = self.tnmse_panel.figure.subplots()
            ax.set_xscale("log")
            ax.set_xlabel("t_inference (s)")
            ax.set_ylabel("TNMSE")
            ax.grid(alpha=0.3, which="both")
            self._tnmse_ax = ax
            self._tnmse_lines = [
                ax.plot([], [], marker="o", label=name)[0] for name in self.names
            ]
            ax.legend(fontsize=8)
            self.tnmse_panel.figure.tight_layout()
            self.compute_button = widgets.Button(description="Recompute TNMSE", icon="refresh")
            self.compute_button.on_click(self._guarded(lambda _b: self.compute_tnmse()))
            children += [self.tnmse_panel.image, self.compute_button]
            self._guarded(self.compute_tnmse)()
        children += [self._error_label, self.log_area]
        self.children = children
        self.refresh("map")

    def compute_tnmse(self) -> np.ndarray:
        """(Re)compute the TNMSE of every converter at every time step and redraw.

        The numbers come from :func:`anatile.analysis.tnmse_over_time` (same seed for
        every converter, so the same draws).

        Returns:
            ``[n_converters, len(t_steps)]`` TNMSE values (also in :attr:`tnmse`).
        """
        if self.noise_model is None:
            raise ValueError("noise_model: the TNMSE panel needs a noise model")
        self.tnmse = tnmse_over_time(self.converters, self.noise_model, self._test_weights(),
                                     self.t_steps, self.seed)
        self.refresh("tnmse")
        return self.tnmse

    def _test_weights(self) -> torch.Tensor:
        if self.weights is None:
            gen = torch.Generator().manual_seed(self.seed)
            return torch.randn(20, 512, generator=gen)
        w = torch.as_tensor(self.weights, dtype=torch.float32).detach()
        return w.reshape(1, -1) if w.dim() == 1 else w

    def _update_tnmse(self) -> None:
        if self.tnmse is None:
            return
        t = np.asarray(self.t_steps)
        for line, row in zip(self._tnmse_lines, self.tnmse, strict=True):
            line.set_data(t, row)
        self._tnmse_ax.relim()
        self._tnmse_ax.autoscale_view()
