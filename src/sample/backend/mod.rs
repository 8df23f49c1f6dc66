//! Models behind [`NextWordModel`].
//!
//! - [`FastGpt`] (`decoder.rs`): the default for generation. The checkpoint's weights read straight
//!   into packed arrays (f16 by default, see [`Weights`]) and a batch-1 decoder written for them,
//!   over the AVX2/FMA (and AVX-512) kernels of `kernels.rs` (plain loops where the CPU lacks them).
//! - [`CachedGpt`] (`candle.rs`): candle's own [`crate::learn::model::Gpt::forward_cached`] with
//!   its key/value cache.
//! - [`FastTakes`] (`fast_takes.rs`) and [`CachedTakes`]: the same two for several takes at once
//!   ([`crate::sample::TakesModel`], one batch a word; on the CPU the takes are dealt out to the
//!   cores).
//! - [`UncachedGpt`] (`candle.rs`): candle's full [`crate::learn::model::Gpt::forward`] over the
//!   whole window for every word (how nanoGPT samples), the baseline of `bench generate`.
//!
//! All three give the same logits up to float rounding. [`load_for`] picks the one for a device:
//! [`FastGpt`] on the CPU, [`CachedGpt`] on a GPU.

mod candle;
mod decoder;
mod fast_takes;
pub(crate) mod kernels;

pub use self::candle::{CachedGpt, CachedTakes, UncachedGpt};
pub use decoder::{FastGpt, Weights};
pub use fast_takes::FastTakes;

use super::{NextWordModel, TakesModel};
use crate::learn::checkpoint::Checkpoint;
use crate::learn::device::Compute;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;

/// A generation model behind the trait, ready to move to a worker thread.
pub type BoxedModel = Box<dyn NextWordModel + Send>;

/// A model of several takes behind the trait, ready to move to a worker thread.
pub type BoxedTakes = Box<dyn TakesModel + Send>;

/// The checkpoint in `dir` as a generation model for `compute`, with a line that says what runs
/// it: on the CPU the [`FastGpt`] decoder with `weights`; on a GPU candle's cached forward
/// there (matrix products in the device's float type, `weights` does not apply).
pub fn load_for(dir: &Path, compute: &Compute, weights: Weights) -> Result<(BoxedModel, String)> {
    if compute.is_cuda() {
        // Weights in the matrix products' type once, rather than cast at every word.
        let model = Checkpoint::load_on(dir, compute)?
            .model
            .to_dtype(compute.matmul_dtype)?;
        let label = format!("candle on {}, {:?} weights", compute.name(), model.dtype());
        let model = Arc::new(model);
        return Ok((Box::new(CachedGpt::new(model)), label));
    }
    let model = FastGpt::load(dir, weights)?;
    let label = format!("nanotune decoder on the cpu, {:?} weights", model.weights());
    Ok((Box::new(model), label))
}

/// As [`load_for`], the model for takes ([`crate::sample::generate_takes`]): [`FastTakes`] on the
/// CPU, [`CachedTakes`] on a GPU.
pub fn load_takes_for(
    dir: &Path,
    compute: &Compute,
    weights: Weights,
) -> Result<(BoxedTakes, String)> {
    if compute.is_cuda() {
        let model = Checkpoint::load_on(dir, compute)?
            .model
            .to_dtype(compute.matmul_dtype)?;
        let label = format!("candle on {}, {:?} weights", compute.name(), model.dtype());
        return Ok((Box::new(CachedTakes::new(Arc::new(model))), label));
    }
    let model = FastGpt::load(dir, weights)?;
    let model = FastTakes::new(model);
    let label = format!(
        "nanotune decoder on the cpu, {:?} weights, takes dealt to up to {} threads",
        model.model().weights(),
        rayon::current_num_threads()
    );
    Ok((Box::new(model), label))
}
