"""The simulated chips of an error budget: each tile's weights, alpha and IO per ablation.

For every tile, :func:`tile_states` programs the tile's targets onto fresh simulated chips
with the tile's own physics, once with every source on (``"all"``), once with all ideal
(``"ideal"``) and once with each source made ideal (``"no_<source>"``), on common random
numbers (the same seeds in every ablation). :mod:`anatile.analysis.budget` turns these
states into error tables; the method is described there and in ``docs/metrics.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from anatile.config.parameters import IOParameters
from anatile.functional.io_model import quantization_step
from anatile.inference.compensation import PerColumnDriftCompensation
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["ABLATIONS", "SOURCES", "TileStates", "seed_of", "tile_states"]

SOURCES: tuple[str, ...] = (
    "programming",
    "mean_drift",
    "drift_variability",
    "read_noise",
    "compensation",
    "io",
    "saturation",
)
"""The error sources, in pipeline order."""

ABLATIONS: tuple[str, ...] = ("all", "ideal", *(f"no_{s}" for s in SOURCES))
_UNBOUNDED = 1e6  # bound multiplier of the "no clipping" IO (steps are kept)


def seed_of(seed: int, *keys: int) -> int:
    """A seed derived from ``seed`` and integer keys (tile, stage, time)."""
    value = seed
    for k in keys:
        value = (value * 1_000_003 + k + 1) % 2**62
    return value


def _gen(device: torch.device, seed: int, *keys: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed_of(seed, *keys))


def _io_variants(io: IOParameters) -> dict[str, IOParameters]:
    """The tile's IO, without quantization and noise, without clipping, without both."""
    quiet = dataclasses.replace(io, inp_res=0.0, out_res=0.0, inp_noise=0.0, out_noise=0.0,
                                w_noise=0.0)
    def same_step(res: float, bound: float) -> float:
        """The resolution that keeps the step of (res, bound) over ±bound · _UNBOUNDED."""
        step = quantization_step(res, bound)
        return step / (2.0 * bound * _UNBOUNDED) if step > 0 else res

    unclipped = dataclasses.replace(
        io, inp_bound=io.inp_bound * _UNBOUNDED, inp_res=same_step(io.inp_res, io.inp_bound),
        out_bound=io.out_bound * _UNBOUNDED, out_res=same_step(io.out_res, io.out_bound))
    ideal = dataclasses.replace(quiet, inp_bound=io.inp_bound * _UNBOUNDED,
                                out_bound=io.out_bound * _UNBOUNDED)
    if io.is_perfect:
        return {"actual": io, "quiet": io, "unclipped": io, "ideal": io}
    return {"actual": io, "quiet": quiet, "unclipped": unclipped, "ideal": ideal}


_IO_OF = {"no_io": "quiet", "no_saturation": "unclipped", "ideal": "ideal"}


@dataclass
class TileStates:
    """Array weights (normalized) ``[T, out, in']``, alpha ``[T, n]`` and IO per ablation."""

    target: Tensor
    scales: Tensor  # [out, 1] logical units per normalized unit
    weights: dict[str, Tensor]
    alpha: dict[str, Tensor] | None
    io: dict[str, IOParameters]

    def effective(self, ablation: str) -> Tensor:
        """Logical effective weights ``[T, out, in']``."""
        w = self.weights[ablation]
        if self.alpha is None:
            return w * self.scales
        return w * (self.alpha[ablation].unsqueeze(-1) * self.scales)  # [T, out, 1]: one pass


def _target(tile: TileWithPeriphery) -> Tensor:
    ref = tile.reference_weight
    return (ref if ref is not None else tile.analog_core.weight).detach().clone()


def _row_scales(tile: TileWithPeriphery) -> Tensor:
    scales = tile.get_scales()
    n = tile.out_size
    if scales is None:
        return torch.ones(n, 1, dtype=tile.analog_core.weight.dtype, device=tile.device)
    return scales.detach().to(tile.device).reshape(-1, 1).expand(n, 1).clone()


def _oracle_alpha(tile: InferenceTile, drifted: Tensor, target: Tensor) -> Tensor:
    """Least-squares best factor of the compensation's form: ``[T, n_alpha]``."""
    num = (drifted * target).to(torch.float64)
    den = drifted.to(torch.float64).square()
    if isinstance(tile.rpu_config.drift_compensation, PerColumnDriftCompensation):
        num_s, den_s = num.sum(-1), den.sum(-1)
    else:
        num_s, den_s = num.sum((-2, -1)).unsqueeze(-1), den.sum((-2, -1)).unsqueeze(-1)
    ok = den_s > 0
    alpha = torch.where(ok, num_s / torch.where(ok, den_s, torch.ones_like(den_s)),
                        torch.ones_like(den_s))
    return alpha.to(drifted.dtype)


