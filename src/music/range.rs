//! A pitch range as a musician names it (`C3-C6`, `F#2-Bb4`): every new note inside it, hard, in
//! the grammar (`generate --range`).

use crate::music::scale::{note_letter, Scale, PITCH_CLASSES};
use crate::music::words::{MAX_PITCH, MIN_PITCH};
use std::fmt;
use std::str::FromStr;

/// The lowest and highest pitch allowed, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PitchRange {
    pub low: u8,
    pub high: u8,
}

impl PitchRange {
    pub fn contains(self, pitch: u8) -> bool {
        (self.low..=self.high).contains(&pitch)
    }

    /// Whether a pitch of the range lies in `scale` too (a range of two notes in a key without
    /// them leaves nothing to play).
    pub fn meets(self, scale: Option<Scale>) -> bool {
        (self.low..=self.high).any(|p| scale.is_none_or(|s| s.contains(p)))
    }
}

/// A note name and octave, middle C being `C4` (60): `C3`, `F#4`, `Bb2`.
pub fn parse_note(text: &str) -> Option<u8> {
    let (class, octave) = note_letter(text.trim())?;
    let octave: i32 = octave.parse().ok()?;
    let pitch = (octave + 1) * 12 + class;
    (0..=127).contains(&pitch).then_some(pitch as u8)
}

/// A pitch's name, middle C being `C4`.
pub fn note_name(pitch: u8) -> String {
    format!(
        "{}{}",
        PITCH_CLASSES[pitch as usize % 12],
        pitch as i32 / 12 - 1
    )
}

impl FromStr for PitchRange {
    type Err = String;

    fn from_str(text: &str) -> Result<PitchRange, String> {
        let bad = || format!("{text:?} is not a range of notes like C3-C6 (middle C is C4)");
        let (low, high) = text.split_once('-').ok_or_else(bad)?;
        let (low, high) = (
            parse_note(low).ok_or_else(bad)?,
            parse_note(high).ok_or_else(bad)?,
        );
        if low > high {
            return Err(format!("{text}: the low note comes first"));
        }
        if high < MIN_PITCH || low > MAX_PITCH {
            return Err(format!(
                "{text} lies off the piano ({}-{})",
                note_name(MIN_PITCH),
                note_name(MAX_PITCH)
            ));
        }
        Ok(PitchRange { low, high })
    }
}

impl fmt::Display for PitchRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", note_name(self.low), note_name(self.high))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_musicians_write_them() {
        assert_eq!("C3-C6".parse(), Ok(PitchRange { low: 48, high: 84 }));
        assert_eq!("F#2-Bb4".parse(), Ok(PitchRange { low: 42, high: 70 }));
        assert_eq!(parse_note("A0"), Some(21));
        assert_eq!(parse_note("C8"), Some(108));
        assert!("C6-C3"
            .parse::<PitchRange>()
            .unwrap_err()
            .contains("low note comes first"));
        assert!("C9-G9"
            .parse::<PitchRange>()
            .unwrap_err()
            .contains("off the piano"));
        assert!("C3".parse::<PitchRange>().is_err() && "H3-C4".parse::<PitchRange>().is_err());
        assert_eq!(PitchRange { low: 48, high: 84 }.to_string(), "C3-C6");
        // Two notes, C#4 and D#4, in no pitch of C major.
        let narrow: PitchRange = "C#4-C#4".parse().unwrap();
        assert!(!narrow.meets(Some(Scale::major(0))) && narrow.meets(None));
    }
}
