//! The fill-in-the-middle layout (Bavarian et al. 2022): music cut at two grid steps a < b is
//! read as prefix, suffix, middle, so a left-to-right model writes the middle with both sides in
//! view:
//!
//! ```text
//! FILL_PRE  [START] the notes before a, a shift on to a
//! FILL_SUF  a shift from a to the first note from b on, those notes [END]
//! FILL_MID  the notes in [a, b) read from a, a shift on to b, END
//! ```
//!
//! Times are relative as everywhere in the encoding: the prefix ends at a, the suffix's first
//! shift says how far after a its music resumes, and the middle starts afresh at a. Training
//! lays out a share of its windows so ([`arrange`]); a fill gives the model everything up to
//! `FILL_MID` ([`lead`]) and lets it write the middle.

use crate::music::notes::{words_between, Note};
use crate::music::words::{Vocab, Word};
use std::ops::Range;

/// The notes before `span`, in it, and after it (by onset), each in the order given.
pub fn split(notes: &[Note], span: &Range<u64>) -> [Vec<Note>; 3] {
    let part = |keep: &dyn Fn(u64) -> bool| -> Vec<Note> {
        notes.iter().filter(|n| keep(n.onset)).copied().collect()
    };
    [
        part(&|t| t < span.start),
        part(&|t| span.contains(&t)),
        part(&|t| t >= span.end),
    ]
}

/// The prefix: `START` where the music begins the piece, the notes, a shift on to `at`.
pub fn prefix_words(before: &[Note], starts_piece: bool, at: u64) -> Vec<Word> {
    let mut words = Vec::with_capacity(before.len() * 2 + 3);
    if starts_piece {
        words.push(Word::Start);
    }
    words.extend(words_between(before, 0, at));
    words
}

/// The suffix: a shift from `from` to its first note, the notes, `END` where the piece ends.
fn suffix_words(after: &[Note], from: u64, ends_piece: bool) -> Vec<Word> {
    let mut words = words_between(after, from, 0);
    if ends_piece {
        words.push(Word::End);
    }
    words
}

/// A training window of exactly `len` ids: canonical `notes` of a stretch of a piece (times from
/// the stretch's start; `starts_piece`/`ends_piece` say whether it holds the piece's `START` and
/// `END`) cut at `span` and laid out as the module doc shows, the suffix cut short to fit.
/// `None` where the prefix and the middle leave the suffix no word, or the notes are too few to
/// fill `len`.
pub fn arrange(
    notes: &[Note],
    span: Range<u64>,
    starts_piece: bool,
    ends_piece: bool,
    len: usize,
) -> Option<Vec<u16>> {
    let [before, middle, after] = split(notes, &span);
    let prefix = Vocab.encode(&prefix_words(&before, starts_piece, span.start))?;
    let mut middle_words = words_between(&middle, span.start, span.end);
    middle_words.push(Word::End);
    let middle = Vocab.encode(&middle_words)?;
    let mut suffix = Vocab.encode(&suffix_words(&after, span.start, ends_piece))?;
    let room = len.checked_sub(prefix.len() + middle.len() + 3)?;
    if room == 0 || suffix.len() < room {
        return None;
    }
    suffix.truncate(room);
    Some(laid_out(&prefix, &suffix, &middle))
}

/// `FILL_PRE` prefix `FILL_SUF` suffix `FILL_MID` middle.
fn laid_out(prefix: &[u16], suffix: &[u16], middle: &[u16]) -> Vec<u16> {
    let mut out = Vec::with_capacity(prefix.len() + suffix.len() + middle.len() + 3);
    out.push(Vocab::FILL_PRE);
    out.extend_from_slice(prefix);
    out.push(Vocab::FILL_SUF);
    out.extend_from_slice(suffix);
    out.push(Vocab::FILL_MID);
    out.extend_from_slice(middle);
    out
}

