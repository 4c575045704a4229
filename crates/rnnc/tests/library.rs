//! The library API as a program using rnnc calls it: loading from a file and from
//! source, weights checked on the way in, every backend this machine has against
//! the interpreter, streaming against the whole run, and bad input as errors.

use ndarray::{ArrayD, IxDyn};
use rnnc::{BackendKind, Error, Model, Opt, Params, Tensor, Weights};
use std::collections::HashMap;
use std::path::PathBuf;

fn model_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(name)
}

fn lstm() -> Model {
    let params = Params::new().set("input_size", 5).set("hidden_size", 7);
    Model::load(model_path("lstm.rnn"), &params).unwrap()
}

/// Deterministic values in [-0.5, 0.5) (a small LCG: no RNG dependency).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn array(shape: &[usize], seed: u64) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), values(shape.iter().product(), seed)).unwrap()
}

fn weights_for(m: &Model) -> Weights {
    m.weights()
        .iter()
        .enumerate()
        .map(|(i, (k, ty))| {
            let shape: Vec<usize> = ty
                .dims
                .iter()
                .map(|d| match d {
                    rnnc::Dim::Fixed(n) => *n,
                    _ => unreachable!("weights have fixed shapes"),
                })
                .collect();
            (k.clone(), array(&shape, i as u64 + 1))
        })
        .collect()
}

fn input(batch: usize, time: usize, seed: u64) -> HashMap<String, Tensor> {
    [(
        "input".to_string(),
        Tensor::F32(array(&[batch, time, 5], seed)),
    )]
    .into()
}

fn max_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            assert_eq!(ta.shape(), tb.shape(), "{na}");
            (ta.f32() - tb.f32())
                .iter()
                .fold(0f32, |m, d| m.max(d.abs()))
        })
        .fold(0.0, f32::max)
}

#[test]
fn a_model_loads_from_a_file_or_from_source() {
    let m = lstm();
    assert_eq!(m.name(), "LSTM");
    let inputs: Vec<String> = m.inputs().into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(inputs, ["input", "h0", "c0"]);
    let outputs: Vec<String> = m.outputs().into_iter().map(|(n, _)| n).collect();
    assert_eq!(outputs, ["output", "h_n", "c_n"]);
    assert_eq!(m.weights().len(), 4);
    assert!(m.ir().contains("scan"), "{}", m.ir());
    let table = m.passes(&Opt::Level(2)).unwrap();
    assert!(table.contains("fuse-gates"), "{table}");

    let src = "import \"std/rnn.rnn\"\n\
               model Tiny(hidden: int) {\n\
                   input x: [B, T, 3]\n\
                   ys, h = rnn(RNNCell(3, hidden), x)\n\
                   output ys\n\
               }\n";
    let tiny = Model::from_source(src, &Params::new().set("hidden", 4)).unwrap();
    assert_eq!(tiny.name(), "Tiny");
    assert_eq!(tiny.weights().len(), 4);
}

#[test]
fn every_backend_here_matches_the_interpreter() {
    let m = lstm();
    let w = weights_for(&m);
    let x = input(3, 6, 9);
    let reference = m
        .compile(w.clone(), BackendKind::Interp)
        .unwrap()
        .run(&x)
        .unwrap();
    for opt in [Opt::Level(0), Opt::Level(2)] {
        let o = m.optimise(&opt).unwrap();
        for threads in [None, Some(1), Some(2)] {
            let c = o.compile(w.clone(), BackendKind::Cpu { threads }).unwrap();
            let d = max_diff(&reference, &c.run(&x).unwrap());
            assert!(d < 1e-5, "{opt:?} {threads:?}: {d}");
            assert!(c.notes().is_empty(), "{:?}", c.notes());
            assert!(c.describe().contains("CPU"), "{}", c.describe());
        }
    }
    // The WGSL backend where this machine has a Vulkan adapter (llvmpipe in CI).
    match m
        .optimise(&Opt::Level(2))
        .unwrap()
        .compile(w, BackendKind::Wgsl)
    {
        Ok(c) => assert!(max_diff(&reference, &c.run(&x).unwrap()) < 1e-4),
        Err(e) => assert!(e.text().contains("Vulkan"), "{e}"),
    }
}

