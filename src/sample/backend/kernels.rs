//! The decoder's buffers and inner loops: floats aligned for whole AVX registers ([`AVec`]), a
//! weight matrix packed as the products read it ([`Packed`]), and the kernels over them: AVX2 +
//! FMA (F16C for half floats) when the CPU has them, checked once, plain loops otherwise. The
//! intrinsics are in `avx.rs`; each function here picks them or its plain loop.

#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
mod avx;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Sixteen floats aligned to 64 bytes (one AVX-512 register, two AVX registers).
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Lane([f32; 16]);

/// A float buffer aligned to 64 bytes, so the kernels can read whole registers from it.
#[derive(Clone, Default)]
pub(crate) struct AVec {
    lanes: Vec<Lane>,
    len: usize,
}

impl AVec {
    pub(crate) fn zeros(n: usize) -> AVec {
        let mut v = AVec::default();
        v.resize(n);
        v
    }

    pub(crate) fn from_slice(x: &[f32]) -> AVec {
        let mut v = AVec::zeros(x.len());
        v.copy_from_slice(x);
        v
    }

    /// Sets the length to `n` (new floats are 0; no allocation once the capacity is there).
    pub(crate) fn resize(&mut self, n: usize) {
        self.lanes.resize(n.div_ceil(16), Lane::default());
        self.len = n;
    }

    /// The buffer's bytes as half floats (two to a float slot).
    pub(crate) fn halves(&self) -> &[u16] {
        // SAFETY: `lanes` holds at least `len` initialised floats, `2 len` halves' worth.
        unsafe { std::slice::from_raw_parts(self.lanes.as_ptr() as *const u16, 2 * self.len) }
    }

    pub(crate) fn halves_mut(&mut self) -> &mut [u16] {
        // SAFETY: as above, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lanes.as_mut_ptr() as *mut u16, 2 * self.len) }
    }
}

impl std::ops::Deref for AVec {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: `lanes` holds at least `len` initialised floats, contiguous (repr C).
        unsafe { std::slice::from_raw_parts(self.lanes.as_ptr() as *const f32, self.len) }
    }
}

impl std::ops::DerefMut for AVec {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as above, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lanes.as_mut_ptr() as *mut f32, self.len) }
    }
}

/// A `(rows, inp)` row-major matrix for matrix-vector products, packed so the kernel reads it
/// as one sequential stream: blocks of 4 rows, interleaved 8 floats at a time
/// (`r0[0..8] r1[0..8] r2[0..8] r3[0..8] r0[8..16] ...`). Plain row-major when `inp` is not a
/// multiple of 8.
pub(crate) struct Packed {
    data: AVec,
    rows: usize,
    inp: usize,
    packed: bool,
    /// `data` holds IEEE half floats, two to a slot (see [`super::Weights::F16`]).
    half: bool,
}

impl Packed {
    /// Packs `w`; with `half`, rounds it to half floats (and rounds `w` in place to the same
    /// values, so other products over `w` agree) where the CPU can read them.
    pub(crate) fn new(w: &mut [f32], rows: usize, inp: usize, half: bool) -> Packed {
        assert_eq!(w.len(), rows * inp);
        if !inp.is_multiple_of(8) {
            return Packed {
                data: AVec::from_slice(w),
                rows,
                inp,
                packed: false,
                half: false,
            };
        }
        let n = inp / 8;
        let mut data = AVec::zeros(rows.div_ceil(4) * 4 * inp);
        for row in 0..rows {
            let (block, r) = (row / 4, row % 4);
            for i in 0..n {
                let to = ((block * n + i) * 4 + r) * 8;
                data[to..to + 8].copy_from_slice(&w[row * inp + i * 8..][..8]);
            }
        }
        let half = half && to_half(&mut data, w);
        Packed {
            data,
            rows,
            inp,
            packed: true,
            half,
        }
    }

    /// `y = W x` (`y` has `rows` entries).
    pub(crate) fn matvec(&self, x: &[f32], y: &mut [f32]) {
        self.all().matvec(x, y);
    }

    /// `k` products reading `W` once: `xs` holds `k` inputs of `inp` one after the other, `ys`
    /// gets their `k` outputs of `rows` one after the other. Each output is exactly what
    /// [`Packed::matvec`] gives for its input.
    pub(crate) fn matvec_many(&self, xs: &[f32], k: usize, ys: &mut [f32]) {
        self.all().matvec_many(xs, k, ys);
    }

