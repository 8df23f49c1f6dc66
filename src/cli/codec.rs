//! `nanotune encode` and `nanotune decode`: MIDI <-> words from the shell.

use crate::fsutil::write_atomic;
use crate::music::midi::write_midi;
use crate::music::notes::{canonicalise, from_words};
use crate::music::read::{piece_from_midi, ReadReport};
use crate::music::words::{parse_words, words_to_string};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Encode a MIDI file as words (canonical form, see docs/encoding.md).
///
/// All tracks and channels are merged except drums (channel 10); notes are quantised to
/// sixteenths; pitches outside the piano (21..108) are dropped. A file with no notes gives
/// `START END`. What was dropped is reported on stderr.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// The Standard MIDI File to read (.mid / .midi).
    pub input: PathBuf,
    /// Write the words here instead of to stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Decode words into a Standard MIDI File (one piano track).
///
/// Reads whitespace-separated words (`START n60 d4 sepxx d4 ... END`). Words that fit no
/// note or shift are skipped and counted on stderr, never fatal.
#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// The word file to read ("-" for stdin).
    pub input: PathBuf,
    /// The MIDI file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Tempo written into the file, in quarter notes per minute.
    #[arg(long, default_value_t = 120.0)]
    pub bpm: f64,
}

pub fn encode(args: EncodeArgs) -> Result<()> {
    let bytes =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let mut report = ReadReport::default();
    let words = piece_from_midi(&bytes, &mut report)
        .with_context(|| format!("encoding {}", args.input.display()))?;
    let dropped = report.out_of_range_notes + report.drum_notes;
    if dropped > 0 {
        eprintln!(
            "{}: dropped {} drum notes and {} notes outside 21..108",
            args.input.display(),
            report.drum_notes,
            report.out_of_range_notes
        );
    }
    let mut text = words_to_string(&words);
    text.push('\n');
    match args.output {
        Some(path) => write_atomic(&path, text.as_bytes()),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

pub fn decode(args: DecodeArgs) -> Result<()> {
    let text = if args.input.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(&args.input)
            .with_context(|| format!("reading {}", args.input.display()))?
    };
    let (words, unknown) = parse_words(&text);
    let decoded = from_words(&words);
    let mut notes = decoded.notes;
    let canon = canonicalise(&mut notes);
    let bytes = write_midi(&notes, args.bpm)?;
    write_atomic(&args.output, &bytes)?;
    eprintln!(
        "wrote {} notes to {} ({} unknown and {} unpaired words skipped, {} notes outside 21..108 dropped)",
        notes.len(),
        args.output.display(),
        unknown,
        decoded.skipped,
        canon.out_of_range
    );
    Ok(())
}
