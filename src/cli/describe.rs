//! `nanotune describe`: a piece in figures (per four bars: notes, key, range, longest note), and
//! optionally its piano roll as SVG and the levels of its rendered WAV.

use crate::fsutil::write_atomic;
use crate::music::analysis::{bars, pitch_name, scale_name, sections};
use crate::music::midi::read_midi;
use crate::music::notes::{from_words, Note};
use crate::music::read::{check_length, is_midi, words_of_midi, ReadReport};
use crate::music::words::parse_words;
use crate::plot::roll_svg;
use crate::sound::timed::{self, music_seconds};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Describe a piece: length, and per four bars the notes, the major scale (or its relative
/// minor) that holds most of them, the range and the longest note.
///
/// Reads a word file as `generate --words` writes it (in the order the model wrote it) or a MIDI
/// file. Bars are of 4/4 on the grid of sixteenths.
#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// The word file or .mid/.midi file.
    pub input: PathBuf,
    /// Words at the start that were the prompt (`generate` prints how many): their notes are
    /// counted, and drawn, apart from the model's.
    #[arg(long, default_value_t = 0)]
    pub prompt_words: usize,
    /// Bars per line of the table.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub bars: u64,
    /// Write the piano roll as an SVG file: blue the prompt, orange the model.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Also report a WAV file's length, peak level and silent spans (as `generate --wav` or
    /// `render` writes it).
    #[arg(long)]
    pub wav: Option<PathBuf>,
}

/// A piece's notes, in the order its words give them, and how long it lasts.
struct Described {
    words: usize,
    notes: Vec<Note>,
    prompt_notes: usize,
    /// "110.0 s at 120 bpm" or "47.2 s at the file's tempo".
    seconds: String,
}

fn load(path: &Path, prompt_words: usize) -> Result<Described> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (words, midi) = if is_midi(path, &bytes) {
        let piece = read_midi(&bytes).with_context(|| format!("reading {}", path.display()))?;
        let words = words_of_midi(&piece, &mut ReadReport::default())
            .with_context(|| format!("reading {}", path.display()))?;
        (words, Some(piece))
    } else {
        let (words, _unknown) = parse_words(&String::from_utf8_lossy(&bytes));
        (words, None)
    };
    let notes = from_words(&words).notes;
    check_length(&notes).with_context(|| format!("reading {}", path.display()))?;
    if notes.is_empty() {
        bail!("{} holds no notes", path.display());
    }
    let prompt_notes = from_words(&words[..prompt_words.min(words.len())])
        .notes
        .len();
    // The one timeline (render and play give the same seconds): the notes as they sound.
    let seconds = match midi {
        Some(piece) => format!(
            "{:.1} s at the file's tempo",
            music_seconds(&timed::from_midi(&piece, None))
        ),
        None => format!(
            "{:.1} s at 120 bpm",
            music_seconds(&timed::from_grid(&notes, 120.0))
        ),
    };
    Ok(Described {
        words: words.len(),
        notes,
        prompt_notes,
        seconds,
    })
}

pub fn run(args: DescribeArgs) -> Result<()> {
    let piece = load(&args.input, args.prompt_words)?;
    let total_bars = bars(&piece.notes);
    println!(
        "{}: {} words, {} notes ({} in the prompt), {total_bars} bars, {}",
        args.input.display(),
        piece.words,
        piece.notes.len(),
        piece.prompt_notes,
        piece.seconds
    );
    println!("bars    | notes | from   | best scale (share) | range     | longest note (steps)");
    for s in sections(&piece.notes, piece.prompt_notes, args.bars) {
        let label = match s.end_bar - s.first_bar {
            1 => format!("{}", s.end_bar),
            _ => format!("{}-{}", s.first_bar + 1, s.end_bar),
        };
        let Some((root, share)) = s.scale else {
            println!("{label:<7} | {:>5} |", 0);
            continue;
        };
        let from = match s.prompt_notes {
            0 => "model",
            p if p == s.notes => "prompt",
            _ => "both",
        };
        println!(
            "{label:<7} | {:>5} | {from:<6} | {:<11} {:>5.0}% | {:<9} | {}",
            s.notes,
            scale_name(root),
            100.0 * share,
            format!("{}-{}", pitch_name(s.lowest), pitch_name(s.highest)),
            s.longest
        );
    }
    if let Some(path) = &args.svg {
        let title = args
            .input
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        write_atomic(
            path,
            roll_svg(&piece.notes, piece.prompt_notes, &title)?.as_bytes(),
        )?;
        println!("wrote the piano roll to {}", path.display());
    }
    if let Some(path) = &args.wav {
        print!("{}", describe_wav(path)?);
    }
    Ok(())
}

/// Windows of this length are checked for silence.
const QUIET_WINDOW_S: f64 = 0.25;
/// A window whose peak stays below this level counts as silent.
const QUIET_DBFS: f64 = -50.0;

/// Length, peak level and silent spans of a WAV file.
fn describe_wav(path: &Path) -> Result<String> {
    let mut reader =
        hound::WavReader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let spec = reader.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let full = (1i64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 / full))
                .collect()
        }
    }
    .with_context(|| format!("reading the samples of {}", path.display()))?;
    let (rate, channels) = (spec.sample_rate.max(1), spec.channels.max(1) as usize);
    let dbfs = |level: f32| {
        if level > 0.0 {
            20.0 * (level as f64).log10()
        } else {
            -120.0
        }
    };
    let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    let seconds = |k: usize| (k / channels) as f64 / rate as f64;
    let mut out = format!(
        "{}: {:.1} s, peak {:.1} dBFS\n",
        path.display(),
        seconds(samples.len()),
        dbfs(peak)
    );
    let hop = ((QUIET_WINDOW_S * rate as f64) as usize).max(1) * channels;
    let mut quiet_from = None;
    for (i, window) in samples.chunks(hop).enumerate() {
        let level = dbfs(window.iter().fold(0f32, |m, s| m.max(s.abs())));
        let t = seconds(i * hop);
        match (level < QUIET_DBFS, quiet_from) {
            (true, None) => quiet_from = Some(t),
            (false, Some(from)) => {
                out += &format!("  silent (< {QUIET_DBFS:.0} dBFS): {from:.2}-{t:.2} s\n");
                quiet_from = None;
            }
            _ => {}
        }
    }
    if let Some(from) = quiet_from {
        out += &format!("  silent (< {QUIET_DBFS:.0} dBFS) from {from:.2} s to the end\n");
    }
    Ok(out)
}
