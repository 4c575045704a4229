//! `cse`: merges nodes that compute the same thing from the same operands.
//!
//! ```text
//! before:  %1 = weight key="w" : f32[4, 4]                  after:  %1 = weight key="w" : f32[4, 4]
//!          %2 = weight key="w" : f32[4, 4]                          %2 = linear %0, %1 : f32[B, 4]
//!          %3 = linear %0, %1 : f32[B, 4]                           %3 = add %2, %2 : f32[B, 4]
//!          %4 = linear %0, %2 : f32[B, 4]
//!          %5 = add %3, %4 : f32[B, 4]
//! ```
//! Every op is pure, so equal op, attributes and operands mean equal values. Inputs,
//! scan arguments and scans themselves are left alone.

use crate::rewrite::each_graph;
use crate::Pass;
use rnnc_ir::print::attrs;
use rnnc_ir::{Graph, Op, Value};
use std::collections::HashMap;

pub struct Cse;

impl Pass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        each_graph(g, &mut |g| Ok(merge(g)))
    }
}

fn merge(g: &mut Graph) -> bool {
    let mut seen: HashMap<String, rnnc_ir::NodeId> = HashMap::new();
    let mut changed = false;
    for id in g.topo_order().expect("verified graphs are acyclic") {
        let node = g.node(id);
        if matches!(node.op, Op::Input { .. } | Op::Arg { .. } | Op::Scan(_)) {
            continue;
        }
        // A fused region is its body: two regions on the same operands may differ.
        let body = match &node.op {
            Op::Fused(f) => f.body.to_string(),
            _ => String::new(),
        };
        let key = format!(
            "{} {:?} {:?} {:?} {body}",
            node.op.name(),
            attrs(&node.op),
            g.operands(id),
            node.results
        );
        match seen.get(&key) {
            Some(&first) => {
                for r in 0..g.node(id).results.len() as u32 {
                    g.replace_uses(Value::new(id, r), Value::new(first, r));
                }
                g.remove_node(id);
                changed = true;
            }
            None => {
                seen.insert(key, id);
            }
        }
    }
    changed
}
