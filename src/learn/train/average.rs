//! Weight averaging (`--ema`): an exponential moving average of the weights over the steps,
//! which smooths out the noise of the last updates. With it, evaluations measure the average and
//! the checkpoint keeps the average; the raw weights go on training underneath.

use crate::learn::model::{Gpt, GptConfig};
use anyhow::{ensure, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;

/// The running average of a model's parameters.
pub struct WeightAverage {
    decay: f64,
    /// One per parameter, in the model's order, f32.
    tensors: Vec<Tensor>,
    /// Updates so far: early on the average forgets faster, so the first weights (random ones,
    /// in a fresh run) do not linger in it.
    pub updates: usize,
}

impl WeightAverage {
    /// An average that starts at the current weights.
    pub fn new(params: &[(String, Var)], decay: f64) -> Result<WeightAverage> {
        ensure!(
            (0.0..1.0).contains(&decay),
            "the average's decay must lie in [0, 1)"
        );
        let tensors = params
            .iter()
            .map(|(_, v)| v.as_tensor().to_dtype(DType::F32)?.copy())
            .collect::<candle_core::Result<_>>()?;
        Ok(WeightAverage {
            decay,
            tensors,
            updates: 0,
        })
    }

    /// An average read back from saved tensors (in the model's order).
    pub fn from_tensors(tensors: Vec<Tensor>, decay: f64, updates: usize) -> WeightAverage {
        WeightAverage {
            decay,
            tensors,
            updates,
        }
    }

    /// Takes in the weights after a step: the average moves towards them by 1 - decay (by more
    /// in the first steps: decay is at most (1 + n) / (10 + n) after n updates).
    pub fn update(&mut self, params: &[(String, Var)]) -> Result<()> {
        let n = self.updates as f64;
        let decay = self.decay.min((1.0 + n) / (10.0 + n));
        for (avg, (_, var)) in self.tensors.iter_mut().zip(params) {
            *avg = ((&*avg * decay)? + (var.as_tensor().to_dtype(DType::F32)? * (1.0 - decay))?)?;
        }
        self.updates += 1;
        Ok(())
    }

    /// The averaged tensors, in the model's order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// A model of `config` with the averaged weights, named as `params` names them.
    pub fn model(
        &self,
        config: &GptConfig,
        params: &[(String, Var)],
        device: &Device,
    ) -> Result<Gpt> {
        let named: HashMap<String, Tensor> = params
            .iter()
            .zip(&self.tensors)
            .map(|((name, _), t)| (name.clone(), t.clone()))
            .collect();
        Gpt::from_tensors(config, &named, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(values: &[f32]) -> Vec<(String, Var)> {
        let var = Var::from_vec(values.to_vec(), values.len(), &Device::Cpu).unwrap();
        vec![("w".into(), var)]
    }

    #[test]
    fn the_average_follows_the_weights_slowly_and_first_faster() {
        let p = params(&[0.0, 10.0]);
        let mut avg = WeightAverage::new(&p, 0.9).unwrap();
        p[0].1
            .set(&Tensor::new(&[1f32, 10.0], &Device::Cpu).unwrap())
            .unwrap();
        avg.update(&p).unwrap();
        // First update: decay min(0.9, 1/10) = 0.1, so the average moves 90% of the way.
        let got: Vec<f32> = avg.tensors()[0].to_vec1().unwrap();
        assert!((got[0] - 0.9).abs() < 1e-6 && got[1] == 10.0, "{got:?}");
        for _ in 0..200 {
            avg.update(&p).unwrap();
        }
        let got: Vec<f32> = avg.tensors()[0].to_vec1().unwrap();
        assert!((got[0] - 1.0).abs() < 1e-4, "{got:?}");
        assert_eq!(avg.updates, 201);
        assert!(WeightAverage::new(&p, 1.0).is_err());
    }
}
