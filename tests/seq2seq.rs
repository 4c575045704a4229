//! `models/seq2seq_attention.rnn` against its PyTorch reference
//! (`tests/fixtures/seq2seq_reference.py`, fixtures by `make_seq2seq.py`):
//! teacher-forced logits and attention, greedy and beam-search outputs, on the
//! interpreter and the CPU backend at -O0/-O1/-O2 and on WGSL at -O0/-O2; beam width 1 is greedy; beams
//! come out best first; a padded batch equals its sequences run one by one. Also
//! the pieces it is built from: `lengths` on a bidirectional 2-layer LSTM against
//! PyTorch's packed sequences (`make_packed.py`), and dot-product attention by hand.

mod common;

use ndarray::{s, ArrayD, IxDyn};
use rnnc_cli::args::ModelArgs;
use rnnc_interp::Tensor;
use std::collections::HashMap;

/// Runs the seq2seq model in `mode` (extra `--param`s appended) on `inputs`; the
/// CPU backend (`cpu`, or `cpuN` on N threads) must compile the whole model, decode
/// loops included.
fn run(
    mode: &str,
    extra: &[&str],
    inputs: &HashMap<String, Tensor>,
    level: u8,
    backend: &str,
) -> HashMap<String, Tensor> {
    let mut params = common::seq2seq_params(mode);
    params.extend(extra.iter().map(|p| p.to_string()));
    let mut g = rnnc_cli::compile(&ModelArgs {
        model: common::root().join("models/seq2seq_attention.rnn"),
        params,
        config: None,
    })
    .unwrap();
    let passes = rnnc_opt::Opt::Level(level).build().unwrap();
    rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
    let w = rnnc_cli::weights::load(
        &common::seq2seq_dir().join("weights.safetensors"),
        &g.weights(),
    )
    .unwrap();
    let verified = rnnc_ir::verify(&g).unwrap();
    let outs = match backend {
        "interp" => rnnc_interp::run(&verified, inputs, &w),
        "wgsl" => rnnc_backend_wgsl::WgslBackend::new(verified, &w)
            .unwrap_or_else(|e| panic!("{e}"))
            .run(inputs),
        cpu => {
            let threads = cpu.trim_start_matches("cpu").parse().unwrap_or(1);
            let b = rnnc_backend_cpu::CpuBackend::with_threads(verified, &w, threads).unwrap();
            let out = b.run(inputs);
            let label = format!("{mode} -O{level} {backend}");
            let whole = b.program_report().iter().all(|r| r.outcome.is_ok());
            assert!(whole, "{label}: {:?}", b.program_report());
            out
        }
    }
    .unwrap_or_else(|e| panic!("{mode} -O{level} {backend}: {e}"));
    outs.into_iter().collect()
}

fn fixture(name: &str) -> Tensor {
    rnnc_cli::npy::read(&common::seq2seq_dir().join(format!("{name}.npy"))).unwrap()
}

fn inputs(with_target: bool) -> HashMap<String, Tensor> {
    let mut m = HashMap::new();
    for name in ["src", "src_lengths"] {
        m.insert(name.to_string(), fixture(name));
    }
    if with_target {
        m.insert("tgt_in".to_string(), fixture("tgt_in"));
    }
    m
}

fn ids(t: &Tensor) -> &ArrayD<i64> {
    match t {
        Tensor::I64(a) => a,
        Tensor::F32(_) => panic!("expected token ids"),
    }
}

#[test]
fn teacher_forced_logits_match_pytorch() {
    for level in 0..=2 {
        for backend in ["interp", "cpu"] {
            let out = run("teacher", &[], &inputs(true), level, backend);
            for name in ["logits", "attention"] {
                let d = common::max_diff_f32(out[name].f32(), fixture(name).f32());
                assert!(d <= 1e-5, "{name} -O{level} {backend}: max diff {d}");
            }
        }
    }
}

#[test]
fn greedy_decoding_matches_pytorch() {
    for level in [0, 2] {
        for backend in ["interp", "cpu"] {
            let out = run("greedy", &[], &inputs(false), level, backend);
            let label = format!("-O{level} {backend}");
            assert_eq!(
                ids(&out["tokens"]),
                ids(&fixture("greedy_tokens")),
                "{label}"
            );
            assert_eq!(
                ids(&out["lengths"]),
                ids(&fixture("greedy_lengths")),
                "{label}"
            );
            let d = common::max_diff_f32(out["scores"].f32(), fixture("greedy_scores").f32());
            assert!(d <= 1e-5, "{label}: scores differ by {d}");
        }
    }
}

