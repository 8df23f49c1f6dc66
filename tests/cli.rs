//! The `nanotune` binary as a user runs it: encode, decode, prepare, describe, train --resume,
//! generate --tokens, and their errors.

mod common;

use nanotune::learn::dataset::{Dataset, Split};
use std::path::Path;
use std::process::{Command, Output};

fn nanotune(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_command_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let out = nanotune(&["--help"], dir.path());
    assert!(out.status.success());
    for cmd in [
        "encode", "decode", "prepare", "bench", "compare", "describe",
    ] {
        assert!(text(&out.stdout).contains(cmd), "--help lists {cmd}");
        let help = nanotune(&[cmd, "--help"], dir.path());
        assert!(help.status.success(), "{cmd} --help");
        assert!(
            text(&help.stdout).len() > 200,
            "{cmd} --help says something useful"
        );
    }
    // The two commands that sample take the same settings, explained the same way.
    for cmd in ["generate", "compare"] {
        let help = text(&nanotune(&[cmd, "--help"], dir.path()).stdout);
        for flag in [
            "--tokens <TOKENS>",
            "Sampling temperature (0 = always the likeliest word)",
            "Sample among the k likeliest words only (0 = all)",
            "--top-p <TOP_P>",
        ] {
            assert!(help.contains(flag), "{cmd} --help explains {flag}:\n{help}");
        }
    }
}

#[test]
fn every_command_that_opens_a_model_looks_for_it_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    let order = nanotune::learn::checkpoint::CHECKPOINT_HELP;
    assert!(
        order.contains("$NANOTUNE_CHECKPOINT, ./checkpoints, checkpoints/ beside the executable")
    );
    // The screen (no command), then every command with --checkpoint.
    for cmd in [&[][..], &["generate"], &["compare"], &["eval"], &["export"]] {
        let help = text(&nanotune(&[cmd, &["--help"]].concat(), dir.path()).stdout);
        assert!(
            help.contains(order),
            "{cmd:?} --help states the search order:\n{help}"
        );
    }
    // --prompt-words means the same in the screen and in generate, with one default.
    let default = format!(
        "[default: {}]",
        nanotune::sample::prompt::DEFAULT_PROMPT_WORDS
    );
    for cmd in [&[][..], &["generate"]] {
        let help = text(&nanotune(&[cmd, &["--help"]].concat(), dir.path()).stdout);
        let at = help.find("--prompt-words").expect("--prompt-words");
        let flag = &help[at..at + help[at..].find(&default).expect(&help) + default.len()];
        assert!(flag.contains("(0 = the whole piece)"), "{cmd:?}: {flag}");
    }
}

