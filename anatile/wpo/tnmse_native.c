/*
 * Whole-population TNMSE on the CPU: the chain of anatile.wpo.batched.tnmse_kernel
 * (programming noise, drift, read noise, drift compensation) in one pass over the test
 * weights, with nothing but small blocks in cache.
 *
 * Built and loaded by anatile/wpo/native.py (the C compiler of the machine, -O3
 * -march=native); the header "tnmse_coeffs.h" it generates holds the polynomial
 * coefficients of the exp2/log2 approximations below (Chebyshev interpolants, derived in
 * native.py). Single precision throughout, sums per block in float and per group in
 * double, as the torch kernel.
 *
 * Accuracy of the approximations (max error over their whole input range, float32):
 *   exp2_hi   relative 1.1e-7   (drift factor ((t + t0)/t0)^(-nu))
 *   exp2_lo   relative 3.6e-6   (read-noise amplitude Q_s only)
 *   log2_lo   absolute 3.9e-6   (read-noise amplitude Q_s only)
 *   log2_hi   absolute 1.3e-7   (nu statistics)
 * so Q_s carries a relative error below 6e-6; everything else is at float32 rounding.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tnmse_coeffs.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define LN2_F 0.69314718055994531f
#define LOG2E_F 1.4426950408889634f
#define BLK 256
#define ANATILE_TNMSE_ABI 2

static inline float as_float(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t as_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* 2^x for x in [-126, 126]: x = k + r, |r| <= 1/2, 2^r by a polynomial */
static inline float exp2_hi(float x) {
    float k = rintf(x);
    float r = x - k;
    float p = EXP2_HI_6;
    p = p * r + EXP2_HI_5; p = p * r + EXP2_HI_4; p = p * r + EXP2_HI_3;
    p = p * r + EXP2_HI_2; p = p * r + EXP2_HI_1; p = p * r + EXP2_HI_0;
    return p * as_float((uint32_t)((int32_t)k + 127) << 23);
}

static inline float exp2_lo(float x) {
    float k = rintf(x);
    float r = x - k;
    float p = EXP2_LO_4;
    p = p * r + EXP2_LO_3; p = p * r + EXP2_LO_2; p = p * r + EXP2_LO_1; p = p * r + EXP2_LO_0;
    return p * as_float((uint32_t)((int32_t)k + 127) << 23);
}

/* log2|x| = e + log2(m), m in [3/4, 3/2); 0 and subnormals give about -127 */
static inline float log2_mantissa(float x, float* f) {
    uint32_t u = as_bits(x) & 0x7FFFFFFFu;
    int32_t e = (int32_t)(u >> 23) - 127;
    float m = as_float((u & 0x007FFFFFu) | 0x3F800000u); /* [1, 2) */
    int big = m >= 1.5f;
    m = big ? 0.5f * m : m;
    *f = m - 1.0f;
    return (float)(e + big);
}

static inline float log2_hi(float x) {
    float f;
    float e = log2_mantissa(x, &f);
    float p = LOG2_HI_7;
    p = p * f + LOG2_HI_6; p = p * f + LOG2_HI_5; p = p * f + LOG2_HI_4; p = p * f + LOG2_HI_3;
    p = p * f + LOG2_HI_2; p = p * f + LOG2_HI_1; p = p * f + LOG2_HI_0;
    return e + f * p;
}

static inline float log2_lo(float x) {
    float f;
    float e = log2_mantissa(x, &f);
    float p = LOG2_LO_5;
    p = p * f + LOG2_LO_4; p = p * f + LOG2_LO_3; p = p * f + LOG2_LO_2; p = p * f + LOG2_LO_1;
    p = p * f + LOG2_LO_0;
    return e + f * p;
}

/* The time-step loop body for one device and one block: accumulates the device's
 * contribution to the read weights WT and the programmed weights WP. */
