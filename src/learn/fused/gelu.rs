//! GELU with erf and its gradient: the trainer's fused op and the CPU decoder's activation, one
//! formula for both. erf is Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7, under f32's step
//! near one) with the exponential it needs anyway for the gradient: branch-free, where libm's erf
//! branches per value. Where the CPU has AVX-512F, 16 values a step (`avx512` below, the
//! exponential by a polynomial); plain loops elsewhere and for the last few values.

use super::values;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// GELU with erf (to within 1.5e-7), as candle's `gelu_erf`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

/// Values handed to one rayon task.
pub(super) const CHUNK: usize = 16_384;

/// erf(z) and exp(-z^2).
fn erf_and_gauss(z: f32) -> (f32, f32) {
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_72 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let gauss = (-a * a).exp();
    ((1.0 - poly * gauss).copysign(z), gauss)
}

/// 1 / sqrt(2 pi): the normal density's factor.
const INV_SQRT_2PI: f32 = 0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;

/// AVX-512F: the vector bodies of GELU and the softmax (x86-64 only; elsewhere the plain loops).
#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// `x <- gelu(x)`.
pub(crate) fn gelu_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX-512F (checked first).
    let done = if has_avx512() {
        unsafe { avx512::gelu(x) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for v in &mut x[done..] {
        let (erf, _) = erf_and_gauss(*v * std::f32::consts::FRAC_1_SQRT_2);
        *v *= (erf + 1.0) * 0.5;
    }
}

/// `dx <- g * gelu'(x)`, where gelu'(x) = Phi(x) + x phi(x).
fn gelu_grad(x: &[f32], g: &[f32], dx: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX-512F (checked first).
    let done = if has_avx512() {
        unsafe { avx512::gelu_grad(x, g, dx) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for ((d, &x), &g) in dx[done..].iter_mut().zip(&x[done..]).zip(&g[done..]) {
        let (erf, gauss) = erf_and_gauss(x * std::f32::consts::FRAC_1_SQRT_2);
        *d = g * (0.5 * (1.0 + erf) + x * INV_SQRT_2PI * gauss);
    }
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut y = values(storage, layout, self.name())?.to_vec();
        y.par_chunks_mut(CHUNK).for_each(gelu_in_place);
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?))
    }
}

