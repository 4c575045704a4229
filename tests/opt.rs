//! The optimisation passes keep every model's numbers and do what they promise:
//! the article's gate-by-gate LSTM against PyTorch at every level, one recurrent
//! product and one hoisted GEMM after -O2, fusion on invented cells, declining where
//! a rewrite would be wrong, and random pass orders against -O0.

mod common;

use rnnc_cli::args::ModelArgs;
use rnnc_interp::{Tensor, Weights};
use rnnc_ir::{DType, Dim, Graph};
use rnnc_opt::{run_pipeline, stats, Opt};
use std::collections::HashMap;
use std::path::Path;

fn compile(model: &Path, params: &[String]) -> Graph {
    rnnc_cli::compile(&ModelArgs {
        model: model.to_path_buf(),
        params: params.to_vec(),
        config: None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn optimise(g: &Graph, opt: Opt) -> Graph {
    let mut g = g.clone();
    let passes = opt.build().unwrap();
    run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
        .unwrap_or_else(|e| panic!("{e}"));
    g
}

fn run(g: &Graph, inputs: &HashMap<String, Tensor>, w: &Weights) -> HashMap<String, Tensor> {
    let v = rnnc_ir::verify(g).unwrap();
    rnnc_interp::run(&v, inputs, w)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .collect()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() % 1_000_000) as f32 / 1_000_000.0 - 0.5
    }
}

/// Random weights of the declared shapes and random inputs with B = 2, T = 5.
fn random_case(g: &Graph, seed: u64) -> (HashMap<String, Tensor>, Weights) {
    let mut rng = Rng(seed | 1);
    let mut w = Weights::new();
    for (key, ty) in g.weights() {
        let shape: Vec<usize> = ty
            .dims
            .iter()
            .map(|d| if let Dim::Fixed(n) = d { *n } else { 1 })
            .collect();
        let n = shape.iter().product();
        w.insert(
            key,
            ndarray::ArrayD::from_shape_vec(shape, (0..n).map(|_| rng.unit()).collect()).unwrap(),
        );
    }
    let mut inputs = HashMap::new();
    for (name, ty, _) in g.inputs() {
        let shape: Vec<usize> = ty
            .dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Batch => 2,
                Dim::Time => 5,
                Dim::Source => 4,
            })
            .collect();
        let n: usize = shape.iter().product();
        let t = match ty.dtype {
            DType::F32 => Tensor::F32(
                ndarray::ArrayD::from_shape_vec(shape, (0..n).map(|_| 2.0 * rng.unit()).collect())
                    .unwrap(),
            ),
            DType::I64 => Tensor::I64(
                ndarray::ArrayD::from_shape_vec(
                    shape,
                    (0..n).map(|_| (rng.next() % 5) as i64).collect(),
                )
                .unwrap(),
            ),
        };
        inputs.insert(name, t);
    }
    (inputs, w)
}

fn equations(seed: &str) -> (Graph, HashMap<String, Tensor>, Weights, std::path::PathBuf) {
    let dir = common::root().join("tests/fixtures/equations").join(seed);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let params: Vec<String> = meta["ctor_kwargs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let g = compile(
        &common::root().join("models/lstm_seed_equations.rnn"),
        &params,
    );
    let w = rnnc_cli::weights::load(&dir.join("weights.safetensors"), &g.weights()).unwrap();
    let inputs = HashMap::from([(
        "input".to_string(),
        rnnc_cli::npy::read(&dir.join("input.npy")).unwrap(),
    )]);
    (g, inputs, w, dir)
}

#[test]
fn lstm_seed_equations_match_pytorch_at_every_level() {
    for seed in ["seed0", "seed3"] {
        let (g, inputs, w, dir) = equations(seed);
        for level in 0..=2 {
            let outs = run(&optimise(&g, Opt::Level(level)), &inputs, &w);
            for name in ["output", "h_n", "c_n"] {
                let want = rnnc_cli::npy::read(&dir.join(format!("{name}.npy"))).unwrap();
                let d = common::max_diff(&outs[name], &want);
                assert!(d < 1e-5, "{seed} -O{level} {name}: off PyTorch by {d}");
            }
        }
    }
}

/// Products (`linear`/`matmul`) directly in `g` and in its scan bodies.
fn products(g: &Graph) -> (usize, usize) {
    let s = stats(g);
    (s.matmuls_in_loop, s.matmuls_outside)
}

#[test]
fn o2_leaves_one_recurrent_product_and_one_input_gemm() {
    let lstm = compile(
        &common::root().join("models/lstm.rnn"),
        &["input_size=12".into(), "hidden_size=16".into()],
    );
    let (eq, ..) = equations("seed0");
    assert_eq!(
        products(&eq),
        (4, 0),
        "as written: four products of W with [h, x]"
    );
    for g in [lstm, eq] {
        let o2 = optimise(&g, Opt::Level(2));
        assert_eq!(
            products(&o2),
            (1, 1),
            "{}: one product in the loop, one hoisted\n{o2}",
            g.name
        );
        let before = stats(&g);
        let after = stats(&o2);
        assert!(
            after.flops_per_step < before.flops_per_step
                && after.weight_bytes_per_step < before.weight_bytes_per_step
        );
    }
}

