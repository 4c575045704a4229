//! The examples in docs/language.md are real: each ```rnn block compiles (with the
//! hyperparameters of its `// params:` line), each ```rnn,fails block fails with
//! exactly the diagnostic shown in the ```text block after it.

mod common;

use rnnc_ir::lower::{lower, HValue};
use rnnc_syntax::diagnostic::render_all;
use rnnc_syntax::{load_root, SourceMap};

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
