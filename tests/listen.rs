//! `nanotune listen` and the server side, both ends in one test run over sockets in temporary
//! folders (CI has no sound card: the listener keeps time without one, and saves).

mod common;

use common::listener::{small_piece, TestListener, CONFIRM};

use nanotune::music::read::{piece_from_midi, ReadReport};
use nanotune::sound::listen::protocol::{encode, Request, VERSION};
use nanotune::sound::listen::{locate_listener_at, Address, Client, Listener};
use nanotune::sound::output::Output;
use nanotune::sound::piece::Piece;
use nanotune::sound::playback::{Playback, SilentPlayback};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn words_of(path: &Path) -> Vec<nanotune::music::words::Word> {
    piece_from_midi(&std::fs::read(path).unwrap(), &mut ReadReport::default()).unwrap()
}

#[test]
fn every_real_midi_file_played_is_saved_as_the_same_words() {
    let Some(dir) = common::debian_midi_dir() else {
        return;
    };
    let files = common::midi_files(&dir);
    assert!(files.len() >= 80, "{} files", files.len());
    let listener = TestListener::start();
    let mut client = listener.client();
    let mut notes = 0;
    for path in &files {
        let title = path.file_stem().unwrap().to_string_lossy().into_owned();
        let piece = Piece::read_midi_file(&title, &std::fs::read(path).unwrap()).unwrap();
        let id = client.send_piece(&piece).unwrap();
        let received = client.wait_received(id, CONFIRM).unwrap();
        assert_eq!(received.notes, piece.score.notes.len());
        assert_eq!(received.save_error, None);
        let saved = PathBuf::from(received.saved.unwrap());
        assert_eq!(saved.parent(), Some(listener.saved.as_path()));
        assert_eq!(words_of(&saved), words_of(path), "{}", path.display());
        notes += received.notes;
    }
    assert!(notes > 10_000, "{notes} notes");
    assert_eq!(
        std::fs::read_dir(&listener.saved).unwrap().count(),
        files.len()
    );
    assert_eq!(
        listener.serving.as_ref().unwrap().pieces(),
        files.len() as u64
    );
}

#[test]
fn the_playhead_follows_the_listeners_clock() {
    let listener = TestListener::start();
    let mut client = listener.client();
    assert!(client.plays_on().contains("no sound card (test)"));
    assert_eq!(client.saves_to(), Some(listener.saved.to_str().unwrap()));
    let piece = small_piece("clock");
    // 24 notes of an eighth at 120 bpm: 6 s, plus the release.
    let id = client.send_piece(&piece).unwrap();
    client.wait_received(id, CONFIRM).unwrap();
    assert!(client.is_playing());
    assert!(
        (client.length_seconds() - 6.25).abs() < 1e-6,
        "{}",
        client.length_seconds()
    );
    std::thread::sleep(Duration::from_millis(300));
    let p = client.position_seconds();
    assert!((0.2..1.0).contains(&p), "{p}");

    assert!(client.toggle_pause());
    std::thread::sleep(Duration::from_millis(300));
    let held = client.position_seconds();
    std::thread::sleep(Duration::from_millis(300));
    // Paused on the listener: its reports (several a second) hold still.
    assert!(client.is_paused() && client.is_playing());
    assert!((client.position_seconds() - held).abs() < 1e-3);

    client.seek(4.0);
    assert!((client.position_seconds() - 4.0).abs() < 1e-3);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        (client.position_seconds() - 4.0).abs() < 1e-3,
        "the listener agrees"
    );
    client.set_volume(0.5);
    client.set_paused(false);
    std::thread::sleep(Duration::from_millis(400));
    let p = client.position_seconds();
    assert!((4.3..5.0).contains(&p), "{p}");
    assert_eq!(client.volume(), 0.5);

    client.seek(6.2);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!client.is_playing(), "the piece ended on the listener");
    let id = client.send_piece(&piece).unwrap();
    client.wait_received(id, CONFIRM).unwrap();
    client.stop();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!client.is_playing());
    assert_eq!(client.failure(), None);
}

