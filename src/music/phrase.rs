//! A phrase played on a keyboard, caught and put on the grid (what "answer what I play" sends
//! to the model). A phrase begins at its first note and ends after a silence of `gap_beats`
//! (every key up and the sustain pedal lifted: a held pedal keeps the strings sounding), or when
//! it has filled `max_bars`. Its notes are quantised as a MIDI file's are (onset and length
//! rounded to sixteenths apart, a length at least one; the length is the key's, not the pedal's),
//! at the tempo given, from its first note or from the bar line a count-in set.

use crate::music::midi::MidiPiece;
use crate::music::notes::{canonicalise, Note, STEPS_PER_BAR, STEPS_PER_QUARTER};

/// What a keyboard does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyEvent {
    Down {
        pitch: u8,
        velocity: u8,
    },
    Up {
        pitch: u8,
    },
    /// The sustain pedal pressed (`true`) or lifted.
    Pedal(bool),
}

/// How phrases are told apart and put on the grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhraseRules {
    /// The tempo the grid is laid at (the screen's).
    pub bpm: f64,
    /// Beats of silence that end a phrase.
    pub gap_beats: f64,
    /// A phrase ends when a note would start past this many bars (`None`: only silence ends it).
    pub max_bars: Option<u32>,
    /// Seconds of the bar line a count-in set, on the same clock as the events; `None`: the
    /// first note of each phrase is step 0.
    pub origin: Option<f64>,
}

impl PhraseRules {
    fn steps_per_second(&self) -> f64 {
        self.bpm / 60.0 * STEPS_PER_QUARTER as f64
    }

    /// Seconds a bar of 4/4 lasts at the tempo.
    pub fn bar_seconds(&self) -> f64 {
        STEPS_PER_BAR as f64 / self.steps_per_second()
    }
}

/// A phrase caught: canonical grid notes from step 0, and when it began and ended (seconds on
/// the events' clock).
#[derive(Clone, Debug, PartialEq)]
pub struct Phrase {
    pub notes: Vec<Note>,
    pub began: f64,
    pub ended: f64,
}

/// A key held: when it went down.
#[derive(Clone, Copy, Debug)]
struct Held {
    pitch: u8,
    since: f64,
}

/// Catches phrases from key events given in time order (see the module doc).
#[derive(Clone, Debug)]
pub struct Catcher {
    rules: PhraseRules,
    /// The grid's step 0 of the phrase being caught, once it has begun.
    origin: Option<f64>,
    began: f64,
    held: Vec<Held>,
    pedal: bool,
    /// When the last sound stopped (the last key up or the pedal lifted), while all is quiet.
    quiet_since: f64,
    /// Played notes: start and end in seconds, and the pitch.
    played: Vec<(f64, f64, u8)>,
}

impl Catcher {
    pub fn new(rules: PhraseRules) -> Catcher {
        Catcher {
            rules,
            origin: None,
            began: 0.0,
            held: Vec::new(),
            pedal: false,
            quiet_since: 0.0,
            played: Vec::new(),
        }
    }

    /// Whether a phrase has begun and not yet been given.
    pub fn is_catching(&self) -> bool {
        self.origin.is_some()
    }

    /// Takes one event at `at` seconds (never earlier than the last). Gives the phrase this
    /// event ends: a note past `max_bars` ends the phrase before it and begins the next.
    pub fn push(&mut self, at: f64, event: KeyEvent) -> Option<Phrase> {
        let mut done = None;
        match event {
            KeyEvent::Down { pitch, velocity: _ } => {
                if let Some(limit) = self.limit().filter(|&limit| at >= limit) {
                    done = self.finish(limit);
                }
                if self.origin.is_none() {
                    self.origin = Some(self.rules.origin.map_or(at, |o| self.bar_line(o, at)));
                    self.began = at;
                }
                // A key struck again while held ends its note first.
                self.release(at, pitch);
                self.held.push(Held { pitch, since: at });
            }
            KeyEvent::Up { pitch } => self.release(at, pitch),
            KeyEvent::Pedal(down) => self.pedal = down,
        }
        if self.held.is_empty() && !self.pedal {
            self.quiet_since = at;
        }
        done
    }

