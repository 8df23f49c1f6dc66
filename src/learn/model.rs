//! The model: a GPT-2 style decoder as in nanoGPT, on candle, that reads token ids and predicts
//! the next word.
//!
//! Token embeddings (plus learned absolute positions, or rotary ones inside attention: see
//! [`Positions`]), `layers` pre-LayerNorm blocks (causal multi-head
//! self-attention, then a 4x GELU MLP, each added to the residual stream), a final LayerNorm and a
//! head tied to the token embedding. Parameters are named as in nanoGPT (`transformer.wte`,
//! `transformer.h.0.attn.c_attn.weight`, ...), so a `model.safetensors` maps one to one onto the
//! PyTorch model.
//!
//! Everything is written from differentiable primitives on purpose: candle-nn 0.11's fused
//! `LayerNorm`, `softmax_last_dim`, `layer_norm` and `sdpa` have no backward pass, so a model
//! built on them silently trains nothing but its head. On the CPU in f32, training and evaluation
//! run LayerNorm, attention, GELU and the loss as [`crate::learn::fused`]'s kernels instead,
//! which have their own backward and give the same values and gradients. Initial weights and dropout masks come from
//! a seeded `rand` generator (candle's CPU generator cannot be seeded), so runs are reproducible.
//! Every tensor lives on the [`Device`] passed in. The matrix products may run in a narrower
//! float type ([`Gpt::set_matmul_dtype`], bf16 on a GPU) while the weights, LayerNorms and
//! softmaxes stay f32, as PyTorch's autocast does.

use crate::learn::fused;
use crate::learn::rotary::{rotate_plain, Rotary};
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// How the model knows where a word stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// A learned vector per absolute position, added to the word's (GPT-2's): the model knows
    /// only the positions it was trained at.
    #[default]
    Learned,
    /// Each head's queries and keys turned by their position ([`crate::learn::rotary`]):
    /// attention sees how far apart two words are, wherever they stand.
    Rotary,
}

/// The shape of a model. Serialised as JSON in every checkpoint's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GptConfig {
    /// Number of transformer blocks.
    pub layers: usize,
    /// Attention heads per block; `width` must be a multiple.
    pub heads: usize,
    /// Width of the residual stream (embedding size).
    pub width: usize,
    /// Longest sequence the model reads.
    pub context: usize,
    /// Number of words in the vocabulary.
    pub vocab: usize,
    /// Dropout probability during training (0 turns it off).
    pub dropout: f64,
    /// Biases in the linear layers and LayerNorms (nanoGPT's `bias`); off by default.
    #[serde(default)]
    pub bias: bool,
    /// Learned absolute positions (every checkpoint before rotary ones) or rotary.
    #[serde(default)]
    pub positions: Positions,
}

/// The learned position table's name (nanoGPT's), where a model has one.
pub const POSITION_TABLE: &str = "transformer.wpe.weight";
/// The token embedding's name (nanoGPT's): one row a word, also the output head.
pub const TOKEN_TABLE: &str = "transformer.wte.weight";

/// The named model sizes.
pub const PRESETS: [&str; 2] = ["small", "base"];

impl GptConfig {
    /// A named preset: `small` = 3 layers, 6 heads, 384 wide (the seed's 5.6M model); `base` = 4
    /// layers, 8 heads, 512 wide (the seed's 13M model). Context 200, no dropout.
    pub fn preset(name: &str, vocab: usize) -> Result<GptConfig> {
        let (layers, heads, width) = match name {
            "small" => (3, 6, 384),
            "base" => (4, 8, 512),
            other => bail!("unknown preset '{other}' (expected small or base)"),
        };
        Ok(GptConfig {
            layers,
            heads,
            width,
            context: 200,
            vocab,
            dropout: 0.0,
            bias: false,
            positions: Positions::Learned,
        })
    }

