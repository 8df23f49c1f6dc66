//! Rotary position embeddings (Su et al. 2021, "RoFormer"): each head's query and key are turned,
//! pair of coordinates by pair, through angles proportional to the word's position, so that their
//! product depends only on how far apart the two words are. A model that learned what "eight
//! beats back" means at one place knows it everywhere in its window, which a table of learned
//! absolute positions does not (run 15 in docs/training.md).
//!
//! One table of angles serves every path: the trainer's fused CPU op, the plain candle ops (the
//! GPU and the reference in tests), candle's cached generation, and the CPU decoder. Coordinates
//! are paired as GPT-NeoX and candle-nn's `rope` pair them: `i` with `i + head_width / 2`.

use candle_core::{Device, Result, Tensor};

/// The base of the angles' geometric series (RoFormer's): the slowest pair turns once in about
/// 60,000 positions at head width 64, far past any context here.
const BASE: f64 = 10_000.0;

/// The cosines and sines of every (position, pair) of a context.
#[derive(Clone, Debug, PartialEq)]
pub struct Rotary {
    /// Pairs per head: half the head width.
    half: usize,
    /// `(context, half)`, row-major.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rotary {
    /// The angles of `context` positions for heads `head_width` wide (even).
    pub fn new(context: usize, head_width: usize) -> Rotary {
        let half = head_width / 2;
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for pos in 0..context {
            for i in 0..half {
                // Angles in f64, so every path gets the same f32 values however far the position.
                let frequency = BASE.powf(-2.0 * i as f64 / head_width as f64);
                let angle = pos as f64 * frequency;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Rotary { half, cos, sin }
    }

    /// Positions the table holds (the context).
    pub fn positions(&self) -> usize {
        self.cos.len().checked_div(self.half).unwrap_or(0)
    }

    /// Turns one head's vector (`2 * half` values) to position `pos`.
    pub fn rotate(&self, x: &mut [f32], pos: usize) {
        self.turn(x, pos, 1.0);
    }

    /// Turns one head's vector back from position `pos`: the inverse of [`Rotary::rotate`], and
    /// its gradient (a rotation's transpose is its inverse).
    pub fn rotate_back(&self, x: &mut [f32], pos: usize) {
        self.turn(x, pos, -1.0);
    }

    fn turn(&self, x: &mut [f32], pos: usize, sign: f32) {
        let h = self.half;
        let (cos, sin) = (&self.cos[pos * h..][..h], &self.sin[pos * h..][..h]);
        let (x1, x2) = x[..2 * h].split_at_mut(h);
        for i in 0..h {
            let (a, b, s) = (x1[i], x2[i], sign * sin[i]);
            x1[i] = a * cos[i] - b * s;
            x2[i] = a * s + b * cos[i];
        }
    }

    /// The cosines and sines of positions `start..start + len` as `(len, half)` tensors.
    pub fn tables(&self, start: usize, len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let h = self.half;
        let rows =
            |v: &[f32]| Tensor::from_slice(&v[start * h..(start + len) * h], (len, h), device);
        Ok((rows(&self.cos)?, rows(&self.sin)?))
    }
}

/// Rotary embeddings from candle's primitives, which all have a backward pass: `x` is
/// `(batch, heads, time, head_width)`, `cos` and `sin` the `(time, half)` rows of its positions
/// (from [`Rotary::tables`]). For training off the CPU and as the reference the fused op is
/// tested against.
pub fn rotate_plain(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let hd = x.dim(3)?;
    let cos = Tensor::cat(&[cos, cos], 1)?;
    let sin = Tensor::cat(&[sin, sin], 1)?;
    let (x1, x2) = (x.narrow(3, 0, hd / 2)?, x.narrow(3, hd / 2, hd / 2)?);
    let turned = Tensor::cat(&[&x2.neg()?, &x1], 3)?;
    x.broadcast_mul(&cos)? + turned.broadcast_mul(&sin)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_back_undoes_rotate_and_keeps_lengths() {
        let rotary = Rotary::new(1024, 64);
        let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        for pos in [0, 1, 511, 1023] {
            let mut y = x.clone();
            rotary.rotate(&mut y, pos);
            let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>();
            assert!((norm(&y) - norm(&x)).abs() < 1e-4, "position {pos}");
            if pos > 0 {
                assert_ne!(y, x, "position {pos} turns the vector");
            }
            rotary.rotate_back(&mut y, pos);
            for (a, b) in x.iter().zip(&y) {
                assert!((a - b).abs() < 1e-5, "position {pos}");
            }
        }
    }

    #[test]
    fn scores_depend_only_on_the_distance() {
        let rotary = Rotary::new(600, 16);
        let q: Vec<f32> = (0..16).map(|i| (i as f32 * 0.9).cos()).collect();
        let k: Vec<f32> = (0..16).map(|i| (i as f32 * 0.4 + 1.0).sin()).collect();
        let score = |qp: usize, kp: usize| {
            let (mut a, mut b) = (q.clone(), k.clone());
            rotary.rotate(&mut a, qp);
            rotary.rotate(&mut b, kp);
            a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>()
        };
        for (qp, kp) in [(10, 3), (307, 300), (599, 592)] {
            assert!((score(qp, kp) - score(7, 0)).abs() < 1e-3, "{qp} {kp}");
        }
        assert!((score(10, 3) - score(10, 5)).abs() > 1e-3);
    }

    #[test]
    fn the_plain_ops_and_candles_rope_turn_as_the_table_does() {
        let rotary = Rotary::new(12, 8);
        let values: Vec<f32> = (0..2 * 3 * 5 * 8)
            .map(|i| (i as f32 * 0.11).sin())
            .collect();
        let x = Tensor::from_vec(values.clone(), (2, 3, 5, 8), &Device::Cpu).unwrap();
        let mut want = values;
        for (row, v) in want.chunks_mut(8).enumerate() {
            rotary.rotate(v, 4 + row % 5);
        }
        let (cos, sin) = rotary.tables(4, 5, &Device::Cpu).unwrap();
        let outs = [
            rotate_plain(&x, &cos, &sin).unwrap(),
            candle_nn::rotary_emb::rope(&x, &cos, &sin).unwrap(),
        ];
        for got in outs {
            let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6);
            }
        }
    }
}
