"""The two loss paths measure the same thing: batched whole-population vs a tile per candidate."""

from __future__ import annotations

import dataclasses
import math
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from anatile.config import InferenceRPUConfig
from anatile.inference import PCMLikeNoiseModel, PerColumnDriftCompensation
from anatile.tiles import InferenceTile
from anatile.wpo import loss_fxn, loss_rpu_config, loss_weights


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def _paths(wpo, x, n_tile=24, n_batch=96, seed=7):
    ctx = wpo.loss_context(get_baseline=True)
    tile_vals = [loss_fxn(x, dataclasses.replace(ctx, seed=1000 + i)) for i in range(n_tile)]
    engine = wpo.batched_engine()
    engine.common_random_numbers = False  # independent repetitions
    from anatile.wpo import decode_batch

    f, g = decode_batch(np.repeat(x[None], n_batch, 0), wpo.space)
    batch_vals = engine(f, g, torch.Generator().manual_seed(seed)).numpy()
    return (_mean_se(tile_vals) if tile_vals else (math.nan, math.nan)), _mean_se(batch_vals)


def _assert_same_mean(a, b):
    (m1, s1), (m2, s2) = a, b
    assert abs(m1 - m2) <= 3.0 * math.hypot(s1, s2), (a, b)


@pytest.mark.parametrize("compensation", ["global", "per_column", "none", "custom_drift"])
def test_batched_and_per_candidate_paths_agree(make_wpo, compensation):
    cfg = InferenceRPUConfig()
    if compensation == "per_column":
        cfg.drift_compensation = PerColumnDriftCompensation()
    elif compensation == "none":
        cfg.drift_compensation = None
    elif compensation == "custom_drift":
        from anatile.inference import CustomDriftPCMLikeNoiseModel

        cfg.noise_model = CustomDriftPCMLikeNoiseModel(
            {"g_lst": [0.0, 10.0, 25.0], "nu_mean_lst": [0.1, 0.06, 0.03],
             "nu_std_lst": [0.04, 0.02, 0.01]})
    wpo = make_wpo(rpu_config=cfg)
    x = np.random.default_rng(0).random(len(wpo.generate_hop_bounds()))
    tile, batch = _paths(wpo, x)
    assert tile[0] > 0
    _assert_same_mean(tile, batch)


def test_baseline_paths_agree(make_wpo):
    batched = make_wpo(baseline_iterations=40)
    reference = make_wpo(baseline_iterations=12, vectorized=False)
    b1 = batched.get_loss_baseline()
    b2 = reference.get_loss_baseline()
    # spread of single evaluations, measured on the batched path
    engine = batched.batched_engine()
    targets, params = batched.g_converter_baseline.convert_to_conductances(
        batched.test_weights.double())
    from anatile.wpo.objective import linear_coefficients

    g = torch.stack([t.reshape(-1) for t in targets])
    vals = engine.evaluate_targets(g, linear_coefficients(batched.g_converter_baseline, params,
                                                           g.shape[0]), 40).numpy()
    sd = vals.std(ddof=1)
    assert abs(b1 - b2) <= 3.0 * sd * math.sqrt(1 / 40 + 1 / 12 + 1 / 40)


def test_zero_noise_gives_zero_tnmse_on_both_paths(make_wpo):
    cfg = InferenceRPUConfig(noise_model=PCMLikeNoiseModel(
        prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0))
    wpo = make_wpo(rpu_config=cfg)
    x = np.random.default_rng(1).random(len(wpo.generate_hop_bounds()))
    ctx = wpo.loss_context(get_baseline=True)
    assert loss_fxn(x, ctx) == pytest.approx(0.0, abs=1e-8)
    from anatile.wpo import decode_batch

    f, g = decode_batch(np.stack([x, 1 - x]), wpo.space)
    out = wpo.batched_engine()(f, g, torch.Generator().manual_seed(0))
    assert float(out.abs().max()) == pytest.approx(0.0, abs=1e-8)
    # noise on again: the error is clearly positive
    noisy = make_wpo()
    assert loss_fxn(x, noisy.loss_context(get_baseline=True)) > 1e-3


