"""Converter outputs equal aihwkit 1.2.0's (recorded in ``fixtures/converters.json``)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from parity_fixtures import load_fixture

from anatile.inference import (
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    SingleDeviceConductanceConverter,
    SinglePairConductanceConverter,
)

DATA = load_fixture("converters")


def _converters() -> dict[str, Any]:
    table = DATA["custom_pair"]
    return {
        "SinglePair": SinglePairConductanceConverter(),
        "SinglePair_g_min_2": SinglePairConductanceConverter(g_max=20.0, g_min=2.0),
        "DualPair_1_1": DualPairConductanceConverter(f_lst=[1.0, 1.0]),
        "DualPair_1_3": DualPairConductanceConverter(f_lst=[1.0, 3.0]),
        "NPair_1_2_3": NPairConductanceConverter(f_lst=[1.0, 2.0, 3.0]),
        "CustomPair_1_3": CustomPairConductanceConverter(table["f_lst"], table["g_lst"]),
        "SingleDevice": SingleDeviceConductanceConverter(),
    }


@pytest.mark.parametrize("name", sorted(_converters()))
def test_conductances_and_back_conversion_equal_aihwkit(name: str) -> None:
    conv = _converters()[name]
    rec = DATA[name]
    w = torch.tensor(DATA["weights"])
    out, params = conv.convert_to_conductances(w)
    # the same container (a list, or one tensor for SingleDevice)
    assert type(out).__name__ == rec["conductances_type"]
    gs, _ = conv.device_conductances(w)
    assert len(gs) == len(rec["conductances"])
    for g, g_rec in zip(gs, rec["conductances"], strict=True):
        # float32 on both sides; CustomPair interpolates in another order (2e-6 µS)
        torch.testing.assert_close(g, torch.tensor(g_rec), rtol=0.0, atol=1e-5)
    back = conv.convert_back_to_weights(out, params)
    torch.testing.assert_close(back, torch.tensor(rec["weights_back"]), rtol=0.0, atol=1e-7)


def test_non_invertible_table_raises_the_same_exception() -> None:
    zero_table = [[0.0] * 5 for _ in range(4)]
    assert DATA["zero_table_exception"] == "ArithmeticError"
    with pytest.raises(ArithmeticError):
        CustomPairConductanceConverter([1.0, 1.0], zero_table)
