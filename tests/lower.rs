//! The lowered IR of every model (with its seed-0 fixture's hyperparameters),
//! snapshotted; and the text form round-trips: print → parse → print is identity.

mod common;

use rnnc_cli::args::ModelArgs;

/// Each model file and the fixture whose hyperparameters it is shown with.
const MODELS: &[(&str, &str)] = &[
    ("bilstm", "bilstm"),
    ("elman_rnn", "elman_relu"),
    ("gru", "torch_gru_bidir2_h0"),
    ("gru_cell", "gru_cell"),
    ("gru_model", "gru_model"),
    ("lstm", "torch_lstm_bidir2_h0"),
    ("lstm_proj", "torch_lstm_proj"),
    ("lstm_cell", "lstm_cell"),
    ("lstm_classifier", "lstm_classifier"),
    ("lstm_seed_equations", "lstm_seed_equations"),
    ("peephole_lstm_cell", "peephole_lstm_cell"),
    ("speech_lstm", "speech_lstm"),
    ("timeseries_lstm", "timeseries_lstm"),
];

/// The seq2seq model in each of its modes, with its fixture's hyperparameters.
const SEQ2SEQ_MODES: &[&str] = &["teacher", "greedy", "beam"];

fn lowered(fixture: &str) -> rnnc_ir::Graph {
    let fx = common::seed0(fixture);
    rnnc_cli::compile(&ModelArgs {
        model: fx.model(),
        params: fx.params(),
        config: None,
    })
    .unwrap_or_else(|e| panic!("{fixture}: {e}"))
}

/// Every snapshotted graph: (snapshot name, graph).
fn all_lowered() -> Vec<(String, rnnc_ir::Graph)> {
    let mut out: Vec<(String, rnnc_ir::Graph)> = MODELS
        .iter()
        .map(|(name, fixture)| (name.to_string(), lowered(fixture)))
        .collect();
    for mode in SEQ2SEQ_MODES {
        let g = rnnc_cli::compile(&ModelArgs {
            model: common::root().join("models/seq2seq_attention.rnn"),
            params: common::seq2seq_params(mode),
            config: None,
        })
        .unwrap_or_else(|e| panic!("seq2seq {mode}: {e}"));
        out.push((format!("seq2seq_attention_{mode}"), g));
    }
    out
}

#[test]
fn every_model_files_appears_here() {
    for entry in std::fs::read_dir(common::root().join("models")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "rnn") {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                MODELS.iter().any(|(m, _)| *m == stem) || stem == "seq2seq_attention",
                "models/{stem}.rnn has no lowering snapshot"
            );
        }
    }
}

#[test]
fn lowered_ir_snapshots() {
    for (name, g) in all_lowered() {
        insta::assert_snapshot!(format!("lower_{name}"), g.to_string());
    }
}

#[test]
fn text_form_round_trips() {
    for (name, g) in all_lowered() {
        let text = g.to_string();
        let back = rnnc_ir::parse_graph(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        rnnc_ir::verify(&back)
            .unwrap_or_else(|e| panic!("{name}: reparsed graph does not verify: {e:?}"));
        assert_eq!(
            back.to_string(),
            text,
            "{name}: print → parse → print changed the text"
        );
    }
}

#[test]
fn ir_text_errors_are_reported_with_lines() {
    let cases = [
        (
            "graph g {\n  %0 = bogus : f32[B]\n}\n",
            "line 2: unknown op `bogus`",
        ),
        (
            "graph g {\n  %1 = tanh %0 : f32[B]\n}\n",
            "line 2: %0 is used before it is defined",
        ),
        ("graph g {\n  %0 = zeros : f32[B]\n", "missing `}`"),
        (
            "graph g {\n  %0 = slice axis=0 %9 : f32[B]\n}\n",
            "line 2: %9 is used before it is defined",
        ),
    ];
    for (text, want) in cases {
        let e = rnnc_ir::parse_graph(text).expect_err(text).to_string();
        assert!(e.contains(want), "{e:?} should contain {want:?}");
    }
    // Well-formed text whose types are wrong parses, and the verifier rejects it.
    let g = rnnc_ir::parse_graph(
        "graph g {\n  %0 = zeros : f32[B, 4]\n  %1 = tanh %0 : f32[B, 5]\n  output \"y\" %1\n}\n",
    )
    .unwrap();
    let errs = rnnc_ir::verify(&g).unwrap_err();
    assert!(
        errs[0].contains("do not match the inferred f32[B, 4]"),
        "{errs:?}"
    );
}

/// In a cell, `x[0]` is one number per example and scales that example's `h`, and
/// a learned initial state starts every example (tests/models/per_example_scalar.rnn):
/// the interpreter against the equations as a loop over examples, steps and units.
#[test]
fn per_example_scalars_broadcast_per_example() {
    let g = rnnc_cli::compile(&ModelArgs {
        model: common::root().join("tests/models/per_example_scalar.rnn"),
        params: vec!["input_size=3".into(), "hidden_size=4".into()],
        config: None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let w = rnnc_cli::bench::random_weights(&g, 3);
    let inputs = rnnc_cli::bench::random_inputs(&g, 5, 4, 9);
    let out = rnnc_interp::run(&rnnc_ir::verify(&g).unwrap(), &inputs, &w).unwrap();
    let f = |t: &rnnc_interp::Tensor| t.f32().clone();
    let (x, u, wm, h0) = (f(&inputs["input"]), &w["u"], &w["W"], &w["h0"]);
    let hs = f(&out.iter().find(|(n, _)| n == "output").unwrap().1);
    for b in 0..5 {
        let mut h = [h0[[0]], h0[[1]], h0[[2]], h0[[3]]];
        for t in 0..4 {
            let xt = |i: usize| x[[b, t, i]];
            let next: Vec<f32> = (0..4)
                .map(|j| {
                    let wx: f32 = (0..3).map(|i| wm[[j, i]] * xt(i)).sum();
                    (wx + h[j] * xt(0) + u[[j]] * xt(2)).tanh()
                })
                .collect();
            h.copy_from_slice(&next);
            for j in 0..4 {
                let d = (hs[[b, t, j]] - h[j]).abs();
                assert!(d < 1e-5, "b={b} t={t} j={j}: {} vs {}", hs[[b, t, j]], h[j]);
            }
        }
    }
}
