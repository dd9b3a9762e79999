"""The PCM formulas, each written once (Nandakumar et al., ICECS 2019; conductances in µS),
and the one-hot drift-compensation readout the batched WPO loss evaluates with them.

Every function here is plain arithmetic over a small math namespace: the operators, the
builtin ``abs``, the names ``exp``, ``log``, ``log1p``, ``sqrt``, ``rint``, ``clip``,
``clip_min`` and ``clip_max``, and the model constants below. Defined here, they evaluate
torch tensors (:mod:`anatile.functional.pcm` and the torch kernel of the batched WPO loss
call them). :func:`rebind` copies the same function bodies over another namespace: the
compiled CPU kernel of the WPO loss (:mod:`anatile.wpo.kernel_numba`) rebinds them to
scalar float32 operations and compiles them with numba. A fix to a formula is made here
and reaches every evaluator; the tests compare each evaluator with these functions.

All formulas are elementwise and broadcast; parameters that are not tensors are numbers.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = [
    "CONSTANTS",
    "adc",
    "FORMULAS",
    "drift_factor",
    "drift_log_ratio",
    "drift_nu",
    "grid_position",
    "log_relative",
    "nu_mean",
    "nu_std",
    "prog_noise_std",
    "programmed",
    "read_noise",
    "read_noise_qs",
    "read_time_factor",
    "readout_level",
    "rebind",
]

# --- model constants (the same in aihwkit's PCMLikeNoiseModel) -------------------------
NU_MEAN_SLOPE = -0.0155
NU_MEAN_OFFSET = 0.0244
NU_MEAN_MIN = 0.049
NU_MEAN_MAX = 0.1
NU_STD_SLOPE = -0.0125
NU_STD_OFFSET = -0.0059
NU_STD_MIN = 0.008
NU_STD_MAX = 0.045
QS_COEFF = 0.0088
QS_EXPONENT = 0.65
QS_MAX = 0.2
QS_LOG_FLOOR = math.log((QS_MAX / QS_COEFF) ** (-1.0 / QS_EXPONENT))
"""``ln(g/g_max)`` below which ``Q_s`` reaches its cap :data:`QS_MAX`."""
MIN_RELATIVE_G = 1e-7
"""``g/g_max`` floor of the ν statistics (``ln 0``; they saturate long before)."""
TINY_RELATIVE_G = 1e-30
"""``g/g_max`` floor of ``Q_s`` (below :data:`QS_LOG_FLOOR`, so no value changes)."""
ZERO = 0.0

CONSTANTS: dict[str, float] = {
    name: value for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, float)
}
"""The constants the formulas read (a compiled evaluator rebinds them to its float type)."""


# --- the math namespace (torch) ---------------------------------------------------------
def exp(x: Any) -> Any:
    return torch.exp(x)


def log(x: Any) -> Any:
    return torch.log(x)


def log1p(x: Any) -> Any:
    return torch.log1p(x)


def sqrt(x: Any) -> Any:
    return torch.sqrt(x)


def rint(x: Any) -> Any:
    return torch.round(x)


def clip(x: Any, lo: Any, hi: Any) -> Any:
    return torch.clamp(x, lo, hi)


def clip_min(x: Any, lo: Any) -> Any:
    return torch.clamp(x, min=lo)


def clip_max(x: Any, hi: Any) -> Any:
    return torch.clamp(x, max=hi)


# --- the formulas (elementwise; the last two are evaluated once per time step) ---
def prog_noise_std(g: Any, g_max: Any, coeffs: Any, factor: Any) -> Any:
    """Programming-noise σ (µS): ``max((Σ_k c_k·(g/g_max)^k)·factor, 0)``, Horner's rule.

    ``factor = g_max / g_max_reference · prog_noise_scale``; ``coeffs`` lowest order first
    (a sequence or array of at least one coefficient).
    """
    rel = g / g_max
    n = len(coeffs)
    s = rel * ZERO + coeffs[n - 1]
    for k in range(n - 2, -1, -1):
        s = s * rel + coeffs[k]
    return clip_min(s * factor, ZERO)


def programmed(g_target: Any, sigma: Any, z: Any) -> Any:
    """Programmed conductance ``max(g_target + σ·z, 0)`` for a standard normal ``z``."""
    return clip_min(g_target + sigma * z, ZERO)


def log_relative(g: Any, g_max: Any) -> Any:
    """``ln(max(|g|/g_max, 1e-7))``, the argument of the ν statistics."""
    return log(clip_min(abs(g) / g_max, MIN_RELATIVE_G))


def nu_mean(log_rel: Any) -> Any:
    """Mean drift exponent ``clip(−0.0155·ln(g/g_max) + 0.0244, 0.049, 0.1)``."""
    return clip(NU_MEAN_SLOPE * log_rel + NU_MEAN_OFFSET, NU_MEAN_MIN, NU_MEAN_MAX)


def nu_std(log_rel: Any) -> Any:
    """Standard deviation of ν ``clip(−0.0125·ln(g/g_max) − 0.0059, 0.008, 0.045)``."""
    return clip(NU_STD_SLOPE * log_rel + NU_STD_OFFSET, NU_STD_MIN, NU_STD_MAX)


def drift_nu(mean: Any, std: Any, z: Any, drift_scale: Any) -> Any:
    """Drift exponent ``drift_scale·|mean + std·z|`` for a standard normal ``z``."""
    return abs(mean + std * z) * drift_scale


def drift_factor(nu: Any, log_ratio: Any) -> Any:
    """Drift ``((t + t_0)/t_0)^(−ν) = exp(−ν·log_ratio)``, ``log_ratio = ln(1 + t/t_0)``."""
    return exp(-nu * log_ratio)


def read_noise_qs(g: Any, g_max: Any) -> Any:
    """Relative 1/f read-noise amplitude ``Q_s = min(0.0088·(|g|/g_max)^−0.65, 0.2)``.

    (aihwkit writes ``min(0.0088 / max((|g|/g_max)^0.65, 1e-3), 0.2)``: the same, the
    ``1e-3`` floor lies beyond the cap.) Evaluated as ``0.0088·exp(−0.65·ln(g/g_max))``
    with the logarithm floored where the cap sets in.
    """
    log_rel = clip_min(log(clip_min(abs(g) / g_max, TINY_RELATIVE_G)), QS_LOG_FLOOR)
    return QS_COEFF * exp(-QS_EXPONENT * log_rel)


def read_noise(g_drift: Any, qs: Any, amplitude: Any, z: Any) -> Any:
    """Read conductance ``max(g + |g|·Q_s·amplitude·z, 0)`` for a standard normal ``z``;
    ``amplitude = read_noise_scale · read_time_factor(t)``."""
    return clip_min(g_drift + abs(g_drift) * qs * amplitude * z, ZERO)




def readout_level(w: Any, gain: Any, noise_std: Any, z: Any, inv_step: Any) -> Any:
    """One output of the one-hot drift-compensation readout before the ADC, in ADC steps:
    ``(gain·w + noise_std·z) / step`` (see :class:`anatile.inference.physics.OneHotReadout`;
    ``inv_step = 1`` without output quantization)."""
    return (gain * w + noise_std * z) * inv_step


def adc(level: Any, max_level: Any) -> Any:
    """ADC of :func:`anatile.functional.io_model.analog_mvm`: round half to even, clip."""
    return clip(rint(level), -max_level, max_level)


def grid_position(w: Any, inv_abs_max: Any, half_cells: Any) -> Any:
    """Position of ``w`` on the uniform grid of ``2·half_cells + 1`` points over
    ``±max|W|``, in cells from its first point: ``(w/max|W| + 1)·half_cells``.

    This is where a custom-pair converter, whose grid spans the largest weight it is
    given, interpolates its table; with aihwkit's drift convention
    (``rederive_conductances``) the batched WPO loss converts the programmed weights again
    this way, with ``max|W|`` the largest programmed weight.
    """
    return (w * inv_abs_max + 1.0) * half_cells


def drift_log_ratio(t: Any, t_0: Any) -> Any:
    """``ln((t + t_0)/t_0)``, the time argument of :func:`drift_factor`."""
    return log1p(t / t_0)


def read_time_factor(t: Any, t_0: Any, t_read: Any) -> Any:
    """``sqrt(ln((t + t_0 + t_read)/(2·t_read)))``, the time growth of the 1/f read noise
    (0 where the logarithm is negative)."""
    return sqrt(clip_min(log((t + t_0 + t_read) / (2.0 * t_read)), ZERO))


FORMULAS: tuple[Callable[..., Any], ...] = (
    prog_noise_std, programmed, log_relative, nu_mean, nu_std, drift_nu, drift_factor,
    read_noise_qs, read_noise, readout_level, adc, drift_log_ratio, read_time_factor,
    grid_position,
)
"""The elementwise formulas (what :func:`rebind` copies)."""


def rebind(namespace: Mapping[str, Any],
           wrap: Callable[[Callable[..., Any]], Any] | None = None) -> dict[str, Any]:
    """Copies of :data:`FORMULAS` whose global names resolve in ``namespace`` first.

    Args:
        namespace: replacements for the math namespace (``exp``, ``log``, ``log1p``,
            ``sqrt``, ``rint``, ``clip``, ``clip_min``, ``clip_max``) and, optionally, the
            constants (e.g. as float32).
        wrap: applied to every copy (e.g. ``numba.njit``); the copies call each other
            through the shared namespace, so wrapped copies call wrapped copies.

    Returns:
        The shared namespace: every formula by name, plus ``namespace``.
    """
    shared: dict[str, Any] = dict(globals())
    shared.update(namespace)
    for fn in FORMULAS:
        copy = types.FunctionType(fn.__code__, shared, fn.__name__, fn.__defaults__,
                                  fn.__closure__)
        copy.__doc__ = fn.__doc__
        copy.__qualname__ = fn.__qualname__
        shared[fn.__name__] = wrap(copy) if wrap is not None else copy
    return shared
