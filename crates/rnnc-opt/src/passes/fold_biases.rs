//! `fold-biases`: regroups a sum so that its load-time terms (biases) add up first,
//! then the terms that depend only on the input, then the rest:
//! `W_ih x + b_ih + W_hh h + b_hh` → `((b_ih + b_hh) + W_ih x) + W_hh h`.
//!
//! ```text
//! before:  %7 = add %5, %b_ih : f32[B, 64]                   after:  %10 = add %b_ih, %b_hh : f32[64]
//!          %8 = add %7, %6 : f32[B, 64]                             %11 = add %10, %5 : f32[B, 64]
//!          %9 = add %8, %b_hh : f32[B, 64]                          %12 = add %11, %6 : f32[B, 64]
//! ```
//! The bias sum is then one load-time value, and the input part is a single subtree
//! that `hoist-input-projection` can move out of the loop. Only sums whose nodes
//! feed nothing else are regrouped, and only if the result keeps its type.
//! Reassociating float additions changes results in the last bits only.

use crate::rewrite::{add, dependencies, each_graph, Dep};
use crate::Pass;
use rnnc_ir::{BinaryOp, Graph, NodeId, Op, Value};
use std::collections::HashMap;

pub struct FoldBiases;

impl Pass for FoldBiases {
    fn name(&self) -> &'static str {
        "fold-biases"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        each_graph(g, &mut |g| Ok(regroup(g)? && super::dce::sweep_changed(g)))
    }
}

fn is_add(g: &Graph, id: NodeId) -> bool {
    matches!(g.node(id).op, Op::Binary(BinaryOp::Add))
}

/// An add read by exactly one add (and not an output) is part of its reader's sum.
fn is_inner(g: &Graph, id: NodeId, dep: &HashMap<NodeId, Dep>) -> bool {
    let v = Value::new(id, 0);
    let users = g.users(v);
    is_add(g, id)
        && dep[&id] != Dep::Load
        && users.len() == 1
        && is_add(g, users[0].0)
        && !g.outputs.iter().any(|(_, o)| *o == v)
}

fn leaves(g: &Graph, id: NodeId, dep: &HashMap<NodeId, Dep>, out: &mut Vec<Value>) {
    for v in g.operands(id) {
        if is_inner(g, v.node, dep) {
            leaves(g, v.node, dep, out);
        } else {
            out.push(v);
        }
    }
}

fn regroup(g: &mut Graph) -> Result<bool, String> {
    let mut changed = false;
    // One sum at a time: each rewrite adds nodes, so the classification is redone.
    // Every rewrite leaves its sum in the order it checks for, so this ends.
    while let Some((root, terms)) = next_unordered_sum(g) {
        let dep = dependencies(g);
        let class = |v: &Value| dep[&v.node];
        let mut ordered = terms;
        ordered.sort_by_key(class); // stable: keeps the written order within a class
        let mut sum = ordered[0];
        for t in &ordered[1..] {
            sum = add(g, Op::Binary(BinaryOp::Add), &[sum, *t])?;
        }
        if g.ty(sum) != &g.node(root).results[0] {
            // Regrouping would change how the terms broadcast; leave this sum alone.
            super::dce::sweep(g);
            return Ok(changed);
        }
        g.replace_uses(Value::new(root, 0), sum);
        super::dce::sweep(g);
        changed = true;
    }
    Ok(changed)
}

/// The first sum (in topological order) with several load-time terms, or with a
/// state term before others, with its terms.
fn next_unordered_sum(g: &Graph) -> Option<(NodeId, Vec<Value>)> {
    let dep = dependencies(g);
    for id in g.topo_order().expect("verified graphs are acyclic") {
        // A sum of load-time terms only is already one load-time value.
        if !is_add(g, id) || dep[&id] == Dep::Load || is_inner(g, id, &dep) {
            continue;
        }
        let mut terms = Vec::new();
        leaves(g, id, &dep, &mut terms);
        let class = |v: &Value| dep[&v.node];
        let n_load = terms.iter().filter(|v| class(v) == Dep::Load).count();
        // Loads gain from adding up once; a state term gains from coming last, so that
        // the rest is one subtree the loop can hoist. Any other order is left as written.
        let state_first = terms
            .windows(2)
            .any(|w| class(&w[0]) == Dep::State && class(&w[1]) != Dep::State);
        if n_load >= 2 || state_first {
            return Some((id, terms));
        }
    }
    None
}
