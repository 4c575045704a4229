//! `dce`: removes nodes whose values nothing reads.
//!
//! ```text
//! before:  %0 = input name="x" zeros=false : f32[B, 4]       after:  %0 = input name="x" zeros=false : f32[B, 4]
//!          %1 = exp %0 : f32[B, 4]                                  %1 = tanh %0 : f32[B, 4]
//!          %2 = tanh %0 : f32[B, 4]                                 output "y" %1
//!          output "y" %2
//! ```
//! Model inputs stay (they are the model's interface), and so do scan arguments
//! (their positions are the scan's signature).

use crate::rewrite::each_graph;
use crate::Pass;
use rnnc_ir::{Graph, NodeId, Op};
use std::collections::HashSet;

pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        each_graph(g, &mut |g| Ok(sweep(g)))
    }
}

/// Sweeps after a rewrite; returns true so that it chains as `rewrote && sweep_changed(g)`.
pub(crate) fn sweep_changed(g: &mut Graph) -> bool {
    sweep(g);
    true
}

pub(crate) fn sweep(g: &mut Graph) -> bool {
    let mut live: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = g.outputs.iter().map(|(_, v)| v.node).collect();
    stack.extend(
        g.node_ids()
            .filter(|id| matches!(g.node(*id).op, Op::Input { .. } | Op::Arg { .. })),
    );
    while let Some(id) = stack.pop() {
        if live.insert(id) {
            stack.extend(g.operands(id).iter().map(|v| v.node));
        }
    }
    let dead: Vec<NodeId> = g.node_ids().filter(|id| !live.contains(id)).collect();
    for id in &dead {
        g.remove_node(*id);
    }
    !dead.is_empty()
}
