//! Measuring a model: the loss on fixed batches that training logs at each evaluation, and the
//! loss over a whole split that `nanotune eval` prints.

use super::batches::{derive_seed, Augment, Stream, Windows};
use super::TrainOptions;
use crate::learn::dataset::SplitData;
use crate::learn::model::Gpt;
use anyhow::{ensure, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The mean loss (nats/word) on the training and validation splits.
#[derive(Clone, Copy, Debug)]
pub(super) struct Losses {
    pub train: f64,
    pub val: f64,
}

/// Fixed evaluation batches of both splits (no augmentation), the same at every evaluation of
/// a run and of its resumed parts, so the logged losses compare.
pub(super) struct EvalBatches {
    train: Vec<(Tensor, Tensor)>,
    val: Vec<(Tensor, Tensor)>,
}

impl EvalBatches {
    /// `opts.eval_batches` batches of `opts.batch` windows from each split.
    pub fn new(
        train: &Windows,
        val: &Windows,
        opts: &TrainOptions,
        device: &Device,
    ) -> Result<EvalBatches> {
        let fixed = |windows: &Windows, stream| {
            let mut rng = StdRng::seed_from_u64(derive_seed(opts.seed, stream, 0));
            (0..opts.eval_batches)
                .map(|_| windows.batch(&mut rng, opts.batch, &Augment::none(), device))
                .collect::<Result<Vec<_>>>()
        };
        Ok(EvalBatches {
            train: fixed(train, Stream::EvalTrain)?,
            val: fixed(val, Stream::EvalVal)?,
        })
    }

    pub fn losses(&self, model: &Gpt) -> Result<Losses> {
        Ok(Losses {
            train: mean_loss(model, &self.train)?,
            val: mean_loss(model, &self.val)?,
        })
    }
}

fn mean_loss(model: &Gpt, batches: &[(Tensor, Tensor)]) -> Result<f64> {
    let mut sum = 0.0;
    for (x, y) in batches {
        sum += model.loss(x, y, None)?.to_scalar::<f32>()? as f64;
    }
    Ok(sum / batches.len() as f64)
}

/// What [`evaluate`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss, nats per predicted word.
    pub loss: f64,
    /// Words predicted.
    pub words: usize,
    /// Mean loss of the words predicted at each quarter of the window's positions (the first
    /// quarter sees the least before it): a model that uses its memory predicts the last quarter
    /// better than the first.
    pub by_quarter: [f64; 4],
}

/// Loss over a split, deterministically: each piece cut into non-overlapping windows of the
/// model's context, every word after the first predicted once. Stops after `max_words`
/// predicted words if given.
pub fn evaluate(model: &Gpt, split: &SplitData, max_words: Option<usize>) -> Result<Evaluation> {
    let ctx = model.config().context;
    let device = model.device().clone();
    let limit = max_words.unwrap_or(usize::MAX);
    let mut windows: Vec<(&[u16], &[u16])> = Vec::new();
    let mut words = 0usize;
    'pieces: for i in 0..split.pieces.len() {
        let p = split.piece(i);
        let mut start = 0;
        while start + 1 < p.len() {
            let n = ctx.min(p.len() - 1 - start).min(limit - words);
            if n == 0 {
                break 'pieces;
            }
            windows.push((&p[start..start + n], &p[start + 1..start + n + 1]));
            words += n;
            start += n;
        }
    }
    ensure!(words > 0, "nothing to evaluate: the split has no words");
    // Windows of one length go together in batches of up to 16.
    windows.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
    let (mut sums, mut counts) = ([0f64; 4], [0usize; 4]);
    for group in windows.chunk_by(|a, b| a.0.len() == b.0.len()) {
        for chunk in group.chunks(16) {
            let n = chunk[0].0.len();
            let ids = |target: bool| {
                let v: Vec<u32> = chunk
                    .iter()
                    .flat_map(|w| if target { w.1 } else { w.0 })
                    .map(|&t| t as u32)
                    .collect();
                Tensor::from_vec(v, (chunk.len(), n), &device)
            };
            let (x, y) = (ids(false)?, ids(true)?);
            for row in word_losses(model, &x, &y)? {
                for (position, loss) in row.into_iter().enumerate() {
                    let quarter = position * 4 / ctx;
                    sums[quarter] += loss as f64;
                    counts[quarter] += 1;
                }
            }
        }
    }
    let by_quarter = std::array::from_fn(|q| sums[q] / counts[q].max(1) as f64);
    Ok(Evaluation {
        loss: sums.iter().sum::<f64>() / words as f64,
        words,
        by_quarter,
    })
}

/// The loss of each word of a piece after its first (`ids[1..]`), each predicted with as much of
/// the piece before it as the context holds, up to half a context less: windows of the context's
/// length start every half context, and each word is scored in the first window where it has at
/// least half a context before it (or in the first window).
pub fn piece_losses(model: &Gpt, ids: &[u16]) -> Result<Vec<f32>> {
    let ctx = model.config().context;
    let half = (ctx / 2).max(1);
    let device = model.device().clone();
    let mut losses = Vec::with_capacity(ids.len().saturating_sub(1));
    let mut start = 0;
    while losses.len() + 1 < ids.len() {
        let n = ctx.min(ids.len() - 1 - start);
        let tensor = |from: usize| {
            let v: Vec<u32> = ids[from..from + n].iter().map(|&t| t as u32).collect();
            Tensor::from_vec(v, (1, n), &device)
        };
        let row = word_losses(model, &tensor(start)?, &tensor(start + 1)?)?.remove(0);
        // Positions already scored by the window before are skipped.
        let done = losses.len() - start;
        losses.extend_from_slice(&row[done..]);
        start += half;
    }
    Ok(losses)
}

