//! ONNX import against its oracles: every model under `tests/onnx/fixtures/` (made
//! by `tests/onnx/make_onnx_fixtures.py`: ONNX Runtime's outputs, or a NumPy
//! reference of the spec where ONNX Runtime refuses) is imported, lowered from the
//! generated source and run on the interpreter and the CPU backend; the source is
//! snapshotted; the files under `tests/onnx/bad/` are refused with a message.

mod common;

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use rnnc::{BackendKind, Inputs, Opt, Tensor};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    common::root().join("tests/onnx/fixtures")
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/onnx/fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    v.sort();
    v
}

/// An input array as the model takes it: floats as f32, integers as i64.
fn read_input(path: &Path) -> Tensor {
    let open = || std::fs::File::open(path).unwrap();
    if let Ok(a) = ArrayD::<f32>::read_npy(open()) {
        return Tensor::F32(a);
    }
    if let Ok(a) = ArrayD::<i64>::read_npy(open()) {
        return Tensor::I64(a);
    }
    let a = ArrayD::<i32>::read_npy(open()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tensor::I64(a.mapv(i64::from))
}

struct Case {
    dir: PathBuf,
    onnx: rnnc::onnx::OnnxModel,
    inputs: Inputs,
    atol: f32,
    rtol: f32,
}

fn load(dir: &Path) -> Result<Case, String> {
    let onnx = rnnc::onnx::load(dir.join("model.onnx")).map_err(|e| e.to_string())?;
    let mut inputs = Inputs::new();
    for (onnx_name, name) in &onnx.imported.inputs {
        let f = dir.join("inputs").join(format!("{onnx_name}.npy"));
        inputs.insert(name.clone(), read_input(&f));
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    Ok(Case {
        dir: dir.to_path_buf(),
        onnx,
        inputs,
        atol: meta["atol"].as_f64().unwrap() as f32,
        rtol: meta["rtol"].as_f64().unwrap() as f32,
    })
}

/// How far `got` strays beyond the case's tolerance of `want` (NaN counts as
/// beyond it), or None within it.
fn beyond(case: &Case, got: impl Iterator<Item = f32>, want: &ArrayD<f32>) -> Option<f32> {
    let mut worst = f32::NEG_INFINITY;
    for (g, w) in got.zip(want.iter()) {
        if g.is_nan() {
            return Some(f32::NAN);
        }
        worst = worst.max((g - w).abs() - (case.atol + case.rtol * w.abs()));
    }
    (worst > 0.0).then_some(worst)
}

/// Runs `case` on `backend` after `opt`; the worst excess over the tolerance, or
/// a message.
fn check(case: &Case, opt: &Opt, backend: BackendKind) -> Result<(), String> {
    let model = case.onnx.model.optimise(opt).map_err(|e| e.to_string())?;
    let compiled = model
        .compile(case.onnx.weights.clone(), backend)
        .map_err(|e| e.to_string())?;
    let outs = compiled.run(&case.inputs).map_err(|e| e.to_string())?;
    // The CPU backend plans the whole model when it first sees a (B, T): its
    // notes are known after a run.
    let notes = compiled.notes();
    if notes.iter().any(|n| n.contains("interpreter")) {
        return Err(format!("fell back: {notes:?}"));
    }
    for (onnx_name, name) in &case.onnx.imported.outputs {
        let want = ArrayD::<f32>::read_npy(
            std::fs::File::open(case.dir.join("expected").join(format!("{onnx_name}.npy")))
                .unwrap(),
        )
        .unwrap();
        let got = match outs.iter().find(|(n, _)| n == name) {
            Some((_, Tensor::F32(a))) => a,
            _ => return Err(format!("no f32 output {name}")),
        };
        if got.shape() != want.shape() {
            return Err(format!(
                "{name}: shape {:?}, expected {:?}",
                got.shape(),
                want.shape()
            ));
        }
        if let Some(worst) = beyond(case, got.iter().copied(), &want) {
            return Err(format!("{name}: off by {worst:e} beyond the tolerance"));
        }
    }
    Ok(())
}

#[test]
fn every_fixture_matches_its_oracle_on_the_interpreter_and_the_cpu() {
    let mut failures = Vec::new();
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = match load(&dir) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for (opt, backend) in [
            (Opt::Level(0), BackendKind::Interp),
            (Opt::Level(2), BackendKind::Interp),
            (Opt::Level(2), BackendKind::Cpu { threads: Some(1) }),
            (Opt::Level(2), BackendKind::Cpu { threads: Some(2) }),
        ] {
            if let Err(e) = check(&case, &opt, backend) {
                failures.push(format!("{name} ({opt:?}, {}): {e}", backend.name()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_fixture_matches_its_oracle_on_wgsl() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = match load(&dir) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        match check(&case, &Opt::Level(2), BackendKind::Wgsl) {
            Ok(()) => ran += 1,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{ran} ran; {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn generated_sources_parse_print_back_and_are_snapshotted() {
    use rnnc_syntax::{parse_file, FileId};
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let imported = rnnc::onnx::import(dir.join("model.onnx")).unwrap();
        let ast = parse_file(&imported.source, FileId(0))
            .unwrap_or_else(|_| panic!("{name}: the generated source does not parse"));
        let printed = ast.to_string();
        let again = parse_file(&printed, FileId(0)).unwrap();
        assert_eq!(again.to_string(), printed, "{name}: printing is not stable");
        insta::assert_snapshot!(format!("onnx_{name}"), imported.source);
    }
}

/// Each malformed or unsupported file, with what its message must say.
const BAD: &[(&str, &[&str])] = &[
    ("truncated", &["not an ONNX model", "does not decode"]),
    ("not_onnx", &["not an ONNX model"]),
    ("opset_too_old", &["opset 6", "opsets 7 to"]),
    ("opset_too_new", &["opset 99"]),
    (
        "unknown_op",
        &["\"mix_einsum\" (Einsum)", "does not import the op `Einsum`"],
    ),
    ("custom_domain", &["\"fancy\" (FancyNorm)", "com.example"]),
    (
        "missing_initializer",
        &["\"lstm\" (LSTM)", "\"W_missing\"", "not made by any node"],
    ),
    (
        "dynamic_reshape",
        &[
            "(Reshape)",
            "\"target_shape\"",
            "known when the model is imported",
        ],
    ),
];

#[test]
fn bad_files_are_refused_with_the_file_and_the_node_named() {
    let bad = common::root().join("tests/onnx/bad");
    for (file, needles) in BAD {
        let path = bad.join(format!("{file}.onnx"));
        let err = match rnnc::onnx::load(&path) {
            Ok(_) => panic!("{file}: imported"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!("{file}.onnx")),
            "{file}: the message does not name the file: {err}"
        );
        for n in *needles {
            assert!(err.contains(n), "{file}: {err:?} lacks {n:?}");
        }
    }
}

/// B and T of a fixture: read off the inputs whose declared axes name them.
fn batch_and_time(case: &Case) -> (usize, usize) {
    let (mut b, mut t) = (1, 1);
    for (name, ty, _) in case.onnx.model.inputs() {
        let Some(given) = case.inputs.get(&name) else {
            continue;
        };
        for (d, &n) in ty.dims.iter().zip(given.shape()) {
            match d {
                rnnc::Dim::Batch => b = n,
                rnnc::Dim::Time => t = n,
                _ => {}
            }
        }
    }
    (b, t)
}

#[test]
fn every_fixture_compiles_ahead_of_time_and_matches_from_c() {
    let mut failures = Vec::new();
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (b, t) = batch_and_time(&case);
        let model = case.onnx.model.optimise(&Opt::Level(2)).unwrap();
        let obj = match model.object_file(&case.onnx.weights, b, t) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let tmp = tempfile::tempdir().unwrap();
        common::link_driver(tmp.path(), &obj);
        let outs = match common::run_driver(tmp.path(), &obj, &case.inputs) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for ((out_name, _), got) in obj.outputs.iter().zip(outs) {
            let onnx_name = &case
                .onnx
                .imported
                .outputs
                .iter()
                .find(|(_, n)| n == out_name)
                .unwrap()
                .0;
            let want = ArrayD::<f32>::read_npy(
                std::fs::File::open(dir.join("expected").join(format!("{onnx_name}.npy"))).unwrap(),
            )
            .unwrap();
            let worst = if got.len() == want.len() {
                beyond(&case, got.iter().copied(), &want)
            } else {
                Some(f32::INFINITY)
            };
            if let Some(worst) = worst {
                failures.push(format!(
                    "{name}: {out_name} off by {worst:e} beyond the tolerance"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Damaged files (every cut of a model, and bytes changed throughout it) are
/// imported or refused, never a panic: what a protobuf decoder lets through
/// (huge or negative dims, wrong types, dangling names) meets import's checks.
#[test]
fn damaged_files_never_panic() {
    let bytes = std::fs::read(fixtures_dir().join("ops_embed_lstm_gemm/model.onnx")).unwrap();
    let path = Path::new("damaged.onnx");
    let mut tried = 0;
    let mut try_one = |b: &[u8], what: &str| {
        tried += 1;
        let r = std::panic::catch_unwind(|| {
            if let Ok(imported) = rnnc_onnx::import(b, path) {
                // What imports must also lower, or be refused with a message.
                let mut params = rnnc::Params::new();
                for (k, v) in &imported.config {
                    params = params.set(k, v);
                }
                let _ = rnnc::Model::from_source(&imported.source, &params);
            }
        });
        assert!(r.is_ok(), "import panicked on {what}");
    };
    for cut in (0..bytes.len()).step_by(7) {
        try_one(&bytes[..cut], &format!("the first {cut} bytes"));
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..400 {
        let mut b = bytes.clone();
        for _ in 0..1 + i % 4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % b.len();
            b[at] = (state >> 32) as u8;
        }
        try_one(&b, &format!("mutation {i}"));
    }
    assert!(tried > 400);
}
