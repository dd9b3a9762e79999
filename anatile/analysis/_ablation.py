"""The simulated chips of an error budget: each tile's weights, alpha and IO per coalition.

A **coalition** is the set of error sources switched on, as a bit mask over
:data:`SOURCES` (bit ``k`` on: source ``k`` acts as configured; off: it is ideal). For
every tile, :class:`TileGame` programs the tile's targets onto fresh simulated chips with
the tile's own physics and gives, for any coalition, the array weights at each time, the
drift compensation's alpha and the IO model, on **common random numbers** (the same
generator seeds in every coalition, so programming noise, drift exponents, read noise and
IO noise are the same draws and differences come from the sources alone). States are
computed on first use and cached. For speed each shared draw is made once and handed to
every coalition (PCM-like noise models, the identity readout of the drift compensation),
the IO variants of one chip state share its readout levels, and large elementwise work
runs time by time so that it stays in the cache; every value equals that of calling the
tile's physics per coalition and time with the seeded generators (tested).
:mod:`anatile.analysis.budget` turns coalition errors into attributions (method there).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from anatile.config.parameters import BoundManagementType, IOParameters
from anatile.exceptions import ConfigError
from anatile.functional.io_model import quantization_step
from anatile.functional.pcm import apply_pcm_drift_and_read_noise
from anatile.inference.compensation import (
    BaseDriftCompensation,
    PerColumnDriftCompensation,
    one_hot_adc,
    one_hot_levels,
)
from anatile.inference.noise import PCMLikeNoiseModel
from anatile.inference.physics import OneHotReadout
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["ALL", "SOURCES", "TileGame", "bit", "seed_of", "tile_game"]

SOURCES: tuple[str, ...] = (
    "programming",
    "mean_drift",
    "drift_variability",
    "read_noise",
    "compensation",
    "io",
    "saturation",
)
"""The error sources, in pipeline order."""

ALL = (1 << len(SOURCES)) - 1
"""The coalition of every source."""
_UNBOUNDED = 1e6  # bound multiplier of the "no clipping" IO (steps are kept)


def bit(source: str) -> int:
    """The bit of ``source`` in a coalition mask."""
    return 1 << SOURCES.index(source)


_PROG, _MEAN, _VAR, _READ = (bit(s) for s in SOURCES[:4])
_COMP, _IO, _SAT = (bit(s) for s in SOURCES[4:])
_CHIP = _PROG | _MEAN | _VAR | _READ


def seed_of(seed: int, *keys: int) -> int:
    """A seed derived from ``seed`` and integer keys (tile, stage, time)."""
    value = seed
    for k in keys:
        value = (value * 1_000_003 + k + 1) % 2**62
    return value


def _gen(device: torch.device, seed: int, *keys: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed_of(seed, *keys))


def _io_variants(io: IOParameters) -> dict[tuple[bool, bool], IOParameters]:
    """The tile's IO by (quantization and noise on, clipping on)."""
    if io.is_perfect:
        return {(i, s): io for i in (False, True) for s in (False, True)}
    quiet = dataclasses.replace(io, inp_res=0.0, out_res=0.0, inp_noise=0.0, out_noise=0.0,
                                w_noise=0.0)

    def same_step(res: float, bound: float) -> float:
        """The resolution that keeps the step of (res, bound) over ±bound · _UNBOUNDED."""
        step = quantization_step(res, bound)
        return step / (2.0 * bound * _UNBOUNDED) if step > 0 else res

    unclipped = dataclasses.replace(
        io, inp_bound=io.inp_bound * _UNBOUNDED, inp_res=same_step(io.inp_res, io.inp_bound),
        out_bound=io.out_bound * _UNBOUNDED, out_res=same_step(io.out_res, io.out_bound))
    ideal = dataclasses.replace(quiet, inp_bound=io.inp_bound * _UNBOUNDED,
                                out_bound=io.out_bound * _UNBOUNDED)
    return {(True, True): io, (False, True): quiet, (True, False): unclipped,
            (False, False): ideal}


