//! Training batches: random windows of the prepared dataset, each inside one piece, transposed
//! and stretched on line; and the seeds that make every draw repeatable.

use super::fill_window::fill_window;
use crate::learn::dataset::SplitData;
use crate::music::augment::{stretch, transpose};
use crate::music::words::Vocab;
use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Online augmentation of each training window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Probability that a window is transposed.
    pub transpose_prob: f64,
    /// Transpositions are drawn uniformly from -range..=range semitones, 0 excluded.
    pub transpose_range: i32,
    /// Probability that a window is stretched in time.
    pub stretch_prob: f64,
    /// Stretch factors, one drawn uniformly.
    pub stretches: Vec<f64>,
    /// Share of windows laid out to fill the middle (see `fill_window`; never stretched,
    /// so their bar lines stay the piece's). Needs a model with the fill markers.
    #[serde(default)]
    pub fill_share: f64,
    /// Share of windows that start at the START of a piece drawn uniformly (running on into the
    /// pieces after it where it is short). Uniform windows start a piece once in thousands at a
    /// context of 1,024, so the model meets few openings and those only of long pieces; a new
    /// piece is all opening.
    #[serde(default)]
    pub opening_share: f64,
}

impl Default for Augment {
    /// The seed's: transpositions within +-5 semitones, stretch by 0.5, 0.75 or 1.5.
    fn default() -> Augment {
        Augment {
            transpose_prob: 0.5,
            transpose_range: 5,
            stretch_prob: 0.5,
            stretches: vec![0.5, 0.75, 1.5],
            fill_share: 0.0,
            opening_share: 0.0,
        }
    }
}

impl Augment {
    /// No augmentation at all.
    pub fn none() -> Augment {
        Augment {
            transpose_prob: 0.0,
            transpose_range: 0,
            stretch_prob: 0.0,
            stretches: Vec::new(),
            fill_share: 0.0,
            opening_share: 0.0,
        }
    }
}

/// What a seed is drawn for. Each has its own stream, so changing how one is used (say, more
/// evaluation batches) leaves the others' draws as they were.
#[derive(Clone, Copy)]
pub(super) enum Stream {
    /// A step's training batches (and its dropout masks on the CPU).
    Batches = 1,
    /// The fixed evaluation batches of the training split.
    EvalTrain = 2,
    /// The fixed evaluation batches of the validation split.
    EvalVal = 3,
    /// A step's dropout masks on a GPU, which draws them from its own generator.
    GpuDropout = 4,
}

