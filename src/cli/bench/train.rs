//! `nanotune bench train`: training tokens/s of a preset, and with `--profile` where a CPU step's
//! time goes, phase by phase and operation by operation, with the plain ops and the fused kernels.

use crate::learn::device::Compute;
use crate::learn::model::{Gpt, GptConfig};
use crate::learn::train::{bench, profile, OpTime, OptimizerKind, StepTimes};
use crate::music::words::Vocab;
use anyhow::{bail, Result};

/// What to measure.
pub struct TrainBench<'a> {
    pub preset: &'a str,
    pub batch: usize,
    pub context: usize,
    pub steps: usize,
    pub profile: bool,
    pub optimizer: OptimizerKind,
}

pub fn run(b: &TrainBench, compute: &Compute) -> Result<()> {
    let mut config = GptConfig::preset(b.preset, Vocab.len())?;
    config.context = b.context;
    if b.profile && !compute.device.is_cpu() {
        bail!("--profile times the CPU kernels: add --device cpu");
    }
    let params = Gpt::new(&config, 0, &candle_core::Device::Cpu)?.num_params();
    let times = bench(&config, b.batch, b.steps, compute, true, b.optimizer)?;
    let (preset, batch, context, steps) = (b.preset, b.batch, b.context, b.steps);
    let optimizer = format!("{:?}", b.optimizer).to_lowercase();
    println!(
        "train {preset} ({params} parameters), batch {batch} x context {context}, {optimizer}, {steps} steps on {}: {:.0} tokens/s ({} CPU threads); optimiser {:.1} ms a step",
        compute.name(),
        times.tokens_per_s,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        times.optimiser_ms
    );
    if b.profile {
        let plain = bench(&config, batch, steps, compute, false, b.optimizer)?;
        print_profile(&times, &plain, &profile(&config, batch, steps.clamp(2, 5))?);
    }
    // The fields of torch_reference.py, with its FLOP count, for a side-by-side table.
    let flops_per_token = 6 * params + 12 * config.layers * config.width * context;
    let tokens_per_s = times.tokens_per_s;
    let json = serde_json::json!({
        "what": "train", "impl": "nanotune", "preset": preset, "device": compute.name(),
        "params": params,
        "dtype": format!("{:?}", compute.matmul_dtype).to_lowercase(), "batch": batch,
        "context": context, "optimizer": optimizer, "tokens_per_s": tokens_per_s.round(),
        "step_ms": (1e5 * (batch * context) as f64 / tokens_per_s).round() / 100.0,
        "model_tflops": (tokens_per_s * flops_per_token as f64 / 1e10).round() / 100.0,
    });
    println!("{json}");
    Ok(())
}

fn print_profile(fused: &StepTimes, plain: &StepTimes, ops: &[OpTime]) {
    println!("\nA step, phase by phase (ms): forward, backward, clipping + optimiser = total");
    for (name, t) in [("fused CPU kernels", fused), ("plain candle ops", plain)] {
        let total = t.forward_ms + t.backward_ms + t.optimiser_ms;
        println!(
            "  {name:<18} {:>7.1} {:>7.1} {:>7.1} = {total:>7.1}  ({:.0} tokens/s)",
            t.forward_ms, t.backward_ms, t.optimiser_ms, t.tokens_per_s
        );
    }
    println!("\nEach operation alone on its shapes, ms per step (calls x one call):\n");
    println!("| operation | calls | plain fwd | plain bwd | fused fwd | fused bwd |");
    println!("|---|---:|---:|---:|---:|---:|");
    let (mut plain_sum, mut fused_sum) = ([0.0; 2], [0.0; 2]);
    for op in ops {
        let k = op.calls as f64;
        let (pf, pb) = (op.plain.0 * k, op.plain.1 * k);
        let (ff, fb) = op.fused.map_or((pf, pb), |(f, b)| (f * k, b * k));
        plain_sum = [plain_sum[0] + pf, plain_sum[1] + pb];
        fused_sum = [fused_sum[0] + ff, fused_sum[1] + fb];
        let same = |v: f64| match op.fused {
            Some(_) => format!("{v:.1}"),
            None => "=".into(),
        };
        println!(
            "| {} | {} | {pf:.1} | {pb:.1} | {} | {} |",
            op.name,
            op.calls,
            same(ff),
            same(fb)
        );
    }
    println!(
        "| sum | | {:.1} | {:.1} | {:.1} | {:.1} |",
        plain_sum[0], plain_sum[1], fused_sum[0], fused_sum[1]
    );
}
