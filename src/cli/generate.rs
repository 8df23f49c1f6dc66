//! `nanotune generate` (its benchmark, `bench generate`, is in `bench/generate.rs`).

use super::SamplingArgs;
use crate::fsutil::write_atomic;
use crate::learn::checkpoint::{locate, Songs};
use crate::learn::dataset::Dataset;
use crate::learn::device::{Compute, DeviceChoice};
use crate::music::midi::write_midi;
use crate::music::notes::{canon, from_words};
use crate::music::read::read_file;
use crate::music::words::{words_to_string, Word};
use crate::sample::backend::{load_for, BoxedModel, Weights};
use crate::sample::infill;
use crate::sample::{
    duration_of, generate_takes, prompt, random_seed, Generation, Part, SampleOptions, MAX_TAKES,
};
use crate::sound::format::Format;
use crate::sound::voice::Voice;
use crate::sound::wav::WavEncoding;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A new piece from START.
    New,
    /// Continue a piece: of the dataset's validation split (--data, --piece), or a MIDI file
    /// (--prompt).
    Continue,
}

/// Generate music with a trained model and write it as MIDI and/or words.
///
/// Every word follows the grammar of the encoding, so the result always decodes whole. The same
/// checkpoint, settings and --seed give the same music; a retry of a continuation is the same
/// --piece with another --seed. Prints the seed, the title continued, the duration and the speed.
/// --takes N makes N versions at once (one batch: about the time of one), each with its own seed.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
    pub checkpoint: Option<PathBuf>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Seed of the sampler [default: a random one, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// new: a piece from scratch; continue: continue --piece of --data, or the file --prompt.
    #[arg(long, value_enum, default_value_t = Mode::New)]
    pub mode: Mode,
    /// Prepared dataset whose validation split holds the pieces to continue [default:
    /// data/prepared where it exists, else the openings shipped beside the model, in its
    /// `openings` folder].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Title of the validation piece to continue [default: a random one, chosen by the seed].
    #[arg(long)]
    pub piece: Option<String>,
    /// Continue this MIDI file instead of a dataset piece (implies --mode continue).
    #[arg(long)]
    pub prompt: Option<PathBuf>,
    /// Words of the piece to continue from, cut back to a whole note (0 = the whole piece).
    #[arg(long, default_value_t = prompt::DEFAULT_PROMPT_WORDS)]
    pub prompt_words: usize,
    /// Tempo of the MIDI file and of the printed duration, in quarter notes per minute.
    #[arg(long, default_value_t = 120.0)]
    pub bpm: f64,
    /// Takes to make at once, 1 to 8: each has its own seed (take 1's is --seed, printed for
    /// each), and with N above 1 the files are written as NAME-1.EXT ... NAME-N.EXT.
    #[arg(long, default_value_t = 1)]
    pub takes: usize,
    /// Regenerate --bars A-B of this MIDI or word file in place, keeping every note before
    /// and after them; with --takes N, N fills ranked by how well each leads into the bars
    /// after it (the model's loss on them, printed), best first. Method: a model trained to fill
    /// the middle reads the bars on both sides first ("fill in the middle, ranked"); any other
    /// continues the bars before, held inside the span ("left to right, ranked"). The first line
    /// printed says which the model gets.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["prompt", "piece", "stop_at_end"])]
    pub infill: Option<PathBuf>,
    /// Let the model end the piece before --tokens words.
    #[arg(long)]
    pub stop_at_end: bool,
    /// MIDI file to write (prompt and continuation).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Word file to write (prompt and continuation).
    #[arg(long)]
    pub words: Option<PathBuf>,
    /// WAV file to write (prompt and continuation, rendered by the piano synth at --bpm; 16-bit,
    /// 44.1 kHz stereo).
    #[arg(long)]
    pub wav: Option<PathBuf>,
    /// Print the words to stdout as they are made (of take 1).
    #[arg(long)]
    pub stream: bool,
    /// Keep the weights in f32 as trained (by default the one-word products read them rounded
    /// to f16: half the memory traffic, about twice the speed). CPU only.
    #[arg(long)]
    pub f32: bool,
    /// Where the model computes: auto, cpu, cuda or cuda:N (auto = the CPU decoder, which writes
    /// one word at a time faster than a GPU does; cuda for the GPU's batched takes).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let seed = args.seed.unwrap_or_else(random_seed);
    let opts = match args.infill {
        None => args.sampling.options(seed, args.stop_at_end)?,
        Some(_) => args.sampling.options_with(seed, false, None)?,
    };
    if !(args.bpm.is_finite() && args.bpm > 0.0) {
        bail!("--bpm must be above 0");
    }
    if !(1..=MAX_TAKES).contains(&args.takes) {
        bail!("--takes must be 1 to {MAX_TAKES}, not {}", args.takes);
    }
    let dir = locate(args.checkpoint.as_deref())?;
    let weights = if args.f32 { Weights::F32 } else { Weights::F16 };
    let compute = Compute::for_generation(args.device)?;
    eprintln!("{}", compute.describe());
    let (mut model, label) = load_for(&dir, &compute, weights)?;
    if let Some(file) = &args.infill {
        println!("checkpoint {} ({label})", dir.display());
        return regenerate_bars(&mut model, file, &opts, &args);
    }
    let prompt = match (&args.prompt, args.mode) {
        (Some(file), _) => prompt::continue_file(file, args.prompt_words)?,
        (None, Mode::New) => prompt::new_piece(),
        (None, Mode::Continue) => {
            let songs = Songs::find(args.data.as_deref(), &dir);
            let data = Dataset::load(songs.dir())?;
            if let Songs::Openings(d) = &songs {
                eprintln!("continuing a piece of the openings in {}", d.display());
            }
            let mut rng = StdRng::seed_from_u64(seed);
            prompt::continue_song(
                &data.val,
                args.piece.as_deref(),
                args.prompt_words,
                &mut rng,
            )?
        }
    };
    println!("checkpoint {} ({label})", dir.display());
    println!("seed {seed}");
    if let Some(title) = &prompt.title {
        println!(
            "continuing \"{title}\" from its first {} words",
            prompt.words.len()
        );
    }
    let stop = AtomicBool::new(false);
    let stream = args.stream;
    let mut out = std::io::stdout().lock();
    let takes = generate_takes(
        &mut model,
        &prompt,
        &opts,
        args.takes,
        &stop,
        &mut |k, w: Word| {
            if stream && k == 0 {
                let _ = write!(out, "{w} ");
                let _ = out.flush();
            }
        },
    )?;
    drop(out);
    if stream {
        println!();
    }
    for (k, g) in takes.iter().enumerate() {
        if args.takes > 1 {
            println!("take {} (seed {}):", k + 1, g.options.seed);
        }
        report(g, args.bpm);
    }
    if args.takes > 1 {
        let words: usize = takes.iter().map(|g| g.sampled).sum();
        let secs = takes.iter().map(|g| g.elapsed).max().unwrap_or_default();
        println!(
            "{} takes: {:.0} tokens/s in all ({words} words in {:.2} s)",
            args.takes,
            words as f64 / secs.as_secs_f64().max(1e-9),
            secs.as_secs_f64()
        );
    }
    if let (Some(title), None) = (&takes[0].title, &args.prompt) {
        println!("retry: --mode continue --piece \"{title}\" --seed <another>");
    }
    for (k, g) in takes.iter().enumerate() {
        write_outputs(&g.words, &args, |path| take_path(path, k, args.takes))?;
    }
    Ok(())
}

