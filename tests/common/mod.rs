//! Shared helpers for the end-to-end tests: the committed PyTorch fixtures and the
//! model file and hyperparameters each one maps to (DESIGN.md's naming contract).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One fixture directory written by `make_fixtures.py`.
pub struct Fixture {
    pub name: String,
    pub dir: PathBuf,
    pub meta: serde_json::Value,
}

impl Fixture {
    /// `models/NAME.rnn`, with the contract's exceptions for the torch.nn layers.
    pub fn model(&self) -> PathBuf {
        let n = self.name.as_str();
        let file = match n {
            "elman_tanh" | "elman_relu" => "elman_rnn",
            _ if n.starts_with("torch_lstm") => "lstm",
            _ if n.starts_with("torch_gru") => "gru",
            _ => n,
        };
        root().join("models").join(format!("{file}.rnn"))
    }

    /// `KEY=VALUE` for every constructor argument, as `--param` takes them.
    pub fn params(&self) -> Vec<String> {
        let kw = self.meta["ctor_kwargs"].as_object().expect("ctor_kwargs");
        kw.iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect()
    }

    /// Input names (file stems) in `meta.json` order.
    pub fn inputs(&self) -> Vec<(String, PathBuf)> {
        let ins = self.meta["inputs"].as_object().expect("inputs");
        ins.keys()
            .map(|f| (f.trim_end_matches(".npy").to_string(), self.dir.join(f)))
            .collect()
    }
}

/// Every fixture under `tests/fixtures/<set>/<name>/`, sorted.
pub fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    let base = root().join("tests/fixtures");
    let mut sets: Vec<PathBuf> = std::fs::read_dir(&base)
        .expect("tests/fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("seed"))
        .collect();
    sets.sort();
    for set in sets {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&set)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap())
                    .unwrap();
            out.push(Fixture {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                dir,
                meta,
            });
        }
    }
    out
}

/// The seed-0 fixture of each model file: small, fixed dims for snapshots. The
/// gate-by-gate LSTM's fixtures live apart, in `tests/fixtures/equations/`.
pub fn seed0(name: &str) -> Fixture {
    if name == "lstm_seed_equations" {
        let dir = root().join("tests/fixtures/equations/seed0");
        let meta =
            serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
        return Fixture {
            name: name.into(),
            dir,
            meta,
        };
    }
    fixtures()
        .into_iter()
        .find(|f| f.name == name && f.dir.parent().unwrap().ends_with("seed0"))
        .unwrap_or_else(|| panic!("no seed0 fixture {name}"))
}

pub fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// (model file, params) the GPU tests cover: every seed-0 fixture's model, the
/// equations LSTM, and the test models (ops the seed models leave out, custom cells
/// with `layer_norm`, `softmax`, memories and layout changes in their step, a fixed
/// length, padded
/// sequences with `lengths`).
pub fn gpu_cases() -> std::collections::BTreeSet<(PathBuf, Vec<String>)> {
    let mut cases: std::collections::BTreeSet<_> = fixtures()
        .iter()
        .filter(|f| f.dir.to_string_lossy().contains("seed0"))
        .map(|f| (f.model(), f.params()))
        .collect();
    let eq = seed0("lstm_seed_equations");
    cases.insert((eq.model(), eq.params()));
    let small = vec!["input_size=3".to_string(), "hidden_size=4".to_string()];
    for (m, params) in [
        ("ops", vec![]),
        ("layouts", vec![]),
        ("fixed_length", vec![]),
        ("cifg", small.clone()),
        ("mgu", small.clone()),
        ("input_only_state", small.clone()),
        ("per_example_scalar", small.clone()),
        ("layer_norm_lstm", small.clone()),
        ("softmax_step", small.clone()),
        ("memory_cell", small.clone()),
        ("layouts_in_step", small.clone()),
        ("packed_lstm", small),
    ] {
        cases.insert((root().join(format!("tests/models/{m}.rnn")), params));
    }
    // The sequence-to-sequence model in each mode: memories, a source axis, decode
    // loops.
    for mode in ["teacher", "greedy", "beam"] {
        cases.insert((
            root().join("models/seq2seq_attention.rnn"),
            seq2seq_params(mode),
        ));
    }
    cases
}

