//! Takes: several versions decoded in one batch on the shipped model, each valid and canonical,
//! each exactly the batch-1 run of its own seed (take 1's is the run's seed), the scale lock and
//! the length in bars in every take; candle's batched path (the GPU's) on the CPU device; the
//! command's `--takes` and its files.

use nanotune::learn::checkpoint::Checkpoint;
use nanotune::music::notes::{canon, from_words};
use nanotune::music::scale::Scale;
use nanotune::music::words::{words_to_string, Word};
use nanotune::sample::backend::{CachedTakes, FastGpt, FastTakes, Weights};
use nanotune::sample::{
    generate, generate_takes, prompt, spawn_takes, take_seed, Ended, Generation, NextWordModel,
    SampleOptions,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints/small")
}

fn fast() -> FastGpt {
    FastGpt::load(&shipped_dir(), Weights::default()).unwrap()
}

fn opts(words: usize, seed: u64) -> SampleOptions {
    SampleOptions {
        words,
        temperature: 1.0,
        seed,
        ..SampleOptions::default()
    }
}

fn takes(model: &mut dyn NextWordModel, o: &SampleOptions, n: usize) -> Vec<Generation> {
    let stop = AtomicBool::new(false);
    generate_takes(model, &prompt::new_piece(), o, n, &stop, &mut |_, _| {}).unwrap()
}

