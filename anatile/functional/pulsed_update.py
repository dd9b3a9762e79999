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
  row uses ``BL_b = clamp(ceil(lr·max|x_b|·max|d_b| / dw_min), 1, desired_bl)`` slots
  (without update management ``max(max|x_b|, max|d_b|)²`` replaces the product, the
  shortest train that keeps both probabilities ≤ 1).
  Probabilities above 1 are clipped (the update is then truncated, as on hardware);
* each step of device ``(i, j)`` is ``dw_ij·(1 ± up_down_ij)·(1 + dw_min_std·ξ)``; the
  ``n`` steps of one update are summed in distribution: ``n·dw + dw·dw_min_std·√n·ξ``;
* the result saturates at the device's own bounds ``[w_min_ij, w_max_ij]``; up and down
  pulses of one batch are applied together, then clipped (the order of pulses within a
  batch is not simulated).

Counting coincidences: the trains are drawn as 0/1 int8 tensors (``[batch·BL, in]`` and
``[out, batch·BL]``) and the unsigned and signed (times ``sign(x)``, ``sign(d)``)
coincidence counts are two GEMMs over the ``batch·BL`` dimension, exact for this model
(float32 holds every integer count below 2²⁴). Random bits
come from 16-bit uniform integers (four per ``int64`` draw), so probabilities are
resolved to 2⁻¹⁶.
"""

from __future__ import annotations

import math
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

    Example:
        >>> from anatile.config import ConstantStepDevice
        >>> p = sample_device_parameters((2, 3), ConstantStepDevice(),
        ...                              torch.Generator().manual_seed(0))
        >>> isinstance(p, DeviceParameters), p.dw_up.shape
        (True, torch.Size([2, 3]))
        >>> bool((p.w_min <= 0).all() and (p.w_max >= 0).all())
        True
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

    Example:
        >>> from anatile.config import ConstantStepDevice
        >>> device = ConstantStepDevice(dw_min_dtod=0.0, up_down_dtod=0.0)
        >>> p = sample_device_parameters((2, 2), device, torch.Generator().manual_seed(0))
        >>> p.dw_up  # no device-to-device variation: every step is dw_min
        tensor([[0.0010, 0.0010],
                [0.0010, 0.0010]])
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

    Example:
        >>> w = torch.zeros(1, 2)
        >>> float_update(w, torch.tensor([[1.0, 0.5]]), torch.tensor([[0.2]]), learning_rate=0.1)
        >>> w
        tensor([[-0.0200, -0.0100]])
    """
    weight.addmm_(d.T, x, alpha=-learning_rate)


def _uniform16(shape: tuple[int, ...], generator: torch.Generator | None,
               device: torch.device) -> Tensor:
    """Uniform integers in ``[-32768, 32767]`` (int16), four per 64-bit random draw."""
    count = math.prod(shape)
    words = (count + 3) // 4
    # The full 64-bit range (``from=-2**63, to=None``): every 16-bit slice is uniform.
    raw = torch.empty(words, dtype=torch.int64, device=device)
    raw.random_(-(2**63), None, generator=generator)
    return raw.view(torch.int16)[:count].view(shape)


def _thresholds(abs_xd: Tensor, a: Tensor, b: Tensor, n_in: int) -> Tensor:
    """int16 thresholds of the pulse probabilities ``min(A·|x|, 1)`` and ``min(B·|d|, 1)``.

    ``abs_xd`` is ``[N, in + out]`` (``|x|`` then ``|d|``, overwritten); ``a``, ``b`` are the
    per-row gains. A slot pulses when ``(u + 32768) < p·65536``, i.e. ``u < p·65536 − 32768``
    for the int16 uniform ``u``; the threshold stays int16 (no promotion of the big random
    tensor): p = 0 gives −32768 (never), p ≥ 1 gives 32767 (a miss with probability 2⁻¹⁶);
    the conversion truncates (a probability error below 2⁻¹⁶).
    """
    abs_xd[:, :n_in].mul_((a * 65536.0).unsqueeze(1))
    abs_xd[:, n_in:].mul_((b * 65536.0).unsqueeze(1))
    return abs_xd.sub_(32768.0).clamp_(max=32767.0).to(torch.int16)


