//! Where a run stands, and where it starts: a fresh model, the weights of `--init-from`, or the
//! resume state a stopped run left in its checkpoint's optimizer.safetensors.

use super::average::WeightAverage;
use super::optim::Optimizer;
use super::TrainOptions;
use crate::learn::checkpoint::{
    load_tensors, save_tensors, Checkpoint, CheckpointConfig, TrainSummary, CONFIG_FILE,
    OPTIMIZER_FILE,
};
use crate::learn::model::{Gpt, GptConfig, Positions, POSITION_TABLE, TOKEN_TABLE};
use crate::music::words::Vocab;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// A run's state: what the resume file keeps (the current weights, the optimiser's moments, the
/// weights' average, the step, the best validation loss) and the summary config.json reports.
pub(super) struct RunState {
    pub model: Gpt,
    pub opt: Optimizer,
    /// With `--ema`: the weights' moving average, which evaluations measure.
    pub average: Option<WeightAverage>,
    /// Optimiser steps done.
    pub step: usize,
    /// The best validation loss so far (infinite before the first evaluation).
    pub best: f64,
    pub summary: TrainSummary,
}

impl RunState {
    /// The state a run starts from, as `opts` says: the resume state in `opts.out`, the weights
    /// of `opts.init_from`, or a fresh model of `opts.model`; creates `opts.out`, and refuses to
    /// start a new run over a checkpoint there. A checkpoint read keeps its shape and takes
    /// `opts.model`'s dropout.
    pub fn start(opts: &TrainOptions, device: &Device) -> Result<RunState> {
        std::fs::create_dir_all(&opts.out)
            .with_context(|| format!("creating {}", opts.out.display()))?;
        if !opts.resume && opts.out.join(CONFIG_FILE).exists() {
            bail!(
                "{} already holds a checkpoint: add --resume to continue it, or choose another --out",
                opts.out.display()
            );
        }
        if opts.resume {
            return RunState::load(opts, device).context("cannot resume");
        }
        let model = match &opts.init_from {
            Some(dir) => {
                let ckpt = Checkpoint::load(dir, device)
                    .with_context(|| format!("cannot start from {}", dir.display()))?;
                let mut cfg = ckpt.config.model.clone();
                cfg.dropout = opts.model.dropout;
                let mut tensors = ckpt.model.tensors();
                if opts.model.positions != cfg.positions {
                    ensure!(
                        opts.model.positions == Positions::Rotary,
                        "a model with rotary positions cannot start one with learned positions"
                    );
                    // The blocks and the embedding carry over; attention learns distances anew.
                    tensors.remove(POSITION_TABLE);
                    cfg.positions = Positions::Rotary;
                }
                if opts.model.context > cfg.context {
                    if cfg.positions == Positions::Learned {
                        tile_positions(&mut tensors, opts.model.context)?;
                    }
                    cfg.context = opts.model.context;
                }
                if opts.augment.fill_share > 0.0 && cfg.vocab < Vocab::WITH_FILL {
                    add_fill_markers(&mut tensors, &mut cfg, opts.seed, device)?;
                }
                Gpt::from_tensors(&cfg, &tensors, device)?
            }
            None => {
                let mut cfg = opts.model.clone();
                if opts.augment.fill_share > 0.0 {
                    cfg.vocab = Vocab::WITH_FILL;
                }
                Gpt::new(&cfg, opts.seed, device)?
            }
        };
        let average = match opts.ema > 0.0 {
            true => Some(WeightAverage::new(model.params(), opts.ema)?),
            false => None,
        };
        Ok(RunState {
            opt: Optimizer::for_run(model.params(), opts)?,
            average,
            model,
            step: 0,
            best: f64::INFINITY,
            summary: TrainSummary::default(),
        })
    }

    /// Takes in the losses of an evaluation at the current step, `tokens` words into the run;
    /// true when validation is the best yet (the weights to keep).
    pub fn evaluated(&mut self, train_loss: f64, val_loss: f64, tokens: u64) -> bool {
        self.summary.step = self.step;
        self.summary.tokens = tokens;
        if val_loss >= self.best {
            return false;
        }
        self.best = val_loss;
        self.summary.best_step = self.step;
        self.summary.best_val_loss = Some(val_loss);
        self.summary.train_loss = Some(train_loss);
        true
    }