/// The batch-1 run of `o` with the seed of take `k`.
fn alone(model: &mut dyn NextWordModel, o: &SampleOptions, k: usize) -> Generation {
    let o = SampleOptions {
        seed: take_seed(o.seed, k),
        ..o.clone()
    };
    generate(
        model,
        &prompt::new_piece(),
        &o,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap()
}

fn assert_whole(g: &Generation) {
    assert_eq!(
        from_words(&g.words).skipped,
        0,
        "{}",
        words_to_string(&g.words)
    );
    assert_eq!(canon(&g.words), g.words, "not canonical");
    assert_eq!(g.words.first(), Some(&Word::Start));
    assert_eq!(g.words.last(), Some(&Word::End));
}

#[test]
fn four_takes_differ_are_whole_and_each_is_its_seed_alone() {
    // Past the context (a quarter of it and more), so every take's window slides.
    let context = fast().config().context;
    let o = opts(context + context / 4 + 50, 7);
    let mut model = FastTakes::new(fast());
    let four = takes(&mut model, &o, 4);
    assert_eq!(four.len(), 4);
    for (k, g) in four.iter().enumerate() {
        assert_whole(g);
        assert_eq!(g.ended, Ended::Length);
        assert_eq!(g.options.seed, take_seed(7, k));
        assert!(
            g.new_words().len() > context,
            "take {k}: {}",
            g.new_words().len()
        );
    }
    assert_eq!(four[0].options.seed, 7, "take 1 has the run's seed");
    for a in 0..4 {
        for b in a + 1..4 {
            assert_ne!(four[a].words, four[b].words, "takes {a} and {b}");
        }
    }
    // The same seed gives the same takes.
    let words = |gens: &[Generation]| gens.iter().map(|g| g.words.clone()).collect::<Vec<_>>();
    assert_eq!(words(&takes(&mut model, &o, 4)), words(&four));
    // Each take is exactly the batch-1 run of its seed: the batched products are the same to the
    // bit, so take 1 is what one take (today's generate) gives.
    let mut one = fast();
    for (k, g) in four.iter().enumerate() {
        assert_eq!(alone(&mut one, &o, k).words, g.words, "take {k}");
    }
    let single = takes(&mut model, &o, 1);
    assert_eq!(single[0].words, four[0].words);
}

#[test]
fn takes_dealt_to_threads_are_the_takes_of_one_batch() {
    // A prompt of 150 words (the prompt path and its copies in every part), 5 takes over 1, 2
    // and 3 threads (runs of 5; 3 + 2; 2 + 2 + 1): the same words to the bit.
    let piece = prompt::new_piece();
    let mut o = opts(150, 21);
    let stop = AtomicBool::new(false);
    let first = generate(&mut fast(), &piece, &o, &stop, &mut |_| {}).unwrap();
    let prompt = nanotune::music::words::Titled {
        words: first.words[..first.words.len() - 1].to_vec(),
        ..piece
    };
    o.seed = 22;
    let run = |threads: usize| {
        let mut model = FastTakes::with_threads(fast(), threads);
        let gens = generate_takes(&mut model, &prompt, &o, 5, &stop, &mut |_, _| {}).unwrap();
        assert_eq!(model.threads_in_use(), threads);
        gens.into_iter().map(|g| g.words).collect::<Vec<_>>()
    };
    let one = run(1);
    assert!(one.iter().all(|w| w.len() > prompt.words.len() + 150));
    assert_eq!(run(2), one);
    assert_eq!(run(3), one);
}

#[test]
fn one_take_on_two_cores_is_the_one_core_take_to_the_bit() {
    // Past the context, so the window slides (its shadow rows make products of two rows), after
    // a prompt of 150 words (the prompt path): the same words whether each word's products and
    // heads are split over two cores or not.
    let context = fast().config().context;
    let stop = AtomicBool::new(false);
    let first = generate(
        &mut fast(),
        &prompt::new_piece(),
        &opts(150, 5),
        &stop,
        &mut |_| {},
    );
    let prompt = nanotune::music::words::Titled {
        words: first.unwrap().words.split_last().unwrap().1.to_vec(),
        ..prompt::new_piece()
    };
    let o = opts(context + context / 4 + 50, 6);
    let run = |threads: usize| {
        let mut model = FastTakes::with_threads(fast(), threads);
        let g = generate(&mut model, &prompt, &o, &stop, &mut |_| {}).unwrap();
        (g.words, model.model().on_two_cores())
    };
    let (one_core, split) = run(1);
    assert!(!split, "one thread asked for: one core");
    let (two_cores, split) = run(2);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(split, cores > 1, "{cores} cores");
    assert!(one_core.len() > prompt.words.len() + context);
    assert_eq!(two_cores, one_core);
    // Two takes on two threads: each has a core, neither splits.
    let mut model = FastTakes::with_threads(fast(), 2);
    model.set_takes(2).unwrap();
    assert!(!model.model().on_two_cores());
    model.set_takes(1).unwrap();
    assert_eq!(model.model().on_two_cores(), cores > 1);
}

#[test]
fn a_take_that_ends_first_waits_and_the_others_are_unchanged() {
    // In bars the takes end after different numbers of words; with the model free to end, some
    // end on END. Each is still exactly its batch-1 run.
    let mut model = FastTakes::new(fast());
    let mut one = fast();
    let bars = SampleOptions {
        bars: Some(6),
        ..opts(500, 3)
    };
    let ending = SampleOptions {
        stop_at_end: true,
        temperature: 1.3,
        ..opts(400, 11)
    };
    for o in [bars, ending] {
        let gens = takes(&mut model, &o, 5);
        let lengths: Vec<usize> = gens.iter().map(|g| g.words.len()).collect();
        assert!(
            o.bars.is_none() || lengths.iter().any(|&l| l != lengths[0]),
            "{lengths:?}: the takes should end apart"
        );
        for (k, g) in gens.iter().enumerate() {
            assert_whole(g);
            assert_eq!(alone(&mut one, &o, k).words, g.words, "take {k} of {o:?}");
        }
    }
}

#[test]
fn the_scale_lock_holds_in_every_take() {
    let mut model = FastTakes::new(fast());
    for (key, seed) in [("D", 1), ("Ebm", 2)] {
        let scale: Scale = key.parse().unwrap();
        let o = SampleOptions {
            scale: Some(scale),
            temperature: 1.2,
            top_k: 0,
            ..opts(300, seed)
        };
        for (k, g) in takes(&mut model, &o, 4).iter().enumerate() {
            assert_whole(g);
            let pitches: Vec<u8> = g
                .new_words()
                .iter()
                .filter_map(|w| match w {
                    Word::Note(p) => Some(*p),
                    _ => None,
                })
                .collect();
            assert!(
                pitches.len() > 30,
                "{key} take {k}: {} notes",
                pitches.len()
            );
            let outside: Vec<u8> = pitches
                .into_iter()
                .filter(|&p| !scale.contains(p))
                .collect();
            assert!(
                outside.is_empty(),
                "{key} take {k}: {outside:?} outside {scale}"
            );
        }
    }
}

#[test]
fn takes_stream_tagged_words_on_a_thread_and_stop_together() {
    let model = FastTakes::new(fast());
    let running = spawn_takes(model, prompt::new_piece(), opts(200, 5), 3);
    let mut streamed = vec![Vec::new(); 3];
    for (k, w) in running.words.iter() {
        streamed[k].push(w);
    }
    let (model, gens) = running.join();
    let gens = gens.unwrap();
    for (k, g) in gens.iter().enumerate() {
        assert_eq!(streamed[k], g.new_words(), "take {k}");
    }
    // Stopped at once: every take is cut back to a whole piece.
    let running = spawn_takes(model, prompt::new_piece(), opts(100_000, 5), 3);
    let first = running.words.recv().unwrap();
    assert_eq!(first.0, 0);
    running.stop();
    let (_, gens) = running.join();
    for g in gens.unwrap() {
        assert_eq!(g.ended, Ended::Cancelled);
        assert!(g.sampled < 100_000);
        assert_whole(&g);
    }
}

#[test]
fn candles_batched_forward_matches_one_take_at_a_time() {
    // The GPU's path, on candle's CPU device: one batch of three takes gives each take's
    // logits as candle's batch-1 cached forward does, and a run of takes past the context
    // (candle does not slide itself: the window is rebuilt) gives whole pieces.
    let gpt = Arc::new(
        Checkpoint::load(&shipped_dir(), &candle_core::Device::Cpu)
            .unwrap()
            .model,
    );
    let mut batched = CachedTakes::new(gpt.clone());
    batched.set_takes(3).unwrap();
    let vocab = gpt.config().vocab;
    let words: [&[u16]; 3] = [&[0, 40, 150], &[0, 60, 152], &[0, 2, 151]];
    let mut logits = vec![0.0; 3 * vocab];
    batched.feed(&words, &mut logits).unwrap();
    // One word more for takes 0 and 2 only (take 1 has ended).
    batched.feed(&[&[2], &[], &[160]], &mut logits).unwrap();
    for (k, ids) in [(0, [0, 40, 150, 2]), (2, [0, 2, 151, 160])] {
        let mut one = CachedTakes::new(gpt.clone());
        let mut want = vec![0.0; vocab];
        one.feed(&[&ids[..]], &mut want).unwrap();
        for (a, b) in logits[k * vocab..][..vocab].iter().zip(&want) {
            assert!((a - b).abs() < 1e-3, "take {k}: {a} vs {b}");
        }
    }
    let past = gpt.config().context + 60;
    let gens = takes(&mut batched, &opts(past, 9), 3);
    for g in &gens {
        assert_whole(g);
        assert!(g.new_words().len() > past);
    }
    assert_ne!(gens[0].words, gens[1].words);
}

fn nanotune(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .args(args)
        .current_dir(cwd)
        .env("NANOTUNE_CHECKPOINT", shipped_dir())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_writes_one_file_per_take() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "generate", "--tokens", "120", "--seed", "42", "--takes", "3", "-o", "x.mid", "--words",
        "x.txt",
    ];
    let (ok, out, err) = nanotune(dir.path(), &args);
    assert!(ok, "{err}");
    for want in [
        "take 1 (seed 42)",
        "take 3 (seed",
        "3 takes:",
        "tokens/s in all",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }
    let mut texts = Vec::new();
    for k in 1..=3 {
        let mid = dir.path().join(format!("x-{k}.mid"));
        assert!(
            std::fs::metadata(&mid).unwrap().len() > 50,
            "{}",
            mid.display()
        );
        texts.push(std::fs::read_to_string(dir.path().join(format!("x-{k}.txt"))).unwrap());
    }
    assert!(!dir.path().join("x.mid").exists());
    assert_ne!(texts[0], texts[1]);
    // Take 1 is the one-take run of the same seed, written under the name given.
    let (ok, _, err) = nanotune(
        dir.path(),
        &[
            "generate", "--tokens", "120", "--seed", "42", "--words", "one.txt",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("one.txt")).unwrap(),
        texts[0]
    );

    for bad in ["0", "9"] {
        let (ok, _, err) = nanotune(dir.path(), &["generate", "--takes", bad]);
        assert!(!ok);
        assert!(err.contains("--takes must be 1 to 8"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
