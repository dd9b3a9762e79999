"""Stochastic pulsed update: statistics of the coincidence counts, device variations, bounds."""

from __future__ import annotations

import math

import pytest
import torch

from anatile.config import ConstantStepDevice, UpdateParameters
from anatile.functional import (
    expected_pulses,
    float_update,
    pulse_coincidences,
    pulsed_update,
    sample_device_parameters,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("um,blm", [(False, False), (True, False), (False, True), (True, True)])
def test_mean_pulse_count_matches_lr_d_x(um: bool, blm: bool) -> None:
    g = _gen(0)
    x = torch.randn(6, 5, generator=g) * 0.5
    d = torch.randn(6, 4, generator=g) * 0.05
    lr, dw = 0.01, 0.001  # A·|x| and B·|d| stay below 1: no truncation
    up = UpdateParameters(update_management=um, update_bl_management=blm)
    reps = 400
    samples = torch.stack([
        (lambda c: c[0] - c[1])(pulse_coincidences(x, d, lr, dw, up, g)) for _ in range(reps)
    ])
    expected = expected_pulses(lr, x, d, dw)
    mean = samples.mean(0)
    sem = samples.std(0) / math.sqrt(reps) + 1e-3
    z = (mean - expected) / sem
    assert float(z.abs().max()) < 5.0, z


def test_counts_are_whole_numbers_and_zero_inputs_give_none() -> None:
    g = _gen(1)
    x = torch.randn(4, 3, generator=g)
    x[:, 1] = 0.0
    d = torch.randn(4, 2, generator=g)
    n_up, n_down = pulse_coincidences(x, d, 0.05, 0.001, UpdateParameters(), g)
    assert torch.equal(n_up, n_up.round()) and torch.equal(n_down, n_down.round())
    assert float(n_up[:, 1].sum() + n_down[:, 1].sum()) == 0.0
    assert bool((n_up >= 0).all()) and bool((n_down >= 0).all())
    # at most BL coincidences per batch row
    assert float((n_up + n_down).max()) <= 4 * UpdateParameters().desired_bl


def test_direction_follows_sign_of_x_times_d() -> None:
    g = _gen(2)
    x = torch.ones(8, 1)
    d = torch.ones(8, 1)
    n_up, n_down = pulse_coincidences(x, d, 0.01, 0.001, UpdateParameters(), g)
    assert float(n_up.sum()) == 0.0 and float(n_down.sum()) > 0  # x·d > 0 → weight decreases
    n_up, n_down = pulse_coincidences(x, -d, 0.01, 0.001, UpdateParameters(), g)
    assert float(n_down.sum()) == 0.0 and float(n_up.sum()) > 0


def test_tile_update_mean_and_cycle_to_cycle_spread() -> None:
    g = _gen(3)
    dev = ConstantStepDevice(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                             w_max=10.0, w_min=-10.0, dw_min_std=0.3)
    params = sample_device_parameters((3, 4), dev, g)
    x = torch.randn(5, 4, generator=g) * 0.5
    d = torch.randn(5, 3, generator=g) * 0.05
    lr = 0.01
    reps = 400
    deltas = []
    for _ in range(reps):
        w = torch.zeros(3, 4)
        pulsed_update(w, x, d, lr, params, dev, UpdateParameters(), g)
        deltas.append(w)
    deltas_t = torch.stack(deltas)
    expected = -lr * d.T @ x
    sem = deltas_t.std(0) / math.sqrt(reps) + 1e-6
    assert float(((deltas_t.mean(0) - expected) / sem).abs().max()) < 5.0


def test_saturates_at_per_device_bounds() -> None:
    g = _gen(4)
    dev = ConstantStepDevice()
    params = sample_device_parameters((6, 5), dev, g)
    w = torch.zeros(6, 5)
    x = torch.ones(16, 5)
    for _ in range(60):  # push every weight up (x·d < 0) far beyond w_max
        pulsed_update(w, x, -torch.ones(16, 6), 1.0, params, dev, UpdateParameters(), g)
    assert torch.allclose(w, params.w_max)
    for _ in range(120):
        pulsed_update(w, x, torch.ones(16, 6), 1.0, params, dev, UpdateParameters(), g)
    assert torch.allclose(w, params.w_min)


def test_device_to_device_variation_statistics() -> None:
    g = _gen(5)
    dev = ConstantStepDevice()
    p = sample_device_parameters((200, 200), dev, g)
    dw = (p.dw_up + p.dw_down) / 2
    assert abs(float(dw.mean()) / dev.dw_min - 1.0) < 0.02
    assert abs(float(dw.std()) / dev.dw_min - dev.dw_min_dtod) < 0.03
    assert abs(float(p.w_max.mean()) - dev.w_max) < 0.01
    assert abs(float(p.w_max.std()) / dev.w_max - dev.w_max_dtod) < 0.02
    assert bool((p.w_max >= 0).all()) and bool((p.w_min <= 0).all())
    up_down = (p.dw_up - p.dw_down) / (p.dw_up + p.dw_down)
    assert abs(float(up_down.std()) - dev.up_down_dtod) < 0.002
    # sampled once: the same generator state reproduces them
    q = sample_device_parameters((200, 200), dev, _gen(5))
    assert torch.equal(p.dw_up, q.dw_up)


def test_float_update_is_exact_sgd() -> None:
    w = torch.randn(3, 4)
    x, d = torch.randn(5, 4), torch.randn(5, 3)
    expected = w - 0.1 * d.T @ x
    float_update(w, x, d, 0.1)
    assert torch.allclose(w, expected)


def test_zero_learning_rate_changes_nothing() -> None:
    dev = ConstantStepDevice()
    params = sample_device_parameters((2, 2), dev, _gen())
    w = torch.full((2, 2), 0.1)
    pulsed_update(w, torch.ones(1, 2), torch.ones(1, 2), 0.0, params, dev, UpdateParameters())
    assert torch.equal(w, torch.full((2, 2), 0.1))


def test_cycle_to_cycle_spread_of_a_deterministic_pulse_count() -> None:
    # A = B = 1 (lr = dw_min·BL, no management): every slot coincides, n = BL·batch exactly
    # (down pulses), so the spread of Δw is the cycle-to-cycle one: dw·dw_min_std·sqrt(n).
    g = _gen(6)
    dev = ConstantStepDevice(dw_min_dtod=0.0, up_down_dtod=0.0, w_max=100.0, w_min=-100.0,
                             w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.3)
    up = UpdateParameters(desired_bl=10, update_management=False, update_bl_management=False)
    params = sample_device_parameters((50, 40), dev, g)
    w = torch.zeros(50, 40)
    pulsed_update(w, torch.ones(2, 40), torch.ones(2, 50), dev.dw_min * 10, params, dev, up, g)
    n = 20
    assert abs(float(w.mean()) / (-n * dev.dw_min) - 1.0) < 0.01
    expected_std = dev.dw_min * dev.dw_min_std * n**0.5
    assert abs(float(w.std()) / expected_std - 1.0) < 0.1
