//! The codec on real data: MIDI files from Debian's packages, the whole seed corpus, edge-case
//! files built here, random word sequences, and hostile input.

mod common;

use midly::num::{u15, u24, u28, u4, u7};
use midly::{
    Format, Fps, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind,
};
use nanotune::learn::corpus::load;
use nanotune::music::augment::{fold_into_piano, stretch, transpose};
use nanotune::music::midi::{read_midi, write_midi};
use nanotune::music::notes::{canon, canonicalise, from_words, to_words, Note};
use nanotune::music::read::{piece_from_midi, ReadReport};
use nanotune::music::words::{Vocab, Word};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// What canonical form should keep of quantised notes, computed independently of `canonicalise`:
/// per (onset, pitch) the longest duration, cut at the pitch's next onset and at 128.
fn expected_canonical(raw: &[Note]) -> BTreeMap<(u64, u8), u32> {
    let mut longest: BTreeMap<(u8, u64), u32> = BTreeMap::new();
    for n in raw.iter().filter(|n| (21..=108).contains(&n.pitch)) {
        let d = longest.entry((n.pitch, n.onset)).or_insert(0);
        *d = (*d).max(n.duration.max(1));
    }
    let keys: Vec<(u8, u64)> = longest.keys().copied().collect();
    let mut out = BTreeMap::new();
    for (i, &(pitch, onset)) in keys.iter().enumerate() {
        let mut d = longest[&(pitch, onset)].min(128);
        if let Some(&(next_pitch, next_onset)) = keys.get(i + 1) {
            if next_pitch == pitch {
                d = d.min((next_onset - onset) as u32);
            }
        }
        out.insert((onset, pitch), d);
    }
    out
}

fn as_map(notes: &[Note]) -> BTreeMap<(u64, u8), u32> {
    notes
        .iter()
        .map(|n| ((n.onset, n.pitch), n.duration))
        .collect()
}

/// MIDI -> words -> MIDI -> notes keeps every in-range, non-drum note.
fn check_midi_round_trip(bytes: &[u8]) -> usize {
    let piece = read_midi(bytes).expect("real file parses");
    let raw = piece.grid_notes();
    let words = to_words(&raw);
    assert_eq!(canon(&words), words, "encoder output is canonical");
    let decoded = from_words(&words);
    assert_eq!(decoded.skipped, 0);
    let written = write_midi(&decoded.notes, 120.0).unwrap();
    let mut back = read_midi(&written).unwrap().grid_notes();
    canonicalise(&mut back);
    assert_eq!(as_map(&back), expected_canonical(&raw));
    assert_eq!(
        to_words(&back),
        words,
        "words survive a trip through a MIDI file"
    );
    raw.len()
}

#[test]
fn real_midi_files_round_trip() {
    let Some(dir) = common::debian_midi_dir() else {
        return;
    };
    let files = common::midi_files(&dir);
    assert!(
        files.len() >= 80,
        "expected the Debian packages' MIDI files, found {}",
        files.len()
    );
    let mut notes = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        notes += check_midi_round_trip(&bytes);
    }
    // The packages hold drum tracks: the encoder must have skipped some drum notes.
    let mut report = ReadReport::default();
    for path in &files {
        piece_from_midi(&std::fs::read(path).unwrap(), &mut report).unwrap();
    }
    assert!(report.drum_notes > 0);
    assert!(notes > 10_000, "only {notes} notes in the real files");
}

