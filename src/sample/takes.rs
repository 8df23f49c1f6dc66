//! Takes: several versions of one generation, decoded side by side in one batch.
//!
//! Every take starts from the same prompt with the same settings and its own seed
//! ([`take_seed`]: take 1's is the run's seed, so one take is exactly [`super::generate`]), its
//! own grammar state and its own end; a take that has ended waits for the others. A
//! [`NextWordModel`] reads one word of every take as one batch ([`super::backend::FastTakes`] on
//! the CPU, [`super::backend::CachedTakes`] on a GPU), so each weight is read once per word for
//! all of them.

use super::steer::Density;
use super::{
    bar_line_after, fits_before, in_key, reaches, window_keep, within_polyphony, Ended, Generation,
    Grammar, NextWordModel, Picker, Running, SampleOptions, State,
};
use crate::music::words::Titled;
use crate::music::words::{Vocab, Word};
use anyhow::{bail, ensure, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The most takes one run decodes.
pub const MAX_TAKES: usize = 8;

/// Checks a number of takes (1 to [`MAX_TAKES`]).
pub fn check_takes(takes: usize) -> Result<()> {
    ensure!(
        (1..=MAX_TAKES).contains(&takes),
        "takes must be 1 to {MAX_TAKES}, not {takes}"
    );
    Ok(())
}

/// The seed of take `take` (0-based) of a run with `seed`: the run's seed for the first, a hash
/// of both for the others (a take run alone with its seed gives the same music).
pub fn take_seed(seed: u64, take: usize) -> u64 {
    if take == 0 {
        return seed;
    }
    let bytes = [seed.to_le_bytes(), (take as u64).to_le_bytes()].concat();
    crate::learn::dataset::fnv1a64(&bytes) % 1_000_000_000
}

/// One take while it is made.
struct Take {
    opts: SampleOptions,
    grammar: Grammar,
    history: Vec<u16>,
    rng: StdRng,
    made: usize,
    sampled: usize,
    /// Length of the history at the last whole note (where a cancelled piece is cut back to).
    last_whole: Option<usize>,
    /// How it ended and when.
    ended: Option<(Ended, Duration)>,
    /// The density steer, where asked for, and the logits it changes.
    density: Option<Density>,
    steered: Vec<f32>,
}

impl Take {
    fn is_active(&self) -> bool {
        self.ended.is_none()
    }

    /// At its length: it ends with `END` without another model step.
    fn at_length(&self, line: Option<u64>) -> bool {
        line.is_none() && self.made >= self.opts.words && self.grammar.can_end()
    }
}

/// Feeds the end of every active take's history afresh (they are all the same length): at most
/// `context` ids, or the last half of the context when the history is longer. Returns how many
/// positions the model now holds.
fn refill<M: NextWordModel + ?Sized>(
    model: &mut M,
    takes: &[Take],
    feeds: &[bool],
    logits: &mut [f32],
) -> Result<usize> {
    let context = model.context();
    let len = takes
        .iter()
        .zip(feeds)
        .find(|(_, &f)| f)
        .map_or(0, |(t, _)| t.history.len());
    let n = if len <= context {
        len
    } else {
        window_keep(context)
    };
    let ids: Vec<&[u16]> = takes
        .iter()
        .zip(feeds)
        .map(|(t, &f)| if f { &t.history[len - n..] } else { &[][..] })
        .collect();
    model.reset();
    model.feed(&ids, logits)?;
    Ok(n)
}

/// Generates `takes` takes after `prompt` in one batch (see the module doc): as
/// [`super::generate`] for each, with `on_word` called with the take (0-based) and each new
/// word as it is made. Raising `stop` ends every take before its next word. Gives one
/// [`Generation`] per take, in order; each one's options hold its own seed.
pub fn generate_takes<M: NextWordModel + ?Sized>(
    model: &mut M,
    prompt: &Titled,
    opts: &SampleOptions,
    takes: usize,
    stop: &AtomicBool,
    on_word: &mut dyn FnMut(usize, Word),
) -> Result<Vec<Generation>> {
    generate_after(model, prompt, None, opts, takes, stop, on_word)
}

/// As [`generate_takes`], the model reading `lead` in place of the prompt's ids where given: a
/// fill layout (`FILL_PRE` ... `FILL_MID`, see [`crate::music::fill`]) whose prefix the prompt
/// is, ending with a shift to the span's start. The grammar follows the prompt; the new words
/// start afresh there, as the layout's middle does.
pub(super) fn generate_after<M: NextWordModel + ?Sized>(
    model: &mut M,
    prompt: &Titled,
    lead: Option<&[u16]>,
    opts: &SampleOptions,
    takes: usize,
    stop: &AtomicBool,
    on_word: &mut dyn FnMut(usize, Word),
) -> Result<Vec<Generation>> {
    let started = Instant::now();
    opts.validate()?;
    check_takes(takes)?;
    let outputs = match lead {
        Some(_) => Vocab::WITH_FILL,
        None => Vocab.len(),
    };
    ensure!(
        model.vocab() >= outputs,
        "the model has {} outputs, {} needed",
        model.vocab(),
        outputs
    );
    ensure!(model.context() > 0, "the model has no context");
    ensure!(
        prompt.words.first() == Some(&Word::Start),
        "a prompt starts with START"
    );
    let mut grammar = Grammar::from_words(&prompt.words)?;
    if grammar.state() == State::Done {
        bail!("the prompt is a whole piece (it ends with END): extend it instead");
    }
    let Some(mut history) = Vocab.encode(&prompt.words) else {
        bail!("the prompt holds words outside the vocabulary");
    };
    if let Some(lead) = lead {
        grammar.begin_part();
        history = lead.to_vec();
    }
    model.set_takes(takes)?;
    let prompt_len = history.len();
    // A take ends at most three words past its length (a note finished) and `END` is not fed;
    // a length in bars or a fill has no bound in words.
    let bound = match (opts.bars, &opts.fill) {
        (None, None) => prompt_len.saturating_add(opts.words).saturating_add(4),
        _ => usize::MAX,
    };
    model.expect_at_most(bound);
    history.reserve(opts.words + 4);
    let mut all: Vec<Take> = (0..takes)
        .map(|k| {
            let opts = SampleOptions {
                seed: take_seed(opts.seed, k),
                ..opts.clone()
            };
            Take {
                rng: StdRng::seed_from_u64(opts.seed),
                density: opts.density.map(|d| Density::new(d, grammar.onset())),
                steered: Vec::new(),
                opts,
                grammar: grammar.clone(),
                history: history.clone(),
                made: 0,
                sampled: 0,
                last_whole: grammar.can_end().then_some(prompt_len),
                ended: None,
            }
        })
        .collect();
    let mut picker = Picker {
        candidates: Vec::with_capacity(Vocab.len()),
    };
    let vocab = model.vocab();
    let mut logits = vec![0.0f32; takes * vocab];
    let mut fed = 0;
    let mut fresh = true;
    // In bars mode: the bar line where the piece ends, and no word may sound past it.
    let line = match &opts.fill {
        Some(fill) => Some(fill.end),
        None => opts
            .bars
            .map(|n| bar_line_after(&prompt.words, &grammar, n)),
    };
    loop {
        for (k, t) in all.iter_mut().enumerate() {
            if t.is_active() && t.at_length(line) {
                t.history.push(Vocab::END);
                on_word(k, Word::End);
                t.ended = Some((Ended::Length, started.elapsed()));
            }
        }
        if !all.iter().any(Take::is_active) {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            for t in all.iter_mut().filter(|t| t.is_active()) {
                t.ended = Some((Ended::Cancelled, started.elapsed()));
            }
            break;
        }
        if fresh {
            let feeds: Vec<bool> = all.iter().map(Take::is_active).collect();
            fed = refill(model, &all, &feeds, &mut logits)?;
            fresh = false;
        }
        for (k, t) in all.iter_mut().enumerate().filter(|(_, t)| t.is_active()) {
            let id = pick(t, &logits[k * vocab..][..vocab], line, &mut picker)?;
            t.grammar.push_id(id)?;
            if let Some(d) = &mut t.density {
                d.chose(id);
            }
            t.history.push(id);
            t.sampled += 1;
            on_word(k, Vocab.word(id).expect("a vocabulary id"));
            if id == Vocab::END {
                t.ended = Some((Ended::Model, started.elapsed()));
                continue;
            }
            t.made += 1;
            if t.grammar.can_end() {
                t.last_whole = Some(t.history.len());
            }
            if line.is_some_and(|line| t.grammar.onset() >= line) {
                // A shift reached the bar line: the piece is full. A trailing shift is not
                // canonical, so it goes, and the piece ends with its last note.
                t.history.truncate(t.last_whole.unwrap_or(prompt_len));
                t.history.push(Vocab::END);
                on_word(k, Word::End);
                t.ended = Some((Ended::Length, started.elapsed()));
            }
        }
        // The takes that go on need the next word's logits; one at its length ends without.
        let feeds: Vec<bool> = all
            .iter()
            .map(|t| t.is_active() && !t.at_length(line))
            .collect();
        if !feeds.contains(&true) {
            continue;
        }
        if fed < model.context() || model.slides_itself() {
            let ids: Vec<&[u16]> = all
                .iter()
                .zip(&feeds)
                .map(|(t, &f)| {
                    if f {
                        &t.history[t.history.len() - 1..]
                    } else {
                        &[][..]
                    }
                })
                .collect();
            model.feed(&ids, &mut logits)?;
            fed += 1;
        } else {
            fed = refill(model, &all, &feeds, &mut logits)?;
        }
    }
    Ok(all
        .into_iter()
        .map(|mut t| {
            let (ended, elapsed) = t.ended.expect("every take ended");
            if ended == Ended::Cancelled {
                if let Some(n) = t.last_whole.filter(|&n| n >= prompt_len) {
                    t.history.truncate(n);
                    t.history.push(Vocab::END);
                }
            }
            // The prompt's words, then the new ones (the model may have read a fill layout).
            let mut words = prompt.words.clone();
            words.extend(Vocab.decode(&t.history[prompt_len..]).0);
            Generation {
                words,
                prompt_len: prompt.words.len(),
                title: prompt.title.clone(),
                options: t.opts,
                ended,
                sampled: t.sampled,
                elapsed,
            }
        })
        .collect())
}

/// The next word of take `t` from its `logits`, under the grammar, the scale lock and the
/// length (see [`super::generate`]).
fn pick(t: &mut Take, logits: &[f32], line: Option<u64>, picker: &mut Picker) -> Result<u16> {
    let logits = match &t.density {
        Some(d) => {
            t.steered.clear();
            t.steered.extend_from_slice(logits);
            d.steer(&t.grammar, &mut t.steered);
            &t.steered[..]
        }
        None => logits,
    };
    let opts = &t.opts;
    let end_ok = opts.stop_at_end && t.made > 0;
    let g = &t.grammar;
    let in_key = |id: u16| in_key(opts, id);
    let polyphony = |id: u16| within_polyphony(opts, g, id);
    // Near the limit, prefer a note to a shift (a shift needs four words before END).
    // (A piece that ends at a bar line has no length in words.)
    let avoid_shift = line.is_none()
        && opts.words.saturating_sub(t.made) < 4
        && matches!(g.state(), State::Ready | State::Shifted(_))
        && Vocab::PITCH_IDS
            .clone()
            .any(|id| g.allows(id, false) && in_key(id) && polyphony(id));
    // A new piece of so many bars opens with its first note (a fill may begin in silence):
    // more than half of the corpus's pieces open with a bar or more of silence, which a model
    // that has learnt openings plays back, and here it would take the bars asked for. (Without a
    // length in bars the model opens as it likes: forbidding the rest made its pieces busier, as
    // the corpus's pieces that open on a note are the busier ones.)
    let opening = line.is_some() && opts.fill.is_none() && t.history == [Vocab::START];
    let fits = |id: u16| line.is_none_or(|line| fits_before(g, id, line));
    let reaches = |id: u16| opts.fill.as_ref().is_none_or(|f| reaches(g, id, f.start));
    let legal = |id: u16| {
        g.allows(id, end_ok)
            && !((avoid_shift || opening) && id == Vocab::SEP)
            && fits(id)
            && reaches(id)
            && polyphony(id)
    };
    let locked = picker.pick(logits, |id| legal(id) && in_key(id), opts, &mut t.rng);
    match locked.or_else(|| picker.pick(logits, legal, opts, &mut t.rng)) {
        Some(id) => Ok(id),
        None => bail!("the grammar left no legal word in state {:?}", g.state()),
    }
}

/// Takes running on their own thread: each word arrives with its take (0-based), and
/// [`Running::join`] gives one [`Generation`] per take.
pub type RunningTakes<M> = Running<M, (usize, Word), Vec<Generation>>;

/// Runs [`generate_takes`] on a new thread, moving the model there (it comes back from
/// [`Running::join`]).
pub fn spawn_takes<M: NextWordModel + Send + 'static>(
    model: M,
    prompt: Titled,
    opts: SampleOptions,
    takes: usize,
) -> RunningTakes<M> {
    super::spawn_job(model, move |model, stop, send| {
        generate_takes(model, &prompt, &opts, takes, stop, &mut |k, w| send((k, w)))
    })
}
