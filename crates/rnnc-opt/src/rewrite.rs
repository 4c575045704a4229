//! Helpers shared by passes: visiting every graph (scan bodies included) and
//! classifying values by what they depend on.

use rnnc_ir::{ArgKind, Graph, NodeId, Op, Value};
use std::collections::HashMap;

/// Applies `f` to `g` and to every scan body and fused region inside it, innermost
/// first; returns whether any call changed something.
pub fn each_graph(
    g: &mut Graph,
    f: &mut dyn FnMut(&mut Graph) -> Result<bool, String>,
) -> Result<bool, String> {
    let mut changed = false;
    let ids: Vec<NodeId> = g.node_ids().collect();
    for id in ids {
        match &mut g.node_mut(id).op {
            Op::Scan(scan) => {
                changed |= each_graph(&mut scan.body, f)?;
                if let Some(tail) = &mut scan.tail {
                    changed |= each_graph(tail, f)?;
                }
            }
            Op::Fused(fused) => changed |= each_graph(&mut fused.body, f)?,
            _ => {}
        }
    }
    changed |= f(g)?;
    Ok(changed)
}

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
            Op::Arg {
                kind: ArgKind::State | ArgKind::Operand,
                ..
            }
            | Op::Scan(_) => Dep::State,
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

/// Every `linear` whose matrix is known at load time: (node, operand, matrix).
pub fn load_time_products(g: &Graph, dep: &HashMap<NodeId, Dep>) -> Vec<(NodeId, Value, Value)> {
    g.topo_order()
        .expect("verified graphs are acyclic")
        .into_iter()
        .filter(|id| matches!(g.node(*id).op, Op::Linear))
        .filter_map(|id| match g.operands(id)[..] {
            [x, w] if dep[&w.node] == Dep::Load => Some((id, x, w)),
            _ => None,
        })
        .collect()
}

/// Adds an op whose result types are inferred; a failure here is a bug in the pass.
pub fn add(g: &mut Graph, op: Op, operands: &[Value]) -> Result<Value, String> {
    g.add1(op, operands)
}
