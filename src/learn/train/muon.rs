//! Muon (Keller Jordan, 2024; the optimiser of the modded-nanoGPT speed records): for the blocks'
//! weight matrices, the update is the momentum of the gradient made orthogonal by a few
//! Newton-Schulz iterations, so every direction of the matrix moves by about the same amount
//! instead of a few directions dominating. Embeddings, gains and biases stay with AdamW.
//!
//! The fused `c_attn` matrix holds the query, key and value projections stacked: each third is
//! made orthogonal on its own, as the records treat them as three matrices.

use anyhow::Result;
use candle_core::{DType, Tensor, Var};

/// The quintic's coefficients, tuned so that 5 steps push every singular value into roughly
/// [0.7, 1.2] (exact orthogonality is not needed, speed is).
const NS_COEFFS: (f64, f64, f64) = (3.4445, -4.7750, 2.0315);
const NS_STEPS: usize = 5;

/// Whether Muon moves the parameter called `name`: the matrices inside the blocks (the
/// embeddings are tables of rows, not maps, and stay with AdamW).
pub fn is_muon_param(name: &str, var: &Var) -> bool {
    var.rank() == 2 && name.starts_with("transformer.h.")
}

/// `g` (rows, cols) made approximately orthogonal: U V^T of its singular value decomposition,
/// by Newton-Schulz iterations on the transposed matrix when it is tall.
pub fn orthogonalize(g: &Tensor) -> Result<Tensor> {
    let (rows, cols) = g.dims2()?;
    let tall = rows > cols;
    let mut x = if tall { g.t()? } else { g.clone() };
    let norm = x.sqr()?.sum_all()?.sqrt()?;
    x = x.broadcast_div(&(norm + 1e-7)?)?;
    let (a, b, c) = NS_COEFFS;
    for _ in 0..NS_STEPS {
        let xt = x.t()?.contiguous()?;
        let gram = x.matmul(&xt)?;
        let poly = ((&gram * b)? + (gram.matmul(&gram)? * c)?)?;
        x = ((&x * a)? + poly.matmul(&x)?)?;
    }
    Ok(if tall { x.t()?.contiguous()? } else { x })
}

/// Muon's state for its parameters: one momentum buffer each.
pub struct Muon {
    pub momentum: f64,
    /// The momentum buffers, in the order of the parameters given to [`Muon::update`].
    pub buffers: Vec<Tensor>,
}

impl Muon {
    /// Zero momentum for `params` (all of them Muon's).
    pub fn new(params: &[&Var]) -> Result<Muon> {
        let buffers = params
            .iter()
            .map(|v| v.as_tensor().zeros_like()?.to_dtype(DType::F32))
            .collect::<candle_core::Result<_>>()?;
        Ok(Muon {
            momentum: 0.95,
            buffers,
        })
    }

    /// One step at rate `lr` with (already clipped) gradients, in the order of `params`:
    /// momentum, Nesterov's look-ahead, orthogonalised, scaled by sqrt(rows / cols) for tall
    /// matrices; the weights first multiplied by `keep` (decoupled weight decay).
    pub fn update(&mut self, params: &[&Var], grads: &[&Tensor], lr: f64, keep: f64) -> Result<()> {
        anyhow::ensure!(
            params.len() == self.buffers.len() && grads.len() == params.len(),
            "Muon was made for other parameters"
        );
        let mu = self.momentum;
        for ((var, g), buffer) in params.iter().zip(grads).zip(self.buffers.iter_mut()) {
            let g = g.to_dtype(DType::F32)?;
            *buffer = ((&*buffer * mu)? + (&g * (1.0 - mu))?)?;
            let look_ahead = ((&g * (1.0 - mu))? + (&*buffer * mu)?)?;
            let update = orthogonal_update(&look_ahead, var.dims())?;
            let theta = (var.as_tensor() * keep)?;
            var.set(&(theta - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// The orthogonalised update of a matrix of `dims`: per third for the stacked query, key and
/// value projections (3c x c), else the whole; scaled by sqrt(rows / cols) where tall, so a
/// wide layer's outputs move as much as a square one's.
fn orthogonal_update(g: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let (rows, cols) = (dims[0], dims[1]);
    let parts = if rows == 3 * cols { 3 } else { 1 };
    let part_rows = rows / parts;
    let mut out = Vec::with_capacity(parts);
    for p in 0..parts {
        out.push(orthogonalize(&g.narrow(0, p * part_rows, part_rows)?)?);
    }
    let scale = (part_rows as f64 / cols as f64).max(1.0).sqrt();
    Ok((Tensor::cat(&out, 0)? * scale)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// m m^T: for a wide m with orthonormal rows, the identity; its diagonal holds the squared
    /// singular values where the rows are orthogonal.
    fn gram(m: &Tensor) -> Vec<Vec<f32>> {
        m.matmul(&m.t().unwrap()).unwrap().to_vec2().unwrap()
    }

    #[test]
    fn newton_schulz_makes_a_badly_scaled_matrix_nearly_orthogonal() {
        // Rows of very different lengths and a shared direction: far from orthogonal.
        let g = Tensor::new(
            &[
                [10f32, 1.0, 0.0, 0.5],
                [0.1, 0.2, 0.05, 0.0],
                [3.0, 0.0, 2.0, 1.0],
            ],
            &Device::Cpu,
        )
        .unwrap();
        for m in [g.clone(), g.t().unwrap().contiguous().unwrap()] {
            let o = orthogonalize(&m).unwrap();
            assert_eq!(o.dims(), m.dims());
            let small = m.dims()[0].min(m.dims()[1]);
            let gram = if m.dims()[0] <= m.dims()[1] {
                gram(&o)
            } else {
                gram(&o.t().unwrap().contiguous().unwrap())
            };
            for (i, row) in gram.iter().enumerate().take(small) {
                // Every singular value lands in the quintic's band around 1, from 0.01 to 10.
                assert!((0.45..1.45).contains(&row[i]), "s^2 = {} at {i}", row[i]);
                for (j, v) in row.iter().enumerate() {
                    if j != i {
                        assert!(v.abs() < 0.35, "off-diagonal {v} at {i},{j}");
                    }
                }
            }
        }
    }

    #[test]
    fn muon_moves_a_matrix_against_its_gradient_by_an_orthogonal_step() {
        let var = Var::from_vec(vec![0f32; 6], (3, 2), &Device::Cpu).unwrap();
        let mut muon = Muon::new(&[&var]).unwrap();
        let g = Tensor::new(&[[1f32, 0.0], [0.0, 0.01], [0.0, 0.0]], &Device::Cpu).unwrap();
        muon.update(&[&var], &[&g], 0.1, 1.0).unwrap();
        let w: Vec<Vec<f32>> = var.as_tensor().to_vec2().unwrap();
        // Both directions move by about the same amount, though one gradient is 100x smaller;
        // the tall matrix's step is scaled by sqrt(3 / 2).
        let scale = 0.1 * (1.5f32).sqrt();
        assert!(w[0][0] < -0.5 * scale && w[1][1] < -0.5 * scale, "{w:?}");
        assert!((w[0][0] / w[1][1] - 1.0).abs() < 0.5, "{w:?}");
        assert_eq!(w[2], vec![0.0, 0.0]);
        assert!(muon.buffers[0].to_vec2::<f32>().unwrap()[0][0] > 0.0);
    }
}
