//! Regenerating bars A to B of a piece in place: the notes before bar A and from bar B + 1 on
//! stay note for note; the span between is cleared and filled anew, as several takes at once,
//! held inside it by the sampler (no new note before bar A, none sounding past bar B, the take
//! ends at bar B's line).
//!
//! A model trained to fill the middle (its outputs include the fill markers) reads the bars on
//! both sides first ([`crate::music::fill::lead`]) and writes the span natively; a left-to-right
//! model continues the notes before the span. Either way the takes are then ranked by how likely
//! the model finds the bars that follow the span after each fill (as many words of them as half
//! its context), so the fill that leads best into what comes next is first.

use super::takes::generate_after;
use super::{prompt, NextWordModel, SampleOptions};
use crate::learn::fused::log_sum_exp;
use crate::music::fill;
use crate::music::notes::{
    canonical_words, canonicalise, from_words, word_bars, Note, STEPS_PER_BAR,
};
use crate::music::words::Titled;
use crate::music::words::{Vocab, Word};
use anyhow::{bail, ensure, Context, Result};
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;

/// How a model of `outputs` outputs fills a span, for the screen and the command line to say.
pub fn method(outputs: usize) -> &'static str {
    match native(outputs) {
        true => "fill in the middle, ranked",
        false => "left to right, ranked",
    }
}

/// Whether a model of `outputs` outputs was trained to fill the middle.
fn native(outputs: usize) -> bool {
    outputs >= Vocab::WITH_FILL
}

/// Words a fill of one bar is given room for in the context, beyond the layout before it.
const ROOM_PER_BAR: usize = 64;

/// Whole bars of 4/4 (16 sixteenths), counted from 1, both ends included: `5-8`, or `5` alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bars {
    pub first: u32,
    pub last: u32,
}

impl FromStr for Bars {
    type Err = String;

    fn from_str(s: &str) -> Result<Bars, String> {
        let number = |t: &str| {
            t.trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("'{t}' is not a bar number (bars count from 1)"))
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(s)?, number(s)?),
        };
        if first > last {
            return Err(format!("bars {first}-{last} run backwards"));
        }
        Ok(Bars { first, last })
    }
}

impl std::fmt::Display for Bars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.first == self.last {
            true => write!(f, "bar {}", self.first),
            false => write!(f, "bars {}-{}", self.first, self.last),
        }
    }
}

impl Bars {
    /// The grid steps the bars cover.
    pub fn steps(&self) -> Range<u64> {
        (self.first as u64 - 1) * STEPS_PER_BAR..self.last as u64 * STEPS_PER_BAR
    }
}

/// One fill of a span: the whole piece with it, and how likely the model finds what follows.
#[derive(Clone, Debug, PartialEq)]
pub struct Fill {
    /// The whole piece, `START` ... `END`, with the new bars in place.
    pub words: Vec<Word>,
    /// The seed of the take that made the fill.
    pub seed: u64,
    /// Mean loss (nats/word) of the words after the span given everything before them; `None`
    /// where nothing follows the span.
    pub following_loss: Option<f64>,
}

/// Regenerates `bars` of `piece` as `takes` fills, best first (see the module doc). `opts` gives
/// the sampling settings and the seed of the first take (their `words`, `bars` and `fill` are
/// replaced). The span must begin inside the piece; it may reach past its end.
pub fn regenerate<M: NextWordModel + ?Sized>(
    model: &mut M,
    piece: &[Word],
    bars: Bars,
    opts: &SampleOptions,
    takes: usize,
    stop: &AtomicBool,
) -> Result<Vec<Fill>> {
    let decoded = from_words(piece);
    starts_inside(decoded.end, bars)?;
    let span = bars.steps();
    let mut notes = decoded.notes;
    canonicalise(&mut notes);
    // The notes starting before the span, and those starting after it.
    let [before, _, after] = fill::split(&notes, &span);
    let lead = native(model.vocab()).then(|| {
        let context = model.context();
        let room = (ROOM_PER_BAR * (bars.last - bars.first + 1) as usize).min(context / 2);
        fill::lead(&before, &after, span.start, context - room)
    });
    let words = match lead {
        // The layout's prefix, which ends at the span's start: the middle is read from there.
        Some(_) => fill::prefix_words(&before, true, span.start),
        // The notes before the span: the fill goes on from them.
        None => prompt::extend(&canonical_words(&before), None).words,
    };
    let prompt = Titled { words, title: None };
    let opts = SampleOptions {
        words: usize::MAX,
        bars: None,
        stop_at_end: false,
        fill: Some(span.clone()),
        ..opts.clone()
    };
    let made = generate_after(
        model,
        &prompt,
        lead.as_deref(),
        &opts,
        takes,
        stop,
        &mut |_, _| {},
    )?;
    let mut fills = Vec::with_capacity(made.len());
    for g in made {
        // The prompt's notes all start before the span, the new ones inside it.
        let mut notes = from_words(&g.words).notes;
        let inside = |n: &Note| n.onset + n.duration as u64 <= span.end;
        ensure!(
            notes.iter().all(|n| n.onset < span.start || inside(n)),
            "a fill left its span"
        );
        notes.extend(&after);
        canonicalise(&mut notes);
        let words = canonical_words(&notes);
        let following_loss = following_loss(model, &words, bars.last as u64)?;
        fills.push(Fill {
            words,
            seed: g.options.seed,
            following_loss,
        });
    }
    // Best first; a fill with nothing after it keeps its take's place.
    fills.sort_by(|a, b| {
        let key = |f: &Fill| f.following_loss.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b))
    });
    Ok(fills)
}

/// The mean loss of the words of `words` in the bars from `bar` (0-based) on, each predicted
/// from the words before it, at most half the model's context of them; `None` if there are none.
pub fn following_loss<M: NextWordModel + ?Sized>(
    model: &mut M,
    words: &[Word],
    bar: u64,
) -> Result<Option<f64>> {
    let ids = Vocab
        .encode(words)
        .context("canonical words always encode")?;
    let bars = word_bars(words);
    let Some(from) = bars.iter().position(|&b| b >= bar).filter(|&i| i > 0) else {
        return Ok(None);
    };
    // The closing END is no music of the piece.
    let end = ids.len() - (ids.last() == Some(&Vocab::END)) as usize;
    let context = model.context();
    let count = (end - from).min(context / 2);
    if count == 0 {
        return Ok(None);
    }
    let start = from.saturating_sub(context - count);
    let vocab = model.vocab();
    let mut logits = vec![0.0f32; vocab];
    model.set_takes(1)?;
    model.reset();
    model.feed(&[&ids[start..from]], &mut logits)?;
    let mut total = 0.0;
    for i in from..from + count {
        // Minus the log-probability of the word: the trainer's cross-entropy formula.
        total += (log_sum_exp(&logits).0 - logits[ids[i] as usize]) as f64;
        if i + 1 < from + count {
            model.feed(&[&ids[i..i + 1]], &mut logits)?;
        }
    }
    Ok(Some(total / count as f64))
}

/// Why a span cannot be regenerated, before any work: for the screen and the command line.
pub fn check(piece: &[Word], bars: Bars) -> Result<()> {
    starts_inside(from_words(piece).end, bars)
}

/// The span must begin inside a piece `length` grid steps long.
fn starts_inside(length: u64, bars: Bars) -> Result<()> {
    if bars.steps().start >= length {
        bail!(
            "{bars} start after the piece, which lasts {} bars",
            length.div_ceil(STEPS_PER_BAR)
        );
    }
    Ok(())
}
