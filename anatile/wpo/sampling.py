"""Test weights for the WPO: a fixed-size sample that follows the user's distribution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Size, Tensor

__all__ = ["downsample_weight_distribution", "shuffle_weights"]


def downsample_weight_distribution(
    weights: Tensor, shape: Size | tuple[int, ...], generator: torch.Generator | None = None
) -> Tensor:
    """Resample a weight distribution to ``shape`` by interpolating its sorted values.

    The sorted, flattened weights are linearly interpolated to ``shape.numel()`` points
    (end points kept, so ``min`` and ``max`` survive), which reproduces the empirical
    distribution better than random picking; the result is then shuffled. Works for up-
    and down-sampling.

    Args:
        weights: weights of any shape (unitless).
        shape: shape of the returned tensor.
        generator: random source of the shuffle (torch's default generator when None).

    Returns:
        A detached float tensor of ``shape`` on the device of ``weights``.

    Raises:
        ValueError: if ``weights`` is empty or not finite, or ``shape`` is empty.

    Example:
        >>> w = torch.linspace(-1.0, 1.0, 1001)
        >>> small = downsample_weight_distribution(w, (4, 5), torch.Generator().manual_seed(0))
        >>> small.shape, float(small.min()), float(small.max())  # the extremes are kept
        (torch.Size([4, 5]), -1.0, 1.0)
    """
    shape = Size(shape)
    if weights.numel() == 0:
        raise ValueError("weights: expected at least one value")
    if shape.numel() == 0:
        raise ValueError(f"shape: expected a non-empty shape, got {tuple(shape)}")
    w = weights.detach().flatten()
    if not w.is_floating_point():
        w = w.to(torch.get_default_dtype())
    if not bool(torch.isfinite(w).all()):
        raise ValueError("weights: expected finite values (found NaN or inf)")
    ordered = torch.sort(w)[0]
    if ordered.numel() == 1:
        resampled = ordered.expand(shape.numel()).clone()
    else:
        resampled = F.interpolate(
            ordered[None, None, :], size=shape.numel(), mode="linear", align_corners=True
        )[0, 0]
    return shuffle_weights(resampled.reshape(shape), generator=generator)


def shuffle_weights(weights: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Randomly permute all entries of ``weights`` (not only its rows).

    Args:
        weights: tensor of any shape.
        generator: random source (a CPU generator; torch's default when None).

    Returns:
        A detached tensor of the same shape, dtype and device with the entries permuted.

    Example:
        >>> w = torch.arange(6.0).reshape(2, 3)
        >>> s = shuffle_weights(w, torch.Generator().manual_seed(0))
        >>> s.shape, torch.equal(s.flatten().sort().values, w.flatten())  # a permutation
        (torch.Size([2, 3]), True)
    """
    flat = weights.detach().flatten()
    perm = torch.randperm(flat.numel(), generator=generator).to(flat.device)
    return flat[perm].reshape(weights.shape).clone()
