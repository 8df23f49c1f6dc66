//! Training: random windows of the prepared dataset, augmented on line, AdamW with warm-up and
//! cosine decay, evaluation on fixed batches, the best weights kept in a checkpoint folder.
//!
//! The loop is nanoGPT's: for each step, `accum` micro-batches of `batch` windows (each inside
//! one piece) are read forward and backward, their gradients summed, clipped to norm 1.0, and
//! AdamW takes a step. Every `eval_every` steps the train and validation loss on fixed batches are
//! logged, the weights saved if validation improved, and the resume state written.
//!
//! Runs are exactly reproducible: a step's batches and dropout masks come from a generator seeded
//! with (seed, step), so a run resumed after a kill draws what the uninterrupted run drew.

use crate::fsutil::write_atomic;
use crate::learn::checkpoint::{
    load_tensors, save_tensors, Checkpoint, CheckpointConfig, TrainSummary, LOG_FILE, MODEL_FILE,
    OPTIMIZER_FILE, STATE_FILE,
};
use crate::learn::dataset::{Dataset, SplitData};
use crate::learn::device::Compute;
use crate::learn::model::{Gpt, GptConfig};
use crate::music::augment::{stretch, transpose};
use crate::music::words::Vocab;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Shape, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Online augmentation of each training window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Probability that a window is transposed.
    pub transpose_prob: f64,
    /// Transpositions are drawn uniformly from -range..=range semitones, 0 excluded.
    pub transpose_range: i32,
    /// Probability that a window is stretched in time.
    pub stretch_prob: f64,
    /// Stretch factors, one drawn uniformly.
    pub stretches: Vec<f64>,
}

impl Default for Augment {
    /// The seed's: transpositions within +-5 semitones, stretch by 0.5, 0.75 or 1.5.
    fn default() -> Augment {
        Augment {
            transpose_prob: 0.5,
            transpose_range: 5,
            stretch_prob: 0.5,
            stretches: vec![0.5, 0.75, 1.5],
        }
    }
}

impl Augment {
    /// No augmentation at all.
    pub fn none() -> Augment {
        Augment {
            transpose_prob: 0.0,
            transpose_range: 0,
            stretch_prob: 0.0,
            stretches: Vec::new(),
        }
    }
}

/// Everything `train` needs. `model` is the shape of a fresh model; with `resume` or `init_from`
/// the shape comes from that checkpoint instead (its dropout replaced by `model.dropout`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub out: PathBuf,
    pub model: GptConfig,
    /// Windows per micro-batch.
    pub batch: usize,
    /// Micro-batches per optimiser step (gradient accumulation).
    pub accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Linear warm-up steps; `None` = min(1000, steps / 10).
    pub warmup: Option<usize>,
    /// Optimiser steps in all (the cosine decays over them).
    pub steps: usize,
    pub eval_every: usize,
    /// Fixed batches per split for each evaluation.
    pub eval_batches: usize,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub seed: u64,
    pub augment: Augment,
    /// Continue the run in `out` where it stopped.
    pub resume: bool,
    /// Start from the weights of this checkpoint (fine-tuning).
    pub init_from: Option<PathBuf>,
    /// Show a progress bar (and print evaluations) on the terminal.
    #[serde(skip)]
    pub progress: bool,
    /// Stop before this step without saving, as a kill would (for tests).
    #[serde(skip)]
    pub stop_before: Option<usize>,
    /// Once this much time has passed, evaluate, save the resume state and stop, so a run fits
    /// a time slot (a 10-minute GPU call); `resume` carries on from there.
    #[serde(skip)]
    pub time_limit: Option<std::time::Duration>,
}

impl TrainOptions {
    /// The defaults for a preset (`small` or `base`), reading `data` and writing `out`.
    pub fn new(preset: &str, data: &Path, out: &Path) -> Result<TrainOptions> {
        let model = GptConfig::preset(preset, Vocab.len())?;
        // The seed trained its 5.6M model at 1e-3; the wider model wants a gentler rate.
        let lr = if preset == "base" { 5e-4 } else { 1e-3 };
        Ok(TrainOptions {
            data: data.to_path_buf(),
            out: out.to_path_buf(),
            model,
            batch: 16,
            accum: 1,
            lr,
            min_lr: lr / 10.0,
            warmup: None,
            steps: 5000,
            eval_every: 250,
            eval_batches: 8,
            weight_decay: 0.1,
            grad_clip: 1.0,
            seed: 1337,
            augment: Augment::default(),
            resume: false,
            init_from: None,
            progress: false,
            stop_before: None,
            time_limit: None,
        })
    }

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

