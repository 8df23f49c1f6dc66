//! Sampling: new words from a trained model, one at a time, with the key/value cache.
//!
//! - [`generate`] runs one generation on the calling thread: batch 1, temperature (0 = greedy),
//!   top-k, top-p, a seed (same settings and seed, same words), every word passed to a callback
//!   as it is made, and a stop flag that ends it early keeping what was made.
//! - [`spawn`] runs [`generate`] on a thread and hands back a [`Running`]: its words arrive on a
//!   channel, [`Running::stop`] cancels, [`Running::join`] gives the [`Generation`] and the model.
//! - [`takes`]: several takes of one generation in one batch, each with its own seed
//!   ([`generate_takes`], [`spawn_takes`]: words tagged with their take, one [`Generation`] each).
//! - Every step masks the words the [`Grammar`] forbids, so the words always decode with nothing
//!   skipped and are canonical, however bad the model.
//! - [`prompt`] builds the prompts of the modes: new piece, continue a song of the dataset,
//!   continue a MIDI file, retry, extend.
//! - [`backend`] puts the model behind [`NextWordModel`]: [`backend::FastGpt`] (the default, a
//!   plain-Rust batch-1 decoder over the checkpoint's weights, f16 by default), or candle's own
//!   [`crate::learn::model::Gpt::forward_cached`] / [`crate::learn::model::Gpt::forward`] for comparison.
//!
//! When the context is full the window slides to the last half of the context ([`window_keep`]),
//! so the model always sees at least that much history. A model that cannot slide itself gets its
//! cache rebuilt from those words in one batched pass, once every `context / 2 + 1` words;
//! [`backend::FastGpt`] slides itself at no extra cost (a shadow window, see there).

pub mod backend;
pub mod grammar;
pub mod infill;
mod model;
pub mod prompt;
mod steer;
pub mod takes;

pub use grammar::{Grammar, State};
pub use model::{one_take, NextWordModel};
pub use takes::{check_takes, generate_takes, spawn_takes, take_seed, RunningTakes, MAX_TAKES};

use crate::music::notes::{
    canon, end_step, from_words, Note, QUARTERS_PER_BAR, STEPS_PER_BAR, STEPS_PER_QUARTER,
};
use crate::music::range::PitchRange;
use crate::music::scale::Scale;
use crate::music::words::{Titled, Vocab, Word, MAX_DURATION};
use anyhow::{ensure, Result};
use rand::rngs::StdRng;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How to sample. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleOptions {
    /// New words to make before `END` (the piece ends at the first whole note from there: at
    /// most one word later, three when no pitch is free). Default 500.
    pub words: usize,
    /// Softmax temperature; 0 picks the likeliest legal word (greedy). Default 0.9.
    pub temperature: f32,
    /// Keep only the k likeliest legal words (0 = no filter). Default 20.
    pub top_k: usize,
    /// Keep the smallest set of likeliest words whose probability reaches p (1.0 = off).
    pub top_p: f32,
    /// Seed of the sampling generator.
    pub seed: u64,
    /// Let the model end the piece itself with `END` before `words` are made.
    pub stop_at_end: bool,
    /// Scale lock: every new note's pitch lies in this key (the prompt is left as it is).
    /// Where the grammar allows no pitch of the key, the durations and shifts it allows are
    /// drawn from alone; where it allows nothing else, the lock yields for that one word.
    pub scale: Option<Scale>,
    /// Every new note inside this range (hard, like the scale lock; the prompt is left as it is).
    pub range: Option<PitchRange>,
    /// Never more than this many notes sounding at once (hard: while that many sound, no new
    /// note starts; 1 writes a single line). Notes of the prompt count while they sound.
    pub polyphony: Option<usize>,
    /// New music near this many notes per beat (soft: a steer, see `steer.rs`).
    pub density: Option<f32>,
    /// Length in bars of 4/4 instead of words: the new part fills this many bars after the bar
    /// the prompt ends in, and the piece ends at that bar line (no note sounds past it).
    pub bars: Option<u32>,
    /// Fill the grid steps `start..end` (two bar lines) after a prompt that holds the notes
    /// before `start`: no new note starts before `start` nor sounds past `end`, and the
    /// generation ends at `end`, whatever `words` and `bars` say ([`infill`]).
    pub fill: Option<std::ops::Range<u64>>,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            // 0.9 and 20: of the settings `nanotune compare` tried on the shipped model (100
            // pieces each), the closest to the corpus in key fit, spread and note lengths.
            words: 500,
            temperature: 0.9,
            top_k: 20,
            top_p: 1.0,
            seed: 0,
            stop_at_end: false,
            scale: None,
            range: None,
            polyphony: None,
            density: None,
            bars: None,
            fill: None,
        }
    }
}

