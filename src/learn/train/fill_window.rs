//! Fill-in-the-middle training windows: a stretch of a piece cut at two of its bar lines and
//! laid out as prefix, suffix, middle ([`crate::music::fill`]), so the model learns to write
//! bars with the music on both sides in view.

use crate::music::augment::transpose;
use crate::music::fill::arrange;
use crate::music::notes::{canonicalise, from_words, STEPS_PER_BAR};
use crate::music::words::Vocab;
use rand::rngs::StdRng;
use rand::Rng;

/// Most bars a middle holds: a musician regenerates a phrase, 1 to 8 bars.
const MAX_BARS: u64 = 8;
/// Spans tried before the window stays plain (a dense middle may leave no room).
const TRIES: usize = 4;

/// A window of `len` ids from the stretch of piece `ids` at `start`, transposed by `semitones`,
/// cut at the piece's own bar lines (counted from its `START`, as `--bars` counts them) around
/// 1 to 8 bars; `None` where no span fits (the caller keeps the plain window).
pub(super) fn fill_window(
    ids: &[u16],
    start: usize,
    len: usize,
    semitones: i32,
    rng: &mut StdRng,
) -> Option<Vec<u16>> {
    // Start at a word of its own: a duration belongs to the word before it.
    let start = start + ids.get(start).is_some_and(|&t| Vocab.duration(t).is_some()) as usize;
    let origin = time_at(&ids[..start]);
    // Room for the words the layout adds, and a suffix to cut.
    let end = (start + len + len / 2).min(ids.len());
    let (mut words, _) = Vocab.decode(&ids[start..end]);
    if semitones != 0 {
        words = transpose(&words, semitones);
    }
    let mut notes = from_words(&words).notes;
    canonicalise(&mut notes);
    // The span starts at a bar line among the first notes, so the suffix has room.
    let reach = notes.get(len / 6).or(notes.last())?.onset;
    let first_line = origin.next_multiple_of(STEPS_PER_BAR) - origin;
    let lines = 1 + reach.saturating_sub(first_line) / STEPS_PER_BAR;
    for _ in 0..TRIES {
        let a = first_line + STEPS_PER_BAR * rng.random_range(0..lines);
        let bars = rng.random_range(1..=MAX_BARS);
        let span = a..a + bars * STEPS_PER_BAR;
        if let Some(w) = arrange(&notes, span, start == 0, end == ids.len(), len) {
            return Some(w);
        }
    }
    None
}

/// The grid step a piece has reached after `ids` (the sum of its time shifts).
fn time_at(ids: &[u16]) -> u64 {
    ids.windows(2)
        .filter(|pair| pair[0] == Vocab::SEP)
        .filter_map(|pair| Vocab.duration(pair[1]))
        .map(u64::from)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::super::batches::tests::example_piece;
    use super::*;
    use crate::music::notes::Note;
    use rand::SeedableRng;
    use std::collections::HashSet;

    /// The ids between two markers of a laid-out window (to its end for `None`).
    fn part(w: &[u16], from: u16, to: Option<u16>) -> &[u16] {
        let a = w.iter().position(|&t| t == from).unwrap() + 1;
        let b = to.map_or(w.len(), |to| w.iter().position(|&t| t == to).unwrap());
        &w[a..b]
    }

    /// The notes of `ids`, their times moved on by `by`.
    fn notes_from(ids: &[u16], by: u64) -> HashSet<Note> {
        let notes = from_words(&Vocab.decode(ids).0).notes;
        notes
            .into_iter()
            .map(|n| Note {
                onset: n.onset + by,
                ..n
            })
            .collect()
    }

    #[test]
    fn fill_windows_cut_the_piece_at_its_bar_lines_and_keep_its_notes() {
        let ids = example_piece();
        let piece = notes_from(&ids, 0);
        let mut rng = StdRng::seed_from_u64(3);
        let len = 257;
        let mut made = 0;
        let mut spans = HashSet::new();
        for _ in 0..100 {
            let start = rng.random_range(0..ids.len() - len);
            let Some(w) = fill_window(&ids, start, len, 0, &mut rng) else {
                continue;
            };
            made += 1;
            assert_eq!(w.len(), len);
            assert_eq!(w[0], Vocab::FILL_PRE);
            let markers: Vec<u16> = w
                .iter()
                .copied()
                .filter(|&t| t >= Vocab::FILL_PRE)
                .collect();
            assert_eq!(markers, [Vocab::FILL_PRE, Vocab::FILL_SUF, Vocab::FILL_MID]);
            let prefix = part(&w, Vocab::FILL_PRE, Some(Vocab::FILL_SUF));
            let suffix = part(&w, Vocab::FILL_SUF, Some(Vocab::FILL_MID));
            let middle = part(&w, Vocab::FILL_MID, None);
            // The prefix ends at a bar line of the piece; the middle fills 1 to 8 bars from it.
            let skip = start + Vocab.duration(ids[start]).is_some() as usize;
            let origin = time_at(&ids[..skip]);
            let a = origin + time_at(prefix);
            let b = a + time_at(middle);
            assert_eq!(a % STEPS_PER_BAR, 0, "{a}");
            assert_eq!(middle.last(), Some(&Vocab::END));
            let bars = (b - a) / STEPS_PER_BAR;
            assert!((b - a).is_multiple_of(STEPS_PER_BAR) && (1..=MAX_BARS).contains(&bars));
            spans.insert(bars);
            // Every part holds the piece's own notes; the middle all of the span's.
            let (before, inside, after) = (
                notes_from(prefix, origin),
                notes_from(middle, a),
                notes_from(suffix, a),
            );
            assert!(before.iter().all(|n| piece.contains(n) && n.onset < a));
            assert!(after.iter().all(|n| piece.contains(n) && n.onset >= b));
            let span: HashSet<Note> = piece
                .iter()
                .filter(|n| (a..b).contains(&n.onset))
                .copied()
                .collect();
            assert_eq!(inside, span);
        }
        assert!(made > 50, "only {made} of 100 windows laid out");
        assert!(spans.len() > 4, "spans of {spans:?} bars only");
    }
}
