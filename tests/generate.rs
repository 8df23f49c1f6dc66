//! Generation: the grammar holds whatever the model, seeds reproduce, greedy equals top-k 1,
//! cancelling keeps the partial piece, the three decoders agree, the modes build their prompts,
//! and `nanotune generate` runs end to end on a saved checkpoint.

use candle_core::{Device, Tensor};
use nanotune::learn::checkpoint::{save_tensors, CheckpointConfig, TrainSummary, MODEL_FILE};
use nanotune::learn::dataset::SplitData;
use nanotune::learn::model::{Gpt, GptConfig, Positions};
use nanotune::music::notes::{canon, from_words};
use nanotune::music::words::{parse_words, words_to_string, Titled, Vocab, Word};
use nanotune::sample::backend::{CachedTakes, FastGpt, UncachedGpt, Weights};
use nanotune::sample::{
    generate, one_take, prompt, spawn, Ended, Generation, NextWordModel, Part, SampleOptions,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn tiny(context: usize, width: usize, bias: bool) -> GptConfig {
    GptConfig {
        layers: 2,
        heads: 4,
        width,
        context,
        vocab: Vocab.len(),
        dropout: 0.0,
        bias,
        positions: Positions::Learned,
    }
}

fn random_model(context: usize) -> FastGpt {
    let cfg = tiny(context, 64, false);
    let gpt = Gpt::new(&cfg, 3, &Device::Cpu).unwrap();
    FastGpt::from_tensors(&cfg, &gpt.tensors(), Weights::F32).unwrap()
}

/// A deterministic stand-in: logits from a hash of the last word and the position, with an
/// optional strong preference for `END`. Counts how often it is reset (each window rebuild).
struct FakeModel {
    context: usize,
    fed: usize,
    last: u16,
    resets: usize,
    love_end: bool,
}

impl FakeModel {
    fn new(context: usize) -> FakeModel {
        FakeModel {
            context,
            fed: 0,
            last: 0,
            resets: 0,
            love_end: false,
        }
    }
}

impl NextWordModel for FakeModel {
    fn context(&self) -> usize {
        self.context
    }
    fn vocab(&self) -> usize {
        Vocab.len()
    }
    fn reset(&mut self) {
        self.fed = 0;
        self.resets += 1;
    }
    fn feed(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> anyhow::Result<()> {
        let Some(ids) = one_take(ids)? else {
            return Ok(());
        };
        self.fed += ids.len();
        assert!(self.fed <= self.context, "fed past the context");
        self.last = *ids.last().unwrap();
        for (v, l) in logits.iter_mut().enumerate() {
            *l = ((v as f32 * 0.37 + self.last as f32 * 1.3 + self.fed as f32 * 0.11).sin()) * 3.0;
        }
        if self.love_end {
            logits[Vocab::END as usize] = 50.0;
        }
        Ok(())
    }
}

fn run(model: &mut dyn NextWordModel, prompt: &Titled, opts: &SampleOptions) -> Generation {
    generate(model, prompt, opts, &AtomicBool::new(false), &mut |_| {}).unwrap()
}

fn opts(words: usize, seed: u64) -> SampleOptions {
    SampleOptions {
        words,
        seed,
        ..SampleOptions::default()
    }
}

/// Every generated piece must be whole: nothing skipped, canonical, START ... END.
fn assert_whole(g: &Generation) {
    let d = from_words(&g.words);
    assert_eq!(d.skipped, 0, "{}", words_to_string(&g.words));
    assert_eq!(canon(&g.words), g.words, "not canonical");
    assert_eq!(g.words.first(), Some(&Word::Start));
    assert_eq!(g.words.last(), Some(&Word::End));
}

#[test]
fn grammar_holds_for_a_random_model_at_temperature_2() {
    let mut model = random_model(64);
    let o = SampleOptions {
        words: 10_000,
        temperature: 2.0,
        top_k: 0,
        seed: 5,
        ..SampleOptions::default()
    };
    let g = run(&mut model, &prompt::new_piece(), &o);
    assert_eq!(g.ended, Ended::Length);
    let new = g.new_words().len() - 1;
    assert!((10_000..=10_001).contains(&new), "{new} new words");
    assert_whole(&g);
    // A bad model at high temperature uses the whole vocabulary, so the mask was exercised.
    let distinct: std::collections::HashSet<_> = g.words.iter().collect();
    assert!(distinct.len() > 150, "{} distinct words", distinct.len());
}

#[test]
fn grammar_holds_from_every_fake_seed_and_length() {
    for seed in 0..40 {
        let mut model = FakeModel::new(12);
        let o = SampleOptions {
            // 0 new words is refused (tests/cli.rs), so the shortest is 1.
            words: (seed as usize * 7).max(1),
            temperature: 1.5,
            top_k: 0,
            seed,
            ..SampleOptions::default()
        };
        let g = run(&mut model, &prompt::new_piece(), &o);
        assert_whole(&g);
        let new = g.new_words().len() - 1;
        assert!(
            (o.words..=o.words + 3).contains(&new),
            "{new} for {}",
            o.words
        );
    }
}

#[test]
fn same_seed_same_words_and_different_seeds_differ() {
    let mut model = random_model(32);
    let a = run(&mut model, &prompt::new_piece(), &opts(300, 7));
    let b = run(&mut model, &prompt::new_piece(), &opts(300, 7));
    let c = run(&mut model, &prompt::new_piece(), &opts(300, 8));
    assert_eq!(a.words, b.words);
    assert_ne!(a.words, c.words);
}

#[test]
fn top_k_1_is_greedy_and_top_p_narrows() {
    let mut model = random_model(32);
    let greedy = SampleOptions {
        temperature: 0.0,
        ..opts(200, 1)
    };
    let top1 = SampleOptions {
        top_k: 1,
        ..opts(200, 99)
    };
    let g = run(&mut model, &prompt::new_piece(), &greedy);
    assert_eq!(g.words, run(&mut model, &prompt::new_piece(), &top1).words);
    // A tiny top-p keeps only the likeliest word: greedy again, whatever the seed.
    let tiny_p = SampleOptions {
        top_p: 1e-6,
        top_k: 0,
        ..opts(200, 5)
    };
    assert_eq!(
        g.words,
        run(&mut model, &prompt::new_piece(), &tiny_p).words
    );
    assert_whole(&g);
}

#[test]
fn cancelling_returns_the_partial_piece() {
    let mut model = random_model(32);
    let stop = AtomicBool::new(false);
    let mut seen = 0;
    let g = generate(
        &mut model,
        &prompt::new_piece(),
        &opts(1000, 3),
        &stop,
        &mut |_| {
            seen += 1;
            if seen == 57 {
                stop.store(true, Ordering::Relaxed);
            }
        },
    )
    .unwrap();
    assert_eq!(g.ended, Ended::Cancelled);
    let new = g.new_words().len() - 1;
    // Cut back to the last whole note: a shift and a pitch may go.
    assert!((50..=57).contains(&new), "{new}");
    assert_whole(&g);
}

#[test]
fn a_thread_streams_every_word_and_can_be_stopped() {
    let model = random_model(32);
    let running = spawn(model, prompt::new_piece(), opts(120, 4));
    let streamed: Vec<Word> = running.words.iter().collect();
    let (mut model, g) = running.join();
    let g = g.unwrap();
    assert_eq!(streamed, g.new_words());
    // The model comes back and gives the same words again.
    assert_eq!(
        run(&mut model, &prompt::new_piece(), &opts(120, 4)).words,
        g.words
    );

    let running = spawn(model, prompt::new_piece(), opts(1_000_000, 4));
    let first = running.words.recv().unwrap();
    assert_ne!(first, Word::End);
    running.stop();
    let (_, g) = running.join();
    let g = g.unwrap();
    assert_eq!(g.ended, Ended::Cancelled);
    assert!(g.new_words().len() < 1_000_000);
    assert_whole(&g);
}

#[test]
fn the_window_slides_cheaply() {
    // Context 12: a rebuild from the last 6 words every 7 words, never one per word.
    let mut model = FakeModel::new(12);
    let g = run(&mut model, &prompt::new_piece(), &opts(300, 1));
    assert_whole(&g);
    assert!((38..=46).contains(&model.resets), "{} resets", model.resets);
}

#[test]
fn the_three_decoders_agree() {
    // Width 36 with 4 heads: rows and heads that are no whole registers take the plain loops.
    let (learned, rotary) = (Positions::Learned, Positions::Rotary);
    for (width, bias, positions) in [
        (32, false, learned),
        (36, true, learned),
        (32, false, rotary),
    ] {
        let cfg = GptConfig {
            positions,
            ..tiny(10, width, bias)
        };
        let gpt = Arc::new(Gpt::new(&cfg, 11, &Device::Cpu).unwrap());
        // Logits of the fast decoder, one word at a time and all at once, against candle's full
        // forward.
        let ids: Vec<u16> = vec![0, 50, 120, 2, 100, 60, 130, 40, 125, 218];
        let t = Tensor::from_vec(
            ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            (1, ids.len()),
            &Device::Cpu,
        )
        .unwrap();
        let full = gpt.forward(&t).unwrap().squeeze(0).unwrap();
        let mut fast = FastGpt::from_tensors(&cfg, &gpt.tensors(), Weights::F32).unwrap();
        let mut logits = vec![0.0; Vocab.len()];
        for (i, &id) in ids.iter().enumerate() {
            fast.feed(&[&[id]], &mut logits).unwrap();
            let want = full.get(i).unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in logits.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "position {i}: {a} vs {b}");
            }
        }
        fast.reset();
        fast.feed(&[&ids], &mut logits).unwrap();
        let want = full.get(ids.len() - 1).unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in logits.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "batched: {a} vs {b}");
        }
        // Half-float weights move the logits by little.
        let mut half = FastGpt::from_tensors(&cfg, &gpt.tensors(), Weights::F16).unwrap();
        half.feed(&[&ids], &mut logits).unwrap();
        for (a, b) in logits.iter().zip(&want) {
            assert!((a - b).abs() < 2e-2, "f16: {a} vs {b}");
        }
        // Greedy generation past several window slides gives the same words on all three (the
        // fast decoder slides with its shadow window, the others rebuild).
        // Prompts: one word; 7 words (into the shadow window too); longer than the context.
        let o = SampleOptions {
            temperature: 0.0,
            ..opts(60, 0)
        };
        let long =
            "START n72 d4 n64 d4 n60 d8 sepxx d4 n67 d4 sepxx d4 n65 d2 n40 d8 sepxx d1 n41 d1";
        for p in ["START", "START n72 d4 n64 d4 n60 d8", long] {
            let p = Titled {
                words: parse_words(p).0,
                title: None,
            };
            let a = run(&mut fast, &p, &o);
            let b = run(&mut CachedTakes::new(gpt.clone()), &p, &o);
            let c = run(&mut UncachedGpt::new(gpt.clone()), &p, &o);
            assert_eq!(a.words, b.words);
            assert_eq!(a.words, c.words);
            assert_whole(&a);
        }
    }
}