impl SampleOptions {
    /// Checks the settings, for every caller alike (generate, compare, the screen).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.words > 0,
            "tokens must be at least 1: 0 new words would leave only the prompt"
        );
        ensure!(
            self.temperature.is_finite() && self.temperature >= 0.0,
            "temperature must be 0 or more, not {}",
            self.temperature
        );
        ensure!(self.bars != Some(0), "a length in bars must be 1 or more");
        if let Some(d) = self.density {
            ensure!(
                d.is_finite() && (0.1..=16.0).contains(&d),
                "density must be 0.1 to 16 notes per beat, not {d}"
            );
        }
        ensure!(
            self.polyphony != Some(0),
            "polyphony must be 1 or more: 0 notes at once is silence"
        );
        if let Some(fill) = &self.fill {
            ensure!(fill.start < fill.end, "an empty span to fill");
        }
        if let (Some(range), scale) = (self.range, self.scale) {
            ensure!(
                range.meets(scale),
                "no note of {} lies in the range {range}: widen the range or change the scale",
                scale.map_or(String::new(), |s| s.to_string())
            );
        }
        ensure!(
            self.top_p > 0.0 && self.top_p <= 1.0,
            "top-p must be in (0, 1], not {}",
            self.top_p
        );
        Ok(())
    }
}

/// A seed from the clock and the process, for when the user gives none.
pub fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let h = crate::learn::dataset::fnv1a64(
        &[t.to_le_bytes(), (std::process::id() as u64).to_le_bytes()].concat(),
    );
    h % 1_000_000_000
}

/// Why a generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The requested number of words was made (and `END` appended).
    Length,
    /// The model chose `END` (only with `stop_at_end`).
    Model,
    /// The stop flag was raised; the piece is cut back to its last whole note and ended.
    Cancelled,
}

/// Which words of a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    All,
    Prompt,
    New,
}

/// A finished (or cancelled) generation: the prompt followed by the new words.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Prompt then new words; ends with `END` unless the prompt itself was incomplete.
    pub words: Vec<Word>,
    /// How many of `words` are the prompt.
    pub prompt_len: usize,
    /// The title of the piece the prompt came from (continue modes).
    pub title: Option<String>,
    pub options: SampleOptions,
    pub ended: Ended,
    /// Words the model chose (`END` appended at the length limit not counted).
    pub sampled: usize,
    /// Time from the start of the call to the last word.
    pub elapsed: Duration,
}

impl Generation {
    pub fn prompt(&self) -> &[Word] {
        &self.words[..self.prompt_len]
    }

    /// The words after the prompt (including the final `END`).
    pub fn new_words(&self) -> &[Word] {
        &self.words[self.prompt_len..]
    }

