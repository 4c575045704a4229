//! The CPU backend's vectorised `exp`, `sigmoid` and `tanh` against f64 on
//! [-30, 30] (and beyond), and `log` from subnormals to 3e38, through a one-op scan
//! so the compiled code is what runs: on every ISA this CPU has, the kernels'
//! versions (`rnnc-kernels`) and the generated f32x4 code (`portable`), which
//! must agree bit for bit.
//! Widths 1000 (all f32x4 lanes) and 1003 (the scalar tail too). The bounds are the
//! measured maxima rounded up; saturation must be exact and NaN must propagate.

use ndarray::{ArrayD, IxDyn};
use rnnc_interp::{Tensor, Weights};
use std::collections::HashMap;

/// `op` of each of `xs`, the same on every ISA.
fn probe(op: &str, xs: &[f32]) -> Vec<f32> {
    let all: Vec<(rnnc_backend_cpu::Isa, Vec<f32>)> = rnnc_backend_cpu::Isa::available()
        .into_iter()
        .map(|isa| (isa, probe_on(isa, op, xs)))
        .collect();
    let (first, want) = &all[0];
    for (isa, got) in &all[1..] {
        for (i, (a, b)) in want.iter().zip(got).enumerate() {
            let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(same, "{op}({}): {first} gives {a}, {isa} {b}", xs[i]);
        }
    }
    want.clone()
}

fn probe_on(isa: rnnc_backend_cpu::Isa, op: &str, xs: &[f32]) -> Vec<f32> {
    let w = xs.len();
    let text = format!(
        "graph Probe {{
  %0 = input name=\"x\" zeros=false : f32[B, T, {w}]
  %1 = input name=\"h\" zeros=true : f32[B, {w}]
  %2, %3 = scan reverse=false seqs=1 states=1 %0, %1 : f32[B, T, {w}], f32[B, {w}] {{
    %4 = seq index=0 : f32[B, {w}]
    %5 = state index=0 : f32[B, {w}]
    %6 = {op} %4 : f32[B, {w}]
    next %5
    emit %6
  }}
  output \"y\" %2
}}"
    );
    let g = rnnc_ir::parse_graph(&text).unwrap();
    let weights = Weights::new();
    let cpu =
        rnnc_backend_cpu::CpuBackend::with_isa(rnnc_ir::verify(&g).unwrap(), &weights, 1, isa)
            .unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 1, w]), xs.to_vec()).unwrap();
    let inputs = HashMap::from([("x".to_string(), Tensor::F32(x))]);
    let out = cpu.run(&inputs).unwrap();
    let programs = cpu.program_report();
    assert!(
        !programs.is_empty() && programs.iter().all(|r| r.outcome.is_ok()),
        "compiled: {programs:?}"
    );
    out[0].1.f32().iter().copied().collect()
}

fn grid(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| -30.0 + 60.0 * i as f32 / (n - 1) as f32)
        .collect()
}