    fn validate(&self) -> Result<()> {
        ensure!(
            self.batch > 0 && self.accum > 0,
            "batch and accum must be at least 1"
        );
        ensure!(self.steps > 0, "steps must be at least 1");
        ensure!(self.eval_every > 0, "eval-every must be at least 1");
        ensure!(self.eval_batches > 0, "eval-batches must be at least 1");
        ensure!(
            self.lr > 0.0 && self.min_lr >= 0.0,
            "learning rates must be positive"
        );
        ensure!(
            !(self.resume && self.init_from.is_some()),
            "--resume and --init-from exclude each other"
        );
        let a = &self.augment;
        ensure!(
            (0.0..=1.0).contains(&a.transpose_prob) && (0.0..=1.0).contains(&a.stretch_prob),
            "augmentation probabilities must lie in [0, 1]"
        );
        ensure!(
            a.transpose_range >= 0,
            "transpose range must not be negative"
        );
        ensure!(
            a.stretches.iter().all(|f| f.is_finite() && *f > 0.0),
            "stretch factors must be positive"
        );
        self.model.validate()
    }
}

/// What a run reached.
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub step: usize,
    pub best_val_loss: f64,
    pub last_train_loss: f64,
    pub last_val_loss: f64,
    pub tokens_per_s: f64,
}

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

/// The tensors flattened and joined end to end, in order.
pub fn flatten(tensors: &[Tensor]) -> Result<Tensor> {
    let flat = tensors
        .iter()
        .map(|t| t.flatten_all())
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&flat, 0)?)
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

    /// The first and second moments of parameter `i`, in its shape.
    fn moments(&self, i: usize, shape: &Shape) -> Result<(Tensor, Tensor)> {
        let (offset, n) = self.spans[i];
        let part = |t: &Tensor| t.narrow(0, offset, n)?.reshape(shape);
        Ok((part(&self.m)?, part(&self.v)?))
    }

    /// Sets every parameter's moments (in `params` order), as [`AdamW::moments`] gives them.
    fn set_moments(&mut self, m: &[Tensor], v: &[Tensor]) -> Result<()> {
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

/// Windows of `context + 1` words that lie inside one piece, drawn uniformly over all positions.
pub struct Windows<'a> {
    split: &'a SplitData,
    len: usize,
    /// (piece index, cumulative count of window starts up to and including it).
    cumulative: Vec<(usize, u64)>,
}