    /// Words the model made per second.
    pub fn tokens_per_s(&self) -> f64 {
        self.sampled as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One part as a complete canonical piece (`START` ... `END`); the new part alone starts at
    /// step 0 where the prompt's time ended.
    pub fn piece(&self, part: Part) -> Vec<Word> {
        match part {
            Part::All => canon(&self.words),
            Part::Prompt => canon(self.prompt()),
            Part::New => canon(self.new_words()),
        }
    }

    /// The notes of one part.
    pub fn notes(&self, part: Part) -> Vec<Note> {
        from_words(&self.piece(part)).notes
    }

    /// Length of one part in grid steps (to the end of the last note).
    pub fn steps(&self, part: Part) -> u64 {
        from_words(&self.piece(part)).end
    }

    /// The prompt of a retry: the same prompt (and title), to be run with a new seed.
    pub fn retry_prompt(&self) -> Titled {
        Titled {
            words: self.prompt().to_vec(),
            title: self.title.clone(),
        }
    }

    /// The prompt that extends this piece: all its words but the final `END`.
    pub fn extend_prompt(&self) -> Titled {
        prompt::extend(&self.words, self.title.clone())
    }
}

/// Seconds and bars (of 4/4) of `steps` grid steps at `bpm` quarter notes per minute.
pub fn duration_of(steps: u64, bpm: f64) -> (f64, f64) {
    let quarters = steps as f64 / STEPS_PER_QUARTER as f64;
    (quarters * 60.0 / bpm, quarters / QUARTERS_PER_BAR as f64)
}

/// Reusable buffers for choosing one word.
struct Picker {
    candidates: Vec<(f32, u16)>,
}

impl Picker {
    /// Picks the next id from `logits` among the ids `legal` accepts.
    fn pick(
        &mut self,
        logits: &[f32],
        legal: impl Fn(u16) -> bool,
        opts: &SampleOptions,
        rng: &mut StdRng,
    ) -> Option<u16> {
        let c = &mut self.candidates;
        c.clear();
        for (id, &l) in logits.iter().enumerate() {
            if legal(id as u16) {
                c.push((if l.is_nan() { f32::NEG_INFINITY } else { l }, id as u16));
            }
        }
        if c.is_empty() {
            return None;
        }
        // Likeliest first; ties go to the lower id, so greedy and top-k 1 agree.
        let order = |a: &(f32, u16), b: &(f32, u16)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if opts.temperature <= 0.0 {
            return c.iter().min_by(|a, b| order(a, b)).map(|x| x.1);
        }
        c.sort_unstable_by(order);
        if opts.top_k > 0 {
            c.truncate(opts.top_k);
        }
        let max = c[0].0;
        let mut sum = 0.0f32;
        for x in c.iter_mut() {
            x.0 = if max.is_finite() {
                ((x.0 - max) / opts.temperature).exp()
            } else {
                1.0
            };
            sum += x.0;
        }
        if opts.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = c.len();
            for (i, x) in c.iter().enumerate() {
                acc += x.0;
                if acc >= opts.top_p * sum {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
            sum = c.iter().map(|x| x.0).sum();
        }
        let mut r = rng.random::<f32>() * sum;
        for x in c.iter() {
            if r < x.0 {
                return Some(x.1);
            }
            r -= x.0;
        }
        c.last().map(|x| x.1)
    }
}

/// The bar line `bars` bars after the bar in which the prompt's last note ends (or its cursor
/// stands, if later).
fn bar_line_after(prompt: &[Word], grammar: &Grammar, bars: u32) -> u64 {
    let end = end_step(&from_words(prompt).notes).max(grammar.onset());
    end.div_ceil(STEPS_PER_BAR) * STEPS_PER_BAR + bars as u64 * STEPS_PER_BAR
}

/// Whether word `id` keeps the piece inside the bar line: a note's duration may not reach past
/// it, nor may a shift.
fn fits_before(grammar: &Grammar, id: u16, line: u64) -> bool {
    match (grammar.state(), Vocab.duration(id)) {
        (State::NoteDuration(_) | State::ShiftDuration, Some(k)) => {
            grammar.onset() + k as u64 <= line
        }
        _ => true,
    }
}

/// Whether word `id` keeps the first new note at or after step `floor` (the start of a span to
/// fill): no pitch before it, and a shift from before it reaches it (or is a whole 128 steps,
/// after which another shift may follow).
fn reaches(grammar: &Grammar, id: u16, floor: u64) -> bool {
    if grammar.onset() >= floor {
        return true;
    }
    match (grammar.state(), Vocab.duration(id)) {
        (State::ShiftDuration, Some(k)) => grammar.onset() + k as u64 >= floor || k == MAX_DURATION,
        (State::NoteDuration(_), _) => true,
        _ => Vocab.pitch(id).is_none(),
    }
}

/// Whether word `id` keeps the notes sounding at once within `opts.polyphony`: a pitch only
/// where fewer sound, and a shift only to where fewer will (or a whole 128 steps, after which
/// nothing of before sounds), so a pitch can always follow it.
fn within_polyphony(opts: &SampleOptions, grammar: &Grammar, id: u16) -> bool {
    let Some(limit) = opts.polyphony else {
        return true;
    };
    match (grammar.state(), Vocab.duration(id)) {
        (State::ShiftDuration, Some(k)) => {
            k == MAX_DURATION || grammar.sounding(grammar.onset() + k as u64) < limit
        }
        _ => Vocab.pitch(id).is_none() || grammar.sounding(grammar.onset()) < limit,
    }
}

/// Whether word `id` may be sampled under the scale lock and the range of `opts`: any word but a
/// pitch outside them.
fn in_key(opts: &SampleOptions, id: u16) -> bool {
    Vocab.pitch(id).is_none_or(|p| {
        opts.scale.is_none_or(|s| s.contains(p)) && opts.range.is_none_or(|r| r.contains(p))
    })
}

/// Ids kept when the window slides (half the context, at least 1).
pub fn window_keep(context: usize) -> usize {
    (context / 2).max(1)
}

/// Generates after `prompt` (which must start with `START` and follow the grammar), calling
/// `on_word` with each new word as it is made. Raising `stop` ends it before the next word:
/// the result is cut back to its last whole note and ended (the words streamed after that point,
/// at most two, are not in it).
/// It is the one-take case of [`generate_takes`] (the same loop).
pub fn generate<M: NextWordModel + ?Sized>(
    model: &mut M,
    prompt: &Titled,
    opts: &SampleOptions,
    stop: &AtomicBool,
    on_word: &mut dyn FnMut(Word),
) -> Result<Generation> {
    let mut takes = generate_takes(model, prompt, opts, 1, stop, &mut |_, w| on_word(w))?;
    Ok(takes.remove(0))
}

/// A generation running on its own thread (of takes: [`RunningTakes`]).
pub struct Running<M, W = Word, G = Generation> {
    /// Each new word, as it is made (the channel closes when the generation ends).
    pub words: Receiver<W>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(M, Result<G>)>,
}

impl<M, W, G> Running<M, W, G> {
    /// Asks the generation to stop before its next word (it keeps what was made).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the end; gives the model back for the next generation.
    pub fn join(self) -> (M, Result<G>) {
        match self.handle.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Runs [`generate`] on a new thread, moving the model there (it comes back from
/// [`Running::join`]).
pub fn spawn<M: NextWordModel + Send + 'static>(
    model: M,
    prompt: Titled,
    opts: SampleOptions,
) -> Running<M> {
    spawn_job(model, move |model, stop, send| {
        generate(model, &prompt, &opts, stop, send)
    })
}

/// Runs `job` on a new thread, moving the model there (it comes back from [`Running::join`]):
/// `job` gets the model, the stop flag [`Running::stop`] raises, and where to send what it
/// streams ([`Running::words`]).
pub fn spawn_job<M, W, G, F>(mut model: M, job: F) -> Running<M, W, G>
where
    M: Send + 'static,
    W: Send + 'static,
    G: Send + 'static,
    F: FnOnce(&mut M, &AtomicBool, &mut dyn FnMut(W)) -> Result<G> + Send + 'static,
{
    let (tx, rx) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let result = job(&mut model, &flag, &mut |w| {
            let _ = tx.send(w);
        });
        (model, result)
    });
    Running {
        words: rx,
        stop,
        handle,
    }
}
