"""Typed options of the Weight Programming Optimizer (the ``**kwargs`` of the seed API)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anatile.checks import check_device
from anatile.exceptions import ConfigError

__all__ = ["WPOOptions", "stop_criterion"]

_log = logging.getLogger(__name__)

_STRATEGIES = (
    "best1bin", "best1exp", "rand1bin", "rand1exp", "rand2bin", "rand2exp", "randtobest1bin",
    "randtobest1exp", "currenttobest1bin", "currenttobest1exp", "best2exp", "best2bin",
)
_INITS = ("latinhypercube", "sobol", "halton", "random")
# names of the reference implementation that mean the same option here
_ALIASES = {"x_init": "init"}


def stop_criterion(intermediate_result: Any) -> None:
    """Stop once the best loss is negative: the baseline TNMSE is beaten by the margin.

    The loss is ``(TNMSE − baseline) / baseline + loss_margin``. The value is logged at
    INFO level on ``anatile.wpo.options`` (never printed).

    Args:
        intermediate_result: scipy's ``OptimizeResult`` of the current generation (the
            parameter must carry this name for scipy to pass it), with ``fun`` the best
            loss so far.

    Raises:
        StopIteration: when ``intermediate_result.fun < 0``.

    Example:
        >>> from types import SimpleNamespace
        >>> stop_criterion(SimpleNamespace(fun=0.01))  # margin not reached: continue
        >>> try:
        ...     stop_criterion(SimpleNamespace(fun=-0.01))
        ... except StopIteration:
        ...     print("stop")
        stop
    """
    fun = float(intermediate_result.fun)
    _log.info("(current loss - baseline loss) / baseline loss + loss margin = %.10f", fun)
    if fun < 0.0:
        raise StopIteration


@dataclass
class WPOOptions:
    """Options of :class:`~anatile.wpo.WeightProgrammingOptimizer` (defaults of SPEC §5).

    Search space and loss:

    Attributes:
        nbins: positive weight bins; the strategy has ``2·nbins − 1`` grid weights.
        test_in_features: rows of the test layer; None = ``rpu_config.mapping.max_input_size``.
        test_out_features: columns of the test layer (drift-compensation averaging).
        g_err: allowed over/under-programming, as a fraction of ``g_max − g_min``.
        f_min: smallest free f factor.
        f_max: largest free f factor.
        use_max_kw: always use the full µS range (drops the ``k_w`` coordinate).
        loss_margin: relative margin by which the baseline TNMSE must be beaten.
        baseline_iterations: evaluations averaged for the baseline TNMSE.
        callback: called with scipy's ``intermediate_result`` after every generation
            (default :func:`stop_criterion`: stop once the margin is reached; None to run
            to convergence / ``maxiter``).
        disp: log a line per generation at INFO level (progress itself is events).

    Differential evolution (passed to :func:`scipy.optimize.differential_evolution`):

    Attributes:
        strategy, popsize, maxiter, tol, atol, mutation, recombination, init: as in scipy
            (``popsize`` multiplies the number of dimensions).
        polish: refine the best candidate with L-BFGS-B at the end (on a fixed-noise
            version of the loss, see ``docs/wpo/aihwkit.md``); skipped after a stop request.
        polish_maxiter: iteration limit of the polish.
        validation_iterations: independent re-measurements of the final strategy
            (batched path) reported as ``WPOResult.validated_tnmse``; 0 to skip.
        seed: seeds scipy's ``rng``, the test-weight sampling and the noise generator.
        seed_with_baseline: put the baseline strategy (encoded into the hypercube, when it
            has as many pairs as ``f_lst``) into the initial population, so the search
            starts from the baseline instead of from random strategies only.
        workers: number of processes (-1: all CPUs) or a map-like callable
            (``executor.map``) for the per-candidate loss.

    Evaluation:

    Attributes:
        vectorized: True: the batched whole-population loss; False: one test layer per
            candidate (the reference path); None: batched unless ``workers`` is not 1.
        device: "cpu", "cuda", ... for the batched loss; None: CUDA when available.
        chunk_size: candidates per batched chunk; None: chosen from the sizes.
        common_random_numbers: the candidates of one batched call share noise draws.
        paired_selection: with common random numbers, re-evaluate each trial's parent on
            the same draws and select on the paired difference (two evaluations per
            trial; see :class:`~anatile.wpo.loss.BatchedObjective`).
        compile: fuse the batched torch kernel with ``torch.compile`` (None: when possible).
        native: evaluate the batched loss with the compiled numba kernel on the CPU
            (:mod:`anatile.wpo.kernel_numba`; None: for a float32 CPU engine, True:
            require it, False: always the torch kernel).
        perfect_readout: read the drift-compensation reference without IO noise during
            the search (``forward.is_perfect`` on the optimizer's copy of the config; the
            default, argued in ``docs/wpo/loss.md``); False: through the forward IO model at
            the weight scaling ω of the configuration.
        aihwkit_objective: aihwkit's objective exactly: the noisy one-hot readout through
            the forward IO model at ω = 0 (overrides ``perfect_readout``), to check a
            figure published with aihwkit.

    Example:
        >>> options = WPOOptions.from_kwargs(popsize=20, maxiter=50)
        >>> options.popsize, options.use_batched
        (20, True)
        >>> WPOOptions.from_kwargs(popsiz=20)
        Traceback (most recent call last):
            ...
        anatile.exceptions.ConfigError: WeightProgrammingOptimizer: unsupported keyword ...
    """

    nbins: int = 6
    test_in_features: int | None = None
    test_out_features: int = 20
    g_err: float = 0.0
    f_min: float = 0.1
    f_max: float = 5.0
    use_max_kw: bool = False
    loss_margin: float = 0.125
    baseline_iterations: int = 100
    callback: Callable[..., Any] | None = field(default=stop_criterion)
    disp: bool = False
    strategy: str = "best1bin"
    popsize: int = 100
    maxiter: int = 200
    tol: float = 0.0
    atol: float = 0.02
    mutation: float | tuple[float, float] = 0.1
    recombination: float = 0.3
    polish: bool = True
    polish_maxiter: int = 20
    validation_iterations: int = 8
    seed: int = 100
    seed_with_baseline: bool = True
    init: str = "latinhypercube"
    workers: int | Callable[..., Any] = 1
    vectorized: bool | None = None
    device: str | None = None
    chunk_size: int | None = None
    common_random_numbers: bool = True
    paired_selection: bool = True
    compile: bool | None = None
    native: bool | None = None
    perfect_readout: bool = True
    aihwkit_objective: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> WPOOptions:
        """Build from keyword arguments, rejecting unknown names.

        Raises:
            ConfigError: naming every unknown keyword, or for an invalid value.
        """
        return cls.from_mapping(kwargs)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> WPOOptions:
        """Like :meth:`from_kwargs` for a mapping.

        Raises:
            ConfigError: naming every unknown key, or for an invalid value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        resolved: dict[str, Any] = {}
        unknown = []
        for key, value in values.items():
            name = _ALIASES.get(key, key)
            if name in known:
                resolved[name] = value
            else:
                unknown.append(key)
        if unknown:
            raise ConfigError(
                "WeightProgrammingOptimizer: unsupported keyword argument(s) "
                f"{sorted(unknown)}; supported: {sorted(known | set(_ALIASES))}"
            )
        return cls(**resolved)

    @property
    def use_batched(self) -> bool:
        """Whether the batched whole-population loss is used."""
        if self.vectorized is None:
            return self.workers == 1
        return bool(self.vectorized)

    def validate(self) -> None:
        """Check every field.

        Raises:
            ConfigError: naming the field and what was expected.
        """
        _int(self, "nbins", lo=2)
        if self.test_in_features is not None:
            _int(self, "test_in_features", lo=1)
        _int(self, "test_out_features", lo=1)
        _num(self, "g_err", lo=0.0)
        _num(self, "f_min", lo=0.0, lo_open=True)
        _num(self, "f_max", lo=0.0, lo_open=True)
        if self.f_min > self.f_max:
            raise ConfigError(f"WPOOptions.f_min: expected <= f_max ({self.f_max}), "
                              f"got {self.f_min}")
        _num(self, "loss_margin")
        _int(self, "baseline_iterations", lo=1)
        if self.callback is not None and not callable(self.callback):
            raise ConfigError("WPOOptions.callback: expected a callable or None")
        if self.strategy not in _STRATEGIES:
            raise ConfigError(f"WPOOptions.strategy: expected one of {_STRATEGIES}, "
                              f"got {self.strategy!r}")
        _int(self, "popsize", lo=1)
        _int(self, "maxiter", lo=0)
        _num(self, "tol", lo=0.0)
        _num(self, "atol", lo=0.0)
        if isinstance(self.mutation, tuple):
            lo, hi = self.mutation
            if not (0 <= lo <= hi < 2):
                raise ConfigError(f"WPOOptions.mutation: expected 0 <= min <= max < 2, "
                                  f"got {self.mutation}")
        else:
            _num(self, "mutation", lo=0.0, hi=2.0, hi_open=True)
        _num(self, "recombination", lo=0.0, hi=1.0)
        _int(self, "polish_maxiter", lo=0)
        _int(self, "validation_iterations", lo=0)
        _int(self, "seed", lo=0)
        if self.init not in _INITS:
            raise ConfigError(f"WPOOptions.init: expected one of {_INITS}, got {self.init!r}")
        if not callable(self.workers):
            _int(self, "workers", lo=-1)
            if self.workers == 0:
                raise ConfigError("WPOOptions.workers: expected -1, a positive integer or a "
                                  "map-like callable, got 0")
        if self.vectorized and self.workers != 1:
            raise ConfigError("WPOOptions.vectorized: the batched loss runs in this process; "
                              "use vectorized=False (or None) together with workers")
        if self.chunk_size is not None:
            _int(self, "chunk_size", lo=1)
        for name in ("use_max_kw", "disp", "polish", "common_random_numbers",
                     "paired_selection", "perfect_readout", "aihwkit_objective",
                     "seed_with_baseline"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"WPOOptions.{name}: expected a bool, "
                                  f"got {getattr(self, name)!r}")
        for name in ("compile", "native"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise ConfigError(f"WPOOptions.{name}: expected None or a bool, "
                                  f"got {getattr(self, name)!r}")
        if self.device is not None:
            try:
                device = check_device("WPOOptions.device", self.device)
            except (TypeError, ValueError) as err:
                raise ConfigError(str(err)) from err
            if not isinstance(self.device, str):
                self.device = str(device)


def _num(obj: WPOOptions, name: str, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, hi_open: bool = False) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"WPOOptions.{name}: expected a finite number, got {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ConfigError(f"WPOOptions.{name}: expected {'>' if lo_open else '>='} {lo}, "
                          f"got {value!r}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        raise ConfigError(f"WPOOptions.{name}: expected {'<' if hi_open else '<='} {hi}, "
                          f"got {value!r}")


def _int(obj: WPOOptions, name: str, lo: int | None = None) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"WPOOptions.{name}: expected an integer, got {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(f"WPOOptions.{name}: expected >= {lo}, got {value!r}")
