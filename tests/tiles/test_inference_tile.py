"""InferenceTile: program once, drift repeatably, compensate, events, persistence."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from anatile.config import InferenceRPUConfig, IOParameters, RPUConfig
from anatile.inference import (
    DualPairConductanceConverter,
    PCMLikeNoiseModel,
    PerColumnDriftCompensation,
    SingleDeviceConductanceConverter,
)
from anatile.tiles import InferenceTile, TileEvent


def config(perfect: bool = True, comp: object = "global", **noise: float) -> InferenceRPUConfig:
    cfg = InferenceRPUConfig(noise_model=PCMLikeNoiseModel(**noise))  # type: ignore[arg-type]
    if perfect:
        cfg.forward = IOParameters(is_perfect=True)
    if comp is None:
        cfg.drift_compensation = None
    elif comp == "per_column":
        cfg.drift_compensation = PerColumnDriftCompensation()
    return cfg


QUIET = {"prog_noise_scale": 0.0, "read_noise_scale": 0.0}


def make_tile(cfg: InferenceRPUConfig, out: int = 6, inp: int = 10, seed: int = 0, **kw):
    tile = InferenceTile(out, inp, cfg, seed=seed, **kw)
    w = torch.randn(out, inp, generator=torch.Generator().manual_seed(seed))
    tile.set_weights(w)
    return tile, w


def test_rejects_training_config() -> None:
    with pytest.raises(TypeError, match="rpu_config"):
        InferenceTile(2, 3, RPUConfig())  # type: ignore[arg-type]


def test_zero_noise_programming_keeps_reference() -> None:
    tile, w = make_tile(config(drift_scale=0.0, **QUIET))
    tile.program_weights()
    torch.testing.assert_close(tile.get_weights()[0], w)
    tile.drift_weights(3.15e7)
    torch.testing.assert_close(tile.get_weights()[0], w)
    torch.testing.assert_close(tile.alpha, torch.ones(1))


def test_programming_noise_and_nu_drawn_once() -> None:
    tile, w = make_tile(config(read_noise_scale=0.0))
    tile.program_weights()
    programmed = tile.get_weights()[0]
    nu = tile.drift_nu.clone()
    assert not torch.allclose(programmed, w)
    tile.drift_weights(86400.0)
    day = tile.get_weights()[0]
    tile.drift_weights(3600.0)
    tile.drift_weights(86400.0)  # back to the same time: same devices, same result
    torch.testing.assert_close(tile.get_weights()[0], day)
    assert torch.equal(tile.drift_nu, nu)
    assert tile.t_inference == 86400.0


def test_drift_matches_closed_form_and_compensation_restores_output() -> None:
    tile, w = make_tile(config(**QUIET))
    tile.program_weights()
    tile.drift_nu.fill_(0.05)
    t = 3.15e7
    factor = ((t + 20.0) / 20.0) ** -0.05
    tile.drift_weights(t)
    torch.testing.assert_close(tile.get_weights()[0], w * factor)
    torch.testing.assert_close(tile.alpha, torch.full((1,), 1 / factor))
    x = torch.randn(5, 10, generator=torch.Generator().manual_seed(1))
    tile.eval()
    torch.testing.assert_close(tile(x), x @ w.T)  # compensated output = undrifted output
    tile.train()
    torch.testing.assert_close(tile(x), x @ (w * factor).T)  # alpha only in eval mode


def test_compensation_restores_mean_output_magnitude_with_noise() -> None:
    tile, w = make_tile(config(perfect=False), out=64, inp=64)
    tile.eval()
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(2))
    ideal = (x @ w.T).abs().mean()
    tile.program_weights()
    tile.drift_weights(3.15e7)
    with torch.no_grad():
        compensated = tile(x).abs().mean()
    assert abs(float(compensated / ideal) - 1) < 0.1
    assert float(tile.alpha) > 1.3


def test_per_column_alpha() -> None:
    tile, w = make_tile(config(comp="per_column", **QUIET))
    tile.program_weights()
    tile.drift_nu.copy_(torch.linspace(0.02, 0.1, 6)[None, :, None].expand_as(tile.drift_nu))
    tile.drift_weights(86400.0)
    assert tile.alpha.shape == (6,)
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(3))
    tile.eval()
    torch.testing.assert_close(tile(x), x @ w.T)


def test_no_compensation_keeps_alpha_one() -> None:
    tile, _ = make_tile(config(comp=None))
    tile.drift_weights(86400.0)  # programs first
    assert tile.is_programmed()
    torch.testing.assert_close(tile.alpha, torch.ones(1))


def test_events() -> None:
    tile, _ = make_tile(config())
    seen: list[TileEvent] = []
    tile.events.subscribe(seen.append)
    tile.program_weights()
    tile.drift_weights(60.0)
    kinds = [e.kind for e in seen]
    assert kinds == ["programmed_noise", "drifted"]
    assert seen[1].data["t_inference"] == 60.0
    torch.testing.assert_close(seen[1].data["alpha"], tile.alpha)
    assert seen[0].source is tile and seen[0].data["weights"].shape == (6, 10)


def test_bad_time_leaves_tile_unchanged() -> None:
    tile, _ = make_tile(config())
    tile.drift_weights(10.0)
    before = copy.deepcopy(tile.state_dict())
    for bad in (-1.0, float("nan"), float("inf"), "1h"):
        with pytest.raises(ValueError, match="t_inference"):
            tile.drift_weights(bad)  # type: ignore[arg-type]
    after = tile.state_dict()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, after[key]), key
    with pytest.raises(TypeError, match="noise_model"):
        tile.program_weights(noise_model="pcm")  # type: ignore[arg-type]


def test_noise_model_override_and_converters() -> None:
    tile, w = make_tile(config())
    model = PCMLikeNoiseModel(g_converter=DualPairConductanceConverter([1.0, 2.0]), **QUIET)
    tile.program_weights(noise_model=model)
    assert tile.g_target is not None and tile.g_target.shape == (4, 6, 10)
    state = tile.device_state()
    assert [d.name for d in state.devices] == ["g+[0]", "g-[0]", "g+[1]", "g-[1]"]
    torch.testing.assert_close(tile.get_weights()[0], w)
    tile.program_weights(
        noise_model=PCMLikeNoiseModel(g_converter=SingleDeviceConductanceConverter(), **QUIET)
    )
    assert tile.device_state().devices[0].name == "g"
    torch.testing.assert_close(tile.get_weights()[0], w, rtol=1e-5, atol=1e-5)


def test_device_state_snapshot() -> None:
    tile, w = make_tile(config())
    empty = tile.device_state()
    assert not empty.programmed and empty.devices == [] and empty.t_inference is None
    tile.program_weights()
    tile.drift_weights(3600.0)
    state = tile.device_state()
    assert state.programmed and state.t_inference == 3600.0 and state.g_max == 25.0
    assert [d.name for d in state.devices] == ["g+", "g-"]
    for dev in state.devices:
        for t in (dev.target, dev.programmed, dev.drifted, dev.nu):
            assert t is not None and t.shape == (6, 10) and t.device.type == "cpu"
    # normalized units: without weight scaling (omega = 0, aihwkit's default) the array
    # holds the weights themselves
    torch.testing.assert_close(state.reference_weight, w)
    assert state.devices[0].drifted is not None
    assert float((state.devices[0].drifted - state.devices[0].programmed).mean()) < 0


def test_analog_bias_column() -> None:
    cfg = config(**QUIET)
    cfg.mapping.digital_bias = False
    tile = InferenceTile(3, 4, cfg, bias=True, seed=0)
    w, b = torch.randn(3, 4), torch.randn(3)
    tile.set_weights(w, b)
    tile.program_weights()
    assert tile.g_target is not None and tile.g_target.shape == (2, 3, 5)
    tile.drift_nu.fill_(0.05)  # uniform drift: global compensation is then exact
    tile.drift_weights(100.0)
    tile.eval()
    x = torch.randn(2, 4)
    torch.testing.assert_close(tile(x), x @ w.T + b)


def test_same_seed_same_chip() -> None:
    a, _ = make_tile(config(), seed=5)
    b, _ = make_tile(config(), seed=5)
    for tile in (a, b):
        tile.program_weights()
        tile.drift_weights(1000.0)
    assert torch.equal(a.analog_core.weight, b.analog_core.weight)
    gen = torch.Generator().manual_seed(9)
    a.program_weights(generator=gen)
    assert not torch.equal(a.g_programmed, b.g_programmed)


@pytest.mark.parametrize("how", ["deepcopy", "pickle", "state_dict"])
def test_persistence(how: str) -> None:
    tile, _ = make_tile(config(perfect=False))
    tile.program_weights()
    tile.drift_weights(3600.0)
    if how == "deepcopy":
        other = copy.deepcopy(tile)
    elif how == "pickle":
        other = pickle.loads(pickle.dumps(tile))
    else:
        other = InferenceTile(6, 10, config(perfect=False), seed=99)
        other.load_state_dict(tile.state_dict())
    for name in ("g_target", "g_programmed", "drift_nu", "g_drifted", "alpha", "drift_baseline"):
        assert torch.equal(getattr(other, name), getattr(tile, name)), name
    assert other.t_inference == 3600.0
    assert torch.equal(
        other.conversion_params["scale_ratio"], tile.conversion_params["scale_ratio"]
    )
    other.drift_weights(86400.0)  # keeps working from the restored programmed state
    tile.drift_weights(86400.0)
    torch.testing.assert_close(other.analog_core.weight, tile.analog_core.weight)
    assert "t_inference=86400s" in repr(other)


def test_set_weights_forgets_programming() -> None:
    tile, w = make_tile(config())
    tile.drift_weights(86400.0)
    assert float(tile.alpha) != 1.0
    with pytest.raises(ValueError, match="weight"):
        tile.set_weights(torch.ones(2, 2))  # wrong shape: nothing changes
    assert tile.is_programmed() and tile.t_inference == 86400.0
    tile.set_weights(w * 2)
    assert not tile.is_programmed() and tile.t_inference is None
    torch.testing.assert_close(tile.alpha, torch.ones(1))
    tile.set_weights(w, realistic=True)
    assert tile.is_programmed()


def test_effective_weights_are_what_the_eval_forward_applies() -> None:
    cfg = InferenceRPUConfig(forward=IOParameters(is_perfect=True))
    tile = InferenceTile(6, 10, cfg, seed=11)
    tile.set_weights(torch.randn(6, 10, generator=torch.Generator().manual_seed(2)) * 0.3)
    tile.eval()
    tile.program_weights()
    tile.drift_weights(86400.0)
    assert float(tile.alpha) > 1.0
    eff = tile.effective_weights(apply_weight_scaling=True)
    x = torch.eye(10)
    torch.testing.assert_close(tile(x).T, eff, rtol=1e-5, atol=1e-6)
    unscaled = tile.effective_weights()
    torch.testing.assert_close(unscaled * tile.get_mapping_scales().reshape(-1, 1), eff)
