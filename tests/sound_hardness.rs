//! The sound side under hostile input: mutated real MIDI files through every reader (`describe`,
//! `render` to WAV, `play` to a listener that renders what it receives), the crafted files of a
//! key held for days, a 100,000-note chord and a piece of three hours, and a listener whose
//! playback fails. `nanotune bench mutate` runs thousands of such cases, each in a process of its
//! own; these run a few hundred in this one, where any panic fails the test with its case.

mod common;

use clap::Parser;
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
use nanotune::cli::Cli;
use nanotune::music::midi::{read_midi, write_midi};
use nanotune::music::mutate::mutate;
use nanotune::sound::format::Format as AudioFormat;
use nanotune::sound::listen::protocol::{encode, Decoder, Reply, Request};
use nanotune::sound::listen::{Address, Client, Listener, Log, Serving};
use nanotune::sound::piece::Piece;
use nanotune::sound::playback::{sounding_seconds, Clock, Playback};
use nanotune::sound::timed::{self, music_seconds, LONGEST_NOTE_SECONDS};
use nanotune::sound::voice::Voice;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Mutated cases run here (the bench runs thousands).
const CASES: usize = 120;
/// The rate the listener's stand-in sound card renders at (low: the work per piece is the
/// same code, a quarter of the frames).
const CARD_RATE: u32 = 11_025;

/// A sound card's worth of work without one: every piece is rendered whole, block by block, as
/// the card's worker thread does, and a piece titled "fail" makes it panic.
struct RenderingPlayback {
    clock: Clock,
    pieces: Arc<Mutex<Vec<String>>>,
}

impl Playback for RenderingPlayback {
    fn play(&mut self, piece: &Piece) -> anyhow::Result<()> {
        self.clock.stop();
        if piece.title == "fail" {
            panic!("a playback that fails");
        }
        let format = AudioFormat::new(CARD_RATE, 1)?;
        let mut renderer = Voice::Builtin.renderer(&piece.timed_notes(), format)?;
        let mut buffer = vec![0.0f32; 4096];
        let mut frames = 0u64;
        loop {
            let n = renderer.fill(&mut buffer);
            if n == 0 {
                break;
            }
            frames += n as u64;
        }
        assert_eq!(frames, renderer.total_frames());
        self.pieces.lock().unwrap().push(piece.title.clone());
        self.clock.start(sounding_seconds(piece));
        Ok(())
    }
    fn stop(&mut self) {
        self.clock.stop();
    }
    fn set_paused(&mut self, paused: bool) {
        self.clock.set_paused(paused);
    }
    fn is_paused(&self) -> bool {
        self.clock.is_paused()
    }
    fn set_volume(&mut self, _: f32) {}
    fn volume(&self) -> f32 {
        1.0
    }
    fn seek(&mut self, seconds: f64) {
        self.clock.seek(seconds);
    }
    fn position_seconds(&self) -> f64 {
        self.clock.position()
    }
    fn length_seconds(&self) -> f64 {
        self.clock.length()
    }
    fn is_playing(&self) -> bool {
        self.clock.is_running()
    }
    fn failure(&self) -> Option<String> {
        None
    }
    fn describe(&self) -> String {
        "renders everything".into()
    }
}

