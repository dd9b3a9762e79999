"""How a tile gets its target weights onto the devices: programming strategies.

A tile holds one strategy in ``tile.programming`` and ``program_weights`` runs it; the
arguments of a call replace fields of the strategy for that call (:meth:`for_call`).

* :class:`ClosedLoopProgramming` (a :class:`~anatile.tiles.TileWithPeriphery`'s default):
  read the array, compare with the target, pulse, repeat.
* :class:`NoiseModelProgramming` (an :class:`~anatile.tiles.InferenceTile`'s default): one
  shot through the PCM noise model (programming noise and drift exponents drawn once).

A strategy sees the tile only through a :class:`ProgrammingContext`: the target, the analog
core, the generator, the tile's configuration and a progress function that emits the tile's
events and calls the user's callback. It returns an outcome that the tile records.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from anatile.checks import check_float, check_int, check_tensor
from anatile.config.rpu_config import InferenceRPUConfig, RPUConfig
from anatile.inference.noise import BaseNoiseModel, ProgrammedState
from anatile.tiles.analog_core import AnalogCore
from anatile.tiles.events import ProgrammingReport
from anatile.tiles.verify import ReadSchedule, Verify, outside_bounds

__all__ = [
    "CLOSED_LOOP_DEFAULTS",
    "ClosedLoopProgramming",
    "NoiseModelProgramming",
    "ProgrammingContext",
    "ProgrammingStrategy",
    "ProgressCallback",
]

#: ``callback(iteration, max_iter, relative_error)``; True or StopIteration stops early.
ProgressCallback = Callable[[int, int, float], Any]


@dataclass(frozen=True)
class ProgrammingContext:
    """What a strategy may use of the tile it programs.

    Attributes:
        target: target weights in array units ``[out_size, in_size (+1 analog bias)]``.
        in_size: logical inputs of the tile (without the analog bias column).
        core: the tile's crossbar.
        generator: random source of this programming.
        rpu_config: the tile's configuration.
        progress: ``progress(iteration, max_iter, error)``: emits the tile's
            ``"programming_progress"`` event and calls the user's callback; True: stop.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Shapes(ProgrammingStrategy):
        ...     def program(self, context: ProgrammingContext) -> None:
        ...         print(tuple(context.target.shape), context.in_size)
        >>> tile = TileWithPeriphery(2, 3, seed=0)
        >>> tile.programming = Shapes()
        >>> tile.program_weights()
        (2, 3) 3
    """

    target: Tensor
    in_size: int
    core: AnalogCore
    generator: torch.Generator
    rpu_config: RPUConfig
    progress: Callable[[int, int, float], bool]


#: The closed-loop arguments of ``program_weights`` (aihwkit's signature) and their defaults.
CLOSED_LOOP_DEFAULTS: dict[str, Any] = {
    "x_values": None,
    "learning_rate": 0.1,
    "max_iter": 10000,
    "tolerance": 0.01,
    "w_init": 0.01,
}


def _is_default(value: Any, default: Any) -> bool:
    if default is None:
        return value is None
    return type(value) in (int, float) and value == default


class ProgrammingStrategy(ABC):
    """How target weights are written to the devices (see the module docstring).

    Subclasses are frozen dataclasses; their fields are the options of
    ``program_weights``.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Exact(ProgrammingStrategy):
        ...     # write the target as it is (no device physics)
        ...     def program(self, context: ProgrammingContext) -> None:
        ...         context.core.weight.copy_(context.target)
        >>> tile = TileWithPeriphery(2, 3, seed=0)
        >>> tile.set_weights(0.2 * torch.ones(2, 3))
        >>> tile.programming = Exact()
        >>> tile.program_weights()
        >>> torch.allclose(tile.analog_core.weight, 0.2 * torch.ones(2, 3))
        True
    """

    def for_call(self, **arguments: Any) -> ProgrammingStrategy:
        """This strategy with the arguments of one ``program_weights`` call.

        Arguments naming a field replace it. The closed-loop arguments of the signature
        (:data:`CLOSED_LOOP_DEFAULTS`) are ignored by strategies without them as long as
        they keep their defaults.

        Raises:
            TypeError: naming an argument this strategy does not take.
        """
        names = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        chosen: dict[str, Any] = {}
        for key, value in arguments.items():
            if key in names:
                chosen[key] = value
            elif key in CLOSED_LOOP_DEFAULTS and _is_default(value, CLOSED_LOOP_DEFAULTS[key]):
                continue
            else:
                raise TypeError(
                    f"{key}: not an option of {type(self).__name__} "
                    f"(options: {', '.join(sorted(names))})"
                )
        return dataclasses.replace(self, **chosen)  # type: ignore[type-var]

    def check(self, in_size: int, core: AnalogCore) -> None:  # noqa: B027 - optional hook
        """Validate the options for a tile before anything is changed (default: nothing)."""

    def random_source(self, tile_generator: torch.Generator) -> torch.Generator:
        """The generator of this programming (default: the tile's)."""
        return tile_generator

    @abstractmethod
    def program(self, context: ProgrammingContext) -> Any:
        """Program ``context.target`` onto ``context.core``; return the outcome to record."""


@dataclass(frozen=True)
class ClosedLoopProgramming(ProgrammingStrategy):
    """Closed-loop program-and-verify (aihwkit's ``TileWithPeriphery.program_weights``).

    Starting from ``w_init``, repeat: verify (eval MVM of ``x_values``, default the
    identity, averaged over ``R`` repeated reads), error against the target outputs,
    pulsed update with ``learning_rate`` and that error - until
    ``mean|error| / max|target output|`` is below ``tolerance`` or ``max_iter`` updates
    were done.

    The verify read is averaged because one read cannot resolve 1 %: its noise alone
    (output noise 0.06 and the 9-bit ADC's rounding by default) has a mean
    ``|n| ≈ 0.049``, several percent of the largest weight of a typical tile. The
    average of ``R`` reads divides that floor by ``√R``, and updating with the averaged
    error divides the weights' own noise (``≈ noise·√(lr / (2 − lr))`` per device) by the
    same factor. With ``verify_reads=None`` the loop starts with one read per verify
    (cheap while the weights are far off) and multiplies ``R`` by 4 whenever the error
    reaches the floor of the current ``R`` (predicted from the IO model by
    :func:`~anatile.functional.read_noise_std` and
    :func:`~anatile.functional.adc_rounding_bias`, relative to ``max|target output|``) or
    stops improving, up to ``max_reads``. At ``max_reads``, an error that stops improving
    for ``max(10, 3 / learning_rate)`` iterations ends the run (not converged; the
    report gives the reason, the floor and the reads the tolerance would need).
    ``verify_reads=1`` is aihwkit's loop exactly (one read per verify, ``max_iter``
    iterations unless the tolerance is reached).

    Attributes:
        x_values: ``[N, in_size]`` inputs (or ``[N, in_size + 1]`` including the analog
            bias input); default the identity.
        learning_rate: update learning rate (> 0), divided by the largest eigenvalue of
            ``xᵀx`` (1 for the identity) so that it is independent of ``x_values``.
        max_iter: maximal number of updates (>= 1).
        tolerance: relative error to reach; None runs all ``max_iter`` updates.
        w_init: start weights: uniform in ``[−w_init, w_init]`` or a tensor
            ``[out_size, in_size (+1)]`` in normalized conductance units.
        verify_reads: reads averaged per verify: None chooses them adaptively (above);
            an integer >= 1 fixes them (1: aihwkit's single read).
        max_reads: the most reads per verify of the adaptive choice (>= 1).

    The outcome is a :class:`~anatile.tiles.ProgrammingReport`.

    Example:
        >>> tile = TileWithPeriphery(2, 4, seed=0)
        >>> isinstance(tile.programming, ClosedLoopProgramming)  # a training tile's default
        True
        >>> tile.set_weights(0.3 * torch.ones(2, 4))
        >>> tile.program_weights(max_iter=20)  # the call's arguments replace fields
        >>> tile.last_programming.iterations <= 20
        True
    """

    x_values: Tensor | None = CLOSED_LOOP_DEFAULTS["x_values"]
    learning_rate: float = CLOSED_LOOP_DEFAULTS["learning_rate"]
    max_iter: int = CLOSED_LOOP_DEFAULTS["max_iter"]
    tolerance: float | None = CLOSED_LOOP_DEFAULTS["tolerance"]
    w_init: float | Tensor = CLOSED_LOOP_DEFAULTS["w_init"]
    verify_reads: int | None = None
    max_reads: int = 1024
    multiplexed: bool = True

    def check(self, in_size: int, core: AnalogCore) -> None:
        check_float("learning_rate", self.learning_rate, lo=0.0, lo_open=True)
        check_int("max_iter", self.max_iter, 1)
        if self.tolerance is not None:
            check_float("tolerance", self.tolerance)
        self._inputs(in_size, core)
        if isinstance(self.w_init, Tensor):
            check_tensor("w_init", self.w_init, (core.out_size, core.in_size))
        else:
            check_float("w_init", self.w_init)
        if self.verify_reads is not None:
            check_int("verify_reads", self.verify_reads, 1)
        check_int("max_reads", self.max_reads, 1)
        if not isinstance(self.multiplexed, bool):
            raise TypeError(f"multiplexed: expected a bool, got {type(self.multiplexed).__name__}")

    def _inputs(self, in_size: int, core: AnalogCore) -> Tensor:
        dtype, device = core.weight.dtype, core.weight.device
        if self.x_values is None:
            return torch.eye(core.in_size, dtype=dtype, device=device)
        x = check_tensor("x_values", self.x_values)
        if x.ndim != 2 or x.shape[1] not in (in_size, core.in_size):
            raise ValueError(f"x_values: expected shape [N, {in_size}] or "
                             f"[N, {core.in_size}], got {tuple(x.shape)}")
        x = x.detach().to(dtype=dtype, device=device)
        if x.shape[1] != core.in_size:  # the analog bias column is driven by 1
            x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        return x

    def program(self, context: ProgrammingContext) -> ProgrammingReport:
        core, gen = context.core, context.generator
        self.check(context.in_size, core)
        dtype, device = core.weight.dtype, core.weight.device
        x = self._inputs(context.in_size, core)
        max_iter = int(self.max_iter)
        tol = None if self.tolerance is None else float(self.tolerance)
        if isinstance(self.w_init, Tensor):
            start = self.w_init.detach().to(dtype=dtype, device=device).clone()
        else:
            amp = float(self.w_init)
            start = torch.rand(core.out_size, core.in_size, generator=gen, dtype=dtype,
                               device=device).mul_(2.0 * amp).sub_(amp)
        target_out = x @ context.target.T
        # Normalize the step so that lr means the same for any x_values: the closed loop is
        # gradient descent on |x Wᵀ − target|², whose curvature is λ_max(xᵀx) (1 for the
        # identity, ~N for N random rows; without this, lr = 0.1 would diverge there).
        curvature = float(torch.linalg.matrix_norm(x, ord=2)) ** 2
        lr = float(self.learning_rate)
        lr = lr / curvature if curvature > 0 else lr
        denom = float(target_out.abs().max())
        denom = denom if denom > 0 else 1.0
        core.set_weights(start)
        multiplexed = self.multiplexed and self.x_values is None
        verify = Verify(x, target_out, denom, core, gen, multiplexed)
        schedule = ReadSchedule.start(self.verify_reads, self.max_reads, self.learning_rate,
                                      tol, verify)

        iterations, converged, reason = 0, False, "max_iter"
        err, rel = verify.measure(schedule.reads)
        while True:
            stop = context.progress(iterations, max_iter, rel)
            if tol is not None and rel < tol:
                converged, reason = True, "converged"
                break
            if stop:
                reason = "stopped"
                break
            if iterations >= max_iter:
                break
            if schedule.after(rel):
                reason = schedule.stall_reason(rel, outside_bounds(core, context.target))
                break
            with torch.no_grad():
                core.update(x, err, lr, gen)
            iterations += 1
            err, rel = verify.measure(schedule.reads)
        return ProgrammingReport(iterations, rel, converged, schedule.reads, verify.total_reads,
                                 verify.floor(schedule.reads), reason)


@dataclass(frozen=True)
class NoiseModelProgramming(ProgrammingStrategy):
    """One-shot programming through a PCM noise model (aihwkit's inference tiles).

    The converter of the noise model maps the target to conductances, programming noise is
    added and one drift exponent per device is drawn from its target conductance; the array
    then holds the programmed weights.

    Attributes:
        noise_model: overrides ``rpu_config.noise_model`` (the tile keeps it for later
            drifts); None uses the configuration's.
        generator: random source of this programming (default the tile's generator).

    The outcome is the noise model's :class:`~anatile.inference.ProgrammedState`.

    Example:
        >>> tile = InferenceTile(2, 3, seed=0)
        >>> type(tile.programming).__name__
        'NoiseModelProgramming'
        >>> tile.set_weights(0.1 * torch.ones(2, 3))
        >>> tile.programming = NoiseModelProgramming(generator=torch.Generator().manual_seed(1))
        >>> tile.program_weights()
        >>> tile.device_state().programmed
        True
    """

    noise_model: BaseNoiseModel | None = None
    generator: torch.Generator | None = None

    def check(self, in_size: int, core: AnalogCore) -> None:
        if self.noise_model is not None and not isinstance(self.noise_model, BaseNoiseModel):
            raise TypeError(
                f"noise_model: expected a noise model such as PCMLikeNoiseModel, "
                f"got {type(self.noise_model).__name__}"
            )
        if self.generator is not None and not isinstance(self.generator, torch.Generator):
            raise TypeError(
                f"generator: expected a torch.Generator, got {type(self.generator).__name__}"
            )

    def random_source(self, tile_generator: torch.Generator) -> torch.Generator:
        return tile_generator if self.generator is None else self.generator

    def program(self, context: ProgrammingContext) -> ProgrammedState:
        self.check(context.in_size, context.core)
        model = self.noise_model
        if model is None:
            if not isinstance(context.rpu_config, InferenceRPUConfig):
                raise TypeError("noise_model: expected a noise model (the tile's "
                                "configuration is not an InferenceRPUConfig)")
            model = context.rpu_config.noise_model
        state = model.program(context.target, context.generator)
        # the noise model's weights, computed from the checked target: no NaN/inf pass
        context.core.set_weights(state.weights.to(context.core.weight.dtype),
                                 check_values=False)
        return state
