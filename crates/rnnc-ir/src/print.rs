//! The text form of the IR. Values are numbered `%0, %1, …` in topological order
//! (ties by creation), never by graph index, so printing is deterministic and the
//! output parses back (see `parse.rs`) to a graph that prints identically.
//!
//! ```text
//! graph LSTM {
//!   %0 = input name="input" zeros=false : f32[B, T, 12]
//!   %1, %2, %3 = scan reverse=false seqs=1 states=2 %0, %4, %5 : f32[B, T, 16], f32[B, 16], f32[B, 16] {
//!     %6 = seq index=0 : f32[B, 12]
//!     …
//!     next %20, %21
//!     emit %20
//!   }
//!   output "output" %1
//! }
//! ```

use crate::graph::{Graph, Value};
use crate::op::{Op, Scan};
use std::collections::HashMap;
use std::fmt::{self, Write};

impl fmt::Display for Graph {
    // Printing runs on every graph comparison: spans are not tracked here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(&mut Lines::default()))
    }
}

impl Graph {
    /// The text form, and for each of its lines the source span of the node that
    /// line defines (None for other lines and for nodes without one).
    pub fn text_with_spans(&self) -> (String, Vec<Option<rnnc_syntax::Span>>) {
        let mut lines = Lines {
            tracking: true,
            ..Lines::default()
        };
        let out = self.text(&mut lines);
        lines.mark(&out, None);
        let mut spans = lines.spans;
        spans.truncate(out.lines().count());
        (out, spans)
    }

    fn text(&self, lines: &mut Lines) -> String {
        let mut out = format!("graph {} {{\n", self.name);
        let mut counter = 0usize;
        write_body(&mut out, self, 1, &mut counter, false, lines).expect("writing to a String");
        out.push_str("}\n");
        out
    }
}

/// The span of each line written so far, counted as the text grows (when
/// `tracking`; plain printing keeps none).
#[derive(Default)]
struct Lines {
    tracking: bool,
    seen: usize,
    count: usize,
    spans: Vec<Option<rnnc_syntax::Span>>,
}

impl Lines {
    /// The line about to be written belongs to `span`.
    fn mark(&mut self, out: &str, span: Option<rnnc_syntax::Span>) {
        if !self.tracking {
            return;
        }
        self.count += out[self.seen..].matches('\n').count();
        self.seen = out.len();
        self.spans.resize(self.count, None);
        self.spans.push(span);
    }
}

fn write_body(
    out: &mut String,
    g: &Graph,
    depth: usize,
    counter: &mut usize,
    is_scan_body: bool,
    spans: &mut Lines,
) -> fmt::Result {
    let pad = "  ".repeat(depth);
    let Some(order) = g.topo_order() else {
        writeln!(out, "{pad}<cycle: this graph is not a DAG>")?;
        return Ok(());
    };
    let mut names: HashMap<Value, usize> = HashMap::new();
    let name = |names: &HashMap<Value, usize>, v: Value| -> String {
        names
            .get(&v)
            .map(|n| format!("%{n}"))
            .unwrap_or_else(|| "%?".into())
    };
    for id in order {
        let node = g.node(id);
        // This node's line is the next one written.
        spans.mark(out, node.span);
        let mut results = Vec::new();
        for r in 0..node.results.len() as u32 {
            names.insert(Value::new(id, r), *counter);
            results.push(format!("%{counter}"));
            *counter += 1;
        }
        write!(out, "{pad}{} = {}", results.join(", "), node.op.name())?;
        for (k, v) in attrs(&node.op) {
            write!(out, " {k}={v}")?;
        }
        let operands: Vec<String> = g
            .operands(id)
            .into_iter()
            .map(|v| name(&names, v))
            .collect();
        if !operands.is_empty() {
            write!(out, " {}", operands.join(", "))?;
        }
        let tys: Vec<String> = node.results.iter().map(|t| t.to_string()).collect();
        write!(out, " : {}", tys.join(", "))?;
        let body = match &node.op {
            Op::Scan(scan) => Some(&scan.body),
            Op::Decode(d) => Some(&d.body),
            Op::Fused(fused) => Some(&fused.body),
            _ => None,
        };
        if let Some(body) = body {
            out.push_str(" {\n");
            write_body(out, body, depth + 1, counter, true, spans)?;
            write!(out, "{pad}}}")?;
        }
        if let Op::Scan(Scan {
            tail: Some(tail), ..
        }) = &node.op
        {
            out.push_str(" tail {\n");
            write_body(out, tail, depth + 1, counter, true, spans)?;
            write!(out, "{pad}}}")?;
        }
        out.push('\n');
    }
    if is_scan_body {
        // A body's outputs are labelled: a scan's "next" (the next states, first) and
        // "emit", a fused region's "yield". Each label prints as one line.
        for label in ["next", "emit", "yield"] {
            let v: Vec<String> = g
                .outputs
                .iter()
                .filter(|(l, _)| l == label)
                .map(|(_, v)| name(&names, *v))
                .collect();
            if !v.is_empty() {
                writeln!(out, "{pad}{label} {}", v.join(", "))?;
            }
        }
    } else {
        for (label, v) in &g.outputs {
            writeln!(out, "{pad}output {label:?} {}", name(&names, *v))?;
        }
    }
    Ok(())
}

/// The op's attributes as `key=value` pairs, in a fixed order.
pub fn attrs(op: &Op) -> Vec<(&'static str, String)> {
    match op {
        Op::Input { name, zeros } => {
            vec![("name", format!("{name:?}")), ("zeros", zeros.to_string())]
        }
        Op::Weight { key } => vec![("key", format!("{key:?}"))],
        Op::Const(v) => vec![("value", format!("{v:?}"))],
        Op::Concat { axis }
        | Op::Stack { axis }
        | Op::Flip { axis }
        | Op::Softmax { axis }
        | Op::LogSoftmax { axis } => vec![("axis", axis.to_string())],
        Op::Slice { axis, start, end } => vec![
            ("axis", axis.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
        ],
        Op::Index { axis, index } => vec![("axis", axis.to_string()), ("index", index.to_string())],
        Op::Transpose { a, b } => vec![("a", a.to_string()), ("b", b.to_string())],
        Op::LayerNorm { eps } => vec![("eps", format!("{eps:?}"))],
        Op::Scan(s) => {
            let mut a = vec![
                ("reverse", s.reverse.to_string()),
                ("seqs", s.n_seqs.to_string()),
                ("states", s.n_states.to_string()),
            ];
            if s.n_memory > 0 {
                a.push(("memory", s.n_memory.to_string()));
            }
            if s.step > 1 {
                a.push(("step", s.step.to_string()));
            }
            a
        }
        Op::Decode(d) => {
            let mut a = vec![];
            if let Some(k) = d.beam {
                a.push(("width", k.to_string()));
            }
            a.extend([
                ("states", d.n_states.to_string()),
                ("memory", d.n_memory.to_string()),
                ("bos", d.bos.to_string()),
                ("eos", d.eos.to_string()),
                ("pad", d.pad.to_string()),
                ("max_len", d.max_len.to_string()),
            ]);
            a
        }
        Op::Unsqueeze { axis } | Op::Squeeze { axis } => vec![("axis", axis.to_string())],
        Op::Arg { index, .. } => vec![("index", index.to_string())],
        Op::Fused(_) => vec![],
        Op::Zeros
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Linear
        | Op::MatMul
        | Op::Embedding
        | Op::SequenceMask => {
            vec![]
        }
    }
}