def _count(a: Tensor, b: Tensor) -> Tensor:
    """Exact ``a @ b`` of 0/±1 int8 matrices as float32.

    A float32 GEMM is exact here: every partial sum is an integer of magnitude at most
    ``K`` (the inner dimension), exactly representable below 2²⁴; longer sums use
    float64. ``torch._int_mm`` is not used: without VNNI instructions its CPU kernel ran
    30-100x slower than the float GEMM (e.g. 9.5 s vs 0.09 s for a 512x4096x512 count).
    """
    dtype = torch.float32 if a.shape[1] < (1 << 24) else torch.float64
    return (a.to(dtype) @ b.to(dtype)).to(torch.float32)


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

    Example:
        >>> from anatile.config import UpdateParameters
        >>> up, down = pulse_coincidences(torch.ones(4, 3), -torch.ones(4, 2), 0.01, 0.001,
        ...                               UpdateParameters(), torch.Generator().manual_seed(0))
        >>> up.shape, int(down.sum())  # x·d < 0 everywhere: every coincidence is an up step
        (torch.Size([2, 3]), 0)
    """
    n, n_in, n_out = x.shape[0], x.shape[1], d.shape[1]
    bl = update.desired_bl
    # x and d side by side: one pass each for sign, abs and the thresholds.
    xd = torch.cat([x, d], dim=1)
    signs = torch.sign(xd).to(torch.int8)
    xd_abs = xd.abs_()
    x_max = xd_abs[:, :n_in].amax(dim=1)
    d_max = xd_abs[:, n_in:].amax(dim=1)
    active = (x_max > 0) & (d_max > 0)
    row_bl: Tensor | None = None
    if update.update_bl_management:
        # The shortest train with all probabilities ≤ 1: with update management
        # A·max|x| = B·max|d| = sqrt(lr·max|x|·max|d| / (dw_min·BL)); without it
        # A = B = sqrt(lr / (dw_min·BL)) must serve the larger of the two maxima.
        peak = x_max * d_max if update.update_management else torch.maximum(x_max, d_max) ** 2
        need = torch.ceil(learning_rate * peak / dw_min).clamp_(1, bl)
        bl = int(need.max().item()) if bool(active.any()) else 1
        need.clamp_(max=bl)
        if bool((need < bl).any()):
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
    a = torch.where(active, a, torch.zeros_like(a))
    thr = _thresholds(xd_abs, a, b, n_in)
    # Slot-major layouts: x trains [BL, N, in], d trains [out, BL, N]; the GEMM dimension
    # K = BL·N runs over (slot, row) in the same order on both sides, and every threshold
    # broadcasts along an outer dimension (contiguous, vectorized comparisons).
    thr_x = thr[:, :n_in].unsqueeze(0)  # [1, N, in]
    thr_d = thr[:, n_in:].T.contiguous().unsqueeze(1)  # [out, 1, N]
    if row_bl is not None:
        off = torch.arange(bl, device=x.device).view(bl, 1) >= row_bl.view(1, n)  # [BL, N]
        thr_x = thr_x.expand(bl, -1, -1).masked_fill(off.unsqueeze(2), -32768)
        thr_d = thr_d.expand(-1, bl, -1).masked_fill(off.unsqueeze(0), -32768)
    tx = (_uniform16((bl, n, n_in), generator, x.device) < thr_x).view(torch.int8)
    td = (_uniform16((n_out, bl, n), generator, x.device) < thr_d).view(torch.int8)
    k = n * bl
    total = _count(td.reshape(n_out, k), tx.reshape(k, n_in))
    sx = signs[:, :n_in].unsqueeze(0)  # [1, N, in]
    sd = signs[:, n_in:].T.contiguous().unsqueeze(1)  # [out, 1, N]
    signed = _count((td * sd).reshape(n_out, k), (tx * sx).reshape(k, n_in))
    n_down = (total + signed).mul_(0.5)
    n_up = total.sub_(signed).mul_(0.5)
    return n_up.to(x.dtype), n_down.to(x.dtype)


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

    Example:
        >>> from anatile.config import ConstantStepDevice, UpdateParameters
        >>> gen = torch.Generator().manual_seed(0)
        >>> device = ConstantStepDevice()
        >>> params = sample_device_parameters((2, 3), device, gen)
        >>> w = torch.zeros(2, 3)
        >>> x, d = torch.ones(8, 3), torch.ones(8, 2)
        >>> pulsed_update(w, x, d, 0.01, params, device, UpdateParameters(), gen)
        >>> bool((w < 0).all())  # x·d > 0: the weights step down, as in SGD
        True
    """
    if learning_rate == 0 or x.shape[0] == 0:
        return
    n_up, n_down = pulse_coincidences(x, d, learning_rate, device_config.dw_min, update,
                                      generator)
    up = n_up.mul_(device_params.dw_up)
    down = n_down.mul_(device_params.dw_down)
    delta = up - down
    if device_config.dw_min_std > 0:
        # n steps of dw·(1 + σ·ξ): the spread of up and down steps adds in variance,
        # var = n_up·dw_up² + n_down·dw_down².
        var = (up * device_params.dw_up).addcmul_(down, device_params.dw_down)
        noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype,
                            device=weight.device)
        delta.addcmul_(noise, var.sqrt_(), value=device_config.dw_min_std)
    pulsed = (up + down) > 0
    new = delta.add_(weight).clamp_(min=device_params.w_min, max=device_params.w_max)
    torch.where(pulsed, new, weight, out=weight)


def expected_pulses(learning_rate: float, x: Tensor, d: Tensor, dw_min: float) -> Tensor:
    """Mean signed number of device steps ``-lr · d.T @ x / dw_min`` (for tests/diagnostics).

    Example:
        >>> expected_pulses(0.1, torch.tensor([[1.0, 0.5]]), torch.tensor([[0.2]]), dw_min=0.01)
        tensor([[-2., -1.]])
    """
    return (d.T @ x).mul_(-learning_rate / dw_min)

