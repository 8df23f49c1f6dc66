//! Causal self-attention of every head as one op: from the fused query/key/value projection
//! `(batch, time, 3 * width)` straight to the heads' outputs side by side `(batch, time, width)`.
//!
//! The plain model splits the projection into heads (three copies), forms the scores, scales,
//! masks and takes a softmax in six passes over a `(batch, heads, time, time)` tensor, and merges
//! the heads again (a copy); its backward pass pads each split back to full width. Here each
//! (sequence, head) pair is one task on one core: the products read the heads in place through
//! strides, the mask and softmax are one pass over a `time x time` scratch that stays in cache,
//! and the backward pass recomputes the probabilities (as flash attention does) instead of
//! keeping them.

use super::softmax::{softmax_row, softmax_row_grad};
use super::values;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// Causal attention with `heads` heads over `qkv` = `(batch, time, 3 * width)` (queries, keys,
/// values side by side, as the model's `c_attn` makes them); `(batch, time, width)`.
pub fn causal_attention(qkv: &Tensor, heads: usize) -> Result<Tensor> {
    qkv.contiguous()?.apply_op1(Attention { heads })
}

struct Attention {
    heads: usize,
}

/// One call's shape: `batch` sequences of `time` positions, `width` wide, heads of `hd`.
#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    time: usize,
    width: usize,
    heads: usize,
    hd: usize,
}

impl Dims {
    fn of(layout: &Layout, heads: usize) -> Result<Dims> {
        let (batch, time, three_c) = layout.shape().dims3()?;
        if heads == 0 || !three_c.is_multiple_of(3 * heads) {
            bail!("attention: {three_c} is not 3 x a multiple of {heads} heads");
        }
        let width = three_c / 3;
        Ok(Dims {
            batch,
            time,
            width,
            heads,
            hd: width / heads,
        })
    }

    fn scale(&self) -> f32 {
        1.0 / (self.hd as f32).sqrt()
    }

    /// Offsets of task `task`'s query block in `qkv` and its output block in `y`.
    fn offsets(&self, task: usize) -> (usize, usize) {
        let (b, h) = (task / self.heads, task % self.heads);
        (
            b * self.time * 3 * self.width + h * self.hd,
            b * self.time * self.width + h * self.hd,
        )
    }
}

/// A buffer that the tasks write disjoint blocks of.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: every task writes only its own (sequence, head) block; the buffer outlives the tasks.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so closures capture the whole `Shared`, not its bare field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// A matrix in memory: its first element and its row and column strides.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: usize,
    cs: usize,
}

impl Mat {
    fn rows(ptr: *const f32, rs: usize) -> Mat {
        Mat { ptr, rs, cs: 1 }
    }

    /// The matrix from row `r`, column `c` on.
    ///
    /// # Safety
    /// The element must lie within the buffer.
    unsafe fn at(self, r: usize, c: usize) -> Mat {
        Mat {
            ptr: self.ptr.add(r * self.rs + c * self.cs),
            ..self
        }
    }

