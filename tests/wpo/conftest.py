"""Shared small settings: the WPO tests run on a reduced test layer in eager mode."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from anatile.config import InferenceRPUConfig
from anatile.inference import DualPairConductanceConverter
from anatile.wpo import WeightProgrammingOptimizer

T_STEPS = [1.0, 3600.0, 86400.0, 3.15e7]

SMALL: dict[str, Any] = dict(
    test_in_features=64, test_out_features=10, popsize=4, maxiter=3, baseline_iterations=8,
    polish=False, compile=False, device="cpu",
)


def gaussian_weights(seed: int = 0, n: int = 4000) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.1


@pytest.fixture
def make_wpo():
    def factory(**kwargs: Any) -> WeightProgrammingOptimizer:
        opts = {**SMALL, **kwargs}
        f_lst = opts.pop("f_lst", [None, None])
        rpu_config = opts.pop("rpu_config", None) or InferenceRPUConfig()
        baseline = opts.pop("baseline", None) or DualPairConductanceConverter([1.0, 1.0])
        t_steps = opts.pop("t_steps", T_STEPS)
        weights = opts.pop("weights", None)
        weights = gaussian_weights() if weights is None else weights
        return WeightProgrammingOptimizer(weights, f_lst, rpu_config, t_steps, baseline, **opts)

    return factory
