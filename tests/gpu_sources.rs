//! Snapshots of the GPU sources rnnc emits for the standard cells (PyTorch's LSTM,
//! GRU and tanh RNN at I=3, H=4, -O2, batch 2, length 3) and of one launch
//! manifest: a change to the plan or either dialect shows up here for review.

mod common;

use rnnc_cli::args::ModelArgs;
use rnnc_opt::Opt;

fn plan(model: &str, extra: &[&str]) -> rnnc_gpu::GpuPlan {
    let mut params = vec!["input_size=3".to_string(), "hidden_size=4".to_string()];
    params.extend(extra.iter().map(|s| s.to_string()));
    let args = ModelArgs {
        model: common::root().join("models").join(model),
        params,
        config: None,
    };
    let mut g = rnnc_cli::compile(&args).unwrap();
    let passes = Opt::Level(2).build().unwrap();
    rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
    rnnc_gpu::plan(&rnnc_ir::verify(&g).unwrap(), &g.name, 2, 3).unwrap()
}

#[test]
fn standard_cells_emit_reviewed_sources() {
    for (name, model, extra) in [
        ("lstm", "lstm.rnn", &[][..]),
        ("gru", "gru.rnn", &[][..]),
        ("rnn_tanh", "elman_rnn.rnn", &["nonlinearity=tanh"][..]),
    ] {
        let p = plan(model, extra);
        insta::assert_snapshot!(format!("{name}_wgsl"), rnnc_backend_wgsl::source(&p));
        insta::assert_snapshot!(format!("{name}_cuda"), rnnc_backend_cuda::source(&p));
    }
    let p = plan("lstm.rnn", &[]);
    insta::assert_snapshot!(
        "lstm_manifest",
        rnnc_gpu::manifest::to_json(&p, "cuda", "LSTM.cu")
    );
}
