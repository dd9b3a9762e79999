"""Whole-population TNMSE: every candidate strategy of a generation in one tensor computation.

Why this module is over 400 lines and not split: it is one computation, the evaluation of a
whole population (candidate table gather, random draws in a kernel-independent layout,
chunking, drift compensation and its noisy readout, kernel dispatch), whose steps share
the chunk sizes, the draw layout and the device of :class:`BatchedTNMSE`; split apart, each
piece would need the others' internals. The PCM formulas live in
``anatile.functional.pcm_formulas`` and the numba kernel in ``anatile.wpo.kernel_numba``.

The per-candidate reference (:func:`anatile.wpo.loss.loss_rpu_config`) builds a test layer
with the candidate converter and, for every time step, programs it (fresh programming noise
and drift exponents), drifts it to ``t`` (drift and 1/f read noise) and reads the
drift-compensated effective weights. Here the same chain runs on a tensor
``(candidates, devices, weights)``:

* the grid weights depend only on ``max|W|`` (shared by all candidates), so the
  interpolation index and fraction of every test weight are computed once; a candidate only
  contributes its conductance table (a gather);
* the target conductances, programming-noise σ and drift-exponent statistics do not depend
  on ``t`` and are computed once per candidate;
* the standard-normal draws for programming noise, drift exponents and read noise (and,
  with a noisy readout, the output noise of the two readouts) are drawn by torch in one
  call per evaluation (per chunk without common random numbers), in a candidate-major
  layout that does not depend on the kernel: every kernel consumes the same numbers. With
  ``common_random_numbers`` (default) all candidates of one evaluation share the same
  draws: each candidate's loss keeps exactly the distribution of an independent
  evaluation, while differences between candidates lose the noise they do not cause (the
  classic common-random-numbers variance reduction), and drawing becomes negligible;
* drift compensation follows the tile's definition (``alpha = readout_ref / readout_now``
  with the identity readout input): with an exact readout the readout of each weight is
  the weight itself, so globally ``alpha = Σ|W_prog| / Σ|W_t|`` and per column
  ``alpha_j = Σ_i |W_prog,ji| / Σ_i |W_t,ji|``, where ``W_prog`` are the programmed weights
  (programming noise, no drift, no read noise) and ``W_t`` the weights read at ``t``; with
  a noisy readout (:class:`~anatile.inference.physics.OneHotReadout`) each term is the ADC
  output ``|Q(gain·W + σ·z)|`` of that weight instead, with independent output noise for
  the two readouts, as the tile reads them through its forward IO model;
* with aihwkit's drift convention (``rederive``, the noise model's
  ``rederive_conductances``) what drifts is not each device's programmed conductance but
  the conductances the converter gives for the programmed weights ``W_prog``, its scale
  re-derived from ``max|W_prog|``: every candidate's table is interpolated again at
  ``W_prog / max|W_prog|`` (:func:`~anatile.functional.pcm_formulas.grid_position`) and
  the weights are read back with coefficients scaled by ``max|W_prog| / max|W|``; the
  drift exponents stay those drawn from the target conductances, device by device, as
  :meth:`anatile.inference.BaseNoiseModel.program` does.

The physics comes from the noise model as a typed description
(:meth:`~anatile.inference.BaseNoiseModel.physics`) and the formulas from
:mod:`anatile.functional.pcm_formulas`. Two kernels evaluate them: the numba kernel
(:mod:`anatile.wpo.kernel_numba`) on the CPU, the torch kernel (:func:`tnmse_kernel`,
fused by ``torch.compile`` where available) elsewhere.

``TNMSE = Σ_t Σ_ij (10·(alpha_t·W_t − W)_ij / max|W|)² / (n_weights·len(t_steps))``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from anatile.exceptions import ConfigError
from anatile.functional import pcm_formulas as F
from anatile.inference.compensation import BaseDriftCompensation
from anatile.inference.physics import OneHotReadout, PCMPhysics

__all__ = ["ERROR_AMPLIFICATION", "BatchedTNMSE", "PCMPhysics", "compensation_kind",
           "tnmse_kernel"]

_log = logging.getLogger(__name__)

ERROR_AMPLIFICATION = 10.0
"""Factor applied to the normalized weight error before squaring (as in Mackin et al.)."""

READOUT_HEADROOM = 1.5
"""The noisy readout model needs ``1.5·gain·max|W| + 6σ`` below the ADC bound: the
tile's bound management (re-reading saturated rows at a lower input) is not modelled."""


