"""Inputs are checked once, at the public entry point; the internal path computes the same.

``program``/``read`` of a noise model and ``program_weights``/``drift_weights`` of a tile
check what the user passed and then run the unchecked physics (no NaN/inf pass over
conductances anatile computed itself). A converter or noise model that overrides only the
public methods (aihwkit style) still has its override used on that path.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

import anatile.checks
import anatile.tiles.analog_core
from anatile.inference import (
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    PCMLikeNoiseModel,
    SingleDeviceConductanceConverter,
    SinglePairConductanceConverter,
)
from anatile.tiles import InferenceTile


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


CONVERTERS = [
    SinglePairConductanceConverter(),
    SinglePairConductanceConverter(g_min=2.0),
    DualPairConductanceConverter([1.0, 3.0], g_min=1.0),
    NPairConductanceConverter([0.5, 1.0, 2.0]),
    CustomPairConductanceConverter([1.0], [[0, 0, 0, 12.5, 25], [25, 12.5, 0, 0, 0]]),
    SingleDeviceConductanceConverter(),
]


def _npair_reference(conv: NPairConductanceConverter, w: Tensor) -> list[Tensor]:
    # the mapping as written before the no-op steps were skipped
    g_span = conv.g_max - conv.g_min
    scale = sum(conv.f_lst) * g_span / max(float(w.abs().max()), 1e-7)
    w_us = w * scale
    pos, neg = w_us.clamp(min=0.0), (-w_us).clamp(min=0.0)
    out, lower = [], 0.0
    for f in conv.f_lst:
        for part in (pos, neg):
            out.append(((part - lower) / f).clamp(0.0, g_span) + conv.g_min)
        lower += f * g_span
    return out


@pytest.mark.parametrize("conv", CONVERTERS[:4], ids=repr)
def test_pair_mapping_is_bit_identical_to_the_plain_formula(conv: Any) -> None:
    w = torch.randn(40, 30, generator=gen(1))
    gs, params = conv.convert_to_conductances(w)
    for g, ref in zip(gs, _npair_reference(conv, w), strict=True):
        assert torch.equal(g, ref)
    back = conv.convert_back_to_weights(gs, params)
    w_us = torch.zeros_like(gs[0])
    for k, f in enumerate(conv.f_lst):
        w_us = w_us + f * (gs[2 * k] - gs[2 * k + 1])
    assert torch.equal(back, w_us / float(params["scale_ratio"]))


@pytest.mark.parametrize("conv", CONVERTERS, ids=repr)
def test_program_and_read_equal_the_public_methods(conv: Any) -> None:
    model = PCMLikeNoiseModel(g_converter=conv)
    w = torch.randn(12, 20, generator=gen(2))
    state = model.program(w, gen(3))
    drifted = model.read(state, 3600.0, gen(4))
    g = gen(3)
    targets, params = conv.device_conductances(w)
    g_target = torch.stack(targets)
    g_prog = model.apply_programming_noise_to_conductance(g_target, g)
    nu = model.generate_drift_coefficients(g_target, g)
    assert torch.equal(state.g_prog, g_prog) and torch.equal(state.nu, nu)
    assert torch.equal(state.weights, conv.convert_back_to_weights(list(g_prog), params))
    g_drift = model.apply_drift_noise_to_conductance(g_prog, nu, 3600.0, gen(4))
    assert torch.equal(drifted.g_drift, g_drift)
    assert torch.equal(drifted.weights, conv.convert_back_to_weights(list(g_drift), params))


def test_overrides_of_public_methods_are_used_by_program_and_read() -> None:
    calls: list[str] = []

    class Doubling(SinglePairConductanceConverter):  # aihwkit style: public methods only
        def convert_to_conductances(self, weights: Tensor) -> tuple[list[Tensor], dict]:
            calls.append("to")
            gs, params = super().convert_to_conductances(weights)
            return [0.5 * g for g in gs], params

        def convert_back_to_weights(self, conductances: list[Tensor], params: dict) -> Tensor:
            calls.append("back")
            return super().convert_back_to_weights([2 * g for g in conductances], params)

    class Noiseless(PCMLikeNoiseModel):
        def apply_programming_noise_to_conductance(
            self, g_target: Tensor, generator: torch.Generator | None = None
        ) -> Tensor:
            calls.append("prog")
            return g_target.clone()

    model = Noiseless(g_converter=Doubling(), drift_scale=0.0, read_noise_scale=0.0)
    w = torch.randn(5, 6, generator=gen(5))
    state = model.program(w, gen(6))
    assert calls == ["to", "prog", "back"]
    assert float(state.g_target.max()) == pytest.approx(12.5)  # halved by the override
    torch.testing.assert_close(state.weights, w)  # noiseless, and doubled back
    torch.testing.assert_close(model.read(state, 100.0, gen(7)).weights, w)
    assert calls[-1] == "back"


def test_program_and_drift_check_the_array_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = anatile.checks.all_finite

    def counting(value: Tensor) -> bool:
        seen.append(value.numel())
        return real(value)

    monkeypatch.setattr(anatile.checks, "all_finite", counting)
    monkeypatch.setattr(anatile.tiles.analog_core, "all_finite", counting)
    tile = InferenceTile(32, 48, seed=0)
    tile.set_weights(torch.randn(32, 48, generator=gen(8)))
    seen.clear()
    tile.program_weights()
    assert seen == [32 * 48]  # the target weights, once
    seen.clear()
    tile.drift_weights(86400.0)
    tile.drift_weights(10.0)
    assert seen == []


def test_bad_weights_still_raise_at_program() -> None:
    model = PCMLikeNoiseModel()
    with pytest.raises(ValueError, match="^weights: "):
        model.program(torch.tensor([0.1, float("nan")]))
    with pytest.raises(ValueError, match="^weights: "):
        model.apply_noise(torch.tensor([float("inf"), 0.2]), 10.0)
