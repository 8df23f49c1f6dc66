//! Each fused op against the plain candle ops it replaces, values and gradients, on the shapes of
//! the `small` preset (width 384, 6 heads, context 200; 4 windows a batch to keep tests quick).

use super::*;
use candle_core::{Device, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BATCH: usize = 4;
const TIME: usize = 200;
const WIDTH: usize = 384;
const HEADS: usize = 6;

fn random(shape: &[usize], std: f32, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0) * std).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// The largest difference between two tensors, relative to the largest magnitude in `want`.
fn rel_diff(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims());
    let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
    let scale = want.abs().unwrap().max_all().unwrap();
    diff.to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap().max(1e-12)
}

/// Values of `op` and the gradients of `(op(inputs) * weights).sum()` for each input.
fn run(inputs: &[Var], op: impl Fn(&[Tensor]) -> Tensor) -> (Tensor, Vec<Tensor>) {
    let tensors: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let y = op(&tensors);
    let weights = random(y.dims(), 1.0, 99);
    let loss = (&y * &weights).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let g = tensors
        .iter()
        .map(|t| grads.get(t).unwrap().clone())
        .collect();
    (y, g)
}

/// Asserts that the fused and plain versions agree in value and in every input's gradient.
fn assert_same(
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> Tensor,
    plain: impl Fn(&[Tensor]) -> Tensor,
) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let (yf, gf) = run(&vars, fused);
    let (yp, gp) = run(&vars, plain);
    assert!(
        rel_diff(&yf, &yp) < 1e-5,
        "values differ by {}",
        rel_diff(&yf, &yp)
    );
    for (i, (f, p)) in gf.iter().zip(&gp).enumerate() {
        assert!(
            rel_diff(f, p) < 1e-4,
            "gradient of input {i} differs by {}",
            rel_diff(f, p)
        );
    }
}

#[test]
fn layer_norm_matches_the_plain_one() {
    // A residual stream with an offset and a spread per row, and gains around one.
    let x = (random(&[BATCH, TIME, WIDTH], 2.0, 1) + 0.5).unwrap();
    let w = (random(&[WIDTH], 0.5, 2) + 1.0).unwrap();
    assert_same(
        &[x, w],
        |t| layer_norm(&t[0], &t[1], 1e-5).unwrap(),
        |t| plain::layer_norm(&t[0], &t[1], 1e-5).unwrap(),
    );
}

#[test]
fn causal_attention_matches_the_plain_one() {
    // Scores of a few units, as trained attention has, so the softmax is far from uniform.
    let qkv = random(&[BATCH, TIME, 3 * WIDTH], 1.5, 3);
    assert_same(
        &[qkv],
        |t| causal_attention(&t[0], HEADS).unwrap(),
        |t| plain::causal_attention(&t[0], HEADS).unwrap(),
    );
}

