//! `nanotune bench generate`: generation tokens/s of a preset with random weights, on the CPU
//! per CPU second against the memory-bandwidth ceiling, on a GPU by the wall clock.

use crate::learn::device::Compute;
use crate::learn::model::{Gpt, GptConfig};
use crate::music::words::Vocab;
use crate::sample::backend::kernels::{self, AVec};
use crate::sample::backend::{load_for, CachedTakes, FastGpt, FastTakes, UncachedGpt, Weights};
use crate::sample::{check_takes, generate, generate_takes, prompt, NextWordModel, SampleOptions};
use anyhow::Result;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// CPU time of this process so far (all its threads), from /proc; `None` where there is none.
/// On a shared machine it measures the work, where the wall clock also counts waiting for a core.
fn cpu_time() -> Option<f64> {
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
    run("cached", &mut CachedTakes::new(gpt.clone()))?;
    if gpt.dtype() != candle_core::DType::F32 {
        run("cached f32", &mut CachedTakes::new(Arc::new(f32_gpt)))?;
    }
    if !skip_uncached {
        run("uncached", &mut UncachedGpt::new(gpt.clone()))?;
    }
    Ok(())
}

/// Memory read bandwidth in bytes/s of CPU time (and of wall time): the best of a few sums over
/// a 1 GiB array.
fn bandwidth() -> (f64, f64) {
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
pub(super) fn bench(
    preset: &str,
    words: usize,
    skip_uncached: bool,
    compute: &Compute,
) -> Result<()> {
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
        let mut fast = FastGpt::from_tensors(&config, &gpt.tensors(), weights)?;
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
                fast.feed(&[&[id]], &mut logits)?;
            }
            Ok(())
        });
        r?;
        let per_word = cpu / ids.len() as f64;
        fast.reset();
        let keep = crate::sample::window_keep(config.context);
        let (r, rebuild_wall, rebuild) = timed(|| fast.feed(&[&ids[..keep]], &mut logits));
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
        fast.use_second_core(true);
        if fast.on_two_cores() {
            // Per CPU second both cores count: the wall figure is the one a person waits by.
            run(
                &format!("  with cache, {weights:?}, each word split over two cores"),
                &mut fast,
                ceiling,
            )?;
        }
    }
    let ceiling = ceiling32;
    run(
        "with cache, F32 (candle forward_cached)",
        &mut CachedTakes::new(gpt.clone()),
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

/// Takes (each number of `takes`, one batch a word) on the checkpoint in `dir` (f16 weights, as
/// generation runs), or with `on_preset` on random weights of `preset` in f32 and in f16 (a model
/// whose weights come from DRAM rather than the cache, where sharing their reads pays most).
pub(super) fn bench_takes(
    dir: Option<&Path>,
    preset: &str,
    words: usize,
    takes: &[usize],
    compute: &Compute,
) -> Result<()> {
    takes.iter().try_for_each(|&n| check_takes(n))?;
    let Some(dir) = dir else {
        let config = GptConfig::preset(preset, Vocab.len())?;
        let tensors = Gpt::new(&config, 0, &compute.device)?.tensors();
        for weights in [Weights::F32, Weights::F16] {
            let fast = FastGpt::from_tensors(&config, &tensors, weights)?;
            let label = format!(
                "{preset} with random weights, {:?} ({:.1} MB read per word)",
                fast.weights(),
                fast.weight_bytes() as f64 / 1e6
            );
            time_takes(&mut FastTakes::new(fast), &label, words, takes)?;
        }
        return Ok(());
    };
    let (mut model, label) = load_for(dir, compute, Weights::F16)?;
    time_takes(
        &mut model,
        &format!("{} ({label})", dir.display()),
        words,
        takes,
    )?;
    time_steering(&mut model, words)?;
    if compute.is_cuda() || rayon::current_num_threads() == 1 {
        return Ok(());
    }
    // The same takes all in one batch on one core: what the batch alone saves.
    let one_core = FastTakes::with_threads(FastGpt::load(dir, Weights::F16)?, 1);
    time_takes(
        &mut { one_core },
        &format!("{} (the same, every take on one thread)", dir.display()),
        words,
        takes,
    )
}

/// One take of `words` words with the steering knobs off, and with all on (range C3-C6,
/// polyphony 3, density 3), three times each in turn: what the knobs cost the sampler.
fn time_steering(model: &mut dyn NextWordModel, words: usize) -> Result<()> {
    let off = SampleOptions {
        words,
        seed: 1,
        ..SampleOptions::default()
    };
    let on = SampleOptions {
        range: Some("C3-C6".parse().map_err(anyhow::Error::msg)?),
        polyphony: Some(3),
        density: Some(3.0),
        ..off.clone()
    };
    let stop = AtomicBool::new(false);
    let prompt = prompt::new_piece();
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..3 {
        for (i, opts) in [&off, &on].into_iter().enumerate() {
            let (gens, wall, cpu) =
                timed(|| generate_takes(model, &prompt, opts, 1, &stop, &mut |_, _| {}));
            let made = gens?[0].sampled as f64;
            rates[i].push((made / wall, made / cpu));
        }
    }
    let best = |v: &[(f64, f64)]| v.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "steering, one take of {words} words, best of 3 by CPU time: knobs off {:.0} tokens/s, range C3-C6 + polyphony 3 + density 3 on {:.0} tokens/s ({:+.1}%)",
        best(&rates[0]),
        best(&rates[1]),
        (best(&rates[1]) / best(&rates[0]) - 1.0) * 100.0
    );
    Ok(())
}

/// For each number of `takes`: `words` new words after START per take in one batch, after a
/// warm-up run, by the wall clock (on a shared CPU the wall clock counts waiting for a core too:
/// the CPU time is printed beside it). Tokens/s per take and in all, and the time against the
/// first row's (one take's by default).
fn time_takes(
    model: &mut dyn NextWordModel,
    label: &str,
    words: usize,
    takes: &[usize],
) -> Result<()> {
    println!("takes on {label}: {words} new words after START per take, one batch a word");
    let opts = SampleOptions {
        words,
        seed: 1,
        ..SampleOptions::default()
    };
    let prompt = prompt::new_piece();
    let stop = AtomicBool::new(false);
    let run = |model: &mut dyn NextWordModel, n: usize| {
        generate_takes(model, &prompt, &opts, n, &stop, &mut |_, _| {})
    };
    run(model, takes.first().copied().unwrap_or(1))?; // warm-up: allocations, caches
    let mut first = None;
    for &n in takes {
        let (gens, wall, cpu) = timed(|| run(model, n));
        let gens = gens?;
        let all: usize = gens.iter().map(|g| g.sampled).sum();
        let per_take = all as f64 / n as f64 / wall;
        let base = *first.get_or_insert(wall);
        println!(
            "  {n} take{}: {per_take:.0} tokens/s per take, {:.0} tokens/s in all ({all} words in {wall:.2} s wall, {cpu:.2} s CPU; {:.2}x the time of the first row)",
            if n == 1 { "" } else { "s" },
            all as f64 / wall,
            wall / base,
        );
    }
    Ok(())
}
