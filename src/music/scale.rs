//! Keys as a musician names them (`C`, `F#`, `Bb`, `Dm`, `F#m`, `A minor`): a tonic and a mode,
//! major or natural minor, and the seven pitch classes each holds. The scale lock of generation
//! masks every pitch outside one of them.

use std::fmt;
use std::str::FromStr;

/// Pitch-class names, sharps for C#, F#, flats for Eb, Ab, Bb (as a lead sheet writes them).
pub const PITCH_CLASSES: [&str; 12] = [
    "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];

/// Semitones above the tonic of the major scale's seven degrees.
pub const MAJOR_STEPS: [u8; 7] = [0, 2, 4, 5, 7, 9, 11];
/// Semitones above the tonic of the natural minor scale's seven degrees.
pub const MINOR_STEPS: [u8; 7] = [0, 2, 3, 5, 7, 8, 10];

/// Major or natural minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Major,
    Minor,
}

/// A key: its tonic's pitch class (0 = C) and its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scale {
    pub tonic: u8,
    pub mode: Mode,
}

/// What `--scale` accepts, for error messages and `--help`.
pub const ACCEPTED_FORMS: &str =
    "a note name C D E F G A B, with # or b (C#, Bb), then nothing or \
     'major' for major, and 'm', 'min' or 'minor' for natural minor (Dm, F#m, \"A minor\"); or off";

impl Scale {
    pub const fn major(tonic: u8) -> Scale {
        Scale {
            tonic: tonic % 12,
            mode: Mode::Major,
        }
    }

    pub const fn minor(tonic: u8) -> Scale {
        Scale {
            tonic: tonic % 12,
            mode: Mode::Minor,
        }
    }

    /// The 24 keys: C major, C minor, C# major, ... B minor.
    pub fn all() -> impl Iterator<Item = Scale> {
        (0..12).flat_map(|t| [Scale::major(t), Scale::minor(t)])
    }

    /// Semitones above the tonic of the seven degrees.
    pub fn steps(self) -> [u8; 7] {
        match self.mode {
            Mode::Major => MAJOR_STEPS,
            Mode::Minor => MINOR_STEPS,
        }
    }

    /// Whether MIDI pitch `pitch` lies in the scale.
    pub fn contains(self, pitch: u8) -> bool {
        let class = (pitch % 12 + 12 - self.tonic) % 12;
        self.steps().contains(&class)
    }

    /// The major scale, or the relative minor, with the most of the given pitches in it: its
    /// share of them. `None` for no pitches.
    pub fn best_for(pitches: impl IntoIterator<Item = u8>) -> Option<(Scale, f64)> {
        let mut classes = [0usize; 12];
        let mut total = 0usize;
        for p in pitches {
            classes[p as usize % 12] += 1;
            total += 1;
        }
        if total == 0 {
            return None;
        }
        let held = |s: Scale| {
            s.steps()
                .iter()
                .map(|d| classes[(s.tonic + d) as usize % 12])
                .sum::<usize>()
        };
        // Between a major scale and its relative minor (the same notes), the one whose tonic
        // sounds more often; then majors first, lowest tonic first.
        let rank = |s: Scale| (held(s), classes[s.tonic as usize]);
        let majors_first = (0..12).map(Scale::major).chain((0..12).map(Scale::minor));
        let best = majors_first.fold(
            Scale::major(0),
            |best, s| {
                if rank(s) > rank(best) {
                    s
                } else {
                    best
                }
            },
        );
        Some((best, held(best) as f64 / total as f64))
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Major => "major",
            Mode::Minor => "minor",
        };
        write!(f, "{} {mode}", PITCH_CLASSES[self.tonic as usize])
    }
}

/// A key name that is not one: says what was given and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{given}' is not a key: use {ACCEPTED_FORMS}")]
pub struct UnknownKey {
    pub given: String,
}

impl FromStr for Scale {
    type Err = UnknownKey;