    /// Every row.
    fn all(&self) -> Rows<'_> {
        Rows {
            data: &self.data,
            rows: self.rows,
            inp: self.inp,
            packed: self.packed,
            half: self.half,
        }
    }

    /// The rows in two halves (at a block of 4), for two cores: each gives exactly the outputs
    /// of its rows that the whole gives. `None` for a matrix too small to split or not packed.
    pub(crate) fn row_halves(&self) -> Option<(Rows<'_>, Rows<'_>)> {
        let blocks = self.rows.div_ceil(4);
        if !self.packed || blocks < 2 {
            return None;
        }
        let top = 4 * (blocks / 2);
        let floats_per_row = if self.half { self.inp / 2 } else { self.inp };
        let (a, b) = self.data.split_at(top * floats_per_row);
        let all = self.all();
        Some((
            Rows {
                data: a,
                rows: top,
                ..all
            },
            Rows {
                data: b,
                rows: self.rows - top,
                ..all
            },
        ))
    }

    /// Bytes read per product.
    pub(crate) fn bytes(&self) -> usize {
        if self.half {
            2 * self.rows * self.inp
        } else {
            4 * self.rows * self.inp
        }
    }

    pub(crate) fn is_half(&self) -> bool {
        self.half
    }
}

/// Some of a [`Packed`] matrix's rows (from a block of 4 on), read as the whole is.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    data: &'a [f32],
    rows: usize,
    inp: usize,
    packed: bool,
    half: bool,
}

impl Rows<'_> {
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// As [`Packed::matvec`], for these rows.
    pub(crate) fn matvec(&self, x: &[f32], y: &mut [f32]) {
        assert!(y.len() == self.rows && x.len() >= self.inp);
        if self.packed {
            matvec_packed(self.data, self.half, self.inp, &x[..self.inp], y);
        } else {
            matvec(self.data, self.inp, x, y);
        }
    }

    /// As [`Packed::matvec_many`], for these rows.
    pub(crate) fn matvec_many(&self, xs: &[f32], k: usize, ys: &mut [f32]) {
        assert!(xs.len() >= k * self.inp && ys.len() == k * self.rows);
        let xs = &xs[..k * self.inp];
        if k > 1 && self.packed && matvec_many_packed(self.data, self.half, self.inp, xs, ys) {
            return;
        }
        for (x, y) in xs
            .chunks_exact(self.inp)
            .zip(ys.chunks_exact_mut(self.rows))
        {
            self.matvec(x, y);
        }
    }
}

