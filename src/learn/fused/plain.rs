//! The plain candle-op versions of the fused kernels, as the model writes them: the reference
//! the tests hold the fused ops to, and the "before" column of `bench train --profile`.

use candle_core::{Device, Result, Tensor, D};

/// LayerNorm over the last dimension with gain `weight`, from primitives.
pub fn layer_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_mul(&(var + eps)?.sqrt()?.recip()?)?;
    normed.broadcast_mul(weight)
}

/// Causal attention over `qkv` `(batch, time, 3 * width)` with `heads` heads: split into heads,
/// scores, scale, mask, softmax, values, heads merged; `(batch, time, width)`.
pub fn causal_attention(qkv: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, c3) = qkv.dims3()?;
    let (c, hd) = (c3 / 3, c3 / 3 / heads);
    let split = |i: usize| -> Result<Tensor> {
        qkv.narrow(2, i * c, c)?
            .reshape((b, t, heads, hd))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (q, k, v) = (split(0)?, split(1)?, split(2)?);
    let mask: Vec<f32> = (0..t * t)
        .map(|i| {
            if i % t > i / t {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, (t, t), &Device::Cpu)?;
    let att = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?.broadcast_add(&mask)?;
    let max = att.max_keepdim(D::Minus1)?.detach();
    let e = att.broadcast_sub(&max)?.exp()?;
    let p = e.broadcast_mul(&e.sum_keepdim(D::Minus1)?.recip()?)?;
    p.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))
}
