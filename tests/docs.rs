//! The examples in docs/language.md are real: each ```rnn block compiles (with the
//! hyperparameters of its `// params:` line), each ```rnn,fails block fails with
//! exactly the diagnostic shown in the ```text block after it.

mod common;

use rnnc_interp::Tensor;
use rnnc_ir::lower::{lower, HValue};
use rnnc_syntax::diagnostic::render_all;
use rnnc_syntax::{load_root, SourceMap};
use std::collections::HashMap;

struct Block {
    fence: String,
    text: String,
    line: usize,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(fence)) => {
                current = Some(Block {
                    fence: fence.to_string(),
                    text: String::new(),
                    line: i + 1,
                })
            }
            (Some(_), Some("")) => out.push(current.take().unwrap()),
            (Some(b), _) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

fn params(text: &str) -> Vec<(String, HValue)> {
    let Some(line) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// params:"))
    else {
        return Vec::new();
    };
    line.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (
                k.to_string(),
                v.parse()
                    .map(HValue::Int)
                    .unwrap_or_else(|_| HValue::Str(v.to_string())),
            )
        })
        .collect()
}

fn compile(text: &str) -> Result<rnnc_ir::Graph, String> {
    let mut sources = SourceMap::new();
    let path = common::root().join("docs/example.rnn");
    let root = sources.add("example.rnn", Some(&path), text.to_string());
    load_root(root, &mut sources)
        .and_then(|p| lower(&p, &params(text)))
        .map_err(|d| render_all(&d, &sources))
}

#[test]
fn language_reference_examples_compile() {
    let doc = std::fs::read_to_string(common::root().join("docs/language.md")).unwrap();
    let all = blocks(&doc);
    let mut checked = 0;
    for (i, b) in all.iter().enumerate() {
        match b.fence.as_str() {
            "rnn" => {
                compile(&b.text).unwrap_or_else(|e| {
                    panic!(
                        "docs/language.md:{}: example does not compile:\n{e}",
                        b.line
                    )
                });
                checked += 1;
            }
            "rnn,fails" => {
                let err = compile(&b.text)
                    .err()
                    .unwrap_or_else(|| panic!("docs/language.md:{}: example compiles", b.line));
                let shown = all
                    .get(i + 1)
                    .filter(|n| n.fence == "text")
                    .expect("a ```text block after a failing example");
                assert_eq!(
                    err.trim_end(),
                    shown.text.trim_end(),
                    "docs/language.md:{}: the shown diagnostic is stale",
                    b.line
                );
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked >= 5, "only {checked} examples checked");
}

/// Every example of docs/language.md that compiles also runs, with random
/// weights and inputs (B = 2, T = S = 4), at -O0, -O2 and -O2 unrolled on the
/// CPU backend (one compiled program), as an object file linked from C, and on
/// WGSL, each equal to the interpreter: none may be refused.
#[test]
fn language_reference_examples_run_on_every_backend() {
    let doc = std::fs::read_to_string(common::root().join("docs/language.md")).unwrap();
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
    for b in blocks(&doc).iter().filter(|b| b.fence == "rnn") {
        let lowered = compile(&b.text).unwrap();
        let w = rnnc_cli::bench::random_weights(&lowered, 3);
        for opt in &pipelines {
            let label = format!("docs/language.md:{} {opt:?}", b.line);
            let mut g = lowered.clone();
            let passes = opt.build().unwrap();
            rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
                .unwrap();
            let inputs = rnnc_cli::bench::random_inputs(&g, 2, 4, 7);
            let verify = || rnnc_ir::verify(&g).unwrap();
            let want: HashMap<String, Tensor> = match rnnc_interp::run(&verify(), &inputs, &w) {
                Ok(o) => o.into_iter().collect(),
                Err(e) => {
                    failures.push(format!("{label}: the interpreter: {e}"));
                    continue;
                }
            };
            let mut check = |backend: &str, got: Result<Vec<(String, Tensor)>, String>| match got {
                Ok(got) => {
                    for (name, t) in &got {
                        let d = common::max_diff(t, &want[name]);
                        if d > 1e-4 {
                            failures.push(format!("{label} {backend} {name}: {d:e} off"));
                        }
                    }
                }
                Err(e) => failures.push(format!("{label} {backend}: {e}")),
            };
            let cpu = rnnc_backend_cpu::CpuBackend::new(verify(), &w)
                .and_then(|c| c.run(&inputs))
                .map_err(|e| e.0);
            check("cpu", cpu);
            let gpu = rnnc_backend_wgsl::WgslBackend::new(verify(), &w)
                .and_then(|c| c.run(&inputs))
                .map_err(|e| e.0);
            check("wgsl", gpu);
            let aot = rnnc_backend_cpu::aot::compile_object(&verify(), &w, 2, 4, "docs")
                .map_err(|e| e.0)
                .and_then(|obj| {
                    let dir = tempfile::tempdir().unwrap();
                    common::link_driver(dir.path(), &obj);
                    let outs = common::run_driver_outputs(dir.path(), &obj, &inputs)?;
                    Ok(obj
                        .outputs
                        .iter()
                        .map(|(n, _)| n.clone())
                        .zip(outs)
                        .collect())
                });
            check("object file", aot);
            ran += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 3 * 8, "{ran} runs");
}