    /// Checks that the shape makes sense.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.layers > 0 && self.heads > 0 && self.width > 0,
            "the model needs at least one layer, one head and width > 0"
        );
        ensure!(
            self.width.is_multiple_of(self.heads),
            "width {} is not a multiple of heads {}",
            self.width,
            self.heads
        );
        ensure!(self.context > 0, "context must be at least 1");
        ensure!(
            self.positions == Positions::Learned || (self.width / self.heads).is_multiple_of(2),
            "rotary positions need an even head width, not {}",
            self.width / self.heads
        );
        ensure!(self.vocab > 0, "vocabulary is empty");
        ensure!(
            (0.0..1.0).contains(&self.dropout),
            "dropout {} is not in [0, 1)",
            self.dropout
        );
        Ok(())
    }

    /// Every tensor this shape asks for is in `tensors` with its shape, and there is no other:
    /// the one check of a model's weights, whoever builds from them.
    pub fn check_weights(&self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        self.validate()?;
        let expected = self.weight_shapes();
        for (name, shape) in &expected {
            let t = tensors
                .get(name)
                .with_context(|| format!("the weights lack {name}"))?;
            ensure!(
                t.dims() == shape.as_slice(),
                "{name} has shape {:?}, the model shape asks for {shape:?}",
                t.dims()
            );
        }
        let extra = tensors
            .keys()
            .filter(|k| !expected.iter().any(|(n, _)| n == *k))
            .min();
        if let Some(extra) = extra {
            bail!("the weights hold {extra}, which the model shape has no place for");
        }
        Ok(())
    }

    /// Every tensor of a model of this shape with its shape, named as nanoGPT's, in the order
    /// [`Gpt::params`] lists them (the head is tied to `transformer.wte`): the one table the
    /// model's builder, the CPU decoder's check and the tests read.
    pub fn weight_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let c = self.width;
        let mut out = vec![(TOKEN_TABLE.to_string(), vec![self.vocab, c])];
        if self.positions == Positions::Learned {
            out.push((POSITION_TABLE.to_string(), vec![self.context, c]));
        }
        let mut add = |name: String, shape: Vec<usize>| {
            out.push((format!("{name}.weight"), shape.clone()));
            if self.bias {
                out.push((format!("{name}.bias"), vec![shape[0]]));
            }
        };
        for i in 0..self.layers {
            let p = format!("transformer.h.{i}");
            add(format!("{p}.ln_1"), vec![c]);
            add(format!("{p}.attn.c_attn"), vec![3 * c, c]);
            add(format!("{p}.attn.c_proj"), vec![c, c]);
            add(format!("{p}.ln_2"), vec![c]);
            add(format!("{p}.mlp.c_fc"), vec![4 * c, c]);
            add(format!("{p}.mlp.c_proj"), vec![c, 4 * c]);
        }
        add("transformer.ln_f".to_string(), vec![c]);
        out
    }
}

/// Draws initial weights from a seeded generator, or takes them from loaded tensors by name.
enum Source<'a> {
    Init(Box<StdRng>),
    Load(&'a HashMap<String, Tensor>),
}

/// How a fresh parameter starts.
#[derive(Clone, Copy)]
enum Init {
    Normal(f64),
    Ones,
    Zeros,
}

/// Builds the parameters in order, naming each like nanoGPT (a small `VarBuilder`).
struct Builder<'a> {
    source: Source<'a>,
    device: Device,
    /// Float type every parameter is stored in.
    dtype: DType,
    params: Vec<(String, Var)>,
}

