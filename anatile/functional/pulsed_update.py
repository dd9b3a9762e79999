"""Weight updates of the analog core: stochastic pulse trains on a constant-step device.

The model (Gokmen & Vlasov 2016, as in analog training simulators):

* for each batch row ``b`` every input ``x_j`` drives a train of ``BL`` slots, each slot a
  pulse with probability ``A_b·|x_bj|``; every error ``d_i`` drives a train with
  probability ``B_b·|d_bi|``; the trains of the inputs are shared by a whole column, those
  of the errors by a whole row, exactly as on a crossbar;
* weight ``(i, j)`` receives one device step per slot where both trains pulse (a
  coincidence); the direction is ``-sign(x_bj · d_bi)`` (gradient descent);
* ``A = B = sqrt(lr / (dw_min · BL))`` so that ``E[Δw] = -lr · d · x``; with update
  management ``A_b = sqrt(lr/(dw_min·BL)·max|d_b|/max|x_b|)`` and ``B_b`` the reciprocal
  balance, so both trains use their probability range equally; with BL management each
  row uses ``BL_b = clamp(ceil(lr·max|x_b|·max|d_b| / dw_min), 1, desired_bl)`` slots.
  Probabilities above 1 are clipped (the update is then truncated, as on hardware);
* each step of device ``(i, j)`` is ``dw_ij·(1 ± up_down_ij)·(1 + dw_min_std·ξ)``; the
  ``n`` steps of one update are summed in distribution: ``n·dw + dw·dw_min_std·√n·ξ``;
* the result saturates at the device's own bounds ``[w_min_ij, w_max_ij]``; up and down
  pulses of one batch are applied together, then clipped (the order of pulses within a
  batch is not simulated).

Counting coincidences: the trains are drawn as 0/±1 tensors ``[batch·BL, size]`` and the
signed and unsigned coincidence counts are two GEMMs over the ``batch·BL`` dimension, exact
for this model. Random bits come from 16-bit uniform integers (four per ``int64`` draw), so
probabilities are resolved to 2⁻¹⁶.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from anatile.config.devices import ConstantStepDevice
from anatile.config.parameters import UpdateParameters

__all__ = [
    "DeviceParameters",
    "expected_pulses",
    "float_update",
    "pulse_coincidences",
    "pulsed_update",
    "sample_device_parameters",
]


class DeviceParameters(NamedTuple):
    """Per-device parameters sampled once per tile (device-to-device variation).

    Attributes:
        dw_up: step of an up pulse, ``[out, in]``.
        dw_down: step of a down pulse (positive number), ``[out, in]``.
        w_max: upper bound per device, ``[out, in]``.
        w_min: lower bound per device, ``[out, in]``.
    """

    dw_up: Tensor
    dw_down: Tensor
    w_max: Tensor
    w_min: Tensor


def sample_device_parameters(
    shape: tuple[int, int],
    device_config: ConstantStepDevice,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> DeviceParameters:
    """Draw the device-to-device variations of a constant-step crossbar.

    ``dw_ij = dw_min·|1 + dw_min_dtod·ξ|``, ``up_down_ij = up_down + up_down_dtod·ξ``,
    ``dw_up = dw_ij·(1 + up_down_ij)``, ``dw_down = dw_ij·(1 − up_down_ij)`` (both kept
    positive), ``w_max_ij = max(w_max·(1 + w_max_dtod·ξ), 0)`` and
    ``w_min_ij = min(w_min·(1 + w_min_dtod·ξ), 0)``.

    Args:
        shape: ``(out_size, in_size)`` of the crossbar.
        device_config: the device model.
        generator: random source.
        dtype: floating dtype of the results.
        device: torch device of the results.

    Returns:
        :class:`DeviceParameters` of the given shape.
    """
    c = device_config

    def randn() -> Tensor:
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)

    dw = (1.0 + c.dw_min_dtod * randn()).abs_().mul_(c.dw_min)
    up_down = (c.up_down + c.up_down_dtod * randn()).clamp_(-0.99, 0.99)
    dw_up = dw * (1.0 + up_down)
    dw_down = dw * (1.0 - up_down)
    w_max = (1.0 + c.w_max_dtod * randn()).mul_(c.w_max).clamp_(min=0.0)
    w_min = (1.0 + c.w_min_dtod * randn()).mul_(c.w_min).clamp_(max=0.0)
    return DeviceParameters(dw_up, dw_down, w_max, w_min)


def float_update(weight: Tensor, x: Tensor, d: Tensor, learning_rate: float) -> None:
    """Exact floating-point SGD step ``weight -= lr · d.T @ x`` (in place).

    Args:
        weight: ``[out, in]`` matrix, modified in place.
        x: inputs ``[N, in]``.
        d: errors ``[N, out]``.
        learning_rate: step size (positive means descent).
    """
    weight.addmm_(d.T, x, alpha=-learning_rate)


def _bit_trains(prob: Tensor, bl: int, row_bl: Tensor | None,
                generator: torch.Generator | None) -> Tensor:
    """Bernoulli trains ``[N·BL, size]`` (0/1 floats) with per-row probabilities ``prob``."""
    n, size = prob.shape
    count = n * bl * size
    words = (count + 3) // 4
    raw = torch.randint(-(2**62), 2**62, (words,), generator=generator, dtype=torch.int64,
                        device=prob.device)
    uniform = raw.view(torch.int16)[:count].view(n, bl, size)
    # int16 is in [-32768, 32767]; a pulse when (u + 32768) < p·65536.
    threshold = (prob * 65536.0 - 32768.0).unsqueeze(1)
    if row_bl is not None:
        slot = torch.arange(bl, device=prob.device).view(1, bl, 1)
        threshold = torch.where(slot < row_bl.view(n, 1, 1), threshold,
                                torch.full_like(threshold, -40000.0))
    return (uniform < threshold).view(n * bl, size).to(prob.dtype)


def pulse_coincidences(
    x: Tensor,
    d: Tensor,
    learning_rate: float,
    dw_min: float,
    update: UpdateParameters,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Count coincidences of stochastic pulse trains per weight and direction.

    Args:
        x: inputs ``[N, in]``.
        d: errors ``[N, out]``.
        learning_rate: positive learning rate.
        dw_min: the mean device step used to set the pulse probabilities.
        update: train length and management options.
        generator: random source.

    Returns:
        ``(n_up, n_down)``, each ``[out, in]`` (float counts): pulses that increase the
        weight (``x·d < 0``) and pulses that decrease it (``x·d > 0``).
    """
    bl = update.desired_bl
    x_max = x.abs().amax(dim=1)
    d_max = d.abs().amax(dim=1)
    active = (x_max > 0) & (d_max > 0)
    row_bl: Tensor | None = None
    if update.update_bl_management:
        need = torch.ceil(learning_rate * x_max * d_max / dw_min).clamp_(1, bl)
        bl = int(need.max().item()) if bool(active.any()) else 1
        row_bl = need.to(torch.int64)
        bl_f = need
    else:
        bl_f = torch.full_like(x_max, float(bl))
    base = learning_rate / (dw_min * bl_f)
    if update.update_management:
        ratio = torch.where(active, d_max / x_max.clamp(min=1e-30), torch.ones_like(x_max))
        a = torch.sqrt(base * ratio)
        b = torch.sqrt(base / ratio.clamp(min=1e-30))
    else:
        a = b = torch.sqrt(base)
    px = (x.abs() * a.unsqueeze(1)).clamp_(max=1.0)
    pd = (d.abs() * b.unsqueeze(1)).clamp_(max=1.0)
    tx = _bit_trains(px, bl, row_bl, generator)
    td = _bit_trains(pd, bl, row_bl, generator)
    total = td.T @ tx
    n = x.shape[0]
    tx_signed = (tx.view(n, bl, -1) * torch.sign(x).unsqueeze(1)).view(n * bl, -1)
    td_signed = (td.view(n, bl, -1) * torch.sign(d).unsqueeze(1)).view(n * bl, -1)
    signed = td_signed.T @ tx_signed
    n_down = (total + signed).mul_(0.5)
    n_up = total.sub_(signed).mul_(0.5)
    return n_up.round_(), n_down.round_()


