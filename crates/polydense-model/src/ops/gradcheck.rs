//! Finite-difference gradient checks shared by the op and model tests (f64 on CPU).

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};

/// A reproducible tensor of normal-ish values in f64.
pub(crate) fn randn(shape: &[usize], seed: u64, scale: f64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| (rng.random::<f64>() * 2.0 - 1.0) * scale)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Checks d(sum(f(inputs) * w))/d(input) against central differences for every input entry.
///
/// `f` must be a pure function of the variables; the weights `w` make every output entry
/// matter with a different sign, so a wrong reduction in a backward pass cannot cancel out.
pub(crate) fn check<F>(inputs: &[Tensor], f: F, tol: f64)
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts).unwrap();
    assert_eq!(out.dtype(), DType::F64);
    let w = randn(out.dims(), 99, 1.0);
    let loss = (out * &w).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let eps = 1e-6;
    for (i, v) in vars.iter().enumerate() {
        let analytic: Vec<f64> = grads
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("input {i} got no gradient"))
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f64> = inputs[i].flatten_all().unwrap().to_vec1().unwrap();
        for (j, &a) in analytic.iter().enumerate() {
            let eval = |delta: f64| -> f64 {
                let mut x = base.clone();
                x[j] += delta;
                let mut args: Vec<Tensor> = inputs.to_vec();
                args[i] = Tensor::from_vec(x, inputs[i].dims(), &Device::Cpu).unwrap();
                let o = f(&args).unwrap();
                (o * &w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            let err = (numeric - a).abs() / (1.0 + numeric.abs());
            assert!(
                err < tol,
                "input {i} entry {j}: analytic {a} vs numeric {numeric} (rel err {err:e})"
            );
        }
    }
}

/// The largest absolute difference between two tensors of the same shape, in f64.
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}