#[test]
fn truncated_real_files_never_panic() {
    let Some(dir) = common::debian_midi_dir() else {
        return;
    };
    for path in common::midi_files(&dir).iter().take(10) {
        let bytes = std::fs::read(path).unwrap();
        for cut in (0..bytes.len()).step_by(bytes.len() / 50 + 1) {
            let mut report = ReadReport::default();
            // A cut file is an error or a shorter piece; either way no panic.
            let _ = piece_from_midi(&bytes[..cut], &mut report);
        }
        assert!(
            read_midi(&bytes[..bytes.len() / 2]).is_err(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn whole_seed_corpus_is_canonical_after_loading() {
    let Some(archive) = common::corpus_archive() else {
        return;
    };
    let (pieces, report) = load(&archive, &|_, _| {}).unwrap();
    assert_eq!(report.files, 11_222);
    assert_eq!(report.empty_pieces.len(), 1);
    assert_eq!(report.pieces, 11_221);
    assert!(report.bad_files.is_empty(), "{:?}", report.bad_files);
    // The corpus repeats and overlaps notes of one pitch: loading must have fixed that.
    assert!(report.read.duplicate_notes > 100_000 && report.read.notes_cut_by_restrike > 50_000);
    for piece in &pieces {
        let w = &piece.words;
        assert_eq!(w.first(), Some(&Word::Start));
        assert_eq!(w.last(), Some(&Word::End));
        assert_eq!(&canon(w), w, "{:?} is not canonical", piece.title);
        let ids = Vocab.encode(w).expect("every canonical word has an id");
        assert_eq!(&Vocab.decode(&ids).0, w);
    }
    // A sample through real MIDI bytes too.
    for piece in pieces.iter().step_by(97) {
        let notes = from_words(&piece.words).notes;
        let bytes = write_midi(&notes, 120.0).unwrap();
        let mut report = ReadReport::default();
        assert_eq!(
            piece_from_midi(&bytes, &mut report).unwrap(),
            piece.words,
            "{:?}",
            piece.title
        );
    }
}

// ---- Edge-case files built with midly -------------------------------------------------------

fn ev(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
    TrackEvent {
        delta: u28::new(delta),
        kind,
    }
}
fn on(delta: u32, ch: u8, key: u8, vel: u8) -> TrackEvent<'static> {
    let message = MidiMessage::NoteOn {
        key: u7::new(key),
        vel: u7::new(vel),
    };
    ev(
        delta,
        TrackEventKind::Midi {
            channel: u4::new(ch),
            message,
        },
    )
}
fn off(delta: u32, ch: u8, key: u8) -> TrackEvent<'static> {
    let message = MidiMessage::NoteOff {
        key: u7::new(key),
        vel: u7::new(64),
    };
    ev(
        delta,
        TrackEventKind::Midi {
            channel: u4::new(ch),
            message,
        },
    )
}
fn end() -> TrackEvent<'static> {
    ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack))
}
fn tempo(delta: u32, micros: u32) -> TrackEvent<'static> {
    ev(
        delta,
        TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros))),
    )
}
fn smf(format: Format, timing: Timing, tracks: Vec<Vec<TrackEvent<'static>>>) -> Vec<u8> {
    let mut out = Vec::new();
    Smf {
        header: Header::new(format, timing),
        tracks,
    }
    .write_std(&mut out)
    .unwrap();
    out
}
fn words_of(bytes: &[u8]) -> String {
    let mut report = ReadReport::default();
    nanotune::music::words::words_to_string(&piece_from_midi(bytes, &mut report).unwrap())
}

#[test]
fn format_1_merges_tracks_skips_drums_and_ignores_tempo_for_the_grid() {
    let ppq = Timing::Metrical(u15::new(96));
    let bytes = smf(
        Format::Parallel,
        ppq,
        vec![
            // Tempo changes move seconds, never the grid.
            vec![tempo(0, 400_000), tempo(96, 1_000_000), end()],
            vec![
                on(0, 0, 60, 90),
                off(96, 0, 60),
                on(0, 0, 64, 90),
                off(48, 0, 64),
                end(),
            ],
            vec![
                on(0, 1, 67, 90),
                off(192, 1, 67),
                on(0, 9, 36, 100),
                off(24, 9, 36),
                end(),
            ],
        ],
    );
    assert_eq!(words_of(&bytes), "START n67 d8 n60 d4 sepxx d4 n64 d2 END");
    let piece = read_midi(&bytes).unwrap();
    assert_eq!(piece.drum_notes, 1);
    assert!((piece.seconds_at(2.0) - (0.4 + 1.0)).abs() < 1e-9);
}

#[test]
fn velocity_zero_overlaps_and_out_of_range() {
    let bytes = smf(
        Format::SingleTrack,
        Timing::Metrical(u15::new(4)),
        vec![vec![
            on(0, 0, 60, 80),
            on(2, 0, 60, 80), // re-struck while sounding
            on(0, 0, 10, 80), // below the piano: dropped
            on(2, 0, 60, 0),  // velocity 0 = off: ends the first (FIFO)
            off(4, 0, 60),    // ends the second
            off(0, 0, 10),
            on(0, 0, 70, 1), // never switched off: ends with the track
            ev(3, TrackEventKind::Meta(MetaMessage::Text(b"x"))),
            end(),
        ]],
    );
    assert_eq!(
        words_of(&bytes),
        "START n60 d2 sepxx d2 n60 d6 sepxx d6 n70 d3 END"
    );
}

#[test]
fn format_2_plays_tracks_in_sequence_and_smpte_is_120_bpm() {
    let bytes = smf(
        Format::Sequential,
        Timing::Metrical(u15::new(1)),
        vec![
            vec![on(0, 0, 60, 80), off(1, 0, 60), end()],
            vec![on(0, 0, 62, 80), off(2, 0, 62), end()],
        ],
    );
    assert_eq!(words_of(&bytes), "START n60 d4 sepxx d4 n62 d8 END");
    // 25 fps x 40 subframes = 1000 ticks per second = 500 ticks per quarter at 120 bpm.
    let bytes = smf(
        Format::SingleTrack,
        Timing::Timecode(Fps::Fps25, 40),
        vec![vec![on(125, 0, 72, 80), off(500, 0, 72), end()]],
    );
    assert_eq!(words_of(&bytes), "START sepxx d1 n72 d4 END");
}

