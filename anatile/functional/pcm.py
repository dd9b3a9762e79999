"""Phase-change-memory (PCM) inference physics as pure tensor functions.

The formulas themselves are written once in :mod:`anatile.functional.pcm_formulas`
(shared with the batched WPO loss and its compiled kernel); this module adds the checks,
the random draws and the tensor conventions. Everything here is stateless: conductances
in, conductances out. All functions broadcast over any leading dimensions (the Weight
Programming Optimizer puts its candidates in a batch dimension), follow the dtype and
device of their tensor inputs and draw random numbers only from the explicit
``generator`` (or torch's default generator when it is None).

The statistical model is the one of Nandakumar et al. (ICECS 2019) as used for PCM in
analog inference simulators; conductances are in µS and times in seconds:

* programming noise: ``g_prog = max(g_target + σ_prog · N(0, 1), 0)`` with
  ``σ_prog = (c0 + c1·g/g_max + c2·(g/g_max)²) · g_max / g_max_reference · scale``;
* drift exponent: ``ν = drift_scale · |N(μ(g), σ(g))|`` with
  ``μ = clip(−0.0155·ln(g/g_max) + 0.0244, 0.049, 0.1)`` and
  ``σ = clip(−0.0125·ln(g/g_max) − 0.0059, 0.008, 0.045)``;
* drift: ``g(t) = g_prog · ((t + t_0) / t_0)^(−ν)``;
* 1/f read noise: ``g(t) + |g(t)| · read_noise_scale · Q_s · sqrt(ln((t + t_0 + t_read) /
  (2·t_read))) · N(0, 1)`` with ``Q_s = min(0.0088 / max((|g_prog|/g_max)^0.65, 1e-3), 0.2)``,
  clipped at 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from anatile.functional import pcm_formulas as F

__all__ = [
    "DEFAULT_PROG_COEFF",
    "PROG_COEFF_G_MAX_REFERENCE",
    "apply_pcm_drift_and_read_noise",
    "apply_pcm_programming_noise",
    "interpolate_custom_pair",
    "pcm_drift_factor",
    "pcm_drift_nu_stats",
    "pcm_prog_noise_std",
    "pcm_read_noise_qs",
    "pcm_read_noise_time_factor",
    "sample_pcm_drift_nu",
]

DEFAULT_PROG_COEFF: tuple[float, float, float] = (0.26348, 1.9650, -1.1731)
"""Polynomial coefficients (µS) of the programming-noise standard deviation."""

PROG_COEFF_G_MAX_REFERENCE: float = 25.0
"""The ``g_max`` (µS) at which :data:`DEFAULT_PROG_COEFF` were measured."""


def _floating(x: Tensor) -> Tensor:
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _check_positive(name: str, value: float | Tensor) -> None:
    if isinstance(value, Tensor):
        if bool((value <= 0).any()) or not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: expected positive finite values")
    elif not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")


def _scalar(value: float | Tensor) -> float | Tensor:
    """A 0-dim tensor or a number as a Python float; other tensors unchanged."""
    if isinstance(value, Tensor):
        return float(value) if value.dim() == 0 else value
    return float(value)


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def pcm_prog_noise_std(
    g_target: Tensor,
    g_max: float | Tensor,
    coeffs: tuple[float, ...] | list[float] = DEFAULT_PROG_COEFF,
    scale: float | Tensor = 1.0,
    *,
    g_max_reference: float = PROG_COEFF_G_MAX_REFERENCE,
) -> Tensor:
    """Standard deviation of the programming noise of each device.

    ``σ = (Σ_k c_k · (g/g_max)^k) · g_max / g_max_reference · scale``, clipped at 0 (a
    polynomial with a negative leading coefficient can turn negative far above ``g_max``).

    Args:
        g_target: target conductances (µS).
        g_max: maximal conductance (µS); a tensor broadcasts against ``g_target``.
        coeffs: polynomial coefficients ``(c0, c1, c2, ...)`` in µS, lowest order first.
        scale: multiplier of the noise (``prog_noise_scale``).
        g_max_reference: the ``g_max`` at which ``coeffs`` were fitted (µS).

    Returns:
        σ_prog in µS, same shape, dtype and device as ``g_target``.

    Raises:
        ValueError: if ``g_max`` or ``g_max_reference`` is not positive, or ``coeffs`` is
            empty.

    Shape:
        ``g_target``: ``(*)``; output: ``(*)``.
    """
    _check_positive("g_max", g_max)
    _check_positive("g_max_reference", g_max_reference)
    if len(coeffs) == 0:
        raise ValueError("coeffs: expected at least one coefficient")
    g = _floating(g_target)
    factor = _scalar(g_max / g_max_reference) * _scalar(scale)
    return F.prog_noise_std(g, g_max, tuple(float(c) for c in coeffs), factor)


def apply_pcm_programming_noise(
    g_target: Tensor,
    g_max: float | Tensor,
    coeffs: tuple[float, ...] | list[float] = DEFAULT_PROG_COEFF,
    scale: float | Tensor = 1.0,
    generator: torch.Generator | None = None,
    *,
    g_max_reference: float = PROG_COEFF_G_MAX_REFERENCE,
) -> Tensor:
    """Programmed conductances: target plus Gaussian programming noise, clipped at 0.

    Args:
        g_target: target conductances (µS).
        g_max: maximal conductance (µS).
        coeffs: programming-noise polynomial (see :func:`pcm_prog_noise_std`).
        scale: ``prog_noise_scale``.
        generator: random source (on the device of ``g_target``).
        g_max_reference: the ``g_max`` at which ``coeffs`` were fitted (µS).

    Returns:
        ``max(g_target + σ_prog · N(0, 1), 0)``.

    Raises:
        ValueError: as :func:`pcm_prog_noise_std`.

    Shape:
        ``g_target``: ``(*)``; output: ``(*)``.
    """
    g = _floating(g_target)
    sigma = pcm_prog_noise_std(g, g_max, coeffs, scale, g_max_reference=g_max_reference)
    return F.programmed(g, sigma, _randn_like(g, generator))


def pcm_drift_nu_stats(g: Tensor, g_max: float | Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of the drift exponent ν at conductance ``g``.

    The values are before ``drift_scale``; ``g = 0`` is treated as ``g/g_max = 1e-7``.

    Args:
        g: (target) conductances (µS).
        g_max: maximal conductance (µS).

    Returns:
        ``(mu, sigma)``, each shaped like ``g``.

    Raises:
        ValueError: if ``g_max`` is not positive.

    Shape:
        ``g``: ``(*)``; outputs: ``(*)``.
    """
    _check_positive("g_max", g_max)
    g = _floating(g)
    log_rel = F.log_relative(g, g_max)
    return F.nu_mean(log_rel), F.nu_std(log_rel)