/// What a fill model reads before it writes the middle of a span starting at `at` in a whole
/// piece, from its canonical notes ([`split`]) `before` and `after` the span (times from its
/// start): `FILL_PRE` ... `FILL_MID`, at most `budget` ids (at least 8). Where the piece is
/// longer, the suffix keeps its start (at least a third of the budget, more where the prefix is
/// short) and the prefix its end, from a note on.
pub fn lead(before: &[Note], after: &[Note], at: u64, budget: usize) -> Vec<u16> {
    let ids = |words: &[Word]| Vocab.encode(words).expect("canonical notes encode");
    let prefix = ids(&prefix_words(before, true, at));
    let mut suffix = ids(&suffix_words(after, at, true));
    let room = budget.max(8) - 3;
    suffix.truncate((room / 3).max(room.saturating_sub(prefix.len())));
    // A suffix cut short ends with a whole word pair, not a pitch without its length.
    if suffix.len() % 2 == 1 && suffix.last() != Some(&Vocab::END) {
        suffix.pop();
    }
    let keep = room - suffix.len();
    let mut from = prefix.len().saturating_sub(keep);
    // A prefix cut short starts at a note (its times are relative, so any note will do).
    while from > 0 && from < prefix.len() && Vocab.pitch(prefix[from]).is_none() {
        from += 1;
    }
    laid_out(&prefix[from..], &suffix, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::notes::{from_words, STEPS_PER_BAR};
    use crate::music::words::parse_words;

    fn notes(text: &str) -> Vec<Note> {
        from_words(&parse_words(text).0).notes
    }

    fn text(ids: &[u16]) -> String {
        let names = Vocab.model_words(Vocab::WITH_FILL).unwrap();
        let words: Vec<&str> = ids.iter().map(|&i| names[i as usize].as_str()).collect();
        words.join(" ")
    }

    /// A note on every beat of four bars, C4 rising.
    const FOUR_BARS: &str = "START n60 d4 sepxx d4 n61 d4 sepxx d4 n62 d4 sepxx d4 n63 d4 \
        sepxx d8 n64 d4 sepxx d4 n65 d4 sepxx d4 n66 d4 sepxx d4 n67 d4 sepxx d20 n68 d4 \
        sepxx d16 n69 d4 END";

    #[test]
    fn the_layout_reads_prefix_suffix_then_middle_with_times_from_the_cut() {
        let n = notes(FOUR_BARS);
        // Bar 2 (steps 16..32) is the middle: the notes at 20, 24 and 28.
        let span = STEPS_PER_BAR..2 * STEPS_PER_BAR;
        assert_eq!(
            arrange(&n, span.clone(), true, true, 1000),
            None,
            "too few notes"
        );
        let ids = arrange(&n, span, true, true, 39).unwrap();
        assert_eq!(ids.len(), 39);
        assert_eq!(
            text(&ids),
            "FILL_PRE START n60 d4 sepxx d4 n61 d4 sepxx d4 n62 d4 sepxx d4 n63 d4 sepxx d4 \
             FILL_SUF sepxx d16 n67 d4 \
             FILL_MID sepxx d4 n64 d4 sepxx d4 n65 d4 sepxx d4 n66 d4 sepxx d4 END"
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
        // No room for a suffix word.
        assert_eq!(arrange(&n, 0..64, true, true, 30), None);
    }

    #[test]
    fn the_lead_keeps_the_suffix_start_and_the_prefix_end() {
        let n = notes(FOUR_BARS);
        // Bar 3 (steps 32..48): the note at 32.
        let span = 2 * STEPS_PER_BAR..3 * STEPS_PER_BAR;
        let [before, _, after] = split(&n, &span);
        let whole = lead(&before, &after, span.start, 1000);
        assert_eq!(
            text(&whole),
            "FILL_PRE START n60 d4 sepxx d4 n61 d4 sepxx d4 n62 d4 sepxx d4 n63 d4 sepxx d8 \
             n64 d4 sepxx d4 n65 d4 sepxx d4 n66 d4 sepxx d4 \
             FILL_SUF sepxx d20 n68 d4 sepxx d16 n69 d4 END FILL_MID"
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
        let short = lead(&before, &after, span.start, 12);
        assert_eq!(
            text(&short),
            "FILL_PRE n66 d4 sepxx d4 FILL_SUF sepxx d20 FILL_MID"
        );
    }
}
