//! `x W^T` as one op whose backward pass is two products straight into their final layouts.
//!
//! candle's `x.matmul(&w.t())` records a transpose and a product: its backward pass forms `W`'s
//! gradient transposed and adds it, through strides, to a fresh zero tensor. Here both gradients
//! come out of gemm (candle's own CPU product, on every core) already in place.

use super::values;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use gemm::{gemm, Parallelism};

/// `x W^T` for `x` `(rows, in)` and `w` `(out, in)`: `(rows, out)`.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Linear)
}

struct Linear;

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Product::AB_T.cpu_fwd(s1, l1, s2, l2)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = grad.apply_op2_no_bwd(w, &Product::AB)?;
        let dw = grad.apply_op2_no_bwd(x, &Product::A_TB)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// A product of two contiguous matrices, either read transposed.
struct Product {
    lhs_t: bool,
    rhs_t: bool,
}

impl Product {
    const AB: Product = Product {
        lhs_t: false,
        rhs_t: false,
    };
    const AB_T: Product = Product {
        lhs_t: false,
        rhs_t: true,
    };
    const A_TB: Product = Product {
        lhs_t: true,
        rhs_t: false,
    };
}

/// (rows, cols, row stride, column stride) of a contiguous matrix, read transposed or not.
fn view(layout: &Layout, transposed: bool) -> Result<(usize, usize, usize, usize)> {
    let (r, c) = layout.shape().dims2()?;
    Ok(match transposed {
        false => (r, c, c, 1),
        true => (c, r, 1, c),
    })
}

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        "fused-linear-product"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (values(s1, l1, self.name())?, values(s2, l2, self.name())?);
        let (m, k, a_rs, a_cs) = view(l1, self.lhs_t)?;
        let (k2, n, b_rs, b_cs) = view(l2, self.rhs_t)?;
        if k != k2 {
            bail!("{}: {m}x{k} times {k2}x{n}", self.name());
        }
        let mut out = vec![0f32; m * n];
        let threads = rayon::current_num_threads();
        let parallelism = match threads {
            1 => Parallelism::None,
            n => Parallelism::Rayon(n),
        };
        // SAFETY: the sizes and strides describe `a`, `b` and `out` exactly, and `out` is ours.
        unsafe {
            gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr(),
                b_cs as isize,
                b_rs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}