def sample_pcm_drift_nu(
    g_target: Tensor,
    g_max: float | Tensor,
    drift_scale: float | Tensor = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one drift exponent per device: ``ν = drift_scale · |N(μ(g), σ(g))|``.

    Args:
        g_target: target conductances (µS).
        g_max: maximal conductance (µS).
        drift_scale: multiplier of ν.
        generator: random source.

    Returns:
        ν (dimensionless, ≥ 0), shaped like ``g_target``.

    Raises:
        ValueError: if ``g_max`` is not positive.

    Shape:
        ``g_target``: ``(*)``; output: ``(*)``.
    """
    mu, sigma = pcm_drift_nu_stats(g_target, g_max)
    return F.drift_nu(mu, sigma, _randn_like(mu, generator), _scalar(drift_scale))


def pcm_drift_factor(nu: Tensor, t_inference: float | Tensor, t_0: float = 20.0) -> Tensor:
    """Multiplicative drift ``((t + t_0) / t_0)^(−ν)`` (1 at ``t = 0``).

    Shape:
        ``nu``: ``(*)``; ``t_inference`` broadcasts against it; output: broadcast shape.
    """
    _check_positive("t_0", t_0)
    nu = _floating(nu)
    t = _scalar(t_inference)
    if isinstance(t, float):  # a Python float is far cheaper than a 0-dim tensor operand
        log_ratio: float | Tensor = float(F.drift_log_ratio(torch.tensor(t, dtype=torch.float64),
                                                            t_0))
    else:
        log_ratio = F.drift_log_ratio(t.to(dtype=nu.dtype, device=nu.device), t_0)
    return F.drift_factor(nu, log_ratio)  # one exp per element instead of a pow


def pcm_read_noise_qs(g_prog: Tensor, g_max: float | Tensor) -> Tensor:
    """Relative 1/f read-noise amplitude ``Q_s = min(0.0088 / max((|g|/g_max)^0.65, 1e-3), 0.2)``
    (:func:`anatile.functional.pcm_formulas.read_noise_qs`).

    Args:
        g_prog: programmed conductances (µS).
        g_max: maximal conductance (µS).

    Returns:
        ``Q_s`` shaped like ``g_prog``.

    Raises:
        ValueError: if ``g_max`` is not positive.

    Shape:
        ``g_prog``: ``(*)``; output: ``(*)``.
    """
    _check_positive("g_max", g_max)
    return F.read_noise_qs(_floating(g_prog), g_max)


def pcm_read_noise_time_factor(
    t_inference: float | Tensor, t_0: float = 20.0, t_read: float = 250e-9
) -> Tensor:
    """``sqrt(ln((t + t_0 + t_read) / (2·t_read)))``, the time growth of the 1/f read noise.

    Returns a float64 tensor (a scalar for a float ``t_inference``).
    """
    _check_positive("t_0", t_0)
    _check_positive("t_read", t_read)
    t = torch.as_tensor(t_inference, dtype=torch.float64)
    return F.read_time_factor(t, t_0, t_read)


def apply_pcm_drift_and_read_noise(
    g_prog: Tensor,
    nu: Tensor,
    t_inference: float | Tensor,
    g_max: float | Tensor,
    t_0: float = 20.0,
    t_read: float = 250e-9,
    read_noise_scale: float | Tensor = 1.0,
    generator: torch.Generator | None = None,
    *,
    noise: Tensor | None = None,
) -> Tensor:
    """Conductances read ``t_inference`` seconds after programming: drift plus 1/f noise.

    ``g(t) = g_prog · ((t + t_0)/t_0)^(−ν)``; the result is
    ``max(g(t) + |g(t)| · read_noise_scale · Q_s(g_prog) · sqrt(ln((t + t_0 + t_read) /
    (2·t_read))) · N(0, 1), 0)``.

    Args:
        g_prog: programmed conductances (µS).
        nu: drift exponents, broadcastable to ``g_prog``.
        t_inference: time since programming (s, ≥ 0); a tensor broadcasts (e.g. one time
            per leading batch entry, shaped ``(B, 1, ...)``).
        g_max: maximal conductance (µS).
        t_0: drift reference time (s).
        t_read: read duration (s).
        read_noise_scale: multiplier of the read noise (0 turns it off, drift stays).
        generator: random source.
        noise: the standard normals ``N(0, 1)`` of the read noise, shaped like the result,
            instead of a draw from ``generator`` (for callers that read several variants
            of one chip on common random numbers: one draw for all). With ``noise`` given
            and a number ``read_noise_scale`` of 0 the read-noise term, which then adds
            exact zeros, is skipped.

    Returns:
        Drifted, noisy conductances (µS, ≥ 0) of the broadcast shape.

    Raises:
        ValueError: if ``t_inference`` is negative or not finite, or ``g_max``, ``t_0``,
            ``t_read`` is not positive.

    Shape:
        ``g_prog``: ``(*)``; ``nu``, ``t_inference``: broadcastable; output: broadcast shape.
    """
    t = torch.as_tensor(t_inference)
    if bool((t < 0).any()) or not bool(torch.isfinite(t).all()):
        raise ValueError(f"t_inference: expected finite values >= 0, got {t_inference!r}")
    g_prog = _floating(g_prog)
    g_drift = g_prog * pcm_drift_factor(nu.to(g_prog.dtype), t_inference, t_0)
    amp = _scalar(pcm_read_noise_time_factor(t_inference, t_0, t_read))
    if isinstance(amp, Tensor):
        amp = amp.to(dtype=g_prog.dtype, device=g_prog.device)
    scale = _scalar(read_noise_scale)
    if noise is not None and isinstance(scale, float) and scale == 0.0:
        return g_drift.clamp(min=0.0)
    if isinstance(amp, Tensor) or isinstance(scale, Tensor) or amp * scale != 0.0:
        qs = pcm_read_noise_qs(g_prog, g_max)
        if noise is None:
            noise = _randn_like(g_drift, generator)
        elif noise.shape != g_drift.shape:
            raise ValueError(f"noise: expected the shape of the result "
                             f"{tuple(g_drift.shape)}, got {tuple(noise.shape)}")
        return F.read_noise(g_drift, qs, amp * scale, noise.to(g_drift.dtype))
    return g_drift.clamp(min=0.0)


def interpolate_custom_pair(weights: Tensor, w_grid: Tensor, g_table: Tensor) -> Tensor:
    """Piecewise-linear conductances of each device at each weight, batched.

    ``g_table[..., k, n]`` is the conductance of device ``k`` at grid weight
    ``w_grid[..., n]``; a weight between two grid points interpolates linearly, a weight
    outside the grid takes the value at the nearest end.

    Args:
        weights: weights to convert, ``(..., M)`` (flatten a matrix first).
        w_grid: ascending grid weights, ``(..., N)`` with ``N ≥ 2``.
        g_table: conductances at the grid, ``(..., K, N)``.

    Returns:
        Conductances ``(..., K, M)``; the leading dimensions are the broadcast of
        ``weights.shape[:-1]``, ``w_grid.shape[:-1]`` and ``g_table.shape[:-2]``.

    Raises:
        ValueError: on mismatched grid sizes or fewer than 2 grid points.

    Shape:
        e.g. ``weights (M,)``, ``w_grid (N,)``, ``g_table (B, K, N)`` → ``(B, K, M)``.
    """
    if w_grid.shape[-1] < 2:
        raise ValueError(
            f"w_grid: expected at least 2 grid points, got shape {tuple(w_grid.shape)}"
        )
    if g_table.dim() < 2 or g_table.shape[-1] != w_grid.shape[-1]:
        raise ValueError(
            f"g_table: expected shape (..., K, {w_grid.shape[-1]}), got {tuple(g_table.shape)}"
        )
    dtype = torch.promote_types(g_table.dtype, torch.get_default_dtype())
    weights = weights.to(dtype)
    w_grid = w_grid.to(dtype)
    g_table = g_table.to(dtype)
    n_grid = w_grid.shape[-1]
    n_dev = g_table.shape[-2]
    n_w = weights.shape[-1]
    lead = torch.broadcast_shapes(weights.shape[:-1], w_grid.shape[:-1], g_table.shape[:-2])
    grid = w_grid.expand(*lead, n_grid).contiguous()
    w = weights.expand(*lead, n_w).contiguous()
    hi = torch.searchsorted(grid, w).clamp(1, n_grid - 1)
    lo = hi - 1
    w0 = torch.gather(grid, -1, lo)
    w1 = torch.gather(grid, -1, hi)
    width = w1 - w0
    safe = torch.where(width > 0, width, torch.ones_like(width))
    frac = torch.where(width > 0, (w - w0) / safe, torch.zeros_like(w)).clamp(0.0, 1.0)
    table = g_table.expand(*lead, n_dev, n_grid)
    idx_shape = (*lead, n_dev, n_w)
    g0 = torch.gather(table, -1, lo.unsqueeze(-2).expand(idx_shape))
    g1 = torch.gather(table, -1, hi.unsqueeze(-2).expand(idx_shape))
    return g0 + frac.unsqueeze(-2) * (g1 - g0)
