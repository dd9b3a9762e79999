"""The verify read of closed-loop programming and how many reads it averages.

:class:`~anatile.tiles.programming.ClosedLoopProgramming` measures its error with a
:class:`Verify` (repeated reads averaged; the identity read multiplexed through
:func:`hadamard_inputs`) and grows the number of reads with a :class:`ReadSchedule`. The
physics of one read's noise lives in :mod:`anatile.functional.readout`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from anatile.functional.io_model import noise_management_scale
from anatile.functional.readout import adc_rounding_bias, read_noise_std
from anatile.tiles.analog_core import AnalogCore

__all__ = ["ReadSchedule", "Verify", "hadamard_inputs", "outside_bounds"]


def hadamard_inputs(n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Tensor:
    """``±1`` verify inputs ``[m, n]`` with orthogonal columns (``vᵀv = m·I``).

    The first ``n`` columns of a Sylvester-Hadamard matrix of order ``m`` (the power of
    two ``>= n``), each column's sign flipped at random so that no row sums many weights
    of one sign (the all-ones row would saturate the ADC on a block of positive weights).

    Example:
        >>> v = hadamard_inputs(6, torch.Generator().manual_seed(0))
        >>> v.shape, bool((v.T @ v == 8 * torch.eye(6)).all())
        (torch.Size([8, 6]), True)
    """
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    signs = torch.randint(0, 2, (n,), generator=generator, device=device).to(dtype)
    return h[:, :n] * signs.mul_(2.0).sub_(1.0)


class Verify:
    """The verify read of the closed loop: ``R`` reads averaged, decoded, error and floor.

    Multiplexed (the identity readout with ``multiplexed``): the array is read with the
    ``m`` rows of :func:`hadamard_inputs` and the identity outputs are decoded as
    ``vᵀy / m``: every row drives all inputs at full scale, so each decoded weight
    averages ``m`` reads and its noise is ``1/√m`` of an identity read's for the same
    number of MVMs. Otherwise the inputs ``x`` themselves are read.
    """

    #: elements of the largest read batch (repeats are read in chunks of this size)
    CHUNK = 1 << 21

    def __init__(self, x: Tensor, target_out: Tensor, denom: float, core: AnalogCore,
                 generator: torch.Generator, multiplexed: bool) -> None:
        self.target_out, self.denom = target_out, denom
        self.core, self.generator = core, generator
        self.total_reads = 0
        self.decode: Tensor | None = None
        gain = 1.0
        if multiplexed:
            x = hadamard_inputs(x.shape[1], generator, x.dtype, x.device)
            self.decode = x.T / x.shape[0]
            gain = float(x.shape[0])
        self.x = x
        io = core.rpu_config.forward
        # mean |n| of one (decoded) read over every output
        noise = read_noise_std(x, io)
        self.noise = math.sqrt(2.0 / math.pi) * float(noise.mean()) / math.sqrt(gain)
        scale = noise_management_scale(x, io) if not io.is_perfect else torch.ones(1)
        self.bias = adc_rounding_bias(io) * float(scale.mean()) / math.sqrt(gain)

    @property
    def elements(self) -> int:
        """Number of errors averaged by the criterion."""
        return self.target_out.numel()

    def floor(self, reads: int) -> float:
        """Relative error of a perfect array read ``reads`` times (the noise's mean |.|)."""
        return (self.noise / math.sqrt(reads) + self.bias) / self.denom

    def reads_for(self, error: float) -> int | None:
        """Reads whose floor is ``error`` (None: the ADC's rounding bias alone exceeds it)."""
        room = error * self.denom - self.bias
        if room <= 0:
            return None
        return max(1, math.ceil((self.noise / room) ** 2))

    def measure(self, reads: int) -> tuple[Tensor, float]:
        x, n = self.x, self.x.shape[0]
        with torch.no_grad():
            total = self.core.forward(x, self.generator)
            done = 1
            per_chunk = max(1, self.CHUNK // max(1, n * max(x.shape[1], total.shape[1])))
            while done < reads:
                count = min(per_chunk, reads - done)
                y = self.core.forward(x.repeat(count, 1), self.generator)
                total += y.view(count, n, -1).sum(dim=0)
                done += count
            if reads > 1:
                total /= reads
            if self.decode is not None:
                total = self.decode @ total
            err = total - self.target_out
        self.total_reads += reads
        return err, float(err.abs().mean()) / self.denom


def outside_bounds(core: AnalogCore, target: Tensor) -> int:
    """Number of target weights no device of a pulsed core can hold (0 without bounds)."""
    params = core.device_parameters
    if params is None:
        return 0
    return int(((target > params.w_max) | (target < params.w_min)).sum())


@dataclass
class ReadSchedule:
    """Reads per verify: fixed, or grown 4-fold at the floor or on a stall (adaptive)."""

    reads: int
    adaptive: bool
    max_reads: int
    patience: int
    tolerance: float | None
    verify: Verify
    best: float = math.inf
    since_best: int = 0

    @classmethod
    def start(cls, verify_reads: int | None, max_reads: int, learning_rate: float,
              tolerance: float | None, verify: Verify) -> ReadSchedule:
        """Fixed ``verify_reads``, or adaptive from 1 read (None)."""
        reads = 1 if verify_reads is None else int(verify_reads)
        patience = max(10, math.ceil(3.0 / float(learning_rate)))
        return cls(reads, verify_reads is None, int(max_reads), patience, tolerance, verify)

    def after(self, rel: float) -> bool:
        """Update the schedule with this verify's error; True: stalled at the cap, stop."""
        if not self.adaptive:
            return False
        # an improvement beyond the measurement's own scatter (mean of |.| over K values)
        if rel < self.best * (1.0 - min(0.5, 2.5 / math.sqrt(self.verify.elements))):
            self.best, self.since_best = rel, 0
        else:
            self.since_best += 1
        stalled = self.since_best >= self.patience
        if rel <= 1.5 * self.verify.floor(self.reads) or stalled:
            if self.reads < self.max_reads:
                self.reads = min(4 * self.reads, self.max_reads)
                self.since_best = 0
                return False
        return stalled and self.tolerance is not None

    def stall_reason(self, rel: float, outside: int) -> str:
        """Why the loop stopped improving, for the report."""
        floor = self.verify.floor(self.reads)
        text = (f"stalled: error {rel:.3g} stopped improving with {self.reads} reads per "
                f"verify (their noise floor {floor:.3g})")
        assert self.tolerance is not None
        if outside:
            text += f"; {outside} target weights lie beyond their device's bounds"
        if floor < self.tolerance:
            return text + ("" if outside else "; the weights cannot follow the verify "
                           "(device steps or update noise)")
        needed = self.verify.reads_for(self.tolerance / 2)
        if needed is None:
            return text + "; the ADC's rounding alone is above the tolerance"
        return text + f"; the tolerance needs about {needed} reads (max_reads)"