def compensation_kind(drift_compensation: BaseDriftCompensation | None) -> str | None:
    """``"global"``, ``"per_column"`` or None: the ``grouping`` a drift compensation
    declares (None: no compensation).

    Raises:
        TypeError: for a drift compensation without a grouping the batched loss knows.
    """
    if drift_compensation is None:
        return None
    grouping = drift_compensation.grouping if isinstance(
        drift_compensation, BaseDriftCompensation) else None
    if grouping not in ("global", "per_column"):
        raise TypeError(
            f"drift_compensation: the batched WPO loss supports compensations with a "
            f"grouping of 'global' or 'per_column' (GlobalDriftCompensation, "
            f"PerColumnDriftCompensation) or None, got {type(drift_compensation).__name__}; "
            "use vectorized=False"
        )
    return grouping


def _numba_kernel() -> Any:
    """The numba kernel, or None where numba is not installed (the torch kernel runs)."""
    try:
        from anatile.wpo import kernel_numba
    except ImportError:  # pragma: no cover - numba is a dependency
        _log.info("numba not available: the batched WPO loss uses the torch kernel")
        return None
    return kernel_numba.tnmse


class BatchedTNMSE:
    """TNMSE of many custom-pair strategies on one set of test weights.

    Args:
        weights: test weights (unitless), shape ``(out_features, in_features)`` as stored on
            a tile (per-column compensation groups the rows).
        t_steps: inference times (s).
        physics: the noise model's :meth:`~anatile.inference.BaseNoiseModel.physics`.
        n_grid: number of grid weights of the strategies' conductance tables.
        compensation: ``"global"``, ``"per_column"`` or None.
        device: where to compute.
        dtype: floating-point type of the computation.
        chunk_size: candidates per chunk (bounds memory); None picks one from the size.
        common_random_numbers: share the noise draws among the candidates of one call.
        compile: fuse the torch kernel with ``torch.compile`` (None: when a compiler is
            available; eager mode is the fallback if compilation fails).
        native: use the compiled numba kernel (:mod:`anatile.wpo.kernel_numba`) on the
            CPU (None: for a float32 engine on the CPU; True: require it).
        readout: the drift-compensation readout through the forward IO model, or None for
            the exact readout.
        readout_scale: array weight per logical weight of each output row (``1 / mapping
            scale``; ``(1,)`` or ``(out_features,)``), with ``readout``.
        rederive: aihwkit's drift convention (the noise model's ``rederive_conductances``):
            the conductances that drift are converted again from the programmed weights.

    Raises:
        ValueError: for bad shapes, times or options.
        ConfigError: if the noisy readout could saturate the ADC (see
            :data:`READOUT_HEADROOM`).

    Example:
        >>> import torch
        >>> w = torch.randn(20, 512) * 0.1
        >>> loss = BatchedTNMSE(w, [1.0, 3600.0], PCMPhysics(g_max=25.0), n_grid=11)
        >>> f = torch.ones(3, 2)
        >>> g = torch.rand(3, 4, 11) * 25
        >>> loss(f, g, torch.Generator().manual_seed(0)).shape
        torch.Size([3])
    """

    def __init__(
        self,
        weights: Tensor,
        t_steps: Sequence[float],
        physics: PCMPhysics,
        n_grid: int,
        compensation: str | None = "global",
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        chunk_size: int | None = None,
        common_random_numbers: bool = True,
        compile: bool | None = None,
        native: bool | None = None,
        readout: OneHotReadout | None = None,
        readout_scale: Tensor | None = None,
        rederive: bool = False,
    ) -> None:
        if weights.dim() != 2:
            raise ValueError(f"weights: expected a 2-D tensor, got shape {tuple(weights.shape)}")
        if len(t_steps) == 0:
            raise ValueError("t_steps: expected at least one time step")
        if compensation not in ("global", "per_column", None):
            raise ValueError(f"compensation: expected 'global', 'per_column' or None, "
                             f"got {compensation!r}")
        if not isinstance(physics, PCMPhysics):
            raise TypeError(f"physics: expected a PCMPhysics, got {type(physics).__name__}")
        self.device = torch.device(device) if device is not None else weights.device
        self.dtype = dtype
        self.physics = physics
        self.compensation = compensation
        self.common_random_numbers = common_random_numbers
        self.out_features, self.in_features = int(weights.shape[0]), int(weights.shape[1])
        w = weights.detach().to(self.device, torch.float64).reshape(-1)
        self.n_weights = w.numel()
        self.max_abs = float(w.abs().max().clamp(min=1e-30))
        grid = torch.linspace(-self.max_abs, self.max_abs, n_grid, dtype=torch.float64,
                              device=self.device)
        hi = torch.searchsorted(grid, w).clamp(1, n_grid - 1)
        lo = hi - 1
        frac = ((w - grid[lo]) / (grid[hi] - grid[lo])).clamp(0.0, 1.0)
        self._lo = lo
        self._frac = frac.to(dtype)
        self._w = w.to(dtype)
        self.n_grid = n_grid
        self.t_steps = [float(t) for t in t_steps]
        for t in self.t_steps:
            if not (math.isfinite(t) and t >= 0):
                raise ValueError(f"t_steps: expected finite times >= 0, got {t!r}")
        if not isinstance(rederive, bool):
            raise TypeError(f"rederive: expected a bool, got {type(rederive).__name__}")
        self.rederive = rederive
        self.readout = readout
        self._gain = torch.zeros(1, dtype=dtype, device=self.device)
        if readout is not None:
            scale = (torch.ones(1) if readout_scale is None else
                     readout_scale.detach().to(torch.float64).reshape(-1).cpu())
            if scale.numel() not in (1, self.out_features) or not bool(
                    (torch.isfinite(scale) & (scale > 0)).all()):
                raise ValueError(f"readout_scale: expected 1 or {self.out_features} positive "
                                 f"finite values, got {tuple(scale.shape)}")
            rows = scale.expand(self.out_features) * readout.amplitude
            peak = READOUT_HEADROOM * float((rows * w.cpu().reshape(self.out_features, -1)
                                             .abs().amax(1)).max()) + 6 * readout.noise_std
            if peak >= readout.bound:
                raise ConfigError(
                    f"forward.out_bound: the drift-compensation readout may reach the ADC "
                    f"bound ({readout.bound}; largest readout about {peak:.3g}), and the "
                    "batched loss does not model bound management; use vectorized=False"
                )
            self._gain = rows.repeat_interleave(self.in_features).to(self.device, dtype)
        p = physics
        self._log_ratio = torch.tensor([p.drift_log_ratio(t) for t in self.t_steps],
                                       dtype=dtype, device=self.device)
        self._read_amp = torch.tensor([p.read_amplitude(t) for t in self.t_steps],
                                      dtype=dtype, device=self.device)
        self.chunk_size = chunk_size
        self.compile = compile
        self.native = native
        self._native = None
        if native is not False and self.device.type == "cpu" and dtype == torch.float32:
            if native or not os.environ.get("ANATILE_NO_NATIVE"):
                self._native = _numba_kernel()
        if native and self._native is None:
            raise ValueError("native: the compiled kernel needs a float32 engine on the CPU "
                             "and numba")
        n_groups = self.out_features if compensation == "per_column" else 1
        self._n_groups = n_groups
        self._w_sq = (w.reshape(n_groups, -1) ** 2).sum(1)

    @property
    def kernel_name(self) -> str:
        """The kernel that evaluates, ``"numba"``, ``"torch.compile"`` or ``"torch"``."""
        if self._native is not None:
            return "numba"
        return "torch.compile" if _kernel_for(self.device, self.compile) is not tnmse_kernel \
            else "torch"

    def _chunk(self, n_dev: int) -> int:
        if self.chunk_size is not None:
            return max(1, int(self.chunk_size))
        # ~ 2**20 elements per (candidates, devices, weights) tensor: a few MB per
        # intermediate, enough to amortize the per-op overhead of eager mode
        return max(1, (1 << 20) // max(1, n_dev * self.n_weights))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_native"] = None  # a compiled function: found again on unpickling
        state["_has_native"] = self._native is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        has = state.pop("_has_native", False)
        self.__dict__.update(state)
        self._native = _numba_kernel() if has else None

    @torch.no_grad()
    def __call__(
        self, f: Tensor, g_table: Tensor, generator: torch.Generator | None = None, *,
        common_random_numbers: bool | None = None,
    ) -> Tensor:
        """TNMSE of each candidate.

        Args:
            f: significance factors, ``(S, P)``.
            g_table: conductances (µS) at the grid weights, ``(S, 2·P, n_grid)``.
            generator: random source on the engine's ``device``.
            common_random_numbers: share the draws among the candidates of this call
                (None: :attr:`common_random_numbers`).

        Returns:
            float64 TNMSE per candidate, shape ``(S,)``, on the engine's ``device`` (``inf`` where
            the result is not finite).

        Raises:
            ValueError: on mismatched shapes.
        """
        if (f.dim() != 2 or g_table.dim() != 3 or g_table.shape[0] != f.shape[0]
                or g_table.shape[1] != 2 * f.shape[1] or g_table.shape[2] != self.n_grid):
            raise ValueError(
                f"f/g_table: expected (S, P) and (S, 2P, {self.n_grid}), "
                f"got {tuple(f.shape)} and {tuple(g_table.shape)}"
            )
        n_cand, n_dev = f.shape[0], g_table.shape[1]
        f = f.to(self.device, torch.float64)
        g_table = g_table.to(self.device, torch.float64)
        # µS -> unitless: the converter maps max|grid weight in µS| onto max|W|
        sign = torch.tensor([1.0, -1.0], dtype=torch.float64, device=self.device)
        w_us_grid = ((g_table[:, 0::2] - g_table[:, 1::2]) * f[:, :, None]).sum(1)
        scale = w_us_grid.abs().amax(1).clamp(min=1e-30) / self.max_abs
        coef = (f[:, :, None] * sign[None, None, :]).reshape(n_cand, n_dev) / scale[:, None]
        # interpolation as a per-bin affine map: g = a + b·frac
        g_a = g_table[:, :, :-1].to(self.dtype)
        g_b = (g_table[:, :, 1:] - g_table[:, :, :-1]).to(self.dtype)
        coef = coef.to(self.dtype)

        common = (self.common_random_numbers if common_random_numbers is None
                  else bool(common_random_numbers))
        # the table the programmed weights are converted with again is the candidate's own
        table = (g_a, g_b) if self.rederive else None
        return self._run(g_a, g_b, self._lo, self._frac, coef, generator, common, table)

    @torch.no_grad()
    def evaluate_targets(
        self, g_target: Tensor, coef: Tensor, repeats: int,
        generator: torch.Generator | None = None, table: Tensor | None = None,
    ) -> Tensor:
        """TNMSE of ``repeats`` independent evaluations of fixed target conductances.

        Used for the baseline converter: its conductances come from the converter itself
        (any linear converter: ``W = Σ_k coef_k · g_k``), each repetition draws its own noise.

        Args:
            g_target: target conductances of the test weights, ``(K, n_weights)`` (µS), in
                the row-major order of the test weights.
            coef: weight per µS of each device, ``(K,)``.
            repeats: number of independent evaluations.
            generator: random source on the engine's ``device``.
            table: with ``rederive``, the converter's conductances ``(K, n)`` (µS) at
                the ``n`` uniform grid weights over ``±max|W|``, linear in between (what
                the programmed weights are converted with again; see
                ``anatile.wpo.objective.rederive_table``).

        Returns:
            float64 TNMSE of each repetition, shape ``(repeats,)``.

        Raises:
            ValueError: on mismatched shapes, or a ``table`` missing with ``rederive``.
        """
        if g_target.dim() != 2 or g_target.shape[1] != self.n_weights \
                or coef.shape != (g_target.shape[0],):
            raise ValueError(f"g_target/coef: expected (K, {self.n_weights}) and (K,), got "
                             f"{tuple(g_target.shape)} and {tuple(coef.shape)}")
        rtab = None
        if self.rederive:
            if table is None or table.dim() != 2 or table.shape[0] != g_target.shape[0] \
                    or table.shape[1] < 2:
                raise ValueError(
                    f"table: expected the converter's conductances ({g_target.shape[0]}, n) "
                    f"on a uniform grid (rederive), got "
                    f"{None if table is None else tuple(table.shape)}")
            tab = table.to(self.device, torch.float64)
            rtab = (tab[None, :, :-1].to(self.dtype).expand(repeats, -1, -1),
                    (tab[:, 1:] - tab[:, :-1])[None].to(self.dtype).expand(repeats, -1, -1))
        g = g_target.to(self.device, self.dtype)[None].expand(repeats, -1, -1)
        c = coef.to(self.device, self.dtype)[None].expand(repeats, -1)
        lo = torch.arange(self.n_weights, device=self.device)
        frac = torch.zeros(self.n_weights, dtype=self.dtype, device=self.device)
        return self._run(g, torch.zeros_like(g), lo, frac, c, generator, False, rtab)

    def _draw(self, n: int, n_dev: int, generator: torch.Generator | None
              ) -> tuple[Tensor, Tensor | None]:
        """Standard normals of ``n`` candidates (candidate-major): programming noise, drift
        exponent and read noise per device, then the two readouts' output noise."""
        n_t = len(self.t_steps)
        z = torch.randn((n, n_t, 3, n_dev, self.n_weights), generator=generator,
                        dtype=self.dtype, device=self.device)
        zr = None
        if self.readout is not None:
            zr = torch.randn((n, n_t, 2, self.n_weights), generator=generator,
                             dtype=self.dtype, device=self.device)
        return z, zr

    def _run(self, g_a: Tensor, g_b: Tensor, lo: Tensor, frac: Tensor, coef: Tensor,
             generator: torch.Generator | None, common: bool,
             table: tuple[Tensor, Tensor] | None = None) -> Tensor:
        n_cand, n_dev = coef.shape
        # the draws depend only on (common, chunk): the same for every kernel
        step = min(self._chunk(n_dev), n_cand)
        shared = self._draw(1, n_dev, generator) if common else None
        native = self._native
        if native is not None and shared is not None:
            step = n_cand  # one pass: nothing per candidate is materialized
        kernel = _kernel_for(self.device, self.compile) if native is None else None
        out = torch.empty(n_cand, dtype=torch.float64, device=self.device)
        for start in range(0, n_cand, step):
            stop = min(start + step, n_cand)
            a, b, c = g_a[start:stop], g_b[start:stop], coef[start:stop]
            rtab = None if table is None else (table[0][start:stop], table[1][start:stop])
            z, zr = shared if shared is not None else self._draw(stop - start, n_dev,
                                                                  generator)
            mu = sig_nu = None
            if self.physics.custom_drift is not None:
                mu, sig_nu = self.physics.nu_stats(a[:, :, lo] + b[:, :, lo] * frac)
            if native is not None:
                res = self._run_numba(native, a, b, lo, frac, c, z, zr, mu, sig_nu, rtab)
            else:
                assert kernel is not None
                if stop - start < step and shared is not None:
                    # pad: one compiled shape for every chunk
                    pad = step - (stop - start)
                    a, b, c = (torch.cat([v, v[-1:].expand(pad, *v.shape[1:])])
                               for v in (a, b, c))
                    if mu is not None and sig_nu is not None:
                        mu, sig_nu = (torch.cat([v, v[-1:].expand(pad, *v.shape[1:])])
                                      for v in (mu, sig_nu))
                    if rtab is not None:
                        rtab = (torch.cat([rtab[0], rtab[0][-1:].expand(pad, -1, -1)]),
                                torch.cat([rtab[1], rtab[1][-1:].expand(pad, -1, -1)]))
                res = kernel(a, b, lo, frac, c, self._w, z, zr, self._log_ratio,
                             self._read_amp, mu, sig_nu, self._consts(), rtab)
            out[start:stop] = res[: stop - start]
        return torch.where(torch.isfinite(out), out, torch.full_like(out, math.inf))

    def _consts(self) -> tuple[Any, ...]:
        p, r = self.physics, self.readout
        return (
            p.g_max, tuple(float(c) for c in p.prog_coeff), p.prog_noise_factor,
            p.drift_scale, self._n_groups, self.compensation is not None,
            ERROR_AMPLIFICATION / self.max_abs, float(self.n_weights * len(self.t_steps)),
            None if r is None else (self._gain, r.noise_std, r.step, r.bound),
        )

    def _run_numba(self, kernel: Any, g_a: Tensor, g_b: Tensor, lo: Tensor, frac: Tensor,
                   coef: Tensor, z: Tensor, zr: Tensor | None, mu: Tensor | None,
                   sig_nu: Tensor | None, rtab: tuple[Tensor, Tensor] | None = None
                   ) -> Tensor:
        p, r = self.physics, self.readout

        def f32(x: Tensor) -> np.ndarray:
            return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())

        dummy3 = np.zeros((1, 1, 1), np.float32)
        zr_np = f32(zr) if zr is not None else np.zeros((1, 1, 2, 1), np.float32)
        if r is None:
            readout = np.array([0.0, 1.0, 0.0, 1.0], np.float32)
        else:
            inv_step = 1.0 / r.step if r.step > 0 else 1.0
            unit = r.step if r.step > 0 else 1.0
            readout = np.array([r.noise_std, inv_step, r.bound / unit, unit], np.float32)
        flags = np.array([int(mu is not None), int(r is not None),
                          int(self.compensation is not None), self._n_groups,
                          int(rtab is not None)], np.int64)
        out = np.empty(g_a.shape[0], np.float64)
        kernel(f32(g_a), f32(g_b), np.ascontiguousarray(lo.cpu().numpy().astype(np.int32)),
               f32(frac), f32(coef), f32(self._w), f32(z), zr_np, f32(self._log_ratio),
               f32(self._read_amp), dummy3 if mu is None else f32(mu),
               dummy3 if sig_nu is None else f32(sig_nu),
               dummy3 if rtab is None else f32(rtab[0]),
               dummy3 if rtab is None else f32(rtab[1]),
               tuple(np.float32(c) for c in p.prog_coeff),
               np.array([p.g_max, p.prog_noise_factor, p.drift_scale, self.max_abs],
                        np.float32),
               readout, f32(self._gain), flags,
               self._w_sq.cpu().numpy().astype(np.float64), out)
        err = ERROR_AMPLIFICATION / self.max_abs
        return torch.from_numpy(out * (err * err) / (self.n_weights * len(self.t_steps))
                                ).to(self.device)


