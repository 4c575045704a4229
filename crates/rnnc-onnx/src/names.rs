//! Identifiers for the generated source: ONNX names (`onnx::LSTM_12`, `input.1`,
//! `/lstm/LSTM_output_0`) made into names the language takes, each used once.

use std::collections::HashSet;

/// The language's keywords: never a name.
const KEYWORDS: &[&str] = &["if", "then", "else", "and", "or", "not", "true", "false"];

/// Statement words: a value may carry one (`input input: [B, T, 4]`), but the
/// generated source keeps them for graph inputs and outputs, where the ONNX name
/// asks for one.
const STATEMENT_WORDS: &[&str] = &[
    "import", "cell", "model", "input", "state", "param", "memory", "layer", "output", "emit",
    "assert", "zeros",
];

/// The axis names and the language's types: with the built-in functions
/// (`rnnc_ir::lower::BUILTINS`: a value named `tanh` would hide the function for
/// the rest of the model), names a value cannot take.
const OTHER_RESERVED: &[&str] = &["B", "T", "S", "f32", "i64", "int", "float", "bool", "str"];

/// What a name is used for, which decides the words it may not be.
#[derive(Clone, Copy, PartialEq)]
pub enum Use {
    /// A value made by a statement.
    Value,
    /// A graph input (a value too, but never the first word of a statement).
    Input,
    /// A model output: its own namespace, after the word `output`.
    Output,
}

fn reserved(name: &str, u: Use) -> bool {
    KEYWORDS.contains(&name)
        || (u != Use::Output
            && (rnnc_ir::lower::BUILTINS.contains(&name) || OTHER_RESERVED.contains(&name)))
        || (u == Use::Value && STATEMENT_WORDS.contains(&name))
}

#[derive(Default)]
pub struct Names {
    used: HashSet<String>,
}

impl Names {
    /// A fresh identifier close to `onnx_name`.
    pub fn fresh(&mut self, onnx_name: &str) -> String {
        self.fresh_for(onnx_name, Use::Value)
    }

    /// A fresh identifier close to `onnx_name` for `u`.
    pub fn fresh_for(&mut self, onnx_name: &str, u: Use) -> String {
        let base = sanitize(onnx_name);
        let mut name = base.clone();
        let mut k = 1;
        while self.used.contains(&name) || reserved(&name, u) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Claims `name` as it is; false when it is taken or reserved for `u`.
    pub fn claim(&mut self, name: &str, u: Use) -> bool {
        if self.used.contains(name) || reserved(name, u) || sanitize(name) != name {
            return false;
        }
        self.used.insert(name.to_string());
        true
    }
}

/// `onnx_name` with every character outside `[A-Za-z0-9_]` made `_`, runs of `_`
/// joined, no leading digit or underscore run, never empty.
pub fn sanitize(onnx_name: &str) -> String {
    let mut out = String::new();
    for c in onnx_name.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        out.push('v');
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'v');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_names_become_identifiers() {
        assert_eq!(sanitize("onnx::LSTM_12"), "onnx_LSTM_12");
        assert_eq!(sanitize("/lstm/LSTM_output_0"), "lstm_LSTM_output_0");
        assert_eq!(sanitize("input.1"), "input_1");
        assert_eq!(sanitize("0"), "v0");
        assert_eq!(sanitize("::"), "v");
        let mut n = Names::default();
        assert_eq!(n.fresh("tanh"), "tanh_1");
        assert_eq!(n.fresh("x"), "x");
        assert_eq!(n.fresh("x"), "x_1");
        assert_eq!(n.fresh("B"), "B_1");
        assert!(!n.claim("x", Use::Value));
        assert!(n.claim("y", Use::Value));
        assert!(!n.claim("output", Use::Value));
        assert!(n.claim("output", Use::Output));
        assert!(n.claim("input", Use::Input));
        assert!(!n.claim("if", Use::Output));
    }
}
