//! The copy check: how much of a generated piece the model took word for word from its training
//! split. A small corpus invites memorising, and a piece that repeats a training piece for bars
//! is a copy, not a composition; `nanotune compare` prints, for each new piece, the longest run
//! of words it shares with the training split.
//!
//! Runs shorter than [`SEED_WORDS`] (four notes) are not looked for: every corpus shares such
//! motifs. A run that only loops a short figure (one note struck on every step for bars, the same
//! chord again and again) is shared by many pieces and copies nothing: each run is also measured
//! with the loop counted once ([`Shared::figure_once`]), and that is the figure that says copy. The longer ones are found exactly in one pass over the split: each seed of a new
//! piece is a key of 16 token ids packed in a `u128` (no hash to collide), the split's windows
//! roll through the same key, and every hit is extended word by word.

use anyhow::{ensure, Result};
use std::collections::HashMap;

/// The shortest run looked for, in words.
pub const SEED_WORDS: usize = 16;
/// The longest figure whose repeats are counted once, in words (two bars of one note a beat).
pub const LONGEST_FIGURE: usize = 16;

/// The most one piece shares with the corpus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shared {
    /// The longest run of words found in the corpus.
    pub words: usize,
    /// The largest number of words of one shared run that are not the repeat of the word a
    /// figure's length before (for the figure of up to [`LONGEST_FIGURE`] words that explains
    /// the most of it): a loop of a four-word figure counts 4, however long.
    pub figure_once: usize,
}

/// Words of `run` that are not a repeat of the word `period` before, for the period that
/// explains the most of it.
fn counted_once(run: &[u16]) -> usize {
    (1..=LONGEST_FIGURE.min(run.len()))
        .map(|p| p + (p..run.len()).filter(|&k| run[k] != run[k - p]).count())
        .min()
        .unwrap_or(0)
}

/// `SEED_WORDS` ids packed 8 bits each, the newest in the low byte.
fn push(key: u128, id: u16) -> u128 {
    (key << 8) | id as u128
}

/// For each of `pieces`, what it shares with `corpus` (0 where no run reaches [`SEED_WORDS`]).
/// Ids must be below 256 (the vocabulary is 219).
pub fn longest_shared_runs(pieces: &[Vec<u16>], corpus: &[u16]) -> Result<Vec<Shared>> {
    let too_big = pieces.iter().flatten().chain(corpus).find(|&&id| id > 255);
    ensure!(
        too_big.is_none(),
        "token id {:?} does not fit the copy check",
        too_big
    );
    // Every seed of every piece: where it starts.
    let mut seeds: HashMap<u128, Vec<(usize, usize)>> = HashMap::new();
    for (p, piece) in pieces.iter().enumerate() {
        let mut key = 0u128;
        for (i, &id) in piece.iter().enumerate() {
            key = push(key, id);
            if i + 1 >= SEED_WORDS {
                seeds.entry(key).or_default().push((p, i + 1 - SEED_WORDS));
            }
        }
    }
    let mut longest = vec![Shared::default(); pieces.len()];
    let mut key = 0u128;
    for (j, &id) in corpus.iter().enumerate() {
        key = push(key, id);
        if j + 1 < SEED_WORDS {
            continue;
        }
        let Some(starts) = seeds.get(&key) else {
            continue;
        };
        let from = j + 1 - SEED_WORDS;
        for &(p, i) in starts {
            let run = pieces[p][i..]
                .iter()
                .zip(&corpus[from..])
                .take_while(|(a, b)| a == b)
                .count();
            let best = &mut longest[p];
            best.words = best.words.max(run);
            best.figure_once = best.figure_once.max(counted_once(&pieces[p][i..i + run]));
        }
    }
    Ok(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pseudo-random run of ids (an LCG), different for each seed.
    fn ids(seed: u64, n: usize) -> Vec<u16> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % 219) as u16
            })
            .collect()
    }

    #[test]
    fn the_longest_run_taken_from_the_corpus_is_found_exactly() {
        let corpus = [ids(1, 5000), ids(2, 5000)].concat();
        // 40 words of the corpus inside new words, and elsewhere 20 more.
        let copied = [ids(3, 30), corpus[1234..1274].to_vec(), ids(4, 30)].concat();
        let twice = [
            corpus[7000..7020].to_vec(),
            ids(5, 10),
            corpus[100..170].to_vec(),
        ]
        .concat();
        let short = [ids(6, 20), corpus[50..60].to_vec(), ids(7, 20)].concat();
        let runs = longest_shared_runs(&[copied, twice, short, ids(8, 300)], &corpus).unwrap();
        let words: Vec<usize> = runs.iter().map(|r| r.words).collect();
        assert_eq!(words, [40, 70, 0, 0]);
        // Random words have no figure to loop: nearly every word counts.
        assert!(runs[1].figure_once >= 65, "{:?}", runs[1]);
        assert!(longest_shared_runs(&[vec![300; 20]], &corpus).is_err());
    }

    #[test]
    fn a_loop_of_a_figure_counts_once() {
        // One note struck every three steps for 34 bars, in the corpus and in a new piece.
        let figure = [46u16, 130, 2, 131];
        let looped: Vec<u16> = figure.iter().copied().cycle().take(136).collect();
        let corpus = [ids(1, 500), looped.clone(), ids(2, 500)].concat();
        let piece = [ids(3, 10), looped, ids(4, 10)].concat();
        let runs = longest_shared_runs(&[piece], &corpus).unwrap();
        assert_eq!(runs[0].words, 136);
        assert_eq!(runs[0].figure_once, 4);
        assert_eq!(counted_once(&[1, 2, 3, 1, 2, 3, 9]), 4);
    }
}