/// d gelu / dx, times the incoming gradient.
pub(super) struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "fused-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (values(s1, l1, self.name())?, values(s2, l2, self.name())?);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(ds, (xs, gs))| gelu_grad(xs, gs, ds));
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use super::INV_SQRT_2PI;
    use std::arch::x86_64::*;

    fn c(v: f32) -> __m512 {
        // SAFETY: only called from functions compiled with AVX-512F.
        unsafe { _mm512_set1_ps(v) }
    }

    /// exp(x) for x <= 0 (to about 2 ulp; 0 below -87): 2^n by `scalef` times a degree-6
    /// polynomial of the remainder.
    #[target_feature(enable = "avx512f")]
    pub fn exp_neg(x: __m512) -> __m512 {
        let x = _mm512_max_ps(x, c(-87.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, c(std::f32::consts::LOG2_E)),
        );
        // r = x - n ln 2, in two parts so r keeps its bits.
        let r = _mm512_fnmadd_ps(n, c(0.693_145_75), x);
        let r = _mm512_fnmadd_ps(n, c(1.428_606_8e-6), r);
        let mut p = c(1.0 / 720.0);
        for k in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, c(k));
        }
        _mm512_scalef_ps(p, n)
    }

    /// erf(z) and exp(-z^2), as `super::erf_and_gauss`.
    #[target_feature(enable = "avx512f")]
    fn erf_and_gauss(z: __m512) -> (__m512, __m512) {
        let a = _mm512_abs_ps(z);
        let t = _mm512_div_ps(c(1.0), _mm512_fmadd_ps(a, c(0.327_591_1), c(1.0)));
        let mut poly = c(1.061_405_4);
        for k in [-1.453_152_1, 1.421_413_8, -0.284_496_72, 0.254_829_6] {
            poly = _mm512_fmadd_ps(poly, t, c(k));
        }
        poly = _mm512_mul_ps(poly, t);
        let gauss = exp_neg(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), a));
        let erf_abs = _mm512_fnmadd_ps(poly, gauss, c(1.0));
        // erf takes z's sign.
        let sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(i32::MIN));
        let erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign));
        (erf, gauss)
    }

    /// GELU in place over the whole registers of `x`; returns how many values it did.
    #[target_feature(enable = "avx512f")]
    pub fn gelu(x: &mut [f32]) -> usize {
        let whole = x.len() / 16 * 16;
        let p = x.as_mut_ptr();
        for i in (0..whole).step_by(16) {
            // SAFETY: `i + 16 <= x.len()`.
            let xv = unsafe { _mm512_loadu_ps(p.add(i)) };
            let (erf, _) = erf_and_gauss(_mm512_mul_ps(xv, c(std::f32::consts::FRAC_1_SQRT_2)));
            let y = _mm512_mul_ps(_mm512_mul_ps(_mm512_add_ps(erf, c(1.0)), c(0.5)), xv);
            // SAFETY: as above.
            unsafe { _mm512_storeu_ps(p.add(i), y) };
        }
        whole
    }

    /// `dx = g gelu'(x)` over the whole registers of the shortest; returns how many it did.
    #[target_feature(enable = "avx512f")]
    pub fn gelu_grad(x: &[f32], g: &[f32], dx: &mut [f32]) -> usize {
        let whole = x.len().min(g.len()).min(dx.len()) / 16 * 16;
        for i in (0..whole).step_by(16) {
            // SAFETY: `i + 16` is within all three.
            let (xv, gv) = unsafe {
                (
                    _mm512_loadu_ps(x.as_ptr().add(i)),
                    _mm512_loadu_ps(g.as_ptr().add(i)),
                )
            };
            let (erf, gauss) = erf_and_gauss(_mm512_mul_ps(xv, c(std::f32::consts::FRAC_1_SQRT_2)));
            let cdf = _mm512_mul_ps(c(0.5), _mm512_add_ps(c(1.0), erf));
            let pdf = _mm512_mul_ps(_mm512_mul_ps(xv, c(INV_SQRT_2PI)), gauss);
            let d = _mm512_mul_ps(gv, _mm512_add_ps(cdf, pdf));
            // SAFETY: as above.
            unsafe { _mm512_storeu_ps(dx.as_mut_ptr().add(i), d) };
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both bodies (the vector one where the CPU has it, and the plain loop for the tail) follow
    /// erf as candle computes it, and the gradient follows a central difference.
    #[test]
    fn gelu_and_its_gradient_follow_erf() {
        let xs: Vec<f32> = (0..4099).map(|i| (i as f32 - 2048.0) / 128.0).collect();
        let mut ys = xs.clone();
        gelu_in_place(&mut ys);
        let exact = |x: f64| {
            let erf = candle_core::cpu::erf::erf_f64(x / std::f64::consts::SQRT_2);
            (erf + 1.0) * 0.5 * x
        };
        for (x, y) in xs.iter().zip(&ys) {
            let want = exact(*x as f64) as f32;
            assert!(
                (y - want).abs() <= 4e-7 * x.abs().max(1.0),
                "gelu({x}) = {y}, not {want}"
            );
        }
        let g: Vec<f32> = xs.iter().map(|x| 1.0 + x / 16.0).collect();
        let mut dx = vec![0.0; xs.len()];
        gelu_grad(&xs, &g, &mut dx);
        for ((x, g), d) in xs.iter().zip(&g).zip(&dx) {
            let (x64, h) = (*x as f64, 1e-4);
            let want = (exact(x64 + h) - exact(x64 - h)) / (2.0 * h) * *g as f64;
            assert!(
                (*d as f64 - want).abs() < 1e-4,
                "gelu'({x}) x {g} = {d}, not {want}"
            );
        }
    }
}
