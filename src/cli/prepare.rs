//! `nanotune prepare`: a corpus or a MIDI folder in, a prepared dataset out.

use crate::learn::corpus::{build_dataset, load};
use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

/// Prepare a dataset for training from words or MIDI files.
///
/// SOURCE is a folder (searched recursively for .txt word files and .mid/.midi files), the seed
/// corpus archive (.tar.xz, e.g. ../shared/corpus/adl-piano-words.tar.xz), or one file. Every
/// piece is made canonical and sent by its title to train (90%), val (5%) or test (5%). Bad files
/// are named and skipped. Writes train.bin, val.bin, test.bin (u16 token ids) and index.json.
/// With --openings N, only the first N words of each validation piece (the file shipped with a
/// model in checkpoints/NAME/openings).
#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// Corpus folder, .tar.xz archive, or MIDI folder.
    pub source: PathBuf,
    /// Folder to write the dataset into.
    #[arg(short, long, default_value = "data/prepared")]
    pub output: PathBuf,
    /// Write only the first N words of each validation piece (what ships beside a model as
    /// `openings/`, so "Continue song" works without the full dataset).
    #[arg(long, value_name = "N")]
    pub openings: Option<usize>,
    /// Print no progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: PrepareArgs) -> Result<()> {
    let started = Instant::now();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {bar:30} {pos}/{len} files {elapsed}")
            .expect("valid template"),
    );
    bar.set_prefix("reading");
    let (pieces, mut report) = load(&args.source, &|done, total| {
        if let Some(total) = total {
            bar.set_length(total as u64);
        }
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let dataset = build_dataset(&pieces, &mut report)?;
    if let Some(words) = args.openings {
        anyhow::ensure!(words > 0, "--openings takes a number of words above 0");
        let openings = dataset.openings(words);
        openings.save(&args.output)?;
        println!(
            "wrote the first {words} words of {} validation pieces ({} words) to {}",
            openings.val.pieces.len(),
            openings.val.tokens.len(),
            args.output.display()
        );
        return Ok(());
    }
    dataset.save(&args.output)?;

    for bad in &report.bad_files {
        eprintln!("skipped {bad}");
    }
    println!(
        "{} files: {} pieces, {} words, {} notes; {} empty pieces and {} bad files skipped",
        report.files,
        report.pieces,
        report.words,
        report.notes,
        report.empty_pieces.len(),
        report.bad_files.len()
    );
    println!(
        "skipped {} unknown and {} unpaired words; dropped {} drum notes and {} notes outside 21..108; \
         merged {} repeated notes; cut {} re-struck notes and {} notes over 128 steps",
        report.read.unknown_words,
        report.read.skipped_words,
        report.read.drum_notes,
        report.read.out_of_range_notes,
        report.read.duplicate_notes,
        report.read.notes_cut_by_restrike,
        report.read.notes_cut_to_128
    );
    let [train, val, test] = report.pieces_per_split;
    println!(
        "split: {train} train ({} words), {val} val ({} words), {test} test ({} words)",
        dataset.train.tokens.len(),
        dataset.val.tokens.len(),
        dataset.test.tokens.len()
    );
    println!(
        "wrote {} in {:.1} s",
        args.output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