#[test]
fn running_status_and_no_notes() {
    // Hand-written bytes: one note-on status byte, then a second event in running status.
    let track: &[u8] = &[
        0x00, 0x90, 60, 100, // note on C4
        0x00, 64, 100, // running status: note on E4
        0x60, 60, 0, // running status, velocity 0: C4 off after 96 ticks
        0x00, 64, 0, // E4 off
        0x00, 0xFF, 0x2F, 0x00,
    ];
    let mut bytes = b"MThd\0\0\0\x06\0\0\0\x01\0\x60MTrk".to_vec();
    bytes.extend_from_slice(&(track.len() as u32).to_be_bytes());
    bytes.extend_from_slice(track);
    assert_eq!(words_of(&bytes), "START n64 d4 n60 d4 END");

    let silent = smf(
        Format::SingleTrack,
        Timing::Metrical(u15::new(96)),
        vec![vec![tempo(0, 500_000), end()]],
    );
    assert_eq!(words_of(&silent), "START END");
}

#[test]
fn hostile_bytes_are_errors_not_panics() {
    let mut report = ReadReport::default();
    assert!(piece_from_midi(b"", &mut report).is_err());
    assert!(piece_from_midi(b"hello world, not midi", &mut report).is_err());
    // A header that claims 65,535 tracks of 4 GB each.
    let huge = b"MThd\0\0\0\x06\0\x01\xff\xff\0\x60MTrk\xff\xff\xff\xff\0\x90";
    assert!(piece_from_midi(huge, &mut report).is_err());
    // Zero ticks per quarter.
    assert!(piece_from_midi(
        b"MThd\0\0\0\x06\0\0\0\x01\0\0MTrk\0\0\0\x04\0\xff\x2f\0",
        &mut report
    )
    .is_err());
    let mut rng_state = 0x2545F4914F6CDD1Du64;
    for len in [1usize, 14, 50, 500, 5000] {
        for _ in 0..50 {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    rng_state ^= rng_state << 13;
                    rng_state ^= rng_state >> 7;
                    rng_state ^= rng_state << 17;
                    rng_state as u8
                })
                .collect();
            if len > 14 {
                bytes[..14].copy_from_slice(b"MThd\0\0\0\x06\0\x01\0\x02\0\x60");
            }
            let _ = piece_from_midi(&bytes, &mut report);
        }
    }
}

// ---- Properties on random word sequences -----------------------------------------------------
//
// Seeded random cases (no proptest: its dev-only features would make `cargo run` and `cargo test`
// build candle twice). A failure prints the case's seed and words.

const CASES: u64 = 400;

/// Any words at all, junk included: pitches 0..127, durations up to 400.
fn any_words(rng: &mut StdRng) -> Vec<Word> {
    let len = rng.random_range(0..200);
    (0..len)
        .map(|_| match rng.random_range(0..30) {
            0 => Word::Start,
            1 => Word::End,
            2..=7 => Word::Sep,
            8..=17 => Word::Note(rng.random_range(0..=127)),
            _ => Word::Dur(rng.random_range(1..=400)),
        })
        .collect()
}

/// Valid (well-paired) sequences with chords, repeats and long shifts.
fn valid_words(rng: &mut StdRng) -> Vec<Word> {
    let mut w = vec![Word::Start];
    for _ in 0..rng.random_range(0..80) {
        if rng.random_range(0..4) == 0 {
            w.extend([Word::Sep, Word::Dur(rng.random_range(1..=300))]);
        } else {
            w.extend([
                Word::Note(rng.random_range(21..=108)),
                Word::Dur(rng.random_range(1..=200)),
            ]);
        }
    }
    w.push(Word::End);
    w
}

fn note_set(words: &[Word]) -> Vec<(u64, u8)> {
    let mut v: Vec<(u64, u8)> = from_words(words)
        .notes
        .iter()
        .map(|n| (n.onset, n.pitch))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Runs `check` on `CASES` seeded cases, naming the failing one.
fn for_cases(check: impl Fn(&mut StdRng)) {
    for seed in 0..CASES {
        let mut rng = StdRng::seed_from_u64(seed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&mut rng)));
        if let Err(e) = outcome {
            panic!("case with seed {seed} failed: {e:?}");
        }
    }
}

