//! `nanotune compare`: the music a model makes beside the corpus, in figures.

use super::SamplingArgs;
use crate::fsutil::write_atomic;
use crate::learn::checkpoint::locate;
use crate::learn::copies::{longest_shared_runs, Shared, LONGEST_FIGURE, SEED_WORDS};
use crate::learn::dataset::{Dataset, Split, SplitData};
use crate::learn::device::{Compute, DeviceChoice};
use crate::music::analysis::{compare, summarize};
use crate::music::midi::write_midi;
use crate::music::notes::{from_words, Note};
use crate::music::words::{Vocab, Word};
use crate::sample::backend::{load_for, Weights};
use crate::sample::{generate, prompt, Part, SampleOptions};
use anyhow::{ensure, Context, Result};
use clap::{Args, ValueEnum};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// Compare new pieces from a model with corpus pieces, in figures.
///
/// Notes per beat, pitch, duration, polyphony, chords, fit to a key and repeated patterns, side
/// by side, marking where they differ by half a corpus spread or more; then histograms of pitch,
/// duration and polyphony.
///
/// The new pieces start from START with the given settings (the screen's defaults unless
/// changed). Each corpus piece is cut to as many words as a new piece has, so length does not
/// bias the figures: its opening by default, since new pieces are openings too, or with
/// `--excerpt anywhere` a stretch from a random onset.
///
/// Last, the copy check: for each new piece the longest run of words it shares with the train
/// split, raw and with a looped figure counted once (a piece at 64 or more copies).
#[derive(Args, Debug)]
pub struct CompareArgs {
    #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
    pub checkpoint: Option<PathBuf>,
    /// Prepared dataset the corpus pieces come from.
    #[arg(long, default_value = "data/prepared")]
    pub data: PathBuf,
    /// Split of the dataset to draw corpus pieces from.
    #[arg(long, default_value = "train")]
    pub split: Split,
    /// New pieces to generate.
    #[arg(long, default_value_t = 20)]
    pub generated: usize,
    /// Corpus pieces to draw.
    #[arg(long, default_value_t = 300)]
    pub corpus: usize,
    /// Which part of each corpus piece to measure.
    #[arg(long, value_enum, default_value_t = Excerpt::Opening)]
    pub excerpt: Excerpt,
    /// Seed of the corpus draw; new piece k uses seed + k.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Where the model computes: auto, cpu, cuda or cuda:N (auto = the CPU decoder, which writes
    /// one word at a time faster than a GPU does; cuda for the GPU's batched takes).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Folder to write the new pieces into as MIDI (new-01.mid, ...), to listen to them.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Compare the MIDI files in this folder (e.g. another model's output) instead of
    /// generating; the excerpts then take their median length in words.
    #[arg(long, conflicts_with = "save")]
    pub midi: Option<PathBuf>,
}

/// Where in a corpus piece its excerpt begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Excerpt {
    /// From START, like a new piece.
    Opening,
    /// From a random onset.
    Anywhere,
}

pub fn run(args: CompareArgs) -> Result<()> {
    ensure!(
        args.generated > 0 && args.corpus > 0,
        "--generated and --corpus must be at least 1"
    );
    let opts = args.sampling.options(0, false)?;
    let data = Dataset::load(&args.data)?;
    let (source, generated, words, mut lengths) = match &args.midi {
        Some(dir) => midi_pieces(dir)?,
        None => generate_pieces(&args, &opts)?,
    };
    lengths.sort_unstable();
    let excerpt = lengths[lengths.len() / 2];

    let split = data.split(args.split);
    ensure!(
        !split.pieces.is_empty(),
        "the {} split of {} has no pieces",
        args.split.name(),
        args.data.display()
    );
    let mut rng = StdRng::seed_from_u64(args.seed);
    let n = args.corpus.min(split.pieces.len());
    let corpus: Vec<Vec<Note>> = sample(&mut rng, split.pieces.len(), n)
        .into_iter()
        .map(|i| excerpt_notes(split, i, excerpt, args.excerpt, &mut rng))
        .collect();

    println!(
        "{source}: {} pieces of {excerpt} words (median); {n} {} of {excerpt} words from the {} split of {}",
        generated.len(),
        match args.excerpt {
            Excerpt::Opening => "openings",
            Excerpt::Anywhere => "excerpts from a random onset",
        },
        args.split.name(),
        args.data.display()
    );
    let name = if args.midi.is_some() {
        "files"
    } else {
        "generated"
    };
    print!(
        "{}",
        compare(
            ("corpus", &summarize(&corpus)),
            (name, &summarize(&generated))
        )
    );
    print_copies(&words, &data)?;
    if let Some(save) = &args.save {
        println!("new pieces written to {}", save.display());
    }
    Ok(())
}