typedef struct {
    const float *G, *S, *M, *SN;  /* target, programming sigma, nu mean, nu std */
    const float *za, *zb, *zc;     /* standard normals: programming, nu, read */
    float nl;                      /* -log2((t + t0)/t0) */
    float rf;                      /* 0.0088 * read-noise time factor */
    float log2_gmax, q_floor, cd;
    int first;
} step_args;

static inline float read_conductance(const step_args* a, int64_t j, float* gp_out) {
    float gp = a->G[j] + a->S[j] * a->za[j];
    gp = gp > 0.0f ? gp : 0.0f;
    float e = fabsf(a->M[j] + a->SN[j] * a->zb[j]) * a->nl;
    e = e > -126.0f ? e : -126.0f;
    float y = log2_lo(gp) - a->log2_gmax;
    y = y > a->q_floor ? y : a->q_floor;
    float gd = gp * exp2_hi(e);
    float qs = exp2_lo(-0.65f * y);
    float gt = gd * (1.0f + qs * (a->rf * a->zc[j]));
    *gp_out = gp;
    return gt > 0.0f ? gt : 0.0f;
}

static void device_step_portable(const step_args* a, int64_t nb, float* WT, float* WP) {
    /* the first device writes (the scratch may hold anything, even NaN), the others add */
    if (a->first) {
        #pragma omp simd
        for (int64_t j = 0; j < nb; ++j) {
            float gp;
            float gt = read_conductance(a, j, &gp);
            WT[j] = a->cd * gt;
            WP[j] = a->cd * gp;
        }
    } else {
        #pragma omp simd
        for (int64_t j = 0; j < nb; ++j) {
            float gp;
            float gt = read_conductance(a, j, &gp);
            WT[j] += a->cd * gt;
            WP[j] += a->cd * gp;
        }
    }
}

#if defined(__AVX512F__)
static inline __m512 v_poly_exp2(__m512 r, int hi) {
    __m512 p;
    if (hi) {
        p = _mm512_set1_ps(EXP2_HI_6);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_HI_5));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_HI_4));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_HI_3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_HI_2));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_HI_1));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_HI_0));
    } else {
        p = _mm512_set1_ps(EXP2_LO_4);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_LO_3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_LO_2));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_LO_1));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_LO_0));
    }
    return p;
}

/* 2^x: round, polynomial, scalef (exact scaling by 2^k) */
static inline __m512 v_exp2(__m512 x, int hi) {
    __m512 k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_scalef_ps(v_poly_exp2(_mm512_sub_ps(x, k), hi), k);
}

/* x = 2^e * (1 + f) with 1 + f in [3/4, 3/2) (getexp/getmant); returns e. 0 gives -inf */
static inline __m512 v_log2_mantissa(__m512 x, __m512* f) {
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
    __m512 e = _mm512_getexp_ps(x);
    __mmask16 low = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.0f), _CMP_LT_OQ);
    *f = _mm512_sub_ps(m, _mm512_set1_ps(1.0f));
    return _mm512_mask_add_ps(e, low, e, _mm512_set1_ps(1.0f));
}

static inline __m512 v_log2_lo(__m512 x) {
    __m512 f;
    __m512 e = v_log2_mantissa(x, &f);
    __m512 p = _mm512_set1_ps(LOG2_LO_5);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_LO_4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_LO_3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_LO_2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_LO_1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_LO_0));
    return _mm512_fmadd_ps(f, p, e);
}

static inline __m512 v_log2_hi(__m512 x) {
    __m512 f;
    __m512 e = v_log2_mantissa(x, &f);
    __m512 p = _mm512_set1_ps(LOG2_HI_7);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_HI_6));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_HI_5));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_HI_4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_HI_3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_HI_2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_HI_1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(LOG2_HI_0));
    return _mm512_fmadd_ps(f, p, e);
}

static inline __m512 v_clamp(__m512 x, float lo, float hi) {
    return _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
}

