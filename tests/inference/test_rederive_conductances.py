"""``rederive_conductances``: aihwkit's convention for what drifts (the programmed weights
converted back to conductances), checked directly; the parity with aihwkit's figures is in
tests/parity."""

from __future__ import annotations

import pytest
import torch

from anatile.inference import PCMLikeNoiseModel, SinglePairConductanceConverter
from anatile.inference.noise import ProgrammedState


def _state(rederive: bool) -> tuple[PCMLikeNoiseModel, ProgrammedState]:
    model = PCMLikeNoiseModel(g_converter=SinglePairConductanceConverter(g_max=25.0),
                              rederive_conductances=rederive)
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    return model, model.program(w, torch.Generator().manual_seed(1))


def test_default_keeps_each_devices_own_programmed_conductance() -> None:
    _, state = _state(False)
    # a zero-target device keeps its programming offset: both devices of a pair conduct
    both = (state.g_prog > 0).all(dim=0)
    assert float(both.float().mean()) > 0.3


def test_rederived_conductances_fold_the_offset_into_one_device() -> None:
    model, own = _state(False)
    _, rederived = _state(True)
    # same draws, same programmed weights and drift exponents; only what drifts differs
    assert torch.equal(rederived.weights, own.weights)
    assert torch.equal(rederived.nu, own.nu)
    assert not bool((rederived.g_prog > 0).all(dim=0).any())
    back = model.g_converter.convert_back_to_weights(list(rederived.g_prog.unbind(0)),
                                                     rederived.params)
    torch.testing.assert_close(back, rederived.weights)
    # after a day of drift the two conventions read different weights
    gen_a, gen_b = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    day_own = model.read(own, 86400.0, gen_a).weights
    day_red = model.read(rederived, 86400.0, gen_b).weights
    assert not torch.allclose(day_own, day_red)


def test_the_option_survives_a_round_trip() -> None:
    model = PCMLikeNoiseModel(rederive_conductances=True)
    again = PCMLikeNoiseModel.from_dict(model.to_dict())
    assert again.rederive_conductances is True
    assert PCMLikeNoiseModel.from_dict(PCMLikeNoiseModel().to_dict()).rederive_conductances \
        is False


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_a_non_bool_is_rejected_by_name(bad: object) -> None:
    with pytest.raises(TypeError, match="rederive_conductances"):
        PCMLikeNoiseModel(rederive_conductances=bad)  # type: ignore[arg-type]