/// A GPU plan's sizes: batch, and a length for the target and the source alike.
pub fn dims(batch: usize, time: usize) -> rnnc_gpu::Dims {
    rnnc_gpu::Dims {
        batch,
        time,
        source: time,
    }
}

/// The PyTorch fixture of `models/seq2seq_attention.rnn` (made by
/// `tests/fixtures/make_seq2seq.py`).
pub fn seq2seq_dir() -> PathBuf {
    root().join("tests/fixtures/seq2seq")
}

/// `--param` values for the seq2seq fixture in one `mode` (teacher, greedy, beam).
pub fn seq2seq_params(mode: &str) -> Vec<String> {
    seq2seq_meta(mode)
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect()
}

/// The seq2seq fixture's hyperparameters (`meta.json`) with `mode` set.
pub fn seq2seq_meta(mode: &str) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(seq2seq_dir().join("meta.json")).unwrap();
    let serde_json::Value::Object(mut meta) = serde_json::from_str(&text).unwrap() else {
        panic!("meta.json holds an object")
    };
    meta.insert("mode".into(), mode.into());
    meta
}

/// The largest absolute difference between two f32 tensors of one shape. NaN
/// against NaN counts as equal, NaN against a number as infinitely far (a plain
/// fold with `f32::max` would skip NaNs and pass).
pub fn max_diff_f32(a: &ndarray::ArrayD<f32>, b: &ndarray::ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| match (x.is_nan(), y.is_nan()) {
            (true, true) => 0.0,
            (false, false) => (x - y).abs(),
            _ => f32::INFINITY,
        })
        .fold(0.0, f32::max)
}

/// The largest difference of two tensors: [`max_diff_f32`] for f32, the largest
/// id difference for i64 (token ids, lengths), ∞ where the dtypes or shapes differ.
pub fn max_diff(a: &rnnc_interp::Tensor, b: &rnnc_interp::Tensor) -> f32 {
    use rnnc_interp::Tensor;
    match (a, b) {
        (Tensor::F32(x), Tensor::F32(y)) => max_diff_f32(x, y),
        // Token ids, lengths: a wrong one differs by at least 1.
        (Tensor::I64(x), Tensor::I64(y)) if x.shape() == y.shape() => x
            .iter()
            .zip(y)
            .map(|(p, q)| p.abs_diff(*q) as f32)
            .fold(0.0, f32::max),
        _ => f32::INFINITY,
    }
}

/// A backend's outputs (or its error) against the interpreter's `want` at `atol`:
/// what differs goes to `failures`, labelled; true where the backend ran.
pub fn check_outputs(
    label: &str,
    got: Result<Vec<(String, rnnc_interp::Tensor)>, rnnc_interp::RunError>,
    want: &std::collections::HashMap<String, rnnc_interp::Tensor>,
    atol: f32,
    failures: &mut Vec<String>,
) -> bool {
    let got = match got {
        Ok(got) => got,
        Err(e) => {
            failures.push(format!("{label}: {e}"));
            return false;
        }
    };
    if got.len() != want.len() {
        failures.push(format!(
            "{label}: {} outputs, want {}",
            got.len(),
            want.len()
        ));
    }
    for (name, t) in &got {
        let d = max_diff(t, &want[name]);
        if d > atol {
            failures.push(format!("{label} {name}: differs by {d:e}"));
        }
    }
    true
}

/// The LSTM classifier with a 10-token vocabulary, for runs with out-of-range ids.
pub fn classifier_with_10_tokens() -> rnnc_ir::Graph {
    let params = [
        "vocab_size=10",
        "embed_dim=4",
        "hidden_dim=6",
        "num_layers=1",
        "num_classes=3",
    ];
    rnnc_cli::compile(&rnnc_cli::args::ModelArgs {
        model: root().join("models/lstm_classifier.rnn"),
        params: params.map(String::from).to_vec(),
        config: None,
    })
    .unwrap()
}

/// Its input, ids `[2, 3]`, with `bad` among them.
pub fn ids_with(bad: i64) -> std::collections::HashMap<String, rnnc_interp::Tensor> {
    let ids =
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3]), vec![1, 2, 3, 4, bad, 5]).unwrap();
    std::collections::HashMap::from([("input".to_string(), rnnc_interp::Tensor::I64(ids))])
}