static void device_step_avx512(const step_args* a, int64_t nb, float* WT, float* WP) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 nl = _mm512_set1_ps(a->nl);
    const __m512 rf = _mm512_set1_ps(a->rf);
    const __m512 lgm = _mm512_set1_ps(a->log2_gmax);
    const __m512 qf = _mm512_set1_ps(a->q_floor);
    const __m512 emin = _mm512_set1_ps(-126.0f);
    const __m512 mq = _mm512_set1_ps(-0.65f);
    const __m512 cd = _mm512_set1_ps(a->cd);
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (int64_t j = 0; j < nb; j += 16) {
        __mmask16 k = nb - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nb - j)) - 1u);
        __m512 gp = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a->S + j),
                                    _mm512_maskz_loadu_ps(k, a->za + j),
                                    _mm512_maskz_loadu_ps(k, a->G + j));
        gp = _mm512_max_ps(gp, zero);
        __m512 nu = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a->SN + j),
                                    _mm512_maskz_loadu_ps(k, a->zb + j),
                                    _mm512_maskz_loadu_ps(k, a->M + j));
        __m512 e = _mm512_max_ps(_mm512_mul_ps(_mm512_and_ps(nu, absmask), nl), emin);
        __m512 y = _mm512_max_ps(_mm512_sub_ps(v_log2_lo(gp), lgm), qf);
        __m512 gd = _mm512_mul_ps(gp, v_exp2(e, 1));
        __m512 qs = v_exp2(_mm512_mul_ps(mq, y), 0);
        __m512 zc = _mm512_mul_ps(rf, _mm512_maskz_loadu_ps(k, a->zc + j));
        __m512 gt = _mm512_max_ps(_mm512_mul_ps(gd, _mm512_fmadd_ps(qs, zc, one)), zero);
        if (a->first) {
            _mm512_mask_storeu_ps(WT + j, k, _mm512_mul_ps(cd, gt));
            _mm512_mask_storeu_ps(WP + j, k, _mm512_mul_ps(cd, gp));
        } else {
            _mm512_mask_storeu_ps(WT + j, k,
                                  _mm512_fmadd_ps(cd, gt, _mm512_maskz_loadu_ps(k, WT + j)));
            _mm512_mask_storeu_ps(WP + j, k,
                                  _mm512_fmadd_ps(cd, gp, _mm512_maskz_loadu_ps(k, WP + j)));
        }
    }
}
#endif

/* Per-device, time-independent quantities of one block (see block_setup_portable). */
typedef struct {
    const float *a, *b;            /* conductance table of the device (n_bins) */
    const int32_t* lo;             /* bins of the block's weights */
    const float* frac;
    const float *mu, *sig;         /* custom nu statistics of the block, or NULL */
    const float* prog_coeff;
    int64_t n_coeff, n_bins;
    float inv_gmax, sig_scale, drift_scale;
    float *G, *S, *M, *SN;
} setup_args;

static void block_setup_portable(const setup_args* a, int64_t nb) {
    /* separate simple loops: each one vectorizes */
    const float top = a->prog_coeff[a->n_coeff - 1];
    #pragma omp simd
    for (int64_t j = 0; j < nb; ++j) {
        int32_t k = a->lo[j];
        a->G[j] = a->a[k] + a->b[k] * a->frac[j];
        a->S[j] = top;
    }
    for (int64_t i = a->n_coeff - 2; i >= 0; --i) {
        const float ci = a->prog_coeff[i];
        #pragma omp simd
        for (int64_t j = 0; j < nb; ++j) a->S[j] = a->S[j] * (a->G[j] * a->inv_gmax) + ci;
    }
    #pragma omp simd
    for (int64_t j = 0; j < nb; ++j) {
        float s = a->S[j] * a->sig_scale;
        a->S[j] = s > 0.0f ? s : 0.0f;
    }
    if (a->mu) {
        #pragma omp simd
        for (int64_t j = 0; j < nb; ++j) {
            a->M[j] = a->mu[j] * a->drift_scale;
            a->SN[j] = a->sig[j] * a->drift_scale;
        }
        return;
    }
    #pragma omp simd
    for (int64_t j = 0; j < nb; ++j) {
        float r = fabsf(a->G[j] * a->inv_gmax);
        r = r > 1e-7f ? r : 1e-7f;
        float lr = log2_hi(r) * LN2_F;
        float m = -0.0155f * lr + 0.0244f;
        m = m < 0.049f ? 0.049f : (m > 0.1f ? 0.1f : m);
        float sn = -0.0125f * lr - 0.0059f;
        sn = sn < 0.008f ? 0.008f : (sn > 0.045f ? 0.045f : sn);
        a->M[j] = m * a->drift_scale;
        a->SN[j] = sn * a->drift_scale;
    }
}