    fn transposed(self) -> Mat {
        Mat {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// `dst = lhs (m x k) . rhs (k x n)` on this thread.
///
/// # Safety
/// Every matrix must lie within its buffer for the given sizes and strides, and `dst` must not
/// overlap the others or be written by another thread meanwhile.
unsafe fn product(m: usize, n: usize, k: usize, dst: Mat, lhs: Mat, rhs: Mat) {
    gemm(
        m,
        n,
        k,
        dst.ptr as *mut f32,
        dst.cs as isize,
        dst.rs as isize,
        false,
        lhs.ptr,
        lhs.cs as isize,
        lhs.rs as isize,
        rhs.ptr,
        rhs.cs as isize,
        rhs.rs as isize,
        0.0,
        1.0,
        false,
        false,
        false,
        Parallelism::None,
    )
}

/// Rows of a head's scores that go through the products together. A block of rows needs the
/// positions up to its last row only, so the products skip the blocks above the diagonal (whose
/// probabilities are zero): 68% of the full products' work at context 200. Blocks of 48 rows
/// measured faster than 16, 24, 32, 40 or 64 (gemm's kernels lose speed on thinner products).
const BLOCK: usize = 48;

/// The row blocks `[r0, r1)` of `t` positions.
fn blocks(t: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..t)
        .step_by(BLOCK)
        .map(move |r0| (r0, (r0 + BLOCK).min(t)))
}

/// `dst = m^T rhs` for a `t x t` matrix `m` that is zero above the diagonal and `rhs` of `cols`
/// columns: `dst[c0..c1] = m[c0.., c0..c1]^T rhs[c0..]` block by block, as no earlier row of
/// `m` reaches positions `c0..c1`.
///
/// # Safety
/// As [`product`]; `m`'s blocks on and below the diagonal must be written.
unsafe fn product_transposed_below(t: usize, cols: usize, dst: Mat, m: Mat, rhs: Mat) {
    for (c0, c1) in blocks(t) {
        let (d, lhs, r) = (dst.at(c0, 0), m.at(c0, c0).transposed(), rhs.at(c0, 0));
        product(c1 - c0, cols, t - c0, d, lhs, r);
    }
}

/// Scores and probabilities of task `task` into `p` (`time x time`): row `i` holds them for
/// positions `0..=i`, zeros after up to the end of its block; the rest of `p` is not written.
///
/// # Safety
/// `qkv` must hold the whole input of shape `d`.
unsafe fn probabilities(qkv: *const f32, d: &Dims, task: usize, p: &mut [f32]) {
    let (q_at, _) = d.offsets(task);
    let (t, three_c) = (d.time, 3 * d.width);
    let q = Mat::rows(qkv.add(q_at), three_c);
    let k = Mat::rows(qkv.add(q_at + d.width), three_c);
    for (r0, r1) in blocks(t) {
        let scores = Mat::rows(p.as_mut_ptr().add(r0 * t), t);
        product(r1 - r0, r1, d.hd, scores, q.at(r0, 0), k.transposed());
        for i in r0..r1 {
            softmax_row(&mut p[i * t..i * t + r1], i + 1, d.scale());
        }
    }
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "fused-causal-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = values(storage, layout, self.name())?;
        let d = Dims::of(layout, self.heads)?;
        // Every task writes its head's columns of every row of its sequence: all of `y`.
        let mut y = Vec::with_capacity(d.batch * d.time * d.width);
        let out = Shared(y.spare_capacity_mut().as_mut_ptr() as *mut f32);
        let src = Shared(qkv.as_ptr() as *mut f32);
        (0..d.batch * d.heads).into_par_iter().for_each_init(
            || vec![0f32; d.time * d.time],
            |p, task| {
                let (q_at, y_at) = d.offsets(task);
                // SAFETY: `qkv` and `y` have the sizes `d` gives; this task writes only its own
                // head's columns of its own sequence in `y`.
                unsafe {
                    probabilities(src.get(), &d, task, p);
                    let v = Mat::rows(src.get().add(q_at + 2 * d.width), 3 * d.width);
                    let dst = Mat::rows(out.get().add(y_at), d.width);
                    let pm = Mat::rows(p.as_ptr(), d.time);
                    // Y[r0..r1] = P[r0..r1, ..r1] V[..r1].
                    for (r0, r1) in blocks(d.time) {
                        product(r1 - r0, d.hd, r1, dst.at(r0, 0), pm.at(r0, 0), v);
                    }
                }
            },
        );
        // SAFETY: the tasks above wrote all of `y` (see its allocation).
        unsafe { y.set_len(d.batch * d.time * d.width) };
        let shape = Shape::from((d.batch, d.time, d.width));
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(&self, qkv: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let op = AttentionGrad { heads: self.heads };
        Ok(Some(qkv.apply_op2_no_bwd(&grad.contiguous()?, &op)?))
    }
}

/// The backward pass: the gradient of `qkv` from that of the output.
struct AttentionGrad {
    heads: usize,
}

impl CustomOp2 for AttentionGrad {
    fn name(&self) -> &'static str {
        "fused-causal-attention-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let qkv = values(s1, l1, self.name())?;
        let dy = values(s2, l2, self.name())?;
        let d = Dims::of(l1, self.heads)?;
        if dy.len() != d.batch * d.time * d.width {
            bail!(
                "{}: gradient of {} values for {:?}",
                self.name(),
                dy.len(),
                l1.dims()
            );
        }
        // Every task writes its head's query, key and value columns of every row: all of it.
        let mut dqkv = Vec::with_capacity(qkv.len());
        let out = Shared(dqkv.spare_capacity_mut().as_mut_ptr() as *mut f32);
        let (src, dsrc) = (
            Shared(qkv.as_ptr() as *mut f32),
            Shared(dy.as_ptr() as *mut f32),
        );
        let (t, hd, three_c) = (d.time, d.hd, 3 * d.width);
        (0..d.batch * d.heads).into_par_iter().for_each_init(
            || (vec![0f32; t * t], vec![0f32; t * t]),
            |(p, dp), task| {
                let (q_at, y_at) = d.offsets(task);
                // SAFETY: as in the forward pass; this task writes only its head's query, key and
                // value columns of its own sequence in `dqkv`.
                unsafe {
                    probabilities(src.get(), &d, task, p);
                    let q = Mat::rows(src.get().add(q_at), three_c);
                    let k = Mat::rows(src.get().add(q_at + d.width), three_c);
                    let v = Mat::rows(src.get().add(q_at + 2 * d.width), three_c);
                    let dy = Mat::rows(dsrc.get().add(y_at), d.width);
                    let pm = Mat::rows(p.as_ptr(), t);
                    let (dq, dk, dv) = (
                        Mat::rows(out.get().add(q_at), three_c),
                        Mat::rows(out.get().add(q_at + d.width), three_c),
                        Mat::rows(out.get().add(q_at + 2 * d.width), three_c),
                    );
                    // dV = P^T dY.
                    product_transposed_below(t, hd, dv, pm, dy);
                    // dP[r0..r1, ..r1] = dY[r0..r1] V[..r1]^T, then the softmax's backward
                    // turns it into dS in place (zero above the diagonal, as P is).
                    // Written through this pointer only (a mutable one: gemm writes dP), with
                    // no borrow of `dp` while it lives.
                    let dp = dp.as_mut_ptr();
                    let dpm = Mat::rows(dp, t);
                    for (r0, r1) in blocks(t) {
                        product(r1 - r0, r1, hd, dpm.at(r0, 0), dy.at(r0, 0), v.transposed());
                        for i in r0..r1 {
                            let ds = std::slice::from_raw_parts_mut(dp.add(i * t), r1);
                            softmax_row_grad(&p[i * t..i * t + r1], ds, i + 1, d.scale());
                        }
                    }
                    // dQ[r0..r1] = dS[r0..r1, ..r1] K[..r1], dK = dS^T Q.
                    for (r0, r1) in blocks(t) {
                        product(r1 - r0, hd, r1, dq.at(r0, 0), dpm.at(r0, 0), k);
                    }
                    product_transposed_below(t, hd, dk, dpm, q);
                }
            },
        );
        // SAFETY: the tasks above wrote all of `dqkv` (see its allocation).
        unsafe { dqkv.set_len(qkv.len()) };
        Ok((CpuStorage::F32(dqkv), l1.shape().clone()))
    }
}