/// The loss of each predicted word, `(batch, time)`: minus the log-probability of the target.
fn word_losses(model: &Gpt, ids: &Tensor, targets: &Tensor) -> Result<Vec<Vec<f32>>> {
    let logits = model.forward(ids)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(2)?.contiguous()?, 2)?;
    Ok(picked.squeeze(2)?.neg()?.to_vec2::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::model::GptConfig;
    use crate::music::words::Vocab;
    use std::path::Path;

    fn model() -> Gpt {
        let config = GptConfig {
            layers: 1,
            heads: 2,
            width: 16,
            context: 32,
            vocab: Vocab.len(),
            dropout: 0.0,
            bias: false,
            positions: Default::default(),
        };
        Gpt::new(&config, 3, &Device::Cpu).unwrap()
    }

    /// The loss of each predicted word, one window at a time: what `evaluate`'s batches sum.
    fn loss_word_by_window(model: &Gpt, piece: &[u16], ctx: usize) -> (f64, usize) {
        let (mut sum, mut words) = (0.0, 0);
        for start in (0..piece.len() - 1).step_by(ctx) {
            let n = ctx.min(piece.len() - 1 - start);
            let ids = |from: usize| {
                let v: Vec<u32> = piece[from..from + n].iter().map(|&t| t as u32).collect();
                Tensor::from_vec(v, (1, n), &Device::Cpu).unwrap()
            };
            let loss = model.loss(&ids(start), &ids(start + 1), None).unwrap();
            sum += loss.to_scalar::<f32>().unwrap() as f64 * n as f64;
            words += n;
        }
        (sum / words as f64, words)
    }

    #[test]
    fn evaluate_predicts_every_word_once_and_stops_at_max_words() {
        let model = model();
        let ids = super::super::batches::tests::example_piece();
        let mut split = SplitData::default();
        split.push("example", &ids[..500]);
        split.push("opening", &ids[..45]);
        let Evaluation {
            loss,
            words,
            by_quarter,
        } = evaluate(&model, &split, None).unwrap();
        assert_eq!(words, 499 + 44);
        // Predictions at each quarter of the 32 positions: 15 full windows and one of 19 of the
        // example, one full window and one of 12 of the opening.
        let counts = [144.0, 140.0, 131.0, 128.0];
        let pooled: f64 = by_quarter.iter().zip(counts).map(|(l, n)| l * n).sum();
        assert!(
            (pooled / 543.0 - loss).abs() < 1e-6,
            "{by_quarter:?} {loss}"
        );
        let (a, na) = loss_word_by_window(&model, &ids[..500], 32);
        let (b, nb) = loss_word_by_window(&model, &ids[..45], 32);
        let want = (a * na as f64 + b * nb as f64) / (na + nb) as f64;
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
        let first = evaluate(&model, &split, Some(100)).unwrap();
        assert_eq!(first.words, 100);
        let first = first.loss;
        let (want, _) = loss_word_by_window(&model, &ids[..101], 32);
        assert!((first - want).abs() < 1e-5, "{first} vs {want}");
        let err = evaluate(&model, &SplitData::default(), None).unwrap_err();
        assert!(err.to_string().contains("no words"), "{err}");
    }

    #[test]
    fn a_piece_is_scored_word_by_word_with_up_to_a_context_before_each() {
        let model = model();
        let ids = super::super::batches::tests::example_piece();
        // Shorter than the context: one window, the same losses as the mean.
        let short = &ids[..20];
        let losses = piece_losses(&model, short).unwrap();
        assert_eq!(losses.len(), 19);
        let (want, _) = loss_word_by_window(&model, short, 32);
        let mean = losses.iter().map(|&l| l as f64).sum::<f64>() / 19.0;
        assert!((mean - want).abs() < 1e-5);
        // Longer: every word once; word 40 is predicted from words 16..40 (the window at 16).
        let losses = piece_losses(&model, &ids[..100]).unwrap();
        assert_eq!(losses.len(), 99);
        let window: Vec<u16> = ids[16..41].to_vec();
        let alone = piece_losses(&model, &window).unwrap();
        assert!(
            (losses[39] - alone[23]).abs() < 1e-5,
            "{} {}",
            losses[39],
            alone[23]
        );
    }

    #[test]
    fn fixed_batches_are_the_same_for_every_evaluation() {
        let ids = super::super::batches::tests::example_piece();
        let mut train = SplitData::default();
        train.push("example", &ids);
        let mut val = SplitData::default();
        val.push("opening", &ids[..400]);
        let (train, val) = (Windows::new(&train, 33), Windows::new(&val, 33));
        let mut opts = TrainOptions::new("small", Path::new("d"), Path::new("o")).unwrap();
        opts.eval_batches = 3;
        opts.batch = 4;
        let a = EvalBatches::new(&train, &val, &opts, &Device::Cpu).unwrap();
        let b = EvalBatches::new(&train, &val, &opts, &Device::Cpu).unwrap();
        assert_eq!((a.train.len(), a.val.len()), (3, 3));
        let ids = |bs: &[(Tensor, Tensor)]| -> Vec<Vec<Vec<u32>>> {
            bs.iter().map(|(x, _)| x.to_vec2().unwrap()).collect()
        };
        assert_eq!(ids(&a.train), ids(&b.train));
        assert_eq!(ids(&a.val), ids(&b.val));
        assert_ne!(ids(&a.train), ids(&a.val));
        let model = model();
        let (la, lb) = (a.losses(&model).unwrap(), b.losses(&model).unwrap());
        assert_eq!((la.train, la.val), (lb.train, lb.val));
        // An untrained model is near uniform over the vocabulary.
        let uniform = (Vocab.len() as f64).ln();
        assert!((la.val - uniform).abs() < 0.5, "{la:?}");
    }
}