/// The WGSL backend (memories, the source axis and both decode loops on the
/// device) against the same fixtures, at -O0 and -O2.
#[test]
fn every_mode_matches_pytorch_on_wgpu() {
    for level in [0, 2] {
        let out = run("teacher", &[], &inputs(true), level, "wgsl");
        for name in ["logits", "attention"] {
            let d = common::max_diff_f32(out[name].f32(), fixture(name).f32());
            assert!(d <= 1e-4, "wgsl {name} -O{level}: max diff {d}");
        }
        for mode in ["greedy", "beam"] {
            let out = run(mode, &[], &inputs(false), level, "wgsl");
            let label = format!("wgsl {mode} -O{level}");
            for name in ["tokens", "lengths"] {
                let want = fixture(&format!("{mode}_{name}"));
                assert_eq!(ids(&out[name]), ids(&want), "{label} {name}");
            }
            let want = fixture(&format!("{mode}_scores"));
            let d = common::max_diff_f32(out["scores"].f32(), want.f32());
            assert!(d <= 1e-4, "{label}: scores differ by {d}");
        }
    }
}

#[test]
fn beam_search_matches_pytorch_best_first() {
    for (level, backend) in [(0, "cpu"), (2, "cpu")] {
        let out = run("beam", &[], &inputs(false), level, backend);
        let label = format!("-O{level} {backend}");
        assert_eq!(ids(&out["tokens"]), ids(&fixture("beam_tokens")), "{label}");
        assert_eq!(
            ids(&out["lengths"]),
            ids(&fixture("beam_lengths")),
            "{label}"
        );
        let d = common::max_diff_f32(out["scores"].f32(), fixture("beam_scores").f32());
        assert!(d <= 1e-5, "{label}: beam scores differ by {d}");
    }
    let out = run("beam", &[], &inputs(false), 2, "interp");
    assert_eq!(ids(&out["tokens"]), ids(&fixture("beam_tokens")));
    assert_eq!(ids(&out["lengths"]), ids(&fixture("beam_lengths")));
    let scores = out["scores"].f32();
    let d = common::max_diff_f32(scores, fixture("beam_scores").f32());
    assert!(d <= 1e-5, "beam scores differ by {d}");
    for row in scores.rows() {
        assert!(
            row.windows(2).into_iter().all(|w| w[0] >= w[1]),
            "scores must not increase with rank: {row}"
        );
    }
    // The fixture is chosen so that search matters: some best beam is not greedy's.
    let greedy = fixture("greedy_tokens");
    let best = ids(&out["tokens"])
        .slice(s![.., 0, ..])
        .to_owned()
        .into_dyn();
    assert_ne!(&best, ids(&greedy));
}

/// The compiled decoder step splits its work between threads without changing a
/// bit of any output.
#[test]
fn cpu_threads_do_not_change_any_mode() {
    for mode in ["teacher", "greedy", "beam"] {
        let given = inputs(mode == "teacher");
        let one = run(mode, &[], &given, 2, "cpu1");
        for threads in ["cpu2", "cpu3"] {
            let other = run(mode, &[], &given, 2, threads);
            for (name, t) in &one {
                assert_eq!(
                    common::max_diff(t, &other[name]),
                    0.0,
                    "{mode} {threads} {name}"
                );
            }
        }
    }
}

#[test]
fn beam_width_one_is_greedy() {
    let greedy = run("greedy", &[], &inputs(false), 0, "interp");
    let beam = run("beam", &["beam_width=1"], &inputs(false), 0, "interp");
    let tokens = ids(&beam["tokens"])
        .slice(s![.., 0, ..])
        .to_owned()
        .into_dyn();
    assert_eq!(&tokens, ids(&greedy["tokens"]));
    let lengths = ids(&beam["lengths"]).slice(s![.., 0]).to_owned().into_dyn();
    assert_eq!(&lengths, ids(&greedy["lengths"]));
    let scores = beam["scores"].f32().slice(s![.., 0]).to_owned().into_dyn();
    assert_eq!(
        &scores,
        greedy["scores"].f32(),
        "the same sums, in the same order"
    );
}

/// Example `b` alone: its source cut to its own length, no padding at all.
fn one(b: usize, with_target: bool) -> HashMap<String, Tensor> {
    let all = inputs(with_target);
    let len = ids(&all["src_lengths"])[[b]] as usize;
    let src = ids(&all["src"]).slice(s![b..b + 1, ..len]).to_owned();
    let mut m = HashMap::new();
    m.insert("src".into(), Tensor::I64(src.into_dyn()));
    m.insert(
        "src_lengths".into(),
        Tensor::I64(ArrayD::from_elem(IxDyn(&[1]), len as i64)),
    );
    if with_target {
        let tgt = ids(&all["tgt_in"]).slice(s![b..b + 1, ..]).to_owned();
        m.insert("tgt_in".into(), Tensor::I64(tgt.into_dyn()));
    }
    m
}

