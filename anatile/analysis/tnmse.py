"""TNMSE of programming strategies over inference time, measured with the WPO's own loss."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
from torch import Tensor

from anatile.config import InferenceRPUConfig
from anatile.inference import BaseConductanceConverter, BaseNoiseModel
from anatile.tiles import InferenceTile
from anatile.wpo.loss import loss_weights

__all__ = ["tnmse_over_time"]


def tnmse_over_time(
    converters: Sequence[BaseConductanceConverter],
    noise_model: BaseNoiseModel,
    weights: Tensor,
    t_steps: Sequence[float],
    seed: int = 0,
) -> np.ndarray:
    """TNMSE of each converter at each inference time, on the same noise draws.

    Each converter gets an :class:`~anatile.tiles.InferenceTile` with a copy of
    ``noise_model`` using that converter (seeded with ``seed``, so every converter sees the
    same draws), and :func:`anatile.wpo.loss.loss_weights` measures the TNMSE one time step
    at a time.

    Args:
        converters: the conductance converters to compare.
        noise_model: the noise model whose converter is replaced by each of ``converters``.
        weights: ``[out_size, in_size]`` weights the TNMSE is measured on.
        t_steps: inference times (s).
        seed: seed of the tiles' noise draws.

    Returns:
        ``[len(converters), len(t_steps)]`` TNMSE values (float64).

    Example:
        >>> from anatile.analysis import tnmse_over_time
        >>> from anatile.inference import (DualPairConductanceConverter, PCMLikeNoiseModel,
        ...                                SinglePairConductanceConverter)
        >>> w = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
        >>> converters = [SinglePairConductanceConverter(), DualPairConductanceConverter([1, 3])]
        >>> table = tnmse_over_time(converters, PCMLikeNoiseModel(), w, [1.0, 86400.0])
        >>> table.shape  # converters x time steps
        (2, 2)
    """
    max_abs = float(weights.abs().max())
    rows = []
    for conv in converters:
        cfg = InferenceRPUConfig()
        cfg.noise_model = copy.deepcopy(noise_model)
        cfg.noise_model.g_converter = conv
        tile = InferenceTile(weights.shape[0], weights.shape[1], rpu_config=cfg, seed=seed)
        tile.eval()
        rows.append([
            loss_weights(tile, [t], weights, max_abs, math.inf, 0.0, get_baseline=True)
            for t in t_steps
        ])
    return np.asarray(rows, dtype=np.float64)