    /// Gives the phrase if it has ended by `now`: all quiet for the gap.
    pub fn poll(&mut self, now: f64) -> Option<Phrase> {
        let quiet = self.held.is_empty() && !self.pedal;
        let gap = self.rules.gap_beats * 60.0 / self.rules.bpm;
        if self.origin.is_some() && quiet && now - self.quiet_since >= gap {
            return self.finish(self.quiet_since);
        }
        None
    }

    /// Seconds where the bar count is reached, once a phrase has begun.
    fn limit(&self) -> Option<f64> {
        let bars = self.rules.max_bars?;
        Some(self.origin? + bars as f64 * self.rules.bar_seconds())
    }

    /// The count-in's bar line at or before `at` (bars of 4/4 from `origin`).
    fn bar_line(&self, origin: f64, at: f64) -> f64 {
        let bar = self.rules.bar_seconds();
        // Half a sixteenth early still counts as on the bar line.
        let half_step = 0.5 / self.rules.steps_per_second();
        origin + ((at - origin + half_step) / bar).floor().max(0.0) * bar
    }

    fn release(&mut self, at: f64, pitch: u8) {
        if let Some(i) = self.held.iter().position(|h| h.pitch == pitch) {
            let held = self.held.remove(i);
            self.played.push((held.since, at, pitch));
        }
    }

    /// Ends the phrase at `end` seconds (keys still held end there) and puts it on the grid.
    fn finish(&mut self, end: f64) -> Option<Phrase> {
        let origin = self.origin.take()?;
        for held in std::mem::take(&mut self.held) {
            self.played
                .push((held.since, end.max(held.since), held.pitch));
        }
        let rate = self.rules.steps_per_second();
        let mut notes: Vec<Note> = self
            .played
            .drain(..)
            .map(|(start, stop, pitch)| Note {
                onset: ((start - origin) * rate).round().max(0.0) as u64,
                pitch,
                duration: (((stop - start) * rate).round() as u32).max(1),
            })
            .collect();
        canonicalise(&mut notes);
        Some(Phrase {
            notes,
            began: self.began,
            ended: end,
        })
    }
}

