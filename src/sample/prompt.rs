//! Prompts for the modes: a new piece, continue a song of the dataset, continue a MIDI file,
//! retry (the same prompt with a new seed: [`super::Generation::retry_prompt`]) and extend a
//! piece already made.

use crate::learn::dataset::SplitData;
use crate::music::notes::{canonical_words, from_words, STEPS_PER_BAR};
use crate::music::read::{piece_from_midi, ReadReport};
use crate::music::words::{Titled, Vocab, Word};
use anyhow::{bail, Context, Result};
use rand::Rng;
use std::path::Path;

/// Default length of a continue prompt, in words (`--prompt-words`; 0 = the whole piece).
pub const DEFAULT_PROMPT_WORDS: usize = 100;

/// A new piece: the prompt is `START`.
pub fn new_piece() -> Titled {
    Titled {
        words: vec![Word::Start],
        title: None,
    }
}

/// `words` without a final `END`: what a prompt may hold, since the model goes on after it.
pub fn without_end(words: &[Word]) -> &[Word] {
    match words.last() {
        Some(Word::End) => &words[..words.len() - 1],
        _ => words,
    }
}

/// The first `n` words of a piece (`0` = all), cut back to the end of its last whole note, never
/// with `END`. Always keeps `START`.
pub fn head(words: &[Word], n: usize) -> Vec<Word> {
    let body = without_end(words);
    let n = if n == 0 {
        body.len()
    } else {
        n.min(body.len())
    };
    // Cut after `n<p> d<k>`: the shortest prefix of length <= n ending at a note's duration.
    let mut cut = n;
    while cut > 1
        && !(matches!(body[cut - 1], Word::Dur(_)) && matches!(body[cut - 2], Word::Note(_)))
    {
        cut -= 1;
    }
    if cut <= 1 {
        return vec![Word::Start];
    }
    body[..cut].to_vec()
}

/// `words` with the whole bars of silence before its first note taken out (what is left of a
/// bar stays, so the notes keep their place in the bar): a prompt starts with the music. (More
/// than half of the corpus's pieces open with a bar of silence or more, some with 32.)
pub fn without_leading_silence(words: &[Word]) -> Vec<Word> {
    let mut notes = from_words(words).notes;
    let first = notes.iter().map(|n| n.onset).min().unwrap_or(0);
    let silent_bars = first / STEPS_PER_BAR * STEPS_PER_BAR;
    if silent_bars == 0 {
        return words.to_vec();
    }
    for n in &mut notes {
        n.onset -= silent_bars;
    }
    let mut out = canonical_words(&notes);
    if words.last() != Some(&Word::End) {
        out.pop();
    }
    out
}

/// Continue a song: the first `prompt_words` words (cut at a note; `0` = the whole piece; whole
/// bars of silence before its first note taken out) of the
/// piece titled `title` in `split` (the validation split), or of a random piece of it when `title` is `None`.
pub fn continue_song(
    split: &SplitData,
    title: Option<&str>,
    prompt_words: usize,
    rng: &mut impl Rng,
) -> Result<Titled> {
    if split.pieces.is_empty() {
        bail!("the dataset's split has no pieces to continue");
    }
    let index = match title {
        Some(t) => split
            .find(t)
            .with_context(|| format!("no piece titled '{t}' in the dataset's validation split"))?,
        None => rng.random_range(0..split.pieces.len()),
    };
    let (words, bad) = Vocab.decode(split.piece(index));
    if bad > 0 || words.first() != Some(&Word::Start) {
        bail!("piece {index} of the dataset is damaged");
    }
    Ok(Titled {
        words: head(&without_leading_silence(&words), prompt_words),
        title: Some(split.pieces[index].title.clone()),
    })
}

/// Continue a MIDI file: its first `prompt_words` words (`0` = the whole piece; whole bars of
/// silence before its first note taken out), encoded with the codec; the title is the file name
/// without its extension.
pub fn continue_file(path: &Path, prompt_words: usize) -> Result<Titled> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut report = ReadReport::default();
    let words = piece_from_midi(&bytes, &mut report)
        .with_context(|| format!("encoding {}", path.display()))?;
    Ok(Titled {
        words: head(&without_leading_silence(&words), prompt_words),
        title: path.file_stem().map(|s| s.to_string_lossy().into_owned()),
    })
}

/// Extend a piece already made: all its words but a final `END`.
pub fn extend(words: &[Word], title: Option<String>) -> Titled {
    let mut words = without_end(words).to_vec();
    if words.first() != Some(&Word::Start) {
        words.insert(0, Word::Start);
    }
    Titled { words, title }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::words::{parse_words, words_to_string};

    #[test]
    fn whole_bars_of_silence_before_the_first_note_go() {
        let w = |text: &str| parse_words(text).0;
        // 40 steps of silence: two bars go, the 8 steps within the bar stay.
        let silent = w("START sepxx d32 sepxx d8 n60 d4 sepxx d4 n64 d4 END");
        assert_eq!(
            words_to_string(&without_leading_silence(&silent)),
            "START sepxx d8 n60 d4 sepxx d4 n64 d4 END"
        );
        // 300 steps (18 bars and 12 steps), cut before its END.
        let long = w("START sepxx d128 sepxx d128 sepxx d44 n72 d2");
        assert_eq!(
            words_to_string(&without_leading_silence(&long)),
            "START sepxx d12 n72 d2"
        );
        let at_once = w("START n60 d4 END");
        assert_eq!(without_leading_silence(&at_once), at_once);
        assert_eq!(without_leading_silence(&w("START")), w("START"));
    }

    #[test]
    fn heads_end_at_a_whole_note() {
        let w = parse_words("START sepxx d2 n72 d4 n64 d4 sepxx d4 n67 d4 END").0;
        let h = |n| words_to_string(&head(&w, n));
        assert_eq!(h(5), "START sepxx d2 n72 d4");
        assert_eq!(h(6), "START sepxx d2 n72 d4");
        assert_eq!(h(7), "START sepxx d2 n72 d4 n64 d4");
        assert_eq!(h(9), "START sepxx d2 n72 d4 n64 d4");
        assert_eq!(h(3), "START");
        assert_eq!(h(0), "START sepxx d2 n72 d4 n64 d4 sepxx d4 n67 d4");
        assert_eq!(h(100), h(0));
        let e = extend(&w, None);
        assert_eq!(e.words.len(), w.len() - 1);
        assert_eq!(without_end(&w), &w[..w.len() - 1]);
        assert_eq!(without_end(&w[..3]), &w[..3], "only a final END goes");
        assert!(without_end(&[]).is_empty());
    }
}