/// A listener in this process whose playback renders, on a socket in a temporary folder.
struct RenderingListener {
    _serving: Serving,
    socket: PathBuf,
    played: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl RenderingListener {
    fn start() -> RenderingListener {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("l.sock");
        let played = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink: Log = {
            let log = log.clone();
            Arc::new(move |line: &str| log.lock().unwrap().push(line.to_string()))
        };
        let playback = RenderingPlayback {
            clock: Clock::default(),
            pieces: played.clone(),
        };
        let serving =
            Listener::bind(Some(&socket), None)
                .unwrap()
                .serve(Box::new(playback), None, sink);
        RenderingListener {
            _serving: serving,
            socket,
            played,
            log,
            _dir: dir,
        }
    }
}

/// Real files to mutate: every MIDI file of the Debian packages (piano lessons with pedal and
/// velocities, game music in many tracks) and corpus pieces written as MIDI.
fn sources() -> Option<Vec<(String, Vec<u8>)>> {
    let dir = common::debian_midi_dir()?;
    let mut out: Vec<(String, Vec<u8>)> = common::midi_files(&dir)
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    let corpus = common::corpus_slice(&common::corpus_archive()?, 40);
    for (index, span) in corpus.train.pieces.iter().enumerate() {
        let (words, _) = nanotune::music::words::Vocab.decode(corpus.train.piece(index));
        let notes = nanotune::music::notes::from_words(&words).notes;
        out.push((span.title.clone(), write_midi(&notes, 100.0).unwrap()));
    }
    Some(out)
}

fn run_cli(args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let mut all = vec![std::ffi::OsStr::new("nanotune")];
    all.extend_from_slice(args);
    nanotune::cli::run(Cli::try_parse_from(all)?)
}

#[test]
fn mutated_real_files_never_panic_in_any_reader() {
    let Some(sources) = sources() else { return };
    let listener = RenderingListener::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut rendered, mut refused, mut played) = (0, 0, 0);
    let mut slowest = (0.0f64, String::new());
    for case in 0..CASES {
        let (name, bytes) = &sources[case % sources.len()];
        let (kind, mutated) = mutate(bytes, &mut StdRng::seed_from_u64(case as u64));
        let path = dir.path().join(format!("case{case}.mid"));
        std::fs::write(&path, &mutated).unwrap();
        let wav = dir.path().join(format!("case{case}.wav"));
        let about = format!("case {case} ({}, from {name})", kind.name());
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let described = run_cli(&["describe".as_ref(), path.as_os_str()]);
            let render = run_cli(&[
                "render".as_ref(),
                path.as_os_str(),
                "-o".as_ref(),
                wav.as_os_str(),
            ]);
            let sent = run_cli(&[
                "play".as_ref(),
                path.as_os_str(),
                "--listener".as_ref(),
                listener.socket.as_os_str(),
            ]);
            (described, render, sent)
        }));
        let (described, render, sent) =
            outcome.unwrap_or_else(|_| panic!("{about}: a reader panicked"));
        let seconds = started.elapsed().as_secs_f64();
        if seconds > slowest.0 {
            slowest = (seconds, about.clone());
        }
        match render {
            Ok(()) => {
                rendered += 1;
                // A whole WAV file, as long as the voice says, and within the cap.
                let notes = timed::from_midi(&read_midi(&mutated).unwrap(), None);
                let reader = hound::WavReader::open(&wav).unwrap();
                let expected = (Voice::Builtin.length_seconds(&notes) * 44_100.0).ceil() as u32;
                assert_eq!(reader.duration(), expected, "{about}");
                assert!(
                    music_seconds(&notes) <= timed::LONGEST_PIECE_SECONDS,
                    "{about}"
                );
                // Sent to the listener too, which rendered it.
                assert!(sent.is_ok(), "{about}: {sent:?}");
                played += 1;
            }
            Err(e) => {
                refused += 1;
                let line = format!("{e:#}");
                assert!(!line.contains('\n'), "{about}: {line}");
                assert!(!wav.exists(), "{about}: a refused render left a file");
                // What render refuses, describe or play refuse too (or describe reads it).
                assert!(sent.is_err() || described.is_ok(), "{about}");
            }
        }
        let _ = std::fs::remove_file(&wav);
    }
    eprintln!(
        "{CASES} cases: {rendered} rendered, {refused} refused, {played} played by the \
         listener; slowest {:.2} s ({})",
        slowest.0, slowest.1
    );
    assert_eq!(listener.played.lock().unwrap().len(), played);
    assert!(rendered > CASES / 4 && refused > 0, "{rendered} {refused}");
}

// ---- Crafted files ------------------------------------------------------------------------

fn event(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
    TrackEvent {
        delta: u28::new(delta),
        kind,
    }
}

fn key(delta: u32, down: bool, channel: u8, key: u8) -> TrackEvent<'static> {
    let message = if down {
        MidiMessage::NoteOn {
            key: u7::new(key),
            vel: u7::new(100),
        }
    } else {
        MidiMessage::NoteOff {
            key: u7::new(key),
            vel: u7::new(0),
        }
    };
    event(
        delta,
        TrackEventKind::Midi {
            channel: u4::new(channel),
            message,
        },
    )
}

