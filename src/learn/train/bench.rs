//! Measuring training speed: `bench train` (tokens/s of full steps on random tokens, and the
//! time of each phase) and `bench train --profile` (each operation of a step alone on its real
//! shapes, forward and backward, with the plain candle ops and with the fused CPU kernels).

use super::optim::{gradients, AdamW, Optimizer, OptimizerKind};
use crate::learn::device::Compute;
use crate::learn::fused::{self, plain};
use crate::learn::model::{Gpt, GptConfig};
use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// Mean time of each phase of a training step, and the throughput.
#[derive(Clone, Debug)]
pub struct StepTimes {
    pub tokens_per_s: f64,
    /// The loss (the whole forward pass).
    pub forward_ms: f64,
    pub backward_ms: f64,
    /// Clipping and the optimiser.
    pub optimiser_ms: f64,
}

/// Training speed of `steps` full steps (forward, backward, clipping, the `optimizer`) on random
/// tokens, after two warm-up steps; with the fused CPU kernels where `cpu_kernels` (see
/// [`Gpt::set_cpu_kernels`]).
pub fn bench(
    config: &GptConfig,
    batch: usize,
    steps: usize,
    compute: &Compute,
    cpu_kernels: bool,
    optimizer: OptimizerKind,
) -> Result<StepTimes> {
    let device = &compute.device;
    if device.is_cpu() {
        fused::keep_freed_memory();
    }
    let mut model = Gpt::new(config, 0, device)?;
    model.set_matmul_dtype(compute.matmul_dtype);
    model.set_cpu_kernels(cpu_kernels);
    // Muon's rate over AdamW's as `train` sets them by default (0.02 against 1e-3): the rates
    // change no step's cost.
    let mut opt = Optimizer::new(model.params(), optimizer, 0.1, 0.02 / 1e-3)?;
    let mut rng = StdRng::seed_from_u64(0);
    let ctx = config.context;
    // Seconds of each phase: forward, backward, optimiser.
    let mut step = |rng: &mut StdRng| -> Result<[f64; 3]> {
        let ids: Vec<u32> = (0..batch * (ctx + 1))
            .map(|_| rng.random_range(0..config.vocab as u32))
            .collect();
        let all = Tensor::from_vec(ids, (batch, ctx + 1), device)?;
        let x = all.narrow(1, 0, ctx)?.contiguous()?;
        let y = all.narrow(1, 1, ctx)?.contiguous()?;
        let started = Instant::now();
        let loss = model.loss(&x, &y, Some(rng))?;
        compute.synchronize()?;
        let forward = started.elapsed().as_secs_f64();
        let grads = gradients(&loss, model.params())?;
        compute.synchronize()?;
        let backward = started.elapsed().as_secs_f64() - forward;
        opt.clipped_update(model.params(), &grads, 1.0, 1e-4)?;
        compute.synchronize()?;
        Ok([
            forward,
            backward,
            started.elapsed().as_secs_f64() - forward - backward,
        ])
    };
    step(&mut rng)?;
    step(&mut rng)?;
    let mut total = [0.0; 3];
    for _ in 0..steps.max(1) {
        let phases = step(&mut rng)?;
        total.iter_mut().zip(phases).for_each(|(t, p)| *t += p);
    }
    let n = steps.max(1) as f64;
    let ms = |s: f64| 1e3 * s / n;
    Ok(StepTimes {
        tokens_per_s: (batch * ctx) as f64 * n / total.iter().sum::<f64>(),
        forward_ms: ms(total[0]),
        backward_ms: ms(total[1]),
        optimiser_ms: ms(total[2]),
    })
}

/// One operation of a training step: how often a step calls it, and one call's milliseconds,
/// (forward, backward), with the plain ops and with the fused kernel where there is one.
#[derive(Clone, Debug)]
pub struct OpTime {
    pub name: &'static str,
    pub calls: usize,
    pub plain: (f64, f64),
    pub fused: Option<(f64, f64)>,
}

type Op<'a> = Box<dyn Fn(&[Tensor]) -> candle_core::Result<Tensor> + 'a>;

/// Forward and backward milliseconds of one call of `op` on `inputs` (as parameters), the mean
/// of `reps` calls after a warm-up. The backward pass is that of `(op(inputs) * w).sum()`, less
/// that of the same product and sum alone.
fn time_op(inputs: &[&Tensor], reps: usize, op: &Op) -> Result<(f64, f64)> {
    let vars = inputs
        .iter()
        .map(|t| Var::from_tensor(t))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let shape = op(&tensors)?.shape().clone();
    let w = Tensor::randn(0f32, 1.0, &shape, &Device::Cpu)?;
    let alone = Var::zeros(&shape, DType::F32, &Device::Cpu)?;
    let (mut forward, mut backward) = (0.0, 0.0);
    for rep in 0..=reps {
        let started = Instant::now();
        let y = op(&tensors)?;
        let f = started.elapsed().as_secs_f64();
        let loss = (y * &w)?.sum_all()?;
        let started = Instant::now();
        loss.backward()?;
        let b = started.elapsed().as_secs_f64();
        let base = (alone.as_tensor() * &w)?.sum_all()?;
        let started = Instant::now();
        base.backward()?;
        let b0 = started.elapsed().as_secs_f64();
        if rep > 0 {
            forward += f;
            backward += (b - b0).max(0.0);
        }
    }
    Ok((1e3 * forward / reps as f64, 1e3 * backward / reps as f64))
}

