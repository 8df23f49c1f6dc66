//! The optimiser: gradients of the loss, clipped to a global norm, AdamW (or Muon for the blocks'
//! matrices, [`super::muon`]), and the learning rate of each step (linear warm-up, then cosine
//! decay), as nanoGPT's train.py sets them up.

use super::muon::{is_muon_param, Muon};
use super::TrainOptions;
use anyhow::{ensure, Result};
use candle_core::{DType, Device, Shape, Tensor, Var};
use serde::{Deserialize, Serialize};

/// What moves the blocks' weight matrices (everything else always takes AdamW).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// AdamW for every parameter (nanoGPT's).
    #[default]
    Adamw,
    /// Muon for the blocks' matrices at `--muon-lr`, AdamW for the rest.
    Muon,
}

impl TrainOptions {
    /// The warm-up in steps: as given, or min(1000, steps / 10).
    pub fn warmup_steps(&self) -> usize {
        self.warmup.unwrap_or((self.steps / 10).min(1000))
    }

    /// The learning rate of step `step` (0-based): linear warm-up to `lr`, then a cosine decay to
    /// `min_lr` at `steps`.
    pub fn lr_at(&self, step: usize) -> f64 {
        let warmup = self.warmup_steps();
        if step < warmup {
            return self.lr * (step + 1) as f64 / warmup as f64;
        }
        if step >= self.steps {
            return self.min_lr;
        }
        let progress = (step - warmup) as f64 / (self.steps - warmup).max(1) as f64;
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + coeff * (self.lr - self.min_lr)
    }
}

/// Gradients of `loss` for every parameter, in order (zeros for one the loss does not reach).
pub(super) fn gradients(loss: &Tensor, params: &[(String, Var)]) -> Result<Vec<Tensor>> {
    let mut store = loss.backward()?;
    params
        .iter()
        .map(|(_, v)| match store.remove(v.as_tensor()) {
            Some(g) => Ok(g),
            None => Ok(v.as_tensor().zeros_like()?),
        })
        .collect()
}

/// Scales gradients so their global norm is at most `max_norm`; returns the norm before, as a
/// one-element tensor. All on the device, with no read back to the host: on a GPU each read is a
/// sync that leaves it idle (the scale factor is exactly 1 when no clipping is needed).
pub fn clip_gradients(grads: &mut [Tensor], max_norm: f64) -> Result<Tensor> {
    let squares = grads
        .iter()
        .map(|g| g.sqr()?.sum_all())
        .collect::<candle_core::Result<Vec<_>>>()?;
    let norm = Tensor::stack(&squares, 0)?.sum_all()?.sqrt()?;
    let factor = (norm.affine(1.0, 1e-6)?.recip()? * max_norm)?.clamp(0.0, 1.0)?;
    for g in grads.iter_mut() {
        *g = g.broadcast_mul(&factor)?;
    }
    Ok(norm)
}

/// The tensors flattened and joined end to end, in order.
fn flatten(tensors: &[Tensor]) -> Result<Tensor> {
    let flat = tensors
        .iter()
        .map(|t| t.flatten_all())
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&flat, 0)?)
}

/// Elements per task of the CPU update.
const CHUNK: usize = 1 << 15;

/// AdamW (betas 0.9, 0.95 as nanoGPT), with weight decay only on parameters of rank >= 2
/// (matrices and embeddings), never on LayerNorm gains or biases.
///
/// The moments of all parameters lie end to end in one buffer each (in `params` order), so a
/// step is a dozen element-wise kernels over one buffer rather than a dozen per parameter: on a
/// GPU the launches, not the arithmetic, set the optimiser's cost.
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Steps taken so far.
    pub step: usize,
    m: Tensor,
    v: Tensor,
    /// Per element: the weight decay rate of its parameter (`weight_decay` or 0).
    decay: Tensor,
    /// Where each parameter lies in the flat buffers: (offset, length).
    spans: Vec<(usize, usize)>,
}

