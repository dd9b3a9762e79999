"""Construction: options, argument checks, the caller's configuration stays untouched."""

from __future__ import annotations

import copy

import pytest
import torch

from anatile.config import InferenceRPUConfig
from anatile.exceptions import ConfigError
from anatile.inference import (
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    SingleDeviceConductanceConverter,
    SinglePairConductanceConverter,
)
from anatile.wpo import WPOOptions, stop_criterion


def test_defaults_follow_the_spec():
    o = WPOOptions()
    assert (o.nbins, o.test_out_features, o.g_err, o.f_min, o.f_max) == (6, 20, 0.0, 0.1, 5.0)
    assert (o.strategy, o.popsize, o.maxiter, o.tol, o.atol) == ("best1bin", 100, 200, 0.0, 0.02)
    assert (o.mutation, o.recombination, o.polish, o.seed, o.init) == (
        0.1, 0.3, True, 100, "latinhypercube")
    assert (o.baseline_iterations, o.loss_margin, o.use_max_kw) == (100, 0.125, False)
    assert o.callback is stop_criterion
    assert o.use_batched


def test_unknown_kwargs_are_named(make_wpo):
    with pytest.raises(ConfigError, match=r"popsise.*bogus|bogus.*popsise"):
        make_wpo(popsise=10, bogus=1)


def test_reference_alias_and_bad_values():
    assert WPOOptions.from_kwargs(x_init="sobol").init == "sobol"
    with pytest.raises(ConfigError, match="mutation"):
        WPOOptions(mutation=2.5)
    with pytest.raises(ConfigError, match="strategy"):
        WPOOptions(strategy="best9bin")
    with pytest.raises(ConfigError, match="vectorized"):
        WPOOptions(vectorized=True, workers=2)
    assert not WPOOptions(workers=2).use_batched


def test_unsupported_baseline_is_a_type_error(make_wpo):
    with pytest.raises(TypeError, match="SingleDeviceConductanceConverter"):
        make_wpo(baseline=SingleDeviceConductanceConverter())
    for ok in (SinglePairConductanceConverter(), NPairConductanceConverter([1.0, 2.0]),
               CustomPairConductanceConverter([1.0], [[0.0, 25.0], [25.0, 0.0]])):
        make_wpo(baseline=ok)


def test_bad_arguments(make_wpo):
    with pytest.raises(ValueError, match="finite"):
        make_wpo(weights=torch.tensor([0.1, float("inf")]))
    with pytest.raises(ValueError, match="f_lst"):
        make_wpo(f_lst=[None, -1.0])
    with pytest.raises(ValueError, match="t_steps"):
        make_wpo(t_steps=[-1.0])
    with pytest.raises(TypeError, match="InferenceRPUConfig"):
        make_wpo(rpu_config=object())


def test_callers_rpu_config_is_never_modified(make_wpo):
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    cfg.mapping.learn_out_scaling = True
    before = copy.deepcopy(cfg)
    wpo = make_wpo(rpu_config=cfg, maxiter=1, popsize=2, baseline_iterations=2)
    # the search copy has learned output scales off, keeps the ω the user deploys (it
    # sets the signal of a noisy readout; aihwkit_objective searches at ω = 0) and reads
    # drift compensation noise-free
    assert wpo.search_rpu_config.mapping.weight_scaling_omega == 1.0
    assert not wpo.search_rpu_config.mapping.learn_out_scaling
    assert wpo.search_rpu_config.forward.is_perfect
    converter, _ = wpo.run_optimizer()
    assert cfg == before
    assert cfg.noise_model.g_converter is not converter
    # the optimizer's own copy keeps the caller's mapping and gets the optimized converter
    assert wpo.rpu_config.mapping == before.mapping
    assert isinstance(wpo.rpu_config.noise_model.g_converter, CustomPairConductanceConverter)


def test_test_layer_size_defaults_to_max_input_size():
    from anatile.wpo import WeightProgrammingOptimizer

    cfg = InferenceRPUConfig()
    wpo = WeightProgrammingOptimizer(torch.randn(100), [None, None], cfg, [1.0],
                                     DualPairConductanceConverter([1.0, 1.0]), compile=False)
    assert tuple(wpo.test_weights.shape) == (20, cfg.mapping.max_input_size)
    assert len(wpo.generate_hop_bounds()) == 21