#if defined(__AVX512F__)
/* as block_setup_portable; tables of up to 16 bins are looked up with one permute */
static void block_setup_avx512(const setup_args* a, int64_t nb) {
    const int small = a->n_bins <= 16;
    const __mmask16 tk = small ? (__mmask16)((1u << a->n_bins) - 1u) : 0;
    const __m512 ta = small ? _mm512_maskz_loadu_ps(tk, a->a) : _mm512_setzero_ps();
    const __m512 tb = small ? _mm512_maskz_loadu_ps(tk, a->b) : _mm512_setzero_ps();
    const __m512 inv = _mm512_set1_ps(a->inv_gmax);
    const __m512 zero = _mm512_setzero_ps();
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (int64_t j = 0; j < nb; j += 16) {
        __mmask16 k = nb - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nb - j)) - 1u);
        __m512i idx = _mm512_maskz_loadu_epi32(k, a->lo + j);
        __m512 ga, gb;
        if (small) {
            ga = _mm512_permutexvar_ps(idx, ta);
            gb = _mm512_permutexvar_ps(idx, tb);
        } else {
            ga = _mm512_mask_i32gather_ps(zero, k, idx, a->a, 4);
            gb = _mm512_mask_i32gather_ps(zero, k, idx, a->b, 4);
        }
        __m512 g = _mm512_fmadd_ps(gb, _mm512_maskz_loadu_ps(k, a->frac + j), ga);
        __m512 rel = _mm512_mul_ps(g, inv);
        __m512 s = _mm512_set1_ps(a->prog_coeff[a->n_coeff - 1]);
        for (int64_t i = a->n_coeff - 2; i >= 0; --i)
            s = _mm512_fmadd_ps(s, rel, _mm512_set1_ps(a->prog_coeff[i]));
        s = _mm512_max_ps(_mm512_mul_ps(s, _mm512_set1_ps(a->sig_scale)), zero);
        _mm512_mask_storeu_ps(a->G + j, k, g);
        _mm512_mask_storeu_ps(a->S + j, k, s);
        __m512 m, sn;
        if (!a->mu) {
            __m512 r = _mm512_max_ps(_mm512_and_ps(rel, absmask), _mm512_set1_ps(1e-7f));
            __m512 lr = _mm512_mul_ps(v_log2_hi(r), _mm512_set1_ps(LN2_F));
            m = v_clamp(_mm512_fmadd_ps(_mm512_set1_ps(-0.0155f), lr, _mm512_set1_ps(0.0244f)),
                        0.049f, 0.1f);
            sn = v_clamp(_mm512_fmadd_ps(_mm512_set1_ps(-0.0125f), lr,
                                         _mm512_set1_ps(-0.0059f)), 0.008f, 0.045f);
        } else {
            m = _mm512_maskz_loadu_ps(k, a->mu + j);
            sn = _mm512_maskz_loadu_ps(k, a->sig + j);
        }
        _mm512_mask_storeu_ps(a->M + j, k, _mm512_mul_ps(m, _mm512_set1_ps(a->drift_scale)));
        _mm512_mask_storeu_ps(a->SN + j, k, _mm512_mul_ps(sn, _mm512_set1_ps(a->drift_scale)));
    }
}
#endif

/* Which inner loop this build uses: 1 = AVX-512 intrinsics, 0 = portable (auto-vectorized). */
int64_t tnmse_variant(void) {
#if defined(__AVX512F__) && !defined(ANATILE_PORTABLE)
    return 1;
#else
    return 0;
#endif
}

