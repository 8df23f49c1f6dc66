//! Fused CPU kernels with their own backward pass, for training on the CPU.
//!
//! The model built from candle's primitives spends most of a CPU training step outside the
//! matrix products: every primitive is a pass over memory, most of them on one core, each with
//! a fresh allocation, and the backward pass doubles them. Here each of LayerNorm, causal
//! self-attention (scores, mask, softmax and the product with the values, per head), GELU, the
//! linear layers and the cross-entropy is one candle custom op whose forward and backward are
//! each one or two passes, spread over every core with rayon. They compute what the plain ops
//! compute (tests compare values and gradients) and are f32 and CPU only: [`crate::learn::model`]
//! picks them at run time where the device is the CPU, and the plain ops everywhere else.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The f32 values of a contiguous CPU tensor.
fn values<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: the input is not contiguous")
    };
    match storage {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        other => bail!("{op}: expected f32, got {:?}", other.dtype()),
    }
}

/// Rows handed to one rayon task: enough work per task to outweigh its scheduling.
fn rows_per_task(rows: usize, width: usize) -> usize {
    (16_384 / width.max(1)).clamp(1, rows.max(1))
}

/// LayerNorm over the last dimension, gain `weight`, no shift, as the model's plain LayerNorm.
pub fn layer_norm(x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, LayerNorm { eps })
}

struct LayerNorm {
    eps: f32,
}

