//! The AVX2 + FMA (and F16C) bodies of the kernels. Each returns `false` (or `None`) when its
//! buffers are not aligned whole registers, and the caller falls back to its plain loop.
//!
//! Whole registers are read through `&[__m256]` (from `align_to`), never through
//! `_mm256_loadu_ps`: with debug assertions on (our dev profile) that one copies through the
//! stack with a check on every call, four times slower.

use super::{HalfHead, Head};
use std::arch::x86_64::*;

/// A SIMD register type: every bit pattern is a valid value.
pub(super) trait Register: Copy {}
impl Register for __m256 {}
impl Register for __m128i {}

/// `x` as whole registers of `R`, if it is aligned to them and a whole number of them long.
pub(super) fn registers<R: Register>(x: &[f32]) -> Option<&[R]> {
    // SAFETY: every bit pattern is a valid f32 and a valid `R`.
    let (head, body, tail) = unsafe { x.align_to::<R>() };
    (head.is_empty() && tail.is_empty()).then_some(body)
}

/// `x` as whole aligned registers of 8 floats.
pub(super) fn lanes(x: &[f32]) -> Option<&[__m256]> {
    registers(x)
}

fn lanes_mut(x: &mut [f32]) -> Option<&mut [__m256]> {
    // SAFETY: as in `registers`.
    let (head, body, tail) = unsafe { x.align_to_mut::<__m256>() };
    (head.is_empty() && tail.is_empty()).then_some(body)
}

#[target_feature(enable = "avx2,fma")]
pub(super) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2,fma")]
fn dot_lanes(a: &[__m256], b: &[__m256]) -> f32 {
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let (pa, pb) = (a.chunks_exact(2), b.chunks_exact(2));
    if let (Some(x), Some(y)) = (pa.remainder().first(), pb.remainder().first()) {
        acc1 = _mm256_mul_ps(*x, *y);
    }
    for (x, y) in pa.zip(pb) {
        acc0 = _mm256_fmadd_ps(x[0], y[0], acc0);
        acc1 = _mm256_fmadd_ps(x[1], y[1], acc1);
    }
    hsum(_mm256_add_ps(acc0, acc1))
}

/// `a . b` for equal lengths; `None` when not aligned whole registers.
#[target_feature(enable = "avx2,fma")]
pub fn dot(a: &[f32], b: &[f32]) -> Option<f32> {
    Some(dot_lanes(lanes(a)?, lanes(b)?))
}

/// Row-major `W`, four rows at a time, so each register of `x` read serves four rows.
#[target_feature(enable = "avx2,fma")]
pub fn matvec(w: &[f32], inp: usize, x: &[f32], y: &mut [f32]) -> bool {
    let (Some(w), Some(x)) = (lanes(w), lanes(x)) else {
        return false;
    };
    if !inp.is_multiple_of(8) {
        return false;
    }
    let n = inp / 8;
    let mut rows = w.chunks_exact(4 * n);
    let mut out = y.chunks_exact_mut(4);
    for (block, ys) in (&mut rows).zip(&mut out) {
        let (r0, rest) = block.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        let mut a0 = _mm256_setzero_ps();
        let mut a1 = _mm256_setzero_ps();
        let mut a2 = _mm256_setzero_ps();
        let mut a3 = _mm256_setzero_ps();
        for i in 0..n {
            let xv = x[i];
            a0 = _mm256_fmadd_ps(r0[i], xv, a0);
            a1 = _mm256_fmadd_ps(r1[i], xv, a1);
            a2 = _mm256_fmadd_ps(r2[i], xv, a2);
            a3 = _mm256_fmadd_ps(r3[i], xv, a3);
        }
        ys.copy_from_slice(&[hsum(a0), hsum(a1), hsum(a2), hsum(a3)]);
    }
    let rest = rows.remainder();
    for (o, v) in out.into_remainder().iter_mut().enumerate() {
        *v = dot_lanes(&rest[o * n..][..n], x);
    }
    true
}

/// Eight f32 weights as they are stored.
#[inline(always)]
fn as_is(v: __m256) -> __m256 {
    v
}

