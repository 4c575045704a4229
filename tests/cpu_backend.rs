//! The CPU backend against the interpreter, on every model the fixtures name (their
//! seed-0 and random-dims hyperparameters: hidden sizes that are not multiples of
//! 4 among them), the test models and the seq2seq model in its three modes,
//! with random weights and inputs at batch 1, 5 (a row block and
//! one row over), 17 (the portable path's GEMM, `GEMM_MIN_ROWS` = 16; the kernels'
//! row blocks and their remainders) and lengths 1 and 6, at -O0, -O1, -O2 and -O2
//! with time unrolling, on every kernel ISA this CPU has and the portable path.
//! The whole model must compile, at every size.

mod common;

use rnnc_backend_cpu::Isa;
use rnnc_cli::args::ModelArgs;
use rnnc_interp::Tensor;
use rnnc_opt::Opt;
use std::collections::{BTreeSet, HashMap};

const ATOL: f32 = 1e-5;

fn pipelines() -> Vec<Opt> {
    vec![
        Opt::Level(0),
        Opt::Level(1),
        Opt::Level(2),
        Opt::Passes(
            "canonicalize,split-concat-matmul,fuse-gates,fold-biases,hoist-input-projection,\
             cse,dce,fuse-elementwise,unroll-time{factor=4}"
                .into(),
        ),
    ]
}

/// (model file, params) of every fixture, once each.
fn cases() -> BTreeSet<(std::path::PathBuf, Vec<String>)> {
    let mut cases: BTreeSet<_> = common::fixtures()
        .iter()
        .filter(|f| !f.dir.to_string_lossy().contains("seed4"))
        .map(|f| (f.model(), f.params()))
        .collect();
    let eq = common::seed0("lstm_seed_equations");
    cases.insert((eq.model(), eq.params()));
    // The invented cells and the ops of tests/models.
    cases.extend(
        common::gpu_cases()
            .into_iter()
            .filter(|(m, _)| m.starts_with(common::root().join("tests/models"))),
    );
    // Attention over a memory, token ids read in the step, a source axis, and
    // the decode loops.
    let seq2seq = common::root().join("models/seq2seq_attention.rnn");
    for mode in ["teacher", "greedy", "beam"] {
        cases.insert((seq2seq.clone(), common::seq2seq_params(mode)));
    }
    cases
}

