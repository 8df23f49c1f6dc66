//! Checkpoints: a folder that `train --out DIR` writes and `--checkpoint DIR` reads everywhere.
//!
//! - `model.safetensors`: the best weights so far, named as nanoGPT's (`transformer.wte.weight`...).
//! - `config.json`: the model shape, the vocabulary and a summary of the training.
//! - `optimizer.safetensors`: for `--resume` only: the current weights (`param.NAME`), AdamW's
//!   moments (`m.NAME`, `v.NAME`), the `step` and the `best_val_loss`, in one file so they always
//!   agree with each other.
//! - `train_state.json` and `log.csv`: for people (step, losses).
//!
//! [`locate`] finds the model to open, for every command that takes `--checkpoint` and for the
//! screen, in one documented order ([`CHECKPOINT_HELP`]).
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
        // Any other size gets no names, which `load` refuses.
        let vocab = Vocab.model_words(model.vocab).unwrap_or_default();
        CheckpointConfig {
            format: FORMAT.into(),
            version: VERSION,
            vocab,
            model,
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
        if Vocab.model_words(config.model.vocab).as_ref() != Some(&config.vocab) {
            bail!(
                "{} was trained with another vocabulary ({} words, this nanotune has {} or {} with \
                 the fill markers)",
                path.display(),
                config.vocab.len(),
                Vocab.len(),
                Vocab::WITH_FILL
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

/// The environment variable naming a model folder: where [`locate`] looks after `--checkpoint`.
pub const CHECKPOINT_ENV: &str = "NANOTUNE_CHECKPOINT";

/// The `--help` text of every `--checkpoint`: the order [`locate`] looks in.
pub const CHECKPOINT_HELP: &str =
    "Model folder: the --out of `nanotune train`, or a folder with one \
in `base` or `small` [default: the first holding a model of $NANOTUNE_CHECKPOINT, ./checkpoints, \
checkpoints/ beside the executable, $XDG_DATA_HOME/nanotune/checkpoints (or \
~/.local/share/nanotune/checkpoints)]";

/// The folders [`locate`] tries when no `--checkpoint` is given, in order: `env` (the value of
/// `$NANOTUNE_CHECKPOINT`), `./checkpoints`, `checkpoints/` in `exe_dir` (the executable's
/// folder), then `nanotune/checkpoints` in `data_home` (the user's data folder). Pure, so the
/// order can be tested without touching the process's environment.
pub fn search_path(
    env: Option<PathBuf>,
    exe_dir: Option<&Path>,
    data_home: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = env.into_iter().collect();
    out.push(PathBuf::from("checkpoints"));
    out.extend(exe_dir.map(|d| d.join("checkpoints")));
    out.extend(data_home.map(|d| d.join("nanotune").join("checkpoints")));
    out
}

/// The user's data folder: `$XDG_DATA_HOME`, else `~/.local/share`.
fn data_home() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
}

/// The model to open: `given` (`--checkpoint`: that folder or its `base`/`small` subfolder, and
/// nowhere else), or else the first folder of [`search_path`] that holds one, read from this
/// process's environment. The error says where it looked and how to get a model.
pub fn locate(given: Option<&Path>) -> Result<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let env = std::env::var_os(CHECKPOINT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    locate_in(
        given,
        &search_path(env, exe_dir.as_deref(), data_home().as_deref()),
    )
}

/// [`locate`] over the folders `places` (tried when `given` is `None`).
pub fn locate_in(given: Option<&Path>, places: &[PathBuf]) -> Result<PathBuf> {
    const HOW: &str = "train one with `nanotune prepare CORPUS -o data/prepared` then \
        `nanotune train --data data/prepared --out checkpoints/small`";
    if let Some(dir) = given {
        return find_in(dir).with_context(|| {
            format!(
                "no trained model in {} (no {CONFIG_FILE} there or in its base or small \
                 subfolder): pass the --out folder of `nanotune train`, or {HOW}",
                dir.display()
            )
        });
    }
    if let Some(found) = places.iter().find_map(|dir| find_in(dir)) {
        return Ok(found);
    }
    let looked: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "no trained model found (looked in {}): {HOW}, or pass --checkpoint DIR",
        looked.join(", ")
    )
}

/// The folder inside a checkpoint holding the openings of the validation pieces (`nanotune
/// prepare SOURCE -o DIR --openings N`), so Continue works without the full dataset.
pub const OPENINGS_DIR: &str = "openings";
/// The full prepared dataset's usual place, tried before the openings.
pub const PREPARED_DIR: &str = "data/prepared";

/// Where the pieces to continue come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Songs {
    /// `--data DIR`, as given.
    Given(PathBuf),
    /// `data/prepared`, which holds a dataset.
    Prepared(PathBuf),
    /// The openings shipped beside the model.
    Openings(PathBuf),
}

