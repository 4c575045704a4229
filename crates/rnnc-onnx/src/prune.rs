//! Dead statements out of the generated model: exporters write glue whose
//! results nothing reads once import has folded it (a transpose the recurrence
//! no longer needs, an output a later node ignores). Statements, declarations,
//! hyperparameters and weights no output depends on are dropped, so the source
//! shows only what runs.

use std::collections::HashSet;

/// The identifiers a line of generated source mentions (numbers skipped).
pub fn idents(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            // A number, exponent included (`1e-5`).
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(&text[start..i]);
        } else {
            i += 1;
        }
    }
    out
}

/// What survives: which body lines, declarations and names are kept.
pub struct Live {
    pub body: Vec<bool>,
    pub decls: Vec<bool>,
    pub names: HashSet<String>,
}

/// Keeps the outputs and everything they read, back to the inputs.
pub fn live(body: &[(String, String)], decls: &[String]) -> Live {
    let mut names: HashSet<String> = HashSet::new();
    let mut keep_body = vec![false; body.len()];
    for (k, (line, _)) in body.iter().enumerate().rev() {
        if let Some(rest) = line.strip_prefix("output ") {
            keep_body[k] = true;
            // `output y = v` reads v; `output y` reads y.
            let read = rest.split_once(" = ").map_or(rest, |(_, v)| v);
            names.extend(idents(read).into_iter().map(String::from));
            continue;
        }
        let Some((targets, expr)) = line.split_once(" = ") else {
            keep_body[k] = true;
            continue;
        };
        if targets.split(", ").any(|t| names.contains(t.trim())) {
            keep_body[k] = true;
            names.extend(idents(expr).into_iter().map(String::from));
        }
    }
    let mut keep_decls = vec![false; decls.len()];
    for (k, d) in decls.iter().enumerate().rev() {
        // `param NAME: [...]` or `layer NAME = Cell(args)`.
        let rest = d.split_once(' ').map_or("", |(_, r)| r);
        let name_end = rest.find([':', ' ']).unwrap_or(rest.len());
        if names.contains(&rest[..name_end]) {
            keep_decls[k] = true;
            names.extend(idents(&rest[name_end..]).into_iter().map(String::from));
        }
    }
    Live {
        body: keep_body,
        decls: keep_decls,
        names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_skip_numbers_and_dead_lines_go() {
        assert_eq!(
            idents("a_1 = clamp(x, min = -1e-5, max = 2.5) + y"),
            ["a_1", "clamp", "x", "min", "max", "y"]
        );
        let body = vec![
            ("t = transpose(x, 0, 1)".to_string(), String::new()),
            ("u = x * 2.0".to_string(), String::new()),
            ("a, b = scan(l, u)".to_string(), String::new()),
            ("output y = b".to_string(), String::new()),
        ];
        let decls = vec![
            "param w: [3]".to_string(),
            "layer l = C(4, hidden_size)".to_string(),
        ];
        let live = live(&body, &decls);
        assert_eq!(live.body, [false, true, true, true]);
        assert_eq!(live.decls, [false, true]);
        assert!(live.names.contains("hidden_size"));
    }
}