#[test]
fn causal_attention_sees_no_later_position() {
    let qkv = random(&[1, 12, 3 * 16], 1.0, 4);
    let y = causal_attention(&qkv, 2).unwrap();
    // Changing the last position leaves every earlier output alone.
    let last = random(&[1, 1, 3 * 16], 1.0, 5);
    let changed = Tensor::cat(&[&qkv.narrow(1, 0, 11).unwrap(), &last], 1).unwrap();
    let y2 = causal_attention(&changed, 2).unwrap();
    let before = |y: &Tensor| {
        y.narrow(1, 0, 11)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(before(&y), before(&y2));
    assert!(
        causal_attention(&random(&[1, 4, 10], 1.0, 6), 2).is_err(),
        "10 is not 3 x heads x n"
    );
}

#[test]
fn gelu_matches_candles() {
    let x = random(&[BATCH, TIME, 4 * WIDTH], 4.0, 7);
    assert_same(&[x], |t| gelu(&t[0]).unwrap(), |t| t[0].gelu_erf().unwrap());
}

#[test]
fn cross_entropy_matches_candle_nn() {
    let rows = BATCH * TIME;
    let logits = random(&[rows, 219], 6.0, 8);
    let mut rng = StdRng::seed_from_u64(9);
    let t: Vec<u32> = (0..rows).map(|_| rng.random_range(0..219)).collect();
    let targets = Tensor::from_vec(t, rows, &Device::Cpu).unwrap();
    let var = Var::from_tensor(&logits).unwrap();
    let fused = cross_entropy(var.as_tensor(), &targets).unwrap();
    let plain = candle_nn::loss::cross_entropy(var.as_tensor(), &targets).unwrap();
    let (f, p) = (
        fused.to_scalar::<f32>().unwrap(),
        plain.to_scalar::<f32>().unwrap(),
    );
    assert!((f - p).abs() < 1e-5 * p.abs(), "{f} against {p}");
    let gf = (fused * 3.0).unwrap().backward().unwrap();
    let gp = (plain * 3.0).unwrap().backward().unwrap();
    let d = rel_diff(
        gf.get(var.as_tensor()).unwrap(),
        gp.get(var.as_tensor()).unwrap(),
    );
    assert!(d < 1e-5, "gradients differ by {d}");
    let outside = Tensor::new(&[0u32, 219], &Device::Cpu).unwrap();
    let err = cross_entropy(&logits.narrow(0, 0, 2).unwrap(), &outside).unwrap_err();
    assert!(err.to_string().contains("target 219 outside"), "{err}");
}

#[test]
fn linear_matches_a_product_with_the_transposed_weight() {
    // The MLP's down projection: (rows, 4c) x (c, 4c)^T.
    let x = random(&[BATCH * TIME, 4 * WIDTH], 1.0, 10);
    let w = random(&[WIDTH, 4 * WIDTH], 0.02, 11);
    assert_same(
        &[x, w],
        |t| linear(&t[0], &t[1]).unwrap(),
        |t| t[0].matmul(&t[1].t().unwrap()).unwrap(),
    );
    let err = linear(&random(&[3, 4], 1.0, 12), &random(&[5, 6], 1.0, 13)).unwrap_err();
    assert!(err.to_string().contains("3x4 times 6x5"), "{err}");
}

#[test]
fn linear_add_and_linear_gelu_match_a_product_then_the_plain_ops() {
    let x = random(&[BATCH, TIME, WIDTH], 1.0, 11);
    let w = random(&[2 * WIDTH, WIDTH], 0.05, 12);
    let r = random(&[BATCH, TIME, 2 * WIDTH], 1.0, 13);
    let product = |x: &Tensor, w: &Tensor| x.broadcast_matmul(&w.t().unwrap()).unwrap();
    assert_same(
        &[x.clone(), w.clone(), r],
        |t| linear_add(&t[0], &t[1], &t[2]).unwrap(),
        |t| (product(&t[0], &t[1]) + &t[2]).unwrap(),
    );
    assert_same(
        &[x, w],
        |t| linear_gelu(&t[0], &t[1]).unwrap(),
        |t| product(&t[0], &t[1]).gelu_erf().unwrap(),
    );
}

#[test]
fn rotary_matches_the_plain_ops_on_queries_and_keys() {
    let table = std::sync::Arc::new(crate::learn::rotary::Rotary::new(TIME, WIDTH / HEADS));
    let qkv = random(&[BATCH, TIME, 3 * WIDTH], 1.0, 14);
    let (cos, sin) = table.tables(0, TIME, &Device::Cpu).unwrap();
    // The plain version: split into heads, turn the queries and keys, merge back.
    let plain = |qkv: &Tensor| {
        let parts: Vec<Tensor> = (0..3)
            .map(|i| {
                let part = qkv
                    .narrow(2, i * WIDTH, WIDTH)
                    .unwrap()
                    .reshape((BATCH, TIME, HEADS, WIDTH / HEADS))
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap()
                    .contiguous()
                    .unwrap();
                let part = match i {
                    2 => part,
                    _ => crate::learn::rotary::rotate_plain(&part, &cos, &sin).unwrap(),
                };
                part.transpose(1, 2)
                    .unwrap()
                    .reshape((BATCH, TIME, WIDTH))
                    .unwrap()
            })
            .collect();
        Tensor::cat(&parts, 2).unwrap()
    };
    assert_same(
        &[qkv],
        |t| rotary(&t[0], &table, HEADS).unwrap(),
        |t| plain(&t[0]),
    );
    let err = rotary(&random(&[1, TIME + 1, 3 * WIDTH], 1.0, 15), &table, HEADS).unwrap_err();
    assert!(err.to_string().contains("table holds"), "{err}");
}