/// A MIDI file's notes as a keyboard would play them at `bpm` (its own tempo map set aside):
/// key events in time order, seconds from its start. What `listen --midi-in-file` plays.
pub fn key_events(piece: &MidiPiece, bpm: f64) -> Vec<(f64, KeyEvent)> {
    let seconds = |quarters: f64| quarters * 60.0 / bpm;
    let mut events: Vec<(f64, KeyEvent)> = Vec::with_capacity(piece.notes.len() * 2);
    for n in &piece.notes {
        events.push((
            seconds(n.start),
            KeyEvent::Down {
                pitch: n.pitch,
                velocity: n.velocity,
            },
        ));
        events.push((seconds(n.end), KeyEvent::Up { pitch: n.pitch }));
    }
    // At one instant keys go up before others go down, so a key struck again is two notes.
    events.sort_by(|a, b| {
        let up_first = |e: &KeyEvent| !matches!(e, KeyEvent::Up { .. });
        a.0.total_cmp(&b.0)
            .then(up_first(&a.1).cmp(&up_first(&b.1)))
    });
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::read::piece_from_midi;

    const RULES: PhraseRules = PhraseRules {
        bpm: 120.0,
        gap_beats: 2.0,
        max_bars: None,
        origin: None,
    };

    fn down(pitch: u8) -> KeyEvent {
        KeyEvent::Down {
            pitch,
            velocity: 90,
        }
    }

    fn up(pitch: u8) -> KeyEvent {
        KeyEvent::Up { pitch }
    }

    #[test]
    fn a_played_phrase_lands_on_the_grid_and_ends_after_the_gap() {
        // At 120 bpm a sixteenth is 0.125 s; the playing is a little early and late.
        let mut c = Catcher::new(RULES);
        let played = [
            (10.00, down(60)),
            (10.24, up(60)),
            (10.26, down(64)),
            (10.27, down(67)),
            (10.74, up(64)),
            (10.76, up(67)),
        ];
        for (at, e) in played {
            assert_eq!(c.push(at, e), None);
        }
        assert!(c.is_catching());
        // Two beats are one second: not yet at 11.7, ended at 11.8.
        assert_eq!(c.poll(11.7), None);
        let phrase = c.poll(11.8).unwrap();
        let notes: Vec<(u64, u8, u32)> = phrase
            .notes
            .iter()
            .map(|n| (n.onset, n.pitch, n.duration))
            .collect();
        assert_eq!(notes, [(0, 60, 2), (2, 67, 4), (2, 64, 4)]);
        assert_eq!((phrase.began, phrase.ended), (10.0, 10.76));
        assert!(!c.is_catching());
        assert_eq!(c.poll(20.0), None, "one phrase, given once");
    }

    #[test]
    fn a_held_pedal_keeps_the_phrase_open() {
        let mut c = Catcher::new(RULES);
        c.push(0.0, KeyEvent::Pedal(true));
        c.push(0.1, down(60));
        c.push(0.3, up(60));
        assert_eq!(c.poll(5.0), None, "the pedal still holds the string");
        c.push(6.0, KeyEvent::Pedal(false));
        assert_eq!(c.poll(6.9), None);
        let phrase = c.poll(7.0).unwrap();
        // The note keeps the key's length, as a MIDI file's does.
        assert_eq!(phrase.notes[0].duration, 2);
    }

    #[test]
    fn a_bar_count_ends_the_phrase_and_the_next_note_begins_another() {
        let rules = PhraseRules {
            max_bars: Some(1),
            ..RULES
        };
        let mut c = Catcher::new(rules);
        c.push(0.0, down(60));
        c.push(1.5, up(60));
        c.push(1.5, down(62));
        // One bar of 4/4 at 120 bpm is two seconds; 62 is still held there.
        let first = c.push(2.0, down(64)).unwrap();
        let notes: Vec<(u64, u8, u32)> = first
            .notes
            .iter()
            .map(|n| (n.onset, n.pitch, n.duration))
            .collect();
        assert_eq!(notes, [(0, 60, 12), (12, 62, 4)]);
        c.push(2.5, up(64));
        let second = c.poll(4.0).unwrap();
        assert_eq!(second.notes.len(), 1);
        assert_eq!((second.notes[0].onset, second.notes[0].pitch), (0, 64));
    }

    #[test]
    fn a_count_in_sets_the_bar_line_the_grid_counts_from() {
        let rules = PhraseRules {
            origin: Some(100.0),
            ..RULES
        };
        let mut c = Catcher::new(rules);
        // The count-in's second bar starts at 102 s; the first note is a sixteenth after it
        // (and one a hair early lands on the bar line).
        c.push(102.125, down(60));
        c.push(102.25, up(60));
        c.push(103.99, down(62));
        c.push(104.1, up(62));
        let phrase = c.poll(106.0).unwrap();
        assert_eq!(phrase.notes[0].onset, 1);
        assert_eq!(phrase.notes[1].onset, 16);
    }

    #[test]
    fn a_midi_file_played_as_keys_is_caught_as_its_own_grid_notes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/examples/continuation.mid"
        );
        let bytes = std::fs::read(path).unwrap();
        let piece = crate::music::midi::read_midi(&bytes).unwrap();
        let bpm = 96.0;
        let mut c = Catcher::new(PhraseRules { bpm, ..RULES });
        let mut phrases = Vec::new();
        let events = key_events(&piece, bpm);
        for &(at, e) in &events {
            phrases.extend(c.poll(at));
            phrases.extend(c.push(at, e));
        }
        phrases.extend(c.poll(events.last().unwrap().0 + 60.0));
        // The file's own grid notes, in phrases: each phrase's notes moved to where it began.
        let words = piece_from_midi(&bytes, &mut Default::default()).unwrap();
        let want = crate::music::notes::from_words(&words).notes;
        let rate = bpm / 60.0 * 4.0;
        let mut got: Vec<Note> = phrases
            .iter()
            .flat_map(|p| {
                let shift = (p.began * rate).round() as u64;
                p.notes.iter().map(move |n| Note {
                    onset: n.onset + shift,
                    ..*n
                })
            })
            .collect();
        canonicalise(&mut got);
        let first = want[0].onset;
        let want: Vec<Note> = want
            .iter()
            .map(|n| Note {
                onset: n.onset - first,
                ..*n
            })
            .collect();
        let first = got[0].onset;
        for n in got.iter_mut() {
            n.onset -= first;
        }
        assert!(!phrases.is_empty());
        assert_eq!(got, want);
    }
}