def test_loss_fxn_accepts_a_pickled_context_and_is_seeded_by_x(make_wpo):
    wpo = make_wpo()
    x = np.random.default_rng(2).random(21)
    ctx = wpo.loss_context(get_baseline=True)
    a = loss_fxn(x, ctx)
    assert loss_fxn(x, pickle.dumps(ctx)) == a
    assert loss_fxn(np.clip(x + 1e-3, 0, 1), ctx) != a


def test_loss_rpu_config_relative_loss(make_wpo):
    wpo = make_wpo()
    ctx = dataclasses.replace(wpo.loss_context(get_baseline=True),
                              rpu_config=wpo.search_rpu_config)
    tnmse = loss_rpu_config(ctx)
    rel = loss_rpu_config(dataclasses.replace(ctx, get_baseline=False, loss_baseline=tnmse,
                                              loss_margin=0.125))
    assert rel == pytest.approx(0.125)


def test_loss_weights_needs_one_inference_tile():
    with pytest.raises(TypeError, match="exactly one InferenceTile"):
        loss_weights(torch.nn.Linear(2, 2), [1.0], torch.ones(2, 2), 1.0, 1.0, 0.1)
    tile = InferenceTile(2, 3, seed=0)
    val = loss_weights(tile, [1.0, 10.0], torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.2, -0.1]]),
                       0.3, 1.0, 0.0, get_baseline=True)
    assert 0.0 < val < 100.0


def test_per_candidate_path_runs_with_a_map_like_executor(make_wpo):
    with ThreadPoolExecutor(max_workers=2) as pool:
        wpo = make_wpo(popsize=1, maxiter=1, baseline_iterations=2, workers=pool.map,
                       callback=None)
        assert not wpo.options.use_batched
        converter, success = wpo.run_optimizer()
    assert isinstance(success, bool)
    assert wpo.result is not None and wpo.result.n_evaluations >= 21
    assert math.isfinite(wpo.result.best_tnmse)


def _pair_candidate(eng, w, t_steps):
    """One random two-pair candidate ([1, 2] factors, 11-point tables) for ``eng``, its
    kernel inputs and one draw of standard normals: ``(g_table, g_a, g_b, coef, z)``."""
    g_table = torch.rand(1, 4, 11, dtype=torch.float64) * 25
    f = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    g_a, g_b = g_table[:, :, :-1], g_table[:, :, 1:] - g_table[:, :, :-1]
    w_us = ((g_table[:, 0::2] - g_table[:, 1::2]) * f[:, :, None]).sum(1)
    scale = w_us.abs().amax(1) / eng.max_abs
    coef = torch.tensor([[1.0, -1.0, 2.0, -2.0]], dtype=torch.float64) / scale[:, None]
    z = torch.randn(1, len(t_steps), 3, 4, w.numel(), dtype=torch.float64)
    return g_table, g_a, g_b, coef, z