#[test]
fn a_padded_batch_equals_its_sequences_one_by_one() {
    let lengths = ids(&fixture("src_lengths")).clone();
    let batch = lengths.len();
    assert!(
        lengths.iter().any(|n| *n < lengths[[0]]),
        "the fixture pads some sources"
    );
    let teacher = run("teacher", &[], &inputs(true), 2, "interp");
    let greedy = run("greedy", &[], &inputs(false), 2, "interp");
    let beam = run("beam", &[], &inputs(false), 2, "interp");
    for b in 0..batch {
        let alone = run("teacher", &[], &one(b, true), 2, "interp");
        let len = lengths[[b]] as usize;
        let row = teacher["logits"]
            .f32()
            .slice(s![b..b + 1, .., ..])
            .to_owned();
        let d = common::max_diff_f32(&row.into_dyn(), alone["logits"].f32());
        assert!(d <= 1e-5, "example {b}: logits differ by {d}");
        // Attention over the padded source: the padding gets exactly zero weight.
        let attn = teacher["attention"].f32();
        assert!(attn.slice(s![b, .., len..]).iter().all(|w| *w == 0.0));
        let row = attn.slice(s![b..b + 1, .., ..len]).to_owned();
        let d = common::max_diff_f32(&row.into_dyn(), alone["attention"].f32());
        assert!(d <= 1e-5, "example {b}: attention differs by {d}");

        let alone = run("greedy", &[], &one(b, false), 2, "interp");
        let row = ids(&greedy["tokens"]).slice(s![b..b + 1, ..]).to_owned();
        assert_eq!(
            &row.into_dyn(),
            ids(&alone["tokens"]),
            "greedy, example {b}"
        );
        let alone = run("beam", &[], &one(b, false), 2, "interp");
        let row = ids(&beam["tokens"]).slice(s![b..b + 1, .., ..]).to_owned();
        assert_eq!(&row.into_dyn(), ids(&alone["tokens"]), "beam, example {b}");
    }
}

#[test]
fn bad_lengths_and_tokens_are_errors_not_panics() {
    let g = rnnc_cli::compile(&ModelArgs {
        model: common::root().join("models/seq2seq_attention.rnn"),
        params: common::seq2seq_params("greedy"),
        config: None,
    })
    .unwrap();
    let w = rnnc_cli::weights::load(
        &common::seq2seq_dir().join("weights.safetensors"),
        &g.weights(),
    )
    .unwrap();
    let verified = rnnc_ir::verify(&g).unwrap();
    let gpu = rnnc_backend_wgsl::WgslBackend::new(rnnc_ir::verify(&g).unwrap(), &w).unwrap();
    let cpu = rnnc_backend_cpu::CpuBackend::new(rnnc_ir::verify(&g).unwrap(), &w).unwrap();
    // The interpreter's message, and the WGSL and CPU backends' the same (checked
    // before anything runs).
    let with = |name: &str, t: Tensor| {
        let mut m = inputs(false);
        m.insert(name.to_string(), t);
        let e = rnnc_interp::run(&verified, &m, &w).unwrap_err().0;
        assert_eq!(gpu.run(&m).unwrap_err().0, e, "wgsl, {name}");
        assert_eq!(cpu.run(&m).unwrap_err().0, e, "cpu, {name}");
        e
    };
    let lengths = |v: Vec<i64>| Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[4]), v).unwrap());
    let e = with("src_lengths", lengths(vec![6, 0, 2, 5]));
    assert!(e.contains("lengths[1] = 0") && e.contains("empty"), "{e}");
    let e = with("src_lengths", lengths(vec![6, 9, 2, 5]));
    assert!(
        e.contains("lengths[1] = 9") && e.contains("between 1 and 6"),
        "{e}"
    );
    let mut src = ids(&fixture("src")).clone();
    src[[2, 1]] = 99;
    let e = with("src", Tensor::I64(src));
    assert!(e.contains("99"), "{e}");
    let e = with("src", Tensor::I64(ArrayD::zeros(IxDyn(&[4, 0]))));
    assert!(e.contains("empty source sequence"), "{e}");
    // Teacher-forced, a target id outside the decoder's table: the compiled
    // program checks the ids its scan's embedding reads.
    let g = rnnc_cli::compile(&ModelArgs {
        model: common::root().join("models/seq2seq_attention.rnn"),
        params: common::seq2seq_params("teacher"),
        config: None,
    })
    .unwrap();
    let verified = rnnc_ir::verify(&g).unwrap();
    let cpu = rnnc_backend_cpu::CpuBackend::new(rnnc_ir::verify(&g).unwrap(), &w).unwrap();
    let mut m = inputs(true);
    let mut tgt = ids(&fixture("tgt_in")).clone();
    tgt[[1, 3]] = 12;
    m.insert("tgt_in".into(), Tensor::I64(tgt));
    let e = rnnc_interp::run(&verified, &m, &w).unwrap_err().0;
    assert!(e.contains("token id 12") && e.contains("12 rows"), "{e}");
    assert_eq!(cpu.run(&m).unwrap_err().0, e);
    assert!(cpu.program_report().iter().all(|r| r.outcome.is_ok()));
}

