//! `nanotune eval`: the loss of a trained model on a split of a prepared dataset.

use crate::checkpoint::Checkpoint;
use crate::dataset::{Dataset, Split};
use crate::train::evaluate;
use anyhow::Result;
use candle_core::Device;
use clap::Args;
use std::path::PathBuf;

/// Mean loss (nats/word) and perplexity of a checkpoint over a split, deterministically: each
/// piece cut into non-overlapping windows of the model's context.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint folder (the --out of `nanotune train`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Prepared dataset folder.
    #[arg(long, default_value = "data/prepared")]
    pub data: PathBuf,
    /// Split to evaluate: val or test (or train).
    #[arg(long, default_value = "val")]
    pub split: Split,
    /// Evaluate only the first N predicted words.
    #[arg(long)]
    pub max_words: Option<usize>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let device = Device::Cpu;
    let ckpt = Checkpoint::load(&args.checkpoint, &device)?;
    let data = Dataset::load(&args.data)?;
    let (loss, words) = evaluate(&ckpt.model, data.split(args.split), args.max_words)?;
    println!(
        "{} on {} {}",
        args.checkpoint.display(),
        args.data.display(),
        args.split.name()
    );
    println!(
        "loss {loss:.4} nats/word, perplexity {:.2}, {words} words",
        loss.exp()
    );
    Ok(())
}