/// A real file sent while it is "made", in parts: it begins playing at the first part, grows,
/// and is saved whole, the same words as the file; a part that reaches back before the point
/// where the piece was whole is refused; a sender that leaves mid-piece leaves what came saved.
#[test]
fn a_piece_sent_as_it_is_made_plays_from_its_first_part_and_is_saved_whole() {
    let listener = TestListener::start();
    let mut client = listener.client();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/new-piece.mid");
    let piece = Piece::read_midi_file("made", &std::fs::read(&path).unwrap()).unwrap();
    let last = piece.score.notes.last().unwrap().start;
    assert!(piece.score.notes.len() > 100 && last > 16.0, "{last}");
    // As a generation would hand it over: whole up to a point, later notes not there yet.
    let so_far = |until: f64| {
        piece.with_notes(
            piece
                .score
                .notes
                .iter()
                .filter(|n| n.start <= until)
                .copied()
                .collect(),
        )
    };
    let id = client.begin_piece(&so_far(2.0), 2.0).unwrap();
    listener.logged("\"made\" begins as it is made");
    std::thread::sleep(Duration::from_millis(150));
    assert!(client.is_playing());
    let at = client.position_seconds();
    assert!(at > 0.05, "it plays before it is whole: {at}");
    for settled in [5.5, 9.0, 13.25] {
        client.grow_piece(&so_far(settled), Some(settled)).unwrap();
    }
    client.grow_piece(&piece, None).unwrap();
    let received = client.wait_received(id, CONFIRM).unwrap();
    assert_eq!(received.notes, piece.score.notes.len());
    let saved = PathBuf::from(received.saved.unwrap());
    assert_eq!(words_of(&saved), words_of(&path));
    assert!(client.is_playing());

    // A sender that leaves mid-piece: what came is played and saved, cut off.
    client.begin_piece(&so_far(3.0), 3.0).unwrap();
    client.grow_piece(&so_far(7.0), Some(7.0)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(client);
    let line = listener.logged("(cut off: its sender left): saved");
    let saved = line.rsplit("saved ").next().unwrap();
    let kept = Piece::read_midi_file("x", &std::fs::read(saved).unwrap()).unwrap();
    let sent = piece.score.notes.iter().filter(|n| n.start < 7.0).count();
    assert_eq!(kept.score.notes.len(), sent);

    // A part with a note before where the piece was whole: refused, and the listener goes on.
    let begin = encode(&Request::Begin {
        id: 9,
        piece: so_far(4.0),
        settled: 4.0,
    });
    let sneaked = encode(&Request::More {
        id: 9,
        part: piece.with_notes(piece.score.notes[..3].to_vec()),
        settled: Some(5.0),
    });
    let answer = send_raw(&listener.socket, &[begin, sneaked].concat());
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.contains("came after the piece was whole to 4"),
        "{answer}"
    );
    listener.logged("refused \"made\" cannot play");
    listener.good_piece_arrives("after a piece cut off");
}

/// A piece that cannot travel ends the one grown before it: what is grown after goes nowhere.
#[test]
fn a_piece_that_cannot_travel_ends_the_one_being_made_before_it() {
    let listener = TestListener::start();
    let mut client = listener.client();
    let first = small_piece("first");
    let id = client.begin_piece(&first, 2.0).unwrap();
    listener.logged("\"first\" begins as it is made");
    let notes: Vec<nanotune::music::notes::Note> = (0..100_001)
        .map(|i| nanotune::music::notes::Note {
            onset: i / 16,
            pitch: 21 + (i % 88) as u8,
            duration: 1,
        })
        .collect();
    let huge = Piece::from_grid("huge", &notes, 120.0);
    let err = client.begin_piece(&huge, 30_000.0).unwrap_err().to_string();
    assert!(err.contains("over the 100000 limit"), "{err}");
    // Growing now reaches no piece: the first is not made whole by the second's notes.
    client.grow_piece(&first, None).unwrap();
    assert!(client
        .wait_received(id, Duration::from_millis(500))
        .is_err());
}