/// `sum f(a[i], b[i])` in 16 interleaved partial sums, which the compiler keeps in vector
/// registers (a single running sum is a chain of dependent adds, one value at a time).
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let (a16, b16) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = a16
        .remainder()
        .iter()
        .zip(b16.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    for (ac, bc) in a16.zip(b16) {
        for l in 0..16 {
            acc[l] += f(ac[l], bc[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Mean and 1/sqrt(var + eps) of one row.
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row, row, |v, _| v) / n;
    let var = lane_sum(row, row, |v, _| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp2 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (values(s1, l1, self.name())?, values(s2, l2, self.name())?);
        let c = w.len();
        if c == 0 || l1.dims().last() != Some(&c) {
            bail!("{}: gain of {c} for rows of {:?}", self.name(), l1.dims());
        }
        let mut y = vec![0f32; x.len()];
        let chunk = rows_per_task(x.len() / c, c) * c;
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(ys, xs)| {
                for (yr, xr) in ys.chunks_mut(c).zip(xs.chunks(c)) {
                    let (mean, rstd) = moments(xr, self.eps);
                    for ((yv, xv), wv) in yr.iter_mut().zip(xr).zip(w) {
                        *yv = (xv - mean) * rstd * wv;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = x.elem_count();
        let packed =
            x.apply_op3_no_bwd(w, &grad.contiguous()?, &LayerNormGrad { eps: self.eps })?;
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dw = packed.narrow(0, n, w.elem_count())?;
        Ok((Some(dx), Some(dw)))
    }
}

/// LayerNorm's backward: the input's gradient and the gain's, end to end in one buffer.
struct LayerNormGrad {
    eps: f32,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "fused-layer-norm-grad"
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
        let x = values(s1, l1, self.name())?;
        let w = values(s2, l2, self.name())?;
        let g = values(s3, l3, self.name())?;
        let c = w.len();
        let mut out = vec![0f32; x.len() + c];
        let (dx, dw) = out.split_at_mut(x.len());
        let chunk = rows_per_task(x.len() / c, c) * c;
        let partial = dx
            .par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk).zip(g.par_chunks(chunk)))
            .map(|(dxs, (xs, gs))| {
                let mut dw = vec![0f32; c];
                let (mut xhat, mut gw) = (vec![0f32; c], vec![0f32; c]);
                for ((dxr, xr), gr) in dxs.chunks_mut(c).zip(xs.chunks(c)).zip(gs.chunks(c)) {
                    let (mean, rstd) = moments(xr, self.eps);
                    for i in 0..c {
                        xhat[i] = (xr[i] - mean) * rstd;
                        gw[i] = gr[i] * w[i];
                        dw[i] += gr[i] * xhat[i];
                    }
                    let mean_gw = lane_sum(&gw, &gw, |v, _| v) / c as f32;
                    let mean_gwx = lane_sum(&gw, &xhat, |g, x| g * x) / c as f32;
                    for i in 0..c {
                        dxr[i] = rstd * (gw[i] - mean_gw - xhat[i] * mean_gwx);
                    }
                }
                dw
            })
            .reduce(
                || vec![0f32; c],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        dw.copy_from_slice(&partial);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// Mean cross-entropy (nats) of `targets` (u32, `(rows)`) under `logits` (`(rows, vocab)`), as
/// candle-nn's `cross_entropy`; a scalar.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, CrossEntropy)
}

struct CrossEntropy;

/// The targets as indices, each checked against the vocabulary.
fn targets(storage: &CpuStorage, layout: &Layout, vocab: usize) -> Result<Vec<usize>> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("cross-entropy: the targets are not contiguous")
    };
    let CpuStorage::U32(t) = storage else {
        bail!("cross-entropy: targets must be u32")
    };
    t[start..end]
        .iter()
        .map(|&t| match (t as usize) < vocab {
            true => Ok(t as usize),
            false => bail!("cross-entropy: target {t} outside a vocabulary of {vocab}"),
        })
        .collect()
}

/// log(sum(exp(row))) and the row's max, computed stably (the cross-entropy's, and the
/// infill ranking's).
pub(crate) fn log_sum_exp(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
    (sum.ln() + max, max)
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "fused-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let logits = values(s1, l1, self.name())?;
        let (rows, vocab) = l1.shape().dims2()?;
        let t = targets(s2, l2, vocab)?;
        if t.len() != rows {
            bail!("cross-entropy: {} targets for {rows} rows", t.len());
        }
        let total: f64 = logits
            .par_chunks(vocab)
            .zip(t.par_iter())
            .map(|(row, &t)| (log_sum_exp(row).0 - row[t]) as f64)
            .sum();
        Ok((
            CpuStorage::F32(vec![(total / rows as f64) as f32]),
            Shape::from(()),
        ))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _loss: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let rows = logits.dim(0)?;
        let scale = grad.to_dtype(DType::F32)?.to_scalar::<f32>()? / rows as f32;
        let dlogits = logits.apply_op2_no_bwd(targets, &CrossEntropyGrad { scale })?;
        Ok((Some(dlogits), None))
    }
}

/// (softmax(logits) - one_hot(target)) * scale, per row.
struct CrossEntropyGrad {
    scale: f32,
}

impl CustomOp2 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "fused-cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let logits = values(s1, l1, self.name())?;
        let (_, vocab) = l1.shape().dims2()?;
        let t = targets(s2, l2, vocab)?;
        let mut d = vec![0f32; logits.len()];
        d.par_chunks_mut(vocab)
            .zip(logits.par_chunks(vocab).zip(t.par_iter()))
            .for_each(|(dr, (row, &t))| {
                let (lse, _) = log_sum_exp(row);
                for (d, v) in dr.iter_mut().zip(row) {
                    *d = (v - lse).exp() * self.scale;
                }
                dr[t] -= self.scale;
            });
        Ok((CpuStorage::F32(d), l1.shape().clone()))
    }
}

/// Asks the allocator to keep freed memory for reuse. A CPU training step frees and allocates
/// the same few hundred megabytes of activations and gradients each step; glibc hands every
/// block over its mmap threshold back to the system, and the next step page-faults it in again
/// (a tenth of the step). Once per process; nothing elsewhere.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before the training threads
    // allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

mod attention;
mod gelu;
mod linear;
pub mod plain;
mod rotary;
mod softmax;
pub use attention::causal_attention;
#[cfg(target_arch = "x86_64")]
pub(crate) use gelu::avx512::exp_neg;
pub use gelu::gelu;
pub(crate) use gelu::gelu_in_place;
pub use linear::{linear, linear_add, linear_gelu};
pub use rotary::rotary;

#[cfg(test)]
mod tests;