/// The products over packed weights (blocks of 4 rows interleaved by 8, one sequential stream
/// prefetched ahead), one body for both weight types: `$reg` holds 8 weights as stored (`__m256`
/// of f32, or `__m128i` of half floats) and `$widen` makes them 8 f32. `$one` is `y = W x`,
/// `$many` is `k` products reading `W` once (through `$group`).
macro_rules! packed_products {
    ($features:literal, $reg:ty, $widen:ident, $one:ident, $many:ident, $group:ident) => {
        #[target_feature(enable = $features)]
        pub fn $one(w: &[f32], n: usize, x: &[f32], y: &mut [f32]) -> bool {
            let (Some(w), Some(x)) = (registers::<$reg>(w), lanes(x)) else {
                return false;
            };
            let (quads, _) = w.as_chunks::<4>();
            for (block, ys) in quads.chunks_exact(n).zip(y.chunks_mut(4)) {
                let mut a0 = _mm256_setzero_ps();
                let mut a1 = _mm256_setzero_ps();
                let mut a2 = _mm256_setzero_ps();
                let mut a3 = _mm256_setzero_ps();
                for (q, xv) in block.iter().zip(x) {
                    // 1 KiB ahead.
                    _mm_prefetch::<_MM_HINT_T0>(
                        (q as *const [$reg; 4] as *const i8).wrapping_add(1024),
                    );
                    a0 = _mm256_fmadd_ps($widen(q[0]), *xv, a0);
                    a1 = _mm256_fmadd_ps($widen(q[1]), *xv, a1);
                    a2 = _mm256_fmadd_ps($widen(q[2]), *xv, a2);
                    a3 = _mm256_fmadd_ps($widen(q[3]), *xv, a3);
                }
                let s = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
                ys.copy_from_slice(&s[..ys.len()]);
            }
            true
        }

        /// `k` products at once (`xs` holds `k` inputs of `8 n`, `ys` `k` outputs of `rows`),
        /// each block of 4 rows read from memory once for all of them: the inputs go through it
        /// in groups of up to [`GROUP`] while it stays in the L1 cache. Each output is summed in
        /// the same order as `$one`'s, so the results are the same to the bit.
        #[target_feature(enable = $features)]
        pub fn $many(w: &[f32], n: usize, xs: &[f32], ys: &mut [f32], rows: usize) -> bool {
            let (Some(w), Some(xs)) = (registers::<$reg>(w), lanes(xs)) else {
                return false;
            };
            let k = xs.len() / n.max(1);
            if n == 0 || k * n != xs.len() || ys.len() != k * rows {
                return false;
            }
            let (quads, _) = w.as_chunks::<4>();
            for (b, block) in quads.chunks_exact(n).take(rows.div_ceil(4)).enumerate() {
                let live = (rows - 4 * b).min(4);
                let mut v = 0;
                while v < k {
                    let at = Group {
                        block,
                        xs,
                        n,
                        first: v,
                        row: 4 * b,
                        live,
                        rows,
                    };
                    v += match k - v {
                        1 => $group::<1>(at, ys),
                        _ => $group::<GROUP>(at, ys),
                    };
                }
            }
            true
        }

        /// `G` inputs from `at.first` through one block of 4 rows; returns `G`.
        #[target_feature(enable = $features)]
        fn $group<const G: usize>(at: Group<'_, $reg>, ys: &mut [f32]) -> usize {
            // Slices of the block's length, so the loop below needs no bounds checks.
            let n = at.n;
            let block = &at.block[..n];
            let x: [&[__m256]; G] = std::array::from_fn(|g| &at.xs[(at.first + g) * n..][..n]);
            let mut acc = [[_mm256_setzero_ps(); 4]; G];
            for i in 0..n {
                let q = &block[i];
                _mm_prefetch::<_MM_HINT_T0>(
                    (q as *const [$reg; 4] as *const i8).wrapping_add(1024),
                );
                let xv: [__m256; G] = std::array::from_fn(|g| x[g][i]);
                for r in 0..4 {
                    let wr = $widen(q[r]);
                    for g in 0..G {
                        acc[g][r] = _mm256_fmadd_ps(wr, xv[g], acc[g][r]);
                    }
                }
            }
            for (g, a) in acc.iter().enumerate() {
                let out = &mut ys[(at.first + g) * at.rows + at.row..][..at.live];
                for (o, a) in out.iter_mut().zip(a) {
                    *o = hsum(*a);
                }
            }
            G
        }
    };
}

