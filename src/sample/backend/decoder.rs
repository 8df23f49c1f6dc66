//! [`FastGpt`]: the default decoder for generation on the CPU. The checkpoint's weights copied
//! into packed arrays (f16 by default, see [`Weights`]) and a batch-1 decoder written for them:
//! one word is a handful of matrix-vector products (the kernels of `kernels.rs`) over weights read
//! once each as one stream, plus attention over a head-major key/value cache, with no allocation
//! per word; it slides its window without rebuilding it. A prompt of many words runs the big
//! products through candle's matmul instead, which is faster for many rows.
//!
//! It also runs several takes side by side (for [`super::FastTakes`]): one word of each is one
//! batch, every product reading the weights once for all (`matvec_many`), the same to the bit as
//! batch 1.
//!
//! It loads straight from the checkpoint's tensors ([`FastGpt::load`], [`FastGpt::from_tensors`]),
//! checked by name and shape against the model's [`GptConfig`] first.

use super::core_pair::CorePair;
use super::kernels::{self, AVec, Packed};
use crate::learn::checkpoint::read_checkpoint;
use crate::learn::model::{GptConfig, Positions, POSITION_TABLE, TOKEN_TABLE};
use crate::learn::rotary::Rotary;
use crate::sample::{check_takes, NextWordModel};
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// How [`FastGpt`] keeps its weights for the one-word products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weights {
    /// As trained.
    F32,
    /// Rounded to IEEE half floats (11 significant bits, relative error under 0.05%): half the
    /// bytes to read per word, so about twice the words per second where memory bandwidth is the
    /// limit. Needs AVX2, FMA and F16C; elsewhere the weights stay `F32`. The default.
    #[default]
    F16,
}

/// A linear layer `y = W x (+ b)`, `W` is `(out, inp)` row-major.
struct Linear {
    w: Packed,
    /// The same weights as a candle tensor, for many rows at once.
    tensor: Tensor,
    b: Option<Vec<f32>>,
    out: usize,
    inp: usize,
}

impl Linear {
    fn new(tensors: &HashMap<String, Tensor>, name: &str, half: bool) -> Result<Linear> {
        let tensor = get(tensors, &format!("{name}.weight"))?;
        let (out, inp) = tensor.dims2()?;
        let mut values = f32_values(tensor)?;
        let w = Packed::new(&mut values, out, inp, half);
        // The batched products read the same (possibly rounded) values.
        let tensor = Tensor::from_vec(values, (out, inp), &Device::Cpu)?;
        let b = tensors
            .get(&format!("{name}.bias"))
            .map(f32_values)
            .transpose()?;
        Ok(Linear {
            w,
            tensor,
            b,
            out,
            inp,
        })
    }