def _rederived(target: list[Tensor], sigma: list[Tensor], nu_mean: list[Tensor],
               nu_std: list[Tensor], coef: Tensor, z: Tensor, log_ratio: Tensor,
               read_amp: Tensor, table: tuple[Tensor, Tensor], g_max: float,
               drift_scale: float, max_abs: float) -> tuple[Tensor, Tensor]:
    """One time step with aihwkit's drift convention: the weights read at ``t`` and the
    programmed weights, ``(c, N)`` each (``z``: the step's normals ``(c or 1, 3, K, N)``)."""
    g_a, g_b = table
    n_dev = coef.shape[1]
    w_p = torch.zeros_like(target[0])
    for d in range(n_dev):
        w_p = w_p + coef[:, d:d + 1] * F.programmed(target[d], sigma[d], z[:, 0, d])
    # the converter again, its scale from the largest programmed weight
    m_p = w_p.abs().amax(1, keepdim=True).clamp(min=1e-30)
    n_cells = g_a.shape[2]
    pos = F.grid_position(w_p, 1.0 / m_p, 0.5 * n_cells)
    cell = pos.floor().clamp(0, n_cells - 1)
    frac = (pos - cell).clamp(0.0, 1.0)
    idx = cell.long()
    rescale = m_p / max_abs
    w_t = torch.zeros_like(w_p)
    for d in range(n_dev):
        g_re = g_a[:, d].gather(1, idx) + g_b[:, d].gather(1, idx) * frac
        nu = F.drift_nu(nu_mean[d], nu_std[d], z[:, 1, d], drift_scale)
        g_drift = g_re * F.drift_factor(nu, log_ratio)
        g_read = F.read_noise(g_drift, F.read_noise_qs(g_re, g_max), read_amp, z[:, 2, d])
        w_t = w_t + coef[:, d:d + 1] * rescale * g_read
    return w_t, w_p


