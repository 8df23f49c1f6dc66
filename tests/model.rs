//! The model and its training: gradients reach every parameter, the key/value cache agrees with
//! the full forward, a tiny model overfits one batch and learns real music, checkpoints
//! round-trip, resume after a kill is exact, and damaged checkpoints give clear errors.

mod common;

use candle_core::{DType, Device, Tensor};
use nanotune::learn::checkpoint::{Checkpoint, MODEL_FILE, OPTIMIZER_FILE};
use nanotune::learn::dataset::{Dataset, Split};
use nanotune::learn::device::Compute;
use nanotune::learn::model::{Gpt, GptConfig, KvCache, Positions};
use nanotune::learn::train::{evaluate, train, AdamW, Augment, OptimizerKind, TrainOptions};
use nanotune::music::words::Vocab;
use nanotune::sample::backend::{CachedTakes, FastGpt, Weights};
use nanotune::sample::{generate, prompt, NextWordModel};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

fn tiny(dropout: f64) -> GptConfig {
    GptConfig {
        layers: 2,
        heads: 2,
        width: 32,
        context: 16,
        vocab: Vocab.len(),
        dropout,
        bias: false,
        positions: Positions::Learned,
    }
}

/// The largest absolute value in a tensor.
fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn random_ids(rng: &mut StdRng, b: usize, t: usize) -> Tensor {
    let ids: Vec<u32> = (0..b * t)
        .map(|_| rng.random_range(0..Vocab.len() as u32))
        .collect();
    Tensor::from_vec(ids, (b, t), &Device::Cpu).unwrap()
}

#[test]
fn every_parameter_gets_a_gradient() {
    // With dropout (the plain ops) and without (the fused CPU kernels), learned and rotary.
    let cases = [false, true].into_iter().flat_map(|bias| {
        [
            (Positions::Learned, 0.1),
            (Positions::Rotary, 0.1),
            (Positions::Rotary, 0.0),
        ]
        .map(|(positions, dropout)| (bias, positions, dropout))
    });
    for (bias, positions, dropout) in cases {
        let cfg = GptConfig {
            bias,
            positions,
            ..tiny(dropout)
        };
        let model = Gpt::new(&cfg, 1, &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let (x, y) = (random_ids(&mut rng, 3, 16), random_ids(&mut rng, 3, 16));
        let loss = model.loss(&x, &y, Some(&mut rng)).unwrap();
        let grads = loss.backward().unwrap();
        let tables = if positions == Positions::Learned {
            2
        } else {
            1
        };
        let per_layer = if bias { 12 } else { 6 };
        let expected = tables + cfg.layers * per_layer + if bias { 2 } else { 1 };
        assert_eq!(model.params().len(), expected);
        let shapes = cfg.weight_shapes();
        for ((name, var), (want, shape)) in model.params().iter().zip(&shapes) {
            assert_eq!((name, var.dims()), (want, shape.as_slice()));
        }
        for (name, var) in model.params() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name} has no gradient"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{name}: gradient norm {norm}"
            );
        }
    }
}

/// The largest difference between two tensors relative to the largest magnitude in `want`.
fn rel_diff(got: &Tensor, want: &Tensor) -> f32 {
    max_abs(&(got - want).unwrap()) / max_abs(want).max(1e-12)
}