#[test]
fn packed_bidirectional_lstm_matches_pytorch() {
    let dir = common::root().join("tests/fixtures/packed");
    let lowered = rnnc_cli::compile(&ModelArgs {
        model: common::root().join("tests/models/packed_lstm.rnn"),
        params: vec!["input_size=3".into(), "hidden_size=4".into()],
        config: None,
    })
    .unwrap();
    let w = rnnc_cli::weights::load(&dir.join("weights.safetensors"), &lowered.weights()).unwrap();
    let read = |n: &str| rnnc_cli::npy::read(&dir.join(format!("{n}.npy"))).unwrap();
    let inputs: HashMap<String, Tensor> = ["input", "lengths"]
        .iter()
        .map(|n| (n.to_string(), read(n)))
        .collect();
    for level in 0..=2 {
        let mut g = lowered.clone();
        let passes = rnnc_opt::Opt::Level(level).build().unwrap();
        rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
        for backend in ["interp", "cpu"] {
            let verified = rnnc_ir::verify(&g).unwrap();
            let outs: HashMap<String, Tensor> = match backend {
                "interp" => rnnc_interp::run(&verified, &inputs, &w),
                _ => {
                    let b = rnnc_backend_cpu::CpuBackend::new(verified, &w).unwrap();
                    b.run(&inputs)
                }
            }
            .unwrap()
            .into_iter()
            .collect();
            for name in ["output", "h_n", "c_n"] {
                let d = common::max_diff_f32(outs[name].f32(), read(name).f32());
                assert!(d <= 1e-5, "{name} -O{level} {backend}: max diff {d}");
            }
        }
    }
}

#[test]
fn dot_product_attention_weighs_the_real_positions() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("dot.rnn");
    std::fs::write(
        &model,
        "import \"std/attention.rnn\"\n\
         model M() {\n\
             input q: [B, 4]\n\
             input keys: [B, S, 4]\n\
             input mask: [B, S]\n\
             layer att = DotAttention(4, scale = 0.5)\n\
             context, weights = att(q, keys, mask)\n\
             output context\n\
             output weights\n\
         }\n",
    )
    .unwrap();
    let g = rnnc_cli::compile(&ModelArgs {
        model,
        params: vec![],
        config: None,
    })
    .unwrap();
    let (b, s, d) = (2, 3, 4);
    let val = |i: usize| ((i * 7919) % 13) as f32 / 6.5 - 1.0;
    let q = ArrayD::from_shape_fn(IxDyn(&[b, d]), |ix| val(ix[0] * 5 + ix[1]));
    let keys = ArrayD::from_shape_fn(IxDyn(&[b, s, d]), |ix| {
        val(31 + ix[0] * 17 + ix[1] * 5 + ix[2])
    });
    let mask = ndarray::arr2(&[[1.0f32, 1.0, 1.0], [1.0, 1.0, 0.0]]).into_dyn();
    let inputs: HashMap<String, Tensor> = [
        ("q", q.clone()),
        ("keys", keys.clone()),
        ("mask", mask.clone()),
    ]
    .into_iter()
    .map(|(n, a)| (n.to_string(), Tensor::F32(a)))
    .collect();
    let outs: HashMap<String, Tensor> =
        rnnc_interp::run(&rnnc_ir::verify(&g).unwrap(), &inputs, &HashMap::new())
            .unwrap()
            .into_iter()
            .collect();
    for bi in 0..b {
        // By hand: softmax over the unmasked positions of 0.5 * k·q.
        let valid: Vec<usize> = (0..s).filter(|j| mask[[bi, *j]] == 1.0).collect();
        let score = |j: usize| 0.5 * (0..d).map(|k| keys[[bi, j, k]] * q[[bi, k]]).sum::<f32>();
        let z: f32 = valid.iter().map(|j| score(*j).exp()).sum();
        for j in 0..s {
            let want = if valid.contains(&j) {
                score(j).exp() / z
            } else {
                0.0
            };
            let got = outs["weights"].f32()[[bi, j]];
            assert!(
                (got - want).abs() < 1e-6,
                "weight [{bi}, {j}]: {got} vs {want}"
            );
        }
        for k in 0..d {
            let want: f32 = valid
                .iter()
                .map(|j| score(*j).exp() / z * keys[[bi, *j, k]])
                .sum();
            let got = outs["context"].f32()[[bi, k]];
            assert!(
                (got - want).abs() < 1e-5,
                "context [{bi}, {k}]: {got} vs {want}"
            );
        }
    }
}
