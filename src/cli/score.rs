//! `nanotune score`: the model's loss on a piece, bar by bar and in all, so a person sees which
//! bars the model finds surprising (and regenerating bars can rank its fills).

use crate::learn::checkpoint::{locate, Checkpoint};
use crate::learn::device::{Compute, DeviceChoice};
use crate::learn::train::piece_losses;
use crate::music::notes::word_bars;
use crate::music::read::read_file;
use crate::music::words::Vocab;
use anyhow::{ensure, Context, Result};
use clap::Args;
use std::path::PathBuf;

/// The model's loss on a piece, bar by bar and in all (nats per word).
///
/// Each word is predicted from the words before it, as many as the model's context holds (at
/// least half of it once the piece is longer). Bars are of 4/4 on the grid of sixteenths; a word
/// belongs to the bar in which it happens.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// The .mid/.midi file or word file to score.
    pub input: PathBuf,
    #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
    pub checkpoint: Option<PathBuf>,
    /// Where to compute: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let compute = Compute::select(args.device)?;
    let dir = locate(args.checkpoint.as_deref())?;
    let ckpt = Checkpoint::load_on(&dir, &compute)?;
    let words = read_file(&args.input)?;
    let ids = Vocab
        .encode(&words)
        .context("canonical words always encode")?;
    ensure!(
        ids.len() > 1,
        "{} holds no words to score",
        args.input.display()
    );
    let losses = piece_losses(&ckpt.model, &ids)?;
    // Word i + 1 is the one predicted by loss i.
    let bars = word_bars(&words);
    let mut per_bar: Vec<(f64, usize)> = vec![(0.0, 0); *bars.last().unwrap_or(&0) as usize + 1];
    for (loss, &bar) in losses.iter().zip(&bars[1..]) {
        let slot = &mut per_bar[bar as usize];
        slot.0 += *loss as f64;
        slot.1 += 1;
    }
    println!(
        "{} scored by {} (context {} words)",
        args.input.display(),
        dir.display(),
        ckpt.model.config().context
    );
    println!("bar   | words | nats/word");
    for (bar, (sum, n)) in per_bar.iter().enumerate().filter(|(_, (_, n))| *n > 0) {
        println!("{:<5} | {n:>5} | {:.3}", bar + 1, sum / *n as f64);
    }
    let total: f64 = losses.iter().map(|&l| l as f64).sum();
    println!(
        "all   | {:>5} | {:.4}",
        losses.len(),
        total / losses.len() as f64
    );
    Ok(())
}
