//! Models behind [`NextWordModel`].
//!
//! - [`FastGpt`]: the default for generation. The checkpoint's weights copied into packed arrays
//!   (f16 by default, see [`Weights`]) and a batch-1 decoder written for them: one word is a
//!   handful of matrix-vector products (AVX2/FMA where the CPU has them) over weights read once
//!   each as one stream, plus attention over a head-major key/value cache, with no allocation per
//!   word; it slides its window without rebuilding it. A prompt of many words runs the big
//!   products through candle's matmul instead, which is faster for many rows.
//! - [`CachedGpt`]: candle's own [`Gpt::forward_cached`] with its [`KvCache`].
//! - [`UncachedGpt`]: candle's full [`Gpt::forward`] over the whole window for every word (how
//!   nanoGPT samples), the baseline of `bench generate`.
//!
//! All three give the same logits up to float rounding. [`load_for`] picks the one for a device:
//! [`FastGpt`] on the CPU, [`CachedGpt`] on a GPU.

use super::NextWordModel;
use crate::learn::checkpoint::Checkpoint;
use crate::learn::device::Compute;
use crate::learn::model::{Gpt, GptConfig, KvCache};
use anyhow::{ensure, Context, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A generation model behind the trait, ready to move to a worker thread.
pub type BoxedModel = Box<dyn NextWordModel + Send>;

/// The checkpoint in `dir` as a generation model for `compute`, with a line that says what runs
/// it: on the CPU the [`FastGpt`] decoder with `weights`; on a GPU candle's cached forward
/// there (matrix products in the device's float type, `weights` does not apply).
pub fn load_for(dir: &Path, compute: &Compute, weights: Weights) -> Result<(BoxedModel, String)> {
    if compute.is_cuda() {
        // Weights in the matrix products' type once, rather than cast at every word.
        let model = Checkpoint::load_on(dir, compute)?
            .model
            .to_dtype(compute.matmul_dtype)?;
        let label = format!("candle on {}, {:?} weights", compute.name(), model.dtype());
        let model = Arc::new(model);
        return Ok((Box::new(CachedGpt::new(model)), label));
    }
    let model = FastGpt::load(dir, weights)?;
    let label = format!("nanotune decoder on the cpu, {:?} weights", model.weights());
    Ok((Box::new(model), label))
}

/// candle's cached forward: [`Gpt::forward_cached`] with a [`KvCache`].
pub struct CachedGpt {
    model: Arc<Gpt>,
    cache: KvCache,
}

impl CachedGpt {
    pub fn new(model: Arc<Gpt>) -> CachedGpt {
        let cache = KvCache::new(model.config());
        CachedGpt { model, cache }
    }
}

fn ids_tensor(ids: &[u16], device: &Device) -> Result<Tensor> {
    let n = ids.len();
    let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    Ok(Tensor::from_vec(ids, (1, n), device)?)
}

fn copy_logits(t: &Tensor, logits: &mut [f32]) -> Result<()> {
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    ensure!(v.len() == logits.len(), "logits of {} words", v.len());
    logits.copy_from_slice(&v);
    Ok(())
}

impl NextWordModel for CachedGpt {
    fn context(&self) -> usize {
        self.model.config().context
    }
    fn vocab(&self) -> usize {
        self.model.config().vocab
    }
    fn reset(&mut self) {
        self.cache.reset();
    }
    fn feed(&mut self, ids: &[u16], logits: &mut [f32]) -> Result<()> {
        let t = ids_tensor(ids, self.model.device())?;
        let out = self.model.forward_cached(&t, &mut self.cache)?;
        copy_logits(&out, logits)
    }
}

/// candle's full forward over the whole window for every new word (no cache).
pub struct UncachedGpt {
    model: Arc<Gpt>,
    window: Vec<u16>,
}

impl UncachedGpt {
    pub fn new(model: Arc<Gpt>) -> UncachedGpt {
        UncachedGpt {
            model,
            window: Vec::new(),
        }
    }
}

impl NextWordModel for UncachedGpt {
    fn context(&self) -> usize {
        self.model.config().context
    }
    fn vocab(&self) -> usize {
        self.model.config().vocab
    }
    fn reset(&mut self) {
        self.window.clear();
    }
    fn feed(&mut self, ids: &[u16], logits: &mut [f32]) -> Result<()> {
        self.window.extend_from_slice(ids);
        ensure!(
            self.window.len() <= self.context(),
            "{} words exceed the context",
            self.window.len()
        );
        let t = ids_tensor(&self.window, self.model.device())?;
        let out = self.model.forward(&t)?;
        let n = self.window.len();
        copy_logits(&out.narrow(1, n - 1, 1)?, logits)
    }
}

/// Eight floats aligned to 32 bytes (one AVX register).
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Lane([f32; 8]);

/// A float buffer aligned to 32 bytes, so the kernels can read whole registers from it.
#[derive(Clone, Default)]
pub struct AVec {
    lanes: Vec<Lane>,
    len: usize,
}

impl AVec {
    pub fn zeros(n: usize) -> AVec {
        let mut v = AVec::default();
        v.resize(n);
        v
    }

    pub fn from_slice(x: &[f32]) -> AVec {
        let mut v = AVec::zeros(x.len());
        v.copy_from_slice(x);
        v
    }

    /// Sets the length to `n` (new floats are 0; no allocation once the capacity is there).
    pub fn resize(&mut self, n: usize) {
        self.lanes.resize(n.div_ceil(8), Lane::default());
        self.len = n;
    }
}

impl std::ops::Deref for AVec {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: `lanes` holds at least `len` initialised floats, contiguous (repr C).
        unsafe { std::slice::from_raw_parts(self.lanes.as_ptr() as *const f32, self.len) }
    }
}

