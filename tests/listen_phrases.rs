//! Phrases from the listener's keyboard, both ends of a socket in one test: `--midi-in-file`
//! plays a real MIDI file's bars as a keyboard would, the listener catches each phrase, saves
//! it and sends it; the client gets the file's own notes on the grid. A listener without keys,
//! a tempo out of range and a peer of the old protocol are each told so in one line.

mod common;

use common::listener::{keys, phrase_file, TestListener};
use nanotune::music::notes::{from_words, Note};
use nanotune::music::read::piece_from_midi;
use nanotune::sound::listen::protocol::{encode, Reply, MAGIC, VERSION};
use nanotune::sound::listen::Client;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

#[test]
fn phrases_played_from_a_file_arrive_as_its_notes_and_are_saved() {
    // Two phrases of a real piece: its bars 1-2, then (after two bars of silence) bars 5-6.
    let dir = tempfile::tempdir().unwrap();
    let (file, phrases) = phrase_file(dir.path(), &[(1, 2), (5, 6)]);
    let (first, second) = (&phrases[0], &phrases[1]);
    let listener = TestListener::start_with(Some(keys(&file)));
    let mut client = listener.client();
    // Fast, to keep the test short: six bars at 400 bpm are 3.6 s.
    client.listen(Some(400.0));
    let from = client.wait_listening(Duration::from_secs(5)).unwrap();
    assert!(from.contains("phrases.mid"), "{from}");
    for want in [first, second] {
        let heard = client.wait_phrase(Duration::from_secs(15)).unwrap();
        // Moved to its first note: the grid counts from it.
        let start = heard.notes[0].onset;
        let got: Vec<Note> = heard
            .notes
            .iter()
            .map(|n| Note {
                onset: n.onset - start,
                ..*n
            })
            .collect();
        assert_eq!(&got, want, "phrase {}", heard.number);
        // Saved beside the pieces, as the same notes.
        let saved = heard.saved.expect("saved");
        let words =
            piece_from_midi(&std::fs::read(&saved).unwrap(), &mut Default::default()).unwrap();
        assert_eq!(from_words(&words).notes, heard.notes, "{saved}");
    }
    listener.logged("phrase 2:");
    // Stopped, no more phrases come.
    client.listen(None);
    assert!(client.wait_phrase(Duration::from_millis(300)).is_err());
}

#[test]
fn listening_without_keys_or_at_a_bad_tempo_is_refused_in_one_line() {
    let listener = TestListener::start();
    let mut client = listener.client();
    client.listen(Some(120.0));
    let err = client
        .wait_listening(Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--midi-in"), "{err}");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/continuation.mid");
    let listener = TestListener::start_with(Some(keys(&file)));
    let mut client = listener.client();
    client.listen(Some(5000.0));
    let err = client
        .wait_listening(Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(err.contains("5000 bpm"), "{err}");
    // The connection goes on: a piece still plays.
    drop(client);
    listener.good_piece_arrives("after a refusal");
}

#[test]
fn a_listener_of_the_old_protocol_is_named_in_one_line_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("old.sock");
    let server = UnixListener::bind(&socket).unwrap();
    // A listener of the version before (3: phrases, no pieces sent while made): its hello in
    // its own header.
    let old_version = VERSION - 1;
    let hello = Reply::Hello {
        version: old_version,
        plays_on: "old".into(),
        saves_to: None,
    };
    let mut bytes = encode(&hello);
    assert_eq!(bytes[..3], MAGIC);
    bytes[3] = old_version;
    let old = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        conn.write_all(&bytes).unwrap();
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
    });
    let started = std::time::Instant::now();
    let err = Client::connect(&nanotune::sound::listen::Address::Unix(socket))
        .err()
        .expect("refused");
    let line = format!("{err:#}");
    assert!(
        line.contains(&format!(
            "protocol version {old_version}; this end speaks version {VERSION}"
        )),
        "{line}"
    );
    assert!(line.contains("same nanotune on both"), "{line}");
    assert_eq!(line.lines().count(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no wait for a timeout"
    );
    drop(old);
}