    /// Writes the resume state to `dir`'s optimizer.safetensors, in one file so its parts
    /// always agree.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let device = self.model.device();
        let mut t: HashMap<String, Tensor> = HashMap::new();
        for (i, (name, var)) in self.model.params().iter().enumerate() {
            let (m, v) = self.opt.moments(i, var.shape())?;
            t.insert(format!("param.{name}"), var.as_tensor().clone());
            t.insert(format!("m.{name}"), m);
            t.insert(format!("v.{name}"), v);
        }
        if let Some(avg) = &self.average {
            for ((name, _), a) in self.model.params().iter().zip(avg.tensors()) {
                t.insert(format!("{AVERAGE_PREFIX}{name}"), a.clone());
            }
            let updates = Tensor::new(&[avg.updates as i64], device)?;
            t.insert(AVERAGE_UPDATES.into(), updates);
        }
        t.insert("step".into(), Tensor::new(&[self.step as i64], device)?);
        t.insert("best_val_loss".into(), Tensor::new(&[self.best], device)?);
        save_tensors(&dir.join(OPTIMIZER_FILE), &t)
    }

    /// Reads what [`RunState::save`] wrote in `opts.out`, with the shape config.json gives.
    fn load(opts: &TrainOptions, device: &Device) -> Result<RunState> {
        let config = CheckpointConfig::load(&opts.out)?;
        ensure!(
            opts.augment.fill_share == 0.0 || config.model.vocab >= Vocab::WITH_FILL,
            "the model in {} has no fill markers for --fill-share: start a new run from it with \
             --init-from",
            opts.out.display()
        );
        let mut shape = config.model;
        shape.dropout = opts.model.dropout;
        let path = opts.out.join(OPTIMIZER_FILE);
        let mut t = load_tensors(&path, device)?;
        let bad = |what: &str| format!("{} lacks a valid {what}", path.display());
        let step = t.remove("step").with_context(|| bad("step"))?;
        let step = step.to_vec1::<i64>().with_context(|| bad("step"))?;
        let best = t
            .remove("best_val_loss")
            .with_context(|| bad("best_val_loss"))?;
        let best = best
            .to_vec1::<f64>()
            .with_context(|| bad("best_val_loss"))?;
        ensure!(step.len() == 1 && best.len() == 1, bad("step"));
        let avg_updates = t.remove(AVERAGE_UPDATES);
        let mut weights = HashMap::new();
        let mut averaged = HashMap::new();
        let mut moments = HashMap::new();
        for (name, tensor) in t {
            if let Some(n) = name.strip_prefix("param.") {
                weights.insert(n.to_string(), tensor);
            } else if let Some(n) = name.strip_prefix(AVERAGE_PREFIX) {
                averaged.insert(n.to_string(), tensor);
            } else {
                moments.insert(name, tensor);
            }
        }
        let model = Gpt::from_tensors(&shape, &weights, device).with_context(|| {
            format!("{} does not match the checkpoint's config", path.display())
        })?;
        let mut opt = Optimizer::for_run(model.params(), opts)?;
        let (mut m, mut v) = (Vec::new(), Vec::new());
        for (name, var) in model.params() {
            for (kind, list) in [("m", &mut m), ("v", &mut v)] {
                let key = format!("{kind}.{name}");
                let moment = moments.remove(&key).with_context(|| bad(&key))?;
                ensure!(moment.dims() == var.dims(), bad(&key));
                list.push(moment);
            }
        }
        opt.set_moments(&m, &v)?;
        opt.set_step(step[0] as usize);
        let average = match (opts.ema > 0.0, avg_updates) {
            (false, _) => None,
            // A run that kept no average starts one at its current weights.
            (true, None) => Some(WeightAverage::new(model.params(), opts.ema)?),
            (true, Some(updates)) => {
                let updates = updates.to_vec1::<i64>().with_context(|| bad("average"))?;
                let mut tensors = Vec::new();
                for (name, var) in model.params() {
                    let a = averaged.remove(name).with_context(|| bad("average"))?;
                    ensure!(a.dims() == var.dims(), bad("average"));
                    tensors.push(a.to_dtype(candle_core::DType::F32)?);
                }
                let n = updates.first().copied().unwrap_or(0).max(0) as usize;
                Some(WeightAverage::from_tensors(tensors, opts.ema, n))
            }
        };
        Ok(RunState {
            model,
            opt,
            average,
            step: step[0] as usize,
            best: best[0],
            summary: config.training,
        })
    }
}

/// The resume file's names for the weights' average and its count of updates.
const AVERAGE_PREFIX: &str = "average.";
const AVERAGE_UPDATES: &str = "average_updates";