#[test]
fn cpu_backend_matches_the_interpreter() {
    let mut failures = Vec::new();
    let mut runs = 0;
    for (model, params) in cases() {
        let label = format!("{} {}", common::rel(&model), params.join(" "));
        let args = ModelArgs {
            model: model.clone(),
            params: params.clone(),
            config: None,
        };
        let lowered = rnnc_cli::compile(&args).unwrap_or_else(|e| panic!("{label}: {e}"));
        let w = rnnc_cli::bench::random_weights(&lowered, 7);
        for (opt, isa) in pipelines()
            .into_iter()
            .flat_map(|o| Isa::available().into_iter().map(move |i| (o.clone(), i)))
        {
            let mut g = lowered.clone();
            let passes = opt.build().unwrap();
            rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let verified = rnnc_ir::verify(&g).unwrap();
            let cpu = rnnc_backend_cpu::CpuBackend::with_isa(verified, &w, 1, isa).unwrap();
            let mut refused = Vec::new();
            for (batch, seq) in [(1, 6), (5, 6), (17, 6), (5, 1)] {
                let label = format!("{label} {opt:?} {isa} B={batch} T={seq}");
                let inputs = rnnc_cli::bench::random_inputs(&g, batch, seq, 11);
                let want: HashMap<String, Tensor> =
                    match rnnc_interp::run(&rnnc_ir::verify(&g).unwrap(), &inputs, &w) {
                        Ok(w) => w.into_iter().collect(),
                        // Inputs the model cannot take (ops.rnn's `x[:, -2]` at T = 1):
                        // the backend must refuse them too, with a message.
                        Err(e) => {
                            if cpu.run(&inputs).is_ok() {
                                failures
                                    .push(format!("{label}: runs where the interpreter says {e}"));
                            }
                            refused.push((batch, seq));
                            continue;
                        }
                    };
                let got = cpu.run(&inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
                for (name, t) in &got {
                    let d = common::max_diff(t, &want[name]);
                    if d > ATOL {
                        failures.push(format!("{label} {name}: differs by {d:e}"));
                    }
                }
                runs += 1;
            }
            // The whole model is one compiled program at every size it runs at.
            let programs: Vec<_> = cpu
                .program_report()
                .into_iter()
                .filter(|r| !refused.contains(&(r.batch, r.time)))
                .collect();
            if programs.is_empty() || programs.iter().any(|r| r.outcome.is_err()) {
                failures.push(format!(
                    "{label} {opt:?}: whole-model program: {programs:?}"
                ));
            }
        }
    }
    assert!(runs >= 100 * Isa::available().len(), "only {runs} runs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bitwise equal outputs of two runs.
fn assert_same(label: &str, a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    assert_eq!(a.len(), b.len(), "{label}");
    for ((name, x), (_, y)) in a.iter().zip(b) {
        let (x, y) = match (x, y) {
            (Tensor::F32(x), Tensor::F32(y)) => (x, y),
            (Tensor::I64(x), Tensor::I64(y)) => {
                assert_eq!(x, y, "{label} {name}: differs from the one-thread run");
                continue;
            }
            _ => panic!("{label} {name}: outputs of different types"),
        };
        let same = x.shape() == y.shape()
            && x.iter()
                .zip(y.iter())
                .all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(same, "{label} {name}: differs from the one-thread run");
    }
}

/// Each element is computed by the same code whatever the thread count (see
/// parallel.rs), so 2 and 3 threads must give the one-thread results bit for bit:
/// every fixture model, plus hidden sizes large enough that every loop is split.
#[test]
fn thread_count_does_not_change_results() {
    let mut all: Vec<(std::path::PathBuf, Vec<String>)> = cases().into_iter().collect();
    for (model, params) in [
        ("models/lstm.rnn", "input_size=24 hidden_size=72"),
        ("models/gru.rnn", "input_size=24 hidden_size=72"),
        ("models/bilstm.rnn", "input_size=24 hidden_size=72"),
        (
            "models/gru_model.rnn",
            "input_dim=24 hidden_dim=72 num_layers=2 output_dim=3",
        ),
    ] {
        let params = params.split(' ').map(String::from).collect();
        all.push((common::root().join(model), params));
    }
    for (model, params) in all {
        let args = ModelArgs {
            model: model.clone(),
            params: params.clone(),
            config: None,
        };
        let label = format!("{} {}", common::rel(&model), params.join(" "));
        let lowered = rnnc_cli::compile(&args).unwrap_or_else(|e| panic!("{label}: {e}"));
        let w = rnnc_cli::bench::random_weights(&lowered, 3);
        // -O1 (unfused gates) and -O2 with unrolling (fused, and a tail program).
        for opt in [Opt::Level(1), pipelines().pop().unwrap()] {
            let mut g = lowered.clone();
            let passes = opt.build().unwrap();
            rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
                .unwrap();
            for isa in Isa::available() {
                let backend = |n| {
                    rnnc_backend_cpu::CpuBackend::with_isa(rnnc_ir::verify(&g).unwrap(), &w, n, isa)
                        .unwrap()
                };
                let (one, two, three) = (backend(1), backend(2), backend(3));
                for (batch, seq) in [(1, 7), (5, 7), (17, 3)] {
                    let label = format!("{label} {opt:?} {isa} B={batch} T={seq}");
                    let inputs = rnnc_cli::bench::random_inputs(&g, batch, seq, 5);
                    let want = one.run(&inputs).unwrap();
                    assert_same(
                        &format!("{label} 2 threads"),
                        &want,
                        &two.run(&inputs).unwrap(),
                    );
                    assert_same(
                        &format!("{label} 3 threads"),
                        &want,
                        &three.run(&inputs).unwrap(),
                    );
                }
                let programs = three.program_report();
                assert!(programs.iter().all(|r| r.outcome.is_ok()), "{label}");
            }
        }
    }
}

/// `run_into` writes into the buffers of an earlier run's f32 outputs, whatever
/// they hold, and leaves what `run` returns; outputs of other sizes or names are
/// replaced. The LSTM (f32 outputs only), greedy seq2seq (token ids too) and a
/// packed LSTM (its outputs past each sequence's length are zeros).
#[test]
fn run_into_reuses_the_outputs_of_an_earlier_run() {
    let lstm = (
        common::root().join("models/lstm.rnn"),
        vec!["input_size=4".to_string(), "hidden_size=6".to_string()],
    );
    let seq2seq = (
        common::root().join("models/seq2seq_attention.rnn"),
        common::seq2seq_params("greedy"),
    );
    let packed = (
        common::root().join("tests/models/packed_lstm.rnn"),
        vec!["input_size=4".to_string(), "hidden_size=6".to_string()],
    );
    for (model, params) in [lstm, seq2seq, packed] {
        let label = common::rel(&model);
        let args = ModelArgs {
            model,
            params,
            config: None,
        };
        let g = rnnc_cli::compile(&args).unwrap();
        let w = rnnc_cli::bench::random_weights(&g, 1);
        let cpu = rnnc_backend_cpu::CpuBackend::new(rnnc_ir::verify(&g).unwrap(), &w).unwrap();
        let inputs = rnnc_cli::bench::random_inputs(&g, 3, 5, 2);
        let want = cpu.run(&inputs).unwrap();
        let mut outs = cpu.run(&inputs).unwrap();
        let mut kept = Vec::new();
        for (_, t) in outs.iter_mut() {
            if let Tensor::F32(a) = t {
                a.fill(f32::NAN);
                kept.push(a.as_ptr());
            }
        }
        cpu.run_into(&inputs, &mut outs).unwrap();
        assert_same(&format!("{label} into its outputs"), &want, &outs);
        let again: Vec<_> = (outs.iter())
            .filter_map(|(_, t)| match t {
                Tensor::F32(a) => Some(a.as_ptr()),
                Tensor::I64(_) => None,
            })
            .collect();
        assert_eq!(kept, again, "{label}: the f32 outputs' buffers were reused");
        let other = rnnc_cli::bench::random_inputs(&g, 2, 5, 2);
        cpu.run_into(&other, &mut outs).unwrap();
        assert_same(
            &format!("{label} at another batch"),
            &cpu.run(&other).unwrap(),
            &outs,
        );
        let one = ndarray::ArrayD::zeros(ndarray::IxDyn(&[1]));
        let mut junk = vec![("nope".to_string(), Tensor::F32(one))];
        cpu.run_into(&inputs, &mut junk).unwrap();
        assert_same(&format!("{label} into other outputs"), &want, &junk);
    }
}

/// The weights are checked against the graph once per size, not once per run, and
/// a run whose weights do not match fails every time, not only the first.
#[test]
fn a_weight_of_the_wrong_shape_fails_every_run() {
    let args = ModelArgs {
        model: common::root().join("models/gru.rnn"),
        params: vec!["input_size=4".into(), "hidden_size=6".into()],
        config: None,
    };
    let g = rnnc_cli::compile(&args).unwrap();
    let mut w = rnnc_cli::bench::random_weights(&g, 1);
    let (key, shape) = {
        let (k, a) = w.iter().next().unwrap();
        (k.clone(), a.shape().to_vec())
    };
    let mut wrong = shape.clone();
    wrong[0] += 1;
    w.insert(key.clone(), ndarray::ArrayD::zeros(ndarray::IxDyn(&wrong)));
    let inputs = rnnc_cli::bench::random_inputs(&g, 2, 3, 1);
    let cpu = rnnc_backend_cpu::CpuBackend::new(rnnc_ir::verify(&g).unwrap(), &w).unwrap();
    for _ in 0..2 {
        let e = cpu.run(&inputs).unwrap_err().0;
        assert_eq!(
            e,
            format!("weight `{key}` must have shape {shape:?}, found {wrong:?}")
        );
    }
}

#[test]
fn empty_batches_and_sequences_are_rejected() {
    let args = ModelArgs {
        model: common::root().join("models/gru.rnn"),
        params: vec!["input_size=4".into(), "hidden_size=6".into()],
        config: None,
    };
    let g = rnnc_cli::compile(&args).unwrap();
    let w = rnnc_cli::bench::random_weights(&g, 1);
    let cpu = rnnc_backend_cpu::CpuBackend::new(rnnc_ir::verify(&g).unwrap(), &w).unwrap();
    for (batch, seq, what) in [
        (0, 3, "empty batch (B = 0)"),
        (2, 0, "empty sequence (T = 0)"),
    ] {
        let inputs = rnnc_cli::bench::random_inputs(&g, batch, seq, 1);
        let e = cpu.run(&inputs).unwrap_err().0;
        assert_eq!(
            e,
            format!("input `input` has shape [{batch}, {seq}, 4]: an {what} has nothing to run")
        );
    }
}

/// Runs `model` with `params` whole, then one step at a time through a stream.
fn stream_matches_whole_run(model: &str, params: &[&str], batch: usize, seq: usize) {
    let args = ModelArgs {
        model: common::root().join(model),
        params: params.iter().map(|s| s.to_string()).collect(),
        config: None,
    };
    let mut g = rnnc_cli::compile(&args).unwrap();
    let passes = Opt::Level(2).build().unwrap();
    rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
    let w = rnnc_cli::bench::random_weights(&g, 3);
    let inputs = rnnc_cli::bench::random_inputs(&g, batch, seq, 5);
    let whole: HashMap<String, Tensor> =
        rnnc_interp::run(&rnnc_ir::verify(&g).unwrap(), &inputs, &w)
            .unwrap()
            .into_iter()
            .collect();
    let mut s = rnnc_backend_cpu::Stream::new(rnnc_ir::verify(&g).unwrap(), &w).unwrap();
    for round in 0..2 {
        let mut last = HashMap::new();
        for t in 0..seq {
            let step: HashMap<String, Tensor> = inputs
                .iter()
                .map(|(n, x)| {
                    let x = x
                        .f32()
                        .slice_axis(ndarray::Axis(1), (t..t + 1).into())
                        .to_owned();
                    (n.clone(), Tensor::F32(x))
                })
                .collect();
            for (name, y) in s.step(&step).unwrap() {
                if name == "output" {
                    let want = whole["output"]
                        .f32()
                        .slice_axis(ndarray::Axis(1), (t..t + 1).into())
                        .to_owned();
                    let d = common::max_diff(&y, &Tensor::F32(want));
                    assert!(
                        d <= ATOL,
                        "{model} round {round} step {t}: output differs by {d:e}"
                    );
                }
                last.insert(name, y);
            }
        }
        for (_, out) in s.state_names() {
            let d = common::max_diff(&last[out], &whole[out]);
            assert!(d <= ATOL, "{model} round {round}: {out} differs by {d:e}");
        }
        // After a reset the stream starts over from zeros and gives the same numbers.
        s.reset();
    }
}

#[test]
fn streams_step_by_step_like_a_whole_run() {
    stream_matches_whole_run("models/lstm.rnn", &["input_size=5", "hidden_size=7"], 3, 5);
    stream_matches_whole_run(
        "models/gru.rnn",
        &["input_size=5", "hidden_size=6", "num_layers=2"],
        1,
        4,
    );
}

#[test]
fn streams_refuse_models_without_state_or_running_backwards() {
    let g = rnnc_cli::compile(&ModelArgs {
        model: common::root().join("models/lstm.rnn"),
        params: vec![
            "input_size=2".into(),
            "hidden_size=3".into(),
            "bidirectional=true".into(),
        ],
        config: None,
    })
    .unwrap();
    let w = rnnc_cli::bench::random_weights(&g, 3);
    let e = rnnc_backend_cpu::Stream::new(rnnc_ir::verify(&g).unwrap(), &w)
        .err()
        .unwrap();
    assert!(e.0.contains("backwards in time"), "{e}");
}

/// `softmax` and `log_softmax` over the last axis in the whole-model program
/// (generated row loops), at widths with and without a scalar tail, against the
/// interpreter; large and equal inputs included.
#[test]
fn softmax_rows_match_the_interpreter() {
    for width in [1, 7, 12, 33] {
        let text = format!(
            "graph Soft {{
  %0 = input name=\"x\" zeros=false : f32[B, T, {width}]
  %1 = softmax axis=2 %0 : f32[B, T, {width}]
  %2 = log_softmax axis=2 %0 : f32[B, T, {width}]
  output \"p\" %1
  output \"logp\" %2
}}"
        );
        let g = rnnc_ir::parse_graph(&text).unwrap();
        let w = Default::default();
        let mut inputs = rnnc_cli::bench::random_inputs(&g, 3, 5, 9);
        if let Some(Tensor::F32(x)) = inputs.get_mut("x") {
            x.iter_mut().enumerate().for_each(|(i, v)| {
                if i % 11 == 0 {
                    *v = 80.0
                }
            });
        }
        let want: HashMap<String, Tensor> =
            rnnc_interp::run(&rnnc_ir::verify(&g).unwrap(), &inputs, &w)
                .unwrap()
                .into_iter()
                .collect();
        for threads in [1, 2] {
            let cpu = rnnc_backend_cpu::CpuBackend::with_threads(
                rnnc_ir::verify(&g).unwrap(),
                &w,
                threads,
            )
            .unwrap();
            for (name, t) in cpu.run(&inputs).unwrap() {
                let d = common::max_diff(&t, &want[&name]);
                assert!(d <= 1e-6, "width {width}, {threads} threads, {name}: {d:e}");
            }
            let programs = cpu.program_report();
            assert!(programs.iter().all(|r| r.outcome.is_ok()), "{programs:?}");
        }
    }
}

/// A token id outside the embedding table is an error on both backends, with the
/// same message, and the compiled program never reads outside the table.
#[test]
fn token_ids_outside_the_vocabulary_are_rejected() {
    let g = common::classifier_with_10_tokens();
    let w = rnnc_cli::bench::random_weights(&g, 1);
    let v = || rnnc_ir::verify(&g).unwrap();
    let cpu = rnnc_backend_cpu::CpuBackend::new(v(), &w).unwrap();
    for bad in [10, -1, i64::MAX] {
        let inputs = common::ids_with(bad);
        let want = rnnc_interp::run(&v(), &inputs, &w).unwrap_err().0;
        assert_eq!(
            want,
            format!("token id {bad} is out of range for an embedding table of 10 rows")
        );
        assert_eq!(cpu.run(&inputs).unwrap_err().0, want);
    }
    assert!(cpu.program_report().iter().all(|r| r.outcome.is_ok()));
}
