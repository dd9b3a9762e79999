"""diagnose: each finding appears when its cause is there and not otherwise."""

from __future__ import annotations

import io

import torch

from anatile.analysis import Finding, diagnose
from anatile.config import InferenceRPUConfig, IOParameters
from anatile.config.parameters import NoiseManagementType
from anatile.inference import PCMLikeNoiseModel, SinglePairConductanceConverter
from anatile.nn import convert_to_analog
from anatile.tiles import InferenceTile


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def _inference(cfg: InferenceRPUConfig, weights: torch.Tensor) -> InferenceTile:
    tile = InferenceTile(weights.shape[0], weights.shape[1], rpu_config=cfg, seed=0)
    tile.set_weights(weights)
    return tile


def _cfg(omega: float = 1.0) -> InferenceRPUConfig:
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = omega
    return cfg


def test_conductances_pinned_at_the_floor() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(32, 64, generator=gen)
    floor = _inference(_cfg(), w)
    floor.program_weights()
    findings = diagnose(floor)
    pinned = [f for f in findings if f.code == "pinned_at_g_min"]
    assert pinned and 0.01 < pinned[0].value < 1.0 and "g_min" in pinned[0].fix
    # with g_min > 0 the logical zero sits above the floor: nothing is clipped
    cfg = _cfg()
    cfg.noise_model = PCMLikeNoiseModel(g_converter=SinglePairConductanceConverter(g_min=1.0))
    lifted = _inference(cfg, w)
    lifted.program_weights()
    assert "pinned_at_g_min" not in _codes(diagnose(lifted))


def test_alpha_and_missing_compensation() -> None:
    w = torch.randn(16, 32, generator=torch.Generator().manual_seed(1))
    tile = _inference(_cfg(), w)
    tile.drift_weights(1.0)
    assert "alpha_far_from_1" not in _codes(diagnose(tile))
    tile.drift_weights(365 * 86400.0)
    far = [f for f in diagnose(tile) if f.code == "alpha_far_from_1"]
    assert far and far[0].value > 1.25 and far[0].severity == "info"
    cfg = _cfg()
    cfg.drift_compensation = None
    bare = _inference(cfg, w)
    bare.drift_weights(365 * 86400.0)
    missing = [f for f in diagnose(bare) if f.code == "no_drift_compensation"]
    assert missing and missing[0].value < 0.8 and "GlobalDriftCompensation" in missing[0].fix


def test_small_weights_without_scaling() -> None:
    w = 0.05 * torch.randn(8, 16, generator=torch.Generator().manual_seed(2))
    assert "weights_use_little_range" in _codes(diagnose(_inference(_cfg(0.0), w)))
    assert "weights_use_little_range" not in _codes(diagnose(_inference(_cfg(1.0), w)))


def test_clipped_inputs_and_outputs_need_inputs_and_leave_the_model_alone() -> None:
    cfg = _cfg()
    cfg.forward = IOParameters(noise_management=NoiseManagementType.NONE)
    linear = torch.nn.Linear(256, 8)
    torch.nn.init.constant_(linear.weight, 0.5)
    net = torch.nn.Sequential(linear)
    model = convert_to_analog(net, cfg, seed=0).eval()
    x = 2.0 * torch.rand(20, 256) + 0.5
    assert not _codes(diagnose(model)) & {"inputs_clipped_at_dac", "outputs_clipped_at_adc"}
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    findings = diagnose(model, x)
    after = io.BytesIO()
    torch.save(model.state_dict(), after)
    assert buf.getvalue() == after.getvalue()
    codes = _codes(findings)
    assert {"inputs_clipped_at_dac", "outputs_clipped_at_adc"} <= codes
    adc = next(f for f in findings if f.code == "outputs_clipped_at_adc")
    # named as the ModelInspector names the tile; the module path kept for code
    assert adc.where == "0" and adc.path == "0.tile_array.tiles.0"
    assert adc.value > 0.5 and "out_bound" in adc.fix
    assert adc.to_row()["path"] == "0.tile_array.tiles.0"
    # the same model on small inputs clips nothing
    quiet = diagnose(model, 0.01 * torch.rand(20, 256))
    assert not _codes(quiet) & {"inputs_clipped_at_dac", "outputs_clipped_at_adc"}
    assert all(set(f.to_row()) >= {"severity", "message", "fix"} for f in findings)


def test_tiles_of_a_split_layer_are_named_by_grid_position() -> None:
    cfg = _cfg(0.0)
    cfg.mapping.max_input_size = 16
    net = torch.nn.Sequential(torch.nn.Linear(40, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    model = convert_to_analog(net, cfg, seed=0)
    findings = [f for f in diagnose(model) if f.code == "not_programmed"]
    assert [f.where for f in findings] == ["0[0,0]", "0[0,1]", "0[0,2]", "2"]
    assert [f.path for f in findings] == ["0.tile_array.tiles.0", "0.tile_array.tiles.1",
                                          "0.tile_array.tiles.2", "2.tile_array.tiles.0"]
