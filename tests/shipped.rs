//! The model that ships in `checkpoints/` loads and makes music on the CPU, as a fresh clone's
//! first run does.

use nanotune::learn::checkpoint::{find_in, Checkpoint};
use nanotune::music::notes::{canon, from_words};
use nanotune::sample::backend::{FastGpt, Weights};
use nanotune::sample::{generate, prompt, SampleOptions};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

mod common;

#[test]
fn shipped_checkpoint_loads_and_generates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
    let dir = find_in(&root).expect("a model ships in checkpoints/");
    let checkpoint = Checkpoint::load(&dir, &candle_core::Device::Cpu).unwrap();
    assert!(checkpoint.model.num_params() > 1_000_000);
    let mut model = FastGpt::load(&dir, Weights::default()).unwrap();
    let opts = SampleOptions {
        words: 300,
        seed: 1,
        ..SampleOptions::default()
    };
    let g = generate(
        &mut model,
        &prompt::new_piece(),
        &opts,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(canon(&g.words), g.words, "the piece is canonical");
    let decoded = from_words(&g.words);
    assert_eq!(decoded.skipped, 0);
    // A trained model writes music, not a handful of notes: at least one note per 4 words.
    assert!(
        decoded.notes.len() * 4 >= g.words.len(),
        "{} notes",
        decoded.notes.len()
    );
}