    fn from_str(text: &str) -> Result<Scale, UnknownKey> {
        let err = || UnknownKey {
            given: text.to_string(),
        };
        let (tonic, rest) = note_letter(text.trim()).ok_or_else(err)?;
        let tonic = (tonic + 12) as u8;
        let mode = match rest.trim().to_ascii_lowercase().as_str() {
            "" | "maj" | "major" => Mode::Major,
            "m" | "min" | "minor" => Mode::Minor,
            _ => return Err(err()),
        };
        Ok(Scale {
            tonic: tonic % 12,
            mode,
        })
    }
}

/// A note's letter and accidental at the start of `text` (`C`, `F#`, `Bb`, `E♭`): semitones above
/// C (-1 for Cb to 12 for B#), and the rest of the text.
pub(crate) fn note_letter(text: &str) -> Option<(i32, &str)> {
    let mut chars = text.chars();
    let natural = match chars.next()?.to_ascii_uppercase() {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let rest = chars.as_str();
    Some(if let Some(r) = rest.strip_prefix(['#', '♯']) {
        (natural + 1, r)
    } else if let Some(r) = rest.strip_prefix(['b', '♭']) {
        (natural - 1, r)
    } else {
        (natural, rest)
    })
}

/// `--scale`'s value: `off`, or a key.
pub fn parse_lock(text: &str) -> Result<Option<Scale>, UnknownKey> {
    if text.trim().eq_ignore_ascii_case("off") {
        Ok(None)
    } else {
        text.parse().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_parse_as_musicians_write_them() {
        let p = |t: &str| t.parse::<Scale>().unwrap();
        assert_eq!(p("C"), Scale::major(0));
        assert_eq!(p("F#"), Scale::major(6));
        assert_eq!(p("Bb"), Scale::major(10));
        assert_eq!(p("Dm"), Scale::minor(2));
        assert_eq!(p("F#m"), Scale::minor(6));
        assert_eq!(p("A minor"), Scale::minor(9));
        assert_eq!(p("eb min"), Scale::minor(3));
        assert_eq!(p("G major"), Scale::major(7));
        assert_eq!(p("Cb"), Scale::major(11));
        assert_eq!(p("B#"), Scale::major(0));
        assert_eq!(parse_lock("off").unwrap(), None);
        assert_eq!(parse_lock("E").unwrap(), Some(Scale::major(4)));
        for bad in ["", "H", "C##", "Dorian", "Cx", "m"] {
            let e = bad.parse::<Scale>().unwrap_err().to_string();
            assert!(
                e.contains("is not a key") && e.contains("F#m"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn names_round_trip_for_all_24_keys() {
        let all: Vec<Scale> = Scale::all().collect();
        assert_eq!(all.len(), 24);
        for s in all {
            assert_eq!(s.to_string().parse::<Scale>().unwrap(), s, "{s}");
        }
        assert_eq!(Scale::minor(6).to_string(), "F# minor");
    }

    #[test]
    fn scales_hold_their_seven_pitch_classes() {
        let c = Scale::major(0);
        let held: Vec<u8> = (60..72).filter(|&p| c.contains(p)).collect();
        assert_eq!(held, [60, 62, 64, 65, 67, 69, 71]);
        // A minor holds the same notes as C major; D minor has Bb, not B.
        assert!((21..=108).all(|p| c.contains(p) == Scale::minor(9).contains(p)));
        assert!(Scale::minor(2).contains(70) && !Scale::minor(2).contains(71));
        assert!(Scale::all().all(|s| (0..12).filter(|&p| s.contains(p)).count() == 7));
    }

    #[test]
    fn the_best_scale_is_the_one_that_holds_the_pitches() {
        // G major: G A B C D E F#.
        let (s, share) = Scale::best_for([67, 69, 71, 72, 74, 76, 78, 79]).unwrap();
        assert_eq!((s, share), (Scale::major(7), 1.0));
        assert_eq!(Scale::best_for([]), None);
        // A minor's notes with A the most frequent: A minor, not C major.
        let (s, _) = Scale::best_for([57, 60, 64, 69, 69, 71, 62]).unwrap();
        assert_eq!(s, Scale::minor(9));
        // One out of four outside: 0.75.
        let (_, share) = Scale::best_for([60, 64, 67, 61]).unwrap();
        assert_eq!(share, 0.75);
    }
}
