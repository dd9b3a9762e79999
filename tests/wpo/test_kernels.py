"""Every evaluator of the PCM formulas against the one source (anatile.functional.pcm_formulas):
the numba kernel and its rebound formulas, the torch kernel, and the typed physics handed
from the noise models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anatile.config import InferenceRPUConfig
from anatile.config.parameters import IOParameters
from anatile.exceptions import ConfigError
from anatile.functional import pcm_formulas as F
from anatile.inference import (
    BaseNoiseModel,
    CustomDriftPCMLikeNoiseModel,
    GlobalDriftCompensation,
    PCMLikeNoiseModel,
    PerColumnDriftCompensation,
)
from anatile.inference.physics import OneHotReadout, PCMPhysics
from anatile.wpo import kernel_numba as K
from anatile.wpo.batched import BatchedTNMSE, compensation_kind

T_STEPS = [1.0, 60.0, 3600.0, 86400.0, 2.6e6, 3.15e7]
CUSTOM = ((0.0, 5.0, 12.0, 25.0), (0.09, 0.07, 0.05, 0.04), (0.04, 0.03, 0.02, 0.01))
NOISY = OneHotReadout.from_io(IOParameters())


def _pair(w, **kwargs):
    fast = BatchedTNMSE(w, T_STEPS, n_grid=11, **kwargs)
    ref = BatchedTNMSE(w, T_STEPS, n_grid=11, native=False, compile=False, **kwargs)
    assert fast.kernel_name == "numba" and ref.kernel_name == "torch"
    return fast, ref


@pytest.mark.parametrize("common", [True, False])
@pytest.mark.parametrize("compensation", ["global", "per_column", None])
@pytest.mark.parametrize("custom", [None, CUSTOM])
@pytest.mark.parametrize("readout", [None, NOISY])
@pytest.mark.parametrize("rederive", [False, True])
def test_numba_kernel_equals_torch_kernel_on_the_same_draws(common, compensation, custom,
                                                            readout, rederive):
    """Same generator state in, same draws consumed (the generators end in the same state),
    same TNMSE out up to float32 rounding; with a noisy readout a rare ADC rounding tie may
    fall the other way (one level of one output: relative 1e-4 at most here)."""
    gen = torch.Generator().manual_seed(0)
    # 20 rows of 300: the block (256) does not divide a row
    w = torch.randn(20, 300, generator=gen) * 0.1
    phys = PCMPhysics(g_max=25.0, prog_noise_scale=1.3, read_noise_scale=1.7, drift_scale=1.2,
                      custom_drift=custom)
    fast, ref = _pair(w, physics=phys, compensation=compensation, readout=readout,
                      common_random_numbers=common, rederive=rederive)
    f = torch.rand(13, 2, generator=gen) * 3 + 0.2
    g = torch.rand(13, 4, 11, generator=gen) * 25
    g[0, 1] = 0.0  # a device at 0 µS: log of 0, the Q_s cap, no drift
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    got, want = fast(f, g, g1), ref(f, g, g2)
    assert torch.equal(g1.get_state(), g2.get_state())
    rtol = 1e-4 if readout is not None and compensation is not None else 1e-6
    assert torch.allclose(got, want, rtol=rtol, atol=0), (got / want - 1).abs().max()


def test_thread_count_does_not_change_the_numba_result():
    import numba

    w = torch.randn(10, 64, generator=torch.Generator().manual_seed(1)) * 0.1
    eng = BatchedTNMSE(w, T_STEPS, PCMPhysics(g_max=25.0), n_grid=11)
    f = torch.rand(7, 2) + 0.5
    g = torch.rand(7, 4, 11) * 25
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = eng(f, g, torch.Generator().manual_seed(0))
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = eng(f, g, torch.Generator().manual_seed(0))
    finally:
        numba.set_num_threads(before)
    assert torch.equal(one, many)


def _grid() -> np.ndarray:
    return np.concatenate([[0.0, 1e-30, 1e-12, 1e-7], np.linspace(1e-4, 40.0, 2001)]
                          ).astype(np.float32)


def test_numba_formulas_equal_the_torch_formulas():
    """The rebound copies compiled by numba evaluate the same bodies as the torch ones."""
    g = _grid()
    gt = torch.from_numpy(g).double()
    coeffs = (0.26348, 1.9650, -1.1731)
    z = np.float32(-1.3)
    cases = [
        (K.prog_noise_std, F.prog_noise_std,
         lambda x: (x, np.float32(25.0), tuple(np.float32(c) for c in coeffs),
                    np.float32(1.3)),
         lambda x: (x, 25.0, coeffs, 1.3)),
        (K.log_relative, F.log_relative, lambda x: (x, np.float32(25.0)), lambda x: (x, 25.0)),
        (K.read_noise_qs, F.read_noise_qs, lambda x: (x, np.float32(25.0)),
         lambda x: (x, 25.0)),
        (K.read_noise, F.read_noise, lambda x: (x, np.float32(0.05), np.float32(4.0), z),
         lambda x: (x, 0.05, 4.0, float(z))),
        (K.programmed, F.programmed, lambda x: (x, np.float32(0.8), z),
         lambda x: (x, 0.8, float(z))),
    ]
    for fast, ref, args32, args64 in cases:
        got = np.array([fast(*args32(np.float32(v))) for v in g], dtype=np.float64)
        want = ref(*args64(gt)).numpy()
        assert np.allclose(got, want, rtol=2e-6, atol=1e-6), fast
    lr = np.linspace(-20, 1, 500).astype(np.float32)
    for fast, ref in ((K.nu_mean, F.nu_mean), (K.nu_std, F.nu_std)):
        got = np.array([fast(v) for v in lr])
        assert np.allclose(got, ref(torch.from_numpy(lr).double()).numpy(), atol=1e-7)
    nu = np.linspace(0, 0.5, 101).astype(np.float32)
    got = np.array([K.drift_factor(v, np.float32(14.2)) for v in nu])
    assert np.allclose(got, F.drift_factor(torch.from_numpy(nu).double(), 14.2).numpy(),
                       rtol=1e-6)
    got = np.array([K.drift_nu(np.float32(0.05), np.float32(0.02), v, np.float32(1.2))
                    for v in lr])
    assert np.allclose(got, F.drift_nu(0.05, 0.02, torch.from_numpy(lr).double(), 1.2).numpy(),
                       rtol=1e-6)
    pos = np.array([K.grid_position(v, np.float32(1 / 0.3), np.float32(5.0))
                    for v in np.linspace(-0.3, 0.3, 61, dtype=np.float32)])
    assert np.allclose(pos, F.grid_position(torch.linspace(-0.3, 0.3, 61, dtype=torch.float64),
                                            1 / 0.3, 5.0).numpy(), rtol=1e-6, atol=1e-5)
    levels = np.array([-3.5, -2.5, -0.5, 0.5, 1.49, 2.5, 700.0], np.float32)
    got = np.array([K.adc(v, np.float32(255.0)) for v in levels])
    assert np.array_equal(got, F.adc(torch.from_numpy(levels), 255.0).numpy())


def test_exp_and_log_approximations_hold_their_accuracy():
    """Over the kernel's arguments (|x| ≤ 16 for exp: drift and Q_s; any normal float32
    for log), as the module docstring states."""
    x = np.linspace(-16.0, 16.0, 4001).astype(np.float32)
    got = np.array([K.approx_exp(v) for v in x], dtype=np.float64)
    assert np.max(np.abs(got / np.exp(x.astype(np.float64)) - 1)) < 1e-6
    y = np.exp(np.linspace(-80, 10, 4001)).astype(np.float32)
    got = np.array([K.approx_log(v) for v in y], dtype=np.float64)
    assert np.max(np.abs(got - np.log(y.astype(np.float64)))) < 2e-5
    # the lower-degree pair of Q_s
    got = np.array([K.approx_exp_lo(v) for v in x], dtype=np.float64)
    assert np.max(np.abs(got / np.exp(x.astype(np.float64)) - 1)) < 5e-6
    got = np.array([K.approx_log_lo(v) for v in y], dtype=np.float64)
    assert np.max(np.abs(got - np.log(y.astype(np.float64)))) < 2e-5


def test_coefficients_are_chebyshev_interpolants():
    c = K.polynomial_coefficients()
    r = np.linspace(-0.5, 0.5, 1001)
    assert np.max(np.abs(np.polyval(c["exp2"][::-1], r) / 2.0 ** r - 1)) < 2e-7
    assert np.max(np.abs(np.polyval(c["exp2_lo"][::-1], r) / 2.0 ** r - 1)) < 5e-6
    f = np.linspace(-0.25, 0.5, 1001)
    assert np.max(np.abs(f * np.polyval(c["log2"][::-1], f) - np.log2(1 + f))) < 2e-7
    assert np.max(np.abs(f * np.polyval(c["log2_lo"][::-1], f) - np.log2(1 + f))) < 5e-6


def test_noise_models_hand_their_physics():
    model = PCMLikeNoiseModel(prog_noise_scale=1.5, read_noise_scale=0.5, drift_scale=2.0,
                              t_0=10.0, g_max=20.0)
    p = model.physics()
    assert p == PCMPhysics(g_max=20.0, prog_noise_scale=1.5, read_noise_scale=0.5,
                           drift_scale=2.0, t_0=10.0)
    table = {"g_lst": [0.0, 10.0, 25.0], "nu_mean_lst": [0.1, 0.06, 0.03],
             "nu_std_lst": [0.04, 0.02, 0.01]}
    custom = CustomDriftPCMLikeNoiseModel(table).physics()
    assert custom.custom_drift == ((0.0, 10.0, 25.0), (0.1, 0.06, 0.03), (0.04, 0.02, 0.01))
    mu, sd = custom.nu_stats(torch.tensor([0.0, 5.0, 25.0, 30.0]))
    assert torch.allclose(mu, torch.tensor([0.1, 0.08, 0.03, 0.03]))
    assert torch.allclose(sd, torch.tensor([0.04, 0.03, 0.01, 0.01]))
    with pytest.raises(NotImplementedError, match="physics"):
        BaseNoiseModel().physics()


def test_physics_time_terms_are_the_formulas():
    p = PCMPhysics(g_max=25.0, read_noise_scale=0.5)
    assert p.drift_log_ratio(3600.0) == pytest.approx(math.log1p(3600.0 / 20.0))
    want = 0.5 * math.sqrt(math.log((3600.0 + 20.0 + 250e-9) / (2 * 250e-9)))
    assert p.read_amplitude(3600.0) == pytest.approx(want, rel=1e-12)


def test_compensation_kind_reads_the_declared_grouping():
    assert compensation_kind(GlobalDriftCompensation()) == "global"
    assert compensation_kind(PerColumnDriftCompensation()) == "per_column"
    assert compensation_kind(None) is None

    class Median(GlobalDriftCompensation):
        grouping = None

    with pytest.raises(TypeError, match="drift_compensation"):
        compensation_kind(Median())


def test_one_hot_readout_follows_the_io_model():
    r = OneHotReadout.from_io(IOParameters())
    assert r is not None
    assert r.amplitude == pytest.approx(1.0) and r.bound == 12.0
    assert r.noise_std == pytest.approx(0.06)
    from anatile.functional.io_model import quantization_step

    assert r.step == quantization_step(IOParameters().out_res, 12.0)
    assert OneHotReadout.from_io(IOParameters(is_perfect=True)) is None
    assert OneHotReadout.from_io(IOParameters(w_noise=0.08)).noise_std == pytest.approx(0.1)
    assert OneHotReadout.from_io(IOParameters(inp_bound=0.5)).amplitude == pytest.approx(0.5,
                                                                                      abs=0.02)
    for bad in ({"inp_noise": 0.1}, {"out_sto_round": True}, {"inp_sto_round": True}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            OneHotReadout.from_io(IOParameters(**bad))


def test_noisy_readout_near_the_adc_bound_is_refused():
    w = torch.randn(4, 16) * 5.0  # raw weights of order 10 at ω = 0: the readout saturates
    with pytest.raises(ConfigError, match="out_bound"):
        BatchedTNMSE(w, [1.0], PCMPhysics(g_max=25.0), n_grid=11, readout=NOISY)
    # mapped to max|W| = 1 per row (ω = 1), the same weights read well inside the bound
    scale = 1.0 / w.abs().amax(1)
    BatchedTNMSE(w, [1.0], PCMPhysics(g_max=25.0), n_grid=11, readout=NOISY,
                 readout_scale=scale)


def test_engine_pickles_and_finds_the_kernel_again():
    import pickle

    eng = BatchedTNMSE(torch.randn(4, 16), [1.0], PCMPhysics(g_max=25.0), n_grid=11)
    other = pickle.loads(pickle.dumps(eng))
    assert other.kernel_name == eng.kernel_name == "numba"
    f, g = torch.ones(2, 2), torch.rand(2, 4, 11) * 25
    assert torch.equal(eng(f, g, torch.Generator().manual_seed(0)),
                       other(f, g, torch.Generator().manual_seed(0)))


def test_same_seed_same_baseline_on_both_kernels_and_result_names_the_kernel(make_wpo):
    """The draws do not depend on the kernel: the baselines agree to float rounding."""
    numba_run = make_wpo(maxiter=1)
    torch_run = make_wpo(maxiter=1, native=False)
    b1, b2 = numba_run.get_loss_baseline(), torch_run.get_loss_baseline()
    assert b1 == pytest.approx(b2, rel=1e-5)
    numba_run.run_optimizer()
    assert numba_run.result is not None and numba_run.result.kernel == "numba"
    per = make_wpo(maxiter=0, vectorized=False, baseline_iterations=2, popsize=1)
    per.run_optimizer()
    assert per.result is not None and per.result.kernel == "per-candidate"


def test_options_check_the_readout_switches():
    from anatile.wpo import WPOOptions

    with pytest.raises(ConfigError, match="aihwkit_objective"):
        WPOOptions(aihwkit_objective=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="native"):
        WPOOptions(native="yes")  # type: ignore[arg-type]


def test_no_native_env_selects_the_torch_kernel(monkeypatch):
    monkeypatch.setenv("ANATILE_NO_NATIVE", "1")
    eng = BatchedTNMSE(torch.randn(4, 16), [1.0], PCMPhysics(g_max=25.0), n_grid=11,
                       compile=False)
    assert eng.kernel_name == "torch"
    with pytest.raises(ValueError, match="native"):
        BatchedTNMSE(torch.randn(4, 16), [1.0], PCMPhysics(g_max=25.0), n_grid=11,
                     dtype=torch.float64, native=True)


def test_unknown_rpu_config_physics_is_refused_by_the_optimizer(make_wpo):
    class Opaque(PCMLikeNoiseModel):
        def physics(self) -> PCMPhysics:
            return BaseNoiseModel.physics(self)

    cfg = InferenceRPUConfig(noise_model=Opaque())
    with pytest.raises(NotImplementedError, match="vectorized=False"):
        make_wpo(rpu_config=cfg).batched_engine()


def test_rederive_table_is_the_converter_on_the_smallest_exact_grid():
    from anatile.inference import (
        CustomPairConductanceConverter,
        DualPairConductanceConverter,
        SingleDeviceConductanceConverter,
        SinglePairConductanceConverter,
    )
    from anatile.wpo.objective import rederive_table

    w = torch.randn(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = float(w.abs().max())
    custom = CustomPairConductanceConverter([1.0], [[0, 5, 10, 25], [25, 10, 5, 0]],
                                            g_max=25.0, invertibility_test=False)
    for conv, points in ((SinglePairConductanceConverter(g_max=25.0), 3),
                         (DualPairConductanceConverter([1.0, 3.0], g_max=25.0), 9),
                         (custom, 7)):  # 4 grid points: 7 uniform ones hold them all
        table = rederive_table(conv, w)
        assert table.shape[1] == points
        grid = torch.linspace(-m, m, points, dtype=torch.float64)
        targets, _ = conv.device_conductances(grid)
        assert torch.allclose(table, torch.stack(targets), atol=1e-12)
    with pytest.raises(ConfigError, match="rederive_conductances"):
        # maps [min W, max W], not ±max|W|: no uniform grid over ±max|W| reproduces it
        rederive_table(SingleDeviceConductanceConverter(), w[:200] + 0.5)


def test_engine_checks_the_rederive_arguments():
    w = torch.randn(4, 16, generator=torch.Generator().manual_seed(0)) * 0.1
    with pytest.raises(TypeError, match="rederive"):
        BatchedTNMSE(w, T_STEPS, PCMPhysics(g_max=25.0), n_grid=11, rederive="yes")
    eng = BatchedTNMSE(w, T_STEPS, PCMPhysics(g_max=25.0), n_grid=11, rederive=True)
    g = torch.rand(2, w.numel(), dtype=torch.float64) * 25
    gen = torch.Generator().manual_seed(1)
    state = gen.get_state()
    with pytest.raises(ValueError, match="table"):
        eng.evaluate_targets(g, torch.tensor([1.0, -1.0], dtype=torch.float64), 3, gen)
    assert torch.equal(gen.get_state(), state)  # nothing drawn
