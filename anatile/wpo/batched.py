"""Whole-population TNMSE: every candidate strategy of a generation in one tensor computation.

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
* the standard-normal draws for programming noise, drift exponents and read noise are drawn
  in one ``torch.randn`` call per evaluation. With ``common_random_numbers`` (default) all
  candidates of one evaluation share the same draws: each candidate's loss keeps exactly the
  distribution of an independent evaluation, while differences between candidates lose the
  noise they do not cause (the classic common-random-numbers variance reduction), and the
  cost of drawing becomes negligible;
* drift compensation follows the tile's definition (``alpha = readout_ref / readout_now``
  with the identity readout input, so the readout of a perfect-IO tile is the mean absolute
  weight): globally ``alpha = Σ|W_prog| / Σ|W_t|``, per column
  ``alpha_j = Σ_i |W_prog,ji| / Σ_i |W_t,ji|``, where ``W_prog`` are the programmed weights
  (programming noise, no drift, no read noise) and ``W_t`` the weights read at ``t``.

``TNMSE = Σ_t Σ_ij (10·(alpha_t·W_t − W)_ij / max|W|)² / (n_weights·len(t_steps))``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from anatile.functional.pcm import (
    DEFAULT_PROG_COEFF,
    PROG_COEFF_G_MAX_REFERENCE,
    pcm_drift_nu_stats,
    pcm_read_noise_time_factor,
)
from anatile.wpo import native as native_mod

__all__ = ["ERROR_AMPLIFICATION", "BatchedTNMSE", "PCMPhysics", "compensation_kind"]

_log = logging.getLogger(__name__)

ERROR_AMPLIFICATION = 10.0
"""Factor applied to the normalized weight error before squaring (as in Mackin et al.)."""

Q_S_FLOOR_LOG = math.log((0.2 / 0.0088) ** (-1.0 / 0.65))
"""``ln(g/g_max)`` below which the read-noise amplitude ``Q_s`` is capped at 0.2."""


@dataclass(frozen=True)
class PCMPhysics:
    """The parameters of a PCM-like noise model, detached from the model object.

    Attributes:
        g_max: conductance (µS) that the noise statistics are relative to.
        prog_coeff: programming-noise polynomial (µS), lowest order first.
        g_max_reference: ``g_max`` at which ``prog_coeff`` was fitted (µS).
        prog_noise_scale: multiplier of the programming noise.
        read_noise_scale: multiplier of the read noise.
        drift_scale: multiplier of the drift exponent.
        t_0: drift reference time (s).
        t_read: read duration (s).
        custom_drift: ``(g_lst, nu_mean_lst, nu_std_lst)`` of a custom drift model (ν
            statistics interpolated over g, ends held), or None for the PCM model.
    """

    g_max: float
    prog_coeff: tuple[float, ...] = DEFAULT_PROG_COEFF
    g_max_reference: float = PROG_COEFF_G_MAX_REFERENCE
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    t_0: float = 20.0
    t_read: float = 250e-9
    custom_drift: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]] | None = None

    @classmethod
    def from_noise_model(cls, noise_model: Any, g_max: float) -> PCMPhysics:
        """Read the parameters of a ``PCMLikeNoiseModel`` / ``CustomDriftPCMLikeNoiseModel``.

        Args:
            noise_model: the noise model of the inference configuration.
            g_max: fallback ``g_max`` (µS) when the model does not define one.

        Returns:
            The physics parameters.

        Raises:
            TypeError: if the noise model is not PCM-like.
        """
        name = type(noise_model).__name__
        if name not in ("PCMLikeNoiseModel", "CustomDriftPCMLikeNoiseModel"):
            raise TypeError(
                f"noise_model: the batched WPO loss supports PCMLikeNoiseModel and "
                f"CustomDriftPCMLikeNoiseModel, got {name}; use vectorized=False"
            )
        model_g_max = getattr(noise_model, "g_max", None)
        g_max_used = float(model_g_max) if model_g_max is not None else float(g_max)
        coeff = getattr(noise_model, "prog_coeff", None)
        coeff_t = tuple(float(c) for c in (DEFAULT_PROG_COEFF if coeff is None else coeff))
        ref = getattr(noise_model, "prog_coeff_g_max_reference", None)
        custom = None
        drift_model = getattr(noise_model, "custom_drift_model", None)
        if drift_model is not None:
            custom = (
                tuple(float(v) for v in drift_model["g_lst"]),
                tuple(float(v) for v in drift_model["nu_mean_lst"]),
                tuple(float(v) for v in drift_model["nu_std_lst"]),
            )
        return cls(
            g_max=g_max_used,
            prog_coeff=coeff_t,
            g_max_reference=float(ref) if ref is not None else PROG_COEFF_G_MAX_REFERENCE,
            prog_noise_scale=float(getattr(noise_model, "prog_noise_scale", 1.0)),
            read_noise_scale=float(getattr(noise_model, "read_noise_scale", 1.0)),
            drift_scale=float(getattr(noise_model, "drift_scale", 1.0)),
            t_0=float(getattr(noise_model, "t_0", 20.0)),
            t_read=float(getattr(noise_model, "t_read", 250e-9)),
            custom_drift=custom,
        )

    def nu_stats(self, g_target: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of ν (before ``drift_scale``) at ``g_target``."""
        if self.custom_drift is None:
            return pcm_drift_nu_stats(g_target, self.g_max)
        g_lst, mean_lst, std_lst = (
            torch.tensor(v, dtype=g_target.dtype, device=g_target.device)
            for v in self.custom_drift
        )
        return _interp(g_target, g_lst, mean_lst), _interp(g_target, g_lst, std_lst)


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """``numpy.interp`` in torch (ends held constant)."""
    idx = torch.searchsorted(xp, x.contiguous()).clamp(1, xp.numel() - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    y0, y1 = fp[idx - 1], fp[idx]
    frac = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
    return y0 + frac * (y1 - y0)


def compensation_kind(drift_compensation: Any) -> str | None:
    """``"global"``, ``"per_column"`` or None for a drift-compensation object.

    Raises:
        TypeError: for an unknown drift compensation.
    """
    if drift_compensation is None:
        return None
    name = type(drift_compensation).__name__
    if name == "GlobalDriftCompensation":
        return "global"
    if name == "PerColumnDriftCompensation":
        return "per_column"
    raise TypeError(
        f"drift_compensation: the batched WPO loss supports GlobalDriftCompensation, "
        f"PerColumnDriftCompensation or None, got {name}; use vectorized=False"
    )


class BatchedTNMSE:
    """TNMSE of many custom-pair strategies on one set of test weights.

    Args:
        weights: test weights (unitless), shape ``(out_features, in_features)`` as stored on
            a tile (per-column compensation groups the rows).
        t_steps: inference times (s).
        physics: noise-model parameters.
        n_grid: number of grid weights of the strategies' conductance tables.
        compensation: ``"global"``, ``"per_column"`` or None.
        device: where to compute.
        dtype: floating-point type of the computation.
        chunk_size: candidates per chunk (bounds memory); None picks one from the size.
        common_random_numbers: share the noise draws among the candidates of one call.
        compile: fuse the torch kernel with ``torch.compile`` (None: when a compiler is
            available; eager mode is the fallback if compilation fails).
        native: use the compiled C kernel (:mod:`anatile.wpo.native`) on the CPU (None: when
            the engine runs float32 on the CPU and the kernel builds here; True: require it).

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
    ) -> None:
        if weights.dim() != 2:
            raise ValueError(f"weights: expected a 2-D tensor, got shape {tuple(weights.shape)}")
        if len(t_steps) == 0:
            raise ValueError("t_steps: expected at least one time step")
        if compensation not in ("global", "per_column", None):
            raise ValueError(f"compensation: expected 'global', 'per_column' or None, "
                             f"got {compensation!r}")
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
        p = physics
        read_factor = [
            float(pcm_read_noise_time_factor(t, p.t_0, p.t_read)) * p.read_noise_scale
            for t in self.t_steps
        ]
        self.chunk_size = chunk_size
        self.compile = compile
        self.native = native
        self._native = None
        if native is not False and self.device.type == "cpu" and dtype == torch.float32:
            if native or not os.environ.get("ANATILE_NO_NATIVE"):
                self._native = native_mod.load()
        if native and self._native is None:
            raise ValueError("native: the compiled kernel needs a float32 engine on the CPU "
                             "and a working C compiler (see the log of anatile.wpo.native)")
        self._t = torch.tensor(self.t_steps, dtype=dtype, device=self.device)
        self._read_factor = torch.tensor(read_factor, dtype=dtype, device=self.device)
        self._log_ratio = torch.log((self._t.double() + p.t_0) / p.t_0).to(dtype)
        self._consts = (
            float(p.g_max), tuple(float(c) for c in p.prog_coeff), float(p.g_max_reference),
            float(p.prog_noise_scale), float(p.drift_scale), float(p.t_0), compensation,
            self.out_features, ERROR_AMPLIFICATION / self.max_abs,
            float(self.n_weights * len(self.t_steps)),
        )

    @property
    def kernel_name(self) -> str:
        """Which kernel evaluates: ``"native-avx512"``, ``"native-portable"``,
        ``"torch.compile"`` or ``"torch"``."""
        if self._native is not None:
            return f"native-{self._native.variant}"
        return "torch.compile" if _kernel_for(self.device, self.compile) is not tnmse_kernel \
            else "torch"

    def _chunk(self, n_dev: int) -> int:
        if self.chunk_size is not None:
            return max(1, int(self.chunk_size))
        # ~ 2**20 elements per (candidates, devices, weights) tensor: a few MB per
        # intermediate, enough to amortize the per-op overhead of eager mode
        return max(1, (1 << 20) // max(1, n_dev * self.n_weights))

    @torch.no_grad()
    def __call__(
        self, f: Tensor, g_table: Tensor, generator: torch.Generator | None = None, *,
        common_random_numbers: bool | None = None,
    ) -> Tensor:
        """TNMSE of each candidate.

        Args:
            f: significance factors, ``(S, P)``.
            g_table: conductances (µS) at the grid weights, ``(S, 2·P, n_grid)``.
            generator: random source on :attr:`device`.
            common_random_numbers: share one noise draw among the candidates of this call
                (None: :attr:`common_random_numbers`).

        Returns:
            float64 TNMSE per candidate, shape ``(S,)``, on :attr:`device` (``inf`` where
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
                  else common_random_numbers)
        return self._run(g_a, g_b, self._lo, self._frac, coef, generator, common)

    @torch.no_grad()
    def evaluate_targets(
        self, g_target: Tensor, coef: Tensor, repeats: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """TNMSE of ``repeats`` independent evaluations of fixed target conductances.

        Used for the baseline converter: its conductances come from the converter itself
        (any linear converter: ``W = Σ_k coef_k · g_k``), each repetition draws its own noise.

        Args:
            g_target: target conductances of the test weights, ``(K, n_weights)`` (µS), in
                the row-major order of the test weights.
            coef: weight per µS of each device, ``(K,)``.
            repeats: number of independent evaluations.
            generator: random source on :attr:`device`.

        Returns:
            float64 TNMSE of each repetition, shape ``(repeats,)``.

        Raises:
            ValueError: on mismatched shapes.
        """
        if g_target.dim() != 2 or g_target.shape[1] != self.n_weights \
                or coef.shape != (g_target.shape[0],):
            raise ValueError(f"g_target/coef: expected (K, {self.n_weights}) and (K,), got "
                             f"{tuple(g_target.shape)} and {tuple(coef.shape)}")
        g = g_target.to(self.device, self.dtype)[None].expand(repeats, -1, -1)
        c = coef.to(self.device, self.dtype)[None].expand(repeats, -1)
        lo = torch.arange(self.n_weights, device=self.device)
        frac = torch.zeros(self.n_weights, dtype=self.dtype, device=self.device)
        return self._run(g, torch.zeros_like(g), lo, frac, c, generator, False)

    def _run(self, g_a: Tensor, g_b: Tensor, lo: Tensor, frac: Tensor, coef: Tensor,
             generator: torch.Generator | None, common: bool) -> Tensor:
        n_cand, n_dev = coef.shape
        n_t = len(self.t_steps)
        step = min(self._chunk(n_dev), n_cand)
        shared = None
        if common:
            shared = torch.randn((n_t, 3, 1, n_dev, self.n_weights), generator=generator,
                                 dtype=self.dtype, device=self.device)
        native = self._native
        if native is not None and shared is not None and self.chunk_size is None:
            step = n_cand  # one pass: nothing per candidate is materialized
        kernel = _kernel_for(self.device, self.compile) if native is None else None
        out = torch.empty(n_cand, dtype=torch.float64, device=self.device)
        for start in range(0, n_cand, step):
            stop = min(start + step, n_cand)
            a, b, c = g_a[start:stop], g_b[start:stop], coef[start:stop]
            if kernel is not None and stop - start < step:
                # pad: one compiled shape for every chunk
                pad = step - (stop - start)
                a, b, c = (torch.cat([v, v[-1:].expand(pad, *v.shape[1:])]) for v in (a, b, c))
            if shared is None:
                z = torch.randn((n_t, 3, a.shape[0], n_dev, self.n_weights),
                                generator=generator, dtype=self.dtype, device=self.device)
            else:
                z = shared
            mu = sig_nu = None
            if self.physics.custom_drift is not None:
                mu, sig_nu = self.physics.nu_stats(a[:, :, lo] + b[:, :, lo] * frac)
            if native is not None:
                res = native_mod.run(native, a, b, lo, frac, c, self._w, z, self._log_ratio,
                                     self._read_factor, mu, sig_nu, self._consts)
            else:
                assert kernel is not None
                res = kernel(a, b, lo, frac, c, self._w, z, self._t, self._read_factor, mu,
                             sig_nu, self._consts)
            out[start:stop] = res[: stop - start]
        return torch.where(torch.isfinite(out), out, torch.full_like(out, math.inf))


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
    t_steps: Tensor,
    read_factor: Tensor,
    mu: Tensor | None,
    sig_nu: Tensor | None,
    consts: tuple[Any, ...],
) -> Tensor:
    """Sum over time steps of the squared, amplified weight errors of each candidate.

    A pure function (fused by ``torch.compile`` when available). Every device is handled
    as its own ``(c, N)`` slice, so all operations up to the sums over the weights are
    elementwise.

    Args:
        g_a: conductance at the lower grid point of each bin, ``(c, K, n_grid − 1)`` (µS).
        g_b: conductance step across each bin, ``(c, K, n_grid − 1)`` (µS).
        lo: bin of each weight, ``(N,)`` (int64).
        frac: position of each weight inside its bin, ``(N,)`` in ``[0, 1]``.
        coef: µS-to-unitless signed significance of each device, ``(c, K)``.
        w: the ideal weights, ``(N,)``.
        z: standard normals ``(T, 3, c or 1, K, N)`` for programming noise, drift exponent
            and read noise.
        t_steps: inference times (s), ``(T,)``.
        read_factor: ``read_noise_scale·sqrt(ln((t + t_0 + t_read)/(2·t_read)))``, ``(T,)``.
        mu: mean of ν (``drift_scale`` not applied), ``(c, K, N)``, or None for the PCM
            formula.
        sig_nu: standard deviation of ν, like ``mu``.
        consts: ``(g_max, prog_coeff, g_max_reference, prog_noise_scale, drift_scale, t_0,
            compensation, out_features, err_scale, n_norm)``.

    Returns:
        TNMSE per candidate, float64 ``(c,)``.
    """
    (g_max, coeffs, g_ref, prog_scale, drift_scale, t_0, compensation, n_out, err_scale,
     n_norm) = consts
    # The physics is written out here (the formulas of anatile.functional.pcm, checked
    # against them by the tests) so that torch.compile sees one graph without Python
    # scalar conversions.
    n_c, n_dev = coef.shape
    n_groups = n_out if compensation == "per_column" else 1
    w_g = w.reshape(1, n_groups, -1)
    w_sq = (w_g.to(torch.float64) ** 2).sum(2)
    log_ratio = torch.log((t_steps + t_0) / t_0)
    log_gmax = math.log(g_max)
    # time-independent per device: target, programming σ, ν mean and std (drift_scale in)
    target, sigma, nu_mean, nu_std = [], [], [], []
    for d in range(n_dev):
        g = g_a[:, d, lo] + g_b[:, d, lo] * frac
        rel = g / g_max
        s = torch.zeros_like(rel) + coeffs[-1]
        for c_k in coeffs[-2::-1]:  # Horner
            s = s * rel + c_k
        sigma.append((s * (g_max / g_ref * prog_scale)).clamp(min=0.0))
        if mu is None or sig_nu is None:
            log_rel = torch.log(rel.abs().clamp(min=1e-7))
            nu_mean.append((-0.0155 * log_rel + 0.0244).clamp(0.049, 0.1) * drift_scale)
            nu_std.append((-0.0125 * log_rel - 0.0059).clamp(0.008, 0.045) * drift_scale)
        else:
            nu_mean.append(mu[:, d] * drift_scale)
            nu_std.append(sig_nu[:, d] * drift_scale)
        target.append(g)
    total = torch.zeros(n_c, dtype=torch.float64, device=w.device)
    for ti in range(z.shape[0]):
        w_t = w_p = torch.zeros_like(target[0])
        for d in range(n_dev):
            g_prog = (target[d] + sigma[d] * z[ti, 0, :, d]).clamp(min=0.0)
            nu = (nu_mean[d] + nu_std[d] * z[ti, 1, :, d]).abs()
            g_drift = g_prog * torch.exp(-nu * log_ratio[ti])  # ((t + t_0)/t_0)^(−ν)
            # Q_s = min(0.0088 / max((g/g_max)^0.65, 1e-3), 0.2) = 0.0088·(g/g_max)^−0.65
            # with ln(g/g_max) floored where the cap of 0.2 sets in (ln 0 = −inf: the cap)
            log_rel = (torch.log(g_prog) - log_gmax).clamp(min=Q_S_FLOOR_LOG)
            q_s = 0.0088 * torch.exp(-0.65 * log_rel)
            g_read = (g_drift + g_drift * q_s * read_factor[ti] * z[ti, 2, :, d]).clamp(min=0.0)
            c_d = coef[:, d:d + 1]
            w_t = w_t + c_d * g_read
            w_p = w_p + c_d * g_prog
        # Σ(alpha·w_t − w)² = alpha²·Σd² + 2·alpha·(alpha − 1)·Σd·w + (alpha − 1)²·Σw² with
        # d = w_t − w per compensation group: one pass over the weights, and no cancellation
        # between large sums
        dev = (w_t - w).reshape(n_c, n_groups, -1)
        s_dd = (dev * dev).sum(2).to(torch.float64)
        if compensation is None:
            err = s_dd
        else:
            s_dw = (dev * w_g).sum(2).to(torch.float64)
            now = w_t.abs().reshape(n_c, n_groups, -1).sum(2).to(torch.float64)
            ref = w_p.abs().reshape(n_c, n_groups, -1).sum(2).to(torch.float64)
            ok = now > 1e-30  # as the tile: alpha = 1 when the readout is 0
            alpha = torch.where(ok, ref / torch.where(ok, now, torch.ones_like(now)),
                                torch.ones_like(now))
            am1 = alpha - 1.0
            err = alpha * alpha * s_dd + 2.0 * alpha * am1 * s_dw + am1 * am1 * w_sq
        total = total + err.sum(1) * (err_scale * err_scale)
    return total / n_norm
