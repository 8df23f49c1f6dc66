//! One row of causal attention's softmax and of its backward pass, 16 values a step where the
//! CPU has AVX-512F (with the trainer's exponential), one at a time elsewhere.
//!
//! A row holds the scores of one query: the first `seen` are the positions it may attend to, the
//! rest up to the row's end are later positions, set to zero so the products that read whole
//! blocks of the row see no weight there.

#[cfg(target_arch = "x86_64")]
use super::gelu::has_avx512;

/// `row[..seen] <- softmax(scale * row[..seen])`, `row[seen..] <- 0` (`scale` > 0).
pub(super) fn softmax_row(row: &mut [f32], seen: usize, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has AVX-512F (checked just above).
        return unsafe { avx512::softmax_row(row, seen, scale) };
    }
    let (seen, future) = row.split_at_mut(seen);
    let max = seen.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) * scale;
    let mut sum = 0.0;
    for v in seen.iter_mut() {
        *v = (*v * scale - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    seen.iter_mut().for_each(|v| *v *= inv);
    future.fill(0.0);
}

/// The scores' gradient from the probabilities `p` and their gradient `dp`, in place of `dp`:
/// `dp[j] <- scale p[j] (dp[j] - sum_i p[i] dp[i])` over the first `seen`, zero after.
pub(super) fn softmax_row_grad(p: &[f32], dp: &mut [f32], seen: usize, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has AVX-512F (checked just above).
        return unsafe { avx512::softmax_row_grad(p, dp, seen, scale) };
    }
    let (dseen, future) = dp.split_at_mut(seen);
    let dot: f32 = p.iter().zip(dseen.iter()).map(|(a, b)| a * b).sum();
    for (dv, pv) in dseen.iter_mut().zip(p) {
        *dv = scale * pv * (*dv - dot);
    }
    future.fill(0.0);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::super::gelu::avx512::exp_neg;
    use std::arch::x86_64::*;

    /// The lanes of the register that starts at `i` of `n` values.
    fn lanes(i: usize, n: usize) -> __mmask16 {
        match n - i {
            r if r >= 16 => 0xffff,
            r => (1u16 << r) - 1,
        }
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn softmax_row(row: &mut [f32], seen: usize, scale: f32) {
        let (n, r) = (seen.min(row.len()), row.as_mut_ptr());
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        for i in (0..n).step_by(16) {
            // Lanes past `n` keep `max`, which leaves the maximum alone.
            max = _mm512_max_ps(max, _mm512_mask_loadu_ps(max, lanes(i, n), r.add(i)));
        }
        let (max, scale) = (
            _mm512_set1_ps(_mm512_reduce_max_ps(max) * scale),
            _mm512_set1_ps(scale),
        );
        let mut sum = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let k = lanes(i, n);
            let x = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, r.add(i)), scale, max);
            let e = _mm512_maskz_mov_ps(k, exp_neg(x));
            sum = _mm512_add_ps(sum, e);
            _mm512_mask_storeu_ps(r.add(i), k, e);
        }
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
        for i in (0..n).step_by(16) {
            let k = lanes(i, n);
            let p = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, r.add(i)), inv);
            _mm512_mask_storeu_ps(r.add(i), k, p);
        }
        row[n..].fill(0.0);
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn softmax_row_grad(p: &[f32], dp: &mut [f32], seen: usize, scale: f32) {
        let n = seen.min(p.len()).min(dp.len());
        let (pp, dpp) = (p.as_ptr(), dp.as_mut_ptr());
        let mut dot = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let k = lanes(i, n);
            let (a, b) = (
                _mm512_maskz_loadu_ps(k, pp.add(i)),
                _mm512_maskz_loadu_ps(k, dpp.add(i)),
            );
            dot = _mm512_fmadd_ps(a, b, dot);
        }
        let (dot, scale) = (
            _mm512_set1_ps(_mm512_reduce_add_ps(dot)),
            _mm512_set1_ps(scale),
        );
        for i in (0..n).step_by(16) {
            let k = lanes(i, n);
            let (a, b) = (
                _mm512_maskz_loadu_ps(k, pp.add(i)),
                _mm512_maskz_loadu_ps(k, dpp.add(i)),
            );
            let g = _mm512_mul_ps(_mm512_mul_ps(scale, a), _mm512_sub_ps(b, dot));
            _mm512_mask_storeu_ps(dpp.add(i), k, g);
        }
        dp[n..].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain formulas, one value at a time, for any CPU.
    fn softmax_plain(row: &[f32], seen: usize, scale: f32) -> Vec<f32> {
        let max = row[..seen].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let e: Vec<f32> = row[..seen]
            .iter()
            .map(|v| ((v - max) * scale).exp())
            .collect();
        let sum: f32 = e.iter().sum();
        let mut out: Vec<f32> = e.iter().map(|v| v / sum).collect();
        out.resize(row.len(), 0.0);
        out
    }

    #[test]
    fn rows_of_every_length_match_the_plain_formulas() {
        let row: Vec<f32> = (0..53)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7)
            .collect();
        let dp: Vec<f32> = (0..53).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.3).collect();
        for seen in [1, 2, 15, 16, 17, 32, 40, 53] {
            let mut got = row.clone();
            softmax_row(&mut got, seen, 0.125);
            let want = softmax_plain(&row, seen, 0.125);
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() < 1e-6,
                    "seen {seen}, position {j}: {g} vs {w}"
                );
            }
            assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-5);

            let mut dgot = dp.clone();
            softmax_row_grad(&want, &mut dgot, seen, 0.125);
            let dot: f32 = (0..seen).map(|j| want[j] * dp[j]).sum();
            for j in 0..row.len() {
                let w = match j < seen {
                    true => 0.125 * want[j] * (dp[j] - dot),
                    false => 0.0,
                };
                assert!((dgot[j] - w).abs() < 1e-6, "seen {seen}, gradient {j}");
            }
        }
    }
}
