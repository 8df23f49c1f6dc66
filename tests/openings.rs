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
