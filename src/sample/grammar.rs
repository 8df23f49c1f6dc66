//! The grammar of canonical words as a state machine: which words may come next.
//!
//! The sampler masks every word the grammar forbids, so whatever a model (even an untrained one)
//! prefers, the words it makes decode with nothing skipped and are already canonical
//! (`notes::canon(words) == words`, see docs/encoding.md):
//! - `START` first; after a pitch or `sepxx`, only a duration;
//! - after a note's duration: a lower pitch at the same onset (chords highest first, so no pitch
//!   twice at one onset), `sepxx`, or `END`;
//! - a pitch may not start while an earlier note of the same pitch still sounds (canonical form
//!   would cut the earlier note short);
//! - after a shift: a pitch; another `sepxx` only after `d128` (shorter shifts are never split);
//!   never `END` (a trailing shift is not canonical);
//! - a shift is never so short that every pitch still sounds where it lands, so some word is
//!   always legal.

use crate::music::words::{Vocab, Word, MAX_DURATION, MIN_PITCH, PITCHES};
use anyhow::{bail, Result};

/// Where in the grammar the next word falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing yet: only `START`.
    Begin,
    /// After `START` or a note: a pitch (below the last at this onset), `sepxx` or `END`.
    Ready,
    /// After a pitch: its duration.
    NoteDuration(u8),
    /// After `sepxx`: the shift's duration.
    ShiftDuration,
    /// After a shift of `k` steps: a pitch, or `sepxx` again if `k` is 128.
    Shifted(u32),
    /// After `END`: nothing.
    Done,
}

/// The grammar state of a word sequence so far. Cheap to copy (a few hundred bytes).
#[derive(Clone, Debug)]
pub struct Grammar {
    state: State,
    /// The cursor (grid step of the current onset).
    onset: u64,
    /// Lowest pitch written so far at the current onset (chords go downwards).
    last_pitch: Option<u8>,
    /// Per pitch (index pitch - MIN_PITCH): the step where its latest note stops sounding.
    ends: [u64; PITCHES],
}

impl Default for Grammar {
    fn default() -> Self {
        Self::new()
    }
}

impl Grammar {
    /// The grammar before any word: only `START` may come.
    pub fn new() -> Grammar {
        Grammar {
            state: State::Begin,
            onset: 0,
            last_pitch: None,
            ends: [0; PITCHES],
        }
    }

