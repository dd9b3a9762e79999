"""Findings in words, with numbers and the setting that fixes each.

Each check reads the state of the tiles as they are (and, given inputs, what one eval pass
of those inputs does at the DAC and ADC); nothing is changed. Thresholds are module
constants so views can show them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from anatile.analysis._layers import analog_layers, detached_copy, layer_tiles
from anatile.analysis.tiles import tile_labels
from anatile.config.devices import ConstantStepDevice
from anatile.config.parameters import NoiseManagementType
from anatile.functional.io_model import analog_mvm_with_stats, noise_management_scale
from anatile.inference.converter import SinglePairConductanceConverter
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["SEVERITIES", "Finding", "diagnose"]

SEVERITIES: tuple[str, ...] = ("info", "warning", "error")
"""Severities, mildest first."""

AT_BOUND_WARN = 0.01
"""Fraction of weights at or beyond their device bounds that gives a warning (10× an error)."""
PINNED_WARN = 0.01
"""Fraction of conducting devices programmed to the 0 µS floor, or targets at g_max."""
ALPHA_WARN = 0.25
"""|alpha − 1| above which the drift compensation is reported."""
RANGE_WARN = 0.25
"""max|array weight| below which the weights use too little of the normalized range."""
CLIP_WARN = 0.01
"""Fraction of inputs or outputs clipped that gives a warning."""


@dataclass(frozen=True)
class Finding:
    """One finding of :func:`diagnose`.

    Attributes:
        severity: ``"info"``, ``"warning"`` or ``"error"``.
        code: a stable identifier (``"omega_above_device_bound"``...).
        where: the tile's name as users see it: its layer's name, plus the ``[row,col]``
            grid position when the layer spans several tiles (``"0[0,1]"``, as the
            ``ModelInspector`` table names it; ``""`` for a bare tile).
        message: what is wrong, in words, with the numbers.
        fix: the setting that fixes it, as code a user can type.
        value: the number the finding is about (a fraction, a factor...).
        path: the tile's module path in the model (``"0.tile_array.tiles.1"``), for code.

    Example:
        >>> from anatile.config import RPUConfig
        >>> from anatile.tiles import TileWithPeriphery
        >>> cfg = RPUConfig()
        >>> cfg.mapping.weight_scaling_omega = 1.0
        >>> tile = TileWithPeriphery(4, 8, cfg, seed=0)
        >>> tile.set_weights(torch.randn(4, 8))
        >>> finding = diagnose(tile)[0]
        >>> isinstance(finding, Finding), finding.severity in SEVERITIES
        (True, True)
    """

    severity: str
    code: str
    where: str
    message: str
    fix: str
    value: float
    path: str = ""

    def to_row(self) -> dict[str, Any]:
        """A dict for tables and CSV."""
        return {"severity": self.severity, "where": self.where, "code": self.code,
                "message": self.message, "fix": self.fix, "value": self.value, "path": self.path}


def _device_findings(name: str, tile: TileWithPeriphery) -> list[Finding]:
    params = tile.analog_core.device_parameters
    device = tile.rpu_config.device
    if params is None or not isinstance(device, ConstantStepDevice):
        return []
    findings = []
    target = tile.reference_weight
    target = tile.analog_core.weight if target is None else target
    beyond = float(((target > params.w_max) | (target < params.w_min)).double().mean())
    omega = tile.rpu_config.mapping.weight_scaling_omega
    hold = min(device.w_max, -device.w_min)
    safe = round(hold * (1.0 - 2.0 * max(device.w_max_dtod, device.w_min_dtod)), 2)
    safe = max(safe, round(0.5 * hold, 2))
    if omega > hold:
        findings.append(Finding(
            "error", "omega_above_device_bound", name,
            f"weight_scaling_omega ω = {omega:g} maps max|W| to {omega:g}, but the device "
            f"holds at most ±{hold:g} (±{device.w_max_dtod:.0%} from device to device): "
            f"{beyond:.1%} of the target weights lie beyond their device's bound and "
            "saturate there.",
            f"rpu_config.mapping.weight_scaling_omega = {safe:g}  # then tile.remap_weights"
            f"({safe:g}) or set the weights again", omega))
    elif beyond > AT_BOUND_WARN:
        findings.append(Finding(
            "error" if beyond > 10 * AT_BOUND_WARN else "warning", "weights_beyond_bounds",
            name, f"{beyond:.1%} of the target weights lie beyond their device's bounds "
            f"(mean ±{hold:g}, ±{device.w_max_dtod:.0%} from device to device).",
            f"tile.remap_weights({safe:g})", beyond))
    w = tile.analog_core.weight
    tol = device.dw_min
    at = float(((w >= params.w_max - tol) | (w <= params.w_min + tol)).double().mean())
    if at > AT_BOUND_WARN:
        findings.append(Finding(
            "error" if at > 10 * AT_BOUND_WARN else "warning", "weights_at_device_bounds",
            name, f"{at:.1%} of the array weights sit at (or beyond) their device bound "
            "(within one step dw_min): updates in that direction are lost.",
            f"rpu_config.mapping.weight_scaling_omega = {safe:g}", at))
    return findings


def _inference_findings(name: str, tile: InferenceTile) -> list[Finding]:
    findings = []
    if not tile.is_programmed():
        return [Finding("info", "not_programmed", name,
                        "the tile is not programmed: it computes with exact weights.",
                        "tile.program_weights(); tile.drift_weights(t)", 0.0)]
    assert tile.g_target is not None and tile.g_programmed is not None
    converter = tile.noise_model.g_converter
    conducting = tile.g_target > converter.g_min
    at_floor = tile.g_programmed <= 0.0
    n_cond = int(conducting.sum())
    floor_cond = float((at_floor & conducting).sum()) / n_cond if n_cond else 0.0
    floor_all = float(at_floor.double().mean())
    fix = (f"a converter with g_min > 0, e.g. {type(converter).__name__}"
           f"(g_max={converter.g_max:g}, g_min={0.04 * converter.g_max:.2g})"
           if isinstance(converter, SinglePairConductanceConverter)
           else f"g_min > 0 on the converter (now {converter.g_min:g} µS)")
    if floor_cond > PINNED_WARN:
        findings.append(Finding(
            "warning", "pinned_at_g_min", name,
            f"{floor_cond:.1%} of the devices meant to conduct were programmed to 0 µS: "
            "programming noise around small targets is clipped at the floor, which "
            "biases small weights.", fix, floor_cond))
    elif floor_all > PINNED_WARN:
        findings.append(Finding(
            "info", "pinned_at_g_min", name,
            f"{floor_all:.1%} of the devices sit at the 0 µS floor after programming "
            f"(g_min = {converter.g_min:g} µS): the programming noise of devices at the "
            "logical zero is clipped there, so it only adds conductance and shrinks every "
            "weight slightly towards zero.", fix, floor_all))
    at_max = float((tile.g_target >= converter.g_max * (1 - 1e-6)).double().mean())
    n_weights = tile.g_target[0].numel()
    if at_max > PINNED_WARN:
        findings.append(Finding(
            "warning", "pinned_at_g_max", name,
            f"{at_max:.1%} of the devices are programmed to g_max = {converter.g_max:g} µS "
            f"({n_weights} weights): the converter's range is full for many weights, so "
            "they cannot be told apart.",
            "weights with fewer outliers (clip or retrain), or a converter whose range "
            "covers them (NPairConductanceConverter / WeightProgrammingOptimizer)", at_max))
    comp = tile.rpu_config.drift_compensation
    if tile.t_inference is not None:
        alpha = tile.alpha.detach().double()
        worst = float(alpha[(alpha - 1).abs().argmax()])
        t = tile.t_inference
        if comp is None:
            ref = tile.reference_weight
            if ref is not None:
                w = tile.analog_core.weight.double()
                shrink = float((w * ref).sum() / (ref.double().square().sum()).clamp(min=1e-30))
                if abs(1 - shrink) > ALPHA_WARN / 2:
                    findings.append(Finding(
                        "warning", "no_drift_compensation", name,
                        f"drifted to t = {t:g} s without drift compensation: the weights "
                        f"shrank to {shrink:.2f} of their targets.",
                        "rpu_config.drift_compensation = GlobalDriftCompensation()", shrink))
        elif abs(worst - 1) > ALPHA_WARN:
            if worst < 1:
                message = (f"drift compensation alpha = {worst:.3g} at t = {t:g} s is below 1, "
                           "which drift cannot cause (conductances only decay): the "
                           "compensation readout is dominated by IO noise.")
                fix = "rpu_config.mapping.weight_scaling_omega = 1.0  # full-range weights"
            else:
                message = (f"drift compensation alpha = {worst:.3g} at t = {t:g} s: the "
                           f"outputs had shrunk to {1 / worst:.0%} and are scaled back up, "
                           "amplifying output noise by the same factor.")
                fix = ("a programming strategy with less drift (WeightProgrammingOptimizer) "
                       "or rpu_config.drift_compensation = PerColumnDriftCompensation()")
            severity = "warning" if worst < 1 else "info"  # > 1 is what drift does
            findings.append(Finding(severity, "alpha_far_from_1", name, message, fix, worst))
    return findings


def _range_findings(name: str, tile: TileWithPeriphery) -> list[Finding]:
    io = tile.rpu_config.forward
    if io.is_perfect:
        return []
    peak = float(tile.analog_core.weight.abs().max())
    if 0 < peak < RANGE_WARN:
        return [Finding(
            "warning", "weights_use_little_range", name,
            f"max|W| on the array is {peak:.3g} of the normalized range (ω = "
            f"{tile.rpu_config.mapping.weight_scaling_omega:g}): the output noise "
            f"(out_noise = {io.out_noise:g}) and the ADC steps are large against the signal.",
            "rpu_config.mapping.weight_scaling_omega = 1.0", peak)]
    return []


def _clip_findings(name: str, tile: TileWithPeriphery, raw: Tensor | None,
                   rows: Tensor | None) -> list[Finding]:
    findings = []
    if raw is not None and tile.input_range is not None:
        r = float(tile.input_range)
        frac = float((raw.abs() >= r).double().mean())
        if frac > CLIP_WARN:
            need = float(torch.quantile(raw.abs().flatten().double()[:1_000_000], 0.999))
            findings.append(Finding(
                "warning", "inputs_clipped_by_input_range", name,
                f"the input range r = {r:.3g} clips {frac:.1%} of the inputs.",
                f"tile.set_input_range({need:.3g})", frac))
    if rows is None:
        return findings
    io = tile.rpu_config.forward
    if io.is_perfect:
        return findings
    scale = noise_management_scale(rows, io)
    dac = float(((rows / scale).abs() > io.inp_bound).double().mean())
    if dac > CLIP_WARN:
        findings.append(Finding(
            "warning", "inputs_clipped_at_dac", name,
            f"{dac:.1%} of the inputs exceed the DAC bound inp_bound = {io.inp_bound:g} "
            f"(noise management {io.noise_management.value}) and are clipped.",
            "rpu_config.forward.noise_management = NoiseManagementType.ABS_MAX"
            if io.noise_management == NoiseManagementType.NONE
            else f"rpu_config.forward.inp_bound = {float((rows / scale).abs().max()):.3g}",
            dac))
    stats = analog_mvm_with_stats(rows, tile.analog_core.weight, io,
                                  torch.Generator(device=rows.device).manual_seed(0))
    adc = float(stats.clipped_fraction)
    if adc > CLIP_WARN:
        ideal = (rows / scale) @ tile.analog_core.weight.T
        need = float(torch.quantile(ideal.abs().flatten().double()[:1_000_000], 0.999))
        findings.append(Finding(
            "warning", "outputs_clipped_at_adc", name,
            f"{adc:.1%} of the outputs saturate the ADC at ±out_bound = {io.out_bound:g} "
            "(bound management then re-reads them with smaller inputs, losing resolution).",
            f"rpu_config.forward.out_bound = {max(need, io.out_bound) * 1.1:.3g}", adc))
    return findings


def _capture(model: nn.Module, inputs: Tensor, tiles: list[str]
             ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Each tile's raw input and the rows its crossbar receives, from one eval pass of a
    private copy (the copy's cores are wrapped; the model is untouched)."""
    work = detached_copy(model).eval()
    mods = dict(work.named_modules())
    raw: dict[str, Tensor] = {}
    rows: dict[str, Tensor] = {}
    handles = []
    for name in tiles:
        tile = mods[name]
        assert isinstance(tile, TileWithPeriphery)
        handles.append(tile.register_forward_pre_hook(
            lambda mod, args, n=name: raw.__setitem__(n, args[0].detach())))
        core = tile.analog_core
        plain = core.forward

        def recording(x: Tensor, *args: Any, _n: str = name, _f: Any = plain,
                      **kwargs: Any) -> Tensor:
            rows[_n] = torch.cat([rows[_n], x.detach()]) if _n in rows else x.detach()
            return _f(x, *args, **kwargs)

        core.forward = recording  # type: ignore[method-assign]
    try:
        with torch.no_grad():
            work(inputs)
    finally:
        for h in handles:
            h.remove()
    return raw, rows


