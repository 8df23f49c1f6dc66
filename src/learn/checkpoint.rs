//! Checkpoints: a folder that `train --out DIR` writes and `--checkpoint DIR` reads everywhere.
//!
//! - `model.safetensors`: the best weights so far, named as nanoGPT's (`transformer.wte.weight`...).
//! - `config.json`: the model shape, the vocabulary and a summary of the training.
//! - `optimizer.safetensors`: for `--resume` only: the current weights (`param.NAME`), AdamW's
//!   moments (`m.NAME`, `v.NAME`), the `step` and the `best_val_loss`, in one file so they always
//!   agree with each other.
//! - `train_state.json` and `log.csv`: for people (step, losses).
//!
//! Every file is written atomically (a temporary file renamed over the old one), so a kill at any
//! moment leaves the last good checkpoint.

use crate::fsutil::write_atomic;
use crate::learn::device::Compute;
use crate::learn::model::{Gpt, GptConfig};
use crate::music::words::Vocab;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "train_state.json";
pub const LOG_FILE: &str = "log.csv";
/// The loss plot `export` draws from `log.csv`.
pub const PLOT_FILE: &str = "loss.svg";

const FORMAT: &str = "nanotune-checkpoint";
const VERSION: u32 = 1;

/// What training reports about itself in `config.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Optimiser steps done when the file was written.
    pub step: usize,
    /// Step of the best weights (those in `model.safetensors`).
    pub best_step: usize,
    /// Validation loss (nats/word) of the best weights.
    pub best_val_loss: Option<f64>,
    /// Training loss on the fixed evaluation batches at the best step.
    pub train_loss: Option<f64>,
    /// Training words read (batch x accum x context x steps).
    pub tokens: u64,
    /// The training options, as given.
    pub options: serde_json::Value,
}

/// The contents of `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    pub format: String,
    pub version: u32,
    pub model: GptConfig,
    pub vocab: Vec<String>,
    pub training: TrainSummary,
}

impl CheckpointConfig {
    pub fn new(model: GptConfig, training: TrainSummary) -> CheckpointConfig {
        CheckpointConfig {
            format: FORMAT.into(),
            version: VERSION,
            model,
            vocab: Vocab.words(),
            training,
        }
    }

    /// Reads and checks `DIR/config.json`: our format, our vocabulary, a sane model shape.
    pub fn load(dir: &Path) -> Result<CheckpointConfig> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read(&path).with_context(|| {
            format!(
                "no checkpoint in {} (cannot read {})",
                dir.display(),
                path.display()
            )
        })?;
        let config: CheckpointConfig = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a nanotune checkpoint config", path.display()))?;
        if config.format != FORMAT || config.version != VERSION {
            bail!(
                "{} is format {} v{}, this nanotune reads {FORMAT} v{VERSION}",
                path.display(),
                config.format,
                config.version
            );
        }
        if config.vocab != Vocab.words() || config.model.vocab != Vocab.len() {
            bail!(
                "{} was trained with another vocabulary ({} words, this nanotune has {})",
                path.display(),
                config.vocab.len(),
                Vocab.len()
            );
        }
        config
            .model
            .validate()
            .with_context(|| format!("{} holds a bad model shape", path.display()))?;
        Ok(config)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(CONFIG_FILE), &serde_json::to_vec_pretty(self)?)
    }
}

/// The checkpoint in `dir`: `dir` itself, or else its `base` or `small` subfolder (where
/// `train --out checkpoints/small` puts one); `None` where none holds a config.
pub fn find_in(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("base"), dir.join("small")]
        .into_iter()
        .find(|d| d.join(CONFIG_FILE).is_file())
}

/// A trained model read from a checkpoint folder.
pub struct Checkpoint {
    pub model: Gpt,
    pub config: CheckpointConfig,
}

impl Checkpoint {
    /// Reads `DIR/config.json` and `DIR/model.safetensors` onto `device`. A missing, truncated or
    /// mismatched file gives an error that names it.
    pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
        let config = CheckpointConfig::load(dir)?;
        let path = dir.join(MODEL_FILE);
        let tensors = load_tensors(&path, device)?;
        let model = Gpt::from_tensors(&config.model, &tensors, device).with_context(|| {
            format!(
                "{} does not match {}",
                path.display(),
                dir.join(CONFIG_FILE).display()
            )
        })?;
        Ok(Checkpoint { model, config })
    }

    /// [`Checkpoint::load`] onto `compute`'s device, with its matrix-product float type.
    pub fn load_on(dir: &Path, compute: &Compute) -> Result<Checkpoint> {
        let mut ckpt = Checkpoint::load(dir, &compute.device)?;
        ckpt.model.set_matmul_dtype(compute.matmul_dtype);
        Ok(ckpt)
    }
}

/// Copies the checkpoint in `dir` to `out` for shipping: the weights in `dtype` (F16 halves
/// them; loading turns them back into f32), `config.json`, and `log.csv` with its plot
/// `loss.svg` where there is a log. The resume state stays behind. Checks first that the
/// checkpoint loads, and refuses to write over its own folder.
pub fn export(dir: &Path, out: &Path, dtype: candle_core::DType) -> Result<()> {
    if matches!((dir.canonicalize(), out.canonicalize()), (Ok(a), Ok(b)) if a == b) {
        bail!(
            "export writes a new folder: --out is the checkpoint itself ({})",
            dir.display()
        );
    }
    let ckpt = Checkpoint::load(dir, &Device::Cpu)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tensors = ckpt
        .model
        .tensors()
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_dtype(dtype)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    save_tensors(&out.join(MODEL_FILE), &tensors)?;
    ckpt.config.save(out)?;
    if let Ok(log) = std::fs::read_to_string(dir.join(LOG_FILE)) {
        let rows = crate::plot::read_log(&log)
            .with_context(|| format!("reading {}", dir.join(LOG_FILE).display()))?;
        write_atomic(&out.join(LOG_FILE), log.as_bytes())?;
        let m = ckpt.model.num_params() as f64 / 1e6;
        let title = format!("nanotune {m:.1}M parameters: loss per word");
        write_atomic(
            &out.join(PLOT_FILE),
            crate::plot::loss_svg(&rows, &title)?.as_bytes(),
        )?;
    }
    Ok(())
}

/// Reads a safetensors file, naming it in any error.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    candle_core::safetensors::load_buffer(&bytes, device)
        .with_context(|| format!("{} is damaged or not a safetensors file", path.display()))
}

/// Writes tensors as safetensors atomically (see [`write_atomic`]).
pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let bytes = safetensors::serialize(tensors, None)
        .with_context(|| format!("serialising {}", path.display()))?;
    write_atomic(path, &bytes)
}