    /// The state after a whole sequence, or an error naming the first word that breaks it.
    pub fn from_words(words: &[Word]) -> Result<Grammar> {
        let mut g = Grammar::new();
        for (i, &w) in words.iter().enumerate() {
            if let Err(e) = g.push(w) {
                bail!("word {i} of the prompt: {e}");
            }
        }
        Ok(g)
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The grid step of the current onset.
    pub fn onset(&self) -> u64 {
        self.onset
    }

    /// Whether `END` would be legal now (ignoring any length limit).
    pub fn can_end(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the word with token id `id` may come next; `END` only if `end_ok`.
    #[inline]
    pub fn allows(&self, id: u16, end_ok: bool) -> bool {
        match self.state {
            State::Begin => id == Vocab::START,
            State::Done => false,
            State::NoteDuration(_) => Vocab.duration(id).is_some(),
            // At least one pitch must be free where the shift lands (d128 always is fine: no
            // note sounds longer than 128 steps).
            State::ShiftDuration => Vocab
                .duration(id)
                .is_some_and(|k| k == MAX_DURATION || self.min_end() <= self.onset + k as u64),
            State::Ready => match id {
                Vocab::END => end_ok,
                Vocab::SEP => true,
                _ => Vocab.pitch(id).is_some_and(|p| self.pitch_ok(p, true)),
            },
            State::Shifted(k) => match id {
                Vocab::SEP => k == MAX_DURATION,
                _ => Vocab.pitch(id).is_some_and(|p| self.pitch_ok(p, false)),
            },
        }
    }

    /// A pitch is legal if it is not sounding and, within a chord, below the last one.
    #[inline]
    fn pitch_ok(&self, pitch: u8, in_chord: bool) -> bool {
        let below = !in_chord || self.last_pitch.is_none_or(|last| pitch < last);
        below && self.ends[(pitch - MIN_PITCH) as usize] <= self.onset
    }

    /// How many notes still sound at grid step `at` (struck before it, ending after it).
    pub fn sounding(&self, at: u64) -> usize {
        self.ends.iter().filter(|&&end| end > at).count()
    }

    fn min_end(&self) -> u64 {
        self.ends.iter().copied().min().unwrap_or(0)
    }

    /// Reads on as if a new part of the piece began where time stands: after a shift, another
    /// shift may come (the middle of a fill layout starts afresh at the prefix's end).
    pub fn begin_part(&mut self) {
        if let State::Shifted(_) = self.state {
            self.state = State::Ready;
        }
    }

    /// Whether some pitch is legal now (in `Ready` or `Shifted`).
    pub fn any_pitch(&self) -> bool {
        let mut pitch_ids = Vocab::PITCH_IDS;
        pitch_ids.any(|id| self.allows(id, false))
    }

    /// Writes `true` for every legal next id into `legal` (one entry per vocabulary id) and
    /// returns how many there are.
    pub fn legal(&self, end_ok: bool, legal: &mut [bool]) -> usize {
        let mut n = 0;
        for (id, slot) in legal.iter_mut().enumerate() {
            *slot = self.allows(id as u16, end_ok);
            n += *slot as usize;
        }
        n
    }

    /// Moves on by one word; an error (state unchanged) if the grammar forbids it. `END` is
    /// accepted wherever [`Grammar::can_end`] holds.
    pub fn push(&mut self, word: Word) -> Result<()> {
        let Some(id) = Vocab.id(word) else {
            bail!("'{word}' is not in the vocabulary");
        };
        self.push_id(id)
    }

    /// As [`Grammar::push`], by token id.
    pub fn push_id(&mut self, id: u16) -> Result<()> {
        let word = match Vocab.word(id) {
            Some(word) if self.allows(id, true) => word,
            Some(word) => bail!("'{word}' cannot come here ({:?})", self.state),
            None => bail!("'id {id}' cannot come here ({:?})", self.state),
        };
        self.state = match (self.state, word) {
            (State::Begin, _) => State::Ready,
            (_, Word::End) => State::Done,
            (_, Word::Sep) => State::ShiftDuration,
            (State::NoteDuration(pitch), Word::Dur(k)) => {
                self.ends[(pitch - MIN_PITCH) as usize] = self.onset + k as u64;
                self.last_pitch = Some(pitch);
                State::Ready
            }
            (State::ShiftDuration, Word::Dur(k)) => {
                self.onset += k as u64;
                self.last_pitch = None;
                State::Shifted(k)
            }
            (_, Word::Note(pitch)) => State::NoteDuration(pitch),
            // `allows` admits `START` only first and a duration only in the two duration states.
            (state, word) => unreachable!("the grammar let '{word}' through in {state:?}"),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::words::{parse_words, MAX_PITCH};

    fn grammar(s: &str) -> Grammar {
        Grammar::from_words(&parse_words(s).0).unwrap()
    }

    fn ok(g: &Grammar, w: &str) -> bool {
        g.allows(Vocab.id(Word::parse(w).unwrap()).unwrap(), true)
    }

    #[test]
    fn chords_go_down_and_shifts_are_not_split() {
        let g = grammar("START n60 d4");
        assert!(ok(&g, "n59") && !ok(&g, "n60") && !ok(&g, "n61") && ok(&g, "sepxx"));
        assert!(ok(&g, "END") && !ok(&g, "d4"));
        let g = grammar("START n60 d4 sepxx d2");
        // n60 still sounds at step 2; shorter shifts are merged, not split; no trailing shift.
        assert!(!ok(&g, "n60") && ok(&g, "n61") && !ok(&g, "sepxx") && !ok(&g, "END"));
        let g = grammar("START n60 d4 sepxx d4");
        assert!(ok(&g, "n60"));
        let g = grammar("START sepxx d128");
        assert!(ok(&g, "sepxx") && ok(&g, "n100"));
        let g = grammar("START n21 d1");
        assert!(!g.any_pitch() && ok(&g, "sepxx"));
        assert!(Grammar::from_words(&parse_words("START n60 d4 n64 d4").0).is_err());
        assert!(Grammar::from_words(&parse_words("n60").0).is_err());
    }

    #[test]
    fn a_shift_never_lands_where_every_pitch_sounds() {
        // Every pitch sounds for 10 steps: a shift must go at least that far.
        let mut text = String::from("START");
        for p in (MIN_PITCH..=MAX_PITCH).rev() {
            text.push_str(&format!(" n{p} d10"));
        }
        text.push_str(" sepxx");
        let g = grammar(&text);
        assert!(!ok(&g, "d9") && ok(&g, "d10") && ok(&g, "d128"));
    }
}
