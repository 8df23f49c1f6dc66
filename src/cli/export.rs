//! `nanotune export`: a checkpoint made ready to ship.

use crate::learn::checkpoint::{export, locate};
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
    #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
    pub checkpoint: Option<PathBuf>,
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
    let dir = locate(args.checkpoint.as_deref())?;
    export(&dir, &args.out, dtype)?;
    println!(
        "exported {} to {} ({:?} weights)",
        dir.display(),
        args.out.display(),
        args.dtype
    );
    Ok(())
}