#[test]
fn a_listener_that_goes_away_is_noticed_and_the_output_falls_back() {
    let mut listener = TestListener::start();
    let mut output = Output::Listener(listener.client());
    assert!(output.describe().starts_with("sound: listener via SSH ("));
    let playback = output.playback().unwrap();
    playback.play(&small_piece("gone")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(playback.is_playing());
    assert_eq!(output.check(), None);
    listener.serving.take().unwrap().stop();
    let deadline = Instant::now() + Duration::from_secs(3);
    let change = loop {
        if let Some(change) = output.check() {
            break change;
        }
        assert!(Instant::now() < deadline, "the client never noticed");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(change.contains("listener"), "{change}");
    assert!(!output.is_listener());
    // The socket went with the listener.
    assert!(!listener.socket.exists());
}

#[test]
fn the_socket_is_private_and_tcp_answers_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("l.sock");
    let listener = Listener::bind(Some(&socket), Some(0)).unwrap();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Nothing else was left in the folder (the socket is bound in a private one, then moved).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let tcp = listener.tcp_address().unwrap();
    assert!(tcp.ip().is_loopback(), "{tcp}");
    let serving = listener.serve(
        Box::new(SilentPlayback::new("t")),
        None,
        Arc::new(|_: &str| {}),
    );
    // A second listener on the same socket is refused; the first keeps it.
    let err = Listener::bind(Some(&socket), None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("already running"), "{err}");
    let client = Client::connect(&Address::Tcp(tcp.to_string())).unwrap();
    assert!(client.plays_on().contains("no sound card"));
    drop(client);
    // This machine's other addresses do not reach it.
    match other_local_address() {
        Some(ip) => {
            let there = std::net::SocketAddr::new(ip, tcp.port());
            assert!(
                std::net::TcpStream::connect_timeout(&there, Duration::from_secs(1)).is_err(),
                "reached on {there}"
            );
        }
        None => eprintln!("NOTE: no non-loopback address here; only the bound address was checked"),
    }
    drop(serving);
    assert!(
        !socket.exists(),
        "the socket is removed when the listener stops"
    );
    // A stale socket (its listener died without removing it) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    drop(stale);
    assert!(socket.exists());
    let again = Listener::bind(Some(&socket), None).unwrap();
    assert_eq!(again.socket_path(), Some(socket.as_path()));
}

/// A non-loopback address of this machine, if it has one.
fn other_local_address() -> Option<std::net::IpAddr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    probe.connect("192.0.2.1:9").ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Writes `bytes` on a fresh connection, hangs up its sending side, and reads until the
/// listener closes; returns what the listener said after its hello.
fn send_raw(socket: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The listener may drop us before reading everything: a write error is expected then.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    answer
}

#[test]
fn bad_input_costs_the_sender_its_connection_and_nothing_else() {
    let listener = TestListener::start();
    let good = encode(&Request::Play {
        id: 1,
        piece: small_piece("good"),
    });
    let mut wrong_version = good.clone();
    wrong_version[3] = VERSION + 1;
    let mut huge = b"NTL".to_vec();
    huge.push(VERSION);
    huge.extend((1u64 << 60).to_be_bytes());
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "random bytes",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "not a nanotune message",
        ),
        (
            "http",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "not a nanotune message",
        ),
        (
            "wrong version",
            wrong_version,
            &format!("protocol version {}", VERSION + 1),
        ),
        (
            "a length of 2^60",
            huge,
            "a message of 1152921504606846976 bytes",
        ),
        (
            "hang-up mid-message",
            good[..good.len() / 2].to_vec(),
            "hung up in the middle of a message",
        ),
    ];
    for (what, bytes, expected) in &cases {
        let answer = send_raw(&listener.socket, bytes);
        let line = listener.logged(expected);
        assert!(line.contains("dropped"), "{what}: {line}");
        // The sender is told why, after the hello (except the one that hung up).
        if *what != "hang-up mid-message" {
            assert!(
                String::from_utf8_lossy(&answer).contains(expected),
                "{what}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        listener.good_piece_arrives(what);
    }
    // A piece with a note out of bounds is malformed too.
    let mut bad_note = String::from_utf8(good[12..].to_vec()).unwrap();
    bad_note = bad_note.replacen("[0.0,0.5,60,80,", "[0.0,0.5,200,80,", 1);
    assert!(bad_note.contains("200"), "{bad_note}");
    let mut framed = b"NTL".to_vec();
    framed.push(VERSION);
    framed.extend((bad_note.len() as u64).to_be_bytes());
    framed.extend(bad_note.as_bytes());
    send_raw(&listener.socket, &framed);
    listener.logged("a malformed message");
    listener.good_piece_arrives("after a bad note");
}

#[test]
fn a_second_client_at_once_is_turned_away() {
    let listener = TestListener::start();
    let mut first = listener.client();
    let err = Client::connect(&listener.address()).err().unwrap();
    assert!(format!("{err:#}").contains("busy"), "{err:#}");
    listener.logged("turned away, busy");
    // The first is still served.
    let id = first.send_piece(&small_piece("first")).unwrap();
    first.wait_received(id, CONFIRM).unwrap();
    drop(first);
    listener.logged("disconnected");
    listener.good_piece_arrives("second");
}

#[test]
fn a_title_is_never_a_path() {
    let listener = TestListener::start();
    for title in ["../../etc/x", "/etc/passwd", "..", "a/../../b", "\u{1b}[2J"] {
        let saved = listener.good_piece_arrives(title);
        assert_eq!(saved.parent(), Some(listener.saved.as_path()), "{title}");
    }
    // Only the save folder and the socket are in the listener's folder; nothing was written
    // beside or above it.
    let mut names: Vec<String> = std::fs::read_dir(listener.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["l.sock", "saved"]);
    let mut saved: Vec<String> = std::fs::read_dir(&listener.saved)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    saved.sort();
    assert_eq!(
        saved,
        [
            "2J.mid",
            "a_b.mid",
            "etc_passwd.mid",
            "etc_x.mid",
            "piece.mid"
        ]
    );
}

#[test]
fn mutated_messages_never_stop_the_listener() {
    use rand::{Rng, SeedableRng};
    let listener = TestListener::start();
    let good = encode(&Request::Play {
        id: 9,
        piece: small_piece("fuzz"),
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(2020);
    for _ in 0..150 {
        let mut m = good.clone();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..m.len());
            match rng.random_range(0..4) {
                0 => m[at] = rng.random(),
                1 => m.truncate(at.max(1)),
                2 => m.insert(at, rng.random()),
                // Keep the header whole, change the body: reaches the JSON and the checks.
                _ => {
                    let at = 12 + at % (m.len().saturating_sub(12)).max(1);
                    if at < m.len() {
                        m[at] = b"0123456789,[]{}\"-e."[rng.random_range(0..19)];
                    }
                }
            }
        }
        send_raw(&listener.socket, &m);
    }
    listener.good_piece_arrives("after the fuzz");
    assert!(listener
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("dropped")));
}

