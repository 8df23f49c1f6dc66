//! `nanotune train`: train a model on a prepared dataset, writing a checkpoint folder.

use crate::learn::checkpoint::CheckpointConfig;
use crate::learn::device::{Compute, DeviceChoice};
use crate::learn::model::{GptConfig, Positions};
use crate::learn::train::{recorded_steps, train, OptimizerKind, TrainOptions};
use anyhow::{ensure, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Train a model on a prepared dataset (see `nanotune prepare`).
///
/// The `--out` folder is the checkpoint: model.safetensors (best weights), config.json, the
/// resume state (optimizer.safetensors, train_state.json) and log.csv (every evaluation). Flags
/// after `--preset` override the preset. To continue a stopped run, give the same command again
/// with `--resume`: it goes on to the run's own --steps unless given others. A model read from a
/// checkpoint (--resume, --init-from) keeps its shape: --layers, --heads, --width and --context
/// may repeat it, not change it, except that --init-from with a longer --context grows the
/// position table (the learned positions repeated) to train on longer windows.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Prepared dataset folder.
    #[arg(long, default_value = "data/prepared")]
    pub data: PathBuf,
    /// Checkpoint folder to write.
    #[arg(long, default_value = "runs/small")]
    pub out: PathBuf,
    /// Model size: small (3 layers, 6 heads, 384 wide) or base (4 layers, 8 heads, 512 wide).
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Transformer blocks [default: the preset's].
    #[arg(long)]
    pub layers: Option<usize>,
    /// Attention heads [default: the preset's].
    #[arg(long)]
    pub heads: Option<usize>,
    /// Embedding width [default: the preset's].
    #[arg(long)]
    pub width: Option<usize>,
    /// Context in words [default: 200].
    #[arg(long)]
    pub context: Option<usize>,
    /// Positions: learned (absolute, GPT-2's) or rotary (relative) [default: learned]; with
    /// --init-from a learned model, rotary drops its position table.
    #[arg(long, value_enum)]
    pub positions: Option<Positions>,
    /// Dropout probability [default: 0].
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Windows per micro-batch [default: 16].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Micro-batches per step (gradient accumulation) [default: 1].
    #[arg(long)]
    pub accum: Option<usize>,
    /// Peak learning rate [default: 1e-3 small, 5e-4 base].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Final learning rate of the cosine decay [default: lr / 10].
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Warm-up steps [default: min(1000, steps / 10)].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Optimiser steps [default: 5000; with --resume, the run's own].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Evaluate and save every N steps [default: 250].
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Fixed batches per split in each evaluation [default: 8].
    #[arg(long)]
    pub eval_batches: Option<usize>,
    /// AdamW weight decay on matrices and embeddings [default: 0.1].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// What moves the blocks' weight matrices: adamw, or muon (orthogonalised momentum, the
    /// optimiser of the modded-nanoGPT records) at --muon-lr [default: adamw]. Embeddings,
    /// gains and biases always take AdamW at --lr.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Muon's peak rate, scaled by the schedule as --lr is [default: 0.02].
    #[arg(long)]
    pub muon_lr: Option<f64>,
    /// Keep a moving average of the weights with this decay per step (e.g. 0.99) and evaluate
    /// and save the average instead of the raw weights [default: 0, none].
    #[arg(long)]
    pub ema: Option<f64>,
    /// Seed of the initial weights, batches and dropout [default: 1337].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Probability of transposing a window [default: 0.5].
    #[arg(long)]
    pub transpose_prob: Option<f64>,
    /// Largest transposition in semitones, up or down [default: 5].
    #[arg(long)]
    pub transpose_range: Option<i32>,
    /// Probability of stretching a window in time [default: 0.5].
    #[arg(long)]
    pub stretch_prob: Option<f64>,
    /// Stretch factors, comma-separated [default: 0.5,0.75,1.5].
    #[arg(long, value_delimiter = ',')]
    pub stretches: Option<Vec<f64>>,
    /// Share of windows laid out to fill the middle (prefix, suffix, then 1 to 8 bars between
    /// them), so the model can regenerate bars with both sides in view [default: 0]. Above 0
    /// the model has three more outputs, the fill markers (grown on a model without them).
    #[arg(long)]
    pub fill_share: Option<f64>,
    /// Share of windows that start at the START of a piece drawn uniformly, running on into the
    /// next pieces where it is short [default: 0]: the openings a new piece is made of, which
    /// windows drawn uniformly over the words rarely start at (and never for short pieces).
    #[arg(long)]
    pub opening_share: Option<f64>,
    /// Continue the run in --out where it stopped, with its shape and --steps (give the other
    /// flags as before).
    #[arg(long, conflicts_with = "init_from")]
    pub resume: bool,
    /// Start from this checkpoint's weights (fine-tuning); its shape replaces the preset's.
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Where to train: auto, cpu, cuda or cuda:N (auto = CUDA where this binary has it and a GPU
    /// answers; on CUDA the matrix products run in bf16).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Stop after this many minutes, evaluating and saving first; the same command with
    /// --resume carries on (for time slots, e.g. 10-minute GPU calls).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Stop after this step, evaluating and saving first; the schedule stays that of --steps,
    /// and --resume carries on (to compare runs at equal words).
    #[arg(long)]
    pub stop_at: Option<usize>,
    /// Print no progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The options: the preset's defaults with every given flag on top.
    pub fn options(&self) -> Result<TrainOptions> {
        let mut o = TrainOptions::new(&self.preset, &self.data, &self.out)?;
        // A model read from a checkpoint brings its shape, and a resumed run its step count.
        let read_from = if self.resume {
            Some(&self.out)
        } else {
            self.init_from.as_ref()
        };
        if let Some(dir) = read_from {
            let config = CheckpointConfig::load(dir).with_context(|| match self.resume {
                true => "cannot resume".to_string(),
                false => format!("cannot start from {}", dir.display()),
            })?;
            self.check_shape(&config.model, dir)?;
            o.model = GptConfig {
                dropout: o.model.dropout,
                ..config.model.clone()
            };
            if self.resume && self.steps.is_none() {
                o.steps = recorded_steps(&config).with_context(|| {
                    format!(
                        "{} does not record its run's step count: give --steps",
                        dir.display()
                    )
                })?;
            }
        }
        macro_rules! set {
            ($($flag:ident => $field:expr),* $(,)?) => {
                $(if let Some(v) = self.$flag.clone() { $field = v; })*
            };
        }
        set!(layers => o.model.layers, heads => o.model.heads, width => o.model.width,
             context => o.model.context, positions => o.model.positions,
             dropout => o.model.dropout, batch => o.batch,
             accum => o.accum, steps => o.steps, eval_every => o.eval_every,
             eval_batches => o.eval_batches, weight_decay => o.weight_decay, seed => o.seed,
             optimizer => o.optimizer, muon_lr => o.muon_lr, ema => o.ema,
             transpose_prob => o.augment.transpose_prob,
             transpose_range => o.augment.transpose_range,
             stretch_prob => o.augment.stretch_prob, stretches => o.augment.stretches,
             fill_share => o.augment.fill_share,
             opening_share => o.augment.opening_share);
        if let Some(lr) = self.lr {
            o.lr = lr;
            o.min_lr = lr / 10.0;
        }
        if let Some(min_lr) = self.min_lr {
            o.min_lr = min_lr;
        }
        o.warmup = self.warmup;
        o.stop_at = self.stop_at;
        o.resume = self.resume;
        o.init_from = self.init_from.clone();
        o.progress = !self.quiet;
        if let Some(m) = self.minutes {
            ensure!(m.is_finite() && m >= 0.0, "--minutes must be 0 or more");
            o.time_limit = Some(std::time::Duration::from_secs_f64(m * 60.0));
        }
        Ok(o)
    }

    /// Refuses a shape flag that differs from the shape of the checkpoint in `dir`.
    fn check_shape(&self, shape: &GptConfig, dir: &Path) -> Result<()> {
        let flags = [
            ("--layers", self.layers, shape.layers),
            ("--heads", self.heads, shape.heads),
            ("--width", self.width, shape.width),
            ("--context", self.context, shape.context),
        ];
        if let Some(given) = self.positions.filter(|&p| p != shape.positions) {
            let learned_to_rotary = !self.resume && given == Positions::Rotary;
            ensure!(
                learned_to_rotary,
                "--positions {given:?} differs from the checkpoint's {:?} in {}: only a learned model may start a rotary one",
                shape.positions,
                dir.display()
            );
        }
        for (flag, given, own) in flags {
            let grows = flag == "--context" && !self.resume && given.is_some_and(|g| g > own);
            if let Some(given) = given.filter(|_| !grows) {
                ensure!(
                    given == own,
                    "{flag} {given} differs from the checkpoint's {own} in {}: a model read from a checkpoint keeps its shape",
                    dir.display()
                );
            }
        }
        Ok(())
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let opts = args.options()?;
    let compute = Compute::select(args.device)?;
    eprintln!("{}", compute.describe());
    let report = train(&opts, &compute)?;
    println!(
        "step {}: train loss {:.4}, val loss {:.4}, best val loss {:.4}, {:.0} tokens/s; checkpoint in {}",
        report.step,
        report.last_train_loss,
        report.last_val_loss,
        report.best_val_loss,
        report.tokens_per_s,
        opts.out.display()
    );
    if report.step < opts.steps {
        // A resumed run reads its weights from --out, so --init-from goes (clap refuses both).
        let without = match opts.init_from {
            Some(_) => " (without --init-from)",
            None => "",
        };
        println!(
            "stopped at step {} of {} (--minutes): give the same command with --resume{without} to go on",
            report.step, opts.steps
        );
    }
    Ok(())
}