impl AdamW {
    pub fn new(params: &[(String, Var)], weight_decay: f64) -> Result<AdamW> {
        let (mut spans, mut decay, mut offset) = (Vec::new(), Vec::new(), 0);
        for (_, var) in params {
            let n = var.elem_count();
            spans.push((offset, n));
            offset += n;
            let rate = if var.rank() >= 2 { weight_decay } else { 0.0 };
            decay.extend(std::iter::repeat_n(rate as f32, n));
        }
        let device = params
            .first()
            .map_or(Device::Cpu, |(_, v)| v.device().clone());
        let zeros = Tensor::zeros(offset, DType::F32, &device)?;
        Ok(AdamW {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay,
            step: 0,
            m: zeros.clone(),
            v: zeros,
            decay: Tensor::from_vec(decay, offset, &device)?,
            spans,
        })
    }

    /// One update of every parameter from its gradient (same order as `params`), the gradients
    /// first clipped to a global norm of `max_norm` (see [`clip_gradients`]); returns the norm
    /// before clipping, on the device.
    pub fn clipped_update(
        &mut self,
        params: &[(String, Var)],
        grads: &[Tensor],
        max_norm: f64,
        lr: f64,
    ) -> Result<Tensor> {
        ensure!(
            params.len() == self.spans.len() && grads.len() == params.len(),
            "the optimiser was made for other parameters"
        );
        match self.m.device().is_cpu() && grads.iter().all(|g| g.dtype() == DType::F32) {
            true => self.cpu_update(params, grads, max_norm, lr),
            false => self.tensor_update(params, grads, max_norm, lr),
        }
    }

