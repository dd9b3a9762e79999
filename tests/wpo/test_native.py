"""The compiled CPU kernel of the batched loss against the torch kernel it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anatile.exceptions import ConfigError
from anatile.wpo import WPOOptions, native
from anatile.wpo.batched import BatchedTNMSE, PCMPhysics

pytestmark = pytest.mark.skipif(native._compiler() is None,
                                reason="no C compiler on this machine: the kernel cannot be "
                                       "built, the torch kernel is used")

T_STEPS = [1.0, 60.0, 3600.0, 86400.0, 2.6e6, 3.15e7]
CUSTOM = ((0.0, 5.0, 12.0, 25.0), (0.09, 0.07, 0.05, 0.04), (0.04, 0.03, 0.02, 0.01))
# the AVX-512 build where the CPU has it, and the portable C build everywhere
VARIANTS = {"native": ("-march=native",), "portable": ("-march=native", "-DANATILE_PORTABLE")}


def _kernel(variant: str) -> native.NativeKernel:
    kernel = native.load(VARIANTS[variant])
    assert kernel is not None, "a C compiler is present, so the kernel must build"
    return kernel


def _engines(weights: torch.Tensor, variant: str, **kwargs: object
             ) -> tuple[BatchedTNMSE, BatchedTNMSE]:
    fast = BatchedTNMSE(weights, T_STEPS, n_grid=11, native=False, compile=False,
                        **kwargs)  # type: ignore[arg-type]
    fast._native = _kernel(variant)
    ref = BatchedTNMSE(weights, T_STEPS, n_grid=11, native=False, compile=False,
                       **kwargs)  # type: ignore[arg-type]
    return fast, ref


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("compensation", ["global", "per_column", None])
@pytest.mark.parametrize("custom", [None, CUSTOM])
def test_native_kernel_equals_torch_kernel_on_the_same_draws(variant, compensation, custom):
    """Same generator state, so the same standard normals: the two kernels may differ only
    by float32 rounding and the Q_s approximation (relative 6e-6 of the read noise)."""
    gen = torch.Generator().manual_seed(0)
    # 20 rows of 300: neither the block (256) nor the vector width (16) divides a row
    w = torch.randn(20, 300, generator=gen) * 0.1
    phys = PCMPhysics(g_max=25.0, prog_noise_scale=1.3, read_noise_scale=1.7, drift_scale=1.2,
                      custom_drift=custom)
    fast, ref = _engines(w, variant, physics=phys, compensation=compensation)
    f = torch.rand(13, 2, generator=gen) * 3 + 0.2
    g = torch.rand(13, 4, 11, generator=gen) * 25
    g[0, 1] = 0.0  # a device at 0 µS: log of 0, the Q_s cap, no drift
    got = fast(f, g, torch.Generator().manual_seed(5))
    want = ref(f, g, torch.Generator().manual_seed(5))
    assert torch.allclose(got, want, rtol=2e-6, atol=0), (got / want - 1).abs().max()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_native_kernel_on_independent_draws_and_large_tables(variant):
    """evaluate_targets: one draw per repetition (no shared noise) and a table per weight
    (more than 16 bins: the gather path)."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4, 64, generator=gen) * 0.1
    fast, ref = _engines(w, variant, physics=PCMPhysics(g_max=25.0))
    target = torch.rand(4, w.numel(), generator=gen) * 25
    coef = torch.tensor([0.004, -0.004, 0.012, -0.012])
    got = fast.evaluate_targets(target, coef, 9, torch.Generator().manual_seed(2))
    want = ref.evaluate_targets(target, coef, 9, torch.Generator().manual_seed(2))
    assert torch.allclose(got, want, rtol=2e-6, atol=0)
    assert got.unique().numel() == 9  # the repetitions did draw their own noise