int64_t tnmse_abi(void) { return ANATILE_TNMSE_ABI; }

/* Test hook: the approximations on n points (which: 0 exp2_hi, 1 exp2_lo, 2 log2_lo,
 * 3 log2_hi, 4 AVX-512 exp2 hi, 5 AVX-512 exp2 lo, 6 AVX-512 log2 lo). */
void tnmse_approx(int64_t which, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        switch (which) {
            case 0: y[i] = exp2_hi(x[i]); break;
            case 1: y[i] = exp2_lo(x[i]); break;
            case 2: y[i] = log2_lo(x[i]); break;
            case 3: y[i] = log2_hi(x[i]); break;
#if defined(__AVX512F__)
            case 4: case 5: case 6: {
                float buf[16] = {0};
                buf[0] = x[i];
                __m512 v = _mm512_loadu_ps(buf);
                v = which == 6 ? v_log2_lo(v) : v_exp2(v, which == 4);
                _mm512_storeu_ps(buf, v);
                y[i] = buf[0];
                break;
            }
#endif
            default: y[i] = NAN;
        }
    }
}

/*
 * TNMSE of candidates [c0, c1).
 *
 * g_a, g_b   (C, K, n_bins)  conductance table as a per-bin affine map g = a + b * frac
 * lo, frac   (N,)            bin (int32) and position of each test weight
 * coef       (C, K)          signed weight per uS of each device
 * w          (N,)            ideal weights
 * z          standard normals, element (t, k, c, d, n) at t*zs_t + k*zs_k + c*zs_c + d*zs_d + n
 *            (zs_c = 0: one draw shared by all candidates)
 * log_ratio  (T,)            ln((t + t0)/t0)
 * read_factor(T,)            read_noise_scale * sqrt(ln((t + t0 + t_read)/(2 t_read)))
 * mu_in, sig_in (C, K, N)    nu statistics of a custom drift model, or NULL for PCM
 * prog_coeff (n_coeff,)      programming-noise polynomial (uS), lowest order first
 * dp         g_max, g_max_reference, prog_noise_scale, drift_scale, err_scale, n_norm,
 *            log2 of the relative conductance below which Q_s is capped
 * compensation 0 none, 1 one group, 2 per group; n_groups groups of N / n_groups weights
 * w_sq       (n_groups,)     sum of w^2 per group
 * scratch    (4 * K + 2) * BLK floats per call
 * out        (C,)            TNMSE
 */
