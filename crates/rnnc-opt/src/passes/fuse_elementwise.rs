//! `fuse-elementwise`: a tree of elementwise ops whose inner values feed nothing
//! else becomes one `fused` region, evaluated as one kernel: one pass over memory,
//! no temporaries.
//!
//! ```text
//! before:  %5 = sigmoid %1 : f32[B, 16]                      after:  %5 = fused %1, %2, %3 : f32[B, 16] {
//!          %6 = tanh %2 : f32[B, 16]                                   %6 = operand index=0 : f32[B, 16]
//!          %7 = mul %5, %6 : f32[B, 16]                                %7 = operand index=1 : f32[B, 16]
//!          %8 = add %7, %3 : f32[B, 16]                                %8 = operand index=2 : f32[B, 16]
//!                                                                      %9 = sigmoid %6 : f32[B, 16]
//!                                                                      %10 = tanh %7 : f32[B, 16]
//!                                                                      %11 = mul %9, %10 : f32[B, 16]
//!                                                                      %12 = add %11, %8 : f32[B, 16]
//!                                                                      yield %12
//!                                                                    }
//! ```
//! A value read by two consumers, or by a non-elementwise op, ends a region (it is
//! materialised once). Scalar constants are copied into the region. The region holds
//! the same ops in the same order, so its results are bit for bit the same.

use crate::rewrite::each_graph;
use crate::Pass;
use rnnc_ir::{ArgKind, Fused, Graph, NodeId, Op, Value};
use std::collections::{HashMap, HashSet};

pub struct FuseElementwise;

impl Pass for FuseElementwise {
    fn name(&self) -> &'static str {
        "fuse-elementwise"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        each_graph(g, &mut |g| {
            let fused = fuse(g)?;
            if fused {
                super::dce::sweep(g);
            }
            Ok(fused)
        })
    }
}

fn elementwise(g: &Graph, id: NodeId) -> bool {
    matches!(g.node(id).op, Op::Unary(_) | Op::Binary(_))
}

/// An operand joins its reader's region if it is elementwise and read by nothing else.
fn joins(g: &Graph, v: Value) -> bool {
    elementwise(g, v.node) && g.users(v).len() == 1 && !g.outputs.iter().any(|(_, o)| *o == v)
}

fn fuse(g: &mut Graph) -> Result<bool, String> {
    // Inside a fused region there is nothing left to fuse.
    if g.node_ids().any(|id| {
        matches!(
            g.node(id).op,
            Op::Arg {
                kind: ArgKind::Operand,
                ..
            }
        )
    }) {
        return Ok(false);
    }
    let order = g.topo_order().expect("verified graphs are acyclic");
    let mut taken: HashSet<NodeId> = HashSet::new();
    let mut changed = false;
    // Roots are visited last-first, so each region is as large as it can be.
    for &root in order.iter().rev() {
        if taken.contains(&root) || !elementwise(g, root) || joins(g, Value::new(root, 0)) {
            continue;
        }
        let mut region = Vec::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            region.push(id);
            for v in g.operands(id) {
                if joins(g, v) && !taken.contains(&v.node) {
                    stack.push(v.node);
                }
            }
        }
        if region.len() < 2 {
            continue;
        }
        taken.extend(region.iter().copied());
        let in_region: HashSet<NodeId> = region.iter().copied().collect();
        let mut body = Graph::new("fused");
        let mut map: HashMap<Value, Value> = HashMap::new();
        let mut operands: Vec<Value> = Vec::new();
        for &id in order.iter().filter(|id| in_region.contains(id)) {
            let mut args = Vec::new();
            for v in g.operands(id) {
                let inner = match map.get(&v) {
                    Some(inner) => *inner,
                    None if in_region.contains(&v.node) => unreachable!("topological order"),
                    None => {
                        let inner = match g.node(v.node).op {
                            Op::Const(c) => body.add_node(Op::Const(c), &[], vec![g.ty(v).clone()]),
                            _ => {
                                operands.push(v);
                                let index = operands.len() - 1;
                                body.add_node(
                                    Op::Arg {
                                        kind: ArgKind::Operand,
                                        index,
                                    },
                                    &[],
                                    vec![g.ty(v).clone()],
                                )
                            }
                        };
                        map.insert(v, Value::new(inner, 0));
                        Value::new(inner, 0)
                    }
                };
                args.push(inner);
            }
            let out = body.add(g.node(id).op.clone(), &args)?;
            body.node_mut(out[0].node).span = g.node(id).span;
            map.insert(Value::new(id, 0), out[0]);
        }
        body.outputs
            .push(("yield".into(), map[&Value::new(root, 0)]));
        let result = g.add(
            Op::Fused(Fused {
                body: Box::new(body),
            }),
            &operands,
        )?;
        // The region stands where its last operation was written.
        g.node_mut(result[0].node).span = g.node(root).span;
        g.replace_uses(Value::new(root, 0), result[0]);
        changed = true;
    }
    Ok(changed)
}