_KERNELS: dict[tuple[str, bool], Any] = {}


def _kernel_for(device: torch.device, compile_: bool | None) -> Any:
    """The TNMSE kernel for ``device``: compiled with ``torch.compile`` when wanted and
    possible, the eager function otherwise (also after a failed compilation)."""
    use = _compile_available(device) if compile_ is None else compile_
    key = (device.type, bool(use))
    if key not in _KERNELS:
        if use:
            compiled = torch.compile(tnmse_kernel, dynamic=False)

            def guarded(*args: Any) -> Tensor:
                try:
                    return compiled(*args)
                except Exception:  # compiler missing or broken: stay correct, run eager
                    _log.warning("torch.compile of the WPO kernel failed; using eager mode",
                                 exc_info=True)
                    _KERNELS[key] = tnmse_kernel
                    return tnmse_kernel(*args)

            _KERNELS[key] = guarded
        else:
            _KERNELS[key] = tnmse_kernel
    return _KERNELS[key]


def _compile_available(device: torch.device) -> bool:
    if os.environ.get("ANATILE_NO_COMPILE"):
        return False
    if device.type == "cpu":
        return shutil.which(os.environ.get("CXX", "g++")) is not None or \
            shutil.which("c++") is not None
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False
        return True
    return False


def tnmse_kernel(
    g_a: Tensor,
    g_b: Tensor,
    lo: Tensor,
    frac: Tensor,
    coef: Tensor,
    w: Tensor,
    z: Tensor,
    zr: Tensor | None,
    log_ratio: Tensor,
    read_amp: Tensor,
    mu: Tensor | None,
    sig_nu: Tensor | None,
    consts: tuple[Any, ...],
    rederive: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Sum over time steps of the squared, amplified weight errors of each candidate.

    A pure function over the formulas of :mod:`anatile.functional.pcm_formulas` (fused by
    ``torch.compile`` when available). Every device is handled as its own ``(c, N)``
    slice, so all operations up to the sums over the weights are elementwise.

    Args:
        g_a: conductance at the lower grid point of each bin, ``(c, K, n_grid − 1)`` (µS).
        g_b: conductance step across each bin, ``(c, K, n_grid − 1)`` (µS).
        lo: bin of each weight, ``(N,)`` (int64).
        frac: position of each weight inside its bin, ``(N,)`` in ``[0, 1]``.
        coef: µS-to-unitless signed significance of each device, ``(c, K)``.
        w: the ideal weights, ``(N,)``.
        z: standard normals ``(c or 1, T, 3, K, N)`` for programming noise, drift exponent
            and read noise.
        zr: standard normals ``(c or 1, T, 2, N)`` of the reference and the current
            readout, or None for the exact readout.
        log_ratio: ``ln((t + t_0)/t_0)``, ``(T,)``.
        read_amp: ``read_noise_scale·sqrt(ln((t + t_0 + t_read)/(2·t_read)))``, ``(T,)``.
        mu: mean of ν (before ``drift_scale``), ``(c, K, N)``, or None for the PCM
            formulas.
        sig_nu: standard deviation of ν, like ``mu``.
        consts: ``(g_max, prog_coeff, prog_noise_factor, drift_scale, n_groups,
            compensate, err_scale, n_norm, readout)`` with ``readout`` None or
            ``(gain (N,), noise_std, step, bound)``.
        rederive: aihwkit's drift convention: ``(a, b)``, the per-bin affine table
            ``(c, K, n − 1)`` of the uniform grid over ``±max|W|`` that the programmed
            weights are converted with again (None: each device's programmed conductance
            drifts).

    Returns:
        TNMSE per candidate, float64 ``(c,)``.
    """
    (g_max, coeffs, prog_factor, drift_scale, n_groups, compensate, err_scale, n_norm,
     readout) = consts
    n_c, n_dev = coef.shape
    w_g = w.reshape(1, n_groups, -1)
    w_sq = (w_g.to(torch.float64) ** 2).sum(2)
    if readout is not None:
        gain, noise_std, step, bound = readout
        inv_step = 1.0 / step if step > 0 else 1.0
        max_level = bound * inv_step
        unit = step if step > 0 else 1.0
    # time-independent per device: target, programming σ, ν mean and std
    target, sigma, nu_mean, nu_std = [], [], [], []
    for d in range(n_dev):
        g = g_a[:, d, lo] + g_b[:, d, lo] * frac
        sigma.append(F.prog_noise_std(g, g_max, coeffs, prog_factor))
        if mu is None or sig_nu is None:
            log_rel = F.log_relative(g, g_max)
            nu_mean.append(F.nu_mean(log_rel))
            nu_std.append(F.nu_std(log_rel))
        else:
            nu_mean.append(mu[:, d])
            nu_std.append(sig_nu[:, d])
        target.append(g)
    total = torch.zeros(n_c, dtype=torch.float64, device=w.device)
    for ti in range(z.shape[1]):
        w_t = w_p = torch.zeros_like(target[0])
        if rederive is None:
            for d in range(n_dev):
                g_prog = F.programmed(target[d], sigma[d], z[:, ti, 0, d])
                nu = F.drift_nu(nu_mean[d], nu_std[d], z[:, ti, 1, d], drift_scale)
                g_drift = g_prog * F.drift_factor(nu, log_ratio[ti])
                g_read = F.read_noise(g_drift, F.read_noise_qs(g_prog, g_max), read_amp[ti],
                                      z[:, ti, 2, d])
                c_d = coef[:, d:d + 1]
                w_t = w_t + c_d * g_read
                w_p = w_p + c_d * g_prog
        else:
            w_t, w_p = _rederived(target, sigma, nu_mean, nu_std, coef, z[:, ti], log_ratio[ti],
                                  read_amp[ti], rederive, g_max, drift_scale,
                                  ERROR_AMPLIFICATION / err_scale)
        # Σ(alpha·w_t − w)² = alpha²·Σd² + 2·alpha·(alpha − 1)·Σd·w + (alpha − 1)²·Σw² with
        # d = w_t − w per compensation group: one pass over the weights, and no cancellation
        # between large sums
        dev = (w_t - w).reshape(n_c, n_groups, -1)
        s_dd = (dev * dev).sum(2).to(torch.float64)
        if not compensate:
            err = s_dd
        else:
            s_dw = (dev * w_g).sum(2).to(torch.float64)
            if readout is None:
                read_now, read_ref = w_t.abs(), w_p.abs()
            else:
                assert zr is not None
                read_now = F.adc(F.readout_level(w_t, gain, noise_std, zr[:, ti, 1],
                                                 inv_step), max_level).abs() * unit
                read_ref = F.adc(F.readout_level(w_p, gain, noise_std, zr[:, ti, 0],
                                                 inv_step), max_level).abs() * unit
            now = read_now.reshape(n_c, n_groups, -1).sum(2).to(torch.float64)
            ref = read_ref.reshape(n_c, n_groups, -1).sum(2).to(torch.float64)
            ok = now > 1e-30  # as the tile: alpha = 1 when the readout is 0
            alpha = torch.where(ok, ref / torch.where(ok, now, torch.ones_like(now)),
                                torch.ones_like(now))
            am1 = alpha - 1.0
            err = alpha * alpha * s_dd + 2.0 * alpha * am1 * s_dw + am1 * am1 * w_sq
        total = total + err.sum(1) * (err_scale * err_scale)
    return total / n_norm
