//! Hostile variants of a real MIDI file, seeded: what the robustness tests and `nanotune bench
//! mutate` feed to every reader of MIDI files (`render`, `play`, `describe`, the listener).
//!
//! Half the mutations work on bytes (flips, cuts, inserts: damage as a disk or a download does
//! it); the others rewrite the parsed file into something valid but extreme, as a careless or
//! hostile program writes it: a delta of 2^28 ticks, tempos of 1 us or 16.7 s a quarter, notes
//! never switched off, a pedal never lifted, thousands of notes at one tick, one tick a quarter.

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
use rand::rngs::StdRng;
use rand::Rng;

/// What was done to the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    FlipBytes,
    Cut,
    Insert,
    HugeDelta,
    ExtremeTempo,
    NoNoteOffs,
    PedalNeverLifted,
    HugeChord,
    OneTickAQuarter,
}

impl Mutation {
    const ALL: [Mutation; 9] = [
        Mutation::FlipBytes,
        Mutation::Cut,
        Mutation::Insert,
        Mutation::HugeDelta,
        Mutation::ExtremeTempo,
        Mutation::NoNoteOffs,
        Mutation::PedalNeverLifted,
        Mutation::HugeChord,
        Mutation::OneTickAQuarter,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mutation::FlipBytes => "flipped bytes",
            Mutation::Cut => "cut short",
            Mutation::Insert => "bytes inserted",
            Mutation::HugeDelta => "huge delta",
            Mutation::ExtremeTempo => "extreme tempo",
            Mutation::NoNoteOffs => "no note-offs",
            Mutation::PedalNeverLifted => "pedal never lifted",
            Mutation::HugeChord => "huge chord",
            Mutation::OneTickAQuarter => "one tick a quarter",
        }
    }
}

/// One to three mutations of `bytes`, drawn by `rng`; the last one names the result. A file
/// that does not parse gets byte mutations only.
pub fn mutate(bytes: &[u8], rng: &mut StdRng) -> (Mutation, Vec<u8>) {
    let mut out = bytes.to_vec();
    let mut last = Mutation::FlipBytes;
    for _ in 0..rng.random_range(1..=3) {
        let wanted = Mutation::ALL[rng.random_range(0..Mutation::ALL.len())];
        last = match rewrite(&out, wanted, rng) {
            Some(rewritten) => {
                out = rewritten;
                wanted
            }
            None => {
                let kind =
                    [Mutation::FlipBytes, Mutation::Cut, Mutation::Insert][rng.random_range(0..3)];
                damage(&mut out, kind, rng);
                kind
            }
        };
    }
    (last, out)
}

/// Byte damage; `kind` is one of the byte mutations.
fn damage(bytes: &mut Vec<u8>, kind: Mutation, rng: &mut StdRng) {
    if bytes.is_empty() {
        bytes.push(rng.random());
        return;
    }
    match kind {
        Mutation::Cut => {
            let at = rng.random_range(0..bytes.len());
            bytes.truncate(at);
        }
        Mutation::Insert => {
            let at = rng.random_range(0..=bytes.len());
            let count = rng.random_range(1..=64);
            let junk: Vec<u8> = (0..count).map(|_| rng.random()).collect();
            bytes.splice(at..at, junk);
        }
        _ => {
            for _ in 0..rng.random_range(1..=8) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
        }
    }
}

/// A valid but extreme rewrite of a parsable file; `None` for byte mutations or a file that does
/// not parse.
fn rewrite(bytes: &[u8], kind: Mutation, rng: &mut StdRng) -> Option<Vec<u8>> {
    let smf = Smf::parse(bytes).ok()?;
    let mut header = smf.header;
    let mut tracks: Vec<Vec<TrackEvent>> = smf.tracks;
    if tracks.is_empty() {
        return None;
    }
    let t = rng.random_range(0..tracks.len());
    let track = &mut tracks[t];
    match kind {
        Mutation::HugeDelta => {
            let at = rng.random_range(0..=track.len());
            let delta = [
                u28::max_value().as_int(),
                rng.random_range(1 << 20..1 << 28),
            ][rng.random_range(0..2)];
            insert_at(
                track,
                at,
                delta,
                TrackEventKind::Meta(MetaMessage::Marker(b"x")),
            );
        }
        Mutation::ExtremeTempo => {
            let micros = [1, 0xFF_FFFF, rng.random_range(1..0xFF_FFFF)][rng.random_range(0..3)];
            let tempo = TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros)));
            let at = rng.random_range(0..=track.len());
            insert_at(track, at, 0, tempo);
        }
        Mutation::NoNoteOffs => remove_where(track, |kind| {
            matches!(
                kind,
                TrackEventKind::Midi {
                    message: MidiMessage::NoteOff { .. },
                    ..
                }
            ) || matches!(kind, TrackEventKind::Midi { message: MidiMessage::NoteOn { vel, .. }, .. } if vel.as_int() == 0)
        }),
        Mutation::PedalNeverLifted => {
            remove_where(
                track,
                |kind| matches!(kind, TrackEventKind::Midi { message: MidiMessage::Controller { controller, .. }, .. } if controller.as_int() == 64),
            );
            for channel in 0..16 {
                let pedal = TrackEventKind::Midi {
                    channel: u4::new(channel),
                    message: MidiMessage::Controller {
                        controller: u7::new(64),
                        value: u7::new(127),
                    },
                };
                insert_at(track, 0, 0, pedal);
            }
        }
        Mutation::HugeChord => {
            let at = rng.random_range(0..=track.len());
            for _ in 0..rng.random_range(1_000..=20_000) {
                let on = TrackEventKind::Midi {
                    channel: u4::new(rng.random_range(0..16)),
                    message: MidiMessage::NoteOn {
                        key: u7::new(rng.random_range(0..128)),
                        vel: u7::new(rng.random_range(1..128)),
                    },
                };
                insert_at(track, at, 0, on);
            }
        }
        Mutation::OneTickAQuarter => {
            header = Header::new(header.format, Timing::Metrical(u15::new(1)))
        }
        Mutation::FlipBytes | Mutation::Cut | Mutation::Insert => return None,
    }
    let mut out = Vec::new();
    midly::write_std(&header, tracks.iter(), &mut out).ok()?;
    Some(out)
}