def _noisy(io: IOParameters) -> bool:
    """Whether a readout through ``io`` draws random numbers."""
    return not io.is_perfect and (io.out_noise > 0 or io.inp_noise > 0 or io.w_noise > 0)


def _target(tile: TileWithPeriphery) -> Tensor:
    ref = tile.reference_weight
    return (ref if ref is not None else tile.analog_core.weight).detach().clone()


def _row_scales(tile: TileWithPeriphery) -> Tensor:
    scales = tile.get_scales()
    n = tile.out_size
    if scales is None:
        return torch.ones(n, 1, dtype=tile.analog_core.weight.dtype, device=tile.device)
    return scales.detach().to(tile.device).reshape(-1, 1).expand(n, 1).clone()


class TileGame:
    """One tile's states per coalition (array weights, alpha, IO), computed on demand.

    Attributes:
        target: the target array weights (normalized) ``[out, in']``.
        scales: ``[out, 1]`` logical units per normalized unit.
        relevant: the mask of the sources that can change this tile's states (a source
            outside it is a null player: every coalition with or without it is the same).
    """

    def __init__(self, target: Tensor, scales: Tensor, times: list[float], relevant: int,
                 io: dict[tuple[bool, bool], IOParameters]) -> None:
        self.target = target
        self.scales = scales
        self.times = times
        self.relevant = relevant
        self._io = io
        self._weights: dict[int, Tensor] = {}
        self._sums: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        self._alpha: dict[int, Tensor | None] = {}
        self._target64: tuple[Tensor, Tensor] | None = None

    # subclasses fill these in
    def _chip_weights(self, mask: int) -> Tensor:
        raise NotImplementedError

    def _chip_alpha(self, mask: int) -> Tensor | None:
        return None

    def weight_key(self, mask: int) -> int:
        """The bits of ``mask`` the array weights depend on."""
        return mask & _CHIP

    def weights(self, mask: int) -> Tensor:
        """Array weights (normalized) ``[T, out, in']`` of coalition ``mask``."""
        key = self.weight_key(mask)
        if key not in self._weights:
            self._weights[key] = self._chip_weights(key)
        return self._weights[key]

    def alpha(self, mask: int) -> Tensor | None:
        """Drift compensation factors ``[T, n_alpha]`` of coalition ``mask`` (None: none)."""
        key = mask & self.relevant
        if key not in self._alpha:
            self._alpha[key] = self._chip_alpha(key)
        return self._alpha[key]

    def io(self, mask: int) -> IOParameters:
        """The IO model of coalition ``mask``."""
        return self._io[(bool(mask & _IO), bool(mask & _SAT))]

    def weight_sums(self, mask: int) -> tuple[Tensor, Tensor, Tensor]:
        """Per row and time, float64: ``Σ d²``, ``Σ r·d`` (``[T, out]``) and ``Σ r²``
        (``[out]``), with ``r`` the target and ``d = w − r`` (normalized units): the
        squared error of ``a·w`` against ``r`` in row ``i`` is
        ``(a−1)²·Σr² + 2a(a−1)·Σr·d + a²·Σd²`` for any factor ``a``. Cached per weight
        state."""
        key = self.weight_key(mask)
        if key not in self._sums:
            if self._target64 is None:
                r = self.target.to(torch.float64)
                self._target64 = (r, torch.einsum("oi,oi->o", r, r))
            r, srr = self._target64
            d = (self.weights(mask) - self.target).to(torch.float64)
            self._sums[key] = (torch.einsum("toi,toi->to", d, d),  # batched dot products
                               torch.einsum("toi,oi->to", d, r), srr)
        return self._sums[key]

    def oracle_alpha(self, mask: int, per_row: bool) -> Tensor:
        """The least-squares best factor ``Σ w·r / Σ w²`` of the weights of ``mask``
        against the targets, per row or for the whole tile: ``[T, out]`` or ``[T, 1]``."""
        sdd, srd, srr = self.weight_sums(mask)
        num = srr + srd  # Σ w·r with w = r + d
        den = srr + 2 * srd + sdd  # Σ w²
        if not per_row:
            num, den = num.sum(-1, keepdim=True), den.sum(-1, keepdim=True)
        ok = den > 0
        alpha = torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)),
                            torch.ones_like(den))
        return alpha.to(self.target.dtype)


