//! The AVX-512 bodies of the packed products and of attention, where the CPU has AVX-512F and
//! VL. A 512-bit
//! register holds two rows' 8-float pieces of the packed layout at once (`r0[i] r1[i]` or
//! `r2[i] r3[i]`), so a block of 4 rows is two widenings and two multiply-adds per input instead
//! of four and four, and 32 registers let up to [`GROUP`] inputs share one pass over a block.
//! Each lane sums the same products in the same order as the AVX2 kernels in `avx.rs`, and each
//! row's 8 lanes are added up by the same `hsum`: the results are the same to the bit.

use super::avx::{hsum, lanes, registers, Register};
use super::{HalfHead, Head};
use crate::learn::fused::exp_neg;
use std::arch::x86_64::*;

impl Register for __m512 {}
impl Register for __m256i {}

/// Inputs that go through a block of weights together: 2 accumulators each, 16 of the 32
/// registers for 8, leaving room for the two weight registers and the input.
pub const GROUP: usize = 8;

/// Two rows' 8 f32 weights as stored.
#[inline(always)]
fn as_is(v: __m512) -> __m512 {
    v
}

/// Two rows' 8 half-float weights, widened.
#[inline]
#[target_feature(enable = "avx512f")]
fn widen_half(v: __m256i) -> __m512 {
    _mm512_cvtph_ps(v)
}

/// The lanes of one pair register's first row (0) or second row (1).
#[target_feature(enable = "avx512f")]
fn half_of(v: __m512, second: bool) -> __m256 {
    let d = _mm512_castps_pd(v);
    let h = if second {
        _mm512_extractf64x4_pd::<1>(d)
    } else {
        _mm512_castpd512_pd256(d)
    };
    _mm256_castpd_ps(h)
}

thread_local! {
    /// The inputs of a call interleaved (see `$many`), kept from call to call.
    static INTERLEAVED: std::cell::RefCell<Vec<__m256>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// As `avx.rs`'s `packed_products`: `$one` is `y = W x`, `$many` is `k` products reading `W`
/// once; `$reg` holds two rows' 8 weights as stored and `$widen` makes them 16 f32.
macro_rules! packed_products {
    ($features:literal, $reg:ty, $widen:ident, $one:ident, $many:ident, $group:ident) => {
        #[target_feature(enable = $features)]
        pub fn $one(w: &[f32], n: usize, x: &[f32], y: &mut [f32]) -> bool {
            let rows = y.len();
            $many(w, n, x, y, rows)
        }

        /// `k` products at once (`xs` holds `k` inputs of `8 n`, `ys` `k` outputs of `rows`).
        /// Several inputs are first interleaved (the `i`-th 8 floats of every input side by side),
        /// so the inner loop reads them through one pointer instead of one per input.
        #[target_feature(enable = $features)]
        pub fn $many(w: &[f32], n: usize, xs: &[f32], ys: &mut [f32], rows: usize) -> bool {
            let (Some(w), Some(xs)) = (registers::<$reg>(w), lanes(xs)) else {
                return false;
            };
            let k = xs.len() / n.max(1);
            if n == 0
                || k * n != xs.len()
                || ys.len() != k * rows
                || w.len() < rows.div_ceil(4) * 2 * n
            {
                return false;
            }
            let (pairs, _) = w.as_chunks::<2>();
            let run = |xt: &[__m256], ys: &mut [f32]| {
                for (b, block) in pairs.chunks_exact(n).take(rows.div_ceil(4)).enumerate() {
                    let live = (rows - 4 * b).min(4);
                    let mut v = 0;
                    while v < k {
                        let at = Group {
                            block,
                            xt,
                            k,
                            first: v,
                            row: 4 * b,
                            live,
                            rows,
                        };
                        v += match k - v {
                            1 => $group::<1>(at, ys),
                            2 => $group::<2>(at, ys),
                            3 => $group::<3>(at, ys),
                            4 => $group::<4>(at, ys),
                            5 => $group::<5>(at, ys),
                            6 => $group::<6>(at, ys),
                            7 => $group::<7>(at, ys),
                            _ => $group::<GROUP>(at, ys),
                        };
                    }
                }
            };
            if k == 1 {
                // One input is its own interleaving: no copy on the one-take path.
                run(xs, ys);
            } else {
                INTERLEAVED.with_borrow_mut(|xt| {
                    xt.clear();
                    xt.extend((0..n * k).map(|j| xs[(j % k) * n + j / k]));
                    run(xt, ys);
                });
            }
            true
        }

        /// `G` inputs from `at.first` through one block of 4 rows; returns `G`.
        #[target_feature(enable = $features)]
        fn $group<const G: usize>(at: Group<'_, $reg>, ys: &mut [f32]) -> usize {
            let mut acc = [[_mm512_setzero_ps(); 2]; G];
            for (q, xi) in at.block.iter().zip(at.xt.chunks_exact(at.k)) {
                _mm_prefetch::<_MM_HINT_T0>(
                    (q as *const [$reg; 2] as *const i8).wrapping_add(1024),
                );
                let (w01, w23) = ($widen(q[0]), $widen(q[1]));
                let x: &[__m256; G] = xi[at.first..].first_chunk().expect("G inputs left");
                for g in 0..G {
                    // The input's 8 floats in both halves, for both rows of a pair.
                    let xd = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(x[g])));
                    acc[g][0] = _mm512_fmadd_ps(w01, xd, acc[g][0]);
                    acc[g][1] = _mm512_fmadd_ps(w23, xd, acc[g][1]);
                }
            }
            for (g, a) in acc.iter().enumerate() {
                let out = &mut ys[(at.first + g) * at.rows + at.row..][..at.live];
                for (r, o) in out.iter_mut().enumerate() {
                    *o = hsum(half_of(a[r / 2], r % 2 == 1));
                }
            }
            G
        }
    };
}