/// Raw little-endian elements: f32 values or i64 token ids.
pub fn write_raw(path: &Path, t: &rnnc_interp::Tensor) {
    let bytes: Vec<u8> = match t {
        rnnc_interp::Tensor::F32(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        rnnc_interp::Tensor::I64(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    std::fs::write(path, bytes).unwrap();
}

/// Writes `obj` into `dir` and links it with tests/aot/driver.c by `cc` under
/// AddressSanitizer, with every buffer ending at an inaccessible page (the
/// generated code is not instrumented; the page catches what it overruns).
/// Returns the driver's path.
pub fn link_driver(dir: &Path, obj: &rnnc_backend_cpu::aot::CompiledObject) -> PathBuf {
    std::fs::write(dir.join("model.o"), &obj.object).unwrap();
    std::fs::write(dir.join("model.h"), &obj.header).unwrap();
    let exe = dir.join("driver");
    let cc = std::process::Command::new("cc")
        .args(["-O1", "-g", "-fsanitize=address", "-DGUARD_PAGES", "-o"])
        .arg(&exe)
        .arg(root().join("tests/aot/driver.c"))
        .arg(dir.join("model.o"))
        .arg(format!("-I{}", dir.display()))
        .arg("-DMODEL_HEADER=\"model.h\"")
        .arg(format!("-DPREFIX={}", obj.prefix))
        .arg(format!("-DUPPER={}", obj.prefix.to_ascii_uppercase()))
        .arg("-lm")
        .output()
        .expect("a C compiler `cc`");
    assert!(
        cc.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    exe
}

/// Runs a driver from [`link_driver`] on `inputs` (in the header's order, zeros
/// for those missing); returns each (f32) output's elements, or the driver's stderr.
pub fn run_driver(
    dir: &Path,
    obj: &rnnc_backend_cpu::aot::CompiledObject,
    inputs: &std::collections::HashMap<String, rnnc_interp::Tensor>,
) -> Result<Vec<Vec<f32>>, String> {
    Ok(run_driver_outputs(dir, obj, inputs)?
        .into_iter()
        .map(|t| t.f32().iter().copied().collect())
        .collect())
}

/// [`run_driver`], each output as a tensor of its shape: int64 outputs (token
/// ids, lengths) as i64.
pub fn run_driver_outputs(
    dir: &Path,
    obj: &rnnc_backend_cpu::aot::CompiledObject,
    inputs: &std::collections::HashMap<String, rnnc_interp::Tensor>,
) -> Result<Vec<rnnc_interp::Tensor>, String> {
    let mut argv = Vec::new();
    for (i, (name, dims)) in obj.inputs.iter().enumerate() {
        let t = inputs.get(name).cloned().unwrap_or_else(|| {
            rnnc_interp::Tensor::F32(ndarray::ArrayD::zeros(ndarray::IxDyn(dims)))
        });
        assert_eq!(t.shape(), &dims[..], "input {name}");
        let path = dir.join(format!("in{i}.raw"));
        write_raw(&path, &t);
        argv.push(path);
    }
    for i in 0..obj.outputs.len() {
        argv.push(dir.join(format!("out{i}.raw")));
    }
    let run = std::process::Command::new(dir.join("driver"))
        .args(&argv)
        .output()
        .unwrap();
    if !run.status.success() {
        return Err(format!(
            "the driver failed ({}):\n{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    Ok(obj
        .outputs
        .iter()
        .zip(&obj.output_ints)
        .enumerate()
        .map(|(i, ((_, dims), int))| {
            let bytes = std::fs::read(dir.join(format!("out{i}.raw"))).unwrap();
            let shape = ndarray::IxDyn(dims);
            if *int {
                let v = bytes
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                rnnc_interp::Tensor::I64(ndarray::ArrayD::from_shape_vec(shape, v).unwrap())
            } else {
                let v = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                rnnc_interp::Tensor::F32(ndarray::ArrayD::from_shape_vec(shape, v).unwrap())
            }
        })
        .collect())
}