/// `nanotune compare ARGS`, which must succeed; its standard output.
fn compare(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .arg("compare")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nanotune compare` on the shipped model and real corpus pieces: every figure is there, the
/// corpus reads as tonal music, and the new pieces it saved are real MIDI files.
#[test]
fn compare_reports_the_shipped_model_beside_the_corpus() {
    let Some((tmp, data)) = common::corpus_dataset(60) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
    let new = tmp.path().join("new");
    let stdout = compare(&[
        "--checkpoint".as_ref(),
        root.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
        "--generated".as_ref(),
        "3".as_ref(),
        "--corpus".as_ref(),
        "40".as_ref(),
        "--tokens".as_ref(),
        "200".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--save".as_ref(),
        new.as_os_str(),
    ]);
    assert!(stdout.contains("corpus (40 pieces)") && stdout.contains("generated (3 pieces)"));
    assert!(stdout.contains("40 openings of"), "{stdout}");
    assert!(
        stdout.contains("notes per beat by quarter of a piece"),
        "{stdout}"
    );
    for metric in nanotune::music::analysis::METRICS {
        assert!(stdout.contains(metric), "{metric} missing:\n{stdout}");
    }
    let key_fit = stdout.lines().find(|l| l.starts_with("key fit")).unwrap();
    let corpus_mean: f64 = key_fit[36..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        corpus_mean > 0.85,
        "corpus key fit {corpus_mean}: {key_fit}"
    );
    for k in 1..=3 {
        let bytes = std::fs::read(tmp.path().join(format!("new/new-0{k}.mid"))).unwrap();
        let notes = nanotune::music::midi::read_midi(&bytes)
            .unwrap()
            .grid_notes();
        assert!(notes.len() > 20, "new piece {k} has {} notes", notes.len());
    }

    // The saved files read back through --midi give the same figures as when they were made.
    let text = compare(&[
        "--data".as_ref(),
        data.as_os_str(),
        "--corpus".as_ref(),
        "40".as_ref(),
        "--midi".as_ref(),
        new.as_os_str(),
    ]);
    assert!(
        text.contains("3 MIDI files in") && text.contains("files (3 pieces)"),
        "{text}"
    );
    let row = |out: &str, name: &str| -> String {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string();
        line[36..].split_whitespace().nth(3).unwrap().to_string() // the second set's mean
    };
    for metric in [
        "notes per beat",
        "mean pitch",
        "key fit",
        "repeated 4-onset",
    ] {
        assert_eq!(row(&stdout, metric), row(&text, metric), "{metric}");
    }
}

/// The bf16 copy that generation runs on a GPU (`Gpt::to_dtype`), checked on the CPU with the
/// shipped weights and a real piece: word by word through the cache, its next-word
/// distributions stay close to f32's, so sampling from it makes the same music.
#[test]
fn bf16_generation_copy_predicts_like_f32() {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::ops::softmax_last_dim;
    use nanotune::learn::model::KvCache;
    let Some(archive) = common::corpus_archive() else {
        return;
    };
    let piece = common::corpus_slice(&archive, 1)
        .split(nanotune::learn::dataset::Split::Val)
        .piece(0)
        .to_vec();
    assert!(piece.len() > 150, "a real piece: {} words", piece.len());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
    let f32_model = Checkpoint::load(&find_in(&root).unwrap(), &Device::Cpu)
        .unwrap()
        .model;
    let bf16_model = f32_model.to_dtype(DType::BF16).unwrap();
    assert_eq!(bf16_model.dtype(), DType::BF16);
    assert_eq!(f32_model.dtype(), DType::F32);

    // Probabilities of piece[50..150], each given the words before it; fed one at a time.
    let next_word_probs = |model: &nanotune::learn::model::Gpt| -> Vec<Vec<f32>> {
        let ids = |r: std::ops::Range<usize>| {
            let v: Vec<u32> = piece[r].iter().map(|&i| i as u32).collect();
            let n = v.len();
            Tensor::from_vec(v, (1, n), &Device::Cpu).unwrap()
        };
        let mut cache = KvCache::new(model.config());
        let mut logits = model.forward_cached(&ids(0..50), &mut cache).unwrap();
        let mut out = Vec::new();
        for i in 50..150 {
            assert_eq!(logits.dtype(), DType::F32, "logits come back f32");
            out.push(
                softmax_last_dim(&logits)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap(),
            );
            logits = model.forward_cached(&ids(i..i + 1), &mut cache).unwrap();
        }
        out
    };
    let (p32, p16) = (next_word_probs(&f32_model), next_word_probs(&bf16_model));
    let (mut kl, mut same_best, mut nll32, mut nll16) = (0.0, 0, 0.0, 0.0);
    let best = |p: &[f32]| (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    for (k, (a, b)) in p32.iter().zip(&p16).enumerate() {
        kl += a
            .iter()
            .zip(b)
            .filter(|(x, _)| **x > 0.0)
            .map(|(x, y)| x * (x / y.max(1e-9)).ln())
            .sum::<f32>()
            / 100.0;
        same_best += (best(a) == best(b)) as usize;
        let next = piece[50 + k] as usize;
        nll32 -= a[next].ln() / 100.0;
        nll16 -= b[next].ln() / 100.0;
    }
    eprintln!("bf16 copy: mean KL {kl:.5} nats, same best word {same_best}/100, loss f32 {nll32:.4} bf16 {nll16:.4}");
    assert!(kl < 0.002, "mean KL(f32 || bf16) {kl} nats");
    assert!(same_best >= 95, "same most likely word {same_best} of 100");
    assert!(
        (nll32 - nll16).abs() < 0.01,
        "loss on the piece: f32 {nll32}, bf16 {nll16}"
    );
    assert!(
        nll32 < 2.5,
        "the shipped model predicts real music: {nll32} nats/word"
    );
}

/// It uses its memory: the words it predicts late in its window, with more before them, come
/// out better than the first quarter's (`nanotune eval` prints the same four figures).
#[test]
fn the_shipped_model_predicts_the_later_positions_of_its_window_better() {
    let Some(archive) = common::corpus_archive() else {
        return;
    };
    let val = common::corpus_slice(&archive, 200).val;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
    let dir = find_in(&root).expect("a model ships in checkpoints/");
    let checkpoint = Checkpoint::load(&dir, &candle_core::Device::Cpu).unwrap();
    let e = nanotune::learn::train::evaluate(&checkpoint.model, &val, Some(10_000)).unwrap();
    assert_eq!(e.words, 10_000);
    let [first, .., last] = e.by_quarter;
    // The 200-word model gains 0.3 nats/word by its last quarter, the 1,024-word one 0.1 on the
    // whole val split: a margin both clear on these 10,000 words.
    assert!(last < first - 0.03, "{:?}", e.by_quarter);
}

/// The copy check finds a piece of the training split played back as a copy, and a new piece
/// as none.
#[test]
fn compare_calls_a_training_piece_a_copy() {
    let Some(archive) = common::corpus_archive() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let slice = common::corpus_slice(&archive, 60);
    slice.save(&data).unwrap();
    let files = tmp.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for k in 0..2 {
        let (words, _) = nanotune::music::words::Vocab.decode(slice.train.piece(k));
        let notes = from_words(&words).notes;
        let bytes = nanotune::music::midi::write_midi(&notes, 120.0).unwrap();
        std::fs::write(files.join(format!("copy-{k}.mid")), bytes).unwrap();
    }
    let stdout = compare(&[
        "--data".as_ref(),
        data.as_os_str(),
        "--midi".as_ref(),
        files.as_os_str(),
        "--corpus".as_ref(),
        "20".as_ref(),
    ]);
    assert!(stdout.contains("2 of 2 pieces at 64 or more"), "{stdout}");
}

/// `nanotune score`: bar by bar and in all, and a real piece reads as less surprising than the
/// same notes with its bars shuffled.
#[test]
fn score_finds_a_real_piece_less_surprising_than_its_bars_shuffled() {
    use nanotune::music::notes::{canonical_words, STEPS_PER_BAR};
    use nanotune::music::words::{words_to_string, Vocab};
    let Some(archive) = common::corpus_archive() else {
        return;
    };
    let slice = common::corpus_slice(&archive, 30);
    let (words, _) = Vocab.decode(slice.train.piece(3));
    let notes = from_words(&words).notes;
    // Bar b's notes go to bar (b * 7) mod bars: the same notes, the order of the bars lost.
    let bars = notes.iter().map(|n| n.onset / STEPS_PER_BAR).max().unwrap() + 1;
    let mut shuffled = notes.clone();
    for n in &mut shuffled {
        let (bar, within) = (n.onset / STEPS_PER_BAR, n.onset % STEPS_PER_BAR);
        n.onset = (bar * 7 % bars) * STEPS_PER_BAR + within;
    }
    nanotune::music::notes::canonicalise(&mut shuffled);
    let tmp = tempfile::tempdir().unwrap();
    let score = |name: &str, notes: &[nanotune::music::notes::Note]| -> (f64, usize) {
        let path = tmp.path().join(name);
        std::fs::write(&path, words_to_string(&canonical_words(notes))).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
        let out = Command::new(env!("CARGO_BIN_EXE_nanotune"))
            .args(["score", "--device", "cpu", "--checkpoint"])
            .arg(&root)
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all = stdout.lines().find(|l| l.starts_with("all")).unwrap();
        let loss = all.rsplit('|').next().unwrap().trim().parse().unwrap();
        let bar_lines = stdout
            .lines()
            .filter(|l| l.as_bytes()[0].is_ascii_digit())
            .count();
        (loss, bar_lines)
    };
    let (real, real_bars) = score("real.txt", &notes);
    let (mixed, _) = score("shuffled.txt", &shuffled);
    assert!(
        real_bars as u64 >= bars * 9 / 10,
        "{real_bars} of {bars} bars"
    );
    assert!(real < mixed, "real {real} against shuffled {mixed}");
}

/// A new piece of so many bars opens with its first note: the shipped model learnt openings from
/// a corpus whose pieces often open with bars of silence, and the sampler does not let it spend
/// the bars asked for on them.
#[test]
fn new_pieces_in_bars_open_with_a_note_not_with_silence() {
    use nanotune::music::words::Word;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
    let dir = find_in(&root).expect("a model ships in checkpoints/");
    let mut model = FastGpt::load(&dir, Weights::default()).unwrap();
    for seed in 0..30 {
        let opts = SampleOptions {
            bars: Some(1),
            seed,
            temperature: 1.0,
            ..SampleOptions::default()
        };
        let stop = AtomicBool::new(false);
        let g = generate(&mut model, &prompt::new_piece(), &opts, &stop, &mut |_| {}).unwrap();
        assert!(
            matches!(g.words[1], Word::Note(_)),
            "seed {seed}: {:?}",
            &g.words[..3]
        );
    }
}