/// AVX2 and FMA: the products and attention take `avx.rs`'s bodies. (x86-64 only: elsewhere
/// the plain loops run, and nothing asks.)
#[cfg(target_arch = "x86_64")]
fn simd() -> bool {
    static SIMD: OnceLock<bool> = OnceLock::new();
    *SIMD.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// AVX-512F and VL besides AVX2, FMA and F16C: the packed products and attention take
/// `avx512.rs`'s bodies (the same results to the bit for the products).
#[cfg(target_arch = "x86_64")]
fn simd512() -> bool {
    static SIMD512: OnceLock<bool> = OnceLock::new();
    *SIMD512.get_or_init(|| {
        simd_half() && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")
    })
}

/// AVX2, FMA and F16C (half-float conversion).
#[cfg(target_arch = "x86_64")]
fn simd_half() -> bool {
    static HALF: OnceLock<bool> = OnceLock::new();
    *HALF.get_or_init(|| simd() && is_x86_feature_detected!("f16c"))
}

/// Rounds the packed floats in `data` to half floats stored two to a slot in its first half
/// (`data` shrinks to that), and rounds `w` in place to the same values. `false` (nothing
/// changed) where the CPU lacks F16C.
fn to_half(data: &mut AVec, w: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if simd_half() && data.len().is_multiple_of(16) {
        // SAFETY: the CPU has AVX2 and F16C.
        unsafe { avx::to_half(data, w) };
        let n = data.len() / 2;
        data.resize(n);
        return true;
    }
    let _ = (data, w);
    false
}

/// `y[o] = W[o, :] . x` for `W` of `y.len()` rows of `inp`, row-major.
fn matvec(w: &[f32], inp: usize, x: &[f32], y: &mut [f32]) {
    assert!(w.len() >= y.len() * inp && x.len() >= inp);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX2 and FMA (checked once in `simd`).
    if simd() && unsafe { avx::matvec(&w[..y.len() * inp], inp, &x[..inp], y) } {
        return;
    }
    for (o, v) in y.iter_mut().enumerate() {
        *v = plain_dot(&w[o * inp..][..inp], &x[..inp]);
    }
}

/// `y = W x` for `W` packed in blocks of 4 rows interleaved by 8 floats (see [`Packed`]): f32,
/// or with `half` the half floats of [`to_half`].
fn matvec_packed(w: &[f32], half: bool, inp: usize, x: &[f32], y: &mut [f32]) {
    let n = inp / 8;
    let floats_per_block = if half { 16 } else { 32 } * n;
    assert!(inp.is_multiple_of(8) && w.len() >= y.len().div_ceil(4) * floats_per_block);
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each kernel runs only where the CPU has its features (checked first).
        let done = if simd512() {
            unsafe {
                if half {
                    avx512::matvec_packed_half(w, n, x, y)
                } else {
                    avx512::matvec_packed(w, n, x, y)
                }
            }
        } else if half {
            simd_half() && unsafe { avx::matvec_packed_half(w, n, x, y) }
        } else {
            simd() && unsafe { avx::matvec_packed(w, n, x, y) }
        };
        if done {
            return;
        }
    }
    // `to_half` only packs halves where the CPU has AVX2, FMA and F16C.
    assert!(!half, "half-float weights on a CPU without F16C");
    for (b, ys) in y.chunks_mut(4).enumerate() {
        let mut acc = [[0.0f32; 8]; 4];
        for i in 0..n {
            let at = (b * n + i) * 32;
            for (r, a) in acc.iter_mut().enumerate() {
                for k in 0..8 {
                    a[k] += w[at + r * 8 + k] * x[i * 8 + k];
                }
            }
        }
        for (v, a) in ys.iter_mut().zip(&acc) {
            *v = a.iter().sum();
        }
    }
}

/// Several products over one packed matrix (as [`matvec_packed`]), reading it once; `false`
/// (nothing done) where no SIMD kernel applies.
fn matvec_many_packed(w: &[f32], half: bool, inp: usize, xs: &[f32], ys: &mut [f32]) -> bool {
    let n = inp / 8;
    if !inp.is_multiple_of(8) || inp == 0 {
        return false;
    }
    let rows = ys.len() / (xs.len() / inp).max(1);
    #[cfg(target_arch = "x86_64")]
    if simd512() {
        // SAFETY: the CPU has AVX-512F and VL, AVX2, FMA and F16C (checked just above).
        let done = unsafe {
            if half {
                avx512::matvec_many_packed_half(w, n, xs, ys, rows)
            } else {
                avx512::matvec_many_packed(w, n, xs, ys, rows)
            }
        };
        if done {
            return true;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if (half && simd_half()) || (!half && simd()) {
        // SAFETY: the CPU has the features each kernel needs (checked just above).
        return unsafe {
            if half {
                avx::matvec_many_packed_half(w, n, xs, ys, rows)
            } else {
                avx::matvec_many_packed(w, n, xs, ys, rows)
            }
        };
    }
    let _ = (w, half, n, xs, ys, rows);
    false
}

/// One head's cached keys and values, as [`attend`] reads them. The keys are stored transposed, so
/// the scores of many positions come out of one register with no sum across it: entry `d` of key
/// `j` is `keys[d * stride + j]` (one row of at least the positions attended to per entry);
/// value `j` is `values[j * hd..][..hd]`.
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub stride: usize,
    /// Of the scores (1 / sqrt(head width)).
    pub scale: f32,
}

/// One head's attention for one query: `out = softmax(scale q.k_j) . v_j` over the positions
/// `j` of `scores.len()`.
pub(crate) fn attend(q: &[f32], head: Head<'_>, scores: &mut [f32], out: &mut [f32]) {
    let (keys, values, stride) = (head.keys, head.values, head.stride);
    let (hd, n) = (q.len(), scores.len());
    assert!(
        n <= stride
            && keys.len() >= (hd.max(1) - 1) * stride + n
            && values.len() >= n * hd
            && out.len() == hd
    );
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each body runs only where the CPU has its features (checked first); the
        // lengths are checked above.
        let done = (simd512() && unsafe { avx512::attend(q, head, scores, out) })
            || (simd() && unsafe { avx::attend(q, head, scores, out) });
        if done {
            return;
        }
    }
    plain_attend(q, head, scores, out);
}