@torch.no_grad()
def _inference_states(tile: InferenceTile, times: list[float], seed: int,
                      index: int) -> TileStates:
    model = tile.noise_model
    converter = model.g_converter
    device = tile.device
    target = _target(tile)
    targets, params = converter.convert_to_conductances(target)
    g_target = torch.stack(targets)
    g_prog = model.apply_programming_noise_to_conductance(g_target, _gen(device, seed, index, 0))
    nu = model.generate_drift_coefficients(g_target, _gen(device, seed, index, 1))
    weight_sum = g_target.sum()
    nu_bar = (nu * g_target).sum() / weight_sum if float(weight_sum) > 0 else nu.mean()
    silent = model.replace(read_noise_scale=0.0)
    variants = {  # (programmed conductances, ν, read noise on)
        "all": (g_prog, nu, True),
        "no_programming": (g_target, nu, True),
        "no_mean_drift": (g_prog, nu - nu_bar, True),
        "no_drift_variability": (g_prog, torch.full_like(nu, float(nu_bar)), True),
        "no_read_noise": (g_prog, nu, False),
        "ideal": (g_target, torch.zeros_like(nu), False),
    }
    dtype = tile.analog_core.weight.dtype

    def back(g: Tensor) -> Tensor:
        return converter.convert_back_to_weights(list(g.unbind(0)), params).to(dtype)

    def back_t(g: Tensor) -> Tensor:  # [T, K, ...] -> [T, ...]
        return converter.convert_back_to_weights(list(g.unbind(1)), params).to(dtype)

    # all times in one call: t broadcasts over a leading time dimension, so the read noise
    # of every variant is one draw of the same shape from the same seed
    t = torch.tensor(times, dtype=torch.float64, device=device).reshape(-1, 1, 1, 1)
    stacked: dict[str, Tensor] = {}
    for name, (gp, nu_v, read) in variants.items():
        if name == "ideal":  # no drift, no noise: the targets at every time
            stacked[name] = back(g_target).unsqueeze(0).expand(len(times), *target.shape)
            continue
        phys = model if read else silent
        g_t = phys.apply_drift_noise_to_conductance(gp, nu_v, t, _gen(device, seed, index, 2))
        stacked[name] = back_t(g_t)
    for name in ("no_compensation", "no_io", "no_saturation"):
        stacked[name] = stacked["all"]
    io = _io_variants(tile.rpu_config.forward)
    io_of = {a: io[_IO_OF.get(a, "actual")] for a in ABLATIONS}

    # drift compensation: each ablation reads its own chip (baseline at programming, then
    # at each time) through its IO, on the same IO noise draws
    alpha: dict[str, Tensor] = {}
    programmed = {name: back(gp) for name, (gp, _, _) in variants.items()}
    comp = tile.rpu_config.drift_compensation
    for ablation in ABLATIONS:
        if ablation == "no_compensation":
            continue
        if comp is None or ablation == "ideal":
            # the ideal chip reads its programmed weights again through a noise-free IO: the
            # two readouts are identical, so alpha is exactly 1
            alpha[ablation] = torch.ones(len(times), tile.alpha.numel(), dtype=dtype,
                                         device=device)
            continue
        prog_name = ablation if ablation in programmed else "all"
        base = tile.compensation_baseline(programmed[prog_name], io=io_of[ablation],
                                          generator=_gen(device, seed, index, 3))
        alpha[ablation] = torch.stack([
            tile.compensation_alpha(stacked[ablation][i], baseline=base, io=io_of[ablation],
                                    generator=_gen(device, seed, index, 4, i))
            for i in range(len(times))
        ])
    if comp is None:
        alpha["no_compensation"] = alpha["all"]
    else:
        alpha["no_compensation"] = _oracle_alpha(tile, stacked["all"], target)
    return TileStates(target, _row_scales(tile), stacked, alpha, io_of)


@torch.no_grad()
def _training_states(tile: TileWithPeriphery, times: list[float]) -> TileStates:
    target = _target(tile)
    array = tile.analog_core.weight.detach().clone()
    params = tile.analog_core.device_parameters
    if params is None:
        clamped_array, clamped_target = array, target
    else:
        clamped_array = torch.minimum(torch.maximum(array, params.w_min), params.w_max)
        clamped_target = torch.minimum(torch.maximum(target, params.w_min), params.w_max)
    per = {
        "all": clamped_array,
        "no_programming": clamped_target,
        "no_saturation": target + (clamped_array - clamped_target),
        "ideal": target,
    }
    n = len(times)
    weights = {a: per.get(a, clamped_array).unsqueeze(0).expand(n, *array.shape)
               for a in ABLATIONS}
    io = _io_variants(tile.rpu_config.forward)
    io_of = {a: io[_IO_OF.get(a, "actual")] for a in ABLATIONS}
    return TileStates(target, _row_scales(tile), weights, None, io_of)


def tile_states(tile: TileWithPeriphery, times: list[float], seed: int, index: int) -> TileStates:
    if isinstance(tile, InferenceTile):
        return _inference_states(tile, times, seed, index)
    return _training_states(tile, times)
