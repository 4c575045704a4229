//! Helpers shared by passes: visiting every graph (scan bodies included), and the
//! products whose matrix is known at load time ([`Dep`] lives in `rnnc-ir`, which
//! the interpreter and backends share).

pub use rnnc_ir::deps::{dependencies, Dep};
use rnnc_ir::{ArgKind, Graph, NodeId, Op, Value};
use std::collections::HashMap;

/// Applies `f` to `g` and to every scan body, decoder step and fused region inside
/// it, innermost first; returns whether any call changed something.
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
            Op::Decode(decode) => changed |= each_graph(&mut decode.body, f)?,
            _ => {}
        }
    }
    changed |= f(g)?;
    Ok(changed)
}

/// Applies `f` to every node that `pick` selects (loops, for the passes that
/// rewrite them), in every graph as [`each_graph`] visits them; returns whether any
/// call changed something. The nodes are listed before the first call, so `f` may
/// replace the node it is given.
pub fn each_node(
    g: &mut Graph,
    pick: &dyn Fn(&Op) -> bool,
    f: &mut dyn FnMut(&mut Graph, NodeId) -> Result<bool, String>,
) -> Result<bool, String> {
    each_graph(g, &mut |g| {
        let picked: Vec<NodeId> = g.node_ids().filter(|id| pick(&g.node(*id).op)).collect();
        let mut changed = false;
        for id in picked {
            changed |= f(g, id)?;
        }
        Ok(changed)
    })
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

/// Removes a loop body's `kind` arguments (sequences, memories) that nothing reads
/// any more, renumbering the rest; returns the operands that remain. With
/// `keep_one`, the first stays when none is read.
pub fn drop_unread_args(
    body: &mut Graph,
    kind: ArgKind,
    values: Vec<Value>,
    keep_one: bool,
) -> Vec<Value> {
    let args: Vec<(NodeId, usize)> = body
        .node_ids()
        .filter_map(|id| match body.node(id).op {
            Op::Arg { kind: k, index } if k == kind => Some((id, index)),
            _ => None,
        })
        .collect();
    // An argument the body passes straight out (a next state or an emit that is a
    // hoisted sequence) is read as much as one an op uses.
    let read = |i: usize| {
        args.iter().any(|(id, idx)| {
            *idx == i
                && (!body.users(Value::new(*id, 0)).is_empty()
                    || body.outputs.iter().any(|(_, o)| o.node == *id))
        })
    };
    let mut keep: Vec<usize> = (0..values.len()).filter(|i| read(*i)).collect();
    if keep.is_empty() && keep_one && !values.is_empty() {
        keep.push(0);
    }
    for (id, index) in args {
        match keep.iter().position(|k| *k == index) {
            Some(new_index) => {
                body.node_mut(id).op = Op::Arg {
                    kind,
                    index: new_index,
                }
            }
            None => body.remove_node(id),
        }
    }
    keep.into_iter().map(|i| values[i]).collect()
}
