//! [`FastTakes`]: several takes on the CPU decoder ([`FastGpt`]), split over the cores.
//!
//! On one core, a word of every take is one batch: each weight is read once for all of them. But
//! past two takes a core is busy with the arithmetic, not the reading (4 takes and their shadow
//! windows are up to 8 rows a product), and each take's attention reads its own cache. So the
//! takes are dealt out to one decoder a core, in runs of neighbours, over one shared copy of the
//! weights; each decoder batches its own. A take's words are the same to the bit however the
//! takes are dealt (the products of a batch equal those of one row, see `kernels.rs`).

use super::decoder::FastGpt;
use crate::sample::{check_takes, NextWordModel};
use anyhow::{ensure, Result};

pub struct FastTakes {
    /// One decoder a thread, over the same weights: part `p` decodes `counts[p]` takes, the
    /// takes after those of the parts before it.
    parts: Vec<FastGpt>,
    counts: Vec<usize>,
    /// Most parts (threads) to deal takes to.
    threads: usize,
}

impl FastTakes {
    /// Takes on `model`, dealt out to as many threads as rayon's pool has (the CPU's cores, or
    /// `RAYON_NUM_THREADS`).
    pub fn new(model: FastGpt) -> FastTakes {
        FastTakes::with_threads(model, rayon::current_num_threads())
    }

    /// Takes on `model` over at most `threads` threads (1: every take in one batch on the
    /// calling thread).
    pub fn with_threads(mut model: FastGpt, threads: usize) -> FastTakes {
        model.use_second_core(threads > 1);
        FastTakes {
            parts: vec![model],
            counts: vec![1],
            threads: threads.max(1),
        }
    }

    pub fn model(&self) -> &FastGpt {
        &self.parts[0]
    }

    /// Threads the takes are dealt to now.
    pub fn threads_in_use(&self) -> usize {
        self.parts.len()
    }
}

/// `takes` dealt to `parts` runs as evenly as can be, the longer runs first.
fn deal(takes: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|p| takes / parts + usize::from(p < takes % parts))
        .collect()
}

impl NextWordModel for FastTakes {
    fn context(&self) -> usize {
        self.parts[0].config().context
    }

    fn vocab(&self) -> usize {
        self.parts[0].config().vocab
    }

    fn takes(&self) -> usize {
        self.counts.iter().sum()
    }

    fn set_takes(&mut self, takes: usize) -> Result<()> {
        check_takes(takes)?;
        self.counts = deal(takes, takes.min(self.threads));
        self.parts.truncate(self.counts.len());
        while self.parts.len() < self.counts.len() {
            let sibling = self.parts[0].sibling();
            self.parts.push(sibling);
        }
        for (part, &n) in self.parts.iter_mut().zip(&self.counts) {
            part.resize_takes(n);
        }
        // One take has the cores to itself: it splits its words over two.
        let alone = self.counts == [1] && self.threads > 1;
        self.parts[0].use_second_core(alone);
        Ok(())
    }

    fn reset(&mut self) {
        self.parts.iter_mut().for_each(FastGpt::reset_all);
    }

    fn slides_itself(&self) -> bool {
        true
    }

    fn expect_at_most(&mut self, positions: usize) {
        for part in &mut self.parts {
            part.expect_at_most(positions);
        }
    }

    fn feed(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> Result<()> {
        let (takes, vocab) = (self.takes(), self.vocab());
        ensure!(
            ids.len() == takes,
            "words for {} takes, not {takes}",
            ids.len()
        );
        ensure!(logits.len() == takes * vocab, "logits buffer size");
        if let [part] = self.parts.as_mut_slice() {
            return part.feed_takes(ids, logits);
        }
        let mut jobs = Vec::with_capacity(self.parts.len());
        let (mut ids, mut logits) = (ids, logits);
        for (part, &n) in self.parts.iter_mut().zip(&self.counts) {
            let (mine, rest) = ids.split_at(n);
            let (out, more) = std::mem::take(&mut logits).split_at_mut(n * vocab);
            jobs.push((part, mine, out));
            (ids, logits) = (rest, more);
        }
        // The first part on this thread, the others on the pool: the calling thread (the
        // generation's own, outside the pool) works instead of sleeping until the pool is done,
        // which cost a wake-up every word.
        let mut results: Vec<Result<()>> = Vec::new();
        results.resize_with(jobs.len(), || Ok(()));
        let mut jobs = jobs.into_iter().zip(results.iter_mut());
        let (first, first_result) = jobs.next().expect("two parts or more");
        rayon::in_place_scope(|scope| {
            for ((part, ids, out), result) in jobs {
                scope.spawn(move |_| *result = part.feed_takes(ids, out));
            }
            let (part, ids, out) = first;
            *first_result = part.feed_takes(ids, out);
        });
        results.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::deal;

    #[test]
    fn takes_are_dealt_evenly_longer_runs_first() {
        assert_eq!(deal(4, 2), [2, 2]);
        assert_eq!(deal(5, 2), [3, 2]);
        assert_eq!(deal(3, 3), [1, 1, 1]);
        assert_eq!(deal(8, 3), [3, 3, 2]);
        assert_eq!(deal(1, 1), [1]);
    }
}