class _InferenceGame(TileGame):
    def __init__(self, tile: InferenceTile, times: list[float], seed: int, index: int) -> None:
        target = _target(tile)
        io = _io_variants(tile.rpu_config.forward)
        relevant = ALL if not tile.rpu_config.forward.is_perfect else ALL & ~(_IO | _SAT)
        super().__init__(target, _row_scales(tile), times, relevant, io)
        self.tile = tile
        self.seed, self.index = seed, index
        model = tile.noise_model
        self.model = model
        self.silent = model.replace(read_noise_scale=0.0)
        self.converter = model.g_converter
        device = tile.device
        targets, self.params = self.converter.convert_to_conductances(target)
        self.g_target = torch.stack(targets)
        self.g_prog = model.apply_programming_noise_to_conductance(
            self.g_target, _gen(device, seed, index, 0))
        self.nu = model.generate_drift_coefficients(self.g_target, _gen(device, seed, index, 1))
        weight_sum = self.g_target.sum()
        nu = self.nu
        self.nu_bar = (nu * self.g_target).sum() / weight_sum if float(weight_sum) > 0 \
            else nu.mean()
        self.dtype = tile.analog_core.weight.dtype
        self._programmed: dict[bool, Tensor] = {}
        self._baselines: dict[tuple[bool, bool, bool], Tensor] = {}
        self._readout_noises: list[Tensor] = []
        # a compensation that reads the identity (identity_readout): the budget reads every
        # IO variant from shared levels; any other is read through the tile, as it is
        cls = type(tile.rpu_config.drift_compensation)
        self._identity = (issubclass(cls, BaseDriftCompensation)
                          and cls.read_array is BaseDriftCompensation.read_array
                          and cls.get_readout_tensor is BaseDriftCompensation.get_readout_tensor)
        self._drift_noise: Tensor | None = None
        # a model whose drift and read noise are apply_pcm_drift_and_read_noise with its
        # own parameters (PCM-like, not overridden): the budget calls it with one shared
        # draw; any other model is called as it is, drawing from the same seed each time
        drift = type(model)._drift_and_read_noise
        self._pcm = model.physics() if drift is PCMLikeNoiseModel._drift_and_read_noise \
            else None

    def _back(self, g: Tensor, dim: int = 0) -> Tensor:
        return self.converter.convert_back_to_weights(list(g.unbind(dim)),
                                                      self.params).to(self.dtype)

    def programmed(self, prog: bool) -> Tensor:
        if prog not in self._programmed:
            self._programmed[prog] = self._back(self.g_prog if prog else self.g_target)
        return self._programmed[prog]

    def _chip_weights(self, mask: int) -> Tensor:
        g = self.g_prog if mask & _PROG else self.g_target
        n_t = len(self.times)
        mean, var = bool(mask & _MEAN), bool(mask & _VAR)
        if not (mean or var or mask & _READ):  # no drift, no noise: as programmed, always
            return self.programmed(bool(mask & _PROG)).unsqueeze(0).expand(
                n_t, *self.target.shape)
        # ν = m·ν̄ + v·(ν − ν̄): the mean and the spread of the drift exponents switched apart
        if mean and var:
            nu = self.nu
        elif var:
            nu = self.nu - self.nu_bar
        elif mean:
            nu = torch.full_like(self.nu, float(self.nu_bar))
        else:
            nu = torch.zeros_like(self.nu)
        # t broadcasts over a leading time dimension: the read noise of every coalition is
        # one draw of the same shape from the same seed (common random numbers)
        t = torch.tensor(self.times, dtype=torch.float64, device=g.device).reshape(-1, 1, 1, 1)
        read = bool(mask & _READ)
        pcm = self._pcm
        if pcm is None:  # any noise model: all times in one call, drawing from that seed
            phys = self.model if read else self.silent
            return self._back(phys.apply_drift_noise_to_conductance(
                g, nu, t, _gen(g.device, self.seed, self.index, 2)), dim=1)
        # the PCM formulas, given that draw (made once), time by time (elementwise, so the
        # same values as one call; each step's tensors stay in the cache)
        if not var:  # one exponent for every device: it broadcasts (the same values)
            nu = nu.reshape(-1)[:1].reshape((1,) * g.dim())
        noise = self._read_noise(t, g)
        return torch.cat([self._back(apply_pcm_drift_and_read_noise(
            g, nu, t[i:i + 1], pcm.g_max, t_0=pcm.t_0, t_read=pcm.t_read,
            read_noise_scale=pcm.read_noise_scale if read else 0.0,
            noise=noise[i:i + 1]), dim=1) for i in range(n_t)])

    def _read_noise(self, t: Tensor, g: Tensor) -> Tensor:
        """The standard normals of the read noise, ``[T, *g.shape]``: the draw every
        coalition's drift call would make from the seed of stage 2, made once."""
        if self._drift_noise is None:
            shape = (t.shape[0], *g.shape)
            self._drift_noise = torch.randn(shape, dtype=g.dtype, device=g.device,
                                            generator=_gen(g.device, self.seed, self.index, 2))
        return self._drift_noise

    def _baseline(self, prog: bool, io_on: bool, sat: bool) -> Tensor:
        key = (prog, io_on, sat)
        if key not in self._baselines:
            io = self._io[(io_on, sat)]
            self._baselines[key] = self.tile.compensation_baseline(
                self.programmed(prog), io=io,
                generator=_gen(self.tile.device, self.seed, self.index, 3))
        return self._baselines[key]

    def alpha(self, mask: int) -> Tensor | None:
        key = mask & self.relevant
        if key not in self._alpha:
            # the IO variants of this chip state at once: their compensation readouts share
            # the transposed weights of each time and the levels before the ADC
            variants = {(key & ~(_IO | _SAT)) | (b & self.relevant)
                        for b in (0, _IO, _SAT, _IO | _SAT)}
            self._alpha.update(self._chip_alphas(sorted(variants - self._alpha.keys())))
        return super().alpha(mask)

    def _chip_alphas(self, masks: list[int]) -> dict[int, Tensor]:
        """Alpha ``[T, n_alpha]`` of each coalition in ``masks`` (one chip state, several
        IO variants), equal to the tile's :meth:`~InferenceTile.compensation_alpha` at each
        time with the generator of that time (same noise draws, same operations)."""
        tile = self.tile
        n_t, n_alpha = len(self.times), tile.alpha.numel()
        comp = tile.rpu_config.drift_compensation
        out: dict[int, Tensor] = {}
        reads: list[tuple[int, IOParameters, OneHotReadout | None, Tensor]] = []
        for mask in masks:
            io_on, sat = bool(mask & _IO), bool(mask & _SAT)
            io = self._io[(io_on, sat)]
            if not mask & _COMP:  # ideal compensation: the best factor of its form
                per_row = isinstance(comp, PerColumnDriftCompensation)
                out[mask] = self.oracle_alpha(mask, per_row).expand(n_t, n_alpha).clone()
            elif comp is None or (not (mask & (_MEAN | _VAR | _READ)) and not _noisy(io)):
                # no compensation; or the chip reads its programmed weights again through a
                # noise-free IO: the two readouts are identical, so alpha is exactly 1
                out[mask] = torch.ones(n_t, n_alpha, dtype=self.dtype, device=tile.device)
            else:
                reads.append((mask, io, self._readout_model(io),
                              self._baseline(bool(mask & _PROG), io_on, sat)))
        if not reads:
            return out
        weights = self.weights(reads[0][0])
        alphas: dict[int, list[Tensor]] = {mask: [] for mask, *_ in reads}
        for i in range(n_t):  # time by time: each step's tensors stay in the cache
            w_t = weights[i].to(self.dtype).T.contiguous()
            levels: dict[tuple[float, float, float], Tensor] = {}
            for mask, io, model, base in reads:
                readout: Tensor | None = w_t if io.is_perfect and self._identity else None
                if model is not None:
                    shared = (model.amplitude, model.noise_std, model.step)
                    if shared not in levels:  # IO variants that differ only in their bounds
                        noise = self._readout_noise(i, w_t) if model.noise_std > 0 else 0.0
                        levels[shared] = one_hot_levels(w_t, model, noise)
                    readout = one_hot_adc(
                        levels[shared], model,
                        check_bound=io.bound_management == BoundManagementType.ITERATIVE)
                if readout is None:  # a readout the one-hot model does not cover: the MVM
                    alpha = tile.compensation_alpha(
                        weights[i], baseline=base, io=io,
                        generator=_gen(tile.device, self.seed, self.index, 4, i))
                else:
                    assert comp is not None
                    alpha = comp.apply(readout, base).expand(n_alpha)
                alphas[mask].append(alpha)
        out.update({mask: torch.stack(a) for mask, a in alphas.items()})
        return out

    def _readout_model(self, io: IOParameters) -> OneHotReadout | None:
        """The one-hot readout of ``io``, or None where the tile's own readout must be
        taken: a compensation with its own readout input, a perfect IO (its readout is the
        transposed weights), or an IO the one-hot model does not represent."""
        if not self._identity or io.is_perfect:
            return None
        try:
            return OneHotReadout.from_io(io)
        except ConfigError:  # input noise or stochastic rounding
            return None

    def _readout_noise(self, i: int, w_t: Tensor) -> Tensor:
        """The output noise of the compensation readout at time ``i``: the draw every
        coalition's readout would make from the seed of that time, made once."""
        while len(self._readout_noises) <= i:
            k = len(self._readout_noises)
            self._readout_noises.append(torch.randn(
                w_t.shape, dtype=w_t.dtype, device=w_t.device,
                generator=_gen(w_t.device, self.seed, self.index, 4, k)))
        return self._readout_noises[i]