impl Builder<'_> {
    fn var(&mut self, name: String, shape: &[usize], init: Init) -> Result<Tensor> {
        let tensor = match &mut self.source {
            Source::Init(rng) => {
                let n: usize = shape.iter().product();
                let values: Vec<f32> = match init {
                    Init::Normal(std) => (0..n).map(|_| (normal(rng) * std) as f32).collect(),
                    Init::Ones => vec![1.0; n],
                    Init::Zeros => vec![0.0; n],
                };
                Tensor::from_vec(values, shape, &self.device)?.to_dtype(self.dtype)?
            }
            Source::Load(tensors) => {
                // Names and shapes were checked by `check_weights`.
                let t = tensors
                    .get(&name)
                    .with_context(|| format!("the weights lack {name}"))?;
                t.to_dtype(self.dtype)?.to_device(&self.device)?
            }
        };
        let var = Var::from_tensor(&tensor)?;
        let t = var.as_tensor().clone();
        self.params.push((name, var));
        Ok(t)
    }

    fn linear(
        &mut self,
        name: &str,
        inp: usize,
        out: usize,
        std: f64,
        bias: bool,
    ) -> Result<Linear> {
        let weight = self.var(format!("{name}.weight"), &[out, inp], Init::Normal(std))?;
        let bias = match bias {
            true => Some(self.var(format!("{name}.bias"), &[out], Init::Zeros)?),
            false => None,
        };
        Ok(Linear { weight, bias })
    }

    fn layer_norm(&mut self, name: &str, width: usize, bias: bool) -> Result<LayerNorm> {
        let weight = self.var(format!("{name}.weight"), &[width], Init::Ones)?;
        let bias = match bias {
            true => Some(self.var(format!("{name}.bias"), &[width], Init::Zeros)?),
            false => None,
        };
        let shift = match &bias {
            Some(b) => b.clone(),
            None => Tensor::zeros(width, self.dtype, &self.device)?,
        };
        Ok(LayerNorm {
            weight,
            bias,
            shift,
        })
    }
}

/// A standard normal draw (Box-Muller), so no extra crate is needed.
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]: ln stays finite
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `a b^T` with both operands cast to `dtype` and the product back in `a`'s type. The casts
/// are no-ops where the types agree and differentiable otherwise, so gradients reach the f32
/// weights.
fn matmul_t(a: &Tensor, b: &Tensor, dtype: DType) -> Result<Tensor> {
    let product = a.to_dtype(dtype)?.matmul(&b.to_dtype(dtype)?.t()?)?;
    Ok(product.to_dtype(a.dtype())?)
}

/// `a b` as [`matmul_t`].
fn matmul(a: &Tensor, b: &Tensor, dtype: DType) -> Result<Tensor> {
    let product = a.to_dtype(dtype)?.matmul(&b.to_dtype(dtype)?)?;
    Ok(product.to_dtype(a.dtype())?)
}

/// What every layer of one forward pass shares.
struct Pass<'a> {
    /// (context, context) additive causal mask.
    mask: &'a Tensor,
    /// Rotary positions: the table, and its cosines and sines as `(context, half)` tensors.
    rotary: Option<&'a RotaryTables>,
    /// Absolute position of the first word fed.
    start: usize,
    dropout: f64,
    matmul_dtype: DType,
    /// Which kernels the pass runs, chosen once.
    kernels: Kernels,
}

/// The kernels of one forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernels {
    /// candle's primitives, every one with a backward pass: training off the CPU.
    Plain,
    /// candle-nn's fused LayerNorm, softmax and rope, which have no backward: generation with a
    /// cache, where a word costs a few dozen small kernels on a GPU and each one saved counts.
    Generation,
    /// [`crate::learn::fused`]'s kernels with their own backward: f32 on the CPU, no cache.
    Cpu,
}

impl Pass<'_> {
    /// Whether this pass runs the fused CPU kernels, which draw no dropout: where they are on and
    /// either the model has none or no generator draws it.
    fn fused_kernels(&self, dropout_drawn: bool) -> bool {
        self.kernels == Kernels::Cpu && (self.dropout == 0.0 || !dropout_drawn)
    }
}