    /// [`AdamW::clipped_update`] as a dozen candle ops over one flat buffer: for a GPU.
    pub(super) fn tensor_update(
        &mut self,
        params: &[(String, Var)],
        grads: &[Tensor],
        max_norm: f64,
        lr: f64,
    ) -> Result<Tensor> {
        let mut flat = [flatten(grads)?];
        let norm = clip_gradients(&mut flat, max_norm)?;
        let g = &flat[0];
        ensure!(
            params.len() == self.spans.len() && g.elem_count() == self.decay.elem_count(),
            "the optimiser was made for other parameters"
        );
        self.step += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.step as i32);
        let c2 = 1.0 - b2.powi(self.step as i32);
        let m = ((&self.m * b1)? + (g * (1.0 - b1))?)?;
        let v = ((&self.v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
        let denom = ((&v / c2)?.sqrt()? + self.eps)?;
        let update = ((&m / c1)? / denom)?;
        let tensors: Vec<Tensor> = params.iter().map(|(_, v)| v.as_tensor().clone()).collect();
        // Decoupled weight decay: theta * (1 - lr * rate), then the Adam step.
        let theta = flatten(&tensors)?.mul(&self.decay.affine(-lr, 1.0)?)?;
        let theta = (theta - (update * lr)?)?;
        for ((_, var), &(offset, n)) in params.iter().zip(&self.spans) {
            var.set(&theta.narrow(0, offset, n)?.reshape(var.shape())?)?;
        }
        self.m = m;
        self.v = v;
        Ok(norm)
    }

    /// [`AdamW::clipped_update`] on the CPU in two passes over the gradients, spread over the
    /// cores (the norm, then the update), rather than a dozen candle ops on one flat buffer.
    pub(super) fn cpu_update(
        &mut self,
        params: &[(String, Var)],
        grads: &[Tensor],
        max_norm: f64,
        lr: f64,
    ) -> Result<Tensor> {
        use rayon::prelude::*;
        let grads: Vec<Vec<f32>> = grads
            .iter()
            .map(|g| g.flatten_all()?.to_vec1::<f32>())
            .collect::<candle_core::Result<_>>()?;
        let squares: f64 = grads
            .par_iter()
            .flat_map(|g| g.par_chunks(CHUNK))
            .map(|c| c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>())
            .sum();
        let norm = squares.sqrt() as f32;
        let clip = (max_norm as f32 / (norm + 1e-6)).clamp(0.0, 1.0);
        self.step += 1;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let c1 = 1.0 - self.beta1.powi(self.step as i32) as f32;
        let c2 = 1.0 - self.beta2.powi(self.step as i32) as f32;
        let (mut m, mut v) = (self.m.to_vec1::<f32>()?, self.v.to_vec1::<f32>()?);
        let (lr32, eps) = (lr as f32, self.eps as f32);
        for (((_, var), g), &(offset, n)) in params.iter().zip(&grads).zip(&self.spans) {
            let mut theta = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let rate = if var.rank() >= 2 {
                self.weight_decay
            } else {
                0.0
            };
            let keep = 1.0 - (lr * rate) as f32;
            let (ms, vs) = (&mut m[offset..offset + n], &mut v[offset..offset + n]);
            theta
                .par_chunks_mut(CHUNK)
                .zip(ms.par_chunks_mut(CHUNK).zip(vs.par_chunks_mut(CHUNK)))
                .zip(g.par_chunks(CHUNK))
                .for_each(|((t, (m, v)), g)| {
                    for i in 0..t.len() {
                        let g = g[i] * clip;
                        m[i] = b1 * m[i] + (1.0 - b1) * g;
                        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                        let update = (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
                        t[i] = t[i] * keep - lr32 * update;
                    }
                });
            var.set(&Tensor::from_vec(theta, var.shape(), var.device())?)?;
        }
        let device = self.m.device().clone();
        self.m = Tensor::from_vec(m, self.m.shape(), &device)?;
        self.v = Tensor::from_vec(v, self.v.shape(), &device)?;
        Ok(Tensor::new(norm, &device)?)
    }

    /// The first and second moments of parameter `i`, in its shape.
    pub(super) fn moments(&self, i: usize, shape: &Shape) -> Result<(Tensor, Tensor)> {
        let (offset, n) = self.spans[i];
        let part = |t: &Tensor| t.narrow(0, offset, n)?.reshape(shape);
        Ok((part(&self.m)?, part(&self.v)?))
    }

    /// Sets every parameter's moments (in `params` order), as [`AdamW::moments`] gives them.
    pub(super) fn set_moments(&mut self, m: &[Tensor], v: &[Tensor]) -> Result<()> {
        ensure!(
            m.len() == self.spans.len() && v.len() == self.spans.len(),
            "moments for {} and {} parameters, not {}",
            m.len(),
            v.len(),
            self.spans.len()
        );
        self.m = flatten(m)?.to_dtype(DType::F32)?;
        self.v = flatten(v)?.to_dtype(DType::F32)?;
        Ok(())
    }
}

/// Where a parameter's state lives: at this index of AdamW's parameters or of Muon's.
#[derive(Clone, Copy)]
enum Slot {
    Adam(usize),
    Muon(usize),
}

/// A run's optimiser: AdamW alone, or Muon for the blocks' matrices with AdamW for the rest.
/// Its state reads and writes per parameter of the model ([`Optimizer::moments`]), so the
/// resume file has one layout for both (Muon's momentum in the first moment, zeros in the
/// second).
pub struct Optimizer {
    adam: AdamW,
    adam_params: Vec<(String, Var)>,
    /// Muon's state: empty under AdamW alone.
    muon: Muon,
    muon_params: Vec<Var>,
    /// Muon's rate over AdamW's: the schedule scales both alike.
    muon_ratio: f64,
    weight_decay: f64,
    slots: Vec<Slot>,
}

impl Optimizer {
    /// The optimiser `opts` asks for, over the model's `params`.
    pub fn for_run(params: &[(String, Var)], opts: &TrainOptions) -> Result<Optimizer> {
        let muon_ratio = opts.muon_lr / opts.lr;
        Self::new(params, opts.optimizer, opts.weight_decay, muon_ratio)
    }

    /// `kind` over the model's `params`, Muon's rate `muon_ratio` times AdamW's.
    pub fn new(
        params: &[(String, Var)],
        kind: OptimizerKind,
        weight_decay: f64,
        muon_ratio: f64,
    ) -> Result<Optimizer> {
        let muon = kind == OptimizerKind::Muon;
        let (mut adam_params, mut muon_params, mut slots) = (Vec::new(), Vec::new(), Vec::new());
        for (name, var) in params {
            if muon && is_muon_param(name, var) {
                slots.push(Slot::Muon(muon_params.len()));
                muon_params.push(var.clone());
            } else {
                slots.push(Slot::Adam(adam_params.len()));
                adam_params.push((name.clone(), var.clone()));
            }
        }
        let adam = AdamW::new(&adam_params, weight_decay)?;
        let muon = Muon::new(&muon_params.iter().collect::<Vec<_>>())?;
        Ok(Optimizer {
            adam,
            adam_params,
            muon,
            muon_params,
            muon_ratio,
            weight_decay,
            slots,
        })
    }

    /// Steps taken so far.
    pub fn step(&self) -> usize {
        self.adam.step
    }

    pub fn set_step(&mut self, step: usize) {
        self.adam.step = step;
    }

    /// One update of every parameter of the model (`params`, as given to [`Optimizer::new`])
    /// from its gradient at AdamW's rate `lr`, the gradients first clipped to a global norm of
    /// `max_norm`; returns the norm before clipping, on the device.
    pub fn clipped_update(
        &mut self,
        params: &[(String, Var)],
        grads: &[Tensor],
        max_norm: f64,
        lr: f64,
    ) -> Result<Tensor> {
        ensure!(
            params.len() == self.slots.len() && grads.len() == params.len(),
            "the optimiser was made for other parameters"
        );
        if self.muon_params.is_empty() {
            return self.adam.clipped_update(params, grads, max_norm, lr);
        }
        let mut grads = grads.to_vec();
        let norm = clip_gradients(&mut grads, max_norm)?;
        let (mut adam_grads, mut muon_grads) = (Vec::new(), Vec::new());
        for (slot, g) in self.slots.iter().zip(&grads) {
            match slot {
                Slot::Adam(_) => adam_grads.push(g.clone()),
                Slot::Muon(_) => muon_grads.push(g),
            }
        }
        // Already clipped: AdamW's own clipping must leave them as they are.
        self.adam
            .clipped_update(&self.adam_params, &adam_grads, f64::INFINITY, lr)?;
        let muon_params: Vec<&Var> = self.muon_params.iter().collect();
        // The matrices decay as much per step as they would under AdamW.
        let keep = 1.0 - lr * self.weight_decay;
        self.muon
            .update(&muon_params, &muon_grads, lr * self.muon_ratio, keep)?;
        Ok(norm)
    }

    /// The state of the model's parameter `i`, in its shape: AdamW's two moments, or Muon's
    /// momentum and zeros.
    pub(super) fn moments(&self, i: usize, shape: &Shape) -> Result<(Tensor, Tensor)> {
        match self.slots[i] {
            Slot::Adam(j) => self.adam.moments(j, shape),
            Slot::Muon(j) => {
                let m = self.muon.buffers[j].reshape(shape)?;
                Ok((m.clone(), m.zeros_like()?))
            }
        }
    }

    /// Sets every parameter's state (in the model's order), as [`Optimizer::moments`] gives it.
    pub(super) fn set_moments(&mut self, m: &[Tensor], v: &[Tensor]) -> Result<()> {
        ensure!(
            m.len() == self.slots.len() && v.len() == self.slots.len(),
            "moments for {} and {} parameters, not {}",
            m.len(),
            v.len(),
            self.slots.len()
        );
        let (mut am, mut av) = (Vec::new(), Vec::new());
        for (i, slot) in self.slots.iter().enumerate() {
            match slot {
                Slot::Adam(_) => {
                    am.push(m[i].clone());
                    av.push(v[i].clone());
                }
                Slot::Muon(j) => self.muon.buffers[*j] = m[i].to_dtype(DType::F32)?,
            }
        }
        self.adam.set_moments(&am, &av)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn options(steps: usize, warmup: Option<usize>) -> TrainOptions {
        let mut o = TrainOptions::new("small", Path::new("data"), Path::new("out")).unwrap();
        o.steps = steps;
        o.warmup = warmup;
        o.lr = 1e-3;
        o.min_lr = 1e-4;
        o
    }

    #[test]
    fn the_rate_warms_up_linearly_then_decays_to_min_lr() {
        let o = options(1000, None);
        assert_eq!(o.warmup_steps(), 100, "steps / 10 under 1000");
        assert_eq!(options(50_000, None).warmup_steps(), 1000, "at most 1000");
        assert!((o.lr_at(0) - 1e-5).abs() < 1e-12, "{}", o.lr_at(0));
        assert!((o.lr_at(49) - 5e-4).abs() < 1e-12, "{}", o.lr_at(49));
        assert!((o.lr_at(100) - 1e-3).abs() < 1e-12, "peak after warm-up");
        // Half way through the decay the cosine is at its middle.
        assert!((o.lr_at(550) - 5.5e-4).abs() < 1e-9, "{}", o.lr_at(550));
        let rates: Vec<f64> = (100..=1000).map(|s| o.lr_at(s)).collect();
        assert!(
            rates.windows(2).all(|w| w[1] <= w[0]),
            "the decay never rises"
        );
        assert_eq!(o.lr_at(1000), 1e-4);
        assert_eq!(o.lr_at(5000), 1e-4, "past the end: min_lr");
        // A warm-up as long as the run leaves no decay, and divides by nothing.
        let all_warm = options(10, Some(10));
        assert!((all_warm.lr_at(9) - 1e-3).abs() < 1e-12);
        assert_eq!(all_warm.lr_at(10), 1e-4);
    }

    #[test]
    fn clipping_scales_to_the_norm_and_leaves_small_gradients_exact() {
        let grads = || {
            vec![
                Tensor::new(&[3f32, 0.0], &Device::Cpu).unwrap(),
                Tensor::new(&[[4f32]], &Device::Cpu).unwrap(),
            ]
        };
        let mut big = grads();
        let norm = clip_gradients(&mut big, 1.0).unwrap();
        assert_eq!(norm.to_scalar::<f32>().unwrap(), 5.0);
        let a = big[0].to_vec1::<f32>().unwrap();
        let b = big[1].to_vec2::<f32>().unwrap()[0][0];
        assert!((a[0] - 0.6).abs() < 1e-6 && a[1] == 0.0 && (b - 0.8).abs() < 1e-6);
        let mut small = grads();
        clip_gradients(&mut small, 10.0).unwrap();
        assert_eq!(small[0].to_vec1::<f32>().unwrap(), vec![3.0, 0.0]);
        assert_eq!(small[1].to_vec2::<f32>().unwrap(), vec![vec![4.0]]);
    }

    /// A matrix and a bias, as a model's parameters.
    fn params() -> Vec<(String, Var)> {
        let w = Var::from_vec(vec![1f32, -2.0, 3.0, -4.0], (2, 2), &Device::Cpu).unwrap();
        let b = Var::from_vec(vec![0.5f32, -0.5], 2, &Device::Cpu).unwrap();
        vec![("w".into(), w), ("b".into(), b)]
    }

    fn values(var: &Var) -> Vec<f32> {
        var.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn adamw_steps_against_the_gradient_and_decays_only_matrices() {
        let p = params();
        let mut opt = AdamW::new(&p, 0.1).unwrap();
        // Zero gradients: Adam's step is 0, so only the decay acts, on the matrix alone.
        let zeros: Vec<Tensor> = p.iter().map(|(_, v)| v.zeros_like().unwrap()).collect();
        opt.clipped_update(&p, &zeros, 1.0, 0.5).unwrap();
        let decayed = values(&p[0].1);
        for (got, want) in decayed.iter().zip([0.95f32, -1.9, 2.85, -3.8]) {
            assert!((got - want).abs() < 1e-6, "{decayed:?}");
        }
        assert_eq!(values(&p[1].1), vec![0.5, -0.5], "no decay on a bias");
        // A first Adam step moves each weight by lr against the sign of its gradient.
        let mut opt = AdamW::new(&p, 0.0).unwrap();
        let grads = vec![
            Tensor::new(&[[0.3f32, -0.1], [0.0, 0.2]], &Device::Cpu).unwrap(),
            Tensor::new(&[-0.4f32, 0.1], &Device::Cpu).unwrap(),
        ];
        let before: Vec<Vec<f32>> = p.iter().map(|(_, v)| values(v)).collect();
        opt.clipped_update(&p, &grads, 10.0, 0.01).unwrap();
        assert_eq!(opt.step, 1);
        for ((_, var), (old, g)) in p.iter().zip(before.iter().zip(&grads)) {
            let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
            for ((new, old), g) in values(var).iter().zip(old).zip(&g) {
                let sign = if *g == 0.0 { 0.0 } else { g.signum() };
                let want = old - 0.01 * sign;
                assert!((new - want).abs() < 1e-6, "{old} -> {new}, gradient {g}");
            }
        }
        // The moments come back per parameter, in its shape, and set back the same.
        let (m, v) = opt.moments(0, p[0].1.shape()).unwrap();
        assert_eq!(m.dims(), &[2, 2]);
        let m0: Vec<f32> = m.flatten_all().unwrap().to_vec1().unwrap();
        assert!((m0[0] - 0.03).abs() < 1e-7, "{m0:?}");
        let (mb, vb) = opt.moments(1, p[1].1.shape()).unwrap();
        let mut other = AdamW::new(&p, 0.0).unwrap();
        other.set_moments(&[m, mb], &[v, vb]).unwrap();
        assert_eq!(
            other.m.to_vec1::<f32>().unwrap(),
            opt.m.to_vec1::<f32>().unwrap()
        );
        let err = other.set_moments(&[], &[]).unwrap_err().to_string();
        assert!(err.contains("not 2"), "{err}");
    }

    #[test]
    fn the_cpu_update_is_the_tensor_update() {
        let grads = |scale: f32| {
            vec![
                Tensor::new(&[[0.3f32 * scale, -0.1], [0.0, 0.2]], &Device::Cpu).unwrap(),
                Tensor::new(&[-0.4f32, 0.1 * scale], &Device::Cpu).unwrap(),
            ]
        };
        let (a, b) = (params(), params());
        let (mut oa, mut ob) = (AdamW::new(&a, 0.1).unwrap(), AdamW::new(&b, 0.1).unwrap());
        // Three steps, the first two clipped, with moments carried between them.
        for (step, scale) in [40.0, 5.0, 1.0].into_iter().enumerate() {
            let na = oa.cpu_update(&a, &grads(scale), 1.0, 0.01).unwrap();
            let nb = ob.tensor_update(&b, &grads(scale), 1.0, 0.01).unwrap();
            let (na, nb) = (
                na.to_scalar::<f32>().unwrap(),
                nb.to_scalar::<f32>().unwrap(),
            );
            assert!(
                (na - nb).abs() < 1e-5 * nb,
                "step {step}: norm {na} against {nb}"
            );
            for ((_, va), (_, vb)) in a.iter().zip(&b) {
                for (x, y) in values(va).iter().zip(values(vb)) {
                    assert!((x - y).abs() < 1e-6, "step {step}: {x} against {y}");
                }
            }
        }
        assert_eq!(oa.step, 3);
    }
}
