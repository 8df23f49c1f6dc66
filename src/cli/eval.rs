//! `nanotune eval`: the loss of a trained model on a split of a prepared dataset.

use crate::learn::checkpoint::{locate, Checkpoint};
use crate::learn::dataset::{Dataset, Split};
use crate::learn::device::{Compute, DeviceChoice};
use crate::learn::train::evaluate;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Mean loss (nats/word) and perplexity of a checkpoint over a split, deterministically: each
/// piece cut into non-overlapping windows of the model's context.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
    pub checkpoint: Option<PathBuf>,
    /// Prepared dataset folder.
    #[arg(long, default_value = "data/prepared")]
    pub data: PathBuf,
    /// Split to evaluate: val or test (or train).
    #[arg(long, default_value = "val")]
    pub split: Split,
    /// Evaluate only the first N predicted words.
    #[arg(long)]
    pub max_words: Option<usize>,
    /// Where to compute: auto, cpu, cuda or cuda:N (auto = CUDA where this binary has it and a
    /// GPU answers).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let compute = Compute::select(args.device)?;
    eprintln!("{}", compute.describe());
    let dir = locate(args.checkpoint.as_deref())?;
    let ckpt = Checkpoint::load_on(&dir, &compute)?;
    let data = Dataset::load(&args.data)?;
    let result = evaluate(&ckpt.model, data.split(args.split), args.max_words)?;
    let (loss, words) = (result.loss, result.words);
    println!(
        "{} on {} {}",
        dir.display(),
        args.data.display(),
        args.split.name()
    );
    println!(
        "loss {loss:.4} nats/word, perplexity {:.2}, {words} words",
        loss.exp()
    );
    let [a, b, c, d] = result.by_quarter;
    println!(
        "by position in the window of {} words, in quarters: {a:.4} {b:.4} {c:.4} {d:.4} \
         (later positions see more before them)",
        ckpt.model.config().context
    );
    Ok(())
}
