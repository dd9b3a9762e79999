"""Phenomenological noise models of PCM inference: programming noise, drift, read noise.

Why this module is over 400 lines and not split: it holds one class hierarchy (the base
noise model with its aihwkit-style methods and the program/read pair, the PCM-like model and
its custom-drift variant) and the two small state types its methods return; the formulas
are already elsewhere (``anatile.functional.pcm`` and ``pcm_formulas``), so what remains is
each model's parameters, their checks, serialization, its typed ``physics()`` description
and the wiring of converter and physics, which a reader follows from base class to
subclass in one file.

A noise model works on weights in normalized units, through its conductance converter:
weights → conductances (µS) → physics → conductances → weights. The physics itself lives in
:mod:`anatile.functional.pcm`; the classes hold the parameters, validate them and
serialize.

Two levels of use:

* the aihwkit-style methods (``apply_noise``, ``apply_programming_noise``,
  ``apply_drift_noise``, and their ``*_to_conductance`` counterparts);
* :meth:`BaseNoiseModel.program` / :meth:`BaseNoiseModel.read`, used by
  :class:`~anatile.tiles.InferenceTile`: program once (a :class:`ProgrammedState` holds the
  target and programmed conductances and the drift exponents), then read at any number of
  inference times, each read drifting from the same programmed state.

Example:
    >>> import torch
    >>> model = PCMLikeNoiseModel()
    >>> gen = torch.Generator().manual_seed(0)
    >>> w = torch.randn(4, 8, generator=gen)
    >>> state = model.program(w, generator=gen)
    >>> w_day = model.read(state, 86400.0, generator=gen).weights
    >>> w_day.shape
    torch.Size([4, 8])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from anatile.checks import check_float_list, check_non_negative, check_positive, check_tensor
from anatile.config.base import register_config_type
from anatile.functional.pcm import (
    DEFAULT_PROG_COEFF,
    PROG_COEFF_G_MAX_REFERENCE,
    apply_pcm_drift_and_read_noise,
    apply_pcm_programming_noise,
    sample_pcm_drift_nu,
)
from anatile.functional.pcm_formulas import drift_nu
from anatile.inference._serialization import InitFieldsMixin
from anatile.inference.converter import BaseConductanceConverter, SinglePairConductanceConverter
from anatile.inference.physics import PCMPhysics

__all__ = [
    "BaseNoiseModel",
    "CustomDriftPCMLikeNoiseModel",
    "DriftedState",
    "PCMLikeNoiseModel",
    "ProgrammedState",
]


@dataclass
class ProgrammedState:
    """What programming left on the devices of one weight matrix.

    Attributes:
        g_target: target conductances (µS), ``[n_devices, *weights.shape]`` (device first,
            in the converter's order).
        g_prog: programmed conductances (µS) after programming noise, same shape.
        nu: drift exponent of each device, sampled once at programming.
        params: the converter's parameters for the way back to weights.
        weights: the programmed weights (normalized units), i.e. at ``t = 0`` without read
            noise.

    Example:
        >>> model = PCMLikeNoiseModel()
        >>> state = model.program(0.5 * torch.ones(3, 4), torch.Generator().manual_seed(0))
        >>> isinstance(state, ProgrammedState), state.g_prog.shape  # (devices, *weights.shape)
        (True, torch.Size([2, 3, 4]))
    """

    g_target: Tensor
    g_prog: Tensor
    nu: Tensor
    params: dict[str, Any]
    weights: Tensor


@dataclass
class DriftedState:
    """The conductances and weights read at one inference time.

    Attributes:
        t_inference: seconds after programming.
        g_drift: drifted, read-noisy conductances (µS), ``[n_devices, *weights.shape]``.
        weights: the corresponding weights (normalized units).

    Example:
        >>> model = PCMLikeNoiseModel()
        >>> gen = torch.Generator().manual_seed(0)
        >>> read = model.read(model.program(0.5 * torch.ones(3, 4), gen), 3600.0, gen)
        >>> isinstance(read, DriftedState), read.t_inference, read.weights.shape
        (True, 3600.0, torch.Size([3, 4]))
    """

    t_inference: float
    g_drift: Tensor
    weights: Tensor


class BaseNoiseModel(InitFieldsMixin):
    """Interface of noise models: per-conductance physics plus the weight-level plumbing.

    Subclasses implement :meth:`apply_programming_noise_to_conductance`,
    :meth:`generate_drift_coefficients` and :meth:`apply_drift_noise_to_conductance`;
    every random draw takes an optional ``generator``.

    Attributes:
        g_converter: the conductance converter used for weights.
        rederive_conductances: aihwkit's convention for what drifts (default False): the
            programmed *weights* are converted to conductances again (the converter's
            parameters re-derived from them) and those conductances drift, so a
            zero-target device's programming noise is folded into its partner. False
            drifts each device's own programmed conductance, as the hardware does.

    Example:
        >>> model = PCMLikeNoiseModel(g_converter=SinglePairConductanceConverter(g_max=25.0))
        >>> isinstance(model, BaseNoiseModel)
        True
        >>> gen = torch.Generator().manual_seed(0)
        >>> state = model.program(0.5 * torch.ones(3, 4), gen)
        >>> later = model.read(state, 86400.0, gen)
        >>> bool(later.weights.mean() < state.weights.mean())  # drift lowers the conductances
        True
    """

    g_converter: BaseConductanceConverter
    rederive_conductances: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A model that overrides a public per-conductance method (as aihwkit's subclasses
        # do) but not its unchecked counterpart gets that counterpart routed back to its
        # public method, so program/read run the override (with its checks). The public
        # methods of the models here name their class's unchecked method, so an override
        # that calls super() does not come back to itself.
        for public, private in _ROUTES:
            if public in cls.__dict__ and private not in cls.__dict__:
                setattr(cls, private, getattr(BaseNoiseModel, private))

    # --- per-conductance physics --------------------------------------------------------
    def apply_programming_noise_to_conductance(
        self, g_target: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Programmed conductances for the targets ``g_target`` (µS, any shape)."""
        raise NotImplementedError

    def generate_drift_coefficients(
        self, g_target: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """One drift exponent ν per device, from its target conductance (µS, any shape)."""
        raise NotImplementedError

    def apply_drift_noise_to_conductance(
        self,
        g_prog: Tensor,
        drift_noise_param: Tensor,
        t_inference: float | Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Conductances read ``t_inference`` s after programming to ``g_prog`` with ν.

        A tensor ``t_inference`` broadcasts against ``g_prog`` (e.g. ``[T, 1, ...]`` reads
        every time at once).
        """
        raise NotImplementedError

    def physics(self) -> PCMPhysics:
        """The typed description of this model's physics, for evaluators that compute the
        formulas themselves (the batched WPO loss).

        Raises:
            NotImplementedError: if the model has no such description (then the WPO
                needs ``vectorized=False``).
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no physics() description; the batched WPO loss "
            "supports PCM-like noise models (use vectorized=False)"
        )

    # --- the unchecked physics of program/read ------------------------------------------
    # program() checks the weights once and read() the time; the conductances they pass on
    # were computed by anatile from those, so these hooks skip the per-call tensor checks of
    # the public methods above (a NaN/inf pass over every tensor each). The base versions
    # call the public methods (see __init_subclass__); a model returns finite values.
    def _programming_noise(self, g_target: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_programming_noise_to_conductance(g_target, generator)

    def _drift_coefficients(self, g_target: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.generate_drift_coefficients(g_target, generator)

    def _drift_and_read_noise(
        self,
        g_prog: Tensor,
        nu: Tensor,
        t_inference: float | Tensor,
        generator: torch.Generator | None,
    ) -> Tensor:
        return self.apply_drift_noise_to_conductance(g_prog, nu, t_inference, generator)

    # --- weights (aihwkit-style) ---------------------------------------------------------
    @torch.no_grad()
    def apply_programming_noise(
        self, weights: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """Program ``weights`` once.

        Args:
            weights: weights in normalized units (any shape).
            generator: random source.

        Returns:
            ``(programmed_weights, drift_noise_parameters)``: the weights after programming
            noise and the drift exponent ν of each device (one tensor per device).

        Shape:
            ``weights``: ``(*)``; the outputs: ``(*)`` each.
        """
        state = self.program(weights, generator)
        return state.weights, list(state.nu.unbind(0))

    @torch.no_grad()
    def apply_drift_noise(
        self,
        weights: Tensor,
        drift_noise_parameters: list[Tensor],
        t_inference: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Drift (and read noise) of already programmed ``weights`` to ``t_inference``.

        As in aihwkit, ``weights`` are converted to conductances again and those are taken
        as the programmed conductances; :meth:`read` avoids that re-conversion.

        Args:
            weights: programmed weights (normalized units).
            drift_noise_parameters: ν per device, from :meth:`apply_programming_noise`.
            t_inference: seconds after programming (≥ 0).
            generator: random source.

        Returns:
            The drifted weights.

        Raises:
            TypeError: if ``weights`` or a ν entry is not a floating tensor.
            ValueError: if the number of ν tensors does not match the converter's devices,
                a ν tensor's shape differs from ``weights``, a value is NaN/inf, or
                ``t_inference`` is negative.
        """
        check_tensor("weights", weights)
        if isinstance(drift_noise_parameters, Tensor):
            drift_noise_parameters = list(drift_noise_parameters.unbind(0))
        if not isinstance(drift_noise_parameters, (list, tuple)):
            raise TypeError(
                "drift_noise_parameters: expected a list of tensors (one per device), got "
                f"{type(drift_noise_parameters).__name__}"
            )
        n_devices = self.g_converter.n_devices
        if len(drift_noise_parameters) != n_devices:
            raise ValueError(
                f"drift_noise_parameters: expected {n_devices} tensors (one per device), "
                f"got {len(drift_noise_parameters)}"
            )
        for i, nu in enumerate(drift_noise_parameters):
            check_tensor(f"drift_noise_parameters[{i}]", nu, tuple(weights.shape))
        g_prog, params = self.g_converter._to_conductances(weights)
        g_drift = [
            self._drift_and_read_noise(g, nu, t_inference, generator)
            for g, nu in zip(g_prog, drift_noise_parameters, strict=True)
        ]
        return self.g_converter._to_weights(g_drift, params)

    @torch.no_grad()
    def apply_noise(
        self, weights: Tensor, t_inference: float, generator: torch.Generator | None = None
    ) -> Tensor:
        """Program ``weights`` and read them ``t_inference`` seconds later, in one call.

        Returns:
            The weights as seen at ``t_inference`` (programming noise, drift, read noise).
        """
        return self.read(self.program(weights, generator), t_inference, generator).weights

    # --- program once, read many times ---------------------------------------------------
    @torch.no_grad()
    def program(self, weights: Tensor, generator: torch.Generator | None = None) -> ProgrammedState:
        """Convert ``weights`` to conductances, add programming noise and sample ν.

        Args:
            weights: target weights (normalized units, finite, any shape).
            generator: random source (programming noise first, then ν).

        Returns:
            The :class:`ProgrammedState`.

        Raises:
            TypeError, ValueError: from the converter on bad ``weights`` (checked here,
                once; nothing below checks the conductances computed from them again).
        """
        targets, params = self.g_converter.device_conductances(weights)
        # one stacked tensor: every draw is one tensor op over all devices
        g_target = torch.stack(targets)
        g_prog = self._programming_noise(g_target, generator)
        nu = self._drift_coefficients(g_target, generator)
        w_prog = self.g_converter._to_weights(list(g_prog.unbind(0)), params)
        if self.rederive_conductances:  # aihwkit: what drifts is converted from w_prog
            rederived, params = self.g_converter._to_conductances(w_prog)
            g_prog = torch.stack(rederived)
        return ProgrammedState(g_target, g_prog, nu, params, w_prog)

    @torch.no_grad()
    def read(
        self,
        state: ProgrammedState,
        t_inference: float,
        generator: torch.Generator | None = None,
    ) -> DriftedState:
        """Drift the programmed conductances of ``state`` to ``t_inference`` and read them.

        Args:
            state: from :meth:`program`; it is not modified, so a time sweep reads the same
                programmed devices.
            t_inference: seconds after programming (≥ 0).
            generator: random source of the read noise.

        Returns:
            The :class:`DriftedState`.

        Raises:
            ValueError: if ``t_inference`` is negative or not finite.
        """
        g_drift = self._drift_and_read_noise(state.g_prog, state.nu, t_inference, generator)
        w = self.g_converter._to_weights(list(g_drift.unbind(0)), state.params)
        return DriftedState(float(t_inference), g_drift, w)


#: (public method, its unchecked counterpart) of the noise models; see __init_subclass__.
_ROUTES = (
    ("apply_programming_noise_to_conductance", "_programming_noise"),
    ("generate_drift_coefficients", "_drift_coefficients"),
    ("apply_drift_noise_to_conductance", "_drift_and_read_noise"),
)


def _resolve_converter(g_converter: Any, g_max: Any) -> BaseConductanceConverter:
    if g_converter is None:
        return SinglePairConductanceConverter(g_max=g_max)
    if not isinstance(g_converter, BaseConductanceConverter):
        raise TypeError(
            "g_converter: expected a conductance converter such as "
            f"SinglePairConductanceConverter, got {type(g_converter).__name__}"
        )
    return g_converter


@register_config_type
class PCMLikeNoiseModel(BaseNoiseModel):
    """Statistical PCM model (Nandakumar et al., ICECS 2019), as aihwkit's of the same name.

    Formulas in :mod:`anatile.functional.pcm`: programming noise ``σ = (c0 + c1·g/g_max +
    c2·(g/g_max)²) · g_max / prog_coeff_g_max_reference · prog_noise_scale``; drift exponent
    ``ν = drift_scale · |N(μ(g), σ(g))|`` sampled from the target conductance; drift
    ``g_prog · ((t + t_0)/t_0)^(−ν)``; 1/f read noise growing with
    ``sqrt(ln((t + t_0 + t_read)/(2·t_read)))``; all conductances clipped at 0.

    Args:
        prog_coeff: programming-noise polynomial ``(c0, c1, c2, ...)`` in µS
            (default ``(0.26348, 1.9650, -1.1731)``).
        g_converter: conductance converter (default ``SinglePairConductanceConverter(g_max)``).
        g_max: g_max of the noise statistics in µS (default: the converter's ``g_max``).
        t_read: read duration (s), default 250 ns.
        t_0: drift reference time (s), default 20.
        prog_noise_scale: programming-noise multiplier (≥ 0).
        read_noise_scale: read-noise multiplier (≥ 0).
        drift_scale: drift-exponent multiplier (≥ 0).
        prog_coeff_g_max_reference: the g_max (µS) at which ``prog_coeff`` were fitted
            (default 25, i.e. the noise scales with ``g_max / 25``).
        rederive_conductances: drift conductances converted back from the programmed
            weights, as aihwkit does (see :class:`BaseNoiseModel`); default False (each
            device's own programmed conductance drifts). The batched WPO loss does not
            model it (``vectorized=False``).

    Raises:
        ValueError: naming the argument on a non-positive ``g_max``/``t_read``/``t_0``/
            ``prog_coeff_g_max_reference``, a negative scale or a bad ``prog_coeff``.
        TypeError: if ``g_converter`` is not a converter.

    Example:
        >>> from anatile.inference import PCMLikeNoiseModel
        >>> noise = PCMLikeNoiseModel()
        >>> gen = torch.Generator().manual_seed(0)
        >>> g_target = torch.full((1000,), 10.0)  # µS
        >>> g_prog = noise.apply_programming_noise_to_conductance(g_target, generator=gen)
        >>> nu = noise.generate_drift_coefficients(g_target, generator=gen)
        >>> g_day = noise.apply_drift_noise_to_conductance(g_prog, nu, 86400.0, generator=gen)
        >>> bool(g_day.mean() < g_prog.mean())  # drift lowers the conductances
        True
    """

    _init_fields: ClassVar[tuple[str, ...]] = (
        "prog_coeff",
        "g_converter",
        "g_max",
        "t_read",
        "t_0",
        "prog_noise_scale",
        "read_noise_scale",
        "drift_scale",
        "prog_coeff_g_max_reference",
        "rederive_conductances",
    )

    def __init__(
        self,
        prog_coeff: list[float] | None = None,
        g_converter: BaseConductanceConverter | None = None,
        g_max: float | None = None,
        t_read: float = 250e-9,
        t_0: float = 20.0,
        prog_noise_scale: float = 1.0,
        read_noise_scale: float = 1.0,
        drift_scale: float = 1.0,
        prog_coeff_g_max_reference: float | None = None,
        rederive_conductances: bool = False,
    ) -> None:
        if not isinstance(rederive_conductances, bool):
            raise TypeError("rederive_conductances: expected a bool, got "
                            f"{type(rederive_conductances).__name__}")
        self.prog_coeff = (
            list(DEFAULT_PROG_COEFF)
            if prog_coeff is None
            else check_float_list("prog_coeff", prog_coeff)
        )
        if g_max is not None:
            g_max = check_positive("g_max", g_max)
        self.g_converter = _resolve_converter(g_converter, g_max)
        self.g_max = self.g_converter.g_max if g_max is None else g_max
        self.t_read = check_positive("t_read", t_read)
        self.t_0 = check_positive("t_0", t_0)
        self.prog_noise_scale = check_non_negative("prog_noise_scale", prog_noise_scale)
        self.read_noise_scale = check_non_negative("read_noise_scale", read_noise_scale)
        self.drift_scale = check_non_negative("drift_scale", drift_scale)
        self.prog_coeff_g_max_reference = (
            PROG_COEFF_G_MAX_REFERENCE
            if prog_coeff_g_max_reference is None
            else check_positive("prog_coeff_g_max_reference", prog_coeff_g_max_reference)
        )
        self.rederive_conductances = rederive_conductances

    def physics(self) -> PCMPhysics:
        """The parameters of this model as a :class:`~anatile.inference.physics.PCMPhysics`."""
        return PCMPhysics(
            g_max=float(self.g_max),
            prog_coeff=tuple(float(c) for c in self.prog_coeff),
            g_max_reference=float(self.prog_coeff_g_max_reference),
            prog_noise_scale=float(self.prog_noise_scale),
            read_noise_scale=float(self.read_noise_scale),
            drift_scale=float(self.drift_scale),
            t_0=float(self.t_0),
            t_read=float(self.t_read),
        )

    @torch.no_grad()
    def apply_programming_noise_to_conductance(
        self, g_target: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """``max(g_target + σ_prog(g_target) · N(0, 1), 0)`` (µS).

        Shape:
            ``g_target``: ``(*)``; output: ``(*)``.
        """
        return PCMLikeNoiseModel._programming_noise(self, check_tensor("g_target", g_target),
                                                   generator)

    def _programming_noise(self, g_target: Tensor, generator: torch.Generator | None) -> Tensor:
        return apply_pcm_programming_noise(
            g_target,
            self.g_max,
            self.prog_coeff,
            self.prog_noise_scale,
            generator,
            g_max_reference=self.prog_coeff_g_max_reference,
        )

    @torch.no_grad()
    def generate_drift_coefficients(
        self, g_target: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """``ν = drift_scale · |N(μ(g_target), σ(g_target))|``.

        Shape:
            ``g_target``: ``(*)``; output: ``(*)``.
        """
        return PCMLikeNoiseModel._drift_coefficients(self, check_tensor("g_target", g_target),
                                                    generator)

    def _drift_coefficients(self, g_target: Tensor, generator: torch.Generator | None) -> Tensor:
        return sample_pcm_drift_nu(g_target, self.g_max, self.drift_scale, generator)

    @torch.no_grad()
    def apply_drift_noise_to_conductance(
        self,
        g_prog: Tensor,
        drift_noise_param: Tensor,
        t_inference: float | Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Drift ``g_prog`` with exponents ``drift_noise_param`` and add read noise.

        Raises:
            TypeError: if ``g_prog`` or ``drift_noise_param`` is not a floating tensor.
            ValueError: on NaN/inf, different shapes, or a negative or non-finite
                ``t_inference``.

        Shape:
            ``g_prog``, ``drift_noise_param``: ``(*)``; a tensor ``t_inference``
            broadcasts (``[T, 1, ...]``: one read per time); output: broadcast shape.
        """
        check_tensor("g_prog", g_prog)
        check_tensor("drift_noise_param", drift_noise_param, tuple(g_prog.shape))
        return PCMLikeNoiseModel._drift_and_read_noise(self, g_prog, drift_noise_param,
                                                      t_inference, generator)

    def _drift_and_read_noise(
        self,
        g_prog: Tensor,
        nu: Tensor,
        t_inference: float | Tensor,
        generator: torch.Generator | None,
    ) -> Tensor:
        return apply_pcm_drift_and_read_noise(
            g_prog,
            nu,
            t_inference,
            self.g_max,
            t_0=self.t_0,
            t_read=self.t_read,
            read_noise_scale=self.read_noise_scale,
            generator=generator,
        )


@register_config_type
class CustomDriftPCMLikeNoiseModel(PCMLikeNoiseModel):
    """:class:`PCMLikeNoiseModel` with measured drift statistics.

    ``custom_drift_model`` is a dict with ``g_lst`` (ascending conductances in µS, covering
    ``[g_min, g_max]`` of the converter), ``nu_mean_lst`` and ``nu_std_lst`` (ν mean and
    standard deviation at those conductances, ≥ 0); ν at another conductance interpolates
    linearly. ``ν = drift_scale · |N(mean(g), std(g))|``.

    Args:
        custom_drift_model: the drift table described above.
        *others: as :class:`PCMLikeNoiseModel`.

    Raises:
        ValueError: naming ``custom_drift_model`` on missing keys, lists of different
            lengths or shorter than 2, a non-ascending ``g_lst``, negative ν statistics, or
            a ``g_lst`` that does not cover the converter's conductance range.

    Example:
        >>> from anatile.inference import CustomDriftPCMLikeNoiseModel
        >>> noise = CustomDriftPCMLikeNoiseModel(
        ...     {"g_lst": [0.0, 25.0], "nu_mean_lst": [0.08, 0.04], "nu_std_lst": [0.02, 0.01]})
        >>> nu = noise.generate_drift_coefficients(torch.full((10000,), 25.0),
        ...                                        generator=torch.Generator().manual_seed(0))
        >>> round(float(nu.mean()), 2)
        0.04
    """

    _init_fields: ClassVar[tuple[str, ...]] = (
        "custom_drift_model",
        *PCMLikeNoiseModel._init_fields,
    )

    def __init__(
        self,
        custom_drift_model: dict[str, list[float]],
        prog_coeff: list[float] | None = None,
        g_converter: BaseConductanceConverter | None = None,
        g_max: float | None = None,
        t_read: float = 250e-9,
        t_0: float = 20.0,
        prog_noise_scale: float = 1.0,
        read_noise_scale: float = 1.0,
        drift_scale: float = 1.0,
        prog_coeff_g_max_reference: float | None = None,
        rederive_conductances: bool = False,
    ) -> None:
        super().__init__(
            prog_coeff,
            g_converter,
            g_max,
            t_read,
            t_0,
            prog_noise_scale,
            read_noise_scale,
            drift_scale,
            prog_coeff_g_max_reference,
            rederive_conductances,
        )
        self.custom_drift_model = self._check_drift_model(custom_drift_model)

    def _check_drift_model(self, model: Any) -> dict[str, list[float]]:
        name = "custom_drift_model"
        keys = ("g_lst", "nu_mean_lst", "nu_std_lst")
        if not isinstance(model, dict):
            raise ValueError(f"{name}: expected a dict with keys {list(keys)}")
        missing = [k for k in keys if k not in model]
        extra = sorted(set(model) - set(keys))
        if missing or extra:
            raise ValueError(
                f"{name}: expected keys {list(keys)}, missing {missing}, unknown {extra}"
            )
        out = {k: check_float_list(f"{name}[{k!r}]", model[k], min_len=2) for k in keys}
        lengths = {len(v) for v in out.values()}
        if len(lengths) != 1:
            raise ValueError(f"{name}: g_lst, nu_mean_lst and nu_std_lst must have equal lengths")
        g = out["g_lst"]
        if any(b <= a for a, b in zip(g, g[1:], strict=False)):
            raise ValueError(f"{name}: g_lst must be strictly ascending, got {g}")
        if any(v < 0 for v in out["nu_mean_lst"] + out["nu_std_lst"]):
            raise ValueError(f"{name}: nu_mean_lst and nu_std_lst must be >= 0")
        lo = min(self.g_converter.g_min, self.g_max)
        hi = max(self.g_converter.g_max, self.g_max)
        if g[0] > lo or g[-1] < hi:
            raise ValueError(
                f"{name}: g_lst must cover the conductance range [{lo}, {hi}] µS, "
                f"got [{g[0]}, {g[-1]}]"
            )
        return out

    @torch.no_grad()
    def generate_drift_coefficients(
        self, g_target: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """``ν = drift_scale · |N(mean(g), std(g))|`` with the interpolated measured statistics.

        Shape:
            ``g_target``: ``(*)``; output: ``(*)``.
        """
        return CustomDriftPCMLikeNoiseModel._drift_coefficients(
            self, check_tensor("g_target", g_target), generator)

    def _drift_coefficients(self, g: Tensor, generator: torch.Generator | None) -> Tensor:
        mu, sigma = self.physics().nu_stats(g)
        noise = torch.randn(g.shape, generator=generator, dtype=g.dtype, device=g.device)
        return drift_nu(mu, sigma, noise, float(self.drift_scale))

    def physics(self) -> PCMPhysics:
        """As :meth:`PCMLikeNoiseModel.physics`, with the measured drift table."""
        dm = self.custom_drift_model
        return dataclasses.replace(
            super().physics(),
            custom_drift=(tuple(dm["g_lst"]), tuple(dm["nu_mean_lst"]), tuple(dm["nu_std_lst"])),
        )