impl std::ops::DerefMut for AVec {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as above, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lanes.as_mut_ptr() as *mut f32, self.len) }
    }
}

/// A `(rows, inp)` row-major matrix for matrix-vector products, packed so the kernel reads it
/// as one sequential stream: blocks of 4 rows, interleaved 8 floats at a time
/// (`r0[0..8] r1[0..8] r2[0..8] r3[0..8] r0[8..16] ...`). Plain row-major when `inp` is not a
/// multiple of 8.
pub struct Packed {
    data: AVec,
    rows: usize,
    inp: usize,
    packed: bool,
    /// `data` holds IEEE half floats, two to a slot (see [`Weights::F16`]).
    half: bool,
}

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

impl Packed {
    /// Packs `w`; with `half`, rounds it to half floats (and rounds `w` in place to the same
    /// values, so other products over `w` agree) where the CPU can read them.
    pub fn new(w: &mut [f32], rows: usize, inp: usize, half: bool) -> Packed {
        assert_eq!(w.len(), rows * inp);
        if !inp.is_multiple_of(8) {
            return Packed {
                data: AVec::from_slice(w),
                rows,
                inp,
                packed: false,
                half: false,
            };
        }
        let n = inp / 8;
        let mut data = AVec::zeros(rows.div_ceil(4) * 4 * inp);
        for row in 0..rows {
            let (block, r) = (row / 4, row % 4);
            for i in 0..n {
                let to = ((block * n + i) * 4 + r) * 8;
                data[to..to + 8].copy_from_slice(&w[row * inp + i * 8..][..8]);
            }
        }
        let half = half && kernels::to_half(&mut data, w);
        Packed {
            data,
            rows,
            inp,
            packed: true,
            half,
        }
    }

    /// `y = W x` (`y` has `rows` entries).
    pub fn matvec(&self, x: &[f32], y: &mut [f32]) {
        assert!(y.len() == self.rows && x.len() >= self.inp);
        if self.half {
            kernels::matvec_packed_half(&self.data, self.inp, &x[..self.inp], y);
        } else if self.packed {
            kernels::matvec_packed(&self.data, self.inp, &x[..self.inp], y);
        } else {
            kernels::matvec(&self.data, self.inp, x, y);
        }
    }

    /// `y0 = W x0` and `y1 = W x1`, reading `W` once.
    pub fn matvec2(&self, x0: &[f32], x1: &[f32], y0: &mut [f32], y1: &mut [f32]) {
        if self.packed && kernels::matvec2_packed(&self.data, self.half, self.inp, x0, x1, y0, y1) {
            return;
        }
        self.matvec(x0, y0);
        self.matvec(x1, y1);
    }

    /// Bytes read per product.
    pub fn bytes(&self) -> usize {
        if self.half {
            2 * self.rows * self.inp
        } else {
            4 * self.rows * self.inp
        }
    }