#[test]
fn a_stream_steps_like_the_whole_run() {
    let m = lstm().optimise(&Opt::Level(2)).unwrap();
    let w = weights_for(&m);
    let x = array(&[2, 5, 5], 4);
    let whole = m
        .compile(w.clone(), BackendKind::Cpu { threads: Some(1) })
        .unwrap()
        .run(&[("input".to_string(), Tensor::F32(x.clone()))].into())
        .unwrap();
    let mut s = m.stream(w, Some(1)).unwrap();
    assert_eq!(s.state_names()[0], ("h0".to_string(), "h_n".to_string()));
    let mut last = Vec::new();
    for t in 0..5 {
        let step = x.slice(ndarray::s![.., t..t + 1, ..]).to_owned().into_dyn();
        last = s
            .step(&[("input".to_string(), Tensor::F32(step))].into())
            .unwrap();
    }
    let (h_whole, h_stream) = (&whole[1].1, &last[1].1);
    let d = (h_whole.f32() - h_stream.f32())
        .iter()
        .fold(0f32, |m, d| m.max(d.abs()));
    assert!(d < 1e-5, "{d}");
    // After a reset the first step starts from zeros again: step 0 of the run.
    s.reset();
    let first = x.slice(ndarray::s![.., 0..1, ..]).to_owned().into_dyn();
    let again = s
        .step(&[("input".to_string(), Tensor::F32(first))].into())
        .unwrap();
    let whole_0 = whole[0]
        .1
        .f32()
        .slice(ndarray::s![.., 0..1, ..])
        .to_owned()
        .into_dyn();
    let d = (again[0].1.f32() - &whole_0)
        .iter()
        .fold(0f32, |m, d| m.max(d.abs()));
    assert!(d < 1e-5, "{d}");
}

fn message(r: Result<impl std::fmt::Debug, Error>) -> String {
    r.expect_err("an error").text().to_string()
}

#[test]
fn bad_input_is_an_error_that_says_what_is_wrong() {
    let path = model_path("lstm.rnn");
    let bad = |p: Params| message(Model::load(&path, &p));
    let e = bad(Params::new()
        .set("input_size", 5)
        .set("hidden_size", "many"));
    assert!(e.contains("hidden_size") && e.contains("int"), "{e}");
    let e = bad(Params::new()
        .set("input_size", 5)
        .set("hidden_size", 7)
        .set("colour", 3));
    assert!(e.contains("colour"), "{e}");
    let e = message(Model::from_source("model M( {", &Params::new()));
    assert!(e.contains("<source>"), "{e}");
    let e = message(Model::load("no/such/model.rnn", &Params::new()));
    assert!(e.contains("no/such/model.rnn"), "{e}");

    let m = lstm();
    let mut w = weights_for(&m);
    w.remove("weight_hh_l0");
    w.insert("bias_ih_l0".into(), array(&[3], 1));
    w.insert("extra".into(), array(&[1], 1));
    let e = message(m.check_weights(w, "my dict"));
    for part in [
        "my dict",
        "missing tensor `weight_hh_l0`",
        "`bias_ih_l0` has shape [3]",
        "unexpected tensor `extra`",
    ] {
        assert!(e.contains(part), "{part}: {e}");
    }
    let e = message(m.no_weights());
    assert!(e.contains("4 weights"), "{e}");

    let c = m
        .compile(weights_for(&m), BackendKind::Cpu { threads: Some(1) })
        .unwrap();
    let e = message(c.run(&[("input".to_string(), Tensor::F32(array(&[2, 3, 6], 1)))].into()));
    assert!(e.contains("input"), "{e}");
    let ids = Tensor::I64(ArrayD::zeros(IxDyn(&[2, 3, 5])));
    let e = message(c.run(&[("input".to_string(), ids)].into()));
    assert!(e.contains("i64") || e.contains("f32"), "{e}");
    let e = message(c.run(&HashMap::new()));
    assert!(e.contains("input"), "{e}");

    assert!(BackendKind::from_name("gpu")
        .unwrap_err()
        .contains("cpu, interp"));
    let interp = BackendKind::from_name("interp").unwrap();
    assert!(interp.with_threads(2).unwrap_err().contains("one thread"));
    assert!(BackendKind::default().with_threads(0).is_err());
}