/// `x W^T (+ b)` over the last dimension.
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let y = match pass.kernels == Kernels::Cpu {
            true => fused::linear(x, &self.weight)?,
            false => {
                let (out, inp) = self.weight.dims2()?;
                let mut dims = x.dims().to_vec();
                let x = x.reshape((x.elem_count() / inp, inp))?;
                *dims.last_mut().context("linear of a scalar")? = out;
                matmul_t(&x, &self.weight, pass.matmul_dtype)?.reshape(dims)?
            }
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// LayerNorm over the last dimension, from primitives (candle-nn's fast path has no backward),
/// or fused where no gradient is wanted.
struct LayerNorm {
    weight: Tensor,
    bias: Option<Tensor>,
    /// The bias, or zeros: the fused op always takes one.
    shift: Tensor,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        if pass.kernels == Kernels::Cpu {
            let y = fused::layer_norm(x, &self.weight, 1e-5)?;
            return Ok(match &self.bias {
                Some(b) => y.broadcast_add(b)?,
                None => y,
            });
        }
        if pass.kernels == Kernels::Generation {
            return Ok(candle_nn::ops::layer_norm(
                &x.contiguous()?,
                &self.weight,
                &self.shift,
                1e-5,
            )?);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        // Multiplying by the reciprocal makes a lighter backward pass than dividing.
        let normed = centred.broadcast_mul(&(var + 1e-5)?.sqrt()?.recip()?)?;
        let y = normed.broadcast_mul(&self.weight)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// Softmax over the last dimension, from primitives (candle-nn's `softmax_last_dim` has no
/// backward). The max is only for numerical range, so it carries no gradient.
fn softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_mul(&e.sum_keepdim(D::Minus1)?.recip()?)?)
}

/// Inverted dropout with a mask from our seeded generator; the identity outside training.
fn dropout(x: &Tensor, p: f64, rng: Option<&mut StdRng>) -> Result<Tensor> {
    let Some(rng) = rng else { return Ok(x.clone()) };
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let keep = (1.0 / (1.0 - p)) as f32;
    if !x.device().is_cpu() {
        // A GPU draws the mask itself: uploading one the size of the activations would cost
        // more than the layer. Its generator is seeded per training step (see `train`).
        let kept = Tensor::rand(0f32, 1f32, x.shape(), x.device())?.ge(p)?;
        return Ok(x.mul(&(kept.to_dtype(x.dtype())? * keep as f64)?)?);
    }
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect();
    Ok(x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)?)
}

/// Keys and values of the positions seen so far, per layer, for generation one word at a time.
///
/// Holds at most `context` positions: check [`KvCache::remaining`] before a call, and when it is
/// full, [`KvCache::reset`] it and feed the last words again (e.g. the last `context / 2`).
#[derive(Clone, Debug)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    context: usize,
}

impl KvCache {
    /// An empty cache for a model of this shape.
    pub fn new(config: &GptConfig) -> KvCache {
        KvCache {
            layers: vec![None; config.layers],
            len: 0,
            context: config.context,
        }
    }

    /// Positions held (the position the next word gets).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many more positions fit before the context is full.
    pub fn remaining(&self) -> usize {
        self.context - self.len
    }

    /// Forgets everything, to start a new sequence (or rebuild from a shorter window).
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.len = 0;
    }
}

struct Attention {
    c_attn: Linear,
    c_proj: Linear,
    heads: usize,
}