    pub fn is_half(&self) -> bool {
        self.half
    }
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
        let mut values = tensor.flatten_all()?.to_vec1::<f32>()?;
        let w = Packed::new(&mut values, out, inp, half);
        // The batched products read the same (possibly rounded) values.
        let tensor = Tensor::from_vec(values, (out, inp), &Device::Cpu)?;
        let b = tensors
            .get(&format!("{name}.bias"))
            .map(|b| b.flatten_all()?.to_vec1::<f32>())
            .transpose()?;
        Ok(Linear {
            w,
            tensor,
            b,
            out,
            inp,
        })
    }

    /// `rows` inputs of `inp` in `x` into `rows` outputs of `out` in `y`.
    fn forward(&self, x: &[f32], rows: usize, y: &mut AVec) -> Result<()> {
        y.resize(rows * self.out);
        if rows == 1 {
            self.w.matvec(x, y);
        } else if rows == 2 {
            // Two rows (the main and the shadow window): the weights are read once.
            let (y0, y1) = y.split_at_mut(self.out);
            self.w
                .matvec2(&x[..self.inp], &x[self.inp..2 * self.inp], y0, y1);
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

struct Norm {
    w: Vec<f32>,
    b: Option<Vec<f32>>,
}

impl Norm {
    fn new(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Norm> {
        Ok(Norm {
            w: get(tensors, &format!("{name}.weight"))?.to_vec1::<f32>()?,
            b: tensors
                .get(&format!("{name}.bias"))
                .map(|b| b.to_vec1::<f32>())
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

/// Keys and values of the positions fed so far, per layer `(heads, context, head width)`.
#[derive(Clone)]
struct Cache {
    keys: Vec<AVec>,
    values: Vec<AVec>,
    len: usize,
}

/// A batch-1 decoder over a [`Gpt`]'s weights with its own key/value cache (see the module doc).
///
/// It slides its window itself ([`NextWordModel::slides_itself`]), at no extra cost per word:
/// while the main window fills its last `keep - 1` positions, each word is also fed into a
/// shadow window (one pass over the weights for both, as a batch of two), so when the main window
/// is full the shadow holds the last `keep - 1` words at positions `0..keep - 1` and simply
/// becomes the main window. That is exactly the cache a rebuild from the last `keep` words
/// would give ([`crate::sample::window_keep`]), without the rebuild.
pub struct FastGpt {
    config: GptConfig,
    wte: AVec,
    /// The head (tied to `wte`), packed for the kernel.
    head: Packed,
    wpe: Vec<f32>,
    blocks: Vec<Block>,
    ln_f: Norm,
    /// The main window and the shadow window (see [`FastGpt`]'s `feed`).
    caches: [Cache; 2],
    /// Which of `caches` is the main window.
    main: usize,
    /// Rows of the word(s) being fed: their window and position.
    rows: Vec<(usize, usize)>,
    // Scratch, reused from word to word.
    x: AVec,
    h: AVec,
    qkv: AVec,
    y: AVec,
    a: AVec,
    f: AVec,
    scores: Vec<f32>,
}

fn get<'a>(tensors: &'a HashMap<String, Tensor>, name: &str) -> Result<&'a Tensor> {
    tensors
        .get(name)
        .with_context(|| format!("the weights lack {name}"))
}

impl FastGpt {
    /// Copies the weights of `model` (on any device) into a CPU decoder.
    pub fn from_gpt(model: &Gpt, weights: Weights) -> Result<FastGpt> {
        let half = weights == Weights::F16;
        let tensors: HashMap<String, Tensor> = model
            .tensors()
            .into_iter()
            .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?)))
            .collect::<Result<_>>()?;
        let config = model.config().clone();
        let blocks = (0..config.layers)
            .map(|i| {
                let p = format!("transformer.h.{i}");
                Ok(Block {
                    ln_1: Norm::new(&tensors, &format!("{p}.ln_1"))?,
                    c_attn: Linear::new(&tensors, &format!("{p}.attn.c_attn"), half)?,
                    c_proj: Linear::new(&tensors, &format!("{p}.attn.c_proj"), half)?,
                    ln_2: Norm::new(&tensors, &format!("{p}.ln_2"))?,
                    c_fc: Linear::new(&tensors, &format!("{p}.mlp.c_fc"), half)?,
                    mlp_proj: Linear::new(&tensors, &format!("{p}.mlp.c_proj"), half)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let layer = AVec::zeros(config.context * config.width);
        let cache = Cache {
            keys: vec![layer.clone(); config.layers],
            values: vec![layer; config.layers],
            len: 0,
        };
        let wte: Vec<f32> = get(&tensors, "transformer.wte.weight")?
            .flatten_all()?
            .to_vec1()?;
        // The embedding stays exact; the tied head may be rounded.
        let head = Packed::new(&mut wte.clone(), config.vocab, config.width, half);
        Ok(FastGpt {
            head,
            wte: AVec::from_slice(&wte),
            wpe: get(&tensors, "transformer.wpe.weight")?
                .flatten_all()?
                .to_vec1()?,
            ln_f: Norm::new(&tensors, "transformer.ln_f")?,
            blocks,
            caches: [cache.clone(), cache],
            main: 0,
            rows: Vec::new(),
            x: AVec::default(),
            h: AVec::default(),
            qkv: AVec::default(),
            y: AVec::default(),
            a: AVec::default(),
            f: AVec::default(),
            scores: vec![0.0; config.context],
            config,
        })
    }

    /// The model of a checkpoint folder.
    pub fn load(dir: &Path, weights: Weights) -> Result<FastGpt> {
        FastGpt::from_gpt(&Checkpoint::load(dir, &Device::Cpu)?.model, weights)
    }

    /// How the weights are kept (`F16` only where the CPU reads half floats).
    pub fn weights(&self) -> Weights {
        if self.head.is_half() {
            Weights::F16
        } else {
            Weights::F32
        }
    }

    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    /// Bytes of weights one word reads (every matrix once, the tied head included).
    pub fn weight_bytes(&self) -> usize {
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| b.c_attn.bytes() + b.c_proj.bytes() + b.c_fc.bytes() + b.mlp_proj.bytes())
            .sum();
        blocks + self.head.bytes()
    }

    /// Runs every matrix-vector product of one word on dummy inputs, and nothing else: what the
    /// weights alone cost (for `bench generate`).
    pub fn weights_pass(&mut self) {
        let c = self.config.width;
        self.h.resize(4 * c);
        self.h.fill(0.5);
        let mut out = std::mem::take(&mut self.f);
        out.resize(4 * c);
        for b in &self.blocks {
            b.c_attn.w.matvec(&self.h, &mut out[..3 * c]);
            b.c_proj.w.matvec(&self.h, &mut out[..c]);
            b.c_fc.w.matvec(&self.h, &mut out[..4 * c]);
            b.mlp_proj.w.matvec(&self.h, &mut out[..c]);
        }
        out.resize(self.config.vocab.max(4 * c));
        self.head
            .matvec(&self.h[..c], &mut out[..self.config.vocab]);
        self.f = out;
    }

    /// Positions held in the main window.
    pub fn len(&self) -> usize {
        self.caches[self.main].len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Main-window positions from which words also go into the shadow window.
    fn shadow_from(&self) -> usize {
        let context = self.config.context;
        context + 1 - crate::sample::window_keep(context)
    }

    /// Runs the words of `ids` at `self.rows` (window, position) through the model; logits of
    /// row `out_row` into `logits`.
    fn run(&mut self, ids: &[u16], out_row: usize, logits: &mut [f32]) -> Result<()> {
        let c = self.config.width;
        let t = ids.len();
        let heads = self.config.heads;
        let hd = c / heads;
        let scale = 1.0 / (hd as f32).sqrt();
        self.x.resize(t * c);
        for (i, (&id, &(_, pos))) in ids.iter().zip(&self.rows).enumerate() {
            ensure!(
                (id as usize) < self.config.vocab,
                "id {id} past the vocabulary"
            );
            let tok = &self.wte[id as usize * c..][..c];
            let pos = &self.wpe[pos * c..][..c];
            for (j, v) in self.x[i * c..][..c].iter_mut().enumerate() {
                *v = tok[j] + pos[j];
            }
        }
        for (l, b) in self.blocks.iter().enumerate() {
            b.ln_1.forward(&self.x, &mut self.h);
            b.c_attn.forward(&self.h, t, &mut self.qkv)?;
            // Head-major (head, position, head width): one head's keys lie in one run.
            let context = self.config.context;
            for (i, &(w, pos)) in self.rows.iter().enumerate() {
                let row = &self.qkv[i * 3 * c..][..3 * c];
                let cache = &mut self.caches[w];
                for h in 0..heads {
                    let at = (h * context + pos) * hd;
                    cache.keys[l][at..at + hd].copy_from_slice(&row[c + h * hd..][..hd]);
                    cache.values[l][at..at + hd].copy_from_slice(&row[2 * c + h * hd..][..hd]);
                }
            }
            self.y.resize(t * c);
            self.y.fill(0.0);
            for (i, &(w, pos)) in self.rows.iter().enumerate() {
                let (keys, values) = (&self.caches[w].keys[l], &self.caches[w].values[l]);
                for h in 0..heads {
                    let run = h * context * hd..(h * context + pos + 1) * hd;
                    kernels::attend(
                        &self.qkv[i * 3 * c + h * hd..][..hd],
                        &keys[run.clone()],
                        &values[run],
                        hd,
                        scale,
                        &mut self.scores[..pos + 1],
                        &mut self.y[i * c + h * hd..][..hd],
                    );
                }
            }
            b.c_proj.forward(&self.y, t, &mut self.a)?;
            kernels::axpy(&mut self.x, 1.0, &self.a);
            b.ln_2.forward(&self.x, &mut self.h);
            b.c_fc.forward(&self.h, t, &mut self.f)?;
            for v in self.f.iter_mut() {
                let x = *v;
                *v = (candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2) + 1.0)
                    * 0.5
                    * x;
            }
            b.mlp_proj.forward(&self.f, t, &mut self.a)?;
            kernels::axpy(&mut self.x, 1.0, &self.a);
        }
        self.ln_f.forward(&self.x[out_row * c..][..c], &mut self.h);
        self.head.matvec(&self.h[..c], logits);
        Ok(())
    }
}

impl NextWordModel for FastGpt {
    fn context(&self) -> usize {
        self.config.context
    }

    fn vocab(&self) -> usize {
        self.config.vocab
    }

    fn reset(&mut self) {
        self.caches.iter_mut().for_each(|c| c.len = 0);
    }

    fn slides_itself(&self) -> bool {
        true
    }

    /// One word: into the main window (and the shadow window from `shadow_from` on); when the
    /// main window is full, the shadow takes over first. Several words (a prompt): into the main
    /// window, which must hold them, and their tail into the shadow.
    fn feed(&mut self, ids: &[u16], logits: &mut [f32]) -> Result<()> {
        let (context, t) = (self.config.context, ids.len());
        ensure!(t > 0, "no words to feed");
        ensure!(logits.len() == self.config.vocab, "logits buffer size");
        let from = self.shadow_from();
        let shadow = 1 - self.main;
        self.rows.clear();
        if t == 1 {
            if self.len() == context {
                self.main = shadow;
                self.caches[1 - self.main].len = 0;
            }
            let (main, shadow) = (self.main, 1 - self.main);
            let pos = self.caches[main].len;
            self.rows.push((main, pos));
            self.caches[main].len += 1;
            if pos >= from {
                let p = self.caches[shadow].len;
                self.rows.push((shadow, p));
                self.caches[shadow].len += 1;
                self.run(&[ids[0], ids[0]], 0, logits)?;
            } else {
                self.run(ids, 0, logits)?;
            }
            return Ok(());
        }
        let start = self.len();
        ensure!(
            start + t <= context,
            "{} positions exceed the context of {}",
            start + t,
            context
        );
        self.rows.extend((start..start + t).map(|p| (self.main, p)));
        self.caches[self.main].len = start + t;
        self.run(ids, t - 1, logits)?;
        // The words past `from` go into the shadow window too (its logits are not needed).
        let tail = &ids[from.max(start).min(start + t) - start..];
        if !tail.is_empty() {
            let p = self.caches[shadow].len;
            self.rows.clear();
            self.rows.extend((p..p + tail.len()).map(|p| (shadow, p)));
            self.caches[shadow].len = p + tail.len();
            let mut scratch = vec![0.0; logits.len()];
            self.run(tail, tail.len() - 1, &mut scratch)?;
        }
        Ok(())
    }
}

/// The inner loops: AVX2 + FMA when the CPU has them (checked once), plain loops otherwise.
pub mod kernels {
    use std::sync::OnceLock;

    fn simd() -> bool {
        static SIMD: OnceLock<bool> = OnceLock::new();
        *SIMD.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                false
            }
        })
    }

    /// AVX2, FMA and F16C (half-float conversion).
    fn simd_half() -> bool {
        static HALF: OnceLock<bool> = OnceLock::new();
        *HALF.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                simd() && is_x86_feature_detected!("f16c")
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                false
            }
        })
    }

    /// Rounds the packed floats in `data` to half floats stored two to a slot in its first half
    /// (`data` shrinks to that), and rounds `w` in place to the same values. `false` (nothing
    /// changed) where the CPU lacks F16C.
    pub fn to_half(data: &mut super::AVec, w: &mut [f32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if simd_half() && data.len().is_multiple_of(16) {
            // SAFETY: the CPU has AVX2 and F16C.
            unsafe { avx::to_half(data, w) };
            let n = data.len() / 2;
            data.resize(n);
            return true;
        }
        let _ = (data, w);
        false
    }

    /// Two products over one packed matrix (f32, or halves with `half`), reading it once;
    /// `false` (nothing done) where no SIMD kernel applies.
    pub fn matvec2_packed(
        w: &[f32],
        half: bool,
        inp: usize,
        x0: &[f32],
        x1: &[f32],
        y0: &mut [f32],
        y1: &mut [f32],
    ) -> bool {
        let n = inp / 8;
        if !inp.is_multiple_of(8) || y0.len() != y1.len() || x0.len() < inp || x1.len() < inp {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        if (half && simd_half()) || (!half && simd()) {
            let (x0, x1) = (&x0[..inp], &x1[..inp]);
            // SAFETY: the CPU has the features each kernel needs (checked just above).
            return unsafe {
                if half {
                    avx::matvec2_packed_half(w, n, x0, x1, y0, y1)
                } else {
                    avx::matvec2_packed(w, n, x0, x1, y0, y1)
                }
            };
        }
        let _ = (w, n, x0, x1, y0, y1);
        false
    }

    /// [`matvec_packed`] over half floats packed by [`to_half`].
    pub fn matvec_packed_half(w: &[f32], inp: usize, x: &[f32], y: &mut [f32]) {
        let n = inp / 8;
        assert!(inp.is_multiple_of(8) && w.len() >= y.len().div_ceil(4) * 16 * n);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `to_half` only packs halves where the CPU has AVX2, FMA and F16C.
        if simd_half() && unsafe { avx::matvec_packed_half(w, n, x, y) } {
            return;
        }
        unreachable!("half-float weights on a CPU without F16C");
    }

    /// `y[o] = W[o, :] . x` for `W` of `y.len()` rows of `inp`.
    pub fn matvec(w: &[f32], inp: usize, x: &[f32], y: &mut [f32]) {
        assert!(w.len() >= y.len() * inp && x.len() >= inp);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA (checked once in `simd`).
        if simd() && unsafe { avx::matvec(&w[..y.len() * inp], inp, &x[..inp], y) } {
            return;
        }
        for (o, v) in y.iter_mut().enumerate() {
            *v = plain_dot(&w[o * inp..][..inp], &x[..inp]);
        }
    }

    /// `y = W x` for `W` packed by [`super::Packed`] (blocks of 4 rows interleaved by 8).
    pub fn matvec_packed(w: &[f32], inp: usize, x: &[f32], y: &mut [f32]) {
        let n = inp / 8;
        assert!(inp.is_multiple_of(8) && w.len() >= y.len().div_ceil(4) * 32 * n);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        if simd() && unsafe { avx::matvec_packed(w, n, x, y) } {
            return;
        }
        for (b, ys) in y.chunks_mut(4).enumerate() {
            let mut acc = [[0.0f32; 8]; 4];
            for i in 0..n {
                let at = (b * n + i) * 32;
                for (r, a) in acc.iter_mut().enumerate() {
                    for k in 0..8 {
                        a[k] += w[at + r * 8 + k] * x[i * 8 + k];
                    }
                }
            }
            for (v, a) in ys.iter_mut().zip(&acc) {
                *v = a.iter().sum();
            }
        }
    }

    /// One head's attention for one query: `out = softmax(scale q.k_j) . v_j` over the
    /// positions `j` of `scores.len()`, where row `j` of `keys` and `values` starts at
    /// `j * stride` and is `q.len()` long.
    pub fn attend(
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        stride: usize,
        scale: f32,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        let hd = q.len();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        if simd() && unsafe { avx::attend(q, keys, values, stride, scale, scores, out) } {
            return;
        }
        let mut max = f32::NEG_INFINITY;
        for (j, s) in scores.iter_mut().enumerate() {
            *s = plain_dot(q, &keys[j * stride..][..hd]) * scale;
            max = max.max(*s);
        }
        let mut sum = 0.0;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        out.fill(0.0);
        for (j, s) in scores.iter().enumerate() {
            let p = s / sum;
            for (o, v) in out.iter_mut().zip(&values[j * stride..][..hd]) {
                *o += p * v;
            }
        }
    }

    /// `a . b` over the shorter length.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        #[cfg(target_arch = "x86_64")]
        if simd() {
            // SAFETY: as above.
            if let Some(d) = unsafe { avx::dot(&a[..n], &b[..n]) } {
                return d;
            }
        }
        plain_dot(&a[..n], &b[..n])
    }

    /// `y += a x`.
    pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        let n = y.len().min(x.len());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        if simd() && unsafe { avx::axpy(&mut y[..n], a, &x[..n]) } {
            return;
        }
        y[..n]
            .iter_mut()
            .zip(&x[..n])
            .for_each(|(y, x)| *y += a * x);
    }

    fn plain_dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in ca.zip(cb) {
            for k in 0..8 {
                acc[k] += x[k] * y[k];
            }
        }
        acc.iter().sum::<f32>() + tail
    }

    #[cfg(target_arch = "x86_64")]
    mod avx {
        //! Whole registers are read through `&[__m256]` (from `align_to`), never through
        //! `_mm256_loadu_ps`: with debug assertions on (our dev profile) that one copies through
        //! the stack with a check on every call, four times slower.
        use std::arch::x86_64::*;

        /// `x` as whole aligned registers, if it is 32-byte aligned and a multiple of 8 long.
        fn lanes(x: &[f32]) -> Option<&[__m256]> {
            // SAFETY: every bit pattern is a valid f32 and __m256.
            let (head, body, tail) = unsafe { x.align_to::<__m256>() };
            (head.is_empty() && tail.is_empty()).then_some(body)
        }

        fn lanes_mut(x: &mut [f32]) -> Option<&mut [__m256]> {
            // SAFETY: as above.
            let (head, body, tail) = unsafe { x.align_to_mut::<__m256>() };
            (head.is_empty() && tail.is_empty()).then_some(body)
        }

        #[target_feature(enable = "avx2,fma")]
        fn hsum(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            _mm_cvtss_f32(s)
        }

        #[target_feature(enable = "avx2,fma")]
        fn dot_lanes(a: &[__m256], b: &[__m256]) -> f32 {
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            let (pa, pb) = (a.chunks_exact(2), b.chunks_exact(2));
            if let (Some(x), Some(y)) = (pa.remainder().first(), pb.remainder().first()) {
                acc1 = _mm256_mul_ps(*x, *y);
            }
            for (x, y) in pa.zip(pb) {
                acc0 = _mm256_fmadd_ps(x[0], y[0], acc0);
                acc1 = _mm256_fmadd_ps(x[1], y[1], acc1);
            }
            hsum(_mm256_add_ps(acc0, acc1))
        }

        /// `a . b` for equal lengths; `None` when not aligned whole registers.
        #[target_feature(enable = "avx2,fma")]
        pub fn dot(a: &[f32], b: &[f32]) -> Option<f32> {
            Some(dot_lanes(lanes(a)?, lanes(b)?))
        }

        /// Four rows at a time, so each register of `x` read serves four rows. `false` when the
        /// buffers are not aligned whole registers (the caller falls back).
        #[target_feature(enable = "avx2,fma")]
        pub fn matvec(w: &[f32], inp: usize, x: &[f32], y: &mut [f32]) -> bool {
            let (Some(w), Some(x)) = (lanes(w), lanes(x)) else {
                return false;
            };
            if !inp.is_multiple_of(8) {
                return false;
            }
            let n = inp / 8;
            let mut rows = w.chunks_exact(4 * n);
            let mut out = y.chunks_exact_mut(4);
            for (block, ys) in (&mut rows).zip(&mut out) {
                let (r0, rest) = block.split_at(n);
                let (r1, rest) = rest.split_at(n);
                let (r2, r3) = rest.split_at(n);
                let mut a0 = _mm256_setzero_ps();
                let mut a1 = _mm256_setzero_ps();
                let mut a2 = _mm256_setzero_ps();
                let mut a3 = _mm256_setzero_ps();
                for i in 0..n {
                    let xv = x[i];
                    a0 = _mm256_fmadd_ps(r0[i], xv, a0);
                    a1 = _mm256_fmadd_ps(r1[i], xv, a1);
                    a2 = _mm256_fmadd_ps(r2[i], xv, a2);
                    a3 = _mm256_fmadd_ps(r3[i], xv, a3);
                }
                ys.copy_from_slice(&[hsum(a0), hsum(a1), hsum(a2), hsum(a3)]);
            }
            let rest = rows.remainder();
            for (o, v) in out.into_remainder().iter_mut().enumerate() {
                *v = dot_lanes(&rest[o * n..][..n], x);
            }
            true
        }

        /// [`super::matvec_packed`]: one sequential stream of weights, prefetched ahead.
        #[target_feature(enable = "avx2,fma")]
        pub fn matvec_packed(w: &[f32], n: usize, x: &[f32], y: &mut [f32]) -> bool {
            let (Some(w), Some(x)) = (lanes(w), lanes(x)) else {
                return false;
            };
            let (quads, _) = w.as_chunks::<4>();
            for (block, ys) in quads.chunks_exact(n).zip(y.chunks_mut(4)) {
                let mut a0 = _mm256_setzero_ps();
                let mut a1 = _mm256_setzero_ps();
                let mut a2 = _mm256_setzero_ps();
                let mut a3 = _mm256_setzero_ps();
                for (q, xv) in block.iter().zip(x) {
                    // 8 quads (1 KiB) ahead.
                    _mm_prefetch::<_MM_HINT_T0>(
                        (q as *const [__m256; 4] as *const i8).wrapping_add(1024),
                    );
                    a0 = _mm256_fmadd_ps(q[0], *xv, a0);
                    a1 = _mm256_fmadd_ps(q[1], *xv, a1);
                    a2 = _mm256_fmadd_ps(q[2], *xv, a2);
                    a3 = _mm256_fmadd_ps(q[3], *xv, a3);
                }
                let s = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
                ys.copy_from_slice(&s[..ys.len()]);
            }
            true
        }

        /// [`super::to_half`]: halves written from the front of `data` (each 8 floats become 16
        /// bytes, never past what was read), and `w` rounded to the same values.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub fn to_half(data: &mut [f32], w: &mut [f32]) {
            let mut wc = w.chunks_exact_mut(8);
            for v in &mut wc {
                // SAFETY: `v` holds 8 floats.
                unsafe {
                    let h =
                        _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(v.as_ptr()));
                    _mm256_storeu_ps(v.as_mut_ptr(), _mm256_cvtph_ps(h));
                }
            }
            for v in wc.into_remainder() {
                let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set1_ps(*v));
                *v = _mm_cvtss_f32(_mm_cvtph_ps(h));
            }
            let p = data.as_mut_ptr();
            for i in 0..data.len() / 8 {
                // SAFETY: reads floats 8i..8i+8, writes bytes 16i..16i+16 (floats 4i..4i+4),
                // which were read already.
                unsafe {
                    let h =
                        _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(p.add(8 * i)));
                    _mm_storeu_si128(p.add(4 * i) as *mut __m128i, h);
                }
            }
        }

        /// [`super::matvec_packed_half`].
        #[target_feature(enable = "avx2,fma,f16c")]
        pub fn matvec_packed_half(w: &[f32], n: usize, x: &[f32], y: &mut [f32]) -> bool {
            let Some(x) = lanes(x) else {
                return false;
            };
            // SAFETY: any bits are a valid __m128i.
            let (head, w, _) = unsafe { w.align_to::<__m128i>() };
            if !head.is_empty() {
                return false;
            }
            let (quads, _) = w.as_chunks::<4>();
            for (block, ys) in quads.chunks_exact(n).zip(y.chunks_mut(4)) {
                let mut a0 = _mm256_setzero_ps();
                let mut a1 = _mm256_setzero_ps();
                let mut a2 = _mm256_setzero_ps();
                let mut a3 = _mm256_setzero_ps();
                for (q, xv) in block.iter().zip(x) {
                    _mm_prefetch::<_MM_HINT_T0>(
                        (q as *const [__m128i; 4] as *const i8).wrapping_add(1024),
                    );
                    a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(q[0]), *xv, a0);
                    a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(q[1]), *xv, a1);
                    a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(q[2]), *xv, a2);
                    a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(q[3]), *xv, a3);
                }
                let s = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
                ys.copy_from_slice(&s[..ys.len()]);
            }
            true
        }

        /// Two products over packed f32 weights.
        #[target_feature(enable = "avx2,fma")]
        pub fn matvec2_packed(
            w: &[f32],
            n: usize,
            x0: &[f32],
            x1: &[f32],
            y0: &mut [f32],
            y1: &mut [f32],
        ) -> bool {
            let (Some(w), Some(x0), Some(x1)) = (lanes(w), lanes(x0), lanes(x1)) else {
                return false;
            };
            let (quads, _) = w.as_chunks::<4>();
            let blocks = quads
                .chunks_exact(n)
                .zip(y0.chunks_mut(4).zip(y1.chunks_mut(4)));
            for (block, (ys0, ys1)) in blocks {
                let mut a = [_mm256_setzero_ps(); 4];
                let mut b = [_mm256_setzero_ps(); 4];
                for (q, (u, v)) in block.iter().zip(x0.iter().zip(x1)) {
                    _mm_prefetch::<_MM_HINT_T0>(
                        (q as *const [__m256; 4] as *const i8).wrapping_add(1024),
                    );
                    for r in 0..4 {
                        a[r] = _mm256_fmadd_ps(q[r], *u, a[r]);
                        b[r] = _mm256_fmadd_ps(q[r], *v, b[r]);
                    }
                }
                let sa = [hsum(a[0]), hsum(a[1]), hsum(a[2]), hsum(a[3])];
                let sb = [hsum(b[0]), hsum(b[1]), hsum(b[2]), hsum(b[3])];
                ys0.copy_from_slice(&sa[..ys0.len()]);
                ys1.copy_from_slice(&sb[..ys1.len()]);
            }
            true
        }

        /// Two products over packed half-float weights.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub fn matvec2_packed_half(
            w: &[f32],
            n: usize,
            x0: &[f32],
            x1: &[f32],
            y0: &mut [f32],
            y1: &mut [f32],
        ) -> bool {
            let (Some(x0), Some(x1)) = (lanes(x0), lanes(x1)) else {
                return false;
            };
            // SAFETY: any bits are a valid __m128i.
            let (head, w, _) = unsafe { w.align_to::<__m128i>() };
            if !head.is_empty() {
                return false;
            }
            let (quads, _) = w.as_chunks::<4>();
            let blocks = quads
                .chunks_exact(n)
                .zip(y0.chunks_mut(4).zip(y1.chunks_mut(4)));
            for (block, (ys0, ys1)) in blocks {
                let mut a = [_mm256_setzero_ps(); 4];
                let mut b = [_mm256_setzero_ps(); 4];
                for (q, (u, v)) in block.iter().zip(x0.iter().zip(x1)) {
                    _mm_prefetch::<_MM_HINT_T0>(
                        (q as *const [__m128i; 4] as *const i8).wrapping_add(1024),
                    );
                    for r in 0..4 {
                        let wr = _mm256_cvtph_ps(q[r]);
                        a[r] = _mm256_fmadd_ps(wr, *u, a[r]);
                        b[r] = _mm256_fmadd_ps(wr, *v, b[r]);
                    }
                }
                let sa = [hsum(a[0]), hsum(a[1]), hsum(a[2]), hsum(a[3])];
                let sb = [hsum(b[0]), hsum(b[1]), hsum(b[2]), hsum(b[3])];
                ys0.copy_from_slice(&sa[..ys0.len()]);
                ys1.copy_from_slice(&sb[..ys1.len()]);
            }
            true
        }

        /// [`super::attend`]; `false` when the rows are not aligned whole registers.
        #[target_feature(enable = "avx2,fma")]
        pub fn attend(
            q: &[f32],
            keys: &[f32],
            values: &[f32],
            stride: usize,
            scale: f32,
            scores: &mut [f32],
            out: &mut [f32],
        ) -> bool {
            if !stride.is_multiple_of(8) {
                return false;
            }
            let (Some(q), Some(keys), Some(values), Some(out)) =
                (lanes(q), lanes(keys), lanes(values), lanes_mut(out))
            else {
                return false;
            };
            let (n, step) = (q.len(), stride / 8);
            let mut max = f32::NEG_INFINITY;
            for (j, s) in scores.iter_mut().enumerate() {
                *s = dot_lanes(q, &keys[j * step..][..n]) * scale;
                max = max.max(*s);
            }
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            out.fill(_mm256_setzero_ps());
            let inv = 1.0 / sum;
            for (j, s) in scores.iter().enumerate() {
                let p = _mm256_set1_ps(s * inv);
                for (o, v) in out.iter_mut().zip(&values[j * step..][..n]) {
                    *o = _mm256_fmadd_ps(p, *v, *o);
                }
            }
            true
        }

        /// `y += a x` for equal lengths; `false` when not aligned whole registers.
        #[target_feature(enable = "avx2,fma")]
        pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) -> bool {
            let (Some(y), Some(x)) = (lanes_mut(y), lanes(x)) else {
                return false;
            };
            let av = _mm256_set1_ps(a);
            for (y, x) in y.iter_mut().zip(x) {
                *y = _mm256_fmadd_ps(av, *x, *y);
            }
            true
        }
    }
}