fn file(ppq: u16, mut events: Vec<TrackEvent<'static>>) -> Vec<u8> {
    events.push(event(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)));
    let mut out = Vec::new();
    Smf {
        header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(ppq))),
        tracks: vec![events],
    }
    .write_std(&mut out)
    .unwrap();
    out
}

/// One note held about a million quarter notes at the slowest tempo a file can name.
fn held_for_days() -> Vec<u8> {
    file(
        1,
        vec![
            event(
                0,
                TrackEventKind::Meta(MetaMessage::Tempo(u24::new(0xFF_FFFF))),
            ),
            key(0, true, 0, 60),
            key(1_000_000, false, 0, 60),
        ],
    )
}

/// 100,000 notes struck at once and held 500 s.
fn huge_chord() -> Vec<u8> {
    let mut events: Vec<_> = (0..100_000)
        .map(|i| key(0, true, (i % 9) as u8, 21 + (i % 88) as u8))
        .collect();
    events.extend((0..100_000).map(|i| {
        key(
            if i == 0 { 1000 * 480 } else { 0 },
            false,
            (i % 9) as u8,
            21 + (i % 88) as u8,
        )
    }));
    file(480, events)
}

/// A note three hours in (at 120 bpm).
fn three_hours() -> Vec<u8> {
    file(
        480,
        vec![
            key(0, true, 0, 60),
            key(480, false, 0, 60),
            key(21_600 * 480, true, 0, 64),
            key(480, false, 0, 64),
        ],
    )
}

fn nanotune(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .args(args)
        .env_remove("NANOTUNE_SOUNDFONT")
        .output()
        .unwrap()
}

/// The figure before `what` in `text` ("30.0 s of music" gives 30.0).
fn seconds_before(text: &str, what: &str) -> f64 {
    let at = text
        .find(what)
        .unwrap_or_else(|| panic!("no {what:?} in {text}"));
    text[..at]
        .trim_end()
        .rsplit([' ', ','])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_key_held_for_days_sounds_as_long_as_a_string_rings_in_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.mid");
    std::fs::write(&path, held_for_days()).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 1000);
    let wav = dir.path().join("held.wav");
    let render = nanotune(&[
        "render".as_ref(),
        path.as_os_str(),
        "-o".as_ref(),
        wav.as_os_str(),
    ]);
    assert!(render.status.success(), "{render:?}");
    let rendered = String::from_utf8_lossy(&render.stdout);
    let describe = nanotune(&["describe".as_ref(), path.as_os_str()]);
    let described = String::from_utf8_lossy(&describe.stdout);
    let piece = read_midi(&std::fs::read(&path).unwrap()).unwrap();
    assert!(piece.notes[0].end > 1e6 * 0.99);
    let want = LONGEST_NOTE_SECONDS;
    assert_eq!(seconds_before(&rendered, "s of music"), want);
    assert_eq!(seconds_before(&described, "s at the file's tempo"), want);
    assert_eq!(Piece::from_midi("held", piece).length_seconds(), want);
}

#[test]
fn a_hundred_thousand_notes_at_once_render_in_bounded_time_and_voices() {
    let notes = timed::from_midi(&read_midi(&huge_chord()).unwrap(), None);
    assert_eq!(notes.len(), 100_000);
    let started = Instant::now();
    let mut renderer = Voice::Builtin
        .renderer(&notes, AudioFormat::STEREO_44K)
        .unwrap();
    let mut buffer = vec![0.0f32; 8192];
    while renderer.fill(&mut buffer) > 0 {}
    // One voice a key: the 88 keys of the chord.
    assert_eq!(renderer.most_voices(), 88);
    eprintln!(
        "100,000-note chord: {:.2} s to render",
        started.elapsed().as_secs_f64()
    );
    if let Some(font) = common::gm_soundfont() {
        let voice = Voice::SoundFont(nanotune::sound::soundfont::SoundFont::load(&font).unwrap());
        let started = Instant::now();
        let mut renderer = voice.renderer(&notes, AudioFormat::STEREO_44K).unwrap();
        while renderer.fill(&mut buffer) > 0 {}
        assert!(renderer.failure().is_none());
        eprintln!(
            "with the SoundFont: {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn a_piece_over_two_hours_is_refused_in_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three hours.mid");
    std::fs::write(&path, three_hours()).unwrap();
    let wav = dir.path().join("x.wav");
    for args in [
        vec![
            "render".as_ref(),
            path.as_os_str(),
            "-o".as_ref(),
            wav.as_os_str(),
        ],
        vec![
            "play".as_ref(),
            path.as_os_str(),
            "--wav".as_ref(),
            wav.as_os_str(),
        ],
    ] {
        let out = nanotune(&args);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("three hours.mid: it lasts 3 h 0 min, longer than the 2 h 0 min"),
            "{err}"
        );
        assert!(!wav.exists());
    }
}