/// Inserts an event `delta` ticks after the one before position `at`, keeping the times of the
/// events after it.
fn insert_at<'a>(track: &mut Vec<TrackEvent<'a>>, at: usize, delta: u32, kind: TrackEventKind<'a>) {
    let at = at.min(track.len());
    // An event must not come after the end of the track.
    let at = if at == track.len() && track.last().is_some_and(|e| is_end(&e.kind)) {
        at - 1
    } else {
        at
    };
    track.insert(
        at,
        TrackEvent {
            delta: u28::new(delta.min(u28::max_value().as_int())),
            kind,
        },
    );
}

fn is_end(kind: &TrackEventKind) -> bool {
    matches!(kind, TrackEventKind::Meta(MetaMessage::EndOfTrack))
}

/// Removes the events `remove` picks, their deltas carried to the next event.
fn remove_where(track: &mut Vec<TrackEvent>, remove: impl Fn(&TrackEventKind) -> bool) {
    let mut carried = 0u32;
    track.retain_mut(|event| {
        if remove(&event.kind) {
            carried = carried.saturating_add(event.delta.as_int());
            return false;
        }
        let delta = (event.delta.as_int().saturating_add(carried)).min(u28::max_value().as_int());
        event.delta = u28::new(delta);
        carried = 0;
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::midi::{read_midi, write_midi};
    use crate::music::notes::Note;
    use rand::SeedableRng;

    fn a_file() -> Vec<u8> {
        let notes: Vec<Note> = (0..32)
            .map(|i| Note {
                onset: 2 * i,
                pitch: 60 + (i % 12) as u8,
                duration: 2,
            })
            .collect();
        write_midi(&notes, 120.0).unwrap()
    }

    #[test]
    fn each_rewrite_does_what_it_says() {
        let file = a_file();
        let mut rng = StdRng::seed_from_u64(1);
        let read = |kind| read_midi(&rewrite(&file, kind, &mut StdRng::seed_from_u64(2)).unwrap());
        let plain = read_midi(&file).unwrap();
        let no_offs = read(Mutation::NoNoteOffs).unwrap();
        // Every note now ends with its track.
        let last = no_offs.notes.iter().map(|n| n.end).fold(0.0, f64::max);
        assert!(no_offs.notes.iter().all(|n| n.end == last));
        let chord = read(Mutation::HugeChord).unwrap();
        assert!(chord.notes.len() + chord.drum_notes >= plain.notes.len() + 1_000);
        let slow = read(Mutation::OneTickAQuarter).unwrap();
        let Timing::Metrical(ppq) = Smf::parse(&file).unwrap().header.timing else {
            panic!("a metrical file")
        };
        let ratio = slow.notes.last().unwrap().start / plain.notes.last().unwrap().start;
        assert_eq!(ratio, ppq.as_int() as f64);
        let pedal = read(Mutation::PedalNeverLifted).unwrap();
        assert!(pedal.notes.iter().all(|n| n.sustained_end >= n.end));
        assert!(pedal
            .notes
            .iter()
            .any(|n| n.sustained_end == last_end(&pedal)));
        assert!(read(Mutation::ExtremeTempo).unwrap().tempo.len() >= 2);
        let huge = read(Mutation::HugeDelta).unwrap();
        assert!(huge.notes.len() == plain.notes.len());
        assert!(rewrite(&file, Mutation::Cut, &mut rng).is_none());
    }

    fn last_end(piece: &crate::music::midi::MidiPiece) -> f64 {
        piece
            .notes
            .iter()
            .map(|n| n.sustained_end)
            .fold(0.0, f64::max)
    }

    #[test]
    fn the_same_seed_gives_the_same_file() {
        let file = a_file();
        for seed in 0..50 {
            let a = mutate(&file, &mut StdRng::seed_from_u64(seed));
            let b = mutate(&file, &mut StdRng::seed_from_u64(seed));
            assert_eq!(a, b);
            assert_ne!(a.1, file, "seed {seed}");
        }
    }
}
