//! The README's recipe for real: `nanotune listen` on the "laptop" end, `ssh -R` to an sshd of
//! this test's own on 127.0.0.1, and `nanotune play` on the "server" end finding the forwarded
//! socket at its default path by itself. Recipe: ../shared/ssh/README.md.

mod common;

use nanotune::music::read::{piece_from_midi, ReadReport};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// What this test set up, taken down again even when it fails: the sshd and the listener are
/// killed by their pids, the key leaves ~/.ssh/authorized_keys, the forwarded socket is removed.
struct Rig {
    sshd: Option<Child>,
    listen: Option<Child>,
    /// An ssh session holding the forward open, where one is.
    ssh: Option<Child>,
    authorized_keys: PathBuf,
    /// Whether authorized_keys was there before (if not, it goes again).
    keys_existed: bool,
    key_line: String,
    server_socket: PathBuf,
    /// The test's folder: keys, sshd's config and log, the laptop's socket.
    dir: tempfile::TempDir,
    port: u16,
    /// This machine's user, whom the sshd lets in with the test's key.
    user: String,
    /// The "server" user's name as nanotune sees it there (unique to this run).
    server_user: String,
    /// This rig's turn, held until it is taken down (after its key is out: dropped last).
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for child in [self.ssh.as_mut(), self.sshd.as_mut(), self.listen.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(text) = std::fs::read_to_string(&self.authorized_keys) {
            let kept: String = text
                .lines()
                .filter(|l| l.trim() != self.key_line.trim())
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = if kept.is_empty() && !self.keys_existed {
                std::fs::remove_file(&self.authorized_keys)
            } else {
                std::fs::write(&self.authorized_keys, kept)
            };
        }
        let _ = std::fs::remove_file(&self.server_socket);
    }
}

fn tool_missing(what: &str) -> bool {
    let found = Path::new(what).exists()
        || Command::new("sh")
            .args(["-c", &format!("command -v {what}")])
            .output()
            .is_ok_and(|o| o.status.success());
    if found {
        return false;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing (CI must have openssh-server and openssh-client: see .ci/run)");
    }
    eprintln!("SKIPPED: {what} is not installed (apt-get install openssh-server openssh-client)");
    true
}

fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `command`, killing it (by its pid) after `limit`.
fn run_for(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn words(path: &Path) -> Vec<nanotune::music::words::Word> {
    piece_from_midi(&std::fs::read(path).unwrap(), &mut ReadReport::default()).unwrap()
}

/// One rig at a time: each adds its key to, and takes it out of, the one authorized_keys.
static ONE_RIG: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Rig {
    /// An sshd of the test's own on 127.0.0.1 that lets this user in with a key of the test's;
    /// `None` (the test skipped) where OpenSSH is missing outside CI.
    fn start() -> Option<Rig> {
        if tool_missing(SSHD) || tool_missing("ssh") || tool_missing("ssh-keygen") {
            return None;
        }
        let turn = ONE_RIG
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["hostkey", "userkey"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(d.join(key)));
        }
        let user = String::from_utf8(run(Command::new("id").arg("-un")).stdout)
            .unwrap()
            .trim()
            .to_string();
        let home = PathBuf::from(std::env::var("HOME").unwrap());
        let ssh_dir = home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        // The default socket path (/tmp/nanotune-$USER.sock) there is this test's own.
        let server_user = format!("ntssh{}{}", std::process::id(), free_port());
        let server_socket = PathBuf::from(format!("/tmp/nanotune-{server_user}.sock"));
        let mut rig = Rig {
            sshd: None,
            listen: None,
            ssh: None,
            authorized_keys: ssh_dir.join("authorized_keys"),
            keys_existed: ssh_dir.join("authorized_keys").exists(),
            key_line: std::fs::read_to_string(d.join("userkey.pub")).unwrap(),
            server_socket,
            port: free_port(),
            user,
            server_user,
            dir,
            _turn: turn,
        };
        {
            use std::io::Write;
            let mut keys = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&rig.authorized_keys)
                .unwrap();
            writeln!(keys, "{}", rig.key_line.trim()).unwrap();
        }
        let _ = std::fs::create_dir_all("/run/sshd");
        let d = rig.dir.path().to_path_buf();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n\
                 AllowStreamLocalForwarding yes\nStreamLocalBindUnlink yes\n",
                rig.port,
                d.join("hostkey").display(),
                d.join("sshd.pid").display()
            ),
        )
        .unwrap();
        rig.sshd = Some(
            Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(d.join("sshd.log"))
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", rig.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start: {}", log(&d));
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(rig)
    }

    /// The README's ssh command from the laptop: the server's default socket forwarded back to
    /// `laptop_socket`, running `remote` there.
    fn ssh(&self, laptop_socket: &Path, remote: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.arg("-i")
            .arg(self.dir.path().join("userkey"))
            .args(["-p", &self.port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
            .args([
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "StreamLocalBindUnlink=yes",
            ])
            .arg("-R")
            .arg(format!(
                "{}:{}",
                self.server_socket.display(),
                laptop_socket.display()
            ))
            .arg(format!("{}@127.0.0.1", self.user))
            .arg(remote);
        ssh
    }

    /// `nanotune listen` on the laptop end with `args`, saving into the test's `saved`; its
    /// output lines.
    fn listen(
        &mut self,
        args: &[&std::ffi::OsStr],
    ) -> std::io::Lines<std::io::BufReader<std::process::ChildStdout>> {
        let d = self.dir.path();
        let mut listen = Command::new(env!("CARGO_BIN_EXE_nanotune"))
            .arg("listen")
            .arg("--socket")
            .arg(d.join("laptop.sock"))
            .arg("--save-dir")
            .arg(d.join("saved"))
            .arg("--no-sound")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(listen.stdout.take().unwrap()).lines();
        self.listen = Some(listen);
        let first = lines.next().unwrap().unwrap();
        assert!(first.starts_with("listening on"), "{first}");
        lines
    }
}

#[test]
fn the_readme_ssh_recipe_carries_pieces_to_the_listener() {
    let Some(mut rig) = Rig::start() else {
        return;
    };
    let Some(midi) = common::debian_midi_dir() else {
        return;
    };
    let files: Vec<PathBuf> = common::midi_files(&midi).into_iter().take(2).collect();
    let d = rig.dir.path().to_path_buf();
    // The laptop end.
    let laptop_socket = d.join("laptop.sock");
    let saved = d.join("saved");
    let mut lines = rig.listen(&[]);

    // The recipe's ssh command, twice: the second replaces the socket the first left behind.
    for file in &files {
        let remote = format!(
            "stat -c %a {sock} && USER={user} {bin} play {file}",
            sock = rig.server_socket.display(),
            user = rig.server_user,
            bin = env!("CARGO_BIN_EXE_nanotune"),
            file = file.display()
        );
        let out = run_for(
            &mut rig.ssh(&laptop_socket, &remote),
            Duration::from_secs(60),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ssh: {stdout}{}\nsshd: {}",
            String::from_utf8_lossy(&out.stderr),
            log(&d)
        );
        // sshd made the forwarded socket private to the user.
        assert!(stdout.starts_with("600\n"), "{stdout}");
        assert!(stdout.contains("sent "), "{stdout}");
        assert!(
            stdout.contains(&format!("listener at {}", rig.server_socket.display())),
            "found at the default path: {stdout}"
        );
        assert!(stdout.contains("saved there as"), "{stdout}");
    }
    for file in &files {
        let name = format!("{}.mid", file.file_stem().unwrap().to_string_lossy());
        assert_eq!(words(&saved.join(&name)), words(file), "{name}");
    }
    let received: Vec<String> = lines
        .by_ref()
        .map_while(Result::ok)
        .filter(|l| l.contains("saved"))
        .take(files.len())
        .collect();
    assert_eq!(received.len(), files.len(), "{received:?}");
}

fn log(d: &Path) -> String {
    std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
}

#[test]
fn a_phrase_played_on_the_laptop_crosses_ssh_and_its_answer_comes_back() {
    use common::listener::phrase_file;
    use common::screen::{app, choose_action, run_until, shipped_runtime_to};
    use nanotune::music::notes::from_words;
    use nanotune::sound::listen::{Address, Client};
    use nanotune::sound::output::Output;
    use nanotune::tui::app::{Action, ControlId, GenState};

    let Some(mut rig) = Rig::start() else {
        return;
    };
    let d = rig.dir.path().to_path_buf();
    // The laptop: a listener hearing a real file's bars as its keyboard.
    let (file, phrases) = phrase_file(&d, &[(1, 2)]);
    let lines = rig.listen(&["--midi-in-file".as_ref(), file.as_os_str()]);
    let said: Vec<String> = lines.take(4).map_while(Result::ok).collect();
    assert!(
        said.iter().any(|l| l.starts_with("phrases from")),
        "{said:?}"
    );
    // The README's ssh command, held open while the screen on the "server" works.
    let session = rig
        .ssh(&d.join("laptop.sock"), "sleep 120")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    rig.ssh = Some(session);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !rig.server_socket.exists() {
        assert!(
            Instant::now() < deadline,
            "no forwarded socket: {}",
            log(&d)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The screen on the server end, its sound to the listener through the forward.
    let client = Client::connect(&Address::Unix(rig.server_socket.clone())).unwrap();
    let mut runtime = shipped_runtime_to(Output::Listener(client));
    let mut a = app();
    // The answer plays as it is made: its parts cross the forward while the model writes.
    a.play_while_made = true;
    a.controls[ControlId::Bpm].value = 240.0;
    a.controls[ControlId::Tokens].value = 400.0;
    choose_action(&mut a, &mut runtime, Action::Answer);
    run_until(&mut a, &mut runtime, Duration::from_secs(60), |a| {
        matches!(a.gen, GenState::Complete { .. }) && a.playing.is_some()
    });
    assert_eq!(
        from_words(&a.piece().words[..a.piece().prompt_len]).notes,
        phrases[0]
    );
    // The listener saved the phrase as the file's notes on the grid, and the answer.
    let saved = d.join("saved");
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let names: Vec<String> = std::fs::read_dir(&saved)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(name) = names.iter().find(|n| n.starts_with("phrase 1 continued")) {
            break saved.join(name);
        }
        assert!(Instant::now() < deadline, "no answer saved: {names:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let phrase_notes = from_words(&words(&saved.join("phrase 1.mid"))).notes;
    assert_eq!(phrase_notes, phrases[0]);
    assert_eq!(
        from_words(&words(&answer)).notes,
        from_words(&a.piece().words).notes
    );
}