/// A seed for one purpose at one step (splitmix64 of the mix), so streams never overlap and a
/// resumed run draws what the uninterrupted run drew.
pub(super) fn derive_seed(seed: u64, stream: Stream, step: u64) -> u64 {
    let mut z = seed
        .wrapping_add((stream as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Windows of `context + 1` words that lie inside one piece, drawn uniformly over all positions;
/// or, for [`Augment::opening_share`], from the START of a piece drawn uniformly.
pub(super) struct Windows<'a> {
    split: &'a SplitData,
    len: usize,
    /// (piece index, cumulative count of window starts up to and including it).
    cumulative: Vec<(usize, u64)>,
    /// Where each piece with a whole window from its START (in the split's tokens) begins.
    openings: Vec<usize>,
}

impl<'a> Windows<'a> {
    /// `len` = context + 1. Pieces shorter than that are left out.
    pub fn new(split: &'a SplitData, len: usize) -> Windows<'a> {
        let mut total = 0u64;
        let mut cumulative = Vec::new();
        for (i, p) in split.pieces.iter().enumerate() {
            if p.len >= len {
                total += (p.len - len + 1) as u64;
                cumulative.push((i, total));
            }
        }
        let openings = split
            .pieces
            .iter()
            .map(|p| p.offset)
            .filter(|&at| at + len <= split.tokens.len())
            .collect();
        Windows {
            split,
            len,
            cumulative,
            openings,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// A random (piece, start).
    fn sample(&self, rng: &mut StdRng) -> (usize, usize) {
        let total = self.cumulative.last().map_or(0, |c| c.1);
        let r = rng.random_range(0..total);
        let k = self.cumulative.partition_point(|c| c.1 <= r);
        let before = if k == 0 { 0 } else { self.cumulative[k - 1].1 };
        (self.cumulative[k].0, (r - before) as usize)
    }

    /// One window, augmented as `augment` says (kept plain when augmenting leaves it too short).
    fn window(&self, rng: &mut StdRng, augment: &Augment) -> Vec<u16> {
        // Drawn only where asked for, so runs without it draw as they always did.
        let opening = augment.opening_share > 0.0
            && !self.openings.is_empty()
            && rng.random_bool(augment.opening_share);
        let (ids, start) = if opening {
            let at = self.openings[rng.random_range(0..self.openings.len())];
            (&self.split.tokens[at..], 0)
        } else {
            let (piece, start) = self.sample(rng);
            (self.split.piece(piece), start)
        };
        let plain = &ids[start..start + self.len];
        let semitones = if augment.transpose_range > 0 && rng.random_bool(augment.transpose_prob) {
            let s = rng.random_range(1..=augment.transpose_range);
            if rng.random_bool(0.5) {
                s
            } else {
                -s
            }
        } else {
            0
        };
        let factor = if !augment.stretches.is_empty() && rng.random_bool(augment.stretch_prob) {
            augment.stretches[rng.random_range(0..augment.stretches.len())]
        } else {
            1.0
        };
        // A fill window lies inside one piece, so an opening is never one.
        if !opening && augment.fill_share > 0.0 && rng.random_bool(augment.fill_share) {
            if let Some(w) = fill_window(ids, start, self.len, semitones, rng) {
                return w;
            }
        }
        if semitones == 0 && factor == 1.0 {
            return plain.to_vec();
        }
        // Augmenting can merge words, so start from a longer raw window and cut it afterwards.
        let raw = &ids[start..(start + self.len + self.len / 4 + 8).min(ids.len())];
        let (mut words, _) = Vocab.decode(raw);
        if semitones != 0 {
            words = transpose(&words, semitones);
        }
        if factor != 1.0 {
            words = stretch(&words, factor);
        }
        match Vocab.encode(&words) {
            Some(mut out) if out.len() >= self.len => {
                out.truncate(self.len);
                out
            }
            _ => plain.to_vec(),
        }
    }

    /// A batch: inputs and targets, both (batch, context) u32.
    pub fn batch(
        &self,
        rng: &mut StdRng,
        batch: usize,
        augment: &Augment,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let ctx = self.len - 1;
        let mut x = Vec::with_capacity(batch * ctx);
        let mut y = Vec::with_capacity(batch * ctx);
        for _ in 0..batch {
            let w = self.window(rng, augment);
            x.extend(w[..ctx].iter().map(|&t| t as u32));
            y.extend(w[1..].iter().map(|&t| t as u32));
        }
        Ok((
            Tensor::from_vec(x, (batch, ctx), device)?,
            Tensor::from_vec(y, (batch, ctx), device)?,
        ))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::music::words::Word;
    use rand::SeedableRng;
    use std::collections::HashSet;

    /// The committed example continuation (a real MIDI file), as token ids.
    pub fn example_piece() -> Vec<u16> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/examples/continuation.mid"
        );
        let bytes = std::fs::read(path).unwrap();
        let words = crate::music::read::piece_from_midi(&bytes, &mut Default::default()).unwrap();
        Vocab.encode(&words).unwrap()
    }

    /// The example piece, its first 20 words as a second, short piece, and its first 300.
    fn split() -> SplitData {
        let ids = example_piece();
        assert!(ids.len() > 500, "{} words", ids.len());
        let mut split = SplitData::default();
        split.push("whole", &ids);
        split.push("short", &ids[..20]);
        split.push("opening", &ids[..300]);
        split
    }

    #[test]
    fn windows_lie_inside_one_piece_and_skip_short_ones() {
        let split = split();
        let windows = Windows::new(&split, 65);
        assert!(!windows.is_empty());
        assert!(Windows::new(&split, split.pieces[0].len + 1).is_empty());
        let mut rng = StdRng::seed_from_u64(1);
        let mut pieces = HashSet::new();
        let mut in_opening = 0;
        for _ in 0..2000 {
            let (piece, start) = windows.sample(&mut rng);
            assert_ne!(piece, 1, "the 20-word piece holds no 65-word window");
            assert!(start + 65 <= split.pieces[piece].len, "{piece} {start}");
            pieces.insert(piece);
            in_opening += (piece == 2) as usize;
        }
        assert_eq!(pieces, HashSet::from([0, 2]));
        // Uniform over window starts: the opening's 236 of them get their share of the draws.
        let starts = (split.pieces[0].len - 64 + 236) as f64;
        let expected = 2000.0 * 236.0 / starts;
        let got = in_opening as f64;
        assert!(
            (got - expected).abs() < 0.3 * expected,
            "{got} draws in the opening, {expected:.0} expected"
        );
    }

    #[test]
    fn plain_windows_are_the_piece_and_augmented_ones_stay_whole_words() {
        let split = split();
        let windows = Windows::new(&split, 65);
        let device = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(7);
        let (x, y) = windows
            .batch(&mut rng, 8, &Augment::none(), &device)
            .unwrap();
        assert_eq!((x.dims(), y.dims()), (&[8, 64][..], &[8, 64][..]));
        let (x, y) = (x.to_vec2::<u32>().unwrap(), y.to_vec2::<u32>().unwrap());
        for (xs, ys) in x.iter().zip(&y) {
            assert_eq!(xs[1..], ys[..63], "targets are the inputs one word on");
            // The window is a stretch of a piece, as it lies there.
            let w: Vec<u16> = xs.iter().chain(ys.last()).map(|&t| t as u16).collect();
            let found = (0..3).any(|p| split.piece(p).windows(65).any(|s| s == w));
            assert!(found, "a plain window is not in the data");
        }
        // Every window transposed and stretched: still 65 ids of the vocabulary, and most of
        // them differ from the plain windows.
        let always = Augment {
            transpose_prob: 1.0,
            stretch_prob: 1.0,
            ..Augment::default()
        };
        let (mut changed, mut n) = (0, 0);
        for _ in 0..50 {
            let w = windows.window(&mut rng, &always);
            assert_eq!(w.len(), 65);
            assert!(w.iter().all(|&t| (t as usize) < Vocab.len()));
            let (words, bad) = Vocab.decode(&w);
            assert_eq!(bad, 0);
            assert!(!words.contains(&Word::Start) || words[0] == Word::Start);
            changed += !(0..3).any(|p| split.piece(p).windows(65).any(|s| s == w)) as usize;
            n += 1;
        }
        assert!(changed > n / 2, "only {changed} of {n} windows augmented");
    }

    #[test]
    fn opening_windows_start_at_a_piece_drawn_uniformly_and_run_on_past_short_ones() {
        // Three pieces that open differently: the example, then START and 19 of its later
        // words, then START and 179 more.
        let ids = example_piece();
        let mut split = SplitData::default();
        split.push("whole", &ids);
        split.push("short", &[&ids[..1], &ids[301..320]].concat());
        split.push("long", &[&ids[..1], &ids[401..580]].concat());
        let windows = Windows::new(&split, 65);
        let only_openings = Augment {
            opening_share: 1.0,
            ..Augment::none()
        };
        let mut rng = StdRng::seed_from_u64(3);
        let mut firsts = [0usize; 3];
        for _ in 0..300 {
            let w = windows.window(&mut rng, &only_openings);
            assert_eq!(w.len(), 65);
            let piece = (0..3)
                .find(|&p| split.tokens[split.pieces[p].offset..].starts_with(&w))
                .expect("an opening window is the split's words from a piece's START");
            assert_eq!(w[0], 0, "START");
            firsts[piece] += 1;
        }
        // The 20-word piece, which holds no window of its own, opens its share of them (and
        // runs on into the next piece); each piece about a third, whatever its length.
        assert!(firsts.iter().all(|&n| (70..130).contains(&n)), "{firsts:?}");
        // The same draws where no opening is asked for: runs without the share are unchanged.
        let draw = |augment: &Augment| {
            let mut rng = StdRng::seed_from_u64(9);
            (0..20)
                .map(|_| windows.window(&mut rng, augment))
                .collect::<Vec<_>>()
        };
        let unasked = Augment {
            opening_share: 0.0,
            ..Augment::default()
        };
        assert_eq!(draw(&unasked), draw(&Augment::default()));
    }

    #[test]
    fn a_seed_gives_the_same_draws_and_streams_differ() {
        let split = split();
        let windows = Windows::new(&split, 33);
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let (x, _) = windows
                .batch(&mut rng, 4, &Augment::default(), &Device::Cpu)
                .unwrap();
            x.to_vec2::<u32>().unwrap()
        };
        let a = derive_seed(1337, Stream::Batches, 5);
        assert_eq!(draw(a), draw(a));
        let others = [
            derive_seed(1337, Stream::Batches, 6),
            derive_seed(1337, Stream::EvalTrain, 5),
            derive_seed(1338, Stream::Batches, 5),
        ];
        for b in others {
            assert_ne!(a, b);
            assert_ne!(draw(a), draw(b));
        }
    }
}
