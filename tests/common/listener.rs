//! A listener in the test's own process, on a socket in a temporary folder, its log kept: both
//! ends of the socket in one test.

use nanotune::music::notes::{canonicalise, from_words, Note, STEPS_PER_BAR};
use nanotune::music::read::piece_from_midi;
use nanotune::sound::listen::keys::{KeySettings, KeySource};
use nanotune::sound::listen::{Address, Client, Listener, Log, Serving};
use nanotune::sound::piece::Piece;
use nanotune::sound::playback::SilentPlayback;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CONFIRM: Duration = Duration::from_secs(10);

/// A listener in this process on a socket in a temporary folder, its log kept.
pub struct TestListener {
    // First, so it stops before its folder is removed.
    pub serving: Option<Serving>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub saved: PathBuf,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Log lines before this one have been matched by [`TestListener::logged`].
    seen: Mutex<usize>,
}

impl TestListener {
    pub fn start() -> TestListener {
        TestListener::start_with(None)
    }

    /// A listener that hears `keys` when a client asks.
    pub fn start_with(keys: Option<KeySettings>) -> TestListener {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("l.sock");
        let saved = dir.path().join("saved");
        std::fs::create_dir(&saved).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink: Log = {
            let log = log.clone();
            Arc::new(move |line: &str| log.lock().unwrap().push(line.to_string()))
        };
        let mut listener = Listener::bind(Some(&socket), None).unwrap();
        if let Some(keys) = keys {
            listener = listener.with_keys(keys);
        }
        let serving = listener.serve(
            Box::new(SilentPlayback::new("test")),
            Some(saved.clone()),
            sink,
        );
        TestListener {
            dir,
            socket,
            saved,
            log,
            seen: Mutex::new(0),
            serving: Some(serving),
        }
    }

    pub fn address(&self) -> Address {
        Address::Unix(self.socket.clone())
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.address()).unwrap()
    }

    /// Waits for a log line containing `needle` after the last one matched; returns it.
    pub fn logged(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = self.seen.lock().unwrap();
        loop {
            let log = self.log.lock().unwrap();
            if let Some(at) = (*seen..log.len()).find(|&i| log[i].contains(needle)) {
                *seen = at + 1;
                return log[at].clone();
            }
            drop(log);
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} in {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a good piece on a new connection; it must arrive and be saved.
    pub fn good_piece_arrives(&self, title: &str) -> PathBuf {
        let mut client = self.client();
        let piece = small_piece(title);
        let id = client.send_piece(&piece).unwrap();
        let received = client.wait_received(id, CONFIRM).unwrap();
        assert_eq!(received.notes, piece.score.notes.len());
        let saved = PathBuf::from(received.saved.expect("saved"));
        let back = Piece::read_midi_file("x", &std::fs::read(&saved).unwrap()).unwrap();
        assert_eq!(back.score.grid_notes(), piece.score.grid_notes());
        drop(client);
        self.logged("disconnected");
        saved
    }
}

pub fn small_piece(title: &str) -> Piece {
    let notes: Vec<Note> = (0..24)
        .map(|i| Note {
            onset: i * 2,
            pitch: 60 + (i % 12) as u8,
            duration: 2,
        })
        .collect();
    Piece::from_grid(title, &notes, 120.0)
}

/// The notes of the committed example continuation (a real MIDI file), from its first bar
/// with music on.
pub fn example_notes() -> Vec<Note> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/continuation.mid");
    let words = piece_from_midi(&std::fs::read(path).unwrap(), &mut Default::default()).unwrap();
    let notes = from_words(&words).notes;
    let silence = notes[0].onset / STEPS_PER_BAR * STEPS_PER_BAR;
    notes
        .iter()
        .map(|n| Note {
            onset: n.onset - silence,
            ..*n
        })
        .collect()
}

/// The notes starting in bars `first..=last` (counted from 1), moved to start at step 0.
pub fn bars(notes: &[Note], first: u64, last: u64) -> Vec<Note> {
    let span = (first - 1) * STEPS_PER_BAR..last * STEPS_PER_BAR;
    let mut kept: Vec<Note> = notes
        .iter()
        .filter(|n| span.contains(&n.onset))
        .copied()
        .collect();
    let start = kept.first().map_or(0, |n| n.onset);
    for n in &mut kept {
        n.onset -= start;
    }
    canonicalise(&mut kept);
    kept
}

/// A MIDI file (at 120 bpm) in `dir` holding the example's `spans` of bars (counted from its
/// first bar with music) one after another, each two bars after the last: phrases a keyboard
/// plays. Gives its path and each phrase's notes from step 0.
pub fn phrase_file(dir: &Path, spans: &[(u64, u64)]) -> (PathBuf, Vec<Vec<Note>>) {
    let notes = example_notes();
    let phrases: Vec<Vec<Note>> = spans.iter().map(|&(a, b)| bars(&notes, a, b)).collect();
    let mut played = Vec::new();
    let mut at = 0;
    for (phrase, &(a, b)) in phrases.iter().zip(spans) {
        assert!(phrase.len() > 5, "bars {a}-{b} hold {} notes", phrase.len());
        played.extend(phrase.iter().map(|n| Note {
            onset: n.onset + at,
            ..*n
        }));
        at += (b - a + 3) * STEPS_PER_BAR;
    }
    let file = dir.join("phrases.mid");
    let bytes = Piece::from_grid("phrases", &played, 120.0)
        .to_midi_file()
        .unwrap();
    std::fs::write(&file, bytes).unwrap();
    (file, phrases)
}

/// Keys from `file` played as a keyboard, phrases ended by two beats of silence.
pub fn keys(file: &Path) -> KeySettings {
    KeySettings {
        source: KeySource::File(file.to_path_buf()),
        gap_beats: 2.0,
        max_bars: None,
        count_in: false,
    }
}