class _TrainingGame(TileGame):
    """A training tile: its weight is the array weight clipped to each device's bounds."""

    def __init__(self, tile: TileWithPeriphery, times: list[float]) -> None:
        target = _target(tile)
        io = _io_variants(tile.rpu_config.forward)
        relevant = _PROG | _SAT | (0 if tile.rpu_config.forward.is_perfect else _IO)
        super().__init__(target, _row_scales(tile), times, relevant, io)
        array = tile.analog_core.weight.detach().clone()
        params = tile.analog_core.device_parameters
        if params is None:
            clamped_array, clamped_target = array, target
        else:
            clamped_array = torch.minimum(torch.maximum(array, params.w_min), params.w_max)
            clamped_target = torch.minimum(torch.maximum(target, params.w_min), params.w_max)
        self._per: dict[tuple[bool, bool], Tensor] = {  # (programming, saturation)
            (True, True): clamped_array,
            (False, True): clamped_target,
            (True, False): target + (clamped_array - clamped_target),
            (False, False): target,
        }

    def weight_key(self, mask: int) -> int:
        return mask & (_PROG | _SAT)

    def _chip_weights(self, mask: int) -> Tensor:
        w = self._per[(bool(mask & _PROG), bool(mask & _SAT))]
        return w.unsqueeze(0).expand(len(self.times), *w.shape)


def tile_game(tile: TileWithPeriphery, times: list[float], seed: int, index: int) -> TileGame:
    """The coalition states of ``tile`` (the ``index``-th tile of the budget)."""
    if isinstance(tile, InferenceTile):
        return _InferenceGame(tile, times, seed, index)
    return _TrainingGame(tile, times)