/// Inputs that go through a block of weights together in [`matvec_many_packed`]: 4 rows of
/// accumulators each, 8 registers of the 16 for 2, leaving room for the inputs and the weights
/// (3 spill, and run slower than 2 twice).
const GROUP: usize = 2;

/// Where one group of [`matvec_many_packed`] reads and writes.
#[derive(Clone, Copy)]
struct Group<'a, R> {
    /// The block's weights: `n` sets of 4 rows of 8.
    block: &'a [[R; 4]],
    xs: &'a [__m256],
    n: usize,
    /// The group's first input.
    first: usize,
    /// The block's first row, and its rows that exist (the last block may have fewer than 4).
    row: usize,
    live: usize,
    /// Rows of one output.
    rows: usize,
}

packed_products!(
    "avx2,fma",
    __m256,
    as_is,
    matvec_packed,
    matvec_many_packed,
    group_f32
);
packed_products!(
    "avx2,fma,f16c",
    __m128i,
    _mm256_cvtph_ps,
    matvec_packed_half,
    matvec_many_packed_half,
    group_half
);

/// [`super::to_half`]: halves written from the front of `data` (each 8 floats become 16 bytes,
/// never past what was read), and `w` rounded to the same values.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn to_half(data: &mut [f32], w: &mut [f32]) {
    let mut wc = w.chunks_exact_mut(8);
    for v in &mut wc {
        // SAFETY: `v` holds 8 floats.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(v.as_ptr()));
            _mm256_storeu_ps(v.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
    for v in wc.into_remainder() {
        let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set1_ps(*v));
        *v = _mm_cvtss_f32(_mm_cvtph_ps(h));
    }
    let p = data.as_mut_ptr();
    for i in 0..data.len() / 8 {
        // SAFETY: reads floats 8i..8i+8, writes bytes 16i..16i+16 (floats 4i..4i+4), which
        // were read already.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(p.add(8 * i)));
            _mm_storeu_si128(p.add(4 * i) as *mut __m128i, h);
        }
    }
}

/// [`super::attend`] (its lengths checked there), 8 positions a step; `false` when the head
/// width is not whole registers.
#[target_feature(enable = "avx2,fma")]
pub fn attend(q: &[f32], head: Head<'_>, scores: &mut [f32], out: &mut [f32]) -> bool {
    let (keys, values, stride, scale) = (head.keys, head.values, head.stride, head.scale);
    let (hd, n) = (q.len(), scores.len());
    if !hd.is_multiple_of(8) || n == 0 {
        return false;
    }
    // Positions in whole registers; the last few one by one.
    let whole = n / 8 * 8;
    let kp = keys.as_ptr();
    let mut max = f32::NEG_INFINITY;
    for j in (0..whole).step_by(8) {
        let mut acc = _mm256_setzero_ps();
        for (d, &qd) in q.iter().enumerate() {
            // SAFETY: `d * stride + j + 8 <= (hd - 1) * stride + n <= keys.len()`.
            let k = unsafe { _mm256_loadu_ps(kp.add(d * stride + j)) };
            acc = _mm256_fmadd_ps(_mm256_set1_ps(qd), k, acc);
        }
        let s = _mm256_mul_ps(acc, _mm256_set1_ps(scale));
        // SAFETY: `j + 8 <= n = scores.len()`.
        unsafe { _mm256_storeu_ps(scores.as_mut_ptr().add(j), s) };
    }
    for j in whole..n {
        scores[j] = q
            .iter()
            .enumerate()
            .map(|(d, qd)| qd * keys[d * stride + j])
            .sum::<f32>()
            * scale;
    }
    for s in scores.iter() {
        max = max.max(*s);
    }
    // SAFETY: `j * hd + 8 r + 8 <= n hd <= values.len()` for every position `j` and register `r`.
    weigh(scores, max, out, |at| unsafe {
        _mm256_loadu_ps(values.as_ptr().add(at))
    })
}