void tnmse_block(
    int64_t c0, int64_t c1, int64_t n_dev, int64_t n_w, int64_t n_bins, int64_t n_t,
    const float* g_a, const float* g_b, const int32_t* lo, const float* frac,
    const float* coef, const float* w,
    const float* z, int64_t zs_t, int64_t zs_k, int64_t zs_c, int64_t zs_d,
    const float* log_ratio, const float* read_factor,
    const float* mu_in, const float* sig_in,
    const float* prog_coeff, int64_t n_coeff, const double* dp,
    int64_t compensation, int64_t n_groups, const double* w_sq,
    float* scratch, double* acc, double* out)
{
    const float g_max = (float)dp[0];
    const float sig_scale = (float)(dp[0] / dp[1] * dp[2]);
    const float drift_scale = (float)dp[3];
    const double err2 = dp[4] * dp[4];
    const double n_norm = dp[5];
    const float q_floor = (float)dp[6];
    const float log2_gmax = log2f(g_max);
    const int64_t gsize = n_w / n_groups;
    float* G = scratch;
    float* S = G + n_dev * BLK;
    float* M = S + n_dev * BLK;
    float* SN = M + n_dev * BLK;
    float* WT = SN + n_dev * BLK;
    float* WP = WT + BLK;
    for (int64_t c = c0; c < c1; ++c) {
        const float* cf = coef + c * n_dev;
        double total = 0.0;
        for (int64_t gi = 0; gi < n_groups; ++gi) {
            for (int64_t i = 0; i < 4 * n_t; ++i) acc[i] = 0.0;
            const int64_t g_end = (gi + 1) * gsize;
            for (int64_t n0 = gi * gsize; n0 < g_end; n0 += BLK) {
                const int64_t nb = n0 + BLK < g_end ? BLK : g_end - n0;
                /* time-independent quantities of this block, per device */
                for (int64_t d = 0; d < n_dev; ++d) {
                    setup_args su;
                    su.a = g_a + (c * n_dev + d) * n_bins;
                    su.b = g_b + (c * n_dev + d) * n_bins;
                    su.lo = lo + n0;
                    su.frac = frac + n0;
                    su.mu = mu_in ? mu_in + (c * n_dev + d) * n_w + n0 : NULL;
                    su.sig = mu_in ? sig_in + (c * n_dev + d) * n_w + n0 : NULL;
                    su.prog_coeff = prog_coeff;
                    su.n_coeff = n_coeff;
                    su.n_bins = n_bins;
                    su.inv_gmax = 1.0f / g_max;
                    su.sig_scale = sig_scale;
                    su.drift_scale = drift_scale;
                    su.G = G + d * BLK; su.S = S + d * BLK;
                    su.M = M + d * BLK; su.SN = SN + d * BLK;
#if defined(__AVX512F__) && !defined(ANATILE_PORTABLE)
                    block_setup_avx512(&su, nb);
#else
                    block_setup_portable(&su, nb);
#endif
                }
                const float* wn = w + n0;
                for (int64_t t = 0; t < n_t; ++t) {
                    const float* z0 = z + t * zs_t + c * zs_c + n0;
                    step_args sa;
                    sa.nl = -(float)log_ratio[t] * LOG2E_F;
                    sa.rf = read_factor[t] * 0.0088f;
                    sa.log2_gmax = log2_gmax;
                    sa.q_floor = q_floor;
                    for (int64_t d = 0; d < n_dev; ++d) {
                        sa.G = G + d * BLK; sa.S = S + d * BLK;
                        sa.M = M + d * BLK; sa.SN = SN + d * BLK;
                        sa.za = z0 + d * zs_d;
                        sa.zb = z0 + zs_k + d * zs_d;
                        sa.zc = z0 + 2 * zs_k + d * zs_d;
                        sa.cd = cf[d];
                        sa.first = d == 0;
#if defined(__AVX512F__) && !defined(ANATILE_PORTABLE)
                        device_step_avx512(&sa, nb, WT, WP);
#else
                        device_step_portable(&sa, nb, WT, WP);
#endif
                    }
                    float fdd = 0.0f, fdw = 0.0f, fnow = 0.0f, fref = 0.0f;
                    #pragma omp simd reduction(+:fdd,fdw,fnow,fref)
                    for (int64_t j = 0; j < nb; ++j) {
                        float dl = WT[j] - wn[j];
                        fdd += dl * dl;
                        fdw += dl * wn[j];
                        fnow += fabsf(WT[j]);
                        fref += fabsf(WP[j]);
                    }
                    acc[4 * t] += fdd;
                    acc[4 * t + 1] += fdw;
                    acc[4 * t + 2] += fnow;
                    acc[4 * t + 3] += fref;
                }
            }
            /* sum (alpha*w_t - w)^2 = a^2 sum d^2 + 2a(a-1) sum d w + (a-1)^2 sum w^2 with
             * d = w_t - w: no cancellation between large sums */
            for (int64_t t = 0; t < n_t; ++t) {
                double sdd = acc[4 * t], sdw = acc[4 * t + 1];
                double snow = acc[4 * t + 2], sref = acc[4 * t + 3];
                double err;
                if (compensation == 0) {
                    err = sdd;
                } else {
                    double alpha = snow > 1e-30 ? sref / snow : 1.0;
                    double am1 = alpha - 1.0;
                    err = alpha * alpha * sdd + 2.0 * alpha * am1 * sdw + am1 * am1 * w_sq[gi];
                }
                total += err * err2;
            }
        }
        out[c] = total / n_norm;
    }
}