#[test]
fn ahead_of_time_output_comes_from_the_library() {
    let m = lstm().optimise(&Opt::Level(2)).unwrap();
    let obj = m.object_file(&weights_for(&m), 2, 6).unwrap();
    assert!(!obj.object.is_empty());
    assert!(
        obj.header.contains(&format!("void {}_run(", obj.prefix)),
        "{}",
        obj.header
    );
    assert_eq!(obj.inputs[0], ("input".to_string(), vec![2, 6, 5]));
    let k = m.gpu_kernels(rnnc::GpuTarget::Wgsl, 2, 6).unwrap();
    assert_eq!(k.file, "LSTM.wgsl");
    assert!(k.source.contains("@compute"), "{}", k.source);
    assert!(k.manifest.contains("\"kernels\""), "{}", k.manifest);
    assert!(k.kernels > 0 && k.launches_per_run > 0);
    // The LSTM's scan at this size: one workgroup for the whole sequence.
    assert_eq!(k.scans.len(), 1);
    assert!(
        k.scans[0].starts_with("scan0: whole sequence"),
        "{:?}",
        k.scans
    );
    let cuda = m.gpu_kernels(rnnc::GpuTarget::Cuda, 2, 6).unwrap();
    assert!(cuda.source.contains("__global__"), "{}", cuda.source);
    // A shape the model cannot take is an error, not a panic.
    let e = message(m.object_file(&weights_for(&m), 0, 6).map(|o| o.prefix));
    assert!(e.contains("at least 1"), "{e}");
    let e = message(m.gpu_kernels(rnnc::GpuTarget::Wgsl, 2, 0).map(|k| k.file));
    assert!(e.contains("at least 1"), "{e}");
}

#[test]
fn explore_records_every_pass_with_its_numbers_and_its_diff() {
    let m = Model::load(
        model_path("lstm_seed_equations.rnn"),
        &Params::new().set("input_size", 3).set("hidden_size", 4),
    )
    .unwrap();
    let source = std::fs::read_to_string(model_path("lstm_seed_equations.rnn")).unwrap();
    let r = m.explore(&Opt::Level(2), Some(source.clone())).unwrap();
    let summary: String = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{i:>2} {:<23} changed={:<5} nodes={:<3} matmul/loop={} hoisted={} elementwise={:<2} flops={:<3} bytes={:<3} +{} -{}\n",
                s.pass,
                s.changed,
                s.nodes,
                s.matmuls_in_loop,
                s.matmuls_outside,
                s.elementwise,
                s.flops_per_step,
                s.weight_bytes_per_step,
                s.added(),
                s.removed()
            )
        })
        .collect();
    insta::assert_snapshot!(summary);
    // fuse-gates stacks the four gates' weights: its diff shows the concat.
    let fuse = r.steps.iter().find(|s| s.pass == "fuse-gates").unwrap();
    assert!(
        fuse.diff
            .iter()
            .any(|(t, l)| *t == '+' && l.contains("concat")),
        "{:?}",
        fuse.diff
    );
    for s in &r.steps {
        if !s.changed {
            assert_eq!(s.added() + s.removed(), 0, "{} changed nothing", s.pass);
        }
        let after: Vec<&str> = s
            .diff
            .iter()
            .filter(|(t, _)| *t != '-')
            .map(|(_, l)| l.as_str())
            .collect();
        assert_eq!(
            after.join("\n"),
            s.ir.trim_end(),
            "{}: the diff ends at its IR",
            s.pass
        );
    }
    // Lowered nodes point at the line they came from: the forget gate's sigmoid
    // at `f = sigmoid(W_f @ [h, x] + b_f)`.
    let lowered = &r.steps[0];
    let src: Vec<&str> = source.lines().collect();
    let linked: Vec<(&str, &str)> = lowered
        .diff
        .iter()
        .zip(&lowered.source_lines)
        .filter_map(|((_, ir), l)| l.map(|n| (ir.as_str(), src[n - 1])))
        .collect();
    assert!(linked.len() >= 20, "{} IR lines linked", linked.len());
    assert!(
        linked
            .iter()
            .any(|(ir, s)| ir.contains("= sigmoid") && s.contains("f = sigmoid(W_f")),
        "{linked:?}"
    );
    for (ir, s) in &linked {
        if ir.contains("= tanh") {
            assert!(s.contains("tanh("), "{ir} from {s}");
        }
    }
    let html = rnnc::explore_html::html(&r);
    assert!(
        html.contains("href=\"#pass-0-l"),
        "source lines link back to the IR"
    );
    assert_eq!(
        html.matches("<section class=\"pass\"").count(),
        r.steps.len()
    );
    assert!(html.contains("id=\"line-1\""));
    for outside in ["http://", "https://", "<script src", "<link"] {
        assert!(
            !html.contains(outside),
            "the page reaches outside: {outside}"
        );
    }
}

