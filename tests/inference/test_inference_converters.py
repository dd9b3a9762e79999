"""Conductance converters: mapping formulas, round trips, bounds and validation (SPEC §4)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from anatile.inference import (
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    SingleDeviceConductanceConverter,
    SinglePairConductanceConverter,
)

LINEAR_TABLE = [[0.0, 0.0, 0.0, 12.5, 25.0], [25.0, 12.5, 0.0, 0.0, 0.0]]


def all_converters() -> list:
    return [
        SinglePairConductanceConverter(),
        SinglePairConductanceConverter(g_max=30.0, g_min=2.0),
        NPairConductanceConverter([1.0, 2.0, 4.0]),
        DualPairConductanceConverter([1.0, 3.0], g_max=20.0, g_min=1.0),
        CustomPairConductanceConverter([1.0], LINEAR_TABLE),
        CustomPairConductanceConverter(
            [1.0, 3.0],
            [
                [0, 0, 0, 5, 10],
                [10, 5, 0, 0, 0],
                [25, 12.5, 0, 0, 0],
                [0, 0, 0, 0, 0],
            ],
            invertibility_test=False,
        ),
        SingleDeviceConductanceConverter(),
    ]


shapes = st.lists(st.integers(1, 6), min_size=1, max_size=3)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3))
@pytest.mark.parametrize("conv", all_converters(), ids=lambda c: type(c).__name__)
def test_round_trip_and_bounds(conv, shape: list[int], seed: int, scale: float) -> None:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    w = w * scale
    gs, params = conv.device_conductances(w)
    assert len(gs) == conv.n_devices
    for g in gs:
        assert g.shape == w.shape and g.dtype == w.dtype
        assert float(g.min()) >= conv.g_min - 1e-9
        assert float(g.max()) <= conv.g_max + 1e-9
    back = conv.convert_back_to_weights(gs, params)
    if isinstance(conv, CustomPairConductanceConverter) and not conv.invertibility_test:
        return  # deliberately non-invertible table: only bounds apply
    torch.testing.assert_close(back, w, rtol=1e-9, atol=1e-9 * scale)


def test_single_pair_formula() -> None:
    conv = SinglePairConductanceConverter(g_max=25.0, g_min=1.0)
    w = torch.tensor([[0.5, -2.0], [0.0, 1.0]])
    (gp, gm), params = conv.convert_to_conductances(w)
    scale = 24.0 / 2.0
    torch.testing.assert_close(gp, (w * scale).clamp(0, 25) + 1.0)
    torch.testing.assert_close(gm, (-w * scale).clamp(0, 25) + 1.0)
    assert float(params["scale_ratio"]) == pytest.approx(scale)


def test_npair_fills_least_significant_pair_first() -> None:
    conv = DualPairConductanceConverter([1.0, 3.0])  # total 100 µS for max|W| = 1
    w = torch.tensor([0.1, 0.25, 0.5, -1.0])
    gs, params = conv.convert_to_conductances(w)
    assert float(params["scale_ratio"]) == pytest.approx(100.0)
    # µS: 10, 25, 50, -100 ; pair 0 holds up to 25 µS, pair 1 the rest / 3
    torch.testing.assert_close(gs[0], torch.tensor([10.0, 25.0, 25.0, 0.0]))
    torch.testing.assert_close(gs[1], torch.tensor([0.0, 0.0, 0.0, 25.0]))
    torch.testing.assert_close(gs[2], torch.tensor([0.0, 0.0, 25.0 / 3, 0.0]))
    torch.testing.assert_close(gs[3], torch.tensor([0.0, 0.0, 0.0, 25.0]))


def test_single_device_affine() -> None:
    conv = SingleDeviceConductanceConverter()
    w = torch.tensor([-1.0, 0.0, 3.0])
    g, params = conv.convert_to_conductances(w)
    # one tensor, not a list (as aihwkit); back conversion takes the tensor or a list
    assert isinstance(g, torch.Tensor)
    torch.testing.assert_close(g, torch.tensor([9.0, 9.0 + 79.2 / 4, 88.2]))
    torch.testing.assert_close(conv.convert_back_to_weights(g, params), w)
    torch.testing.assert_close(conv.convert_back_to_weights([g], params), w)
    (g_listed,), _ = conv.device_conductances(w)
    assert torch.equal(g_listed, g)
    # a constant matrix maps to g_min and back
    g0, p0 = conv.convert_to_conductances(torch.full((3,), 2.0))
    torch.testing.assert_close(conv.convert_back_to_weights(g0, p0), torch.full((3,), 2.0))


def test_custom_pair_interpolates_grid() -> None:
    conv = CustomPairConductanceConverter([1.0], LINEAR_TABLE)
    w = torch.tensor([-2.0, -1.0, 0.0, 0.5, 2.0])  # grid -2, -1, 0, 1, 2
    (gp, gm), params = conv.convert_to_conductances(w)
    torch.testing.assert_close(gp, torch.tensor([0.0, 0.0, 0.0, 6.25, 25.0]))
    torch.testing.assert_close(gm, torch.tensor([25.0, 12.5, 0.0, 0.0, 0.0]))
    assert float(params["scale_ratio"]) == pytest.approx(12.5)


def test_custom_pair_invertibility_test() -> None:
    bad = [[0.0, 0.0, 25.0, 25.0, 25.0], [25.0, 12.5, 0.0, 0.0, 0.0]]  # not linear
    with pytest.raises(ArithmeticError, match="invertible"):
        CustomPairConductanceConverter([1.0], bad)
    CustomPairConductanceConverter([1.0], bad, invertibility_test=False)


def test_custom_pair_all_zero_table_fails_the_invertibility_test() -> None:
    # every grid point maps to 0 µS: aihwkit's users expect ArithmeticError from the test
    zero = [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    with pytest.raises(ArithmeticError, match="0 µS"):
        CustomPairConductanceConverter([1.0], zero)
    with pytest.raises(ValueError, match="g_lst"):
        CustomPairConductanceConverter([1.0], zero, invertibility_test=False)


def test_zero_weights_map_to_g_min() -> None:
    for conv in all_converters()[:4]:
        gs, params = conv.device_conductances(torch.zeros(3, 4))
        for g in gs:
            assert torch.all(g == conv.g_min)
        assert torch.all(conv.convert_back_to_weights(gs, params) == 0)


@pytest.mark.parametrize(
    ("factory", "arg"),
    [
        (lambda: SinglePairConductanceConverter(g_min=-1.0), "g_min"),
        (lambda: SinglePairConductanceConverter(g_max=10.0, g_min=10.0), "g_min"),
        (lambda: SinglePairConductanceConverter(g_max=-5.0), "g_max"),
        (lambda: SingleDeviceConductanceConverter(g_max=5.0), "g_min"),
        (lambda: NPairConductanceConverter([]), "f_lst"),
        (lambda: NPairConductanceConverter([1.0, -2.0]), "f_lst"),
        (lambda: DualPairConductanceConverter([1.0]), "f_lst"),
        (lambda: DualPairConductanceConverter([1.0, 2.0, 3.0]), "f_lst"),
        (lambda: CustomPairConductanceConverter([1.0], [[0.0, 1.0]]), "g_lst"),
        (lambda: CustomPairConductanceConverter([1.0], [[0.0, 1.0], [1.0]]), "g_lst"),
        (lambda: CustomPairConductanceConverter([1.0], [[0.0], [1.0]]), "g_lst"),
        (lambda: CustomPairConductanceConverter([1.0], [[0.0, -1.0], [1.0, 0.0]]), "g_lst"),
        (lambda: CustomPairConductanceConverter([1.0], [[1.0, 1.0], [1.0, 1.0]],
                                                invertibility_test=False), "g_lst"),
        (lambda: CustomPairConductanceConverter([1.0], [[0.0, float("nan")], [1.0, 0]]), "g_lst"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(factory, arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        factory()


def test_bad_weights_and_conductances() -> None:
    conv = SinglePairConductanceConverter()
    with pytest.raises(ValueError, match="weights"):
        conv.convert_to_conductances(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError, match="weights"):
        conv.convert_to_conductances(torch.tensor([1, 2]))
    gs, params = conv.convert_to_conductances(torch.ones(3))
    with pytest.raises(ValueError, match="conductances"):
        conv.convert_back_to_weights(gs[:1], params)
    with pytest.raises(ValueError, match="params"):
        conv.convert_back_to_weights(gs, {})


@pytest.mark.parametrize("conv", all_converters(), ids=lambda c: type(c).__name__)
def test_serialization_copy_and_equality(conv) -> None:
    clone = type(conv).from_dict(conv.to_dict())
    assert clone == conv
    assert pickle.loads(pickle.dumps(conv)) == conv
    assert copy.deepcopy(conv) == conv
    assert type(conv).__name__ in repr(conv)
    assert conv != SinglePairConductanceConverter(g_max=99.0)
