//! Words: the text form of music, and the fixed vocabulary that maps words to token ids.
//!
//! A piece is `START`, then notes (`n<pitch> d<steps>`) and time shifts (`sepxx d<steps>`), then
//! `END`. See `docs/encoding.md` for the whole contract; [`crate::music::notes`] turns words into notes
//! and back.

use std::fmt;
use std::ops::Range;

/// Lowest and highest piano pitch a word can name (MIDI numbers: A0 and C8).
pub const MIN_PITCH: u8 = 21;
pub const MAX_PITCH: u8 = 108;
/// Number of pitches a word can name (88, the piano's keys).
pub const PITCHES: usize = (MAX_PITCH - MIN_PITCH + 1) as usize;
/// Longest duration or shift one word can hold, in grid steps (8 bars of 4/4).
pub const MAX_DURATION: u32 = 128;

/// One word. Parsing is lenient (any pitch 0..=127, any duration >= 1) so that raw corpus text
/// can be read and then made canonical; only canonical words have a token id in [`Vocab`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Word {
    Start,
    End,
    /// `sepxx`: the next duration word moves time on.
    Sep,
    /// `n<pitch>`: a note starts here; the next duration word is its length.
    Note(u8),
    /// `d<steps>`: a length in grid steps.
    Dur(u32),
}

impl Word {
    /// Parses one word; `None` for anything that is not a word of the encoding.
    pub fn parse(text: &str) -> Option<Word> {
        match text {
            "START" => return Some(Word::Start),
            "END" => return Some(Word::End),
            "sepxx" => return Some(Word::Sep),
            _ => {}
        }
        let (kind, digits) = text.split_at_checked(1)?;
        // Only plain ASCII digits: `u32::from_str` would also take "+5".
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u32 = digits.parse().ok()?;
        match kind {
            "n" if value <= 127 => Some(Word::Note(value as u8)),
            "d" if value >= 1 => Some(Word::Dur(value)),
            _ => None,
        }
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Word::Start => f.write_str("START"),
            Word::End => f.write_str("END"),
            Word::Sep => f.write_str("sepxx"),
            Word::Note(p) => write!(f, "n{p}"),
            Word::Dur(d) => write!(f, "d{d}"),
        }
    }
}

/// A piece as words and its title where it has one (a file's name, a song's, "phrase 3"): what
/// the corpus holds, what the model is given to continue, what a generation gives back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Titled {
    pub title: Option<String>,
    pub words: Vec<Word>,
}

/// Parses whitespace-separated text into words. Unknown words are skipped and counted.
pub fn parse_words(text: &str) -> (Vec<Word>, usize) {
    let mut unknown = 0;
    let words = text
        .split_ascii_whitespace()
        .filter_map(|t| {
            let w = Word::parse(t);
            unknown += w.is_none() as usize;
            w
        })
        .collect();
    (words, unknown)
}

/// Joins words with single spaces.
pub fn words_to_string(words: &[Word]) -> String {
    let mut out = String::with_capacity(words.len() * 4);
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&w.to_string());
    }
    out
}

/// The fixed, ordered vocabulary: `START`, `END`, `sepxx`, then `n21`..`n108`, then
/// `d1`..`d128`. Token ids never depend on data, so any checkpoint reads any dataset.
///
/// A model trained to fill the middle has three more outputs after these (`FILL_PRE`,
/// `FILL_SUF`, `FILL_MID`, see [`crate::music::fill`]): markers of a training layout, never
/// words of a piece, so [`Vocab::word`] has no word for them and every other id keeps its meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vocab;

const FIRST_PITCH_ID: u16 = 3;
const FIRST_DUR_ID: u16 = FIRST_PITCH_ID + PITCHES as u16;
const VOCAB_LEN: usize = FIRST_DUR_ID as usize + MAX_DURATION as usize;

