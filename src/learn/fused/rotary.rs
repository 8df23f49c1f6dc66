//! Rotary position embeddings on the fused q/k/v projection, in place of the eight candle nodes
//! (narrows, cats, products and a sum per query and key) the plain version makes: one pass
//! forward, one back. The backward pass turns the gradient back through the same angles.

use super::{rows_per_task, values};
use crate::learn::rotary::Rotary;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// `qkv` `(batch, time, 3 * width)` with each head's query and key turned to its position
/// (`0..time`); the values pass as they are.
pub fn rotary(qkv: &Tensor, table: &Arc<Rotary>, heads: usize) -> Result<Tensor> {
    qkv.contiguous()?.apply_op1(Turn {
        table: Arc::clone(table),
        heads,
        back: false,
    })
}

struct Turn {
    table: Arc<Rotary>,
    heads: usize,
    /// Turns back (the gradient of turning).
    back: bool,
}

impl CustomOp1 for Turn {
    fn name(&self) -> &'static str {
        "fused-rotary"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = values(storage, layout, self.name())?;
        let (_, t, c3) = layout.shape().dims3()?;
        let c = c3 / 3;
        if c3 % 3 != 0 || c % self.heads != 0 {
            bail!(
                "rotary: rows of {c3} are not q, k and v of {} heads",
                self.heads
            );
        }
        if t > self.table.positions() {
            bail!(
                "rotary: {t} positions, the table holds {}",
                self.table.positions()
            );
        }
        let hd = c / self.heads;
        let mut y = x.to_vec();
        let rows = rows_per_task(y.len() / c3, c3);
        y.par_chunks_mut(rows * c3)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (i, row) in chunk.chunks_mut(c3).enumerate() {
                    let pos = (task * rows + i) % t;
                    // The queries and keys: the first two thirds of the row, head after head.
                    for head in row[..2 * c].chunks_mut(hd) {
                        match self.back {
                            false => self.table.rotate(head, pos),
                            true => self.table.rotate_back(head, pos),
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let back = Turn {
            table: Arc::clone(&self.table),
            heads: self.heads,
            back: !self.back,
        };
        Ok(Some(grad.contiguous()?.apply_op1(back)?))
    }
}
