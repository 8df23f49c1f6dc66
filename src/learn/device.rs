//! Where the model computes: `--device auto|cpu|cuda[:N]`.
//!
//! The CUDA path needs a binary built with the `cuda` cargo feature (see docs/gpu.md)
//! and a GPU that answers. `auto` takes CUDA when both hold and the CPU otherwise, and
//! [`Compute::describe`] says which, and why, so a run never silently lands on the slow path.
//!
//! On CUDA the matrix products run in bf16 (tensor cores; the weights, the optimiser and the
//! LayerNorms and softmaxes stay f32, as PyTorch's autocast does); on the CPU everything is f32.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use std::fmt;
use std::str::FromStr;

/// The `--device` flag as given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA GPU 0 when this binary has CUDA and a GPU answers, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// CUDA GPU N; an error when it cannot be had.
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("'{s}' is not a device: use auto, cpu, cuda or cuda:N")),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A device to compute on, with the float type of its matrix products.
#[derive(Clone, Debug)]
pub struct Compute {
    pub device: Device,
    /// BF16 on CUDA, F32 on the CPU.
    pub matmul_dtype: DType,
    /// Why `auto` chose the CPU, when it did.
    fallback: Option<String>,
}

impl Compute {
    /// The CPU, in f32.
    pub fn cpu() -> Compute {
        Compute {
            device: Device::Cpu,
            matmul_dtype: DType::F32,
            fallback: None,
        }
    }

    /// The device `choice` names. `cuda` fails with a clear message where this binary has no
    /// CUDA or no GPU answers; `auto` then falls back to the CPU and records why.
    pub fn select(choice: DeviceChoice) -> Result<Compute> {
        match choice {
            DeviceChoice::Cpu => Ok(Compute::cpu()),
            DeviceChoice::Cuda(n) => {
                cuda(n).with_context(|| format!("--device {choice} (use --device cpu or auto)"))
            }
            DeviceChoice::Auto if !candle_core::utils::cuda_is_available() => Ok(Compute {
                fallback: Some("this binary was built without the cuda feature".into()),
                ..Compute::cpu()
            }),
            DeviceChoice::Auto => Ok(cuda(0).unwrap_or_else(|e| Compute {
                fallback: Some(format!("{e:#}")),
                ..Compute::cpu()
            })),
        }
    }

    /// Where to generate: as [`Compute::select`], except that `auto` takes the CPU even where a
    /// GPU answers. One word at a time is a chain of small kernels on a GPU: on an H200 candle's
    /// cached forward wrote 1,230 words/s at batch 1 where the CPU decoder writes 3,314 on two
    /// cores (docs/gpu.md, 2026-12-04). `--device cuda` still takes the GPU.
    pub fn for_generation(choice: DeviceChoice) -> Result<Compute> {
        match choice {
            DeviceChoice::Auto => Ok(Compute {
                fallback: Some(
                    "one word at a time the CPU decoder out-runs a GPU; --device cuda takes one"
                        .into(),
                ),
                ..Compute::cpu()
            }),
            chosen => Compute::select(chosen),
        }
    }

    pub fn is_cuda(&self) -> bool {
        self.device.is_cuda()
    }

    /// A short name for status lines: `cpu` or `cuda:0`.
    pub fn name(&self) -> String {
        match self.device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
            candle_core::DeviceLocation::Cpu => "cpu".into(),
        }
    }

    /// One line for the user: the device, its matmul type and, for a fallback, why.
    pub fn describe(&self) -> String {
        let dtype = format!("{:?}", self.matmul_dtype).to_lowercase();
        match &self.fallback {
            Some(why) => format!("device: cpu ({dtype}; {why})"),
            None => format!("device: {} ({dtype} matrix products)", self.name()),
        }
    }

    /// Waits for the device to finish its queued work (a no-op on the CPU), so timings are true.
    pub fn synchronize(&self) -> Result<()> {
        Ok(self.device.synchronize()?)
    }
}

fn cuda(ordinal: usize) -> Result<Compute> {
    if !candle_core::utils::cuda_is_available() {
        bail!(
            "this nanotune was built without CUDA: rebuild with `--features cuda` (see docs/gpu.md)"
        );
    }
    let device = Device::new_cuda(ordinal)
        .map_err(without_backtrace)
        .with_context(|| format!("CUDA GPU {ordinal} did not answer"))?;
    Ok(Compute {
        device,
        matmul_dtype: DType::BF16,
        fallback: None,
    })
}

/// The error without the backtrace candle attaches under `RUST_BACKTRACE`: the reason a GPU did not
/// answer goes into one status line, where a page of frames would bury it.
fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => *inner,
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_error_reads_without_candles_backtrace() {
        let inner = candle_core::Error::Msg("CUDA_ERROR_NO_DEVICE".into());
        let with = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(
            with.to_string().lines().count() > 1,
            "candle prints the frames"
        );
        assert_eq!(without_backtrace(with).to_string(), "CUDA_ERROR_NO_DEVICE");
        let plain = candle_core::Error::Msg("no GPU".into());
        assert_eq!(without_backtrace(plain).to_string(), "no GPU");
    }

    #[test]
    fn generation_on_auto_takes_the_cpu_decoder_and_says_so() {
        let auto = Compute::for_generation(DeviceChoice::Auto).unwrap();
        assert!(!auto.is_cuda());
        assert!(
            auto.describe().contains("--device cuda takes one"),
            "{}",
            auto.describe()
        );
    }

    #[test]
    fn parses_every_form_and_refuses_others() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", ""] {
            let err = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(err.contains("auto, cpu, cuda or cuda:N"), "{bad}: {err}");
        }
        for c in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda(2)] {
            assert_eq!(c.to_string().parse(), Ok(c));
        }
    }

    #[test]
    fn without_cuda_auto_says_cpu_and_why_and_cuda_is_a_clear_error() {
        if candle_core::utils::cuda_is_available() {
            return; // a cuda build: covered on the GPU machine
        }
        let auto = Compute::select(DeviceChoice::Auto).unwrap();
        assert!(!auto.is_cuda());
        assert_eq!(auto.matmul_dtype, DType::F32);
        assert_eq!(
            auto.describe(),
            "device: cpu (f32; this binary was built without the cuda feature)"
        );
        let cpu = Compute::select(DeviceChoice::Cpu).unwrap();
        assert_eq!(cpu.describe(), "device: cpu (f32 matrix products)");
        assert_eq!(
            Compute::for_generation(DeviceChoice::Cpu)
                .unwrap()
                .describe(),
            "device: cpu (f32 matrix products)"
        );
        let err = Compute::select(DeviceChoice::Cuda(0)).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("--device cuda:0 (use --device cpu or auto)")
                && err.contains("rebuild with `--features cuda`"),
            "{err}"
        );
    }
}
