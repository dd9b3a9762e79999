"""The shared argument checks (anatile.checks): each names the argument and only reads it."""

from __future__ import annotations

import math

import pytest
import torch

from anatile.checks import (
    all_finite,
    check_device,
    check_finite,
    check_float,
    check_float_list,
    check_int,
    check_tensor,
    check_times,
)


def test_check_tensor_accepts_every_float_dtype() -> None:
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = torch.ones(2, 3, dtype=dtype)
        assert check_tensor("w", t, (2, 3)) is t


@pytest.mark.parametrize(("value", "exc", "fragment"), [
    ([1.0], TypeError, "expected a torch.Tensor, got list"),
    (torch.ones(2, dtype=torch.int64), TypeError, "floating-point"),
    (torch.ones(2, dtype=torch.bool), TypeError, "floating-point"),
    (torch.ones(2, dtype=torch.complex64), TypeError, "floating-point"),
    (torch.ones(2, device="meta"), ValueError, "meta tensor"),
    (torch.ones(3), ValueError, "expected shape (2,)"),
    (torch.tensor([1.0, math.nan]), ValueError, "1 NaN and 0 inf"),
    (torch.tensor([-math.inf, math.inf]), ValueError, "0 NaN and 2 inf"),
])
def test_check_tensor_rejects(value: object, exc: type[Exception], fragment: str) -> None:
    with pytest.raises(exc, match="^w: ") as info:
        check_tensor("w", value, (2,))
    assert fragment in str(info.value)


def test_check_tensor_finite_false_lets_nan_through() -> None:
    t = torch.tensor([math.nan, math.inf])
    assert check_tensor("x", t, finite=False) is t
    with pytest.raises(ValueError, match="x: expected finite"):
        check_finite("x", t)


def test_check_numbers() -> None:
    assert check_int("n", 3, 1) == 3
    assert check_float("lr", 2, hi=5.0) == 2.0
    with pytest.raises(TypeError, match="n: expected an int"):
        check_int("n", True, 0)
    with pytest.raises(ValueError, match="lr: expected a finite number > 0"):
        check_float("lr", 0.0, lo_open=True)
    with pytest.raises(ValueError, match="lr: expected a number <= 5"):
        check_float("lr", 6.0, hi=5.0)
    with pytest.raises(ValueError, match=r"f\[1\]: expected a finite number"):
        check_float_list("f", [1.0, math.nan])


@pytest.mark.parametrize(("value", "exc"), [
    ("abc", TypeError), (None, TypeError), (5.0, TypeError), ([], ValueError),
    ([1.0, -1.0], ValueError), ([math.inf], ValueError), ([1.0, "2"], TypeError),
])
def test_check_times_rejects(value: object, exc: type[Exception]) -> None:
    with pytest.raises(exc, match="^t_steps"):
        check_times("t_steps", value)


def test_check_times_accepts_sequences_and_tensors() -> None:
    assert check_times("t", (1, 2.5)) == [1.0, 2.5]
    assert check_times("t", torch.tensor([0.0, 3600.0])) == [0.0, 3600.0]


def test_check_device() -> None:
    assert check_device("device", "cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device: expected a device such as"):
        check_device("device", "bogus")
    with pytest.raises(TypeError, match="device: expected a device"):
        check_device("device", 1.5)


@pytest.mark.parametrize(("values", "expected"), [
    ([], True),
    ([1.0, -2.0], True),
    ([3e38, 3e38, 3e38], True),  # finite values whose float32 sum overflows: exact test
    ([1.0, math.nan], False),
    ([math.inf, 1.0], False),
    ([-math.inf, math.inf], False),  # the sum is NaN
    ([math.nan, 3e38, 3e38], False),
])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_all_finite(values: list[float], expected: bool, dtype: torch.dtype) -> None:
    t = torch.tensor(values, dtype=torch.float64).to(dtype)
    if expected and not bool(torch.isfinite(t).all()):  # 3e38 overflows float16 to inf
        expected = False
    assert all_finite(t) is expected
    assert all_finite(t.reshape(-1, 1).expand(-1, 3).T) is expected  # strided views too
