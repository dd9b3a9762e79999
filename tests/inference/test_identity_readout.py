"""The drift-compensation readout without its GEMM (``identity_readout``) against the MVM.

``identity_readout(W, io, gen)`` must return what ``analog_mvm(eye, W, io, gen)`` returns:
the same noise draws in the same order, the same ADC; only the last bit of ``amplitude·w``
may round differently, which moves an output by one ADC step at an exact tie.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from anatile.config import InferenceRPUConfig, IOParameters
from anatile.config.parameters import BoundManagementType
from anatile.functional.io_model import analog_mvm, quantization_step
from anatile.inference import GlobalDriftCompensation, PerColumnDriftCompensation
from anatile.inference.compensation import identity_readout
from anatile.tiles import InferenceTile

DEFAULT_IO = InferenceRPUConfig().forward


def _pair(io: IOParameters, w: torch.Tensor, seed: int = 3
          ) -> tuple[torch.Tensor, torch.Tensor, bool]:
    g_fast, g_mvm = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    fast = identity_readout(w, io, g_fast)
    mvm = analog_mvm(torch.eye(w.shape[1]), w, io, g_mvm)
    same_state = torch.equal(g_fast.get_state(), g_mvm.get_state())
    return fast, mvm, same_state


def _weights(out_size: int = 96, in_size: int = 160, scale: float = 0.4) -> torch.Tensor:
    return torch.randn(out_size, in_size, generator=torch.Generator().manual_seed(7)) * scale


@pytest.mark.parametrize("io", [
    DEFAULT_IO,
    dataclasses.replace(DEFAULT_IO, out_noise=0.0),
    dataclasses.replace(DEFAULT_IO, bound_management=BoundManagementType.NONE),
    dataclasses.replace(DEFAULT_IO, inp_res=1 / 64, out_res=1 / 256, out_noise=0.2),
], ids=["default", "no-out-noise", "no-bm", "coarse"])
def test_equals_the_mvm_but_for_last_bit_ties(io: IOParameters) -> None:
    w = _weights()
    fast, mvm, same_state = _pair(io, w)
    assert fast.shape == mvm.shape == (w.shape[1], w.shape[0])
    assert same_state  # the same draws, in the same order
    step = quantization_step(io.out_res, io.out_bound)
    diff = (fast - mvm).abs()
    # a tie flips at a rate of order 1e-7 per output: 2 of these 15 360 outputs is already
    # 1e3 times that; a wrong gain, noise or rounding changes most outputs
    assert int((diff > 0).sum()) <= 2
    assert float(diff.max()) <= step * 1.0001


def test_equals_the_mvm_without_output_quantization() -> None:
    io = dataclasses.replace(DEFAULT_IO, out_res=-1.0)
    fast, mvm, same_state = _pair(io, _weights())
    assert same_state
    torch.testing.assert_close(fast, mvm, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("io", [
    IOParameters(is_perfect=True),
    dataclasses.replace(DEFAULT_IO, inp_noise=0.01),
    dataclasses.replace(DEFAULT_IO, out_sto_round=True),
    # outputs beyond the ADC bound: iterative bound management redoes rows, so the readout
    # rewinds the generator and runs the MVM itself
    dataclasses.replace(DEFAULT_IO, out_bound=0.3),
], ids=["perfect", "inp-noise", "sto-round", "bound-management"])
def test_falls_back_to_the_mvm_exactly(io: IOParameters) -> None:
    fast, mvm, same_state = _pair(io, _weights(scale=1.0))
    assert same_state
    assert torch.equal(fast, mvm)


def test_weight_noise_is_folded_into_the_output_noise_in_distribution() -> None:
    # one normal of std hypot(out_noise, w_noise·amplitude) instead of two: compare the
    # spread of outputs around the noise-free readout over 160×96 outputs × 20 draws
    io = dataclasses.replace(DEFAULT_IO, w_noise=0.05, out_res=-1.0)
    w = _weights(scale=0.1)
    exact = w.T
    fast = torch.stack([identity_readout(w, io, torch.Generator().manual_seed(s)) - exact
                        for s in range(20)])
    mvm = torch.stack([analog_mvm(torch.eye(w.shape[1]), w, io,
                                  torch.Generator().manual_seed(s)) - exact
                       for s in range(20)])
    n = fast.numel()
    # std of a sample std is std/sqrt(2n): 5 of those
    tol = 5 * float(mvm.std()) / (2 * n) ** 0.5
    assert abs(float(fast.std()) - float(mvm.std())) < tol
    assert abs(float(fast.mean())) < 5 * float(mvm.std()) / n ** 0.5


def test_a_custom_readout_input_still_goes_through_the_mvm() -> None:
    class HalfReadout(GlobalDriftCompensation):
        def get_readout_tensor(self, in_size: int, dtype: torch.dtype | None = None,
                               device: torch.device | str | None = None) -> torch.Tensor:
            return 0.5 * torch.eye(in_size, dtype=dtype, device=device)

    w = _weights()
    out = HalfReadout().read_array(w, DEFAULT_IO, torch.Generator().manual_seed(1))
    ref = analog_mvm(0.5 * torch.eye(w.shape[1]), w, DEFAULT_IO,
                     torch.Generator().manual_seed(1))
    assert torch.equal(out, ref)


@pytest.mark.parametrize("comp", [GlobalDriftCompensation(), PerColumnDriftCompensation()])
def test_tile_alpha_matches_the_mvm_readout(comp: object) -> None:
    # the tile's alpha from the elementwise readout equals the one from the MVM readout
    cfg = InferenceRPUConfig(drift_compensation=comp)
    tile = InferenceTile(48, 64, rpu_config=cfg, seed=4)
    tile.set_weights(_weights(48, 64))
    tile.program_weights()
    tile.drift_weights(86400.0)
    gen = torch.Generator().manual_seed(9)
    fast = tile.compensation_alpha(tile.analog_core.weight, generator=gen)
    gen = torch.Generator().manual_seed(9)
    readout = analog_mvm(torch.eye(64), tile.analog_core.weight, cfg.forward, gen)
    assert isinstance(comp, (GlobalDriftCompensation, PerColumnDriftCompensation))
    slow = comp.apply(readout, tile.drift_baseline).expand_as(tile.alpha)
    torch.testing.assert_close(fast, slow, rtol=2e-4, atol=0.0)
