"""The compiled CPU kernel of the batched WPO loss: the formulas of
:mod:`anatile.functional.pcm_formulas`, compiled with numba.

The formulas are not rewritten here: :func:`~anatile.functional.pcm_formulas.rebind`
copies their bodies over a float32 scalar namespace (the model constants as float32, and
``exp``/``log`` as the polynomial approximations below, which let the compiler vectorize
the loops) and numba compiles the copies into the kernel. The kernel is compiled on first
use and cached on disk by numba (``cache=True``); its cache entry is named after a hash of
this file and of the formulas' source, so an edited formula never meets a stale build.
The module is over 400 lines because it is that one compiled unit: the kernel's loop, the
approximations numba inlines into it and the rebinding of the formulas; split over files,
the cache key would have to follow each of them.

``exp``/``log`` use ``2^x = 2^k·p(r)`` and ``log2(x) = e + f·q(f)`` with Chebyshev
interpolants (:func:`polynomial_coefficients`, error ≤ 2e-7 on their intervals): ``exp``
has a relative error ≤ 1e-6 for ``|x| ≤ 16`` (the kernel's drift and ``Q_s`` exponents;
most of it is the float32 rounding of ``x·log2(e)``), ``log`` an absolute error ≤ 2e-5
(relative to ``|ln x|`` about 3e-7). The read-noise amplitude ``Q_s`` alone, an empirical
fit, takes lower-degree ones (``approx_exp_lo``, ``approx_log_lo``: relative error
≤ 5e-6 in ``Q_s``), as the C kernel did; every other formula keeps float32 accuracy. The
tests measure all four.

The polynomial coefficients pass through ``_opaque``, an empty inline-assembly
identity: without it LLVM keeps each coefficient a constant and, short of registers in the
time-step loop, reloads it from the constant pool at every use (two instructions under
numba's JIT code model); as opaque loop-invariant values they are computed once and read
from the stack as memory operands, as a C compiler does.

The kernel processes one candidate per task (``prange`` over candidates), so a
candidate's result does not depend on the number of threads. Inside a candidate it runs
over blocks of :data:`BLOCK` weights, and every innermost loop is a plain loop over the
weights of a block (contiguous 1-D views, no branch, no inner loop), which LLVM vectorizes:
the time-independent quantities (target, programming σ, ν statistics) are computed per
block in one such loop each, the time steps in one loop per device. The programming-noise
coefficients come as a tuple, so their number is a compile-time constant and Horner's
rule in :func:`~anatile.functional.pcm_formulas.prog_noise_std` unrolls (one compiled
specialization per number of coefficients).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from anatile.functional import pcm_formulas

__all__ = ["BLOCK", "FASTMATH", "approx_exp", "approx_log", "polynomial_coefficients",
           "tnmse"]

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
"""Fast-math flags (reassociation and contraction); infinities and NaN keep their IEEE
meaning, as a non-finite TNMSE must stay non-finite."""

BLOCK = 256
"""Weights per block, so that the per-device quantities of a block stay in cache."""

_f32 = np.float32


def polynomial_coefficients() -> dict[str, tuple[float, ...]]:
    """Coefficients (lowest order first) of the ``exp2``/``log2`` polynomials: the
    interpolants at the Chebyshev nodes of ``2^r`` on ``|r| ≤ 1/2`` (degree 6; ``_lo``:
    4) and of ``log2(1 + f)/f`` on ``f ∈ [−1/4, 1/2]`` (degree 7; ``_lo``: 5)."""
    spec = {
        "exp2": (lambda r: 2.0 ** r, (-0.5, 0.5), 6),
        "log2": (lambda f: np.log2(1.0 + f) / f, (-0.25, 0.5), 7),
        "exp2_lo": (lambda r: 2.0 ** r, (-0.5, 0.5), 4),
        "log2_lo": (lambda f: np.log2(1.0 + f) / f, (-0.25, 0.5), 5),
    }
    out = {}
    for name, (fn, (a, b), deg) in spec.items():
        k = np.arange(deg + 1)
        nodes = (a + b) / 2 + (b - a) / 2 * np.cos((2 * k + 1) * np.pi / (2 * (deg + 1)))
        coeffs = np.linalg.solve(np.vander(nodes, deg + 1, increasing=True), fn(nodes))
        out[name] = tuple(float(_f32(c)) for c in coeffs)
    return out


_C = polynomial_coefficients()
_E = tuple(_f32(c) for c in _C["exp2"])
_L = tuple(_f32(c) for c in _C["log2"])
_EL = tuple(_f32(c) for c in _C["exp2_lo"])
_LL = tuple(_f32(c) for c in _C["log2_lo"])
_LOG2E = _f32(1.0 / math.log(2.0))
_LN2 = _f32(math.log(2.0))


def _float_from_bits_typer(typingctx: Any, bits: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


def _bits_from_float_typer(typingctx: Any, x: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


def _opaque_typer(typingctx: Any, x: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        fnty = ir.FunctionType(ir.FloatType(), [ir.FloatType()])
        asm = ir.InlineAsm(fnty, "", "=x,0", side_effect=False)
        call = builder.call(asm, [args[0]])
        call.attributes.add("readnone")  # no memory access: hoisted out of loops
        call.attributes.add("nounwind")
        return call
    return types.float32(types.float32), codegen


_opaque: Any = intrinsic(_opaque_typer)
"""The float32 argument, unknown to the optimizer (an empty inline-assembly identity)."""
_float_from_bits: Any = intrinsic(_float_from_bits_typer)
"""The float32 with the given bits (int32), as a compiled intrinsic."""
_bits_from_float: Any = intrinsic(_bits_from_float_typer)
"""The bits (int32) of a float32, as a compiled intrinsic."""


@njit(fastmath=FASTMATH, inline="always", cache=True)
def _exp_reduce(x: Any) -> Any:  # pragma: no cover - compiled
    """``e^x = 2^k · 2^r``: the remainder ``r`` in [−0.5, 0.5] and ``2^k`` as float32."""
    y = max(x * _LOG2E, _f32(-126.0))
    y = min(y, _f32(127.0))
    k = _f32(np.rint(y))  # float32: keep the polynomial in float32
    return y - k, _float_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))


@njit(fastmath=FASTMATH, inline="always", cache=True)
def _log_reduce(x: Any) -> Any:  # pragma: no cover - compiled
    """``|x| = 2^e · (1 + f)`` with ``1 + f`` in [0.75, 1.5): the exponent ``e`` and ``f``."""
    u = _bits_from_float(x) & np.int32(0x7FFFFFFF)
    e = (u >> np.int32(23)) - np.int32(127)
    m = _float_from_bits((u & np.int32(0x007FFFFF)) | np.int32(0x3F800000))  # [1, 2)
    if m >= _f32(1.5):
        m = m * _f32(0.5)
        e = e + np.int32(1)
    return e, m - _f32(1.0)


@njit(fastmath=FASTMATH, inline="always", cache=True)
def approx_exp(x: Any) -> Any:  # pragma: no cover - compiled
    """``e^x`` in float32 (``x`` below −87 gives about 2^−126, not 0)."""
    r, scale = _exp_reduce(x)
    p = _opaque(_E[6])
    p = p * r + _opaque(_E[5])
    p = p * r + _opaque(_E[4])
    p = p * r + _opaque(_E[3])
    p = p * r + _opaque(_E[2])
    p = p * r + _opaque(_E[1])
    p = p * r + _opaque(_E[0])
    return p * scale


@njit(fastmath=FASTMATH, inline="always", cache=True)
def approx_exp_lo(x: Any) -> Any:  # pragma: no cover - compiled
    """``e^x`` in float32 with the degree-4 polynomial (relative error ≤ 5e-6)."""
    r, scale = _exp_reduce(x)
    p = _opaque(_EL[4])
    p = p * r + _opaque(_EL[3])
    p = p * r + _opaque(_EL[2])
    p = p * r + _opaque(_EL[1])
    p = p * r + _opaque(_EL[0])
    return p * scale


@njit(fastmath=FASTMATH, inline="always", cache=True)
def approx_log(x: Any) -> Any:  # pragma: no cover - compiled
    """``ln|x|`` in float32 for normal ``x`` (0 and subnormals give about −88)."""
    e, f = _log_reduce(x)
    p = _opaque(_L[7])
    p = p * f + _opaque(_L[6])
    p = p * f + _opaque(_L[5])
    p = p * f + _opaque(_L[4])
    p = p * f + _opaque(_L[3])
    p = p * f + _opaque(_L[2])
    p = p * f + _opaque(_L[1])
    p = p * f + _opaque(_L[0])
    return (_f32(e) + f * p) * _LN2


@njit(fastmath=FASTMATH, inline="always", cache=True)
def approx_log_lo(x: Any) -> Any:  # pragma: no cover - compiled
    """``ln|x|`` in float32 with the degree-5 polynomial (absolute error ≤ 2e-5)."""
    e, f = _log_reduce(x)
    p = _opaque(_LL[5])
    p = p * f + _opaque(_LL[4])
    p = p * f + _opaque(_LL[3])
    p = p * f + _opaque(_LL[2])
    p = p * f + _opaque(_LL[1])
    p = p * f + _opaque(_LL[0])
    return (_f32(e) + f * p) * _LN2


@njit(fastmath=FASTMATH, inline="always", cache=True)
def _clip(x: Any, lo: Any, hi: Any) -> Any:  # pragma: no cover - compiled
    return min(max(x, _f32(lo)), _f32(hi))


@njit(fastmath=FASTMATH, inline="always", cache=True)
def _clip_min(x: Any, lo: Any) -> Any:  # pragma: no cover - compiled
    return max(x, _f32(lo))


@njit(fastmath=FASTMATH, inline="always", cache=True)
def _clip_max(x: Any, hi: Any) -> Any:  # pragma: no cover - compiled
    return min(x, _f32(hi))


@njit(fastmath=FASTMATH, inline="always", cache=True)
def _rint(x: Any) -> Any:  # pragma: no cover - compiled
    return _f32(np.rint(x))




def _rebind(exp: Any, log: Any) -> dict[str, Any]:
    return pcm_formulas.rebind(
        {"exp": exp, "log": log, "log1p": math.log1p, "sqrt": math.sqrt,
         "rint": _rint, "clip": _clip, "clip_min": _clip_min, "clip_max": _clip_max,
         **{name: _f32(value) for name, value in pcm_formulas.CONSTANTS.items()}},
        wrap=njit(fastmath=FASTMATH, inline="always"),
    )


_F = _rebind(approx_exp, approx_log)
prog_noise_std = _F["prog_noise_std"]
programmed = _F["programmed"]
log_relative = _F["log_relative"]
nu_mean = _F["nu_mean"]
nu_std = _F["nu_std"]
drift_nu = _F["drift_nu"]
drift_factor = _F["drift_factor"]
read_noise_qs = _rebind(approx_exp_lo, approx_log_lo)["read_noise_qs"]
read_noise = _F["read_noise"]
readout_level = _F["readout_level"]
adc = _F["adc"]
grid_position = _F["grid_position"]


@njit(fastmath=FASTMATH, inline="always", cache=True)
def _targets(g_d: Any, s_d: Any, a_d: Any, b_d: Any, lo: Any, frac: Any, n0: Any, nb: Any,
             g_max: Any, coeffs: Any, prog_factor: Any) -> None:  # pragma: no cover - compiled
    """One device's target conductances of weights ``n0 … n0 + nb`` (the candidate's
    piecewise-linear g(w) at each weight's grid cell) into ``g_d`` and their programming
    σ into ``s_d``: one simple loop each, so that both vectorize."""
    for j in range(nb):
        k = lo[n0 + j]
        g_d[j] = a_d[k] + b_d[k] * frac[n0 + j]
    for j in range(nb):
        s_d[j] = prog_noise_std(g_d[j], g_max, coeffs, prog_factor)


def _tnmse(g_a: Any, g_b: Any, lo: Any, frac: Any, coef: Any, w: Any, z: Any, zr: Any,
           log_ratio: Any, read_amp: Any, mu: Any, sig: Any, r_a: Any, r_b: Any,
           coeffs: Any, phys: Any, readout: Any, gain: Any, flags: Any, w_sq: Any,
           out: Any) -> None:  # pragma: no cover - compiled
    n_c, n_dev, _ = g_a.shape
    n_w = w.shape[0]
    n_t = z.shape[1]
    cz_step = 0 if z.shape[0] == 1 else 1  # one draw shared by all candidates, or one each
    g_max, prog_factor, drift_scale, max_abs = phys[0], phys[1], phys[2], phys[3]
    noise_std, inv_step, max_level, unit = readout[0], readout[1], readout[2], readout[3]
    custom, noisy, compensation, n_groups = flags[0], flags[1], flags[2], flags[3]
    rederive = flags[4]
    n_cells = r_a.shape[2]
    half_cells = np.float32(0.5 * n_cells)
    gsize = n_w // n_groups
    for c in prange(n_c):
        cz = np.int64(c) * cz_step
        G = np.empty((n_dev, BLOCK), np.float32)
        S = np.empty((n_dev, BLOCK), np.float32)
        M = np.empty((n_dev, BLOCK), np.float32)
        SN = np.empty((n_dev, BLOCK), np.float32)
        WT = np.empty(BLOCK, np.float32)
        WP = np.empty(BLOCK, np.float32)
        acc = np.empty((n_t, 4), np.float64)
        total = 0.0
        # aihwkit's drift convention: the largest programmed weight of each time step
        # first (the converter is applied again with its scale), in a pass of its own
        MP = np.zeros(n_t, np.float32)
        CELL = np.empty(BLOCK, np.int64)
        FR = np.empty(BLOCK, np.float32)
        GR = np.empty(BLOCK, np.float32)
        if rederive:
            for n0 in range(0, n_w, BLOCK):
                nb = min(BLOCK, n_w - n0)
                for d in range(n_dev):
                    _targets(G[d], S[d], g_a[c, d], g_b[c, d], lo, frac, n0, nb, g_max,
                             coeffs, prog_factor)
                for t in range(n_t):
                    WP[:nb] = 0.0
                    for d in range(n_dev):
                        cd = coef[c, d]
                        g_d, s_d = G[d], S[d]
                        za = z[cz, t, 0, d, n0:n0 + nb]
                        for j in range(nb):
                            WP[j] += cd * programmed(g_d[j], s_d[j], za[j])
                    m = MP[t]
                    for j in range(nb):
                        m = max(m, abs(WP[j]))
                    MP[t] = m
        for gi in range(n_groups):
            acc[:] = 0.0
            g_end = (gi + 1) * gsize
            for n0 in range(gi * gsize, g_end, BLOCK):
                nb = min(BLOCK, g_end - n0)
                # time-independent per device: target, programming σ, ν statistics; one
                # simple loop each, so that every loop vectorizes
                for d in range(n_dev):
                    g_d, m_d, sn_d = G[d], M[d], SN[d]
                    _targets(G[d], S[d], g_a[c, d], g_b[c, d], lo, frac, n0, nb, g_max,
                             coeffs, prog_factor)
                    if custom:
                        for j in range(nb):
                            m_d[j] = mu[c, d, n0 + j]
                            sn_d[j] = sig[c, d, n0 + j]
                    else:
                        for j in range(nb):
                            lr = log_relative(g_d[j], g_max)
                            m_d[j] = nu_mean(lr)
                            sn_d[j] = nu_std(lr)
                for t in range(n_t):
                    lrt = log_ratio[t]
                    amp = read_amp[t]
                    WT[:nb] = 0.0
                    WP[:nb] = 0.0
                    if not rederive:
                        for d in range(n_dev):
                            cd = coef[c, d]
                            g_d, s_d, m_d, sn_d = G[d], S[d], M[d], SN[d]
                            # contiguous 1-D views: the loop reads plain streams
                            za = z[cz, t, 0, d, n0:n0 + nb]
                            zb = z[cz, t, 1, d, n0:n0 + nb]
                            zc = z[cz, t, 2, d, n0:n0 + nb]
                            for j in range(nb):
                                gp = programmed(g_d[j], s_d[j], za[j])
                                nu = drift_nu(m_d[j], sn_d[j], zb[j], drift_scale)
                                gd = gp * drift_factor(nu, lrt)
                                gt = read_noise(gd, read_noise_qs(gp, g_max), amp, zc[j])
                                WT[j] += cd * gt
                                WP[j] += cd * gp
                    else:
                        for d in range(n_dev):
                            cd = coef[c, d]
                            g_d, s_d = G[d], S[d]
                            za = z[cz, t, 0, d, n0:n0 + nb]
                            for j in range(nb):
                                WP[j] += cd * programmed(g_d[j], s_d[j], za[j])
                        m_p = max(MP[t], np.float32(1e-30))
                        inv_m = np.float32(1.0) / m_p
                        for j in range(nb):
                            pos = grid_position(WP[j], inv_m, half_cells)
                            k = min(max(np.int64(np.floor(pos)), 0), n_cells - 1)
                            CELL[j] = k
                            FR[j] = min(max(pos - np.float32(k), np.float32(0.0)),
                                        np.float32(1.0))
                        for d in range(n_dev):
                            cd = coef[c, d] * (m_p / max_abs)
                            m_d, sn_d = M[d], SN[d]
                            ra_d, rb_d = r_a[c, d], r_b[c, d]
                            zb = z[cz, t, 1, d, n0:n0 + nb]
                            zc = z[cz, t, 2, d, n0:n0 + nb]
                            # the gather in a loop of its own: the loop below then reads
                            # plain streams and vectorizes
                            for j in range(nb):
                                GR[j] = ra_d[CELL[j]] + rb_d[CELL[j]] * FR[j]
                            for j in range(nb):
                                gr = GR[j]
                                nu = drift_nu(m_d[j], sn_d[j], zb[j], drift_scale)
                                gd = gr * drift_factor(nu, lrt)
                                gt = read_noise(gd, read_noise_qs(gr, g_max), amp, zc[j])
                                WT[j] += cd * gt
                    fdd = np.float32(0.0)
                    fdw = np.float32(0.0)
                    fnow = np.float32(0.0)
                    fref = np.float32(0.0)
                    if noisy:
                        for j in range(nb):
                            wn = w[n0 + j]
                            dl = WT[j] - wn
                            fdd += dl * dl
                            fdw += dl * wn
                            y_now = readout_level(WT[j], gain[n0 + j], noise_std,
                                                  zr[cz, t, 1, n0 + j], inv_step)
                            y_ref = readout_level(WP[j], gain[n0 + j], noise_std,
                                                  zr[cz, t, 0, n0 + j], inv_step)
                            fnow += abs(adc(y_now, max_level))
                            fref += abs(adc(y_ref, max_level))
                    else:
                        for j in range(nb):
                            wn = w[n0 + j]
                            dl = WT[j] - wn
                            fdd += dl * dl
                            fdw += dl * wn
                            fnow += abs(WT[j])
                            fref += abs(WP[j])
                    acc[t, 0] += fdd
                    acc[t, 1] += fdw
                    acc[t, 2] += fnow
                    acc[t, 3] += fref
            # Σ(α·w_t − w)² = α²·Σd² + 2α(α − 1)·Σd·w + (α − 1)²·Σw², d = w_t − w: one
            # pass over the weights and no cancellation between large sums
            for t in range(n_t):
                if compensation == 0:
                    total += acc[t, 0]
                else:
                    now = acc[t, 2] * unit
                    alpha = acc[t, 3] * unit / now if now > 1e-30 else 1.0
                    am1 = alpha - 1.0
                    total += (alpha * alpha * acc[t, 0] + 2.0 * alpha * am1 * acc[t, 1]
                              + am1 * am1 * w_sq[gi])
        out[c] = total


def _source_hash() -> str:
    text = Path(__file__).read_text() + Path(pcm_formulas.__file__).read_text()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# the cache entry is named after the sources: numba itself only checks this file's stamp
_tnmse.__qualname__ = f"tnmse_{_source_hash()}"
tnmse = njit(parallel=True, nogil=True, fastmath=FASTMATH, cache=True)(_tnmse)
"""The compiled kernel (called by :class:`anatile.wpo.batched.BatchedTNMSE`, which
prepares its arguments)."""