def pulsed_update(
    weight: Tensor,
    x: Tensor,
    d: Tensor,
    learning_rate: float,
    device_params: DeviceParameters,
    device_config: ConstantStepDevice,
    update: UpdateParameters,
    generator: torch.Generator | None = None,
) -> None:
    """Apply one stochastic pulsed update ``≈ weight -= lr · d.T @ x`` in place.

    Args:
        weight: ``[out, in]`` weights in normalized conductance units (modified in place).
        x: inputs ``[N, in]``.
        d: errors ``[N, out]``.
        learning_rate: positive learning rate.
        device_params: per-device steps and bounds (:func:`sample_device_parameters`).
        device_config: the device model (``dw_min``, ``dw_min_std``).
        update: pulse train settings.
        generator: random source.

    Shape:
        ``weight``: ``[out, in]``, ``x``: ``[N, in]``, ``d``: ``[N, out]``.
    """
    if learning_rate == 0 or x.shape[0] == 0:
        return
    n_up, n_down = pulse_coincidences(x, d, learning_rate, device_config.dw_min, update,
                                      generator)
    delta = n_up * device_params.dw_up
    delta.sub_(n_down * device_params.dw_down)
    if device_config.dw_min_std > 0:
        noise_up = torch.randn(weight.shape, generator=generator, dtype=weight.dtype,
                               device=weight.device)
        noise_down = torch.randn(weight.shape, generator=generator, dtype=weight.dtype,
                                 device=weight.device)
        std = device_config.dw_min_std
        delta.addcmul_(noise_up.mul_(n_up.sqrt()), device_params.dw_up, value=std)
        delta.addcmul_(noise_down.mul_(n_down.sqrt()), device_params.dw_down, value=-std)
    pulsed = (n_up + n_down) > 0
    new = torch.minimum(torch.maximum(weight + delta, device_params.w_min), device_params.w_max)
    weight.copy_(torch.where(pulsed, new, weight))


def expected_pulses(learning_rate: float, x: Tensor, d: Tensor, dw_min: float) -> Tensor:
    """Mean signed number of device steps ``-lr · d.T @ x / dw_min`` (for tests/diagnostics)."""
    return (d.T @ x).mul_(-learning_rate / dw_min)

