//! Graphviz output of a graph (`rnnc ir --format dot`): one box per node, labelled
//! with its `%N` number, op, attributes and type as in the text form; scan bodies and
//! fused regions as clusters; a dashed edge for each loop-carried state.

use crate::graph::{Graph, Value};
use crate::op::Op;
use crate::print::attrs;
use std::collections::HashMap;
use std::fmt::Write;

/// The graph in Graphviz's `dot` language.
pub fn to_dot(g: &Graph) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
        escape(&g.name)
    );
    let mut counter = 0;
    let mut clusters = 0;
    write_graph(&mut out, g, &mut counter, &mut clusters, "  ", true);
    out.push_str("}\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Writes the nodes and edges of `g`; returns the dot node id of each value.
fn write_graph(
    out: &mut String,
    g: &Graph,
    counter: &mut usize,
    clusters: &mut usize,
    pad: &str,
    top: bool,
) -> HashMap<Value, String> {
    let mut ids: HashMap<Value, String> = HashMap::new();
    let Some(order) = g.topo_order() else {
        let _ = writeln!(out, "{pad}cycle [label=\"<cycle: not a DAG>\"];");
        return ids;
    };
    for id in order {
        let node = g.node(id);
        let first = *counter;
        let names: Vec<String> = (0..node.results.len())
            .map(|r| format!("%{}", first + r))
            .collect();
        *counter += node.results.len();
        let dot_id = format!("n{first}");
        for r in 0..node.results.len() as u32 {
            ids.insert(Value::new(id, r), dot_id.clone());
        }
        let mut label = format!("{} = {}", names.join(", "), node.op.name());
        for (k, v) in attrs(&node.op) {
            let _ = write!(label, " {k}={v}");
        }
        let tys: Vec<String> = node.results.iter().map(|t| t.to_string()).collect();
        let _ = write!(label, "\\n{}", tys.join(", "));
        let _ = writeln!(
            out,
            "{pad}{dot_id} [label=\"{}\"];",
            escape(&label).replace("\\\\n", "\\n")
        );
        for (i, v) in g.operands(id).iter().enumerate() {
            let _ = writeln!(out, "{pad}{} -> {dot_id} [label=\"{i}\"];", ids[v]);
        }
        let bodies: Vec<(&Graph, &str)> = match &node.op {
            Op::Scan(s) => std::iter::once((&*s.body, "scan body"))
                .chain(s.tail.as_deref().map(|t| (t, "scan tail")))
                .collect(),
            Op::Fused(f) => vec![(&*f.body, "fused region")],
            Op::Decode(d) => vec![(&*d.body, "decoder step")],
            _ => Vec::new(),
        };
        for (body, what) in bodies {
            *clusters += 1;
            let _ = writeln!(
                out,
                "{pad}subgraph cluster_{clusters} {{\n{pad}  label=\"{what} of {}\"; style=dashed;",
                names.join(", ")
            );
            let inner = write_graph(out, body, counter, clusters, &format!("{pad}  "), false);
            for (label, v) in &body.outputs {
                let _ = writeln!(
                    out,
                    "{pad}  {} -> {dot_id} [label=\"{label}\", style=dashed];",
                    inner[v]
                );
            }
            let _ = writeln!(out, "{pad}}}");
        }
    }
    // A body's outputs are drawn as edges back to its node; the model's as ellipses.
    for (label, v) in g.outputs.iter().filter(|_| top) {
        {
            let _ = writeln!(
                out,
                "{pad}\"out_{}\" [shape=ellipse, label=\"output {}\"];",
                escape(label),
                escape(label)
            );
            let _ = writeln!(out, "{pad}{} -> \"out_{}\";", ids[v], escape(label));
        }
    }
    ids
}