/// Each operation of a CPU training step of `config` at `batch` windows, alone on its real
/// shapes, `reps` times: where a step's time goes, and what the fused kernels changed.
pub fn profile(config: &GptConfig, batch: usize, reps: usize) -> Result<Vec<OpTime>> {
    fused::keep_freed_memory();
    let (c, t, v, layers) = (config.width, config.context, config.vocab, config.layers);
    let n = batch * t;
    let cpu = &Device::Cpu;
    let randn = |shape: &[usize], std: f64| Tensor::randn(0f32, std as f32, shape, cpu);
    let mut rng = StdRng::seed_from_u64(0);
    let ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..v as u32)).collect();
    let ids = Tensor::from_vec(ids, n, cpu)?;
    let heads = config.heads;
    let x = randn(&[batch, t, c], 1.0)?;
    let rows = randn(&[n, c], 1.0)?;
    let wide = randn(&[n, 4 * c], 1.0)?;
    let qkv = randn(&[batch, t, 3 * c], 1.0)?;
    let gain = randn(&[c], 0.1)?.affine(1.0, 1.0)?;
    let logits = randn(&[n, v], 2.0)?;
    let weight = |out: usize, inp: usize| randn(&[out, inp], 0.02);
    let (w_qkv, w_proj, w_up, w_down) = (
        weight(3 * c, c)?,
        weight(c, c)?,
        weight(4 * c, c)?,
        weight(c, 4 * c)?,
    );
    let (wte, wpe) = (weight(v, c)?, weight(t, c)?);
    let product: fn() -> Op<'static> = || Box::new(|i| i[0].matmul(&i[1].t()?));
    let linear: fn() -> Option<Op<'static>> = || Some(Box::new(|i| fused::linear(&i[0], &i[1])));

    let mut table = Vec::new();
    let mut add = |name, calls, inputs: &[&Tensor], plain: Op, fused: Option<Op>| -> Result<()> {
        let plain = time_op(inputs, reps, &plain)?;
        let fused = fused.map(|op| time_op(inputs, reps, &op)).transpose()?;
        table.push(OpTime {
            name,
            calls,
            plain,
            fused,
        });
        Ok(())
    };
    let embed: Op = Box::new(|i| {
        i[0].embedding(&ids)?
            .reshape((batch, t, c))?
            .broadcast_add(&i[1])
    });
    add("token + position embedding", 1, &[&wte, &wpe], embed, None)?;
    let ln_plain: Op = Box::new(|i| plain::layer_norm(&i[0], &i[1], 1e-5));
    let ln_fused: Op = Box::new(|i| fused::layer_norm(&i[0], &i[1], 1e-5));
    add(
        "LayerNorm",
        2 * layers + 1,
        &[&x, &gain],
        ln_plain,
        Some(ln_fused),
    )?;
    add(
        "q, k, v projection",
        layers,
        &[&rows, &w_qkv],
        product(),
        linear(),
    )?;
    let att_plain: Op = Box::new(|i| plain::causal_attention(&i[0], heads));
    let att_fused: Op = Box::new(|i| fused::causal_attention(&i[0], heads));
    add(
        "attention (scores, mask, softmax, values)",
        layers,
        &[&qkv],
        att_plain,
        Some(att_fused),
    )?;
    add(
        "attention output projection",
        layers,
        &[&rows, &w_proj],
        product(),
        linear(),
    )?;
    add(
        "residual add",
        2 * layers,
        &[&x, &x.affine(0.5, 0.0)?],
        Box::new(|i| &i[0] + &i[1]),
        None,
    )?;
    add(
        "MLP up (c -> 4c)",
        layers,
        &[&rows, &w_up],
        product(),
        linear(),
    )?;
    let gelu_plain: Op = Box::new(|i| i[0].gelu_erf());
    let gelu_fused: Op = Box::new(|i| fused::gelu(&i[0]));
    add("GELU", layers, &[&wide], gelu_plain, Some(gelu_fused))?;
    add(
        "MLP down (4c -> c)",
        layers,
        &[&wide, &w_down],
        product(),
        linear(),
    )?;
    add(
        "head (tied to the embedding)",
        1,
        &[&rows, &wte],
        product(),
        linear(),
    )?;
    let ce_plain: Op = Box::new(|i| candle_nn::loss::cross_entropy(&i[0], &ids));
    let ce_fused: Op = Box::new(|i| fused::cross_entropy(&i[0], &ids));
    add("cross-entropy", 1, &[&logits], ce_plain, Some(ce_fused))?;
    table.push(optimiser_time(config, reps)?);
    Ok(table)
}

/// Clipping and AdamW over every parameter of `config`: the tensor update and the CPU one.
fn optimiser_time(config: &GptConfig, reps: usize) -> Result<OpTime> {
    let model = Gpt::new(config, 0, &Device::Cpu)?;
    let params = model.params();
    let grads = params
        .iter()
        .map(|(_, v)| Tensor::randn(0f32, 1e-3, v.shape(), &Device::Cpu))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let mut opt = AdamW::new(params, 0.1)?;
    let mut time = |cpu: bool| -> Result<f64> {
        let mut total = 0.0;
        for rep in 0..=reps {
            let started = Instant::now();
            match cpu {
                true => opt.cpu_update(params, &grads, 1.0, 1e-4)?,
                false => opt.tensor_update(params, &grads, 1.0, 1e-4)?,
            };
            if rep > 0 {
                total += started.elapsed().as_secs_f64();
            }
        }
        Ok(1e3 * total / reps as f64)
    };
    let plain = time(false)?;
    let fused = time(true)?;
    Ok(OpTime {
        name: "clipping + AdamW",
        calls: 1,
        plain: (plain, 0.0),
        fused: Some((fused, 0.0)),
    })
}
