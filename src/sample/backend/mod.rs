//! Models behind [`NextWordModel`].
//!
//! - [`FastGpt`] (`decoder.rs`): the default for generation. The checkpoint's weights read straight
//!   into packed arrays (f16 by default, see [`Weights`]) and a decoder written for them, over the
//!   AVX2/FMA (and AVX-512) kernels of `kernels.rs` (plain loops where the CPU lacks them); its
//!   takes are one batch a word.
//! - [`FastTakes`] (`fast_takes.rs`): [`FastGpt`] with the takes dealt out to the cores.
//! - [`CachedTakes`] (`candle.rs`): candle's own [`crate::learn::model::Gpt::forward_cached`] with
//!   its key/value cache, the takes as its batch rows.
//! - [`UncachedGpt`] (`candle.rs`): candle's full [`crate::learn::model::Gpt::forward`] over the
//!   whole window for every word (how nanoGPT samples), the baseline of `bench generate`.
//!
//! All give the same logits up to float rounding. [`load_for`] picks the one for a device:
//! [`FastTakes`] on the CPU, [`CachedTakes`] on a GPU.

mod candle;
mod core_pair;
mod decoder;
mod fast_takes;
pub(crate) mod kernels;

pub use self::candle::{CachedTakes, UncachedGpt};
pub use decoder::{FastGpt, Weights};
pub use fast_takes::FastTakes;

use super::NextWordModel;
use crate::learn::checkpoint::Checkpoint;
use crate::learn::device::Compute;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;

/// A generation model behind the trait, ready to move to a worker thread.
pub type BoxedModel = Box<dyn NextWordModel + Send>;

/// The checkpoint in `dir` as a generation model for `compute`, with a line that says what runs
/// it: on the CPU the [`FastGpt`] decoder with `weights`, takes dealt to the cores; on a GPU
/// candle's cached forward there (matrix products in the device's float type, `weights` does
/// not apply).
pub fn load_for(dir: &Path, compute: &Compute, weights: Weights) -> Result<(BoxedModel, String)> {
    if compute.is_cuda() {
        // Weights in the matrix products' type once, rather than cast at every word.
        let model = Checkpoint::load_on(dir, compute)?
            .model
            .to_dtype(compute.matmul_dtype)?;
        let label = format!("candle on {}, {:?} weights", compute.name(), model.dtype());
        return Ok((Box::new(CachedTakes::new(Arc::new(model))), label));
    }
    let model = FastTakes::new(FastGpt::load(dir, weights)?);
    let label = format!(
        "nanotune decoder on the cpu, {:?} weights, one take on {} core{}, takes dealt to up to {} threads",
        model.model().weights(),
        if model.model().on_two_cores() { 2 } else { 1 },
        if model.model().on_two_cores() { "s" } else { "" },
        rayon::current_num_threads()
    );
    Ok((Box::new(model), label))
}