#[test]
fn locating_a_listener_goes_flag_then_variable_then_default() {
    let listener = TestListener::start();
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none.sock");
    let socket = listener.socket.to_str().unwrap();
    // Nothing at the default path: no listener, and no error.
    assert!(locate_listener_at(None, None, &nowhere).unwrap().is_none());
    // A stale socket at the default path: still none.
    drop(std::os::unix::net::UnixListener::bind(&nowhere).unwrap());
    assert!(locate_listener_at(None, None, &nowhere).unwrap().is_none());
    // The default path when a listener answers there.
    let found = locate_listener_at(None, None, &listener.socket)
        .unwrap()
        .unwrap();
    assert_eq!(found.address(), &listener.address());
    drop(found);
    listener.logged("client 1 (unix socket): disconnected");
    // The variable, before the default; the flag before both.
    let found = locate_listener_at(None, Some(socket.into()), &nowhere)
        .unwrap()
        .unwrap();
    drop(found);
    listener.logged("client 2 (unix socket): disconnected");
    let err = locate_listener_at(
        Some(nowhere.to_str().unwrap()),
        Some(socket.into()),
        &nowhere,
    )
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("no listener answers at --listener"),
        "{err:#}"
    );
    let err = locate_listener_at(
        None,
        Some(nowhere.to_str().unwrap().into()),
        &listener.socket,
    )
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("$NANOTUNE_LISTENER="),
        "{err:#}"
    );
    // An empty variable counts as unset.
    assert!(locate_listener_at(None, Some(" ".into()), &nowhere)
        .unwrap()
        .is_none());
    assert_eq!(
        Address::parse("localhost:7070").unwrap(),
        Address::Tcp("localhost:7070".into())
    );
    assert_eq!(
        Address::parse("run/x.sock").unwrap(),
        Address::Unix("run/x.sock".into())
    );
    assert_eq!(Address::parse("x:y").unwrap(), Address::Unix("x:y".into()));
}

#[test]
fn a_socket_of_another_user_is_refused() {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("SKIPPED: needs root to give a socket to another user");
        return;
    }
    let listener = TestListener::start();
    std::os::unix::fs::chown(&listener.socket, Some(65534), None).unwrap();
    let err = Client::connect(&listener.address()).err().unwrap();
    assert!(
        format!("{err:#}").contains("belongs to another user (uid 65534)"),
        "{err:#}"
    );
}

/// A `nanotune listen` child, killed by its pid when dropped.
struct ListenChild {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl ListenChild {
    fn start(args: &[&std::ffi::OsStr]) -> ListenChild {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nanotune"))
            .arg("listen")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ListenChild { child, lines }
    }

    /// The next output line containing `needle` (the lines before it are passed over).
    fn line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {needle:?} from nanotune listen: {e}"),
            }
        }
    }
}

