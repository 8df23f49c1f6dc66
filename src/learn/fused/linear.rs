//! `x W^T` as one op whose backward pass is two products straight into their final layouts.
//!
//! candle's `x.matmul(&w.t())` records a transpose and a product: its backward pass forms `W`'s
//! gradient transposed and adds it, through strides, to a fresh zero tensor. Here both gradients
//! come out of gemm (candle's own CPU product, on every core) already in place, and `x` keeps
//! its leading dimensions: reshaping `(batch, time, width)` to rows and back would add two nodes
//! whose backward passes each copy a gradient into a fresh zero tensor.

use super::gelu::{gelu_in_place, GeluGrad, CHUNK};
use super::values;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Device, Layout, Result, Shape, Tensor};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;
use std::sync::Mutex;

/// `x W^T` over the last dimension, for `x` `(..., in)` and `w` `(out, in)`: `(..., out)`.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Linear)
}

/// `r + x W^T`: a residual branch's output projection with the residual stream added in the
/// product (gemm adds to what its output holds), so the add is no node of its own.
pub fn linear_add(x: &Tensor, w: &Tensor, r: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &r.contiguous()?, LinearAdd)
}

/// `gelu(x W^T)`: the MLP's first layer. The op keeps `x W^T` for its backward pass itself
/// instead of a node of its own whose gradient would be another fresh tensor of 4 x width.
pub fn linear_gelu(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(
        &w.contiguous()?,
        LinearGelu {
            pre: Mutex::new(None),
        },
    )
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
        let (dx, dw) = linear_grads(x, w, grad)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// The gradients of `x` and `w` in `y = x W^T` from that of `y`.
fn linear_grads(x: &Tensor, w: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
    let grad = grad.contiguous()?;
    let dx = grad.apply_op2_no_bwd(w, &Product::AB)?;
    let dw = grad.apply_op2_no_bwd(x, &Product::A_TB)?;
    Ok((dx, dw))
}

struct LinearAdd;

impl CustomOp3 for LinearAdd {
    fn name(&self) -> &'static str {
        "fused-linear-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let r = values(s3, l3, self.name())?;
        let (y, shape) = Product::AB_T.run(s1, l1, s2, l2, Some(r))?;
        if &shape != l3.shape() {
            bail!("{}: {:?} plus {:?}", self.name(), shape, l3.dims());
        }
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _r: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = linear_grads(x, w, grad)?;
        Ok((Some(dx), Some(dw), Some(grad.clone())))
    }
}

struct LinearGelu {
    /// `x W^T`, from the forward pass.
    pre: Mutex<Option<Tensor>>,
}

impl CustomOp2 for LinearGelu {
    fn name(&self) -> &'static str {
        "fused-linear-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (pre, shape) = Product::AB_T.run(s1, l1, s2, l2, None)?;
        let mut y = pre.clone();
        y.par_chunks_mut(CHUNK).for_each(gelu_in_place);
        let pre = Tensor::from_vec(pre, shape.clone(), &Device::Cpu)?;
        *self.pre.lock().expect("no other user of the op panicked") = Some(pre);
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let pre = self.pre.lock().expect("no other user of the op panicked");
        let Some(pre) = pre.as_ref() else {
            bail!("{}: backward before forward", self.name())
        };
        let dpre = pre.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?;
        let (dx, dw) = linear_grads(x, w, &dpre)?;
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

/// (rows, cols, row stride, column stride) of a contiguous tensor as a matrix of its last
/// dimension, read transposed or not.
fn view(layout: &Layout, transposed: bool) -> Result<(usize, usize, usize, usize)> {
    let Some(&c) = layout.dims().last() else {
        bail!("fused-linear: a scalar is not a matrix")
    };
    let r = layout.shape().elem_count() / c.max(1);
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
        let (out, shape) = self.run(s1, l1, s2, l2, None)?;
        Ok((CpuStorage::F32(out), shape))
    }
}

impl Product {
    /// The product, plus `init` where given (of the product's size).
    fn run(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        init: Option<&[f32]>,
    ) -> Result<(Vec<f32>, Shape)> {
        let name = CustomOp2::name(self);
        let (a, b) = (values(s1, l1, name)?, values(s2, l2, name)?);
        let (m, k, a_rs, a_cs) = view(l1, self.lhs_t)?;
        let (k2, n, b_rs, b_cs) = view(l2, self.rhs_t)?;
        if k != k2 {
            bail!("{name}: {m}x{k} times {k2}x{n}");
        }
        let mut out = Vec::with_capacity(m * n);
        if let Some(init) = init {
            if init.len() != m * n {
                bail!("{name}: {} values to add to {m}x{n}", init.len());
            }
            out.extend_from_slice(init);
        }
        let dst = match init {
            // The product goes on top of what `out` already holds.
            Some(_) => out.as_mut_ptr(),
            None => out.spare_capacity_mut().as_mut_ptr() as *mut f32,
        };
        let threads = rayon::current_num_threads();
        let parallelism = match threads {
            1 => Parallelism::None,
            n => Parallelism::Rayon(n),
        };
        // SAFETY: the sizes and strides describe `a`, `b` and `dst` exactly, and `dst` is ours;
        // gemm writes every element of it (reading it only where it holds `init`), so all
        // `m * n` are set.
        unsafe {
            gemm(
                m,
                n,
                k,
                dst,
                1,
                n as isize,
                init.is_some(),
                a.as_ptr(),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr(),
                b_cs as isize,
                b_rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
            out.set_len(m * n);
        }
        // Unread, the left side keeps its leading dimensions: `x W^T` and `dY W` come out shaped
        // as `x` and `y`; `dY^T x` is a matrix.
        let shape = match self.lhs_t {
            false => {
                let mut dims = l1.dims().to_vec();
                *dims.last_mut().expect("a matrix has a last dimension") = n;
                Shape::from(dims)
            }
            true => Shape::from((m, n)),
        };
        Ok((out, shape))
    }
}
