//! `nanotune bench ...`: benchmarks that print figures.

use crate::corpus::{build_dataset, load, piece_from_midi, LoadReport};
use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// MIDI files/s and words/s for encoding every .mid/.midi file under DIR (read into memory
    /// first, so the disk is not measured).
    Encode {
        dir: PathBuf,
        /// Passes over the folder (the figure is the total over all passes).
        #[arg(long, default_value_t = 20)]
        passes: usize,
    },
    /// Seconds for `prepare` of SOURCE (e.g. the seed corpus .tar.xz), written to a temporary folder.
    Prepare { source: PathBuf },
    /// Training tokens/s (forward, backward, AdamW) of a preset on random tokens, on the CPU.
    Train {
        /// small or base.
        #[arg(long, default_value = "small")]
        preset: String,
        #[arg(long, default_value_t = 16)]
        batch: usize,
        #[arg(long, default_value_t = 200)]
        context: usize,
        /// Timed steps (after one warm-up step).
        #[arg(long, default_value_t = 5)]
        steps: usize,
    },
    /// Generation tokens/s of a preset (random weights) for N new words, batch 1, with and
    /// without the key/value cache, and the memory-bandwidth ceiling (weight bytes / bandwidth).
    Generate {
        /// small or base.
        #[arg(long, default_value = "small")]
        preset: String,
        /// New words to generate.
        #[arg(long, default_value_t = 1000)]
        words: usize,
        /// Skip the (slow) run without the cache.
        #[arg(long)]
        no_uncached: bool,
    },
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Encode { dir, passes } => bench_encode(&dir, passes),
        BenchCommand::Prepare { source } => bench_prepare(&source),
        BenchCommand::Train {
            preset,
            batch,
            context,
            steps,
        } => bench_train(&preset, batch, context, steps),
        BenchCommand::Generate {
            preset,
            words,
            no_uncached,
        } => super::generate::bench(&preset, words, no_uncached),
    }
}

fn midi_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            midi_files(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"))
        {
            out.push(path);
        }
    }
    Ok(())
}

fn bench_encode(dir: &Path, passes: usize) -> Result<()> {
    let mut paths = Vec::new();
    midi_files(dir, &mut paths)?;
    if paths.is_empty() {
        bail!("no .mid or .midi files under {}", dir.display());
    }
    let files: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let bytes: usize = files.iter().map(Vec::len).sum();
    let (mut words, mut failed) = (0usize, 0usize);
    let started = Instant::now();
    for _ in 0..passes.max(1) {
        for file in &files {
            let mut report = LoadReport::default();
            match piece_from_midi(file, &mut report) {
                Ok(w) => words += w.len(),
                Err(_) => failed += 1,
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = files.len() * passes.max(1);
    println!(
        "encoded {} files ({:.1} MB, {} unreadable) x {} passes in {:.3} s",
        files.len(),
        bytes as f64 / 1e6,
        failed / passes.max(1),
        passes.max(1),
        secs
    );
    println!(
        "{:.0} files/s, {:.0} words/s (1 thread)",
        n as f64 / secs,
        words as f64 / secs
    );
    Ok(())
}

fn bench_prepare(source: &Path) -> Result<()> {
    let out = std::env::temp_dir().join(format!("nanotune-bench-prepare-{}", std::process::id()));
    let started = Instant::now();
    let (pieces, mut report) = load(source, &|_, _| {})?;
    let loaded = started.elapsed().as_secs_f64();
    let dataset = build_dataset(&pieces, &mut report)?;
    dataset.save(&out)?;
    let total = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    println!(
        "prepare {}: {} pieces, {} words in {:.2} s (read and canonicalise {:.2} s, {:.1} M words/s)",
        source.display(),
        report.pieces,
        report.words,
        total,
        loaded,
        report.words as f64 / loaded / 1e6
    );
    Ok(())
}

fn bench_train(preset: &str, batch: usize, context: usize, steps: usize) -> Result<()> {
    let mut config = crate::model::GptConfig::preset(preset, crate::words::Vocab.len())?;
    config.context = context;
    let device = candle_core::Device::Cpu;
    let params = crate::model::Gpt::new(&config, 0, &device)?.num_params();
    let tokens_per_s = crate::train::bench(&config, batch, steps, &device)?;
    println!(
        "train {preset} ({params} parameters), batch {batch} x context {context}, {steps} steps: {tokens_per_s:.0} tokens/s ({} threads)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