impl Songs {
    /// `given`, else `data/prepared` where it holds a dataset, else the openings beside the
    /// model in `checkpoint`.
    pub fn find(given: Option<&Path>, checkpoint: &Path) -> Songs {
        Songs::find_with(given, Path::new(PREPARED_DIR), checkpoint)
    }

    /// [`Songs::find`] with the prepared dataset looked for in `prepared` instead of
    /// `data/prepared`.
    pub fn find_with(given: Option<&Path>, prepared: &Path, checkpoint: &Path) -> Songs {
        if let Some(dir) = given {
            return Songs::Given(dir.to_path_buf());
        }
        if prepared.join("index.json").is_file() {
            return Songs::Prepared(prepared.to_path_buf());
        }
        Songs::Openings(checkpoint.join(OPENINGS_DIR))
    }

    pub fn dir(&self) -> &Path {
        match self {
            Songs::Given(d) | Songs::Prepared(d) | Songs::Openings(d) => d,
        }
    }
}

/// The one door into a checkpoint folder: `DIR/config.json` and the weights of
/// `DIR/model.safetensors` on `device`, every tensor checked against the config's shape (an error
/// names both files). Both the candle [`Gpt`] and the CPU decoder are built from what it reads.
pub fn read_checkpoint(
    dir: &Path,
    device: &Device,
) -> Result<(CheckpointConfig, HashMap<String, Tensor>)> {
    let config = CheckpointConfig::load(dir)?;
    let path = dir.join(MODEL_FILE);
    let tensors = load_tensors(&path, device)?;
    config.model.check_weights(&tensors).with_context(|| {
        format!(
            "{} does not match {}",
            path.display(),
            dir.join(CONFIG_FILE).display()
        )
    })?;
    Ok((config, tensors))
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
        let (config, tensors) = read_checkpoint(dir, device)?;
        let model = Gpt::from_tensors(&config.model, &tensors, device)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `dir` look like a checkpoint to [`find_in`] (it holds a config).
    fn model_in(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(CONFIG_FILE), "{}").unwrap();
        dir.to_path_buf()
    }

    #[test]
    fn the_search_path_is_env_then_here_then_beside_the_executable_then_the_data_folder() {
        let path = search_path(
            Some(PathBuf::from("/models/mine")),
            Some(Path::new("/opt/nanotune/bin")),
            Some(Path::new("/home/u/.local/share")),
        );
        let want: Vec<PathBuf> = [
            "/models/mine",
            "checkpoints",
            "/opt/nanotune/bin/checkpoints",
            "/home/u/.local/share/nanotune/checkpoints",
        ]
        .map(PathBuf::from)
        .into();
        assert_eq!(path, want);
        assert_eq!(
            search_path(None, None, None),
            [PathBuf::from("checkpoints")]
        );
    }

    #[test]
    fn locate_takes_the_first_folder_that_holds_a_model() {
        let tmp = tempfile::tempdir().unwrap();
        let [env, here, exe, data] = ["env", "here", "exe", "data"].map(|d| tmp.path().join(d));
        let places = [env.clone(), here.clone(), exe.clone(), data.clone()];
        let err = locate_in(None, &places).unwrap_err().to_string();
        for place in &places {
            assert!(err.contains(&place.display().to_string()), "{err}");
        }
        assert!(
            err.contains("nanotune train") && err.contains("--checkpoint"),
            "{err}"
        );

        let in_data = model_in(&data);
        assert_eq!(locate_in(None, &places).unwrap(), in_data);
        // An earlier place wins, and within a folder itself, then base, then small.
        let small = model_in(&exe.join("small"));
        assert_eq!(locate_in(None, &places).unwrap(), small);
        let base = model_in(&exe.join("base"));
        assert_eq!(locate_in(None, &places).unwrap(), base);
        let top = model_in(&exe);
        assert_eq!(locate_in(None, &places).unwrap(), top);
        let env_model = model_in(&env);
        assert_eq!(locate_in(None, &places).unwrap(), env_model);
    }

    #[test]
    fn a_given_folder_is_the_only_place_looked_in() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = model_in(&tmp.path().join("elsewhere"));
        let given = tmp.path().join("given");
        std::fs::create_dir_all(&given).unwrap();
        let err = locate_in(Some(&given), std::slice::from_ref(&elsewhere))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&given.display().to_string()) && err.contains("nanotune train"),
            "{err}"
        );
        let small = model_in(&given.join("small"));
        assert_eq!(locate_in(Some(&given), &[elsewhere]).unwrap(), small);
    }
}