#[test]
fn the_drawing_has_a_box_per_node_with_its_type_and_source_line() {
    let path = model_path("lstm_seed_equations.rnn");
    let m = Model::load(
        &path,
        &Params::new().set("input_size", 3).set("hidden_size", 4),
    )
    .unwrap();
    let source = std::fs::read_to_string(&path).unwrap();
    let svg = m.svg(Some(&source));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    // A box per node of the graph and of the scan's body: one `%N` per line of
    // the text form that defines values.
    let defined = m
        .ir()
        .lines()
        .filter(|l| l.trim_start().starts_with('%'))
        .count();
    assert_eq!(svg.matches("<g class=\"node\"").count(), defined);
    assert!(
        svg.contains("%20 = sigmoid : f32[B, 4]\nsource line 26"),
        "{svg}"
    );
    // One element per line, so a change to the layout reads as a diff.
    insta::assert_snapshot!(svg.replace("><", ">\n<"));
}

#[test]
fn the_generated_code_of_each_backend_is_listed() {
    let m = Model::load(
        model_path("lstm_seed_equations.rnn"),
        &Params::new().set("input_size", 3).set("hidden_size", 4),
    )
    .unwrap()
    .optimise(&Opt::Level(2))
    .unwrap();
    let cpu = m
        .generated_code(BackendKind::Cpu { threads: Some(1) }, 1, 8)
        .unwrap();
    assert!(cpu.summary.starts_with("cpu ("), "{}", cpu.summary);
    // A scan's function and the whole-model program, each as CLIF and machine code.
    let clif: Vec<_> = cpu.pieces.iter().filter(|p| p.language == "clif").collect();
    let asm: Vec<_> = cpu.pieces.iter().filter(|p| p.language == "asm").collect();
    assert!(
        clif.len() >= 2 && clif.len() == asm.len(),
        "{:?}",
        cpu.pieces.iter().map(|p| &p.title).collect::<Vec<_>>()
    );
    assert!(
        clif.iter().all(|p| p.text.starts_with("function ")),
        "CLIF text"
    );
    assert!(
        asm.iter().all(|p| p.text.contains("ret")),
        "machine code ends in a return"
    );
    let wgsl = m.generated_code(BackendKind::Wgsl, 1, 8).unwrap();
    assert!(wgsl.pieces[0].text.contains("@compute"), "WGSL kernels");
    assert!(
        wgsl.pieces[1].text.trim_start().starts_with('{'),
        "the manifest is JSON"
    );
    assert!(m.generated_code(BackendKind::Interp, 1, 8).is_err());
}