#[test]
fn the_model_may_end_the_piece_only_when_allowed() {
    let mut model = FakeModel::new(16);
    model.love_end = true;
    let g = run(&mut model, &prompt::new_piece(), &opts(100, 1));
    assert_eq!(
        g.ended,
        Ended::Length,
        "END stays masked without stop_at_end"
    );
    assert!(g.new_words().len() > 100);
    let o = SampleOptions {
        stop_at_end: true,
        ..opts(100, 1)
    };
    let g = run(&mut model, &prompt::new_piece(), &o);
    assert_eq!(g.ended, Ended::Model);
    assert!(g.new_words().len() < 10);
    assert_whole(&g);
}

fn val_split() -> SplitData {
    let mut split = SplitData::default();
    let a = parse_words("START n72 d4 n64 d4 n60 d8 sepxx d4 n67 d4 sepxx d4 n65 d2 END").0;
    let b = parse_words("START sepxx d2 n50 d4 sepxx d4 n52 d4 sepxx d4 n53 d4 END").0;
    split.push("Song A", &Vocab.encode(&a).unwrap());
    split.push("Song B", &Vocab.encode(&b).unwrap());
    split
}

#[test]
fn modes_continue_retry_and_extend() {
    let split = val_split();
    let mut rng = StdRng::seed_from_u64(0);
    let p = prompt::continue_song(&split, Some("Song A"), 8, &mut rng).unwrap();
    assert_eq!(p.title.as_deref(), Some("Song A"));
    assert_eq!(words_to_string(&p.words), "START n72 d4 n64 d4 n60 d8");
    assert!(prompt::continue_song(&split, Some("Nope"), 8, &mut rng).is_err());
    let mut titles = std::collections::HashSet::new();
    for _ in 0..20 {
        titles.insert(
            prompt::continue_song(&split, None, 100, &mut rng)
                .unwrap()
                .title,
        );
    }
    assert_eq!(titles.len(), 2, "a random piece of the split");

    let mut model = random_model(32);
    let g = run(&mut model, &p, &opts(50, 1));
    assert_eq!(g.prompt(), &p.words[..]);
    assert_eq!(g.title.as_deref(), Some("Song A"));
    assert_whole(&g);
    // The parts: the prompt alone and the new words alone are whole pieces too.
    assert_eq!(g.notes(Part::Prompt).len(), 3);
    assert_eq!(
        g.notes(Part::All).len(),
        g.notes(Part::Prompt).len() + g.notes(Part::New).len()
    );
    // Retry: the same prompt with a new seed.
    let r = run(&mut model, &g.retry_prompt(), &opts(50, 2));
    assert_eq!(r.prompt(), g.prompt());
    assert_ne!(r.words, g.words);
    // Extend: continue the whole piece made so far.
    let e = run(&mut model, &g.extend_prompt(), &opts(40, 3));
    assert_eq!(e.prompt(), &g.words[..g.words.len() - 1]);
    assert_whole(&e);
}

