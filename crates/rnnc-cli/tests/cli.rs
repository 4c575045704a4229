//! The `rnnc` binary end to end: the command-line contract, and bad input of every
//! kind (model source, config, weights, npy files, flags) giving a message that
//! names the file and the problem, with exit status 1.

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/seed0").join(name)
}

fn rnnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rnnc"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("running rnnc")
}

/// `rnnc args` with one more environment variable set.
fn rnnc_with(var: (&str, &str), args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rnnc"))
        .args(args)
        .env(var.0, var.1)
        .current_dir(root())
        .output()
        .expect("running rnnc")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit status 1 and that stderr mentions every one of `needles`.
fn fails_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "expected exit 1, stderr:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

/// Writes `DIR/NAME`, an .npy array of zeros of `shape`; returns its path.
fn zeros_npy<T: Clone + Default + ndarray_npy::WritableElement>(
    dir: &Path,
    name: &str,
    shape: &[usize],
) -> PathBuf {
    let path = dir.join(name);
    ArrayD::<T>::from_elem(ndarray::IxDyn(shape), T::default())
        .write_npy(std::fs::File::create(&path).unwrap())
        .unwrap();
    path
}

fn read_npy(p: &Path) -> ArrayD<f32> {
    ArrayD::<f32>::read_npy(std::fs::File::open(p).unwrap()).unwrap()
}

/// `out/NAME.npy`, written by rnnc, has the shape of the fixture's and is within
/// 1e-5 of it everywhere.
fn assert_matches_fixture(out: &Path, fx: &Path, name: &str, label: &str) {
    let got = read_npy(&out.join(format!("{name}.npy")));
    let want = read_npy(&fx.join(format!("{name}.npy")));
    assert_eq!(got.shape(), want.shape(), "{label} {name}");
    let worst = got
        .iter()
        .zip(want.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{label} {name}: max abs diff {worst}");
}

const ELMAN: &[&str] = &[
    "--param",
    "input_size=12",
    "--param",
    "hidden_size=16",
    "--param",
    "num_layers=2",
    "--param",
    "nonlinearity=relu",
];

/// `rnnc run` on the elman_relu fixture, with extra arguments.
fn run_elman(weights: &Path, extra: &[&str], out: &Path) -> Output {
    let fx = fixture("elman_relu");
    let input = format!("input={}", fx.join("input.npy").display());
    let h0 = format!("h0={}", fx.join("h0.npy").display());
    let mut args = vec![
        "run",
        "models/elman_rnn.rnn",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        &input,
        "--input",
        &h0,
    ];
    args.extend_from_slice(ELMAN);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    rnnc(&args)
}

/// Without a runtime directory, Mesa's device-select layer used to print
/// `error: XDG_RUNTIME_DIR is invalid …` twice per WGSL run, which read like
/// rnnc's own error; the CLI turns that layer off then (see rnnc-backend-wgsl's
/// quiet.rs), so a successful run prints nothing.
#[test]
fn wgsl_runs_without_a_runtime_dir_print_nothing() {
    let o = Command::new(env!("CARGO_BIN_EXE_rnnc"))
        .args([
            "bench",
            "models/elman_rnn.rnn",
            "--param",
            "input_size=3",
            "--param",
            "hidden_size=4",
            "--seq",
            "3",
            "--backend",
            "wgsl",
        ])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .current_dir(root())
        .output()
        .expect("running rnnc");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "stderr: {}", stderr(&o));
}

#[test]
fn run_writes_outputs_that_match_pytorch() {
    let variants: [&[&str]; 6] = [
        &[],
        &["--backend", "cpu"],
        &["--threads", "1"],
        &["--threads", "2"],
        &["--backend", "interp"],
        &["--backend", "wgsl"],
    ];
    for backend in variants {
        let dir = tempfile::tempdir().unwrap();
        let o = run_elman(
            &fixture("elman_relu").join("weights.safetensors"),
            backend,
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        // The CPU backend compiled everything: no note about a fallback.
        assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
        for name in ["output", "h_n"] {
            let label = format!("{backend:?}");
            assert_matches_fixture(dir.path(), &fixture("elman_relu"), name, &label);
        }
    }
}

/// `--backend cuda` runs where there is an NVIDIA GPU, driver and NVRTC, and
/// elsewhere exits 1 saying what is missing.
#[test]
fn the_cuda_backend_runs_or_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_elman(
        &fixture("elman_relu").join("weights.safetensors"),
        &["--backend", "cuda"],
        dir.path(),
    );
    if o.status.success() {
        for name in ["output", "h_n"] {
            assert_matches_fixture(dir.path(), &fixture("elman_relu"), name, "cuda");
        }
    } else {
        fails_with(&o, &["models/elman_rnn.rnn", "the cuda backend needs"]);
    }
}

#[test]
fn token_ids_run_through_the_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture("lstm_classifier");
    let o = rnnc(&[
        "run",
        "models/lstm_classifier.rnn",
        "--weights",
        fx.join("weights.safetensors").to_str().unwrap(),
        "--input",
        &format!("input={}", fx.join("input.npy").display()),
        "--param",
        "vocab_size=50",
        "--param",
        "embed_dim=12",
        "--param",
        "hidden_dim=16",
        "--param",
        "num_layers=2",
        "--param",
        "num_classes=5",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_matches_fixture(dir.path(), &fx, "output", "classifier");
}

#[test]
fn config_file_sets_hyperparameters_and_params_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("elman.yaml");
    std::fs::write(
        &cfg,
        "input_size: 12\nhidden_size: 16\nnum_layers: 2\nnonlinearity: tanh\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let fx = fixture("elman_relu");
    let o = rnnc(&[
        "run",
        "models/elman_rnn.rnn",
        "--config",
        cfg.to_str().unwrap(),
        "--param",
        "nonlinearity=relu",
        "--weights",
        fx.join("weights.safetensors").to_str().unwrap(),
        "--input",
        &format!("input={}", fx.join("input.npy").display()),
        "--input",
        &format!("h0={}", fx.join("h0.npy").display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The fixture is relu: --param must win over the config's tanh.
    assert_matches_fixture(&out, &fx, "output", "relu over the config's tanh");
}

#[test]
fn check_and_ir_succeed_on_a_model() {
    let o = rnnc(&[
        "check",
        "models/gru_cell.rnn",
        "--param",
        "input_size=3",
        "--param",
        "hidden_size=4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ok: model GRUCellSequence"));
    let o = rnnc(&[
        "ir",
        "models/gru_cell.rnn",
        "--param",
        "input_size=3",
        "--param",
        "hidden_size=4",
    ]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with("graph GRUCellSequence {") && text.contains("scan reverse=false"),
        "{text}"
    );
}

#[test]
fn bad_model_source_prints_a_caret_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("bad.rnn");
    std::fs::write(
        &m,
        "model M() {\n    input x: [B, T, 4]\n    output y = tanh(xx)\n}\n",
    )
    .unwrap();
    let o = rnnc(&["check", m.to_str().unwrap()]);
    fails_with(&o, &["unknown name `xx`", "bad.rnn:3:21", "^^"]);
    std::fs::write(&m, [0xff, 0xfe, 0x00]).unwrap();
    fails_with(
        &rnnc(&["check", m.to_str().unwrap()]),
        &["bad.rnn", "not UTF-8"],
    );
    fails_with(
        &rnnc(&["check", "models/does_not_exist.rnn"]),
        &["cannot read `models/does_not_exist.rnn`"],
    );
}

#[test]
fn bad_params_and_flags_exit_1() {
    let base = ["check", "models/gru_cell.rnn", "--param", "input_size=3"];
    fails_with(
        &rnnc(&[&base[..], &["--param", "hidden_size=four"]].concat()),
        &["--param hidden_size=four", "`hidden_size` is an int"],
    );
    fails_with(
        &rnnc(&[&base[..], &["--param", "hidden_size"]].concat()),
        &["expected KEY=VALUE"],
    );
    fails_with(
        &rnnc(
            &[
                &base[..],
                &["--param", "hidden_size=4", "--param", "depth=2"],
            ]
            .concat(),
        ),
        &["no hyperparameter `depth`"],
    );
    fails_with(
        &rnnc(&base),
        &[
            "missing hyperparameter `hidden_size`",
            "--param hidden_size=",
        ],
    );
    fails_with(
        &rnnc(&["check", "models/gru_cell.rnn", "--no-such-flag"]),
        &["--no-such-flag"],
    );
    fails_with(&rnnc(&["frobnicate"]), &["frobnicate"]);
}

#[test]
fn bad_config_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let check = |content: &str, needles: &[&str]| {
        std::fs::write(&cfg, content).unwrap();
        fails_with(
            &rnnc(&[
                "check",
                "models/gru_cell.rnn",
                "--config",
                cfg.to_str().unwrap(),
            ]),
            needles,
        );
    };
    check("input_size: [3\n", &["c.yaml", "not valid YAML"]);
    check("- 3\n- 4\n", &["c.yaml", "expected a mapping"]);
    check(
        "input_size: {a: 1}\nhidden_size: 4\n",
        &["c.yaml", "`input_size` must be a number"],
    );
    check(
        "input_size: 3.5\nhidden_size: 4\n",
        &["c.yaml", "`input_size` is an int"],
    );
    fails_with(
        &rnnc(&["check", "models/gru_cell.rnn", "--config", "nope.yaml"]),
        &["cannot read config `nope.yaml`"],
    );
}

/// Writes a safetensors file from (key, dtype, shape, little-endian bytes).
fn write_safetensors(path: &Path, tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// The elman_relu fixture's weights, as (key, shape, f32 values).
fn elman_weights() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(fixture("elman_relu").join("weights.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| {
            let vals = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (k, v.shape().to_vec(), vals)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn bad_weights_name_the_key_and_the_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    let out = dir.path().join("out");
    let good = elman_weights();

    // Truncated file.
    let bytes = std::fs::read(fixture("elman_relu").join("weights.safetensors")).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(
        &run_elman(&w, &[], &out),
        &["w.safetensors", "not a valid safetensors file"],
    );
    std::fs::write(&w, b"not safetensors at all").unwrap();
    fails_with(
        &run_elman(&w, &[], &out),
        &["w.safetensors", "not a valid safetensors file"],
    );

    // Wrong dtype: one tensor stored as f64.
    let mut t: Vec<_> = good
        .iter()
        .map(|(k, s, v)| (k.clone(), Dtype::F32, s.clone(), f32_bytes(v)))
        .collect();
    let (_, d, _, b) = &mut t[0];
    *d = Dtype::F64;
    *b = good[0]
        .2
        .iter()
        .flat_map(|x| f64::from(*x).to_le_bytes())
        .collect();
    write_safetensors(&w, t);
    fails_with(
        &run_elman(&w, &[], &out),
        &[&format!("tensor `{}` is F64", good[0].0), "F32"],
    );

    // Wrong shape: one tensor with a row dropped.
    let mut t: Vec<_> = good
        .iter()
        .map(|(k, s, v)| (k.clone(), Dtype::F32, s.clone(), f32_bytes(v)))
        .collect();
    let key = "rnn.weight_hh_l1";
    let i = t.iter().position(|x| x.0 == key).unwrap();
    t[i].2 = vec![15, 16];
    t[i].3.truncate(15 * 16 * 4);
    write_safetensors(&w, t);
    fails_with(
        &run_elman(&w, &[], &out),
        &["tensor `rnn.weight_hh_l1` has shape [15, 16], expected [16, 16]"],
    );

    // Missing key, and an unexpected one.
    let mut t: Vec<_> = good
        .iter()
        .map(|(k, s, v)| (k.clone(), Dtype::F32, s.clone(), f32_bytes(v)))
        .collect();
    t.retain(|x| x.0 != "rnn.bias_ih_l0");
    t.push((
        "rnn.extra".into(),
        Dtype::F32,
        vec![2],
        f32_bytes(&[1.0, 2.0]),
    ));
    write_safetensors(&w, t);
    fails_with(
        &run_elman(&w, &[], &out),
        &[
            "missing tensor `rnn.bias_ih_l0` (expected shape [16])",
            "unexpected tensor `rnn.extra`",
        ],
    );
    assert!(
        !out.exists(),
        "nothing is written when the weights are wrong"
    );
}

#[test]
fn bad_inputs_name_the_input_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let w = fixture("elman_relu").join("weights.safetensors");
    let out = dir.path().join("out");
    let fx = fixture("elman_relu");
    let run = |inputs: &[String], extra: &[&str]| {
        let mut args = vec![
            "run".to_string(),
            "models/elman_rnn.rnn".into(),
            "--weights".into(),
            w.display().to_string(),
        ];
        for i in inputs {
            args.push("--input".into());
            args.push(i.clone());
        }
        args.extend(ELMAN.iter().chain(extra).map(|s| s.to_string()));
        args.extend(["--out".to_string(), out.display().to_string()]);
        rnnc(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let h0 = format!("h0={}", fx.join("h0.npy").display());

    let text = dir.path().join("x.npy");
    std::fs::write(&text, "1,2,3\n").unwrap();
    fails_with(
        &run(&[format!("input={}", text.display()), h0.clone()], &[]),
        &["x.npy", "not a readable .npy file"],
    );

    let wrong = zeros_npy::<f32>(dir.path(), "wrong.npy", &[3, 7, 5]);
    fails_with(
        &run(&[format!("input={}", wrong.display()), h0.clone()], &[]),
        &["input `input` must have shape [B, T, 12]", "axis 2 is 5"],
    );

    let batch = zeros_npy::<f32>(dir.path(), "batch.npy", &[2, 7, 12]);
    fails_with(
        &run(&[format!("input={}", batch.display()), h0.clone()], &[]),
        &["B = 3", "B = 2"],
    );

    let ints = zeros_npy::<i64>(dir.path(), "ints.npy", &[3, 7, 12]);
    fails_with(
        &run(&[format!("input={}", ints.display()), h0.clone()], &[]),
        &["input `input` is declared f32", "holds integers"],
    );

    fails_with(
        &run(std::slice::from_ref(&h0), &[]),
        &["missing input `input`", "--input input="],
    );
    fails_with(
        &run(
            &[
                format!("input={}", fx.join("input.npy").display()),
                h0.clone(),
                format!("c0={}", fx.join("h0.npy").display()),
            ],
            &[],
        ),
        &["no input `c0`"],
    );
    fails_with(&run(&["input".into()], &[]), &["expected NAME=FILE.npy"]);
    fails_with(
        &run(
            &[format!("input={}", dir.path().join("absent.npy").display())],
            &[],
        ),
        &["absent.npy"],
    );
    fails_with(
        &run(
            &[
                format!("input={}", fx.join("input.npy").display()),
                h0.clone(),
            ],
            &["--backend", "tpu"],
        ),
        &["--backend tpu"],
    );
}

const GRU: [&str; 5] = [
    "models/gru.rnn",
    "--param",
    "input_size=3",
    "--param",
    "hidden_size=4",
];

#[test]
fn optimisation_flags_and_instrumentation() {
    let ir = |extra: &[&str]| rnnc(&[&["ir"][..], &GRU[..], extra].concat());
    let o0 = ir(&["-O0"]);
    let o2 = ir(&[]);
    assert!(
        o0.status.success() && o2.status.success(),
        "{}",
        stderr(&o2)
    );
    let (o0, o2) = (
        String::from_utf8_lossy(&o0.stdout).into_owned(),
        String::from_utf8_lossy(&o2.stdout).into_owned(),
    );
    assert_ne!(o0, o2, "-O2 is the default and changes the graph");
    // After -O2 the input projection is outside the loop: a linear over [B, T, …].
    assert!(
        o2.contains(": f32[B, T, 12]") && !o0.contains(": f32[B, T, 12]"),
        "{o2}"
    );

    let o = ir(&["--print-ir-after-all", "--time-passes"]);
    let err = stderr(&o);
    assert!(
        err.contains("// -----// IR after hoist-input-projection //----- //")
            && err.contains("pass execution timing report"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let o = ir(&[
        "--passes",
        "fuse-gates,dce",
        "--dump-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["00-input.rir", "01-fuse-gates.rir", "02-dce.rir"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }

    fails_with(
        &ir(&["--passes", "fuse-gate"]),
        &["unknown pass `fuse-gate`", "fuse-gates"],
    );
    fails_with(&ir(&["-O7"]), &["-O7", "-O0, -O1 and -O2"]);
    fails_with(&ir(&["-O1", "--passes", "dce"]), &["--passes"]);
    fails_with(&ir(&["--print-ir-after=nothing"]), &["no pass `nothing`"]);
}

#[test]
fn passes_prints_one_row_per_pass() {
    let o = rnnc(&[
        "passes",
        "models/lstm_seed_equations.rnn",
        "--param",
        "input_size=12",
        "--param",
        "hidden_size=16",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("pass") && rows[0].contains("matmul/loop"));
    assert!(rows[1].starts_with("(lowered)"));
    let last = rows
        .iter()
        .find(|r| r.starts_with("dce"))
        .expect("a dce row");
    let cols: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(
        (cols[2], cols[3]),
        ("1", "1"),
        "one product in the loop, one hoisted: {last}"
    );
}

#[test]
fn ir_as_graphviz_has_every_node_and_a_cluster_per_body() {
    let o = rnnc(&[&["ir", "--format", "dot", "-O0"][..], &GRU[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = String::from_utf8_lossy(&o.stdout);
    assert!(dot.starts_with("digraph \"GRU\" {") && dot.trim_end().ends_with('}'));
    assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
    assert!(
        dot.contains("subgraph cluster_1") && dot.contains("label=\"next\", style=dashed"),
        "{dot}"
    );
    let text = rnnc(&[&["ir", "-O0"][..], &GRU[..]].concat());
    let values = String::from_utf8_lossy(&text.stdout).matches(" = ").count();
    assert_eq!(
        dot.matches(" [label=\"%").count(),
        values,
        "one dot node per IR node"
    );
}

#[test]
fn npy_headers_are_checked_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // A header that claims 10^11 × 12 floats, followed by 64 bytes.
    let mut header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 12), }".to_string();
    while header.len() < 117 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 64]);
    let huge = dir.path().join("huge.npy");
    std::fs::write(&huge, bytes).unwrap();
    let out = dir.path().join("out");
    let o = rnnc(&[
        "run",
        "models/gru.rnn",
        "--param",
        "input_size=12",
        "--param",
        "hidden_size=16",
        "--param",
        "num_layers=2",
        "--param",
        "bidirectional=true",
        "--weights",
        fixture("torch_gru_bidir2_h0")
            .join("weights.safetensors")
            .to_str()
            .unwrap(),
        "--input",
        &format!("input={}", huge.display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(
        &o,
        &[
            "huge.npy",
            "declares shape (100000000000, 12) but the file holds only 64 bytes",
        ],
    );
}

#[test]
fn zeros_too_large_to_allocate_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("big.rnn");
    std::fs::write(&m, "model M() {\n    input x: [B, 4]\n    input h: [B, 100000, 100000] = zeros\n    output y = h\n}\n").unwrap();
    let x = zeros_npy::<f32>(dir.path(), "x.npy", &[2, 4]);
    let w = dir.path().join("w.safetensors");
    safetensors::serialize_to_file(Vec::<(String, TensorView)>::new(), None, &w).unwrap();
    let o = rnnc(&[
        "run",
        m.to_str().unwrap(),
        "--weights",
        w.to_str().unwrap(),
        "--input",
        &format!("x={}", x.display()),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    fails_with(&o, &["too large to allocate"]);
}

#[test]
fn seq2seq_translates_a_batch_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let fx = root().join("tests/fixtures/seq2seq");
    let weights = fx.join("weights.safetensors").display().to_string();
    let src = format!("src={}", fx.join("src.npy").display());
    let lengths = format!("src_lengths={}", fx.join("src_lengths.npy").display());
    let out = dir.path().display().to_string();
    let run = |extra: &[&str]| {
        let base = [
            "run",
            "models/seq2seq_attention.rnn",
            "--param",
            "src_vocab=11",
            "--param",
            "tgt_vocab=12",
            "--param",
            "hidden_size=16",
            "--param",
            "max_len=8",
            "--weights",
            weights.as_str(),
            "--out",
            out.as_str(),
        ];
        rnnc(&[&base[..], extra].concat())
    };
    let read_ids = |p: &Path| ArrayD::<i64>::read_npy(std::fs::File::open(p).unwrap()).unwrap();
    for (mode, width, want) in [
        ("greedy", "4", "greedy_tokens"),
        ("beam", "3", "beam_tokens"),
    ] {
        let mode = format!("mode={mode}");
        let width = format!("beam_width={width}");
        let o = run(&[
            "--param", &mode, "--param", &width, "--input", &src, "--input", &lengths,
        ]);
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
        assert_eq!(
            read_ids(&dir.path().join("tokens.npy")),
            read_ids(&fx.join(format!("{want}.npy"))),
            "{mode}"
        );
    }
    fails_with(
        &run(&["--param", "max_len=0", "--input", &src, "--input", &lengths]),
        &[
            "seq2seq_attention.rnn",
            "`max_len` of `greedy_decode` must be at least 1",
        ],
    );
    let tmp = dir.path();
    let bad_len = tmp.join("len.npy");
    ndarray::arr1(&[6i64, 0, 2, 5])
        .into_dyn()
        .write_npy(std::fs::File::create(&bad_len).unwrap())
        .unwrap();
    let bad_len = format!("src_lengths={}", bad_len.display());
    fails_with(
        &run(&["--input", &src, "--input", &bad_len]),
        &["lengths[1] = 0: an empty sequence"],
    );
    // Input arrays (docs/language.md): an i64 input takes int32 as well, and no
    // float array; the beams cannot outnumber the tokens.
    let fixture_lengths = read_ids(&fx.join("src_lengths.npy"));
    let len32 = tmp.join("len32.npy");
    fixture_lengths
        .mapv(|l| l as i32)
        .write_npy(std::fs::File::create(&len32).unwrap())
        .unwrap();
    let o = run(&[
        "--param",
        "mode=greedy",
        "--input",
        &src,
        "--input",
        &format!("src_lengths={}", len32.display()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read_ids(&dir.path().join("tokens.npy")),
        read_ids(&fx.join("greedy_tokens.npy"))
    );
    let len_f = tmp.join("len_f.npy");
    fixture_lengths
        .mapv(|l| l as f32)
        .write_npy(std::fs::File::create(&len_f).unwrap())
        .unwrap();
    fails_with(
        &run(&[
            "--input",
            &src,
            "--input",
            &format!("src_lengths={}", len_f.display()),
        ]),
        &[
            "input `src_lengths` is declared i64",
            "int64 or int32",
            "holds floats",
        ],
    );
    fails_with(
        &run(&[
            "--param",
            "mode=beam",
            "--param",
            "beam_width=13",
            "--input",
            &src,
            "--input",
            &lengths,
        ]),
        &["`width` = 13 is more beams than the 12 tokens"],
    );
    let empty = zeros_npy::<i64>(tmp, "empty.npy", &[4, 0]);
    let empty = format!("src={}", empty.display());
    fails_with(
        &run(&["--input", &empty, "--input", &lengths]),
        &["input `src`", "empty source sequence (S = 0)"],
    );
    let mut ids = read_ids(&fx.join("src.npy"));
    ids[[0, 0]] = 11;
    let oov = tmp.join("oov.npy");
    ids.write_npy(std::fs::File::create(&oov).unwrap()).unwrap();
    let oov = format!("src={}", oov.display());
    fails_with(&run(&["--input", &oov, "--input", &lengths]), &["11"]);
    fails_with(
        &run(&["--input", &src, "--input", &lengths, "--backend", "cuda"]),
        &["seq2seq_attention.rnn"],
    );
}

#[test]
fn run_decodes_ctc_output() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture("speech_lstm");
    let weights = fx.join("weights.safetensors").display().to_string();
    let input = format!("input={}", fx.join("input.npy").display());
    let out = dir.path().display().to_string();
    let run = |extra: &[&str]| {
        let base = [
            "run",
            "models/speech_lstm.rnn",
            "--param",
            "n_mels=12",
            "--param",
            "n_hidden=16",
        ];
        let files = [
            "--weights",
            weights.as_str(),
            "--input",
            input.as_str(),
            "--out",
            out.as_str(),
        ];
        rnnc(&[&base[..], &files[..], extra].concat())
    };
    let o = run(&["--decode", "ctc-beam", "--beam-width", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("decoded.txt")).unwrap();
    assert_eq!(text.lines().count(), 9, "3 samples × 3 hypotheses:\n{text}");
    assert!(text.starts_with("sample 0, beam 0 (log p = -"));
    assert!(run(&["--decode", "ctc-greedy"]).status.success());
    assert!(std::fs::read_to_string(dir.path().join("decoded.txt"))
        .unwrap()
        .starts_with("sample 0: "));
    fails_with(
        &run(&["--decode", "ctc-beam", "--beam-width", "0"]),
        &["--decode", "beam width must be at least 1"],
    );
    fails_with(
        &run(&["--decode", "ctc-greedy", "--blank", "29"]),
        &["blank label 29 is not one of the 29 classes"],
    );
    fails_with(&run(&["--decode", "viterbi"]), &["viterbi"]);
}

#[test]
fn bench_prints_json_on_every_backend_and_rejects_what_they_cannot_do() {
    let base = [
        "bench",
        "models/gru.rnn",
        "--param",
        "input_size=4",
        "--param",
        "hidden_size=8",
        "--batch",
        "2",
        "--seq",
        "3",
    ];
    for backend in ["cpu", "interp", "wgsl"] {
        let o = rnnc(&[&base[..], &["--json", "--backend", backend]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
        for key in ["median_ms", "min_ms", "runs", "gflops", "compile_ms"] {
            assert!(v[key].is_number(), "{key} in {v}");
        }
        assert_eq!(v["backend"], backend);
        assert!(
            v["runs"].as_u64().unwrap() >= 10 && v["min_ms"].as_f64() <= v["median_ms"].as_f64()
        );
    }
    let o = rnnc(&[&base[..], &["--json", "--threads", "3"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["threads"], 3);
    // Without --threads the cost model keeps a model this small on one thread; the
    // JSON says which kernels ran, and RNNC_ISA picks them or is refused.
    let o = rnnc(&[&base[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["threads"], 1, "{v}");
    let best = rnnc::Isa::best();
    assert_eq!(v["isa"], best.name(), "{v}");
    // With a kernel, the run against this machine's measured limits.
    if best != rnnc::Isa::Portable {
        assert!(v["peak_gflops_per_core"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["fraction_of_peak"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["fraction_of_bandwidth"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["weights_in"] == "L2" || v["weights_in"] == "L3", "{v}");
    }
    let o = rnnc_with(("RNNC_ISA", "portable"), &[&base[..], &["--json"]].concat());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["isa"], "portable", "{v}");
    assert!(v.get("peak_gflops_per_core").is_none(), "{v}");
    fails_with(
        &rnnc_with(("RNNC_ISA", "sse9"), &[&base[..], &["--json"]].concat()),
        &[
            "RNNC_ISA=\"sse9\"",
            "names no instruction set",
            "avx512, avx2, portable",
        ],
    );
    fails_with(
        &rnnc(&[&base[..], &["--threads", "2", "--backend", "interp"]].concat()),
        &["--threads 2", "interp", "one thread", "cpu backend"],
    );
    fails_with(
        &rnnc(&[&base[..], &["--threads", "2", "--backend", "wgsl"]].concat()),
        &["--threads 2", "wgsl", "GPU", "cpu backend"],
    );
    fails_with(
        &rnnc(&[&base[..], &["--threads", "0"]].concat()),
        &["--threads 0", "at least one thread"],
    );
    let o = rnnc(&[&base[..], &["--stream", "--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert!(v["median_us_per_step"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["stream"], true);
    fails_with(
        &rnnc(&[&base[..], &["--stream", "--backend", "interp"]].concat()),
        &["--stream", "streaming", "--backend cpu"],
    );
    fails_with(
        &rnnc(&[&base[..6], &["--batch", "0"]].concat()),
        &["at least 1"],
    );
    fails_with(
        &rnnc(&[&base[..], &["--backend", "gpu"]].concat()),
        &["--backend gpu", "no such backend", "cpu, interp"],
    );
}

#[test]
fn compile_writes_an_object_file_and_a_header_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let weights = fixture("elman_relu").join("weights.safetensors");
    let w = weights.to_str().unwrap();
    let base = [&["compile", "models/elman_rnn.rnn"][..], ELMAN].concat();
    let o = rnnc(&[&base[..], &["--target", "cpu", "--weights", w, "-o", out]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let header = std::fs::read_to_string(dir.path().join("elmanrnn.h")).unwrap();
    assert!(header.contains("void elmanrnn_run("), "{header}");
    assert!(header.contains("#define ELMANRNN_SEQ 100"), "{header}");
    let object = std::fs::read(dir.path().join("elmanrnn.o")).unwrap();
    assert_eq!(&object[..4], b"\x7fELF");

    fails_with(
        &rnnc(&[&base[..], &["--target", "cpu", "-o", out]].concat()),
        &["--target cpu needs --weights"],
    );
    // WGSL: one module of compute shaders and the manifest a host program follows.
    let o = rnnc(
        &[
            &base[..],
            &["--target", "wgsl", "--batch", "3", "--seq", "5", "-o", out],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let wgsl = std::fs::read_to_string(dir.path().join("ElmanRNN.wgsl")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("ElmanRNN.wgsl.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["format"], "rnnc-gpu-manifest");
    assert_eq!(
        (manifest["batch"].as_u64(), manifest["time"].as_u64()),
        (Some(3), Some(5))
    );
    let kernels = manifest["kernels"].as_array().unwrap();
    assert!(!kernels.is_empty());
    for k in kernels {
        let entry = format!("fn {}(", k["name"].as_str().unwrap());
        assert!(wgsl.contains(&entry), "{entry} missing from the module");
    }
    let keys: Vec<&str> = manifest["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"rnn.weight_hh_l1"), "{keys:?}");
    fails_with(
        &rnnc(&[&base[..], &["--target", "wgsl", "--batch", "0", "-o", out]].concat()),
        &["at least 1"],
    );
    // CUDA: the same plan as a .cu file with its manifest.
    let o = rnnc(&[&base[..], &["--target", "cuda", "-o", out]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let cu = std::fs::read_to_string(dir.path().join("ElmanRNN.cu")).unwrap();
    assert!(
        cu.contains("extern \"C\" __global__ void ElmanRNN_"),
        "{cu}"
    );
    assert!(dir.path().join("ElmanRNN.cu.json").exists());
    fails_with(
        &rnnc(&[&base[..], &["--target", "arm", "--weights", w, "-o", out]].concat()),
        &["--target arm", "no such target", "cpu, wgsl, cuda"],
    );
    fails_with(
        &rnnc(
            &[
                &base[..],
                &["--target", "cpu", "--weights", w, "--seq", "0", "-o", out],
            ]
            .concat(),
        ),
        &["at least 1"],
    );
    // The attention model compiles in every mode (its source length S is --seq),
    // decoding into int64 tokens and lengths.
    let seq2seq = |mode: &str| {
        rnnc(&[
            "compile",
            "models/seq2seq_attention.rnn",
            "--param",
            "src_vocab=11",
            "--param",
            "tgt_vocab=12",
            "--param",
            "hidden_size=16",
            "--param",
            &format!("mode={mode}"),
            "--target",
            "cpu",
            "--weights",
            "tests/fixtures/seq2seq/weights.safetensors",
            "--seq",
            "6",
            "-o",
            out,
        ])
    };
    let o = seq2seq("teacher");
    assert!(o.status.success(), "{}", stderr(&o));
    let h = std::fs::read_to_string(Path::new(out).join("seq2seqattention.h")).unwrap();
    assert!(h.contains("#define SEQ2SEQATTENTION_SOURCE_LEN 6"), "{h}");
    assert!(h.contains("src: i64[1, 6], token ids in [0, 11)"), "{h}");
    let o = seq2seq("beam");
    assert!(o.status.success(), "{}", stderr(&o));
    let h = std::fs::read_to_string(Path::new(out).join("seq2seqattention.h")).unwrap();
    assert!(
        h.contains("tokens: i64[1, 4, 10] (pass an int64_t pointer"),
        "{h}"
    );
    assert!(h.contains("_output_elem_bytes[3] = {8, 8, 4}"), "{h}");
}

/// `--weights` is needed only by a model that has weights, to run or to compile.
#[test]
fn run_needs_weights_only_where_the_model_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let x = format!(
        "x={}",
        root().join("tests/fixtures/activations/x.npy").display()
    );
    let o = rnnc(&[
        "run",
        "tests/models/activations.rnn",
        "--input",
        &x,
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("ys.npy").exists());
    fails_with(
        &rnnc(&[
            "run",
            "models/elman_rnn.rnn",
            "--param",
            "input_size=6",
            "--param",
            "hidden_size=4",
            "--input",
            &x,
            "--out",
            &out,
        ]),
        &["models/elman_rnn.rnn", "4 weights", "--weights"],
    );
    // The same for an object file.
    let o = rnnc(&[
        "compile",
        "tests/models/activations.rnn",
        "--target",
        "cpu",
        "-o",
        &out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("activations.o").exists());
}

/// An ONNX fixture (tests/onnx/fixtures/NAME).
fn onnx_case(name: &str) -> PathBuf {
    root().join("tests/onnx/fixtures").join(name)
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn an_imported_onnx_model_runs_from_its_files_and_in_one_step() {
    let case = onnx_case("seed_gru_model");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    let o = rnnc(&[
        "import",
        case.join("model.onnx").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("Model.rnn") && said.contains("rnnc run"),
        "{said}"
    );
    let source = std::fs::read_to_string(out.join("Model.rnn")).unwrap();
    assert!(
        source.contains("// GRU \"/gru/GRU\"") && source.contains("cell OnnxGRU("),
        "{source}"
    );
    let want =
        ArrayD::<f32>::read_npy(std::fs::File::open(case.join("expected/logits.npy")).unwrap())
            .unwrap();
    let x = format!("x={}", case.join("inputs/x.npy").display());
    // From the three files import wrote, as its message says …
    let run1 = dir.path().join("run1");
    let o = rnnc(&[
        "run",
        out.join("Model.rnn").to_str().unwrap(),
        "--config",
        out.join("Model.yaml").to_str().unwrap(),
        "--weights",
        out.join("weights.safetensors").to_str().unwrap(),
        "--input",
        &x,
        "--out",
        run1.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got =
        ArrayD::<f32>::read_npy(std::fs::File::open(run1.join("logits.npy")).unwrap()).unwrap();
    assert!(max_abs_diff(&got, &want) < 1e-5);
    // … and from the .onnx file itself.
    let run2 = dir.path().join("run2");
    let o = rnnc(&[
        "run",
        case.join("model.onnx").to_str().unwrap(),
        "--input",
        &x,
        "--out",
        run2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got =
        ArrayD::<f32>::read_npy(std::fs::File::open(run2.join("logits.npy")).unwrap()).unwrap();
    assert!(max_abs_diff(&got, &want) < 1e-5);
}

#[test]
fn bad_onnx_input_is_refused_with_exit_1() {
    let bad = root().join("tests/onnx/bad");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (file, needle) in [
        ("truncated.onnx", "not an ONNX model"),
        ("not_onnx.onnx", "not an ONNX model"),
        ("opset_too_new.onnx", "opset 99"),
        ("unknown_op.onnx", "node \"mix_einsum\" (Einsum)"),
        ("missing_initializer.onnx", "\"W_missing\""),
    ] {
        let path = bad.join(file);
        let o = rnnc(&["import", path.to_str().unwrap(), "-o", out]);
        fails_with(&o, &[file, needle]);
        let o = rnnc(&["run", path.to_str().unwrap(), "--out", out]);
        fails_with(&o, &[file, needle]);
    }
    let o = rnnc(&["import", "no/such/model.onnx", "-o", out]);
    fails_with(&o, &["no/such/model.onnx"]);
    // Sizes of an ONNX model come from its weights, not from flags.
    let model = onnx_case("rnn_tanh").join("model.onnx");
    let o = rnnc(&["check", model.to_str().unwrap(), "--param", "hidden_size=4"]);
    fails_with(&o, &["--param and --config apply to .rnn models"]);
    let o = rnnc(&["check", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn explore_writes_one_page_for_a_model_or_an_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let o = rnnc(&[
        "explore",
        "models/lstm_seed_equations.rnn",
        "--param",
        "input_size=3",
        "--param",
        "hidden_size=4",
        "-O2",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("data-pass=\"fuse-gates\""),
        "a section per pass"
    );
    assert!(
        html.contains("<span id=\"line-1\">"),
        "the source is on the page"
    );
    assert!(
        html.contains("(machine code, "),
        "the CPU's generated code is on the page"
    );
    let o = rnnc(&[
        "explore",
        "models/lstm_seed_equations.rnn",
        "--param",
        "input_size=3",
        "--param",
        "hidden_size=4",
        "--backend",
        "wgsl",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&page)
        .unwrap()
        .contains("LSTMSeedEquations.wgsl"));
    let o = rnnc(&[
        "explore",
        "models/lstm_seed_equations.rnn",
        "--param",
        "input_size=3",
        "--param",
        "hidden_size=4",
        "--backend",
        "interp",
        "-o",
        page.to_str().unwrap(),
    ]);
    fails_with(&o, &["generates no code"]);
    let onnx = onnx_case("gru_lbr1").join("model.onnx");
    let o = rnnc(&[
        "explore",
        onnx.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&page).unwrap().contains("OnnxGRU"));
    let o = rnnc(&[
        "explore",
        onnx.to_str().unwrap(),
        "-o",
        dir.path().join("no/such/dir/r.html").to_str().unwrap(),
    ]);
    fails_with(&o, &["cannot write", "r.html"]);
}

/// A model the CPU backend has no code for is refused, never run on the
/// interpreter behind the user's back: exit 1, the op named, the interpreter
/// suggested (and it runs the model).
#[test]
fn the_cpu_backend_refuses_what_it_cannot_compile() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("leading_softmax.rnn");
    std::fs::write(
        &model,
        "// A softmax over a leading axis of a step's value.\n\
         cell C(n: int) {\n\
         \x20   input x: [n]\n\
         \x20   state m: [n, n]\n\
         \x20   m' = softmax(m, dim = 0) * tanh(x)\n\
         \x20   emit m'[0]\n\
         }\n\
         model M(n: int) {\n\
         \x20   input input: [B, T, n]\n\
         \x20   input m0: [B, n, n]\n\
         \x20   ys, m_n = scan(C(n), input, init = (m0,))\n\
         \x20   output ys\n\
         }\n",
    )
    .unwrap();
    let path = model.display().to_string();
    let bench = |backend: &str| {
        rnnc(&[
            "bench",
            &path,
            "--param",
            "n=3",
            "--batch",
            "2",
            "--seq",
            "4",
            "--backend",
            backend,
        ])
    };
    fails_with(
        &bench("cpu"),
        &[
            "leading_softmax.rnn",
            "the CPU backend cannot compile this model",
            "`softmax` over a leading axis",
            // The place of the op in the source: line 5, where `softmax(` starts.
            "(at ",
            "leading_softmax.rnn:5:10)",
            "--backend interp",
        ],
    );
    let o = bench("interp");
    assert!(o.status.success(), "{}", stderr(&o));
    // Ahead of time, at every pipeline: the same op, the same place.
    for level in ["-O0", "-O2"] {
        let out = dir.path().join("m.o");
        let o = rnnc(&[
            "compile",
            &path,
            "--param",
            "n=3",
            level,
            "--target",
            "cpu",
            "-o",
            &out.display().to_string(),
        ]);
        fails_with(
            &o,
            &[
                "cannot be compiled ahead of time",
                "`softmax` over a leading axis (at ",
                "leading_softmax.rnn:5:10)",
            ],
        );
    }
}

#[test]
fn the_gpu_plan_names_the_place_of_what_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("batched.rnn");
    std::fs::write(
        &model,
        "// A product per time step: [B, T, 1, 2] @ [B, T, 2, 1].\n\
         model M() {\n\
         \x20   input a: [B, T, 1, 2]\n\
         \x20   input b: [B, T, 2, 1]\n\
         \x20   output y = a @ b\n\
         }\n",
    )
    .unwrap();
    let compile = |seq: &str| {
        let out = dir.path().join("kernels");
        rnnc(&[
            "compile",
            &model.display().to_string(),
            "--target",
            "wgsl",
            "--seq",
            seq,
            "-o",
            &out.display().to_string(),
        ])
    };
    // B·T products are one dispatch's workgroups, at most 65535 of them.
    fails_with(
        &compile("70000"),
        &[
            "cannot be compiled for the GPU",
            "70000 batches",
            "(at ",
            "batched.rnn:5:16)",
        ],
    );
    let o = compile("7");
    assert!(o.status.success(), "{}", stderr(&o));
}
