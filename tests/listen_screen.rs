//! The screen in tmux sends its sound to a real `nanotune listen`: with `NANOTUNE_LISTENER` set,
//! the status line says so, Enter generates, space sends the piece, and the listener saves it;
//! the piece it saved encodes to the same words as the one the screen saves itself.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux runs");
    assert!(out.status.success(), "tmux {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Session(String);

impl Session {
    fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.0])
    }
    fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(start.elapsed() < timeout, "waited for {text:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

/// The listener process, killed when the test ends however it ends.
struct Listener(Child);

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn space_on_the_screen_sends_the_piece_to_the_listener() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is missing (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let socket = dir.path().join("laptop.sock");
    let saved = dir.path().join("received");
    let _listener = Listener(
        Command::new(env!("CARGO_BIN_EXE_nanotune"))
            .args(["listen", "--no-sound", "--socket"])
            .arg(&socket)
            .arg("--save-dir")
            .arg(&saved)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the listener did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let checkpoints = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
    let session = Session(format!("nanotune-listen-{}", std::process::id()));
    tmux(
        &[
            "new-session",
            "-d",
            "-s",
            &session.0,
            "-x",
            "120",
            "-y",
            "32",
            "-c",
        ]
        .iter()
        .copied()
        .chain([dir.path().to_str().unwrap(), "bash --norc --noprofile"])
        .collect::<Vec<_>>(),
    );
    let cmd = format!(
        "env -u XDG_CONFIG_HOME -u XDG_DATA_HOME HOME={} NANOTUNE_LISTENER={} {} --checkpoint {}; echo EXIT=$?",
        home.path().display(),
        socket.display(),
        env!("CARGO_BIN_EXE_nanotune"),
        checkpoints.display()
    );
    tmux(&["send-keys", "-t", &session.0, &cmd, "Enter"]);
    let screen = session.wait_for("Ready", Duration::from_secs(30));
    assert!(screen.contains("listener via SSH"), "{screen}");

    tmux(&["send-keys", "-t", &session.0, "Enter"]);
    session.wait_for("Generation complete!", Duration::from_secs(60));
    tmux(&["send-keys", "-t", &session.0, "Space"]);
    let start = Instant::now();
    let file = loop {
        let found = std::fs::read_dir(&saved)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path());
        if let Some(f) = found.filter(|f| f.extension().is_some_and(|e| e == "mid")) {
            break f;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the listener saved nothing:\n{}",
            session.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // The playhead follows the listener's clock.
    session.wait_for("playing ", Duration::from_secs(5));
    // The same piece saved on the server side (`s`): both encode to the same words.
    tmux(&["send-keys", "-t", &session.0, "s"]);
    session.wait_for("saved nanotune-1.mid", Duration::from_secs(10));
    let encode = |f: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_nanotune"))
            .arg("encode")
            .arg(f)
            .output()
            .unwrap();
        assert!(out.status.success(), "encode {}", f.display());
        String::from_utf8(out.stdout).unwrap()
    };
    let received = encode(&file);
    assert!(received.split_whitespace().count() > 300, "{received}");
    assert_eq!(received, encode(&dir.path().join("nanotune-1.mid")));
    tmux(&["send-keys", "-t", &session.0, "q"]);
    session.wait_for("EXIT=0", Duration::from_secs(10));
}
