//! Notes on the time grid, and the exact conversion between notes and words.
//!
//! One grid step is a sixteenth note. [`to_words`] writes canonical words; [`from_words`] reads any
//! word sequence, skipping (and counting) what does not parse. `canon(w) = to_words(from_words(w))`.

use crate::music::words::{Word, MAX_DURATION, MAX_PITCH, MIN_PITCH};

/// Grid steps per quarter note.
pub const STEPS_PER_QUARTER: u32 = 4;
/// Quarter notes per bar: bars are counted as 4/4 everywhere (figures, plots, the screen).
pub const QUARTERS_PER_BAR: u32 = 4;
/// Grid steps in a bar of 4/4.
pub const STEPS_PER_BAR: u64 = (QUARTERS_PER_BAR * STEPS_PER_QUARTER) as u64;

/// A note on the grid: it starts at step `onset` and sounds for `duration` steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Note {
    pub onset: u64,
    pub pitch: u8,
    pub duration: u32,
}

/// What [`canonicalise`] changed, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CanonReport {
    /// Notes outside 21..=108, dropped.
    pub out_of_range: usize,
    /// Second notes of one pitch at one step, merged into the longer.
    pub duplicates: usize,
    /// Notes cut short because their pitch was struck again while they sounded.
    pub cut_by_restrike: usize,
    /// Notes longer than 128 steps, cut to 128.
    pub cut_to_max: usize,
}

impl CanonReport {
    pub fn add(&mut self, other: CanonReport) {
        self.out_of_range += other.out_of_range;
        self.duplicates += other.duplicates;
        self.cut_by_restrike += other.cut_by_restrike;
        self.cut_to_max += other.cut_to_max;
    }
}

/// Puts notes in canonical form (docs/encoding.md): in piano range, one note per pitch per step
/// (the longer wins), a re-struck pitch ends the sounding note, durations 1..=128, sorted by onset
/// and then highest pitch first.
pub fn canonicalise(notes: &mut Vec<Note>) -> CanonReport {
    let mut report = CanonReport::default();
    let before = notes.len();
    notes.retain(|n| (MIN_PITCH..=MAX_PITCH).contains(&n.pitch));
    report.out_of_range = before - notes.len();

    // Group by pitch, then onset, longest first, so duplicates and re-strikes sit side by side.
    notes.sort_unstable_by(|a, b| {
        (a.pitch, a.onset)
            .cmp(&(b.pitch, b.onset))
            .then(b.duration.cmp(&a.duration))
    });
    let before = notes.len();
    notes.dedup_by(|later, kept| later.pitch == kept.pitch && later.onset == kept.onset);
    report.duplicates = before - notes.len();

    for i in 0..notes.len() {
        let next_onset = notes
            .get(i + 1)
            .filter(|next| next.pitch == notes[i].pitch)
            .map(|next| next.onset);
        let note = &mut notes[i];
        note.duration = note.duration.max(1);
        if let Some(next) = next_onset {
            let room = (next - note.onset).min(u32::MAX as u64) as u32;
            if note.duration > room {
                note.duration = room;
                report.cut_by_restrike += 1;
            }
        }
        if note.duration > MAX_DURATION {
            note.duration = MAX_DURATION;
            report.cut_to_max += 1;
        }
    }
    notes.sort_unstable_by(|a, b| a.onset.cmp(&b.onset).then(b.pitch.cmp(&a.pitch)));
    report
}

/// Pushes `sepxx d<k>` words for a shift of `steps`, split into pieces of at most 128.
fn push_shift(words: &mut Vec<Word>, mut steps: u64) {
    while steps > 0 {
        let k = steps.min(MAX_DURATION as u64);
        words.push(Word::Sep);
        words.push(Word::Dur(k as u32));
        steps -= k;
    }
}

/// The bar (0-based, of 4/4) each word happens in: a time shift moves time on after its duration word.
pub fn word_bars(words: &[Word]) -> Vec<u64> {
    let mut cursor = 0u64;
    let mut shift = false;
    words
        .iter()
        .map(|word| {
            let bar = cursor / STEPS_PER_BAR;
            match word {
                Word::Sep => shift = true,
                Word::Dur(k) if shift => {
                    cursor += *k as u64;
                    shift = false;
                }
                _ => shift = false,
            }
            bar
        })
        .collect()
}

/// Writes notes as canonical words, `START` ... `END`. The notes are canonicalised first.
pub fn to_words(notes: &[Note]) -> Vec<Word> {
    let mut notes = notes.to_vec();
    canonicalise(&mut notes);
    canonical_words(&notes)
}

/// Writes notes that are already canonical (see [`canonicalise`]) as words, `START` ... `END`,
/// without sorting them again.
pub fn canonical_words(notes: &[Note]) -> Vec<Word> {
    let mut words = Vec::with_capacity(notes.len() * 3 + 2);
    words.push(Word::Start);
    words.extend(body_words(notes));
    words.push(Word::End);
    words
}

/// Words of canonical notes without `START`/`END` (time starts at step 0).
fn body_words(notes: &[Note]) -> Vec<Word> {
    words_between(notes, 0, 0)
}

/// Words of canonical notes that start at or after grid step `origin`, read from there (the
/// first word may be a shift from it), then a shift on to `until` where that lies after the last
/// onset: a part of a piece with given ends, without `START`/`END`.
pub fn words_between(notes: &[Note], origin: u64, until: u64) -> Vec<Word> {
    let mut words = Vec::with_capacity(notes.len() * 3 + 2);
    let mut cursor = origin;
    for n in notes {
        push_shift(&mut words, n.onset - cursor);
        cursor = n.onset;
        words.push(Word::Note(n.pitch));
        words.push(Word::Dur(n.duration));
    }
    push_shift(&mut words, until.saturating_sub(cursor));
    words
}

