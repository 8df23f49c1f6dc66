//! Notes in seconds: the one timeline every sound path follows. `render`, `play`, `describe`, the
//! screen and the listener all turn a piece into [`TimedNote`]s here and measure it with
//! [`music_seconds`], so they give the same seconds for the same file.
//!
//! The rules, in one place ([`playable`]): a note without a place in time (not finite, or before
//! 0) is dropped; a note sounds from its onset until its key is let go or, where the sustain pedal
//! is down then, until the pedal is lifted, but never longer than [`LONGEST_NOTE_SECONDS`] (a
//! piano string struck once has died away by then, and a file that holds a key for days would
//! otherwise last days); a piece whose music lasts longer than [`LONGEST_PIECE_SECONDS`] is
//! refused ([`check_length`]).

use crate::music::midi::{MidiPiece, DEFAULT_VELOCITY};
use crate::music::notes::{Note, STEPS_PER_QUARTER};
use anyhow::{bail, Result};

/// The longest a note sounds: the lowest A of a piano, the longest-ringing string, falls 60 dB in
/// about 20 s; held longer (a key never let go, a pedal never lifted) it is let go here.
pub const LONGEST_NOTE_SECONDS: f64 = 30.0;

/// The longest piece that plays or renders: two hours. Longer than any piano work people play in
/// one sitting (a whole sonata cycle is under one hour), and what a WAV file can hold in every
/// format we write (two hours of 48 kHz stereo 32-bit float is 2.8 GB of the format's 4 GiB).
pub const LONGEST_PIECE_SECONDS: f64 = 2.0 * 3600.0;

/// A note in seconds, for the synth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedNote {
    /// Onset in seconds.
    pub start: f64,
    /// Seconds from onset to note-off (the release follows).
    pub duration: f64,
    /// MIDI pitch (60 is middle C).
    pub pitch: u8,
    /// MIDI velocity 1..=127; 0 is silent.
    pub velocity: u8,
}

impl TimedNote {
    pub fn new(start: f64, duration: f64, pitch: u8, velocity: u8) -> TimedNote {
        TimedNote {
            start,
            duration,
            pitch,
            velocity,
        }
    }

    /// Note-off time in seconds.
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }
}

/// Grid notes at `bpm` quarter notes per minute, all at [`DEFAULT_VELOCITY`].
pub fn from_grid(notes: &[Note], bpm: f64) -> Vec<TimedNote> {
    let step = 60.0 / bpm / STEPS_PER_QUARTER as f64;
    notes
        .iter()
        .map(|n| TimedNote {
            start: n.onset as f64 * step,
            duration: n.duration as f64 * step,
            pitch: n.pitch,
            velocity: DEFAULT_VELOCITY,
        })
        .collect()
}

/// A MIDI file's notes with their own velocities, held by its sustain pedal, timed by the file's
/// tempo map, or at a fixed `bpm_override` (quarters * 60 / bpm) when given.
pub fn from_midi(piece: &MidiPiece, bpm_override: Option<f64>) -> Vec<TimedNote> {
    let seconds = |q: f64| match bpm_override {
        Some(bpm) => q * 60.0 / bpm,
        None => piece.seconds_at(q),
    };
    piece
        .notes
        .iter()
        .map(|n| {
            let start = seconds(n.start);
            TimedNote {
                start,
                duration: (seconds(n.sustained_end) - start).max(0.0),
                pitch: n.pitch,
                velocity: n.velocity,
            }
        })
        .collect()
}

/// The notes as they sound: those with a place in time, none held past
/// [`LONGEST_NOTE_SECONDS`], sorted by onset (stable: equal onsets keep their order).
pub fn playable(notes: &[TimedNote]) -> Vec<TimedNote> {
    let mut out: Vec<TimedNote> = notes
        .iter()
        .filter(|n| n.start.is_finite() && n.duration.is_finite() && n.start >= 0.0)
        .map(|n| TimedNote {
            duration: n.duration.clamp(0.0, LONGEST_NOTE_SECONDS),
            ..*n
        })
        .collect();
    out.sort_by(|a, b| a.start.total_cmp(&b.start));
    out
}

/// Seconds of music: the last note-off as the notes sound ([`playable`]), without a voice's
/// release; 0 without notes. What every command prints as a piece's length.
pub fn music_seconds(notes: &[TimedNote]) -> f64 {
    playable(notes)
        .iter()
        .map(TimedNote::end)
        .fold(0.0, f64::max)
}

/// Refuses notes whose music lasts longer than [`LONGEST_PIECE_SECONDS`], in one line.
pub fn check_length(notes: &[TimedNote]) -> Result<()> {
    let seconds = music_seconds(notes);
    if seconds > LONGEST_PIECE_SECONDS {
        bail!(
            "it lasts {}, longer than the {} a piece may last",
            duration_text(seconds),
            duration_text(LONGEST_PIECE_SECONDS)
        );
    }
    Ok(())
}

/// Seconds for people: "42.0 s", "12 min 5 s", "3 h 20 min", "41 days".
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else if s < 48.0 * 3600.0 {
        format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else {
        format!("{:.0} days", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(start: f64, duration: f64) -> TimedNote {
        TimedNote {
            start,
            duration,
            pitch: 60,
            velocity: 90,
        }
    }

    #[test]
    fn grid_timing() {
        let grid = [Note {
            onset: 4,
            pitch: 60,
            duration: 2,
        }];
        let t = from_grid(&grid, 120.0);
        assert_eq!(t[0].start, 0.5);
        assert_eq!(t[0].duration, 0.25);
        assert_eq!(t[0].velocity, DEFAULT_VELOCITY);
    }

    #[test]
    fn a_held_key_is_let_go_and_untimed_notes_are_dropped() {
        let notes = [
            note(5.0, 1e9),
            note(f64::NAN, 1.0),
            note(-1.0, 1.0),
            note(1.0, f64::INFINITY),
            note(2.0, 1.0),
        ];
        let p = playable(&notes);
        assert_eq!(p, vec![note(2.0, 1.0), note(5.0, LONGEST_NOTE_SECONDS)]);
        assert_eq!(music_seconds(&notes), 5.0 + LONGEST_NOTE_SECONDS);
        assert_eq!(music_seconds(&[]), 0.0);
    }

    #[test]
    fn pieces_past_two_hours_are_refused_in_words() {
        assert!(check_length(&[note(7000.0, 100.0)]).is_ok());
        let e = check_length(&[note(7290.0, 20.0)]).unwrap_err().to_string();
        assert_eq!(
            e,
            "it lasts 2 h 1 min, longer than the 2 h 0 min a piece may last"
        );
        assert_eq!(duration_text(4.5e6), "52 days");
        assert_eq!(duration_text(725.0), "12 min 5 s");
    }
}