def test_kernel_with_rederived_conductances_matches_the_converter_chain():
    """aihwkit's drift convention on the same normals: the programmed weights converted
    again by the candidate's own CustomPairConductanceConverter (scale from their largest
    value, as PCMLikeNoiseModel(rederive_conductances=True).program does), those
    conductances drifted with the exponents of the targets and read back with the new
    scale; the torch kernel computes exactly this chain (float64)."""
    from anatile.functional import pcm
    from anatile.inference import CustomPairConductanceConverter
    from anatile.wpo.batched import BatchedTNMSE, PCMPhysics, tnmse_kernel

    torch.manual_seed(0)
    w = torch.randn(4, 32, dtype=torch.float64) * 0.1
    t_steps = [1.0, 3600.0, 3.15e7]
    eng = BatchedTNMSE(w, t_steps, PCMPhysics(g_max=25.0), n_grid=11, dtype=torch.float64,
                       compile=False, native=False, rederive=True)
    g_table, g_a, g_b, coef, z = _pair_candidate(eng, w, t_steps)
    got = tnmse_kernel(g_a, g_b, eng._lo, eng._frac, coef, eng._w, z, None, eng._log_ratio,
                       eng._read_amp, None, None, eng._consts(), (g_a, g_b))
    conv = CustomPairConductanceConverter([1.0, 2.0], g_table[0].tolist(), g_max=25.0,
                                          invertibility_test=False)
    targets, params = conv.convert_to_conductances(w.reshape(-1))
    g_t = torch.stack(targets)
    sig = pcm.pcm_prog_noise_std(g_t, 25.0, pcm.DEFAULT_PROG_COEFF, 1.0)
    mu, s_nu = pcm.pcm_drift_nu_stats(g_t, 25.0)
    total = 0.0
    for ti, t in enumerate(t_steps):
        gp = (g_t + sig * z[0, ti, 0]).clamp(min=0)
        wp = conv.convert_back_to_weights(list(gp), params)
        again, params_again = conv.convert_to_conductances(wp)
        g_re = torch.stack(again)
        nu = (mu + s_nu * z[0, ti, 1]).abs()
        gd = g_re * pcm.pcm_drift_factor(nu, t, 20.0)
        noise = pcm.pcm_read_noise_qs(g_re, 25.0) * float(pcm.pcm_read_noise_time_factor(t))
        gr = (gd + gd.abs() * noise * z[0, ti, 2]).clamp(min=0)
        wt = conv.convert_back_to_weights(list(gr), params_again)
        alpha = wp.abs().sum() / wt.abs().sum()
        total += float((((alpha * wt - w.reshape(-1)) * 10 / eng.max_abs) ** 2).sum())
    expected = total / (w.numel() * len(t_steps))
    assert float(got[0]) == pytest.approx(expected, rel=1e-9)
    # and the default convention (each device's programmed conductance drifts) differs
    plain = tnmse_kernel(g_a, g_b, eng._lo, eng._frac, coef, eng._w, z, None, eng._log_ratio,
                         eng._read_amp, None, None, eng._consts())
    assert abs(float(plain[0]) / expected - 1) > 1e-6


def test_kernel_physics_matches_functional_pcm():
    """Same standard normals in, same TNMSE out: the fused kernel's formulas are those of
    anatile.functional.pcm (programming noise, ν statistics, drift, read noise)."""
    from anatile.functional import pcm
    from anatile.wpo.batched import BatchedTNMSE, PCMPhysics, tnmse_kernel

    torch.manual_seed(0)
    w = torch.randn(4, 32, dtype=torch.float64) * 0.1
    t_steps = [1.0, 3600.0, 3.15e7]
    phys = PCMPhysics(g_max=25.0, prog_noise_scale=1.3, read_noise_scale=0.7, drift_scale=1.1)
    eng = BatchedTNMSE(w, t_steps, phys, n_grid=11, dtype=torch.float64, compile=False)
    g_table, g_a, g_b, coef, z = _pair_candidate(eng, w, t_steps)
    got = tnmse_kernel(g_a, g_b, eng._lo, eng._frac, coef, eng._w, z, None, eng._log_ratio,
                       eng._read_amp, None, None, eng._consts())
    # the same chain with the functional building blocks
    grid = torch.linspace(-eng.max_abs, eng.max_abs, 11, dtype=torch.float64)
    g_t = pcm.interpolate_custom_pair(w.reshape(-1), grid, g_table[0])  # (K, N)
    sig = pcm.pcm_prog_noise_std(g_t, 25.0, pcm.DEFAULT_PROG_COEFF, 1.3)
    mu, s_nu = pcm.pcm_drift_nu_stats(g_t, 25.0)
    total = 0.0
    for ti, t in enumerate(t_steps):
        gp = (g_t + sig * z[0, ti, 0]).clamp(min=0)
        nu = (mu + s_nu * z[0, ti, 1]).abs() * 1.1
        gd = gp * pcm.pcm_drift_factor(nu, t, 20.0)
        noise = pcm.pcm_read_noise_qs(gp, 25.0) * float(pcm.pcm_read_noise_time_factor(t)) * 0.7
        gr = (gd + gd.abs() * noise * z[0, ti, 2]).clamp(min=0)
        wt = (coef[0, :, None] * gr).sum(0)
        wp = (coef[0, :, None] * gp).sum(0)
        alpha = wp.abs().sum() / wt.abs().sum()
        total += float((((alpha * wt - w.reshape(-1)) * 10 / eng.max_abs) ** 2).sum())
    expected = total / (w.numel() * len(t_steps))
    assert float(got[0]) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("mode", ["noisy", "aihwkit", "noisy_per_column", "noisy_omega"])