impl<'a> Windows<'a> {
    /// `len` = context + 1. Pieces shorter than that are left out.
    pub fn new(split: &'a SplitData, len: usize) -> Windows<'a> {
        let mut total = 0u64;
        let mut cumulative = Vec::new();
        for (i, p) in split.pieces.iter().enumerate() {
            if p.len >= len {
                total += (p.len - len + 1) as u64;
                cumulative.push((i, total));
            }
        }
        Windows {
            split,
            len,
            cumulative,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// A random (piece, start).
    pub fn sample(&self, rng: &mut StdRng) -> (usize, usize) {
        let total = self.cumulative.last().map_or(0, |c| c.1);
        let r = rng.random_range(0..total);
        let k = self.cumulative.partition_point(|c| c.1 <= r);
        let before = if k == 0 { 0 } else { self.cumulative[k - 1].1 };
        (self.cumulative[k].0, (r - before) as usize)
    }

    /// One window, augmented as `augment` says (kept plain when augmenting leaves it too short).
    pub fn window(&self, rng: &mut StdRng, augment: &Augment) -> Vec<u16> {
        let (piece, start) = self.sample(rng);
        let ids = self.split.piece(piece);
        let plain = &ids[start..start + self.len];
        let semitones = if augment.transpose_range > 0 && rng.random_bool(augment.transpose_prob) {
            let s = rng.random_range(1..=augment.transpose_range);
            if rng.random_bool(0.5) {
                s
            } else {
                -s
            }
        } else {
            0
        };
        let factor = if !augment.stretches.is_empty() && rng.random_bool(augment.stretch_prob) {
            augment.stretches[rng.random_range(0..augment.stretches.len())]
        } else {
            1.0
        };
        if semitones == 0 && factor == 1.0 {
            return plain.to_vec();
        }
        // Augmenting can merge words, so start from a longer raw window and cut it afterwards.
        let raw = &ids[start..(start + self.len + self.len / 4 + 8).min(ids.len())];
        let (mut words, _) = Vocab.decode(raw);
        if semitones != 0 {
            words = transpose(&words, semitones);
        }
        if factor != 1.0 {
            words = stretch(&words, factor);
        }
        match Vocab.encode(&words) {
            Some(mut out) if out.len() >= self.len => {
                out.truncate(self.len);
                out
            }
            _ => plain.to_vec(),
        }
    }

    /// A batch: inputs and targets, both (batch, context) u32.
    pub fn batch(
        &self,
        rng: &mut StdRng,
        batch: usize,
        augment: &Augment,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let ctx = self.len - 1;
        let mut x = Vec::with_capacity(batch * ctx);
        let mut y = Vec::with_capacity(batch * ctx);
        for _ in 0..batch {
            let w = self.window(rng, augment);
            x.extend(w[..ctx].iter().map(|&t| t as u32));
            y.extend(w[1..].iter().map(|&t| t as u32));
        }
        Ok((
            Tensor::from_vec(x, (batch, ctx), device)?,
            Tensor::from_vec(y, (batch, ctx), device)?,
        ))
    }
}

/// A seed for one purpose at one step (splitmix64 of the mix), so streams never overlap.
fn derive_seed(seed: u64, stream: u64, step: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Gradients of `loss` for every parameter, in order (zeros for one the loss does not reach).
fn gradients(loss: &Tensor, params: &[(String, Var)]) -> Result<Vec<Tensor>> {
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

/// One optimiser step: `accum` micro-batches forward and backward, clipped, AdamW. Returns the
/// mean training loss of the step, still on the device (reading it is a sync).
#[allow(clippy::too_many_arguments)]
fn train_step(
    model: &Gpt,
    opt: &mut AdamW,
    windows: &Windows,
    opts: &TrainOptions,
    step: usize,
    device: &Device,
) -> Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(derive_seed(opts.seed, 1, step as u64));
    if !device.is_cpu() && opts.model.dropout > 0.0 {
        // The GPU's dropout masks come from its own generator: seeded by step, so a resumed
        // run draws the same ones (the CPU's come from `rng`). Only with dropout: candle makes
        // a new generator for each seed, which costs a setup on the GPU.
        device.set_seed(derive_seed(opts.seed, 4, step as u64))?;
    }
    let params = model.params();
    let mut total: Option<Vec<Tensor>> = None;
    let mut loss_sum: Option<Tensor> = None;
    for _ in 0..opts.accum {
        let (x, y) = windows.batch(&mut rng, opts.batch, &opts.augment, device)?;
        let loss = (model.loss(&x, &y, Some(&mut rng))? / opts.accum as f64)?;
        loss_sum = Some(match loss_sum {
            None => loss.detach(),
            Some(sum) => (sum + loss.detach())?,
        });
        let grads = gradients(&loss, params)?;
        total = Some(match total {
            None => grads,
            Some(acc) => acc
                .iter()
                .zip(&grads)
                .map(|(a, g)| a + g)
                .collect::<Result<_, _>>()?,
        });
    }
    let grads = total.context("no micro-batches")?;
    opt.clipped_update(params, &grads, opts.grad_clip, opts.lr_at(step))?;
    loss_sum.context("no micro-batches")
}

/// Fixed evaluation batches of a split (no augmentation), the same at every evaluation.
fn fixed_batches(
    windows: &Windows,
    n: usize,
    batch: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<(Tensor, Tensor)>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| windows.batch(&mut rng, batch, &Augment::none(), device))
        .collect()
}

fn mean_loss(model: &Gpt, batches: &[(Tensor, Tensor)]) -> Result<f64> {
    let mut sum = 0.0;
    for (x, y) in batches {
        sum += model.loss(x, y, None)?.to_scalar::<f32>()? as f64;
    }
    Ok(sum / batches.len() as f64)
}

/// Resume state: the current weights, the optimiser's moments, the step and the best loss.
fn save_resume_state(
    dir: &Path,
    model: &Gpt,
    opt: &AdamW,
    step: usize,
    best: f64,
    device: &Device,
) -> Result<()> {
    let mut t: HashMap<String, Tensor> = HashMap::new();
    for (i, (name, var)) in model.params().iter().enumerate() {
        let (m, v) = opt.moments(i, var.shape())?;
        t.insert(format!("param.{name}"), var.as_tensor().clone());
        t.insert(format!("m.{name}"), m);
        t.insert(format!("v.{name}"), v);
    }
    t.insert("step".into(), Tensor::new(&[step as i64], device)?);
    t.insert("best_val_loss".into(), Tensor::new(&[best], device)?);
    save_tensors(&dir.join(OPTIMIZER_FILE), &t)
}

/// Reads what [`save_resume_state`] wrote: (model, optimiser, step, best val loss).
fn load_resume_state(
    dir: &Path,
    config: &GptConfig,
    weight_decay: f64,
    device: &Device,
) -> Result<(Gpt, AdamW, usize, f64)> {
    let path = dir.join(OPTIMIZER_FILE);
    let mut t = load_tensors(&path, device)?;
    let bad = |what: &str| format!("{} lacks a valid {what}", path.display());
    let step = t.remove("step").with_context(|| bad("step"))?;
    let step = step.to_vec1::<i64>().with_context(|| bad("step"))?;
    let best = t
        .remove("best_val_loss")
        .with_context(|| bad("best_val_loss"))?;
    let best = best
        .to_vec1::<f64>()
        .with_context(|| bad("best_val_loss"))?;
    ensure!(step.len() == 1 && best.len() == 1, bad("step"));
    let mut weights = HashMap::new();
    let mut moments = HashMap::new();
    for (name, tensor) in t {
        match name.strip_prefix("param.") {
            Some(n) => {
                weights.insert(n.to_string(), tensor);
            }
            None => {
                moments.insert(name, tensor);
            }
        }
    }
    let model = Gpt::from_tensors(config, &weights, device)
        .with_context(|| format!("{} does not match the checkpoint's config", path.display()))?;
    let mut opt = AdamW::new(model.params(), weight_decay)?;
    let (mut m, mut v) = (Vec::new(), Vec::new());
    for (name, var) in model.params() {
        for (kind, list) in [("m", &mut m), ("v", &mut v)] {
            let key = format!("{kind}.{name}");
            let moment = moments.remove(&key).with_context(|| bad(&key))?;
            ensure!(moment.dims() == var.dims(), bad(&key));
            list.push(moment);
        }
    }
    opt.set_moments(&m, &v)?;
    opt.step = step[0] as usize;
    Ok((model, opt, step[0] as usize, best[0]))
}

/// Steps between progress-bar updates of the training loss.
const PROGRESS_EVERY: usize = 10;

/// Trains as `opts` says on `compute`, writing the checkpoint folder `opts.out`.
pub fn train(opts: &TrainOptions, compute: &Compute) -> Result<TrainReport> {
    opts.validate()?;
    let device = &compute.device;
    let data = Dataset::load(&opts.data)?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;

    if !opts.resume
        && opts
            .out
            .join(crate::learn::checkpoint::CONFIG_FILE)
            .exists()
    {
        bail!(
            "{} already holds a checkpoint: add --resume to continue it, or choose another --out",
            opts.out.display()
        );
    }
    let (model, mut opt, start_step, mut best, mut summary) = if opts.resume {
        let config = CheckpointConfig::load(&opts.out).context("cannot resume")?;
        let (model, opt, step, best) =
            load_resume_state(&opts.out, &config.model, opts.weight_decay, device)
                .context("cannot resume")?;
        (model, opt, step, best, config.training)
    } else {
        let model = match &opts.init_from {
            Some(dir) => {
                let ckpt = Checkpoint::load(dir, device)
                    .with_context(|| format!("cannot start from {}", dir.display()))?;
                let mut cfg = ckpt.config.model.clone();
                cfg.dropout = opts.model.dropout;
                Gpt::from_tensors(&cfg, &ckpt.model.tensors(), device)?
            }
            None => Gpt::new(&opts.model, opts.seed, device)?,
        };
        let opt = AdamW::new(model.params(), opts.weight_decay)?;
        (model, opt, 0, f64::INFINITY, TrainSummary::default())
    };
    let mut cfg = model.config().clone();
    if opts.resume {
        cfg.dropout = opts.model.dropout;
    }
    let mut model = if cfg != *model.config() {
        Gpt::from_tensors(&cfg, &model.tensors(), device)?
    } else {
        model
    };
    model.set_matmul_dtype(compute.matmul_dtype);
    let ctx = cfg.context;
    summary.options = serde_json::to_value(opts)?;

    let train_windows = Windows::new(&data.train, ctx + 1);
    let val_windows = Windows::new(&data.val, ctx + 1);
    for (w, name) in [(&train_windows, "training"), (&val_windows, "validation")] {
        if w.is_empty() {
            bail!(
                "the {name} split of {} has no piece of {} words or more (context {ctx} + 1)",
                opts.data.display(),
                ctx + 1
            );
        }
    }
    let eval_train = fixed_batches(
        &train_windows,
        opts.eval_batches,
        opts.batch,
        derive_seed(opts.seed, 2, 0),
        device,
    )?;
    let eval_val = fixed_batches(
        &val_windows,
        opts.eval_batches,
        opts.batch,
        derive_seed(opts.seed, 3, 0),
        device,
    )?;

    let tokens_per_step = (opts.batch * opts.accum * ctx) as u64;
    let log_path = opts.out.join(LOG_FILE);
    if !opts.resume || !log_path.exists() {
        write_atomic(&log_path, b"step,train_loss,val_loss,lr,tokens,seconds\n")?;
    }
    let bar = progress_bar(opts, start_step);
    if opts.progress {
        say(&bar, format!(
            "training {} parameters ({} layers, {} heads, {} wide, context {ctx}) on {} training words, {} tokens/step",
            model.num_params(),
            cfg.layers,
            cfg.heads,
            cfg.width,
            data.train.tokens.len(),
            tokens_per_step
        ));
    }

    let started = Instant::now();
    let (mut last_train, mut last_val) = (f64::NAN, f64::NAN);
    let mut step = start_step;
    let mut loss_avg: Option<f64> = None;
    loop {
        // Evaluate (and save) at step 0, every eval_every steps and at the end, but not again
        // at the step a resumed run starts from: that one was saved before the stop.
        let out_of_time =
            step > start_step && opts.time_limit.is_some_and(|t| started.elapsed() >= t);
        let at_eval = step % opts.eval_every == 0 || step == opts.steps || out_of_time;
        if at_eval && !(opts.resume && step == start_step) {
            last_train = mean_loss(&model, &eval_train)?;
            last_val = mean_loss(&model, &eval_val)?;
            summary.step = step;
            summary.tokens = step as u64 * tokens_per_step;
            if last_val < best {
                best = last_val;
                summary.best_step = step;
                summary.best_val_loss = Some(last_val);
                summary.train_loss = Some(last_train);
                save_tensors(&opts.out.join(MODEL_FILE), &model.tensors())?;
            }
            CheckpointConfig::new(cfg.clone(), summary.clone()).save(&opts.out)?;
            save_resume_state(&opts.out, &model, &opt, step, best, device)?;
            let state = serde_json::json!({
                "step": step, "best_step": summary.best_step, "best_val_loss": best,
                "train_loss": last_train, "val_loss": last_val, "lr": opts.lr_at(step),
            });
            write_atomic(
                &opts.out.join(STATE_FILE),
                &serde_json::to_vec_pretty(&state)?,
            )?;
            append_log(
                &log_path,
                step,
                last_train,
                last_val,
                opts.lr_at(step),
                summary.tokens,
                started.elapsed().as_secs_f64(),
            )?;
            if opts.progress {
                say(
                    &bar,
                    format!(
                        "step {step}: train loss {last_train:.4}, val loss {last_val:.4}{}",
                        if summary.best_step == step {
                            " (best, saved)"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
        if step >= opts.steps || out_of_time || opts.stop_before == Some(step) {
            break;
        }
        let loss = train_step(&model, &mut opt, &train_windows, opts, step, device)?;
        step += 1;
        bar.set_position(step as u64);
        // Reading the loss waits for the device, so the bar shows it every few steps only.
        if opts.progress && step % PROGRESS_EVERY == 0 {
            let loss = loss.to_scalar::<f32>()? as f64;
            let avg = loss_avg.map_or(loss, |a| 0.7 * a + 0.3 * loss);
            loss_avg = Some(avg);
            let secs = started.elapsed().as_secs_f64();
            let tps = (step - start_step) as f64 * tokens_per_step as f64 / secs;
            bar.set_message(format!("loss {avg:.4} | {tps:.0} tok/s"));
        }
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    Ok(TrainReport {
        step,
        best_val_loss: best,
        last_train_loss: last_train,
        last_val_loss: last_val,
        tokens_per_s: (step - start_step) as f64 * tokens_per_step as f64 / secs,
    })
}

/// A line above the progress bar, or on stderr when there is no terminal to draw it on.
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress_bar(opts: &TrainOptions, start: usize) -> indicatif::ProgressBar {
    if !opts.progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(opts.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} step {pos}/{len} | {msg} | {elapsed_precise} ETA {eta_precise}",
        )
        .expect("valid template"),
    );
    bar.set_position(start as u64);
    bar.reset_eta();
    bar
}

fn append_log(
    path: &Path,
    step: usize,
    train: f64,
    val: f64,
    lr: f64,
    tokens: u64,
    secs: f64,
) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(
        file,
        "{step},{train:.6},{val:.6},{lr:.3e},{tokens},{secs:.1}"
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Loss over a split, deterministically: each piece cut into non-overlapping windows of the
/// model's context, every word after the first predicted once. Stops after `max_words`
/// predicted words if given. Returns (mean loss in nats/word, words).
pub fn evaluate(model: &Gpt, split: &SplitData, max_words: Option<usize>) -> Result<(f64, usize)> {
    let ctx = model.config().context;
    let device = model.device().clone();
    let limit = max_words.unwrap_or(usize::MAX);
    let mut windows: Vec<(&[u16], &[u16])> = Vec::new();
    let mut words = 0usize;
    'pieces: for i in 0..split.pieces.len() {
        let p = split.piece(i);
        let mut start = 0;
        while start + 1 < p.len() {
            let n = ctx.min(p.len() - 1 - start).min(limit - words);
            if n == 0 {
                break 'pieces;
            }
            windows.push((&p[start..start + n], &p[start + 1..start + n + 1]));
            words += n;
            start += n;
        }
    }
    ensure!(words > 0, "nothing to evaluate: the split has no words");
    // Windows of one length go together in batches of up to 16.
    windows.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
    let mut sum = 0f64;
    for group in windows.chunk_by(|a, b| a.0.len() == b.0.len()) {
        for chunk in group.chunks(16) {
            let n = chunk[0].0.len();
            let xs: Vec<u32> = chunk
                .iter()
                .flat_map(|w| w.0.iter().map(|&t| t as u32))
                .collect();
            let ys: Vec<u32> = chunk
                .iter()
                .flat_map(|w| w.1.iter().map(|&t| t as u32))
                .collect();
            let x = Tensor::from_vec(xs, (chunk.len(), n), &device)?;
            let y = Tensor::from_vec(ys, (chunk.len(), n), &device)?;
            let loss = model.loss(&x, &y, None)?.to_scalar::<f32>()? as f64;
            sum += loss * (chunk.len() * n) as f64;
        }
    }
    Ok((sum / words as f64, words))
}

/// Training speed: tokens/s of `steps` full steps (forward, backward, clipping, AdamW) on random
/// tokens, after two warm-up steps.
pub fn bench(config: &GptConfig, batch: usize, steps: usize, compute: &Compute) -> Result<f64> {
    let device = &compute.device;
    let mut model = Gpt::new(config, 0, device)?;
    model.set_matmul_dtype(compute.matmul_dtype);
    let mut opt = AdamW::new(model.params(), 0.1)?;
    let mut rng = StdRng::seed_from_u64(0);
    let ctx = config.context;
    let mut step = |rng: &mut StdRng| -> Result<()> {
        let ids: Vec<u32> = (0..batch * (ctx + 1))
            .map(|_| rng.random_range(0..config.vocab as u32))
            .collect();
        let all = Tensor::from_vec(ids, (batch, ctx + 1), device)?;
        let x = all.narrow(1, 0, ctx)?;
        let y = all.narrow(1, 1, ctx)?.contiguous()?;
        let loss = model.loss(&x.contiguous()?, &y, Some(rng))?;
        let grads = gradients(&loss, model.params())?;
        opt.clipped_update(model.params(), &grads, 1.0, 1e-4)?;
        Ok(())
    };
    step(&mut rng)?;
    step(&mut rng)?;
    compute.synchronize()?;
    let started = Instant::now();
    for _ in 0..steps {
        step(&mut rng)?;
    }
    compute.synchronize()?;
    Ok((batch * ctx * steps) as f64 / started.elapsed().as_secs_f64())
}