#[test]
fn render_play_and_describe_give_the_same_seconds_for_real_files() {
    let Some(dir) = common::debian_midi_dir() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let wav = out.path().join("x.wav");
    let files = common::midi_files(&dir);
    for path in files.iter().step_by(10) {
        let render = nanotune(&[
            "render".as_ref(),
            path.as_os_str(),
            "-o".as_ref(),
            wav.as_os_str(),
        ]);
        let play = nanotune(&[
            "play".as_ref(),
            path.as_os_str(),
            "--wav".as_ref(),
            wav.as_os_str(),
        ]);
        let describe = nanotune(&["describe".as_ref(), path.as_os_str()]);
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
        let seconds = seconds_before(&text(&render), "s of music");
        assert_eq!(
            seconds_before(&text(&play), "s of music"),
            seconds,
            "{}",
            path.display()
        );
        assert_eq!(
            seconds_before(&text(&describe), "s at the file's tempo"),
            seconds,
            "{}",
            path.display()
        );
        let piece = read_midi(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(
            format!("{:.1}", Piece::from_midi("x", piece).length_seconds()),
            format!("{seconds:.1}")
        );
    }
}

// ---- The listener ---------------------------------------------------------------------------

fn small_piece(title: &str) -> Piece {
    let notes: Vec<nanotune::music::notes::Note> = (0..8)
        .map(|i| nanotune::music::notes::Note {
            onset: 2 * i,
            pitch: 60 + i as u8,
            duration: 2,
        })
        .collect();
    Piece::from_grid(title, &notes, 120.0)
}

/// Sends `request` on a raw connection and reads replies until one for `id` (or 5 s).
fn ask(socket: &Path, request: &Request, id: u64) -> Reply {
    let mut conn = std::os::unix::net::UnixStream::connect(socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    conn.write_all(&encode(request)).unwrap();
    let mut decoder = Decoder::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = conn.read(&mut buf) {
            decoder.push(&buf[..n]);
        }
        while let Ok(Some(reply)) = decoder.next_message::<Reply>() {
            match &reply {
                Reply::Received { id: got, .. } | Reply::Refused { id: got, .. } if *got == id => {
                    return reply
                }
                _ => {}
            }
        }
    }
    panic!("no answer for piece {id}");
}

#[test]
fn a_listener_whose_playback_fails_refuses_that_piece_and_plays_the_next() {
    let listener = RenderingListener::start();
    let address = Address::Unix(listener.socket.clone());
    // A panic inside the playback: the piece is refused, the connection and the listener live.
    let mut client = Client::connect(&address).unwrap();
    let id = client.send_piece(&small_piece("fail")).unwrap();
    let err = client
        .wait_received(id, Duration::from_secs(5))
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("the listener failed to play it: a playback that fails"),
        "{err:#}"
    );
    let id = client.send_piece(&small_piece("next")).unwrap();
    client.wait_received(id, Duration::from_secs(5)).unwrap();
    drop(client);
    // A piece too long to play, sent past the client's own check: refused, and dropped.
    let long = Piece::from_midi("long", read_midi(&three_hours()).unwrap());
    let reply = ask(&listener.socket, &Request::Play { id: 7, piece: long }, 7);
    assert!(
        matches!(&reply, Reply::Refused { message, .. } if message.contains("longer than the 2 h 0 min")),
        "{reply:?}"
    );
    // Every later client is served, nothing is poisoned.
    for round in 0..3 {
        let mut client = Client::connect(&address).unwrap();
        let id = client
            .send_piece(&small_piece(&format!("after {round}")))
            .unwrap();
        client.wait_received(id, Duration::from_secs(5)).unwrap();
    }
    assert_eq!(
        *listener.played.lock().unwrap(),
        ["next", "after 0", "after 1", "after 2"]
    );
    assert!(listener
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("refused")));
}
