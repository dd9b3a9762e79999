"""Accuracy of a classifier over time on drifting PCM, with and without drift compensation.

The experiment behind ``docs/inference.md``: convert a trained digital model to inference
tiles, program it ``repetitions`` times (each time a new chip: fresh programming noise and
drift exponents), drift each chip through the inference times and measure the test
accuracy, once with the compensation ``alpha`` and once without (``alpha = 1``) on the same
drifted chip, so the two columns are paired.

Example:
    >>> import torch
    >>> from anatile.inference import SinglePairConductanceConverter
    >>> net = torch.nn.Linear(4, 3)
    >>> x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    >>> table = accuracy_over_time(net, SinglePairConductanceConverter(), [1.0, 3600.0],
    ...                            repetitions=2, seed=0, x_test=x, y_test=y)
    >>> table.mean["global"].shape
    torch.Size([2])
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from anatile.config.rpu_config import InferenceRPUConfig
from anatile.inference.compensation import BaseDriftCompensation, GlobalDriftCompensation
from anatile.inference.converter import BaseConductanceConverter
from anatile.nn.conversion import convert_to_analog, inference_tiles

__all__ = [
    "DEFAULT_TIMES",
    "DEFAULT_TIME_SECONDS",
    "AccuracyOverTime",
    "accuracy_over_time",
    "format_time",
]

DEFAULT_TIMES: tuple[tuple[str, float], ...] = (
    ("1 s", 1.0),
    ("1 h", 3600.0),
    ("1 day", 86400.0),
    ("1 month", 30 * 86400.0),
    ("1 year", 365 * 86400.0),
)
"""Inference times of the documented table: label and seconds."""

DEFAULT_TIME_SECONDS: tuple[float, ...] = tuple(seconds for _, seconds in DEFAULT_TIMES)
"""The seconds of :data:`DEFAULT_TIMES` (1 s, 1 h, 1 day, 30 days, 365 days)."""

_TIME_LABELS = {seconds: label for label, seconds in DEFAULT_TIMES}


def format_time(seconds: float) -> str:
    """``"1 h"`` for 3600 etc. (the labels of :data:`DEFAULT_TIMES`), else ``"{s:g} s"``.

    Example:
        >>> from anatile.analysis import format_time
        >>> format_time(3600.0), format_time(42.0)
        ('1 h', '42 s')
    """
    return _TIME_LABELS.get(seconds, f"{seconds:g} s")


@dataclass
class AccuracyOverTime:
    """Result of :func:`accuracy_over_time`.

    Attributes:
        converter: ``repr`` of the conductance converter.
        t_inference: the inference times (s).
        accuracies: per compensation mode (``"none"`` and the compensation's name, e.g.
            ``"global"``), a ``[repetitions, len(t_inference)]`` tensor of accuracies (0..1).
        digital_accuracy: accuracy of the digital model on the same data.
        elapsed_s: wall time of the experiment.

    Example:
        >>> net = nn.Linear(4, 3)
        >>> x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
        >>> table = accuracy_over_time(net, None, [1.0, 86400.0], repetitions=2, x_test=x, y_test=y)
        >>> isinstance(table, AccuracyOverTime), table.t_inference
        (True, [1.0, 86400.0])
        >>> sorted(table.mean)  # with and without drift compensation
        ['global', 'none']
    """

    converter: str
    t_inference: list[float]
    accuracies: dict[str, Tensor]
    digital_accuracy: float
    elapsed_s: float
    mean: dict[str, Tensor] = field(init=False)
    std: dict[str, Tensor] = field(init=False)

    def __post_init__(self) -> None:
        self.mean = {k: v.mean(0) for k, v in self.accuracies.items()}
        self.std = {
            k: v.std(0) if v.shape[0] > 1 else torch.zeros_like(v[0])
            for k, v in self.accuracies.items()
        }

    def to_markdown(self, title: str | None = None) -> str:
        """A Markdown table: one row per time, ``mean ± std`` in % per compensation mode."""
        modes = list(self.accuracies)
        head = "| t | " + " | ".join(f"{_mode_label(m)} (%)" for m in modes) + " |"
        rule = "|---|" + "---:|" * len(modes)
        rows = [head, rule]
        for j, t in enumerate(self.t_inference):
            cells = [
                f"{100 * float(self.mean[m][j]):.1f} ± {100 * float(self.std[m][j]):.1f}"
                for m in modes
            ]
            rows.append(f"| {format_time(t)} | " + " | ".join(cells) + " |")
        lines = [] if title is None else [title, ""]
        return "\n".join(lines + rows)


def _mode_label(mode: str) -> str:
    return "no compensation" if mode == "none" else f"{mode} compensation"


def _compensation_name(comp: BaseDriftCompensation) -> str:
    name = type(comp).__name__.removesuffix("DriftCompensation")
    return name.lower() or "compensation"


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return float((model(x).argmax(dim=-1) == y).double().mean())


@torch.no_grad()
def accuracy_over_time(
    model: nn.Module,
    g_converter: BaseConductanceConverter | None = None,
    t_inference: Sequence[float] = DEFAULT_TIME_SECONDS,
    repetitions: int = 10,
    seed: int = 0,
    *,
    x_test: Tensor,
    y_test: Tensor,
    rpu_config: InferenceRPUConfig | None = None,
    compensation: BaseDriftCompensation | None = None,
) -> AccuracyOverTime:
    """Test accuracy of ``model`` on drifting PCM tiles, with and without compensation.

    Args:
        model: trained digital classifier (``Linear``/``Conv2d`` layers are converted; the
            model itself is not changed).
        g_converter: conductance converter to use (default: the one of ``rpu_config``'s
            noise model); the noise model's ``g_max`` follows it.
        t_inference: inference times (s, ≥ 0).
        repetitions: number of independently programmed chips (≥ 1).
        seed: makes the whole table reproducible.
        x_test: test inputs ``[N, ...]``.
        y_test: integer labels ``[N]``.
        rpu_config: tile configuration (default ``InferenceRPUConfig()``); its noise model is
            used with ``g_converter``.
        compensation: the drift compensation of the "with" column (default: the config's,
            or :class:`GlobalDriftCompensation` when the config has none).

    Returns:
        :class:`AccuracyOverTime` with modes ``"none"`` and e.g. ``"global"``.

    Raises:
        ValueError: on ``repetitions < 1``, an empty or negative ``t_inference`` or
            mismatched ``x_test``/``y_test``.
        TypeError: on a ``g_converter`` that is not a converter.

    Example:
        >>> net = nn.Linear(4, 3)
        >>> x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
        >>> table = accuracy_over_time(net, t_inference=[1.0, 3600.0], repetitions=2, seed=0,
        ...                            x_test=x, y_test=y)
        >>> table.mean["global"].shape, 0.0 <= table.digital_accuracy <= 100.0
        (torch.Size([2]), True)
    """
    if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
        raise ValueError(f"repetitions: expected an integer >= 1, got {repetitions!r}")
    times = [float(t) for t in t_inference]
    if not times or any(not (t >= 0 and t < float("inf")) for t in times):
        raise ValueError(f"t_inference: expected finite times >= 0, got {list(t_inference)!r}")
    if x_test.shape[0] != y_test.shape[0]:
        raise ValueError(
            f"x_test, y_test: expected the same number of samples, got {x_test.shape[0]} "
            f"and {y_test.shape[0]}"
        )
    if g_converter is not None and not isinstance(g_converter, BaseConductanceConverter):
        raise TypeError(
            f"g_converter: expected a conductance converter, got {type(g_converter).__name__}"
        )
    start = time.perf_counter()
    cfg = copy.deepcopy(rpu_config) if rpu_config is not None else InferenceRPUConfig()
    if g_converter is not None:
        cfg.noise_model = cfg.noise_model.replace(g_converter=g_converter, g_max=None)
    comp = compensation or cfg.drift_compensation or GlobalDriftCompensation()
    cfg.drift_compensation = comp
    converter = cfg.noise_model.g_converter
    mode = _compensation_name(comp)

    was_training = model.training
    model.eval()
    digital = _accuracy(model, x_test, y_test)
    model.train(was_training)

    analog = convert_to_analog(model, cfg, seed=seed).eval()
    tiles = list(inference_tiles(analog))
    acc = {"none": torch.zeros(repetitions, len(times)), mode: torch.zeros(repetitions, len(times))}
    for rep in range(repetitions):
        for i, tile in enumerate(tiles):
            tile.manual_seed((seed * 7919 + rep * 104_729 + i) % 2**62)
            tile.program_weights()
        for j, t in enumerate(times):
            for tile in tiles:
                tile.drift_weights(t)
            acc[mode][rep, j] = _accuracy(analog, x_test, y_test)
            alphas = [tile.alpha.clone() for tile in tiles]
            for tile in tiles:
                tile.alpha.fill_(1.0)
            acc["none"][rep, j] = _accuracy(analog, x_test, y_test)
            for tile, alpha in zip(tiles, alphas, strict=True):
                tile.alpha.copy_(alpha)
    return AccuracyOverTime(repr(converter), times, acc, digital, time.perf_counter() - start)