/// The optimiser steps a checkpoint's run was set to reach (the `steps` of the training options
/// its config.json records), so that a resumed run goes on to its own end.
pub fn recorded_steps(config: &CheckpointConfig) -> Option<usize> {
    let steps = config.training.options.get("steps")?.as_u64()?;
    usize::try_from(steps).ok().filter(|&s| s > 0)
}

/// Gives a model the three fill markers: rows of the token embedding (which is also the head)
/// drawn as a fresh model of the grown shape draws them; every other weight stays.
fn add_fill_markers(
    tensors: &mut HashMap<String, Tensor>,
    cfg: &mut GptConfig,
    seed: u64,
    device: &Device,
) -> Result<()> {
    let key = TOKEN_TABLE;
    let wte = tensors
        .get(key)
        .with_context(|| format!("the weights lack {key}"))?;
    cfg.vocab = Vocab::WITH_FILL;
    let fresh = Gpt::new(cfg, seed, device)?.tensors();
    let added = fresh[key].narrow(0, Vocab.len(), Vocab::WITH_FILL - Vocab.len())?;
    let grown = Tensor::cat(&[wte, &added.to_dtype(wte.dtype())?], 0)?;
    tensors.insert(key.to_string(), grown);
    Ok(())
}

/// Grows the position table to `context` rows by repeating the learned ones (as Longformer
/// grew RoBERTa's): a later position starts out as the one a whole context earlier, which
/// fine-tuning then tells apart, instead of as noise the trained layers never saw.
fn tile_positions(tensors: &mut HashMap<String, Tensor>, context: usize) -> Result<()> {
    let key = POSITION_TABLE;
    let wpe = tensors
        .get(key)
        .with_context(|| format!("the weights lack {key}"))?;
    let rows = wpe.dim(0)?;
    ensure!(rows > 0, "{key} is empty");
    let copies = vec![wpe; context.div_ceil(rows)];
    let grown = Tensor::cat(&copies, 0)?.narrow(0, 0, context)?;
    tensors.insert(key.to_string(), grown);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::model::GptConfig;
    use crate::music::words::Vocab;

    fn options(out: &Path) -> TrainOptions {
        let mut o = TrainOptions::new("small", Path::new("data"), out).unwrap();
        o.model = GptConfig {
            layers: 1,
            heads: 2,
            width: 16,
            context: 8,
            vocab: Vocab.len(),
            dropout: 0.0,
            bias: false,
            positions: Default::default(),
        };
        o
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// A state a few optimiser steps in, so its weights and moments are its own.
    fn stepped(opts: &TrainOptions) -> RunState {
        let mut run = RunState::start(opts, &Device::Cpu).unwrap();
        let ids: Vec<u32> = (0..2 * 9).map(|i| (i * 7 % Vocab.len()) as u32).collect();
        let all = Tensor::from_vec(ids, (2, 9), &Device::Cpu).unwrap();
        let x = all.narrow(1, 0, 8).unwrap().contiguous().unwrap();
        let y = all.narrow(1, 1, 8).unwrap().contiguous().unwrap();
        for _ in 0..3 {
            let loss = run.model.loss(&x, &y, None).unwrap();
            let grads = super::super::optim::gradients(&loss, run.model.params()).unwrap();
            run.opt
                .clipped_update(run.model.params(), &grads, 1.0, 1e-2)
                .unwrap();
            if let Some(avg) = &mut run.average {
                avg.update(run.model.params()).unwrap();
            }
            run.step += 1;
        }
        run
    }

    #[test]
    fn the_resume_state_reads_back_as_it_was_saved() {
        let tmp = tempfile::tempdir().unwrap();
        resume_state_reads_back(&options(tmp.path()));
    }

    #[test]
    fn muons_momentum_and_the_weights_average_read_back_as_saved() {
        let tmp = tempfile::tempdir().unwrap();
        let mut opts = options(tmp.path());
        opts.optimizer = super::super::OptimizerKind::Muon;
        opts.ema = 0.9;
        resume_state_reads_back(&opts);
    }

    fn resume_state_reads_back(opts: &TrainOptions) {
        let tmp = opts.out.clone();
        let opts = opts.clone();
        let mut run = stepped(&opts);
        assert!(run.evaluated(5.2, 5.3, 48));
        assert!(!run.evaluated(5.0, 5.4, 48), "a worse loss is not kept");
        assert_eq!(
            (run.summary.best_step, run.summary.best_val_loss),
            (3, Some(5.3))
        );
        CheckpointConfig::new(run.model.config().clone(), run.summary.clone())
            .save(&tmp)
            .unwrap();
        run.save(&tmp).unwrap();

        let mut again = opts.clone();
        again.resume = true;
        again.model.dropout = 0.2;
        let back = RunState::start(&again, &Device::Cpu).unwrap();
        assert_eq!((back.step, back.opt.step(), back.best), (3, 3, 5.3));
        assert_eq!(back.summary, run.summary);
        assert_eq!(back.model.config().dropout, 0.2, "the dropout is the run's");
        for (i, ((name, a), (_, b))) in run
            .model
            .params()
            .iter()
            .zip(back.model.params())
            .enumerate()
        {
            assert_eq!(values(a.as_tensor()), values(b.as_tensor()), "{name}");
            let (ma, va) = run.opt.moments(i, a.shape()).unwrap();
            let (mb, vb) = back.opt.moments(i, b.shape()).unwrap();
            assert!(values(&ma).iter().any(|&m| m != 0.0), "{name}: no moment");
            assert_eq!((values(&ma), values(&va)), (values(&mb), values(&vb)));
        }
        match (&run.average, &back.average) {
            (None, None) => assert_eq!(opts.ema, 0.0),
            (Some(a), Some(b)) => {
                assert_eq!((a.updates, b.updates), (3, 3));
                for (x, y) in a.tensors().iter().zip(b.tensors()) {
                    assert_eq!(values(x), values(y));
                }
                let raw = values(run.model.params()[1].1.as_tensor());
                assert_ne!(
                    values(&a.tensors()[1]),
                    raw,
                    "the average is not the weights"
                );
            }
            _ => panic!("the average did not read back"),
        }

        // Without --resume the folder is refused; a folder without a checkpoint cannot resume.
        let err = RunState::start(&opts, &Device::Cpu).err().unwrap();
        assert!(err.to_string().contains("add --resume"), "{err}");
        let mut elsewhere = options(&tmp.join("empty"));
        elsewhere.resume = true;
        let err = format!(
            "{:#}",
            RunState::start(&elsewhere, &Device::Cpu).err().unwrap()
        );
        assert!(err.starts_with("cannot resume: no checkpoint in"), "{err}");
    }

    #[test]
    fn the_recorded_steps_are_the_runs_own() {
        let opts = options(Path::new("out"));
        let mut summary = TrainSummary::default();
        let config =
            |summary: &TrainSummary| CheckpointConfig::new(opts.model.clone(), summary.clone());
        assert_eq!(recorded_steps(&config(&summary)), None, "nothing recorded");
        let mut run = opts.clone();
        run.steps = 1234;
        summary.options = serde_json::to_value(&run).unwrap();
        assert_eq!(recorded_steps(&config(&summary)), Some(1234));
        summary.options["steps"] = serde_json::json!("many");
        assert_eq!(recorded_steps(&config(&summary)), None);
    }

    #[test]
    fn a_longer_context_repeats_the_learned_positions_and_keeps_the_early_logits() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = options(tmp.path());
        let run = stepped(&opts);
        CheckpointConfig::new(run.model.config().clone(), run.summary.clone())
            .save(tmp.path())
            .unwrap();
        let weights = tmp.path().join(crate::learn::checkpoint::MODEL_FILE);
        save_tensors(&weights, &run.model.tensors()).unwrap();

        let mut longer = options(&tmp.path().join("longer"));
        longer.init_from = Some(tmp.path().to_path_buf());
        longer.model.context = 20;
        let grown = RunState::start(&longer, &Device::Cpu).unwrap();
        assert_eq!(grown.model.config().context, 20);
        let key = "transformer.wpe.weight";
        let (old, new) = (&run.model.tensors()[key], &grown.model.tensors()[key]);
        assert_eq!(new.dims(), &[20, 16]);
        for i in 0..20 {
            let row = |t: &Tensor, r: usize| values(&t.narrow(0, r, 1).unwrap());
            assert_eq!(row(new, i), row(old, i % 8), "position {i}");
        }
        // The first 8 positions are the model it started from.
        let ids = Tensor::from_vec((0..8u32).map(|i| i * 5).collect(), (1, 8), &Device::Cpu);
        let ids = ids.unwrap();
        let logits = |gpt: &Gpt| values(&gpt.forward(&ids).unwrap());
        assert_eq!(logits(&run.model), logits(&grown.model));
    }
}
