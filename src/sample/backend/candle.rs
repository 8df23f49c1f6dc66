//! candle's own forward passes behind [`NextWordModel`]: the cached one that generation runs on a
//! GPU (its takes in one batch), and the uncached one that `bench generate` and the tests
//! compare against.

use crate::learn::model::{Gpt, KvCache};
use crate::sample::{check_takes, one_take, NextWordModel};
use anyhow::{ensure, Result};
use candle_core::{Device, Tensor};
use std::sync::Arc;

fn ids_tensor(ids: &[u16], device: &Device) -> Result<Tensor> {
    let n = ids.len();
    let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    Ok(Tensor::from_vec(ids, (1, n), device)?)
}

fn copy_logits(t: &Tensor, logits: &mut [f32]) -> Result<()> {
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    ensure!(v.len() == logits.len(), "logits of {} words", v.len());
    logits.copy_from_slice(&v);
    Ok(())
}

/// candle's cached forward for several takes: one [`KvCache`] whose batch rows are the takes,
/// so one word of every take is one batched forward pass (what takes run on a GPU). Every take
/// steps together; one that has ended is fed `START` in its row, whose logits nobody reads.
pub struct CachedTakes {
    model: Arc<Gpt>,
    cache: KvCache,
    takes: usize,
}

impl CachedTakes {
    pub fn new(model: Arc<Gpt>) -> CachedTakes {
        let cache = KvCache::new(model.config());
        CachedTakes {
            model,
            cache,
            takes: 1,
        }
    }
}

impl NextWordModel for CachedTakes {
    fn context(&self) -> usize {
        self.model.config().context
    }
    fn vocab(&self) -> usize {
        self.model.config().vocab
    }
    fn takes(&self) -> usize {
        self.takes
    }
    fn set_takes(&mut self, takes: usize) -> Result<()> {
        check_takes(takes)?;
        self.takes = takes;
        self.cache.reset();
        Ok(())
    }
    fn reset(&mut self) {
        self.cache.reset();
    }
    fn feed(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> Result<()> {
        let (takes, vocab) = (self.takes, self.vocab());
        ensure!(
            ids.len() == takes,
            "words for {} takes, not {takes}",
            ids.len()
        );
        ensure!(logits.len() == takes * vocab, "logits buffer size");
        let t = ids.iter().map(|w| w.len()).max().unwrap_or(0);
        ensure!(t > 0, "no words to feed");
        ensure!(
            ids.iter().all(|w| w.is_empty() || w.len() == t),
            "every take gets the same number of words"
        );
        let rows: Vec<u32> = ids
            .iter()
            .flat_map(|w| (0..t).map(move |i| w.get(i).map_or(0, |&id| id as u32)))
            .collect();
        let rows = Tensor::from_vec(rows, (takes, t), self.model.device())?;
        let out = self.model.forward_cached(&rows, &mut self.cache)?;
        let out = out.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        for (k, row) in out.iter().enumerate().filter(|(k, _)| !ids[*k].is_empty()) {
            ensure!(row.len() == vocab, "logits of {} words", row.len());
            logits[k * vocab..][..vocab].copy_from_slice(row);
        }
        Ok(())
    }
}

/// candle's full forward over the whole window for every new word (no cache).
pub struct UncachedGpt {
    model: Arc<Gpt>,
    window: Vec<u16>,
}

impl UncachedGpt {
    pub fn new(model: Arc<Gpt>) -> UncachedGpt {
        UncachedGpt {
            model,
            window: Vec::new(),
        }
    }
}

impl NextWordModel for UncachedGpt {
    fn context(&self) -> usize {
        self.model.config().context
    }
    fn vocab(&self) -> usize {
        self.model.config().vocab
    }
    fn reset(&mut self) {
        self.window.clear();
    }
    fn feed(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> Result<()> {
        let Some(ids) = one_take(ids)? else {
            return Ok(());
        };
        self.window.extend_from_slice(ids);
        ensure!(
            self.window.len() <= self.context(),
            "{} words exceed the context",
            self.window.len()
        );
        let t = ids_tensor(&self.window, self.model.device())?;
        let out = self.model.forward(&t)?;
        let n = self.window.len();
        copy_logits(&out.narrow(1, n - 1, 1)?, logits)
    }
}