/// A line that says where the pieces came from, their notes, their token ids and their lengths
/// in words.
type Pieces = (String, Vec<Vec<Note>>, Vec<Vec<u16>>, Vec<usize>);

/// Copies have a line: a new piece that shares this many words in a row with the training split
/// (about two bars of the corpus's music), a looped figure counted once, repeats it rather than
/// composes.
const COPY_WORDS: usize = 64;

/// The copy check ([`longest_shared_runs`]): each new piece's longest run of words found in the
/// training split, in two lines.
fn print_copies(pieces: &[Vec<u16>], data: &Dataset) -> Result<()> {
    let runs = longest_shared_runs(pieces, &data.train.tokens)?;
    let median = |f: fn(&Shared) -> usize| {
        let mut v: Vec<usize> = runs.iter().map(f).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let longest = |f: fn(&Shared) -> usize| {
        runs.iter()
            .enumerate()
            .max_by_key(|&(_, r)| f(r))
            .map_or((0, 0), |(k, r)| (f(r), k + 1))
    };
    let ((words, at), (once, once_at)) = (longest(|r| r.words), longest(|r| r.figure_once));
    let copies = runs.iter().filter(|r| r.figure_once >= COPY_WORDS).count();
    println!(
        "copy check: longest run of words shared with the train split, per piece (runs under \
         {SEED_WORDS} not counted): median {}, longest {words} (piece {at})",
        median(|r| r.words)
    );
    println!(
        "  a looped figure of up to {LONGEST_FIGURE} words counted once: median {}, longest \
         {once} (piece {once_at}); {copies} of {} pieces at {COPY_WORDS} or more",
        median(|r| r.figure_once),
        runs.len()
    );
    Ok(())
}

/// The pieces of every MIDI file under `dir`, canonical as `prepare` makes them, with their
/// lengths in words, and a line that says where they came from.
fn midi_pieces(dir: &std::path::Path) -> Result<Pieces> {
    let files = crate::learn::corpus::midi_files(dir)
        .with_context(|| format!("reading {}", dir.display()))?;
    ensure!(
        !files.is_empty(),
        "no .mid or .midi files in {}",
        dir.display()
    );
    let mut pieces = Vec::new();
    let mut ids = Vec::new();
    let mut lengths = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let words = crate::music::read::piece_from_midi(&bytes, &mut Default::default())
            .with_context(|| format!("{} is not a MIDI file we can read", path.display()))?;
        lengths.push(words.len());
        pieces.push(from_words(&words).notes);
        ids.push(
            Vocab
                .encode(&words)
                .context("canonical words always encode")?,
        );
    }
    Ok((
        format!("{} MIDI files in {}", files.len(), dir.display()),
        pieces,
        ids,
        lengths,
    ))
}

