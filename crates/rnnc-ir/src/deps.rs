//! Classifying values by what they depend on: weights only (known at load time),
//! the per-step input, or the loop-carried state. Passes use it to decide what may
//! move out of a loop; the interpreter and backends to fold load-time values once.

use crate::{ArgKind, Graph, NodeId, Op};
use std::collections::HashMap;

/// What a value depends on, most constant first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dep {
    /// Only weights and constants: known once the weights are loaded.
    Load,
    /// Also the per-step sequence slices of a scan body (or zeros, inputs outside one).
    Seq,
    /// A loop-carried state (in a scan body), or anything else that varies per step.
    State,
}

/// Classifies every node of `g` by [`Dep`].
pub fn dependencies(g: &Graph) -> HashMap<NodeId, Dep> {
    let mut dep = HashMap::new();
    for id in g.topo_order().expect("verified graphs are acyclic") {
        let d = match &g.node(id).op {
            Op::Weight { .. } | Op::Const(_) => Dep::Load,
            Op::Arg {
                kind: ArgKind::Seq, ..
            }
            | Op::Input { .. }
            | Op::Zeros => Dep::Seq,
            // A fused region's operands could be anything: never treat them as constant.
            // Memories are fixed over a loop but known only at run time: per step
            // they are treated like states, so nothing reading them moves (yet).
            Op::Arg {
                kind: ArgKind::State | ArgKind::Operand | ArgKind::Memory,
                ..
            }
            | Op::Scan(_)
            | Op::Decode(_) => Dep::State,
            _ => g
                .operands(id)
                .iter()
                .map(|v| dep[&v.node])
                .max()
                .unwrap_or(Dep::Load),
        };
        dep.insert(id, d);
    }
    dep
}