#[test]
fn fused_cpu_kernels_give_the_plain_losses_and_gradients() {
    // The small preset's shape (2 windows a batch to keep the test quick), with and without biases.
    for (bias, positions) in [
        (false, Positions::Learned),
        (true, Positions::Learned),
        (false, Positions::Rotary),
    ] {
        let cfg = GptConfig {
            bias,
            positions,
            ..GptConfig::preset("small", Vocab.len()).unwrap()
        };
        let mut model = Gpt::new(&cfg, 3, &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let (x, y) = (random_ids(&mut rng, 2, 200), random_ids(&mut rng, 2, 200));
        let mut run = |cpu_kernels: bool| {
            model.set_cpu_kernels(cpu_kernels);
            let loss = model.loss(&x, &y, None).unwrap();
            let grads = loss.backward().unwrap();
            let grads: Vec<Tensor> = model
                .params()
                .iter()
                .map(|(_, v)| grads.get(v.as_tensor()).unwrap().clone())
                .collect();
            (loss.to_scalar::<f32>().unwrap(), grads)
        };
        let (fused_loss, fused) = run(true);
        let (plain_loss, plain) = run(false);
        assert!(
            (fused_loss - plain_loss).abs() < 1e-5 * plain_loss,
            "loss {fused_loss} against {plain_loss}"
        );
        for ((name, _), (f, p)) in model.params().iter().zip(fused.iter().zip(&plain)) {
            let d = rel_diff(f, p);
            assert!(d < 1e-4, "bias {bias}, {name}: gradients differ by {d}");
        }
    }
}

#[test]
fn names_follow_nanogpt() {
    let model = Gpt::new(&tiny(0.0), 1, &Device::Cpu).unwrap();
    let names: Vec<&str> = model.params().iter().map(|(n, _)| n.as_str()).collect();
    for n in [
        "transformer.wte.weight",
        "transformer.wpe.weight",
        "transformer.h.0.ln_1.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.0.attn.c_proj.weight",
        "transformer.h.1.ln_2.weight",
        "transformer.h.1.mlp.c_fc.weight",
        "transformer.h.1.mlp.c_proj.weight",
        "transformer.ln_f.weight",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
}

#[test]
fn cached_forward_matches_full_forward() {
    for positions in [Positions::Learned, Positions::Rotary] {
        cached_forward_matches_full_forward_with(GptConfig {
            positions,
            ..tiny(0.0)
        });
    }
}

fn cached_forward_matches_full_forward_with(cfg: GptConfig) {
    let model = Gpt::new(&cfg, 3, &Device::Cpu).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let ids = random_ids(&mut rng, 2, cfg.context);
    let full = model.forward(&ids).unwrap();
    let mut cache = KvCache::new(&cfg);
    // A prompt of 5 words, then one word at a time up to the full context.
    let mut pos = 0;
    for n in std::iter::once(5).chain(std::iter::repeat_n(1, cfg.context - 5)) {
        let step = ids.narrow(1, pos, n).unwrap();
        let got = model.forward_cached(&step, &mut cache).unwrap();
        pos += n;
        let want = full.narrow(1, pos - 1, 1).unwrap().squeeze(1).unwrap();
        let diff = max_abs(&(got - want).unwrap());
        assert!(diff < 1e-4, "position {pos}: max difference {diff}");
    }
    assert_eq!(cache.len(), cfg.context);
    assert_eq!(cache.remaining(), 0);
    let one = ids.narrow(1, 0, 1).unwrap();
    let err = model
        .forward_cached(&one, &mut cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not fit"), "{err}");
    cache.reset();
    let again = model.forward_cached(&one, &mut cache).unwrap();
    let first = full.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
    assert!(max_abs(&(again - first).unwrap()) < 1e-4);
}

/// Final loss of a tiny model trained for up to 300 steps on one batch, its matrix products in
/// `dtype`.
fn overfit_one_batch(dtype: DType) -> f32 {
    let cfg = tiny(0.0);
    let mut model = Gpt::new(&cfg, 0, &Device::Cpu).unwrap();
    model.set_matmul_dtype(dtype);
    let mut opt = AdamW::new(model.params(), 0.0).unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let all = random_ids(&mut rng, 4, cfg.context + 1);
    let x = all.narrow(1, 0, cfg.context).unwrap().contiguous().unwrap();
    let y = all.narrow(1, 1, cfg.context).unwrap().contiguous().unwrap();
    let mut loss = f32::INFINITY;
    for _ in 0..300 {
        let l = model.loss(&x, &y, None).unwrap();
        loss = l.to_scalar::<f32>().unwrap();
        if loss < 0.05 {
            break;
        }
        let mut store = l.backward().unwrap();
        let grads: Vec<Tensor> = model
            .params()
            .iter()
            .map(|(_, v)| store.remove(v.as_tensor()).unwrap())
            .collect();
        opt.clipped_update(model.params(), &grads, 1.0, 1e-2)
            .unwrap();
    }
    loss
}

#[test]
fn tiny_model_overfits_one_batch() {
    let loss = overfit_one_batch(DType::F32);
    assert!(loss < 0.1, "loss only fell to {loss}");
}

/// The GPU path's bf16 matrix products (here on the CPU, which computes them too): the loss and
/// gradients stay close to f32's, the gradients reach the f32 weights, and the model learns.
#[test]
fn bf16_matrix_products_agree_with_f32_and_learn() {
    let mut model = Gpt::new(&tiny(0.0), 3, &Device::Cpu).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let (x, y) = (random_ids(&mut rng, 4, 16), random_ids(&mut rng, 4, 16));
    let mut run = |dtype| {
        model.set_matmul_dtype(dtype);
        let loss = model.loss(&x, &y, None).unwrap();
        let store = loss.backward().unwrap();
        let grads: Vec<Vec<f32>> = model
            .params()
            .iter()
            .map(|(name, v)| {
                let g = store
                    .get(v.as_tensor())
                    .unwrap_or_else(|| panic!("{name}: no gradient"));
                assert_eq!(g.dtype(), DType::F32, "{name}");
                g.flatten_all().unwrap().to_vec1().unwrap()
            })
            .collect();
        (loss.to_scalar::<f32>().unwrap(), grads)
    };
    let (l32, g32) = run(DType::F32);
    let (l16, g16) = run(DType::BF16);
    assert!((l32 - l16).abs() < 0.02, "f32 loss {l32}, bf16 loss {l16}");
    assert_ne!(l32, l16, "the bf16 setting changed nothing");
    for ((a, b), (name, _)) in g32.iter().zip(&g16).zip(model.params()) {
        let dot: f32 = a.iter().zip(b).map(|(p, q)| p * q).sum();
        let norm = |v: &[f32]| v.iter().map(|p| p * p).sum::<f32>().sqrt();
        let cosine = dot / (norm(a) * norm(b));
        assert!(cosine > 0.98, "{name}: gradient cosine {cosine}");
    }
    let loss = overfit_one_batch(DType::BF16);
    assert!(
        loss < 0.2,
        "with bf16 products the loss only fell to {loss}"
    );
}

/// A small dataset of random-walk "melodies" in the vocabulary's grammar: learnable structure.
fn synthetic_dataset(dir: &Path, pieces: usize) {
    let mut rng = StdRng::seed_from_u64(42);
    let mut ds = Dataset::default();
    for i in 0..pieces {
        let mut text = String::from("START");
        let mut pitch = 60i32;
        for _ in 0..40 {
            pitch = (pitch + rng.random_range(-2..=2)).clamp(40, 90);
            text += &format!(" n{pitch} d4 sepxx d4");
        }
        let words = nanotune::music::read::piece_from_text(&text, &mut Default::default()).unwrap();
        let ids = Vocab.encode(&words).unwrap();
        let split = if i % 5 == 0 { Split::Val } else { Split::Train };
        ds.split_mut(split).push(&format!("p{i}"), &ids);
    }
    ds.save(dir).unwrap();
}

fn tiny_options(data: &Path, out: &Path, steps: usize) -> TrainOptions {
    let mut o = TrainOptions::new("small", data, out).unwrap();
    o.model = tiny(0.1);
    o.batch = 4;
    o.accum = 2;
    o.lr = 3e-3;
    o.min_lr = 3e-4;
    o.steps = steps;
    o.eval_every = 5;
    o.eval_batches = 2;
    o
}

fn resume_tensors(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let t =
        nanotune::learn::checkpoint::load_tensors(&dir.join(OPTIMIZER_FILE), &Device::Cpu).unwrap();
    let mut v: Vec<(String, Vec<f32>)> = t
        .into_iter()
        .filter(|(n, _)| n != "step" && n != "best_val_loss")
        .map(|(n, t)| {
            let t = t.to_dtype(DType::F32).unwrap(); // the average's count is an integer
            (n, t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn resume_after_a_kill_or_a_time_limit_equals_an_uninterrupted_run() {
    resume_equals_an_uninterrupted_run(Positions::Learned, |_| {});
}

/// Muon and the weights' average: a run lowers the loss, resumes to the same bits (Muon's
/// momentum and the average are in the resume state), and keeps the average as its model.
#[test]
fn a_muon_run_with_averaged_weights_learns_resumes_bit_identical_and_keeps_the_average() {
    let whole = resume_equals_an_uninterrupted_run(Positions::Rotary, |o| {
        o.optimizer = OptimizerKind::Muon;
        o.muon_lr = 0.02;
        o.ema = 0.9;
    });
    let log = std::fs::read_to_string(whole.path().join("log.csv")).unwrap();
    let val: Vec<f64> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(
        val.last().unwrap() < &(val[0] - 0.3),
        "the loss did not fall: {val:?}"
    );
    // The kept model (the best, at the last step here) is the average, not the raw weights.
    let ckpt = Checkpoint::load(whole.path(), &Device::Cpu).unwrap();
    assert_eq!(ckpt.config.training.best_step, 20, "{log}");
    let kept =
        nanotune::learn::checkpoint::load_tensors(&whole.path().join(MODEL_FILE), &Device::Cpu)
            .unwrap();
    let state =
        nanotune::learn::checkpoint::load_tensors(&whole.path().join(OPTIMIZER_FILE), &Device::Cpu)
            .unwrap();
    let name = "transformer.h.0.attn.c_attn.weight";
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(
        values(&kept[name]),
        values(&state[&format!("average.{name}")])
    );
    assert_ne!(
        values(&kept[name]),
        values(&state[&format!("param.{name}")])
    );
}

#[test]
fn a_rotary_model_resumes_bit_identical_loads_and_generates() {
    let whole = resume_equals_an_uninterrupted_run(Positions::Rotary, |_| {});
    let ckpt = Checkpoint::load(whole.path(), &Device::Cpu).unwrap();
    assert_eq!(ckpt.config.model.positions, Positions::Rotary);
    let names: Vec<&str> = ckpt
        .model
        .params()
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(!names.contains(&"transformer.wpe.weight"), "{names:?}");
    // The CPU decoder and candle agree on it, past a slide of its 16-word window.
    let o = nanotune::sample::SampleOptions {
        words: 60,
        temperature: 0.0,
        ..Default::default()
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut fast = FastGpt::load(whole.path(), Weights::F32).unwrap();
    let mut cached = CachedTakes::new(std::sync::Arc::new(ckpt.model));
    let mut words = Vec::new();
    for model in [&mut fast as &mut dyn NextWordModel, &mut cached] {
        let g = generate(model, &prompt::new_piece(), &o, &stop, &mut |_| {}).unwrap();
        assert!(g.words.len() > 20, "{}", g.words.len());
        words.push(g.words);
    }
    assert_eq!(words[0], words[1]);
}

/// Trains a tiny model with `positions` (and the options `tweak` sets) 20 steps in one go, then
/// in parts (a kill, resumed) and in time slots of one step: the resume state is the same bits;
/// the folder of the first run.
fn resume_equals_an_uninterrupted_run(
    positions: Positions,
    tweak: fn(&mut TrainOptions),
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    synthetic_dataset(&data, 30);
    let tiny_options = |data: &Path, out: &Path, steps: usize| {
        let mut o = tiny_options(data, out, steps);
        o.model.positions = positions;
        tweak(&mut o);
        o
    };
    let whole = tmp.path().join("whole");
    let report = train(&tiny_options(&data, &whole, 20), &Compute::cpu()).unwrap();
    assert_eq!(report.step, 20);

    // Killed before step 13: the last save was at step 10, so 10..13 are done again.
    let parts = tmp.path().join("parts");
    let mut first = tiny_options(&data, &parts, 20);
    first.stop_before = Some(13);
    train(&first, &Compute::cpu()).unwrap();
    let mut second = tiny_options(&data, &parts, 20);
    second.resume = true;
    train(&second, &Compute::cpu()).unwrap();

    // Time slots that end after every step (a time limit of zero), resumed until done.
    let slots = tmp.path().join("slots");
    let mut o = tiny_options(&data, &slots, 20);
    o.time_limit = Some(std::time::Duration::ZERO);
    let mut runs = 0;
    loop {
        let report = train(&o, &Compute::cpu()).unwrap();
        runs += 1;
        assert_eq!(report.step, runs, "one step per slot");
        if report.step == 20 {
            break;
        }
        o.resume = true;
    }

    let a = resume_tensors(&whole);
    for dir in [&parts, &slots] {
        let b = resume_tensors(dir);
        assert_eq!(a.len(), b.len());
        for ((na, va), (nb, vb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(va == vb, "{na} differs after resume in {}", dir.display());
        }
    }
    let (ca, cb) = (
        Checkpoint::load(&whole, &Device::Cpu).unwrap(),
        Checkpoint::load(&parts, &Device::Cpu).unwrap(),
    );
    assert_eq!(ca.config.training.best_step, cb.config.training.best_step);
    assert_eq!(
        ca.config.training.best_val_loss,
        cb.config.training.best_val_loss
    );
    let log = std::fs::read_to_string(whole.join("log.csv")).unwrap();
    assert_eq!(log.lines().count(), 1 + 5, "{log}");
    let kept = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(&whole).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, kept.path().join(file.file_name().unwrap())).unwrap();
    }
    kept
}

/// `export` ships a checkpoint in f16: half the bytes, the same model up to f16 rounding, the
/// log and its plot, no resume state, and never over the checkpoint itself.
#[test]
fn export_writes_a_half_precision_checkpoint_that_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    synthetic_dataset(&data, 20);
    let out = tmp.path().join("ckpt");
    train(&tiny_options(&data, &out, 10), &Compute::cpu()).unwrap();
    let shipped = tmp.path().join("shipped");
    nanotune::learn::checkpoint::export(&out, &shipped, DType::F16).unwrap();

    let raw =
        nanotune::learn::checkpoint::load_tensors(&shipped.join(MODEL_FILE), &Device::Cpu).unwrap();
    assert!(raw.values().all(|t| t.dtype() == DType::F16));
    let size = |d: &Path| std::fs::metadata(d.join(MODEL_FILE)).unwrap().len() as f64;
    assert!(
        size(&shipped) < 0.55 * size(&out),
        "{} vs {}",
        size(&shipped),
        size(&out)
    );
    let (a, b) = (
        Checkpoint::load(&out, &Device::Cpu).unwrap(),
        Checkpoint::load(&shipped, &Device::Cpu).unwrap(),
    );
    assert_eq!(a.config, b.config);
    for ((name, x), (_, y)) in a.model.params().iter().zip(b.model.params()) {
        let (x, y) = (x.as_tensor(), y.as_tensor());
        assert_eq!(y.dtype(), DType::F32, "{name} loads as f32");
        let (err, top) = (max_abs(&(x - y).unwrap()), max_abs(x));
        assert!(err <= top / 1000.0, "{name}: off by {err}");
    }
    let ds = Dataset::load(&data).unwrap();
    let la = evaluate(&a.model, &ds.val, None).unwrap().loss;
    let lb = evaluate(&b.model, &ds.val, None).unwrap().loss;
    assert!((la - lb).abs() < 1e-3, "{la} vs {lb}");
    assert_eq!(
        std::fs::read(out.join("log.csv")).unwrap(),
        std::fs::read(shipped.join("log.csv")).unwrap()
    );
    let svg = std::fs::read_to_string(shipped.join("loss.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert!(!shipped.join(OPTIMIZER_FILE).exists());
    let err = nanotune::learn::checkpoint::export(&out, &out, DType::F16).unwrap_err();
    assert!(err.to_string().contains("new folder"), "{err}");
}

#[test]
fn checkpoint_round_trips_and_damage_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    synthetic_dataset(&data, 20);
    let out = tmp.path().join("ckpt");
    let mut o = tiny_options(&data, &out, 6);
    o.augment = Augment::default();
    train(&o, &Compute::cpu()).unwrap();

    let ckpt = Checkpoint::load(&out, &Device::Cpu).unwrap();
    assert_eq!(ckpt.config.model, o.model);
    let saved =
        nanotune::learn::checkpoint::load_tensors(&out.join(MODEL_FILE), &Device::Cpu).unwrap();
    for (name, var) in ckpt.model.params() {
        let a = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = saved[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(a == b, "{name} differs");
    }
    // Evaluation is deterministic and the same for the loaded model.
    let ds = Dataset::load(&data).unwrap();
    let e1 = evaluate(&ckpt.model, &ds.val, None).unwrap();
    let (l1, w1) = (e1.loss, e1.words);
    let again = Checkpoint::load(&out, &Device::Cpu).unwrap();
    let e2 = evaluate(&again.model, &ds.val, None).unwrap();
    let (l2, w2) = (e2.loss, e2.words);
    assert_eq!((l1, w1), (l2, w2));
    let total: usize = ds.val.pieces.iter().map(|p| p.len - 1).sum();
    assert_eq!(w1, total);
    assert_eq!(evaluate(&ckpt.model, &ds.val, Some(50)).unwrap().words, 50);

    // A truncated weights file, a garbled config, a missing folder: errors that name the file.
    let bytes = std::fs::read(out.join(MODEL_FILE)).unwrap();
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(out.join("config.json"), broken.join("config.json")).unwrap();
    std::fs::write(broken.join(MODEL_FILE), &bytes[..bytes.len() / 2]).unwrap();
    let err = format!(
        "{:#}",
        Checkpoint::load(&broken, &Device::Cpu).err().unwrap()
    );
    assert!(err.contains("model.safetensors"), "{err}");
    std::fs::write(broken.join("config.json"), b"{\"format\": 3").unwrap();
    let err = format!(
        "{:#}",
        Checkpoint::load(&broken, &Device::Cpu).err().unwrap()
    );
    assert!(err.contains("config.json"), "{err}");
    let err = format!(
        "{:#}",
        Checkpoint::load(&tmp.path().join("nope"), &Device::Cpu)
            .err()
            .unwrap()
    );
    assert!(err.contains("no checkpoint"), "{err}");
    // Weights of another shape.
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    cfg["model"]["width"] = 64.into();
    std::fs::write(
        broken.join("config.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
    std::fs::copy(out.join(MODEL_FILE), broken.join(MODEL_FILE)).unwrap();
    let err = format!(
        "{:#}",
        Checkpoint::load(&broken, &Device::Cpu).err().unwrap()
    );
    assert!(err.contains("shape"), "{err}");
    // A resume from a damaged optimiser state fails clearly.
    let opt = std::fs::read(out.join(OPTIMIZER_FILE)).unwrap();
    std::fs::write(out.join(OPTIMIZER_FILE), &opt[..100]).unwrap();
    let mut r = tiny_options(&data, &out, 8);
    r.resume = true;
    let err = format!("{:#}", train(&r, &Compute::cpu()).unwrap_err());
    assert!(err.contains("optimizer.safetensors"), "{err}");
}

#[test]
fn validation_loss_falls_on_real_music() {
    let Some((tmp, data)) = common::corpus_dataset(200) else {
        return;
    };
    let out = tmp.path().join("ckpt");
    let mut o = TrainOptions::new("small", &data, &out).unwrap();
    o.model = GptConfig {
        layers: 2,
        heads: 2,
        width: 64,
        context: 32,
        vocab: Vocab.len(),
        dropout: 0.0,
        bias: false,
        positions: Positions::Learned,
    };
    o.batch = 16;
    o.lr = 3e-3;
    o.min_lr = 3e-4;
    o.steps = 200;
    o.eval_every = 100;
    o.eval_batches = 4;
    let started = std::time::Instant::now();
    train(&o, &Compute::cpu()).unwrap();
    let val = common::logged_val_losses(&out);
    eprintln!(
        "validation losses {val:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // From ln(219) = 5.39 at random to well under 3.5 nats/word.
    assert!(val[0] > 5.0, "{val:?}");
    assert!(*val.last().unwrap() < 3.5, "{val:?}");
    let ckpt = Checkpoint::load(&out, &Device::Cpu).unwrap();
    let ds = Dataset::load(&data).unwrap();
    let e = evaluate(&ckpt.model, &ds.val, Some(5000)).unwrap();
    let (loss, words) = (e.loss, e.words);
    assert_eq!(words, 5000);
    assert!(loss < 3.5, "{loss}");
}

#[test]
fn train_and_eval_commands_work_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    synthetic_dataset(&data, 20);
    let out = tmp.path().join("ckpt");
    let bin = env!("CARGO_BIN_EXE_nanotune");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        (o.status.success(), text, err)
    };
    let (d, c) = (data.to_str().unwrap(), out.to_str().unwrap());
    let tiny = [
        "--layers",
        "1",
        "--heads",
        "2",
        "--width",
        "16",
        "--context",
        "16",
        "--batch",
        "4",
        "--steps",
        "4",
        "--eval-every",
        "2",
        "--eval-batches",
        "1",
        "-q",
    ];
    let (ok, _, err) = run(&[&["train", "--data", d, "--out", c], &tiny[..]].concat());
    assert!(ok, "{err}");
    let (ok, text, err) = run(&["eval", "--checkpoint", c, "--data", d, "--split", "val"]);
    assert!(ok, "{err}");
    let last = text.lines().find(|l| l.starts_with("loss ")).unwrap();
    let parts: Vec<&str> = last.split(' ').collect();
    assert_eq!(
        (parts[0], parts[2], parts[3], parts[6]),
        ("loss", "nats/word,", "perplexity", "words"),
        "{last}"
    );
    assert!(parts[1].parse::<f64>().is_ok() && parts[1].split('.').nth(1).unwrap().len() == 4);
    let quarters = text.lines().last().unwrap();
    assert!(
        quarters.starts_with("by position in the window of 16 words, in quarters: "),
        "{quarters}"
    );
    let (ok, text2, _) = run(&["eval", "--checkpoint", c, "--data", d, "--max-words", "100"]);
    assert!(ok && text2.contains(", 100 words\n"), "{text2}");

    // Fine-tuning from it, and a clear refusal to reshape a checkpoint's model.
    let tuned = tmp.path().join("tuned");
    let t = tuned.to_str().unwrap();
    let args = [
        "train",
        "--data",
        d,
        "--out",
        t,
        "--init-from",
        c,
        "--steps",
        "2",
        "--batch",
        "2",
        "--eval-every",
        "2",
        "--eval-batches",
        "1",
        "-q",
    ];
    let (ok, _, err) = run(&args);
    assert!(ok, "{err}");
    assert_eq!(
        Checkpoint::load(&tuned, &Device::Cpu)
            .unwrap()
            .config
            .model
            .width,
        16
    );
    let (ok, _, err) = run(&args);
    assert!(!ok && err.contains("--resume"), "{err}");
    let (ok, _, err) = run(&[&args[..], &["--width", "32"]].concat());
    assert!(!ok && err.contains("shape"), "{err}");
    let (ok, _, err) = run(&["eval", "--checkpoint", d, "--data", d]);
    assert!(!ok && err.contains("config.json"), "{err}");
}