/// Where one group reads and writes.
#[derive(Clone, Copy)]
struct Group<'a, R> {
    /// The block's weights: `n` sets of 2 pair registers (rows 0-1, rows 2-3).
    block: &'a [[R; 2]],
    /// The `k` inputs interleaved: their `i`-th registers at `i k .. i k + k`.
    xt: &'a [__m256],
    k: usize,
    /// The group's first input.
    first: usize,
    /// The block's first row, and its rows that exist (the last block may have fewer than 4).
    row: usize,
    live: usize,
    /// Rows of one output.
    rows: usize,
}

packed_products!(
    "avx512f,avx512vl,avx2,fma",
    __m512,
    as_is,
    matvec_packed,
    matvec_many_packed,
    group_f32
);
packed_products!(
    "avx512f,avx512vl,avx2,fma,f16c",
    __m256i,
    widen_half,
    matvec_packed_half,
    matvec_many_packed_half,
    group_half
);

/// 16 keys from `p`, the lanes of `m` only.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn keys_f32(p: *const f32, m: __mmask16) -> __m512 {
    _mm512_maskz_loadu_ps(m, p)
}

/// 16 half-float keys from `p`, widened: a whole register, as the rows are padded (the lanes
/// past the last position are masked out afterwards).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn keys_half(p: *const u16, _m: __mmask16) -> __m512 {
    _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn values_f32(p: *const f32) -> __m512 {
    _mm512_loadu_ps(p)
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn values_half(p: *const u16) -> __m512 {
    _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
}

/// Attention for one query over one head's cache as stored (`$keys` and `$values` read 16 of
/// them as f32): 16 positions a register, the last ones masked, the exponentials by the
/// trainer's [`exp_neg`]; `false` when the head width is not whole registers.
macro_rules! attention {
    ($(#[$doc:meta])* $features:literal, $name:ident, $head:ident, $keys:ident, $values:ident) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub fn $name(q: &[f32], head: $head<'_>, scores: &mut [f32], out: &mut [f32]) -> bool {
            let (keys, values, stride, scale) = (head.keys, head.values, head.stride, head.scale);
            let (hd, n) = (q.len(), scores.len());
            if !hd.is_multiple_of(16) || n == 0 {
                return false;
            }
            let mask = |j: usize| -> __mmask16 { (((1u32 << (n - j).min(16)) - 1) & 0xffff) as u16 };
            let (kp, sp) = (keys.as_ptr(), scores.as_mut_ptr());
            let mut maxv = _mm512_set1_ps(f32::NEG_INFINITY);
            for j in (0..n).step_by(16) {
                let m = mask(j);
                let mut acc = _mm512_setzero_ps();
                for (d, &qd) in q.iter().enumerate() {
                    // SAFETY: the lanes of `m` lie below `d * stride + n <= keys.len()`, and a
                    // whole register of halves lies inside the padded rows (checked by the caller).
                    let k = unsafe { $keys(kp.add(d * stride + j), m) };
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(qd), k, acc);
                }
                let s = _mm512_mul_ps(acc, _mm512_set1_ps(scale));
                maxv = _mm512_mask_max_ps(maxv, m, maxv, s);
                // SAFETY: the lanes of `m` lie below `n = scores.len()`.
                unsafe { _mm512_mask_storeu_ps(sp.add(j), m, s) };
            }
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(maxv));
            let mut sumv = _mm512_setzero_ps();
            for j in (0..n).step_by(16) {
                let m = mask(j);
                // SAFETY: as above.
                let s = unsafe { _mm512_maskz_loadu_ps(m, sp.add(j)) };
                let e = _mm512_maskz_mov_ps(m, exp_neg(_mm512_sub_ps(s, max)));
                sumv = _mm512_add_ps(sumv, e);
                // SAFETY: as above.
                unsafe { _mm512_mask_storeu_ps(sp.add(j), m, e) };
            }
            let inv = 1.0 / _mm512_reduce_add_ps(sumv);
            let vp = values.as_ptr();
            // The output in pieces of up to 4 registers, each summed over every position.
            for first in (0..hd / 16).step_by(4) {
                let regs = (hd / 16 - first).min(4);
                let mut acc = [_mm512_setzero_ps(); 4];
                for (j, s) in scores.iter().enumerate() {
                    let p = _mm512_set1_ps(s * inv);
                    for (r, a) in acc.iter_mut().enumerate().take(regs) {
                        // SAFETY: `j * hd + 16 (first + r) + 16 <= n hd <= values.len()`.
                        let v = unsafe { $values(vp.add(j * hd + 16 * (first + r))) };
                        *a = _mm512_fmadd_ps(p, v, *a);
                    }
                }
                for (r, a) in acc.iter().enumerate().take(regs) {
                    // SAFETY: `16 (first + r) + 16 <= hd = out.len()`.
                    unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(16 * (first + r)), *a) };
                }
            }
            true
        }
    };
}

attention!(
    /// [`super::attend`] (its lengths checked there), over f32 keys and values.
    "avx512f,avx512vl,avx2,fma",
    attend,
    Head,
    keys_f32,
    values_f32
);
attention!(
    /// [`super::attend_half`] (its lengths checked there), over half floats.
    "avx512f,avx512vl,avx2,fma,f16c",
    attend_half,
    HalfHead,
    keys_half,
    values_half
);
