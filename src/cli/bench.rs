//! `nanotune bench ...`: benchmarks that print figures (generation's in `bench/generate.rs`).

mod answer;
mod generate;
mod infill;
mod mutate;

use crate::learn::corpus::{build_dataset, load};
use crate::learn::device::{Compute, DeviceChoice};
use crate::learn::train::OptimizerKind;
use crate::music::read::{piece_from_midi, ReadReport};
use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod train;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Milliseconds to draw one frame of the terminal screen (200x60 by default) with a full piano
    /// roll: a dense random piece, drawn into ratatui's TestBackend.
    Tui {
        #[arg(long, default_value_t = 200)]
        width: u16,
        #[arg(long, default_value_t = 60)]
        height: u16,
        /// Words in the piece on screen.
        #[arg(long, default_value_t = 4000)]
        words: usize,
        #[arg(long, default_value_t = 300)]
        frames: usize,
    },
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
    /// Seconds of audio rendered per second (one thread) for PIECE: a MIDI file, or a word file
    /// decoded at --bpm (e.g. the corpus's "Brahms Horn Trio.txt").
    Render {
        piece: PathBuf,
        /// Tempo (a word file's, or overriding a MIDI file's tempo map).
        #[arg(long, default_value_t = 120.0)]
        bpm: f64,
        /// Passes over the piece (the figure is over all passes).
        #[arg(long, default_value_t = 1)]
        passes: usize,
        /// Time a SoundFont too, beside the built-in voice (without a file: found as `render
        /// --soundfont` finds one).
        #[arg(long, value_name = "FILE.sf2", num_args = 0..=1)]
        soundfont: Option<Option<PathBuf>>,
    },
    /// Every reader of MIDI files on FILES mutated copies (byte flips, cuts, inserts, huge
    /// deltas, extreme tempos, notes never let go, huge chords...) of the .mid files under DIR:
    /// `render`, `describe` and `play` to a listener, each a child process under a time limit,
    /// so aborts and hangs are counted. Prints the outcomes and the slowest renders.
    Mutate {
        dir: PathBuf,
        #[arg(long, default_value_t = 2000)]
        files: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds a command may run before it is killed and counted as a time-out.
        #[arg(long, default_value_t = 60)]
        limit: u64,
        /// Keep the files that made a command fail here.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Training tokens/s (forward, backward, clipping, AdamW) of a preset on random tokens. For a
    /// side-by-side figure with ../shared/bench/torch_reference.py on a GPU: `--device cuda
    /// --batch 64 --steps 50` (it prints the same JSON fields).
    Train {
        /// small or base.
        #[arg(long, default_value = "small")]
        preset: String,
        #[arg(long, default_value_t = 16)]
        batch: usize,
        #[arg(long, default_value_t = 200)]
        context: usize,
        /// Timed steps (after two warm-up steps).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
        /// Where the time goes (CPU): each phase with the fused kernels and the plain ops, and
        /// each operation alone on its shapes, forward and backward.
        #[arg(long)]
        profile: bool,
        /// adamw, or muon for the blocks' matrices (as `train --optimizer`).
        #[arg(long, value_enum, default_value = "adamw")]
        optimizer: OptimizerKind,
    },
    /// Milliseconds from space on the server to the listener having the piece: a dense random
    /// piece of WORDS words turned into notes, sent over a Unix socket to a listener (one in
    /// this process, which only keeps time, unless --listener names one) and confirmed, REPS
    /// times; prints the median and the 95th percentile.
    Listen {
        #[arg(long, default_value_t = 4000)]
        words: usize,
        #[arg(long, default_value_t = 300)]
        reps: usize,
        /// A running listener to time instead (a socket path or HOST:PORT, e.g. through ssh -R).
        #[arg(long)]
        listener: Option<String>,
        /// Have the in-process listener also save every piece here (the time then includes it).
        #[arg(long)]
        save_dir: Option<PathBuf>,
    },
    /// Milliseconds from the end of a phrase played on the laptop to its answer there: the
    /// screen's answer loop on the checkpoint, a listener in this process playing two-bar
    /// phrases of --file as its keyboard (or --listener, started with --midi-in-file); the
    /// listener times each answer on its own clock. Prints each and the median and p95.
    Answer {
        #[arg(long, default_value_t = 6)]
        phrases: usize,
        /// Words of each answer.
        #[arg(long, default_value_t = 64)]
        words: usize,
        #[arg(long, default_value_t = 120.0)]
        bpm: f64,
        #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
        checkpoint: Option<PathBuf>,
        /// A running listener to answer instead (a socket path or HOST:PORT).
        #[arg(long)]
        listener: Option<String>,
        /// The real MIDI file whose bars the in-process listener plays.
        #[arg(long, default_value = "docs/examples/continuation.mid")]
        file: PathBuf,
        /// Send each answer once it is whole, as before pieces played while they were made
        /// (the screen's `a`), to compare.
        #[arg(long)]
        once_whole: bool,
    },
    /// Regenerating bars 5-8 of 12-bar excerpts of PIECES validation pieces: the loss of bars
    /// 9-12 after the best fill, after the original bars and after a plain continuation of bars
    /// 1-4, and the seconds a fill of --takes takes.
    Infill {
        /// Prepared dataset whose validation split gives the pieces.
        #[arg(long, default_value = "data/prepared")]
        data: PathBuf,
        #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
        checkpoint: Option<PathBuf>,
        #[arg(long, default_value_t = 100)]
        pieces: usize,
        #[arg(long, default_value_t = 4)]
        takes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Generation tokens/s of a preset (random weights) for N new words, batch 1, with and
    /// without the key/value cache, and the memory-bandwidth ceiling (weight bytes / bandwidth);
    /// then takes (1, 2, 4, 8 by default) on the checkpoint, per take and in all.
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
        /// Numbers of takes to time on the checkpoint (each decoded as one batch), comma
        /// separated; an empty list skips them.
        #[arg(long, default_value = "1,2,4,8", value_parser = parse_counts)]
        takes: Counts,
        #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
        checkpoint: Option<PathBuf>,
        /// Time the takes on the preset's random weights (f32 and f16) instead of the checkpoint.
        #[arg(long)]
        takes_on_preset: bool,
        /// auto, cpu, cuda or cuda:N. On a GPU it times candle's cached forward there by the wall
        /// clock (the CPU decoders are timed per CPU second).
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
}

/// A comma-separated list of counts; empty is an empty list (clap's own lists refuse it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts(pub Vec<usize>);

fn parse_counts(text: &str) -> Result<Counts, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| format!("{s:?} is not a whole number"))
        })
        .collect::<Result<_, _>>()
        .map(Counts)
}

