//! `generate --mode continue` from a fresh clone: no `--data` and no `data/prepared`, so the
//! openings shipped beside the model are continued.

use std::path::Path;
use std::process::Command;

#[test]
fn generate_continues_the_openings_beside_the_model_without_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
    let out = Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .args([
            "generate", "--mode", "continue", "--tokens", "40", "--seed", "3",
        ])
        .args(["--device", "cpu", "--words", "out.txt", "--checkpoint"])
        .arg(&checkpoints)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("openings in"), "{stderr}");
    assert!(stdout.contains("continuing \""), "{stdout}");
    let words = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    assert!(words.starts_with("START ") && words.trim_end().ends_with("END"));
    // --data still takes a dataset, and says clearly when there is none.
    let out = Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .args([
            "generate",
            "--mode",
            "continue",
            "--data",
            "nowhere",
            "--checkpoint",
        ])
        .arg(&checkpoints)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("no prepared dataset in nowhere"),
        "{stderr}"
    );
}

/// Continue song starts with the music: over many seeds, on the openings shipped beside the model
/// (the first 400 words of the 553 validation pieces, many of which open with bars of silence),
/// the prompt's first note falls in its first bar and keeps its place in the bar.
#[test]
fn continue_song_skips_whole_bars_of_leading_silence_over_many_seeds() {
    use nanotune::learn::dataset::Dataset;
    use nanotune::music::notes::{from_words, STEPS_PER_BAR};
    use nanotune::music::words::Vocab;
    use nanotune::sample::prompt;
    use rand::SeedableRng;
    let openings = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints/small/openings");
    let data = Dataset::load(&openings).unwrap();
    let (mut silent_before, mut seen) = (0, 0);
    for seed in 0..300 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let p = prompt::continue_song(&data.val, None, 100, &mut rng).unwrap();
        let first = from_words(&p.words).notes.iter().map(|n| n.onset).min();
        let first = first.expect("a prompt of 100 words holds a note");
        assert!(
            first < STEPS_PER_BAR,
            "seed {seed}: {:?} starts at {first}",
            p.title
        );
        // Where the piece itself began: the same place in the bar.
        let index = data.val.find(p.title.as_deref().unwrap()).unwrap();
        let (words, _) = Vocab.decode(data.val.piece(index));
        let original = from_words(&words)
            .notes
            .iter()
            .map(|n| n.onset)
            .min()
            .unwrap();
        assert_eq!(first, original % STEPS_PER_BAR, "seed {seed}");
        silent_before += (original >= STEPS_PER_BAR) as usize;
        seen += 1;
    }
    // The openings do begin with silence often enough for this to test something.
    assert!(silent_before * 5 > seen, "{silent_before} of {seen}");
}
