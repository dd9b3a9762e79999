"""Noise models and drift compensation: weight-level behaviour, validation, serialization."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch

from anatile.config import InferenceRPUConfig
from anatile.exceptions import ConfigError
from anatile.functional.pcm import pcm_prog_noise_std
from anatile.inference import (
    CustomDriftPCMLikeNoiseModel,
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    GlobalDriftCompensation,
    PCMLikeNoiseModel,
    PerColumnDriftCompensation,
    SinglePairConductanceConverter,
)

DRIFT_TABLE = {"g_lst": [0.0, 25.0], "nu_mean_lst": [0.1, 0.02], "nu_std_lst": [0.0, 0.0]}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def quiet(**kw: object) -> PCMLikeNoiseModel:
    args = {"prog_noise_scale": 0.0, "read_noise_scale": 0.0, "drift_scale": 0.0}
    args.update(kw)
    return PCMLikeNoiseModel(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "conv", [SinglePairConductanceConverter(), DualPairConductanceConverter([1.0, 3.0])]
)
def test_all_scales_zero_is_identity(conv) -> None:
    w = torch.randn(8, 16, generator=gen(1), dtype=torch.float64)
    model = quiet(g_converter=conv)
    for t in (0.0, 3600.0, 3.15e7):
        torch.testing.assert_close(model.apply_noise(w, t, gen(2)), w)
    w_prog, nus = model.apply_programming_noise(w, gen(3))
    torch.testing.assert_close(w_prog, w)
    assert len(nus) == conv.n_devices and all(torch.all(n == 0) for n in nus)


def test_programming_noise_in_weight_units() -> None:
    # every weight is +0.5 of max|W| = 1 → g+ = 12.5 µS, g- = 0 (clipped noise, mean > 0)
    n = 100_000
    w = torch.full((n,), 0.5, dtype=torch.float64)
    w[0] = 1.0
    model = PCMLikeNoiseModel()
    state = model.program(w, gen(4))
    g = state.g_prog[0][1:]
    sigma = float(pcm_prog_noise_std(torch.tensor(12.5), 25.0))
    assert abs(float(g.mean()) - 12.5) < 4 * sigma / math.sqrt(n)
    assert abs(float(g.std()) / sigma - 1) < 4 / math.sqrt(2 * n)
    # weights = (g+ - g-) / 25
    torch.testing.assert_close(state.weights, (state.g_prog[0] - state.g_prog[1]) / 25.0)


def test_read_is_repeatable_and_does_not_change_state() -> None:
    model = PCMLikeNoiseModel(read_noise_scale=0.0)
    w = torch.randn(5, 6, generator=gen(5))
    state = model.program(w, gen(6))
    before = [g.clone() for g in state.g_prog]
    a = model.read(state, 86400.0, gen(7)).weights
    b = model.read(state, 86400.0, gen(8)).weights
    torch.testing.assert_close(a, b)
    for g0, g1 in zip(before, state.g_prog, strict=True):
        assert torch.equal(g0, g1)


def test_drift_with_fixed_nu_matches_closed_form() -> None:
    model = PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0)
    w = torch.randn(4, 7, generator=gen(9), dtype=torch.float64)
    state = model.program(w, gen(10))
    state.nu = torch.full_like(state.g_prog, 0.06)
    for t in (1.0, 3600.0, 3.15e7):
        want = w * ((t + 20.0) / 20.0) ** -0.06
        torch.testing.assert_close(model.read(state, t).weights, want)
        # aihwkit-style entry point, same physics
        torch.testing.assert_close(model.apply_drift_noise(w, list(state.nu), t), want)


def test_drift_shrinks_weights_on_average() -> None:
    model = PCMLikeNoiseModel()
    w = torch.randn(64, 64, generator=gen(11))
    state = model.program(w, gen(12))
    ratio = model.read(state, 3.15e7, gen(13)).weights.abs().mean() / state.weights.abs().mean()
    assert 0.2 < float(ratio) < 0.8  # ν ≈ 0.05..0.1 over 6 decades of time


def test_custom_drift_model_interpolates_statistics() -> None:
    model = CustomDriftPCMLikeNoiseModel(DRIFT_TABLE)
    g = torch.tensor([0.0, 12.5, 25.0])
    nu = model.generate_drift_coefficients(g, gen(14))
    torch.testing.assert_close(nu, torch.tensor([0.1, 0.06, 0.02]))
    table = dict(DRIFT_TABLE, nu_std_lst=[0.01, 0.01])
    n = 100_000
    nu = CustomDriftPCMLikeNoiseModel(table, drift_scale=2.0).generate_drift_coefficients(
        torch.full((n,), 12.5), gen(15)
    )
    assert abs(float(nu.mean()) - 0.12) < 4 * 0.02 / math.sqrt(n)
    assert abs(float(nu.std()) / 0.02 - 1) < 4 / math.sqrt(2 * n)


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"g_max": 0.0}, "g_max"),
        ({"t_read": 0.0}, "t_read"),
        ({"t_0": -1.0}, "t_0"),
        ({"prog_noise_scale": -1.0}, "prog_noise_scale"),
        ({"read_noise_scale": float("nan")}, "read_noise_scale"),
        ({"drift_scale": -0.1}, "drift_scale"),
        ({"prog_coeff": []}, "prog_coeff"),
        ({"prog_coeff_g_max_reference": 0.0}, "prog_coeff_g_max_reference"),
    ],
)
def test_noise_model_validation(kwargs: dict, arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        PCMLikeNoiseModel(**kwargs)


def test_noise_model_rejects_non_converter() -> None:
    with pytest.raises(TypeError, match="g_converter"):
        PCMLikeNoiseModel(g_converter="single")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "table",
    [
        {"g_lst": [0.0, 25.0], "nu_mean_lst": [0.1, 0.02]},
        {"g_lst": [0.0], "nu_mean_lst": [0.1], "nu_std_lst": [0.0]},
        {"g_lst": [0.0, 25.0], "nu_mean_lst": [0.1, 0.02, 0.0], "nu_std_lst": [0.0, 0.0]},
        {"g_lst": [25.0, 0.0], "nu_mean_lst": [0.1, 0.02], "nu_std_lst": [0.0, 0.0]},
        {"g_lst": [5.0, 25.0], "nu_mean_lst": [0.1, 0.02], "nu_std_lst": [0.0, 0.0]},
        {"g_lst": [0.0, 20.0], "nu_mean_lst": [0.1, 0.02], "nu_std_lst": [0.0, 0.0]},
        {"g_lst": [0.0, 25.0], "nu_mean_lst": [0.1, -0.02], "nu_std_lst": [0.0, 0.0]},
        [0.0, 25.0],
    ],
)
def test_custom_drift_validation(table) -> None:
    with pytest.raises(ValueError, match="custom_drift_model"):
        CustomDriftPCMLikeNoiseModel(table)


def test_negative_time_raises() -> None:
    model = PCMLikeNoiseModel()
    with pytest.raises(ValueError, match="t_inference"):
        model.apply_noise(torch.ones(3), -1.0)


def test_global_compensation_restores_mean_output_magnitude() -> None:
    comp = GlobalDriftCompensation()
    w = torch.randn(10, 20, generator=gen(16))
    x = comp.get_readout_tensor(20)
    assert torch.equal(x, torch.eye(20))
    base = comp.init_baseline(x @ w.T)
    drifted = w * torch.rand(10, 20, generator=gen(17)) * 0.7
    alpha = comp.apply(x @ drifted.T, base)
    assert alpha.shape == ()
    restored = (x @ drifted.T) * alpha
    torch.testing.assert_close(restored.abs().mean(), (x @ w.T).abs().mean())


def test_per_column_compensation_restores_each_column() -> None:
    comp = PerColumnDriftCompensation()
    w = torch.randn(10, 20, generator=gen(18))
    x = comp.get_readout_tensor(20)
    base = comp.init_baseline(x @ w.T)
    factors = torch.linspace(0.3, 0.9, 10)[:, None]
    alpha = comp.apply(x @ (w * factors).T, base)
    assert alpha.shape == (10,)
    torch.testing.assert_close(alpha, 1 / factors[:, 0])


def test_compensation_of_a_dead_array_is_one() -> None:
    comp = PerColumnDriftCompensation()
    base = comp.init_baseline(torch.ones(4, 3))
    assert torch.equal(comp.apply(torch.zeros(4, 3), base), torch.ones(3))
    with pytest.raises(ValueError, match="in_size"):
        comp.get_readout_tensor(0)


def test_inference_rpu_config_json_round_trip() -> None:
    conv = CustomPairConductanceConverter([1.0], [[0, 0, 0, 12.5, 25], [25, 12.5, 0, 0, 0]])
    for noise in (
        PCMLikeNoiseModel(),
        PCMLikeNoiseModel(g_converter=conv, drift_scale=0.5),
        CustomDriftPCMLikeNoiseModel(DRIFT_TABLE, g_converter=DualPairConductanceConverter([1, 2])),
    ):
        for comp in (GlobalDriftCompensation(), PerColumnDriftCompensation(), None):
            cfg = InferenceRPUConfig(noise_model=noise, drift_compensation=comp)
            back = InferenceRPUConfig.from_json(cfg.to_json())
            assert back == cfg
            assert back.noise_model == noise and back.drift_compensation == comp
            assert pickle.loads(pickle.dumps(cfg)) == cfg
            assert copy.deepcopy(cfg) == cfg


def test_from_dict_rejects_unknown_keys() -> None:
    data = PCMLikeNoiseModel().to_dict()
    data["colour"] = "red"
    with pytest.raises(ConfigError, match="colour"):
        PCMLikeNoiseModel.from_dict(data)


def test_repr_is_readable() -> None:
    text = repr(PCMLikeNoiseModel(drift_scale=0.5))
    assert text.startswith("PCMLikeNoiseModel(") and "drift_scale=0.5" in text
    assert "SinglePairConductanceConverter(g_max=25.0" in text
    assert repr(GlobalDriftCompensation()) == "GlobalDriftCompensation()"


def test_replace_returns_modified_copy() -> None:
    model = PCMLikeNoiseModel(drift_scale=0.5)
    other = model.replace(
        g_converter=DualPairConductanceConverter([1.0, 2.0], g_max=30.0), g_max=None
    )
    assert other.drift_scale == 0.5 and other.g_max == 30.0 and model.g_max == 25.0
    with pytest.raises(TypeError, match="colour"):
        model.replace(colour="red")
    with pytest.raises(ValueError, match="drift_scale"):
        model.replace(drift_scale=-1.0)


def test_in_place_edits_are_validated_by_the_config() -> None:
    cfg = InferenceRPUConfig()
    cfg.noise_model.drift_scale = -1.0  # notebook-style tweak
    with pytest.raises(ConfigError, match="drift_scale"):
        cfg.validate()
    cfg = InferenceRPUConfig()
    cfg.noise_model.g_converter.g_min = 30.0
    with pytest.raises(ConfigError, match="g_min"):
        cfg.validate()