/// (max absolute error, max relative error) against `f` in f64.
fn errors(op: &str, n: usize, f: impl Fn(f64) -> f64) -> (f64, f64) {
    let xs = grid(n);
    let ys = probe(op, &xs);
    let mut worst = (0.0f64, 0.0f64);
    for (x, y) in xs.iter().zip(&ys) {
        let want = f(*x as f64);
        let abs = (*y as f64 - want).abs();
        worst.0 = worst.0.max(abs);
        if want.abs() > 1e-30 {
            worst.1 = worst.1.max(abs / want.abs());
        }
    }
    worst
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn exp_sigmoid_tanh_are_accurate_on_minus_30_to_30() {
    for n in [1000, 1003] {
        let (_, exp_rel) = errors("exp", n, f64::exp);
        let (sig_abs, sig_rel) = errors("sigmoid", n, sigmoid);
        let (tanh_abs, tanh_rel) = errors("tanh", n, f64::tanh);
        eprintln!(
            "width {n}: exp rel {exp_rel:.2e}; sigmoid abs {sig_abs:.2e} rel {sig_rel:.2e}; \
             tanh abs {tanh_abs:.2e} rel {tanh_rel:.2e}"
        );
        // Measured: exp 7.0e-8 relative; sigmoid 8.4e-8 absolute, 1.1e-7 relative;
        // tanh 5.0e-8 absolute, 1.2e-7 relative (f32 rounding alone is 6e-8).
        assert!(exp_rel < 1.5e-7, "exp relative error {exp_rel:e}");
        assert!(
            sig_abs < 1.5e-7 && sig_rel < 2.5e-7,
            "sigmoid {sig_abs:e} {sig_rel:e}"
        );
        assert!(
            tanh_abs < 1e-7 && tanh_rel < 2.5e-7,
            "tanh {tanh_abs:e} {tanh_rel:e}"
        );
    }
}

#[test]
fn log_is_accurate_from_subnormals_to_the_largest_floats() {
    // 4001 points spaced evenly in log10 from 1e-44 (subnormal) to 1e38, plus the
    // neighbourhood of 1, where log's result is small and relative error shows.
    let mut xs: Vec<f32> = (0..4001)
        .map(|i| 10f64.powf(-44.0 + 82.0 * i as f64 / 4000.0) as f32)
        .collect();
    xs.extend((1..=1000).map(|i| 0.5 + i as f32 * 1e-3));
    let ys = probe("log", &xs);
    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    for (x, y) in xs.iter().zip(&ys) {
        let want = (*x as f64).ln();
        let e = (*y as f64 - want).abs();
        abs = abs.max(e);
        if want != 0.0 {
            rel = rel.max(e / want.abs());
        }
    }
    eprintln!("log: abs {abs:.2e}, rel {rel:.2e}");
    // Measured: 3.8e-6 absolute (where |log x| ≈ 100 and one f32 ulp is 7.6e-6),
    // 7.2e-8 relative.
    assert!(abs < 6e-6 && rel < 1.5e-7, "log abs {abs:e} rel {rel:e}");
    let special = probe("log", &[0.0, -0.0, -1.0, f32::INFINITY, f32::NAN, 1.0]);
    assert_eq!(special[0], f32::NEG_INFINITY);
    assert_eq!(special[1], f32::NEG_INFINITY);
    assert!(special[2].is_nan() && special[4].is_nan());
    assert_eq!(special[3], f32::INFINITY);
    assert_eq!(special[5], 0.0);
}

#[test]
fn small_arguments_keep_relative_accuracy() {
    // Near 0, tanh(x) ≈ x: the series branch must keep relative error small.
    let xs: Vec<f32> = (1..=400).map(|i| i as f32 * 1e-3 - 0.2005).collect();
    let ys = probe("tanh", &xs);
    for (x, y) in xs.iter().zip(&ys) {
        let want = (*x as f64).tanh();
        let rel = (*y as f64 - want).abs() / want.abs();
        assert!(rel < 3e-7, "tanh({x}) = {y}, relative error {rel:e}");
    }
}

#[test]
fn saturation_is_exact_and_nan_propagates() {
    let inf = f32::INFINITY;
    let xs = [
        -inf,
        -200.0,
        -100.0,
        -30.0,
        30.0,
        100.0,
        200.0,
        inf,
        f32::NAN,
        0.0,
        -0.0,
    ];
    let s = probe("sigmoid", &xs);
    let t = probe("tanh", &xs);
    let e = probe("exp", &xs);
    assert_eq!(&s[..3], &[0.0, 0.0, 0.0][..], "sigmoid of large negatives");
    assert_eq!(&s[4..8], &[1.0; 4][..], "sigmoid saturates to exactly 1");
    assert_eq!(&t[..4], &[-1.0; 4][..], "tanh saturates to exactly -1");
    assert_eq!(&t[4..8], &[1.0; 4][..], "tanh saturates to exactly 1");
    assert_eq!(e[0], 0.0);
    assert_eq!(e[6], inf, "exp overflows to infinity");
    assert_eq!(e[7], inf);
    assert!(
        s[8].is_nan() && t[8].is_nan() && e[8].is_nan(),
        "NaN propagates"
    );
    assert_eq!((s[9], t[9], e[9]), (0.5, 0.0, 1.0));
    assert!(t[10] == 0.0 && t[10].is_sign_negative(), "tanh(-0) = -0");
}
