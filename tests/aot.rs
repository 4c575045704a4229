//! Ahead-of-time output: every seed fixture's model compiled to an object file and
//! header (`rnnc_backend_cpu::aot`), linked with `tests/aot/driver.c` by the
//! system C compiler (`cc`) under AddressSanitizer with every buffer against a
//! guard page (`common::link_driver`), run on the fixture's inputs, and compared with the
//! interpreter (atol 1e-5) and with PyTorch's outputs (atol 1e-5, rtol 1e-4).
//! A model with top-level ops the object-file path cannot generate must fail with
//! the reason listed in `DECLINED`, so that a change in coverage shows.

mod common;

use rnnc_cli::args::ModelArgs;
use rnnc_interp::Tensor;
use std::collections::HashMap;
use std::process::Command;

/// Fixtures whose models the object-file path declines, and why (none today;
/// a model added with an op it lacks goes here until it has it).
const DECLINED: [(&str, &str); 0] = [];

#[test]
fn object_files_run_from_c_and_match() {
    let mut failures = Vec::new();
    let mut ran = 0;
    let fixtures: Vec<_> = common::fixtures()
        .into_iter()
        .filter(|f| f.dir.parent().unwrap().ends_with("seed0"))
        .collect();
    assert!(fixtures.len() >= 13, "{} seed-0 fixtures", fixtures.len());
    for fx in fixtures {
        let label = fx.name.clone();
        let args = ModelArgs {
            model: fx.model(),
            params: fx.params(),
            config: None,
        };
        let mut g = rnnc_cli::compile(&args).unwrap();
        let w = rnnc_cli::weights::load(&fx.dir.join("weights.safetensors"), &g.weights()).unwrap();
        let passes = rnnc_opt::Opt::Level(2).build().unwrap();
        rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
        let given: HashMap<String, Tensor> = fx
            .inputs()
            .into_iter()
            .map(|(n, p)| (n, rnnc_cli::npy::read(&p).unwrap()))
            .collect();
        let shape = given["input"].shape().to_vec();
        let (batch, time) = (shape[0], shape[1]);
        let verified = rnnc_ir::verify(&g).unwrap();
        let compiled = rnnc_backend_cpu::aot::compile_object(&verified, &w, batch, time, "test");
        let declined = DECLINED.iter().find(|(n, _)| *n == fx.name);
        let obj = match (compiled, declined) {
            (Ok(o), None) => o,
            (Err(e), Some((_, why))) => {
                assert_eq!(e.0, *why, "{label}");
                continue;
            }
            (Ok(_), Some(_)) => {
                failures.push(format!("{label}: compiles now; take it off DECLINED"));
                continue;
            }
            (Err(e), None) => {
                failures.push(format!("{label}: {}", e.0));
                continue;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        common::link_driver(d, &obj);
        // Every input in the header's order; those the fixture leaves out are zeros.
        let inputs: HashMap<String, Tensor> = obj
            .inputs
            .iter()
            .map(|(name, dims)| {
                let zeros = || Tensor::F32(ndarray::ArrayD::zeros(ndarray::IxDyn(dims)));
                (name.clone(), given.get(name).cloned().unwrap_or_else(zeros))
            })
            .collect();
        let outs = common::run_driver(d, &obj, &inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
        let want: HashMap<String, Tensor> = rnnc_interp::run(&verified, &inputs, &w)
            .unwrap()
            .into_iter()
            .collect();
        for ((name, dims), got) in obj.outputs.iter().zip(&outs) {
            let Tensor::F32(interp) = &want[name] else {
                panic!("f32 outputs")
            };
            assert_eq!(interp.shape(), &dims[..], "{label} {name}");
            assert_eq!(got.len(), interp.len(), "{label} {name}");
            let worst = got
                .iter()
                .zip(interp.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            if worst > 1e-5 || got.iter().any(|v| v.is_nan()) {
                failures.push(format!("{label} {name}: {worst:e} from the interpreter"));
            }
            let torch = fx.dir.join(format!("{name}.npy"));
            if let Ok(Tensor::F32(t)) = rnnc_cli::npy::read(&torch) {
                let bad = got
                    .iter()
                    .zip(t.iter())
                    .any(|(a, b)| (a - b).abs() > 1e-5 + 1e-4 * b.abs());
                if bad {
                    failures.push(format!("{label} {name}: differs from PyTorch"));
                }
            }
        }
        if fx.name == "lstm_classifier" {
            // Ids outside the table (too large, negative) read row 0 masked to zeros:
            // the program must run and give finite numbers, never read past the table.
            let Tensor::I64(mut ids) = inputs["input"].clone() else {
                panic!("token ids")
            };
            ids.as_slice_mut().unwrap()[..2].copy_from_slice(&[1 << 40, -5]);
            let mut bad = inputs.clone();
            bad.insert("input".into(), Tensor::I64(ids));
            let outs = common::run_driver(d, &obj, &bad).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert!(outs[0].iter().all(|v| v.is_finite()), "{label}: bad ids");
        }
        ran += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(ran, 13);
}

/// Every model the GPU tests cover (each seed model, the equations LSTM, the test
/// models with their custom cells and ops, the seq2seq model in its three modes)
/// as an object file at -O0, -O2 and -O2 unrolled, random weights and inputs at
/// B = 3, T = S = 5, run from C: none may be refused, each equal to the
/// interpreter (token ids and lengths exactly).
#[test]
fn every_model_compiles_ahead_of_time_at_every_pipeline() {
    let pipelines = [
        rnnc_opt::Opt::Level(0),
        rnnc_opt::Opt::Level(2),
        rnnc_opt::Opt::Passes(
            "canonicalize,split-concat-matmul,fuse-gates,fold-biases,hoist-input-projection,\
             cse,dce,fuse-elementwise,unroll-time{factor=4}"
                .into(),
        ),
    ];
    let mut failures = Vec::new();
    let mut ran = 0;
    for (model, params) in common::gpu_cases() {
        let args = ModelArgs {
            model: model.clone(),
            params: params.clone(),
            config: None,
        };
        let lowered = rnnc_cli::compile(&args).unwrap();
        let w = rnnc_cli::bench::random_weights(&lowered, 5);
        for opt in &pipelines {
            let label = format!("{} {params:?} {opt:?}", model.display());
            let mut g = lowered.clone();
            let passes = opt.build().unwrap();
            rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
                .unwrap();
            let verified = rnnc_ir::verify(&g).unwrap();
            let inputs = rnnc_cli::bench::random_inputs(&g, 3, 5, 9);
            let obj = match rnnc_backend_cpu::aot::compile_object(&verified, &w, 3, 5, "test") {
                Ok(o) => o,
                Err(e) => {
                    failures.push(format!("{label}: refused: {}", e.0));
                    continue;
                }
            };
            let dir = tempfile::tempdir().unwrap();
            common::link_driver(dir.path(), &obj);
            let outs = match common::run_driver_outputs(dir.path(), &obj, &inputs) {
                Ok(o) => o,
                Err(e) => {
                    failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            let want: HashMap<String, Tensor> = rnnc_interp::run(&verified, &inputs, &w)
                .unwrap()
                .into_iter()
                .collect();
            for ((name, _), got) in obj.outputs.iter().zip(&outs) {
                let d = common::max_diff(got, &want[name]);
                if d > 1e-5 {
                    failures.push(format!("{label} {name}: {d:e} from the interpreter"));
                }
            }
            ran += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 3 * 25, "{ran} runs");
}

/// The seq2seq model in each mode as an object file (memories, the source axis,
/// token ids read in the step, and the decode loops with their int64 tokens and
/// lengths), run from C on the PyTorch fixture's sources at S = T = 6: equal to
/// the interpreter (tokens and lengths exactly) and, decoding, to PyTorch.
#[test]
fn seq2seq_object_files_match_in_every_mode() {
    for mode in ["teacher", "greedy", "beam"] {
        let args = ModelArgs {
            model: common::root().join("models/seq2seq_attention.rnn"),
            params: common::seq2seq_params(mode),
            config: None,
        };
        let mut g = rnnc_cli::compile(&args).unwrap();
        let w = rnnc_cli::weights::load(
            &common::seq2seq_dir().join("weights.safetensors"),
            &g.weights(),
        )
        .unwrap();
        let passes = rnnc_opt::Opt::Level(2).build().unwrap();
        rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
        let verified = rnnc_ir::verify(&g).unwrap();
        let read = |name: &str| {
            rnnc_cli::npy::read(&common::seq2seq_dir().join(format!("{name}.npy"))).unwrap()
        };
        let mut inputs: HashMap<String, Tensor> = ["src", "src_lengths"]
            .map(|n| (n.to_string(), read(n)))
            .into();
        if mode == "teacher" {
            // The fixture's 5 target steps and one more: T = S = 6.
            let Tensor::I64(t) = read("tgt_in") else {
                panic!("token ids")
            };
            let last = t.slice(ndarray::s![.., 4..5]).to_owned().into_dyn();
            let t6 = ndarray::concatenate(ndarray::Axis(1), &[t.view(), last.view()]).unwrap();
            inputs.insert("tgt_in".into(), Tensor::I64(t6.into_dyn()));
        }
        let obj = rnnc_backend_cpu::aot::compile_object(&verified, &w, 4, 6, "seq2seq")
            .unwrap_or_else(|e| panic!("{mode}: {}", e.0));
        assert!(obj.header.contains("_SOURCE_LEN 6"), "{}", obj.header);
        let dir = tempfile::tempdir().unwrap();
        common::link_driver(dir.path(), &obj);
        let outs = common::run_driver_outputs(dir.path(), &obj, &inputs)
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let want: HashMap<String, Tensor> = rnnc_interp::run(&verified, &inputs, &w)
            .unwrap()
            .into_iter()
            .collect();
        for ((name, _), got) in obj.outputs.iter().zip(&outs) {
            let d = common::max_diff(got, &want[name]);
            assert!(d <= 1e-5, "{mode} {name}: {d} from the interpreter");
            if mode != "teacher" {
                let torch = read(&format!("{mode}_{name}"));
                assert!(
                    common::max_diff(got, &torch) <= 1e-5,
                    "{mode} {name} vs PyTorch"
                );
            }
        }
    }
}

/// The C example of docs/aot.md builds against the object and header as the page
/// says, prints the interpreter's numbers, and prints exactly what the page quotes.
#[test]
fn the_docs_example_runs_as_documented() {
    let fx = common::root().join("tests/fixtures/seed0/torch_lstm_bidir2_h0");
    let args = ModelArgs {
        model: common::root().join("models/lstm.rnn"),
        params: [
            "input_size=12",
            "hidden_size=16",
            "num_layers=2",
            "bidirectional=true",
        ]
        .map(String::from)
        .to_vec(),
        config: None,
    };
    let mut g = rnnc_cli::compile(&args).unwrap();
    let w = rnnc_cli::weights::load(&fx.join("weights.safetensors"), &g.weights()).unwrap();
    let passes = rnnc_opt::Opt::Level(2).build().unwrap();
    rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
    let verified = rnnc_ir::verify(&g).unwrap();
    let obj =
        rnnc_backend_cpu::aot::compile_object(&verified, &w, 3, 7, "models/lstm.rnn").unwrap();
    assert_eq!(obj.prefix, "lstm");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("lstm.o"), &obj.object).unwrap();
    std::fs::write(d.join("lstm.h"), &obj.header).unwrap();
    // As documented, plus AddressSanitizer: the example's own buffers are checked.
    let cc = Command::new("cc")
        .args(["-O2", "-fsanitize=address", "-I"])
        .arg(d)
        .arg(common::root().join("docs/examples/lstm_main.c"))
        .arg(d.join("lstm.o"))
        .arg("-o")
        .arg(d.join("lstm_demo"))
        .output()
        .expect("a C compiler `cc`");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = Command::new(d.join("lstm_demo")).output().unwrap();
    assert!(run.status.success());
    let line = String::from_utf8(run.stdout).unwrap();
    let docs = std::fs::read_to_string(common::root().join("docs/aot.md")).unwrap();
    assert!(
        docs.contains(&format!("# {}", line.trim())),
        "docs/aot.md quotes {line}"
    );
    // The example's input: ((i mod 17) − 8) / 8; zero states.
    let input: Vec<f32> = (0..3 * 7 * 12)
        .map(|i: i32| (i % 17 - 8) as f32 / 8.0)
        .collect();
    let x = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[3, 7, 12]), input).unwrap();
    let inputs = HashMap::from([("input".to_string(), Tensor::F32(x))]);
    let want: HashMap<String, Tensor> = rnnc_interp::run(&verified, &inputs, &w)
        .unwrap()
        .into_iter()
        .collect();
    let printed: Vec<f32> = line
        .split('=')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(printed.len(), 4, "{line}");
    for (p, w) in printed.iter().zip(want["output"].f32().iter()) {
        // Printed with 6 decimals.
        assert!((p - w).abs() <= 1e-5 + 5e-7, "{line}: interpreter {w}");
    }
}
