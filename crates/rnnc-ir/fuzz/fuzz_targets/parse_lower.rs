//! Fuzzes parsing and lowering: any bytes must give a graph that verifies, or
//! diagnostics that render, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnnc_ir::lower::{lower, HValue};
use rnnc_syntax::{load_root, SourceMap};

/// Hyperparameters offered to whatever entry model the input declares, so that
/// lowering gets past binding them (only the names the model declares are passed).
const PARAMS: &[(&str, i64)] = &[
    ("input_size", 3),
    ("hidden_size", 4),
    ("num_layers", 2),
    ("n", 4),
    ("vocab_size", 7),
    ("embed_dim", 3),
    ("hidden_dim", 4),
    ("num_classes", 2),
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let mut sources = SourceMap::new();
    // A path inside the models directory lets `import "std/…"` resolve.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../models/fuzz.rnn");
    let root = sources.add("fuzz.rnn", Some(&path), text);
    let program = match load_root(root, &mut sources) {
        Ok(p) => p,
        Err(diags) => {
            for d in diags {
                let _ = d.render(&sources);
            }
            return;
        }
    };
    let params: Vec<(String, HValue)> = PARAMS
        .iter()
        .filter(|(k, _)| program.entry.hparams.iter().any(|h| h.name.name == *k))
        .map(|(k, v)| (k.to_string(), HValue::Int(*v)))
        .collect();
    match lower(&program, &params) {
        Ok(g) => {
            rnnc_ir::verify(&g).expect("lowering returns verified graphs");
            let text = g.to_string();
            let back = rnnc_ir::parse_graph(&text).expect("printed IR parses back");
            assert_eq!(back.to_string(), text, "print → parse → print is the identity");
        }
        Err(diags) => {
            for d in diags {
                let _ = d.render(&sources);
            }
        }
    }
});