def test_thread_split_does_not_change_results():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(20, 64, generator=gen) * 0.1
    eng = BatchedTNMSE(w, T_STEPS, PCMPhysics(g_max=25.0), n_grid=11, native=True)
    g = torch.rand(7, 4, 11, generator=gen) * 25
    args = [t.float() for t in (g[:, :, :-1], g[:, :, 1:] - g[:, :, :-1])]
    coef = torch.randn(7, 4, generator=gen)
    z = torch.randn(len(T_STEPS), 3, 1, 4, w.numel(), generator=gen)
    outs = [native.run(eng._native, *args, eng._lo, eng._frac, coef, eng._w, z, eng._log_ratio,
                       eng._read_factor, None, None, eng._consts, n_threads=n)
            for n in (1, 3, 7)]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_approximations_hold_their_stated_accuracy(variant):
    kernel = _kernel(variant)
    which = {"exp2_hi": 0, "exp2_lo": 1, "log2_lo": 2, "log2_hi": 3}
    if kernel.variant == "avx512":
        which.update(exp2_hi=4, exp2_lo=5, log2_lo=6)
    x = np.concatenate([np.linspace(-126, 0, 200_001), np.linspace(-8, 8, 200_001)])
    x32 = x.astype(np.float32).astype(np.float64)
    assert np.abs(kernel.approx(which["exp2_hi"], x) / 2.0**x32 - 1).max() < 1.2e-7
    xq = np.linspace(-1.5, 5.0, 200_001)  # the Q_s range: −0.65·log2(g/g_max)
    xq32 = xq.astype(np.float32).astype(np.float64)
    assert np.abs(kernel.approx(which["exp2_lo"], xq) / 2.0**xq32 - 1).max() < 4e-6
    xl = np.geomspace(1e-7, 1e3, 200_001)
    ref = np.log2(xl.astype(np.float32).astype(np.float64))
    # polynomial error plus the float32 rounding of the result (|log2| up to 24 here)
    assert np.abs(kernel.approx(which["log2_lo"], xl) - ref).max() < 5e-6
    assert np.abs(kernel.approx(which["log2_hi"], xl) - ref).max() < 1.3e-7 + 24 * 2.0**-24
    # 0 (a device programmed to 0 µS) lands far below the Q_s floor
    assert kernel.approx(which["log2_lo"], np.zeros(1))[0] < -100


def test_coefficients_are_chebyshev_interpolants():
    coeffs = native.polynomial_coefficients()
    assert len(coeffs["EXP2_HI"]) == 7 and len(coeffs["LOG2_LO"]) == 6
    r = np.linspace(-0.5, 0.5, 1001)
    assert np.abs(np.polynomial.polynomial.polyval(r, coeffs["EXP2_HI"]) / 2.0**r - 1).max() \
        < 1e-7


def test_native_true_needs_a_float32_cpu_engine():
    w = torch.randn(4, 16)
    with pytest.raises(ValueError, match="native"):
        BatchedTNMSE(w, [1.0], PCMPhysics(g_max=25.0), n_grid=11, dtype=torch.float64,
                     native=True)
    eng = BatchedTNMSE(w, [1.0], PCMPhysics(g_max=25.0), n_grid=11, native=True)
    assert eng.kernel_name.startswith("native-")


def test_no_native_env_selects_the_torch_kernel(monkeypatch):
    monkeypatch.setenv("ANATILE_NO_NATIVE", "1")
    eng = BatchedTNMSE(torch.randn(4, 16), [1.0], PCMPhysics(g_max=25.0), n_grid=11,
                       compile=False)
    assert eng.kernel_name == "torch"
    assert not native.available()


def test_options_check_native():
    with pytest.raises(ConfigError, match="native"):
        WPOOptions(native="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="paired_selection"):
        WPOOptions(paired_selection=1)  # type: ignore[arg-type]
    assert WPOOptions(native=False).native is False


def test_build_goes_to_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ANATILE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_LOADED", {})
    kernel = native.load(("-march=native", "-DANATILE_PORTABLE"))
    assert kernel is not None and kernel.path.parent == tmp_path
    assert kernel.variant == "portable"
    assert native.load(("-march=native", "-DANATILE_PORTABLE")) is kernel  # loaded once


def test_engine_copies_and_pickles_keep_the_kernel():
    import copy
    import pickle

    gen = torch.Generator().manual_seed(4)
    w = torch.randn(4, 64, generator=gen) * 0.1
    eng = BatchedTNMSE(w, T_STEPS, PCMPhysics(g_max=25.0), n_grid=11, native=True)
    f = torch.rand(3, 2, generator=gen) + 0.5
    g = torch.rand(3, 4, 11, generator=gen) * 25
    want = eng(f, g, torch.Generator().manual_seed(0))
    for other in (copy.deepcopy(eng), pickle.loads(pickle.dumps(eng))):
        assert other.kernel_name == eng.kernel_name
        assert torch.equal(other(f, g, torch.Generator().manual_seed(0)), want)