#[test]
fn fusion_fires_on_invented_cells_and_keeps_their_numbers() {
    // (model, products in the loop as written, after -O2 in the loop, hoisted)
    let cases = [("cifg.rnn", 6, 1, 1), ("mgu.rnn", 4, 2, 1)];
    for (file, written, in_loop, hoisted) in cases {
        let g = compile(
            &common::root().join("tests/models").join(file),
            &["input_size=3".into(), "hidden_size=4".into()],
        );
        assert_eq!(products(&g), (written, 0), "{file} as written");
        let o2 = optimise(&g, Opt::Level(2));
        // MGU's recurrent products read h and f * h: different operands, so they stay two.
        assert_eq!(products(&o2), (in_loop, hoisted), "{file} after -O2\n{o2}");
        let (inputs, w) = random_case(&g, 7);
        let (a, b) = (run(&g, &inputs, &w), run(&o2, &inputs, &w));
        for (name, t) in &a {
            assert!(common::max_diff(t, &b[name]) < 1e-5, "{file} {name}");
        }
    }
}

#[test]
fn fuse_gates_declines_a_matrix_that_depends_on_the_state() {
    // Two products of x: with a weight, and with a matrix read from the state S.
    let text = "graph g {
  %0 = input name=\"x\" zeros=false : f32[B, T, 4]
  %1 = zeros : f32[B, 4, 4]
  %2, %3 = scan reverse=false seqs=1 states=1 %0, %1 : f32[B, T, 4], f32[B, 4, 4] {
    %4 = seq index=0 : f32[B, 4]
    %5 = state index=0 : f32[B, 4, 4]
    %6 = index axis=0 index=0 %5 : f32[4, 4]
    %7 = weight key=\"w\" : f32[4, 4]
    %8 = linear %4, %6 : f32[B, 4]
    %9 = linear %4, %7 : f32[B, 4]
    %10 = add %8, %9 : f32[B, 4]
    next %5
    emit %10
  }
  output \"y\" %2
}
";
    let mut g = rnnc_ir::parse_graph(text).unwrap();
    rnnc_ir::verify(&g).unwrap();
    let passes = Opt::Passes("fuse-gates".into()).build().unwrap();
    let records = run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
    assert!(
        !records[0].changed,
        "fuse-gates must not stack a state-dependent matrix:\n{g}"
    );
    // With both matrices known at load time, the same shape of graph does fuse.
    let fusable = text.replace(
        "%6 = index axis=0 index=0 %5 : f32[4, 4]",
        "%6 = weight key=\"v\" : f32[4, 4]",
    );
    let mut g = rnnc_ir::parse_graph(&fusable).unwrap();
    let records = run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
    assert!(records[0].changed);
}

/// Every model in models/ (with its seed-0 fixture's hyperparameters) and the
/// invented cells, under random pipelines, against -O0.
#[test]
fn random_pass_orders_keep_every_models_numbers() {
    let mut names: Vec<&str> = rnnc_opt::passes::ALL.iter().map(|(n, _, _)| *n).collect();
    names.extend([
        "unroll-time{factor=2}",
        "unroll-time{factor=3}",
        "unroll-time{factor=4}",
    ]);
    let mut graphs: Vec<Graph> = Vec::new();
    for fixture in [
        "bilstm",
        "elman_tanh",
        "gru_cell",
        "gru_model",
        "lstm_cell",
        "lstm_classifier",
        "peephole_lstm_cell",
        "speech_lstm",
        "timeseries_lstm",
        "torch_gru_bidir2_h0",
        "torch_lstm_bidir2_h0",
        "torch_lstm_proj",
    ] {
        let fx = common::seed0(fixture);
        graphs.push(compile(&fx.model(), &fx.params()));
    }
    graphs.push(equations("seed0").0);
    for file in ["cifg.rnn", "mgu.rnn", "input_only_state.rnn"] {
        graphs.push(compile(
            &common::root().join("tests/models").join(file),
            &["input_size=3".into(), "hidden_size=4".into()],
        ));
    }
    let mut rng = Rng(0x5eed);
    for g in &graphs {
        let (inputs, w) = random_case(g, rng.next());
        let reference = run(g, &inputs, &w);
        for _ in 0..6 {
            let len = 1 + (rng.next() % 10) as usize;
            let pipeline: Vec<&str> = (0..len)
                .map(|_| names[(rng.next() % names.len() as u64) as usize])
                .collect();
            let text = pipeline.join(",");
            let outs = run(&optimise(g, Opt::Passes(text.clone())), &inputs, &w);
            for (name, t) in &reference {
                let d = common::max_diff(t, &outs[name]);
                assert!(
                    d < 1e-5,
                    "{} with --passes {text}: {name} differs by {d}",
                    g.name
                );
            }
        }
    }
}

