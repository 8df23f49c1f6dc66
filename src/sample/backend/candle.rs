//! candle's own forward passes behind [`NextWordModel`]: the cached one that generation runs on a
//! GPU, and the uncached one that `bench generate` and the tests compare against.

use crate::learn::model::{Gpt, KvCache};
use crate::sample::NextWordModel;
use anyhow::{ensure, Result};
use candle_core::{Device, Tensor};
use std::sync::Arc;

/// candle's cached forward: [`Gpt::forward_cached`] with a [`KvCache`].
pub struct CachedGpt {
    model: Arc<Gpt>,
    cache: KvCache,
}

impl CachedGpt {
    pub fn new(model: Arc<Gpt>) -> CachedGpt {
        let cache = KvCache::new(model.config());
        CachedGpt { model, cache }
    }
}

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

impl NextWordModel for CachedGpt {
    fn context(&self) -> usize {
        self.model.config().context
    }
    fn vocab(&self) -> usize {
        self.model.config().vocab
    }
    fn reset(&mut self) {
        self.cache.reset();
    }
    fn feed(&mut self, ids: &[u16], logits: &mut [f32]) -> Result<()> {
        let t = ids_tensor(ids, self.model.device())?;
        let out = self.model.forward_cached(&t, &mut self.cache)?;
        copy_logits(&out, logits)
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
    fn feed(&mut self, ids: &[u16], logits: &mut [f32]) -> Result<()> {
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
