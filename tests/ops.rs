//! The interpreter's ops that the seed models leave unexercised (softmax, layer
//! norm, batched matmul, transpose, exp/log/div, slicing, …) against PyTorch, and
//! models/lstm.rnn with batch_first=false (tests/fixtures/make_ops.py made both), on
//! the interpreter and on the CPU backend with one and two threads.

mod common;

use rnnc_cli::args::ModelArgs;
use rnnc_interp::Tensor;
use std::collections::HashMap;
use std::path::Path;

fn read(dir: &Path, name: &str) -> Tensor {
    rnnc_cli::npy::read(&dir.join(format!("{name}.npy"))).unwrap()
}

fn assert_close(label: &str, got: &Tensor, want: &Tensor) {
    let (Tensor::F32(g), Tensor::F32(w)) = (got, want) else {
        panic!("{label}: f32 expected")
    };
    assert_eq!(g.shape(), w.shape(), "{label}: shape");
    for (a, b) in g.iter().zip(w.iter()) {
        assert!(
            (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
            "{label}: {a} vs PyTorch {b}"
        );
    }
}

/// The outputs of each backend: (label, outputs by name).
fn run(
    model: &Path,
    params: &[&str],
    weights: Option<&Path>,
    inputs: HashMap<String, Tensor>,
) -> Vec<(String, HashMap<String, Tensor>)> {
    let g = rnnc_cli::compile(&ModelArgs {
        model: model.to_path_buf(),
        params: params.iter().map(|s| s.to_string()).collect(),
        config: None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let w = match weights {
        Some(p) => rnnc_cli::weights::load(p, &g.weights()).unwrap(),
        None => Default::default(),
    };
    let v = rnnc_ir::verify(&g).unwrap();
    let mut all = vec![(
        "interp".to_string(),
        rnnc_interp::run(&v, &inputs, &w)
            .unwrap()
            .into_iter()
            .collect(),
    )];
    for threads in [1, 2] {
        let v = rnnc_ir::verify(&g).unwrap();
        let cpu = rnnc_backend_cpu::CpuBackend::with_threads(v, &w, threads).unwrap();
        let outs = cpu.run(&inputs).unwrap().into_iter().collect();
        all.push((format!("cpu, {threads} threads"), outs));
    }
    all
}

#[test]
fn ops_match_pytorch() {
    let dir = common::root().join("tests/fixtures/ops");
    let inputs = ["x", "a", "b"]
        .iter()
        .map(|n| (n.to_string(), read(&dir, n)))
        .collect();
    let outs = run(
        &common::root().join("tests/models/ops.rnn"),
        &[],
        None,
        inputs,
    );
    for (backend, outs) in &outs {
        assert_eq!(outs.len(), 12);
        for (name, got) in outs {
            assert_close(&format!("{backend} {name}"), got, &read(&dir, name));
        }
    }
}

#[test]
fn time_major_lstm_matches_pytorch() {
    let dir = common::root().join("tests/fixtures/ops/lstm_time_major");
    let params = [
        "input_size=4",
        "hidden_size=5",
        "num_layers=2",
        "bidirectional=true",
        "batch_first=false",
    ];
    let inputs = HashMap::from([("input".to_string(), read(&dir, "input"))]);
    let outs = run(
        &common::root().join("models/lstm.rnn"),
        &params,
        Some(&dir.join("weights.safetensors")),
        inputs,
    );
    for (backend, outs) in &outs {
        for name in ["output", "h_n", "c_n"] {
            assert_close(&format!("{backend} {name}"), &outs[name], &read(&dir, name));
        }
    }
}

/// The composed activations, `**` and the compile-time `%`/`floor`
/// (tests/models/activations.rnn), at the top level and inside a compiled scan,
/// on every ISA path of the CPU backend.
#[test]
fn activations_match_pytorch() {
    let dir = common::root().join("tests/fixtures/activations");
    let inputs = HashMap::from([("x".to_string(), read(&dir, "x"))]);
    let model = common::root().join("tests/models/activations.rnn");
    let mut outs = run(&model, &[], None, inputs.clone());
    let g = rnnc_cli::compile(&ModelArgs {
        model,
        params: vec![],
        config: None,
    })
    .unwrap();
    let no_weights = Default::default();
    for isa in rnnc_backend_cpu::Isa::available() {
        let v = rnnc_ir::verify(&g).unwrap();
        let cpu = rnnc_backend_cpu::CpuBackend::with_isa(v, &no_weights, 1, isa).unwrap();
        outs.push((
            format!("cpu {isa}"),
            cpu.run(&inputs).unwrap().into_iter().collect(),
        ));
    }
    for (backend, outs) in &outs {
        assert_eq!(outs.len(), 17, "{backend}");
        for (name, got) in outs {
            assert_close(&format!("{backend} {name}"), got, &read(&dir, name));
        }
    }
}
