//! No source text makes the front end panic: every model file cut at every token
//! boundary, and thousands of random byte mutations of them, parse and lower to
//! either a graph (which -O2 then optimises without error) or diagnostics (which
//! must render), never a panic.

mod common;

use rnnc_ir::lower::{lower, HValue};
use rnnc_syntax::{load_root, SourceMap};
use std::path::{Path, PathBuf};

/// Hyperparameters that let each model lower fully, so that cuts reach deep into lowering.
fn params_for(path: &Path) -> Vec<(String, HValue)> {
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    let fixture = match stem.as_str() {
        "elman_rnn" => "elman_tanh",
        "lstm" => "torch_lstm_bidir2_h0",
        "gru" => "torch_gru_bidir2_h0",
        "lstm_seed_equations" => "lstm_seed_equations",
        "seq2seq_attention" => return hvalues(&common::seq2seq_meta("beam")),
        s if common::root()
            .join(format!("tests/fixtures/seed0/{s}"))
            .is_dir() =>
        {
            s
        }
        _ => return Vec::new(),
    };
    let fx = common::seed0(fixture);
    hvalues(fx.meta["ctor_kwargs"].as_object().unwrap())
}

/// Hyperparameters from a fixture's JSON (bools, strings, ints).
fn hvalues(kwargs: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, HValue)> {
    kwargs
        .iter()
        .map(|(k, v)| {
            let h = match v {
                serde_json::Value::Bool(b) => HValue::Bool(*b),
                serde_json::Value::String(s) => HValue::Str(s.clone()),
                n => HValue::Int(n.as_i64().unwrap()),
            };
            (k.clone(), h)
        })
        .collect()
}

fn model_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["models", "models/std"] {
        for e in std::fs::read_dir(common::root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rnn") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Parses and lowers `text` as if it were the file at `path`; true if it compiled.
fn compile(path: &Path, text: String, params: &[(String, HValue)]) -> bool {
    let mut sources = SourceMap::new();
    let root = sources.add(path.display().to_string(), Some(path), text);
    let result = load_root(root, &mut sources).and_then(|p| lower(&p, params));
    match result {
        Ok(mut g) => {
            rnnc_ir::verify(&g).expect("lowering returns verified graphs");
            // Whatever compiles also optimises: a pass that fails here is a bug.
            let passes = rnnc_opt::Opt::Level(2).build().unwrap();
            rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
                .unwrap_or_else(|e| panic!("-O2 failed on a model that compiles: {e}"));
            true
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            for d in &diags {
                assert!(d.render(&sources).starts_with("error"));
            }
            false
        }
    }
}

/// Byte offsets where one token ends and another begins.
fn token_boundaries(text: &str) -> Vec<usize> {
    let class = |c: char| {
        if c.is_alphanumeric() || c == '_' || c == '\'' {
            0
        } else if c.is_whitespace() {
            1
        } else {
            2
        }
    };
    let mut out = vec![0];
    let mut prev: Option<(char, u8)> = None;
    for (i, c) in text.char_indices() {
        let k = class(c);
        if let Some((p, pk)) = prev {
            if k != pk || k == 2 || p == '\n' {
                out.push(i);
            }
        }
        prev = Some((c, k));
    }
    out.push(text.len());
    out
}

#[test]
fn every_token_cut_is_an_error_or_a_graph() {
    let mut cuts = 0;
    for path in model_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let params = params_for(&path);
        // The runnable models compile whole; std files hold layers, not runnable models.
        let runnable = !path.parent().unwrap().ends_with("std");
        let whole = compile(&path, text.clone(), &params);
        assert!(
            whole || !runnable,
            "{} should compile whole",
            path.display()
        );
        for pos in token_boundaries(&text) {
            compile(&path, text[..pos].to_string(), &params);
            cuts += 1;
        }
    }
    assert!(cuts > 2000, "only {cuts} cuts");
}

/// xorshift64*: deterministic, so a failure names a reproducible case.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    // RNNC_MUTATIONS=N runs N per file (for a longer local soak); CI runs 250.
    let per_file: usize = std::env::var("RNNC_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let alphabet = b"()[]{}<>=+-*/@,:.'\"0123456789 \n\tabcxyzBT_!#\\";
    let seed = std::env::var("RNNC_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    for path in model_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let params = params_for(&path);
        for case in 0..per_file {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(4) {
                    0 => bytes[at] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                    _ => {
                        let len = rng.below(40).min(bytes.len() - at);
                        let chunk: Vec<u8> = bytes[at..at + len].to_vec();
                        let to = rng.below(bytes.len());
                        bytes.splice(to..to, chunk);
                    }
                }
            }
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            let outcome = std::panic::catch_unwind(|| compile(&path, mutated.clone(), &params));
            assert!(
                outcome.is_ok(),
                "{} mutation {case} panicked on:\n{mutated}",
                path.display()
            );
        }
    }
}
