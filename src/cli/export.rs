//! `nanotune export`: a checkpoint made ready to ship.

use crate::learn::checkpoint::export;
use anyhow::Result;
use candle_core::DType;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    F16,
    Bf16,
    F32,
}

/// Copy a trained checkpoint into a new folder, ready to ship.
///
/// The weights in half precision (half the size; they load back into f32), config.json, log.csv
/// and its loss plot loss.svg. The resume state (optimizer.safetensors) stays behind.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Checkpoint folder (the --out of `nanotune train`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// New folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Float type of the weights written.
    #[arg(long, value_enum, default_value_t = Precision::F16)]
    pub dtype: Precision,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let dtype = match args.dtype {
        Precision::F16 => DType::F16,
        Precision::Bf16 => DType::BF16,
        Precision::F32 => DType::F32,
    };
    export(&args.checkpoint, &args.out, dtype)?;
    println!(
        "exported {} to {} ({:?} weights)",
        args.checkpoint.display(),
        args.out.display(),
        args.dtype
    );
    Ok(())
}