#[test]
fn canon_is_idempotent_on_anything() {
    for_cases(|rng| {
        let words = any_words(rng);
        let once = canon(&words);
        assert_eq!(canon(&once), once, "{words:?}");
        assert_eq!(from_words(&once).skipped, 0);
        assert!(Vocab.encode(&once).is_some());
    });
}

#[test]
fn valid_sequences_keep_their_notes() {
    for_cases(|rng| {
        let words = valid_words(rng);
        let c = canon(&words);
        // Same onsets and pitches (deduplicated); every duration 1..=128.
        assert_eq!(note_set(&c), note_set(&words), "{words:?}");
        assert!(from_words(&c)
            .notes
            .iter()
            .all(|n| (1..=128).contains(&n.duration)));
        // And through a MIDI file.
        let bytes = write_midi(&from_words(&c).notes, 120.0).unwrap();
        let mut report = ReadReport::default();
        assert_eq!(piece_from_midi(&bytes, &mut report).unwrap(), c);
    });
}

#[test]
fn transpose_keeps_valid_and_keeps_every_note() {
    for_cases(|rng| {
        let c = canon(&valid_words(rng));
        let k = rng.random_range(-30..=30);
        let t = transpose(&c, k);
        assert_eq!(canon(&t), t, "transposed by {k} is canonical");
        let mut want: Vec<(u64, u8)> = note_set(&c)
            .into_iter()
            .map(|(o, p)| (o, fold_into_piano(p as i32 + k)))
            .collect();
        want.sort();
        want.dedup();
        assert_eq!(note_set(&t), want);
    });
}

#[test]
fn stretch_keeps_valid_and_keeps_every_note() {
    for_cases(|rng| {
        let c = canon(&valid_words(rng));
        let f = [0.5, 0.75, 1.5, rng.random_range(0.1..4.0)][rng.random_range(0..4)];
        let s = stretch(&c, f);
        assert_eq!(canon(&s), s, "stretched by {f} is canonical");
        let before = from_words(&c).notes;
        let after = from_words(&s).notes;
        assert_eq!(before.len(), after.len());
        // Pitches and onset order are kept; distinct onsets stay distinct.
        for (a, b) in before.iter().zip(&after) {
            assert_eq!(a.pitch, b.pitch);
        }
        for (x, y) in before.windows(2).zip(after.windows(2)) {
            assert_eq!(x[0].onset == x[1].onset, y[0].onset == y[1].onset);
        }
    });
}

#[test]
fn the_sustain_pedal_of_real_files_holds_notes_for_playback_only() {
    let Some(dir) = common::debian_midi_dir() else {
        return;
    };
    let files = common::midi_files(&dir);
    let (mut pedalled_files, mut held) = (0, 0);
    for path in &files {
        let piece = read_midi(&std::fs::read(path).unwrap()).unwrap();
        let longer = piece
            .notes
            .iter()
            .filter(|n| n.sustained_end > n.end)
            .count();
        assert!(piece.notes.iter().all(|n| n.sustained_end >= n.end));
        pedalled_files += (longer > 0) as usize;
        held += longer;
    }
    // simutrans' pieces ring under the pedal; pianobooster's exercises have none.
    assert!(
        pedalled_files >= 10 && held > 1_000,
        "{pedalled_files} files, {held} notes"
    );
    let boring = dir.join("usr/share/games/simutrans/music/05-Boring-afternoon.mid");
    let piece = read_midi(&std::fs::read(&boring).unwrap()).unwrap();
    assert!(
        piece
            .notes
            .iter()
            .filter(|n| n.sustained_end > n.end)
            .count()
            > 500
    );
    // Playback hears the pedal; the grid (and so the words) keep the keys as played.
    let timed = nanotune::sound::timed::from_midi(&piece, None);
    let sounding: f64 = timed.iter().map(|n| n.duration).sum();
    let pressed: f64 = piece
        .notes
        .iter()
        .map(|n| piece.seconds_at(n.end) - piece.seconds_at(n.start))
        .sum();
    assert!(
        sounding > 1.1 * pressed,
        "{sounding} s sounding, {pressed} s pressed"
    );
    let grid = piece.grid_notes();
    let steps = |q: f64| (q * 4.0).round();
    assert!(grid
        .iter()
        .zip(&piece.notes)
        .all(|(g, n)| { g.duration as f64 == (steps(n.end - n.start)).max(1.0) }));
    let clair = dir.join("usr/share/doc/pianobooster/courses/BoosterMusic/01-ClairDeLaLune.mid");
    let piece = read_midi(&std::fs::read(&clair).unwrap()).unwrap();
    assert!(piece.notes.iter().all(|n| n.sustained_end == n.end));
}
