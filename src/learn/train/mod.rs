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
//!
//! This file holds the options and the loop. Its parts, in the order a run meets them: `resume`
//! (where a run starts and stands), `batches` (the windows and their seeds), `optim` (gradients,
//! clipping, AdamW, the learning rate), `eval` (the losses) and `record` (the checkpoint's
//! files, log.csv and the progress bar).

mod average;
mod batches;
mod bench;
mod eval;
mod fill_window;
mod muon;
mod optim;
mod record;
mod resume;

pub use batches::Augment;
pub use bench::{bench, profile, OpTime, StepTimes};
pub use eval::{evaluate, piece_losses, Evaluation};
pub use optim::{clip_gradients, AdamW, Optimizer, OptimizerKind};
pub use resume::recorded_steps;

use crate::learn::dataset::Dataset;
use crate::learn::device::Compute;
use crate::learn::model::{Gpt, GptConfig};
use crate::music::words::Vocab;
use anyhow::{bail, ensure, Context, Result};
use batches::{derive_seed, Stream, Windows};
use candle_core::{Device, Tensor};
use eval::EvalBatches;
use optim::gradients;
use rand::rngs::StdRng;
use rand::SeedableRng;
use record::Recorder;
use resume::RunState;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// What moves the blocks' matrices: AdamW, or Muon at `muon_lr`.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Muon's peak rate (the schedule scales it as it scales `lr`).
    #[serde(default = "default_muon_lr")]
    pub muon_lr: f64,
    /// Decay of the weights' moving average, evaluated and kept instead of the raw weights
    /// (0 = no average).
    #[serde(default)]
    pub ema: f64,
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
    /// After this step, evaluate, save the resume state and stop, as `time_limit` does: to
    /// compare runs at equal words, or stop short of `steps` without changing the schedule.
    #[serde(skip)]
    pub stop_at: Option<usize>,
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
            optimizer: OptimizerKind::Adamw,
            muon_lr: default_muon_lr(),
            ema: 0.0,
            seed: 1337,
            augment: Augment::default(),
            resume: false,
            init_from: None,
            progress: false,
            stop_before: None,
            time_limit: None,
            stop_at: None,
        })
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
        ensure!(self.muon_lr > 0.0, "--muon-lr must be positive");
        ensure!(
            (0.0..1.0).contains(&self.ema),
            "--ema must lie in [0, 1): the decay of the weights' average"
        );
        ensure!(
            !(self.resume && self.init_from.is_some()),
            "--resume and --init-from exclude each other"
        );
        let a = &self.augment;
        ensure!(
            [
                a.transpose_prob,
                a.stretch_prob,
                a.fill_share,
                a.opening_share
            ]
            .iter()
            .all(|p| (0.0..=1.0).contains(p)),
            "augmentation probabilities and shares must lie in [0, 1]"
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

/// Muon's usual peak rate (modded-nanoGPT's).
fn default_muon_lr() -> f64 {
    0.02
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

/// Trains as `opts` says on `compute`, writing the checkpoint folder `opts.out`.
pub fn train(opts: &TrainOptions, compute: &Compute) -> Result<TrainReport> {
    opts.validate()?;
    let device = &compute.device;
    if device.is_cpu() {
        crate::learn::fused::keep_freed_memory();
    }
    let data = Dataset::load(&opts.data)?;
    let mut run = RunState::start(opts, device)?;
    if opts.resume && run.step >= opts.steps {
        bail!(
            "{} is at step {} and --steps is {}: give a larger --steps to train on",
            opts.out.display(),
            run.step,
            opts.steps
        );
    }
    run.model.set_matmul_dtype(compute.matmul_dtype);
    run.summary.options = serde_json::to_value(opts)?;
    let cfg = run.model.config().clone();
    let ctx = cfg.context;

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
    let evals = EvalBatches::new(&train_windows, &val_windows, opts, device)?;

    let start_step = run.step;
    let tokens_per_step = (opts.batch * opts.accum * ctx) as u64;
    let mut record = Recorder::new(opts, start_step, tokens_per_step)?;
    record.say(format!(
        "training {} parameters ({} layers, {} heads, {} wide, context {ctx}) on {} training words, {} tokens/step",
        run.model.num_params(),
        cfg.layers,
        cfg.heads,
        cfg.width,
        data.train.tokens.len(),
        tokens_per_step
    ));

    let (mut last_train, mut last_val) = (f64::NAN, f64::NAN);
    loop {
        let step = run.step;
        // Evaluate (and save) at step 0, every eval_every steps and at the end, but not again
        // at the step a resumed run starts from: that one was saved before the stop.
        let out_of_time = step > start_step
            && (opts.time_limit.is_some_and(|t| record.elapsed() >= t)
                || opts.stop_at.is_some_and(|s| step >= s));
        let at_eval = step % opts.eval_every == 0 || step == opts.steps || out_of_time;
        if at_eval && !(opts.resume && step == start_step) {
            let averaged = match &run.average {
                Some(avg) => {
                    let mut m = avg.model(&cfg, run.model.params(), device)?;
                    m.set_matmul_dtype(compute.matmul_dtype);
                    Some(m)
                }
                None => None,
            };
            let losses = evals.losses(averaged.as_ref().unwrap_or(&run.model))?;
            (last_train, last_val) = (losses.train, losses.val);
            let best = run.evaluated(losses.train, losses.val, step as u64 * tokens_per_step);
            let kept = averaged.as_ref().unwrap_or(&run.model);
            record.evaluation(&run, kept, losses, best, opts.lr_at(step))?;
        }
        if step >= opts.steps || out_of_time || opts.stop_before == Some(step) {
            break;
        }
        let loss = train_step(&run.model, &mut run.opt, &train_windows, opts, step, device)?;
        if let Some(avg) = &mut run.average {
            avg.update(run.model.params())?;
        }
        run.step += 1;
        record.stepped(run.step, &loss)?;
    }
    record.finish();
    Ok(TrainReport {
        step: run.step,
        best_val_loss: run.best,
        last_train_loss: last_train,
        last_val_loss: last_val,
        tokens_per_s: record.tokens_per_s(run.step),
    })
}

/// One optimiser step: `accum` micro-batches forward and backward, clipped, AdamW (or Muon). Returns the
/// mean training loss of the step, still on the device (reading it is a sync).
fn train_step(
    model: &Gpt,
    opt: &mut Optimizer,
    windows: &Windows,
    opts: &TrainOptions,
    step: usize,
    device: &Device,
) -> Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(derive_seed(opts.seed, Stream::Batches, step as u64));
    if !device.is_cpu() && opts.model.dropout > 0.0 {
        // The GPU's dropout masks come from its own generator: seeded by step, so a resumed
        // run draws the same ones (the CPU's come from `rng`). Only with dropout: candle makes
        // a new generator for each seed, which costs a setup on the GPU.
        device.set_seed(derive_seed(opts.seed, Stream::GpuDropout, step as u64))?;
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
