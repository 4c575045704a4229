//! Both backends against PyTorch: every committed fixture (seed 0 and random-dims
//! seeds) run through the same path as `rnnc run`, on the interpreter and on the
//! CPU backend on one and on two threads (which must compile every scan: no
//! fallback), at -O0, -O1 and -O2, compared at atol 1e-5, rtol 1e-4.

mod common;

use rnnc_cli::args::ModelArgs;
use rnnc_interp::Tensor;
use std::collections::HashMap;

const ATOL: f32 = 1e-5;
const RTOL: f32 = 1e-4;

#[test]
fn every_fixture_matches_pytorch() {
    let fixtures = common::fixtures();
    assert!(
        fixtures.len() >= 39,
        "expected 13 fixtures × 3 seeds, found {}",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for fx in &fixtures {
        let label = common::rel(&fx.dir);
        let args = ModelArgs {
            model: fx.model(),
            params: fx.params(),
            config: None,
        };
        let lowered = rnnc_cli::compile(&args).unwrap_or_else(|e| panic!("{label}: {e}"));
        let w = rnnc_cli::weights::load(&fx.dir.join("weights.safetensors"), &lowered.weights())
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let inputs: HashMap<String, Tensor> = fx
            .inputs()
            .into_iter()
            .map(|(n, p)| (n, rnnc_cli::npy::read(&p).unwrap()))
            .collect();
        for level in 0..=2u8 {
            let label = format!("{label} -O{level}");
            let mut g = lowered.clone();
            let passes = rnnc_opt::Opt::Level(level).build().unwrap();
            rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            for backend in ["interp", "cpu", "cpu-2-threads"] {
                let label = format!("{label} {backend}");
                let verified = rnnc_ir::verify(&g).unwrap();
                let outs: HashMap<String, Tensor> = match backend {
                    "interp" => rnnc_interp::run(&verified, &inputs, &w),
                    _ => {
                        let threads = if backend == "cpu" { 1 } else { 2 };
                        let b = rnnc_backend_cpu::CpuBackend::with_threads(verified, &w, threads)
                            .unwrap();
                        b.run(&inputs)
                    }
                }
                .unwrap_or_else(|e| panic!("{label}: {e}"))
                .into_iter()
                .collect();
                let mut compared = 0;
                for name in ["output", "h_n", "c_n"] {
                    let path = fx.dir.join(format!("{name}.npy"));
                    if !path.exists() {
                        continue;
                    }
                    let want = rnnc_cli::npy::read(&path).unwrap();
                    let got = outs
                        .get(name)
                        .unwrap_or_else(|| panic!("{label}: the model has no output `{name}`"));
                    let (Tensor::F32(want), Tensor::F32(got)) = (&want, got) else {
                        panic!("{label}: f32 outputs")
                    };
                    if want.shape() != got.shape() {
                        failures.push(format!(
                            "{label} {name}: shape {:?}, PyTorch {:?}",
                            got.shape(),
                            want.shape()
                        ));
                        continue;
                    }
                    let worst = want
                        .iter()
                        .zip(got.iter())
                        .map(|(w, g)| (w - g).abs() - (ATOL + RTOL * w.abs()))
                        .fold(f32::NEG_INFINITY, f32::max);
                    if worst > 0.0 || got.iter().any(|v| v.is_nan()) {
                        failures.push(format!("{label} {name}: exceeds tolerance by {worst:e}"));
                    }
                    compared += 1;
                }
                assert!(compared >= 1, "{label}: nothing compared");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "mismatches against PyTorch:\n{}",
        failures.join("\n")
    );
}