impl Attention {
    /// `x` is (batch, time, width) at absolute positions `pass.start..pass.start + time`;
    /// `cache` holds the earlier keys and values.
    fn forward(
        &self,
        x: &Tensor,
        pass: &Pass,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
        mut rng: Option<&mut StdRng>,
    ) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let hd = c / self.heads;
        let dtype = pass.matmul_dtype;
        let qkv = self.c_attn.forward(x, pass)?;
        // The fused kernel has no dropout on the attention weights.
        if pass.fused_kernels(rng.is_some()) {
            let y = fused::causal_attention(&turn_fused(qkv, pass, self.heads)?, self.heads)?;
            return dropout(&self.c_proj.forward(&y, pass)?, pass.dropout, rng);
        }
        let split = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(2, i * c, c)?
                .reshape((b, t, self.heads, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (mut q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some(r) = pass.rotary {
            let cos = r.cos.narrow(0, pass.start, t)?;
            let sin = r.sin.narrow(0, pass.start, t)?;
            let turn = |x: &Tensor| match pass.kernels == Kernels::Generation {
                true => candle_nn::rotary_emb::rope(x, &cos, &sin),
                false => rotate_plain(x, &cos, &sin),
            };
            (q, k) = (turn(&q)?, turn(&k)?);
        }
        if let Some(cache) = cache {
            if let Some((k0, v0)) = cache.as_ref() {
                k = Tensor::cat(&[k0, &k], 2)?;
                v = Tensor::cat(&[v0, &v], 2)?;
            }
            *cache = Some((k.clone(), v.clone()));
        }
        let tk = k.dim(2)?;
        let att = (matmul_t(&q, &k, dtype)? * (1.0 / (hd as f64).sqrt()))?;
        // One new word sees every key: its mask row is all zeros, so skip the add (a kernel a
        // layer for each generated word on a GPU).
        let att = match t {
            1 => att,
            _ => att.broadcast_add(&pass.mask.narrow(0, pass.start, t)?.narrow(1, 0, tk)?)?,
        };
        let att = dropout(
            &match pass.kernels == Kernels::Generation {
                true => candle_nn::ops::softmax_last_dim(&att)?,
                false => softmax(&att)?,
            },
            pass.dropout,
            rng.as_deref_mut(),
        )?;
        let y = matmul(&att, &v, dtype)?
            .transpose(1, 2)?
            .reshape((b, t, c))?;
        dropout(&self.c_proj.forward(&y, pass)?, pass.dropout, rng)
    }
}

/// The fused q/k/v projection with rotary positions applied, where the model has them (the
/// fused kernels run without a cache, so from position 0).
fn turn_fused(qkv: Tensor, pass: &Pass, heads: usize) -> Result<Tensor> {
    Ok(match pass.rotary {
        Some(r) => fused::rotary(&qkv, &r.table, heads)?,
        None => qkv,
    })
}

/// Rotary positions in the forms the paths want: the table for the fused CPU op, its cosines
/// and sines on the model's device and in its float type for the others.
struct RotaryTables {
    table: Arc<Rotary>,
    cos: Tensor,
    sin: Tensor,
}

struct Block {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
}

impl Block {
    fn new(cfg: &GptConfig, vb: &mut Builder, prefix: &str) -> Result<Block> {
        let (c, bias) = (cfg.width, cfg.bias);
        // nanoGPT: residual projections get std 0.02 / sqrt(2 * layers), so the residual stream's
        // variance does not grow with depth.
        let proj_std = 0.02 / (2.0 * cfg.layers as f64).sqrt();
        Ok(Block {
            ln_1: vb.layer_norm(&format!("{prefix}.ln_1"), c, bias)?,
            attn: Attention {
                c_attn: vb.linear(&format!("{prefix}.attn.c_attn"), c, 3 * c, 0.02, bias)?,
                c_proj: vb.linear(&format!("{prefix}.attn.c_proj"), c, c, proj_std, bias)?,
                heads: cfg.heads,
            },
            ln_2: vb.layer_norm(&format!("{prefix}.ln_2"), c, bias)?,
            c_fc: vb.linear(&format!("{prefix}.mlp.c_fc"), c, 4 * c, 0.02, bias)?,
            mlp_proj: vb.linear(&format!("{prefix}.mlp.c_proj"), 4 * c, c, proj_std, bias)?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        pass: &Pass,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
        mut rng: Option<&mut StdRng>,
    ) -> Result<Tensor> {
        if let Some(weights) = self.fused_weights(pass, rng.is_some()) {
            return self.forward_fused(x, pass, weights);
        }
        let a = self.attn.forward(
            &self.ln_1.forward(x, pass)?,
            pass,
            cache,
            rng.as_deref_mut(),
        )?;
        let x = (x + a)?;
        let h = self.c_fc.forward(&self.ln_2.forward(&x, pass)?, pass)?;
        let h = match pass.kernels == Kernels::Cpu {
            true => fused::gelu(&h)?,
            false => h.gelu_erf()?,
        };
        let m = dropout(&self.mlp_proj.forward(&h, pass)?, pass.dropout, rng)?;
        Ok((x + m)?)
    }

    /// The weights of `c_attn`, `c_proj`, `c_fc` and `mlp_proj` where the pass runs the fused
    /// CPU kernels, without dropout (or without its generator) and without biases.
    fn fused_weights(&self, pass: &Pass, dropout_drawn: bool) -> Option<[&Tensor; 4]> {
        let linears = [
            &self.attn.c_attn,
            &self.attn.c_proj,
            &self.c_fc,
            &self.mlp_proj,
        ];
        let fused = pass.fused_kernels(dropout_drawn) && linears.iter().all(|l| l.bias.is_none());
        fused.then(|| linears.map(|l| &l.weight))
    }

    /// The block in the fused CPU kernels: the residual adds ride in the output projections'
    /// products and GELU in the first MLP product, so neither is a node of its own.
    fn forward_fused(&self, x: &Tensor, pass: &Pass, w: [&Tensor; 4]) -> Result<Tensor> {
        let qkv = fused::linear(&self.ln_1.forward(x, pass)?, w[0])?;
        let qkv = turn_fused(qkv, pass, self.attn.heads)?;
        let y = fused::causal_attention(&qkv, self.attn.heads)?;
        let x = fused::linear_add(&y, w[1], x)?;
        let h = fused::linear_gelu(&self.ln_2.forward(&x, pass)?, w[2])?;
        Ok(fused::linear_add(&h, w[3], &x)?)
    }
}

/// The GPT. Cheap to share by reference; parameters are [`Var`]s that training updates in place.
///
/// Generation, one word at a time with a key/value cache:
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// use candle_core::{Device, Tensor};
/// use nanotune::learn::{checkpoint::Checkpoint, model::KvCache};
/// use nanotune::music::words::Vocab;
/// let device = Device::Cpu;
/// let ckpt = Checkpoint::load("checkpoints/small".as_ref(), &device)?;
/// let model = &ckpt.model;
/// let mut cache = KvCache::new(model.config());
/// let prompt = Tensor::new(&[[Vocab::START as u32]], &device)?; // (batch 1, 1 word)
/// let mut logits = model.forward_cached(&prompt, &mut cache)?; // (1, vocab)
/// for _ in 0..10 {
///     let next = logits.argmax(1)?.unsqueeze(1)?; // or sample
///     if cache.remaining() == 0 {
///         cache.reset(); // then feed the last words again, up to context - 1
///     }
///     logits = model.forward_cached(&next, &mut cache)?;
/// }
/// # Ok(())
/// # }
/// ```
pub struct Gpt {
    config: GptConfig,
    params: Vec<(String, Var)>,
    wte: Tensor,
    /// The learned positions, where the model has them.
    wpe: Option<Tensor>,
    rotary: Option<RotaryTables>,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    /// (context, context): 0 where a query may see a key, -inf above the diagonal.
    mask: Tensor,
    device: Device,
    /// Float type of the matrix products (F32 unless set).
    matmul_dtype: DType,
    /// Whether training and evaluation on the CPU may use [`crate::learn::fused`] (on unless set).
    cpu_kernels: bool,
}

impl Gpt {
    /// A fresh model, initialised as nanoGPT (normal std 0.02, residual projections scaled by
    /// 1/sqrt(2 * layers), LayerNorm gains 1) from a generator seeded with `seed`.
    pub fn new(config: &GptConfig, seed: u64, device: &Device) -> Result<Gpt> {
        Self::build(
            config,
            Source::Init(Box::new(StdRng::seed_from_u64(seed))),
            device,
            DType::F32,
        )
    }

    /// A model from named tensors (as read from `model.safetensors`); every parameter must be
    /// there with the shape the config asks for.
    pub fn from_tensors(
        config: &GptConfig,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Gpt> {
        config.check_weights(tensors)?;
        Self::build(config, Source::Load(tensors), device, DType::F32)
    }

    fn build(config: &GptConfig, source: Source, device: &Device, dtype: DType) -> Result<Gpt> {
        config.validate()?;
        let mut vb = Builder {
            source,
            device: device.clone(),
            dtype,
            params: Vec::new(),
        };
        let c = config.width;
        let wte = vb.var(TOKEN_TABLE.into(), &[config.vocab, c], Init::Normal(0.02))?;
        let wpe = match config.positions {
            Positions::Learned => Some(vb.var(
                POSITION_TABLE.into(),
                &[config.context, c],
                Init::Normal(0.02),
            )?),
            Positions::Rotary => None,
        };
        let rotary = match config.positions {
            Positions::Learned => None,
            Positions::Rotary => {
                let table = Rotary::new(config.context, c / config.heads);
                let (cos, sin) = table.tables(0, config.context, device)?;
                Some(RotaryTables {
                    table: Arc::new(table),
                    cos: cos.to_dtype(dtype)?,
                    sin: sin.to_dtype(dtype)?,
                })
            }
        };
        let blocks = (0..config.layers)
            .map(|i| Block::new(config, &mut vb, &format!("transformer.h.{i}")))
            .collect::<Result<Vec<_>>>()?;
        let ln_f = vb.layer_norm("transformer.ln_f", c, config.bias)?;
        let n = config.context;
        let mask: Vec<f32> = (0..n * n)
            .map(|i| {
                if i % n > i / n {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        Ok(Gpt {
            config: config.clone(),
            params: vb.params,
            wte,
            wpe,
            rotary,
            blocks,
            ln_f,
            mask: Tensor::from_vec(mask, (n, n), device)?.to_dtype(dtype)?,
            device: device.clone(),
            matmul_dtype: dtype,
            cpu_kernels: true,
        })
    }

    /// A copy for generation with every weight, and so every activation, in `dtype`; logits still
    /// come back f32. On a GPU, bf16 weights halve the bytes a word reads and drop the two casts
    /// around each matrix product: batch-1 generation is bound by kernel launches and memory
    /// there, not by arithmetic. Not for training: the weights would learn in bf16.
    pub fn to_dtype(&self, dtype: DType) -> Result<Gpt> {
        Self::build(
            &self.config,
            Source::Load(&self.tensors()),
            &self.device,
            dtype,
        )
    }

    /// Float type of the weights (F32 unless made by [`Gpt::to_dtype`]).
    pub fn dtype(&self) -> DType {
        self.wte.dtype()
    }

    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the matrix products in `dtype` (e.g. BF16 on a GPU); weights and gradients stay f32.
    pub fn set_matmul_dtype(&mut self, dtype: DType) {
        self.matmul_dtype = dtype;
    }

    pub fn matmul_dtype(&self) -> DType {
        self.matmul_dtype
    }

    /// Turns the fused CPU kernels off (or on again): the plain ops give the same losses and
    /// gradients, more slowly; for comparing the two.
    pub fn set_cpu_kernels(&mut self, on: bool) {
        self.cpu_kernels = on;
    }

    /// Whether a pass without a cache runs the fused CPU kernels: where they are on, the model
    /// is on the CPU, and weights and products are f32.
    fn uses_cpu_kernels(&self) -> bool {
        let f32 = self.dtype() == DType::F32 && self.matmul_dtype == DType::F32;
        self.cpu_kernels && self.device.is_cpu() && f32
    }

    /// Every parameter with its nanoGPT name, in a fixed order (the head shares `transformer.wte`).
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Number of scalars in the parameters (the tied head counted once).
    pub fn num_params(&self) -> usize {
        self.params.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The parameters by name, for saving.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.params
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Logits `(batch, time, vocab)` for token ids `(batch, time)` (u32, time <= context), without
    /// dropout: for evaluation. Position `i`'s logits predict word `i + 1`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.run(ids, 0, None, None)
    }

    /// Mean cross-entropy (nats/word) of `targets` `(batch, time)` given `ids` `(batch, time)`;
    /// dropout on when `rng` is given.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor, rng: Option<&mut StdRng>) -> Result<Tensor> {
        let logits = self.run(ids, 0, None, rng)?;
        let (b, t, v) = logits.dims3()?;
        let (logits, targets) = (logits.reshape((b * t, v))?, targets.reshape(b * t)?);
        Ok(match self.uses_cpu_kernels() {
            true => fused::cross_entropy(&logits, &targets)?,
            false => candle_nn::loss::cross_entropy(&logits, &targets)?,
        })
    }

    /// Feeds `ids` `(batch, new)` at the positions after those already in `cache`, appends their
    /// keys and values to it, and returns the logits `(batch, vocab)` of the last new position:
    /// the distribution of the next word. Feed a whole prompt once, then one word at a time; the
    /// result equals [`Gpt::forward`] over the whole sequence. Fails when the new words do not fit
    /// the context (see [`KvCache::remaining`]). For generation: LayerNorm and softmax run
    /// fused, without a backward pass.
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        ensure!(
            cache.layers.len() == self.blocks.len() && cache.context == self.config.context,
            "the cache was made for another model shape"
        );
        ensure!(
            t <= cache.remaining(),
            "{t} new words do not fit: the cache holds {} of {} positions (reset it and feed the last words again)",
            cache.len,
            cache.context
        );
        let start = cache.len;
        let logits = self.run(ids, start, Some(cache), None)?;
        cache.len = start + t;
        Ok(logits.narrow(1, t - 1, 1)?.squeeze(1)?)
    }

    fn run(
        &self,
        ids: &Tensor,
        start: usize,
        mut cache: Option<&mut KvCache>,
        mut rng: Option<&mut StdRng>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        ensure!(t > 0, "no words to read");
        ensure!(
            start + t <= self.config.context,
            "{} positions exceed the model's context of {}",
            start + t,
            self.config.context
        );
        let c = self.config.width;
        let pass = Pass {
            mask: &self.mask,
            rotary: self.rotary.as_ref(),
            start,
            dropout: self.config.dropout,
            matmul_dtype: self.matmul_dtype,
            kernels: match (cache.is_some(), self.uses_cpu_kernels()) {
                (true, _) => Kernels::Generation,
                (false, true) => Kernels::Cpu,
                (false, false) => Kernels::Plain,
            },
        };
        let tok = self
            .wte
            .embedding(&ids.flatten_all()?)?
            .reshape((b, t, c))?;
        let x = match &self.wpe {
            Some(wpe) => tok.broadcast_add(&wpe.narrow(0, start, t)?)?,
            None => tok,
        };
        let mut x = dropout(&x, pass.dropout, rng.as_deref_mut())?;
        for (i, block) in self.blocks.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(&x, &pass, layer_cache, rng.as_deref_mut())?;
        }
        let x = self.ln_f.forward(&x, &pass)?;
        // The head is tied to the token embedding (nanoGPT's weight tying).
        let x = x.reshape((b * t, c))?;
        let logits = match pass.kernels == Kernels::Cpu {
            true => fused::linear(&x, &self.wte)?,
            false => matmul_t(&x, &self.wte, self.matmul_dtype)?,
        };
        Ok(logits
            .to_dtype(DType::F32)?
            .reshape((b, t, self.config.vocab))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_seed_sizes() {
        let count = |name| {
            let cfg = GptConfig::preset(name, 219).unwrap();
            Gpt::new(&cfg, 0, &Device::Cpu).unwrap().num_params()
        };
        // Within a few percent of the seed's 5.63M and 13M (its vocabulary differed slightly).
        let small = count("small");
        let base = count("base");
        assert!((5_400_000..5_800_000).contains(&small), "{small}");
        assert!((12_500_000..13_400_000).contains(&base), "{base}");
        assert!(GptConfig::preset("huge", 219).is_err());
    }

    #[test]
    fn init_is_seeded() {
        let cfg = GptConfig {
            layers: 1,
            heads: 2,
            width: 8,
            context: 4,
            vocab: 11,
            dropout: 0.0,
            bias: false,
            positions: Positions::Learned,
        };
        let a = Gpt::new(&cfg, 7, &Device::Cpu).unwrap();
        let b = Gpt::new(&cfg, 7, &Device::Cpu).unwrap();
        let c = Gpt::new(&cfg, 8, &Device::Cpu).unwrap();
        let w = |g: &Gpt| g.wte.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(w(&a), w(&b));
        assert_ne!(w(&a), w(&c));
    }
}