/// The scores' softmax (`max` the largest), then `out` = the values weighted by it; `value(at)`
/// reads the 8 value entries from entry `at` (position `j`'s register `r` at `j hd + 8 r`) as f32.
#[target_feature(enable = "avx2,fma")]
fn weigh(scores: &mut [f32], max: f32, out: &mut [f32], value: impl Fn(usize) -> __m256) -> bool {
    let hd = out.len();
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    let Some(out) = lanes_mut(out) else {
        return false;
    };
    out.fill(_mm256_setzero_ps());
    let inv = 1.0 / sum;
    for (j, s) in scores.iter().enumerate() {
        let p = _mm256_set1_ps(s * inv);
        for (r, o) in out.iter_mut().enumerate() {
            *o = _mm256_fmadd_ps(p, value(j * hd + 8 * r), *o);
        }
    }
    true
}

/// `y += a x` for equal lengths; `false` when not aligned whole registers.
#[target_feature(enable = "avx2,fma")]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) -> bool {
    let (Some(y), Some(x)) = (lanes_mut(y), lanes(x)) else {
        return false;
    };
    let av = _mm256_set1_ps(a);
    for (y, x) in y.iter_mut().zip(x) {
        *y = _mm256_fmadd_ps(av, *x, *y);
    }
    true
}

/// `x` rounded to the nearest half float.
#[target_feature(enable = "avx2,f16c")]
pub fn narrow(x: f32) -> u16 {
    _mm_extract_epi16::<0>(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set1_ps(x))) as u16
}

/// `src` rounded to half floats into `dst` (as long).
#[target_feature(enable = "avx2,f16c")]
pub fn narrow_into(src: &[f32], dst: &mut [u16]) {
    let (mut s, mut d) = (src.chunks_exact(8), dst.chunks_exact_mut(8));
    for (s, d) in (&mut s).zip(&mut d) {
        // SAFETY: `s` holds 8 floats and `d` room for 8 halves.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(s.as_ptr()));
            _mm_storeu_si128(d.as_mut_ptr() as *mut __m128i, h);
        }
    }
    for (x, h) in s.remainder().iter().zip(d.into_remainder()) {
        *h = narrow(*x);
    }
}

/// [`super::attend_half`] (its lengths checked there), 8 positions a step, each register of
/// half floats widened as it is read; `false` when the head width is not whole registers.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn attend_half(q: &[f32], head: HalfHead<'_>, scores: &mut [f32], out: &mut [f32]) -> bool {
    let (keys, values, stride, scale) = (head.keys, head.values, head.stride, head.scale);
    let (hd, n) = (q.len(), scores.len());
    if !hd.is_multiple_of(8) || n == 0 {
        return false;
    }
    let kp = keys.as_ptr();
    for j in (0..n).step_by(8) {
        let mut acc = _mm256_setzero_ps();
        for (d, &qd) in q.iter().enumerate() {
            // SAFETY: `d * stride + j + 8 <= keys.len()` (checked by the caller).
            let k = unsafe { _mm_loadu_si128(kp.add(d * stride + j) as *const __m128i) };
            acc = _mm256_fmadd_ps(_mm256_set1_ps(qd), _mm256_cvtph_ps(k), acc);
        }
        let mut s = [0.0f32; 8];
        // SAFETY: `s` holds 8 floats.
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), _mm256_mul_ps(acc, _mm256_set1_ps(scale))) };
        let live = (n - j).min(8);
        scores[j..j + live].copy_from_slice(&s[..live]);
    }
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, s| m.max(*s));
    let vp = values.as_ptr();
    // SAFETY: `j * hd + 8 r + 8 <= n hd <= values.len()` for every position `j` and register `r`.
    weigh(scores, max, out, |at| unsafe {
        _mm256_cvtph_ps(_mm_loadu_si128(vp.add(at) as *const __m128i))
    })
}