    /// `rows` inputs of `inp` in `x` into `rows` outputs of `out` in `y`: up to `kernel_rows`
    /// rows through the kernel, reading the weights once for all of them (the words of one step:
    /// every take's, in its main and shadow windows), with `pair` half the weights on each core;
    /// more through candle's matmul.
    fn forward(
        &self,
        x: &[f32],
        rows: usize,
        y: &mut AVec,
        kernel_rows: usize,
        pair: Option<&CorePair>,
        spare: &mut Spare,
    ) -> Result<()> {
        y.resize(rows * self.out);
        if rows <= kernel_rows {
            product(&self.w, x, rows, y, pair, spare);
        } else {
            let xt = Tensor::from_slice(&x[..rows * self.inp], (rows, self.inp), &Device::Cpu)?;
            let out = xt
                .matmul(&self.tensor.t()?)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            y.copy_from_slice(&out);
        }
        if let Some(b) = &self.b {
            for row in y.chunks_exact_mut(self.out) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.w.bytes() + 4 * self.b.as_ref().map_or(0, Vec::len)
    }
}

/// Scratch for the two halves of a product of several rows, kept from word to word.
#[derive(Default)]
struct Spare {
    top: AVec,
    bottom: AVec,
}

/// `ys = W xs` for `k` inputs: with `pair`, the top rows of `W` on this core and the bottom
/// ones on the pair's, each output exactly what one core gives.
fn product(
    w: &Packed,
    xs: &[f32],
    k: usize,
    ys: &mut [f32],
    pair: Option<&CorePair>,
    spare: &mut Spare,
) {
    let (Some(pair), Some((top, bottom))) = (pair, w.row_halves()) else {
        return w.matvec_many(xs, k, ys);
    };
    let (a, b) = (top.rows(), bottom.rows());
    if k == 1 {
        let (ya, yb) = ys.split_at_mut(a);
        pair.join(|| top.matvec(xs, ya), || bottom.matvec(xs, yb));
        return;
    }
    // Each output's rows lie in two runs: the halves go to scratch, then into place.
    spare.top.resize(k * a);
    spare.bottom.resize(k * b);
    let (ta, tb) = (&mut spare.top, &mut spare.bottom);
    pair.join(
        || top.matvec_many(xs, k, ta),
        || bottom.matvec_many(xs, k, tb),
    );
    for (i, y) in ys.chunks_exact_mut(a + b).enumerate() {
        y[..a].copy_from_slice(&ta[i * a..][..a]);
        y[a..].copy_from_slice(&tb[i * b..][..b]);
    }
}

struct Norm {
    w: Vec<f32>,
    b: Option<Vec<f32>>,
}

impl Norm {
    fn new(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Norm> {
        Ok(Norm {
            w: f32_values(get(tensors, &format!("{name}.weight"))?)?,
            b: tensors
                .get(&format!("{name}.bias"))
                .map(f32_values)
                .transpose()?,
        })
    }

    /// LayerNorm of each row of `x` into `y` (as [`crate::learn::model`]: eps 1e-5 inside the root).
    fn forward(&self, x: &[f32], y: &mut AVec) {
        let c = self.w.len();
        y.resize(x.len());
        for (xr, yr) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
            let mean = xr.iter().sum::<f32>() / c as f32;
            let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / c as f32;
            let inv = 1.0 / (var + 1e-5).sqrt();
            for i in 0..c {
                yr[i] = (xr[i] - mean) * inv * self.w[i] + self.b.as_ref().map_or(0.0, |b| b[i]);
            }
        }
    }
}

struct Block {
    ln_1: Norm,
    c_attn: Linear,
    c_proj: Linear,
    ln_2: Norm,
    c_fc: Linear,
    mlp_proj: Linear,
}

/// Keys and values of the positions fed so far, per layer: keys `(heads, head width, context)`
/// (transposed, for [`kernels::attend`]), values `(heads, context, head width)`. In half floats
/// where the weights are (two to a slot, see [`kernels::attend_half`]): at a context of 1,024 the
/// cache is a third of what a word reads.
#[derive(Clone)]
struct Cache {
    keys: Vec<AVec>,
    values: Vec<AVec>,
    len: usize,
    half: bool,
}

impl Cache {
    fn new(config: &GptConfig, half: bool) -> Cache {
        let floats = config.context * config.width;
        // Halves two to a slot, and a register of them to spare past the keys' last row.
        let layer = AVec::zeros(if half { floats.div_ceil(2) + 8 } else { floats });
        Cache {
            keys: vec![layer.clone(); config.layers],
            values: vec![layer; config.layers],
            len: 0,
            half,
        }
    }
}

/// Writes `key` as column `pos` of one head's transposed keys (`(head width, context)`).
fn put_column<T: Copy>(keys: &mut [T], context: usize, pos: usize, key: &[T]) {
    for (d, k) in key.iter().enumerate() {
        keys[d * context + pos] = *k;
    }
}

/// A prompt of more words than this goes through candle's matmul (faster for many rows).
const PROMPT_KERNEL_ROWS: usize = 2;

/// A batch-1 decoder over a checkpoint's weights with its own key/value cache (see the module doc).
///
/// It slides its window itself ([`NextWordModel::slides_itself`]), at no extra cost per word:
/// while the main window fills its last `keep - 1` positions, each word is also fed into a
/// shadow window (one pass over the weights for both, as a batch of two), so when the main window
/// is full the shadow holds the last `keep - 1` words at positions `0..keep - 1` and simply
/// becomes the main window. That is exactly the cache a rebuild from the last `keep` words
/// would give ([`crate::sample::window_keep`]), without the rebuild.
pub struct FastGpt {
    /// The weights, shared by the decoders of [`FastGpt::sibling`].
    net: Arc<Net>,
    /// Each take's main window and shadow window (see [`FastGpt`]'s `feed`): take `k`'s are
    /// `caches[2 k]` and `caches[2 k + 1]`. One take unless [`NextWordModel::set_takes`] asks for more.
    caches: Vec<Cache>,
    /// Which of its two caches is each take's main window (0 or 1).
    main: Vec<usize>,
    /// Rows of the word(s) being fed: their cache and position.
    rows: Vec<(usize, usize)>,
    /// The rows whose logits are wanted, and the take each one is for.
    outs: Vec<(usize, usize)>,
    /// Ids of `rows`.
    ids: Vec<u16>,
    // Scratch, reused from word to word.
    x: AVec,
    h: AVec,
    qkv: AVec,
    y: AVec,
    a: AVec,
    f: AVec,
    scores: Vec<f32>,
    /// A key in half floats, before it goes into its column of the cache.
    halves: Vec<u16>,
    /// The second core's scratch: attention scores and product halves.
    scores2: Vec<f32>,
    spare: Spare,
    /// The sampler has promised the window will not slide: no shadow is kept.
    no_slide: bool,
    /// Half of each product and of the heads on a second core (one take only).
    pair: Option<CorePair>,
}

/// A model's weights as the decoder reads them.
struct Net {
    config: GptConfig,
    wte: AVec,
    /// The head (tied to `wte`), packed for the kernel.
    head: Packed,
    /// The learned positions, or the rotary table.
    wpe: Option<Vec<f32>>,
    rotary: Option<Rotary>,
    blocks: Vec<Block>,
    ln_f: Norm,
}

impl Net {
    /// A window's cache with no words, in half floats where the weights are and the CPU can.
    fn empty_cache(&self) -> Cache {
        Cache::new(&self.config, self.head.is_half() && kernels::half_cache())
    }
}

fn get<'a>(tensors: &'a HashMap<String, Tensor>, name: &str) -> Result<&'a Tensor> {
    tensors
        .get(name)
        .with_context(|| format!("the weights lack {name}"))
}