/// The step where the last note ends (0 without notes).
pub fn end_step(notes: &[Note]) -> u64 {
    notes
        .iter()
        .map(|n| n.onset + n.duration as u64)
        .max()
        .unwrap_or(0)
}

/// What [`from_words`] read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub notes: Vec<Note>,
    /// Words that fit no `n<p> d<k>` or `sepxx d<k>` pair (a lone duration, a pitch with no
    /// duration, a misplaced `sepxx`), skipped.
    pub skipped: usize,
    /// Step after the last word: the cursor, or the end of the last note if later.
    pub end: u64,
    /// Where the last time shift left the cursor: the words read so far hold every note that
    /// starts before it, however the piece goes on.
    pub cursor: u64,
}

/// Reads words into notes: `n<p> d<k>` places a note at the cursor, `sepxx d<k>` moves the
/// cursor. `START`/`END` mark the piece and are not counted; anything else is skipped and counted.
/// Notes come out in word order, not canonicalised (pitches outside 21..=108 are kept here).
pub fn from_words(words: &[Word]) -> Decoded {
    let mut out = Decoded::default();
    let mut cursor = 0u64;
    let mut i = 0;
    while i < words.len() {
        match (words[i], words.get(i + 1)) {
            (Word::Note(pitch), Some(&Word::Dur(duration))) => {
                out.notes.push(Note {
                    onset: cursor,
                    pitch,
                    duration,
                });
                out.end = out.end.max(cursor.saturating_add(duration as u64));
                i += 2;
            }
            (Word::Sep, Some(&Word::Dur(k))) => {
                cursor = cursor.saturating_add(k as u64);
                i += 2;
            }
            (Word::Start | Word::End, _) => i += 1,
            _ => {
                out.skipped += 1;
                i += 1;
            }
        }
    }
    out.end = out.end.max(cursor);
    out.cursor = cursor;
    out
}

/// The canonical form of any word sequence: `to_words(from_words(words))`.
pub fn canon(words: &[Word]) -> Vec<Word> {
    to_words(&from_words(words).notes)
}

/// Canonical form of a fragment of a piece (a training window): keeps a leading time shift, and
/// `START`/`END` only where the fragment had them. A trailing shift with no note after it is lost.
pub fn canon_fragment(words: &[Word]) -> Vec<Word> {
    let mut notes = from_words(words).notes;
    canonicalise(&mut notes);
    let mut out = Vec::with_capacity(words.len() + 2);
    if words.first() == Some(&Word::Start) {
        out.push(Word::Start);
    }
    out.extend(body_words(&notes));
    if words.len() > 1 && words.last() == Some(&Word::End) {
        out.push(Word::End);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_belong_to_the_bar_they_happen_in() {
        let w =
            crate::music::words::parse_words("START n60 d4 sepxx d16 n62 d4 sepxx d32 n64 d4 END")
                .0;
        assert_eq!(word_bars(&w), [0, 0, 0, 0, 0, 1, 1, 1, 1, 3, 3, 3]);
    }
    use crate::music::words::{parse_words, words_to_string};

    fn canon_str(s: &str) -> String {
        words_to_string(&canon(&parse_words(s).0))
    }

    #[test]
    fn example_from_the_brief() {
        let s = "START n72 d4 n64 d4 n60 d8 sepxx d4 n67 d4 END";
        assert_eq!(canon_str(s), s);
        let d = from_words(&parse_words(s).0);
        assert_eq!(d.notes.len(), 4);
        assert_eq!(
            d.notes[3],
            Note {
                onset: 4,
                pitch: 67,
                duration: 4
            }
        );
        assert_eq!(d.end, 8);
    }

    #[test]
    fn canonical_rules() {
        // Chord order, duplicate at one step (longer wins), re-strike cut, long shift split.
        assert_eq!(
            canon_str("START n60 d2 n72 d4 n60 d6 sepxx d2 n60 d1 sepxx d300 n61 d200"),
            "START n72 d4 n60 d2 sepxx d2 n60 d1 sepxx d128 sepxx d128 sepxx d44 n61 d128 END"
        );
        // Out-of-range pitches dropped, silence at the start kept, junk skipped.
        assert_eq!(
            canon_str("START sepxx d8 n10 d4 d3 n50 sepxx n50 d1"),
            "START sepxx d8 n50 d1 END"
        );
        assert_eq!(canon_str("START"), "START END");
        assert_eq!(canon_str(""), "START END");
    }

    #[test]
    fn skipped_words_are_counted() {
        let d = from_words(&parse_words("START d4 n60 n61 d2 sepxx sepxx d1 n62 END").0);
        // d4 (lone), n60 (no duration), first sepxx (followed by sepxx), n62 (followed by END).
        assert_eq!(d.skipped, 4);
        assert_eq!(
            d.notes,
            vec![Note {
                onset: 0,
                pitch: 61,
                duration: 2
            }]
        );
    }

    #[test]
    fn fragments_keep_their_shape() {
        let w = parse_words("d4 n64 d2 n67 d2 sepxx d2 n60 d4").0;
        assert_eq!(
            words_to_string(&canon_fragment(&w)),
            "n67 d2 n64 d2 sepxx d2 n60 d4"
        );
        let w = parse_words("sepxx d3 n60 d4 END").0;
        assert_eq!(words_to_string(&canon_fragment(&w)), "sepxx d3 n60 d4 END");
    }
}