/// The `q` quantile of sorted figures (0.5 the median), the nearest one.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Tui {
            width,
            height,
            words,
            frames,
        } => bench_tui(width, height, words, frames),
        BenchCommand::Encode { dir, passes } => bench_encode(&dir, passes),
        BenchCommand::Infill {
            data,
            checkpoint,
            pieces,
            takes,
            seed,
        } => infill::bench_infill(&data, checkpoint.as_deref(), pieces, takes, seed),
        BenchCommand::Answer {
            phrases,
            words,
            bpm,
            checkpoint,
            listener,
            file,
            once_whole,
        } => answer::bench_answer(&answer::AnswerBench {
            once_whole,
            phrases,
            words,
            bpm,
            checkpoint: checkpoint.as_deref(),
            listener: listener.as_deref(),
            file: &file,
        }),
        BenchCommand::Prepare { source } => bench_prepare(&source),
        BenchCommand::Mutate {
            dir,
            files,
            seed,
            limit,
            keep,
        } => mutate::bench_mutate(&dir, files, seed, limit, keep.as_deref()),
        BenchCommand::Render {
            piece,
            bpm,
            passes,
            soundfont,
        } => bench_render(&piece, bpm, passes, soundfont),
        BenchCommand::Train {
            preset,
            batch,
            context,
            steps,
            device,
            profile,
            optimizer,
        } => {
            let bench = train::TrainBench {
                optimizer,
                preset: &preset,
                batch,
                context,
                steps,
                profile,
            };
            train::run(&bench, &Compute::select(device)?)
        }
        BenchCommand::Generate {
            preset,
            words,
            no_uncached,
            takes,
            checkpoint,
            takes_on_preset,
            device,
        } => {
            let compute = Compute::select(device)?;
            generate::bench(&preset, words, no_uncached, &compute)?;
            let Counts(takes) = takes;
            if takes.is_empty() {
                return Ok(());
            }
            let dir = match takes_on_preset {
                true => None,
                false => Some(crate::learn::checkpoint::locate(checkpoint.as_deref())?),
            };
            generate::bench_takes(dir.as_deref(), &preset, words, &takes, &compute)
        }
        BenchCommand::Listen {
            words,
            reps,
            listener,
            save_dir,
        } => super::listen::bench(words, reps, listener.as_deref(), save_dir),
    }
}

fn bench_encode(dir: &Path, passes: usize) -> Result<()> {
    let paths = crate::learn::corpus::midi_files(dir)?;
    if paths.is_empty() {
        bail!("no .mid or .midi files under {}", dir.display());
    }
    let files: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let bytes: usize = files.iter().map(Vec::len).sum();
    let passes = passes.max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "encoding {} files ({:.1} MB) x {passes} passes",
        files.len(),
        bytes as f64 / 1e6
    );
    for threads in [1, threads] {
        let started = Instant::now();
        // Each thread encodes every file, `passes / threads` times (at least once).
        let per_thread = passes.div_ceil(threads);
        let (words, failed) = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| encode_all(&files, per_thread)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("encoder thread"))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        let secs = started.elapsed().as_secs_f64();
        let n = files.len() * per_thread * threads;
        println!(
            "{threads} thread(s): {:.0} files/s, {:.0} words/s ({} unreadable files)",
            n as f64 / secs,
            words as f64 / secs,
            failed / (per_thread * threads)
        );
    }
    Ok(())
}

