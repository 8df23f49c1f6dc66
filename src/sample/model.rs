//! The model the sampler runs on: a next-word model that decodes one or more takes side by
//! side, each with its own cache. A batch-1 model is a model of one take (the defaults).

use anyhow::{bail, ensure, Result};

/// A next-word model for one or several sequences (takes) at once, each with its own cache.
pub trait NextWordModel {
    /// Longest sequence it reads at once (the positions each cache holds).
    fn context(&self) -> usize;
    /// Number of outputs (the length of one take's logits): the words, and the fill markers
    /// of a model trained to fill the middle.
    fn vocab(&self) -> usize;
    /// Takes it decodes side by side.
    fn takes(&self) -> usize {
        1
    }
    /// Decodes `takes` sequences from now on, all empty after the next [`Self::reset`] (a
    /// batch-1 model: only one).
    fn set_takes(&mut self, takes: usize) -> Result<()> {
        ensure!(takes == 1, "this model decodes one take at a time");
        Ok(())
    }
    /// Forgets every word fed to every take.
    fn reset(&mut self);
    /// Reads `ids[k]` after the words already fed to take `k` (at most `context` in all since
    /// the last reset) and writes the logits of its next word into `logits[k * vocab..][..vocab]`.
    /// A take with no words (it has ended) is skipped and its logits are left as they are; the
    /// others all get the same number of words.
    fn feed(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> Result<()>;
    /// The sampler's promise that no take will hold more than `positions` words from the next
    /// reset on (the window never slides when that is within the context), or `usize::MAX`
    /// where it cannot say: a model that prepares each word for a slide may skip that work.
    fn expect_at_most(&mut self, positions: usize) {
        let _ = positions;
    }
    /// Whether the model takes one word at a time forever, sliding its window itself exactly as
    /// the sampler would (reset, then the last [`super::window_keep`] words); otherwise the
    /// sampler rebuilds the window when the context is full.
    fn slides_itself(&self) -> bool {
        false
    }
}

impl<M: NextWordModel + ?Sized> NextWordModel for Box<M> {
    fn context(&self) -> usize {
        (**self).context()
    }
    fn vocab(&self) -> usize {
        (**self).vocab()
    }
    fn takes(&self) -> usize {
        (**self).takes()
    }
    fn set_takes(&mut self, takes: usize) -> Result<()> {
        (**self).set_takes(takes)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn feed(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> Result<()> {
        (**self).feed(ids, logits)
    }
    fn expect_at_most(&mut self, positions: usize) {
        (**self).expect_at_most(positions)
    }
    fn slides_itself(&self) -> bool {
        (**self).slides_itself()
    }
}

/// The words of the one take of a batch-1 model's [`NextWordModel::feed`]; `None` where it has
/// none (nothing to do).
pub fn one_take<'a>(ids: &[&'a [u16]]) -> Result<Option<&'a [u16]>> {
    match ids {
        [[]] => Ok(None),
        [ids] => Ok(Some(ids)),
        _ => bail!("words for {} takes, not 1", ids.len()),
    }
}