def test_noisy_readout_paths_agree(make_wpo, mode):
    """The drift-compensation readout through the forward IO model: both paths agree
    statistically, and the noise moves the TNMSE well beyond the exact readout's."""
    cfg = InferenceRPUConfig()
    opts: dict = {"perfect_readout": False}
    if mode == "aihwkit":
        opts = {"aihwkit_objective": True}
    elif mode == "noisy_per_column":
        cfg.drift_compensation = PerColumnDriftCompensation()
    elif mode == "noisy_omega":
        cfg.mapping.weight_scaling_omega = 1.0
    wpo = make_wpo(rpu_config=cfg, **opts)
    assert not wpo.search_rpu_config.forward.is_perfect
    exact = make_wpo(rpu_config=cfg)
    x = wpo.baseline_point()  # a good strategy: the readout's share of the error shows
    assert x is not None
    tile, batch = _paths(wpo, x, n_tile=20)
    _assert_same_mean(tile, batch)
    _, exact_batch = _paths(exact, x, n_tile=0, seed=8)
    if mode != "noisy_omega":  # ω = 0: one raw weight per readout output, near the noise
        assert batch[0] > exact_batch[0] + 5 * math.hypot(batch[1], exact_batch[1])


def test_columnwise_weight_scaling_needs_the_per_candidate_path(make_wpo):
    from anatile.exceptions import ConfigError

    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    cfg.mapping.weight_scaling_columnwise = True
    with pytest.raises(ConfigError, match="weight_scaling_columnwise"):
        make_wpo(rpu_config=cfg).batched_engine()
    make_wpo(rpu_config=cfg, vectorized=False).get_loss_baseline()  # the reference path runs


def test_aihwkit_objective_searches_at_omega_zero(make_wpo):
    cfg = InferenceRPUConfig()
    cfg.mapping.weight_scaling_omega = 1.0
    wpo = make_wpo(rpu_config=cfg, aihwkit_objective=True)
    assert wpo.search_rpu_config.mapping.weight_scaling_omega == 0.0
    assert not wpo.search_rpu_config.forward.is_perfect
    default = make_wpo(rpu_config=cfg)
    assert default.search_rpu_config.mapping.weight_scaling_omega == 1.0
    assert default.search_rpu_config.forward.is_perfect
    assert cfg.mapping.weight_scaling_omega == 1.0  # the caller's config untouched


def test_baseline_measures_the_converter_it_is_given(make_wpo):
    """Unlike aihwkit's get_loss_baseline (which measures the noise model's own
    converter), the baseline is the TNMSE of g_converter_baseline, on both paths."""
    from anatile.inference import SinglePairConductanceConverter

    cfg = InferenceRPUConfig(noise_model=PCMLikeNoiseModel(
        g_converter=SinglePairConductanceConverter()))
    for vectorized in (True, False):
        n = 24 if vectorized else 6
        dual = make_wpo(rpu_config=cfg, vectorized=vectorized, baseline_iterations=n)
        single = make_wpo(rpu_config=cfg, vectorized=vectorized, baseline_iterations=n,
                          baseline=SinglePairConductanceConverter())
        b_dual, b_single = dual.get_loss_baseline(), single.get_loss_baseline()
        # DualPair [1, 1] halves the relative programming noise: clearly lower TNMSE
        assert b_dual < 0.8 * b_single, (vectorized, b_dual, b_single)