impl Drop for ListenChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nanotune(args: &[&std::ffi::OsStr], listener_env: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nanotune"));
    command.args(args).env_remove("NANOTUNE_LISTENER");
    if let Some(path) = listener_env {
        command.env("NANOTUNE_LISTENER", path);
    }
    command.output().unwrap()
}

#[test]
fn play_sends_a_file_to_listen_and_the_saved_file_encodes_the_same() {
    let Some(midi) = common::debian_midi_dir() else {
        return;
    };
    let file = common::midi_files(&midi).into_iter().nth(3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("laptop.sock");
    let saved = dir.path().join("saved");
    let listen = ListenChild::start(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--save-dir".as_ref(),
        saved.as_os_str(),
        "--no-sound".as_ref(),
    ]);
    listen.line_with(&format!("listening on {} (mode 0600)", socket.display()));
    listen.line_with("no sound card (--no-sound): receiving and saving only");
    // By --listener, then by $NANOTUNE_LISTENER.
    for (flag, env) in [(true, None), (false, Some(socket.as_path()))] {
        let mut args = vec!["play".as_ref(), file.as_os_str()];
        if flag {
            args.extend(["--listener".as_ref(), socket.as_os_str()]);
        }
        let out = nanotune(&args, env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("sent "), "{stdout}");
        assert!(stdout.contains("saved there as"), "{stdout}");
        listen.line_with("saved");
    }
    let encode = |path: &Path| {
        let out = nanotune(&["encode".as_ref(), path.as_os_str()], None);
        assert!(out.status.success());
        out.stdout
    };
    let stem = file.file_stem().unwrap().to_string_lossy();
    for name in [format!("{stem}.mid"), format!("{stem}-2.mid")] {
        assert_eq!(encode(&saved.join(&name)), encode(&file), "{name}");
    }
    // A listener named but not there is an error for --listener, a note for the variable.
    let nowhere = dir.path().join("nowhere.sock");
    let out = nanotune(
        &[
            "play".as_ref(),
            file.as_os_str(),
            "--listener".as_ref(),
            nowhere.as_os_str(),
        ],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: no listener answers at --listener"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn midi_out_ports_are_listed_and_a_missing_port_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let list = nanotune(&["listen".as_ref(), "--list-midi-ports".as_ref()], None);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    let listing_error = String::from_utf8_lossy(&list.stderr).into_owned();
    if list.status.success() {
        // "MIDI output ports:", then "  0: Midi Through:Midi Through Port-0 14:0" or "  none";
        // the same for input.
        let headings: Vec<&str> = listed.lines().filter(|l| !l.starts_with("  ")).collect();
        assert_eq!(
            headings,
            ["MIDI output ports:", "MIDI input ports:"],
            "{listed}"
        );
        assert!(
            listed
                .lines()
                .filter(|l| l.starts_with("  "))
                .all(|l| l.trim() == "none" || l.split_once(": ").is_some()),
            "{listed}"
        );
    } else {
        // No MIDI system at all (no ALSA sequencer in a container): one line saying so.
        assert!(
            listing_error.starts_with("error: MIDI is not available here"),
            "{listing_error}"
        );
        assert_eq!(listing_error.lines().count(), 1);
    }
    // A port that is not there, to send to or to hear: one line, and no listening.
    let socket = dir.path().join("midi.sock");
    for (flag, port) in [
        ("--midi-out", "no-such-port-here"),
        ("--midi-in", "no-such-keyboard"),
    ] {
        let args = [
            "listen".as_ref(),
            "--socket".as_ref(),
            socket.as_os_str(),
            flag.as_ref(),
            port.as_ref(),
        ];
        let out = nanotune(&args, None);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let kind = if flag == "--midi-out" {
            "output"
        } else {
            "input"
        };
        assert!(
            stderr.starts_with(&format!("error: no MIDI port matches \"{port}\""))
                || stderr.starts_with(&format!("error: there are no MIDI {kind} ports"))
                || stderr.starts_with("error: MIDI is not available here"),
            "{stderr}"
        );
        assert!(!socket.exists(), "it stops before listening");
    }
}

#[test]
fn bench_listen_prints_the_median_and_p95() {
    let out = nanotune(
        &["bench", "listen", "--words", "400", "--reps", "20"].map(std::ffi::OsStr::new),
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("words,") && stdout.contains("bytes on the wire"),
        "{stdout}"
    );
    assert!(
        stdout.contains("median") && stdout.contains("p95"),
        "{stdout}"
    );
    assert!(stdout.contains("(20 sends)"), "{stdout}");
}