/// One head's cached keys and values as half floats, laid out as [`Head`]'s; the keys' rows
/// are read whole registers (16 halves) at a time, so `keys` runs at least that far past the
/// last position of its last row.
#[derive(Clone, Copy)]
pub(crate) struct HalfHead<'a> {
    pub keys: &'a [u16],
    pub values: &'a [u16],
    pub stride: usize,
    pub scale: f32,
}

/// Whether this CPU keeps a key/value cache in half floats ([`attend_half`]): AVX2, FMA, F16C.
pub(crate) fn half_cache() -> bool {
    #[cfg(target_arch = "x86_64")]
    return simd_half();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// [`attend`] over half-float keys and values (half the bytes to read at a long context).
/// Only where [`half_cache`] holds.
pub(crate) fn attend_half(q: &[f32], head: HalfHead<'_>, scores: &mut [f32], out: &mut [f32]) {
    let (hd, n) = (q.len(), scores.len());
    assert!(
        n <= head.stride
            && head.keys.len() >= (hd.max(1) - 1) * head.stride + n.next_multiple_of(16)
            && head.values.len() >= n * hd
            && out.len() == hd
    );
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each body runs only where the CPU has its features (checked first); the
        // lengths are checked above.
        let done = (simd512() && unsafe { avx512::attend_half(q, head, scores, out) })
            || (simd_half() && unsafe { avx::attend_half(q, head, scores, out) });
        if done {
            return;
        }
    }
    // Only the x86 kernels read the scale (no other CPU keeps a half-float cache).
    let _ = head.scale;
    panic!("a half-float cache on a CPU without F16C, or a head width not a multiple of 8");
}

/// `src` rounded to half floats into `dst` (only where [`half_cache`] holds).
pub(crate) fn to_halves(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    #[cfg(target_arch = "x86_64")]
    if simd_half() {
        // SAFETY: the CPU has AVX2 and F16C.
        unsafe { avx::narrow_into(src, dst) };
        return;
    }
    panic!("half floats on a CPU without F16C");
}

/// [`attend`]'s plain loops.
fn plain_attend(q: &[f32], head: Head<'_>, scores: &mut [f32], out: &mut [f32]) {
    let (keys, values, stride, scale) = (head.keys, head.values, head.stride, head.scale);
    let (hd, n) = (q.len(), scores.len());
    scores.fill(0.0);
    for (d, &qd) in q.iter().enumerate() {
        for (s, k) in scores.iter_mut().zip(&keys[d * stride..][..n]) {
            *s += qd * k;
        }
    }
    let max = scores
        .iter()
        .fold(f32::NEG_INFINITY, |m, s| m.max(s * scale));
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s * scale - max).exp();
        sum += *s;
    }
    out.fill(0.0);
    for (j, s) in scores.iter().enumerate() {
        let p = s / sum;
        for (o, v) in out.iter_mut().zip(&values[j * hd..][..hd]) {
            *o += p * v;
        }
    }
}

/// `a . b` over the shorter length.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU has AVX2 and FMA (checked once in `simd`).
        if let Some(d) = unsafe { avx::dot(&a[..n], &b[..n]) } {
            return d;
        }
    }
    plain_dot(&a[..n], &b[..n])
}

/// `y += a x`.
pub(crate) fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX2 and FMA (checked once in `simd`).
    if simd() && unsafe { avx::axpy(&mut y[..n], a, &x[..n]) } {
        return;
    }
    y[..n]
        .iter_mut()
        .zip(&x[..n])
        .for_each(|(y, x)| *y += a * x);
}

