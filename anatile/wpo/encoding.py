"""The WPO search space: unit hypercube ↔ ``(f_lst, g_lst)`` of a custom-pair converter.

Layout of one hypercube point ``x`` (every coordinate in ``[0, 1]``), in this order:

1. one coordinate per free (``None``) entry of ``f_lst``: ``f = f_min + x·(f_max − f_min)``;
2. ``x_kw`` (absent when ``use_max_kw``): the largest weight in µS,
   ``w_us_max = lo + x_kw·(hi − lo)`` with ``hi = Σ f·(g_max − g_min)`` and ``lo = 0.05·hi``;
   ``k_w = w_us_max / max|W|`` converts unitless weights to µS;
3. ``2·P − 1`` blocks of ``n_x`` values (``P`` pairs; ``n_x`` = number of programmed grid
   weights: all ``2·nbins − 1`` or, symmetric, the ``nbins`` non-positive ones), ordered
   ``x_g(pair 0), x_Δg(pair 0), x_g(pair 1), x_Δg(pair 1), …, x_g(pair P−1)``.

Decoding one grid weight ``w_us`` walks the pairs in order. Pair ``j`` takes the share
``f_j·Δg_j = lo_j + x_Δg·(hi_j − lo_j)`` where ``[lo_j, hi_j]`` is what it can hold
(``±f_j·(g_max − g_min)``) intersected with what keeps the rest reachable by the remaining
pairs (``w_rest ± span_of_remaining_pairs``); the last pair takes the remainder
(``x_Δg = 1``). ``x_g`` then places ``g+`` on the equal-Δg line
``g+ − g− = Δg`` inside ``[g_min + max(Δg, 0) − g_err, g_max + min(Δg, 0) + g_err]``;
both devices are clipped into ``[g_min, g_max]``. A symmetric strategy mirrors the
non-positive half onto the positive weights by swapping ``g+`` and ``g−``.

All functions accept the search-space description either as a :class:`SearchSpace` or as
a mapping with the same keys (the seed API passes a dict named ``d``).

Why this module is over 400 lines and not split: it is one concept, the layout above, read
by the decoders and written by :func:`encode`, their inverse; the rest is the examples of
its public functions (each runs as a doctest).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "SearchSpace",
    "decode_batch",
    "denormalize",
    "encode",
    "generate_bounds",
    "n_dimensions",
    "partition_parameters",
    "reformat_x_g",
    "span_of_remaining_pairs",
]

_K_W_LOWER_FRACTION = 0.05  # k_w spans 5 % .. 100 % of the largest reachable µS weight


@dataclass(frozen=True)
class SearchSpace:
    """Everything needed to decode a hypercube point; picklable, immutable.

    Attributes:
        f_lst: significance factors, ``None`` where the optimizer chooses the factor.
        f_min: smallest free f factor.
        f_max: largest free f factor.
        g_min: minimal conductance (µS).
        g_max: maximal conductance (µS).
        g_err: allowed over/under-programming of ``g+`` beyond the equal-Δg segment (µS).
        use_max_kw: always use the full µS range (no ``x_kw`` coordinate).
        symmetric: mirror the negative-weight strategy onto the positive weights.
        max_abs_weight_unitless: ``max|W|`` of the test weights.
        weights_discretized_unitless: the ``2·nbins − 1`` grid weights, evenly spaced over
            ``[−max|W|, max|W|]``.

    Example:
        >>> space = SearchSpace((None, 1.0), f_min=0.1, f_max=5.0, g_min=0.0, g_max=25.0,
        ...     g_err=0.0, use_max_kw=False, symmetric=True, max_abs_weight_unitless=1.0,
        ...     weights_discretized_unitless=(-1.0, -0.5, 0.0, 0.5, 1.0))
        >>> space.n_pairs, space.n_free_f, space.n_grid, space.n_programmed
        (2, 1, 5, 3)
    """

    f_lst: tuple[float | None, ...]
    f_min: float
    f_max: float
    g_min: float
    g_max: float
    g_err: float
    use_max_kw: bool
    symmetric: bool
    max_abs_weight_unitless: float
    weights_discretized_unitless: tuple[float, ...]

    @classmethod
    def from_mapping(cls, d: SearchSpace | Mapping[str, Any]) -> SearchSpace:
        """Build from a :class:`SearchSpace` (returned as is) or a mapping with its keys.

        Raises:
            KeyError: if the mapping lacks a key.
        """
        if isinstance(d, SearchSpace):
            return d
        values = {f.name: d[f.name] for f in fields(cls)}
        values["f_lst"] = tuple(None if f is None else float(f) for f in values["f_lst"])
        w = values["weights_discretized_unitless"]
        w = w.tolist() if isinstance(w, (Tensor, np.ndarray)) else list(w)
        values["weights_discretized_unitless"] = tuple(float(v) for v in w)
        values["max_abs_weight_unitless"] = float(values["max_abs_weight_unitless"])
        return cls(**values)

    @property
    def n_pairs(self) -> int:
        """Number of conductance pairs ``P``."""
        return len(self.f_lst)

    @property
    def n_free_f(self) -> int:
        """Number of free f factors."""
        return sum(f is None for f in self.f_lst)

    @property
    def n_grid(self) -> int:
        """Number of grid weights of the decoded ``g_lst`` lists."""
        return len(self.weights_discretized_unitless)

    @property
    def n_programmed(self) -> int:
        """Grid weights that carry their own coordinates (the others are mirrored)."""
        return math.ceil(self.n_grid / 2) if self.symmetric else self.n_grid


def _space(d: SearchSpace | Mapping[str, Any]) -> SearchSpace:
    return SearchSpace.from_mapping(d)


def n_dimensions(d: SearchSpace | Mapping[str, Any]) -> int:
    """Number of hypercube coordinates of the search space ``d``."""
    s = _space(d)
    return s.n_free_f + (0 if s.use_max_kw else 1) + s.n_programmed * (2 * s.n_pairs - 1)


def generate_bounds(d: SearchSpace | Mapping[str, Any]) -> tuple[tuple[float, float], ...]:
    """Bounds of the search space: ``(0.0, 1.0)`` for each of :func:`n_dimensions`."""
    return ((0.0, 1.0),) * n_dimensions(d)


def span_of_remaining_pairs(span_of_each_pair: Sequence[float], ind: int) -> float:
    """Largest |µS| weight that the pairs from index ``ind`` on can still represent.

    Args:
        span_of_each_pair: ``f_j·(g_max − g_min)`` of each pair, in programming order.
        ind: index of the first remaining pair.

    Returns:
        ``Σ_{j ≥ ind} span_j`` (0 when no pair remains).

    Example:
        >>> span_of_remaining_pairs([75.0, 25.0, 5.0], 1)
        30.0
        >>> span_of_remaining_pairs([75.0, 25.0, 5.0], 3)
        0.0
    """
    if ind >= len(span_of_each_pair):
        return 0.0
    return float(sum(span_of_each_pair[ind:]))


def partition_parameters(
    x: Sequence[float] | np.ndarray | Tensor, d: SearchSpace | Mapping[str, Any]
) -> tuple[list[float], float, list[float]]:
    """Split a hypercube point into f factors, the µS-per-unit factor ``k_w`` and ``x_g``.

    Args:
        x: one hypercube point, shape ``(D,)``.
        d: the search space.

    Returns:
        ``(f_lst, k_w, x_g)``: the complete f factors (free ones decoded), ``k_w`` in µS per
        unit weight, and the remaining coordinates (the conductance part).

    Raises:
        ValueError: if ``x`` has the wrong length.

    Example:
        >>> space = SearchSpace((None, 1.0), f_min=0.1, f_max=5.0, g_min=0.0, g_max=25.0,
        ...     g_err=0.0, use_max_kw=False, symmetric=True, max_abs_weight_unitless=1.0,
        ...     weights_discretized_unitless=(-1.0, -0.5, 0.0, 0.5, 1.0))
        >>> f_lst, k_w, x_g = partition_parameters([1.0] * 11, space)
        >>> f_lst, k_w, len(x_g)  # x_kw = 1: the largest weight uses Σ f·(g_max − g_min) µS
        ([5.0, 1.0], 150.0, 9)
    """
    s = _space(d)
    xs = _as_list(x)
    if len(xs) != n_dimensions(s):
        raise ValueError(f"x: expected {n_dimensions(s)} coordinates, got {len(xs)}")
    f_lst: list[float] = []
    pos = 0
    for f in s.f_lst:
        if f is None:
            f_lst.append(s.f_min + xs[pos] * (s.f_max - s.f_min))
            pos += 1
        else:
            f_lst.append(float(f))
    if s.use_max_kw:
        x_kw = 1.0
    else:
        x_kw = xs[pos]
        pos += 1
    hi = sum(f * (s.g_max - s.g_min) for f in f_lst)
    lo = _K_W_LOWER_FRACTION * hi
    w_us_max = lo + x_kw * (hi - lo)
    k_w = w_us_max / max(s.max_abs_weight_unitless, 1e-30)
    return f_lst, k_w, xs[pos:]


def reformat_x_g(
    x_g: Sequence[float] | np.ndarray | Tensor, len_f_lst: int, symmetric: bool
) -> tuple[list[list[float]], int]:
    """Cut ``x_g`` into the ``2·P − 1`` per-pair blocks (``x_g``/``x_Δg`` interleaved).

    Args:
        x_g: conductance coordinates (the tail returned by :func:`partition_parameters`).
        len_f_lst: number of pairs ``P``.
        symmetric: whether only the non-positive half of the grid is encoded.

    Returns:
        ``(x_g_lst, g_len)``: the blocks, and the number of grid weights of the decoded
        ``g_lst`` lists (``2·n − 1`` when symmetric, ``n`` otherwise).

    Raises:
        ValueError: if ``len(x_g)`` is not a multiple of ``2·P − 1``.

    Example:
        >>> x_g = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
        >>> blocks, g_len = reformat_x_g(x_g, len_f_lst=1, symmetric=True)
        >>> blocks, g_len  # one pair: one block of 6 programmed grid weights, mirrored to 11
        ([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], 11)
    """
    xs = _as_list(x_g)
    n_blocks = 2 * len_f_lst - 1
    if n_blocks <= 0 or len(xs) % n_blocks != 0:
        raise ValueError(
            f"x_g: length {len(xs)} is not a multiple of 2·len(f_lst) − 1 = {n_blocks}"
        )
    n = len(xs) // n_blocks
    blocks = [xs[i * n : (i + 1) * n] for i in range(n_blocks)]
    return blocks, (2 * n - 1 if symmetric else n)


def denormalize(
    x: Sequence[float] | np.ndarray | Tensor, d: SearchSpace | Mapping[str, Any]
) -> tuple[list[float], list[list[float]]]:
    """Decode one hypercube point into ``f_lst`` and ``g_lst`` of a custom-pair converter.

    One point through :func:`decode_batch` (the one implementation of the decoding).

    Args:
        x: one hypercube point, shape ``(D,)``.
        d: the search space.

    Returns:
        ``(f_lst, g_lst)``: ``P`` factors and ``2·P`` lists (``g+``, ``g−`` of each pair)
        of the conductances (µS) at each grid weight.

    Raises:
        ValueError: if ``x`` has the wrong length.

    Example:
        >>> space = SearchSpace((None, 1.0), f_min=0.1, f_max=5.0, g_min=0.0, g_max=25.0,
        ...     g_err=0.0, use_max_kw=False, symmetric=True, max_abs_weight_unitless=1.0,
        ...     weights_discretized_unitless=(-1.0, -0.5, 0.0, 0.5, 1.0))
        >>> f_lst, g_lst = denormalize([0.5] * 11, space)  # 1 free f + x_kw + 3·3
        >>> [round(f, 2) for f in f_lst], len(g_lst), len(g_lst[0])
        ([2.55, 1.0], 4, 5)
    """
    s = _space(d)
    xs = _as_list(x)
    if len(xs) != n_dimensions(s):
        raise ValueError(f"x: expected {n_dimensions(s)} coordinates, got {len(xs)}")
    f, g_table = decode_batch(np.asarray(xs, dtype=np.float64)[None, :], s)
    return f[0].tolist(), g_table[0].tolist()


def decode_batch(
    x: Tensor | np.ndarray, d: SearchSpace | Mapping[str, Any]
) -> tuple[Tensor, Tensor]:
    """Decode a whole population (the decoding described in the module docstring).

    Args:
        x: hypercube points, shape ``(S, D)``.
        d: the search space.

    Returns:
        ``(f, g_table)`` as float64 tensors on the device of ``x`` (CPU for numpy input):
        ``f`` shaped ``(S, P)`` and ``g_table`` shaped ``(S, 2·P, g_len)``.

    Raises:
        ValueError: if ``x`` is not ``(S, D)`` with the right ``D``.

    Example:
        >>> space = SearchSpace((None, 1.0), f_min=0.1, f_max=5.0, g_min=0.0, g_max=25.0,
        ...     g_err=0.0, use_max_kw=False, symmetric=True, max_abs_weight_unitless=1.0,
        ...     weights_discretized_unitless=(-1.0, -0.5, 0.0, 0.5, 1.0))
        >>> x = torch.rand(4, 11, dtype=torch.float64)  # 11 = 1 free f + x_kw + 3·3
        >>> f, g_table = decode_batch(x, space)
        >>> f.shape, g_table.shape  # (S, P), (S, 2·P, grid weights)
        (torch.Size([4, 2]), torch.Size([4, 4, 5]))
    """
    s = _space(d)
    xt = torch.as_tensor(x, dtype=torch.float64)
    if xt.dim() != 2 or xt.shape[1] != n_dimensions(s):
        raise ValueError(f"x: expected shape (S, {n_dimensions(s)}), got {tuple(xt.shape)}")
    n_cand = xt.shape[0]
    pos = 0
    f_cols = []
    for f in s.f_lst:
        if f is None:
            f_cols.append(s.f_min + xt[:, pos] * (s.f_max - s.f_min))
            pos += 1
        else:
            f_cols.append(torch.full((n_cand,), float(f), dtype=xt.dtype, device=xt.device))
    f_t = torch.stack(f_cols, dim=1)
    if s.use_max_kw:
        x_kw = torch.ones(n_cand, dtype=xt.dtype, device=xt.device)
    else:
        x_kw = xt[:, pos]
        pos += 1
    spans = f_t * (s.g_max - s.g_min)  # (S, P)
    hi_us = spans.sum(dim=1)
    w_us_max = _K_W_LOWER_FRACTION * hi_us + x_kw * (1.0 - _K_W_LOWER_FRACTION) * hi_us
    k_w = w_us_max / max(s.max_abs_weight_unitless, 1e-30)
    n_p = s.n_programmed
    n_pairs = s.n_pairs
    blocks = xt[:, pos:].reshape(n_cand, 2 * n_pairs - 1, n_p)
    grid = torch.tensor(s.weights_discretized_unitless[:n_p], dtype=xt.dtype, device=xt.device)
    rest = k_w[:, None] * grid[None, :]  # (S, n_p) µS still to represent
    # reach[:, j] = span of the pairs after j
    reach = spans.flip(1).cumsum(1).flip(1) - spans
    g_len = 2 * n_p - 1 if s.symmetric else n_p
    g_table = torch.empty(n_cand, 2 * n_pairs, g_len, dtype=xt.dtype, device=xt.device)
    for j in range(n_pairs):
        span_j = spans[:, j : j + 1]
        reach_j = reach[:, j : j + 1]
        lo = torch.maximum(rest - reach_j, -span_j)
        hi = torch.minimum(rest + reach_j, span_j)
        x_dg = blocks[:, 2 * j + 1] if j < n_pairs - 1 else torch.ones_like(rest)
        share = lo + x_dg * (hi - lo)
        rest = rest - share
        dg = share / f_t[:, j : j + 1]
        gp_lo = s.g_min + dg.clamp(min=0.0) - s.g_err
        gp_hi = s.g_max + dg.clamp(max=0.0) + s.g_err
        g_p = (gp_lo + blocks[:, 2 * j] * (gp_hi - gp_lo)).clamp(s.g_min, s.g_max)
        g_m = (g_p - dg).clamp(s.g_min, s.g_max)
        g_table[:, 2 * j, :n_p] = g_p
        g_table[:, 2 * j + 1, :n_p] = g_m
        if s.symmetric:
            # mirrored half: grid index g_len-1-i gets the swapped pair of index i
            g_table[:, 2 * j, n_p - 1 :] = g_m.flip(1)
            g_table[:, 2 * j + 1, n_p - 1 :] = g_p.flip(1)
    return f_t, g_table


def encode(
    f_lst: Sequence[float],
    g_lst: Sequence[Sequence[float]],
    d: SearchSpace | Mapping[str, Any],
) -> np.ndarray:
    """Inverse of :func:`denormalize` for strategies that lie inside the search space.

    Useful to seed the population with a known strategy. Coordinates are clipped to
    ``[0, 1]``; a strategy outside the space (fixed f factors that differ, a grid that is
    not proportional, devices outside their segment) maps to the nearest point, and the
    decoded result then differs from the input.

    Args:
        f_lst: one f factor per pair.
        g_lst: ``2·P`` lists of conductances at the ``2·nbins − 1`` grid weights.
        d: the search space.

    Returns:
        A hypercube point of shape ``(D,)``.

    Raises:
        ValueError: if the list lengths do not match the search space.

    Example:
        >>> space = SearchSpace((None, 1.0), f_min=0.1, f_max=5.0, g_min=0.0, g_max=25.0,
        ...     g_err=0.0, use_max_kw=False, symmetric=True, max_abs_weight_unitless=1.0,
        ...     weights_discretized_unitless=(-1.0, -0.5, 0.0, 0.5, 1.0))
        >>> x = [0.3] * 11  # 1 free f + x_kw + 3 blocks of 3 grid weights
        >>> f_lst, g_lst = denormalize(x, space)
        >>> bool(abs(encode(f_lst, g_lst, space) - x).max() < 1e-9)  # inverse of denormalize
        True
    """
    s = _space(d)
    if len(f_lst) != s.n_pairs or len(g_lst) != 2 * s.n_pairs:
        raise ValueError(
            f"f_lst/g_lst: expected {s.n_pairs} factors and {2 * s.n_pairs} lists, "
            f"got {len(f_lst)} and {len(g_lst)}"
        )
    if any(len(g) != s.n_grid for g in g_lst):
        raise ValueError(f"g_lst: expected lists of {s.n_grid} conductances")
    x: list[float] = []
    for f_fixed, f in zip(s.f_lst, f_lst, strict=True):
        if f_fixed is None:
            x.append((float(f) - s.f_min) / (s.f_max - s.f_min))
    f_full = [float(f) if f0 is None else float(f0) for f0, f in zip(s.f_lst, f_lst, strict=True)]
    spans = [f * (s.g_max - s.g_min) for f in f_full]
    hi_us = sum(spans)
    w_us = [
        sum(f_full[j] * (g_lst[2 * j][i] - g_lst[2 * j + 1][i]) for j in range(s.n_pairs))
        for i in range(s.n_grid)
    ]
    w_us_max = max(abs(v) for v in w_us)
    if not s.use_max_kw:
        lo_us = _K_W_LOWER_FRACTION * hi_us
        x.append((w_us_max - lo_us) / (hi_us - lo_us))
        k_w = max(w_us_max, lo_us) / max(s.max_abs_weight_unitless, 1e-30)
    else:
        k_w = hi_us / max(s.max_abs_weight_unitless, 1e-30)
    blocks = [[0.0] * s.n_programmed for _ in range(2 * s.n_pairs - 1)]
    for i in range(s.n_programmed):
        rest = k_w * s.weights_discretized_unitless[i]
        for j in range(s.n_pairs):
            g_p, g_m = g_lst[2 * j][i], g_lst[2 * j + 1][i]
            if s.symmetric and i == s.n_programmed - 1:
                g_p, g_m = g_m, g_p  # the centre holds the mirrored (swapped) pair
            share = f_full[j] * (g_p - g_m)
            reach = span_of_remaining_pairs(spans, j + 1)
            lo = max(rest - reach, -spans[j])
            hi = min(rest + reach, spans[j])
            if j < s.n_pairs - 1:
                blocks[2 * j + 1][i] = (share - lo) / (hi - lo) if hi > lo else 0.0
                share = min(max(share, lo), hi)
            rest -= share
            dg = share / f_full[j]
            gp_lo = s.g_min + max(dg, 0.0) - s.g_err
            gp_hi = s.g_max + min(dg, 0.0) + s.g_err
            blocks[2 * j][i] = (g_p - gp_lo) / (gp_hi - gp_lo) if gp_hi > gp_lo else 0.0
    for block in blocks:
        x.extend(block)
    return np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)


def _as_list(x: Sequence[float] | np.ndarray | Tensor) -> list[float]:
    if isinstance(x, Tensor):
        return [float(v) for v in x.detach().cpu().reshape(-1).tolist()]
    if isinstance(x, np.ndarray):
        return [float(v) for v in x.reshape(-1).tolist()]
    return [float(v) for v in x]
