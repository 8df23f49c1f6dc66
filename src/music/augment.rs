//! Data augmentation on words: transposition and time stretch, each ending in canonical form.
//!
//! Both work on whole pieces and on fragments (training windows): a leading shift and
//! `START`/`END` are kept where the input had them.

use crate::music::notes::{canon_fragment, from_words, Note};
use crate::music::words::{Word, MAX_DURATION, MAX_PITCH, MIN_PITCH};

/// Moves every pitch by `semitones`; a pitch that leaves 21..=108 is folded back by octaves, so
/// no note is lost (two notes that land on one pitch at one step merge, as canonical form asks).
pub fn transpose(words: &[Word], semitones: i32) -> Vec<Word> {
    let moved: Vec<Word> = words
        .iter()
        .map(|&w| match w {
            Word::Note(p) => Word::Note(fold_into_piano(p as i32 + semitones)),
            other => other,
        })
        .collect();
    canon_fragment(&moved)
}

/// Folds a pitch into 21..=108 by whole octaves.
pub fn fold_into_piano(mut pitch: i32) -> u8 {
    while pitch > MAX_PITCH as i32 {
        pitch -= 12;
    }
    while pitch < MIN_PITCH as i32 {
        pitch += 12;
    }
    pitch as u8
}

/// Multiplies every note duration and every shift between onsets by `factor`, rounding to the
/// nearest step, at least 1 (so onsets never merge). Durations over 128 are cut to 128; shifts over
/// 128 are split, never cut, so later notes keep their time. A shift written as several words
/// (`sepxx d128 sepxx d72`) is stretched as one. `factor` must be finite and positive.
pub fn stretch(words: &[Word], factor: f64) -> Vec<Word> {
    assert!(
        factor.is_finite() && factor > 0.0,
        "stretch factor must be positive"
    );
    let scale = |steps: u64| ((steps as f64 * factor).round() as u64).max(1);
    let decoded = from_words(words);
    let mut notes: Vec<Note> = Vec::with_capacity(decoded.notes.len());
    let (mut old_cursor, mut new_cursor) = (0u64, 0u64);
    for n in decoded.notes {
        if n.onset != old_cursor {
            new_cursor = new_cursor.saturating_add(scale(n.onset - old_cursor));
            old_cursor = n.onset;
        }
        notes.push(Note {
            onset: new_cursor,
            pitch: n.pitch,
            duration: scale(n.duration as u64).min(MAX_DURATION as u64) as u32,
        });
    }
    // Rebuild words from the stretched notes, keeping the fragment's ends.
    let mut rebuilt = Vec::with_capacity(notes.len() * 3 + 2);
    if words.first() == Some(&Word::Start) {
        rebuilt.push(Word::Start);
    }
    let mut cursor = 0u64;
    for n in &notes {
        if n.onset > cursor {
            rebuilt.push(Word::Sep);
            rebuilt.push(Word::Dur((n.onset - cursor).min(u32::MAX as u64) as u32));
            cursor = n.onset;
        }
        rebuilt.push(Word::Note(n.pitch));
        rebuilt.push(Word::Dur(n.duration));
    }
    if words.len() > 1 && words.last() == Some(&Word::End) {
        rebuilt.push(Word::End);
    }
    canon_fragment(&rebuilt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::words::{parse_words, words_to_string};

    fn s(words: Vec<Word>) -> String {
        words_to_string(&words)
    }

    #[test]
    fn transpose_folds_by_octaves() {
        let w = parse_words("START n108 d4 n60 d2 END").0;
        assert_eq!(s(transpose(&w, 2)), "START n98 d4 n62 d2 END");
        let w = parse_words("START n21 d4 END").0;
        assert_eq!(s(transpose(&w, -1)), "START n32 d4 END");
        // Folding n107 + 13 = 120 -> 108 lands on n95 + 13 = 108: the longer note wins.
        let w = parse_words("START n107 d1 n95 d3 END").0;
        assert_eq!(s(transpose(&w, 13)), "START n108 d3 END");
    }

    #[test]
    fn stretch_scales_notes_and_shifts() {
        let w = parse_words("START n60 d4 sepxx d3 n62 d1 sepxx d128 sepxx d72 n64 d100 END").0;
        assert_eq!(
            s(stretch(&w, 0.5)),
            "START n60 d2 sepxx d2 n62 d1 sepxx d100 n64 d50 END"
        );
        assert_eq!(
            s(stretch(&w, 1.5)),
            "START n60 d6 sepxx d5 n62 d2 sepxx d128 sepxx d128 sepxx d44 n64 d128 END"
        );
    }
}
