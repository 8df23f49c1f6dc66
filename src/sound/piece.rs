//! A piece to play: notes in score time (quarter notes) with their velocities, the tempo map and a
//! title. It is what every sound output takes ([`crate::sound::output`]) and what travels to a
//! listener ([`crate::sound::listen`]): a few kilobytes, not audio, so the far end renders it.

use crate::music::midi::{read_midi, write_midi_piece, MidiNote, MidiPiece, TempoChange};
use crate::music::notes::Note;
use crate::sound::timed::{self, TimedNote};
use anyhow::Result;

/// Notes, tempo map and title of one piece.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub title: String,
    /// The notes (sorted by start) and the tempo map; `drum_notes` is unused.
    pub score: MidiPiece,
}

impl Piece {
    /// A MIDI file's notes at its own tempo map.
    pub fn from_midi(title: &str, score: MidiPiece) -> Piece {
        Piece {
            title: title.to_string(),
            score,
        }
    }

    /// Grid notes (a generated piece) at `bpm`, at the default velocity.
    pub fn from_grid(title: &str, notes: &[Note], bpm: f64) -> Piece {
        Piece {
            title: title.to_string(),
            score: MidiPiece::from_grid(notes, bpm),
        }
    }

    /// The same title and tempo map with other notes (sorted by start).
    pub fn with_notes(&self, notes: Vec<MidiNote>) -> Piece {
        Piece {
            title: self.title.clone(),
            score: MidiPiece {
                notes,
                tempo: self.score.tempo.clone(),
                drum_notes: 0,
            },
        }
    }

    /// The piece at a fixed tempo instead of its tempo map.
    pub fn at_bpm(mut self, bpm: f64) -> Piece {
        self.score.tempo = fixed_tempo(bpm);
        self
    }

    /// The notes in seconds, for the synth.
    pub fn timed_notes(&self) -> Vec<TimedNote> {
        timed::from_midi(&self.score, None)
    }

    /// The notes still to sound from `seconds` on, shifted so that `seconds` is 0: a note
    /// sounding at that moment restarts there with what is left of it (for seeking).
    pub fn timed_notes_from(&self, seconds: f64) -> Vec<TimedNote> {
        self.timed_notes()
            .into_iter()
            .filter(|n| n.end() > seconds || (n.start >= seconds))
            .map(|n| {
                let start = n.start.max(seconds);
                TimedNote {
                    start: start - seconds,
                    duration: n.end() - start,
                    ..n
                }
            })
            .collect()
    }

    /// Seconds of music: the last note-off as the notes sound, the pedal included (the one
    /// timeline: [`timed::music_seconds`]).
    pub fn length_seconds(&self) -> f64 {
        timed::music_seconds(&self.timed_notes())
    }

    /// The piece as a Standard MIDI File (tempo map, velocities, the title as track name).
    pub fn to_midi_file(&self) -> Result<Vec<u8>> {
        write_midi_piece(&self.score, &self.title)
    }

    /// Reads a Standard MIDI File as a piece titled `title`.
    pub fn read_midi_file(title: &str, bytes: &[u8]) -> Result<Piece> {
        Ok(Piece::from_midi(title, read_midi(bytes)?))
    }
}

/// A tempo map of one tempo, `bpm` quarter notes per minute.
fn fixed_tempo(bpm: f64) -> Vec<TempoChange> {
    vec![TempoChange {
        at: 0.0,
        micros_per_quarter: 60e6 / bpm,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(onset: u64, pitch: u8, duration: u32) -> Note {
        Note {
            onset,
            pitch,
            duration,
        }
    }

    #[test]
    fn grid_notes_sound_as_the_synth_times_them() {
        let notes = [note(4, 72, 2), note(0, 60, 8)];
        let piece = Piece::from_grid("t", &notes, 90.0);
        let mut want = timed::from_grid(&notes, 90.0);
        want.sort_by(|a, b| a.start.total_cmp(&b.start));
        let got = piece.timed_notes();
        assert_eq!(got.len(), 2);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.pitch, g.velocity), (w.pitch, w.velocity));
            assert!((g.start - w.start).abs() < 1e-9 && (g.duration - w.duration).abs() < 1e-9);
        }
        // Eight sixteenths at 90 bpm: 2 quarters of 2/3 s.
        assert!((piece.length_seconds() - 4.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            piece.score.grid_notes(),
            vec![note(0, 60, 8), note(4, 72, 2)]
        );
    }

    #[test]
    fn seeking_keeps_what_still_sounds() {
        // At 120 bpm a sixteenth is 0.125 s: notes over 0..1 s and 0.5..0.75 s.
        let piece = Piece::from_grid(
            "t",
            &[note(0, 60, 8), note(4, 64, 2), note(1, 67, 1)],
            120.0,
        );
        let from = piece.timed_notes_from(0.6);
        assert_eq!(from.len(), 2, "{from:?}");
        assert_eq!(from[0].pitch, 60);
        assert!(from[0].start.abs() < 1e-9 && (from[0].duration - 0.4).abs() < 1e-9);
        assert_eq!(from[1].pitch, 64);
        assert!(from[1].start.abs() < 1e-9 && (from[1].duration - 0.15).abs() < 1e-9);
        assert!(piece.timed_notes_from(5.0).is_empty());
    }
}