/// A tensor's values as f32 on the CPU, whatever its float type (an exported checkpoint holds
/// f16) and device.
fn f32_values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1()?)
}

impl FastGpt {
    /// A CPU decoder for a model of `config` from its named tensors (on any device, in any float
    /// type), checked by name and shape first.
    pub fn from_tensors(
        config: &GptConfig,
        tensors: &HashMap<String, Tensor>,
        weights: Weights,
    ) -> Result<FastGpt> {
        config.check_weights(tensors)?;
        let half = weights == Weights::F16;
        let config = config.clone();
        let blocks = (0..config.layers)
            .map(|i| {
                let p = format!("transformer.h.{i}");
                Ok(Block {
                    ln_1: Norm::new(tensors, &format!("{p}.ln_1"))?,
                    c_attn: Linear::new(tensors, &format!("{p}.attn.c_attn"), half)?,
                    c_proj: Linear::new(tensors, &format!("{p}.attn.c_proj"), half)?,
                    ln_2: Norm::new(tensors, &format!("{p}.ln_2"))?,
                    c_fc: Linear::new(tensors, &format!("{p}.mlp.c_fc"), half)?,
                    mlp_proj: Linear::new(tensors, &format!("{p}.mlp.c_proj"), half)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let wte = f32_values(get(tensors, TOKEN_TABLE)?)?;
        // The embedding stays exact; the tied head may be rounded.
        let head = Packed::new(&mut wte.clone(), config.vocab, config.width, half);
        let net = Net {
            head,
            wte: AVec::from_slice(&wte),
            wpe: match config.positions {
                Positions::Learned => Some(f32_values(get(tensors, POSITION_TABLE)?)?),
                Positions::Rotary => None,
            },
            rotary: (config.positions == Positions::Rotary)
                .then(|| Rotary::new(config.context, config.width / config.heads)),
            ln_f: Norm::new(tensors, "transformer.ln_f")?,
            blocks,
            config,
        };
        Ok(FastGpt::over(Arc::new(net)))
    }

    /// A decoder with no words fed, over `net`.
    fn over(net: Arc<Net>) -> FastGpt {
        let cache = net.empty_cache();
        FastGpt {
            caches: vec![cache.clone(), cache],
            main: vec![0],
            rows: Vec::new(),
            outs: Vec::new(),
            ids: Vec::new(),
            x: AVec::default(),
            h: AVec::default(),
            qkv: AVec::default(),
            y: AVec::default(),
            a: AVec::default(),
            f: AVec::default(),
            scores: vec![0.0; net.config.context],
            halves: Vec::new(),
            scores2: vec![0.0; net.config.context],
            spare: Spare::default(),
            no_slide: false,
            pair: None,
            net,
        }
    }

    /// A decoder of its own (windows, scratch) over the same weights, with no words fed: for
    /// decoding on another thread without a second copy of the weights.
    pub fn sibling(&self) -> FastGpt {
        FastGpt::over(Arc::clone(&self.net))
    }

    /// The model of a checkpoint folder: `config.json` for its shape, `model.safetensors` read
    /// straight into the decoder. An error names the file, and the tensor that does not fit.
    pub fn load(dir: &Path, weights: Weights) -> Result<FastGpt> {
        let (config, tensors) = read_checkpoint(dir, &Device::Cpu)?;
        FastGpt::from_tensors(&config.model, &tensors, weights)
    }

    /// With `on`, each word's products and heads are split over this core and a second one (a
    /// helper thread, started here where the machine has two cores or more); off, one core does
    /// all. The words are the same to the bit either way. For one take: takes on several threads
    /// keep the cores busy already.
    pub(crate) fn use_second_core(&mut self, on: bool) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if !on || cores < 2 {
            self.pair = None;
        } else if self.pair.is_none() {
            self.pair = CorePair::start();
        }
    }

    /// Whether each word is split over two cores (see [`FastGpt::use_second_core`]).
    pub fn on_two_cores(&self) -> bool {
        self.pair.is_some()
    }

    /// How the weights are kept (`F16` only where the CPU reads half floats).
    pub fn weights(&self) -> Weights {
        if self.net.head.is_half() {
            Weights::F16
        } else {
            Weights::F32
        }
    }

    pub fn config(&self) -> &GptConfig {
        &self.net.config
    }

    /// Bytes of weights one word reads (every matrix once, the tied head included).
    pub(crate) fn weight_bytes(&self) -> usize {
        let blocks: usize = self
            .net
            .blocks
            .iter()
            .map(|b| b.c_attn.bytes() + b.c_proj.bytes() + b.c_fc.bytes() + b.mlp_proj.bytes())
            .sum();
        blocks + self.net.head.bytes()
    }

    /// Runs every matrix-vector product of one word on dummy inputs, and nothing else: what the
    /// weights alone cost (for `bench generate`).
    pub(crate) fn weights_pass(&mut self) {
        let c = self.net.config.width;
        self.h.resize(4 * c);
        self.h.fill(0.5);
        let mut out = std::mem::take(&mut self.f);
        out.resize(4 * c);
        for b in &self.net.blocks {
            b.c_attn.w.matvec(&self.h, &mut out[..3 * c]);
            b.c_proj.w.matvec(&self.h, &mut out[..c]);
            b.c_fc.w.matvec(&self.h, &mut out[..4 * c]);
            b.mlp_proj.w.matvec(&self.h, &mut out[..c]);
        }
        out.resize(self.net.config.vocab.max(4 * c));
        self.net
            .head
            .matvec(&self.h[..c], &mut out[..self.net.config.vocab]);
        self.f = out;
    }

    /// Positions held in the main window (of the first take).
    pub fn len(&self) -> usize {
        self.caches[self.main[0]].len
    }

    /// Positions held in take `k`'s main window.
    fn len_of(&self, k: usize) -> usize {
        self.caches[2 * k + self.main[k]].len
    }

    /// Decodes `takes` sequences side by side (each with its own two windows, empty).
    pub(super) fn resize_takes(&mut self, takes: usize) {
        let cache = self.net.empty_cache();
        self.caches.resize(2 * takes, cache);
        self.main.resize(takes, 0);
        self.reset_all();
    }

    pub(super) fn reset_all(&mut self) {
        self.caches.iter_mut().for_each(|c| c.len = 0);
        self.main.iter_mut().for_each(|m| *m = 0);
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Main-window positions from which words also go into the shadow window (none where the
    /// sampler has promised the window will not slide).
    fn shadow_from(&self) -> usize {
        if self.no_slide {
            return usize::MAX;
        }
        let context = self.net.config.context;
        context + 1 - crate::sample::window_keep(context)
    }

    /// Runs the words of `ids` at `self.rows` (cache, position) through the model; the logits of
    /// each row of `self.outs` into `logits` at its take (`vocab` floats a take). Up to
    /// `kernel_rows` rows, the products read each weight once for all of them.
    fn run(&mut self, ids: &[u16], logits: &mut [f32], kernel_rows: usize) -> Result<()> {
        let c = self.net.config.width;
        let t = ids.len();
        let heads = self.net.config.heads;
        let hd = c / heads;
        let scale = 1.0 / (hd as f32).sqrt();
        self.x.resize(t * c);
        for (i, (&id, &(_, pos))) in ids.iter().zip(&self.rows).enumerate() {
            ensure!(
                (id as usize) < self.net.config.vocab,
                "id {id} past the vocabulary"
            );
            let x = &mut self.x[i * c..][..c];
            x.copy_from_slice(&self.net.wte[id as usize * c..][..c]);
            if let Some(wpe) = &self.net.wpe {
                kernels::axpy(x, 1.0, &wpe[pos * c..][..c]);
            }
        }
        for (l, b) in self.net.blocks.iter().enumerate() {
            b.ln_1.forward(&self.x, &mut self.h);
            let pair = self.pair.as_ref();
            let spare = &mut self.spare;
            b.c_attn
                .forward(&self.h, t, &mut self.qkv, kernel_rows, pair, spare)?;
            if let Some(rotary) = &self.net.rotary {
                for (i, &(_, pos)) in self.rows.iter().enumerate() {
                    // The queries and keys: the first two thirds of the row, head after head.
                    for head in self.qkv[i * 3 * c..][..2 * c].chunks_mut(hd) {
                        rotary.rotate(head, pos);
                    }
                }
            }
            // Head-major: one head's keys lie in one run, transposed (head width, position),
            // and its values in another (position, head width); see `kernels::attend`.
            let context = self.net.config.context;
            for (i, &(w, pos)) in self.rows.iter().enumerate() {
                let row = &self.qkv[i * 3 * c..][..3 * c];
                let cache = &mut self.caches[w];
                for h in 0..heads {
                    let (key, value) = (&row[c + h * hd..][..hd], &row[2 * c + h * hd..][..hd]);
                    let (first, at) = (h * context * hd, (h * context + pos) * hd);
                    if cache.half {
                        self.halves.resize(hd, 0);
                        kernels::to_halves(key, &mut self.halves);
                        let keys = &mut cache.keys[l].halves_mut()[first..];
                        put_column(keys, context, pos, &self.halves);
                        kernels::to_halves(value, &mut cache.values[l].halves_mut()[at..at + hd]);
                    } else {
                        put_column(&mut cache.keys[l][first..], context, pos, key);
                        cache.values[l][at..at + hd].copy_from_slice(value);
                    }
                }
            }
            self.y.resize(t * c);
            self.y.fill(0.0);
            // One task a (row, head), in the order of their outputs in `y`.
            let (rows, caches, qkv) = (&self.rows, &self.caches, &self.qkv);
            let attend = |tasks: std::ops::Range<usize>, scores: &mut [f32], y: &mut [f32]| {
                for (task, out) in tasks.zip(y.chunks_exact_mut(hd)) {
                    let (i, h) = (task / heads, task % heads);
                    let (w, pos) = rows[i];
                    let (cache, q) = (&caches[w], &qkv[i * 3 * c + h * hd..][..hd]);
                    let run = h * context * hd..(h + 1) * context * hd;
                    let scores = &mut scores[..pos + 1];
                    if cache.half {
                        let head = kernels::HalfHead {
                            // On to the buffer's end: the last row is read in whole registers.
                            keys: &cache.keys[l].halves()[run.start..],
                            values: &cache.values[l].halves()[run],
                            stride: context,
                            scale,
                        };
                        kernels::attend_half(q, head, scores, out);
                    } else {
                        let head = kernels::Head {
                            keys: &cache.keys[l][run.clone()],
                            values: &cache.values[l][run],
                            stride: context,
                            scale,
                        };
                        kernels::attend(q, head, scores, out);
                    }
                }
            };
            let tasks = t * heads;
            match &self.pair {
                Some(pair) if tasks > 1 => {
                    let half = tasks / 2;
                    let (ya, yb) = self.y.split_at_mut(half * hd);
                    let (mine, theirs) = (&mut self.scores, &mut self.scores2);
                    pair.join(
                        || attend(0..half, mine, ya),
                        || attend(half..tasks, theirs, yb),
                    );
                }
                _ => attend(0..tasks, &mut self.scores, &mut self.y),
            }
            let spare = &mut self.spare;
            b.c_proj
                .forward(&self.y, t, &mut self.a, kernel_rows, pair, spare)?;
            kernels::axpy(&mut self.x, 1.0, &self.a);
            b.ln_2.forward(&self.x, &mut self.h);
            b.c_fc
                .forward(&self.h, t, &mut self.f, kernel_rows, pair, spare)?;
            // The trainer's own GELU (one formula for both).
            crate::learn::fused::gelu_in_place(&mut self.f);
            b.mlp_proj
                .forward(&self.f, t, &mut self.a, kernel_rows, pair, spare)?;
            kernels::axpy(&mut self.x, 1.0, &self.a);
        }
        let (k, vocab) = (self.outs.len(), self.net.config.vocab);
        self.a.resize(k * c);
        for (i, &(row, _)) in self.outs.iter().enumerate() {
            self.a[i * c..][..c].copy_from_slice(&self.x[row * c..][..c]);
        }
        self.net.ln_f.forward(&self.a, &mut self.h);
        self.f.resize(k * vocab);
        product(
            &self.net.head,
            &self.h,
            k,
            &mut self.f[..k * vocab],
            self.pair.as_ref(),
            &mut self.spare,
        );
        for (i, &(_, take)) in self.outs.iter().enumerate() {
            logits[take * vocab..][..vocab].copy_from_slice(&self.f[i * vocab..][..vocab]);
        }
        Ok(())
    }

    /// One word into each listed take (`(take, id)`), batched: the logits of each take's next
    /// word into `logits` at its take. A take whose main window is full first swaps in its shadow.
    fn step(&mut self, words: &[(usize, u16)], logits: &mut [f32]) -> Result<()> {
        let (context, from) = (self.net.config.context, self.shadow_from());
        self.rows.clear();
        self.outs.clear();
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        for &(k, id) in words {
            if self.len_of(k) == context {
                ensure!(
                    !self.no_slide,
                    "the window is full though the sampler said it would not slide"
                );
                self.main[k] = 1 - self.main[k];
                self.caches[2 * k + 1 - self.main[k]].len = 0;
            }
            let (main, shadow) = (2 * k + self.main[k], 2 * k + 1 - self.main[k]);
            let pos = self.caches[main].len;
            self.outs.push((self.rows.len(), k));
            self.rows.push((main, pos));
            ids.push(id);
            self.caches[main].len += 1;
            if pos >= from {
                let p = self.caches[shadow].len;
                self.rows.push((shadow, p));
                ids.push(id);
                self.caches[shadow].len += 1;
            }
        }
        let result = self.run(&ids, logits, usize::MAX);
        self.ids = ids;
        result
    }

    /// Several words (a prompt) into take `k`'s main window, which must hold them, and their
    /// tail into its shadow; the logits of the next word into `logits` at take `k`.
    fn feed_words(&mut self, k: usize, ids: &[u16], logits: &mut [f32]) -> Result<()> {
        let (context, t) = (self.net.config.context, ids.len());
        let (main, shadow) = (2 * k + self.main[k], 2 * k + 1 - self.main[k]);
        let start = self.caches[main].len;
        ensure!(
            start + t <= context,
            "{} positions exceed the context of {}",
            start + t,
            context
        );
        self.rows.clear();
        self.rows.extend((start..start + t).map(|p| (main, p)));
        self.outs.clear();
        self.outs.push((t - 1, k));
        self.caches[main].len = start + t;
        self.run(ids, logits, PROMPT_KERNEL_ROWS)?;
        // The words past `from` go into the shadow window too (its logits are not needed).
        let from = self.shadow_from();
        let tail = &ids[from.max(start).min(start + t) - start..];
        if !tail.is_empty() {
            let p = self.caches[shadow].len;
            self.rows.clear();
            self.rows.extend((p..p + tail.len()).map(|p| (shadow, p)));
            self.outs.clear();
            self.outs.push((tail.len() - 1, 0));
            self.caches[shadow].len = p + tail.len();
            let mut scratch = vec![0.0; self.net.config.vocab];
            self.run(tail, &mut scratch, PROMPT_KERNEL_ROWS)?;
        }
        Ok(())
    }
}

/// Its takes decode side by side on the calling thread ([`FastGpt::feed_takes`]); one take is a
/// batch of one.
impl NextWordModel for FastGpt {
    fn context(&self) -> usize {
        self.net.config.context
    }

    fn vocab(&self) -> usize {
        self.net.config.vocab
    }

    fn takes(&self) -> usize {
        self.main.len()
    }

    fn set_takes(&mut self, takes: usize) -> Result<()> {
        check_takes(takes)?;
        self.resize_takes(takes);
        Ok(())
    }

    fn reset(&mut self) {
        self.reset_all();
    }

    fn slides_itself(&self) -> bool {
        true
    }

    fn expect_at_most(&mut self, positions: usize) {
        self.no_slide = positions <= self.net.config.context;
    }

    fn feed(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> Result<()> {
        self.feed_takes(ids, logits)
    }
}

/// Several takes side by side, for [`super::FastTakes`]: one word of every take is a batch, so
/// each weight is read once per word for all of them (the kernel's `matvec_many`), with one pair
/// of windows per take. A prompt the same for every take runs once and is copied.
impl FastGpt {
    /// Reads `ids[k]` after take `k`'s words (as [`NextWordModel::feed`]). One word: into the
    /// main window (and the shadow window from `shadow_from` on); when the main window is full,
    /// the shadow takes over first. Several words (a prompt): into the main window, which must
    /// hold them, and their tail into the shadow.
    pub(super) fn feed_takes(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> Result<()> {
        let (takes, vocab) = (self.takes(), self.net.config.vocab);
        ensure!(
            ids.len() == takes,
            "words for {} takes, not {takes}",
            ids.len()
        );
        ensure!(logits.len() == takes * vocab, "logits buffer size");
        if ids.iter().all(|w| w.len() <= 1) {
            let words: Vec<(usize, u16)> = (0..takes)
                .filter_map(|k| ids[k].first().map(|&id| (k, id)))
                .collect();
            return self.step(&words, logits);
        }
        // Takes that start empty with the same words as an earlier one get a copy of its windows.
        let fresh = (0..takes).all(|k| self.caches[2 * k].len + self.caches[2 * k + 1].len == 0);
        for k in 0..takes {
            let twin = (0..k).find(|&j| fresh && ids[j] == ids[k]);
            match (ids[k], twin) {
                ([], _) => {}
                (_, Some(j)) => {
                    for w in 0..2 {
                        self.caches[2 * k + w] = self.caches[2 * j + w].clone();
                    }
                    self.main[k] = self.main[j];
                    logits.copy_within(j * vocab..(j + 1) * vocab, k * vocab);
                }
                ([id], None) => self.step(&[(k, *id)], logits)?,
                (words, None) => self.feed_words(k, words, logits)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::checkpoint::{
        find_in, save_tensors, Checkpoint, CheckpointConfig, TrainSummary, MODEL_FILE,
    };
    use crate::learn::model::Gpt;
    use crate::music::words::Vocab;
    fn shipped() -> std::path::PathBuf {
        find_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints"))
            .expect("a model ships in checkpoints/")
    }

    #[test]
    fn the_shipped_checkpoint_loads_straight_into_the_decoder() {
        // Its weights are stored in f16; read into the decoder they give candle's logits, over
        // 300 words of a real piece: exactly with f32 keys and values, within the rounding of
        // half floats with the half-float cache (F16).
        let dir = shipped();
        let gpt = Checkpoint::load(&dir, &Device::Cpu).unwrap().model;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/examples/continuation.mid"
        );
        let bytes = std::fs::read(path).unwrap();
        let words = crate::music::read::piece_from_midi(&bytes, &mut Default::default()).unwrap();
        let ids = Vocab.encode(&words[..300]).unwrap();
        let t = Tensor::from_vec(
            ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            (1, ids.len()),
            &Device::Cpu,
        )
        .unwrap();
        let full = gpt.forward(&t).unwrap().squeeze(0).unwrap();
        for weights in [Weights::F32, Weights::F16] {
            let mut fast = FastGpt::load(&dir, weights).unwrap();
            assert_eq!(fast.config(), gpt.config());
            let mut logits = vec![0.0; gpt.config().vocab];
            let (mut worst, mut sum) = (0f32, 0f64);
            for (i, &id) in ids.iter().enumerate() {
                fast.feed(&[&[id]], &mut logits).unwrap();
                let want = full.get(i).unwrap().to_vec1::<f32>().unwrap();
                for (a, b) in logits.iter().zip(&want) {
                    worst = worst.max((a - b).abs());
                    sum += (a - b).abs() as f64;
                }
            }
            let mean = sum / (ids.len() * logits.len()) as f64;
            eprintln!("{weights:?}: largest difference {worst}, mean {mean}");
            let (largest, average) = match weights {
                Weights::F32 => (1e-3, 1e-4),
                Weights::F16 => (2e-2, 2e-3),
            };
            assert!(
                worst < largest && mean < average,
                "{weights:?}: {worst}, {mean}"
            );
        }
    }

    /// A tiny checkpoint in `dir` whose tensors `edit` may change before they are saved.
    fn checkpoint(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
        let config = GptConfig {
            layers: 2,
            heads: 2,
            width: 16,
            context: 8,
            vocab: Vocab.len(),
            dropout: 0.0,
            bias: false,
            positions: Default::default(),
        };
        let mut tensors = Gpt::new(&config, 1, &Device::Cpu).unwrap().tensors();
        edit(&mut tensors);
        std::fs::create_dir_all(dir).unwrap();
        CheckpointConfig::new(config, TrainSummary::default())
            .save(dir)
            .unwrap();
        save_tensors(&dir.join(MODEL_FILE), &tensors).unwrap();
    }

    /// The one-line error of loading `dir`.
    fn load_error(dir: &Path) -> String {
        format!("{:#}", FastGpt::load(dir, Weights::F32).err().unwrap())
    }

    #[test]
    fn a_checkpoint_that_does_not_fit_its_config_names_the_file_and_the_tensor() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good");
        checkpoint(&good, |_| {});
        assert!(FastGpt::load(&good, Weights::F32).is_ok());

        let missing = tmp.path().join("missing");
        checkpoint(&missing, |t| {
            t.remove("transformer.h.1.ln_2.weight");
        });
        let err = load_error(&missing);
        for want in [
            "model.safetensors",
            "config.json",
            "transformer.h.1.ln_2.weight",
        ] {
            assert!(err.contains(want), "{want} in {err}");
        }

        let shape = tmp.path().join("shape");
        checkpoint(&shape, |t| {
            let wpe = t["transformer.wpe.weight"].narrow(0, 0, 7).unwrap();
            t.insert("transformer.wpe.weight".into(), wpe);
        });
        let err = load_error(&shape);
        for want in [
            "model.safetensors",
            "transformer.wpe.weight",
            "[7, 16]",
            "[8, 16]",
        ] {
            assert!(err.contains(want), "{want} in {err}");
        }

        // A bias the config (bias: false) has no place for would otherwise be silently ignored.
        let extra = tmp.path().join("extra");
        checkpoint(&extra, |t| {
            let bias = Tensor::zeros(48, DType::F32, &Device::Cpu).unwrap();
            t.insert("transformer.h.0.attn.c_attn.bias".into(), bias);
        });
        let err = load_error(&extra);
        for want in ["model.safetensors", "transformer.h.0.attn.c_attn.bias"] {
            assert!(err.contains(want), "{want} in {err}");
        }

        std::fs::write(good.join(MODEL_FILE), b"not safetensors").unwrap();
        assert!(load_error(&good).contains("model.safetensors"));
    }
}