/// `--infill FILE --bars A-B`: the fills of the span, best first, each written as a take.
fn regenerate_bars(
    model: &mut BoxedModel,
    file: &Path,
    opts: &SampleOptions,
    args: &GenerateArgs,
) -> Result<()> {
    let Some(bars) = args.sampling.bars else {
        bail!("--infill needs --bars A-B: the bars to regenerate");
    };
    let piece = read_file(file)?;
    // Refused before anything is printed (regenerate checks again before its work).
    infill::check(&piece, bars)?;
    println!("seed {}", opts.seed);
    println!(
        "regenerating {bars} of {} ({}: the takes are ranked by the model's loss on the bars after)",
        file.display(),
        infill::method(model.vocab())
    );
    let started = std::time::Instant::now();
    let fills = infill::regenerate(
        model,
        &piece,
        bars,
        opts,
        args.takes,
        &AtomicBool::new(false),
    )?;
    for (k, fill) in fills.iter().enumerate() {
        let loss = fill
            .following_loss
            .map_or("nothing follows the span".to_string(), |l| {
                format!("{l:.4} nats/word on the bars after")
            });
        println!("take {} (seed {}): {loss}", k + 1, fill.seed);
    }
    println!(
        "{} fills in {:.2} s",
        fills.len(),
        started.elapsed().as_secs_f64()
    );
    for (k, fill) in fills.iter().enumerate() {
        write_outputs(&fill.words, args, |path| take_path(path, k, args.takes))?;
    }
    Ok(())
}

/// Where take `k` (0-based) of `takes` goes: `path` itself for one take, else `NAME-<k+1>.EXT`.
pub fn take_path(path: &Path, k: usize, takes: usize) -> PathBuf {
    if takes == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{}.{}", k + 1, ext.to_string_lossy()),
        None => format!("{stem}-{}", k + 1),
    };
    path.with_file_name(name)
}

/// Writes the words (a whole piece), MIDI and WAV files asked for, each at `place(path)`.
fn write_outputs(
    words: &[Word],
    args: &GenerateArgs,
    place: impl Fn(&Path) -> PathBuf,
) -> Result<()> {
    let notes = from_words(&canon(words)).notes;
    if let Some(path) = args.words.as_deref().map(&place) {
        let mut text = words_to_string(words);
        text.push('\n');
        write_atomic(&path, text.as_bytes())?;
        println!("wrote words to {}", path.display());
    }
    if let Some(path) = args.output.as_deref().map(&place) {
        write_atomic(&path, &write_midi(&notes, args.bpm)?)?;
        println!("wrote MIDI to {}", path.display());
    }
    if let Some(path) = args.wav.as_deref().map(&place) {
        let notes = crate::sound::timed::from_grid(&notes, args.bpm);
        Voice::Builtin.render_wav_file(&path, &notes, Format::STEREO_44K, WavEncoding::Pcm16)?;
        println!("wrote WAV to {}", path.display());
    }
    Ok(())
}

fn report(g: &Generation, bpm: f64) {
    let new = g.new_words().iter().filter(|w| **w != Word::End).count();
    let (secs, bars) = duration_of(g.steps(Part::All), bpm);
    let (new_secs, new_bars) = duration_of(g.steps(Part::New), bpm);
    println!(
        "{} prompt words + {new} new words ({:?}), {} notes",
        g.prompt_len,
        g.ended,
        g.notes(Part::All).len()
    );
    println!(
        "duration {secs:.1} s, {bars:.1} bars at {bpm} bpm (new part {new_secs:.1} s, {new_bars:.1} bars)"
    );
    println!(
        "{:.0} tokens/s ({} words in {:.2} s)",
        g.tokens_per_s(),
        g.sampled,
        g.elapsed.as_secs_f64()
    );
}
