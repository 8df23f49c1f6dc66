//! The `nanotune` binary as a user runs it: encode, decode, prepare, and their errors.

mod common;

use nanotune::dataset::{Dataset, Split};
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
    for cmd in ["encode", "decode", "prepare", "bench", "compare"] {
        assert!(text(&out.stdout).contains(cmd), "--help lists {cmd}");
        let help = nanotune(&[cmd, "--help"], dir.path());
        assert!(help.status.success(), "{cmd} --help");
        assert!(
            text(&help.stdout).len() > 200,
            "{cmd} --help says something useful"
        );
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