/// `args.generated` new pieces from START, each with seed `args.seed + k`, saved as MIDI where
/// `--save` asks, with their lengths in words and a line that says what made them.
fn generate_pieces(args: &CompareArgs, opts: &SampleOptions) -> Result<Pieces> {
    let dir = locate(args.checkpoint.as_deref())?;
    let compute = Compute::for_generation(args.device)?;
    eprintln!("{}", compute.describe());
    let (mut model, label) = load_for(&dir, &compute, Weights::default())?;
    if let Some(save) = &args.save {
        std::fs::create_dir_all(save).with_context(|| format!("creating {}", save.display()))?;
    }
    let progress = std::io::stderr().is_terminal();
    let mut generated: Vec<Vec<Note>> = Vec::new();
    let mut ids = Vec::new();
    let mut lengths = Vec::new();
    for k in 0..args.generated {
        let seed = args.seed + k as u64;
        let o = SampleOptions {
            seed,
            ..opts.clone()
        };
        let stop = AtomicBool::new(false);
        let g = generate(&mut model, &prompt::new_piece(), &o, &stop, &mut |_| {})?;
        if progress {
            eprint!("\rgenerated {}/{}", k + 1, args.generated);
        }
        lengths.push(g.words.len());
        if let Some(save) = &args.save {
            let path = save.join(format!("new-{:02}.mid", k + 1));
            write_atomic(&path, &write_midi(&g.notes(Part::All), 120.0)?)?;
        }
        generated.push(g.notes(Part::All));
        ids.push(
            Vocab
                .encode(&g.words)
                .context("generated words always encode")?,
        );
    }
    if progress {
        eprintln!();
    }
    let source = format!(
        "{} ({label}), new pieces at temperature {}, top-k {}, top-p {}",
        dir.display(),
        opts.temperature,
        opts.top_k,
        opts.top_p
    );
    Ok((source, generated, ids, lengths))
}

/// The notes of `len` words of piece `i`, from its start or from a random onset (the whole
/// piece when it is shorter).
fn excerpt_notes(
    split: &SplitData,
    i: usize,
    len: usize,
    part: Excerpt,
    rng: &mut StdRng,
) -> Vec<Note> {
    let (words, _) = Vocab.decode(split.piece(i));
    if part == Excerpt::Opening {
        return from_words(&words[..len.min(words.len())]).notes;
    }
    let starts: Vec<usize> = (0..words.len().saturating_sub(len))
        .filter(|&j| words[j] == Word::Sep)
        .collect();
    let from = match starts.len() {
        0 => 0,
        k => starts[rng.random_range(0..k)] + 2,
    };
    from_words(&words[from..(from + len).min(words.len())]).notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::words::parse_words;

    /// One piece of twelve rising quarter notes, C4 up.
    fn scale_split() -> SplitData {
        let mut text = String::from("START");
        for k in 0..12 {
            if k > 0 {
                text.push_str(" sepxx d4");
            }
            text.push_str(&format!(" n{} d4", 60 + k));
        }
        text.push_str(" END");
        let (words, bad) = parse_words(&text);
        assert_eq!(bad, 0);
        let mut split = SplitData::default();
        split.push("scale", &Vocab.encode(&words).unwrap());
        split
    }

    #[test]
    fn openings_start_at_the_first_note_and_random_excerpts_at_a_later_onset() {
        let split = scale_split();
        let mut rng = StdRng::seed_from_u64(5);
        // START and three notes with two time moves between them: 1 + 3 * 2 + 2 * 2 words.
        let opening = excerpt_notes(&split, 0, 11, Excerpt::Opening, &mut rng);
        let pitches: Vec<u8> = opening.iter().map(|n| n.pitch).collect();
        assert_eq!(pitches, [60, 61, 62]);
        assert_eq!(opening[0].onset, 0);

        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let notes = excerpt_notes(&split, 0, 10, Excerpt::Anywhere, &mut rng);
            assert_eq!(notes[0].onset, 0, "an excerpt starts on its first onset");
            assert!(notes.len() >= 2, "{} notes", notes.len());
            let p: Vec<u8> = notes.iter().map(|n| n.pitch).collect();
            assert!(p.windows(2).all(|w| w[1] == w[0] + 1), "{p:?}");
            firsts.insert(p[0]);
        }
        assert!(firsts.len() > 3 && !firsts.contains(&60), "{firsts:?}");
    }
}