/// Encodes every file `passes` times; returns (words, failures).
fn encode_all(files: &[Vec<u8>], passes: usize) -> (usize, usize) {
    let (mut words, mut failed) = (0, 0);
    for _ in 0..passes {
        for file in files {
            let mut report = ReadReport::default();
            match piece_from_midi(file, &mut report) {
                Ok(w) => words += w.len(),
                Err(_) => failed += 1,
            }
        }
    }
    (words, failed)
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

fn bench_render(
    piece: &Path,
    bpm: f64,
    passes: usize,
    soundfont: Option<Option<PathBuf>>,
) -> Result<()> {
    use crate::sound::format::Format;
    use crate::sound::voice::Voice;
    let notes = super::render::load_notes(piece, Some(bpm))?;
    let format = Format::STEREO_44K;
    let mut voices = vec![Voice::Builtin];
    if soundfont.is_some() {
        voices.push(super::render::choose_voice(
            soundfont.as_ref().map(|f| f.as_deref()),
        )?);
    }
    println!(
        "render {}: {} notes at {bpm} bpm, x {} passes, 44.1 kHz stereo, 1 thread",
        piece.display(),
        notes.len(),
        passes.max(1)
    );
    let mut buf = vec![0.0f32; 4096 * format.channels as usize];
    for voice in &voices {
        let (mut frames, mut most_voices) = (0u64, 0usize);
        let started = Instant::now();
        let cpu_started = thread_cpu_seconds();
        for _ in 0..passes.max(1) {
            let mut renderer = voice.renderer(&notes, format)?;
            loop {
                let n = renderer.fill(&mut buf);
                if n == 0 {
                    break;
                }
                frames += n as u64;
            }
            most_voices = renderer.most_voices();
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = thread_cpu_seconds() - cpu_started;
        let audio = frames as f64 / format.sample_rate as f64;
        println!(
            "{:>12}: {:.1} s of audio, up to {most_voices} notes at once; {:.2} s to render, \
             {:.0}x real time; {:.2} s of CPU time, {:.0}x real time per CPU second",
            voice.name(),
            audio / passes.max(1) as f64,
            secs,
            audio / secs,
            cpu,
            audio / cpu
        );
    }
    Ok(())
}

/// CPU time of this thread in seconds (so a busy machine does not hide the figure for one
/// core); 0 where it cannot be read.
fn thread_cpu_seconds() -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: std::os::raw::c_long,
            nsec: std::os::raw::c_long,
        }
        extern "C" {
            fn clock_gettime(clock: std::os::raw::c_int, ts: *mut Timespec) -> std::os::raw::c_int;
        }
        const CLOCK_THREAD_CPUTIME_ID: std::os::raw::c_int = 3;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: clock_gettime writes one timespec into the struct we own.
        if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.sec as f64 + ts.nsec as f64 * 1e-9;
        }
    }
    0.0
}

/// A dense random piece of about `words` words, without `END`: chords of 1-4 notes every 1-2
/// steps, across four octaves (the same for every run, seed 1).
pub(super) fn dense_piece(words: usize) -> Vec<crate::music::words::Word> {
    use crate::music::words::Word;
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut piece = vec![Word::Start];
    while piece.len() < words {
        let top = rng.random_range(60u8..=96);
        for k in 0..rng.random_range(1u8..=4) {
            piece.extend([Word::Note(top - 7 * k), Word::Dur(rng.random_range(1..=16))]);
        }
        piece.extend([Word::Sep, Word::Dur(rng.random_range(1..=2))]);
    }
    piece
}

fn bench_tui(width: u16, height: u16, words: usize, frames: usize) -> Result<()> {
    use crate::tui::app::{update, App, Environment, Message};
    let mut app = App::new(
        Environment {
            device: "cpu".into(),
            ..Environment::default()
        },
        1,
    );
    let piece = dense_piece(words);
    let prompt = crate::music::words::Titled {
        words: piece[..words / 4].to_vec(),
        title: Some("bench".into()),
    };
    update(&mut app, Message::Started(prompt));
    for &w in &piece[words / 4..] {
        update(&mut app, Message::Word { take: 0, word: w });
    }
    app.playing = Some(3.0);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))?;
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames.max(1) {
        let started = Instant::now();
        terminal.draw(|f| crate::tui::view::view(&app, f))?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "tui frame {width}x{height}, {} words on screen: mean {mean:.2} ms, median {:.2} ms, max {:.2} ms over {} frames",
        app.piece().words.len(),
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_a_comma_list_and_may_be_empty() {
        assert_eq!(parse_counts("1,2, 4"), Ok(Counts(vec![1, 2, 4])));
        assert_eq!(parse_counts(""), Ok(Counts(vec![])));
        assert!(parse_counts("1,x").is_err());
    }
}