@torch.no_grad()
def diagnose(tile_or_model: nn.Module, inputs: Tensor | None = None) -> list[Finding]:
    """Check a tile or every tile of a model and say what is wrong and how to fix it.

    Checks: target weights beyond, or array weights at, the bounds of a pulsed device and
    ω above what it can hold; conductances pinned at the 0 µS floor or at ``g_max``; drift
    compensation ``alpha`` far from 1 (or drift without compensation); weights using little
    of the normalized range; and, given ``inputs``, inputs clipped by the input range or the
    DAC and outputs saturating the ADC.

    Args:
        tile_or_model: a tile, an analog layer or a model.
        inputs: a batch for it (optional), for the clipping checks.

    Returns:
        Findings, most severe first (empty when nothing was found).

    Raises:
        TypeError: on a non-module or non-tensor inputs.
        TileError: if there is no analog tile.

    Example:
        >>> import torch
        >>> from anatile.config import RPUConfig
        >>> from anatile.tiles import TileWithPeriphery
        >>> cfg = RPUConfig()
        >>> cfg.mapping.weight_scaling_omega = 1.0
        >>> tile = TileWithPeriphery(4, 8, cfg, seed=0)
        >>> tile.set_weights(torch.randn(4, 8))
        >>> diagnose(tile)[0].code
        'omega_above_device_bound'
    """
    layers = analog_layers(tile_or_model)
    if inputs is not None and (not isinstance(inputs, Tensor) or not inputs.is_floating_point()):
        raise TypeError(f"inputs: expected a floating-point torch.Tensor or None, got "
                        f"{type(inputs).__name__}")
    names = {id(m): n for n, m in tile_or_model.named_modules()}
    labels = tile_labels(tile_or_model)
    tiles = [(names[id(t)], t) for _, layer in layers for _, t in layer_tiles(layer)]
    raw: dict[str, Tensor] = {}
    rows: dict[str, Tensor] = {}
    if inputs is not None:
        raw, rows = _capture(tile_or_model, inputs, [n for n, _ in tiles])
    findings: list[Finding] = []
    for name, tile in tiles:
        findings += _device_findings(name, tile)
        if isinstance(tile, InferenceTile):
            findings += _inference_findings(name, tile)
        findings += _range_findings(name, tile)
        findings += _clip_findings(name, tile, raw.get(name), rows.get(name))
    # named as users see the tiles, the module path kept for code
    findings = [replace(f, where=labels.get(f.where, f.where), path=f.where)
                for f in findings]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: -order[f.severity])