impl Vocab {
    pub const START: u16 = 0;
    pub const END: u16 = 1;
    pub const SEP: u16 = 2;
    /// Ids of the pitch words `n21`..=`n108`, lowest pitch first.
    pub const PITCH_IDS: Range<u16> = FIRST_PITCH_ID..FIRST_DUR_ID;
    /// Ids of the duration words `d1`..=`d128`, shortest first.
    pub const DURATION_IDS: Range<u16> = FIRST_DUR_ID..VOCAB_LEN as u16;

    /// Markers of the fill-in-the-middle layout: the prefix, the suffix and the middle follow.
    pub const FILL_PRE: u16 = VOCAB_LEN as u16;
    pub const FILL_SUF: u16 = VOCAB_LEN as u16 + 1;
    pub const FILL_MID: u16 = VOCAB_LEN as u16 + 2;
    /// Outputs of a model trained to fill the middle (222): the words and the three markers.
    pub const WITH_FILL: usize = VOCAB_LEN + 3;
    const FILL_NAMES: [&str; 3] = ["FILL_PRE", "FILL_SUF", "FILL_MID"];

    /// Number of words (219).
    pub const fn len(&self) -> usize {
        VOCAB_LEN
    }

    /// The names of a model's `outputs` in id order, as checkpoints record them: the words, and
    /// the fill markers for a model that has them; `None` for any other size.
    pub fn model_words(&self, outputs: usize) -> Option<Vec<String>> {
        let mut words = self.words();
        match outputs {
            VOCAB_LEN => {}
            Self::WITH_FILL => words.extend(Self::FILL_NAMES.map(String::from)),
            _ => return None,
        }
        Some(words)
    }

    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The id of a word, or `None` for a word outside the vocabulary (a pitch outside
    /// 21..=108 or a duration over 128: canonicalise first).
    pub fn id(&self, word: Word) -> Option<u16> {
        match word {
            Word::Start => Some(Self::START),
            Word::End => Some(Self::END),
            Word::Sep => Some(Self::SEP),
            Word::Note(p) if (MIN_PITCH..=MAX_PITCH).contains(&p) => {
                Some(FIRST_PITCH_ID + (p - MIN_PITCH) as u16)
            }
            Word::Dur(d) if (1..=MAX_DURATION).contains(&d) => Some(FIRST_DUR_ID + (d - 1) as u16),
            _ => None,
        }
    }

    /// The word of an id, or `None` for an id past the end.
    pub fn word(&self, id: u16) -> Option<Word> {
        match id {
            Self::START => Some(Word::Start),
            Self::END => Some(Word::End),
            Self::SEP => Some(Word::Sep),
            _ => match self.pitch(id) {
                Some(pitch) => Some(Word::Note(pitch)),
                None => self.duration(id).map(Word::Dur),
            },
        }
    }

    /// The pitch a pitch word's id names; `None` for any other id. (For the sampler's grammar,
    /// which works on ids.)
    #[inline]
    pub const fn pitch(&self, id: u16) -> Option<u8> {
        if FIRST_PITCH_ID <= id && id < FIRST_DUR_ID {
            Some(MIN_PITCH + (id - FIRST_PITCH_ID) as u8)
        } else {
            None
        }
    }

    /// The steps a duration word's id names; `None` for any other id.
    #[inline]
    pub const fn duration(&self, id: u16) -> Option<u32> {
        if FIRST_DUR_ID <= id && (id as usize) < VOCAB_LEN {
            Some((id - FIRST_DUR_ID) as u32 + 1)
        } else {
            None
        }
    }

    /// Ids of a word sequence; `None` if any word is outside the vocabulary.
    pub fn encode(&self, words: &[Word]) -> Option<Vec<u16>> {
        words.iter().map(|&w| self.id(w)).collect()
    }

    /// Words of an id sequence; ids past the end are skipped and counted.
    pub fn decode(&self, ids: &[u16]) -> (Vec<Word>, usize) {
        let mut bad = 0;
        let words = ids
            .iter()
            .filter_map(|&i| {
                let w = self.word(i);
                bad += w.is_none() as usize;
                w
            })
            .collect();
        (words, bad)
    }

    /// Every word in id order (written into checkpoints and datasets so they are self-describing).
    pub fn words(&self) -> Vec<String> {
        (0..VOCAB_LEN as u16)
            .map(|i| self.word(i).expect("id in range").to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_is_fixed_and_ordered() {
        let v = Vocab;
        assert_eq!(v.len(), 219);
        let words = v.words();
        assert_eq!(&words[..4], ["START", "END", "sepxx", "n21"]);
        assert_eq!(words[90], "n108");
        assert_eq!(words[91], "d1");
        assert_eq!(words[218], "d128");
        for id in 0..v.len() as u16 {
            assert_eq!(v.id(v.word(id).unwrap()), Some(id));
        }
        assert_eq!(v.word(219), None);
        assert_eq!(v.id(Word::Note(20)), None);
        // The fill markers come after every word and are no word of a piece.
        let with_fill = v.model_words(Vocab::WITH_FILL).unwrap();
        assert_eq!(with_fill[..219], words[..]);
        assert_eq!(
            with_fill[Vocab::FILL_PRE as usize..],
            ["FILL_PRE", "FILL_SUF", "FILL_MID"]
        );
        for id in [Vocab::FILL_PRE, Vocab::FILL_SUF, Vocab::FILL_MID] {
            assert_eq!(v.word(id), None);
        }
        assert_eq!(v.model_words(219), Some(words));
        assert_eq!(v.model_words(220), None);
        assert_eq!(v.id(Word::Dur(129)), None);
    }

    #[test]
    fn id_ranges_match_the_vocabulary() {
        assert_eq!(
            Vocab.id(Word::Note(MIN_PITCH)),
            Some(Vocab::PITCH_IDS.start)
        );
        assert_eq!(Vocab.id(Word::Dur(1)), Some(Vocab::DURATION_IDS.start));
        assert_eq!(
            Vocab::DURATION_IDS.start as usize + MAX_DURATION as usize,
            Vocab.len()
        );
        // The id ranges tile the vocabulary after the three markers, and agree with `word`.
        assert_eq!(Vocab::PITCH_IDS.len(), PITCHES);
        assert_eq!(Vocab::PITCH_IDS.end, Vocab::DURATION_IDS.start);
        assert_eq!(Vocab::DURATION_IDS.end as usize, Vocab.len());
        for id in 0..Vocab.len() as u16 + 2 {
            let (pitch, duration) = (Vocab.pitch(id), Vocab.duration(id));
            assert_eq!(pitch.is_some(), Vocab::PITCH_IDS.contains(&id), "{id}");
            assert_eq!(
                duration.is_some(),
                Vocab::DURATION_IDS.contains(&id),
                "{id}"
            );
            let word = pitch.map(Word::Note).or(duration.map(Word::Dur));
            if word.is_some() {
                assert_eq!(Vocab.word(id), word, "{id}");
            }
        }
        assert_eq!(Vocab.pitch(Vocab::SEP), None);
    }

    #[test]
    fn parse_is_strict_about_words() {
        assert_eq!(Word::parse("n60"), Some(Word::Note(60)));
        assert_eq!(Word::parse("d3104"), Some(Word::Dur(3104)));
        for junk in [
            "n",
            "d0",
            "n128",
            "n+5",
            "x5",
            "",
            "dd",
            "n-1",
            "d99999999999",
            "é1",
        ] {
            assert_eq!(Word::parse(junk), None, "{junk}");
        }
        let (w, bad) = parse_words("START n60 d4 junk sepxx d2 END");
        assert_eq!(bad, 1);
        assert_eq!(words_to_string(&w), "START n60 d4 sepxx d2 END");
    }
}