fn plain_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// `n` values in [-1, 1) from `seed`.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn plain_product(w: &[f32], inp: usize, x: &[f32]) -> Vec<f32> {
        w.chunks_exact(inp)
            .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }

    #[test]
    fn packed_products_match_the_plain_product() {
        // 13 rows: three whole blocks of 4 and a last block of 1. 40 inputs: packed; 36: not.
        for (inp, half) in [(40, false), (40, true), (36, false), (36, true)] {
            let rows = 13;
            let mut w = values(rows * inp, 1);
            let (x0, x1) = (
                AVec::from_slice(&values(inp, 2)),
                AVec::from_slice(&values(inp, 3)),
            );
            let packed = Packed::new(&mut w, rows, inp, half);
            assert_eq!(packed.packed, inp % 8 == 0);
            // `w` now holds the values the products read (rounded where half).
            let (want0, want1) = (plain_product(&w, inp, &x0), plain_product(&w, inp, &x1));
            let mut y0 = vec![0.0; rows];
            packed.matvec(&x0, &mut y0);
            for (a, b) in y0.iter().zip(&want0) {
                assert!((a - b).abs() < 1e-5, "{inp} {half}: {a} vs {b}");
            }
            // Two products at once give exactly what one at a time gives.
            let both = AVec::from_slice(&[&x0[..], &x1[..]].concat());
            let mut p = vec![0.0; 2 * rows];
            packed.matvec_many(&both, 2, &mut p);
            let mut y1 = vec![0.0; rows];
            packed.matvec(&x1, &mut y1);
            assert_eq!(p, [&y0[..], &y1[..]].concat());
            for (a, b) in y1.iter().zip(&want1) {
                assert!((a - b).abs() < 1e-5, "{inp} {half}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn many_products_at_once_equal_one_at_a_time_to_the_bit() {
        // 1 to 8 inputs (groups of 3, 2 and 1), 13 rows (a short last block), both weight types.
        for half in [false, true] {
            let (rows, inp) = (13, 48);
            let packed = Packed::new(&mut values(rows * inp, 5), rows, inp, half);
            for k in 1..=8 {
                let xs = AVec::from_slice(&values(k * inp, 6 + k as u64));
                let mut many = vec![0.0; k * rows];
                packed.matvec_many(&xs, k, &mut many);
                let mut one = vec![0.0; k * rows];
                for (x, y) in xs.chunks_exact(inp).zip(one.chunks_exact_mut(rows)) {
                    packed.matvec(&AVec::from_slice(x), y);
                }
                assert_eq!(many, one, "{k} inputs, half {half}");
            }
        }
    }

    /// The AVX-512 products give the AVX2 ones' results to the bit (the same sums in the same
    /// order), so a piece does not depend on which of the two the CPU runs.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_products_equal_the_avx2_ones_to_the_bit() {
        if !simd512() {
            return; // nothing to compare on this CPU
        }
        let (rows, inp) = (13, 48);
        let n = inp / 8;
        for half in [false, true] {
            let packed = Packed::new(&mut values(rows * inp, 9), rows, inp, half);
            for k in 1..=11 {
                let xs = AVec::from_slice(&values(k * inp, 20 + k as u64));
                let (mut wide, mut narrow) = (vec![0.0; k * rows], vec![0.0; k * rows]);
                // SAFETY: the CPU has AVX-512F, AVX2, FMA and F16C (`simd512`).
                let (a, b) = unsafe {
                    if half {
                        (
                            avx512::matvec_many_packed_half(&packed.data, n, &xs, &mut wide, rows),
                            avx::matvec_many_packed_half(&packed.data, n, &xs, &mut narrow, rows),
                        )
                    } else {
                        (
                            avx512::matvec_many_packed(&packed.data, n, &xs, &mut wide, rows),
                            avx::matvec_many_packed(&packed.data, n, &xs, &mut narrow, rows),
                        )
                    }
                };
                assert!(a && b, "{k} inputs, half {half}: a kernel declined");
                assert_eq!(wide, narrow, "{k} inputs, half {half}");
                assert!(wide.iter().any(|v| *v != 0.0));
            }
        }
    }

    /// Attention over transposed keys, by every body this CPU has, against softmax and a
    /// weighted sum written out plainly; position counts that fill whole registers and not.
    #[test]
    fn attention_over_transposed_keys_is_softmax_of_the_dot_products() {
        let (hd, stride) = (64, 40);
        let q = values(hd, 30);
        let keys = values(hd * stride, 31);
        let vals = values(stride * hd, 32);
        let head = Head {
            keys: &keys,
            values: &vals,
            stride,
            scale: 0.125,
        };
        let close = |name: &str, n: usize, got: &[f32], want: &[f32]| {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-5, "{name}, {n} positions: {g} vs {w}");
            }
        };
        for n in [1, 7, 8, 15, 16, 17, 33, 40] {
            let dots: Vec<f32> = (0..n)
                .map(|j| 0.125 * (0..hd).map(|d| q[d] * keys[d * stride + j]).sum::<f32>())
                .collect();
            let max = dots.iter().fold(f32::NEG_INFINITY, |m, s| m.max(*s));
            let sum: f32 = dots.iter().map(|s| (s - max).exp()).sum();
            let want: Vec<f32> = (0..hd)
                .map(|d| {
                    (0..n)
                        .map(|j| (dots[j] - max).exp() / sum * vals[j * hd + d])
                        .sum()
                })
                .collect();
            let mut out = vec![0.0; hd];
            let mut scores = vec![0.0; n];
            attend(&q, head, &mut scores, &mut out);
            close("chosen", n, &out, &want);
            plain_attend(&q, head, &mut scores, &mut out);
            close("plain", n, &out, &want);
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: each body only where the CPU has its features.
                if simd() && unsafe { avx::attend(&q, head, &mut scores, &mut out) } {
                    close("avx2", n, &out, &want);
                }
                if simd512() && unsafe { avx512::attend(&q, head, &mut scores, &mut out) } {
                    close("avx512", n, &out, &want);
                }
            }
        }
    }

    /// A half float's value, by its definition (normal and subnormal numbers).
    fn half_value(h: u16) -> f32 {
        let (sign, exp, mant) = (h >> 15, ((h >> 10) & 31) as i32, (h & 1023) as f32);
        let magnitude = match exp {
            0 => mant / 1024.0 * 2f32.powi(-14),
            _ => (1.0 + mant / 1024.0) * 2f32.powi(exp - 15),
        };
        if sign == 1 {
            -magnitude
        } else {
            magnitude
        }
    }

    #[test]
    fn attention_over_half_floats_is_attention_over_their_values() {
        if !half_cache() {
            return;
        }
        let (hd, stride) = (64, 40);
        let q = values(hd, 40);
        let (keys, vals) = (values(hd * stride, 41), values(stride * hd, 42));
        // Halves, the keys with a register to spare past their last row.
        let mut key_halves = vec![0u16; hd * stride + 16];
        to_halves(&keys, &mut key_halves[..hd * stride]);
        let mut value_halves = vec![0u16; stride * hd];
        to_halves(&vals, &mut value_halves);
        let rounded = |h: &[u16]| h.iter().map(|&h| half_value(h)).collect::<Vec<f32>>();
        let (rk, rv) = (rounded(&key_halves), rounded(&value_halves));
        for (x, r) in keys.iter().zip(&rk) {
            assert!((x - r).abs() <= x.abs() / 1024.0, "{x} rounded to {r}");
        }
        for n in [1, 7, 8, 15, 16, 17, 33, 40] {
            let (mut want, mut got) = (vec![0.0; hd], vec![0.0; hd]);
            let mut scores = vec![0.0; n];
            let exact = Head {
                keys: &rk,
                values: &rv,
                stride,
                scale: 0.125,
            };
            plain_attend(&q, exact, &mut scores, &mut want);
            let half = HalfHead {
                keys: &key_halves,
                values: &value_halves,
                stride,
                scale: 0.125,
            };
            attend_half(&q, half, &mut scores, &mut got);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{n} positions: {g} vs {w}");
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2, FMA and F16C (`half_cache`).
            if unsafe { avx::attend_half(&q, half, &mut scores, &mut got) } {
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "avx2, {n} positions: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn half_floats_round_the_weights_and_halve_the_bytes() {
        let (rows, inp) = (8, 64);
        let exact = values(rows * inp, 4);
        let mut w = exact.clone();
        let packed = Packed::new(&mut w, rows, inp, true);
        if !packed.is_half() {
            return; // a CPU without F16C keeps f32
        }
        assert_eq!(packed.bytes(), 2 * rows * inp);
        let worst = exact
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs() / a.abs().max(1e-3))
            .fold(0.0, f32::max);
        assert!(worst > 0.0 && worst < 5e-4, "relative rounding {worst}");
    }
}