#[test]
fn decode_then_encode_gives_the_words_back() {
    let dir = tempfile::tempdir().unwrap();
    let words = "START sepxx d2 n72 d4 n64 d4 n60 d8 sepxx d4 n67 d4 sepxx d130 n21 d128 END";
    std::fs::write(dir.path().join("in.txt"), words).unwrap();
    let out = nanotune(
        &["decode", "in.txt", "-o", "out.mid", "--bpm", "90"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = nanotune(&["encode", "out.mid"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "START sepxx d2 n72 d4 n64 d4 n60 d8 sepxx d4 n67 d4 sepxx d128 sepxx d2 n21 d128 END"
    );
    let out = nanotune(&["encode", "out.mid", "-o", "again.txt"], dir.path());
    assert!(out.status.success());
    assert!(std::fs::read_to_string(dir.path().join("again.txt"))
        .unwrap()
        .starts_with("START sepxx d2"));
}

#[test]
fn junk_words_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("junk.txt"),
        "START hello n60 d4 d9 n999 sepxx END",
    )
    .unwrap();
    let out = nanotune(&["decode", "junk.txt", "-o", "junk.mid"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("wrote 1 notes") && err.contains("2 unknown and 2 unpaired"),
        "{err}"
    );
}

#[test]
fn bad_midi_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.mid"), b"definitely not a midi file").unwrap();
    std::fs::write(dir.path().join("empty.mid"), b"").unwrap();
    for name in ["bad.mid", "empty.mid", "missing.mid"] {
        let out = nanotune(&["encode", name], dir.path());
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = text(&out.stderr);
        assert!(err.starts_with("error: ") && err.contains(name), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn prepare_carries_on_past_bad_files_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    // Enough titles that every split gets some (titles are hashed into splits).
    for i in 0..60 {
        std::fs::write(
            src.join(format!("piece {i}.txt")),
            "START n60 d4 sepxx d4 n62 d4",
        )
        .unwrap();
    }
    std::fs::write(src.join("sub/broken.mid"), b"MThd\0\0\0\x06\0\x01").unwrap();
    std::fs::write(src.join("silent.txt"), "START").unwrap();
    let out = nanotune(&["prepare", "src", "-o", "prepared", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("broken.mid"),
        "names the bad file"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("60 pieces") && stdout.contains("1 empty pieces and 1 bad files"),
        "{stdout}"
    );
    let ds = Dataset::load(&dir.path().join("prepared")).unwrap();
    let total: usize = Split::ALL.iter().map(|&s| ds.split(s).pieces.len()).sum();
    assert_eq!(total, 60);
    assert!(!ds.val.pieces.is_empty() && !ds.test.pieces.is_empty());
    assert_eq!(
        ds.train.piece(0),
        &[0, 3 + 60 - 21, 91 + 3, 2, 91 + 3, 3 + 62 - 21, 91 + 3, 1]
    );

    let out = nanotune(&["prepare", "nowhere", "-o", "x"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nowhere does not exist"));
}

#[test]
fn real_midi_file_encodes_from_the_command_line() {
    let Some(midi) = common::debian_midi_dir() else {
        return;
    };
    let file = common::midi_files(&midi).into_iter().next().unwrap();
    let out = nanotune(&["encode", file.to_str().unwrap()], Path::new("."));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let words = text(&out.stdout);
    assert!(words.starts_with("START ") && words.trim_end().ends_with(" END"));
    assert!(words.split_whitespace().count() > 50);
}

#[test]
fn describe_gives_keys_by_bar_the_roll_and_the_sound() {
    let dir = tempfile::tempdir().unwrap();
    // A prompt of C, F# and G for half a bar (START and three notes: 7 words; only G major
    // holds all three), rest to the end of bar 4, then the "model" in C major: C E G A B C.
    let words = "START n72 d8 n66 d8 n55 d8 sepxx d64 n60 d2 sepxx d2 n64 d2 sepxx d2 \
                 n67 d2 sepxx d2 n69 d2 sepxx d2 n71 d2 sepxx d2 n72 d14 END";
    std::fs::write(dir.path().join("piece.words"), words).unwrap();
    let out = nanotune(
        &[
            "describe",
            "piece.words",
            "--prompt-words",
            "7",
            "--svg",
            "roll.svg",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("32 words, 9 notes (3 in the prompt), 6 bars, 11.0 s at 120 bpm"),
        "{report}"
    );
    let row = |label: &str| {
        report
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no row {label} in\n{report}"))
            .split('|')
            .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("1-4"),
        ["1-4", "3", "prompt", "G / Em 100%", "G3-C5", "8"]
    );
    assert_eq!(
        row("5-6"),
        ["5-6", "6", "model", "C / Am 100%", "C4-C5", "14"]
    );
    let svg = std::fs::read_to_string(dir.path().join("roll.svg")).unwrap();
    // Each note once in its colour, and each colour once more in the legend.
    assert_eq!(svg.matches(nanotune::plot::PROMPT_COLOUR).count(), 3 + 1);
    assert_eq!(svg.matches(nanotune::plot::MODEL_COLOUR).count(), 6 + 1);

    // Its sound: the chord dies away in the bars of rest, a quiet span the report names.
    let out = nanotune(&["render", "piece.words", "-o", "piece.wav"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = nanotune(
        &["describe", "piece.words", "--wav", "piece.wav"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let wav_line = report
        .lines()
        .find(|l| l.starts_with("piece.wav: "))
        .unwrap();
    let peak: f64 = wav_line
        .split("peak ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((-30.0..0.0).contains(&peak), "{wav_line}");
    let quiet = report
        .lines()
        .find(|l| l.contains("silent"))
        .expect(&report);
    let (from, to) = quiet
        .rsplit(": ")
        .next()
        .unwrap()
        .trim_end_matches(" s")
        .split_once('-')
        .unwrap();
    let (from, to): (f64, f64) = (from.parse().unwrap(), to.parse().unwrap());
    // The chord sounds for 1 s, then rests to 8 s (120 bpm); it needs time to die away.
    assert!(
        1.0 < from && from < 7.0 && (7.5..=8.25).contains(&to),
        "{quiet}"
    );

    // A real MIDI file, the committed example continuation: the notes and bars the library reads.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/continuation.mid");
    let mut notes = nanotune::music::midi::read_midi(&std::fs::read(&example).unwrap())
        .unwrap()
        .grid_notes();
    nanotune::music::notes::canonicalise(&mut notes);
    let out = nanotune(&["describe", example.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = format!(
        "{} notes (0 in the prompt), {} bars",
        notes.len(),
        nanotune::music::analysis::bars(&notes)
    );
    assert!(
        notes.len() > 100 && text(&out.stdout).contains(&want),
        "{want}"
    );

    let out = nanotune(&["describe", "roll.svg"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("roll.svg holds no notes"));
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let piece = format!("START {} END", "n60 d4 sepxx d16 ".repeat(20_000));
    std::fs::write(dir.path().join("long.words"), piece).unwrap();
    // 20,000 rows of a bar each: far more than a pipe holds, read by nobody.
    let mut child = Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .args(["describe", "long.words", "--bars", "1"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("panicked"));
}

/// `train --resume` as a user gives it: the first command again with `--resume` (its shape flags
/// too), which goes on to that run's own --steps; a shape flag that differs is refused in one line.
#[test]
fn the_same_train_command_with_resume_goes_on_to_its_own_steps() {
    let Some(archive) = common::corpus_archive() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::corpus_slice(&archive, 60)
        .save(&dir.path().join("data"))
        .unwrap();
    let train = |extra: &[&str]| {
        let args = [
            "train",
            "--data",
            "data",
            "--out",
            "run",
            "--layers",
            "1",
            "--heads",
            "2",
            "--context",
            "16",
            "--batch",
            "4",
            "--eval-every",
            "2",
            "--eval-batches",
            "1",
            "--device",
            "cpu",
            "-q",
        ];
        let out = nanotune(&[&args[..], extra].concat(), dir.path());
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let last_log_step = || {
        let log = std::fs::read_to_string(dir.path().join("run/log.csv")).unwrap();
        let last = log.lines().last().unwrap().to_string();
        last.split(',').next().unwrap().parse::<usize>().unwrap()
    };
    // A time limit of zero stops after each step, saved.
    let (code, out, err) = train(&["--width", "16", "--steps", "6", "--minutes", "0"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("stopped at step 1 of 6"), "{out}");
    // As if that first part had run for 1000 s: the resumed part's clock starts there.
    let log_path = dir.path().join("run/log.csv");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let (head, last) = log.trim_end().rsplit_once('\n').unwrap();
    let (fields, _) = last.rsplit_once(',').unwrap();
    std::fs::write(&log_path, format!("{head}\n{fields},1000.0\n")).unwrap();
    let (code, out, err) = train(&["--width", "16", "--minutes", "0", "--resume"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("stopped at step 2 of 6"), "{out}");

    let (code, _, err) = train(&["--width", "32", "--resume"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.lines().last().unwrap(),
        "error: --width 32 differs from the checkpoint's 16 in run: a model read from a checkpoint keeps its shape"
    );
    assert_eq!(last_log_step(), 2, "nothing trained");

    let (code, out, err) = train(&["--width", "16", "--resume"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("step 6: ") && !out.contains("stopped"),
        "{out}"
    );
    assert_eq!(last_log_step(), 6);
    // The log's clock goes on across the resumes instead of starting again.
    let log = std::fs::read_to_string(dir.path().join("run/log.csv")).unwrap();
    let seconds: Vec<f64> = log
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        seconds.len() >= 4 && seconds.windows(2).all(|w| w[0] <= w[1]),
        "{log}"
    );
    assert!(*seconds.last().unwrap() >= 1000.0, "{log}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["training"]["step"], 6);
    assert_eq!(config["model"]["width"], 16);

    // A finished run goes on only with a larger --steps.
    let (code, _, err) = train(&["--resume"]);
    assert_eq!(code, Some(1));
    assert!(
        err.ends_with(
            "error: run is at step 6 and --steps is 6: give a larger --steps to train on\n"
        ),
        "{err}"
    );
    let (code, out, err) = train(&["--resume", "--steps", "8"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("step 8: "), "{out}");
    assert_eq!(last_log_step(), 8);
}

/// Asking for no new words is an error, not an empty piece: from the commands and from the
/// library the screen calls too.
#[test]
fn zero_new_words_is_a_clear_error() {
    use nanotune::sample::backend::{FastGpt, Weights};
    use nanotune::sample::{generate, prompt, SampleOptions};
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints/small");
    let ckpt = shipped.to_str().unwrap();
    let want = "error: tokens must be at least 1: 0 new words would leave only the prompt\n";
    for args in [
        &[
            "generate",
            "--checkpoint",
            ckpt,
            "--tokens",
            "0",
            "-o",
            "new.mid",
        ][..],
        &["compare", "--checkpoint", ckpt, "--tokens", "0"],
    ] {
        let out = nanotune(args, dir.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), want, "{args:?}");
    }
    assert!(!dir.path().join("new.mid").exists());

    let mut model = FastGpt::load(&shipped, Weights::default()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut run = |words| {
        let opts = SampleOptions {
            words,
            seed: 1,
            ..SampleOptions::default()
        };
        generate(&mut model, &prompt::new_piece(), &opts, &stop, &mut |_| {})
    };
    let err = run(0).err().unwrap();
    assert_eq!(format!("error: {err:#}\n"), want);
    let one = run(1).unwrap();
    assert!(one.new_words().len() >= 2, "{:?}", one.words);
}

#[test]
fn bench_train_profile_breaks_a_step_down_by_operation() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "train",
        "--preset",
        "small",
        "--batch",
        "2",
        "--context",
        "16",
    ];
    let out = nanotune(
        &[&args[..], &["--steps", "1", "--device", "cpu", "--profile"]].concat(),
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    // Both phase lines, every operation with its calls per step, and the sums.
    for line in [
        "fused CPU kernels",
        "plain candle ops",
        "| sum |",
        "\"tokens_per_s\"",
    ] {
        assert!(stdout.contains(line), "no '{line}' in:\n{stdout}");
    }
    for (op, calls) in [
        ("LayerNorm", 7),
        ("attention (scores, mask, softmax, values)", 3),
    ] {
        assert!(
            stdout.contains(&format!("| {op} | {calls} |")),
            "{op}:\n{stdout}"
        );
    }
    // Every figure is a number; the big product and the optimiser take measurable time.
    for op in [
        "GELU",
        "cross-entropy",
        "clipping + AdamW",
        "MLP down (4c -> c)",
    ] {
        let row = stdout.lines().find(|l| l.starts_with(&format!("| {op} |")));
        let cells: Vec<&str> = row
            .unwrap_or_else(|| panic!("{op}:\n{stdout}"))
            .split('|')
            .collect();
        let plain: Vec<f64> = cells[3..5]
            .iter()
            .map(|c| c.trim().parse().unwrap())
            .collect();
        assert!(plain.iter().all(|ms| *ms >= 0.0), "{op}:\n{stdout}");
        if op == "MLP down (4c -> c)" || op == "clipping + AdamW" {
            assert!(plain[0] > 0.0, "{op} took no time:\n{stdout}");
        }
    }
}