#[test]
fn every_pass_is_registered_once_in_alphabetical_order() {
    let names: Vec<&str> = rnnc_opt::passes::ALL.iter().map(|(n, _, _)| *n).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted);
    for n in names {
        let dir = common::root().join("tests/passes").join(n);
        assert!(
            dir.is_dir(),
            "tests/passes/{n}/ holds the pass's file tests"
        );
    }
    assert!(
        matches!(Opt::Passes("fuse-gates{factor=2}".into()).build(), Err(e) if e.contains("takes no option `factor`"))
    );
    assert!(
        matches!(Opt::Passes("fuse-gate".into()).build(), Err(e) if e.contains("unknown pass `fuse-gate`"))
    );
    assert!(matches!(Opt::Level(3).build(), Err(e) if e.contains("-O3")));
}

#[test]
fn unrolled_scans_keep_their_numbers_and_print_back() {
    let g = compile(
        &common::root().join("models/lstm.rnn"),
        &[
            "input_size=3".into(),
            "hidden_size=4".into(),
            "num_layers=2".into(),
            "bidirectional=true".into(),
        ],
    );
    let (inputs, w) = random_case(&g, 11); // T = 5
    let reference = run(&g, &inputs, &w);
    for k in [2, 3, 5, 8] {
        let u = optimise(&g, Opt::Passes(format!("unroll-time{{factor={k}}}")));
        let text = u.to_string();
        assert!(
            text.contains(&format!("step={k}")) && text.contains("} tail {"),
            "factor {k}:\n{text}"
        );
        let back = rnnc_ir::parse_graph(&text).unwrap();
        assert_eq!(
            back.to_string(),
            text,
            "factor {k}: the unrolled text form round-trips"
        );
        let outs = run(&u, &inputs, &w);
        for (name, t) in &reference {
            assert!(
                common::max_diff(t, &outs[name]) < 1e-6,
                "factor {k}: {name}"
            );
        }
    }
}

#[test]
fn a_fixed_length_sequence_unrolls_into_a_loop_free_graph() {
    let g = compile(&common::root().join("tests/models/fixed_length.rnn"), &[]);
    let (inputs, w) = random_case(&g, 3);
    let full = optimise(&g, Opt::Passes("unroll-time".into()));
    assert!(!full.to_string().contains("scan"), "{full}");
    let reference = run(&g, &inputs, &w);
    let outs = run(&full, &inputs, &w);
    for (name, t) in &reference {
        assert!(common::max_diff(t, &outs[name]) < 1e-6, "{name}");
    }
    // A factor below T unrolls by blocks instead; at least T, fully.
    assert!(optimise(&g, Opt::Passes("unroll-time{factor=4}".into()))
        .to_string()
        .contains("step=4"));
    assert!(!optimise(&g, Opt::Passes("unroll-time{factor=6}".into()))
        .to_string()
        .contains("scan"));
}

/// What each pass did under -O2, by name.
fn changed_by(g: &Graph) -> Vec<&'static str> {
    let mut g = g.clone();
    let passes = Opt::Level(2).build().unwrap();
    let records = run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
    records
        .iter()
        .filter(|r| r.changed)
        .map(|r| r.name)
        .collect()
}

#[test]
fn fusion_and_hoisting_fire_on_structure_not_names() {
    let small = ["input_size=3".to_string(), "hidden_size=4".to_string()];
    // Cells written gate by gate: products of one operand exist to be fused.
    for m in [
        "models/lstm_seed_equations.rnn",
        "models/peephole_lstm_cell.rnn",
        "models/gru_cell.rnn",
        "tests/models/cifg.rnn",
        "tests/models/mgu.rnn",
    ] {
        let did = changed_by(&compile(&common::root().join(m), &small));
        assert!(
            did.contains(&"fuse-gates") && did.contains(&"hoist-input-projection"),
            "{m}: {did:?}"
        );
    }
    // The standard cells already hold one product per operand, as PyTorch stores its
    // weights: nothing to fuse, but the input projection still leaves the loop.
    for m in [
        "models/lstm.rnn",
        "models/gru.rnn",
        "models/elman_rnn.rnn",
        "models/lstm_cell.rnn",
    ] {
        let g = compile(&common::root().join(m), &small);
        let did = changed_by(&g);
        assert!(
            !did.contains(&"fuse-gates") && did.contains(&"hoist-input-projection"),
            "{m}: {did:?}"
        );
        assert_eq!(products(&optimise(&g, Opt::Level(2))), (1, 1), "{m}");
    }
    // The peephole cell: the products of x fuse and leave the loop; those of h, of c
    // and of c' stay, one each.
    let peephole = optimise(
        &compile(
            &common::root().join("models/peephole_lstm_cell.rnn"),
            &small,
        ),
        Opt::Level(2),
    );
    assert_eq!(products(&peephole), (3, 1));
}
