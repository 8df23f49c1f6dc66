//! `nanotune generate` and `nanotune bench generate`.

use super::SamplingArgs;
use crate::fsutil::write_atomic;
use crate::learn::checkpoint::locate;
use crate::learn::dataset::Dataset;
use crate::learn::device::{Compute, DeviceChoice};
use crate::learn::model::{Gpt, GptConfig};
use crate::music::midi::write_midi;
use crate::music::words::{words_to_string, Vocab, Word};
use crate::sample::backend::{kernels, load_for, AVec, CachedGpt, FastGpt, UncachedGpt, Weights};
use crate::sample::{
    duration_of, generate, prompt, random_seed, Generation, NextWordModel, Part, SampleOptions,
};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

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
    /// Prepared dataset whose validation split holds the pieces to continue.
    #[arg(long, default_value = "data/prepared")]
    pub data: PathBuf,
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
    /// Print the words to stdout as they are made.
    #[arg(long)]
    pub stream: bool,
    /// Keep the weights in f32 as trained (by default the one-word products read them rounded
    /// to f16: half the memory traffic, about twice the speed). CPU only.
    #[arg(long)]
    pub f32: bool,
    /// Where to compute: auto, cpu, cuda or cuda:N (auto = CUDA where this binary has it and a
    /// GPU answers).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let seed = args.seed.unwrap_or_else(random_seed);
    let opts = args.sampling.options(seed, args.stop_at_end)?;
    if !(args.bpm.is_finite() && args.bpm > 0.0) {
        bail!("--bpm must be above 0");
    }
    let dir = locate(args.checkpoint.as_deref())?;
    let weights = if args.f32 { Weights::F32 } else { Weights::F16 };
    let compute = Compute::select(args.device)?;
    eprintln!("{}", compute.describe());
    let (mut model, label) = load_for(&dir, &compute, weights)?;
    let prompt = match (&args.prompt, args.mode) {
        (Some(file), _) => prompt::continue_file(file, args.prompt_words)?,
        (None, Mode::New) => prompt::new_piece(),
        (None, Mode::Continue) => {
            let data = Dataset::load(&args.data)?;
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
    let g = generate(&mut model, &prompt, &opts, &stop, &mut |w: Word| {
        if stream {
            let _ = write!(out, "{w} ");
            let _ = out.flush();
        }
    })?;
    drop(out);
    if stream {
        println!();
    }
    report(&g, args.bpm);
    if let (Some(title), None) = (&g.title, &args.prompt) {
        println!("retry: --mode continue --piece \"{title}\" --seed <another>");
    }
    if let Some(path) = &args.words {
        let mut text = words_to_string(&g.words);
        text.push('\n');
        write_atomic(path, text.as_bytes())?;
        println!("wrote words to {}", path.display());
    }
    if let Some(path) = &args.output {
        write_atomic(path, &write_midi(&g.notes(Part::All), args.bpm)?)?;
        println!("wrote MIDI to {}", path.display());
    }
    if let Some(path) = &args.wav {
        let notes = crate::sound::synth::from_grid(&g.notes(Part::All), args.bpm);
        let (format, encoding) = (
            crate::sound::synth::Format::STEREO_44K,
            crate::sound::synth::WavEncoding::Pcm16,
        );
        crate::sound::synth::render_wav_file(path, &notes, format, encoding)?;
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

/// CPU time of this process so far (all its threads), from /proc; `None` where there is none.
/// On a shared machine it measures the work, where the wall clock also counts waiting for a core.
pub fn cpu_time() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

/// Wall and CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (c0, t) = (cpu_time(), Instant::now());
    let out = f();
    let wall = t.elapsed().as_secs_f64();
    let cpu = match (c0, cpu_time()) {
        (Some(a), Some(b)) => b - a,
        _ => wall,
    };
    (out, wall, cpu)
}

/// Wall-clock tokens/s of candle's forward on the GPU, cached (and uncached unless skipped),
/// after one warm-up run, with a JSON line in the fields of torch_reference.py. Every word is a
/// host round trip: the sampler and the grammar mask run on the CPU. "cached" is what
/// generation runs (weights in the products' type, see `load_for`); "cached f32" keeps f32
/// weights and products, for the record.
fn bench_gpu(
    preset: &str,
    config: &GptConfig,
    opts: &SampleOptions,
    skip_uncached: bool,
    compute: &Compute,
) -> Result<()> {
    let f32_gpt = Gpt::new(config, 0, &compute.device)?;
    let gpt = Arc::new(f32_gpt.to_dtype(compute.matmul_dtype)?);
    println!(
        "bench generate: {} parameters, context {}, {} new words after START, batch 1, {}",
        gpt.num_params(),
        config.context,
        opts.words,
        compute.describe()
    );
    let prompt = prompt::new_piece();
    let run = |name: &str, model: &mut dyn NextWordModel| -> Result<()> {
        let stop = AtomicBool::new(false);
        generate(model, &prompt, opts, &stop, &mut |_| {})?; // warm-up: kernels, allocations
        let (g, wall, _) = timed(|| generate(model, &prompt, opts, &stop, &mut |_| {}));
        let tps = g?.sampled as f64 / wall;
        println!("{name}: {tps:.1} tokens/s ({:.2} ms/word)", 1e3 / tps);
        let json = serde_json::json!({
            "what": "generate", "impl": format!("nanotune {name}"), "preset": preset,
            "device": compute.name(),
            "params": gpt.num_params(), "new_tokens": opts.words,
            "tokens_per_s": (tps * 10.0).round() / 10.0,
        });
        println!("{json}");
        Ok(())
    };
    run("cached", &mut CachedGpt::new(gpt.clone()))?;
    if gpt.dtype() != candle_core::DType::F32 {
        run("cached f32", &mut CachedGpt::new(Arc::new(f32_gpt)))?;
    }
    if !skip_uncached {
        run("uncached", &mut UncachedGpt::new(gpt.clone()))?;
    }
    Ok(())
}

/// Memory read bandwidth in bytes/s of CPU time (and of wall time): the best of a few sums over
/// a 1 GiB array.
pub fn bandwidth() -> (f64, f64) {
    let mut a = AVec::zeros(1 << 28);
    a.fill(1.0);
    let mut ones = AVec::zeros(1 << 12);
    ones.fill(1.0);
    let (mut best_cpu, mut best_wall) = (f64::MAX, f64::MAX);
    let mut total = 0.0;
    for _ in 0..4 {
        // A dot product with a small cached vector: reads `a` once.
        let (_, wall, cpu) = timed(|| {
            for chunk in a.chunks_exact(ones.len()) {
                total += kernels::dot(chunk, &ones);
            }
        });
        best_cpu = best_cpu.min(cpu);
        best_wall = best_wall.min(wall);
    }
    std::hint::black_box(total);
    let bytes = (a.len() * 4) as f64;
    (bytes / best_cpu, bytes / best_wall)
}

/// Tokens/s of `words` new words after START, batch 1, on a fresh model of `preset`. On the CPU
/// the figures are per second of CPU time (what the code costs on a free core) and of wall time;
/// on a GPU, see [`bench_gpu`].
pub fn bench(preset: &str, words: usize, skip_uncached: bool, compute: &Compute) -> Result<()> {
    let config = GptConfig::preset(preset, Vocab.len())?;
    let opts = SampleOptions {
        words,
        seed: 1,
        ..SampleOptions::default()
    };
    if compute.is_cuda() {
        return bench_gpu(preset, &config, &opts, skip_uncached, compute);
    }
    let gpt = Arc::new(Gpt::new(&config, 0, &compute.device)?);
    println!(
        "bench generate {preset}: {} parameters, context {}, {words} new words after START, batch 1, 1 thread (a prompt of many words goes through candle's matmul on all cores)",
        gpt.num_params(),
        config.context
    );
    let (bw, bw_wall) = bandwidth();
    println!(
        "memory bandwidth {:.1} GB/s per CPU second ({:.1} GB/s wall): 1 thread summing 1 GiB",
        bw / 1e9,
        bw_wall / 1e9
    );
    let prompt = prompt::new_piece();
    let run = |name: &str, model: &mut dyn NextWordModel, ceiling: f64| -> Result<()> {
        let (g, wall, cpu) =
            timed(|| generate(model, &prompt, &opts, &AtomicBool::new(false), &mut |_| {}));
        let g = g?;
        let tps = g.sampled as f64 / cpu;
        println!(
            "{name}: {tps:.0} tokens/s ({:.2} ms/word, {:.0}% of the ceiling; {:.0} tokens/s wall)",
            1e3 / tps,
            100.0 * tps / ceiling,
            g.sampled as f64 / wall
        );
        Ok(())
    };
    let mut ceiling32 = 0.0;
    for weights in [Weights::F32, Weights::F16] {
        let mut fast = FastGpt::from_gpt(&gpt, weights)?;
        let bytes = fast.weight_bytes();
        let ceiling = bw / bytes as f64;
        if weights == Weights::F32 {
            ceiling32 = ceiling;
        }
        println!(
            "{:?} weights ({:?} here): {:.1} MB read per word, ceiling weights/bandwidth = {ceiling:.0} tokens/s",
            weights,
            fast.weights(),
            bytes as f64 / 1e6
        );
        // Where the time goes: one word at a time into a filling cache, one window rebuild,
        // and the matrix-vector products alone.
        let mut logits = vec![0.0; Vocab.len()];
        let ids: Vec<u16> = (0..config.context as u16).map(|i| 3 + i % 200).collect();
        fast.reset();
        let (r, _, cpu) = timed(|| -> Result<()> {
            for &id in &ids {
                fast.feed(&[id], &mut logits)?;
            }
            Ok(())
        });
        r?;
        let per_word = cpu / ids.len() as f64;
        fast.reset();
        let keep = crate::sample::window_keep(config.context);
        let (r, rebuild_wall, rebuild) = timed(|| fast.feed(&ids[..keep], &mut logits));
        r?;
        let passes = 50;
        let (_, _, products) = timed(|| (0..passes).for_each(|_| fast.weights_pass()));
        let products = products / passes as f64;
        println!(
            "  one word into a cache of 0..{}: {:.2} ms ({:.0} tokens/s), of which matrix-vector products {:.2} ms ({:.1} GB/s, {:.0}% of the bandwidth); a prompt of {keep} words {:.1} ms CPU, {:.1} ms wall",
            config.context,
            per_word * 1e3,
            1.0 / per_word,
            products * 1e3,
            bytes as f64 / products / 1e9,
            100.0 * bytes as f64 / products / bw,
            rebuild * 1e3,
            rebuild_wall * 1e3
        );
        run(
            &format!("  with cache, {weights:?} (nanotune decoder)"),
            &mut fast,
            ceiling,
        )?;
    }
    let ceiling = ceiling32;
    run(
        "with cache, F32 (candle forward_cached)",
        &mut CachedGpt::new(gpt.clone()),
        ceiling,
    )?;
    if !skip_uncached {
        run(
            "without cache, F32 (candle forward over the whole window)",
            &mut UncachedGpt::new(gpt),
            ceiling,
        )?;
    }
    Ok(())
}