fn write_checkpoint(dir: &Path) {
    let cfg = tiny(32, 32, false);
    let gpt = Gpt::new(&cfg, 1, &Device::Cpu).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    CheckpointConfig::new(cfg, TrainSummary::default())
        .save(dir)
        .unwrap();
    save_tensors(&dir.join(MODEL_FILE), &gpt.tensors()).unwrap();
}

#[test]
fn generate_command_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let nanotune = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nanotune"))
            .args(args)
            .current_dir(dir.path())
            // Only the model written here: none from the environment or the user's data folder.
            .env_remove("NANOTUNE_CHECKPOINT")
            .env("XDG_DATA_HOME", dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = nanotune(&["generate"]);
    assert!(
        !ok && err.contains("no trained model") && err.contains("nanotune train"),
        "{err}"
    );

    write_checkpoint(&dir.path().join("checkpoints/small"));
    let args = [
        "generate", "--tokens", "80", "--seed", "42", "-o", "out.mid", "--words", "out.txt",
        "--wav", "out.wav",
    ];
    let (ok, out, err) = nanotune(&args);
    assert!(ok, "{err}");
    for want in ["seed 42", "tokens/s", "duration", "bars"] {
        assert!(out.contains(want), "{want} in {out}");
    }
    let words = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    let (ok, out2, _) = nanotune(&args);
    assert!(ok);
    assert_eq!(
        words,
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap()
    );
    assert_eq!(out.lines().next(), out2.lines().next());
    assert!(std::fs::metadata(dir.path().join("out.mid")).unwrap().len() > 50);
    let wav = std::fs::read(dir.path().join("out.wav")).unwrap();
    assert!(
        wav.starts_with(b"RIFF") && wav.len() > 44 + 44_100,
        "a WAV of the piece"
    );

    // Continue the MIDI file just written, from its first 20 words.
    let (ok, out, err) = nanotune(&[
        "generate",
        "--prompt",
        "out.mid",
        "--prompt-words",
        "20",
        "--tokens",
        "30",
        "--words",
        "cont.txt",
        "--temperature",
        "0",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("continuing \"out\""), "{out}");
    let cont = std::fs::read_to_string(dir.path().join("cont.txt")).unwrap();
    let first: Vec<&str> = words.split_whitespace().take(19).collect();
    assert!(cont.starts_with(&first.join(" ")[..20]), "{cont}");
}

/// `nanotune generate` in `cwd` with `$NANOTUNE_CHECKPOINT` set to `env` (or unset) and the
/// user's data folder at `data_home`: whether it succeeded, and the checkpoint line it printed
/// (or its error).
fn generate_in(cwd: &Path, env: Option<&Path>, data_home: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nanotune"));
    cmd.args(["generate", "--tokens", "10", "--seed", "1"])
        .args(args)
        .current_dir(cwd)
        .env("XDG_DATA_HOME", data_home)
        .env_remove("NANOTUNE_CHECKPOINT");
    if let Some(env) = env {
        cmd.env("NANOTUNE_CHECKPOINT", env);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("checkpoint "));
    match line {
        Some(l) if out.status.success() => (true, l.to_string()),
        _ => (false, String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[test]
fn generate_finds_its_model_in_the_documented_order() {
    let tmp = tempfile::tempdir().unwrap();
    let [here, empty, env, data] = ["here", "empty", "env", "data"].map(|d| tmp.path().join(d));
    std::fs::create_dir_all(&empty).unwrap();
    write_checkpoint(&here.join("checkpoints/small"));
    write_checkpoint(&env);
    let in_data = data.join("nanotune/checkpoints");
    write_checkpoint(&in_data.join("base"));
    let says = |dir: &Path| format!("checkpoint {} (", dir.display());

    // $NANOTUNE_CHECKPOINT first, then ./checkpoints (its small subfolder), then the data folder.
    let (ok, line) = generate_in(&here, Some(&env), &data, &[]);
    assert!(ok && line.starts_with(&says(&env)), "{line}");
    let (ok, line) = generate_in(&here, None, &data, &[]);
    assert!(
        ok && line.starts_with(&says(Path::new("checkpoints/small"))),
        "{line}"
    );
    let (ok, line) = generate_in(&empty, None, &data, &[]);
    assert!(
        ok && line.starts_with(&says(&in_data.join("base"))),
        "{line}"
    );
    // An environment variable naming no model is passed over, and named where nothing is found.
    let (ok, line) = generate_in(&empty, Some(&empty), &data, &[]);
    assert!(
        ok && line.starts_with(&says(&in_data.join("base"))),
        "{line}"
    );
    let (ok, err) = generate_in(&empty, Some(&empty), &empty, &[]);
    assert!(!ok && err.contains("no trained model found"), "{err}");
    assert!(err.contains(&empty.display().to_string()), "{err}");
    // --checkpoint beats them all, and is the only place looked in.
    let e = env.to_str().unwrap();
    let (ok, line) = generate_in(&here, None, &data, &["--checkpoint", e]);
    assert!(ok && line.starts_with(&says(&env)), "{line}");
    let (ok, err) = generate_in(&here, Some(&env), &data, &["--checkpoint", "empty"]);
    assert!(!ok && err.contains("no trained model in empty"), "{err}");
}
